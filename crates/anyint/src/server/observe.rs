//! The access-log middleware: gives every request an ID, echoes it as `x-request-id` (and
//! `request-id`, which the Anthropic SDK reads), and logs and counts the outcome. It reads
//! what it logs from response extensions set by the handlers ([`RequestLog`], the gateway
//! [`Error`]); it never reads headers or bodies, which is what keeps keys and prompts out of
//! the logs. Paths are logged without their query string.

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tokio::time::Instant;

use crate::error::{Error, Fault};
use crate::gateway::RequestLog;
use crate::state::SharedState;
use crate::telemetry::{self, METRIC_LATENCY, METRIC_REQUESTS, REQUEST_ID_HEADER, RequestId};

/// A new request ID: `req_`, 12 hex digits of Unix milliseconds, then 16 random hex digits.
/// Time-ordered IDs sort by arrival in logs, and append to the ledger's primary-key index
/// instead of scattering inserts across it (measured: random keys made SQLite page traffic
/// the largest cost of metering under load).
fn new_request_id() -> String {
    let millis = u64::try_from(crate::clock::unix_millis()).unwrap_or(0) & 0xffff_ffff_ffff;
    format!(
        "req_{millis:012x}{}",
        hex::encode(crate::auth::random_bytes::<8>())
    )
}

/// The observe middleware: request ID, access log, metrics.
pub(crate) async fn observe(
    State(state): State<SharedState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = new_request_id();
    let peer = req
        .extensions()
        .get::<ConnectInfo<super::conn::Peer>>()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.addr.ip());
    let client =
        crate::policy::access::client_ip(peer, req.headers(), &state.config.server.trusted_proxies);

    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    req.extensions_mut().insert(RequestId(id.clone()));
    req.extensions_mut().insert(telemetry::PeerIp(peer));
    let mut resp = telemetry::scope(client, id.clone(), next.run(req)).await;
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
