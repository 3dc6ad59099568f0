//! Policy documents over real-world shapes, and the property that a draft never widens.

use serde_json::{Value, json};

use super::suggest::may_match_service;
use super::*;

fn doc(v: Value) -> PolicyDocument {
    serde_json::from_value(v).unwrap()
}

fn names(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// RFC 3986 encoding as IAM does it: everything but the unreserved characters becomes `%XX`.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Real-world shapes (AWS managed policies as published, trimmed where long).

fn s3_read_only() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["s3:Get*", "s3:List*", "s3:Describe*", "s3-object-lambda:Get*", "s3-object-lambda:List*"],
        "Resource": "*"}]})
}

fn administrator_access() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
}

fn power_user_access() -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["account:GetAccountInformation", "account:ListRegions",
            "iam:CreateServiceLinkedRole", "iam:ListRoles", "organizations:DescribeOrganization"], "Resource": "*"}]})
}

/// An application role as teams write them: Sids, a KMS grant behind a condition, a region guard.
fn app_policy() -> Value {
    json!({"Version": "2012-10-17", "Id": "payments-api", "Statement": [
        {"Sid": "Objects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:CreateBucket"],
         "Resource": ["arn:aws:s3:::payments", "arn:aws:s3:::payments/*"]},
        {"Sid": "Keys", "Effect": "Allow", "Action": ["KMS:Decrypt", "kms:GenerateDataKey*"],
         "Resource": "arn:aws:kms:eu-west-1:111122223333:key/1234",
         "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}},
        {"Sid": "Queue", "Effect": "Allow", "Action": "sqs:*", "Resource": "arn:aws:sqs:eu-west-1:111122223333:payments"},
        {"Sid": "RegionGuard", "Effect": "Deny", "NotAction": ["iam:*", "sts:*", "kms:*"], "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}}]})
}

// ---------------------------------------------------------------------------------------------------
// Parsing and writing.

#[test]
fn parses_the_shapes_iam_and_people_write() {
    let one = parse(r#"{"Statement": {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}}"#).unwrap();
    assert_eq!(one.version, None, "Version is optional");
    assert_eq!(one.statements.len(), 1, "Statement may be a single object");
    assert_eq!(one.statements[0].effect, Effect::Deny);
    assert_eq!(one.statements[0].actions, Actions::Action(names(&["s3:DeleteBucket"])), "Action may be a string");

    let power = doc(power_user_access());
    assert_eq!(power.statements[0].actions, Actions::NotAction(names(&["iam:*", "organizations:*", "account:*"])));

    let app = doc(app_policy());
    assert_eq!(app.id.as_deref(), Some("payments-api"));
    assert_eq!(app.statements[1].sid.as_deref(), Some("Keys"));
    assert!(app.statements[1].condition.is_some());
}

#[test]
fn url_encoded_documents_parse_like_plain_ones() {
    for shape in [s3_read_only(), administrator_access(), power_user_access(), app_policy()] {
        let plain = serde_json::to_string_pretty(&shape).unwrap();
        assert_eq!(parse(&url_encode(&plain)).unwrap(), parse(&plain).unwrap(), "{plain}");
    }
    // As GetRolePolicy returns it on the wire (one small document, encoded by hand).
    let wire = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C\
                %22Action%22%3A%5B%22dynamodb%3AGetItem%22%2C%22dynamodb%3AQuery%22%5D%2C%22Resource%22%3A\
                %22arn%3Aaws%3Adynamodb%3Aeu-west-1%3A111122223333%3Atable%2Forders%22%7D%5D%7D";
    let d = parse(wire).unwrap();
    assert_eq!(d.statements[0].actions, Actions::Action(names(&["dynamodb:GetItem", "dynamodb:Query"])));
    assert_eq!(d.statements[0].resource, Some(json!("arn:aws:dynamodb:eu-west-1:111122223333:table/orders")));
}

#[test]
fn percent_decoding_keeps_plus_odd_percents_and_utf8() {
    assert_eq!(percent_decode("a+b%20c"), "a+b c", "RFC 3986: `+` is a plus, a space is %20");
    assert_eq!(percent_decode("100%zz%4"), "100%zz%4", "a stray % is kept, not an error");
    assert_eq!(percent_decode("caf%C3%A9"), "café", "multi-byte UTF-8");
    assert_eq!(percent_decode("%7b%22a%22%7D"), r#"{"a"}"#, "lowercase hex");
    // A plain document whose strings hold `%22` is not decoded (a naive "contains %22" test would).
    let plain = r#"{"Statement": {"Sid": "x%22y", "Effect": "Allow", "Action": "s3:GetObject"}}"#;
    assert_eq!(parse(plain).unwrap().statements[0].sid.as_deref(), Some("x%22y"));
    assert_eq!(parse(&format!("  \n{plain}")).unwrap().statements[0].sid.as_deref(), Some("x%22y"));
}

#[test]
fn bad_documents_are_errors_not_panics() {
    for (text, why) in [
        ("", "empty"),
        ("not json", "not JSON"),
        ("%7B%22Statement%22", "truncated encoded"),
        (r#"{"Statement": [{"Effect": "Allow", "Resource": "*"}]}"#, "neither Action nor NotAction"),
        (r#"{"Statement": [{"Effect": "allow", "Action": "s3:*"}]}"#, "Effect is case-sensitive"),
        (r#"{"Statement": [{"Effect": "Allow", "Action": 7}]}"#, "Action not a string"),
        (r#"{"Version": "2012-10-17"}"#, "no Statement"),
    ] {
        assert!(parse(text).is_err(), "{why}: {text}");
    }
}

#[test]
fn writing_round_trips_every_field_in_iam_key_style() {
    // Every field a permission or trust policy can carry, in list form (the form we write).
    let full = json!({"Version": "2012-10-17", "Id": "full", "Statement": [
        {"Sid": "Trust", "Effect": "Allow",
         "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/AB"},
         "Action": "sts:AssumeRoleWithWebIdentity",
         "Condition": {"StringEquals": {"oidc.eks.eu-west-1.amazonaws.com/id/AB:sub": "system:serviceaccount:a:b"}}},
        {"Effect": "Deny", "NotPrincipal": {"AWS": ["arn:aws:iam::111122223333:root"]},
         "NotAction": ["s3:Get*", "s3:List*"], "NotResource": ["arn:aws:s3:::logs/*"]}]});
    let parsed = doc(full.clone());
    assert_eq!(serde_json::to_value(&parsed).unwrap(), full);
    assert_eq!(parse(&serde_json::to_string(&parsed).unwrap()).unwrap(), parsed);

    // A single statement object is written as a one-element list; a one-element Action list as a string.
    let single = parse(r#"{"Statement": {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}}"#).unwrap();
    assert_eq!(
        serde_json::to_value(&single).unwrap(),
        json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
    );
}

// ---------------------------------------------------------------------------------------------------
// Evaluation.

#[test]
fn glob_matches_like_iam() {
    for (pattern, action, want) in [
        ("s3:GetObject", "s3:GetObject", true),
        ("s3:getobject", "S3:GetObject", true),
        ("s3:Get*", "s3:GetObject", true),
        ("s3:Get*", "s3:Get", true),
        ("s3:Get*", "s3:PutObject", false),
        ("s3:?etObject", "s3:GetObject", true),
        ("s3:?etObject", "s3:etObject", false),
        ("*", "kms:Decrypt", true),
        ("*:Get*", "kms:GetKeyPolicy", true),
        ("*Object", "s3:DeleteObject", true),
        ("s3:*Object*", "s3:PutObjectAcl", true),
        ("s3:*", "s3-object-lambda:GetObject", false),
        ("s3*:*", "s3-object-lambda:GetObject", true),
        ("kms:*", "kms", false),
        ("a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
    ] {
        assert_eq!(glob_match(pattern, action), want, "{pattern} vs {action}");
    }
}

#[test]
fn allows_needs_an_allow_and_no_deny() {
    let s3 = doc(s3_read_only());
    let app = doc(app_policy());
    let power = doc(power_user_access());
    for (d, action, want, why) in [
        (&s3, "s3:GetObject", true, "glob"),
        (&s3, "S3:GETOBJECT", true, "case-insensitive"),
        (&s3, "s3:PutObject", false, "not matched"),
        (&s3, "s3-object-lambda:GetObject", true, "another service, its own glob"),
        (&app, "KMS:decrypt", true, "listed in another case, and excluded from the Deny by its NotAction"),
        (&app, "kms:GenerateDataKeyWithoutPlaintext", true, "glob"),
        (&app, "kms:Encrypt", false, "not listed"),
        (&app, "sqs:SendMessage", false, "conditions are ignored, so the region guard's Deny counts"),
        (&power, "ec2:RunInstances", true, "Allow NotAction allows everything else"),
        (&power, "iam:CreateRole", false, "NotAction excludes it and no other statement allows it"),
        (&power, "iam:ListRoles", true, "the second statement allows it back"),
    ] {
        assert_eq!(allows(d, action), want, "{action}: {why}");
    }
    assert!(!allows(&doc(json!({"Statement": []})), "s3:GetObject"), "nothing allowed by default");
}

// ---------------------------------------------------------------------------------------------------
// Suggestions over real-world shapes: the whole draft and summary, as a reviewer reads them.

struct Case {
    name: &'static str,
    policy: Value,
    unused: &'static [&'static str],
    unused_actions: &'static [&'static str],
    /// The draft document (`null`: nothing left).
    want: Value,
    want_summary: Value,
}

fn summary(removed: Value, statements: Value, converted: Value, excluded: Value, not_narrowed: Value) -> Value {
    json!({"removedActions": removed, "removedStatements": statements, "convertedToNotAction": converted,
           "excludedActions": excluded, "notNarrowed": not_narrowed})
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "S3 read-only with s3-object-lambda unused: only that service goes, not s3",
            policy: s3_read_only(),
            unused: &["s3-object-lambda"],
            unused_actions: &[],
            want: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": ["s3:Get*", "s3:List*", "s3:Describe*"], "Resource": "*"}]}),
            want_summary: summary(
                json!([{"statement": "#1", "action": "s3-object-lambda:Get*"},
                       {"statement": "#1", "action": "s3-object-lambda:List*"}]),
                json!([]),
                json!([]),
                json!([]),
                json!([]),
            ),
        },
        Case {
            name: "S3 read-only with s3 unused: s3-object-lambda is another service and stays",
            policy: s3_read_only(),
            unused: &["s3"],
            unused_actions: &[],
            want: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": ["s3-object-lambda:Get*", "s3-object-lambda:List*"], "Resource": "*"}]}),
            want_summary: summary(
                json!([{"statement": "#1", "action": "s3:Get*"}, {"statement": "#1", "action": "s3:List*"},
                       {"statement": "#1", "action": "s3:Describe*"}]),
                json!([]),
                json!([]),
                json!([]),
                json!([]),
            ),
        },
        Case {
            name: "S3 read-only with both services unused: the statement and so the policy go",
            policy: s3_read_only(),
            unused: &["s3", "s3-object-lambda"],
            unused_actions: &[],
            want: Value::Null,
            want_summary: summary(
                json!([{"statement": "#1", "action": "s3:Get*"}, {"statement": "#1", "action": "s3:List*"},
                       {"statement": "#1", "action": "s3:Describe*"},
                       {"statement": "#1", "action": "s3-object-lambda:Get*"},
                       {"statement": "#1", "action": "s3-object-lambda:List*"}]),
                json!(["#1"]),
                json!([]),
                json!([]),
                json!([]),
            ),
        },
        Case {
            name: "administrator */*: becomes NotAction of the unused services, resources kept",
            policy: administrator_access(),
            unused: &["sqs", "KMS"],
            unused_actions: &["s3:CreateBucket"],
            want: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "NotAction": ["kms:*", "sqs:*", "s3:CreateBucket"], "Resource": "*"}]}),
            want_summary: summary(
                json!([]),
                json!([]),
                json!(["#1"]),
                json!([{"statement": "#1", "action": "kms:*"}, {"statement": "#1", "action": "sqs:*"},
                       {"statement": "#1", "action": "s3:CreateBucket"}]),
                json!([]),
            ),
        },
        Case {
            name: "PowerUserAccess: the NotAction statement excludes kms too; Action statement untouched",
            policy: power_user_access(),
            unused: &["kms"],
            unused_actions: &[],
            want: json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*", "kms:*"], "Resource": "*"},
                {"Effect": "Allow", "Action": ["account:GetAccountInformation", "account:ListRegions",
                    "iam:CreateServiceLinkedRole", "iam:ListRoles", "organizations:DescribeOrganization"],
                 "Resource": "*"}]}),
            want_summary: summary(
                json!([]),
                json!([]),
                json!([]),
                json!([{"statement": "#1", "action": "kms:*"}]),
                json!([]),
            ),
        },
        Case {
            name: "PowerUserAccess with iam unused: already excluded by NotAction, listed iam actions go",
            policy: power_user_access(),
            unused: &["iam"],
            unused_actions: &[],
            want: json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
                {"Effect": "Allow", "Action": ["account:GetAccountInformation", "account:ListRegions",
                    "organizations:DescribeOrganization"], "Resource": "*"}]}),
            want_summary: summary(
                json!([{"statement": "#2", "action": "iam:CreateServiceLinkedRole"},
                       {"statement": "#2", "action": "iam:ListRoles"}]),
                json!([]),
                json!([]),
                json!([]),
                json!([]),
            ),
        },
        Case {
            name: "app policy: mixed-case KMS goes with its condition statement, Deny kept, exact action dropped",
            policy: app_policy(),
            unused: &["kms"],
            unused_actions: &["s3:CreateBucket"],
            want: json!({"Version": "2012-10-17", "Id": "payments-api", "Statement": [
                {"Sid": "Objects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                 "Resource": ["arn:aws:s3:::payments", "arn:aws:s3:::payments/*"]},
                {"Sid": "Queue", "Effect": "Allow", "Action": "sqs:*",
                 "Resource": "arn:aws:sqs:eu-west-1:111122223333:payments"},
                {"Sid": "RegionGuard", "Effect": "Deny", "NotAction": ["iam:*", "sts:*", "kms:*"], "Resource": "*",
                 "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}}]}),
            want_summary: summary(
                json!([{"statement": "Objects", "action": "s3:CreateBucket"},
                       {"statement": "Keys", "action": "KMS:Decrypt"},
                       {"statement": "Keys", "action": "kms:GenerateDataKey*"}]),
                json!(["Keys"]),
                json!([]),
                json!([]),
                json!([]),
            ),
        },
        Case {
            name: "one action left is written as a string; the condition is carried over",
            policy: json!({"Statement": [{"Sid": "Keys", "Effect": "Allow", "Action": ["kms:Decrypt", "s3:GetObject"],
                "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}),
            unused: &["kms"],
            unused_actions: &[],
            want: json!({"Statement": [{"Sid": "Keys", "Effect": "Allow", "Action": "s3:GetObject",
                "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}),
            want_summary: summary(
                json!([{"statement": "Keys", "action": "kms:Decrypt"}]),
                json!([]),
                json!([]),
                json!([]),
                json!([]),
            ),
        },
        Case {
            name: "a glob in a used service covering unused tracked actions is kept and reported",
            policy: json!({"Statement": [{"Effect": "Allow",
                "Action": ["s3:Put*", "s3:GetObject", "s3:DeleteBucket"], "Resource": "*"}]}),
            unused: &[],
            unused_actions: &["s3:PutBucketPolicy", "s3:deletebucket", "s3:PutBucketAcl"],
            want: json!({"Statement": [{"Effect": "Allow", "Action": ["s3:Put*", "s3:GetObject"], "Resource": "*"}]}),
            want_summary: summary(
                json!([{"statement": "#1", "action": "s3:DeleteBucket"}]),
                json!([]),
                json!([]),
                json!([]),
                json!([{"statement": "#1", "action": "s3:Put*", "reason": "covers-unused-actions",
                        "covers": ["s3:PutBucketAcl", "s3:PutBucketPolicy"]}]),
            ),
        },
        Case {
            name: "globs spanning services are kept and reported only when they reach an unused one",
            policy: json!({"Statement": [{"Sid": "ReadAll", "Effect": "Allow",
                "Action": ["*:Get*", "ec2*:Describe*", "*Describe*", "?ms:List*"], "Resource": "*"}]}),
            unused: &["kms"],
            unused_actions: &[],
            want: json!({"Statement": [{"Sid": "ReadAll", "Effect": "Allow",
                "Action": ["*:Get*", "ec2*:Describe*", "*Describe*", "?ms:List*"], "Resource": "*"}]}),
            want_summary: summary(
                json!([]),
                json!([]),
                json!([]),
                json!([]),
                json!([
                {"statement": "ReadAll", "action": "*:Get*", "reason": "spans-services", "covers": ["kms"]},
                {"statement": "ReadAll", "action": "*Describe*", "reason": "spans-services", "covers": ["kms"]},
                {"statement": "ReadAll", "action": "?ms:List*", "reason": "spans-services", "covers": ["kms"]}]),
            ),
        },
        Case {
            name: "Deny statements are kept verbatim, even all of an unused service",
            policy: json!({"Statement": [
                {"Effect": "Deny", "Action": ["kms:ScheduleKeyDeletion", "kms:*"], "Resource": "*"},
                {"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*",
                 "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}]}),
            unused: &["kms", "s3"],
            unused_actions: &["s3:GetObject"],
            want: json!({"Statement": [
                {"Effect": "Deny", "Action": ["kms:ScheduleKeyDeletion", "kms:*"], "Resource": "*"},
                {"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*",
                 "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}]}),
            want_summary: summary(json!([]), json!([]), json!([]), json!([]), json!([])),
        },
        Case {
            name: "nothing unused: nothing changes",
            policy: app_policy(),
            unused: &[],
            unused_actions: &[],
            want: app_policy(),
            want_summary: summary(json!([]), json!([]), json!([]), json!([]), json!([])),
        },
    ]
}

#[test]
fn suggestions_over_real_world_shapes() {
    for case in cases() {
        let s = suggest(&[("p".into(), doc(case.policy.clone()))], &names(case.unused), &names(case.unused_actions));
        let draft = &s.drafts[0];
        assert_eq!(serde_json::to_value(&draft.document).unwrap(), case.want, "{}", case.name);
        assert_eq!(serde_json::to_value(&draft.summary).unwrap(), case.want_summary, "{}", case.name);
        assert_eq!(draft.changed, case.want != case.policy, "{}", case.name);
    }
}

#[test]
fn the_suggestion_is_one_named_draft_per_source_ready_for_review() {
    let docs = vec![
        ("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".to_string(), doc(s3_read_only())),
        ("payments-inline".to_string(), doc(app_policy())),
    ];
    let s = suggest(&docs, &names(&["sqs", "kms", "sqs"]), &names(&["s3:CreateBucket"]));
    let v: Value = serde_json::from_str(&serde_json::to_string_pretty(&s).unwrap()).unwrap();
    assert_eq!(v["unusedServices"], json!(["kms", "sqs"]), "sorted, deduplicated");
    assert_eq!(v["unusedActions"], json!(["s3:CreateBucket"]));
    assert_eq!(v["drafts"][0]["source"], "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess");
    assert_eq!(v["drafts"][0]["changed"], false);
    assert_eq!(v["drafts"][0]["document"], s3_read_only(), "unchanged drafts are still shown in full");
    assert_eq!(v["drafts"][1]["source"], "payments-inline");
    assert_eq!(v["drafts"][1]["changed"], true);
    assert_eq!(v["drafts"][1]["summary"]["removedStatements"], json!(["Keys", "Queue"]));
    assert_eq!(v["drafts"][1]["document"]["Statement"][0]["Action"], json!(["s3:GetObject", "s3:PutObject"]));
}

// ---------------------------------------------------------------------------------------------------
// The properties: a draft never widens, unused services are gone unless reported, nothing used goes.

/// 205 real actions across 27 services, as `(service, "Action Action ...")`; a service may take
/// several lines.
const CATALOG: &[(&str, &str)] = &[
    ("s3", "GetObject PutObject DeleteObject ListBucket GetBucketPolicy PutBucketPolicy CreateBucket DeleteBucket"),
    ("s3", "GetObjectAcl PutObjectAcl PutBucketAcl ListAllMyBuckets GetBucketLocation AbortMultipartUpload"),
    ("s3", "GetBucketTagging PutLifecycleConfiguration ListMultipartUploadParts"),
    ("s3-object-lambda", "GetObject ListBucket WriteGetObjectResponse"),
    ("ec2", "DescribeInstances RunInstances TerminateInstances CreateTags DescribeNetworkInterfaces"),
    ("ec2", "AttachNetworkInterface AssignPrivateIpAddresses DescribeSubnets DescribeSecurityGroups"),
    ("ec2", "AuthorizeSecurityGroupIngress CreateSnapshot DeleteVolume DescribeVpcs CreateVolume AttachVolume"),
    ("ec2", "DescribeImages ModifyInstanceAttribute"),
    ("iam", "GetRole PassRole CreateRole DeleteRole ListRoles PutRolePolicy AttachRolePolicy CreateServiceLinkedRole"),
    ("iam", "GetPolicyVersion ListAttachedRolePolicies TagRole ListRolePolicies GetRolePolicy UpdateAssumeRolePolicy"),
    ("iam", "GetOpenIDConnectProvider"),
    ("kms", "Decrypt Encrypt GenerateDataKey GenerateDataKeyWithoutPlaintext DescribeKey CreateGrant"),
    ("kms", "ScheduleKeyDeletion GetKeyPolicy ListKeys ReEncryptFrom ListAliases TagResource"),
    ("sqs", "SendMessage ReceiveMessage DeleteMessage GetQueueUrl GetQueueAttributes ChangeMessageVisibility"),
    ("sqs", "CreateQueue PurgeQueue ListQueues TagQueue"),
    ("sns", "Publish Subscribe CreateTopic DeleteTopic ListTopics GetTopicAttributes SetTopicAttributes Unsubscribe"),
    ("dynamodb", "GetItem PutItem Query Scan UpdateItem DeleteItem BatchGetItem BatchWriteItem DescribeTable"),
    ("dynamodb", "CreateTable DeleteTable ListTables DescribeStream GetRecords"),
    ("lambda", "InvokeFunction GetFunction CreateFunction UpdateFunctionCode DeleteFunction ListFunctions"),
    ("lambda", "AddPermission GetFunctionConfiguration PublishVersion TagResource"),
    ("logs", "CreateLogGroup CreateLogStream PutLogEvents DescribeLogGroups DescribeLogStreams GetLogEvents"),
    ("logs", "FilterLogEvents DeleteLogGroup PutRetentionPolicy"),
    ("cloudwatch", "PutMetricData GetMetricData GetMetricStatistics ListMetrics DescribeAlarms PutMetricAlarm"),
    ("sts", "AssumeRole GetCallerIdentity AssumeRoleWithWebIdentity TagSession GetSessionToken"),
    ("secretsmanager", "GetSecretValue DescribeSecret ListSecrets PutSecretValue CreateSecret DeleteSecret"),
    ("secretsmanager", "RotateSecret TagResource"),
    ("ssm", "GetParameter GetParameters GetParametersByPath PutParameter DeleteParameter DescribeParameters"),
    ("ssm", "SendCommand StartSession GetParameterHistory"),
    ("ecr", "GetAuthorizationToken BatchGetImage GetDownloadUrlForLayer BatchCheckLayerAvailability PutImage"),
    ("ecr", "InitiateLayerUpload DescribeRepositories CreateRepository"),
    ("eks", "DescribeCluster ListClusters ListPodIdentityAssociations DescribePodIdentityAssociation"),
    ("eks", "CreatePodIdentityAssociation AccessKubernetesApi DescribeAddon ListNodegroups"),
    ("rds", "DescribeDBInstances CreateDBInstance DeleteDBInstance ModifyDBInstance CreateDBSnapshot"),
    ("rds", "DescribeDBClusters"),
    ("rds-db", "connect"),
    ("elasticloadbalancing", "DescribeLoadBalancers CreateLoadBalancer RegisterTargets DeregisterTargets"),
    ("elasticloadbalancing", "ModifyListener DescribeTargetGroups"),
    ("route53", "ChangeResourceRecordSets ListHostedZones GetChange ListResourceRecordSets GetHostedZone"),
    ("route53", "ListTagsForResource"),
    ("cloudformation", "DescribeStacks CreateStack UpdateStack DeleteStack ListStacks"),
    ("xray", "PutTraceSegments PutTelemetryRecords GetSamplingRules GetSamplingTargets"),
    ("events", "PutEvents PutRule PutTargets DescribeRule ListRules"),
    ("states", "StartExecution DescribeExecution ListStateMachines SendTaskSuccess StopExecution"),
    ("organizations", "DescribeOrganization ListAccounts"),
    ("account", "GetAccountInformation ListRegions"),
    ("autoscaling", "DescribeAutoScalingGroups SetDesiredCapacity UpdateAutoScalingGroup"),
    ("autoscaling", "TerminateInstanceInAutoScalingGroup"),
];

const VERBS: &[&str] = &["Get", "List", "Describe", "Put", "Create", "Delete", "Update", "Tag", "Batch", "Send"];
const NOUNS: &[&str] = &["Object", "Bucket", "Key", "Queue", "Item", "Function", "Role", "Secret", "Parameter", ""];

/// A deterministic pseudo-random source (Knuth's MMIX LCG): reproducible failures, no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() % items.len()]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.next() % 100 < percent
    }
    /// IAM compares actions without case; so do users, inconsistently.
    fn mangle_case(&mut self, text: &str) -> String {
        match self.next() % 4 {
            0 => text.to_ascii_uppercase(),
            1 => text.to_ascii_lowercase(),
            _ => text.to_string(),
        }
    }
}

fn catalog() -> Vec<String> {
    CATALOG.iter().flat_map(|(service, names)| names.split(' ').map(move |name| format!("{service}:{name}"))).collect()
}

fn services() -> Vec<&'static str> {
    let mut all: Vec<&str> = CATALOG.iter().map(|(service, _)| *service).collect();
    all.sort();
    all.dedup();
    all
}

/// An action that may or may not exist, in a catalog service or a service nobody listed.
fn random_action(rng: &mut Lcg) -> String {
    let service = if rng.chance(90) { *rng.pick(&services()) } else { *rng.pick(&["kinesis", "glue", "k"]) };
    let action = format!("{service}:{}{}", rng.pick(VERBS), rng.pick(NOUNS));
    rng.mangle_case(&action)
}

/// The patterns people write, from exact actions to globs spanning every service.
fn random_pattern(rng: &mut Lcg) -> String {
    let service = *rng.pick(&services());
    let action = rng.pick(&catalog()).clone();
    let verb = rng.pick(VERBS);
    let pattern = match rng.next() % 12 {
        0..=3 => action.clone(),
        4 => format!("{service}:*"),
        5 => format!("{service}:{verb}*"),
        6 => format!("{service}:?{}", &action[action.find(':').unwrap() + 2..]),
        7 => "*".to_string(),
        8 => format!("*:{verb}*"),
        9 => format!("*{}", rng.pick(NOUNS)),
        10 => format!("{}*:{verb}*", &service[..1]),
        _ => format!("{}?{}:*", &service[..1], &service[2.min(service.len())..]),
    };
    rng.mangle_case(&pattern)
}

fn random_policy(rng: &mut Lcg) -> PolicyDocument {
    let statements = (0..1 + rng.next() % 4)
        .map(|_| {
            let patterns: Vec<String> = (0..1 + rng.next() % 4).map(|_| random_pattern(rng)).collect();
            let mut statement = json!({"Effect": if rng.chance(80) { "Allow" } else { "Deny" }, "Resource": "*"});
            statement[if rng.chance(80) { "Action" } else { "NotAction" }] = json!(patterns);
            if rng.chance(30) {
                statement["Condition"] = json!({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}});
            }
            statement
        })
        .collect::<Vec<_>>();
    doc(json!({"Version": "2012-10-17", "Statement": statements}))
}

/// What the role may do: IAM evaluates all of a role's policies together (any Allow, no Deny anywhere).
fn role_allows(docs: &[Option<&PolicyDocument>], action: &str) -> bool {
    let docs: Vec<&PolicyDocument> = docs.iter().flatten().copied().collect();
    let any = |effect| docs.iter().flat_map(|d| &d.statements).any(|s| s.effect == effect && s.actions.matches(action));
    any(Effect::Allow) && !any(Effect::Deny)
}

/// Whether some Allow statement matches, whatever the Deny statements say: with conditions ignored, a
/// conditional Deny would hide a widened Allow from [`allows`], so both are compared.
fn grants(d: &PolicyDocument, action: &str) -> bool {
    d.statements.iter().any(|s| s.effect == Effect::Allow && s.actions.matches(action))
}

/// `Err` names an action the drafts allow and the originals do not, for one policy or the whole role.
fn never_widens(
    originals: &[PolicyDocument],
    drafts: &[Option<PolicyDocument>],
    actions: &[String],
) -> Result<(), String> {
    let before: Vec<Option<&PolicyDocument>> = originals.iter().map(Some).collect();
    let after: Vec<Option<&PolicyDocument>> = drafts.iter().map(Option::as_ref).collect();
    for action in actions {
        for (i, (original, draft)) in originals.iter().zip(drafts).enumerate() {
            let Some(draft) = draft else { continue };
            let widens = |f: fn(&PolicyDocument, &str) -> bool| f(draft, action) && !f(original, action);
            if widens(allows) || widens(grants) {
                return Err(format!("draft {i} allows {action}, its original does not"));
            }
        }
        if role_allows(&after, action) && !role_allows(&before, action) {
            return Err(format!("the role's drafts allow {action}, its policies do not"));
        }
    }
    Ok(())
}

/// `Err` names an unused service's action (or an unused action) a draft still allows without saying so.
fn unused_gone_unless_reported(suggestion: &Suggestion, actions: &[String]) -> Result<(), String> {
    for action in actions {
        let service = action.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        let unused = service.is_some_and(|s| suggestion.unused_services.contains(&s))
            || suggestion.unused_actions.iter().any(|a| a.eq_ignore_ascii_case(action));
        if !unused {
            continue;
        }
        for draft in &suggestion.drafts {
            let Some(d) = &draft.document else { continue };
            let allowed_by = grants(d, action);
            let reported = draft.summary.not_narrowed.iter().any(|n| glob_match(&n.action, action));
            if allowed_by && !reported {
                return Err(format!("{}: an Allow still matches unused {action} and is not reported", draft.source));
            }
        }
    }
    Ok(())
}

/// `Err` names a used action (neither of an unused service nor an unused action) that the drafts treat
/// differently from the originals: the drafts take away only what was reported unused.
fn keeps_everything_used(originals: &[PolicyDocument], s: &Suggestion, actions: &[String]) -> Result<(), String> {
    for action in actions {
        let service = action.split_once(':').map(|(svc, _)| svc.to_ascii_lowercase());
        if service.is_some_and(|svc| s.unused_services.contains(&svc))
            || s.unused_actions.iter().any(|a| a.eq_ignore_ascii_case(action))
        {
            continue;
        }
        for (original, draft) in originals.iter().zip(&s.drafts) {
            let kept = |f: fn(&PolicyDocument, &str) -> bool| draft.document.as_ref().is_some_and(|d| f(d, action));
            if kept(allows) != allows(original, action) || kept(grants) != grants(original, action) {
                return Err(format!("{}: used {action} is treated differently by the draft", draft.source));
            }
        }
    }
    Ok(())
}

fn checked_actions(rng: &mut Lcg) -> Vec<String> {
    let mut actions = catalog();
    actions.extend((0..200).map(|_| random_action(rng)));
    actions
}

#[test]
fn drafts_never_widen_and_drop_unused_services_unless_reported() {
    let mut rng = Lcg(0x1a2b_3c4d);
    let actions = checked_actions(&mut rng);
    let all_services = services();
    for round in 0..300 {
        let originals: Vec<PolicyDocument> = (0..1 + rng.next() % 3).map(|_| random_policy(&mut rng)).collect();
        let unused: Vec<String> = (0..1 + rng.next() % 4).map(|_| rng.pick(&all_services).to_string()).collect();
        let unused_actions: Vec<String> = (0..rng.next() % 4).map(|_| rng.pick(&catalog()).clone()).collect();
        let sources: Vec<(String, PolicyDocument)> =
            originals.iter().enumerate().map(|(i, d)| (format!("policy-{i}"), d.clone())).collect();
        let s = suggest(&sources, &unused, &unused_actions);
        let drafts: Vec<Option<PolicyDocument>> = s.drafts.iter().map(|d| d.document.clone()).collect();
        let context = || format!("round {round}, unused {unused:?} {unused_actions:?}, policies {originals:#?}");

        if let Err(e) = never_widens(&originals, &drafts, &actions) {
            panic!("{e}\n{}", context());
        }
        if let Err(e) = unused_gone_unless_reported(&s, &actions) {
            panic!("{e}\n{}", context());
        }
        if let Err(e) = keeps_everything_used(&originals, &s, &actions) {
            panic!("{e}\n{}", context());
        }
        for (original, draft) in originals.iter().zip(&drafts) {
            let denies = |d: &PolicyDocument| {
                d.statements.iter().filter(|s| s.effect == Effect::Deny).cloned().collect::<Vec<_>>()
            };
            assert_eq!(draft.as_ref().map(denies).unwrap_or_default(), denies(original), "Deny kept\n{}", context());
        }
        // A second run over the drafts has nothing left to do.
        let again: Vec<(String, PolicyDocument)> =
            s.drafts.iter().filter_map(|d| Some((d.source.clone(), d.document.clone()?))).collect();
        let second = suggest(&again, &unused, &unused_actions);
        assert!(second.drafts.iter().all(|d| !d.changed), "second run changed something\n{}", context());
    }
}

#[test]
fn the_property_checks_catch_widening_drafts() {
    let mut rng = Lcg(7);
    let actions = checked_actions(&mut rng);
    let original = doc(s3_read_only());

    // A draft that swaps `s3:Get*` for `s3:*`.
    let widened = doc(json!({"Statement": [{"Effect": "Allow", "Action": ["s3:*", "s3:List*"], "Resource": "*"}]}));
    let err = never_widens(std::slice::from_ref(&original), &[Some(widened)], &actions).unwrap_err();
    assert!(err.contains("draft 0 allows s3:PutObject"), "{err}");

    // A draft that turns a plain Action list into NotAction, as if it were `*`.
    let inverted = doc(json!({"Statement": [{"Effect": "Allow", "NotAction": "kms:*", "Resource": "*"}]}));
    assert!(never_widens(std::slice::from_ref(&original), &[Some(inverted)], &actions).is_err());

    // A draft that drops another policy's Deny: each draft alone is narrower, the role is not.
    let guard = doc(json!({"Statement": [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]}));
    let err = never_widens(&[original.clone(), guard], &[Some(original.clone()), None], &actions).unwrap_err();
    assert!(err.contains("the role's drafts allow s3:GetObject"), "{err}");

    // A draft that keeps an unused service without reporting it.
    let mut s = suggest(&[("p".into(), doc(app_policy()))], &names(&["kms"]), &[]);
    assert!(unused_gone_unless_reported(&s, &actions).is_ok());
    s.drafts[0].document = Some(doc(app_policy()));
    let err = unused_gone_unless_reported(&s, &actions).unwrap_err();
    assert!(err.contains("unused kms:"), "{err}");

    // A draft that takes away more than what is unused.
    let originals = [doc(s3_read_only())];
    let mut s = suggest(&[("p".into(), originals[0].clone())], &names(&["s3"]), &[]);
    assert!(keeps_everything_used(&originals, &s, &actions).is_ok());
    s.drafts[0].document = None;
    let err = keeps_everything_used(&originals, &s, &actions).unwrap_err();
    assert!(err.contains("used s3-object-lambda:GetObject"), "{err}");
}

#[test]
fn may_match_service_agrees_with_glob_match() {
    // Over generated patterns: whenever a pattern matches some action of a service, the prefix check says so.
    let mut rng = Lcg(42);
    let actions = checked_actions(&mut rng);
    for _ in 0..500 {
        let pattern = random_pattern(&mut rng);
        for action in &actions {
            let (service, _) = action.split_once(':').unwrap();
            if glob_match(&pattern, action) {
                assert!(may_match_service(&pattern, service), "{pattern} matches {action}");
            }
        }
    }
    assert!(!may_match_service("ec2*:Describe*", "kms"));
    assert!(!may_match_service("s3:*", "s3-object-lambda"));
    assert!(may_match_service("s3*", "s3-object-lambda"));
    assert!(!may_match_service("kms:", "kms"), "no room left for an action name");
}
