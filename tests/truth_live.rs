//! Every verdict true (issue 9), through the real binary against the fake Kubernetes API, EKS, IAM and
//! STS: a role's status from all its evidence, binding contract v2, running pods only, what the webhook
//! really does, roles in other partitions and accounts, wildcard trust, and bounded waits.

mod support;

use serde_json::{Value, json};
use support::cli::Output;
use support::fixtures::{job, pod, service_account};
use support::iam::{RoleSpec, allow, irsa_trust};
use support::kube_api::Fault;
use support::world::{ACCOUNT, Fakes};

const OTHER: &str = "444455556666";
const AUDITOR: &str = "arn:aws:iam::444455556666:role/auditor";

fn json_of(out: &Output) -> Value {
    out.assert_code(0);
    out.json()
}

fn items(doc: &Value) -> &Vec<Value> {
    doc["items"].as_array().unwrap_or_else(|| panic!("no items in {doc:#}"))
}

fn item<'a>(doc: &'a Value, sa: &str, role: &str) -> &'a Value {
    items(doc)
        .iter()
        .find(|i| i["serviceAccount"] == sa && i["roleArn"] == role)
        .unwrap_or_else(|| panic!("no item {sa} {role} in {doc:#}"))
}

fn codes(v: &Value) -> Vec<&str> {
    v["problems"].as_array().into_iter().flatten().map(|p| p["code"].as_str().unwrap()).collect()
}

fn audit_role<'a>(doc: &'a Value, arn: &str) -> &'a Value {
    let roles = doc["roles"].as_array().unwrap_or_else(|| panic!("no roles in {doc:#}"));
    roles.iter().find(|r| r["roleArn"] == arn).unwrap_or_else(|| panic!("no role {arn} in {doc:#}"))
}

/// A `DoctorReport`'s problems as (code, object).
fn doctor_findings(doc: &Value) -> Vec<(&str, &str)> {
    let problems = doc["problems"].as_array().unwrap_or_else(|| panic!("no problems list in {doc:#}"));
    problems.iter().map(|p| (p["code"].as_str().unwrap(), p["object"].as_str().unwrap())).collect()
}

#[test]
fn a_role_used_yesterday_without_role_last_used_is_used_everywhere() {
    let f = Fakes::new();
    // GetRole carries no RoleLastUsed (IAM omits it; it lags and is regional), but S3 was used yesterday.
    let api = f.role("payments-api", &["s3:GetObject", "sqs:SendMessage"], None);
    f.used(&api, "s3", 1);
    f.irsa_app("payments", "payments-api", "api", &api);
    let w = f.start();

    let doc = json_of(&w.cmd().args(["audit", "-A", "-o", "json"]).run());
    let role = audit_role(&doc, &api);
    assert_eq!(role["status"], "unused-services", "{role:#}");
    assert_eq!(role["unusedServices"], json!(["sqs"]));
    let last: jiff::Timestamp = role["roleLastUsed"].as_str().expect("a last use").parse().unwrap();
    assert_eq!(last.to_string(), w.ago(1), "the role was used when S3 was");

    let who = w.cmd().args(["who-uses", "payments-api", "-A"]).run();
    who.assert_code(0);
    assert!(!who.stdout.contains("never used") && !who.stdout.contains("unused-role"), "{who}");
    assert!(who.stdout.contains("1 of 2 services unused: sqs"), "{who}");

    let out = w.cmd().args(["annotate", "-A"]).run();
    out.assert_code(0);
    let sa = w.kube.get("ServiceAccount", "payments", "payments-api").unwrap();
    assert_eq!(sa["metadata"]["annotations"]["iam-roles.io/unused-services"], "sqs", "{out}");
}

