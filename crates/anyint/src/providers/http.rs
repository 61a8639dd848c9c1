//! The one place upstream HTTP happens: client construction, sending, and turning transport
//! failures and upstream error replies into gateway errors.

pub mod client;

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

pub use client::{Client, Payload, Request, Response, TransportError};

use crate::error::{Error, ErrorKind};

/// Client-visible code for an upstream whose quota or billing is exhausted (not retried on the
/// same key).
pub const CODE_QUOTA: &str = "upstream_quota_exhausted";
/// Client-visible code for an upstream that refused the gateway's key (401/403): another of the
/// provider's keys, or another route, may work.
pub const CODE_KEY_REJECTED: &str = "upstream_auth_failed";
/// Client-visible code for a route the upstream refuses outright (bad provider key, unknown
/// upstream model): other routes may work, this one will not.
pub const CODE_ROUTE_BROKEN: &str = "upstream_misconfigured";

/// Largest upstream error body read (error bodies are small; a huge one is not echoed anyway).
const MAX_ERROR_BODY: usize = 64 * 1024;

thread_local! {
    /// The serving worker this thread runs (0: not a worker).
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the calling thread as serving worker `index` (from 1), so [`Provider::client`]
/// hands it the worker's own pool. hyper drives each pooled connection in a task of the
/// runtime that opened it; a pool shared by the workers would have one worker's requests wake
/// another worker's thread to write every request and read every response.
///
/// [`Provider::client`]: super::Provider::client
pub fn bind_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// The calling thread's worker index (0: not a worker).
pub fn worker() -> usize {
    WORKER.with(std::cell::Cell::get)
}

/// A reqwest transport error (the task callbacks' and `anyint verify`'s clients) described
/// like an upstream call's, without its URL's query (which could carry a key).
pub fn describe(e: &reqwest::Error) -> String {
    TransportError::from_reqwest(e).to_string()
}

/// Sends `req`, mapping transport failures to 503/504.
pub async fn send(provider: &str, req: Request) -> Result<Response, Error> {
    req.send().await.map_err(|e| transport_error(provider, &e))
}

/// Reads a whole response body; a transport failure mid-body maps like one before it.
pub async fn read_body(provider: &str, resp: Response) -> Result<Bytes, Error> {
    resp.bytes()
        .await
        .map_err(|e| transport_error(provider, &e))
}

/// A gateway error for an upstream answer that is not in its API's shape (`what` is for the
/// logs only).
pub fn protocol_error(provider: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::UpstreamProtocol,
        "the upstream provider answered in an unexpected shape; retry the request",
    )
    .with_code("upstream_protocol_error")
    .with_cause(format!("provider {provider}: {what}"))
}

/// A gateway error for a transport failure talking to `provider`.
pub fn transport_error(provider: &str, e: &TransportError) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::UpstreamTimeout
    } else {
        ErrorKind::UpstreamUnavailable
    };
    let (message, code) = if e.is_timeout() {
        (
            "the upstream provider did not answer in time; retry the request",
            "upstream_timeout",
        )
    } else {
        (
            "the upstream provider is unreachable; retry the request",
            "upstream_unavailable",
        )
    };
    Error::new(kind, message)
        .with_code(code)
        .with_cause(format!("provider {provider}: {e}"))
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of an error response.
pub async fn read_error_body(resp: Response) -> Vec<u8> {
    let mut resp = resp;
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_ERROR_BODY.saturating_sub(body.len());
        body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    body
}

