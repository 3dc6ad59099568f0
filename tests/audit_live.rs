//! `audit` through the real binary against the fake Kubernetes API, EKS, IAM and STS (issue 3): the
//! `AuditReport` of SPEC section 3, the Access Advisor job protocol of SPEC section 5, per-role errors,
//! throttling, cross-account roles, the cache and offline snapshots. Usage times are relative to the moment
//! a test builds its fakes, so "used" and "stale" do not drift with the calendar.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use support::cli::{Cmd, Output};
use support::fixtures::{pod, service_account};
use support::iam::{Call, FakeIam, Fault, RoleSpec, allow};
use support::world::{Fakes, World};
const OTHER: &str = "444455556666";
const AUDITOR: &str = "arn:aws:iam::444455556666:role/auditor";
const API: &str = "arn:aws:iam::111122223333:role/payments-api";
const CHECKOUT: &str = "arn:aws:iam::111122223333:role/checkout";
const LEGACY: &str = "arn:aws:iam::111122223333:role/legacy-reports";
const IDLE: &str = "arn:aws:iam::111122223333:role/idle-batch";
const GENERATE: &str = "GenerateServiceLastAccessedDetails";
const GET_DETAILS: &str = "GetServiceLastAccessedDetails";

/// How the audit tests run the binary.
trait AuditRun {
    fn audit(&self, args: &[&str]) -> Value;
    fn audit_with(&self, cmd: Cmd, args: &[&str]) -> Value;
}

impl AuditRun for World {
    /// `audit -A -o json ARGS`, which must exit 0; returns the report with its times normalised.
    fn audit(&self, args: &[&str]) -> Value {
        self.audit_with(self.cmd(), args)
    }

    fn audit_with(&self, cmd: Cmd, args: &[&str]) -> Value {
        let out = cmd.args(["audit", "-A", "-o", "json"]).args(args).run();
        report(&out)
    }
}

/// The report of a run that must succeed, with every time rewritten as jiff writes it (whole seconds, `Z`)
/// once it parsed as RFC 3339, so documents compare by value.
fn report(out: &Output) -> Value {
    out.assert_code(0);
    let mut doc = out.json();
    normalise_times(&mut doc);
    doc
}

fn normalise_times(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if matches!(key.as_str(), "generatedAt" | "roleLastUsed" | "lastAuthenticated") {
                    if let Some(text) = value.as_str() {
                        let at: Timestamp =
                            text.parse().unwrap_or_else(|e| panic!("{key} {text:?} is not RFC 3339 ({e})"));
                        *value = json!(at.to_string());
                    }
                } else {
                    normalise_times(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise_times),
        _ => {}
    }
}

fn roles(doc: &Value) -> &Vec<Value> {
    doc["roles"].as_array().unwrap_or_else(|| panic!("no roles list in {doc:#}"))
}

fn role<'a>(doc: &'a Value, arn: &str) -> &'a Value {
    roles(doc).iter().find(|r| r["roleArn"] == arn).unwrap_or_else(|| panic!("no role {arn} in {doc:#}"))
}

fn arns(doc: &Value) -> Vec<&str> {
    roles(doc).iter().map(|r| r["roleArn"].as_str().expect("roleArn is a string")).collect()
}

fn service<'a>(role: &'a Value, namespace: &str) -> &'a Value {
    let services = role["services"].as_array().unwrap_or_else(|| panic!("no services in {role:#}"));
    services.iter().find(|s| s["namespace"] == namespace).unwrap_or_else(|| panic!("no {namespace} in {role:#}"))
}

fn unused(doc: &Value, arn: &str) -> Value {
    role(doc, arn)["unusedServices"].clone()
}

fn error_code<'a>(doc: &'a Value, arn: &str) -> Option<&'a str> {
    role(doc, arn)["error"]["code"].as_str()
}

fn error_message<'a>(doc: &'a Value, arn: &str) -> &'a str {
    let r = role(doc, arn);
    r["error"]["message"].as_str().unwrap_or_else(|| panic!("no error message on {r:#}"))
}

/// IAM calls of `action` about `arn` (`Arn` parameter, or the role name in `RoleName`).
fn calls_about(iam: &FakeIam, action: &str, arn: &str) -> Vec<Call> {
    let name = arn.rsplit('/').next().unwrap_or_default();
    let about = |c: &Call| c.param("Arn") == Some(arn) || c.param("RoleName") == Some(name);
    iam.requests().into_iter().filter(|c| c.action == action && about(c)).collect()
}

/// Successful Generate calls per role ARN.
fn generated(iam: &FakeIam) -> BTreeMap<String, usize> {
    let mut per_role = BTreeMap::new();
    for call in iam.requests().into_iter().filter(|c| c.action == GENERATE && c.status == 200) {
        *per_role.entry(call.param("Arn").unwrap_or_default().to_string()).or_default() += 1;
    }
    per_role
}

