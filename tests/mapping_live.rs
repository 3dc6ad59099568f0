//! `list`, `who-uses` and `snapshot` against the fake Kubernetes API and EKS, through the real binary.

mod support;

use serde_json::Value;
use support::cli::{Cmd, Context, Kubeconfig, KubeconfigFile};
use support::eks::{FakeEks, RunningEks};
use support::fixtures::{daemon_set, pod, replica_set, service_account};
use support::kube_api::{FakeKube, Fault, RunningKube};

const ACCOUNT: &str = "111122223333";
const API_ROLE: &str = "arn:aws:iam::111122223333:role/payments-api";
const CHECKOUT_ROLE: &str = "arn:aws:iam::111122223333:role/checkout";
const TOKEN: &str = "k8s-aws-v1.fake-token";

/// A small shop: IRSA in payments, Pod Identity in checkout, nothing in plain, the agent in kube-system.
fn shop() -> FakeKube {
    let kube = FakeKube::new();
    kube.add(service_account("payments", "payments-api").irsa(API_ROLE).build());
    kube.add(replica_set("payments", "api-5f6d7").owner("Deployment", "api").build());
    for i in 0..3 {
        kube.add(
            pod("payments", &format!("api-5f6d7-{i}"))
                .service_account("payments-api")
                .owner("ReplicaSet", "api-5f6d7")
                .labels(&[("app", "api")])
                .irsa(API_ROLE)
                .build(),
        );
    }
    kube.add(service_account("checkout", "checkout").build());
    kube.add(replica_set("checkout", "checkout-8c9").owner("Deployment", "checkout").build());
    for i in 0..2 {
        kube.add(
            pod("checkout", &format!("checkout-8c9-{i}"))
                .service_account("checkout")
                .owner("ReplicaSet", "checkout-8c9")
                .labels(&[("app", "checkout")])
                .pod_identity()
                .build(),
        );
    }
    kube.add(service_account("plain", "default").build());
    kube.add(replica_set("plain", "web-1a2").owner("Deployment", "web").build());
    kube.add(pod("plain", "web-1a2-x").owner("ReplicaSet", "web-1a2").labels(&[("app", "web")]).build());
    kube.add(daemon_set("kube-system", "eks-pod-identity-agent", 2, 2).build());
    kube
}

fn eks_for_shop() -> FakeEks {
    let eks = FakeEks::new();
    eks.add_cluster("prod", "us-west-2", ACCOUNT);
    eks.add_association("prod", "checkout", "checkout", CHECKOUT_ROLE, None);
    eks
}

fn eks_kubeconfig(kube: &RunningKube) -> KubeconfigFile {
    Kubeconfig::single(Context::eks("prod", "us-west-2", ACCOUNT, &kube.url()).ca_pem(kube.ca_pem())).write()
}

fn token_kubeconfig(kube: &RunningKube) -> KubeconfigFile {
    Kubeconfig::single(Context::new("dev", &kube.url()).ca_pem(kube.ca_pem()).token(TOKEN).namespace("payments"))
        .write()
}

fn item<'a>(doc: &'a Value, ns: &str, sa: &str) -> &'a Value {
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["namespace"] == ns && i["serviceAccount"] == sa)
        .unwrap_or_else(|| panic!("no binding for {ns}/{sa} in {doc:#}"))
}

fn codes(problems: &Value) -> Vec<String> {
    problems.as_array().unwrap().iter().map(|p| p["code"].as_str().unwrap().to_string()).collect()
}

/// A live run with AWS credentials and the fake EKS. STS and IAM point at a closed port: the mapping
/// needs neither, and `snapshot` then records no last-accessed data (audit tests cover that).
fn live(kubeconfig: &KubeconfigFile, eks: &RunningEks) -> Cmd {
    Cmd::new()
        .kubeconfig(kubeconfig)
        .aws_credentials()
        .eks_endpoint(&eks.url())
        .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_IAM", "http://127.0.0.1:9")
}

