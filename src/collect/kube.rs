//! Kubernetes reads: one paged list per resource kind and scope, parsed straight into slim structs.
//!
//! Lists are requested through kube's request builder and deserialised into the few fields we keep,
//! not into full k8s-openapi objects: a 50,000-pod cluster then costs a parse, not a copy of every pod.

use std::collections::BTreeMap;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::ListParams;
use kube::core::Request;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::model::{AgentStatus, ContainerInfo, OwnerInfo, OwnerRef, PodInfo, ServiceAccountInfo};

/// Items per list page: kubectl's default chunk size.
pub const PAGE_SIZE: u32 = 500;
/// How often a list starts over after its continue token expired (410 Gone).
const MAX_RELISTS: usize = 3;
pub const POD_IDENTITY_AGENT: &str = "eks-pod-identity-agent";

/// A failed list or get, with what was asked, so the caller can word the error.
#[derive(Debug)]
pub struct KubeError {
    pub what: String,
    pub source: kube::Error,
}

impl KubeError {
    /// HTTP status of an API error, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match &self.source {
            kube::Error::Api(s) => Some(s.code),
            _ => None,
        }
    }

    /// One sentence: what failed, why, and what to do.
    pub fn explain(&self, server: &str) -> String {
        let what = &self.what;
        match &self.source {
            kube::Error::Api(s) if s.code == 403 => format!(
                "not allowed to {what} ({}); ask a cluster admin for that permission (README: Permissions), or narrow \
                 the scope with -n",
                s.message
            ),
            kube::Error::Api(s) if s.code == 401 => format!(
                "the API server at {server} rejected our credentials when trying to {what} ({}); refresh them (for EKS: \
                 aws sso login, or check the exec plugin in the kubeconfig)",
                s.message
            ),
            kube::Error::Api(s) => {
                format!("failed to {what}: the API server answered {} {} ({})", s.code, s.reason, s.message)
            }
            kube::Error::Auth(e) => {
                format!("cannot authenticate to {server} to {what}: {e}; check the kubeconfig user")
            }
            e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => format!(
                "cannot reach the Kubernetes API server at {server} to {what}: {}; check the context and that the \
                 cluster is reachable",
                error_chain(e)
            ),
            e => format!("failed to {what}: {}", error_chain(e)),
        }
    }
}

/// The error and its causes on one line; kube's top-level messages alone say too little.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

fn scope_text(namespace: Option<&str>) -> String {
    namespace.map_or("in all namespaces".to_string(), |ns| format!("in namespace {ns}"))
}

/// Transient API answers worth another try: throttling and server errors.
fn retryable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if matches!(s.code, 429 | 500 | 502 | 503 | 504))
}