/// The upstream's retry hint: `retry-after-ms`, else `retry-after` in seconds.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    // Clamped to a day: an absurd upstream value must not overflow time arithmetic.
    let secs = |v: f64| Duration::try_from_secs_f64(v.clamp(0.0, 86_400.0)).ok();
    if let Some(ms) = get("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite())
    {
        return secs(ms / 1000.0);
    }
    get("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .and_then(secs)
}

/// How the gateway words an upstream's refusal of a request, before the upstream's own words.
const REJECTED: &str = "the upstream provider rejected the request";

/// On a same-family passthrough: an upstream's refusal (a 4xx [`classify`] made into
/// `InvalidRequest`) in the upstream's own words, without the gateway's preamble, since
/// clients match on them (Claude Code's recovery does). Other errors are returned as they are.
pub fn in_upstream_words(mut e: Error) -> Error {
    if e.kind == ErrorKind::InvalidRequest
        && let Some(rest) = e.message.strip_prefix(REJECTED)
        && let Some((_, words)) = rest.split_once(": ")
        && words != NO_REASON
    {
        e.message = words.to_owned();
    }
    e
}

/// What a refusal says when the upstream gave no message.
const NO_REASON: &str = "no reason given";

/// What an upstream error reply means for the client, family-independent: the status class
/// decides the kind; the provider's decoded message is used only for client-fixable errors.
pub fn classify(
    provider: &str,
    status: http::StatusCode,
    retry_after: Option<Duration>,
    upstream_message: Option<&str>,
    quota_exhausted: bool,
) -> Error {
    let cause = format!("provider {provider} answered {status}");
    let e = match status.as_u16() {
        400 | 422 => Error::invalid(
            None,
            format!(
                "{REJECTED}: {}",
                upstream_message.unwrap_or(NO_REASON)
            ),
        ),
        413 => Error::new(ErrorKind::PayloadTooLarge, "the request is too large for the upstream provider"),
        429 if quota_exhausted => Error::new(
            ErrorKind::UpstreamUnavailable,
            "the upstream provider's quota for this route is exhausted; the operator must add credit",
        )
        .with_code(CODE_QUOTA),
        429 => Error::new(
            ErrorKind::UpstreamRateLimited,
            "the upstream provider is rate limiting this model; retry after the Retry-After delay",
        )
        .with_code("rate_limit_exceeded")
        .with_retry_after(retry_after),
        401 | 403 => Error::new(
            ErrorKind::UpstreamUnavailable,
            "the upstream provider rejected the gateway's credentials; the operator must fix the provider key",
        )
        .with_code(CODE_KEY_REJECTED),
        404 => Error::new(
            ErrorKind::UpstreamUnavailable,
            "the upstream provider does not serve this model's route; the operator must fix the model configuration",
        )
        .with_code(CODE_ROUTE_BROKEN),
        402 => Error::new(
            ErrorKind::UpstreamUnavailable,
            "the upstream provider's billing for this route is exhausted; the operator must add credit",
        )
        .with_code(CODE_QUOTA),
        408 => Error::new(ErrorKind::UpstreamTimeout, "the upstream provider timed out; retry the request")
            .with_code("upstream_timeout")
            .with_retry_after(retry_after),
        code @ 300..=399 => Error::new(
            ErrorKind::UpstreamUnavailable,
            format!("the upstream provider redirected the call (HTTP {code}) and the gateway does not follow redirects; the operator must fix the provider's base_url"),
        )
        .with_code(CODE_ROUTE_BROKEN),
        // Any other 4xx is the upstream refusing this request: not an outage, not retried.
        code @ 405..=499 => Error::invalid(
            None,
            format!(
                "{REJECTED} (HTTP {code}): {}",
                upstream_message.unwrap_or(NO_REASON)
            ),
        ),
        _ => Error::new(ErrorKind::UpstreamUnavailable, "the upstream provider is unavailable; retry the request")
            .with_code("upstream_unavailable")
            .with_retry_after(retry_after),
    };
    e.with_cause(cause)
}

/// An upstream's answer to a call: a whole body, or a stream whose first bytes arrived.
pub enum Reply {
    /// The whole body of a non-streamed answer.
    Body(Bytes),
    /// A stream answer.
    Stream(UpstreamStream),
}

/// Whether an answer is an SSE stream.
pub fn is_sse(resp: &Response) -> bool {
    resp.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// The error for a stream request answered without a stream.
pub fn not_a_stream(provider: &str) -> Error {
    Error::new(
        ErrorKind::UpstreamProtocol,
        "the upstream provider answered a stream request without a stream; retry the request",
    )
    .with_code("upstream_unavailable")
    .with_cause(format!(
        "provider {provider} sent a non-SSE body to a stream request"
    ))
}

/// Why an upstream stream ended before its natural end.
#[derive(Debug)]
pub enum StreamFailure {
    /// The connection failed or was cut.
    Transport(String),
    /// No bytes arrived within the idle limit.
    Idle(Duration),
    /// The call's total time limit passed before the stream's end.
    Total,
}

impl std::fmt::Display for StreamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "{e}"),
            Self::Idle(d) => write!(f, "no bytes for {} ms", d.as_millis()),
            Self::Total => f.write_str("the call's total time limit passed"),
        }
    }
}

