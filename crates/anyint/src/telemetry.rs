//! Logs, metrics and request IDs.
//!
//! One middleware ([`observe`]) gives every request an ID, echoes it as `x-request-id`, and
//! logs and counts the outcome. It reads what it logs from response extensions set by the
//! handlers ([`RequestLog`], the gateway [`Error`]); it never reads headers or bodies, which is
//! what keeps keys and prompts out of the logs. Paths are logged without their query string.

use std::sync::OnceLock;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::time::Instant;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::error::{Error, Fault};

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
/// Tokens metered, by direction and model.
pub const METRIC_TOKENS: &str = "anyint_tokens_total";
/// Usage rows the store refused outright (logged instead).
pub const METRIC_METER_DEAD_ROWS: &str = "anyint_meter_dead_rows_total";
/// Failed usage writes (each is retried).
pub const METRIC_METER_WRITE_ERRORS: &str = "anyint_meter_write_errors_total";

/// The response header carrying the request ID.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request's ID, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

tokio::task_local! {
    /// The client's address for the request being handled on this task (socket peer, or
    /// `X-Forwarded-For` behind a trusted proxy). Set by [`observe`] around the handler.
    static CLIENT_IP: std::net::IpAddr;
    /// The gateway request ID of the request being handled on this task, for error envelopes
    /// that carry it in the body (DashScope).
    static CURRENT_REQUEST_ID: String;
}

/// The current request's gateway ID (empty outside a request).
pub fn request_id() -> String {
    CURRENT_REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_default()
}

/// The current request's client address (loopback outside a request).
pub fn client_ip() -> std::net::IpAddr {
    CLIENT_IP
        .try_with(|ip| *ip)
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]))
}

/// What a handler tells the access log about the request (no secrets, no content).
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    /// Public model ID.
    pub model: Option<String>,
    /// Key ID (not the key).
    pub key_id: Option<String>,
    /// The per-minute limit state, for the rate-limit headers.
    pub rate: Option<crate::policy::limits::RateDecision>,
    /// The tokens-per-minute state, for the token rate-limit headers.
    pub tokens: Option<crate::policy::limits::RateDecision>,
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

/// The process-wide Prometheus recorder (installed once; later calls share it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
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

/// A new request ID: `req_`, 12 hex digits of Unix milliseconds, then 16 random hex digits.
/// Time-ordered IDs sort by arrival in logs, and append to the ledger's primary-key index
/// instead of scattering inserts across it (measured: random keys made SQLite page traffic
/// the largest cost of metering under load).
pub fn new_request_id() -> String {
    let millis = u64::try_from(crate::clock::unix_millis()).unwrap_or(0) & 0xffff_ffff_ffff;
    format!(
        "req_{millis:012x}{}",
        hex::encode(crate::auth::random_bytes::<8>())
    )
}

/// The observe middleware: request ID, access log, metrics.
pub async fn observe(
    State(state): State<crate::server::SharedState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = new_request_id();
    let peer = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let client =
        crate::policy::access::client_ip(peer, req.headers(), &state.config.server.trusted_proxies);

    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = CLIENT_IP
        .scope(client, CURRENT_REQUEST_ID.scope(id.clone(), next.run(req)))
        .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        // `request-id` is the name the Anthropic SDK reads.
        resp.headers_mut().insert("request-id", v.clone());
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    let log = resp
        .extensions()
        .get::<RequestLog>()
        .cloned()
        .unwrap_or_default();
    let model = log.model.as_deref().unwrap_or("");
    metrics::counter!(METRIC_REQUESTS, "route" => route.clone(), "model" => model.to_owned(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(METRIC_LATENCY, "route" => route.clone()).record(elapsed.as_secs_f64());
    let key_id = log.key_id.as_deref().unwrap_or("");
    let ms = elapsed.as_secs_f64() * 1000.0;
    if let Some(e) = resp.extensions().get::<Error>() {
        let cause = e.cause.as_deref().unwrap_or("");
        match e.kind.fault() {
            Fault::Client => {
                tracing::info!(request_id = %id, %method, route, status, ms, model, key_id, error = e.kind.as_str(), "request refused");
            }
            Fault::Upstream => {
                tracing::warn!(request_id = %id, %method, route, status, ms, model, key_id, error = e.kind.as_str(), cause, "upstream failure");
            }
            Fault::Gateway => {
                tracing::error!(request_id = %id, %method, route, status, ms, model, key_id, error = e.kind.as_str(), cause, "gateway failure");
            }
        }
    } else {
        tracing::info!(request_id = %id, %method, route, status, ms, model, key_id, "request");
    }
    resp
}
