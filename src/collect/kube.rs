//! Kubernetes reads: one paged list per resource kind and scope, parsed straight into slim structs.
//!
//! Lists are requested through kube's request builder and deserialised into the few fields we keep,
//! not into full k8s-openapi objects: a 50,000-pod cluster then costs a parse, not a copy of every pod.

use std::collections::VecDeque;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Resource as _;
use kube::api::ListParams;
use kube::core::Request;
use serde::Deserialize;

mod parse;
pub mod retry;

use crate::model::{AgentStatus, ObjectMeta, OwnerInfo, PodInfo, ServiceAccountInfo};
use parse::{parse_meta, parse_owned, parse_pods, parse_service_accounts};

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
    /// Attempts made (more than one when throttling or server errors were retried).
    pub attempts: u32,
}

impl KubeError {
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
            kube::Error::Api(s) if s.code == 429 => format!(
                "the API server at {server} kept throttling the request to {what} (429 Too Many Requests, {} attempt(s)): \
                 it is overloaded or rate-limits this client (API Priority and Fairness); run again later, or narrow the \
                 scope with -n",
                self.attempts
            ),
            kube::Error::Api(s) if self.attempts > 1 => format!(
                "failed to {what}: the API server answered {} {} ({}) to all {} attempts; check the cluster's health and \
                 run again",
                s.code, s.reason, s.message, self.attempts
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
                crate::causes(e)
            ),
            e => format!("failed to {what}: {}", crate::causes(e)),
        }
    }
}

fn scope_text(namespace: Option<&str>) -> String {
    namespace.map_or("in all namespaces".to_string(), |ns| format!("in namespace {ns}"))
}

#[derive(Deserialize)]
struct ListMeta {
    #[serde(rename = "continue")]
    continue_token: Option<String>,
}

/// The continue token of a list page, read without parsing the items: the API server writes `metadata`
/// before `items`, so it is a short parse from the first `"metadata"` key. Other orders get a full parse.
fn continue_token(text: &str) -> Result<Option<String>, serde_json::Error> {
    #[derive(Deserialize)]
    struct OnlyMeta {
        metadata: ListMeta,
    }
    let meta = match (text.find("\"metadata\""), text.find("\"items\"")) {
        (Some(m), Some(i)) if m < i => {
            let after_key = text[m + "\"metadata\"".len()..].trim_start();
            let value = after_key.strip_prefix(':').unwrap_or(after_key);
            // Reads one value and stops; the rest of the page is parsed on the blocking pool.
            ListMeta::deserialize(&mut serde_json::Deserializer::from_str(value))?
        }
        _ => serde_json::from_str::<OnlyMeta>(text)?.metadata,
    };
    Ok(meta.continue_token.filter(|t| !t.is_empty()))
}

/// Parses one page's items into what we keep.
type ParsePage<U> = fn(&str) -> serde_json::Result<Vec<U>>;

/// Pages parsed at once while the next ones download: overlaps transfer with parsing and uses every
/// core, with memory bounded to a few pages.
const PAGES_IN_FLIGHT: usize = 4;

/// Lists every object of kind `K` in scope, page by page. Each page is parsed on the blocking pool while
/// the next one is fetched.
async fn list_all<K, U>(
    client: &kube::Client,
    namespace: Option<&str>,
    selector: Option<&str>,
    parse: ParsePage<U>,
    metadata_only: bool,
) -> Result<Vec<U>, KubeError>
where
    K: kube::Resource<DynamicType = ()>,
    U: Send + 'static,
{
    let what = format!("list {} {}", K::plural(&()), scope_text(namespace));
    let error = |source| KubeError { what: what.clone(), source, attempts: 1 };
    let request = Request::new(K::url_path(&(), namespace));
    let mut out = Vec::new();
    let mut parsing = VecDeque::new();
    let mut token: Option<String> = None;
    let mut relists = 0;
    loop {
        let params = ListParams {
            label_selector: selector.map(str::to_string),
            limit: Some(PAGE_SIZE),
            continue_token: token.clone(),
            ..Default::default()
        };
        let build = || {
            let req = if metadata_only { request.list_metadata(&params) } else { request.list(&params) };
            req.map_err(kube::Error::BuildRequest)
        };
        let page = retry::request_text(client, build, &what, retry::RetryPolicy::default()).await;
        match page {
            Ok(text) => {
                token = continue_token(&text).map_err(|e| error(kube::Error::SerdeError(e)))?;
                parsing.push_back(tokio::task::spawn_blocking(move || parse(&text)));
                while parsing.len() >= PAGES_IN_FLIGHT || (token.is_none() && !parsing.is_empty()) {
                    if let Some(next) = parsing.pop_front() {
                        out.extend(joined(next.await).map_err(error)?);
                    }
                }
                if token.is_none() {
                    return Ok(out);
                }
            }
            // The continue token expired (the list took longer than etcd keeps its revision): start over,
            // as client-go's pager does, so the result is one consistent list.
            Err(retry::Exhausted { source: kube::Error::Api(s), .. })
                if s.code == 410 && token.is_some() && relists < MAX_RELISTS =>
            {
                relists += 1;
                tracing::debug!("continue token expired while listing; listing again from the start");
                parsing.drain(..).for_each(|task| task.abort());
                out.clear();
                token = None;
            }
            Err(retry::Exhausted { source, attempts }) => return Err(KubeError { what, source, attempts }),
        }
    }
}

