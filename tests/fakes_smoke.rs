//! Proves the fakes speak the real protocols by pointing clients we did not write at them: real
//! `kubectl`, kube-rs with k8s-openapi types, raw HTTP and aws-sdk-eks. If these pass, a failing
//! integration test is about our code, not about a fake that lies.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::cli::{Context, Kubeconfig, KubeconfigFile};
use support::eks::FakeEks;
use support::fixtures::{cron_job, daemon_set, deployment, job, namespace, pod, replica_set, service_account};
use support::kube_api::{FakeKube, Fault, RunningKube};

const TOKEN: &str = "k8s-aws-v1.fake-token";

fn cluster_with_pods() -> FakeKube {
    let kube = FakeKube::new();
    for (ns, name) in
        [("web", "api-1"), ("web", "api-2"), ("batch", "etl-1"), ("web", "front-1"), ("kube-system", "dns-1")]
    {
        let tier = if name.starts_with("api") { "back" } else { "front" };
        kube.add(pod(ns, name).labels(&[("tier", tier)]).build());
    }
    kube
}

/// kubectl (client-go) only sends credentials over TLS, so auth is checked on TLS servers only.
fn tls_cluster_with_pods() -> RunningKube {
    let kube = cluster_with_pods();
    kube.require_bearer_token(TOKEN);
    kube.start_tls()
}

fn kubeconfig_for(kube: &RunningKube) -> KubeconfigFile {
    let context = Context::eks("prod", "us-west-2", "111122223333", &kube.url()).ca_pem(kube.ca_pem());
    Kubeconfig::single(context.namespace("web")).write()
}

