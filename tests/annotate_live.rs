//! `annotate` through the real binary against the fake Kubernetes API, EKS, IAM and STS (issue 4):
//! exactly the affected objects get our keys, foreign annotations survive, stale findings are cleared,
//! a re-run and a dry run write nothing, and one object's conflict, absence or refusal spoils nothing else.

mod support;

use serde_json::Value;
use support::cli::{Cmd, Output};
use support::fixtures::deployment;
use support::kube_api::Fault;
use support::world::{Fakes, World};

const API: &str = "arn:aws:iam::111122223333:role/payments-api";
const UNUSED: &str = "iam-roles.io/unused-services";
const ROLE: &str = "iam-roles.io/role-arn";
const AUDITED: &str = "iam-roles.io/audited-at";

/// `pay/api` runs as a role holding kms it never used; `pay/web` uses everything its role holds but
/// still carries a finding from an earlier run; `other/extra` has nothing to do with us.
fn world() -> World {
    let f = Fakes::new();
    let api = f.role("payments-api", &["s3:GetObject", "kms:Decrypt"], Some(0));
    f.used("payments-api", "s3", 0);
    let web = f.role("web", &["sqs:SendMessage"], Some(0));
    f.used("web", "sqs", 0);
    f.irsa_app("pay", "api", "api", &api);
    f.kube.add(deployment("pay", "api").service_account("api").annotation("team", "payments").build());
    f.irsa_app("pay", "web", "web", &web);
    let stale = [("team", "web"), (UNUSED, "sns"), (ROLE, web.as_str()), (AUDITED, "2026-01-01T00:00:00Z")];
    let mut d = deployment("pay", "web").service_account("web");
    for (k, v) in stale {
        d = d.annotation(k, v);
    }
    f.kube.add(d.build());
    f.kube.add(deployment("other", "extra").annotation("owner", "someone").build());
    f.start()
}

fn annotate(w: &World, args: &[&str]) -> Output {
    w.cmd().args(["annotate", "-A"]).args(args).run()
}

fn annotations(w: &World, kind: &str, ns: &str, name: &str) -> Value {
    w.kube.get(kind, ns, name).unwrap_or_else(|| panic!("{kind} {ns}/{name}"))["metadata"]["annotations"].clone()
}

fn writes(w: &World) -> Vec<String> {
    w.kube.requests().into_iter().filter(|r| r.method != "GET").map(|r| format!("{} {}", r.method, r.path)).collect()
}

fn summary(out: &Output) -> Value {
    let last = out.stdout.lines().last().unwrap_or_else(|| panic!("no summary: {out}"));
    serde_json::from_str(last).unwrap_or_else(|e| panic!("the last line is the JSON summary ({e}): {out}"))
}

