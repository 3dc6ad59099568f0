//! A fleet in one run (issue 12): two clusters read concurrently in one invocation (`--context` twice,
//! `--all-contexts`), each with its own EKS cluster; a role shared by both (IRSA in one, Pod Identity in the
//! other) and a role bound in one; an unreachable cluster that is a problem of the run, not its end; one
//! Access Advisor job per shared role; a fleet snapshot that every command reads offline.

mod support;

use serde_json::Value;
use support::cli::{Cmd, Context, Kubeconfig, KubeconfigFile};
use support::eks::{FakeEks, RunningEks};
use support::fixtures::{deployment, pod, replica_set, service_account};
use support::iam::{FakeIam, RoleSpec, RunningIam, allow, irsa_trust};
use support::kube_api::{FakeKube, RunningKube};
use support::sts::{FakeSts, RunningSts};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-west-2";

fn ctx(cluster: &str) -> String {
    format!("arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{cluster}")
}

struct Fleet {
    prod: RunningKube,
    staging: RunningKube,
    eks: RunningEks,
    iam: RunningIam,
    sts: RunningSts,
    kubeconfig: KubeconfigFile,
    shared: String,
    only_prod: String,
    /// Prod's OIDC issuer URL.
    issuer: String,
}

impl Fleet {
    fn cmd(&self) -> Cmd {
        support::world::aws_cmd(&self.kubeconfig, &self.eks, &self.iam, &self.sts)
    }

    /// `args` over the prod and staging contexts.
    fn both(&self, args: &[&str]) -> Cmd {
        self.cmd().args(["--context", &ctx("prod"), "--context", &ctx("staging"), "-A"]).args(args)
    }
}

fn app(kube: &FakeKube, ns: &str, sa: &str, irsa: Option<&str>) {
    let mut account = service_account(ns, sa);
    if let Some(role) = irsa {
        account = account.irsa(role);
    }
    kube.add(account.build());
    kube.add(deployment(ns, sa).service_account(sa).build());
    let rs = format!("{sa}-5d8f7");
    kube.add(replica_set(ns, &rs).owner("Deployment", sa).build());
    let p = pod(ns, &format!("{rs}-x2m9p")).service_account(sa).owner("ReplicaSet", &rs);
    kube.add(match irsa {
        Some(role) => p.irsa(role).build(),
        None => p.pod_identity().build(),
    });
}

/// `prod` runs `shop/api` on the shared role through IRSA and `shop/batch` on a role of its own; `staging`
/// runs `shop/api` on the shared role through Pod Identity. A third context points at nothing.
fn fleet() -> Fleet {
    let iam = FakeIam::new(ACCOUNT);
    iam.job_delay(std::time::Duration::from_millis(20));
    let now = jiff::Timestamp::now();
    let yesterday = (now - jiff::SignedDuration::from_hours(24)).to_string();
    let shared = iam.add_role(
        RoleSpec::new("shop-shared")
            .inline("main", allow(&["s3:GetObject", "kms:Decrypt"]))
            .last_used(&yesterday, REGION),
    );
    iam.set_usage(&shared, "s3", Some(&yesterday), None, Some(REGION));
    let only_prod = iam.add_role(
        RoleSpec::new("prod-batch").inline("main", allow(&["sqs:SendMessage"])).last_used(&yesterday, REGION),
    );
    iam.set_usage(&only_prod, "sqs", Some(&yesterday), None, Some(REGION));
    let sts = FakeSts::new(ACCOUNT);
    sts.share_keys_with(&iam);
    let eks = FakeEks::new();
    let issuer = eks.add_cluster("prod", REGION, ACCOUNT);
    eks.add_cluster("staging", REGION, ACCOUNT);
    // The roles trust prod's service accounts, as wired-up IRSA roles do (annotate writes only verified usage).
    iam.trust_also(&shared, &irsa_trust(ACCOUNT, &issuer, "shop", "api"));
    iam.trust_also(&only_prod, &irsa_trust(ACCOUNT, &issuer, "shop", "batch"));
    eks.add_association("staging", "shop", "api", &shared, None);
    let (prod, staging) = (FakeKube::new(), FakeKube::new());
    app(&prod, "shop", "api", Some(&shared));
    app(&prod, "shop", "batch", Some(&only_prod));
    app(&staging, "shop", "api", None);
    staging.add(support::fixtures::daemon_set("kube-system", "eks-pod-identity-agent", 1, 1).build());
    let (prod, staging) = (prod.start(), staging.start());
    let kubeconfig = Kubeconfig::new()
        .context(Context::eks("prod", REGION, ACCOUNT, &prod.url()))
        .context(Context::eks("staging", REGION, ACCOUNT, &staging.url()))
        .context(Context::eks("gone", REGION, ACCOUNT, "http://127.0.0.1:9"))
        .write();
    Fleet { prod, staging, eks: eks.start(), iam: iam.start(), sts: sts.start(), kubeconfig, shared, only_prod, issuer }
}

fn items<'a>(doc: &'a Value, role: &str) -> Vec<(&'a str, &'a str)> {
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["roleArn"] == role)
        .map(|i| (i["cluster"].as_str().unwrap(), i["source"].as_str().unwrap()))
        .collect()
}

