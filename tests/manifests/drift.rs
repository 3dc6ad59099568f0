//! The permissions in `manifests/` equal what the code calls. The binary runs against the fakes the way the
//! CronJob runs it (its args and env, cluster name from `IAM_ROLES_CLUSTER`, no EKS context to infer from) and as
//! `list`/`audit` and `annotate --dry-run`, on a cluster where every kind `annotate` writes to is affected and one
//! workload carries a stale annotation to remove. Then every Kubernetes request must be allowed by the
//! ClusterRole and every (group, resource, verb) of the ClusterRole must have been used; the IAM and EKS actions
//! called must be those of `iam-policy.json`, each on a resource its statements name, and `sts:AssumeRole`
//! (`--account-role`) that of `iam-policy-cross-account.json`. `doctor`, `snapshot` and `audit --suggest-policy`
//! run on a fresh cluster each and must call exactly what their own policy files grant.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

use super::{Manifests, manifests_dir};
use crate::support::cli::{Cmd, Context, Kubeconfig, KubeconfigFile, Output};
use std::sync::Arc;

use crate::support::athena::{FakeAthena, RunningAthena};
use crate::support::cloudtrail::{FakeCloudTrail, RunningCloudTrail, TrailSpec};
use crate::support::eks::{FakeEks, RunningEks};
use crate::support::fixtures::{
    cron_job, daemon_set, deployment, job, pod, replica_set, service_account, stateful_set,
};
use crate::support::iam::{FakeIam, RoleSpec, RunningIam, allow, irsa_trust};
use crate::support::kube_api::{Access, FakeKube, RunningKube};
use crate::support::s3::{FakeS3, RunningS3};
use crate::support::sts::{FakeSts, RunningSts};
use crate::support::trail::{call, gz, log_key};

const ACCOUNT: &str = "111122223333";
const OTHER: &str = "444455556666";
const REGION: &str = "us-west-2";
const CLUSTER: &str = "prod";
const NS: &str = "shop";
const TOKEN: &str = "in-cluster-service-account-token";
/// The role `--account-role` assumes in the other account; named as `iam-policy-cross-account.json` expects.
const OTHER_AUDITOR: &str = "arn:aws:iam::444455556666:role/iam-roles-auditor";
const TRAIL: &str = "org";
const TRAIL_BUCKET: &str = "org-trail";
const WORKGROUP: &str = "auditors";
/// Actions a policy grants that the binary never calls itself: S3 calls KMS to decrypt a trail's files, and
/// Athena reads the table's definition (Glue) and the files (S3), and writes its results, as the caller.
const SERVER_SIDE: [&str; 1] = ["kms:Decrypt"];
const ATHENA_SERVER_SIDE: [&str; 8] = [
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetPartitions",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:GetBucketLocation",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
];

struct World {
    kube: RunningKube,
    eks: RunningEks,
    iam: RunningIam,
    sts: RunningSts,
    s3: RunningS3,
    cloudtrail: RunningCloudTrail,
    athena: RunningAthena,
    kubeconfig: KubeconfigFile,
    /// Role ARN by role name, to name the resource of a `GetRole` call.
    roles: BTreeMap<String, String>,
    cache: tempfile::TempDir,
}

fn ago(days: i64) -> String {
    let now = Timestamp::now().round(jiff::Unit::Second).expect("round");
    now.checked_sub(SignedDuration::from_hours(24 * days)).expect("in range").to_string()
}