#[test]
fn annotate_never_writes_an_empty_finding() {
    let f = Fakes::new();
    // An idle role whose policies allow no service: unused-role, but nothing unused to write.
    let bare = f.iam.add_role(RoleSpec::new("bare"));
    f.irsa_app("web", "front", "front", &bare);
    let w = f.start();
    let doc = json_of(&w.cmd().args(["audit", "-A", "-o", "json"]).run());
    assert_eq!(audit_role(&doc, &bare)["unusedServices"], json!([]));
    let out = w.cmd().args(["annotate", "-A"]).run();
    out.assert_code(0);
    assert_eq!(w.kube.count("PATCH", "/"), 0, "no object gets an empty unused-services value: {out}");
}

#[test]
fn binding_contract_v2_configured_carried_and_completed() {
    let f = Fakes::new();
    let old = f.role("reports-v1", &["s3:GetObject"], Some(1));
    let new = f.role("reports-v2", &["s3:GetObject"], Some(1));
    // The annotation moved to v2; the running pod was created before and still carries v1.
    f.kube.add(service_account("reports", "reports").irsa(&new).build());
    f.deployment_pod("reports", "reports", "reports", |p| p.irsa(&old));
    // A CronJob's finished pod carrying an even older role: it holds nothing and reports nothing.
    let gone = f.role("reports-v0", &["s3:GetObject"], Some(300));
    f.kube.add(support::fixtures::cron_job("reports", "nightly").build());
    f.kube.add(job("reports", "nightly-2911").owner("CronJob", "nightly").build());
    f.kube.add(
        pod("reports", "nightly-2911-abcde")
            .service_account("reports")
            .owner("Job", "nightly-2911")
            .irsa(&gone)
            .phase("Succeeded")
            .build(),
    );
    let w = f.start();

    let doc = json_of(&w.cmd().args(["-A", "-o", "json"]).run());
    assert_eq!(items(&doc).len(), 2, "no item for the role only a completed pod carried: {doc:#}");
    let configured = item(&doc, "reports", &new);
    assert_eq!(configured["configured"], true);
    assert_eq!(configured["pods"], json!(["reports-7d9f4-x2m9p"]), "it gets v2 at its next restart");
    assert_eq!(configured["currentPods"], json!([]));
    assert_eq!(configured["effective"], true, "IRSA is the mechanism the running pod uses");
    let workloads: Vec<&str> =
        configured["workloads"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(workloads, ["nightly", "reports"], "the CronJob runs as v2 next time");
    let carried = item(&doc, "reports", &old);
    assert_eq!((&carried["configured"], &carried["effective"]), (&json!(false), &json!(true)));
    assert_eq!(carried["currentPods"], json!(["reports-7d9f4-x2m9p"]));
    assert_eq!(codes(carried), ["stale-pod-credentials"]);
    assert_eq!(codes(configured), Vec::<&str>::new(), "the completed pod is not stale");

    // who-uses v2 finds the workload that switches at its next restart; the table shows 0/1 pods.
    let who = w.cmd().args(["who-uses", "reports-v2", "-A"]).run();
    who.assert_code(0);
    let row = who.stdout.lines().nth(1).unwrap_or_default();
    assert!(row.contains("Deployment/reports") && row.contains(" 0/1 "), "{who}");
    let wide = w.cmd().args(["who-uses", "reports-v2", "-A", "-o", "wide"]).run();
    assert!(wide.stdout.contains("configured") && wide.stdout.contains("nightly-2911-abcde (completed)"), "{wide}");
    let who_old = json_of(&w.cmd().args(["who-uses", "reports-v1", "-A", "-o", "json"]).run());
    assert_eq!(items(&who_old).len(), 1);
    assert_eq!(items(&who_old)[0]["configured"], false);

    // The audit reads the two roles running or configured pods hold, never the completed pod's.
    let doc = json_of(&w.cmd().args(["audit", "-A", "-o", "json"]).run());
    let audited: Vec<&str> = doc["roles"].as_array().unwrap().iter().map(|r| r["roleArn"].as_str().unwrap()).collect();
    assert_eq!(audited, [old.as_str(), new.as_str()]);
}

#[test]
fn what_the_webhook_really_does() {
    let f = Fakes::new();
    let role = f.role("app", &["s3:GetObject"], Some(1));
    // Empty annotation: no IRSA at all; the pods have no workload identity (not stale).
    f.kube.add(service_account("web", "empty").annotation("eks.amazonaws.com/role-arn", "").build());
    f.deployment_pod("web", "empty", "empty", |p| p);
    // A trailing newline (a YAML `|` block): malformed, and the message says exactly why.
    f.kube.add(service_account("web", "newline").irsa(&format!("{role}\n")).build());
    // A container that sets AWS_ROLE_ARN itself without a token file: hand-set, and the webhook injected nothing.
    f.kube.add(service_account("web", "manual").build());
    f.deployment_pod("web", "manual", "manual", |p| p.env("app", "AWS_ROLE_ARN", &role));
    // automountServiceAccountToken: false does not stop the webhook: a pod without env is stale, not unbound.
    f.kube.add(service_account("web", "noautomount").irsa(&role).build());
    let mut p = pod("web", "noautomount-0").service_account("noautomount").build();
    p["spec"]["automountServiceAccountToken"] = json!(false);
    f.kube.add(p);
    let w = f.start();

    let doc = json_of(&w.cmd().args(["-n", "web", "-o", "json"]).run());
    let problems: Vec<(String, String)> = items(&doc)
        .iter()
        .flat_map(|i| i["problems"].as_array().unwrap().clone())
        .chain(doc["problems"].as_array().unwrap().clone())
        .map(|p| (p["code"].as_str().unwrap().to_string(), p["object"].as_str().unwrap().to_string()))
        .collect();
    assert!(problems.contains(&("no-workload-identity".into(), "Deployment/empty".into())), "{problems:?}");
    assert!(!items(&doc).iter().any(|i| i["serviceAccount"] == "empty"), "an empty annotation binds nothing");
    let newline = items(&doc).iter().find(|i| i["serviceAccount"] == "newline").unwrap();
    assert_eq!(codes(newline), ["malformed-role-arn"]);
    assert!(newline["problems"][0]["message"].as_str().unwrap().contains("ends with a newline"), "{newline:#}");
    assert!(problems.contains(&("hand-set-credentials".into(), "Deployment/manual".into())), "{problems:?}");
    let noauto = item(&doc, "noautomount", &role);
    assert_eq!(codes(noauto), ["stale-pod-credentials"], "{noauto:#}");
    assert!(!problems.contains(&("no-workload-identity".into(), "Pod/noautomount-0".into())));
}

#[test]
fn a_role_in_another_partition_is_never_looked_up_by_name() {
    let f = Fakes::new();
    // A role named `app` exists in the commercial partition; the service account names the aws-cn one.
    let trust = irsa_trust(ACCOUNT, "https://oidc.eks.us-west-2.amazonaws.com/id/X", "cn", "app");
    f.iam.add_role(RoleSpec::new("app").trust(trust).inline("main", allow(&["s3:*"])));
    let cn = format!("arn:aws-cn:iam::{ACCOUNT}:role/app");
    f.irsa_app("cn", "app", "app", &cn);
    let w = f.start();

    let doc = json_of(&w.cmd().args(["-A", "-o", "json"]).run());
    assert_eq!(codes(item(&doc, "app", &cn)), ["cross-partition-role"]);
    let audit = json_of(&w.cmd().args(["audit", "-A", "-o", "json"]).run());
    let role = audit_role(&audit, &cn);
    assert_eq!(
        (role["status"].as_str(), role["error"]["code"].as_str()),
        (Some("unknown"), Some("cross-partition-role"))
    );
    let doctor = json_of(&w.cmd().args(["doctor", "-A", "-o", "json"]).run());
    let found = doctor_findings(&doctor);
    assert!(found.contains(&("cross-partition-role", "ServiceAccount/app")), "{found:?}");
    assert!(!found.iter().any(|f| f.0 == "role-not-found"), "{found:?}");
    assert!(
        !found.contains(&("trust-policy-mismatch", "ServiceAccount/app")),
        "never judged by the aws role's trust policy: {found:?}"
    );
    let asked = w.iam.requests().into_iter().filter(|c| c.param("RoleName") == Some("app")).count();
    assert_eq!(asked, 0, "IAM is never asked about `app` in the wrong partition");
}

#[test]
fn doctor_judges_a_cross_account_irsa_role_by_its_own_accounts_provider_and_flags_open_trust() {
    let f = Fakes::new();
    let cluster_issuer = f.eks.add_cluster("prod", "us-west-2", ACCOUNT);
    let shared =
        f.iam.add_role(RoleSpec::new("shared").account(OTHER).trust(irsa_trust(OTHER, &cluster_issuer, "data", "etl")));
    f.iam.add_role(RoleSpec::new("auditor").account(OTHER));
    f.iam.add_oidc_provider(&cluster_issuer, &["sts.amazonaws.com"]);
    f.iam.add_oidc_provider_in(OTHER, &cluster_issuer, &["sts.amazonaws.com"]);
    f.irsa_app("data", "etl", "etl", &shared);
    // A role that trusts this service account exactly, and anyone at all in a second statement.
    let mut open = irsa_trust(ACCOUNT, &cluster_issuer, "data", "open");
    open["Statement"].as_array_mut().unwrap().push(json!({"Sid": "Everyone", "Effect": "Allow",
        "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}));
    let open = f.iam.add_role(RoleSpec::new("open").trust(open));
    f.irsa_app("data", "open", "open", &open);
    let w = f.start();

    let doc =
        json_of(&w.cmd().args(["doctor", "-A", "-o", "json", "--account-role", &format!("{OTHER}={AUDITOR}")]).run());
    let found = doctor_findings(&doc);
    assert!(!found.contains(&("trust-policy-mismatch", "ServiceAccount/etl")), "{doc:#}");
    assert!(found.contains(&("wildcard-trust", "ServiceAccount/open")), "{doc:#}");
}

#[test]
fn a_deleted_service_account_gets_a_fix_that_works() {
    let f = Fakes::new();
    let role = f.role("app", &["s3:GetObject"], Some(1));
    f.deployment_pod("web", "gone", "web", |p| p.irsa(&role));
    let w = f.start();
    let doc = json_of(&w.cmd().args(["-A", "-o", "json"]).run());
    let msg = item(&doc, "gone", &role)["problems"][0]["message"].as_str().unwrap().to_string();
    assert!(!msg.contains("rollout restart") && msg.contains("no longer exists"), "{msg}");
}

#[test]
fn a_throttling_api_server_is_waited_for_with_a_message_then_named() {
    let f = Fakes::new();
    f.kube.fault(Fault::new("/api/v1/pods", 429));
    let w = f.start();
    let out = w.cmd().args(["-A", "-o", "json"]).run();
    out.assert_code(1);
    assert!(out.stderr.contains("waiting: the API server throttled the request to list pods"), "{out}");
    assert!(out.stderr.contains("as its Retry-After asks"), "the fake sends Retry-After: 1: {out}");
    assert!(out.stderr.contains("kept throttling") && out.stderr.contains("429"), "{out}");
    let attempts = w.kube.count("GET", "/api/v1/pods");
    assert!((2..=6).contains(&attempts), "bounded: {attempts} attempts");
}

#[test]
fn log_lines_are_plain_on_a_redirected_stderr_and_aws_errors_are_sentences() {
    let f = Fakes::new();
    f.irsa_app("web", "front", "front", "arn:aws:iam::111122223333:role/app");
    let w = f.start();
    // EKS answers nothing: its endpoint is a closed port.
    let out =
        w.cmd().env("AWS_ENDPOINT_URL_EKS", "http://127.0.0.1:9").env("IAM_ROLES_LOG", "debug").args(["-A"]).run();
    assert!(!out.stderr.contains('\u{1b}'), "no escape codes on a redirected stderr: {out}");
    let warnings: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("warning:")).collect();
    assert!(!warnings.is_empty(), "{out}");
    for line in warnings {
        assert!(!line.contains(" { ") && !line.contains("DispatchFailure"), "a Rust debug dump: {line}");
    }
}
