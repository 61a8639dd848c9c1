//! The one attempt loop every upstream call goes through (chat, count_tokens, task creation):
//! pick a route, try it, and on a retryable failure before anything reached the client try
//! another route, then the model's fallbacks, then (budget permitting) the same route after a
//! backoff or the upstream's `retry-after`. Each attempt updates its route's breaker and
//! latency estimate, and rotates through the provider's keys, skipping keys found spent.
//!
//! What one attempt does is the caller's [`Work`]; how far retries go is its [`Retries`].

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Deadlines, ModelConfig, RouteConfig, RoutingConfig};
use crate::error::Error;
use crate::providers::{Call, Provider};
use crate::router::balance::Rng;
use crate::router::retry::{self, Class};
use crate::router::{Outcome, Router};
use crate::state::AppState;
use crate::store::ApiKey;
use crate::telemetry::{METRIC_FALLBACKS, METRIC_RETRIES, METRIC_UPSTREAM_ERRORS};

/// Everything one attempt needs: where it goes and under which limits.
pub struct Attempt<'a> {
    /// The model being served (the requested one, or a fallback).
    pub model: &'a ModelConfig,
    /// The route tried.
    pub route: &'a RouteConfig,
    /// The route's provider.
    pub provider: &'a Provider,
    /// The route's live state.
    pub state: &'a crate::router::RouteState,
    /// The key and total limit of this call.
    pub call: Call<'a>,
    /// The per-call limits: the model's overrides, else the provider's.
    pub deadlines: Deadlines,
    /// When this attempt began.
    pub started: Instant,
}

/// The route that served (or last failed) a call.
#[derive(Clone, Copy)]
pub struct Via<'a> {
    /// The model that served: the requested one or a fallback.
    pub model: &'a ModelConfig,
    /// The route.
    pub route: &'a RouteConfig,
    /// The route's provider.
    pub provider: &'a Provider,
    /// The route's live state (its answer headers among it).
    pub state: &'a crate::router::RouteState,
}

/// One attempt's work, done by the caller on the route the loop chose.
pub(crate) trait Work {
    /// What a successful attempt gives.
    type Output;

    /// Runs one attempt. `Ok` carries the time to the answer's first byte, or `None` when
    /// the attempt made no upstream call (so the route's health learns nothing from it).
    async fn run(&mut self, at: &Attempt<'_>) -> Result<(Self::Output, Option<Duration>), Error>;
}

/// How far the loop goes after a retryable failure.
#[derive(Clone, Copy)]
pub struct Retries {
    /// Whether the model's fallback models are tried once its routes are exhausted.
    pub fallbacks: bool,
    /// Whether the same route is tried again after a backoff when it is the only way left.
    pub waits: bool,
    /// Whether this failure may be tried again at all (task creation: only when the upstream
    /// cannot have created the task).
    pub may_retry: fn(&Error) -> bool,
}

impl Retries {
    /// Chat-like calls: everything retryable is retried, fallbacks and waits included.
    pub const ALL: Self = Self {
        fallbacks: true,
        waits: true,
        may_retry: |_| true,
    };
}

/// A call that found no answer: the final error and the last route tried, if any.
pub struct Failure<'a> {
    /// The error for the client.
    pub error: Error,
    /// The last route tried.
    pub via: Option<Via<'a>>,
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
    fallbacks: bool,
) -> Vec<&'a ModelConfig> {
    let mut chain = vec![model];
    if !fallbacks {
        return chain;
    }
    for f in &model.fallbacks {
        if let Some(m) = state.config.model(f)
            && crate::policy::entitlement::allows(state.catalog(), key, &m.id)
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
pub(super) struct Search {
    tried: Vec<usize>,
    spent_keys: Vec<(usize, usize)>,
    again: Option<usize>,
    waits: u32,
}

impl Search {
    pub(super) fn next(
        &mut self,
        router: &Router,
        m: &ModelConfig,
        rng: &mut Rng,
    ) -> Option<usize> {
        self.again
            .take()
            .or_else(|| router.pick(m, &self.tried, rng))
    }

    /// A key slot for route `idx` that this request has not found spent.
    pub(super) fn key_slot(
        &self,
        states: &crate::router::RouteState,
        idx: usize,
        keys: usize,
    ) -> usize {
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
    pub(super) async fn after_failure(
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
            || !budget.waits
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
pub(super) struct Failed {
    pub(super) idx: usize,
    pub(super) slot: usize,
    pub(super) keys: usize,
    pub(super) class: Class,
}

/// What is left of a request's retry allowance.
pub(super) struct RetryBudget<'a> {
    pub(super) end: Instant,
    pub(super) attempts: u32,
    pub(super) fallbacks_left: bool,
    /// Whether waiting on the same route is allowed at all.
    pub(super) waits: bool,
    pub(super) rng: &'a mut Rng,
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
    let call = provider.call(slot, limits.total);
    Some((
        Attempt {
            model: m,
            route,
            provider,
            state: states,
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
/// within the attempt limit and the time budget that began at `started`.
pub(crate) async fn run<'a, W: Work>(
    state: &'a AppState,
    (key, started): (&ApiKey, Instant),
    model: &'a ModelConfig,
    retries: Retries,
    work: &mut W,
) -> Result<(W::Output, Via<'a>), Failure<'a>> {
    let cfg = state.config.routing;
    let budget_end = started + cfg.retry_budget;
    let mut rng = state.router.rng();
    let mut failures: Vec<Error> = Vec::new();
    let mut last_via: Option<Via<'a>> = None;
    let mut attempts = 0u32;
    let chain = model_chain(state, key, model, retries.fallbacks);
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
            let via = Via {
                model: m,
                route: at.route,
                provider: at.provider,
                state: at.state,
            };
            let e = match work.run(&at).await {
                Ok((out, ttfb)) => {
                    guard.end(ttfb.map_or(Outcome::Neutral, Outcome::Success));
                    if m.id != model.id {
                        metrics::counter!(METRIC_FALLBACKS, "model" => model.id.clone(), "served" => m.id.clone()).increment(1);
                    }
                    return Ok((out, via));
                }
                Err(e) => e,
            };
            let class = note_failure(guard, &at, &e);
            last_via = Some(via);
            if class == Class::Client || !(retries.may_retry)(&e) {
                return Err(Failure {
                    error: e,
                    via: last_via,
                });
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
                        waits: retries.waits,
                        rng: &mut rng,
                    },
                )
                .await;
            failures.push(e);
        }
        break;
    }
    Err(Failure {
        error: retry::exhausted(failures),
        via: last_via,
    })
}
