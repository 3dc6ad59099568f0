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

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubectl_iam_roles::collect;
use kubectl_iam_roles::model::*;
use serde_json::{Value, json};

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

fn bench_resolve(size: &Size, quick: bool) {
    // Kept under target/ so the same input can be profiled by hand afterwards. A child process writes it,
    // so this process stays small: a spawned child's peak RSS counts its parent's pages until exec.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("bench-snapshot.json");
    let mut writer = Command::new(std::env::current_exe().expect("bench path"));
    writer.arg("--write-snapshot").arg(&path);
    if quick {
        writer.arg("--quick");
    }
    assert!(writer.status().expect("run snapshot writer").success());
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let path_str = path.to_str().expect("utf-8 path");
    let (binary, rss) = best_of(3, || run_binary(&["--snapshot", path_str, "-o", "json"]));

    let (parse_only, _) = best_of(5, || {
        let start = Instant::now();
        let text = std::fs::read_to_string(&path).expect("read");
        let v: serde_json::Value = serde_json::from_str(&text).expect("parse");
        std::hint::black_box(v);
        (start.elapsed(), ())
    });
    let (in_process, items) = best_of(5, || {
        let start = Instant::now();
        let snap = kubectl_iam_roles::collect::snapshot::read_all(&path).expect("read snapshot").remove(0);
        let list = kubectl_iam_roles::resolve::resolve(&snap);
        (start.elapsed(), list.items.len())
    });
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

/// The synthetic cluster as Kubernetes JSON, the way the fixtures write objects: pods, service
/// accounts and ReplicaSets.
fn cluster_objects(size: &Size) -> [Vec<Value>; 3] {
    use support::fixtures::{pod, replica_set, service_account};
    let pods_per_sa = size.pods / size.service_accounts;
    let (mut pods, mut sas, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..size.service_accounts {
        let ns = format!("ns-{}", i % NAMESPACES);
        let name = format!("svc-{i}");
        let rs = format!("{name}-5d8f7c9b4");
        let irsa = i >= size.associations && i % 10 != 0;
        let mut sa = service_account(&ns, &name);
        if irsa {
            sa = sa.irsa(&role(i));
        }
        sas.push(sa.build());
        rss.push(replica_set(&ns, &rs).owner("Deployment", &name).build());
        for p in 0..pods_per_sa {
            let mut b = pod(&ns, &format!("{rs}-{p:05}"))
                .service_account(&name)
                .owner("ReplicaSet", &rs)
                .labels(&[("app", &name)])
                .container("sidecar", "envoyproxy/envoy:v1.31");
            b = if irsa { b.irsa(&role(i)) } else { b.pod_identity() };
            pods.push(b.build());
        }
    }
    [pods, sas, rss]
}

/// Every list page the collector will ask for, rendered once, so the server costs only a lookup: the
/// strictest comparison, since a real API server encodes every page it sends.
fn prerendered_pages(size: &Size) -> HashMap<(String, String), Vec<u8>> {
    let [pods, sas, rss] = cluster_objects(size);
    let mut pages = HashMap::new();
    for (path, kind, api_version, items) in [
        ("/api/v1/pods", "PodList", "v1", pods),
        ("/api/v1/serviceaccounts", "ServiceAccountList", "v1", sas),
        ("/apis/apps/v1/replicasets", "ReplicaSetList", "apps/v1", rss),
        ("/apis/batch/v1/jobs", "JobList", "batch/v1", Vec::new()),
    ] {
        let chunks: Vec<&[Value]> = if items.is_empty() { vec![&[]] } else { items.chunks(500).collect() };
        for (i, chunk) in chunks.iter().enumerate() {
            let mut metadata = json!({"resourceVersion": "1000"});
            if i + 1 < chunks.len() {
                metadata["continue"] = json!(format!("page-{}", i + 1));
            }
            let body = json!({"kind": kind, "apiVersion": api_version, "metadata": metadata, "items": chunk});
            let token = if i == 0 { String::new() } else { format!("page-{i}") };
            pages.insert((path.to_string(), token), serde_json::to_vec(&body).expect("serialise page"));
        }
    }
    pages
}

/// The raw transfer: the same paged GETs on the same client and server, bodies read as text, the
/// continue token found by a substring search, nothing parsed.
async fn raw_lists(client: &kube::Client) -> usize {
    let paths = ["/api/v1/pods", "/api/v1/serviceaccounts", "/apis/apps/v1/replicasets", "/apis/batch/v1/jobs"];
    let lists = paths.map(|path| async move {
        let mut bytes = 0;
        let mut token: Option<String> = None;
        loop {
            let lp = kube::api::ListParams { limit: Some(500), continue_token: token.clone(), ..Default::default() };
            let req = kube::core::Request::new(path).list(&lp).expect("request");
            let text = client.request_text(req).await.expect("raw list");
            bytes += text.len();
            token = text.rfind("\"continue\":\"").map(|i| {
                let rest = &text[i + 12..];
                rest[..rest.find('"').unwrap_or(0)].to_string()
            });
            if token.is_none() {
                return bytes;
            }
        }
    });
    futures::future::join_all(lists).await.into_iter().sum()
}

fn bench_collect(size: &Size) {
    let pages = Arc::new(prerendered_pages(size));
    let page_count = pages.len();
    let served = pages.clone();
    let prerendered = support::http_server::serve(Arc::new(move |req: support::http_server::Request| {
        let token = req.query_param("continue").unwrap_or_default();
        match served.get(&(req.path.clone(), token)) {
            Some(body) => support::http_server::Response {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.clone(),
                delay: None,
            },
            None => support::http_server::Response::json(404, &json!({"kind": "Status", "code": 404})),
        }
    }));
    let fake = support::kube_api::FakeKube::new();
    for objects in cluster_objects(size) {
        fake.add_all(objects);
    }
    let stateful = fake.start();
    println!("== collect from an API server ({page_count} list pages)");
    measure_collect(&stateful.url(), "the stateful fake API server (encodes every page)", size, 2);
    measure_collect(&prerendered.url(), "pre-rendered pages (no server work: the strict bound)", size, 5);
}

fn measure_collect(url: &str, label: &str, size: &Size, runs: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let yaml = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: bench\nclusters: [{{name: bench, cluster: {{server: '{}'}}}}]\n\
         users: [{{name: bench, user: {{token: t}}}}]\ncontexts: [{{name: bench, context: {{cluster: bench, user: bench}}}}]\n",
        url
    );
    std::fs::write(&kubeconfig, yaml).expect("write kubeconfig");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let options = collect::Options { kubeconfig: Some(kubeconfig.clone()), all_namespaces: true, ..Default::default() };
    let client = runtime.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
        kube::Client::try_from(config).expect("client")
    });
    let (raw, bytes) = best_of(runs, || {
        let start = Instant::now();
        let bytes = runtime.block_on(raw_lists(&client));
        (start.elapsed(), bytes)
    });
    let (ours, pods) = best_of(runs, || {
        let start = Instant::now();
        let snap = runtime
            .block_on(async {
                let conn = collect::Connection::open(&options).await?;
                collect::live(&conn, None).await
            })
            .expect("collect");
        let list = kubectl_iam_roles::resolve::resolve(&snap);
        std::hint::black_box(list);
        (start.elapsed(), snap.pods.len())
    });
    assert_eq!(pods, size.pods, "collected every pod");
    let overhead = (ours.as_secs_f64() / raw.as_secs_f64() - 1.0) * 100.0;
    println!("   {label}: {:.1} MB of list JSON", bytes as f64 / 1e6);
    println!("   raw paged list requests       {:>8.1} ms", ms(raw));
    println!(
        "   collect + resolve             {:>8.1} ms  (overhead {overhead:+.0}% of the raw transfer; target < 20%)",
        ms(ours)
    );
}

fn main() {
    kubectl_iam_roles::install_crypto_provider();
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let size = if quick {
        Size { pods: 5_000, service_accounts: 500, associations: 100 }
    } else {
        Size { pods: 50_000, service_accounts: 5_000, associations: 1_000 }
    };
    if let Some(i) = args.iter().position(|a| a == "--write-snapshot") {
        let snap = synthetic_snapshot(&size);
        std::fs::write(&args[i + 1], serde_json::to_vec(&snap).expect("serialise")).expect("write snapshot");
        return;
    }
    bench_resolve(&size, quick);
    if !args.iter().any(|a| a == "--resolve") {
        bench_collect(&size);
    }
}