#[test]
fn annotates_exactly_the_affected_objects_and_clears_stale_findings() {
    let w = world();
    let out = annotate(&w, &[]);
    out.assert_code(0);

    for kind in ["Deployment", "ServiceAccount"] {
        let a = annotations(&w, kind, "pay", "api");
        assert_eq!((a[UNUSED].as_str(), a[ROLE].as_str()), (Some("kms"), Some(API)), "{kind}: {a:#}");
        assert!(a[AUDITED].as_str().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()), "{a:#}");
    }
    assert_eq!(annotations(&w, "Deployment", "pay", "api")["team"], "payments", "foreign annotations survive");
    let web = annotations(&w, "Deployment", "pay", "web");
    assert_eq!(web, serde_json::json!({"team": "web"}), "the stale finding is gone, the rest stays");
    assert_eq!(annotations(&w, "Deployment", "other", "extra"), serde_json::json!({"owner": "someone"}));

    let patches: Vec<_> = w.kube.requests().into_iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 3, "{:?}", writes(&w));
    for p in &patches {
        assert_eq!(p.query_param("fieldManager"), Some("kubectl-iam-roles"));
        assert!(p.header("content-type").is_some_and(|c| c.starts_with("application/merge-patch+json")));
        let body: Value = serde_json::from_str(&p.body).unwrap();
        let keys: Vec<&String> = body["metadata"]["annotations"].as_object().unwrap().keys().collect();
        assert!(keys.iter().all(|k| k.starts_with("iam-roles.io/")), "only our keys are sent: {keys:?}");
        assert!(body["metadata"]["resourceVersion"].is_string(), "guarded by the resourceVersion read");
        assert!(body.get("spec").is_none());
    }
    let events = w.kube.requests().into_iter().filter(|r| r.method == "POST" && r.path.ends_with("/events")).count();
    assert_eq!(events, 3, "one Event per changed object");
    let s = summary(&out);
    assert_eq!(
        (s["objectsAnnotated"].as_u64(), s["objectsCleared"].as_u64(), s["errors"].as_u64()),
        (Some(2), Some(1), Some(0)),
        "{s}"
    );
    assert_eq!(s["rolesWithUnusedServices"], 1);

    // Same data, second run: nothing to write.
    w.kube.clear_requests();
    let again = annotate(&w, &[]);
    again.assert_code(0);
    assert!(writes(&w).is_empty(), "a re-run writes nothing: {:?}", writes(&w));
    assert_eq!(summary(&again)["objectsAnnotated"], 0);
}

#[test]
fn dry_run_prints_the_diff_and_writes_nothing() {
    let w = world();
    let out = annotate(&w, &["--dry-run"]);
    out.assert_code(0);
    assert!(writes(&w).is_empty(), "{:?}", writes(&w));
    assert!(out.stdout.contains("Deployment pay/api\n  + iam-roles.io/audited-at: "), "{out}");
    assert!(out.stdout.contains("  + iam-roles.io/unused-services: kms"), "{out}");
    assert!(out.stdout.contains("Deployment pay/web\n  - iam-roles.io/audited-at: 2026-01-01T00:00:00Z"), "{out}");
    assert!(out.stdout.contains("  - iam-roles.io/unused-services: sns"), "{out}");
    assert_eq!(summary(&out)["dryRun"], true);
    assert!(annotations(&w, "Deployment", "pay", "web").get(UNUSED).is_some());
}

#[test]
fn a_conflict_a_deletion_or_a_refusal_on_one_object_leaves_the_rest_done() {
    let w = world();
    w.kube.fault(Fault::new("/deployments/api", 409).method("PATCH"));
    w.kube.fault(Fault::new("/serviceaccounts/api", 403).method("PATCH"));
    w.kube.fault(Fault::new("/deployments/web", 404).method("PATCH"));
    let out = annotate(&w, &[]);
    // A refused patch is work not done: the run fails, so a CronJob shows it, after doing the rest.
    out.assert_code(1);
    assert!(out.stderr.contains("counted 1 error(s)"), "{out}");
    assert!(out.stderr.contains("Deployment pay/api changed between read and write; skipped"), "{out}");
    assert!(out.stderr.contains("error: not allowed to patch ServiceAccount pay/api"), "{out}");
    assert!(out.stderr.contains("Deployment pay/web was deleted before it could be annotated"), "{out}");
    let s = summary(&out);
    assert_eq!(
        (s["skipped"].as_u64(), s["errors"].as_u64(), s["objectsAnnotated"].as_u64()),
        (Some(2), Some(1), Some(0)),
        "{s}"
    );

    // Without the faults, the next run finishes the job.
    w.kube.clear_faults();
    let out = annotate(&w, &[]);
    assert_eq!(summary(&out)["objectsAnnotated"], 2, "{out}");
    assert_eq!(annotations(&w, "ServiceAccount", "pay", "api")[UNUSED], "kms");
}

#[test]
fn refuses_snapshots_and_selectors() {
    let out = Cmd::new().args(["--snapshot", "examples/demo-snapshot.json", "annotate"]).run();
    out.assert_code(2);
    assert!(out.stderr.contains("cannot run on --snapshot"), "{out}");
    let w = world();
    let out = annotate(&w, &["-l", "app=api"]);
    out.assert_code(2);
    assert!(writes(&w).is_empty());
}

