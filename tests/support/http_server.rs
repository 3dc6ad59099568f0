//! Plumbing shared by the fake servers: each runs on its own thread with its own tokio runtime (tests are
//! synchronous and spawn the real binary), speaks HTTP/1.1 with keep-alive, optionally over TLS with a
//! throwaway CA, and stops when its handle is dropped. Faults and the request log live here too because
//! both fakes inject and record the same way.

mod faults;
mod tls;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

pub use faults::{Fault, Recorded, take_fault};
use tls::{Tls, tls_material};

/// A request as the fakes see it: owned and fully read.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The raw query string, still percent-encoded.
    pub query: String,
    /// Header names are lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn query_pairs(&self) -> Vec<(String, String)> {
        parse_query(&self.query)
    }

    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query_pairs().into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Splits and decodes `a=b&c=d`; Go and the AWS SDK encode spaces as `+` or `%20`, so both are accepted.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(part), String::new()),
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex(hi).zip(hex(lo)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 2;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a handler answers; `delay` is slept (asynchronously) before the answer is sent.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Option<Duration>,
}

impl Response {
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            delay: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn delayed(mut self, delay: Option<Duration>) -> Self {
        self.delay = delay;
        self
    }
}

pub type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

/// A running server; dropping it stops the server and its thread.
pub struct Server {
    addr: SocketAddr,
    ca_pem: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The PEM of the CA that signed the server certificate (TLS servers only).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A started fake: derefs to the fake (to set it up further or read its log) and stops on drop.
pub struct Running<F> {
    fake: F,
    server: Server,
}

impl<F> Running<F> {
    /// Serves `handler` for `fake` over plain HTTP.
    pub fn serve(fake: F, handler: Handler) -> Self {
        Running { fake, server: serve(handler) }
    }

    /// The endpoint to point the client at (`AWS_ENDPOINT_URL_<SERVICE>`).
    pub fn url(&self) -> String {
        self.server.url()
    }
}

impl<F> std::ops::Deref for Running<F> {
    type Target = F;

    fn deref(&self) -> &F {
        &self.fake
    }
}

/// Serves `handler` over plain HTTP/1.1 on 127.0.0.1 at a free port.
pub fn serve(handler: Handler) -> Server {
    start(handler, None)
}

/// Serves `handler` over HTTPS with a fresh CA and a leaf for `localhost` and `127.0.0.1`.
pub fn serve_tls(handler: Handler) -> Server {
    start(handler, Some(tls_material()))
}

fn start(handler: Handler, tls: Option<Tls>) -> Server {
    // Bind before spawning so the port is known, and listening, when this returns.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.set_nonblocking(true).expect("set_nonblocking");
    let addr = listener.local_addr().expect("local_addr");
    let (stop_tx, stop_rx) = oneshot::channel();
    let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
    let acceptor = tls.map(|t| TlsAcceptor::from(t.config));
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        runtime.block_on(accept_loop(listener, handler, acceptor, stop_rx));
        // Dropping the runtime here cancels connections still open (keep-alive, delayed answers).
    });
    Server { addr, ca_pem, stop: Some(stop_tx), thread: Some(thread) }
}

async fn accept_loop(
    listener: TcpListener,
    handler: Handler,
    acceptor: Option<TlsAcceptor>,
    mut stop: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let handler = handler.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => serve_connection(stream, handler).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(stream, handler).await;
                    }
                }
            }
        });
    }
}

async fn serve_connection<S>(stream: S, handler: Handler)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let handler = handler.clone();
        async move {
            let req = read_request(req).await?;
            let resp = handler(req);
            if let Some(delay) = resp.delay {
                tokio::time::sleep(delay).await;
            }
            Ok::<_, hyper::Error>(into_hyper(resp))
        }
    });
    let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
}

async fn read_request(req: hyper::Request<hyper::body::Incoming>) -> Result<Request, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes().to_vec();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    Ok(Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers,
        body,
    })
}

fn into_hyper(resp: Response) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        builder = builder.header(k, v);
    }
    builder.body(Full::new(Bytes::from(resp.body))).expect("valid response")
}
