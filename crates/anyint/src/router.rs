//! Routing: which upstream route serves the next attempt of a request.
//!
//! Each model's routes carry a weight and a priority tier (lower tiers first). For every
//! attempt the router considers the routes not yet tried by this request whose circuit breaker
//! lets traffic through, keeps the best tier among them, and picks one by the model's strategy:
//! weighted random (default) or power-of-two-choices on a peak-EWMA of time to first byte.
//! Retry and backoff decisions live in [`retry`]; the gateway drives the loop.
//!
//! All timing uses tokio's clock, so breaker cooldowns and EWMA decay run under paused time in
//! tests.

pub mod balance;
pub mod breaker;
pub mod retry;

use foldhash::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::{Config, ModelConfig, RoutingConfig, Strategy};
use balance::{PeakEwma, Rng};
use breaker::{Breaker, BreakerState};

/// Live state of one route of one model.
pub struct RouteState {
    breaker: Mutex<Breaker>,
    ttfb: Mutex<PeakEwma>,
    inflight: AtomicU64,
    key_cursor: AtomicUsize,
    attempts: AtomicU64,
    failures: AtomicU64,
    /// The headers an answer served by this route carries: the model, and the route as
    /// `provider/upstream_model` (no secrets), built once rather than on every answer.
    served: [Option<http::HeaderValue>; 2],
}

impl RouteState {
    fn new(cfg: &RoutingConfig, model: &str, label: &str) -> Self {
        let value = |text: &str| http::HeaderValue::from_str(text).ok();
        Self {
            served: [value(model), value(label)],
            breaker: Mutex::new(Breaker::new(cfg)),
            ttfb: Mutex::new(PeakEwma::new(Duration::from_secs(10))),
            inflight: AtomicU64::new(0),
            key_cursor: AtomicUsize::new(0),
            attempts: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The values of `x-anyint-served-model` and `x-anyint-route` for an answer served by this
    /// route (`None` for a name that is not a valid header value).
    pub fn served_headers(&self) -> &[Option<http::HeaderValue>; 2] {
        &self.served
    }

    /// The next key rotation slot.
    pub fn next_key_slot(&self) -> usize {
        self.key_cursor.fetch_add(1, Ordering::Relaxed)
    }

    fn cost(&self, now: Instant) -> f64 {
        let ewma = self.ttfb.lock().map_or(0.0, |e| e.value(now));
        #[expect(clippy::cast_precision_loss, reason = "in-flight counts are small")]
        let load = (self.inflight.load(Ordering::Relaxed) + 1) as f64;
        ewma * load
    }
}

/// How one attempt on a route ended, for its breaker and latency estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered (first byte) in this time.
    Success(Duration),
    /// The route failed in a way that counts against its health (5xx, connect, timeout).
    Failure,
    /// The attempt ended for a reason that says nothing about the route's health
    /// (a throttle, a client error).
    Neutral,
}

/// An attempt in progress on one route; see [`Router::begin`].
pub struct AttemptGuard<'a> {
    router: &'a Router,
    model: &'a str,
    idx: usize,
    ended: bool,
}

impl AttemptGuard<'_> {
    /// Records how the attempt ended.
    pub fn end(mut self, outcome: Outcome) {
        self.ended = true;
        self.router.end(self.model, self.idx, outcome);
    }
}

impl Drop for AttemptGuard<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.router.end(self.model, self.idx, Outcome::Neutral);
        }
    }
}

/// The route table's live state, shared by all requests.
pub struct Router {
    routes: HashMap<String, Vec<RouteState>>,
    rng_base: u64,
    rng_counter: AtomicU64,
}

/// A route's state for `/admin/v1/routes` and `/metrics`.
#[derive(Clone, Debug, Serialize)]
pub struct RouteSnapshot {
    /// Public model ID.
    pub model: String,
    /// Provider name.
    pub provider: String,
    /// Upstream model ID.
    pub upstream_model: String,
    /// Traffic weight in its tier.
    pub weight: u32,
    /// Priority tier.
    pub priority: u32,
    /// `closed`, `open` or `half_open`.
    pub state: &'static str,
    /// Attempts since start.
    pub attempts: u64,
    /// Failed attempts since start.
    pub failures: u64,
    /// Requests in flight now.
    pub inflight: u64,
    /// Peak-EWMA time to first byte, milliseconds.
    pub ttfb_ewma_ms: f64,
}

impl Router {
    /// State for every route of every configured model.
    pub fn new(config: &Config) -> Self {
        let routes = config
            .models
            .iter()
            .map(|m| {
                (
                    m.id.clone(),
                    m.routes
                        .iter()
                        .map(|r| {
                            let provider = config
                                .providers
                                .get(r.provider)
                                .map_or("", |p| p.name.as_str());
                            let label = format!("{provider}/{}", r.upstream_model);
                            RouteState::new(&config.routing, &m.id, &label)
                        })
                        .collect(),
                )
            })
            .collect();
        let seed = u64::from_le_bytes(crate::auth::random_bytes::<8>());
        Self {
            routes,
            rng_base: seed,
            rng_counter: AtomicU64::new(0),
        }
    }