/// Every Get call is made with the key that generated its job, and is answered (faults and throttling aside).
fn assert_jobs_read_by_their_creator(iam: &FakeIam) {
    let owners: BTreeMap<String, String> = iam.jobs().into_iter().map(|j| (j.id, j.owner_key)).collect();
    let gets: Vec<Call> = iam.requests().into_iter().filter(|c| c.action == GET_DETAILS).collect();
    assert!(!gets.is_empty(), "no job was read");
    for call in gets {
        let job = call.param("JobId").unwrap_or_default();
        let owner = owners.get(job).unwrap_or_else(|| panic!("read of a job never generated: {job}"));
        assert_eq!(call.access_key.as_deref(), Some(owner.as_str()), "job {job} read with another key");
        assert!(call.status == 200 || call.status >= 500 || call.error.as_deref() == Some("Throttling"), "{call:?}");
    }
}

fn binding(ns: &str, sa: &str, source: &str, kind: &str, name: &str) -> Value {
    json!({ "namespace": ns, "serviceAccount": sa, "source": source, "workloads": [{ "kind": kind, "name": name }] })
}

fn svc(namespace: &str, name: &str, last: Option<&str>, state: &str) -> Value {
    json!({ "namespace": namespace, "name": name, "lastAuthenticated": last, "state": state, "unusedActions": null })
}

/// A small shop: a role with used, stale and never-used services (IRSA), a fully used role (Pod Identity),
/// a role last used long ago and a role never used; plus a malformed annotation and a pod with no identity.
fn shop() -> Fakes {
    let f = Fakes::new();
    f.role("payments-api", &["s3:GetObject", "sqs:SendMessage", "kms:Decrypt", "dynamodb:GetItem"], Some(1));
    f.used("payments-api", "s3", 2);
    f.used("payments-api", "dynamodb", 30);
    f.used("payments-api", "sqs", 120);
    f.irsa_app("payments", "payments-api", "api", API);

    f.role("checkout", &["s3:GetObject"], Some(3));
    f.used("checkout", "s3", 3);
    f.pod_identity_app("checkout", "checkout", "checkout", CHECKOUT, None);

    f.role("legacy-reports", &["sqs:ReceiveMessage"], Some(200));
    f.used("legacy-reports", "sqs", 200);
    f.irsa_app("reports", "legacy-reports", "exporter", LEGACY);

    f.role("idle-batch", &["logs:PutLogEvents"], None);
    f.irsa_app("batch", "idle", "nightly", IDLE);

    f.kube.add(service_account("ml", "trainer").irsa("trainer-role").build());
    f.kube.add(pod("ml", "train-0").service_account("trainer").build());
    f.kube.add(pod("plain", "web-0").build());
    f
}