#[test]
fn maps_irsa_and_pod_identity_over_tls_with_an_exec_plugin() {
    let kube = shop();
    kube.require_bearer_token(TOKEN);
    let kube = kube.start_tls();
    let eks = eks_for_shop().start();
    let kubeconfig = eks_kubeconfig(&kube);

    let out = live(&kubeconfig, &eks).args(["-A", "-o", "json"]).run();
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["apiVersion"], "iam-roles/v1");
    assert_eq!(doc["cluster"], "prod", "cluster name inferred from the EKS context");

    let api = item(&doc, "payments", "payments-api");
    assert_eq!(api["roleArn"], API_ROLE);
    assert_eq!(api["source"], "irsa");
    assert_eq!(api["workloads"], serde_json::json!([{"kind": "Deployment", "name": "api"}]));
    assert_eq!(api["pods"], serde_json::json!(["api-5f6d7-0", "api-5f6d7-1", "api-5f6d7-2"]));

    let checkout = item(&doc, "checkout", "checkout");
    assert_eq!(
        (checkout["source"].as_str(), checkout["roleArn"].as_str()),
        (Some("pod-identity"), Some(CHECKOUT_ROLE))
    );
    assert_eq!(checkout["pods"].as_array().unwrap().len(), 2);
    assert_eq!(codes(&doc["problems"]), vec!["no-workload-identity"]);
    assert_eq!(doc["problems"][0]["object"], "Deployment/web");

    assert!(!kubeconfig.exec_invocations().is_empty(), "the exec credential plugin ran");
    assert!(kubeconfig.exec_invocations()[0].contains("--cluster-name prod"));
    let eks_calls = eks.requests();
    assert!(eks_calls.iter().all(|r| r.signed()), "every EKS request is SigV4-signed");
    assert_eq!(eks.count("/pod-identity-associations/"), 1, "one describe per association");
}

#[test]
fn runs_as_a_kubectl_plugin() {
    let kube = shop().start();
    let kubeconfig = token_kubeconfig(&kube);
    let help = Cmd::kubectl().arg("--help").run();
    help.assert_code(0);
    assert!(help.stdout.contains("who-uses") && help.stdout.contains("kubectl iam-roles"), "{help}");

    let out = Cmd::kubectl().kubeconfig(&kubeconfig).args(["who-uses", "payments-api", "-A"]).run();
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("NAMESPACE") && lines[0].contains("SERVICE ACCOUNT"), "{out}");
    // The role's binding, and the Pod Identity pods whose role could not be read: they may be its users.
    assert_eq!(lines.len(), 7, "two bindings and the problem that explains the unknown one: {out}");
    assert!(lines[1].contains("<unknown>") && lines[1].contains("pod-identity-unreadable"), "{out}");
    assert!(lines[2].contains("payments-api") && lines[2].contains("Deployment/api") && lines[2].contains("irsa"));
    assert!(out.stderr.contains("Pod Identity associations were not read"), "no cluster name here: {out}");
}

#[test]
fn default_namespace_comes_from_the_context() {
    let kube = shop().start();
    let out = Cmd::new().kubeconfig(&token_kubeconfig(&kube)).args(["-o", "json"]).run();
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["items"].as_array().unwrap().len(), 1);
    assert_eq!(doc["items"][0]["namespace"], "payments");
    assert!(kube.requests().iter().all(|r| !r.path.ends_with("/v1/pods")), "no cluster-wide list");
    assert_eq!(kube.count("GET", "/api/v1/namespaces/payments/pods"), 1);
}

#[test]
fn pages_every_list_and_never_asks_per_pod() {
    let kube = shop();
    for i in 0..1203 {
        kube.add(
            pod("bulk", &format!("worker-{i:04}"))
                .service_account("bulk")
                .owner("ReplicaSet", "worker-77")
                .irsa("arn:aws:iam::111122223333:role/bulk")
                .build(),
        );
    }
    kube.add(service_account("bulk", "bulk").irsa("arn:aws:iam::111122223333:role/bulk").build());
    kube.add(replica_set("bulk", "worker-77").owner("Deployment", "worker").build());
    let kube = kube.start();
    let out = Cmd::new().kubeconfig(&token_kubeconfig(&kube)).args(["-A", "-o", "json"]).run();
    out.assert_code(0);
    assert_eq!(item(&out.json(), "bulk", "bulk")["pods"].as_array().unwrap().len(), 1203);

    let pod_lists: Vec<_> = kube.requests().into_iter().filter(|r| r.path == "/api/v1/pods").collect();
    assert_eq!(pod_lists.len(), 3, "1208 pods in pages of 500");
    assert!(pod_lists.iter().all(|r| r.query_param("limit") == Some("500")));
    assert!(pod_lists[0].query_param("continue").is_none());
    assert!(pod_lists[1..].iter().all(|r| r.query_param("continue").is_some()));
    let per_object = kube.requests().into_iter().filter(|r| r.path.contains("/pods/")).count();
    assert_eq!(per_object, 0, "never a request per pod");
    for kind in ["/api/v1/serviceaccounts", "/apis/apps/v1/replicasets", "/apis/batch/v1/jobs"] {
        assert_eq!(kube.count("GET", kind), 1, "{kind}");
    }
}

