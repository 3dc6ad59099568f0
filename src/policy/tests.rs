//! Policy documents over real-world shapes, and the property that a draft never widens.

use serde_json::{Value, json};

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

mod properties;