/// Shop: one role with a never-used service bound (IRSA) to a workload of every kind `annotate` writes to, a
/// Pod Identity role with a never-used service on a DaemonSet, a fully used role whose Deployment and service
/// account still carry the annotations of an earlier audit, and a role in another account.
fn world() -> World {
    let (kube, eks, iam, sts) = (FakeKube::new(), FakeEks::new(), FakeIam::new(ACCOUNT), FakeSts::new(ACCOUNT));
    iam.job_delay(Duration::from_millis(10));
    sts.share_keys_with(&iam);
    let issuer = eks.add_cluster(CLUSTER, REGION, ACCOUNT);
    iam.add_oidc_provider(&issuer, &["sts.amazonaws.com"]);
    // Managed policies of both kinds, so `--suggest-policy` reads each.
    const AWS_MANAGED: &str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";
    let customer_managed = format!("arn:aws:iam::{ACCOUNT}:policy/shop-kms");
    iam.add_managed_policy(AWS_MANAGED, allow(&["s3:GetObject", "s3:ListBucket"]));
    iam.add_managed_policy(&customer_managed, allow(&["kms:Decrypt"]));
    kube.add(daemon_set("kube-system", "eks-pod-identity-agent", 2, 2).build());
    let mut roles = BTreeMap::new();
    let mut role = |spec: RoleSpec, used: &[&str]| {
        let name = spec.name.clone();
        let arn = iam.add_role(spec.last_used(&ago(1), REGION));
        for service in used {
            iam.set_usage(&arn, service, Some(&ago(2)), None, Some(REGION));
        }
        roles.insert(name, arn.clone());
        arn
    };
    let wide = role(
        RoleSpec::new("shop-wide")
            .inline("main", allow(&["s3:GetObject", "kms:Decrypt"]))
            .attach(AWS_MANAGED)
            .attach(&customer_managed),
        &["s3"],
    );
    let agent = role(RoleSpec::new("shop-agent").inline("main", allow(&["s3:GetObject", "sqs:SendMessage"])), &["s3"]);
    let trimmed = role(RoleSpec::new("shop-trimmed").inline("main", allow(&["s3:GetObject"])), &["s3"]);
    let partner = role(RoleSpec::new("partner").account(OTHER).inline("main", allow(&["s3:GetObject"])), &["s3"]);
    iam.add_role(RoleSpec::new("iam-roles-auditor").account(OTHER));

    // Each role trusts the service accounts it is bound to, as wired-up IRSA roles do (annotate writes usage
    // only for bindings the role's trust policy admits).
    let irsa = |sa: &str, arn: &str| {
        let account = arn.split(':').nth(4).unwrap_or(ACCOUNT);
        iam.trust_also(arn, &irsa_trust(account, &issuer, NS, sa));
        kube.add(service_account(NS, sa).irsa(arn).build());
    };
    let irsa_pod = |name: &str, sa: &str, owner: Option<(&str, &str)>, arn: &str| {
        let p = pod(NS, name).service_account(sa);
        let p = match owner {
            Some((kind, owner)) => p.owner(kind, owner),
            None => p,
        };
        kube.add(p.irsa(arn).build());
    };
    irsa("api", &wide);
    kube.add(deployment(NS, "api").service_account("api").build());
    kube.add(replica_set(NS, "api-7d9f4").owner("Deployment", "api").service_account("api").build());
    irsa_pod("api-7d9f4-x2m9p", "api", Some(("ReplicaSet", "api-7d9f4")), &wide);
    irsa("db", &wide);
    kube.add(stateful_set(NS, "db").service_account("db").build());
    irsa_pod("db-0", "db", Some(("StatefulSet", "db")), &wide);
    irsa("report", &wide);
    kube.add(cron_job(NS, "report").service_account("report").build());
    kube.add(job(NS, "report-29000000").owner("CronJob", "report").service_account("report").build());
    irsa_pod("report-29000000-q8w7e", "report", Some(("Job", "report-29000000")), &wide);
    irsa("migrate", &wide);
    kube.add(job(NS, "migrate").service_account("migrate").build());
    irsa_pod("migrate-k2j4h", "migrate", Some(("Job", "migrate")), &wide);
    irsa("legacy", &wide);
    kube.add(replica_set(NS, "legacy").service_account("legacy").build());
    irsa_pod("legacy-p9z8x", "legacy", Some(("ReplicaSet", "legacy")), &wide);
    irsa("debug", &wide);
    irsa_pod("debug", "debug", None, &wide);

    kube.add(service_account(NS, "agent").build());
    eks.add_association(CLUSTER, NS, "agent", &agent, None);
    kube.add(daemon_set(NS, "agent", 1, 1).service_account("agent").build());
    kube.add(pod(NS, "agent-5mxkq").service_account("agent").owner("DaemonSet", "agent").pod_identity().build());

    let stale = [
        ("iam-roles.io/unused-services", "kms"),
        ("iam-roles.io/role-arn", trimmed.as_str()),
        ("iam-roles.io/audited-at", "2026-01-01T06:00:00Z"),
    ];
    let mut sa = service_account(NS, "reports").irsa(&trimmed);
    let mut old = deployment(NS, "reports").service_account("reports");
    for (key, value) in stale {
        sa = sa.annotation(key, value);
        old = old.annotation(key, value);
    }
    kube.add_all([sa.build(), old.build()]);
    kube.add(replica_set(NS, "reports-5c6d7").owner("Deployment", "reports").service_account("reports").build());
    irsa_pod("reports-5c6d7-b4n6m", "reports", Some(("ReplicaSet", "reports-5c6d7")), &trimmed);

    irsa("partner", &partner);
    irsa_pod("partner-sync", "partner", None, &partner);

    kube.require_bearer_token(TOKEN);
    let kube = kube.start();
    // Like in-cluster config: a bearer token and a server, no EKS context to infer the cluster from.
    let kubeconfig = Kubeconfig::single(Context::new("in-cluster", &kube.url()).token(TOKEN)).write();
    let cache = tempfile::tempdir().expect("cache dir");
    // The account's trail, with a day of logs where the api's role read an object.
    let (s3, cloudtrail) = (FakeS3::new(), FakeCloudTrail::new());
    cloudtrail.add_trail(TrailSpec::new(TRAIL, ACCOUNT, REGION, TRAIL_BUCKET));
    let t = ago(1);
    let records = [call(&wide, "ASIAEXAMPLE0000001", "s3.amazonaws.com", "GetObject", &t, REGION, None)];
    s3.put(TRAIL_BUCKET, &log_key(None, ACCOUNT, REGION, &t, 1), gz(&records));
    World {
        kube,
        eks: eks.start(),
        iam: iam.start(),
        sts: sts.start(),
        s3: s3.start(),
        cloudtrail: cloudtrail.start(),
        // The drift test needs the calls, not the answer: every query returns no rows.
        athena: FakeAthena::new(Arc::new(|_: &str| Ok((Vec::new(), Vec::new())))).start(),
        kubeconfig,
        roles,
        cache,
    }
}

