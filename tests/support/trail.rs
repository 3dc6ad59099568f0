//! CloudTrail log files as AWS delivers them: records shaped like real events (an IRSA
//! `AssumeRoleWithWebIdentity` with a `WebIdentityUser`, a Pod Identity `AssumeRole` invoked by
//! `pods.eks.amazonaws.com` with its session tags, calls with `AssumedRole` identities carrying `accessKeyId`
//! and `sessionContext`), gzipped `{"Records": [...]}` files, and the S3 key layout of a trail.

use std::io::Write;

use serde_json::{Value, json};

fn common(time: &str, source: &str, name: &str, region: &str, account: &str, n: usize) -> Value {
    json!({
        "eventVersion": "1.09",
        "eventTime": time,
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "10.0.12.34",
        "userAgent": "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5",
        "requestID": format!("{n:08x}-1d2c-4e5f-9a8b-7c6d5e4f3a2b"),
        "eventID": format!("{n:08x}-aaaa-4bbb-8ccc-dddddddddddd"),
        "readOnly": name.starts_with("Get") || name.starts_with("List") || name.starts_with("Describe"),
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
    })
}

fn account_of(arn: &str) -> String {
    arn.split(':').nth(4).unwrap_or_default().to_string()
}

fn name_of(role_arn: &str) -> String {
    role_arn.rsplit('/').next().unwrap_or_default().to_string()
}

/// IRSA: the web identity token of `system:serviceaccount:NS:SA` exchanged through `provider` (the OIDC
/// provider's ARN) for credentials with access key `key`.
pub fn web_identity(role_arn: &str, provider: &str, subject: &str, key: &str, time: &str, region: &str) -> Value {
    let account = account_of(role_arn);
    let mut r = common(time, "sts.amazonaws.com", "AssumeRoleWithWebIdentity", region, &account, key.len());
    r["userIdentity"] = json!({
        "type": "WebIdentityUser",
        "principalId": format!("{provider}:sts.amazonaws.com:{subject}"),
        "userName": subject,
        "identityProvider": provider,
    });
    r["requestParameters"] =
        json!({"roleArn": role_arn, "roleSessionName": "botocore-session-1764583200", "durationSeconds": 3600});
    r["responseElements"] = json!({
        "credentials": {"accessKeyId": key, "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE", "expiration": "Dec 1, 2026, 11:00:00 AM"},
        "subjectFromWebIdentityToken": subject,
        "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLE:botocore-session-1764583200",
                            "arn": format!("arn:aws:sts::{account}:assumed-role/{}/botocore-session-1764583200", name_of(role_arn))},
        "provider": provider,
        "audience": "sts.amazonaws.com",
    });
    r["resources"] = json!([{"accountId": account, "type": "AWS::IAM::Role", "ARN": role_arn}]);
    r
}

/// EKS Pod Identity: the agent's `AssumeRole` for a pod, with the session tags EKS adds.
pub fn pod_identity(role_arn: &str, cluster_arn: &str, ns: &str, sa: &str, pod: &str, key: &str, time: &str) -> Value {
    let account = account_of(role_arn);
    let region = cluster_arn.split(':').nth(3).unwrap_or("us-west-2").to_string();
    let cluster = cluster_arn.rsplit('/').next().unwrap_or_default();
    let mut r = common(time, "sts.amazonaws.com", "AssumeRole", &region, &account, key.len() + 1);
    r["userIdentity"] = json!({"type": "AWSService", "invokedBy": "pods.eks.amazonaws.com"});
    r["sourceIPAddress"] = "pods.eks.amazonaws.com".into();
    r["userAgent"] = "pods.eks.amazonaws.com".into();
    r["requestParameters"] = json!({
        "roleArn": role_arn,
        "roleSessionName": format!("eks-{cluster}-{pod}-1f2e3d4c"),
        "durationSeconds": 21600,
        "tags": [
            {"key": "eks-cluster-arn", "value": cluster_arn},
            {"key": "eks-cluster-name", "value": cluster},
            {"key": "kubernetes-namespace", "value": ns},
            {"key": "kubernetes-service-account", "value": sa},
            {"key": "kubernetes-pod-name", "value": pod},
            {"key": "kubernetes-pod-uid", "value": "6f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8"},
        ],
        "transitiveTagKeys": ["eks-cluster-arn", "eks-cluster-name", "kubernetes-namespace",
                              "kubernetes-service-account", "kubernetes-pod-name", "kubernetes-pod-uid"],
    });
    r["responseElements"] = json!({
        "credentials": {"accessKeyId": key, "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE", "expiration": "Dec 1, 2026, 4:00:00 PM"},
        "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLE:eks-session",
                            "arn": format!("arn:aws:sts::{account}:assumed-role/{}/eks-{cluster}-{pod}", name_of(role_arn))},
        "packedPolicySize": 43,
    });
    r
}