#[test]
fn two_clusters_in_one_run_name_their_cluster_on_every_item() {
    let f = fleet();
    let out = f.both(&["-o", "json"]).run();
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["clusters"], serde_json::json!(["prod", "staging"]));
    assert_eq!(items(&doc, &f.shared), [("prod", "irsa"), ("staging", "pod-identity")], "{doc:#}");
    assert_eq!(items(&doc, &f.only_prod), [("prod", "irsa")]);
    let problems = doc["items"].as_array().unwrap().iter().flat_map(|i| i["problems"].as_array().unwrap().iter());
    assert!(problems.chain(doc["problems"].as_array().unwrap()).all(|p| p["cluster"].is_string()), "{doc:#}");

    let who = f.both(&["who-uses", "shop-shared", "-o", "json"]).run();
    who.assert_code(0);
    assert_eq!(items(&who.json(), &f.shared), [("prod", "irsa"), ("staging", "pod-identity")]);

    let table = f.both(&[]).run();
    table.assert_code(0);
    let header = table.stdout.lines().next().unwrap_or_default();
    assert!(header.starts_with("CLUSTER"), "{table}");
    assert!(table.stdout.lines().any(|l| l.starts_with("staging") && l.contains("pod-identity")), "{table}");

    // One cluster: the contract as before, no cluster fields.
    let one = f.cmd().args(["--context", &ctx("prod"), "-A", "-o", "json"]).run();
    one.assert_code(0);
    let one = one.json();
    assert!(one.get("clusters").is_none() && one["items"][0].get("cluster").is_none(), "{one:#}");
}

#[test]
fn an_unreachable_cluster_is_a_problem_of_the_run_not_its_end() {
    let f = fleet();
    let out = f.cmd().args(["--all-contexts", "-A", "-o", "json"]).run();
    out.assert_code(1);
    let doc = out.json();
    assert_eq!(doc["clusters"], serde_json::json!(["gone", "prod", "staging"]), "{doc:#}");
    let unreachable: Vec<&Value> =
        doc["problems"].as_array().unwrap().iter().filter(|p| p["code"] == "cluster-unreachable").collect();
    assert_eq!(unreachable.len(), 1, "{doc:#}");
    assert_eq!(unreachable[0]["cluster"], "gone");
    assert!(unreachable[0]["message"].as_str().unwrap().contains(&ctx("gone")), "{doc:#}");
    assert_eq!(items(&doc, &f.shared).len(), 2, "the other clusters are all there");
    assert!(out.stderr.contains("1 of 3 cluster(s) could not be read"), "{out}");
}

#[test]
fn the_audit_makes_one_job_per_shared_role_and_lists_every_binding() {
    let f = fleet();
    let out = f.both(&["audit", "-o", "json"]).run();
    out.assert_code(0);
    let doc = out.json();
    let role = doc["roles"].as_array().unwrap().iter().find(|r| r["roleArn"] == f.shared.as_str()).expect("shared");
    let clusters: Vec<&str> =
        role["bindings"].as_array().unwrap().iter().map(|b| b["cluster"].as_str().unwrap()).collect();
    assert_eq!(clusters, ["prod", "staging"], "{role:#}");
    assert_eq!(role["unusedServices"], serde_json::json!(["kms"]));
    let jobs = |arn: &str| {
        f.iam
            .requests()
            .iter()
            .filter(|c| c.action == "GenerateServiceLastAccessedDetails" && c.param("Arn") == Some(arn))
            .count()
    };
    assert_eq!((jobs(&f.shared), jobs(&f.only_prod)), (1, 1), "one job per role, however many clusters bind it");

    let doctor = f.both(&["doctor", "-o", "json"]).run();
    doctor.assert_code(0);
    let problems = doctor.json()["problems"].as_array().unwrap().clone();
    assert!(!problems.is_empty(), "the Pod Identity role does not trust pods.eks.amazonaws.com");
    assert!(problems.iter().all(|p| p["cluster"].is_string()), "every finding names its cluster: {problems:?}");
}

