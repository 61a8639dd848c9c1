//! The request pipeline, as plain async steps in a visible order:
//!
//! 1. [`admission`]: the one policy step (entitlement, caps, limits) every call takes;
//! 2. [`attempt`]: the one attempt loop (routes, retries, fallbacks, breakers, key rotation);
//! 3. [`execute`]: one attempt of a chat call: [`plan`] passthrough or translation, one
//!    upstream call that returns a body or a stream, and the answer in the client's family;
//! 4. [`relay`]: the one stream path, upstream frames → usage tap → stream stage → client;
//! 5. [`ledger`]: the call's ledger row, exactly one per authenticated request.
//!
//! [`count`] serves count_tokens through the same steps, and [`embed`] embeddings (its own
//! [`Work`](attempt::Work) behind the same [`serve`]). Translation itself (codecs and the
//! translating stream stage) lives in `anyint_wire::translate`; the gateway only chooses it.

pub mod admission;
pub mod attempt;
pub mod count;
pub mod embed;
pub mod execute;
pub mod ledger;
pub mod relay;
pub mod responses;

use std::sync::Arc;

use anyint_wire::json::RawObject;
use anyint_wire::openai::ChatRequestHead;
use anyint_wire::translate::ClientShape;
use axum::response::Response;
use http::HeaderName;
use tokio::time::Instant;

use crate::config::ModelApi;
use crate::error::Error;
use crate::family::Family;
use crate::providers::{ForwardHeaders, ProviderAdapter};
use crate::state::AppState;
use crate::store::ApiKey;

/// Response header naming the model that served the request (differs after a fallback). The
/// response headers are made once: a `&str` name is copied into a new one on every insert.
pub static HEADER_SERVED_MODEL: HeaderName = HeaderName::from_static("x-anyint-served-model");
/// Response header naming the route that served it: `provider/upstream_model`, no secrets.
pub static HEADER_ROUTE: HeaderName = HeaderName::from_static("x-anyint-route");
/// Response header saying what the gateway could not do for the request although it answered
/// (a hosted web search an upstream cannot combine with function tools).
pub static HEADER_WARNING: HeaderName = HeaderName::from_static("x-anyint-warning");

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
    pub error_frame: relay::ErrorFrame,
    /// The concurrency slot admission granted; a stream takes it so it is held to the last
    /// byte, otherwise it is released when the call ends.
    pub hold: std::sync::Mutex<Vec<crate::policy::limits::Permit>>,
}

impl ChatCall {
    fn take_hold(&self) -> Vec<crate::policy::limits::Permit> {
        self.hold
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default()
    }
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
    /// OpenAI Responses: the validated head, what the answer echoes, and the conversation
    /// to store with it (`store: true`).
    Responses {
        /// The head of the (stateless) body.
        head: anyint_wire::responses::RequestHead<'a>,
        /// The request as the Response object echoes it, with the minted response ID.
        echo: &'a anyint_wire::responses::Echo,
        /// The conversation to store with the answer, when the client asked to store it.
        keep: Option<&'a responses::Conversation>,
    },
}

/// A decoded-enough client request.
pub struct Inbound<'a> {
    /// The raw body (shared, so a passthrough can send slices of it).
    pub body: &'a bytes::Bytes,
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
                betas: forward.anthropic_beta.as_deref().unwrap_or_default(),
            },
            Head::Gemini { sse } => ClientShape::Gemini {
                model: &self.model,
                stream: self.stream,
                sse: *sse,
            },
            Head::Responses { echo, .. } => ClientShape::Responses { echo },
        }
    }

    fn include_usage(&self) -> bool {
        matches!(&self.head, Head::OpenAi(h) if h.include_usage)
    }

    fn json_array_stream(&self) -> bool {
        self.stream && matches!(self.head, Head::Gemini { sse: false })
    }

    /// The input estimate admission uses and a ledger row bills until the upstream reports
    /// usage: about four bytes a token.
    fn input_estimate(&self) -> usize {
        self.body.len() / 4
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
        | (Family::Responses, ProviderAdapter::OpenAiResponses)
        | (Family::Anthropic, ProviderAdapter::Anthropic)
        | (Family::Gemini, ProviderAdapter::Gemini) => Plan::Passthrough,
        (Family::OpenAi | Family::Responses | Family::Anthropic | Family::Gemini, _) => {
            Plan::Translate
        }
    }
}