/// A call made with a role's temporary credentials (`key`); `error` is its `errorCode`, if it failed.
pub fn call(
    role_arn: &str,
    key: &str,
    source: &str,
    name: &str,
    time: &str,
    region: &str,
    error: Option<&str>,
) -> Value {
    let account = account_of(role_arn);
    let mut r = common(time, source, name, region, &account, time.len() + name.len());
    r["userIdentity"] = json!({
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLE:session",
        "arn": format!("arn:aws:sts::{account}:assumed-role/{}/session", name_of(role_arn)),
        "accountId": account,
        "accessKeyId": key,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "arn": role_arn, "accountId": account,
                              "userName": name_of(role_arn)},
            "attributes": {"creationDate": time, "mfaAuthenticated": "false"},
        },
    });
    r["requestParameters"] =
        json!({"bucketName": "shop-data", "key": "orders/2026/12/01.json", "Host": "shop-data.s3.amazonaws.com"});
    r["responseElements"] = Value::Null;
    if let Some(code) = error {
        r["errorCode"] = code.into();
        r["errorMessage"] = format!("User is not authorized to perform: {name}").into();
    }
    r
}

/// Someone else entirely: an IAM user's call.
pub fn iam_user_call(account: &str, user: &str, source: &str, name: &str, time: &str) -> Value {
    let mut r = common(time, source, name, "us-west-2", account, user.len());
    r["userIdentity"] = json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE",
        "arn": format!("arn:aws:iam::{account}:user/{user}"), "accountId": account, "accessKeyId": "AKIAEXAMPLE", "userName": user});
    r
}

/// A log file's bytes: `{"Records": [...]}`, gzipped.
pub fn gz(records: &[Value]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(json!({ "Records": records }).to_string().as_bytes()).expect("gzip");
    enc.finish().expect("gzip")
}

/// The key CloudTrail delivers a log file under: `[prefix/]AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/...`.
pub fn log_key(prefix: Option<&str>, account: &str, region: &str, time: &str, n: usize) -> String {
    let (date, clock) = (&time[..10], &time[11..16]);
    let (y, m, d) = (&date[..4], &date[5..7], &date[8..10]);
    let stamp = format!("{y}{m}{d}T{}{}Z", &clock[..2], &clock[3..5]);
    let prefix = prefix.map(|p| format!("{p}/")).unwrap_or_default();
    format!(
        "{prefix}AWSLogs/{account}/CloudTrail/{region}/{y}/{m}/{d}/{account}_CloudTrail_{region}_{stamp}_{n:04}abcdEFGH.json.gz"
    )
}

/// The key of a digest file (never to be read as a log).
pub fn digest_key(prefix: Option<&str>, account: &str, region: &str, trail: &str, time: &str) -> String {
    let (y, m, d) = (&time[..4], &time[5..7], &time[8..10]);
    let prefix = prefix.map(|p| format!("{p}/")).unwrap_or_default();
    format!(
        "{prefix}AWSLogs/{account}/CloudTrail-Digest/{region}/{y}/{m}/{d}/{account}_CloudTrail-Digest_{region}_{trail}_{region}_{y}{m}{d}T100000Z.json.gz"
    )
}
