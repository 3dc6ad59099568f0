//! The fake API server's write verbs and metadata-only reads, driven by kube-rs with k8s-openapi types (a
//! client we did not write): merge-patch on every kind `annotate` writes to, create of core and
//! `events.k8s.io` Events (with `generateName`), `PartialObjectMetadataList` answers, faults on writes, and
//! the request log read as RBAC requests. If these pass, an `annotate` test that fails is about our code.

mod support;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Event, ObjectReference, Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::cli::{Context, Kubeconfig, KubeconfigFile};
use support::fixtures::{cron_job, daemon_set, deployment, job, pod, replica_set, service_account, stateful_set};
use support::kube_api::{Access, FakeKube, Fault, RunningKube};

fn shop() -> FakeKube {
    let kube = FakeKube::new();
    kube.add_all([
        deployment("shop", "api").annotation("team", "payments").build(),
        stateful_set("shop", "db").build(),
        daemon_set("shop", "agent", 1, 1).build(),
        cron_job("shop", "report").build(),
        job("shop", "migrate").build(),
        replica_set("shop", "legacy").build(),
        pod("shop", "debug").build(),
        service_account("shop", "api").build(),
    ]);
    kube
}

fn kubeconfig_for(kube: &RunningKube) -> KubeconfigFile {
    Kubeconfig::single(Context::new("fake", &kube.url()).namespace("shop")).write()
}

fn run<F: std::future::Future<Output = ()>>(kubeconfig: &KubeconfigFile, body: impl FnOnce(kube::Client) -> F) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig.path()).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
        body(kube::Client::try_from(config).expect("client")).await;
    });
}

fn annotate_patch() -> serde_json::Value {
    json!({ "metadata": { "annotations": { "iam-roles.io/unused-services": "kms,sqs" } } })
}

async fn patch_one<K>(client: &kube::Client, name: &str)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let params = PatchParams { field_manager: Some("kubectl-iam-roles".into()), ..PatchParams::default() };
    let patched = Api::<K>::namespaced(client.clone(), "shop")
        .patch(name, &params, &Patch::Merge(&annotate_patch()))
        .await
        .unwrap_or_else(|e| panic!("patch {} {name}: {e}", K::kind(&())));
    let annotations = patched.meta().annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get("iam-roles.io/unused-services").map(String::as_str), Some("kms,sqs"));
}

#[test]
fn merge_patch_works_on_every_kind_annotate_writes_to() {
    let kube = shop().start();
    let kubeconfig = kubeconfig_for(&kube);
    run(&kubeconfig, |client| async move {
        patch_one::<Deployment>(&client, "api").await;
        patch_one::<StatefulSet>(&client, "db").await;
        patch_one::<DaemonSet>(&client, "agent").await;
        patch_one::<CronJob>(&client, "report").await;
        patch_one::<Job>(&client, "migrate").await;
        patch_one::<ReplicaSet>(&client, "legacy").await;
        patch_one::<Pod>(&client, "debug").await;
        patch_one::<ServiceAccount>(&client, "api").await;
    });
    for (kind, name) in [
        ("Deployment", "api"),
        ("StatefulSet", "db"),
        ("DaemonSet", "agent"),
        ("CronJob", "report"),
        ("Job", "migrate"),
        ("ReplicaSet", "legacy"),
        ("Pod", "debug"),
        ("ServiceAccount", "api"),
    ] {
        let stored = kube.get(kind, "shop", name).unwrap_or_else(|| panic!("{kind} {name}"));
        assert_eq!(stored["metadata"]["annotations"]["iam-roles.io/unused-services"], "kms,sqs", "{kind}");
    }
    let deployment = kube.get("Deployment", "shop", "api").unwrap();
    assert_eq!(deployment["metadata"]["annotations"]["team"], "payments", "foreign annotations survive");
    let patches: Vec<Access> = kube.accesses().into_iter().filter(|a| a.verb == "patch").collect();
    assert_eq!(patches.len(), 8);
    assert!(kube.requests().iter().all(|r| r.query_param("fieldManager") == Some("kubectl-iam-roles")));
    let resources: Vec<(&str, &str)> = patches.iter().map(|a| (a.group.as_str(), a.resource.as_str())).collect();
    assert_eq!(
        resources,
        [
            ("apps", "deployments"),
            ("apps", "statefulsets"),
            ("apps", "daemonsets"),
            ("batch", "cronjobs"),
            ("batch", "jobs"),
            ("apps", "replicasets"),
            ("", "pods"),
            ("", "serviceaccounts"),
        ]
    );
}