/// What the shop's four roles must report with `--unused-days 90`.
fn shop_expectations(w: &World) -> [(&'static str, Value); 4] {
    let api = json!({
        "roleArn": API, "roleLastUsed": w.ago(1), "status": "unused-services",
        "services": [
            svc("dynamodb", "Amazon DynamoDB", Some(&w.ago(30)), "used"),
            svc("kms", "AWS Key Management Service", None, "never-used"),
            svc("s3", "Amazon S3", Some(&w.ago(2)), "used"),
            svc("sqs", "Amazon SQS", Some(&w.ago(120)), "stale"),
        ],
        "unusedServices": ["kms", "sqs"],
        "bindings": [binding("payments", "payments-api", "irsa", "Deployment", "api")],
        "error": null,
    });
    let checkout = json!({
        "roleArn": CHECKOUT, "roleLastUsed": w.ago(3), "status": "ok",
        "services": [svc("s3", "Amazon S3", Some(&w.ago(3)), "used")],
        "unusedServices": [],
        "bindings": [binding("checkout", "checkout", "pod-identity", "Deployment", "checkout")],
        "error": null,
    });
    let legacy = json!({
        "roleArn": LEGACY, "roleLastUsed": w.ago(200), "status": "unused-role",
        "services": [svc("sqs", "Amazon SQS", Some(&w.ago(200)), "stale")],
        "unusedServices": ["sqs"],
        "bindings": [binding("reports", "legacy-reports", "irsa", "Deployment", "exporter")],
        "error": null,
    });
    let idle = json!({
        "roleArn": IDLE, "roleLastUsed": null, "status": "unused-role",
        "services": [svc("logs", "Amazon CloudWatch Logs", None, "never-used")],
        "unusedServices": ["logs"],
        "bindings": [binding("batch", "idle", "irsa", "Deployment", "nightly")],
        "error": null,
    });
    [(API, api), (CHECKOUT, checkout), (LEGACY, legacy), (IDLE, idle)]
}

fn assert_shop_roles(w: &World, doc: &Value) {
    for (arn, expected) in shop_expectations(w) {
        assert_eq!(role(doc, arn), &expected, "role {arn}");
    }
}

#[test]
fn report_follows_the_contract() {
    let w = shop().start();
    let before = Timestamp::now();
    let doc = w.audit(&[]);
    let after = Timestamp::now();

    assert_eq!(doc["apiVersion"], "iam-roles/v1");
    assert_eq!(doc["kind"], "AuditReport");
    assert_eq!(doc["cluster"], "prod", "cluster name inferred from the EKS context");
    assert_eq!(doc["unusedDays"], 90);
    let generated_at: Timestamp = doc["generatedAt"].as_str().expect("generatedAt").parse().expect("RFC 3339");
    let slack = SignedDuration::from_secs(2);
    assert!(generated_at >= before - slack && generated_at <= after + slack, "generatedAt {generated_at}");
    let keys: Vec<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "exactly the AuditReport fields, nothing omitted or extra: {keys:?}");

    assert_shop_roles(&w, &doc);
    let listed = arns(&doc);
    assert!(listed.is_sorted(), "roles sorted by ARN: {listed:?}");
    let well_formed: Vec<&str> = listed.iter().copied().filter(|a| a.starts_with("arn:")).collect();
    assert_eq!(well_formed, [CHECKOUT, IDLE, LEGACY, API], "every distinct role bound in scope, once");
    // A malformed ARN is never sent to IAM, but it is listed: `unknown`, with the reason.
    let malformed: Vec<&str> = listed.iter().copied().filter(|a| !a.starts_with("arn:")).collect();
    assert_eq!(malformed, ["trainer-role"], "the malformed binding is reported, not dropped");
    assert_eq!(role(&doc, "trainer-role")["status"], "unknown");
    assert_eq!(error_code(&doc, "trainer-role"), Some("malformed-role-arn"));
    assert!(w.iam.requests().iter().all(|c| !c.params.iter().any(|(_, v)| v.contains("trainer-role"))));

    let per_role = generated(&w.iam);
    assert_eq!(per_role.keys().collect::<Vec<_>>(), [CHECKOUT, IDLE, LEGACY, API], "one job per role");
    assert!(per_role.values().all(|n| *n == 1), "one job per role: {per_role:?}");
    let generates: Vec<Call> = w.iam.requests().into_iter().filter(|c| c.action == GENERATE).collect();
    assert!(generates.iter().all(|c| c.param("Granularity").is_none_or(|g| g == "SERVICE_LEVEL")), "{generates:?}");
    for arn in [CHECKOUT, IDLE, LEGACY, API] {
        assert_eq!(calls_about(&w.iam, "GetRole", arn).len(), 1, "GetRole once for RoleLastUsed: {arn}");
    }
    assert!(w.iam.requests().iter().all(|c| c.signed() && c.access_key.as_deref() == Some("AKIDEXAMPLE")));
    assert_jobs_read_by_their_creator(&w.iam);
    assert_eq!(w.sts.count("GetCallerIdentity"), 1, "the binary learns its account once");
    assert_eq!(w.sts.count("AssumeRole"), 0, "no --account-role, no AssumeRole");
    assert!(w.kube.requests().iter().all(|r| r.method == "GET"), "read-only");
}

#[test]
fn unused_days_decides_between_used_and_stale() {
    let w = shop().start();
    let doc = w.audit(&["--unused-days", "150"]);
    assert_eq!(doc["unusedDays"], 150);
    assert_eq!(unused(&doc, API), json!(["kms"]), "sqs used 120 days ago is recent enough now");
    assert_eq!(service(role(&doc, API), "sqs")["state"], "used");
    assert_eq!(role(&doc, API)["status"], "unused-services");
    assert_eq!(role(&doc, LEGACY)["status"], "unused-role", "last used 200 days ago");

    let doc = w.audit(&["--unused-days", "250"]);
    assert_eq!(role(&doc, LEGACY)["status"], "ok", "role and its only service used within 250 days");
    assert_eq!(unused(&doc, LEGACY), json!([]));
    assert_eq!(role(&doc, IDLE)["status"], "unused-role", "never used is unused whatever N is");

    let doc = w.audit(&["--unused-days", "20"]);
    assert_eq!(unused(&doc, API), json!(["dynamodb", "kms", "sqs"]), "sorted, stale and never-used together");
    assert_eq!(service(role(&doc, API), "dynamodb")["state"], "stale");
    assert_eq!(service(role(&doc, API), "kms")["state"], "never-used");
    assert_eq!(role(&doc, CHECKOUT)["status"], "ok", "used 3 days ago");
}

