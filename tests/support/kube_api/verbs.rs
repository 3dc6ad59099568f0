//! The verbs the fake answers: paged, filtered lists and merge-patch.

use serde_json::{Value, json};

use super::super::b64;
use super::super::http_server::{Fault, Request, Response};
use super::selector::{LabelSelector, field_selector_matches};
use super::status::{self, Target};
use super::{Key, Resource, State};

/// A list page. Continue tokens carry the snapshot resourceVersion and the key to start from, like
/// the real (base64 JSON) ones, so pages stay ordered even if objects change between them.
pub(super) fn list(st: &State, res: &Resource, ns: Option<&str>, req: &Request) -> Response {
    if req.query_param("watch").is_some_and(|w| w == "true" || w == "1") {
        return status::bad_request("watch is not supported by the fake API server");
    }
    let labels = match LabelSelector::parse(&req.query_param("labelSelector").unwrap_or_default()) {
        Ok(selector) => selector,
        Err(message) => return status::bad_request(&message),
    };
    let fields = req.query_param("fieldSelector").unwrap_or_default();
    let (snapshot_rv, start) = match req.query_param("continue").filter(|c| !c.is_empty()) {
        None => (st.resource_version, String::new()),
        Some(token) => match decode_continue(&token) {
            Some((rv, _)) if rv < st.oldest_continue_rv => return status::expired(),
            Some(decoded) => decoded,
            None => return status::bad_request("continue key is not valid: illegal base64 data"),
        },
    };
    let mut matching: Vec<(String, &Value)> = st
        .objects
        .iter()
        .filter(|((kind, obj_ns, _), _)| kind == res.kind && ns.is_none_or(|ns| ns == obj_ns))
        .map(|((_, obj_ns, name), obj)| (format!("{obj_ns}/{name}"), obj))
        .filter(|(sort_key, _)| *sort_key >= start)
        .filter(|(_, obj)| labels.matches(&obj["metadata"]["labels"]))
        .filter(|(_, obj)| field_selector_matches(&fields, obj))
        .collect();
    // etcd order: by the "namespace/name" key string, which is what continue tokens point into.
    matching.sort_by(|a, b| a.0.cmp(&b.0));
    let limit = req.query_param("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0);
    let page_len = limit.unwrap_or(matching.len()).min(matching.len());
    let items: Vec<Value> = matching[..page_len].iter().map(|(_, obj)| strip_type(obj)).collect();
    let mut metadata = json!({ "resourceVersion": snapshot_rv.to_string() });
    if let Some((next_key, _)) = matching.get(page_len) {
        metadata["continue"] = json!(encode_continue(snapshot_rv, next_key));
        // The real server leaves the count out when selectors make it unknowable.
        if req.query_param("labelSelector").is_none() && fields.is_empty() {
            metadata["remainingItemCount"] = json!(matching.len() - page_len);
        }
    }
    // Field order as the real (Go) server writes it: metadata, with the continue token, before items.
    let body = format!(
        r#"{{"kind":{},"apiVersion":{},"metadata":{metadata},"items":{}}}"#,
        json!(format!("{}List", res.kind)),
        json!(res.api_version()),
        Value::Array(items)
    );
    Response { body: body.into_bytes(), ..Response::json(200, &json!({})) }
}

/// Real lists leave `kind`/`apiVersion` off their items.
fn strip_type(obj: &Value) -> Value {
    let mut item = obj.clone();
    if let Some(map) = item.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    item
}

fn encode_continue(rv: u64, start: &str) -> String {
    let token = json!({ "v": "meta.k8s.io/v1", "rv": rv, "start": start });
    b64::encode_url(token.to_string().as_bytes())
}

fn decode_continue(token: &str) -> Option<(u64, String)> {
    let token: Value = serde_json::from_slice(&b64::decode(token)?).ok()?;
    Some((token["rv"].as_u64()?, token["start"].as_str()?.to_string()))
}

/// JSON merge patch (RFC 7386); strategic merge patch is treated the same, which is exact for the
/// metadata maps (labels, annotations) a patch from this tool touches.
pub(super) fn patch(st: &mut State, key: Key, req: &Request, target: &Target) -> Response {
    let content_type = req.header("content-type").unwrap_or_default();
    if !content_type.starts_with("application/merge-patch+json")
        && !content_type.starts_with("application/strategic-merge-patch+json")
    {
        let message = format!(
            "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got {content_type:?})"
        );
        return status::failure(415, "UnsupportedMediaType", &message, None);
    }
    let Ok(patch) = serde_json::from_slice::<Value>(&req.body) else {
        return status::bad_request("error decoding patch: invalid JSON");
    };
    let next_rv = st.resource_version + 1;
    let Some(current) = st.objects.get(&key) else {
        return status::not_found(target);
    };
    let wanted_rv = patch["metadata"]["resourceVersion"].as_str();
    if wanted_rv.is_some_and(|rv| Some(rv) != current["metadata"]["resourceVersion"].as_str()) {
        let fault = Fault::new("", 409);
        return status::for_fault(&fault, target);
    }
    let mut updated = current.clone();
    merge(&mut updated, &patch);
    updated["metadata"]["resourceVersion"] = json!(next_rv.to_string());
    let dry_run = req.query_param("dryRun").is_some_and(|d| d == "All");
    if !dry_run {
        st.resource_version = next_rv;
        st.objects.insert(key, updated.clone());
    }
    Response::json(200, &updated)
}

fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(existing) = target {
        for (k, v) in fields {
            match v {
                Value::Null => {
                    existing.remove(k);
                }
                v => merge(existing.entry(k.clone()).or_insert(Value::Null), v),
            }
        }
    }
}
