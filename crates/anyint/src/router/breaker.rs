//! A per-route circuit breaker: the error rate over a sliding window opens it; while open the
//! route is skipped; after the cooldown one real request probes it (half-open) and its result
//! closes or reopens the breaker.
//!
//! The window is [`BUCKETS`] counters of a slice of it each, in the breaker itself, and their
//! running sums: a route's breaker costs the same at 10 requests a window as at a million, in
//! time and in memory, and holds no heap memory (a queue of every outcome grew to 96 KiB a
//! route under load, and kept it).

use std::time::Duration;

use tokio::time::Instant;

use crate::config::RoutingConfig;

/// Counters the window is split into. An outcome counts for between `window × 31/32` and
/// `window` after it happened.
const BUCKETS: usize = 32;

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

/// Outcomes in one slice of the window.
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    ok: u32,
    failed: u32,
}

/// One route's breaker.
#[derive(Debug)]
pub struct Breaker {
    inner: Inner,
    /// The counts of the window's slices: slice `s` at `s % BUCKETS`, for the [`BUCKETS`]
    /// slices up to `latest` (a bucket of an older slice is emptied as its place is taken).
    buckets: [Bucket; BUCKETS],
    /// The newest slice an outcome was recorded in, counted from `origin`.
    latest: u64,
    /// The buckets' sums, kept in step, so recording is O(1).
    ok: u64,
    failed: u64,
    origin: Instant,
    /// A slice's length in nanoseconds: the window's [`BUCKETS`]th part, at least 1.
    slice_nanos: u64,
    min_requests: u32,
    failure_rate: f64,
    cooldown: Duration,
}

impl Breaker {
    /// A closed breaker with the configured thresholds.
    pub fn new(cfg: &RoutingConfig) -> Self {
        Self {
            inner: Inner::Closed,
            buckets: [Bucket::default(); BUCKETS],
            latest: 0,
            ok: 0,
            failed: 0,
            origin: Instant::now(),
            slice_nanos: u64::try_from(cfg.breaker_window.as_nanos() / BUCKETS as u128)
                .unwrap_or(u64::MAX)
                .max(1),
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
                self.clear();
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
                let slice = self.slice(now);
                if slice > self.latest {
                    self.advance(slice);
                } else if self.latest - slice >= BUCKETS as u64 {
                    // Read a whole window before the newest outcome: already out of it.
                    return;
                }
                // An outcome recorded late (its `now` read before a newer outcome's) still
                // counts in its own slice.
                let Some(bucket) = self.buckets.get_mut(slot(slice)) else {
                    return;
                };
                let (count, sum) = if ok {
                    (&mut bucket.ok, &mut self.ok)
                } else {
                    (&mut bucket.failed, &mut self.failed)
                };
                let Some(more) = count.checked_add(1) else {
                    return;
                };
                *count = more;
                *sum += 1;
                let total = self.ok + self.failed;
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "a rate: counts beyond 2^52 lose only precision it does not need"
                )]
                let rate = self.failed as f64 / total.max(1) as f64;
                if total >= u64::from(self.min_requests) && rate >= self.failure_rate {
                    self.inner = Inner::Open {
                        until: now + self.cooldown,
                    };
                }
            }
        }
    }

    /// Empties the window.
    fn clear(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
        (self.ok, self.failed) = (0, 0);
    }

    /// Moves the window's end to slice `to`: each slice that enters takes the bucket of the
    /// slice a window before it, which leaves.
    fn advance(&mut self, to: u64) {
        if to - self.latest >= BUCKETS as u64 {
            self.clear();
        } else {
            for slice in self.latest + 1..=to {
                if let Some(bucket) = self.buckets.get_mut(slot(slice)) {
                    self.ok -= u64::from(bucket.ok);
                    self.failed -= u64::from(bucket.failed);
                    *bucket = Bucket::default();
                }
            }
        }
        self.latest = to;
    }

    /// The slice of the window `now` falls in, counted from the breaker's origin.
    fn slice(&self, now: Instant) -> u64 {
        let since = u64::try_from(now.saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX);
        since / self.slice_nanos
    }
}

/// Where slice `slice` is counted: slices a whole window apart share a bucket.
fn slot(slice: u64) -> usize {
    // The remainder is below BUCKETS, so it fits.
    usize::try_from(slice % BUCKETS as u64).unwrap_or(0)
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
    async fn outcomes_count_for_nearly_the_whole_window() {
        // Window 10 s, in 32 slices of 312.5 ms.
        let mut b = Breaker::new(&cfg());
        for _ in 0..3 {
            b.record(Instant::now(), false);
        }
        tokio::time::advance(Duration::from_millis(9_500)).await;
        b.record(Instant::now(), false);
        assert_eq!(b.state(Instant::now()), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_over_every_outcome_in_the_window() {
        let mut b = Breaker::new(&cfg());
        for _ in 0..10_000 {
            b.record(Instant::now(), true);
        }
        for _ in 0..5 {
            b.record(Instant::now(), false);
        }
        assert_eq!(b.state(Instant::now()), BreakerState::Closed);
        // Once the successes have left the window, four new failures open it.
        tokio::time::advance(Duration::from_secs(11)).await;
        for _ in 0..3 {
            b.record(Instant::now(), false);
        }
        assert_eq!(
            b.state(Instant::now()),
            BreakerState::Closed,
            "below min_requests"
        );
        b.record(Instant::now(), false);
        assert_eq!(b.state(Instant::now()), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_leave_the_window_a_slice_at_a_time() {
        let mut b = Breaker::new(&cfg());
        b.record(Instant::now(), false);
        tokio::time::advance(Duration::from_secs(5)).await;
        for ok in [true, true, true, false] {
            b.record(Instant::now(), ok);
        }
        assert_eq!(
            b.state(Instant::now()),
            BreakerState::Closed,
            "two failures of five"
        );
        // 10.2 s from the start the first failure has left and the four after it stay: with
        // it still in, this failure would make three of six and open the breaker.
        tokio::time::advance(Duration::from_millis(5_200)).await;
        b.record(Instant::now(), false);
        assert_eq!(
            b.state(Instant::now()),
            BreakerState::Closed,
            "two failures of five"
        );
        b.record(Instant::now(), false);
        assert_eq!(b.state(Instant::now()), BreakerState::Open, "three of six");
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_outcome_still_counts() {
        let mut b = Breaker::new(&cfg());
        let early = Instant::now();
        tokio::time::advance(Duration::from_secs(1)).await;
        let now = Instant::now();
        for _ in 0..3 {
            b.record(now, false);
        }
        // Read before the three, recorded after them.
        b.record(early, false);
        assert_eq!(b.state(now), BreakerState::Open);
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