/// Serves one chat request. `inbound` is the family's cheap decode of the body (or its error).
pub async fn chat(
    state: &AppState,
    call: ChatCall,
    inbound: Result<Inbound<'_>, Error>,
) -> (Result<Response, Error>, RequestLog) {
    let inbound = match inbound {
        Ok(i) => i,
        Err(e) => return refused(state, &call, e),
    };
    // Admitted on an estimate of the input (about four bytes a token); settled on the real
    // usage when the ledger row is written.
    let served = Served {
        model: &inbound.model,
        api: ModelApi::Chat,
        stream: inbound.stream,
        estimate: inbound.input_estimate(),
    };
    let mut work = execute::ChatWork::new(state, &call, &inbound);
    serve(state, &call, &served, &mut work).await
}

/// A request refused before its model was resolved (its body could not be read): its ledger
/// row and the error.
pub(crate) fn refused(
    state: &AppState,
    call: &ChatCall,
    e: Error,
) -> (Result<Response, Error>, RequestLog) {
    ledger::record_failure(state, call, "", false, None, &e);
    let log = RequestLog {
        key_id: Some(call.key.id.clone()),
        ..RequestLog::default()
    };
    (Err(e), log)
}

/// What [`serve`] needs to know about a decoded request.
pub(crate) struct Served<'a> {
    /// The public model asked for.
    pub model: &'a str,
    /// What the request is (chat or embedding): a model serving something else is a 400.
    pub api: ModelApi,
    /// Whether the client wants a stream.
    pub stream: bool,
    /// The input tokens admission counts until the ledger row settles them.
    pub estimate: usize,
}

/// The steps every generation call takes once its request is decoded: entitlement for the
/// request's API, the policy step (caps, then limits on the input estimate), the attempt loop
/// with `work`, and the ledger row of a failure (a success's row is written by `work`).
pub(crate) async fn serve<W: attempt::Work<Output = Response>>(
    state: &AppState,
    call: &ChatCall,
    req: &Served<'_>,
    work: &mut W,
) -> (Result<Response, Error>, RequestLog) {
    let mut log = RequestLog {
        model: None,
        key_id: Some(call.key.id.clone()),
        rate: None,
        tokens: None,
    };
    let model = match crate::policy::entitlement::resolve_serving(
        state.catalog(),
        &call.key,
        req.model,
        req.api,
        call.family,
    ) {
        Ok(m) => m,
        Err(e) => {
            ledger::record_failure(state, call, req.model, req.stream, None, &e);
            return (Err(e), log);
        }
    };
    // Only configured IDs reach metric labels: a client cannot mint new series.
    log.model = Some(model.id.clone());
    let estimate = u32::try_from(req.estimate).unwrap_or(u32::MAX).max(1);
    let admission = match admission::admit(state, &call.key, estimate).await {
        Ok(a) => a,
        Err(refusal) => {
            log.rate = refusal.rate;
            ledger::record_failure(state, call, &model.id, req.stream, None, &refusal.error);
            return (Err(refusal.error), log);
        }
    };
    log.rate = admission.rate;
    log.tokens = admission.tokens;
    if !admission.settle.is_empty() {
        state
            .meter
            .expect_usage(&call.request_id, estimate, admission.settle);
    }
    if let Ok(mut hold) = call.hold.lock() {
        *hold = admission.permits;
    }
    let result = attempt::run(
        state,
        (&call.key, call.started),
        model,
        attempt::Retries::ALL,
        work,
    )
    .await;
    match result {
        Ok((resp, via)) => (Ok(served(resp, &via)), log),
        Err(attempt::Failure { error, via }) => {
            let served_model = via.map_or(model.id.as_str(), |v| v.model.id.as_str());
            ledger::record_failure(
                state,
                call,
                served_model,
                req.stream,
                via.map(|v| (v.provider, v.route)),
                &error,
            );
            (Err(error), log)
        }
    }
}

/// Marks a successful response with the model and route that served it.
fn served(mut resp: Response, via: &attempt::Via<'_>) -> Response {
    let h = resp.headers_mut();
    let [model, route] = via.state.served_headers();
    if let Some(v) = model {
        h.insert(HEADER_SERVED_MODEL.clone(), v.clone());
    }
    if let Some(v) = route {
        h.insert(HEADER_ROUTE.clone(), v.clone());
    }
    resp
}