#[test]
fn label_selector_is_sent_to_the_server() {
    let kube = shop().start();
    let out = Cmd::new().kubeconfig(&token_kubeconfig(&kube)).args(["-A", "-l", "app=checkout", "-o", "json"]).run();
    out.assert_code(0);
    let doc = out.json();
    // checkout is Pod Identity and no cluster is known: its pods stay, under a role that is unknown.
    let items = doc["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{doc:#}");
    assert_eq!(
        (items[0]["serviceAccount"].as_str(), items[0]["source"].as_str()),
        (Some("checkout"), Some("pod-identity"))
    );
    assert!(items[0]["roleArn"].is_null(), "{doc:#}");
    assert_eq!(items[0]["problems"][0]["code"], "pod-identity-unreadable");
    let pods = kube.requests().into_iter().find(|r| r.path == "/api/v1/pods").unwrap();
    assert_eq!(pods.query_param("labelSelector"), Some("app=checkout"));

    let out = Cmd::new().kubeconfig(&token_kubeconfig(&kube)).args(["-A", "-l", "app in (api)", "-o", "json"]).run();
    let doc = out.json();
    assert_eq!(doc["items"].as_array().unwrap().len(), 1);
    assert_eq!(doc["items"][0]["serviceAccount"], "payments-api");
    assert!(doc["problems"].as_array().unwrap().is_empty(), "plain/web is not selected");
}

#[test]
fn retries_throttling_and_server_errors() {
    let kube = shop();
    kube.fault(Fault::new("/api/v1/pods", 429).times(2));
    kube.fault(Fault::new("/api/v1/serviceaccounts", 500).once());
    let kube = kube.start();
    let out = Cmd::new().kubeconfig(&token_kubeconfig(&kube)).args(["-A", "-o", "json"]).run();
    out.assert_code(0);
    assert_eq!(item(&out.json(), "payments", "payments-api")["pods"].as_array().unwrap().len(), 3);
    assert_eq!(kube.count("GET", "/api/v1/pods"), 3);
    assert_eq!(kube.count("GET", "/api/v1/serviceaccounts"), 2);
}

#[test]
fn lists_again_when_the_continue_token_expires() {
    let kube = shop();
    for i in 0..600 {
        kube.add(
            pod("bulk", &format!("p-{i:04}"))
                .service_account("bulk")
                .irsa("arn:aws:iam::111122223333:role/bulk")
                .build(),
        );
    }
    kube.fault(Fault::new("/api/v1/pods", 410).once().with_continue());
    let kube = kube.start();
    let out = Cmd::new().kubeconfig(&token_kubeconfig(&kube)).args(["-A", "-o", "json"]).run();
    out.assert_code(0);
    let doc = out.json();
    let bulk = item(&doc, "bulk", "bulk");
    assert_eq!(bulk["pods"].as_array().unwrap().len(), 600, "no pod lost or counted twice");
    // first page, expired second page, then a fresh first and second page.
    assert_eq!(kube.count("GET", "/api/v1/pods"), 4);
}

#[test]
fn forbidden_pods_is_an_error_that_names_the_permission() {
    let kube = shop();
    kube.fault(Fault::new("/api/v1/pods", 403));
    let kube = kube.start();
    let out = Cmd::new().kubeconfig(&token_kubeconfig(&kube)).arg("-A").run();
    out.assert_code(1);
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr.lines().count(), 1, "one sentence: {out}");
    assert!(out.stderr.starts_with("error: not allowed to list pods in all namespaces"), "{out}");
    assert!(out.stderr.contains("README: Permissions"), "{out}");
}

#[test]
fn forbidden_replicasets_degrade_to_a_warning() {
    let kube = shop();
    kube.fault(Fault::new("/replicasets", 403));
    let kube = kube.start();
    let out = Cmd::new().kubeconfig(&token_kubeconfig(&kube)).args(["-A", "-o", "json"]).run();
    out.assert_code(0);
    let doc = out.json();
    let api = item(&doc, "payments", "payments-api");
    assert_eq!(api["workloads"], serde_json::json!([{"kind": "ReplicaSet", "name": "api-5f6d7"}]));
    assert!(out.stderr.contains("warning: not allowed to list replicasets"), "{out}");
}