/// Real kubectl with a scrubbed environment; returns (success, stdout, stderr).
fn kubectl(kubeconfig: &KubeconfigFile, args: &[&str]) -> (bool, String, String) {
    let home = tempfile::tempdir().expect("home");
    let out = Command::new("kubectl")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("KUBECONFIG", kubeconfig.path())
        .output()
        .expect("run kubectl");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

/// Follows continue tokens with `kubectl get --raw`, returning ns/name of every item and each page size.
fn raw_pages(kubeconfig: &KubeconfigFile, first: &str) -> (Vec<String>, Vec<usize>) {
    let (mut names, mut sizes, mut url) = (Vec::new(), Vec::new(), first.to_string());
    loop {
        let (ok, stdout, stderr) = kubectl(kubeconfig, &["get", "--raw", &url]);
        assert!(ok, "kubectl get --raw {url} failed: {stderr}");
        let list: Value = serde_json::from_str(&stdout).expect("list JSON");
        assert_eq!(list["kind"], "PodList");
        let items = list["items"].as_array().expect("items");
        assert!(items.iter().all(|i| i.get("kind").is_none()), "list items carry no kind");
        sizes.push(items.len());
        names.extend(items.iter().map(|i| {
            format!("{}/{}", i["metadata"]["namespace"].as_str().unwrap(), i["metadata"]["name"].as_str().unwrap())
        }));
        match list["metadata"]["continue"].as_str() {
            Some(token) => url = format!("{first}&continue={token}"),
            None => return (names, sizes),
        }
    }
}

const ALL_PODS: [&str; 5] = ["batch/etl-1", "kube-system/dns-1", "web/api-1", "web/api-2", "web/front-1"];

#[test]
fn kubectl_pages_over_plain_http() {
    let kube = cluster_with_pods().start();
    let kubeconfig = kubeconfig_for(&kube);
    let (names, sizes) = raw_pages(&kubeconfig, "/api/v1/pods?limit=2");
    assert_eq!(names, ALL_PODS);
    assert_eq!(sizes, [2, 2, 1]);
    let continued = kube.requests().iter().filter(|r| r.query_param("continue").is_some()).count();
    assert_eq!(continued, 2);
}

#[test]
fn kubectl_pages_over_tls_with_the_ca_and_exec_plugin() {
    let kube = tls_cluster_with_pods();
    assert!(kube.url().starts_with("https://127.0.0.1:"));
    let kubeconfig = kubeconfig_for(&kube);
    let (names, _) = raw_pages(&kubeconfig, "/api/v1/pods?limit=3");
    assert_eq!(names, ALL_PODS);
    let runs = kubeconfig.exec_invocations();
    assert!(runs.first().is_some_and(|args| args.contains("eks get-token --cluster-name prod")), "{runs:?}");
    let (ok, stdout, stderr) = kubectl(&kubeconfig, &["get", "--raw", "/api/v1/namespaces/web/pods/api-2"]);
    assert!(ok, "{stderr}");
    let pod: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((pod["kind"].as_str(), pod["metadata"]["name"].as_str()), (Some("Pod"), Some("api-2")));
}

#[test]
fn kubectl_get_pods_works_through_discovery_with_selectors() {
    let kube = cluster_with_pods().start();
    let kubeconfig = kubeconfig_for(&kube);
    let (ok, stdout, stderr) = kubectl(&kubeconfig, &["get", "pods", "-l", "tier in (back),tier!=x", "-o", "name"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["pod/api-1", "pod/api-2"], "context namespace is web");
    let (ok, stdout, stderr) = kubectl(&kubeconfig, &["get", "pods", "-A", "-l", "!tier", "-o", "name"]);
    assert!(ok && stdout.is_empty(), "{stdout}{stderr}");
}

#[test]
fn kubectl_reports_injected_errors_as_the_real_server_words_them() {
    let kube = tls_cluster_with_pods();
    kube.fault(Fault::new("/replicasets", 403));
    kube.fault(Fault::new("/pods", 410).with_continue().once());
    let kubeconfig = kubeconfig_for(&kube);
    let (ok, _, stderr) = kubectl(&kubeconfig, &["get", "--raw", "/apis/apps/v1/replicasets"]);
    assert!(!ok);
    assert!(
        stderr.contains("Error from server (Forbidden): replicasets.apps is forbidden: User \"test-user\" cannot list resource \"replicasets\" in API group \"apps\" at the cluster scope"),
        "{stderr}"
    );
    let (ok, _, stderr) = kubectl(&kubeconfig, &["get", "--raw", "/api/v1/pods?limit=2&continue=abc"]);
    assert!(!ok && stderr.contains("(Expired)"), "{stderr}");
    let (ok, _, stderr) = kubectl(&kubeconfig, &["get", "--raw", "/api/v1/namespaces/web/pods/nope"]);
    assert!(!ok && stderr.contains("(NotFound): pods \"nope\" not found"), "{stderr}");
    let wrong = Kubeconfig::single(Context::new("c", &kube.url()).ca_pem(kube.ca_pem()).token("wrong")).write();
    let (ok, _, stderr) = kubectl(&wrong, &["get", "--raw", "/api/v1/pods"]);
    assert!(!ok && stderr.contains("Unauthorized"), "{stderr}");
}

#[test]
fn kube_rs_reads_fixtures_as_typed_objects_over_tls() {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    use kube::api::{Api, ListParams, Patch, PatchParams};

    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kube = cluster_with_pods();
    kube.add(
        pod("web", "irsa-1")
            .service_account("api")
            .owner("ReplicaSet", "api-7d9f4")
            .container("sidecar", "envoy:1")
            .irsa("arn:aws:iam::111122223333:role/api")
            .build(),
    );
    kube.add(pod("web", "pi-1").pod_identity().fargate().host_network().phase("Succeeded").build());
    kube.add(service_account("web", "api").irsa("arn:aws:iam::111122223333:role/api").build());
    kube.add(replica_set("web", "api-7d9f4").owner("Deployment", "api").service_account("api").build());
    kube.add(deployment("web", "api").build());
    kube.add(daemon_set("kube-system", "eks-pod-identity-agent", 2, 3).build());
    kube.add(job("batch", "etl-29000").owner("CronJob", "etl").build());
    kube.add(cron_job("batch", "etl").service_account("etl").build());
    kube.add(namespace("web"));
    kube.require_bearer_token(TOKEN);
    let kube = kube.start_tls();
    let kubeconfig = kubeconfig_for(&kube);

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = kube_rs_client(&kubeconfig).await;
        let (mut names, mut token): (Vec<String>, Option<String>) = (Vec::new(), None);
        loop {
            let mut params = ListParams::default().limit(3);
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let page = Api::<core::Pod>::all(client.clone()).list(&params).await.unwrap();
            names.extend(page.items.iter().map(|p| p.metadata.name.clone().unwrap()));
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        assert_eq!(names.len(), 7);
        let irsa = Api::<core::Pod>::namespaced(client.clone(), "web").get("irsa-1").await.unwrap();
        let env = irsa.spec.unwrap().containers[1].env.clone().unwrap();
        assert!(env.iter().any(|e| e.name == "AWS_ROLE_ARN"));
        let rs = Api::<apps::ReplicaSet>::all(client.clone()).list(&ListParams::default()).await.unwrap();
        let deploy = Api::<apps::Deployment>::all(client.clone()).list(&ListParams::default()).await.unwrap();
        assert_eq!(
            rs.items[0].metadata.owner_references.as_ref().unwrap()[0].uid,
            deploy.items[0].metadata.uid.clone().unwrap()
        );
        let ds = Api::<apps::DaemonSet>::all(client.clone()).list(&ListParams::default()).await.unwrap();
        assert_eq!(ds.items[0].status.as_ref().unwrap().number_ready, 2);
        Api::<batch::Job>::all(client.clone()).list(&ListParams::default()).await.unwrap();
        Api::<batch::CronJob>::all(client.clone()).list(&ListParams::default()).await.unwrap();
        Api::<core::ServiceAccount>::all(client.clone()).list(&ListParams::default()).await.unwrap();
        Api::<core::Namespace>::all(client.clone()).list(&ListParams::default()).await.unwrap();
        let err = Api::<apps::StatefulSet>::namespaced(client.clone(), "web").get("nope").await.unwrap_err();
        assert!(matches!(err, kube::Error::Api(s) if s.code == 404), "typed 404");
        let patch = serde_json::json!({ "metadata": { "annotations": { "iam-roles.io/role-arn": "r" } } });
        Api::<apps::Deployment>::namespaced(client, "web")
            .patch("api", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    });
    let stored = kube.get("Deployment", "web", "api").unwrap();
    assert_eq!(stored["metadata"]["annotations"]["iam-roles.io/role-arn"], "r");
    assert_eq!(stored["metadata"]["labels"]["app"], "api", "merge keeps the rest");
    assert_eq!(kube.count("PATCH", "/deployments/api"), 1);
}

async fn kube_rs_client(kubeconfig: &KubeconfigFile) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig.path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    kube::Client::try_from(config).unwrap()
}

#[test]
fn kube_rs_sends_the_exec_token_over_plain_http() {
    use k8s_openapi::api::core::v1::Pod;

    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let kube = cluster_with_pods();
    kube.require_bearer_token(TOKEN);
    let kube = kube.start();
    let kubeconfig = kubeconfig_for(&kube);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = kube_rs_client(&kubeconfig).await;
        let params = kube::api::ListParams::default().labels("tier=front");
        let pods = kube::Api::<Pod>::all(client).list(&params).await.unwrap();
        assert_eq!(pods.items.len(), 3);
    });
    assert!(!kubeconfig.exec_invocations().is_empty(), "kube-rs ran the exec plugin");
    assert_eq!(kube.requests()[0].query_param("labelSelector"), Some("tier=front"));
}

