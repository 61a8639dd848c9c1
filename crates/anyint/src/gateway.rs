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
use http::{HeaderValue, StatusCode, header};
use tokio::time::Instant;

use crate::config::{Deadlines, ModelConfig, RouteConfig, RoutingConfig};
use crate::error::{Error, ErrorKind};
use crate::families::Family;
use crate::meter::tap::{ErrorFrame, Mode, UsageTap};
use crate::providers::{Call, ForwardHeaders, Provider, ProviderAdapter};
use crate::router::balance::Rng;
use crate::router::retry::{self, Class};
use crate::router::{Outcome, Router};
use crate::server::AppState;
use crate::store::{ApiKey, UsageRecord};
use crate::telemetry::{METRIC_FALLBACKS, METRIC_RETRIES, METRIC_UPSTREAM_ERRORS, RequestLog};

/// Response header naming the model that served the request (differs after a fallback).
pub const HEADER_SERVED_MODEL: &str = "x-anyint-served-model";
/// Response header naming the route that served it: `provider/upstream_model`, no secrets.
pub const HEADER_ROUTE: &str = "x-anyint-route";
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
        rate: None,
        tokens: None,
    };
    let inbound = match inbound {
        Ok(i) => i,
        Err(e) => {
            record_failure(state, &call, "", false, None, &e);
            return (Err(e), log);
        }
    };
    let model =
        match crate::policy::entitlement::resolve(state, &call.key, &inbound.model, call.family) {
            Ok(m) => m,
            Err(e) => {
                record_failure(state, &call, &inbound.model, inbound.stream, None, &e);
                return (Err(e), log);
            }
        };
    // Only configured IDs reach metric labels: a client cannot mint new series.
    log.model = Some(model.id.clone());
    let dir = state.directory.get();
    if let Err(e) = state.spend.check(&dir, &call.key) {
        record_failure(state, &call, &model.id, inbound.stream, None, &e);
        return (Err(e), log);
    }
    let scopes = dir.scopes(&call.key);
    // Admitted on an estimate of the input (about four bytes a token); settled on the real
    // usage when the ledger row is written.
    let estimate = u32::try_from(inbound.input_estimate())
        .unwrap_or(u32::MAX)
        .max(1);
    match crate::policy::admit(
        state.limiter.as_ref(),
        state.config.limits.fail_open,
        &scopes,
        estimate,
    )
    .await
    {
        Ok(admission) => {
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
        }
        Err(refusal) => {
            log.rate = refusal.rate;
            record_failure(
                state,
                &call,
                &inbound.model,
                inbound.stream,
                None,
                &refusal.error,
            );
            return (Err(refusal.error), log);
        }
    }
    (route(state, &call, &inbound, model).await, log)
}

/// Everything one attempt needs: where it goes and under which limits.
struct Attempt<'a> {
    model: &'a ModelConfig,
    route: &'a RouteConfig,
    provider: &'a Provider,
    call: Call<'a>,
    deadlines: Deadlines,
    started: Instant,
}

impl Attempt<'_> {
    /// The error for a call that got no response headers in time.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, Error> {
        // Non-streamed completions send their first byte only when generation is done, so for
        // them this limit bounds the whole generation (documented with `ttfb_timeout_ms`).
        match tokio::time::timeout(self.deadlines.ttfb, send(self.provider, req)).await {
            Ok(r) => r,
            Err(_) => Err(crate::providers::http::ttfb_timeout(
                &self.provider.config.name,
            )),
        }
    }

    /// Checks that a stream request got a stream and waits for its first bytes.
    async fn open_stream(
        &self,
        resp: reqwest::Response,
    ) -> Result<(crate::providers::http::UpstreamStream, std::time::Duration), Error> {
        if !is_sse(&resp) {
            return Err(not_a_stream(self.provider));
        }
        let name = &self.provider.config.name;
        let upstream =
            crate::providers::http::open_stream(name, resp, self.ttfb_left(), self.deadlines.idle)
                .await?;
        Ok((upstream, self.started.elapsed()))
    }

    /// What is left of the time-to-first-byte limit.
    fn ttfb_left(&self) -> std::time::Duration {
        self.deadlines.ttfb.saturating_sub(self.started.elapsed())
    }

    fn route_label(&self) -> String {
        format!(
            "{}/{}",
            self.provider.config.name, self.route.upstream_model
        )
    }
}

/// The per-call limits: the model's overrides, else the provider's.
fn deadlines(model: &ModelConfig, provider: &Provider) -> Deadlines {
    let p = provider.config.deadlines;
    Deadlines {
        ttfb: model.ttfb_timeout.unwrap_or(p.ttfb),
        idle: model.idle_timeout.unwrap_or(p.idle),
        total: model.total_timeout.unwrap_or(p.total),
    }
}

