//! The verbs the fake answers: paged, filtered lists (full or metadata-only), get, merge-patch and create.

use serde_json::{Value, json};

use super::super::b64;
use super::super::fixtures::uid;
use super::super::http_server::{Fault, Request, Response};
use super::selector::{LabelSelector, field_selector_matches};
use super::status::{self, Target};
use super::{Key, Resource, State};

/// What a client asked for in `Accept`: the object itself, or only its metadata (`as=PartialObjectMetadata`
/// or `as=PartialObjectMetadataList` in group `meta.k8s.io`, as kube's `list_metadata`/`get_metadata` and
/// client-go's metadata client ask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Full,
    Metadata,
    MetadataList,
}

fn shape(req: &Request) -> Shape {
    let accept = req.header("accept").unwrap_or_default();
    // The first media type that names a shape wins, as the server picks the first it can serve.
    for media in accept.split(',') {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        if params.contains(&"g=meta.k8s.io") {
            if params.contains(&"as=PartialObjectMetadataList") {
                return Shape::MetadataList;
            }
            if params.contains(&"as=PartialObjectMetadata") {
                return Shape::Metadata;
            }
        }
    }
    Shape::Full
}

fn partial(obj: &Value) -> Value {
    json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"] })
}

fn not_acceptable(message: &str) -> Response {
    status::failure(406, "NotAcceptable", message, None)
}

/// One object, or only its metadata.
pub(super) fn get(st: &State, key: &Key, req: &Request, target: &Target) -> Response {
    let Some(obj) = st.objects.get(key) else {
        return status::not_found(target);
    };
    match shape(req) {
        Shape::Full => Response::json(200, obj),
        Shape::Metadata => Response::json(200, &partial(obj)),
        Shape::MetadataList => not_acceptable(
            "you requested PartialObjectMetadataList, but the requested object is not a list (*v1.PartialObjectMetadata)",
        ),
    }
}

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
    let shape = shape(req);
    if shape == Shape::Metadata {
        return not_acceptable(&format!(
            "you requested PartialObjectMetadata, but the requested object is a list (*v1.{}List)",
            res.kind
        ));
    }
    let items: Vec<Value> = matching[..page_len]
        .iter()
        .map(|(_, obj)| if shape == Shape::MetadataList { partial(obj) } else { strip_type(obj) })
        .collect();
    let mut metadata = json!({ "resourceVersion": snapshot_rv.to_string() });
    if let Some((next_key, _)) = matching.get(page_len) {
        metadata["continue"] = json!(encode_continue(snapshot_rv, next_key));
        // The real server leaves the count out when selectors make it unknowable.
        if req.query_param("labelSelector").is_none() && fields.is_empty() {
            metadata["remainingItemCount"] = json!(matching.len() - page_len);
        }
    }
    let (kind, api_version) = match shape {
        Shape::MetadataList => ("PartialObjectMetadataList".to_string(), "meta.k8s.io/v1".to_string()),
        _ => (format!("{}List", res.kind), res.api_version()),
    };
    // Field order as the real (Go) server writes it: metadata, with the continue token, before items.
    let body = format!(
        r#"{{"kind":{},"apiVersion":{},"metadata":{metadata},"items":{}}}"#,
        json!(kind),
        json!(api_version),
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

/// Characters the API server draws `generateName` suffixes from (no vowels, no look-alikes).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A 5-character suffix, deterministic per (prefix, attempt, resourceVersion) so runs are reproducible.
fn name_suffix(prefix: &str, attempt: u64, rv: u64) -> String {
    let mut h = format!("{prefix}/{attempt}/{rv}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    (0..5)
        .map(|_| {
            let c = NAME_ALPHABET[(h % NAME_ALPHABET.len() as u64) as usize] as char;
            h /= NAME_ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// POST to a collection: validates the object as the API server does before storing it (kind and
/// apiVersion of the endpoint, the URL's namespace, a name or `generateName`, no `resourceVersion`), fills
/// what the server fills, stores it unless `dryRun=All`, and answers 201 with the object.
pub(super) fn create(
    st: &mut State,
    res: &'static Resource,
    ns: Option<String>,
    req: &Request,
    target: &Target,
) -> Response {
    let content_type = req.header("content-type").unwrap_or_default();
    if !content_type.starts_with("application/json") {
        let message = format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"
        );
        return status::failure(415, "UnsupportedMediaType", &message, None);
    }
    let mut obj = match serde_json::from_slice::<Value>(&req.body) {
        Ok(obj @ Value::Object(_)) => obj,
        _ => return status::bad_request("the object provided is unrecognized (must be a JSON object)"),
    };
    let api_version = res.api_version();
    if let Some(given) = obj["apiVersion"].as_str().filter(|v| *v != api_version) {
        let message =
            format!("the API version in the data ({given}) does not match the expected API version ({api_version})");
        return status::bad_request(&message);
    }
    if let Some(given) = obj["kind"].as_str().filter(|k| *k != res.kind) {
        return status::bad_request(&format!(
            "the kind in the data ({given}) does not match the expected kind ({})",
            res.kind
        ));
    }
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    let meta = &obj["metadata"];
    if meta["namespace"].as_str().is_some_and(|given| !given.is_empty() && Some(given) != ns.as_deref()) {
        return status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        );
    }
    if meta["resourceVersion"].as_str().is_some_and(|rv| !rv.is_empty()) {
        return status::bad_request("resourceVersion should not be set on objects to be created");
    }
    let given_name = meta["name"].as_str().unwrap_or_default().to_string();
    let prefix = meta["generateName"].as_str().unwrap_or_default().to_string();
    let ns_key = ns.clone().unwrap_or_default();
    let exists =
        |st: &State, name: &str| st.objects.contains_key(&(res.kind.to_string(), ns_key.clone(), name.to_string()));
    let name = match (given_name.is_empty(), prefix.is_empty()) {
        (false, _) => given_name,
        (true, false) => (0..)
            .map(|attempt| format!("{prefix}{}", name_suffix(&prefix, attempt, st.resource_version)))
            .find(|candidate| !exists(st, candidate))
            .unwrap_or_default(),
        (true, true) => {
            let message = format!(
                "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                res.kind
            );
            let details = json!({ "kind": res.plural, "group": res.group, "causes": [{
                "reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
                "field": "metadata.name",
            }] });
            return status::failure(422, "Invalid", &message, Some(details));
        }
    };
    if exists(st, &name) {
        let target = Target { name: Some(name.clone()), ..target.clone() };
        return status::already_exists(&target);
    }
    let next_rv = st.resource_version + 1;
    let now = jiff::Timestamp::now().round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default();
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(res.kind);
    let meta = &mut obj["metadata"];
    meta["name"] = json!(name);
    if let Some(ns) = &ns {
        meta["namespace"] = json!(ns);
    }
    meta["uid"] = json!(uid(res.kind, &ns_key, &format!("{name}/{next_rv}")));
    meta["resourceVersion"] = json!(next_rv.to_string());
    meta["creationTimestamp"] = json!(now);
    let dry_run = req.query_param("dryRun").is_some_and(|d| d == "All");
    if !dry_run {
        st.resource_version = next_rv;
        st.objects.insert((res.kind.to_string(), ns_key, name), obj.clone());
    }
    Response::json(201, &obj)
}
