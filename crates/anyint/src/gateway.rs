//! The request pipeline, as plain async steps in a visible order:
//! decode → resolve model (entitlement) → plan → route → provider call → meter.
//!
//! `plan` chooses between passthrough (client family == upstream kind: forward the body with
//! only `model` rewritten, stream the upstream bytes back through the usage tap) and
//! translation (added with the other families). Every authenticated request leaves exactly one
//! ledger row, whether it succeeded, failed, or was cut short.

use std::sync::Arc;

use anyint_wire::openai::{ChatRequestHead, usage_from_response};
use axum::body::{Body, Bytes};
use axum::response::Response;
use futures_util::StreamExt;
use http::{HeaderValue, StatusCode, header};
use tokio::time::Instant;

use crate::config::{ModelConfig, RouteConfig};
use crate::error::{Error, ErrorKind};
use crate::families::Family;
use crate::meter::tap::{ErrorFrame, UsageTap};
use crate::providers::{self, Provider, ProviderAdapter};
use crate::server::AppState;
use crate::store::{ApiKey, UsageRecord};
use crate::telemetry::{METRIC_UPSTREAM_ERRORS, RequestLog};

/// One authenticated chat call.
pub struct ChatCall {
    /// The client's family.
    pub family: Family,
    /// The authenticated key.
    pub key: Arc<ApiKey>,
    /// The gateway request ID.
    pub request_id: String,
    /// When the request arrived.
    pub started: Instant,
    /// How this family writes an error into a stream that has started.
    pub error_frame: ErrorFrame,
}

/// How a request reaches its upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Same family on both sides: forward bytes.
    Passthrough,
}

/// Chooses passthrough or translation for a client family and an upstream adapter.
pub fn plan(family: Family, adapter: ProviderAdapter) -> Plan {
    match (family, adapter) {
        (Family::OpenAi, ProviderAdapter::OpenAi) => Plan::Passthrough,
    }
}

/// Serves one chat request. Returns the response (or error) and what the access log may know.
pub async fn chat(
    state: &AppState,
    call: ChatCall,
    body: &Bytes,
) -> (Result<Response, Error>, RequestLog) {
    let mut log = RequestLog {
        model: None,
        key_id: Some(call.key.id.clone()),
    };
    let head = match ChatRequestHead::decode(body) {
        Ok(h) => h,
        Err(e) => {
            let e = Error::from(e);
            record_failure(state, &call, "", false, None, &e);
            return (Err(e), log);
        }
    };
    log.model = Some(head.model.clone());
    let model = match crate::policy::entitlement::resolve(
        &state.config,
        &call.key,
        &head.model,
        call.family,
    ) {
        Ok(m) => m,
        Err(e) => {
            record_failure(state, &call, &head.model, head.stream, None, &e);
            return (Err(e), log);
        }
    };
    let result = route(state, &call, &head, model).await;
    (result, log)
}

/// Tries the model's routes in order; a route that fails before any byte reached the client
/// with a retryable error hands over to the next.
async fn route(
    state: &AppState,
    call: &ChatCall,
    head: &ChatRequestHead<'_>,
    model: &ModelConfig,
) -> Result<Response, Error> {
    let mut last: Option<(Error, &Provider, &RouteConfig)> = None;
    for route in &model.routes {
        let Some(provider) = state.providers.get(route.provider) else {
            continue;
        };
        let attempt = match plan(call.family, provider.adapter) {
            Plan::Passthrough => passthrough(state, call, head, model, route, provider).await,
        };
        match attempt {
            Ok(resp) => return Ok(resp),
            Err(e) => {
                metrics::counter!(METRIC_UPSTREAM_ERRORS, "provider" => provider.config.name.clone(), "kind" => e.kind.as_str())
                    .increment(1);
                let retryable = matches!(
                    e.kind,
                    ErrorKind::UpstreamUnavailable | ErrorKind::UpstreamTimeout
                );
                last = Some((e, provider, route));
                if !retryable {
                    break;
                }
            }
        }
    }
    let Some((e, provider, route)) = last else {
        let e = Error::internal(format!("model {} has no usable route", model.id));
        record_failure(state, call, &model.id, head.stream, None, &e);
        return Err(e);
    };
    record_failure(
        state,
        call,
        &model.id,
        head.stream,
        Some((provider, route)),
        &e,
    );
    Err(e)
}