#[test]
fn table_has_one_row_per_role_with_errors_per_role() {
    let f = shop();
    f.irsa_app("ghost", "ghost", "ghost", "arn:aws:iam::111122223333:role/deleted-role");
    let w = f.start();
    let out = w.cmd().args(["audit", "-A"]).run();
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let header = lines.first().copied().unwrap_or_default();
    let mut at = 0;
    for column in ["ROLE", "STATUS", "UNUSED SERVICES", "LAST USED", "WORKLOADS"] {
        let found = header[at..].find(column).unwrap_or_else(|| panic!("no {column} after column {at}\n{out}"));
        at += found + column.len();
    }
    let row = |arn: &str| {
        let found = lines.iter().find(|l| l.split_whitespace().next() == Some(arn));
        *found.unwrap_or_else(|| panic!("no row for {arn}\n{out}"))
    };
    let api = row(API);
    assert!(api.contains("unused-services") && api.contains("kms") && api.contains("sqs"), "{api}");
    assert!(api.contains("Deployment/api"), "{api}");
    assert!(row(CHECKOUT).contains(" ok "), "{}", row(CHECKOUT));
    assert!(row(IDLE).contains("unused-role"), "{}", row(IDLE));
    assert!(row("arn:aws:iam::111122223333:role/deleted-role").contains("unknown"), "{out}");
    assert!(out.stdout.contains("role-not-found"), "the reason is shown with the role\n{out}");

    let yaml = w.cmd().args(["audit", "-A", "-o", "yaml"]).run();
    yaml.assert_code(0);
    let mut doc: Value = serde_saphyr::from_str(&yaml.stdout).unwrap_or_else(|e| panic!("not YAML ({e})\n{yaml}"));
    normalise_times(&mut doc);
    assert_eq!(doc["kind"], "AuditReport");
    assert_shop_roles(&w, &doc);
}

#[test]
fn a_role_shared_by_two_service_accounts_is_one_entry() {
    let f = shop();
    let shared = f.role("shared-reader", &["s3:GetObject", "athena:StartQueryExecution"], Some(4));
    f.used("shared-reader", "s3", 4);
    f.irsa_app("reports", "reader", "reports-web", &shared);
    f.pod_identity_app("analytics", "reader", "notebook", &shared, None);
    let w = f.start();

    let doc = w.audit(&[]);
    let entries = arns(&doc).iter().filter(|a| **a == shared).count();
    assert_eq!(entries, 1, "one entry for the shared role");
    let r = role(&doc, &shared);
    assert_eq!(
        r["bindings"],
        json!([
            binding("analytics", "reader", "pod-identity", "Deployment", "notebook"),
            binding("reports", "reader", "irsa", "Deployment", "reports-web"),
        ]),
        "both bindings, sorted by namespace"
    );
    assert_eq!(r["status"], "unused-services");
    assert_eq!(r["unusedServices"], json!(["athena"]), "nobody used athena");
    assert_eq!(generated(&w.iam).get(&shared), Some(&1), "one job for the shared role");
    assert_shop_roles(&w, &doc);

    let doc = report(&w.cmd().args(["audit", "-n", "reports", "-o", "json"]).run());
    assert_eq!(arns(&doc).iter().filter(|a| a.starts_with("arn:")).count(), 2, "{doc:#}");
    assert_eq!(
        role(&doc, &shared)["bindings"],
        json!([binding("reports", "reader", "irsa", "Deployment", "reports-web")])
    );
    assert_eq!(role(&doc, LEGACY)["status"], "unused-role");
}

#[test]
fn action_granularity_lists_unused_tracked_actions() {
    let f = Fakes::new();
    let builder = f.role("ci/builder", &["s3:*", "ec2:Describe*", "sqs:SendMessage"], Some(5));
    f.iam.set_action_usage(&builder, "s3:CreateBucket", &f.ago(5));
    f.iam.set_action_usage(&builder, "s3:PutBucketPolicy", &f.ago(200));
    f.irsa_app("ci", "builder", "runner", &builder);
    let w = f.start();
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();

    let service_level = w.audit(&["--cache-dir", cache_dir]);
    assert!(service(role(&service_level, &builder), "s3")["unusedActions"].is_null(), "null unless action level");

    let doc = w.audit(&["--granularity", "action", "--cache-dir", cache_dir]);
    let r = role(&doc, &builder);
    let s3 = service(r, "s3");
    assert_eq!(s3["state"], "used", "a tracked action's use is a use of the service");
    assert_eq!(s3["lastAuthenticated"], json!(w.ago(5)));
    let stale_and_never = [
        "s3:CreateAccessPoint",
        "s3:DeleteBucket",
        "s3:DeleteBucketPolicy",
        "s3:PutBucketAcl",
        "s3:PutBucketPolicy",
        "s3:PutBucketVersioning",
        "s3:PutEncryptionConfiguration",
        "s3:PutLifecycleConfiguration",
    ];
    assert_eq!(s3["unusedActions"], json!(stale_and_never), "never used, and PutBucketPolicy stale (200 days)");
    assert_eq!(
        service(r, "ec2")["unusedActions"],
        json!([]),
        "tracked service, but Describe* allows no tracked action"
    );
    assert!(service(r, "sqs")["unusedActions"].is_null(), "SQS is not tracked per action");
    assert_eq!(r["unusedServices"], json!(["ec2", "sqs"]));
    assert_eq!(r["status"], "unused-services");
    let levels: Vec<String> = w
        .iam
        .requests()
        .iter()
        .filter(|c| c.action == GENERATE)
        .map(|c| c.param("Granularity").unwrap_or("SERVICE_LEVEL").to_string())
        .collect();
    assert_eq!(levels, ["SERVICE_LEVEL", "ACTION_LEVEL"], "a cached service-level report does not answer for actions");

    let doc = w.audit(&["--granularity", "action", "--unused-days", "250"]);
    let without_policy: Vec<&str> = stale_and_never.iter().copied().filter(|a| *a != "s3:PutBucketPolicy").collect();
    assert_eq!(service(role(&doc, &builder), "s3")["unusedActions"], json!(without_policy));
}

