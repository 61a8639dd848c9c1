//! The upstream HTTP client: hyper's pooled client over rustls, cut to what a provider call
//! needs (a method, a URL, headers, a body, one total time limit).
//!
//! It replaced reqwest on the request path because reqwest's per-call work was a tenth of the
//! gateway's instructions per request: it parsed every call's URL twice with the `url` crate
//! (its redirect layer and its response URL, IDNA included) and ran each call through a tower
//! stack of retry, redirect and timeout layers the gateway does not use. Here a call is one
//! `http::Request` handed to the pool.
//!
//! Calls to the provider's own origin when its `base_url` is plain HTTP (a self-hosted model
//! server, a sidecar) go through [`pool`] instead, which keeps that origin's connections and
//! speaks HTTP/1.1 on them from the call's own task.
//!
//! A provider whose `base_url` the environment sends through a proxy (`HTTPS_PROXY`,
//! `HTTP_PROXY`, `ALL_PROXY`, less `NO_PROXY`, read the way reqwest reads them) is called
//! through reqwest, which speaks the proxy's tunnel and authentication.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body::Body as _;
use hyper_util::client::legacy;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use crate::config::ProviderConfig;
use crate::error::Error;

mod pool;

type Connector = hyper_rustls::HttpsConnector<legacy::connect::HttpConnector>;

static AGENT: HeaderValue = HeaderValue::from_static(concat!("anyint/", env!("CARGO_PKG_VERSION")));
static ANY: HeaderValue = HeaderValue::from_static("*/*");

/// A pooled client for one provider (a clone, made for each call, shares the pool).
#[derive(Clone)]
pub struct Client {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Direct {
        pool: std::sync::Arc<legacy::Client<Connector, PayloadBody>>,
        /// The provider's own origin when it is plain HTTP ([`pool`]).
        plain: Option<std::sync::Arc<pool::Pool>>,
    },
    /// The environment routes this provider through a proxy.
    Proxied(reqwest::Client),
}

impl Client {
    /// A client with TCP_NODELAY on (Nagle stalls small SSE writes on reused connections), the
    /// provider's connect timeout, a keep-alive pool ([`IDLE_PER_HOST`]), HTTP/2 where TLS
    /// negotiates it, and no redirects: an AI API does not redirect its calls, so a 3xx means a wrong
    /// `base_url`, and following it would send the provider's key wherever it points.
    pub fn new(p: &ProviderConfig) -> Result<Self, Error> {
        let proxied = p.base_url.parse::<Uri>().ok().is_some_and(|u| {
            hyper_util::client::proxy::matcher::Matcher::from_system()
                .intercept(&u)
                .is_some()
        });
        if proxied {
            return proxied_client(p).map(|c| Self {
                inner: Inner::Proxied(c),
            });
        }
        let mut tcp = legacy::connect::HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(p.connect_timeout));
        tcp.set_keepalive(Some(Duration::from_secs(60)));
        let plain = p.base_url.parse::<Uri>().ok().and_then(|base| {
            pool::Pool::for_origin(&base, tcp.clone(), IDLE_PER_HOST, IDLE_TIMEOUT)
                .map(std::sync::Arc::new)
        });
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(tcp);
        let pool = legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(tls);
        Ok(Self {
            inner: Inner::Direct {
                pool: std::sync::Arc::new(pool),
                plain,
            },
        })
    }

    /// A `POST` to `url`.
    pub fn post(&self, url: impl Target) -> Request {
        self.request(Method::POST, url)
    }

    /// A `GET` of `url`.
    pub fn get(&self, url: impl Target) -> Request {
        self.request(Method::GET, url)
    }

    fn request(&self, method: Method, url: impl Target) -> Request {
        let mut headers = HeaderMap::with_capacity(6);
        headers.insert(USER_AGENT, AGENT.clone());
        headers.insert(ACCEPT, ANY.clone());
        Request {
            client: self.clone(),
            method,
            uri: url.into_uri(),
            headers,
            body: Payload::default(),
            timeout: None,
            head_bound: None,
        }
    }
}

