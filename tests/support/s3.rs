//! A fake Amazon S3 endpoint speaking the REST/XML protocol aws-sdk-s3 uses with path-style addressing
//! (point the SDK at it with `AWS_ENDPOINT_URL_S3`): `ListObjectsV2` (prefix, delimiter with common
//! prefixes, `max-keys` paging with continuation tokens) and `GetObject`, errors as S3 words them
//! (`<Error><Code>`), injected faults and a request log.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub use super::http_server::{Fault, Recorded};
use super::http_server::{Handler, Request, Response, Running, percent_decode, take_fault};

#[derive(Default)]
struct State {
    buckets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    max_keys: Option<usize>,
    faults: Vec<Fault>,
    log: Vec<Recorded>,
}

/// The fake's state; clone-cheap, shared with the server once started.
#[derive(Clone, Default)]
pub struct FakeS3 {
    state: Arc<Mutex<State>>,
}

impl FakeS3 {
    pub fn new() -> Self {
        FakeS3::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.lock().buckets.entry(bucket.into()).or_default().insert(key.into(), body);
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.lock().buckets.entry(bucket.into()).or_default();
    }

    /// At most `n` entries (keys and common prefixes) per list page, whatever the client asks.
    pub fn max_keys(&self, n: usize) {
        self.lock().max_keys = Some(n);
    }

    /// `Fault::error` overrides the S3 error code derived from the status.
    pub fn fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().log.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// The object keys fetched with GetObject, in order.
    pub fn gets(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.query_param("list-type").is_none())
            .filter_map(|r| r.path.trim_start_matches('/').split_once('/').map(|(_, k)| percent_decode(k)))
            .collect()
    }

    pub fn start(self) -> RunningS3 {
        let s3 = self.clone();
        let handler: Handler = Arc::new(move |req| {
            let mut st = s3.lock();
            st.log.push(Recorded::of(&req));
            respond(&mut st, &req)
        });
        Running::serve(self, handler)
    }
}

/// A started fake; derefs to [`FakeS3`]. Stops on drop.
pub type RunningS3 = Running<FakeS3>;

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message>\
         <RequestId>4442587FB7D0A2F9</RequestId><HostId>fake</HostId></Error>",
        xml_escape(message)
    );
    Response {
        status,
        headers: vec![("content-type".into(), "application/xml".into())],
        body: body.into_bytes(),
        delay: None,
    }
}

fn respond(st: &mut State, req: &Request) -> Response {
    if let Some(f) = take_fault(&mut st.faults, req, req.query_param("continuation-token").is_some()) {
        let code = f.error.clone().unwrap_or_else(|| match f.status {
            403 => "AccessDenied".into(),
            404 => "NoSuchKey".into(),
            503 => "SlowDown".into(),
            _ => "InternalError".into(),
        });
        return error(f.status, &code, "injected fault");
    }
    if !req.header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256")) {
        return error(403, "AccessDenied", "Anonymous access is forbidden for this operation");
    }
    let path = req.path.trim_start_matches('/');
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) if !k.is_empty() => (percent_decode(b), Some(percent_decode(k))),
        _ => (percent_decode(path.trim_end_matches('/')), None),
    };
    let Some(objects) = st.buckets.get(&bucket) else {
        return error(404, "NoSuchBucket", "The specified bucket does not exist");
    };
    match (req.method.as_str(), key) {
        ("GET", Some(key)) => match objects.get(&key) {
            Some(body) => Response {
                status: 200,
                headers: vec![
                    ("content-type".into(), "application/octet-stream".into()),
                    ("etag".into(), format!("\"{:x}\"", body.len())),
                    ("last-modified".into(), "Tue, 01 Dec 2026 10:00:00 GMT".into()),
                ],
                body: body.clone(),
                delay: None,
            },
            None => error(404, "NoSuchKey", "The specified key does not exist."),
        },
        ("GET", None) if req.query_param("list-type").as_deref() == Some("2") => list(st, &bucket, req),
        _ => error(405, "MethodNotAllowed", "The specified method is not allowed against this resource."),
    }
}

/// ListObjectsV2: entries after the continuation token (the last entry of the previous page), keys and
/// common prefixes sorted together, at most `max-keys` of them.
fn list(st: &State, bucket: &str, req: &Request) -> Response {
    let objects = &st.buckets[bucket];
    let prefix = req.query_param("prefix").unwrap_or_default();
    let delimiter = req.query_param("delimiter").filter(|d| !d.is_empty());
    let asked: usize = req.query_param("max-keys").and_then(|m| m.parse().ok()).unwrap_or(1000);
    let max = st.max_keys.map_or(asked, |m| m.min(asked));
    let after = req.query_param("continuation-token").map(|t| hex_decode(&t));
    // (name, Some(size) for a key / None for a common prefix)
    let mut entries: BTreeMap<String, Option<usize>> = BTreeMap::new();
    for (key, body) in objects.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)) {
        let rest = &key[prefix.len()..];
        match delimiter.as_deref().and_then(|d| rest.find(d).map(|i| i + d.len())) {
            Some(end) => entries.insert(format!("{prefix}{}", &rest[..end]), None),
            None => entries.insert(key.clone(), Some(body.len())),
        };
    }
    let remaining: Vec<(String, Option<usize>)> =
        entries.into_iter().filter(|(name, _)| after.as_ref().is_none_or(|a| name > a)).collect();
    let page = &remaining[..remaining.len().min(max)];
    let truncated = remaining.len() > page.len();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        xml_escape(bucket),
        xml_escape(&prefix),
        page.len()
    );
    if let Some(d) = &delimiter {
        xml.push_str(&format!("<Delimiter>{}</Delimiter>", xml_escape(d)));
    }
    if let Some(t) = req.query_param("continuation-token") {
        xml.push_str(&format!("<ContinuationToken>{}</ContinuationToken>", xml_escape(&t)));
    }
    for (name, size) in page {
        match size {
            Some(size) => xml.push_str(&format!(
                "<Contents><Key>{}</Key><LastModified>2026-12-01T10:00:00.000Z</LastModified>\
                 <ETag>&quot;{size:x}&quot;</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                xml_escape(name)
            )),
            None => xml.push_str(&format!("<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>", xml_escape(name))),
        }
    }
    if truncated && let Some((last, _)) = page.last() {
        xml.push_str(&format!("<NextContinuationToken>{}</NextContinuationToken>", hex_encode(last)));
    }
    xml.push_str("</ListBucketResult>");
    Response {
        status: 200,
        headers: vec![("content-type".into(), "application/xml".into())],
        body: xml.into_bytes(),
        delay: None,
    }
}

fn hex_encode(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> String {
    let bytes: Vec<u8> =
        (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