#[test]
fn per_role_errors_leave_the_other_roles_correct() {
    let f = shop();
    let gone = "arn:aws:iam::111122223333:role/deleted-role";
    f.irsa_app("ghost", "ghost", "ghost", gone);
    let no_generate = f.role("no-generate", &["sqs:SendMessage"], Some(1));
    f.irsa_app("locked", "a", "a", &no_generate);
    let no_get_role = f.role("no-get-role", &["sqs:SendMessage"], Some(1));
    f.irsa_app("locked", "b", "b", &no_get_role);
    let no_read = f.role("no-read", &["sqs:SendMessage"], Some(1));
    f.irsa_app("locked", "c", "c", &no_read);
    let flaky = f.role("flaky", &["sqs:SendMessage"], Some(1));
    f.irsa_app("flaky", "flaky", "flaky", &flaky);
    f.iam.deny_on("GenerateServiceLastAccessedDetails", &no_generate);
    f.iam.deny_on("GetRole", &no_get_role);
    f.iam.deny_on("GetServiceLastAccessedDetails", &no_read);
    f.iam.fail_jobs_for(&flaky);
    let w = f.start();

    let doc = w.audit(&[]);
    assert_shop_roles(&w, &doc);
    for (arn, code) in [
        (gone, "role-not-found"),
        (no_generate.as_str(), "access-denied"),
        (no_get_role.as_str(), "access-denied"),
        (no_read.as_str(), "access-denied"),
        (flaky.as_str(), "last-accessed-failed"),
    ] {
        assert_eq!(role(&doc, arn)["status"], "unknown", "{arn}");
        assert_eq!(error_code(&doc, arn), Some(code), "{arn}: {:#}", role(&doc, arn));
    }
    assert!(error_message(&doc, gone).contains("deleted-role"), "{}", error_message(&doc, gone));
    for (arn, action) in [
        (&no_generate, "iam:GenerateServiceLastAccessedDetails"),
        (&no_get_role, "iam:GetRole"),
        (&no_read, "iam:GetServiceLastAccessedDetails"),
    ] {
        let message = error_message(&doc, arn);
        assert!(message.contains(action), "names the missing action {action}: {message}");
    }
    let roles_with_errors = roles(&doc).iter().filter(|r| !r["error"].is_null()).count();
    let malformed = arns(&doc).iter().filter(|a| !a.starts_with("arn:")).count();
    assert_eq!(roles_with_errors, 5 + malformed, "only the broken roles carry an error");
    assert!(calls_about(&w.iam, GENERATE, &flaky).len() <= 3, "a FAILED job is not retried forever");
}

#[test]
fn a_job_that_outlives_the_job_timeout_is_a_per_role_failure() {
    let f = shop();
    f.iam.job_delay(Duration::from_secs(120));
    let w = f.start();
    let out = w.cmd().args(["audit", "-A", "-o", "json", "--job-timeout", "1"]).timeout(Duration::from_secs(40)).run();
    let doc = report(&out);
    for arn in [API, CHECKOUT, LEGACY, IDLE] {
        assert_eq!(role(&doc, arn)["status"], "unknown", "{arn}");
        assert_eq!(error_code(&doc, arn), Some("last-accessed-failed"), "{arn}");
    }
    assert!(w.iam.jobs().iter().all(|j| j.pending_reads >= 1), "each job was polled before giving up");
}

#[test]
fn a_fifth_of_calls_throttled_still_gives_the_same_report() {
    let clean = shop().start();
    let sequential = clean.audit(&["--concurrency", "1"]);
    assert_shop_roles(&clean, &sequential);

    let f = shop();
    f.iam.throttle_share(0.2, 20_261_122);
    f.iam.fault(Fault::new(GENERATE, 503).once());
    f.iam.fault(Fault::new(GET_DETAILS, 500).once());
    let w = f.start();
    let doc = w.audit(&[]);
    assert_shop_roles(&w, &doc);
    assert_eq!(arns(&doc), arns(&sequential));
    let throttled = w.iam.requests().iter().filter(|c| c.error.as_deref() == Some("Throttling")).count();
    assert!(throttled > 0, "the fake throttled some calls");
    assert!(generated(&w.iam).values().all(|n| *n == 1), "a throttled Generate never started a job: one per role");
    assert_jobs_read_by_their_creator(&w.iam);
    // Each retry is said on stderr, as the Kubernetes reads' waits are.
    let out = w.cmd().args(["audit", "-A", "-o", "json", "--refresh"]).run();
    out.assert_code(0);
    let waits: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("waiting: AWS ")).collect();
    assert!(!waits.is_empty() && waits.iter().all(|l| l.contains("trying again (attempt")), "{out}");
}

