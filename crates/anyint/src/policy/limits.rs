//! Rate and concurrency limits behind one [`Limiter`] trait.
//!
//! Requests per minute use GCRA (the generic cell rate algorithm): one timestamp per scope, a
//! burst of up to the full limit, exact under concurrency because each decision is one atomic
//! update. Concurrency counts requests in flight, streams included: the [`Permit`] is held by
//! the response until its last byte. The in-process limiter is the default; the Redis backend
//! ([`redis::RedisLimiter`], `[limits] redis_url`) implements the same trait so several gateway
//! instances share one exact count, behind a breaker ([`breaker::Breaker`]) that falls back
//! to in-process counting while Redis is unreachable.
//!
//! Time is tokio's, so the limiter runs under paused time in tests.

pub mod breaker;
pub mod redis;

use foldhash::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;

/// The per-minute window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The answer to one rate check, with what the `x-ratelimit-*` headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The limit (requests per minute).
    pub limit: u32,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// Until the full limit is available again.
    pub reset: Duration,
    /// When refused: how long until one request is allowed.
    pub retry_after: Duration,
}

/// A held slot of a concurrency limit; released on drop.
pub struct Permit {
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Permit {
    /// A permit that runs `release` when dropped.
    pub fn new(release: impl FnOnce() + Send + Sync + 'static) -> Self {
        Self {
            release: Some(Box::new(release)),
        }
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Permit")
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

/// The limiter could not decide (its backend is unreachable).
#[derive(Debug, thiserror::Error)]
#[error("rate limiter unavailable: {0}")]
pub struct Unavailable(pub String);

/// The limiter boundary.
#[async_trait]
pub trait Limiter: Send + Sync {
    /// Counts one request against `scope`'s per-minute `limit`.
    async fn rate(&self, scope: &str, limit: u32) -> Result<RateDecision, Unavailable>;
    /// Takes one of `scope`'s `limit` in-flight slots, or `None` when all are taken.
    async fn acquire(&self, scope: &str, limit: u32) -> Result<Option<Permit>, Unavailable>;
    /// Counts `cost` tokens (an estimate) against `scope`'s per-minute token `limit`.
    async fn tokens(&self, scope: &str, limit: u32, cost: u32)
    -> Result<RateDecision, Unavailable>;
    /// Corrects `scope`'s token count by `delta` once the real usage is known.
    async fn settle(&self, scope: &str, limit: u32, delta: i64) -> Result<(), Unavailable>;
    /// The shared backend's state (`None`: there is none, limits are in-process). Read from
    /// memory, never a round trip, so readiness checks stay instant.
    fn backend(&self) -> Option<BackendStatus> {
        None
    }
    /// Whether this limiter keeps monthly spend counters every instance shares. The
    /// in-process limiter does not: spend is then counted by `policy::quota` alone.
    fn shares_spend(&self) -> bool {
        false
    }
    /// The month's spend of each named counter (`key:ID`, `team:ID`, `account:ID`; 0 when
    /// never charged), or `None` when the month's counters are not built (after a restart of
    /// the shared backend): the caller rebuilds them.
    async fn spend_read(
        &self,
        _month_ms: i64,
        _names: &[String],
    ) -> Result<Option<Vec<i64>>, Unavailable> {
        Ok(None)
    }
    /// Adds each delta to its counter, atomically; `false` when the month's counters are not
    /// built (after a restart of the shared backend), which then takes nothing.
    async fn spend_add(
        &self,
        _month_ms: i64,
        _deltas: &[(String, i64)],
    ) -> Result<bool, Unavailable> {
        Ok(true)
    }
    /// Sets the month's counters to `counts` unless another instance built them first;
    /// `true` when this call built them.
    async fn spend_rebuild(
        &self,
        _month_ms: i64,
        _counts: &[(String, i64)],
    ) -> Result<bool, Unavailable> {
        Ok(false)
    }
}

/// What the limiter knows of its shared backend (Redis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendStatus {
    /// Whether it answers (its breaker is closed).
    pub reachable: bool,
    /// Live gateway instances last seen in it; 0 while unknown.
    pub fleet: u32,
}

/// The GCRA step shared by both backends and both kinds of limit: `cost` units of a `limit`
/// per minute (capped at `limit`, so one large request is admitted when the bucket is full; a
/// request-rate check costs 1). Given how far the scope's theoretical arrival time is ahead of
/// now, returns whether it fits and either how far the arrival time advances or, when it does
/// not fit, how long until it would.
pub fn gcra(limit: u32, cost: u32, ahead: Duration) -> (bool, Duration) {
    let interval = WINDOW / limit.max(1);
    let step = interval * cost.clamp(1, limit.max(1));
    if ahead + step > WINDOW {
        (false, (ahead + step).saturating_sub(WINDOW))
    } else {
        (true, step)
    }
}

/// The decision for an admitted request whose new arrival time is `used` ahead of now.
pub fn admitted(limit: u32, used: Duration) -> RateDecision {
    let interval = WINDOW / limit.max(1);
    let free = WINDOW.saturating_sub(used);
    let remaining = u32::try_from(free.as_nanos() / interval.as_nanos().max(1))
        .unwrap_or(u32::MAX)
        .min(limit);
    RateDecision {
        allowed: true,
        limit,
        remaining,
        reset: used,
        retry_after: Duration::ZERO,
    }
}

/// The in-process limiter: exact for one gateway instance.
#[derive(Default)]
pub struct LocalLimiter {
    /// Theoretical arrival time per scope.
    tat: Mutex<HashMap<String, Instant>>,
    inflight: Mutex<HashMap<String, Arc<AtomicU32>>>,
}

impl LocalLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// One GCRA step of `cost` against the arrival time stored under `key`.
    fn take(&self, key: &str, limit: u32, cost: u32) -> Result<RateDecision, Unavailable> {
        let limit = limit.max(1);
        let now = Instant::now();
        let mut tats = self
            .tat
            .lock()
            .map_err(|_| Unavailable("lock poisoned".into()))?;
        // One lookup: the stored time is updated in place, and the key copied only the first
        // time the scope is seen.
        let stored = tats.get_mut(key);
        let tat = stored.as_deref().copied().unwrap_or(now).max(now);
        let ahead = tat.duration_since(now);
        match gcra(limit, cost, ahead) {
            (false, retry_after) => Ok(RateDecision {
                allowed: false,
                limit,
                remaining: 0,
                reset: ahead,
                retry_after,
            }),
            (true, step) => {
                let new_tat = tat + step;
                match stored {
                    Some(t) => *t = new_tat,
                    None => {
                        tats.insert(key.to_owned(), new_tat);
                    }
                }
                Ok(admitted(limit, new_tat.duration_since(now)))
            }
        }
    }
}

#[async_trait]
impl Limiter for LocalLimiter {
    async fn rate(&self, scope: &str, limit: u32) -> Result<RateDecision, Unavailable> {
        self.take(scope, limit, 1)
    }