#[test]
fn a_fleet_snapshot_answers_every_command_offline() {
    let f = fleet();
    let snap = f.both(&["snapshot"]).run();
    snap.assert_code(0);
    let doc: Value = snap.json();
    assert_eq!(doc["kind"], "FleetSnapshot");
    assert_eq!(doc["snapshots"].as_array().unwrap().len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.json");
    std::fs::write(&file, &snap.stdout).unwrap();
    let live = f.both(&["-o", "json"]).run().json();
    let offline = Cmd::new().arg("--snapshot").arg(&file).args(["-o", "json"]).run();
    offline.assert_code(0);
    assert_eq!(offline.json()["items"], live["items"]);
    let audit = Cmd::new().arg("--snapshot").arg(&file).args(["audit", "-o", "json"]).run();
    audit.assert_code(0);
    let roles = audit.json();
    let shared = roles["roles"].as_array().unwrap().iter().find(|r| r["roleArn"] == f.shared.as_str()).expect("shared");
    assert_eq!(shared["status"], "unused-services", "{shared:#}");
    let doctor = Cmd::new().arg("--snapshot").arg(&file).args(["doctor", "-o", "json"]).run();
    doctor.assert_code(0);
    let live_doctor = f.both(&["doctor", "-o", "json"]).run().json();
    assert_eq!(doctor.json()["problems"], live_doctor["problems"], "doctor reads the fleet snapshot offline");
}

#[test]
fn annotate_writes_each_clusters_findings_into_that_cluster_only() {
    let f = fleet();
    let out = f.cmd().args(["--all-contexts", "annotate", "-A"]).run();
    // The unreachable cluster fails the run, after both others were written.
    out.assert_code(1);
    assert!(out.stderr.contains("context arn:aws:eks:us-west-2:111122223333:cluster/gone"), "{out}");
    let unused = |kube: &RunningKube, kind: &str, name: &str| {
        kube.get(kind, "shop", name).unwrap()["metadata"]["annotations"]["iam-roles.io/unused-services"].clone()
    };
    assert_eq!(unused(&f.prod, "Deployment", "api"), "kms");
    assert_eq!(unused(&f.staging, "Deployment", "api"), "kms");
    assert_eq!(unused(&f.prod, "Deployment", "batch"), Value::Null, "its role uses all it holds");
    let summaries: Vec<Value> = out
        .stdout
        .lines()
        .filter(|l| l.contains("AnnotateSummary"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let clusters: Vec<&str> = summaries.iter().map(|s| s["cluster"].as_str().unwrap()).collect();
    assert_eq!(clusters, ["prod", "staging"], "one summary line per cluster: {out}");
    let jobs = f.iam.requests().iter().filter(|c| c.action == "GenerateServiceLastAccessedDetails").count();
    assert_eq!(jobs, 2, "one job per role across the clusters");
}

#[test]
fn observed_usage_in_a_fleet_names_the_cluster_of_each_call() {
    use support::cloudtrail::{FakeCloudTrail, TrailSpec};
    use support::s3::FakeS3;
    use support::trail::{call, gz, log_key, pod_identity, web_identity};
    let f = fleet();
    let t =
        (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24)).round(jiff::Unit::Second).unwrap().to_string();
    let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{}", f.issuer.trim_start_matches("https://"));
    let staging = format!("arn:aws:eks:{REGION}:{ACCOUNT}:cluster/staging");
    let records = [
        web_identity(&f.shared, &provider, "system:serviceaccount:shop:api", "ASIAPROD0000000001", &t, REGION),
        call(&f.shared, "ASIAPROD0000000001", "s3.amazonaws.com", "GetObject", &t, REGION, None),
        pod_identity(&f.shared, &staging, "shop", "api", "api-5d8f7-x2m9p", "ASIASTAG0000000001", &t),
        call(&f.shared, "ASIASTAG0000000001", "kms.amazonaws.com", "Decrypt", &t, REGION, None),
    ];
    let s3 = FakeS3::new();
    s3.put("trail", &log_key(None, ACCOUNT, REGION, &t, 1), gz(&records));
    let ct = FakeCloudTrail::new();
    ct.add_trail(TrailSpec::new("org", ACCOUNT, REGION, "trail"));
    let (s3, ct) = (s3.start(), ct.start());
    let out = f
        .both(&["audit", "-o", "json", "--usage", "cloudtrail"])
        .env("AWS_ENDPOINT_URL_S3", s3.url())
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", ct.url())
        .run();
    out.assert_code(0);
    let doc = out.json();
    let role = doc["roles"].as_array().unwrap().iter().find(|r| r["roleArn"] == f.shared.as_str()).expect("shared");
    let actions = |cluster: &str| {
        role["bindings"].as_array().unwrap().iter().find(|b| b["cluster"] == cluster).unwrap()["actions"].clone()
    };
    assert_eq!(actions("prod"), serde_json::json!(["s3:GetObject"]), "{role:#}");
    assert_eq!(actions("staging"), serde_json::json!(["kms:Decrypt"]), "{role:#}");
    let users: Vec<String> = role["observed"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            a["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| format!("{}:{}", u["cluster"].as_str().unwrap(), a["action"].as_str().unwrap()))
        })
        .collect();
    assert_eq!(users, ["staging:kms:Decrypt", "prod:s3:GetObject"]);
    assert_eq!(role["observed"]["unattributed"], 0);
    assert_eq!(role["unusedServices"], serde_json::json!([]), "kms was called in staging");

    // The per-workload view tells the clusters' service accounts apart.
    let wide = f
        .both(&["audit", "-o", "wide", "--usage", "cloudtrail", "--color", "never"])
        .env("AWS_ENDPOINT_URL_S3", s3.url())
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", ct.url())
        .run();
    wide.assert_code(0);
    let row = |who: &str| wide.stdout.lines().find(|l| l.contains(who)).unwrap_or_else(|| panic!("{who}: {wide}"));
    assert!(row("prod:shop/api").contains("s3:GetObject(1)") && !row("prod:shop/api").contains("kms"), "{wide}");
    assert!(row("staging:shop/api").contains("kms:Decrypt(1)"), "{wide}");
}
