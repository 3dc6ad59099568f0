//! The AWS Query protocol as IAM and STS speak it: a form-encoded POST (`Action=X&Version=...`), an XML
//! answer `<XResponse xmlns=...><XResult>...</XResult><ResponseMetadata>`, lists as `<member>` elements and
//! errors as `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>`. Shared by both fakes.

use super::super::http_server::{Recorded, Request, Response, parse_query};

/// One call as a Query fake saw it, with what it answered.
#[derive(Debug, Clone)]
pub struct Call {
    /// The `Action` parameter (`GetRole`, `AssumeRole`...); empty when missing.
    pub action: String,
    /// The access key id from the SigV4 `Authorization` header; `None` when unsigned.
    pub access_key: Option<String>,
    /// Every form parameter, `Action` and `Version` included, decoded.
    pub params: Vec<(String, String)>,
    /// The HTTP status answered.
    pub status: u16,
    /// The error code answered (`Throttling`, `NoSuchEntity`...), `None` on success.
    pub error: Option<String>,
    pub recorded: Recorded,
}

impl Call {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Whether the request carried an AWS Signature Version 4 `authorization` header.
    pub fn signed(&self) -> bool {
        self.recorded.signed()
    }
}

/// A parsed Query request.
pub struct Query {
    pub action: String,
    pub params: Vec<(String, String)>,
    pub access_key: Option<String>,
}

impl Query {
    /// Form parameters come in the body (the SDKs POST); a GET with a query string is read the same way.
    pub fn parse(req: &Request) -> Self {
        let mut params = parse_query(&req.query);
        params.extend(parse_query(&String::from_utf8_lossy(&req.body)));
        let action = params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
        Query { action, params, access_key: access_key(req) }
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A required parameter, or the `ValidationError` AWS answers when it is missing.
    pub fn required(&self, key: &str) -> Result<&str, Failure> {
        self.param(key).ok_or_else(|| {
            let mut member = key.to_string();
            member[..1].make_ascii_lowercase();
            Failure::new(
                400,
                "ValidationError",
                &format!("1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"),
            )
        })
    }

    pub fn call(&self, req: &Request, resp: &Response, error: Option<String>) -> Call {
        Call {
            action: self.action.clone(),
            access_key: self.access_key.clone(),
            params: self.params.clone(),
            status: resp.status,
            error,
            recorded: Recorded::of(req),
        }
    }
}

/// `AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/iam/aws4_request, SignedHeaders=..., Signature=...`
fn access_key(req: &Request) -> Option<String> {
    let auth = req.header("authorization")?;
    let credential = auth.strip_prefix("AWS4-HMAC-SHA256")?.split(',').find_map(|part| {
        let part = part.trim();
        part.strip_prefix("Credential=")
    })?;
    credential.split('/').next().filter(|k| !k.is_empty()).map(str::to_string)
}

/// An error answer before it is rendered for a service.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Failure {
    pub fn new(status: u16, code: &str, message: &str) -> Self {
        Failure { status, code: code.into(), message: message.into() }
    }

    pub fn render(&self, xmlns: &str, request_id: &str) -> Response {
        // AWS says `Sender` for the caller's fault and `Receiver` for its own.
        let kind = if self.status >= 500 { "Receiver" } else { "Sender" };
        let body = format!(
            "<ErrorResponse xmlns=\"{xmlns}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    \
             <Message>{}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
            escape(&self.code),
            escape(&self.message),
        );
        xml_response(self.status, body, request_id)
    }
}

/// `<{action}Response xmlns=...><{action}Result>{result}</{action}Result><ResponseMetadata>...`
pub fn success(xmlns: &str, action: &str, result: &Xml, request_id: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"{xmlns}\">\n  <{action}Result>{}</{action}Result>\n  \
         <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        result.0,
    );
    xml_response(200, body, request_id)
}

fn xml_response(status: u16, body: String, request_id: &str) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "text/xml".into()), ("x-amzn-requestid".into(), request_id.into())],
        body: body.into_bytes(),
        delay: None,
    }
}

/// A tiny XML writer: elements in the order written, text escaped, lists as `<member>`.
#[derive(Debug, Clone, Default)]
pub struct Xml(String);

impl Xml {
    pub fn new() -> Self {
        Xml::default()
    }

    pub fn text(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.0 += &format!("<{name}>{}</{name}>", escape(&value.to_string()));
        self
    }

    pub fn opt(self, name: &str, value: Option<impl std::fmt::Display>) -> Self {
        match value {
            Some(value) => self.text(name, value),
            None => self,
        }
    }

    pub fn append(mut self, other: Xml) -> Self {
        self.0 += &other.0;
        self
    }

    pub fn node(mut self, name: &str, inner: Xml) -> Self {
        self.0 += &format!("<{name}>{}</{name}>", inner.0);
        self
    }

    /// `<name><member>...</member>...</name>`; an empty list is still written, as AWS does.
    pub fn list(mut self, name: &str, members: impl IntoIterator<Item = Xml>) -> Self {
        self.0 += &format!("<{name}>");
        for member in members {
            self.0 += &format!("<member>{}</member>", member.0);
        }
        self.0 += &format!("</{name}>");
        self
    }

    pub fn strings<S: AsRef<str>>(self, name: &str, values: impl IntoIterator<Item = S>) -> Self {
        self.list(name, values.into_iter().map(|v| Xml(escape(v.as_ref()))))
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// IAM returns policy documents percent-encoded (RFC 3986 unreserved characters kept), so clients must decode.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Opaque paging markers (the base64 of an offset) and the page they select, checked the way IAM checks.
pub fn page<T: Clone>(items: &[T], q: &Query, max_default: usize, max_limit: usize) -> Result<Page<T>, Failure> {
    let max = match q.param("MaxItems") {
        None => max_default,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=max_limit).contains(&n) => n,
            _ => {
                let message = format!(
                    "1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy constraint: \
                     Member must have value between 1 and {max_limit}"
                );
                return Err(Failure::new(400, "ValidationError", &message));
            }
        },
    };
    let start = match q.param("Marker") {
        None => 0,
        Some(marker) => super::super::b64::decode(marker)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse::<usize>().ok()))
            .filter(|n| *n <= items.len())
            .ok_or_else(|| Failure::new(400, "InvalidInput", "Invalid value for parameter Marker."))?,
    };
    let end = (start + max).min(items.len());
    let marker = (end < items.len()).then(|| super::super::b64::encode(format!("offset:{end}").as_bytes()));
    Ok(Page { items: items[start..end].to_vec(), marker })
}

pub struct Page<T> {
    pub items: Vec<T>,
    /// Set when truncated.
    pub marker: Option<String>,
}

impl<T> Page<T> {
    /// Appends `IsTruncated` and, when truncated, `Marker`.
    pub fn tail(&self, xml: Xml) -> Xml {
        xml.text("IsTruncated", self.marker.is_some()).opt("Marker", self.marker.as_deref())
    }
}
