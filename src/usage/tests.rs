use serde_json::{Value, json};

use super::*;

const ACCOUNT: &str = "111122223333";
const HOST: &str = "oidc.eks.us-west-2.amazonaws.com/id/5C9F2A7B41D3E8F06A1B2C3D4E5F6A7B";
const OTHER_HOST: &str = "oidc.eks.eu-west-1.amazonaws.com/id/0000000000000000000000000000AAAA";
const CLUSTER_ARN: &str = "arn:aws:eks:us-west-2:111122223333:cluster/prod";

fn role(name: &str) -> RoleArn {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}").parse().unwrap()
}

fn web_identity(role: &str, host: &str, subject: &str, key: &str) -> Value {
    json!({
        "eventTime": "2026-12-01T10:00:00Z", "eventSource": "sts.amazonaws.com", "eventName": "AssumeRoleWithWebIdentity",
        "userIdentity": {"type": "WebIdentityUser", "userName": subject,
                         "identityProvider": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{host}")},
        "requestParameters": {"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "roleSessionName": "botocore-session-1"},
        "responseElements": {"credentials": {"accessKeyId": key}, "subjectFromWebIdentityToken": subject,
                             "provider": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"), "audience": "sts.amazonaws.com"},
    })
}

fn pod_identity(role: &str, cluster: &str, ns: &str, sa: &str, pod: &str, key: &str) -> Value {
    json!({
        "eventTime": "2026-12-01T10:00:00Z", "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
        "userIdentity": {"type": "AWSService", "invokedBy": "pods.eks.amazonaws.com"},
        "requestParameters": {"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "roleSessionName": "eks-prod-x",
            "tags": [{"key": "eks-cluster-arn", "value": cluster}, {"key": "eks-cluster-name", "value": "prod"},
                     {"key": "kubernetes-namespace", "value": ns}, {"key": "kubernetes-service-account", "value": sa},
                     {"key": "kubernetes-pod-name", "value": pod}, {"key": "kubernetes-pod-uid", "value": "u"}]},
        "responseElements": {"credentials": {"accessKeyId": key}},
    })
}

fn call(role: &str, key: &str, source: &str, name: &str, time: &str, error: Option<&str>) -> Value {
    let mut r = json!({
        "eventTime": time, "eventSource": source, "eventName": name,
        "userIdentity": {"type": "AssumedRole", "accessKeyId": key,
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/s"),
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}")}}},
    });
    if let Some(e) = error {
        r["errorCode"] = e.into();
    }
    r
}

fn tally(records: &[Value], roles: &[&str]) -> Tally {
    let scope: BTreeSet<String> = roles.iter().map(|r| role_key(&role(r))).collect();
    let text = json!({ "Records": records }).to_string();
    let mut t = Tally::default();
    record::read_log(text.as_bytes(), &mut |r| t.add(&r, &scope)).unwrap();
    t
}

fn cluster() -> ClusterId {
    ClusterId {
        name: Some("prod".into()),
        arn: Some(CLUSTER_ARN.into()),
        issuer: Some(format!("https://{HOST}")),
        label: None,
    }
}

fn observed(t: &Tally, name: &str) -> Observed {
    let usage = Usage { source: "cloudtrail".into(), ..Usage::default() };
    let roles = attribute(t, &[role(name)], &[cluster()]);
    Observed::of(&usage, &roles[0])
}

fn user(ns: &str, sa: &str) -> User {
    User::new(ns, sa, None)
}

#[test]
fn irsa_and_pod_identity_sessions_are_attributed_to_their_service_accounts() {
    let t = tally(
        &[
            web_identity("shared", HOST, "system:serviceaccount:shop:api", "ASIAAPI"),
            pod_identity("shared", CLUSTER_ARN, "shop", "worker", "worker-7d9f4-x2m9p", "ASIAWORKER"),
            call("shared", "ASIAAPI", "s3.amazonaws.com", "GetObject", "2026-12-01T10:01:00Z", None),
            call("shared", "ASIAAPI", "s3.amazonaws.com", "GetObject", "2026-12-01T11:00:00Z", None),
            call("shared", "ASIAWORKER", "sqs.amazonaws.com", "ReceiveMessage", "2026-12-01T10:02:00Z", None),
        ],
        &["shared"],
    );
    let o = observed(&t, "shared");
    assert_eq!((o.events, o.unattributed), (3, 0));
    let names: Vec<&str> = o.actions.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(names, ["s3:GetObject", "sqs:ReceiveMessage"]);
    assert_eq!(o.actions[0].count, 2);
    assert_eq!(o.actions[0].last_used, Some("2026-12-01T11:00:00Z".parse().unwrap()));
    assert_eq!(o.actions[0].users, [user("shop", "api")]);
    assert_eq!(o.actions_of(&user("shop", "worker")), ["sqs:ReceiveMessage"]);
    assert!(o.denied.is_empty());
}

#[test]
fn other_clusters_other_callers_and_old_sessions_are_unattributed_but_still_use() {
    let t = tally(
        &[
            web_identity("app", OTHER_HOST, "system:serviceaccount:shop:api", "ASIAOTHER"),
            pod_identity(
                "app",
                "arn:aws:eks:us-west-2:111122223333:cluster/staging",
                "shop",
                "api",
                "p",
                "ASIASTAGING",
            ),
            call("app", "ASIAOTHER", "kms.amazonaws.com", "Decrypt", "2026-12-01T10:00:00Z", None),
            call("app", "ASIASTAGING", "kms.amazonaws.com", "Decrypt", "2026-12-01T10:00:00Z", None),
            // A session whose AssumeRoleWithWebIdentity is older than the window.
            call("app", "ASIAOLD", "kms.amazonaws.com", "Encrypt", "2026-12-01T10:00:00Z", None),
        ],
        &["app"],
    );
    let o = observed(&t, "app");
    assert_eq!((o.events, o.unattributed), (3, 3));
    assert!(o.actions.iter().all(|a| a.users.is_empty()), "{o:?}");
    assert_eq!(o.actions.len(), 2, "still the role's use: {o:?}");
}

#[test]
fn denied_calls_are_attempts_and_noise_is_ignored() {
    let t = tally(
        &[
            web_identity("app", HOST, "system:serviceaccount:shop:api", "ASIAAPI"),
            call("app", "ASIAAPI", "s3.amazonaws.com", "PutObject", "2026-12-01T10:00:00Z", Some("AccessDenied")),
            call("app", "ASIAAPI", "s3.amazonaws.com", "GetObject", "2026-12-01T10:00:00Z", Some("NoSuchKey")),
            // Other principals: another role, an IAM user, a role's STS event refused.
            call("other", "ASIAX", "s3.amazonaws.com", "DeleteBucket", "2026-12-01T10:00:00Z", None),
            json!({"eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
                   "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"}}),
            call("app", "ASIAAPI", "sts.amazonaws.com", "GetCallerIdentity", "2026-12-01T10:00:00Z", None),
        ],
        &["app"],
    );
    let o = observed(&t, "app");
    assert_eq!(o.denied, ["s3:PutObject"]);
    let names: Vec<&str> = o.actions.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(names, ["s3:GetObject"], "a call that failed after authorisation is a use; a denied one is not");
    assert_eq!(o.events, 2);
    assert_eq!(t.calls.len(), 1, "other roles are not tallied");
    assert_eq!(t.records, 6);
}

#[test]
fn tallies_merge_across_files_and_keep_roles_apart() {
    let a = tally(&[web_identity("app", HOST, "system:serviceaccount:shop:api", "ASIAAPI")], &["app", "db"]);
    let b = tally(
        &[
            call("app", "ASIAAPI", "s3.amazonaws.com", "GetObject", "2026-12-01T10:00:00Z", None),
            call("db", "ASIADB", "dynamodb.amazonaws.com", "GetItem", "2026-12-02T10:00:00Z", None),
        ],
        &["app", "db"],
    );
    let mut merged = a.clone();
    merged.merge(b.clone());
    assert_eq!(observed(&merged, "app").actions[0].users, [user("shop", "api")], "a key issued in another file");
    assert_eq!(merged.records, 3);
    merged.retain_roles(&[role_key(&role("app"))].into_iter().collect());
    assert_eq!(merged.calls.len(), 1);
    // A tally survives the cache's JSON.
    let back: Tally = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
    assert_eq!(back, b);
}