/// The model and then its fallbacks that this key may use.
fn model_chain<'a>(
    state: &'a AppState,
    key: &ApiKey,
    model: &'a ModelConfig,
) -> Vec<&'a ModelConfig> {
    let mut chain = vec![model];
    for f in &model.fallbacks {
        if let Some(m) = state.config.model(f)
            && crate::policy::entitlement::allows(state, key, &m.id)
            && !chain.iter().any(|c| c.id == m.id)
        {
            chain.push(m);
        }
    }
    chain
}

/// One model's route search within a request: what was tried, which keys are spent, and
/// whether the next attempt goes back to the same route.
#[derive(Default)]
struct Search {
    tried: Vec<usize>,
    spent_keys: Vec<(usize, usize)>,
    again: Option<usize>,
    waits: u32,
}

impl Search {
    fn next(&mut self, router: &Router, m: &ModelConfig, rng: &mut Rng) -> Option<usize> {
        self.again
            .take()
            .or_else(|| router.pick(m, &self.tried, rng))
    }

    /// A key slot for route `idx` that this request has not found spent.
    fn key_slot(&self, states: &crate::router::RouteState, idx: usize, keys: usize) -> usize {
        // Rotate from a shared cursor, then scan every key in order, so a spent key is never
        // picked while an unspent one remains.
        let start = states.next_key_slot();
        (0..keys)
            .map(|i| start.wrapping_add(i) % keys.max(1))
            .find(|s| !self.spent_keys.contains(&(idx, *s)))
            .unwrap_or(0)
    }

    /// Decides what follows a retryable failure of route `idx`, waiting when the same route is
    /// the only way left and the wait fits the budget.
    async fn after_failure(
        &mut self,
        (cfg, router): (&RoutingConfig, &Router),
        m: &ModelConfig,
        failed: Failed,
        budget: RetryBudget<'_>,
    ) {
        let Failed {
            idx,
            slot,
            keys,
            class,
        } = failed;
        let after = match class {
            Class::Client => return,
            Class::QuotaExhausted | Class::KeyRejected => {
                self.spent_keys.push((idx, slot));
                if (0..keys).any(|k| !self.spent_keys.contains(&(idx, k))) {
                    self.again = Some(idx);
                } else {
                    self.tried.push(idx);
                }
                return;
            }
            Class::RouteBroken => {
                self.tried.push(idx);
                return;
            }
            Class::Throttled(after) | Class::Unavailable(after) => after,
            Class::Timeout => None,
        };
        self.tried.push(idx);
        // Other routes first, then fallback models; waiting on this route is the last resort.
        if router.has_candidate(m, &self.tried)
            || budget.fallbacks_left
            || budget.attempts >= cfg.max_attempts
        {
            return;
        }
        let wait = after.unwrap_or_else(|| {
            retry::backoff(self.waits, cfg.backoff_base, cfg.backoff_max, budget.rng)
        });
        if Instant::now()
            .checked_add(wait)
            .is_some_and(|t| t < budget.end)
        {
            tokio::time::sleep(wait).await;
            self.tried.retain(|&i| i != idx);
            self.waits += 1;
        }
    }
}

#[cfg(test)]
mod tests;

/// Which attempt failed and how.
#[derive(Clone, Copy)]
struct Failed {
    idx: usize,
    slot: usize,
    keys: usize,
    class: Class,
}

/// What is left of a request's retry allowance.
struct RetryBudget<'a> {
    end: Instant,
    attempts: u32,
    fallbacks_left: bool,
    rng: &'a mut Rng,
}

/// Marks a successful response with the model and route that served it.
fn served(mut resp: Response, m: &ModelConfig, at: &Attempt<'_>) -> Response {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&m.id) {
        h.insert(HEADER_SERVED_MODEL, v);
    }
    if let Ok(v) = HeaderValue::from_str(&at.route_label()) {
        h.insert(HEADER_ROUTE, v);
    }
    resp
}

/// Runs one attempt through passthrough or translation.
async fn execute(
    state: &AppState,
    call: &ChatCall,
    inbound: &Inbound<'_>,
    at: &Attempt<'_>,
    canonical: &mut Option<ChatRequest>,
) -> Result<(Response, std::time::Duration), Error> {
    match plan(call.family, at.provider.adapter) {
        Plan::Passthrough => passthrough(state, call, inbound, at).await,
        Plan::Translate => {
            let req = match canonical {
                Some(r) => r.clone(),
                None => canonical
                    .insert(translate::decode_request(inbound.shape(), inbound.body)?)
                    .clone(),
            };
            translated(state, call, inbound, at, req).await
        }
    }
}

