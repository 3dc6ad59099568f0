//! Audit benchmark (issue 3): 300 roles bound in a fake cluster, a fake IAM that answers every call after
//! 50 ms and completes each Access Advisor job 1 s after it was generated.
//!
//! 1. The real binary, `audit -A -o json` with a fresh cache dir: wall time and the IAM calls it made.
//! 2. The naive sequential way on the same endpoint, as AWS CLI scripts do it: for each role, one after
//!    another, GetRole, GenerateServiceLastAccessedDetails, then sleep 1 s and GetServiceLastAccessedDetails
//!    until COMPLETED, then every page (target: the binary at least 20x faster).
//! 3. The lower bound: one job latency plus the binary's IAM calls x 50 ms / concurrency (target: the binary
//!    within 2x of it).
//! 4. A second binary run within the cache TTL: its Generate calls (target: 0).
//!
//! Run: `cargo bench --bench audit` (add `-- --quick` for 30 roles; the sequential way alone takes about
//! 1.15 s a role, so about 6 minutes for 300).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_iam::types::JobStatusType;
use serde_json::Value;
use support::cli::{Cmd, Context, Kubeconfig};
use support::eks::FakeEks;
use support::fixtures::{pod, replica_set, service_account};
use support::iam::{FakeIam, RoleSpec, allow};
use support::kube_api::FakeKube;
use support::sts::FakeSts;

const ACCOUNT: &str = "111122223333";
const LATENCY: Duration = Duration::from_millis(50);
const JOB: Duration = Duration::from_secs(1);
const CONCURRENCY: usize = 16;
const NAMESPACES: usize = 10;
/// Services the synthetic roles are allowed, a few each.
const SERVICES: &[&str] = &["s3", "sqs", "sns", "kms", "dynamodb", "logs", "secretsmanager", "ssm", "ecr", "xray"];

fn role_name(i: usize) -> String {
    format!("svc-{i:03}")
}

/// Role `i` is allowed 2 to 5 services, used some of them recently and some long ago; a tenth were never used.
fn add_role(iam: &FakeIam, i: usize, now: jiff::Timestamp) -> String {
    let count = 2 + i % 4;
    let actions: Vec<String> = (0..count).map(|k| format!("{}:*", SERVICES[(i + k) % SERVICES.len()])).collect();
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    let ago = |days: i64| (now - jiff::SignedDuration::from_hours(24 * days)).to_string();
    let mut spec = RoleSpec::new(&role_name(i)).path("/bench/").inline("main", allow(&actions));
    if !i.is_multiple_of(10) {
        spec = spec.last_used(&ago(1 + (i % 7) as i64), "us-west-2");
    }
    let arn = iam.add_role(spec);
    if !i.is_multiple_of(10) {
        for (k, action) in actions.iter().enumerate().take(count - 1) {
            let namespace = action.trim_end_matches(":*");
            let days = if k == 0 { 3 } else { 30 + 40 * k as i64 };
            iam.set_usage(&arn, namespace, Some(&ago(days)), None, Some("us-west-2"));
        }
    }
    arn
}

/// One IRSA service account, ReplicaSet and pod per role.
fn add_workload(kube: &FakeKube, i: usize, arn: &str) {
    let ns = format!("team-{}", i % NAMESPACES);
    let name = role_name(i);
    let rs = format!("{name}-5d8f7c9b4");
    kube.add(service_account(&ns, &name).irsa(arn).build());
    kube.add(replica_set(&ns, &rs).owner("Deployment", &name).build());
    kube.add(pod(&ns, &format!("{rs}-x2m9p")).service_account(&name).owner("ReplicaSet", &rs).irsa(arn).build());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn line(label: &str, time: Duration, note: &str) {
    println!("   {label:<38} {:>9.1} ms  ({note})", ms(time));
}

fn per_action(iam: &FakeIam) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for call in iam.requests() {
        *counts.entry(call.action).or_default() += 1;
    }
    counts
}

fn describe(counts: &BTreeMap<String, usize>) -> String {
    let short = |action: &str| match action {
        "GenerateServiceLastAccessedDetails" => "Generate".to_string(),
        "GetServiceLastAccessedDetails" => "GetDetails".to_string(),
        other => other.to_string(),
    };
    counts.iter().map(|(a, n)| format!("{} {n}", short(a))).collect::<Vec<_>>().join(", ")
}

/// Service count per role ARN in an AuditReport.
fn services_per_role(doc: &Value) -> BTreeMap<String, usize> {
    let roles = doc["roles"].as_array().expect("an AuditReport");
    roles
        .iter()
        .map(|r| {
            let services = r["services"].as_array().map_or(0, Vec::len);
            (r["roleArn"].as_str().unwrap_or_default().to_string(), services)
        })
        .collect()
}