    async fn tokens(
        &self,
        scope: &str,
        limit: u32,
        cost: u32,
    ) -> Result<RateDecision, Unavailable> {
        self.take(&format!("tokens:{scope}"), limit, cost)
    }

    async fn settle(&self, scope: &str, limit: u32, delta: i64) -> Result<(), Unavailable> {
        let now = Instant::now();
        let interval = WINDOW / limit.max(1);
        let shift = interval * u32::try_from(delta.unsigned_abs()).unwrap_or(u32::MAX);
        let mut tats = self
            .tat
            .lock()
            .map_err(|_| Unavailable("lock poisoned".into()))?;
        if let Some(tat) = tats.get_mut(&format!("tokens:{scope}")) {
            *tat = if delta >= 0 {
                *tat + shift
            } else {
                tat.checked_sub(shift).unwrap_or(now).max(now)
            };
        }
        Ok(())
    }

    async fn acquire(&self, scope: &str, limit: u32) -> Result<Option<Permit>, Unavailable> {
        let counter = {
            let mut map = self
                .inflight
                .lock()
                .map_err(|_| Unavailable("lock poisoned".into()))?;
            match map.get(scope) {
                Some(c) => c.clone(),
                None => map.entry(scope.to_owned()).or_default().clone(),
            }
        };
        let taken = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < limit).then_some(n + 1)
        });
        // `then`, not `then_some`: a Permit built eagerly and dropped would release a slot
        // that was never taken.
        Ok(taken.is_ok().then(|| {
            Permit::new(move || {
                counter.fetch_sub(1, Ordering::AcqRel);
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn rate(l: &LocalLimiter, scope: &str, n: u32) -> RateDecision {
        l.rate(scope, n).await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_minute_burst_then_one_request_per_interval() {
        let l = LocalLimiter::new();
        let mut allowed = 0;
        for _ in 0..200 {
            allowed += usize::from(rate(&l, "k", 60).await.allowed);
        }
        assert_eq!(allowed, 60, "exactly the limit passes at once");
        let refused = rate(&l, "k", 60).await;
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(
            refused.retry_after,
            Duration::from_secs(1),
            "one interval until the next slot"
        );
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!rate(&l, "k", 60).await.allowed);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(rate(&l, "k", 60).await.allowed);
        assert!(!rate(&l, "k", 60).await.allowed);
        tokio::time::advance(Duration::from_secs(60)).await;
        let fresh = rate(&l, "k", 60).await;
        assert!(fresh.allowed);
        assert_eq!(fresh.remaining, 59);
    }

    #[tokio::test(start_paused = true)]
    async fn scopes_are_independent_and_remaining_counts_down() {
        let l = LocalLimiter::new();
        assert_eq!(rate(&l, "a", 3).await.remaining, 2);
        assert_eq!(rate(&l, "a", 3).await.remaining, 1);
        assert_eq!(rate(&l, "a", 3).await.remaining, 0);
        assert!(!rate(&l, "a", 3).await.allowed);
        assert!(rate(&l, "b", 3).await.allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_admitted_on_estimate_and_settled_on_actual_usage() {
        let l = LocalLimiter::new();
        // 1000 tokens per minute: a 600-token estimate fits once, not twice.
        assert!(l.tokens("k", 1000, 600).await.unwrap().allowed);
        let refused = l.tokens("k", 1000, 600).await.unwrap();
        assert!(!refused.allowed);
        assert!(refused.retry_after > Duration::ZERO);
        // The request really used 100 tokens: settling gives 500 back, and 600 now fits.
        l.settle("k", 1000, 100 - 600).await.unwrap();
        let d = l.tokens("k", 1000, 600).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 300);
        // Usage above the estimate is charged too.
        l.settle("k", 1000, 300).await.unwrap();
        assert!(!l.tokens("k", 1000, 1).await.unwrap().allowed);
        // A request larger than the whole limit still passes when the bucket is full.
        tokio::time::advance(WINDOW).await;
        assert!(l.tokens("k", 1000, 5000).await.unwrap().allowed);
    }

    #[tokio::test]
    async fn concurrency_permits_are_released_on_drop() {
        let l = LocalLimiter::new();
        let a = l.acquire("k", 2).await.unwrap().unwrap();
        let _b = l.acquire("k", 2).await.unwrap().unwrap();
        assert!(l.acquire("k", 2).await.unwrap().is_none());
        drop(a);
        let _c = l.acquire("k", 2).await.unwrap().expect("a slot was freed");
        // Refusals release nothing: after many, the limit still holds.
        for _ in 0..10 {
            assert!(l.acquire("k", 2).await.unwrap().is_none());
        }
    }
}
