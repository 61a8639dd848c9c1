//! A breaker around the Redis limiter, so a Redis outage costs no request a Redis timeout.
//!
//! Closed (Redis answering): every decision goes to Redis. The first failure opens it, logged
//! once: decisions stop asking Redis and are made at once — in-process with
//! `on_redis_error = "open"` (each instance takes its share of each limit, 1/N of it when it
//! has seen N live instances in Redis, the whole limit when it has seen none), or refused with
//! 503 `limiter_unavailable` with `"closed"`. A background task probes Redis every
//! [`PROBE_EVERY`] and closes the breaker on the first answer (logged once), so requests use
//! Redis again within about a second of its recovery. While Redis answers, the same task
//! refreshes this instance's entry in the fleet every [`HEARTBEAT_EVERY`], which is how the
//! fleet size is known, and which also opens the breaker when Redis goes away between
//! requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::redis::RedisLimiter;
use super::{BackendStatus, Limiter, LocalLimiter, Permit, RateDecision, Unavailable};

/// How often an open breaker asks Redis whether it is back.
pub const PROBE_EVERY: Duration = Duration::from_millis(200);
/// How often a live instance refreshes its fleet entry.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How long a fleet entry lives without a refresh.
const FLEET_TTL: Duration = Duration::from_secs(15);

/// The Redis limiter behind a breaker, with the in-process fallback.
pub struct Breaker {
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

struct Inner {
    redis: RedisLimiter,
    local: LocalLimiter,
    fail_open: bool,
    down: AtomicBool,
    /// Live instances last seen in Redis; 0 while unknown.
    fleet: AtomicU32,
    wake: Notify,
    instance: String,
}

impl Breaker {
    /// Wraps `redis`; `instance` names this gateway in the fleet. Starts the probe task.
    pub fn new(redis: RedisLimiter, fail_open: bool, instance: &str) -> Self {
        let inner = Arc::new(Inner {
            redis,
            local: LocalLimiter::new(),
            fail_open,
            down: AtomicBool::new(false),
            fleet: AtomicU32::new(0),
            wake: Notify::new(),
            instance: instance.to_owned(),
        });
        let task = tokio::spawn(watch(inner.clone()));
        Self { inner, task }
    }
}

impl Drop for Breaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Inner {
    fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Redis failed: open the breaker (logged once per outage) and wake the prober.
    fn trip(&self, e: &Unavailable) {
        if !self.down.swap(true, Ordering::AcqRel) {
            let fleet = self.fleet.load(Ordering::Relaxed);
            if self.fail_open {
                tracing::warn!(error = %e, fleet, "redis is unreachable: limits are counted in-process (this instance's share of each limit) until it answers again");
            } else {
                tracing::warn!(error = %e, "redis is unreachable: limited requests are refused with 503 limiter_unavailable (on_redis_error = \"closed\") until it answers again");
            }
            metrics::gauge!(crate::telemetry::METRIC_LIMITER_REDIS_UP).set(0.0);
            self.wake.notify_one();
        }
    }

    /// Redis's answer, or `None` when the breaker is open (`call` is then dropped unpolled:
    /// Redis is not asked) or Redis fails now (which opens it).
    async fn via_redis<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, Unavailable>>,
    ) -> Option<T> {
        if self.is_down() {
            return None;
        }
        match call.await {
            Ok(answer) => Some(answer),
            Err(e) => {
                self.trip(&e);
                None
            }
        }
    }

    /// While open: go on in-process (`Ok`), or refuse at once.
    fn fallback(&self) -> Result<(), Unavailable> {
        if self.fail_open {
            Ok(())
        } else {
            Err(Unavailable("redis is unreachable".into()))
        }
    }

    fn share(&self, limit: u32) -> u32 {
        share_of(limit, self.fleet.load(Ordering::Relaxed))
    }
}

/// One instance's share of `limit` in a fleet of `fleet`: 1/N of it rounded up, never 0; the
/// whole of it when the fleet is unknown (0).
fn share_of(limit: u32, fleet: u32) -> u32 {
    match fleet {
        0 | 1 => limit,
        n => limit.div_ceil(n).max(1),
    }
}