/// The reqwest client for a provider behind a proxy: the same settings, reqwest's own retry
/// of refused HTTP/2 streams off (the gateway's router retries, within the request's budget).
/// Each request carries the gateway's `user-agent` already ([`Client::request`]).
fn proxied_client(p: &ProviderConfig) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .tcp_nodelay(true)
        .connect_timeout(p.connect_timeout)
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(IDLE_PER_HOST)
        .build()
        .map_err(|e| Error::internal(format!("building the HTTP client for {}: {e}", p.name)))
}

/// Idle upstream connections kept per host, per serving worker (each worker has its own pool).
/// An idle hyper connection keeps its buffers and request channel (about 35 KB; a [`pool`]
/// connection keeps its socket alone), so after a burst of thousands of streams a pool of
/// hundreds held tens of MB for the idle timeout; a steady load reuses the connections it
/// keeps busy whatever this bound.
pub const IDLE_PER_HOST: usize = 32;

/// How long an idle upstream connection is kept for reuse.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A URL a call can be made to: an `http::Uri` (parsed once, cloned per call) or text.
pub trait Target {
    /// The parsed URL, or why it is not one.
    fn into_uri(self) -> Result<Uri, String>;
}

impl Target for Uri {
    fn into_uri(self) -> Result<Uri, String> {
        Ok(self)
    }
}

impl Target for String {
    fn into_uri(self) -> Result<Uri, String> {
        Uri::try_from(self).map_err(|e| format!("invalid URL: {e}"))
    }
}

impl Target for &str {
    fn into_uri(self) -> Result<Uri, String> {
        Uri::try_from(self).map_err(|e| format!("invalid URL: {e}"))
    }
}

/// One upstream call being built. A bad URL, header or query is reported when it is sent.
pub struct Request {
    client: Client,
    method: Method,
    uri: Result<Uri, String>,
    headers: HeaderMap,
    body: Payload,
    timeout: Option<Duration>,
    /// A time by which the caller stops waiting for the answer's head itself.
    head_bound: Option<Instant>,
}

impl Request {
    /// Adds a header.
    #[must_use]
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        match (name.try_into(), value.try_into()) {
            (Ok(n), Ok(v)) => {
                self.headers.append(n, v);
            }
            _ => {
                if self.uri.is_ok() {
                    self.uri = Err("invalid header".to_owned());
                }
            }
        }
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Payload>) -> Self {
        self.body = body.into();
        self
    }

    /// Limits the whole call, the answer's body included, to `limit`.
    #[must_use]
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// The caller gives up waiting for the answer's head at `at` (a time-to-first-byte limit
    /// with a timer of its own). When that comes no later than this call's [`Self::timeout`],
    /// the head is awaited without a second timer; the timeout still bounds the body's reads.
    /// A timer registered and dropped was about a third of the timer work of a call.
    #[must_use]
    pub fn head_bounded_by(mut self, at: Instant) -> Self {
        self.head_bound = Some(at);
        self
    }

    /// Appends `name=value` pairs to the URL's query, percent-encoded.
    #[must_use]
    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        if let Ok(uri) = &self.uri {
            let mut text = uri.to_string();
            let mut sep = if uri.query().is_some() { '&' } else { '?' };
            for (name, value) in pairs {
                text.push(sep);
                encode_component(&mut text, name);
                text.push('=');
                encode_component(&mut text, value);
                sep = '&';
            }
            self.uri = text.into_uri();
        }
        self
    }

    /// Sends the call; the answer's head is back when this returns.
    pub async fn send(self) -> Result<Response, TransportError> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let bounded = self
            .head_bound
            .is_some_and(|at| deadline.is_none_or(|d| at <= d));
        if bounded {
            return self.send_inner(deadline).await;
        }
        within(deadline, self.send_inner(deadline)).await
    }

    async fn send_inner(self, deadline: Option<Instant>) -> Result<Response, TransportError> {
        let uri = self
            .uri
            .map_err(|e| TransportError::new(Failure::Request, e))?;
        match self.client.inner {
            Inner::Direct { pool, plain } => {
                if let Some(plain) = plain.filter(|p| p.serves(&uri)) {
                    // Boxed, as hyper_util's client boxes its call: every layer above moves
                    // the request's future whole, so what is inline here is copied again and
                    // again (callgrind: the router's layers copied four times as many bytes).
                    let answer =
                        Box::pin(plain.send(&self.method, &uri, &self.headers, self.body)).await?;
                    return Ok(Response {
                        status: answer.status,
                        headers: answer.headers,
                        body: Body::Plain(answer.body),
                        deadline,
                    });
                }
                let mut req = http::Request::new(self.body.into_body());
                *req.method_mut() = self.method;
                *req.uri_mut() = uri;
                *req.headers_mut() = self.headers;
                let resp = pool.request(req).await.map_err(|e| {
                    let failure = if e.is_connect() {
                        Failure::Connect
                    } else {
                        Failure::Other
                    };
                    TransportError::from_source(failure, &e)
                })?;
                let (parts, body) = resp.into_parts();
                Ok(Response {
                    status: parts.status,
                    headers: parts.headers,
                    body: Body::Direct(body),
                    deadline,
                })
            }
            Inner::Proxied(client) => {
                let resp = client
                    .request(self.method, uri.to_string())
                    .headers(self.headers)
                    .body(self.body.into_bytes())
                    .send()
                    .await
                    .map_err(|e| TransportError::from_reqwest(&e))?;
                let resp: http::Response<reqwest::Body> = resp.into();
                let (parts, body) = resp.into_parts();
                Ok(Response {
                    status: parts.status,
                    headers: parts.headers,
                    body: Body::Proxied(body),
                    deadline,
                })
            }
        }
    }
}

