//! Which resource a URL names, and dispatching a request to the verb that answers it.

use serde_json::Value;

use super::super::http_server::{Request, Response, take_fault};
use super::status::{self, Target};
use super::verbs::{list, patch};
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

fn target(route: &Route, req: &Request) -> Target {
    let verb = match (req.method.as_str(), route) {
        ("GET", Route::List(..)) => "list",
        ("GET", _) => "get",
        ("PATCH", _) => "patch",
        ("PUT", _) => "update",
        ("DELETE", _) => "delete",
        _ => "create",
    };
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
        ("GET", Route::Object(res, ns, name)) => match st.objects.get(&key(res, &ns, &name)) {
            Some(obj) => Response::json(200, obj),
            None => status::not_found(&target),
        },
        ("PATCH", Route::Object(res, ns, name)) => patch(st, key(res, &ns, &name), req, &target),
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
