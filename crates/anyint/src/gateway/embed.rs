//! Embeddings through the one pipeline: entitlement for an embedding model, the policy step
//! (caps, then limits, tokens per minute counting the input tokens), the attempt loop (routes,
//! retries, fallbacks, breakers, key rotation) with [`EmbedWork`], and one ledger row.
//!
//! One attempt, by client family and upstream kind:
//! - OpenAI client → `openai` upstream: passthrough (`model` rewritten, the answer's bytes
//!   unchanged; token arrays go through); the ledger takes the answer's `usage`.
//! - OpenAI client → `gemini` upstream: one `batchEmbedContents` entry per input, at most 100
//!   per call, calls made in order and their vectors concatenated; vectors L2-normalised when
//!   `dimensions` shortened them; token arrays are a 400 (no tokenizer to turn them into text).
//! - Gemini client → `gemini` upstream: passthrough with each `model` field rewritten, same
//!   method.
//! - Gemini client → `openai` upstream: `input` with one string per request, the answer as
//!   `embedding` / `embeddings`.
//!
//! Gemini reports no usage, so its calls are billed on the gateway's estimate (token ids count
//! one each, text about four characters a token, at least one per input).

use std::time::Duration;

use anyint_wire::embeddings::{self, EmbedRequest, EmbedResponse, gemini, openai};
use axum::response::Response;
use bytes::Bytes;

use super::attempt::{Attempt, Work};
use super::{ChatCall, RequestLog, Served};
use crate::config::ModelApi;
use crate::error::{Error, ErrorKind};
use crate::providers::ProviderAdapter;
use crate::providers::http::Reply;
use crate::state::AppState;

/// The family an embedding request came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbedClient {
    /// `POST /openai/v1/embeddings`.
    OpenAi,
    /// Gemini `:embedContent` or `:batchEmbedContents`.
    Gemini(gemini::Method),
}

/// A decoded embedding request.
pub struct EmbedInbound<'a> {
    /// The raw body (passed through to an upstream of the client's kind).
    pub body: &'a [u8],
    /// Which family it came in.
    pub client: EmbedClient,
    /// The decoded request.
    pub request: EmbedRequest,
}

/// Serves one embedding request; `inbound` is the family's decode of the body (or its error).
pub async fn embed(
    state: &AppState,
    call: ChatCall,
    inbound: Result<EmbedInbound<'_>, Error>,
) -> (Result<Response, Error>, RequestLog) {
    let inbound = match inbound {
        Ok(i) => i,
        Err(e) => return super::refused(state, &call, e),
    };
    let served = Served {
        model: &inbound.request.model,
        api: ModelApi::Embedding,
        stream: false,
        estimate: usize::try_from(inbound.request.estimate_tokens()).unwrap_or(usize::MAX),
    };
    let mut work = EmbedWork {
        state,
        call: &call,
        inbound: &inbound,
    };
    super::serve(state, &call, &served, &mut work).await
}

/// An embedding call's attempts.
struct EmbedWork<'a> {
    state: &'a AppState,
    call: &'a ChatCall,
    inbound: &'a EmbedInbound<'a>,
}

/// The 503 for an upstream answer the gateway cannot read (or one with the wrong number of
/// vectors).
fn unreadable(at: &Attempt<'_>, what: &str) -> Error {
    Error::new(
        ErrorKind::UpstreamProtocol,
        "the upstream provider sent a response the gateway could not read; retry the request",
    )
    .with_code("upstream_unavailable")
    .with_cause(format!("provider {}: {what}", at.provider.config.name))
}