/// A request body: one buffer, or several sent one after another. A large body edited in one
/// field goes out as the edit between slices of the client's own bytes, not as a copy.
#[derive(Debug, Default)]
pub struct Payload {
    parts: Vec<Bytes>,
}

impl Payload {
    /// The body made of `parts`, in order.
    pub fn from_parts(parts: impl IntoIterator<Item = Bytes>) -> Self {
        Self {
            parts: parts.into_iter().filter(|p| !p.is_empty()).collect(),
        }
    }

    /// Its length in bytes.
    fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// The parts as one buffer (copied only when there are several).
    pub fn into_bytes(mut self) -> Bytes {
        match self.parts.len() {
            0 => Bytes::new(),
            1 => self.parts.pop().unwrap_or_default(),
            _ => Bytes::from(self.parts.concat()),
        }
    }

    fn into_body(self) -> PayloadBody {
        PayloadBody {
            remaining: self.len() as u64,
            parts: self.parts.into_iter(),
        }
    }
}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Self {
        Self::from_parts([b])
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Self {
        Self::from_parts([Bytes::from(v)])
    }
}

/// A [`Payload`] being sent: one frame per part, with its exact length announced (so it goes
/// out with `content-length`, and hyper writes large parts from where they are).
pub struct PayloadBody {
    parts: std::vec::IntoIter<Bytes>,
    remaining: u64,
}

impl http_body::Body for PayloadBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.parts.next().map(|part| {
            self.remaining -= part.len() as u64;
            Ok(http_body::Frame::data(part))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// Percent-encodes a query component (everything but RFC 3986's unreserved characters).
fn encode_component(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// An upstream's answer: its head, and a body read within the call's time limit.
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
    deadline: Option<Instant>,
}

enum Body {
    /// From hyper's pooled client.
    Direct(hyper::body::Incoming),
    /// From the provider's own plain-HTTP origin ([`pool`]): read from its connection, which
    /// goes back to the pool when the body has been read to its end.
    Plain(pool::PlainBody),
    Proxied(reqwest::Body),
}

impl Response {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// When the call's time limit ends, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Reads the whole body.
    pub async fn bytes(self) -> Result<Bytes, TransportError> {
        let deadline = self.deadline;
        let mut body = self.body;
        let read = async move {
            let mut parts = Vec::new();
            while let Some(chunk) = next_chunk(&mut body).await? {
                parts.push(chunk);
            }
            // One chunk (the usual answer) is handed on as it came, without a copy.
            Ok(Payload::from_parts(parts).into_bytes())
        };
        within(deadline, read).await
    }

    /// The body's next chunk, or `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        let deadline = self.deadline;
        within(deadline, next_chunk(&mut self.body)).await
    }

    /// The body as a stream of chunks (the caller applies the time limit: see
    /// [`Self::deadline`]).
    pub fn into_stream(self) -> Chunks {
        Chunks { body: self.body }
    }
}

async fn within<T>(
    deadline: Option<Instant>,
    read: impl Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, read)
            .await
            .unwrap_or_else(|_| Err(TransportError::timed_out())),
        None => read.await,
    }
}