/// Why the in-cluster test cannot run here, if it cannot: it needs root (for a mount namespace) and `unshare`.
fn in_cluster_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Some(format!("it needs root for a private mount namespace (running as uid {euid})"));
    }
    let unshare = std::process::Command::new("unshare").arg("--version").output();
    if !unshare.is_ok_and(|o| o.status.success()) {
        return Some("`unshare` (util-linux) is not on PATH".into());
    }
    None
}

/// The CronJob's way in: `annotate -A` with in-cluster configuration (service host/port env, token and CA
/// files) over TLS, and the CronJob's environment (cluster name from `IAM_ROLES_CLUSTER`, no kubeconfig).
/// kube-rs reads the token and CA from fixed paths, so the binary runs in a private mount namespace with a
/// tmpfs over /run holding them. That needs root (CI runs as root); elsewhere the test says why it skips.
#[test]
fn annotate_runs_in_cluster_over_tls() {
    if let Some(reason) = in_cluster_unavailable() {
        eprintln!("skipped annotate_runs_in_cluster_over_tls: {reason}");
        return;
    }
    let f = Fakes::new();
    let api = f.role("payments-api", &["s3:GetObject", "kms:Decrypt"], Some(0));
    f.used("payments-api", "s3", 0);
    f.irsa_app("pay", "api", "api", &api);
    f.kube.add(deployment("pay", "api").service_account("api").build());
    f.kube.require_bearer_token("in-cluster-token");
    let kube = f.kube.start_tls();
    let (eks, iam, sts) = (f.eks.start(), f.iam.start(), f.sts.start());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "in-cluster-token").unwrap();
    std::fs::write(dir.path().join("ca.crt"), kube.ca_pem().unwrap()).unwrap();
    std::fs::write(dir.path().join("namespace"), "pay").unwrap();
    let port = kube.url().rsplit(':').next().unwrap().to_string();
    let sa_dir = "/run/secrets/kubernetes.io/serviceaccount";
    let run = |args: &str| {
        let script = format!(
            "mount -t tmpfs tmpfs /run && mkdir -p {sa_dir} && cp '{}'/token '{}'/ca.crt '{}'/namespace {sa_dir}/ && exec '{}' {args}",
            dir.path().display(),
            dir.path().display(),
            dir.path().display(),
            support::cli::bin_path().display()
        );
        std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", &port)
            .env("IAM_ROLES_CLUSTER", "prod")
            .env("IAM_ROLES_CACHE_DIR", dir.path().join("cache"))
            .env("AWS_REGION", "us-west-2")
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
            .env("AWS_ENDPOINT_URL_EKS", eks.url())
            .env("AWS_ENDPOINT_URL_IAM", iam.url())
            .env("AWS_ENDPOINT_URL_STS", sts.url())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("unshare runs the binary in its own mount namespace")
    };
    let out = run("annotate -A");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "in-cluster annotate failed\n{stdout}\n{stderr}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("the JSON summary");
    assert_eq!(summary["objectsAnnotated"], 2, "{summary}");
    let deployment = kube.get("Deployment", "pay", "api").expect("pay/api");
    assert_eq!(deployment["metadata"]["annotations"][UNUSED], "kms", "{deployment:#}");
    assert_eq!(deployment["metadata"]["annotations"][ROLE], api.as_str());
    assert!(kube.requests().iter().any(|r| r.method == "PATCH"), "annotate wrote through the in-cluster client");

    // Without -A, the pod's namespace (the service account's namespace file) is the default scope.
    let out = run("-o json");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["items"][0]["roleArn"], api.as_str(), "{doc:#}");
    assert!(kube.requests().iter().any(|r| r.path == "/api/v1/namespaces/pay/pods"), "the namespace file's scope");
}