#[test]
fn patch_conflicts_and_dry_runs_as_the_real_server() {
    let kube = shop().start();
    let kubeconfig = kubeconfig_for(&kube);
    let before = kube.get("StatefulSet", "shop", "db").unwrap();
    run(&kubeconfig, |client| async move {
        let api = Api::<StatefulSet>::namespaced(client, "shop");
        let stale = json!({ "metadata": { "resourceVersion": "1", "annotations": { "a": "b" } } });
        let err = api.patch("db", &PatchParams::default(), &Patch::Merge(&stale)).await.unwrap_err();
        assert!(matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"), "{err}");
        let dry = PatchParams::default().dry_run();
        let answered = api.patch("db", &dry, &Patch::Merge(&annotate_patch())).await.unwrap();
        assert!(answered.metadata.annotations.unwrap().contains_key("iam-roles.io/unused-services"));
        let err = api.patch("gone", &PatchParams::default(), &Patch::Merge(&annotate_patch())).await.unwrap_err();
        assert!(matches!(&err, kube::Error::Api(s) if s.code == 404), "{err}");
    });
    assert_eq!(kube.get("StatefulSet", "shop", "db").unwrap(), before, "neither the conflict nor the dry run wrote");
}

fn core_event(name: Option<&str>, generate_name: Option<&str>) -> Event {
    Event {
        metadata: ObjectMeta {
            name: name.map(str::to_string),
            generate_name: generate_name.map(str::to_string),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("Deployment".into()),
            name: Some("api".into()),
            namespace: Some("shop".into()),
            ..ObjectReference::default()
        },
        reason: Some("UnusedServices".into()),
        message: Some("role holds unused services: kms,sqs".into()),
        type_: Some("Normal".into()),
        ..Event::default()
    }
}

#[test]
fn creates_core_and_events_k8s_io_events() {
    let kube = shop().start();
    let kubeconfig = kubeconfig_for(&kube);
    run(&kubeconfig, |client| async move {
        let core = Api::<Event>::namespaced(client.clone(), "shop");
        let created = core.create(&PostParams::default(), &core_event(None, Some("api."))).await.unwrap();
        let name = created.metadata.name.clone().unwrap();
        assert!(name.starts_with("api.") && name.len() == "api.".len() + 5, "generated name {name}");
        assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
        assert!(created.metadata.creation_timestamp.is_some());
        let second = core.create(&PostParams::default(), &core_event(None, Some("api."))).await.unwrap();
        assert_ne!(second.metadata.name, created.metadata.name, "each generated name is new");

        let named = core_event(Some("api.fixed"), None);
        core.create(&PostParams::default(), &named).await.unwrap();
        let err = core.create(&PostParams::default(), &named).await.unwrap_err();
        assert!(matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"), "{err}");
        let err = core.create(&PostParams::default(), &core_event(None, None)).await.unwrap_err();
        assert!(matches!(&err, kube::Error::Api(s) if s.code == 422 && s.reason == "Invalid"), "{err}");
        let mut elsewhere = core_event(Some("api.other"), None);
        elsewhere.metadata.namespace = Some("other".into());
        let err = core.create(&PostParams::default(), &elsewhere).await.unwrap_err();
        assert!(matches!(&err, kube::Error::Api(s) if s.code == 400), "{err}");
        let dry = PostParams { dry_run: true, ..PostParams::default() };
        core.create(&dry, &core_event(Some("api.dry"), None)).await.unwrap();

        let events = Api::<EventV1>::namespaced(client.clone(), "shop");
        let v1 = EventV1 {
            metadata: ObjectMeta { generate_name: Some("db.".into()), ..ObjectMeta::default() },
            event_time: Some(MicroTime(jiff::Timestamp::now())),
            reporting_controller: Some("kubectl-iam-roles".into()),
            reporting_instance: Some("kubectl-iam-roles".into()),
            action: Some("Annotate".into()),
            reason: Some("UnusedServices".into()),
            note: Some("role holds unused services: kms".into()),
            type_: Some("Normal".into()),
            regarding: Some(ObjectReference {
                api_version: Some("apps/v1".into()),
                kind: Some("StatefulSet".into()),
                name: Some("db".into()),
                namespace: Some("shop".into()),
                ..ObjectReference::default()
            }),
            ..EventV1::default()
        };
        let created = events.create(&PostParams::default(), &v1).await.unwrap();
        assert!(created.metadata.name.unwrap().starts_with("db."));
        let listed = events.list(&ListParams::default()).await.unwrap();
        assert_eq!(listed.items.len(), 4, "both APIs show the one stored resource");
    });
    let stored = kube.objects("Event");
    let names: Vec<&str> = stored.iter().filter_map(|e| e["metadata"]["name"].as_str()).collect();
    assert_eq!(names.len(), 4, "two generated, one named, one events.k8s.io; not the dry run: {names:?}");
    assert!(!names.contains(&"api.dry"));
    let v1 = stored.iter().find(|e| e["apiVersion"] == "events.k8s.io/v1").expect("the events.k8s.io event");
    assert_eq!(v1["regarding"]["name"], "db");
    assert_eq!(v1["metadata"]["namespace"], "shop");
    let creates: Vec<Access> = kube.accesses().into_iter().filter(|a| a.verb == "create").collect();
    assert_eq!(creates.len(), 8);
    assert_eq!(creates.iter().filter(|a| a.group == "events.k8s.io").count(), 1);
    assert!(creates.iter().all(|a| a.resource == "events" && a.namespace.as_deref() == Some("shop")));
}

#[test]
fn faults_hit_creates_like_any_other_verb() {
    let kube = shop().start();
    kube.fault(Fault::new("/events", 403).method("POST").once());
    kube.fault(Fault::new("/events", 500).method("POST").once());
    let kubeconfig = kubeconfig_for(&kube);
    run(&kubeconfig, |client| async move {
        let core = Api::<Event>::namespaced(client, "shop");
        let event = core_event(None, Some("api."));
        let err = core.create(&PostParams::default(), &event).await.unwrap_err();
        let forbidden = "events is forbidden: User \"test-user\" cannot create resource \"events\" in API group \"\" in the namespace \"shop\"";
        assert!(matches!(&err, kube::Error::Api(s) if s.code == 403 && s.message == forbidden), "{err}");
        let err = core.create(&PostParams::default(), &event).await.unwrap_err();
        assert!(matches!(&err, kube::Error::Api(s) if s.code == 500), "{err}");
        core.create(&PostParams::default(), &event).await.unwrap();
    });
    assert_eq!(kube.objects("Event").len(), 1);
    assert_eq!(kube.count("POST", "/api/v1/namespaces/shop/events"), 3, "faulted requests are logged too");
}

#[test]
fn metadata_only_lists_answer_partial_object_metadata() {
    let kube = shop().start();
    let kubeconfig = kubeconfig_for(&kube);
    run(&kubeconfig, |client| async move {
        let api = Api::<Deployment>::all(client.clone());
        let list = api.list_metadata(&ListParams::default().limit(10)).await.unwrap();
        assert_eq!(list.items.len(), 1);
        let item = &list.items[0];
        assert_eq!(item.metadata.name.as_deref(), Some("api"));
        assert_eq!(item.metadata.annotations.as_ref().unwrap()["team"], "payments");
        let one = Api::<Pod>::namespaced(client, "shop").get_metadata("debug").await.unwrap();
        assert_eq!(one.metadata.name.as_deref(), Some("debug"));
    });
    let raw = kube.requests();
    assert!(raw[0].header("accept").unwrap_or_default().contains("as=PartialObjectMetadataList"));
    let accesses = kube.accesses();
    assert_eq!(accesses[0].verb, "list");
    assert_eq!((accesses[0].group.as_str(), accesses[0].resource.as_str()), ("apps", "deployments"));
    assert_eq!(accesses[1].verb, "get");
    assert_eq!(accesses[1].name.as_deref(), Some("debug"));
}

#[test]
fn metadata_list_body_is_what_the_api_server_writes() {
    let kube = shop().start();
    let accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    let body = http_get(&kube.url(), "/apis/apps/v1/namespaces/shop/deployments", accept);
    assert_eq!(body["kind"], "PartialObjectMetadataList");
    assert_eq!(body["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(body["items"][0]["kind"], "PartialObjectMetadata");
    assert_eq!(body["items"][0]["apiVersion"], "meta.k8s.io/v1");
    assert!(body["items"][0].get("spec").is_none(), "metadata only: {body}");
    assert_eq!(body["items"][0]["metadata"]["name"], "api");
    let full = http_get(&kube.url(), "/apis/apps/v1/namespaces/shop/deployments", "application/json");
    assert_eq!(full["kind"], "DeploymentList");
    assert!(full["items"][0].get("spec").is_some());
}

/// A bare HTTP/1.1 GET, so the body is checked without any Kubernetes client in between.
fn http_get(base: &str, path: &str, accept: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (_, body) = response.split_once("\r\n\r\n").expect("headers end");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}
