//! `Status` failure bodies worded as the real API server words them, so clients (kubectl, kube-rs) show
//! and classify them as they would in production.

use serde_json::{Value, json};

use super::super::http_server::{Fault, Response};

/// The user named in Forbidden messages.
pub const USER: &str = "test-user";

/// What a request was aiming at, for the wording of errors.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub verb: &'static str,
    /// Resource plural; empty for non-resource paths (discovery, unknown URLs).
    pub plural: String,
    pub group: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub path: String,
}

impl Target {
    fn details(&self) -> Value {
        let mut details = json!({ "kind": self.plural });
        if let Some(name) = &self.name {
            details["name"] = json!(name);
        }
        if !self.group.is_empty() {
            details["group"] = json!(self.group);
        }
        details
    }

    /// `pods`, `replicasets.apps "web-1"`: the group-qualified subject of most messages.
    fn subject(&self) -> String {
        let resource = match self.group.as_str() {
            "" => self.plural.clone(),
            group => format!("{}.{group}", self.plural),
        };
        match &self.name {
            Some(name) => format!("{resource} \"{name}\""),
            None => resource,
        }
    }
}

pub fn failure(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    Response::json(code, &body)
}

pub fn unauthorized() -> Response {
    failure(401, "Unauthorized", "Unauthorized", None)
}

pub fn forbidden(target: &Target) -> Response {
    if target.plural.is_empty() {
        let message = format!("forbidden: User \"{USER}\" cannot {} path \"{}\"", target.verb, target.path);
        return failure(403, "Forbidden", &message, Some(json!({})));
    }
    let scope = match &target.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let message = format!(
        "{} is forbidden: User \"{USER}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
        target.subject(),
        target.verb,
        target.plural,
        target.group,
    );
    failure(403, "Forbidden", &message, Some(target.details()))
}

pub fn not_found(target: &Target) -> Response {
    match &target.name {
        Some(_) if !target.plural.is_empty() => {
            let message = format!("{} not found", target.subject());
            failure(404, "NotFound", &message, Some(target.details()))
        }
        _ => failure(404, "NotFound", "the server could not find the requested resource", Some(json!({}))),
    }
}

/// 409 AlreadyExists, for a create whose name is taken.
pub fn already_exists(target: &Target) -> Response {
    let message = format!("{} already exists", target.subject());
    failure(409, "AlreadyExists", &message, Some(target.details()))
}

pub fn expired() -> Response {
    let message = "The provided continue parameter is too old to display a consistent list result. \
        You can start a new list without the continue parameter, or use the continue token in this \
        response to retrieve the remainder of the results. Continuing with the provided token results \
        in an inconsistent list - objects that were created, modified, or deleted between the time \
        the first chunk was returned and now may show up in the list.";
    failure(410, "Expired", message, None)
}

pub fn bad_request(message: &str) -> Response {
    failure(400, "BadRequest", message, None)
}

/// The answer to an injected fault, as the real server would give that status.
pub fn for_fault(fault: &Fault, target: &Target) -> Response {
    let reason = fault.error.as_deref();
    let resp = match fault.status {
        401 => unauthorized(),
        403 => forbidden(target),
        404 => not_found(target),
        409 => {
            let message = format!(
                "Operation cannot be fulfilled on {}: the object has been modified; please apply \
                 your changes to the latest version and try again",
                target.subject()
            );
            failure(409, "Conflict", &message, Some(target.details()))
        }
        410 => expired(),
        429 => failure(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            Some(json!({ "retryAfterSeconds": 1 })),
        )
        .header("retry-after", "1"),
        503 => failure(503, "ServiceUnavailable", "the server is currently unable to handle the request", None),
        504 => failure(504, "Timeout", "the server was unable to return a response in the time allotted", None),
        code => failure(
            code,
            "InternalError",
            "Internal error occurred: injected fault",
            Some(json!({ "causes": [{ "message": "injected fault" }] })),
        ),
    };
    match reason {
        Some(reason) => override_reason(resp, reason),
        None => resp,
    }
}

fn override_reason(mut resp: Response, reason: &str) -> Response {
    if let Ok(mut body) = serde_json::from_slice::<Value>(&resp.body) {
        body["reason"] = json!(reason);
        resp.body = body.to_string().into_bytes();
    }
    resp
}
