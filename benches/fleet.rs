//! Fleet benchmark (issue 12): N fake clusters, each with its own API server (every request answered after
//! a 40 ms round trip, as a remote EKS endpoint is) and EKS cluster, read in one run with `--context` repeated.
//! Two clusters should take about as long as the slower one, not the sum: it prints each fleet's time and its
//! ratio to the one-cluster time (1.0 = perfectly concurrent; N = one after another).
//!
//! Run: `cargo bench --bench fleet` (`-- --quick` for fewer pods per cluster).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::cli::{Cmd, Context, Kubeconfig};
use support::eks::FakeEks;
use support::fixtures::{deployment, pod, replica_set, service_account};
use support::kube_api::{FakeKube, RunningKube};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-west-2";
const ROUND_TRIP: Duration = Duration::from_millis(40);

fn cluster(name: &str, workloads: usize) -> RunningKube {
    let kube = FakeKube::new();
    for i in 0..workloads {
        let ns = format!("team-{}", i % 10);
        let sa = format!("app-{i:04}");
        let role = format!("arn:aws:iam::{ACCOUNT}:role/{name}-{sa}");
        kube.add(service_account(&ns, &sa).irsa(&role).build());
        kube.add(deployment(&ns, &sa).service_account(&sa).build());
        let rs = format!("{sa}-5d8f7");
        kube.add(replica_set(&ns, &rs).owner("Deployment", &sa).build());
        for p in 0..3 {
            let pod_name = format!("{rs}-{p:05}");
            kube.add(pod(&ns, &pod_name).service_account(&sa).owner("ReplicaSet", &rs).irsa(&role).build());
        }
    }
    kube.set_delay(Some(ROUND_TRIP));
    kube.start()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let workloads = if quick { 200 } else { 1000 };
    kubectl_iam_roles::install_crypto_provider();
    let sizes = [1usize, 2, 4, 8];
    let max = *sizes.iter().max().expect("sizes");
    let eks = FakeEks::new();
    let names: Vec<String> = (0..max).map(|i| format!("c{i}")).collect();
    for name in &names {
        eks.add_cluster(name, REGION, ACCOUNT);
    }
    let kubes: Vec<RunningKube> = names.iter().map(|n| cluster(n, workloads)).collect();
    let mut config = Kubeconfig::new();
    for (name, kube) in names.iter().zip(&kubes) {
        config = config.context(Context::eks(name, REGION, ACCOUNT, &kube.url()));
    }
    let kubeconfig = config.write();
    let eks = eks.start();
    println!(
        "fleet bench: clusters of {workloads} workloads ({} pods) each, {} ms per API request",
        workloads * 3,
        ROUND_TRIP.as_millis()
    );

    let time = |n: usize| {
        let mut cmd = Cmd::new().kubeconfig(&kubeconfig).aws_credentials().eks_endpoint(&eks.url());
        for name in &names[..n] {
            cmd = cmd.args(["--context", &format!("arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{name}")]);
        }
        let cmd = cmd.args(["-A", "-o", "json"]);
        (0..3)
            .map(|_| {
                let start = Instant::now();
                let out = cmd.command().output().expect("run");
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                start.elapsed()
            })
            .min()
            .expect("runs")
    };
    let one = time(1);
    println!("   1 cluster:  {:>6.0} ms", one.as_secs_f64() * 1000.0);
    for &n in &sizes[1..] {
        let t = time(n);
        println!(
            "   {n} clusters: {:>6.0} ms = {:.2}x the one-cluster time (sequential would be {n}x)",
            t.as_secs_f64() * 1000.0,
            t.as_secs_f64() / one.as_secs_f64()
        );
    }
}