    /// A fresh random stream for one request.
    pub fn rng(&self) -> Rng {
        Rng::new(
            self.rng_base
                ^ self
                    .rng_counter
                    .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed),
        )
    }

    /// The state of route `idx` of `model`.
    pub fn state(&self, model: &str, idx: usize) -> Option<&RouteState> {
        self.routes.get(model).and_then(|r| r.get(idx))
    }

    /// Picks the next route for an attempt, among routes not in `tried` whose breaker admits
    /// traffic, from the best priority tier, by the model's strategy. Claims the half-open
    /// probe slot when it picks a recovering route.
    pub fn pick(&self, model: &ModelConfig, tried: &[usize], rng: &mut Rng) -> Option<usize> {
        let states = self.routes.get(&model.id)?;
        let now = Instant::now();
        let mut excluded: Vec<usize> = tried.to_vec();
        loop {
            let open: Vec<usize> = (0..model.routes.len())
                .filter(|i| !excluded.contains(i))
                .filter(|&i| {
                    states
                        .get(i)
                        .is_some_and(|s| s.breaker.lock().is_ok_and(|b| b.available(now)))
                })
                .collect();
            let tier = open
                .iter()
                .filter_map(|&i| model.routes.get(i))
                .map(|r| r.priority)
                .min()?;
            let tier: Vec<usize> = open
                .into_iter()
                .filter(|&i| model.routes.get(i).is_some_and(|r| r.priority == tier))
                .collect();
            let choice = match model.strategy {
                Strategy::Weighted => {
                    let weights: Vec<u32> = tier
                        .iter()
                        .map(|&i| model.routes.get(i).map_or(1, |r| r.weight))
                        .collect();
                    balance::weighted(&weights, rng).and_then(|k| tier.get(k).copied())
                }
                Strategy::Latency => {
                    let costs: Vec<f64> = tier
                        .iter()
                        .map(|&i| states.get(i).map_or(0.0, |s| s.cost(now)))
                        .collect();
                    balance::p2c(&costs, rng).and_then(|k| tier.get(k).copied())
                }
            }?;
            // Another request may have taken the half-open probe between the check and now.
            if states
                .get(choice)
                .is_some_and(|s| s.breaker.lock().is_ok_and(|mut b| b.admit(now)))
            {
                return Some(choice);
            }
            excluded.push(choice);
        }
    }

    /// Whether any route of `model` not in `tried` currently admits traffic.
    pub fn has_candidate(&self, model: &ModelConfig, tried: &[usize]) -> bool {
        let now = Instant::now();
        self.routes.get(&model.id).is_some_and(|states| {
            states.iter().enumerate().any(|(i, s)| {
                !tried.contains(&i) && s.breaker.lock().is_ok_and(|b| b.available(now))
            })
        })
    }

    /// Marks an attempt as started. The guard records its end; if the attempt is abandoned
    /// (the client left, the handler was cancelled) its drop records a neutral end, so a
    /// half-open probe slot or an in-flight count can never leak.
    pub fn begin<'a>(&'a self, model: &'a str, idx: usize) -> AttemptGuard<'a> {
        if let Some(s) = self.state(model, idx) {
            s.inflight.fetch_add(1, Ordering::Relaxed);
            s.attempts.fetch_add(1, Ordering::Relaxed);
        }
        AttemptGuard {
            router: self,
            model,
            idx,
            ended: false,
        }
    }

    /// Records how an attempt ended.
    fn end(&self, model: &str, idx: usize, outcome: Outcome) {
        let Some(s) = self.state(model, idx) else {
            return;
        };
        s.inflight.fetch_sub(1, Ordering::Relaxed);
        let now = Instant::now();
        match outcome {
            Outcome::Success(ttfb) => {
                if let Ok(mut e) = s.ttfb.lock() {
                    e.observe(now, ttfb);
                }
                if let Ok(mut b) = s.breaker.lock() {
                    b.record(now, true);
                }
            }
            Outcome::Failure => {
                s.failures.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut b) = s.breaker.lock() {
                    b.record(now, false);
                }
            }
            Outcome::Neutral => {
                if let Ok(mut b) = s.breaker.lock() {
                    b.release_probe();
                }
            }
        }
    }

    /// Every route's state, in config order.
    pub fn snapshot(&self, config: &Config) -> Vec<RouteSnapshot> {
        let now = Instant::now();
        let mut out = Vec::new();
        for m in &config.models {
            let Some(states) = self.routes.get(&m.id) else {
                continue;
            };
            for (r, s) in m.routes.iter().zip(states) {
                let state = s
                    .breaker
                    .lock()
                    .map_or(BreakerState::Closed, |b| b.state(now));
                out.push(RouteSnapshot {
                    model: m.id.clone(),
                    provider: config
                        .providers
                        .get(r.provider)
                        .map(|p| p.name.clone())
                        .unwrap_or_default(),
                    upstream_model: r.upstream_model.clone(),
                    weight: r.weight,
                    priority: r.priority,
                    state: state.as_str(),
                    attempts: s.attempts.load(Ordering::Relaxed),
                    failures: s.failures.load(Ordering::Relaxed),
                    inflight: s.inflight.load(Ordering::Relaxed),
                    ttfb_ewma_ms: s.ttfb.lock().map_or(0.0, |e| e.value(now)),
                });
            }
        }
        out
    }
}