/// The breaker's background task: heartbeats while Redis answers, probes while it does not.
async fn watch(inner: Arc<Inner>) {
    let mut down_since: Option<Instant> = None;
    loop {
        if inner.is_down() {
            let since = *down_since.get_or_insert_with(Instant::now);
            tokio::time::sleep(PROBE_EVERY).await;
            if inner.redis.ping().await.is_ok() {
                // Refresh the fleet before closing, so a later outage knows it.
                if let Ok(n) = inner.redis.heartbeat(&inner.instance, FLEET_TTL).await {
                    inner.fleet.store(n, Ordering::Relaxed);
                }
                inner.down.store(false, Ordering::Release);
                down_since = None;
                metrics::gauge!(crate::telemetry::METRIC_LIMITER_REDIS_UP).set(1.0);
                tracing::info!(
                    outage_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "redis answers again: limits are shared through it again"
                );
            }
            continue;
        }
        match inner.redis.heartbeat(&inner.instance, FLEET_TTL).await {
            Ok(n) => inner.fleet.store(n, Ordering::Relaxed),
            Err(e) => {
                inner.trip(&e);
                continue;
            }
        }
        tokio::select! {
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(HEARTBEAT_EVERY) => {}
        }
    }
}

#[async_trait]
impl Limiter for Breaker {
    async fn rate(&self, scope: &str, limit: u32) -> Result<RateDecision, Unavailable> {
        let i = &self.inner;
        if let Some(answer) = i.via_redis(i.redis.rate(scope, limit)).await {
            return Ok(answer);
        }
        i.fallback()?;
        i.local.rate(scope, i.share(limit)).await
    }

    async fn acquire(&self, scope: &str, limit: u32) -> Result<Option<Permit>, Unavailable> {
        let i = &self.inner;
        if let Some(answer) = i.via_redis(i.redis.acquire(scope, limit)).await {
            return Ok(answer);
        }
        i.fallback()?;
        i.local.acquire(scope, i.share(limit)).await
    }

    async fn tokens(
        &self,
        scope: &str,
        limit: u32,
        cost: u32,
    ) -> Result<RateDecision, Unavailable> {
        let i = &self.inner;
        if let Some(answer) = i.via_redis(i.redis.tokens(scope, limit, cost)).await {
            return Ok(answer);
        }
        i.fallback()?;
        i.local.tokens(scope, i.share(limit), cost).await
    }

    async fn settle(&self, scope: &str, limit: u32, delta: i64) -> Result<(), Unavailable> {
        let i = &self.inner;
        if i.via_redis(i.redis.settle(scope, limit, delta))
            .await
            .is_some()
        {
            return Ok(());
        }
        // A correction is never refused: it goes to the in-process count, which is the one
        // admitting requests now.
        i.local.settle(scope, i.share(limit), delta).await
    }

    fn backend(&self) -> Option<BackendStatus> {
        Some(BackendStatus {
            reachable: !self.inner.is_down(),
            fleet: self.inner.fleet.load(Ordering::Relaxed),
        })
    }

    fn shares_spend(&self) -> bool {
        true
    }

    // Spend calls are never answered in-process here: an `Err` tells `policy::quota` to use
    // its own counts (reads) or to keep the change until Redis answers (writes).
    async fn spend_read(
        &self,
        month_ms: i64,
        names: &[String],
    ) -> Result<Option<Vec<i64>>, Unavailable> {
        let i = &self.inner;
        i.via_redis(i.redis.spend_read(month_ms, names))
            .await
            .ok_or_else(|| Unavailable("redis is unreachable".into()))
    }

    async fn spend_add(
        &self,
        month_ms: i64,
        deltas: &[(String, i64)],
    ) -> Result<bool, Unavailable> {
        let i = &self.inner;
        i.via_redis(i.redis.spend_add(month_ms, deltas))
            .await
            .ok_or_else(|| Unavailable("redis is unreachable".into()))
    }

    async fn spend_rebuild(
        &self,
        month_ms: i64,
        counts: &[(String, i64)],
    ) -> Result<bool, Unavailable> {
        let i = &self.inner;
        i.via_redis(i.redis.spend_rebuild(month_ms, counts))
            .await
            .ok_or_else(|| Unavailable("redis is unreachable".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_up_and_never_reach_zero() {
        assert_eq!(share_of(60, 0), 60, "unknown fleet: the whole limit");
        assert_eq!(share_of(60, 3), 20);
        assert_eq!(share_of(60, 7), 9);
        assert_eq!(share_of(1, 100), 1);
    }
}