impl EmbedWork<'_> {
    /// One upstream call; its whole body and the time to it.
    async fn exchange(
        at: &Attempt<'_>,
        req: crate::providers::http::Request,
    ) -> Result<(Bytes, Duration), Error> {
        match at
            .provider
            .exchange(req, false, at.deadlines, at.started)
            .await?
        {
            (Reply::Body(bytes), ttfb) => Ok((bytes, ttfb)),
            (Reply::Stream(_), _) => Err(unreadable(at, "a stream answered an embedding call")),
        }
    }

    /// An OpenAI client's request on a Gemini upstream: batches of at most 100, in order.
    async fn openai_on_gemini(&self, at: &Attempt<'_>) -> Result<(Vec<u8>, Duration), Error> {
        let req = &self.inbound.request;
        let upstream_model = at.route.upstream_model.as_str();
        let batches = gemini::encode_batches(req, upstream_model)?;
        let mut answer = EmbedResponse::default();
        let mut first = None;
        for body in batches {
            let http = crate::providers::gemini::embed_request(
                at.provider,
                &at.call,
                upstream_model,
                gemini::Method::Batch.action(),
                body,
            );
            let (bytes, ttfb) = Self::exchange(at, http).await?;
            first.get_or_insert(ttfb);
            let part = gemini::decode_response(&bytes).map_err(|e| unreadable(at, &e.message))?;
            answer.vectors.extend(part.vectors);
        }
        if answer.vectors.len() != req.items.len() {
            return Err(unreadable(
                at,
                "the answer has a vector count unlike the inputs'",
            ));
        }
        embeddings::normalize_shortened(req, &mut answer);
        let out =
            openai::encode_response(&answer, &at.model.id, req.encoding, req.estimate_tokens());
        Ok((out, first.unwrap_or_default()))
    }
}

impl Work for EmbedWork<'_> {
    type Output = Response;

    async fn run(&mut self, at: &Attempt<'_>) -> Result<(Response, Option<Duration>), Error> {
        let (provider, upstream_model) = (at.provider, at.route.upstream_model.as_str());
        let req = &self.inbound.request;
        let estimate = req.estimate_tokens();
        let openai_upstream = matches!(
            provider.adapter,
            ProviderAdapter::OpenAi | ProviderAdapter::OpenAiResponses
        );
        let (body, tokens, ttfb) = match self.inbound.client {
            EmbedClient::OpenAi if openai_upstream => {
                let raw = anyint_wire::json::RawObject::decode(self.inbound.body)?;
                let model_json = anyint_wire::json::json_string(upstream_model);
                let http = crate::providers::openai::embeddings_request(
                    provider,
                    &at.call,
                    raw.encode_with(&[("model", &model_json)]),
                );
                let (bytes, ttfb) = Self::exchange(at, http).await?;
                let tokens = openai::usage_from_response(&bytes).unwrap_or(estimate);
                (bytes, tokens, ttfb)
            }
            EmbedClient::OpenAi if provider.adapter == ProviderAdapter::Gemini => {
                let (out, ttfb) = self.openai_on_gemini(at).await?;
                (Bytes::from(out), estimate, ttfb)
            }
            EmbedClient::Gemini(method) if provider.adapter == ProviderAdapter::Gemini => {
                let http = crate::providers::gemini::embed_request(
                    provider,
                    &at.call,
                    upstream_model,
                    method.action(),
                    gemini::rewrite_models(self.inbound.body, upstream_model)?,
                );
                let (bytes, ttfb) = Self::exchange(at, http).await?;
                (bytes, estimate, ttfb)
            }
            EmbedClient::Gemini(method) if openai_upstream => {
                let http = crate::providers::openai::embeddings_request(
                    provider,
                    &at.call,
                    openai::encode_request(req, upstream_model)?,
                );
                let (bytes, ttfb) = Self::exchange(at, http).await?;
                let answer =
                    openai::decode_response(&bytes).map_err(|e| unreadable(at, &e.message))?;
                if answer.vectors.len() != req.items.len() {
                    return Err(unreadable(
                        at,
                        "the answer has a vector count unlike the inputs'",
                    ));
                }
                let tokens = answer.prompt_tokens.unwrap_or(estimate);
                (
                    Bytes::from(gemini::encode_response(&answer, method)),
                    tokens,
                    ttfb,
                )
            }
            // Config validation keeps embedding models on `openai` and `gemini` providers.
            EmbedClient::OpenAi | EmbedClient::Gemini(_) => {
                return Err(Error::internal(format!(
                    "provider {} has no embeddings API",
                    provider.config.name
                )));
            }
        };
        self.state
            .meter
            .record(super::ledger::embed_row(self.call, at, tokens));
        Ok((super::execute::json_body(body), Some(ttfb)))
    }
}