/// An upstream body stream with its idle limit applied.
pub type UpstreamStream = BoxStream<'static, Result<Bytes, StreamFailure>>;

/// Waits up to `first_byte` for the stream's first bytes, so a stalled upstream fails over
/// before anything reaches the client, then returns the whole stream with an idle limit
/// between chunks and the call's total limit over all of it. Dropping the returned stream
/// drops the upstream connection.
pub async fn open_stream(
    provider: &str,
    resp: Response,
    first_byte: Duration,
    idle: Duration,
) -> Result<UpstreamStream, Error> {
    let total = resp.deadline();
    let mut body = resp.into_stream();
    let first_by = earliest(tokio::time::Instant::now() + first_byte, total);
    let first = match tokio::time::timeout_at(first_by, body.next()).await {
        Err(_) => return Err(ttfb_timeout(provider)),
        Ok(None) => {
            return Err(Error::new(
                ErrorKind::UpstreamProtocol,
                "the upstream provider sent an empty stream; retry the request",
            )
            .with_code("upstream_unavailable")
            .with_cause(format!("provider {provider}: empty stream")));
        }
        Ok(Some(Err(e))) => return Err(transport_error(provider, &e)),
        Ok(Some(Ok(b))) => b,
    };
    let last = tokio::time::Instant::now();
    // The timer starts at the first deadline: it may be set early, never late.
    let remaining = IdleLimit {
        inner: body,
        idle,
        total,
        last,
        timer: Box::pin(tokio::time::sleep_until(earliest(last + idle, total))),
    };
    Ok(futures_util::stream::once(async move { Ok(first) })
        .chain(remaining)
        .boxed())
}

/// The earlier of `at` and `limit`.
fn earliest(at: tokio::time::Instant, limit: Option<tokio::time::Instant>) -> tokio::time::Instant {
    limit.map_or(at, |l| l.min(at))
}

/// An upstream body that fails with [`StreamFailure::Idle`] after `idle` without a chunk, and
/// with [`StreamFailure::Total`] at the call's total limit. One timer serves the whole stream
/// ([`crate::clock::poll_deadline`]): a chunk only notes its time (a timer per chunk would be
/// registered and cancelled for every event of every stream).
struct IdleLimit<S> {
    inner: S,
    idle: Duration,
    total: Option<tokio::time::Instant>,
    last: tokio::time::Instant,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<S> futures_util::Stream for IdleLimit<S>
where
    S: futures_util::Stream<Item = Result<Bytes, TransportError>> + Unpin,
{
    type Item = Result<Bytes, StreamFailure>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(b))) => {
                this.last = tokio::time::Instant::now();
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(StreamFailure::Transport(e.to_string()))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = earliest(this.last + this.idle, this.total);
                std::task::ready!(crate::clock::poll_deadline(
                    this.timer.as_mut(),
                    deadline,
                    cx
                ));
                if this.total.is_some_and(|t| t <= deadline) {
                    Poll::Ready(Some(Err(StreamFailure::Total)))
                } else {
                    Poll::Ready(Some(Err(StreamFailure::Idle(this.idle))))
                }
            }
        }
    }
}

/// The error for an upstream that sent nothing within the time-to-first-byte limit.
pub fn ttfb_timeout(provider: &str) -> Error {
    Error::new(
        ErrorKind::UpstreamTimeout,
        "the upstream provider did not start answering in time; retry the request",
    )
    .with_code("upstream_timeout")
    .with_cause(format!(
        "provider {provider}: time-to-first-byte limit reached"
    ))
}