#[derive(Deserialize)]
struct List<T> {
    metadata: ListMeta,
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

#[derive(Deserialize)]
struct ListMeta {
    #[serde(rename = "continue")]
    continue_token: Option<String>,
}

/// Lists every object of kind `K` in scope, page by page, keeping what `keep` returns for each item.
async fn list_all<K, T, U>(
    client: &kube::Client,
    namespace: Option<&str>,
    selector: Option<&str>,
    mut keep: impl FnMut(T) -> Option<U>,
) -> Result<Vec<U>, KubeError>
where
    K: kube::Resource<DynamicType = ()>,
    T: DeserializeOwned,
{
    let what = format!("list {} {}", K::plural(&()), scope_text(namespace));
    let request = Request::new(K::url_path(&(), namespace));
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut relists = 0;
    loop {
        let params = ListParams {
            label_selector: selector.map(str::to_string),
            limit: Some(PAGE_SIZE),
            continue_token: token.clone(),
            ..Default::default()
        };
        let fetch = || async {
            let req = request.list(&params).map_err(kube::Error::BuildRequest)?;
            client.request::<List<T>>(req).await
        };
        let page = fetch
            .retry(ExponentialBuilder::default().with_min_delay(Duration::from_millis(200)).with_max_times(5))
            .when(retryable)
            .await;
        match page {
            Ok(page) => {
                out.extend(page.items.into_iter().filter_map(&mut keep));
                token = page.metadata.continue_token.filter(|t| !t.is_empty());
                if token.is_none() {
                    return Ok(out);
                }
            }
            // The continue token expired (the list took longer than etcd keeps its revision): start over,
            // as client-go's pager does, so the result is one consistent list.
            Err(kube::Error::Api(s)) if s.code == 410 && token.is_some() && relists < MAX_RELISTS => {
                relists += 1;
                tracing::debug!("continue token expired while listing; listing again from the start");
                out.clear();
                token = None;
            }
            Err(source) => return Err(KubeError { what, source }),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    owner_references: Vec<RawOwnerRef>,
}

impl Meta {
    /// The controller reference, else the first owner.
    fn owner(&mut self) -> Option<OwnerRef> {
        let i = self.owner_references.iter().position(|o| o.controller == Some(true)).unwrap_or(0);
        (i < self.owner_references.len()).then(|| {
            let o = self.owner_references.swap_remove(i);
            OwnerRef { kind: o.kind, name: o.name }
        })
    }
}

#[derive(Deserialize)]
struct RawOwnerRef {
    kind: String,
    name: String,
    controller: Option<bool>,
}

#[derive(Deserialize)]
struct RawPod {
    metadata: Meta,
    #[serde(default)]
    spec: RawPodSpec,
    status: Option<RawPodStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawPodSpec {
    service_account_name: Option<String>,
    #[serde(default)]
    host_network: bool,
    scheduler_name: Option<String>,
    #[serde(default)]
    init_containers: Vec<RawContainer>,
    #[serde(default)]
    containers: Vec<RawContainer>,
    #[serde(default)]
    volumes: Vec<RawName>,
}

#[derive(Deserialize)]
struct RawPodStatus {
    phase: Option<String>,
}

#[derive(Deserialize)]
struct RawContainer {
    name: String,
    #[serde(default)]
    env: Vec<RawEnv>,
}

#[derive(Deserialize)]
struct RawEnv {
    name: String,
    value: Option<String>,
}

#[derive(Deserialize)]
struct RawName {
    name: String,
}

const FARGATE_PROFILE_LABEL: &str = "eks.amazonaws.com/fargate-profile";
const IRSA_TOKEN_VOLUME: &str = "aws-iam-token";

fn slim_pod(raw: RawPod) -> PodInfo {
    let RawPod { mut metadata, spec, status } = raw;
    let owner = metadata.owner();
    let containers = spec
        .init_containers
        .into_iter()
        .chain(spec.containers)
        .map(|c| ContainerInfo {
            name: c.name,
            // Only AWS_* variables decide the identity; values from references are never resolved.
            env: c.env.into_iter().filter(|e| e.name.starts_with("AWS_")).map(|e| (e.name, e.value)).collect(),
        })
        .collect();
    PodInfo {
        fargate: metadata.labels.contains_key(FARGATE_PROFILE_LABEL)
            || spec.scheduler_name.as_deref() == Some("fargate-scheduler"),
        namespace: metadata.namespace,
        name: metadata.name,
        service_account: spec.service_account_name.unwrap_or_else(|| "default".to_string()),
        owner,
        labels: metadata.labels,
        containers,
        irsa_token_volume: spec.volumes.iter().any(|v| v.name == IRSA_TOKEN_VOLUME),
        host_network: spec.host_network,
        phase: status.and_then(|s| s.phase),
    }
}

#[derive(Deserialize)]
struct RawObject {
    metadata: Meta,
}

/// Pods in scope, matching the label selector.
pub async fn pods(
    client: &kube::Client,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<PodInfo>, KubeError> {
    list_all::<Pod, RawPod, _>(client, namespace, selector, |p| Some(slim_pod(p))).await
}

/// Service accounts in scope, keeping only their `eks.amazonaws.com/` annotations.
pub async fn service_accounts(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<ServiceAccountInfo>, KubeError> {
    list_all::<ServiceAccount, RawObject, _>(client, namespace, None, |o| {
        let m = o.metadata;
        let annotations = m.annotations.into_iter().filter(|(k, _)| k.starts_with("eks.amazonaws.com/")).collect();
        Some(ServiceAccountInfo { namespace: m.namespace, name: m.name, annotations })
    })
    .await
}

/// ReplicaSets and Jobs in scope that have an owner (the only ones that change a pod's top level).
pub async fn owners(client: &kube::Client, namespace: Option<&str>) -> Vec<Result<Vec<OwnerInfo>, KubeError>> {
    fn keep(kind: &'static str) -> impl FnMut(RawObject) -> Option<OwnerInfo> {
        move |mut o: RawObject| {
            let owner = o.metadata.owner()?;
            Some(OwnerInfo {
                kind: kind.to_string(),
                namespace: o.metadata.namespace,
                name: o.metadata.name,
                owner: Some(owner),
            })
        }
    }
    let (rs, jobs) = tokio::join!(
        list_all::<ReplicaSet, RawObject, _>(client, namespace, None, keep("ReplicaSet")),
        list_all::<Job, RawObject, _>(client, namespace, None, keep("Job")),
    );
    vec![rs, jobs]
}

/// The Pod Identity agent DaemonSet in kube-system.
pub async fn pod_identity_agent(client: &kube::Client) -> Result<AgentStatus, KubeError> {
    let api: kube::Api<DaemonSet> = kube::Api::namespaced(client.clone(), "kube-system");
    let what = format!("get daemonset kube-system/{POD_IDENTITY_AGENT}");
    let ds = api.get_opt(POD_IDENTITY_AGENT).await.map_err(|source| KubeError { what, source })?;
    Ok(match ds {
        Some(d) => {
            let status = d.status.unwrap_or_default();
            AgentStatus { found: true, desired: status.desired_number_scheduled, ready: status.number_ready }
        }
        None => AgentStatus { found: false, desired: 0, ready: 0 },
    })
}
