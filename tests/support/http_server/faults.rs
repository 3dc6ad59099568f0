//! Injected faults and the request log, shared by both fakes because they inject and record alike.

use super::Request;

/// A fault to inject: requests whose path contains `path_contains` get `status` instead of an answer.
#[derive(Debug, Clone, Default)]
pub struct Fault {
    pub path_contains: String,
    pub status: u16,
    /// How many requests it hits; `None` = forever.
    pub times: Option<usize>,
    /// Only hit requests that continue a paged list (`continue` for Kubernetes, `nextToken` for EKS).
    pub only_with_continue: bool,
    /// Only hit this HTTP method (e.g. `PATCH`); `None` = any.
    pub method: Option<String>,
    /// Overrides the error name derived from `status` (Kubernetes `reason`, AWS `x-amzn-ErrorType`).
    pub error: Option<String>,
}

impl Fault {
    /// `status` forever on every request whose path contains `path_contains`.
    pub fn new(path_contains: &str, status: u16) -> Self {
        Fault { path_contains: path_contains.into(), status, ..Fault::default() }
    }

    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    pub fn once(self) -> Self {
        self.times(1)
    }

    pub fn with_continue(mut self) -> Self {
        self.only_with_continue = true;
        self
    }

    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    pub fn error(mut self, name: &str) -> Self {
        self.error = Some(name.into());
        self
    }
}

/// Finds the first matching fault, counts one use, and drops it once used up.
pub fn take_fault(faults: &mut Vec<Fault>, req: &Request, continuing: bool) -> Option<Fault> {
    let pos = faults.iter().position(|f| {
        req.path.contains(&f.path_contains)
            && (!f.only_with_continue || continuing)
            && f.method.as_deref().is_none_or(|m| m == req.method)
    })?;
    let hit = faults[pos].clone();
    if let Some(n) = faults[pos].times.as_mut() {
        *n = n.saturating_sub(1);
        if *n == 0 {
            faults.remove(pos);
        }
    }
    Some(hit)
}

/// One request as the fake saw it, faulted or not.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn of(req: &Request) -> Self {
        Recorded {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query_pairs(),
            headers: req.headers.clone(),
            body: String::from_utf8_lossy(&req.body).into_owned(),
        }
    }

    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether the request carried an AWS Signature Version 4 `authorization` header.
    pub fn signed(&self) -> bool {
        self.header("authorization").is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256"))
    }
}
