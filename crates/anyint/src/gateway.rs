//! The request pipeline, as plain async steps in a visible order:
//! resolve model (entitlement) → for each route: plan → build upstream request → send → answer,
//! and meter exactly once.
//!
//! [`plan`] chooses per route between passthrough (client family == upstream kind: forward the
//! body with only `model` rewritten and stream the upstream bytes back through the usage tap)
//! and translation (decode the client's request to the canonical model once, encode it for the
//! upstream kind, and convert the answer back; see [`translate`]). A route that fails before any
//! byte reached the client with a retryable error hands over to the next. Every authenticated
//! request leaves exactly one ledger row: succeeded, refused, failed, or cut short.

pub mod translate;

use std::sync::Arc;

use anyint_wire::Usage;
use anyint_wire::canonical::{ChatRequest, EncodeOptions};
use anyint_wire::json::RawObject;
use anyint_wire::openai::ChatRequestHead;
use axum::body::Body;
use axum::response::Response;
use futures_util::StreamExt;
use http::{HeaderValue, StatusCode, header};
use tokio::time::Instant;

use crate::config::{ModelConfig, RouteConfig};
use crate::error::{Error, ErrorKind};
use crate::families::Family;
use crate::meter::tap::{ErrorFrame, Mode, UsageTap};
use crate::providers::{ForwardHeaders, Provider, ProviderAdapter};
use crate::server::AppState;
use crate::store::{ApiKey, UsageRecord};
use crate::telemetry::{METRIC_UPSTREAM_ERRORS, RequestLog};
use translate::{ClientEncoder, ClientShape, Translator, UpstreamDecoder};

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

/// The cheap view of a client request: enough to route and to pass through.
pub enum Head<'a> {
    /// OpenAI: validated head with the raw fields.
    OpenAi(ChatRequestHead<'a>),
    /// Anthropic: the raw top-level fields and the client's version headers.
    Anthropic {
        /// Top-level fields, values unparsed.
        body: RawObject<'a>,
        /// Headers forwarded on passthrough.
        forward: ForwardHeaders,
    },
    /// Gemini: the body is passed as is; model and stream come from the URL.
    Gemini {
        /// Whether the client asked for SSE rather than the JSON-array stream.
        sse: bool,
    },
}

/// A decoded-enough client request.
pub struct Inbound<'a> {
    /// The raw body.
    pub body: &'a [u8],
    /// The public model asked for.
    pub model: String,
    /// Whether the client wants a stream.
    pub stream: bool,
    /// Family-specific head.
    pub head: Head<'a>,
}

impl Inbound<'_> {
    fn shape(&self) -> ClientShape<'_> {
        match &self.head {
            Head::OpenAi(_) => ClientShape::OpenAi,
            Head::Anthropic { forward, .. } => ClientShape::Anthropic {
                version: forward.anthropic_version.as_deref().unwrap_or("2023-06-01"),
            },
            Head::Gemini { sse } => ClientShape::Gemini {
                model: &self.model,
                stream: self.stream,
                sse: *sse,
            },
        }
    }

    fn include_usage(&self) -> bool {
        matches!(&self.head, Head::OpenAi(h) if h.include_usage)
    }

    fn json_array_stream(&self) -> bool {
        self.stream && matches!(self.head, Head::Gemini { sse: false })
    }
}

/// How a request reaches its upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Same family on both sides: forward bytes.
    Passthrough,
    /// Different families: convert through the canonical model.
    Translate,
}

/// Chooses passthrough or translation for a client family and an upstream adapter.
pub fn plan(family: Family, adapter: ProviderAdapter) -> Plan {
    match (family, adapter) {
        (Family::OpenAi, ProviderAdapter::OpenAi)
        | (Family::Anthropic, ProviderAdapter::Anthropic)
        | (Family::Gemini, ProviderAdapter::Gemini) => Plan::Passthrough,
        (Family::OpenAi | Family::Anthropic | Family::Gemini, _) => Plan::Translate,
    }
}