impl World {
    /// The binary with the CronJob's environment (placeholders filled in for the fakes) and AWS endpoints.
    fn cmd(&self) -> Cmd {
        let manifests = Manifests::load();
        let mut cmd = Cmd::new()
            .kubeconfig(&self.kubeconfig)
            .aws_credentials()
            .eks_endpoint(&self.eks.url())
            .env("AWS_ENDPOINT_URL_IAM", self.iam.url())
            .env("AWS_ENDPOINT_URL_STS", self.sts.url())
            .env("AWS_ENDPOINT_URL_S3", self.s3.url())
            .env("AWS_ENDPOINT_URL_CLOUDTRAIL", self.cloudtrail.url())
            .env("AWS_ENDPOINT_URL_ATHENA", self.athena.url());
        for var in manifests.container().env.as_deref().unwrap_or_default() {
            let value = var.value.as_deref().unwrap_or_default();
            let value = match var.name.as_str() {
                "IAM_ROLES_CACHE_DIR" => self.cache.path().to_string_lossy().into_owned(),
                _ => fill_placeholders(value, ACCOUNT),
            };
            cmd = cmd.env(&var.name, value);
        }
        cmd
    }

    /// Runs `args`; it must succeed.
    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).run();
        out.assert_code(0);
        out
    }
}

/// The manifests' placeholders as the fakes' values.
fn fill_placeholders(text: &str, account: &str) -> String {
    text.replace("ACCOUNT_ID", account)
        .replace("CLUSTER_NAME", CLUSTER)
        .replace("REGION", REGION)
        .replace("TRAIL_BUCKET", TRAIL_BUCKET)
        .replace("TRAIL_NAME", TRAIL)
        .replace("ATHENA_WORKGROUP", WORKGROUP)
}

/// Runs what the CronJob runs (its args) and the read commands, once each, on one cluster.
fn exercise() -> World {
    let w = world();
    let manifests = Manifests::load();
    let cronjob_args: Vec<String> = manifests.container().args.clone().expect("the CronJob's args");
    let cronjob_args: Vec<&str> = cronjob_args.iter().map(String::as_str).collect();
    w.run(&["list", "-A", "-o", "json"]);
    w.run(&["audit", "-A", "-o", "json"]);
    w.run(&["audit", "-A", "-o", "json", "--account-role", &format!("{OTHER}={OTHER_AUDITOR}")]);
    let mut dry_run = cronjob_args.clone();
    dry_run.push("--dry-run");
    // The partner role is in another account the CronJob has no auditor role for: its objects are left as
    // they are, and the run says so by failing, after writing everything else.
    for args in [dry_run, cronjob_args] {
        let out = w.cmd().args(&args).run();
        out.assert_code(1);
        assert!(out.stderr.contains("left as it is, evidence incomplete: ServiceAccount shop/partner: "), "{out}");
    }
    w
}