async fn next_chunk(body: &mut Body) -> Result<Option<Bytes>, TransportError> {
    std::future::poll_fn(|cx| poll_chunk(body, cx)).await
}

/// The next data frame of `body` (trailers are skipped).
fn poll_chunk(
    body: &mut Body,
    cx: &mut Context<'_>,
) -> Poll<Result<Option<Bytes>, TransportError>> {
    loop {
        let frame = match body {
            Body::Plain(b) => return b.poll_chunk(cx),
            Body::Direct(b) => match std::task::ready!(Pin::new(b).poll_frame(cx)) {
                None => return Poll::Ready(Ok(None)),
                Some(Err(e)) => {
                    return Poll::Ready(Err(TransportError::from_source(Failure::Body, &e)));
                }
                Some(Ok(f)) => f,
            },
            Body::Proxied(b) => match std::task::ready!(Pin::new(b).poll_frame(cx)) {
                None => return Poll::Ready(Ok(None)),
                Some(Err(e)) => return Poll::Ready(Err(TransportError::from_reqwest(&e))),
                Some(Ok(f)) => f,
            },
        };
        if let Ok(data) = frame.into_data()
            && !data.is_empty()
        {
            return Poll::Ready(Ok(Some(data)));
        }
    }
}

/// An answer's body as a stream of chunks.
pub struct Chunks {
    body: Body,
}

impl futures_util::Stream for Chunks {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        poll_chunk(&mut self.body, cx).map(Result::transpose)
    }
}

/// `e` and the errors under it, outermost first.
fn causes<'e>(
    e: &'e (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'e (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |s| s.source())
}

/// What failed in a transport error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The call's time limit passed.
    Timeout,
    /// No connection could be made.
    Connect,
    /// The answer's body broke off.
    Body,
    /// The call could not be built (a bad URL or header).
    Request,
    /// Anything else on the wire.
    Other,
}

/// A failed upstream call, described without its URL (whose query could carry a key).
#[derive(Debug)]
pub struct TransportError {
    failure: Failure,
    detail: String,
}

impl TransportError {
    fn new(failure: Failure, detail: String) -> Self {
        Self { failure, detail }
    }

    fn timed_out() -> Self {
        Self::new(Failure::Timeout, String::new())
    }