/// `partner-sync` in the other account: allowed S3 and Kinesis, S3 used two days ago.
fn partner_role(f: &Fakes) -> String {
    let partner = f.iam.add_role(
        RoleSpec::new("partner-sync")
            .account(OTHER)
            .inline("main", allow(&["s3:GetObject", "kinesis:PutRecord"]))
            .last_used(&f.ago(2), "eu-west-1"),
    );
    f.iam.set_usage(&partner, "s3", Some(&f.ago(2)), None, Some("eu-west-1"));
    partner
}

#[test]
fn cross_account_roles_need_an_auditor_role() {
    let f = shop();
    let partner = partner_role(&f);
    let reader = f.iam.add_role(RoleSpec::new("analytics-reader").account(OTHER).inline("main", allow(&["athena:*"])));
    f.iam.add_role(RoleSpec::new("auditor").account(OTHER));
    let etl = f.role("etl-runner", &["sts:AssumeRole"], Some(1));
    f.used("etl-runner", "sts", 1);
    f.irsa_app("partners", "sync", "sync", &partner);
    f.pod_identity_app("data", "etl", "etl", &etl, Some(&reader));
    let w = f.start();

    let doc = w.audit(&[]);
    assert_shop_roles(&w, &doc);
    assert_eq!(role(&doc, &etl)["status"], "ok", "the chaining role is in the cluster's account");
    assert_eq!(role(&doc, &reader)["bindings"], json!([binding("data", "etl", "pod-identity", "Deployment", "etl")]));
    for arn in [&partner, &reader] {
        assert_eq!(role(&doc, arn)["status"], "unknown", "{arn}");
        assert_eq!(error_code(&doc, arn), Some("cross-account-role"), "{arn}");
        assert!(error_message(&doc, arn).contains(OTHER), "names the account: {}", error_message(&doc, arn));
    }
    let foreign = |c: &Call| c.params.iter().any(|(_, v)| v.contains(OTHER) || v == "partner-sync");
    assert!(!w.iam.requests().iter().any(foreign), "nothing is asked about another account's roles");
    assert_eq!(w.sts.count("AssumeRole"), 0);

    w.iam.clear_requests();
    let doc = w.audit(&["--account-role", &format!("{OTHER}={AUDITOR}")]);
    assert_shop_roles(&w, &doc);
    let r = role(&doc, &partner);
    assert_eq!(r["error"], Value::Null, "{r:#}");
    assert_eq!(r["status"], "unused-services");
    assert_eq!(r["roleLastUsed"], json!(w.ago(2)));
    assert_eq!(
        r["services"],
        json!([svc("kinesis", "Amazon Kinesis", None, "never-used"), svc("s3", "Amazon S3", Some(&w.ago(2)), "used")])
    );
    assert_eq!(r["unusedServices"], json!(["kinesis"]));
    assert_eq!(role(&doc, &reader)["status"], "unused-role", "audited too: never used");
    assert_eq!(role(&doc, &reader)["unusedServices"], json!(["athena"]));

    let assumed: Vec<Call> = w.sts.requests().into_iter().filter(|c| c.action == "AssumeRole").collect();
    assert!(!assumed.is_empty(), "the auditor role was assumed");
    assert!(assumed.iter().all(|c| c.param("RoleArn") == Some(AUDITOR)), "{assumed:?}");
    for call in w.iam.requests() {
        let away = call.params.iter().any(|(_, v)| v.contains(OTHER) || v == "partner-sync" || v == "analytics-reader");
        let key = call.access_key.clone().unwrap_or_default();
        if away {
            assert!(key.starts_with("ASIA444455556666"), "calls about the other account use the auditor: {call:?}");
        } else if call.action != GET_DETAILS {
            assert_eq!(key, "AKIDEXAMPLE", "calls about the cluster's account use the caller's own keys: {call:?}");
        }
    }
    let mut jobs = w.iam.jobs();
    jobs.retain(|j| j.arn == partner);
    assert_eq!(jobs.len(), 1, "one job for the partner role");
    assert!(jobs[0].owner_key.starts_with("ASIA444455556666"));
    assert_jobs_read_by_their_creator(&w.iam);

    let w2 = {
        let f = shop();
        f.iam.add_role(RoleSpec::new("partner-sync").account(OTHER).inline("main", allow(&["s3:GetObject"])));
        f.iam.add_role(RoleSpec::new("auditor").account(OTHER));
        f.irsa_app("partners", "sync", "sync", &partner);
        f.sts.deny_assume(AUDITOR);
        f.start()
    };
    let doc = w2.audit(&["--account-role", &format!("{OTHER}={AUDITOR}")]);
    assert_shop_roles(&w2, &doc);
    assert_eq!(role(&doc, &partner)["status"], "unknown", "the auditor role could not be assumed");
    assert!(!role(&doc, &partner)["error"].is_null());
}