/// RBAC's rule matching: group, resource and verb listed; a rule with resourceNames matches only requests that
/// name one of them (so never a list).
fn rule_allows(rule: &PolicyRule, a: &Access) -> bool {
    let has = |list: &Option<Vec<String>>, v: &str| list.as_deref().unwrap_or_default().iter().any(|x| x == v);
    let names = rule.resource_names.as_deref().unwrap_or_default();
    has(&rule.api_groups, &a.group)
        && has(&rule.resources, &a.resource)
        && rule.verbs.contains(&a.verb)
        && (names.is_empty() || a.name.as_ref().is_some_and(|n| names.contains(n)))
}

/// Discovery paths every authenticated user may read (the default `system:discovery` ClusterRole).
fn discovery_path(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    matches!(segments.as_slice(), ["api"] | ["api", _] | ["apis"] | ["apis", _] | ["apis", _, _] | ["version"])
        || path.starts_with("/openapi/")
}

fn show(a: &Access) -> String {
    let group = if a.group.is_empty() { "core" } else { a.group.as_str() };
    format!(
        "{} {group}/{}{} ({})",
        a.verb,
        a.resource,
        a.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default(),
        a.path
    )
}

#[test]
fn the_cluster_role_grants_exactly_what_the_binary_calls() {
    let w = exercise();
    let manifests = Manifests::load();
    let rules = manifests.rules();
    let accesses = w.kube.accesses();
    assert!(accesses.iter().any(|a| a.verb == "patch"), "annotate patched nothing: the scenario is wrong");

    let denied: BTreeSet<String> = accesses
        .iter()
        .filter(|a| if a.non_resource() { !discovery_path(&a.path) } else { !rules.iter().any(|r| rule_allows(r, a)) })
        .map(show)
        .collect();
    assert!(
        denied.is_empty(),
        "requests the ClusterRole does not allow (add them to manifests/clusterrole.yaml):\n{}",
        denied.into_iter().collect::<Vec<_>>().join("\n")
    );

    let mut unused = Vec::new();
    for rule in rules {
        let names: Vec<Option<&String>> = match rule.resource_names.as_deref() {
            Some(names) if !names.is_empty() => names.iter().map(Some).collect(),
            _ => vec![None],
        };
        for group in rule.api_groups.as_deref().unwrap_or_default() {
            for resource in rule.resources.as_deref().unwrap_or_default() {
                for verb in &rule.verbs {
                    for name in &names {
                        let used = accesses.iter().any(|a| {
                            a.group == *group
                                && a.resource == *resource
                                && a.verb == *verb
                                && name.is_none_or(|n| a.name.as_ref() == Some(n))
                        });
                        if !used {
                            let name = name.map(|n| format!(" {n}")).unwrap_or_default();
                            unused.push(format!(
                                "{verb} {}/{resource}{name}",
                                if group.is_empty() { "core" } else { group }
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(
        unused.is_empty(),
        "ClusterRole grants the binary never used (remove them, or the scenario misses a case):\n{}",
        unused.join("\n")
    );
}

/// One AWS call: the IAM action it needs and the resource ARN it acts on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct AwsCall {
    action: String,
    resource: String,
    /// The account whose policy decides: the caller's.
    account: String,
}

fn aws_calls(w: &World) -> (Vec<AwsCall>, Vec<AwsCall>) {
    let mut calls = Vec::new();
    for c in w.iam.requests() {
        let resource = match c.action.as_str() {
            "GetRole" | "ListRolePolicies" | "GetRolePolicy" | "ListAttachedRolePolicies" => {
                let name = c.param("RoleName").unwrap_or_default();
                let role = w.roles.get(name).cloned();
                role.unwrap_or_else(|| panic!("{} of a role the scenario lacks: {name}", c.action))
            }
            "GetPolicy" | "GetPolicyVersion" => c.param("PolicyArn").unwrap_or_default().to_string(),
            "GenerateServiceLastAccessedDetails" => c.param("Arn").unwrap_or_default().to_string(),
            _ => "*".to_string(),
        };
        let caller = c.access_key.as_deref().unwrap_or_default();
        // Keys STS hands out carry the account (ASIA + 12 digits); the static test key is the cluster's account.
        let account = if caller.starts_with("ASIA") && caller.len() >= 16 {
            caller[4..16].to_string()
        } else {
            ACCOUNT.to_string()
        };
        calls.push(AwsCall { action: format!("iam:{}", c.action), resource, account });
    }
    for r in w.eks.requests() {
        let segments: Vec<&str> = r.path.split('/').filter(|s| !s.is_empty()).collect();
        let cluster_arn = |name: &str| format!("arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{name}");
        let (action, resource) = match segments.as_slice() {
            ["clusters", name] => ("DescribeCluster", cluster_arn(name)),
            ["clusters", name, "pod-identity-associations"] => ("ListPodIdentityAssociations", cluster_arn(name)),
            ["clusters", name, "pod-identity-associations", id] => (
                "DescribePodIdentityAssociation",
                format!("arn:aws:eks:{REGION}:{ACCOUNT}:podidentityassociation/{name}/{id}"),
            ),
            _ => panic!("an EKS call the drift test cannot name: {} {}", r.method, r.path),
        };
        calls.push(AwsCall { action: format!("eks:{action}"), resource, account: ACCOUNT.to_string() });
    }
    for r in w.s3.requests() {
        let path = r.path.trim_matches('/');
        let (action, resource) = match (r.query_param("list-type"), path.split_once('/')) {
            (None, Some((bucket, key))) => {
                ("s3:GetObject", format!("arn:aws:s3:::{bucket}/{}", crate::support::http_server::percent_decode(key)))
            }
            _ => ("s3:ListBucket", format!("arn:aws:s3:::{}", path.split('/').next().unwrap_or_default())),
        };
        calls.push(AwsCall { action: action.to_string(), resource, account: ACCOUNT.to_string() });
    }
    for r in w.cloudtrail.requests() {
        let operation = r.header("x-amz-target").and_then(|t| t.rsplit('.').next()).unwrap_or_default().to_string();
        let resource = match operation.as_str() {
            "GetEventSelectors" => {
                let body: Value = serde_json::from_str(&r.body).unwrap_or_default();
                body["TrailName"].as_str().unwrap_or_default().to_string()
            }
            _ => "*".to_string(),
        };
        calls.push(AwsCall { action: format!("cloudtrail:{operation}"), resource, account: ACCOUNT.to_string() });
    }
    for r in w.athena.requests() {
        let operation = r.header("x-amz-target").and_then(|t| t.rsplit('.').next()).unwrap_or_default().to_string();
        let resource = format!("arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/{WORKGROUP}");
        calls.push(AwsCall { action: format!("athena:{operation}"), resource, account: ACCOUNT.to_string() });
    }
    let mut sts = Vec::new();
    for c in w.sts.requests().into_iter().filter(|c| c.action != "GetCallerIdentity") {
        let resource = c.param("RoleArn").unwrap_or_default().to_string();
        sts.push(AwsCall { action: format!("sts:{}", c.action), resource, account: ACCOUNT.to_string() });
    }
    (calls, sts)
}

fn policy(file: &str) -> Value {
    let text = std::fs::read_to_string(manifests_dir().join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"))
}

/// A string or a list of strings, as IAM policies allow.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(items) => items.iter().collect(),
        single @ Value::Object(_) => vec![single],
        _ => Vec::new(),
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` one character, case-sensitive (ARNs).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let mut dp = vec![vec![false; t.len() + 1]; p.len() + 1];
    dp[0][0] = true;
    for i in 1..=p.len() {
        dp[i][0] = dp[i - 1][0] && p[i - 1] == '*';
        for j in 1..=t.len() {
            dp[i][j] = match p[i - 1] {
                '*' => dp[i - 1][j] || dp[i][j - 1],
                '?' => dp[i - 1][j - 1],
                c => dp[i - 1][j - 1] && c == t[j - 1],
            };
        }
    }
    dp[p.len()][t.len()]
}

fn policy_actions(doc: &Value) -> BTreeSet<String> {
    statements(doc).iter().flat_map(|s| strings(&s["Action"])).collect()
}

/// Whether an Allow statement of `doc` (placeholders filled for the caller's account) covers the call.
fn policy_allows(doc: &Value, call: &AwsCall) -> bool {
    statements(doc).iter().any(|s| {
        s["Effect"] == "Allow"
            && strings(&s["Action"]).iter().any(|a| glob(a, &call.action))
            && strings(&s["Resource"]).iter().any(|r| glob(&fill_placeholders(r, &call.account), &call.resource))
    })
}

#[test]
fn the_iam_policies_grant_exactly_what_the_binary_calls() {
    let w = exercise();
    let (calls, sts) = aws_calls(&w);
    let main = policy("iam-policy.json");
    let cross = policy("iam-policy-cross-account.json");

    let called: BTreeSet<String> = calls.iter().map(|c| c.action.clone()).collect();
    assert_eq!(
        called,
        policy_actions(&main),
        "manifests/iam-policy.json must list exactly the IAM and EKS actions called"
    );
    let assumed: BTreeSet<String> = sts.iter().map(|c| c.action.clone()).collect();
    assert_eq!(assumed, policy_actions(&cross), "manifests/iam-policy-cross-account.json: exactly sts:AssumeRole");

    let outside: Vec<&AwsCall> = calls.iter().filter(|c| !policy_allows(&main, c)).collect();
    assert!(outside.is_empty(), "calls on resources iam-policy.json does not cover: {outside:#?}");
    let outside: Vec<&AwsCall> = sts.iter().filter(|c| !policy_allows(&cross, c)).collect();
    assert!(outside.is_empty(), "AssumeRole of roles iam-policy-cross-account.json does not cover: {outside:#?}");
    assert!(calls.iter().any(|c| c.account == OTHER), "the cross-account audit read the other account's roles");
}

/// `doctor`, `snapshot` and `audit --suggest-policy`, each on a fresh cluster, call exactly what their policy
/// files grant (`--suggest-policy`'s file adds to `iam-policy.json`), each call on a resource they name.
#[test]
fn each_commands_policy_grants_exactly_what_it_calls() {
    let athena: &[&str] =
        &["audit", "-A", "--usage", "athena", "--athena-table", "cloudtrail.logs", "--athena-workgroup", WORKGROUP];
    let commands: [(&[&str], &[&str], &[&str]); 5] = [
        (&["doctor", "-A"], &["iam-policy-doctor.json"], &[]),
        (&["snapshot", "-A"], &["iam-policy-snapshot.json"], &[]),
        (&["audit", "-A", "--suggest-policy"], &["iam-policy.json", "iam-policy-suggest-policy.json"], &[]),
        (&["audit", "-A", "--usage", "cloudtrail"], &["iam-policy.json", "iam-policy-cloudtrail.json"], &SERVER_SIDE),
        (athena, &["iam-policy.json", "iam-policy-athena.json"], &ATHENA_SERVER_SIDE),
    ];
    for (args, files, server_side) in commands {
        let w = world();
        w.run(args);
        let (calls, sts) = aws_calls(&w);
        assert!(sts.is_empty(), "{args:?} assumed roles: {sts:?}");
        let docs: Vec<Value> = files.iter().map(|f| policy(f)).collect();
        let granted: BTreeSet<String> =
            docs.iter().flat_map(policy_actions).filter(|a| !server_side.contains(&a.as_str())).collect();
        let called: BTreeSet<String> = calls.iter().map(|c| c.action.clone()).collect();
        assert_eq!(called, granted, "{args:?}: {files:?} must list exactly the IAM and EKS actions it calls");
        let outside: Vec<&AwsCall> = calls.iter().filter(|c| !docs.iter().any(|d| policy_allows(d, c))).collect();
        assert!(outside.is_empty(), "{args:?}: calls on resources {files:?} do not cover: {outside:#?}");
    }
    // The addition for --suggest-policy holds only what the audit's own policy lacks.
    let (main, extra) =
        (policy_actions(&policy("iam-policy.json")), policy_actions(&policy("iam-policy-suggest-policy.json")));
    assert!(main.is_disjoint(&extra), "iam-policy-suggest-policy.json repeats {:?}", main.intersection(&extra));
}

/// Actions the IAM service authorization reference lists with no resource type: only `"Resource": "*"` can
/// grant them. Every other action must be scoped to its resources.
const NO_RESOURCE_LEVEL_PERMISSIONS: [&str; 3] =
    ["iam:GetServiceLastAccessedDetails", "iam:ListOpenIDConnectProviders", "cloudtrail:DescribeTrails"];

/// Every IAM policy file in `manifests/`.
fn policy_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(manifests_dir())
        .expect("manifests/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with("iam-policy") && f.ends_with(".json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_policy_file_is_checked_against_a_command() {
    let checked = [
        "iam-policy-athena.json",
        "iam-policy-cloudtrail.json",
        "iam-policy-cross-account.json",
        "iam-policy-doctor.json",
        "iam-policy-snapshot.json",
        "iam-policy-suggest-policy.json",
        "iam-policy.json",
    ];
    assert_eq!(policy_files(), checked, "a new policy file needs a command in the drift test");
}

#[test]
fn the_iam_policies_are_least_privilege_documents() {
    for file in policy_files() {
        let file = file.as_str();
        let doc = policy(file);
        assert_eq!(doc["Version"], "2012-10-17", "{file}");
        for s in statements(&doc) {
            assert_eq!(s["Effect"], "Allow", "{file}: {s}");
            assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none(), "{file}: {s}");
            let sid = s["Sid"].as_str().unwrap_or_default();
            assert!(
                !sid.is_empty() && sid.chars().all(|c| c.is_ascii_alphanumeric()),
                "{file}: a Sid that says why: {s}"
            );
            let actions = strings(&s["Action"]);
            assert!(
                !actions.is_empty() && actions.iter().all(|a| !a.contains('*')),
                "{file}: no action wildcards: {s}"
            );
            for resource in strings(&s["Resource"]) {
                if resource == "*" {
                    assert!(
                        actions.iter().all(|a| NO_RESOURCE_LEVEL_PERMISSIONS.contains(&a.as_str())),
                        "{file}: only actions without resource-level permissions may use \"*\": {s}"
                    );
                } else {
                    assert!(resource.starts_with("arn:aws:"), "{file}: {resource}");
                }
            }
        }
    }
}

/// `manifests/cross-account/`: the auditor role of another account may do exactly what the audit asks of it
/// there, trusts the cluster account's auditor role, and the sample configuration names it.
#[test]
fn the_cross_account_setup_grants_what_the_other_account_is_asked() {
    let w = exercise();
    let (calls, sts) = aws_calls(&w);
    let there: Vec<&AwsCall> = calls.iter().filter(|c| c.account == OTHER).collect();
    assert!(!there.is_empty(), "the scenario audits a role of the other account");
    let doc = policy("cross-account/auditor-policy.json");
    let asked: BTreeSet<String> = there.iter().map(|c| c.action.clone()).collect();
    assert_eq!(asked, policy_actions(&doc), "auditor-policy.json must list exactly what is asked there");
    let outside: Vec<&&AwsCall> = there.iter().filter(|c| !policy_allows(&doc, c)).collect();
    assert!(outside.is_empty(), "calls auditor-policy.json does not cover: {outside:#?}");

    let trust = policy("cross-account/auditor-trust-policy.json");
    let statement = &trust["Statement"][0];
    assert_eq!((statement["Effect"].as_str(), statement["Action"].as_str()), (Some("Allow"), Some("sts:AssumeRole")));
    assert_eq!(statement["Principal"]["AWS"], "arn:aws:iam::CLUSTER_ACCOUNT_ID:role/iam-roles-auditor");
    assert!(sts.iter().all(|c| c.resource == OTHER_AUDITOR), "the role assumed is the one the setup names");

    let text = std::fs::read_to_string(manifests_dir().join("cross-account/config.yaml")).unwrap();
    let config: Value = serde_saphyr::from_str(&text).unwrap();
    let roles = config["accountRoles"].as_object().expect("accountRoles");
    assert!(roles.iter().all(|(account, role)| {
        role.as_str().is_some_and(|r| r.contains(account.as_str()) && r.ends_with(":role/iam-roles-auditor"))
    }));
}