/// Builds the next attempt on route `idx` of `m`: its provider, key slot and limits.
fn prepare<'a>(
    state: &'a AppState,
    m: &'a ModelConfig,
    idx: usize,
    search: &Search,
) -> Option<(Attempt<'a>, usize)> {
    let route = m.routes.get(idx)?;
    let states = state.router.state(&m.id, idx)?;
    let provider = state.providers.get(route.provider)?;
    let slot = search.key_slot(states, idx, provider.config.api_keys.len());
    let limits = deadlines(m, provider);
    let call = Call {
        key: provider.key(slot),
        total: limits.total,
    };
    Some((
        Attempt {
            model: m,
            route,
            provider,
            call,
            deadlines: limits,
            started: Instant::now(),
        },
        slot,
    ))
}

/// Records a failed attempt in the router and metrics; returns its class.
fn note_failure(guard: crate::router::AttemptGuard<'_>, at: &Attempt<'_>, e: &Error) -> Class {
    let class = retry::classify(e);
    let outcome = if class.counts_against_route() {
        Outcome::Failure
    } else {
        Outcome::Neutral
    };
    guard.end(outcome);
    if e.kind.fault() == crate::error::Fault::Upstream {
        metrics::counter!(METRIC_UPSTREAM_ERRORS, "provider" => at.provider.config.name.clone(), "kind" => e.kind.as_str()).increment(1);
    }
    class
}