/// Serves one chat request. `head` is the family's cheap decode of the body (or its error).
pub async fn chat(
    state: &AppState,
    call: ChatCall,
    inbound: Result<Inbound<'_>, Error>,
) -> (Result<Response, Error>, RequestLog) {
    let mut log = RequestLog {
        model: None,
        key_id: Some(call.key.id.clone()),
    };
    let inbound = match inbound {
        Ok(i) => i,
        Err(e) => {
            record_failure(state, &call, "", false, None, &e);
            return (Err(e), log);
        }
    };
    log.model = Some(inbound.model.clone());
    let model = match crate::policy::entitlement::resolve(
        &state.config,
        &call.key,
        &inbound.model,
        call.family,
    ) {
        Ok(m) => m,
        Err(e) => {
            record_failure(state, &call, &inbound.model, inbound.stream, None, &e);
            return (Err(e), log);
        }
    };
    (route(state, &call, &inbound, model).await, log)
}

/// Tries the model's routes in order; a retryable failure before the first byte moves on.
async fn route(
    state: &AppState,
    call: &ChatCall,
    inbound: &Inbound<'_>,
    model: &ModelConfig,
) -> Result<Response, Error> {
    let mut canonical: Option<ChatRequest> = None;
    let mut last: Option<(Error, &Provider, &RouteConfig)> = None;
    for route in &model.routes {
        let Some(provider) = state.providers.get(route.provider) else {
            continue;
        };
        let attempt = match plan(call.family, provider.adapter) {
            Plan::Passthrough => passthrough(state, call, inbound, model, route, provider).await,
            Plan::Translate => {
                let req = match &canonical {
                    Some(r) => Ok(r.clone()),
                    None => translate::decode_request(inbound.shape(), inbound.body)
                        .map_err(Error::from),
                };
                match req {
                    Ok(req) => {
                        canonical.get_or_insert_with(|| req.clone());
                        translated(state, call, inbound, model, route, provider, req).await
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match attempt {
            Ok(resp) => return Ok(resp),
            Err(e) => {
                if e.kind.fault() == crate::error::Fault::Upstream {
                    metrics::counter!(METRIC_UPSTREAM_ERRORS, "provider" => provider.config.name.clone(), "kind" => e.kind.as_str())
                        .increment(1);
                }
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
        record_failure(state, call, &model.id, inbound.stream, None, &e);
        return Err(e);
    };
    record_failure(
        state,
        call,
        &model.id,
        inbound.stream,
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

fn set_usage(row: &mut UsageRecord, u: &Usage) {
    row.prompt_tokens = i64::try_from(u.input_tokens).unwrap_or(i64::MAX);
    row.completion_tokens = i64::try_from(u.output_tokens).unwrap_or(i64::MAX);
    row.cache_read_tokens = i64::try_from(u.cache_read_tokens).unwrap_or(i64::MAX);
    row.cache_write_tokens = i64::try_from(u.cache_write_tokens).unwrap_or(i64::MAX);
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

/// Sends the upstream request and turns an error reply into the gateway error.
async fn send(
    provider: &Provider,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, Error> {
    let resp = crate::providers::http::send(&provider.config.name, req).await?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let headers = resp.headers().clone();
    let body = crate::providers::http::read_error_body(resp).await;
    Err(provider.decode_error(status, &headers, &body))
}

fn is_sse(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

fn not_a_stream(provider: &Provider) -> Error {
    Error::new(
        ErrorKind::UpstreamProtocol,
        "the upstream provider answered a stream request without a stream; retry the request",
    )
    .with_code("upstream_unavailable")
    .with_cause(format!(
        "provider {} sent a non-SSE body to a stream request",
        provider.config.name
    ))
}

fn stream_response(tap: UsageTap, json_array: bool) -> Response {
    let mut out = Response::new(Body::from_stream(tap));
    let h = out.headers_mut();
    let ct = if json_array {
        "application/json"
    } else {
        "text/event-stream"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    out
}

fn json_body(bytes: impl Into<Body>) -> Response {
    let mut out = Response::new(bytes.into());
    *out.status_mut() = StatusCode::OK;
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out
}

async fn passthrough(
    state: &AppState,
    call: &ChatCall,
    inbound: &Inbound<'_>,
    model: &ModelConfig,
    route: &RouteConfig,
    provider: &Provider,
) -> Result<Response, Error> {
    let upstream_model = route.upstream_model.as_str();
    let none = ForwardHeaders::default();
    let (body, forward) = match &inbound.head {
        Head::OpenAi(h) => (h.encode_upstream(upstream_model), &none),
        Head::Anthropic { body, forward } => {
            let mut model_json = Vec::new();
            anyint_wire::json::write_json_string(&mut model_json, upstream_model);
            let model_json = String::from_utf8_lossy(&model_json).into_owned();
            (body.encode_with(&[("model", &model_json)]), forward)
        }
        Head::Gemini { .. } => (inbound.body.to_vec(), &none),
    };
    let resp = send(
        provider,
        provider.chat_request(upstream_model, body, inbound.stream, forward),
    )
    .await?;
    let mut row = ledger_row(call, &model.id, inbound.stream, Some((provider, route)));
    if inbound.stream {
        if !is_sse(&resp) {
            return Err(not_a_stream(provider));
        }
        let mode = match &inbound.head {
            Head::OpenAi(h) => Mode::OpenAi {
                strip_usage: !h.include_usage,
            },
            Head::Anthropic { .. } => Mode::Anthropic,
            Head::Gemini { sse } => Mode::Gemini { array: !sse },
        };
        let array = inbound.json_array_stream();
        let tap = UsageTap::new(
            resp.bytes_stream().boxed(),
            mode,
            array,
            (state.meter.clone(), row, call.started),
            call.error_frame,
        );
        return Ok(stream_response(tap, array));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| crate::providers::http::transport_error(&provider.config.name, &e))?;
    let usage = match provider.adapter {
        ProviderAdapter::OpenAi => anyint_wire::openai::usage_from_response(&bytes),
        ProviderAdapter::Anthropic => anyint_wire::anthropic::usage_from_response(&bytes),
        ProviderAdapter::Gemini => anyint_wire::gemini::usage_from_response(&bytes),
    };
    set_usage(&mut row, &usage.unwrap_or_default());
    row.latency_ms = elapsed_ms(call.started);
    state.meter.record(row);
    Ok(json_body(bytes))
}

async fn translated(
    state: &AppState,
    call: &ChatCall,
    inbound: &Inbound<'_>,
    model: &ModelConfig,
    route: &RouteConfig,
    provider: &Provider,
    mut req: ChatRequest,
) -> Result<Response, Error> {
    let estimate = req.estimate_input_tokens();
    req.model.clone_from(&route.upstream_model);
    req.stream = inbound.stream;
    let body = translate::encode_request(provider.adapter, &req)?;
    let forward = ForwardHeaders::default();
    let resp = send(
        provider,
        provider.chat_request(&route.upstream_model, body, inbound.stream, &forward),
    )
    .await?;
    let mut row = ledger_row(call, &model.id, inbound.stream, Some((provider, route)));
    if inbound.stream {
        if !is_sse(&resp) {
            return Err(not_a_stream(provider));
        }
        let opts = EncodeOptions {
            model: model.id.clone(),
            include_usage: inbound.include_usage(),
            input_tokens_estimate: estimate,
            created: crate::clock::unix_secs(),
        };
        let translator = Translator {
            decoder: UpstreamDecoder::new(provider.adapter),
            encoder: ClientEncoder::new(inbound.shape(), opts),
        };
        let array = inbound.json_array_stream();
        let tap = UsageTap::new(
            resp.bytes_stream().boxed(),
            Mode::Translate(Box::new(translator)),
            array,
            (state.meter.clone(), row, call.started),
            call.error_frame,
        );
        return Ok(stream_response(tap, array));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| crate::providers::http::transport_error(&provider.config.name, &e))?;
    let mut canonical = translate::decode_response(provider.adapter, &bytes).map_err(|e| {
        Error::new(
            ErrorKind::UpstreamProtocol,
            "the upstream provider sent a response the gateway could not read; retry the request",
        )
        .with_code("upstream_unavailable")
        .with_cause(format!("provider {}: {}", provider.config.name, e.message))
    })?;
    canonical.model.clone_from(&model.id);
    if canonical.created.is_none() {
        canonical.created = Some(crate::clock::unix_secs());
    }
    set_usage(&mut row, &canonical.usage);
    row.latency_ms = elapsed_ms(call.started);
    state.meter.record(row);
    Ok(json_body(translate::encode_response(
        call.family,
        &canonical,
    )))
}
