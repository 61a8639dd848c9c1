//! Logs and metrics, as leaves every layer may use: metric names, the log subscriber, the
//! Prometheus recorder, and the request's ID and client address as task-locals.
//!
//! The access-log middleware that sets those task-locals and logs each request is
//! `server::observe`; what it logs comes from response extensions, never from headers or
//! bodies, which is what keeps keys and prompts out of the logs.

use foldhash::HashMap;
use std::cell::RefCell;
use std::sync::OnceLock;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Requests handled, by route, model and status.
pub const METRIC_REQUESTS: &str = "anyint_requests_total";
/// Async task lifecycle events by family (`created`, `succeeded`, `failed`, `canceled`).
pub const METRIC_TASKS: &str = "anyint_tasks_total";
/// Client callback delivery attempts by outcome (`delivered`, `retry`, `dead`).
pub const METRIC_CALLBACKS: &str = "anyint_callback_deliveries_total";
/// Time to response headers, by route.
pub const METRIC_LATENCY: &str = "anyint_request_duration_seconds";
/// Upstream failures, by provider and kind.
pub const METRIC_UPSTREAM_ERRORS: &str = "anyint_upstream_errors_total";
/// Retried attempts, by requested model.
pub const METRIC_RETRIES: &str = "anyint_retries_total";
/// Requests served by a fallback model.
pub const METRIC_FALLBACKS: &str = "anyint_fallbacks_total";
/// Circuit breaker state per route: 0 closed, 1 half-open, 2 open.
pub const METRIC_ROUTE_STATE: &str = "anyint_route_state";
/// Limiter backend failures, by configured mode (`open` admits, `closed` refuses).
pub const METRIC_LIMITER_ERRORS: &str = "anyint_limiter_errors_total";
/// 1 while the limiter's Redis answers, 0 while its breaker is open (absent without Redis).
pub const METRIC_LIMITER_REDIS_UP: &str = "anyint_limiter_redis_up";
/// Tokens metered, by direction and model.
pub const METRIC_TOKENS: &str = "anyint_tokens_total";
/// Hosted web searches metered, by model and provider (to reconcile with upstream bills).
pub const METRIC_WEB_SEARCHES: &str = "anyint_web_searches_total";
/// Usage rows the store refused outright (logged instead).
pub const METRIC_METER_DEAD_ROWS: &str = "anyint_meter_dead_rows_total";
/// Failed usage writes (each is retried).
pub const METRIC_METER_WRITE_ERRORS: &str = "anyint_meter_write_errors_total";
/// Failed appends to the usage journal (the row is kept in memory; `/readyz` fails).
pub const METRIC_METER_JOURNAL_ERRORS: &str = "anyint_meter_journal_errors_total";

/// The response header carrying the request ID.
pub static REQUEST_ID_HEADER: http::HeaderName = http::HeaderName::from_static("x-request-id");
/// The same ID under the name the Anthropic SDK reads.
pub static REQUEST_ID_HEADER_ANTHROPIC: http::HeaderName =
    http::HeaderName::from_static("request-id");

/// The request's ID, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The TCP peer's address (before any forwarding header is read), as a request extension set
/// by `server::observe`; the console reads it to trust `X-Forwarded-Proto` only from a trusted
/// proxy.
#[derive(Clone, Copy, Debug)]
pub struct PeerIp(pub std::net::IpAddr);

tokio::task_local! {
    /// The client's address for the request being handled on this task (socket peer, or the
    /// forwarded client behind a trusted proxy; `None` when that could not be read safely).
    /// Set by `server::observe` around the handler.
    static CLIENT_IP: Option<std::net::IpAddr>;
    /// The gateway request ID of the request being handled on this task, for error envelopes
    /// that carry it in the body (DashScope).
    static CURRENT_REQUEST_ID: String;
}

/// Runs `fut` as the handling of one request from `client` with gateway ID `id`, so
/// [`client_ip`] and [`request_id`] answer inside it.
pub async fn scope<F: std::future::Future>(
    client: Option<std::net::IpAddr>,
    id: String,
    fut: F,
) -> F::Output {
    CLIENT_IP
        .scope(client, CURRENT_REQUEST_ID.scope(id, fut))
        .await
}

/// The current request's gateway ID (empty outside a request).
pub fn request_id() -> String {
    CURRENT_REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_default()
}

/// The current request's client address (loopback outside a request); `None` when a trusted
/// proxy forwarded an address that could not be read safely.
pub fn client_ip() -> Option<std::net::IpAddr> {
    CLIENT_IP
        .try_with(|ip| *ip)
        .unwrap_or(Some(std::net::IpAddr::from([127, 0, 0, 1])))
}

/// Installs the log subscriber. `RUST_LOG` overrides `level`.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

/// The process-wide Prometheus recorder's handle, once installed.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed once; later calls share it).
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(METRIC_LATENCY.to_owned()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0, 30.0, 60.0,
                    ],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (embedding); render from a private one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// Most metric handles one thread keeps ([`Handles`]); past it, series go through the
