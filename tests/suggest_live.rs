//! `audit --suggest-policy` through the real binary against fake IAM (issue 5): the role's managed and
//! inline policies are read, and each draft drops the unused services without ever allowing more.

mod support;

use serde_json::{Value, json};
use support::cli::Cmd;
use support::eks::FakeEks;
use support::fixtures::{pod, service_account};
use support::iam::{FakeIam, RoleSpec};
use support::kube_api::FakeKube;
use support::world::World;

const ACCOUNT: &str = "111122223333";

/// A cluster `prod` where pod `pay/app-0` runs as `role` through IRSA, read with `iam`.
fn world(iam: FakeIam, role: &str) -> World {
    let kube = FakeKube::new();
    kube.add(service_account("pay", "app").irsa(role).build());
    kube.add(pod("pay", "app-0").service_account("app").irsa(role).build());
    let eks = FakeEks::new();
    eks.add_cluster("prod", "us-west-2", ACCOUNT);
    support::world::start_prod(kube, eks, iam, "pay")
}

#[test]
fn drafts_drop_unused_services_from_managed_and_inline_policies() {
    let iam = FakeIam::new(ACCOUNT);
    iam.job_delay(std::time::Duration::from_millis(10));
    let recent = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let inline = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Queue", "Effect": "Allow", "Action": ["sqs:SendMessage", "kms:Decrypt"], "Resource": "*"},
        {"Sid": "Keys", "Effect": "Allow", "Action": "kms:*", "Resource": "*"},
        {"Sid": "NoDelete", "Effect": "Deny", "Action": "sqs:DeleteQueue", "Resource": "*"},
    ]});
    let role = iam.add_role(
        RoleSpec::new("app")
            .inline("app", inline)
            .attach("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
            .last_used(&recent, "us-west-2"),
    );
    iam.set_usage("app", "sqs", Some(&recent), None, Some("us-west-2"));
    let w = world(iam, &role);
    let iam = &w.iam;
    let run = |args: &[&str]| w.cmd().args(["audit", "--suggest-policy"]).args(args).run();
    let out = run(&["-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["kind"], "PolicySuggestionList");
    let item = &doc["items"][0];
    assert_eq!(item["roleArn"], role.as_str());
    let unused: Vec<&str> = item["unusedServices"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(unused.contains(&"kms") && unused.contains(&"s3") && !unused.contains(&"sqs"), "{unused:?}");

    let drafts = item["drafts"].as_array().unwrap();
    let by_source =
        |s: &str| drafts.iter().find(|d| d["source"] == s).unwrap_or_else(|| panic!("no draft for {s}: {doc:#}"));
    let managed = by_source("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess");
    assert!(managed["changed"].as_bool().unwrap());
    let inline = by_source("inline:app");
    let statements = inline["document"]["Statement"].as_array().unwrap();
    let text = Value::Array(statements.clone()).to_string();
    assert!(!text.contains("kms:"), "kms is gone: {text}");
    assert!(
        text.contains("sqs:SendMessage") && text.contains("sqs:DeleteQueue"),
        "used actions and Denies stay: {text}"
    );
    assert_eq!(inline["summary"]["removedStatements"], json!(["Keys"]));
    for call in ["ListAttachedRolePolicies", "GetPolicy", "GetPolicyVersion", "ListRolePolicies", "GetRolePolicy"] {
        assert!(iam.count(call) >= 1, "{call} was called");
    }
    let before = iam.requests().len();
    let table = run(&[]);
    table.assert_code(0);
    assert!(table.stdout.contains("policy inline:app") && table.stdout.contains("removes: kms:Decrypt"), "{table}");
    assert!(
        iam.requests().iter().skip(before).all(|c| !c.action.starts_with("Put")
            && !c.action.starts_with("Create")
            && !c.action.starts_with("Delete")
            && !c.action.starts_with("Attach")
            && !c.action.starts_with("Detach")),
        "IAM is never changed"
    );

    let offline = Cmd::new().args(["--snapshot", "examples/demo-snapshot.json", "audit", "--suggest-policy"]).run();
    offline.assert_code(2);
}

/// Names IAM hands back (a statement's Sid, an action in a policy document) are escaped in the suggestions
/// view: a policy written to take over the reader's terminal shows as text.
#[test]
fn the_suggestions_view_escapes_what_iam_returns() {
    const EVIL: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J";
    let iam = FakeIam::new(ACCOUNT);
    iam.job_delay(std::time::Duration::from_millis(10));
    let recent = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let inline = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Queue", "Effect": "Allow", "Action": ["sqs:SendMessage", format!("kms:Decrypt{EVIL}")], "Resource": "*"},
        {"Sid": format!("Keys{EVIL}"), "Effect": "Allow", "Action": "kms:*", "Resource": "*"},
    ]});
    let role = iam.add_role(RoleSpec::new("app").inline("app", inline).last_used(&recent, "us-west-2"));
    iam.set_usage("app", "sqs", Some(&recent), None, Some("us-west-2"));
    let w = world(iam, &role);
    let out = w.cmd().args(["audit", "--suggest-policy", "--color", "never"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains("policy inline:app"), "{out}");
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{7}'),
        "escape sequences reached stdout: {out:?}"
    );
    assert!(out.stdout.contains("Keys\\u{1b}]0;pwned"), "the dropped statement shown escaped: {out}");
}
