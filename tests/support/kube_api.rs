//! A stateful fake Kubernetes API server speaking the real JSON wire format: typed lists with paging
//! (`limit`/`continue`), label and field selectors, metadata-only lists (`PartialObjectMetadataList`), single
//! GETs, merge-patch, create (with `generateName`), `Status` errors, bearer token auth, injected faults and a
//! request log that can be read as RBAC requests ([`FakeKube::accesses`]). State is shared with the running
//! server, so a test can change objects and faults mid-run.

mod discovery;
mod routes;
mod selector;
mod status;
mod verbs;

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use super::fixtures::uid;
pub use super::http_server::{Fault, Recorded};
use super::http_server::{Server, serve, serve_tls};
pub use routes::Access;
use routes::respond;

/// A resource kind the fake serves.
#[derive(Debug)]
pub struct Resource {
    pub kind: &'static str,
    pub plural: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
}

impl Resource {
    pub fn api_version(&self) -> String {
        match self.group {
            "" => self.version.to_string(),
            group => format!("{group}/{}", self.version),
        }
    }
}

const fn res(
    kind: &'static str,
    plural: &'static str,
    group: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> Resource {
    Resource { kind, plural, group, version: "v1", namespaced, short_names }
}

pub const RESOURCES: &[Resource] = &[
    res("Pod", "pods", "", true, &["po"]),
    res("ServiceAccount", "serviceaccounts", "", true, &["sa"]),
    res("Namespace", "namespaces", "", false, &["ns"]),
    res("Node", "nodes", "", false, &["no"]),
    res("ReplicaSet", "replicasets", "apps", true, &["rs"]),
    res("Deployment", "deployments", "apps", true, &["deploy"]),
    res("DaemonSet", "daemonsets", "apps", true, &["ds"]),
    res("StatefulSet", "statefulsets", "apps", true, &["sts"]),
    res("Job", "jobs", "batch", true, &[]),
    res("CronJob", "cronjobs", "batch", true, &["cj"]),
    // Both Event APIs are views of one stored resource, as on a real server; objects keep the shape they
    // were created with, so a list through either API may show both shapes.
    res("Event", "events", "", true, &["ev"]),
    res("Event", "events", "events.k8s.io", true, &["ev"]),
];

fn resource_of_kind(kind: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.kind == kind)
}

/// The resource of `kind` served at `api_version` when given and served, else the first of that kind.
fn resource_of(kind: &str, api_version: Option<&str>) -> Option<&'static Resource> {
    let at_version = RESOURCES.iter().find(|r| r.kind == kind && Some(r.api_version().as_str()) == api_version);
    at_version.or_else(|| resource_of_kind(kind))
}

/// Objects are keyed by kind, namespace ("" when cluster-scoped) and name.
type Key = (String, String, String);

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    resource_version: u64,
    /// Continue tokens minted before this resourceVersion answer 410 Expired.
    oldest_continue_rv: u64,
    token: Option<String>,
    faults: Vec<Fault>,
    delay: Option<Duration>,
    log: Vec<Recorded>,
}

/// The fake's state; clone-cheap, shared with the server once started.
#[derive(Clone, Default)]
pub struct FakeKube {
    state: Arc<Mutex<State>>,
}

impl FakeKube {
    pub fn new() -> Self {
        FakeKube::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take every later request down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores (or replaces) an object by its kind, namespace and name; like the real server it
    /// assigns a new `resourceVersion` and fills `uid`/`creationTimestamp` when missing.
    pub fn add(&self, mut obj: Value) {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let res = resource_of(&kind, obj["apiVersion"].as_str())
            .unwrap_or_else(|| panic!("fake kube does not serve kind {kind:?}"));
        let ns = if res.namespaced { obj["metadata"]["namespace"].as_str().unwrap_or("default") } else { "" };
        let name = obj["metadata"]["name"].as_str().expect("object needs metadata.name").to_string();
        let ns = ns.to_string();
        let mut st = self.lock();
        st.resource_version += 1;
        let meta = &mut obj["metadata"];
        if res.namespaced {
            meta["namespace"] = json!(ns);
        }
        meta["resourceVersion"] = json!(st.resource_version.to_string());
        if meta.get("uid").is_none() {
            meta["uid"] = json!(uid(&kind, &ns, &name));
        }
        if meta.get("creationTimestamp").is_none() {
            meta["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        obj["apiVersion"] = json!(res.api_version());
        st.objects.insert((kind, ns, name), obj);
    }

    pub fn add_all(&self, objects: impl IntoIterator<Item = Value>) {
        objects.into_iter().for_each(|obj| self.add(obj));
    }

    /// Removes an object; `ns` is ignored for cluster-scoped kinds. Returns whether it existed.
    pub fn remove(&self, kind: &str, ns: &str, name: &str) -> bool {
        let ns = if resource_of_kind(kind).is_some_and(|r| !r.namespaced) { "" } else { ns };
        let mut st = self.lock();
        st.resource_version += 1;
        st.objects.remove(&(kind.to_string(), ns.to_string(), name.to_string())).is_some()
    }

    /// The stored object, e.g. to check what a PATCH did.
    pub fn get(&self, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let ns = if resource_of_kind(kind).is_some_and(|r| !r.namespaced) { "" } else { ns };
        self.lock().objects.get(&(kind.to_string(), ns.to_string(), name.to_string())).cloned()
    }

    /// Every stored object of `kind`, sorted by namespace and name (e.g. the Events a run created).
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        self.lock().objects.iter().filter(|((k, _, _), _)| k == kind).map(|(_, obj)| obj.clone()).collect()
    }

    /// From now on requests without `Authorization: Bearer <token>` get 401.
    pub fn require_bearer_token(&self, token: &str) {
        self.lock().token = Some(token.to_string());
    }

    pub fn fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Every answer waits this long first.
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.lock().delay = delay;
    }

    /// Makes every continue token issued so far answer 410 Expired, as after an etcd compaction.
    pub fn expire_continue_tokens(&self) {
        let mut st = self.lock();
        st.resource_version += 1;
        st.oldest_continue_rv = st.resource_version;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().log.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// Every request so far as the authorizer sees it (verb, API group, resource, namespace, name), to check
    /// the requests a run made against RBAC rules.
    pub fn accesses(&self) -> Vec<Access> {
        self.lock().log.iter().map(Access::of).collect()
    }

    /// Requests with this method whose path contains `path_contains`.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        let log = &self.lock().log;
        log.iter().filter(|r| r.method == method && r.path.contains(path_contains)).count()
    }

    pub fn start(self) -> RunningKube {
        let server = serve(self.handler());
        RunningKube { kube: self, server }
    }

    pub fn start_tls(self) -> RunningKube {
        let server = serve_tls(self.handler());
        RunningKube { kube: self, server }
    }

    fn handler(&self) -> super::http_server::Handler {
        let kube = self.clone();
        Arc::new(move |req| {
            let mut st = kube.lock();
            st.log.push(Recorded::of(&req));
            let delay = st.delay;
            respond(&mut st, &req).delayed(delay)
        })
    }
}

/// A started fake; derefs to [`FakeKube`] so state can still be changed. Stops on drop.
pub struct RunningKube {
    kube: FakeKube,
    server: Server,
}

impl RunningKube {
    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn ca_pem(&self) -> Option<String> {
        self.server.ca_pem()
    }
}

impl Deref for RunningKube {
    type Target = FakeKube;

    fn deref(&self) -> &FakeKube {
        &self.kube
    }
}