/// recorder's own lookup.
const HANDLES_PER_THREAD: usize = 4096;

/// The handles of the per-request series, cached per thread: the `metrics` macros build a key
/// (allocating each label) and look it up in the recorder's shared registry on every call,
/// which for the few series a request touches cost more than the rest of its metering. Looked
/// up by borrowed strings, so a hit allocates nothing. Only once the recorder is installed:
/// a handle taken before would be a no-op for good.
#[derive(Default)]
struct Handles {
    /// route → model → status → `anyint_requests_total`.
    requests: HashMap<String, HashMap<String, HashMap<u16, Counter>>>,
    /// route → `anyint_request_duration_seconds`.
    latency: HashMap<String, Histogram>,
    /// model → `anyint_tokens_total` (input, output).
    tokens: HashMap<String, (Counter, Counter)>,
    len: usize,
}

thread_local! {
    static HANDLES: RefCell<Handles> = RefCell::default();
}

/// Runs `f` on this thread's handles, or returns `None` when they cannot be used (no
/// recorder yet, or re-entered) or `f` finds the cache full.
fn with_handles<T>(f: impl FnOnce(&mut Handles) -> Option<T>) -> Option<T> {
    HANDLE.get()?;
    HANDLES
        .try_with(|h| h.try_borrow_mut().ok().and_then(|mut h| f(&mut h)))
        .ok()
        .flatten()
}

/// The handle in `slot`, or a new one from `make` put there while the cache has room.
fn cached<H: Clone>(
    slot: Option<&H>,
    len: &mut usize,
    make: impl FnOnce() -> H,
) -> Option<(H, bool)> {
    match slot {
        Some(h) => Some((h.clone(), false)),
        None if *len >= HANDLES_PER_THREAD => None,
        None => {
            *len += 1;
            Some((make(), true))
        }
    }
}

fn requests_counter(route: &str, model: &str, status: u16) -> Counter {
    metrics::counter!(METRIC_REQUESTS, "route" => route.to_owned(), "model" => model.to_owned(), "status" => status.to_string())
}

fn latency_histogram(route: &str) -> Histogram {
    metrics::histogram!(METRIC_LATENCY, "route" => route.to_owned())
}

fn token_counters(model: &str) -> (Counter, Counter) {
    (
        metrics::counter!(METRIC_TOKENS, "direction" => "input", "model" => model.to_owned()),
        metrics::counter!(METRIC_TOKENS, "direction" => "output", "model" => model.to_owned()),
    )
}

/// Counts a finished request and its latency.
pub fn record_request(route: &str, model: &str, status: u16, seconds: f64) {
    let handles = with_handles(|h| {
        let slot = h
            .requests
            .get(route)
            .and_then(|m| m.get(model))
            .and_then(|s| s.get(&status));
        let (counter, new) = cached(slot, &mut h.len, || requests_counter(route, model, status))?;
        if new {
            (h.requests.entry(route.to_owned()).or_default())
                .entry(model.to_owned())
                .or_default()
                .insert(status, counter.clone());
        }
        let (histogram, new) = cached(h.latency.get(route), &mut h.len, || {
            latency_histogram(route)
        })?;
        if new {
            h.latency.insert(route.to_owned(), histogram.clone());
        }
        Some((counter, histogram))
    });
    let (counter, histogram) = handles.unwrap_or_else(|| {
        (
            requests_counter(route, model, status),
            latency_histogram(route),
        )
    });
    counter.increment(1);
    histogram.record(seconds);
}

/// Counts a request's tokens for `model`.
pub fn record_tokens(model: &str, input: u64, output: u64) {
    let handles = with_handles(|h| {
        let (pair, new) = cached(h.tokens.get(model), &mut h.len, || token_counters(model))?;
        if new {
            h.tokens.insert(model.to_owned(), pair.clone());
        }
        Some(pair)
    });
    let (i, o) = handles.unwrap_or_else(|| token_counters(model));
    i.increment(input);
    o.increment(output);
}

/// Whether the store is failing, as the background loops and `/readyz` last saw it: a store
/// outage logs one line when it starts and one when it ends, however many loops run into it.
/// One gateway per process, so one flag per process.
static STORE_FAILING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A store call of a background loop (or of the readiness probe) failed: the first failure of
/// an outage is logged at warn, the others at debug.
pub fn store_failed(what: &'static str, error: &dyn std::fmt::Display) {
    if STORE_FAILING.swap(true, std::sync::atomic::Ordering::AcqRel) {
        tracing::debug!(%error, what, "store call failed");
    } else {
        tracing::warn!(%error, what, "the store is failing: cached keys, plans and spend are served and usage is queued until it answers");
    }
}

/// A store call succeeded: ends an outage, logged once.
pub fn store_answered() {
    use std::sync::atomic::Ordering;
    if STORE_FAILING.load(Ordering::Relaxed) && STORE_FAILING.swap(false, Ordering::AcqRel) {
        tracing::info!("the store answers again");
    }
}
