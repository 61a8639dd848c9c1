//! One attempt of a chat call, passthrough or translated alike: build the upstream body for
//! the [`plan`](super::plan), make one upstream call that returns a body or a stream, and
//! answer in the client's family. A stream goes out through the [`relay`](super::relay); a
//! body is converted (when translated) and metered here.
//!
//! Passthrough forwards the client's body with only `model` rewritten (OpenAI also forces
//! `stream_options.include_usage` on, to meter) and the upstream's bytes back untouched.
//! Translation decodes the client's request to the canonical model once per call (every route
//! that needs it reuses that decode), encodes it for the upstream kind, and converts back.

use std::time::Duration;

use anyint_wire::canonical::{ChatRequest, EncodeOptions};
use anyint_wire::translate::{self, Translator};
use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

use super::attempt::{Attempt, Work};
use super::ledger::{attempt_row, elapsed_ms, set_usage};
use super::relay::{Relay, Stage};
use super::{ChatCall, Head, Inbound, Plan, plan};
use crate::error::{Error, ErrorKind};
use crate::meter::tap::UsageTap;
use crate::providers::ForwardHeaders;
use crate::providers::http::{Reply, UpstreamStream};
use crate::state::AppState;

/// A chat call's attempts.
pub struct ChatWork<'s, 'c> {
    state: &'s AppState,
    call: &'c ChatCall,
    inbound: &'c Inbound<'c>,
    /// The client's request decoded once, for the routes that translate.
    canonical: Option<ChatRequest>,
}

impl<'s, 'c> ChatWork<'s, 'c> {
    /// The attempts of `call` with `inbound`.
    pub fn new(state: &'s AppState, call: &'c ChatCall, inbound: &'c Inbound<'c>) -> Self {
        Self {
            state,
            call,
            inbound,
            canonical: None,
        }
    }
}

impl Work for ChatWork<'_, '_> {
    type Output = Response;

    async fn run(&mut self, at: &Attempt<'_>) -> Result<(Response, Option<Duration>), Error> {
        let (state, call, inbound) = (self.state, self.call, self.inbound);
        let (provider, route) = (at.provider, at.route);
        let upstream_model = route.upstream_model.as_str();
        let kind = provider.adapter.wire_kind();
        let how = plan(call.family, provider.adapter);
        let none = ForwardHeaders::default();
        // The upstream body, the headers it forwards, and (translated) the canonical request.
        let (body, forward, translated) = match how {
            Plan::Passthrough => match &inbound.head {
                Head::OpenAi(h) => (h.encode_upstream(upstream_model), &none, None),
                Head::Anthropic { body, forward } => {
                    let model_json = anyint_wire::json::json_string(upstream_model);
                    (body.encode_with(&[("model", &model_json)]), forward, None)
                }
                Head::Gemini { .. } => (inbound.body.to_vec(), &none, None),
            },
            Plan::Translate => {
                let mut req = match &self.canonical {
                    Some(r) => r.clone(),
                    None => self
                        .canonical
                        .insert(translate::decode_request(inbound.shape(), inbound.body)?)
                        .clone(),
                };
                let estimate = req.estimate_input_tokens();
                upstream_model.clone_into(&mut req.model);
                req.stream = inbound.stream;
                (
                    translate::encode_request(kind, &req)?,
                    &none,
                    Some(estimate),
                )
            }
        };
        let request =
            provider.chat_request(&at.call, upstream_model, body, inbound.stream, forward);
        let (reply, ttfb) = provider
            .exchange(request, inbound.stream, at.deadlines, at.started)
            .await?;
        let mut row = attempt_row(call, inbound, at);
        let bytes = match reply {
            Reply::Stream(upstream) => {
                let relay_stage = match (translated, &inbound.head) {
                    (Some(estimate), _) => {
                        let opts = EncodeOptions {
                            model: at.model.id.clone(),
                            include_usage: inbound.include_usage(),
                            input_tokens_estimate: estimate,
                            created: crate::clock::unix_secs(),
                        };
                        Stage::Translate(Box::new(Translator::new(kind, inbound.shape(), opts)))
                    }
                    (None, Head::OpenAi(h)) if !h.include_usage => Stage::StripUsage,
                    (None, Head::Gemini { sse: false }) => Stage::JsonArray,
                    (None, _) => Stage::Forward,
                };
                let tap = UsageTap::new(kind, (state.meter.clone(), row, call.started))
                    .holding(call.take_hold());
                return Ok((
                    relayed(call, inbound, upstream, relay_stage, tap),
                    Some(ttfb),
                ));
            }
            Reply::Body(bytes) => bytes,
        };
        if translated.is_none() {
            set_usage(
                &mut row,
                &kind.usage_from_response(&bytes).unwrap_or_default(),
            );
            row.latency_ms = elapsed_ms(call.started);
            state.meter.record(row);
            return Ok((json_body(bytes), Some(ttfb)));
        }
        let mut canonical = translate::decode_response(kind, &bytes).map_err(|e| {
            Error::new(
                ErrorKind::UpstreamProtocol,
                "the upstream provider sent a response the gateway could not read; retry the request",
            )
            .with_code("upstream_unavailable")
            .with_cause(format!("provider {}: {}", provider.config.name, e.message))
        })?;
        canonical.model.clone_from(&at.model.id);
        if canonical.created.is_none() {
            canonical.created = Some(crate::clock::unix_secs());
        }
        set_usage(&mut row, &canonical.usage);
        row.latency_ms = elapsed_ms(call.started);
        state.meter.record(row);
        let out = translate::encode_response(inbound.shape(), &canonical);
        Ok((json_body(out), Some(ttfb)))
    }
}

/// The client's streamed response: the upstream relayed through `stage`, metered by `tap`.
fn relayed(
    call: &ChatCall,
    inbound: &Inbound<'_>,
    upstream: UpstreamStream,
    stage: Stage,
    tap: UsageTap,
) -> Response {
    let json_array = inbound.json_array_stream();
    let relay = Relay::new(upstream, stage, tap, json_array, call.error_frame);
    let mut out = Response::new(Body::from_stream(relay));
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