#[test]
fn cache_skips_jobs_within_the_ttl_and_refresh_ignores_it() {
    let w = shop().start();
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_str().unwrap();
    let first = w.audit(&["--cache-dir", dir]);
    assert_eq!(generated(&w.iam).len(), 4);
    assert!(std::fs::read_dir(cache.path()).unwrap().next().is_some(), "the cache dir holds something");

    w.iam.clear_requests();
    let second = w.audit(&["--cache-dir", dir]);
    assert_eq!(w.iam.count(GENERATE), 0, "a second run within the TTL starts no job");
    assert_eq!(second["roles"], first["roles"]);

    w.iam.clear_requests();
    let wider = w.audit(&["--cache-dir", dir, "--unused-days", "150"]);
    assert_eq!(w.iam.count(GENERATE), 0, "the cache holds last-accessed data, not verdicts");
    assert_eq!(unused(&wider, API), json!(["kms"]), "decided again with the new --unused-days");

    w.iam.clear_requests();
    let refreshed = w.audit(&["--cache-dir", dir, "--refresh"]);
    assert_eq!(generated(&w.iam).len(), 4, "--refresh ignores the cache");
    assert_eq!(w.iam.count(GENERATE), 4);
    assert_shop_roles(&w, &refreshed);
}

#[test]
fn cache_location_follows_the_environment() {
    let w = shop().start();
    let dirs = tempfile::tempdir().unwrap();
    let twice = |name: &str, cmd: &dyn Fn() -> Cmd, holds: &Path| {
        w.iam.clear_requests();
        w.audit_with(cmd(), &[]);
        assert_eq!(w.iam.count(GENERATE), 4, "{name}: the first run starts the jobs");
        w.iam.clear_requests();
        w.audit_with(cmd(), &[]);
        assert_eq!(w.iam.count(GENERATE), 0, "{name}: the second run reads the cache");
        let entries = std::fs::read_dir(holds).map(|d| d.count()).unwrap_or(0);
        assert!(entries > 0, "{name}: the cache is in {}", holds.display());
    };

    let env_dir = dirs.path().join("env-cache");
    let xdg = dirs.path().join("xdg");
    twice(
        "IAM_ROLES_CACHE_DIR",
        &|| w.cmd().env("IAM_ROLES_CACHE_DIR", &env_dir).env("XDG_CACHE_HOME", &xdg),
        &env_dir,
    );
    assert!(!xdg.join("kubectl-iam-roles").exists(), "IAM_ROLES_CACHE_DIR wins over XDG_CACHE_HOME");

    twice("XDG_CACHE_HOME", &|| w.cmd().env("XDG_CACHE_HOME", &xdg), &xdg.join("kubectl-iam-roles"));

    let home = dirs.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    twice("HOME", &|| w.cmd().env("HOME", &home), &home.join(".cache").join("kubectl-iam-roles"));
}

#[test]
fn job_protocol_generate_once_poll_and_read_every_page() {
    let f = shop();
    let admin = f.iam.add_role(
        RoleSpec::new("admin-tools").path("/platform/").attach("arn:aws:iam::aws:policy/AdministratorAccess"),
    );
    f.used(&admin, "ec2", 10);
    f.used(&admin, "xray", 100);
    f.irsa_app("platform", "tools", "tools", &admin);
    f.iam.job_delay(Duration::from_millis(1200));
    f.iam.max_services_per_page(4);
    let w = f.start();

    let doc = w.audit(&[]);
    assert_shop_roles(&w, &doc);
    let jobs = w.iam.jobs();
    let admin_job = jobs.iter().find(|j| j.arn == admin).expect("a job for the role with a path");
    let total = admin_job.services.expect("a completed job");
    assert!(total > 30, "AdministratorAccess allows every service: {total}");
    let r = role(&doc, &admin);
    let listed = r["services"].as_array().unwrap();
    assert_eq!(listed.len(), total, "every page read: {} of {total} services", listed.len());
    let namespaces: Vec<&str> = listed.iter().map(|s| s["namespace"].as_str().unwrap()).collect();
    assert!(namespaces.is_sorted(), "{namespaces:?}");
    assert_eq!(service(r, "ec2")["state"], "used");
    assert_eq!(service(r, "xray")["state"], "stale");
    assert_eq!(r["unusedServices"].as_array().unwrap().len(), total - 1);

    for job in &jobs {
        assert_eq!(jobs.iter().filter(|j| j.arn == job.arn).count(), 1, "one Generate for {}", job.arn);
        assert!(job.pending_reads >= 1, "{}: polled while IN_PROGRESS: {job:?}", job.arn);
        assert!(job.pending_reads <= 30, "{}: polls back off (not {} polls in 1.2 s)", job.arn, job.pending_reads);
        assert_eq!(job.finished_reads, 1, "{}: the first page of the finished job read once: {job:?}", job.arn);
        let pages = job.services.unwrap_or(0).div_ceil(4).max(1);
        assert_eq!(job.page_reads, pages - 1, "{}: every later page, once: {job:?}", job.arn);
        assert_eq!(job.granularity, "SERVICE_LEVEL");
    }
    assert_eq!(jobs.len(), 5);
    assert_jobs_read_by_their_creator(&w.iam);
    let with_marker = w.iam.requests().into_iter().filter(|c| c.action == GET_DETAILS && c.param("Marker").is_some());
    assert!(with_marker.count() >= 8, "the admin role's report spans 9 pages");
}

