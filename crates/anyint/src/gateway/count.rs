//! count_tokens (Anthropic `/v1/messages/count_tokens`, Gemini `:countTokens`, Responses
//! `/responses/input_tokens`) through the
//! gateway like any call: entitlement, then the attempt loop over the model's routes with
//! their breakers, retries and key rotation. A route of the client's own kind answers from
//! the upstream's count endpoint (relayed as it is); any other route answers with the
//! gateway's estimate from the canonical request, without an upstream call. Counting is free:
//! it takes no rate-limit slot and leaves no ledger row, as upstreams do not bill it.

use std::time::Duration;

use anyint_wire::json::RawObject;
use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;

use super::attempt::{self, Attempt, Retries, Work};
use crate::config::ModelConfig;
use crate::error::Error;
use crate::family::Family;
use crate::providers::{ForwardHeaders, ProviderAdapter};
use crate::state::AppState;
use crate::store::ApiKey;

/// A count request as its family sent it.
pub enum CountRequest<'a> {
    /// Anthropic Messages fields (no `max_tokens` needed) and the client's version and beta
    /// headers.
    Anthropic {
        /// The whole body.
        raw: &'a [u8],
        /// Its top-level fields.
        body: RawObject<'a>,
        /// The client's `anthropic-version` and `anthropic-beta`, forwarded to an Anthropic
        /// upstream's counter.
        forward: ForwardHeaders,
    },
    /// A Gemini body: a generateContent request, or one wrapped as `generateContentRequest`.
    Gemini {
        /// The whole body.
        raw: &'a [u8],
    },
    /// A Responses create body (`/responses/input_tokens`), stateless (history rebuilt).
    Responses {
        /// The whole body.
        raw: &'a [u8],
        /// Its head.
        head: anyint_wire::responses::RequestHead<'a>,
    },
}

impl CountRequest<'_> {
    fn family(&self) -> Family {
        match self {
            Self::Anthropic { .. } => Family::Anthropic,
            Self::Gemini { .. } => Family::Gemini,
            Self::Responses { .. } => Family::Responses,
        }
    }
}

struct CountWork<'a> {
    model: &'a str,
    request: &'a CountRequest<'a>,
}

impl Work for CountWork<'_> {
    type Output = Bytes;

    async fn run(&mut self, at: &Attempt<'_>) -> Result<(Bytes, Option<Duration>), Error> {
        let provider = at.provider;
        let upstream_model = at.route.upstream_model.as_str();
        let req = match (self.request, provider.adapter) {
            (CountRequest::Anthropic { body, forward, .. }, ProviderAdapter::Anthropic) => {
                let model_json = anyint_wire::json::json_string(upstream_model);
                crate::providers::anthropic::count_tokens_request(
                    provider,
                    &at.call,
                    body.encode_with(&[("model", &model_json)]),
                    forward,
                )
            }
            (CountRequest::Gemini { raw }, ProviderAdapter::Gemini) => {
                crate::providers::gemini::count_tokens_request(
                    provider,
                    &at.call,
                    upstream_model,
                    raw.to_vec(),
                )
            }
            (CountRequest::Responses { head, .. }, ProviderAdapter::OpenAiResponses) => {
                crate::providers::openai::input_tokens_request(
                    provider,
                    &at.call,
                    head.encode_upstream(upstream_model),
                )
            }
            (request, _) => {
                let web_search = provider.config.web_search;
                return Ok((estimate(request, self.model, web_search)?, None));
            }
        };
        // The client's own kind of upstream: its refusal reads as it was written.
        let bytes = provider
            .fetch(req)
            .await
            .map_err(crate::providers::http::in_upstream_words)?;
        Ok((bytes, Some(at.started.elapsed())))
    }
}

/// The gateway's own count, from the canonical request (a Responses `web_search` tool counts
/// where the provider serves it, `web_search`, and is refused elsewhere as on create).
fn estimate(request: &CountRequest<'_>, model: &str, web_search: bool) -> Result<Bytes, Error> {
    let out = match request {
        CountRequest::Anthropic { raw, body, forward } => {
            let version = forward.anthropic_version.as_deref().unwrap_or_default();
            // count_tokens has no max_tokens; the Messages decoder requires one.
            let with_max = if body.has("max_tokens") {
                raw.to_vec()
            } else {
                body.encode_with(&[("max_tokens", "1")])
            };
            let req = anyint_wire::anthropic::decode_request(&with_max, version)?;
            json!({"input_tokens": req.estimate_input_tokens()})
        }
        CountRequest::Gemini { raw } => {
            // The REST API also accepts the request wrapped as {"generateContentRequest": {...}}.
            let value: serde_json::Value = serde_json::from_slice(raw)
                .map_err(|e| Error::invalid(None, format!("invalid JSON: {e}")))?;
            let inner = value
                .get("generateContentRequest")
                .map_or_else(|| raw.to_vec(), |v| v.to_string().into_bytes());
            let req = anyint_wire::gemini::decode_request(&inner, model, false)?;
            json!({"totalTokens": req.estimate_input_tokens()})
        }
        CountRequest::Responses { raw, .. } => {
            let req = anyint_wire::responses::decode_request_with(raw, web_search)?;
            json!({"object": "response.input_tokens", "input_tokens": req.estimate_input_tokens()})
        }
    };
    Ok(Bytes::from(out.to_string()))
}

/// Counts the input tokens of `request` for model `model_id` on behalf of `key`: the count's
/// JSON body, and the model that answered it.
pub async fn count_tokens<'s>(
    state: &'s AppState,
    key: &ApiKey,
    model_id: &str,
    request: &CountRequest<'_>,
) -> Result<(Bytes, &'s ModelConfig), Error> {
    let model =
        crate::policy::entitlement::resolve(state.catalog(), key, model_id, request.family())?;
    let mut work = CountWork {
        model: model_id,
        request,
    };
    let retries = Retries {
        fallbacks: false,
        ..Retries::ALL
    };
    match attempt::run(state, (key, Instant::now()), model, retries, &mut work).await {
        Ok((bytes, _)) => Ok((bytes, model)),
        Err(failure) => Err(failure.error),
    }
}