/// A finished page parse, with a panic or cancellation turned into an error.
fn joined<U>(result: Result<serde_json::Result<Vec<U>>, tokio::task::JoinError>) -> Result<Vec<U>, kube::Error> {
    match result {
        Ok(parsed) => parsed.map_err(kube::Error::SerdeError),
        Err(e) => Err(kube::Error::Service(Box::new(e))),
    }
}

/// Pods in scope, matching the label selector.
pub async fn pods(
    client: &kube::Client,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<PodInfo>, KubeError> {
    list_all::<Pod, _>(client, namespace, selector, parse_pods, false).await
}

/// Service accounts in scope, keeping only their `eks.amazonaws.com/` annotations.
pub async fn service_accounts(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<ServiceAccountInfo>, KubeError> {
    list_all::<ServiceAccount, _>(client, namespace, None, parse_service_accounts, false).await
}

/// ReplicaSets and Jobs in scope that have an owner, by kind. Metadata only: nothing of their templates
/// (env values included) is ever read.
pub async fn owners(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Vec<(&'static str, Result<Vec<OwnerInfo>, KubeError>)> {
    let (rs, jobs) = tokio::join!(
        list_all::<ReplicaSet, _>(client, namespace, None, parse_owned::<false>, true),
        list_all::<Job, _>(client, namespace, None, parse_owned::<true>, true),
    );
    vec![("ReplicaSet", rs), ("Job", jobs)]
}

/// The metadata of every object `annotate` may write to, in scope: one metadata-only list per kind. A kind
/// that cannot be listed is returned as an error and the others are still read: its objects are then
/// simply not written.
pub async fn annotatable(client: &kube::Client, namespace: Option<&str>) -> (Vec<ObjectMeta>, Vec<KubeError>) {
    let ns = namespace;
    let lists = futures::future::join_all([
        Box::pin(list_all::<Deployment, _>(client, ns, None, parse_meta::<Deployment>, true))
            as futures::future::BoxFuture<'_, Result<Vec<ObjectMeta>, KubeError>>,
        Box::pin(list_all::<StatefulSet, _>(client, ns, None, parse_meta::<StatefulSet>, true)),
        Box::pin(list_all::<DaemonSet, _>(client, ns, None, parse_meta::<DaemonSet>, true)),
        Box::pin(list_all::<CronJob, _>(client, ns, None, parse_meta::<CronJob>, true)),
        Box::pin(list_all::<Job, _>(client, ns, None, parse_meta::<Job>, true)),
        Box::pin(list_all::<ReplicaSet, _>(client, ns, None, parse_meta::<ReplicaSet>, true)),
        Box::pin(list_all::<Pod, _>(client, ns, None, parse_meta::<Pod>, true)),
        Box::pin(list_all::<ServiceAccount, _>(client, ns, None, parse_meta::<ServiceAccount>, true)),
    ])
    .await;
    let (mut out, mut failed) = (Vec::new(), Vec::new());
    for list in lists {
        match list {
            Ok(objects) => out.extend(objects),
            Err(e) => failed.push(e),
        }
    }
    (out, failed)
}

/// The API path of a kind `annotate` writes to.
pub fn url_path(kind: &str, namespace: &str) -> Option<String> {
    let ns = Some(namespace);
    Some(match kind {
        "Deployment" => Deployment::url_path(&(), ns),
        "StatefulSet" => StatefulSet::url_path(&(), ns),
        "DaemonSet" => DaemonSet::url_path(&(), ns),
        "CronJob" => CronJob::url_path(&(), ns),
        "Job" => Job::url_path(&(), ns),
        "ReplicaSet" => ReplicaSet::url_path(&(), ns),
        "Pod" => Pod::url_path(&(), ns),
        "ServiceAccount" => ServiceAccount::url_path(&(), ns),
        _ => return None,
    })
}

/// The API version of a kind `annotate` writes to, for event references.
pub fn api_version(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps/v1",
        "CronJob" | "Job" => "batch/v1",
        _ => "v1",
    }
}

/// The Pod Identity agent DaemonSet in kube-system.
pub async fn pod_identity_agent(client: &kube::Client) -> Result<AgentStatus, KubeError> {
    let api: kube::Api<DaemonSet> = kube::Api::namespaced(client.clone(), "kube-system");
    let what = format!("get daemonset kube-system/{POD_IDENTITY_AGENT}");
    let ds = api.get_opt(POD_IDENTITY_AGENT).await.map_err(|source| KubeError { what, source, attempts: 1 })?;
    Ok(match ds {
        Some(d) => {
            let status = d.status.unwrap_or_default();
            AgentStatus { found: true, desired: status.desired_number_scheduled, ready: status.number_ready }
        }
        None => AgentStatus { found: false, desired: 0, ready: 0 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_token_in_any_field_order() {
        let go = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"abc"},"items":[{"metadata":{"name":"p"}}]}"#;
        assert_eq!(continue_token(go).unwrap().as_deref(), Some("abc"));
        let pretty = "{\n  \"metadata\" : {\n    \"continue\": \"x=\"\n  },\n  \"items\": []\n}";
        assert_eq!(continue_token(pretty).unwrap().as_deref(), Some("x="));
        // Items first: the first "metadata" key is an item's, so the whole page is read for the list's.
        let sorted = r#"{"apiVersion":"v1","items":[{"metadata":{"name":"p","continue":"not-this"}}],"kind":"PodList","metadata":{"continue":"def"}}"#;
        assert_eq!(continue_token(sorted).unwrap().as_deref(), Some("def"));
        let last = r#"{"metadata":{"resourceVersion":"9","continue":""},"items":[]}"#;
        assert_eq!(continue_token(last).unwrap(), None);
        assert!(continue_token(r#"{"metadata":{"continue":"#).is_err());
    }
}