#[test]
fn wrong_credentials_are_reported_as_unauthorized() {
    let kube = shop();
    kube.require_bearer_token("the-right-one");
    let kube = kube.start();
    let out = Cmd::new().kubeconfig(&token_kubeconfig(&kube)).arg("-A").run();
    out.assert_code(1);
    assert!(out.stderr.contains("rejected our credentials"), "{out}");
}

#[test]
fn unreachable_server_bad_kubeconfig_and_unknown_context() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let kubeconfig = Kubeconfig::single(Context::new("gone", &format!("http://{closed}")).token(TOKEN)).write();
    let out = Cmd::new().kubeconfig(&kubeconfig).arg("-A").run();
    out.assert_code(1);
    assert!(out.stderr.contains("cannot reach the Kubernetes API server at http://127.0.0.1:"), "{out}");

    let out = Cmd::new().kubeconfig(&kubeconfig).args(["--context", "nope"]).run();
    out.assert_code(1);
    assert!(out.stderr.contains("context \"nope\" is not in kubeconfig") && out.stderr.contains("gone"), "{out}");

    let broken = Cmd::new();
    let path = broken.home().join("broken-kubeconfig");
    std::fs::write(&path, "apiVersion: v1\nclusters: [ {name: x\n").unwrap();
    let out = broken.env("KUBECONFIG", &path).run();
    out.assert_code(1);
    assert!(out.stderr.contains("cannot use kubeconfig") && out.stderr.contains("broken-kubeconfig"), "{out}");

    let out = Cmd::new().run();
    out.assert_code(1);
    assert!(out.stderr.contains("no kubeconfig found") && out.stderr.contains("--snapshot"), "{out}");
}

#[test]
fn unknown_cluster_is_an_error() {
    let kube = shop().start();
    let eks = FakeEks::new().start();
    let out = live(&eks_kubeconfig(&kube), &eks).arg("-A").run();
    out.assert_code(1);
    assert!(out.stderr.contains("EKS cluster \"prod\" does not exist in region us-west-2"), "{out}");
}

#[test]
fn denied_or_missing_aws_access_keeps_irsa_and_says_why() {
    let kube = shop().start();
    let eks = eks_for_shop();
    eks.fault(Fault::new("/pod-identity-associations", 403));
    let eks = eks.start();
    let out = live(&eks_kubeconfig(&kube), &eks).args(["-A", "-o", "json"]).run();
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(item(&doc, "payments", "payments-api")["source"], "irsa");
    assert!(out.stderr.contains("eks:ListPodIdentityAssociations"), "{out}");

    let out = Cmd::new().kubeconfig(&eks_kubeconfig(&kube)).eks_endpoint(&eks.url()).args(["-A", "-o", "json"]).run();
    out.assert_code(0);
    assert!(out.stderr.contains("no AWS credentials"), "{out}");
    // Pods with Pod Identity credentials do not vanish: they stay under an unknown role with the reason.
    let doc = out.json();
    for i in doc["items"].as_array().unwrap() {
        let unknown = i["source"] == "pod-identity" && i["roleArn"].is_null();
        assert!(i["source"] == "irsa" || unknown, "{i:#}");
        if unknown {
            assert!(i["problems"][0]["message"].as_str().unwrap().contains("no AWS credentials"), "{i:#}");
        }
    }
    assert!(doc["items"].as_array().unwrap().iter().any(|i| i["roleArn"].is_null()), "{doc:#}");
}

#[test]
fn pages_associations_and_survives_describe_faults() {
    let kube = shop().start();
    let eks = eks_for_shop();
    for i in 0..150 {
        eks.add_association(
            "prod",
            "batch",
            &format!("job-{i:03}"),
            &format!("arn:aws:iam::111122223333:role/job-{i:03}"),
            None,
        );
    }
    let broken = eks.add_association("prod", "batch", "broken", "arn:aws:iam::111122223333:role/broken", None);
    eks.fault(Fault::new("/pod-identity-associations/a-", 429).times(3));
    eks.fault(Fault::new(&format!("/pod-identity-associations/{broken}"), 500));
    let eks = eks.start();
    let out = live(&eks_kubeconfig(&kube), &eks).args(["-A", "-o", "json"]).run();
    out.assert_code(0);
    let doc = out.json();
    let pi = doc["items"].as_array().unwrap().iter().filter(|i| i["source"] == "pod-identity").count();
    assert_eq!(pi, 151, "150 batch associations and checkout; the broken one left out");
    assert!(out.stderr.contains(&format!("association {broken} (batch/broken) is left out")), "{out}");
    let lists: Vec<_> = eks.requests().into_iter().filter(|r| r.path.ends_with("/pod-identity-associations")).collect();
    assert_eq!(lists.len(), 2, "152 associations in pages of 100");
    assert!(lists[1].query_param("nextToken").is_some());
    assert_eq!(codes(&item(&doc, "batch", "job-000")["problems"]), vec!["association-without-service-account"]);
}

