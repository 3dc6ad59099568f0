//! Bounded retries for Kubernetes reads: throttling (429) and server errors (5xx) are retried a few times
//! within a deadline, honouring the server's `Retry-After`, and the wait is said on stderr so a slow run
//! is never a silent one. kube's own `request_text` drops the response headers, so this reads the
//! response itself and builds the same `kube::Error::Api` from the body.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use http_body_util::BodyExt;
use kube::core::Status;

/// How a request is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// No retry starts after this much time since the first attempt.
    pub deadline: Duration,
    pub first_delay: Duration,
    /// The longest wait, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            deadline: Duration::from_secs(60),
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// A failed request after its retries: the last error and how many attempts were made.
#[derive(Debug)]
pub struct Exhausted {
    pub source: kube::Error,
    pub attempts: u32,
}

/// Transient API answers worth another try: throttling and server errors.
fn retryable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if matches!(s.code, 429 | 500 | 502 | 503 | 504))
}

/// Sends the request `build` makes (a fresh one per attempt) and returns the body text, retrying
/// throttling and server errors under `policy` (backon: exponential backoff with jitter, replaced by the
/// server's `Retry-After` when it sends one). `what` names the request in the waiting message.
pub async fn request_text(
    client: &kube::Client,
    build: impl Fn() -> Result<http::Request<Vec<u8>>, kube::Error>,
    what: &str,
    policy: RetryPolicy,
) -> Result<String, Exhausted> {
    let attempts = AtomicU32::new(0);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.first_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.attempts.saturating_sub(1) as usize)
        .with_total_delay(Some(policy.deadline))
        .with_jitter();
    let result = (|| async {
        attempts.fetch_add(1, Ordering::Relaxed);
        once(client, build()).await
    })
    .retry(backoff)
    .sleep(tokio::time::sleep)
    .when(|(e, _)| retryable(e))
    .adjust(|(_, retry_after), next| next.map(|d| retry_after.map_or(d, |r| r.min(policy.max_delay))))
    .notify(|(e, retry_after), wait| {
        let kube::Error::Api(s) = e else { return };
        let why = if s.code == 429 { "throttled".to_string() } else { format!("answered {}", s.code) };
        let after = if retry_after.is_some() { " as its Retry-After asks" } else { "" };
        eprintln!(
            "waiting: the API server {why} the request to {what}; retrying in {:.1} s{after} (attempt {} of {})",
            wait.as_secs_f64(),
            attempts.load(Ordering::Relaxed) + 1,
            policy.attempts
        );
    })
    .await;
    result.map_err(|(source, _)| Exhausted { source, attempts: attempts.load(Ordering::Relaxed) })
}

/// One attempt: the body, or the error with the server's `Retry-After` (seconds form) if it sent one.
async fn once(
    client: &kube::Client,
    request: Result<http::Request<Vec<u8>>, kube::Error>,
) -> Result<String, (kube::Error, Option<Duration>)> {
    let request = request.map_err(|e| (e, None))?;
    let response = client.send(request.map(kube::client::Body::from)).await.map_err(|e| (e, None))?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = response.into_body().collect().await.map_err(|e| (e, None))?.to_bytes();
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| (kube::Error::FromUtf8(e), None))?;
    if status.is_success() {
        return Ok(text);
    }
    // As kube does: a JSON Status when the server sent one, else the text with the HTTP code.
    let parsed = serde_json::from_str::<Status>(&text).unwrap_or_else(|_| {
        Status::failure(text.trim(), status.canonical_reason().unwrap_or("")).with_code(status.as_u16())
    });
    Err((kube::Error::Api(parsed.boxed()), retry_after))
}
