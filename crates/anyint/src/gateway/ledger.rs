//! A call's ledger row (chat or embedding): exactly one per authenticated request, keyed by its request ID,
//! for the final answer (never one per attempt): succeeded, refused, failed, or cut short.

use anyint_wire::Usage;
use tokio::time::Instant;

use super::attempt::Attempt;
use super::{ChatCall, Inbound};
use crate::config::RouteConfig;
use crate::error::Error;
use crate::providers::Provider;
use crate::state::AppState;
use crate::store::UsageRecord;

/// The row of `call` for `model`, through `via` when a route was tried.
fn row(
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
        web_searches: 0,
        status: 200,
        outcome: "ok".to_owned(),
        latency_ms: 0,
        created_at_ms: crate::clock::unix_millis(),
        cost_micros: 0,
        team: call.key.team.clone(),
    }
}

/// Milliseconds since `started`.
pub(super) fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// Puts the upstream's reported usage in the row.
pub(super) fn set_usage(row: &mut UsageRecord, u: &Usage) {
    row.prompt_tokens = i64::try_from(u.input_tokens).unwrap_or(i64::MAX);
    row.completion_tokens = i64::try_from(u.output_tokens).unwrap_or(i64::MAX);
    row.cache_read_tokens = i64::try_from(u.cache_read_tokens).unwrap_or(i64::MAX);
    row.cache_write_tokens = i64::try_from(u.cache_write_tokens).unwrap_or(i64::MAX);
    row.web_searches = i64::try_from(u.web_searches).unwrap_or(i64::MAX);
}

/// A client-supplied model name made safe for the ledger: no control characters (Postgres
/// rejects NUL in text) and at most 128 characters.
fn ledger_model(requested: &str) -> String {
    requested
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect()
}

/// Records the ledger row of a request that failed before streaming.
pub(super) fn record_failure(
    state: &AppState,
    call: &ChatCall,
    model: &str,
    stream: bool,
    via: Option<(&Provider, &RouteConfig)>,
    e: &Error,
) {
    let mut row = row(call, &ledger_model(model), stream, via);
    row.status = i64::from(e.status().as_u16());
    e.kind.as_str().clone_into(&mut row.outcome);
    row.latency_ms = elapsed_ms(call.started);
    state.meter.record(row);
}

/// The ledger row of an embedding attempt that answered: `tokens` input tokens (the
/// upstream's count, or the gateway's estimate where the upstream reports none).
pub(super) fn embed_row(call: &ChatCall, at: &Attempt<'_>, tokens: u64) -> UsageRecord {
    let mut row = row(call, &at.model.id, false, Some((at.provider, at.route)));
    row.prompt_tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
    row.latency_ms = elapsed_ms(call.started);
    row
}

/// The ledger row of an attempt, its input billed on the admission estimate until the
/// upstream reports usage.
pub(super) fn attempt_row(call: &ChatCall, inbound: &Inbound<'_>, at: &Attempt<'_>) -> UsageRecord {
    let mut row = row(
        call,
        &at.model.id,
        inbound.stream,
        Some((at.provider, at.route)),
    );
    row.prompt_tokens = i64::try_from(inbound.input_estimate()).unwrap_or(i64::MAX);
    row
}