/// A bare HTTP/1.1 GET, so the EKS shapes are checked without any AWS code in between.
fn http_get(base: &str, path: &str) -> (u16, String, Value) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, head.to_ascii_lowercase(), serde_json::from_str(body).expect("JSON body"))
}

#[test]
fn eks_fake_speaks_rest_json() {
    let eks = FakeEks::new();
    let issuer = eks.add_cluster("prod", "us-west-2", "111122223333");
    let ids: Vec<String> = (0..3)
        .map(|i| eks.add_association("prod", "web", &format!("sa-{i}"), "arn:aws:iam::111122223333:role/r", None))
        .collect();
    eks.add_association(
        "prod",
        "batch",
        "etl",
        "arn:aws:iam::111122223333:role/a",
        Some("arn:aws:iam::444455556666:role/b"),
    );
    let eks = eks.start();
    let url = eks.url();

    let (status, _, body) = http_get(&url, "/clusters/prod");
    assert_eq!(status, 200);
    assert_eq!(body["cluster"]["identity"]["oidc"]["issuer"], issuer.as_str());
    assert_eq!(body["cluster"]["arn"], "arn:aws:eks:us-west-2:111122223333:cluster/prod");

    let (_, _, page) = http_get(&url, "/clusters/prod/pod-identity-associations?maxResults=2&namespace=web");
    assert_eq!(page["associations"].as_array().unwrap().len(), 2);
    assert!(page["associations"][0].get("roleArn").is_none(), "summaries carry no role");
    let next = page["nextToken"].as_str().expect("more pages");
    let (_, _, last) = http_get(
        &url,
        &format!("/clusters/prod/pod-identity-associations?maxResults=2&namespace=web&nextToken={next}"),
    );
    assert_eq!(last["associations"].as_array().unwrap().len(), 1);
    assert!(last.get("nextToken").is_none());

    let (_, _, one) = http_get(&url, &format!("/clusters/prod/pod-identity-associations/{}", ids[0]));
    assert_eq!(one["association"]["roleArn"], "arn:aws:iam::111122223333:role/r");
    assert!(ids[0].starts_with("a-") && ids[0].len() == 19);

    let (status, head, body) = http_get(&url, "/clusters/prod/pod-identity-associations?maxResults=101");
    assert_eq!((status, body["message"].is_string()), (400, true));
    assert!(head.contains("x-amzn-errortype: invalidparameterexception"));
    let (status, head, body) = http_get(&url, "/clusters/nope");
    assert_eq!((status, body["message"].as_str()), (404, Some("No cluster found for name: nope.")));
    assert!(head.contains("x-amzn-errortype: resourcenotfoundexception"));
}