#[test]
fn snapshot_then_offline_audit_equals_live() {
    let w = shop().start();
    let live = w.audit(&[]);
    let live_wide = w.audit(&["--unused-days", "150"]);
    let identity_checks = w.sts.count("GetCallerIdentity");
    let snap = w.cmd().args(["snapshot", "-A"]).run();
    snap.assert_code(0);
    assert_eq!(snap.json()["kind"], "Snapshot");
    assert!(!snap.json()["roles"].as_array().unwrap().is_empty(), "trust policies are recorded for doctor");
    assert_eq!(w.sts.count("GetCallerIdentity"), identity_checks + 1, "one IAM connection serves every read");

    let offline = Cmd::new();
    let file = offline.home().join("snap.json");
    std::fs::write(&file, &snap.stdout).unwrap();
    let out = offline.arg("--snapshot").arg(&file).args(["audit", "-o", "json"]).run();
    let doc = report(&out);
    assert_eq!(doc["kind"], "AuditReport");
    assert_eq!(doc["cluster"], live["cluster"]);
    assert_eq!(doc["roles"], live["roles"], "no cluster and no AWS credentials, same roles and statuses");

    let again = Cmd::new();
    let file = again.home().join("snap.json");
    std::fs::write(&file, &snap.stdout).unwrap();
    let out = again.arg("--snapshot").arg(&file).args(["audit", "-o", "json", "--unused-days", "150"]).run();
    assert_eq!(report(&out)["roles"], live_wide["roles"], "the snapshot holds the reports, not verdicts");
}

#[test]
fn no_aws_credentials_is_an_error() {
    let w = shop().start();
    let out = Cmd::new()
        .kubeconfig(&w.kubeconfig)
        .env("AWS_REGION", "us-west-2")
        .eks_endpoint(&w.eks.url())
        .env("AWS_ENDPOINT_URL_IAM", w.iam.url())
        .env("AWS_ENDPOINT_URL_STS", w.sts.url())
        .args(["audit", "-A", "-o", "json"])
        .run();
    out.assert_code(1);
    assert!(out.stdout.is_empty(), "{out}");
    let error = out.stderr.find("error: ").map(|at| &out.stderr[at..]).unwrap_or_else(|| panic!("no error: {out}"));
    assert_eq!(error.lines().count(), 1, "one clear sentence, the last thing on stderr: {out}");
    assert!(error.to_ascii_lowercase().contains("credentials"), "says credentials are missing: {out}");
    assert!(error.len() < 400, "a sentence, not a dump of the SDK's error chain ({} bytes): {out}", error.len());
    assert!(w.iam.requests().is_empty(), "no unsigned IAM call");
}

/// A CronJob names its accounts' auditor roles in a configuration file instead of a flag per account.
#[test]
fn the_configuration_file_names_each_accounts_auditor_role() {
    let f = shop();
    let partner = partner_role(&f);
    f.iam.add_role(RoleSpec::new("auditor").account(OTHER));
    f.irsa_app("partners", "sync", "sync", &partner);
    let w = f.start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, format!("accountRoles:\n  \"{OTHER}\": {AUDITOR}\n")).unwrap();
    let doc = w.audit(&["--config", config.to_str().unwrap()]);
    assert_eq!(role(&doc, &partner)["status"], "unused-services", "audited through the file's auditor role");
    assert!(w.sts.requests().iter().any(|c| c.action == "AssumeRole" && c.param("RoleArn") == Some(AUDITOR)));
    // The environment names it as well (IAM_ROLES_CONFIG), as the CronJob does.
    let out = w.cmd().env("IAM_ROLES_CONFIG", &config).args(["audit", "-A", "-o", "json"]).run();
    out.assert_code(0);
    assert_eq!(role(&out.json(), &partner)["status"], "unused-services");

    for (text, why) in [("accountRoles:\n  \"4444\": x\n", "12-digit"), ("acountRoles: {}\n", "unknown field")] {
        std::fs::write(&config, text).unwrap();
        let out = w.cmd().args(["audit", "-A", "--config", config.to_str().unwrap()]).run();
        out.assert_code(2);
        assert!(out.stderr.contains(why) && out.stderr.contains("config.yaml"), "{out}");
    }
}