/// Tries routes (and then fallback models) until one answers, retrying retryable failures
/// before the first byte within the attempt limit and time budget; meters exactly once.
async fn route(
    state: &AppState,
    call: &ChatCall,
    inbound: &Inbound<'_>,
    model: &ModelConfig,
) -> Result<Response, Error> {
    let cfg = state.config.routing;
    let budget_end = call.started + cfg.retry_budget;
    let mut rng = state.router.rng();
    let mut canonical: Option<ChatRequest> = None;
    let mut failures: Vec<Error> = Vec::new();
    let mut last_via: Option<(&Provider, &RouteConfig, &ModelConfig)> = None;
    let mut attempts = 0u32;
    let chain = model_chain(state, &call.key, model);
    'models: for (position, m) in chain.iter().copied().enumerate() {
        let mut search = Search::default();
        // Retries stop at the attempt limit or when the time budget is spent.
        while attempts < cfg.max_attempts && (attempts == 0 || Instant::now() < budget_end) {
            let Some(idx) = search.next(&state.router, m, &mut rng) else {
                continue 'models;
            };
            let Some((at, slot)) = prepare(state, m, idx, &search) else {
                continue 'models;
            };
            attempts += 1;
            if attempts > 1 {
                metrics::counter!(METRIC_RETRIES, "model" => model.id.clone()).increment(1);
            }
            let guard = state.router.begin(&m.id, idx);
            let e = match execute(state, call, inbound, &at, &mut canonical).await {
                Ok((resp, ttfb)) => {
                    guard.end(Outcome::Success(ttfb));
                    if m.id != model.id {
                        metrics::counter!(METRIC_FALLBACKS, "model" => model.id.clone(), "served" => m.id.clone()).increment(1);
                    }
                    return Ok(served(resp, m, &at));
                }
                Err(e) => e,
            };
            let class = note_failure(guard, &at, &e);
            last_via = Some((at.provider, at.route, m));
            if class == Class::Client {
                record_failure(
                    state,
                    call,
                    &m.id,
                    inbound.stream,
                    Some((at.provider, at.route)),
                    &e,
                );
                return Err(e);
            }
            let failed = Failed {
                idx,
                slot,
                keys: at.provider.config.api_keys.len(),
                class,
            };
            search
                .after_failure(
                    (&cfg, &state.router),
                    m,
                    failed,
                    RetryBudget {
                        end: budget_end,
                        attempts,
                        fallbacks_left: position + 1 < chain.len(),
                        rng: &mut rng,
                    },
                )
                .await;
            failures.push(e);
        }
        break;
    }
    let e = retry::exhausted(failures);
    let served_model = last_via.map_or(model.id.as_str(), |(_, _, m)| m.id.as_str());
    record_failure(
        state,
        call,
        served_model,
        inbound.stream,
        last_via.map(|(p, r, _)| (p, r)),
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
        cost_micros: 0,
        team: call.key.team.clone(),
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
/// A client-supplied model name made safe for the ledger: no control characters (Postgres
/// rejects NUL in text) and at most 128 characters.
fn ledger_model(requested: &str) -> String {
    requested
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect()
}

fn record_failure(
    state: &AppState,
    call: &ChatCall,
    model: &str,
    stream: bool,
    via: Option<(&Provider, &RouteConfig)>,
    e: &Error,
) {
    let mut row = ledger_row(call, &ledger_model(model), stream, via);
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

/// The ledger row of an attempt, its input billed on the admission estimate until the
/// upstream reports usage.
fn attempt_row(call: &ChatCall, inbound: &Inbound<'_>, at: &Attempt<'_>) -> UsageRecord {
    let mut row = ledger_row(
        call,
        &at.model.id,
        inbound.stream,
        Some((at.provider, at.route)),
    );
    row.prompt_tokens = i64::try_from(inbound.input_estimate()).unwrap_or(i64::MAX);
    row
}

/// Streams an upstream answer to the client through the metering tap, which writes `row`
/// when the stream ends and holds the admission's permits until its last byte.
fn tapped_stream(
    state: &AppState,
    call: &ChatCall,
    inbound: &Inbound<'_>,
    upstream: crate::providers::http::UpstreamStream,
    mode: Mode,
    row: UsageRecord,
) -> Response {
    let json_array = inbound.json_array_stream();
    let tap = UsageTap::new(
        upstream,
        mode,
        json_array,
        (state.meter.clone(), row, call.started),
        call.error_frame,
    )
    .holding(call.take_hold());
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
    at: &Attempt<'_>,
) -> Result<(Response, std::time::Duration), Error> {
    let (provider, route) = (at.provider, at.route);
    let upstream_model = route.upstream_model.as_str();
    let none = ForwardHeaders::default();
    let (body, forward) = match &inbound.head {
        Head::OpenAi(h) => (h.encode_upstream(upstream_model), &none),
        Head::Anthropic { body, forward } => {
            let model_json = anyint_wire::json::json_string(upstream_model);
            (body.encode_with(&[("model", &model_json)]), forward)
        }
        Head::Gemini { .. } => (inbound.body.to_vec(), &none),
    };
    let resp = at
        .send(provider.chat_request(&at.call, upstream_model, body, inbound.stream, forward))
        .await?;
    let mut row = attempt_row(call, inbound, at);
    if inbound.stream {
        let (upstream, ttfb) = at.open_stream(resp).await?;
        let mode = match &inbound.head {
            Head::OpenAi(h) => Mode::OpenAi {
                strip_usage: !h.include_usage,
            },
            Head::Anthropic { .. } => Mode::Anthropic,
            Head::Gemini { sse } => Mode::Gemini { array: !sse },
        };
        return Ok((
            tapped_stream(state, call, inbound, upstream, mode, row),
            ttfb,
        ));
    }
    let ttfb = at.started.elapsed();
    let bytes = crate::providers::http::read_body(&provider.config.name, resp).await?;
    let usage = match provider.adapter {
        ProviderAdapter::OpenAi | ProviderAdapter::DashScope | ProviderAdapter::Music => {
            anyint_wire::openai::usage_from_response(&bytes)
        }
        ProviderAdapter::Anthropic => anyint_wire::anthropic::usage_from_response(&bytes),
        ProviderAdapter::Gemini => anyint_wire::gemini::usage_from_response(&bytes),
    };
    set_usage(&mut row, &usage.unwrap_or_default());
    row.latency_ms = elapsed_ms(call.started);
    state.meter.record(row);
    Ok((json_body(bytes), ttfb))
}

async fn translated(
    state: &AppState,
    call: &ChatCall,
    inbound: &Inbound<'_>,
    at: &Attempt<'_>,
    mut req: ChatRequest,
) -> Result<(Response, std::time::Duration), Error> {
    let (provider, route, model) = (at.provider, at.route, at.model);
    let estimate = req.estimate_input_tokens();
    req.model.clone_from(&route.upstream_model);
    req.stream = inbound.stream;
    let body = translate::encode_request(provider.adapter, &req)?;
    let forward = ForwardHeaders::default();
    let resp = at
        .send(provider.chat_request(
            &at.call,
            &route.upstream_model,
            body,
            inbound.stream,
            &forward,
        ))
        .await?;
    let mut row = attempt_row(call, inbound, at);
    if inbound.stream {
        let (upstream, ttfb) = at.open_stream(resp).await?;
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
        let mode = Mode::Translate(Box::new(translator));
        return Ok((
            tapped_stream(state, call, inbound, upstream, mode, row),
            ttfb,
        ));
    }
    let ttfb = at.started.elapsed();
    let bytes = crate::providers::http::read_body(&provider.config.name, resp).await?;
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
    Ok((
        json_body(translate::encode_response(call.family, &canonical)),
        ttfb,
    ))
}