fn ledger_row(
    call: &ChatCall,
    model: &str,
    stream: bool,
    via: Option<(&Provider, &RouteConfig)>,
) -> UsageRecord {
    UsageRecord {
        request_id: call.request_id.clone(),
        key_id: call.key.id.clone(),
        account: call.key.account.clone(),
        model: model.to_owned(),
        provider: via.map(|(p, _)| p.config.name.clone()).unwrap_or_default(),
        upstream_model: via
            .map(|(_, r)| r.upstream_model.clone())
            .unwrap_or_default(),
        family: call.family.as_str().to_owned(),
        stream,
        prompt_tokens: 0,
        completion_tokens: 0,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        status: 200,
        outcome: "ok".to_owned(),
        latency_ms: 0,
        created_at_ms: crate::clock::unix_millis(),
    }
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// Records the ledger row of a request that failed before streaming: one row, for the final
/// answer, never one per attempt (the request ID is the row's key).
fn record_failure(
    state: &AppState,
    call: &ChatCall,
    model: &str,
    stream: bool,
    via: Option<(&Provider, &RouteConfig)>,
    e: &Error,
) {
    let mut row = ledger_row(call, model, stream, via);
    row.status = i64::from(e.status().as_u16());
    e.kind.as_str().clone_into(&mut row.outcome);
    row.latency_ms = elapsed_ms(call.started);
    state.meter.record(row);
}

async fn passthrough(
    state: &AppState,
    call: &ChatCall,
    head: &ChatRequestHead<'_>,
    model: &ModelConfig,
    route: &RouteConfig,
    provider: &Provider,
) -> Result<Response, Error> {
    let upstream_body = head.encode_upstream(&route.upstream_model);
    let req = match provider.adapter {
        ProviderAdapter::OpenAi => providers::openai::chat_request(provider, upstream_body),
    };
    let resp = providers::http::send(&provider.config.name, req).await?;
    let status = resp.status();
    if !status.is_success() {
        let headers = resp.headers().clone();
        let body = providers::http::read_error_body(resp).await;
        return Err(match provider.adapter {
            ProviderAdapter::OpenAi => {
                providers::openai::decode_error(provider, status, &headers, &body)
            }
        });
    }
    let mut row = ledger_row(call, &model.id, head.stream, Some((provider, route)));
    let is_sse = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if head.stream && is_sse {
        let tap = UsageTap::new(
            resp.bytes_stream().boxed(),
            !head.include_usage,
            state.meter.clone(),
            row,
            call.started,
            call.error_frame,
        );
        let mut out = Response::new(Body::from_stream(tap));
        let h = out.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        return Ok(out);
    }
    if head.stream {
        return Err(Error::new(
            ErrorKind::UpstreamProtocol,
            "the upstream provider answered a stream request without a stream; retry the request",
        )
        .with_code("upstream_unavailable")
        .with_cause(format!(
            "provider {} sent a non-SSE body to a stream request",
            provider.config.name
        )));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| providers::http::transport_error(&provider.config.name, &e))?;
    if let Some(u) = usage_from_response(&bytes) {
        row.prompt_tokens = i64::try_from(u.input_tokens).unwrap_or(i64::MAX);
        row.completion_tokens = i64::try_from(u.output_tokens).unwrap_or(i64::MAX);
        row.cache_read_tokens = i64::try_from(u.cache_read_tokens).unwrap_or(i64::MAX);
        row.cache_write_tokens = i64::try_from(u.cache_write_tokens).unwrap_or(i64::MAX);
    }
    row.latency_ms = elapsed_ms(call.started);
    state.meter.record(row);
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = StatusCode::OK;
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(out)
}