#[test]
fn aws_sdk_eks_reads_the_fake_signs_and_retries_throttling() {
    use aws_sdk_eks::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};

    let eks = FakeEks::new();
    eks.add_cluster("prod", "us-west-2", "111122223333");
    for i in 0..5 {
        eks.add_association("prod", "web", &format!("sa-{i}"), "arn:aws:iam::111122223333:role/r", None);
    }
    let chained = eks.add_association(
        "prod",
        "batch",
        "etl",
        "arn:aws:iam::111122223333:role/a",
        Some("arn:aws:iam::444455556666:role/b"),
    );
    eks.fault(Fault::new("/pod-identity-associations", 429).with_continue().once());
    let eks = eks.start();

    let config = aws_sdk_eks::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .credentials_provider(Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"))
        .endpoint_url(eks.url())
        .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(10)))
        .build();
    let client = aws_sdk_eks::Client::from_conf(config);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let cluster = client.describe_cluster().name("prod").send().await.unwrap();
        let issuer = cluster.cluster().and_then(|c| c.identity()).and_then(|i| i.oidc()).and_then(|o| o.issuer());
        assert!(issuer.unwrap().starts_with("https://oidc.eks.us-west-2.amazonaws.com/id/"));

        let pages =
            client.list_pod_identity_associations().cluster_name("prod").max_results(2).into_paginator().items().send();
        let all: Vec<_> = pages.collect::<Result<Vec<_>, _>>().await.unwrap();
        assert_eq!(all.len(), 6);

        let one = client
            .describe_pod_identity_association()
            .cluster_name("prod")
            .association_id(&chained)
            .send()
            .await
            .unwrap();
        let association = one.association().unwrap();
        assert_eq!(association.target_role_arn(), Some("arn:aws:iam::444455556666:role/b"));
        assert!(association.created_at().is_some() && association.external_id().is_some());

        let err = client.describe_cluster().name("nope").send().await.unwrap_err();
        assert!(err.into_service_error().is_resource_not_found_exception());
    });
    let log = eks.requests();
    assert!(log.iter().all(|r| r.signed()), "every request SigV4-signed");
    let lists = log.iter().filter(|r| r.path.ends_with("/pod-identity-associations")).count();
    assert_eq!(lists, 3 + 1, "three pages plus one throttled retry");
}