/// The AWS CLI script, in Rust: one role after another; sleep 1 s before each poll, as `sleep 1; aws iam
/// get-service-last-accessed-details` loops do; every page read. Returns the service count per role.
async fn sequential(client: &aws_sdk_iam::Client, arns: &[String]) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    for arn in arns {
        let name = arn.rsplit('/').next().unwrap_or_default();
        client.get_role().role_name(name).send().await.expect("GetRole");
        let job = client.generate_service_last_accessed_details().arn(arn).send().await.expect("Generate");
        let job_id = job.job_id().expect("a JobId").to_string();
        let first = loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let out = client.get_service_last_accessed_details().job_id(&job_id).send().await.expect("Get");
            match out.job_status() {
                JobStatusType::InProgress => continue,
                JobStatusType::Completed => break out,
                other => panic!("job for {arn} ended {other:?}"),
            }
        };
        let mut services = first.services_last_accessed().len();
        let mut marker = first.marker().map(str::to_string);
        while let Some(m) = marker {
            let page =
                client.get_service_last_accessed_details().job_id(&job_id).marker(m).send().await.expect("Get page");
            services += page.services_last_accessed().len();
            marker = page.marker().map(str::to_string);
        }
        found.insert(arn.clone(), services);
    }
    found
}

fn main() {
    kubectl_iam_roles::install_crypto_provider();
    let quick = std::env::args().any(|a| a == "--quick");
    let roles = if quick { 30 } else { 300 };

    let now = jiff::Timestamp::now().round(jiff::Unit::Second).expect("now");
    let kube = FakeKube::new();
    let eks = FakeEks::new();
    eks.add_cluster("bench", "us-west-2", ACCOUNT);
    let iam = FakeIam::new(ACCOUNT);
    let mut arns = Vec::new();
    for i in 0..roles {
        let arn = add_role(&iam, i, now);
        add_workload(&kube, i, &arn);
        arns.push(arn);
    }
    arns.sort();
    iam.latency(LATENCY);
    iam.job_delay(JOB);
    let sts = FakeSts::new(ACCOUNT);
    sts.share_keys_with(&iam);
    let (kube, eks, iam, sts) = (kube.start(), eks.start(), iam.start(), sts.start());
    let kubeconfig = Kubeconfig::single(Context::eks("bench", "us-west-2", ACCOUNT, &kube.url())).write();
    let cache = tempfile::tempdir().expect("cache dir");
    let binary = || {
        Cmd::new()
            .kubeconfig(&kubeconfig)
            .aws_credentials()
            .eks_endpoint(&eks.url())
            .env("AWS_ENDPOINT_URL_IAM", iam.url())
            .env("AWS_ENDPOINT_URL_STS", sts.url())
            .args(["audit", "-A", "-o", "json", "--concurrency", &CONCURRENCY.to_string()])
            .arg("--cache-dir")
            .arg(cache.path())
            .timeout(Duration::from_secs(900))
    };

    println!(
        "== audit of {roles} roles (fake IAM: {} ms a call, jobs complete after {} ms; --concurrency {CONCURRENCY})",
        LATENCY.as_millis(),
        JOB.as_millis()
    );
    let start = Instant::now();
    let out = binary().run();
    let ours = start.elapsed();
    out.assert_code(0);
    let doc = out.json();
    let ours_services = services_per_role(&doc);
    assert_eq!(ours_services.len(), roles, "one report per role");
    let unknown = doc["roles"].as_array().map_or(0, |r| r.iter().filter(|r| r["status"] == "unknown").count());
    assert_eq!(unknown, 0, "every role audited:\n{out}");
    let counts = per_action(&iam);
    let calls: usize = counts.values().sum();
    line("binary, audit -A -o json, fresh cache", ours, &format!("{calls} IAM calls: {}", describe(&counts)));

    iam.clear_requests();
    let start = Instant::now();
    let again = binary().run();
    let cached = start.elapsed();
    again.assert_code(0);
    let second_generates = iam.count("GenerateServiceLastAccessedDetails");
    let second_calls = iam.requests().len();

    iam.clear_requests();
    let client = {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                None,
                None,
                "bench",
            )))
            .endpoint_url(iam.url())
            .build();
        aws_sdk_iam::Client::new(&config)
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let start = Instant::now();
    let theirs_services = runtime.block_on(sequential(&client, &arns));
    let naive = start.elapsed();
    let naive_calls = iam.requests().len();
    assert_eq!(theirs_services, ours_services, "both ways read the same services for every role");
    let ratio = naive.as_secs_f64() / ours.as_secs_f64();
    line(
        "naive sequential (AWS CLI script)",
        naive,
        &format!("{naive_calls} IAM calls; sequential / ours: {ratio:.1}x, target >= 20x"),
    );

    let bound = JOB + LATENCY.mul_f64(calls as f64 / CONCURRENCY as f64);
    let ratio = ours.as_secs_f64() / bound.as_secs_f64();
    line(
        "lower bound",
        bound,
        &format!(
            "1 job + {calls} calls x {} ms / {CONCURRENCY}; ours / bound: {ratio:.2}x, target <= 2x",
            LATENCY.as_millis()
        ),
    );
    line(
        "second run within the TTL",
        cached,
        &format!("Generate calls: {second_generates}, target 0; {second_calls} IAM calls in all"),
    );
    println!("   reports agree: {} roles, {} services", roles, ours_services.values().sum::<usize>());
}