    /// Keeps the innermost cause's words (the outer layers only say "client error"); a timed
    /// out connect counts as a timeout, as reqwest counted it.
    fn from_source(failure: Failure, e: &(dyn std::error::Error + 'static)) -> Self {
        let timed_out = causes(e).any(|s| {
            s.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        });
        let failure = if timed_out { Failure::Timeout } else { failure };
        Self::new(
            failure,
            causes(e)
                .last()
                .map(ToString::to_string)
                .unwrap_or_default(),
        )
    }

    /// The same for a call reqwest made.
    pub fn from_reqwest(e: &reqwest::Error) -> Self {
        let failure = if e.is_timeout() {
            Failure::Timeout
        } else if e.is_connect() {
            Failure::Connect
        } else if e.is_body() || e.is_decode() {
            Failure::Body
        } else if e.is_request() || e.is_builder() {
            Failure::Request
        } else {
            Failure::Other
        };
        let detail = std::error::Error::source(e)
            .and_then(|s| causes(s).last())
            .map(ToString::to_string)
            .unwrap_or_default();
        Self::new(failure, detail)
    }

    /// What failed.
    pub fn failure(&self) -> Failure {
        self.failure
    }

    /// Whether the call's time limit passed.
    pub fn is_timeout(&self) -> bool {
        self.failure == Failure::Timeout
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.failure {
            Failure::Timeout => "timed out",
            Failure::Connect => "connection failed",
            Failure::Body => "body read failed",
            Failure::Request => "request failed",
            Failure::Other => "transport error",
        };
        if self.detail.is_empty() {
            f.write_str(what)
        } else {
            write!(f, "{what}: {}", self.detail)
        }
    }
}

impl std::error::Error for TransportError {}

/// The `Host` header an HTTP/1 client writes for `uri`: its host, and its port unless that is
/// the scheme's default (as hyper's pooled client writes it).
pub fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    let text = match uri.port_u16() {
        Some(port) if port != default => format!("{host}:{port}"),
        _ => host.to_owned(),
    };
    HeaderValue::try_from(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client of a provider whose `base_url` is `base_url`.
    pub(super) fn client_for(base_url: &str) -> Client {
        let text = format!(
            "[[providers]]\nname = \"up\"\nkind = \"openai\"\nbase_url = \"{base_url}\"\napi_key = \"k\"\n"
        );
        let config = crate::config::Config::parse(&text, "t.toml", &|_| None).unwrap();
        Client::new(&config.providers[0]).unwrap()
    }

    /// A head bounded by the caller's earlier (or equal) deadline waits without a timer of
    /// its own; one bounded later keeps the call's timeout. Time is paused: the timers fire in
    /// order, whatever the clock.
    #[tokio::test(start_paused = true)]
    async fn a_head_bounded_by_the_caller_has_no_timer_of_its_own() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts and never answers.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let c = client_for(&format!("http://{addr}/v1"));
        let url = format!("http://{addr}/v1/chat/completions");
        let second = Duration::from_secs(1);

        // Bounded at the call's own deadline: only the caller's later timer ends the wait.
        let now = Instant::now();
        let call = c
            .post(url.as_str())
            .timeout(second)
            .head_bounded_by(now + second);
        let waited = tokio::time::timeout_at(now + 3 * second, call.send()).await;
        assert!(waited.is_err(), "the call set a timer of its own");

        // Bounded after the call's deadline: the call's timer ends it, as a timeout.
        let now = Instant::now();
        let call = c
            .post(url.as_str())
            .timeout(second)
            .head_bounded_by(now + 3 * second);
        let waited = tokio::time::timeout_at(now + 5 * second, call.send()).await;
        let e = waited.expect("the call's own timer ends it").err().unwrap();
        assert!(e.is_timeout(), "{e:?}");
    }

    #[tokio::test]
    async fn a_query_is_appended_percent_encoded() {
        let c = client_for("http://up.test/v1");
        let req = c
            .get("http://up.test/api/v1/record-info")
            .query(&[("taskId", "a b&c=d/é"), ("x", "1")]);
        assert_eq!(
            req.uri.unwrap().to_string(),
            "http://up.test/api/v1/record-info?taskId=a%20b%26c%3Dd%2F%C3%A9&x=1"
        );
        let req = c.get("http://up.test/p?k=v").query(&[("t", "1")]);
        assert_eq!(req.uri.unwrap().to_string(), "http://up.test/p?k=v&t=1");
    }

    #[tokio::test]
    async fn a_bad_url_or_header_fails_at_send_as_a_request_error() {
        let c = client_for("http://up.test/v1");
        let e = c.post("not a url").send().await.err().unwrap();
        assert_eq!(e.failure(), Failure::Request);
        let e = c
            .post("http://up.test/")
            .header("x-bad", "line\nbreak")
            .send()
            .await
            .err()
            .unwrap();
        assert_eq!(e.failure(), Failure::Request);
        assert_eq!(e.to_string(), "request failed: invalid header");
    }

    #[test]
    fn host_header_is_what_an_http1_client_writes() {
        let cases = [
            (
                "http://127.0.0.1:8080/v1/chat/completions",
                "127.0.0.1:8080",
            ),
            ("http://up.internal/v1/chat/completions", "up.internal"),
            ("http://up.internal:80/v1", "up.internal"),
            ("http://[::1]:9000/v1", "[::1]:9000"),
            ("https://api.example.com:443/v1", "api.example.com"),
            ("https://api.example.com:8443/v1", "api.example.com:8443"),
        ];
        for (url, want) in cases {
            let uri: Uri = url.parse().unwrap();
            assert_eq!(host_header(&uri).unwrap(), want, "{url}");
        }
    }
}
