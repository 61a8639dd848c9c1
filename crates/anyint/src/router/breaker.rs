//! A per-route circuit breaker: the error rate over a sliding window opens it; while open the
//! route is skipped; after the cooldown one real request probes it (half-open) and its result
//! closes or reopens the breaker.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::RoutingConfig;

/// Most outcomes kept per window (bounds memory under very high traffic).
const MAX_SAMPLES: usize = 4096;

/// The breaker's externally visible state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Traffic flows.
    Closed,
    /// Traffic is refused until the cooldown ends.
    Open,
    /// One probe may pass.
    HalfOpen,
}

impl BreakerState {
    /// Label for metrics and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// Gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Inner {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// One route's breaker.
#[derive(Debug)]
pub struct Breaker {
    inner: Inner,
    samples: VecDeque<(Instant, bool)>,
    /// Failures among `samples`, kept in step so recording is O(1) amortized.
    failed: usize,
    window: Duration,
    min_requests: u32,
    failure_rate: f64,
    cooldown: Duration,
}

impl Breaker {
    /// A closed breaker with the configured thresholds.
    pub fn new(cfg: &RoutingConfig) -> Self {
        Self {
            inner: Inner::Closed,
            samples: VecDeque::new(),
            failed: 0,
            window: cfg.breaker_window,
            min_requests: cfg.breaker_min_requests,
            failure_rate: cfg.breaker_failure_rate,
            cooldown: cfg.breaker_cooldown,
        }
    }

    /// The state at `now` (an expired open breaker reads as half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.inner {
            Inner::Closed => BreakerState::Closed,
            Inner::Open { until } if now >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether a request could be admitted now (without claiming the probe).
    pub fn available(&self, now: Instant) -> bool {
        match self.inner {
            Inner::Closed => true,
            Inner::Open { until } => now >= until,
            Inner::HalfOpen { probing } => !probing,
        }
    }

    /// Admits a request, claiming the probe slot when half-open.
    pub fn admit(&mut self, now: Instant) -> bool {
        match self.inner {
            Inner::Closed => true,
            Inner::Open { until } if now >= until => {
                self.inner = Inner::HalfOpen { probing: true };
                true
            }
            Inner::Open { .. } | Inner::HalfOpen { probing: true } => false,
            Inner::HalfOpen { probing: false } => {
                self.inner = Inner::HalfOpen { probing: true };
                true
            }
        }
    }

    /// Frees the probe slot after an attempt that said nothing about health.
    pub fn release_probe(&mut self) {
        if let Inner::HalfOpen { probing: true } = self.inner {
            self.inner = Inner::HalfOpen { probing: false };
        }
    }

    /// Records an attempt's health outcome.
    pub fn record(&mut self, now: Instant, ok: bool) {
        match self.inner {
            Inner::HalfOpen { .. } => {
                self.samples.clear();
                self.failed = 0;
                self.inner = if ok {
                    Inner::Closed
                } else {
                    Inner::Open {
                        until: now + self.cooldown,
                    }
                };
            }
            // A late result from before the breaker opened changes nothing.
            Inner::Open { .. } => {}
            Inner::Closed => {
                self.samples.push_back((now, ok));
                self.failed += usize::from(!ok);
                while self
                    .samples
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) > self.window)
                    || self.samples.len() > MAX_SAMPLES
                {
                    if let Some((_, was_ok)) = self.samples.pop_front() {
                        self.failed -= usize::from(!was_ok);
                    }
                }
                let total = self.samples.len();
                let failed = self.failed;
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "sample counts are at most MAX_SAMPLES"
                )]
                let rate = failed as f64 / total.max(1) as f64;
                if total >= self.min_requests as usize && rate >= self.failure_rate {
                    self.inner = Inner::Open {
                        until: now + self.cooldown,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RoutingConfig {
        RoutingConfig {
            max_attempts: 3,
            retry_budget: Duration::from_secs(5),
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            breaker_window: Duration::from_secs(10),
            breaker_min_requests: 4,
            breaker_failure_rate: 0.5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_error_rate_then_recovers_through_a_half_open_probe() {
        let mut b = Breaker::new(&cfg());
        let now = Instant::now();
        b.record(now, true);
        b.record(now, false);
        b.record(now, false);
        assert_eq!(b.state(now), BreakerState::Closed, "below min_requests");
        b.record(now, false);
        assert_eq!(b.state(now), BreakerState::Open);
        assert!(!b.admit(now));

        tokio::time::advance(Duration::from_secs(30)).await;
        let later = Instant::now();
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert!(b.admit(later), "one probe passes");
        assert!(!b.admit(later), "only one probe at a time");
        b.record(later, true);
        assert_eq!(b.state(later), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_reopens_for_another_cooldown() {
        let mut b = Breaker::new(&cfg());
        let now = Instant::now();
        for _ in 0..4 {
            b.record(now, false);
        }
        tokio::time::advance(Duration::from_secs(31)).await;
        let t = Instant::now();
        assert!(b.admit(t));
        b.record(t, false);
        assert_eq!(b.state(t), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(b.state(Instant::now()), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn old_failures_leave_the_window() {
        let mut b = Breaker::new(&cfg());
        let now = Instant::now();
        for _ in 0..3 {
            b.record(now, false);
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        let t = Instant::now();
        b.record(t, false);
        b.record(t, true);
        assert_eq!(
            b.state(t),
            BreakerState::Closed,
            "the three old failures expired"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn neutral_outcome_frees_the_probe() {
        let mut b = Breaker::new(&cfg());
        let now = Instant::now();
        for _ in 0..4 {
            b.record(now, false);
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        let t = Instant::now();
        assert!(b.admit(t));
        b.release_probe();
        assert!(b.admit(t));
    }
}
