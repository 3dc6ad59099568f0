//! Which resource a URL names, dispatching a request to the verb that answers it, and the same request as
//! the RBAC authorizer sees it.

use serde_json::Value;

use super::super::http_server::{Recorded, Request, Response, take_fault};
use super::status::{self, Target};
use super::verbs::{create, get, list, patch};
use super::{Key, RESOURCES, Resource, State, discovery};

enum Route {
    Discovery(Value),
    List(&'static Resource, Option<String>),
    Object(&'static Resource, Option<String>, String),
    Unknown,
}

fn route(path: &str) -> Route {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let discovery = |v: Option<Value>| v.map_or(Route::Unknown, Route::Discovery);
    match segments.as_slice() {
        ["version"] => Route::Discovery(discovery::version()),
        ["api"] => Route::Discovery(discovery::api_versions()),
        ["apis"] => Route::Discovery(discovery::api_groups()),
        ["api", version] => discovery(discovery::resource_list("", version)),
        ["apis", group, version] => discovery(discovery::resource_list(group, version)),
        ["api", version, rest @ ..] => resource_route("", version, rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        _ => Route::Unknown,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let find = |plural: &str| RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural);
    match rest {
        [plural] => find(plural).map_or(Route::Unknown, |r| Route::List(r, None)),
        [plural, name] => match find(plural) {
            Some(r) if !r.namespaced => Route::Object(r, None, name.to_string()),
            _ => Route::Unknown,
        },
        ["namespaces", ns, plural] => match find(plural) {
            Some(r) if r.namespaced => Route::List(r, Some(ns.to_string())),
            _ => Route::Unknown,
        },
        ["namespaces", ns, plural, name] => match find(plural) {
            Some(r) if r.namespaced => Route::Object(r, Some(ns.to_string()), name.to_string()),
            _ => Route::Unknown,
        },
        _ => Route::Unknown,
    }
}

/// The RBAC verb of a request (kube-apiserver's `RequestInfoFactory`): the HTTP method, refined by whether
/// the URL names a collection or one object, and by `watch`.
fn verb(method: &str, route: &Route, watch: bool) -> &'static str {
    match (method, route) {
        ("GET", Route::List(..)) if watch => "watch",
        ("GET", Route::List(..)) => "list",
        ("GET" | "HEAD", _) => "get",
        ("PATCH", _) => "patch",
        ("PUT", _) => "update",
        ("DELETE", Route::List(..)) => "deletecollection",
        ("DELETE", _) => "delete",
        ("POST", _) => "create",
        _ => "",
    }
}

fn is_watch(value: Option<&str>) -> bool {
    value.is_some_and(|w| w == "true" || w == "1")
}

fn target(route: &Route, req: &Request) -> Target {
    let verb = verb(&req.method, route, is_watch(req.query_param("watch").as_deref()));
    let (res, namespace, name) = match route {
        Route::List(r, ns) => (Some(*r), ns.clone(), None),
        Route::Object(r, ns, name) => (Some(*r), ns.clone(), Some(name.clone())),
        _ => (None, None, None),
    };
    Target {
        verb,
        plural: res.map(|r| r.plural.to_string()).unwrap_or_default(),
        group: res.map(|r| r.group.to_string()).unwrap_or_default(),
        namespace,
        name,
        path: req.path.clone(),
    }
}

pub(super) fn respond(st: &mut State, req: &Request) -> Response {
    if let Some(token) = &st.token
        && req.header("authorization") != Some(format!("Bearer {token}").as_str())
    {
        return status::unauthorized();
    }
    let route = route(&req.path);
    let target = target(&route, req);
    let continuing = req.query_param("continue").is_some_and(|c| !c.is_empty());
    if let Some(fault) = take_fault(&mut st.faults, req, continuing) {
        return status::for_fault(&fault, &target);
    }
    match (req.method.as_str(), route) {
        ("GET", Route::Discovery(body)) => Response::json(200, &body),
        ("GET", Route::List(res, ns)) => list(st, res, ns.as_deref(), req),
        ("GET", Route::Object(res, ns, name)) => get(st, &key(res, &ns, &name), req, &target),
        ("PATCH", Route::Object(res, ns, name)) => patch(st, key(res, &ns, &name), req, &target),
        ("POST", Route::List(res, ns)) if res.namespaced == ns.is_some() => create(st, res, ns, req, &target),
        (_, Route::Unknown) => status::not_found(&target),
        _ => status::failure(
            405,
            "MethodNotAllowed",
            &format!("the server does not allow this method on the requested resource ({})", req.method),
            None,
        ),
    }
}

pub(super) fn key(res: &Resource, ns: &Option<String>, name: &str) -> Key {
    (res.kind.to_string(), ns.clone().unwrap_or_default(), name.to_string())
}

/// A request as the RBAC authorizer sees it. `resource` is empty for non-resource URLs (discovery,
/// `/version`, unknown paths), whose `verb` is then the lowercase HTTP method, as for RBAC's
/// `nonResourceURLs` rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub verb: String,
    /// API group: `""` for the core group, `apps`, `batch`, `events.k8s.io`...
    pub group: String,
    /// Resource plural (`pods`), as RBAC rules name it.
    pub resource: String,
    pub namespace: Option<String>,
    /// The object named in the URL; `None` for collections.
    pub name: Option<String>,
    pub path: String,
}

impl Access {
    pub fn of(req: &Recorded) -> Self {
        let route = route(&req.path);
        let res = match &route {
            Route::List(r, _) | Route::Object(r, _, _) => Some(*r),
            _ => None,
        };
        let verb = match res {
            Some(_) => verb(&req.method, &route, is_watch(req.query_param("watch"))).to_string(),
            None => req.method.to_ascii_lowercase(),
        };
        let (namespace, name) = match route {
            Route::List(_, ns) => (ns, None),
            Route::Object(_, ns, name) => (ns, Some(name)),
            _ => (None, None),
        };
        Access {
            verb,
            group: res.map(|r| r.group.to_string()).unwrap_or_default(),
            resource: res.map(|r| r.plural.to_string()).unwrap_or_default(),
            namespace,
            name,
            path: req.path.clone(),
        }
    }

    /// Whether the URL named no resource (discovery, `/version`, or a path the fake does not serve).
    pub fn non_resource(&self) -> bool {
        self.resource.is_empty()
    }
}
