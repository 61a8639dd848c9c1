//! Rate and concurrency limits behind one [`Limiter`] trait.
//!
//! Requests per minute use GCRA (the generic cell rate algorithm): one timestamp per scope, a
//! burst of up to the full limit, exact under concurrency because each decision is one atomic
//! update. Concurrency counts requests in flight, streams included: the [`Permit`] is held by
//! the response until its last byte. The in-process limiter is the default; a shared backend
//! (Redis) implements the same trait.
//!
//! Time is tokio's, so the limiter runs under paused time in tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);

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
#[derive(Debug)]
pub struct Permit {
    counter: Arc<AtomicU32>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The limiter boundary.
pub trait Limiter: Send + Sync {
    /// Counts one request against `scope`'s per-minute `limit`.
    fn rate(&self, scope: &str, limit: u32) -> RateDecision;
    /// Takes one of `scope`'s `limit` in-flight slots, or `None` when all are taken.
    fn acquire(&self, scope: &str, limit: u32) -> Option<Permit>;
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
}

fn nanos(d: Duration) -> u128 {
    d.as_nanos()
}

impl Limiter for LocalLimiter {
    fn rate(&self, scope: &str, limit: u32) -> RateDecision {
        let limit = limit.max(1);
        let now = Instant::now();
        let interval = WINDOW / limit;
        // A full burst of `limit` requests fits in the window: tolerance = window − interval.
        let tolerance = WINDOW.saturating_sub(interval);
        let Ok(mut tats) = self.tat.lock() else {
            return RateDecision {
                allowed: true,
                limit,
                remaining: limit,
                reset: Duration::ZERO,
                retry_after: Duration::ZERO,
            };
        };
        let tat = tats.get(scope).copied().unwrap_or(now).max(now);
        let ahead = tat.duration_since(now);
        if ahead > tolerance {
            let retry_after = ahead.saturating_sub(tolerance);
            return RateDecision {
                allowed: false,
                limit,
                remaining: 0,
                reset: ahead,
                retry_after,
            };
        }
        let new_tat = tat + interval;
        tats.insert(scope.to_owned(), new_tat);
        let used = new_tat.duration_since(now);
        let free = WINDOW.saturating_sub(used);
        let remaining = u32::try_from(nanos(free) / nanos(interval).max(1))
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

    fn acquire(&self, scope: &str, limit: u32) -> Option<Permit> {
        let counter = {
            let mut map = self.inflight.lock().ok()?;
            map.entry(scope.to_owned()).or_default().clone()
        };
        let taken = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < limit).then_some(n + 1)
        });
        // `then`, not `then_some`: a Permit built eagerly and dropped would release a slot
        // that was never taken.
        taken.is_ok().then(|| Permit { counter })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_minute_burst_then_one_request_per_interval() {
        let l = LocalLimiter::new();
        let allowed = (0..200).filter(|_| l.rate("k", 60).allowed).count();
        assert_eq!(allowed, 60, "exactly the limit passes at once");
        let refused = l.rate("k", 60);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(
            refused.retry_after,
            Duration::from_secs(1),
            "one interval until the next slot"
        );
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!l.rate("k", 60).allowed);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(l.rate("k", 60).allowed);
        assert!(!l.rate("k", 60).allowed);
        tokio::time::advance(Duration::from_secs(60)).await;
        let fresh = l.rate("k", 60);
        assert!(fresh.allowed);
        assert_eq!(fresh.remaining, 59);
    }

    #[tokio::test(start_paused = true)]
    async fn scopes_are_independent_and_remaining_counts_down() {
        let l = LocalLimiter::new();
        assert_eq!(l.rate("a", 3).remaining, 2);
        assert_eq!(l.rate("a", 3).remaining, 1);
        assert_eq!(l.rate("a", 3).remaining, 0);
        assert!(!l.rate("a", 3).allowed);
        assert!(l.rate("b", 3).allowed);
    }

    #[test]
    fn concurrency_permits_are_released_on_drop() {
        let l = LocalLimiter::new();
        let a = l.acquire("k", 2).unwrap();
        let _b = l.acquire("k", 2).unwrap();
        assert!(l.acquire("k", 2).is_none());
        drop(a);
        let _c = l.acquire("k", 2).expect("a slot was freed");
        // Refusals release nothing: after many, the limit still holds.
        for _ in 0..10 {
            assert!(l.acquire("k", 2).is_none());
        }
    }
}
