//! One attempt of a chat call, passthrough or translated alike: build the upstream body for
//! the [`plan`](super::plan), make one upstream call that returns a body or a stream, and
//! answer in the client's family. A stream goes out through the [`relay`](super::relay); a
//! body is converted (when translated) and metered here.
//!
//! Passthrough forwards the client's body with only `model` rewritten (OpenAI also forces
//! `stream_options.include_usage` on, to meter) and the upstream's bytes back untouched.
//! Translation decodes the client's request to the canonical model once per call (every route
//! that needs it reuses that decode; a Responses request is decoded once more for routes whose
//! provider serves hosted web search, which reads its `web_search` tool instead of refusing
//! it), encodes it for the upstream kind, and converts back.

use std::time::Duration;

use anyint_wire::canonical::{ChatRequest, DecodeOptions, EncodeOptions};
use anyint_wire::json::Piece;
use anyint_wire::translate::{self, Translator};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use super::attempt::{Attempt, Work};
use super::ledger::{attempt_row, elapsed_ms, set_usage};
use super::relay::{Relay, Stage};
use super::{ChatCall, HEADER_WARNING, Head, Inbound, Plan, plan};
use crate::error::{Error, ErrorKind};
use crate::meter::tap::UsageTap;
use crate::providers::ForwardHeaders;
use crate::providers::http::{Payload, Reply};
use crate::state::AppState;

/// A chat call's attempts.
pub struct ChatWork<'s, 'c> {
    state: &'s AppState,
    call: &'c ChatCall,
    inbound: &'c Inbound<'c>,
    /// The client's request decoded once, for the routes that translate: without hosted web
    /// search, and with it (for providers with `web_search = true`).
    canonical: Option<ChatRequest>,
    canonical_search: Option<ChatRequest>,
}

/// An attempt's upstream body and what the answer needs to know about it.
struct UpstreamBody {
    body: Payload,
    /// Translated: the canonical request's input estimate.
    estimate: Option<u64>,
    /// Translated: what decoding the answer enforces for the canonical request sent
    /// ([`DecodeOptions::for_request`], e.g. one tool call per turn from an upstream without
    /// that switch); the default when passed through.
    decode: DecodeOptions,
    /// The upstream cannot run the client's web search with its function tools (Gemini 1.x,
    /// 2.x), so the body leaves it out; the answer says so in a header.
    search_dropped: bool,
}

/// Passthrough body values this long or longer (a conversation's `messages`, `input`) are sent
/// as slices of the client's body instead of copied into the upstream's; shorter ones are
/// copied, which costs less than another piece to write.
const BORROW_FROM: usize = 4096;