#[test]
fn snapshot_answers_offline_as_live() {
    let kube = shop().start();
    let eks = eks_for_shop().start();
    let kubeconfig = eks_kubeconfig(&kube);
    let live_list = live(&kubeconfig, &eks).args(["-A", "-o", "json"]).run();
    let snap = live(&kubeconfig, &eks).args(["snapshot", "-A"]).run();
    snap.assert_code(0);
    let doc = snap.json();
    assert_eq!((doc["kind"].as_str(), doc["cluster"]["account"].as_str()), (Some("Snapshot"), Some(ACCOUNT)));
    assert!(doc["cluster"]["oidcIssuer"].as_str().unwrap().starts_with("https://oidc.eks.us-west-2.amazonaws.com/id/"));
    assert_eq!(doc["podIdentityAgent"]["ready"], 2);

    let offline = Cmd::new();
    let file = offline.home().join("snap.json");
    std::fs::write(&file, &snap.stdout).unwrap();
    let out = offline.arg("--snapshot").arg(&file).args(["-o", "json"]).run();
    out.assert_code(0);
    assert_eq!(out.json(), live_list.json(), "no cluster and no AWS credentials, same answer");

    let yaml = live(&kubeconfig, &eks).args(["snapshot", "-A", "-o", "yaml"]).run();
    let offline = Cmd::new();
    let file = offline.home().join("snap.yaml");
    std::fs::write(&file, &yaml.stdout).unwrap();
    let out = offline.arg("--snapshot").arg(&file).args(["-n", "checkout", "-o", "json"]).run();
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["items"].as_array().unwrap().len(), 1);
    assert_eq!(doc["items"][0]["roleArn"], CHECKOUT_ROLE);
}

#[test]
fn broken_snapshots_are_clear_errors() {
    let cmd = Cmd::new();
    let home = cmd.home().to_path_buf();
    // Documents that parse as a snapshot but say they are something else reach the explicit kind check.
    let demo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("examples/demo-snapshot.json").unwrap()).unwrap();
    let relabelled = |key: &str, value: &str| {
        let mut doc = demo.clone();
        doc[key] = value.into();
        doc.to_string()
    };
    let (wrong_kind, wrong_version) = (relabelled("kind", "BindingList"), relabelled("apiVersion", "iam-roles/v2"));
    let cases = [
        ("truncated.json", "{\"apiVersion\": \"iam-roles/v1\", \"kind\": \"Snapshot\",", "is not a valid snapshot"),
        (
            "other.json",
            r#"{"apiVersion":"iam-roles/v1","kind":"BindingList","items":[],"problems":[]}"#,
            "is not a valid snapshot",
        ),
        ("garbage.yaml", "- just\n- a list\n", "is not a valid snapshot"),
        ("kind.json", wrong_kind.as_str(), "is a iam-roles/v1 BindingList document, not a iam-roles/v1 Snapshot"),
        ("version.json", wrong_version.as_str(), "is a iam-roles/v2 Snapshot document, not a iam-roles/v1 Snapshot"),
    ];
    for (name, text, expected) in cases {
        let path = home.join(name);
        std::fs::write(&path, text).unwrap();
        let out = Cmd::new().arg("--snapshot").arg(&path).run();
        out.assert_code(1);
        assert!(out.stderr.contains(expected) && out.stderr.contains(name), "{name}: {out}");
        assert!(out.stderr.contains("kubectl iam-roles snapshot"), "says how to fix it: {out}");
    }
    let out = Cmd::new().args(["--snapshot", "/nonexistent/snap.json"]).run();
    out.assert_code(1);
    assert!(out.stderr.contains("cannot read snapshot /nonexistent/snap.json"), "{out}");
}

#[test]
fn usage_errors_exit_2() {
    let out = Cmd::new().args(["-o", "csv"]).run();
    out.assert_code(2);
    let out =
        Cmd::new().args(["--snapshot", "examples/demo-snapshot.json", "who-uses", "arn:aws:iam::12:role/x"]).run();
    out.assert_code(2);
    assert!(out.stderr.contains("12 digits"), "{out}");
    let out = Cmd::new().args(["--snapshot", "examples/demo-snapshot.json", "-l", "a in b"]).run();
    out.assert_code(2);
}