/// The upstream body from encoded pieces: written pieces as they are, borrowed values as
/// slices of `body` (copied only if one is not inside it, which the encoder never does).
fn payload(body: &Bytes, pieces: Vec<Piece<'_>>) -> Payload {
    Payload::from_parts(pieces.into_iter().map(|piece| match piece {
        Piece::Written(w) => Bytes::from(w),
        Piece::Borrowed(v) => {
            let start = (v.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
            match start.checked_add(v.len()) {
                Some(end) if end <= body.len() => body.slice(start..end),
                _ => Bytes::copy_from_slice(v.as_bytes()),
            }
        }
    }))
}

/// The warning an answer carries when its web search was left out.
const SEARCH_DROPPED: &str = "web_search was not run: this Gemini model cannot combine Google \
                              Search with function tools; use a Gemini 3 model, or send no \
                              function tools";

impl<'s, 'c> ChatWork<'s, 'c> {
    /// The attempts of `call` with `inbound`.
    pub fn new(state: &'s AppState, call: &'c ChatCall, inbound: &'c Inbound<'c>) -> Self {
        Self {
            state,
            call,
            inbound,
            canonical: None,
            canonical_search: None,
        }
    }
}

impl ChatWork<'_, '_> {
    /// The upstream body for this attempt and what the answer needs to know about it.
    fn upstream_body(&mut self, at: &Attempt<'_>) -> Result<UpstreamBody, Error> {
        let inbound = self.inbound;
        let upstream_model = at.route.upstream_model.as_str();
        match plan(self.call.family, at.provider.adapter) {
            Plan::Passthrough => Ok(UpstreamBody {
                body: match &inbound.head {
                    Head::OpenAi(h) => {
                        payload(inbound.body, h.upstream_pieces(upstream_model, BORROW_FROM))
                    }
                    Head::Anthropic { body, .. } => {
                        let model_json = anyint_wire::json::json_string(upstream_model);
                        payload(
                            inbound.body,
                            body.encode_pieces(&[("model", &model_json)], &[], BORROW_FROM),
                        )
                    }
                    Head::Gemini { .. } => Payload::from(inbound.body.clone()),
                    Head::Responses { head, .. } => payload(
                        inbound.body,
                        head.upstream_pieces(upstream_model, BORROW_FROM),
                    ),
                },
                estimate: None,
                decode: DecodeOptions::default(),
                search_dropped: false,
            }),
            Plan::Translate => {
                // Without the provider's setting a `web_search` tool is the 400 it always was.
                let opts = DecodeOptions {
                    web_search: at.provider.config.web_search,
                    ..DecodeOptions::default()
                };
                let slot = if opts.web_search {
                    &mut self.canonical_search
                } else {
                    &mut self.canonical
                };
                let mut req = match slot {
                    Some(r) => r.clone(),
                    None => slot
                        .insert(translate::decode_request_with(
                            inbound.shape(),
                            inbound.body,
                            opts,
                        )?)
                        .clone(),
                };
                let estimate = req.estimate_input_tokens();
                upstream_model.clone_into(&mut req.model);
                req.stream = inbound.stream;
                let kind = at.provider.adapter.wire_kind();
                Ok(UpstreamBody {
                    body: translate::encode_request(kind, &req)?.into(),
                    estimate: Some(estimate),
                    decode: DecodeOptions::for_request(&req),
                    search_dropped: kind == translate::Kind::Gemini
                        && anyint_wire::gemini::drops_web_search(&req),
                })
            }
        }
    }

    /// The streamed answer: the upstream relayed through the plan's stage, metered by the
    /// tap, and (Responses, `store: true`) stored before its terminal event goes out.
    async fn stream(
        &self,
        at: &Attempt<'_>,
        upstream: crate::providers::http::UpstreamStream,
        translated: Option<u64>,
        decode: DecodeOptions,
        row: crate::store::UsageRecord,
    ) -> Response {
        let (state, call, inbound) = (self.state, self.call, self.inbound);
        let kind = at.provider.adapter.wire_kind();
        let client_stage = match (translated, &inbound.head) {
            (Some(estimate), _) => {
                let opts = EncodeOptions {
                    model: at.model.id.clone(),
                    include_usage: inbound.include_usage(),
                    input_tokens_estimate: estimate,
                    created: crate::clock::unix_secs(),
                };
                Stage::Translate(Box::new(Translator::new(
                    kind,
                    decode,
                    inbound.shape(),
                    opts,
                )))
            }
            (None, Head::OpenAi(h)) if !h.include_usage => Stage::StripUsage,
            (None, Head::Gemini { sse: false }) => Stage::JsonArray,
            (None, _) => Stage::Forward,
        };
        let tap =
            UsageTap::new(kind, (state.meter.clone(), row, call.started)).holding(call.take_hold());
        let mut relay = Relay::new(
            upstream,
            client_stage,
            tap,
            inbound.json_array_stream(),
            call.error_frame,
        );
        if let Head::Responses { keep, .. } = &inbound.head {
            relay = relay.responses_client();
            if let Some(conversation) = keep {
                relay = relay.keeping((*conversation).clone().keeper(at.model.id.clone()));
            }
        }
        let first = relay.first_ready().await;
        relayed(inbound, first, relay)
    }

    /// The whole (non-streamed) answer: metered, converted when translated, and (Responses,
    /// `store: true`) stored before it is returned.
    async fn body(
        &self,
        at: &Attempt<'_>,
        bytes: bytes::Bytes,
        translated: bool,
        decode: DecodeOptions,
        mut row: crate::store::UsageRecord,
    ) -> Result<Response, Error> {
        let (state, call, inbound) = (self.state, self.call, self.inbound);
        let kind = at.provider.adapter.wire_kind();
        let keep = match &inbound.head {
            Head::Responses { keep, .. } => *keep,
            _ => None,
        };
        if !translated {
            set_usage(
                &mut row,
                &kind.usage_from_response(&bytes).unwrap_or_default(),
            );
            row.latency_ms = elapsed_ms(call.started);
            state.meter.record_durably(row).await;
            if let Some(conversation) = keep
                && let Ok(response) = serde_json::from_slice::<serde_json::Value>(&bytes)
            {
                conversation
                    .clone()
                    .keep(at.model.id.clone(), response)
                    .await;
            }
            return Ok(json_body(bytes));
        }
        let decoded = translate::decode_response(kind, &bytes, decode);
        let mut canonical = decoded.map_err(|e| {
            Error::new(
                ErrorKind::UpstreamProtocol,
                "the upstream provider sent a response the gateway could not read; retry the request",
            )
            .with_code("upstream_unavailable")
            .with_cause(format!("provider {}: {}", at.provider.config.name, e.message))
        })?;
        canonical.model.clone_from(&at.model.id);
        if canonical.created.is_none() {
            canonical.created = Some(crate::clock::unix_secs());
        }
        set_usage(&mut row, &canonical.usage);
        row.latency_ms = elapsed_ms(call.started);
        state.meter.record_durably(row).await;
        if let Head::Responses { echo, .. } = &inbound.head {
            let response = anyint_wire::responses::encode_response(&canonical, echo);
            let out = serde_json::to_vec(&response).unwrap_or_default();
            if let Some(conversation) = keep {
                conversation
                    .clone()
                    .keep(at.model.id.clone(), response)
                    .await;
            }
            return Ok(json_body(out));
        }
        Ok(json_body(translate::encode_response(
            inbound.shape(),
            &canonical,
        )))
    }
}

impl Work for ChatWork<'_, '_> {
    type Output = Response;

    async fn run(&mut self, at: &Attempt<'_>) -> Result<(Response, Option<Duration>), Error> {
        let (provider, stream) = (at.provider, self.inbound.stream);
        let UpstreamBody {
            body,
            estimate: translated,
            decode,
            search_dropped,
        } = self.upstream_body(at)?;
        let none = ForwardHeaders::default();
        let forward = match (&self.inbound.head, translated) {
            (Head::Anthropic { forward, .. }, None) => forward,
            _ => &none,
        };
        let request =
            provider.chat_request(&at.call, &at.route.upstream_model, body, stream, forward);
        let (reply, ttfb) = provider
            .exchange(request, stream, at.deadlines, at.started)
            .await
            .map_err(|e| match translated {
                // Same family: the client reads the upstream's refusal as it was written
                // (Claude Code's recovery matches on it).
                None => crate::providers::http::in_upstream_words(e),
                Some(_) => e,
            })?;
        let row = attempt_row(self.call, self.inbound, at);
        let mut resp = match reply {
            Reply::Stream(upstream) => self.stream(at, upstream, translated, decode, row).await,
            Reply::Body(bytes) => {
                self.body(at, bytes, translated.is_some(), decode, row)
                    .await?
            }
        };
        if search_dropped {
            resp.headers_mut().insert(
                HEADER_WARNING.clone(),
                HeaderValue::from_static(SEARCH_DROPPED),
            );
        }
        Ok((resp, Some(ttfb)))
    }
}

/// The client's streamed response, carried by `relay` after `first`, what
/// [`Relay::first_ready`] read of it.
fn relayed(
    inbound: &Inbound<'_>,
    first: std::task::Poll<Option<Result<Bytes, std::io::Error>>>,
    relay: Relay,
) -> Response {
    let json_array = inbound.json_array_stream();
    let body = match first {
        std::task::Poll::Pending => Body::from_stream(relay),
        // The item read before the head, then the rest.
        std::task::Poll::Ready(first) => Body::from_stream(futures_util::StreamExt::chain(
            futures_util::stream::iter(first),
            relay,
        )),
    };
    let mut out = Response::new(body);
    *out.headers_mut() = answer_headers();
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

/// An answer's header map, made with room for what the gateway adds to it (content type, the
/// served model and route, six rate-limit headers, two request IDs): a map grown from empty
/// reallocated and rehashed on the way there.
fn answer_headers() -> http::HeaderMap {
    http::HeaderMap::with_capacity(16)
}

/// A 200 JSON answer.
pub(super) fn json_body(bytes: impl Into<Body>) -> Response {
    let mut out = Response::new(bytes.into());
    *out.status_mut() = StatusCode::OK;
    *out.headers_mut() = answer_headers();
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out
}
