//! The Redis limiter: the same GCRA and in-flight counts as the in-process one, kept in Redis
//! so every gateway instance shares one exact count.
//!
//! Each decision is one Lua script, so it is atomic across instances, and it reads the clock
//! from Redis (`TIME`), so instances with skewed clocks still agree. Scripts are sent by hash
//! and re-sent when Redis answers `NOSCRIPT` (after a restart or `SCRIPT FLUSH`); the
//! connection manager reconnects on its own. When Redis cannot answer, the caller gets
//! [`Unavailable`] and applies the configured `on_redis_error` policy.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use super::{Limiter, Permit, RateDecision, Unavailable, WINDOW, admitted, gcra};

/// The GCRA step of [`gcra`], for requests (step = one interval) and tokens (step = cost ×
/// interval) alike. ARGV: step_us, window_us. Returns `{allowed, retry_after_us,
/// ahead_or_used_us}`.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local step = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local ahead = tat - now
if ahead + step > window then
  return {0, ahead + step - window, ahead}
end
local new = tat + step
redis.call('SET', KEYS[1], new, 'PX', math.floor((new - now) / 1000) + 1000)
return {1, 0, new - now}
";

/// Shifts a token arrival time by ARGV[1] microseconds (negative gives tokens back), never
/// below now.
const SETTLE_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local new = tat + tonumber(ARGV[1])
if new < now then new = now end
redis.call('SET', KEYS[1], new, 'PX', math.floor((new - now) / 1000) + 1000)
return 0
";

/// Takes an in-flight slot if fewer than ARGV[1] are taken. ARGV[2] (ms) bounds how long a
/// slot of a crashed instance can linger.
const ACQUIRE_SCRIPT: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Releases a slot, never below zero.
const RELEASE_SCRIPT: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 0
";

/// Records this instance in the fleet (a sorted set scored by Redis time), drops members not
/// seen for ARGV[2] ms, and returns how many remain. ARGV[1]: the instance ID.
const FLEET_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])
";

/// Adds ARGV[i] to counter KEYS[i+1] when the month's marker KEYS[1] exists (the counters are
/// built); ARGV[#KEYS] is their time to live in ms. Returns 1 when added, 0 when not built.
const SPEND_ADD_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ttl = ARGV[#KEYS]
redis.call('PEXPIRE', KEYS[1], ttl)
for i = 2, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[i - 1])
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return 1
";

/// Sets counter KEYS[i+1] to ARGV[i] and then the marker KEYS[1], unless the marker exists
/// (another instance rebuilt first). ARGV[#KEYS] is the time to live in ms. Returns 1 when
/// this call built the counters.
const SPEND_REBUILD_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ttl = ARGV[#KEYS]
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i - 1], 'PX', ttl)
end
redis.call('SET', KEYS[1], '1', 'PX', ttl)
return 1
";

/// How long a month's spend counters live: past the month's end, so late settlements of its
/// last requests still land, then they expire on their own.
const SPEND_TTL: Duration = Duration::from_secs(40 * 86_400);

/// How long an in-flight slot may outlive a crashed instance.
const SLOT_TTL: Duration = Duration::from_secs(15 * 60);

/// A limiter backed by Redis.
pub struct RedisLimiter {
    conn: ConnectionManager,
    prefix: String,
    gcra: Script,
    settle: Script,
    acquire: Script,
    release: Script,
    fleet: Script,
    spend_add: Script,
    spend_rebuild: Script,
    timeout: Duration,
}

impl RedisLimiter {
    /// Connects to `url`; keys are namespaced under `prefix`. Fails if Redis cannot be reached
    /// at start (later outages are handled per request).
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<Self, Unavailable> {
        let client =
            redis::Client::open(url).map_err(|e| Unavailable(format!("redis url: {e}")))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| Unavailable(format!("connecting to redis: {e}")))?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            gcra: Script::new(GCRA_SCRIPT),
            settle: Script::new(SETTLE_SCRIPT),
            acquire: Script::new(ACQUIRE_SCRIPT),
            release: Script::new(RELEASE_SCRIPT),
            fleet: Script::new(FLEET_SCRIPT),
            spend_add: Script::new(SPEND_ADD_SCRIPT),
            spend_rebuild: Script::new(SPEND_REBUILD_SCRIPT),
            timeout,
        })
    }

    /// One `PING`, within the limiter's timeout.
    pub async fn ping(&self) -> Result<(), Unavailable> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING");
        tokio::time::timeout(self.timeout, cmd.query_async::<String>(&mut conn))
            .await
            .map_err(|_| Unavailable("redis did not answer in time".into()))?
            .map_err(|e| Unavailable(e.to_string()))?;
        Ok(())
    }

    /// Marks `instance` alive for `ttl` and returns how many instances are alive.
    pub async fn heartbeat(&self, instance: &str, ttl: Duration) -> Result<u32, Unavailable> {
        let mut conn = self.conn.clone();
        let mut invocation = self.fleet.key(format!("{}:fleet", self.prefix));
        invocation.arg(instance).arg(micros(ttl) / 1000);
        let n: i64 = tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| Unavailable("redis did not answer in time".into()))?
            .map_err(|e| Unavailable(e.to_string()))?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The month's marker (present while its counters are built) and a counter's key.
    fn spend_key(&self, month_ms: i64, name: Option<&str>) -> String {
        match name {
            None => format!("{}:spend:{month_ms}", self.prefix),
            Some(name) => format!("{}:spend:{month_ms}:{name}", self.prefix),
        }
    }

    /// The month's counters, or `None` when they are not built; one `MGET`.
    pub async fn spend_read(
        &self,
        month_ms: i64,
        names: &[String],
    ) -> Result<Option<Vec<i64>>, Unavailable> {
        let mut cmd = redis::cmd("MGET");
        cmd.arg(self.spend_key(month_ms, None));
        for name in names {
            cmd.arg(self.spend_key(month_ms, Some(name)));
        }
        let mut conn = self.conn.clone();
        let values: Vec<Option<i64>> =
            tokio::time::timeout(self.timeout, cmd.query_async(&mut conn))
                .await
                .map_err(|_| Unavailable("redis did not answer in time".into()))?
                .map_err(|e| Unavailable(e.to_string()))?;
        let mut values = values.into_iter();
        if values.next().flatten().is_none() {
            return Ok(None);
        }
        Ok(Some(values.map(|v| v.unwrap_or(0)).collect()))
    }

    /// Runs a spend script over the month's marker and `pairs` of (counter, value).
    async fn spend_script(
        &self,
        script: &Script,
        month_ms: i64,
        pairs: &[(String, i64)],
    ) -> Result<bool, Unavailable> {
        let mut invocation = script.key(self.spend_key(month_ms, None));
        for (name, value) in pairs {
            invocation
                .key(self.spend_key(month_ms, Some(name)))
                .arg(*value);
        }
        invocation.arg(u64::try_from(SPEND_TTL.as_millis()).unwrap_or(u64::MAX));
        let mut conn = self.conn.clone();
        let done: i64 = tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| Unavailable("redis did not answer in time".into()))?
            .map_err(|e| Unavailable(e.to_string()))?;
        Ok(done == 1)
    }

    /// Adds the deltas to the month's counters when they are built; `false` when they are not.
    pub async fn spend_add(
        &self,
        month_ms: i64,
        deltas: &[(String, i64)],
    ) -> Result<bool, Unavailable> {
        if deltas.is_empty() {
            return Ok(true);
        }
        self.spend_script(&self.spend_add, month_ms, deltas).await
    }

    /// Builds the month's counters from `counts` unless they exist.
    pub async fn spend_rebuild(
        &self,
        month_ms: i64,
        counts: &[(String, i64)],
    ) -> Result<bool, Unavailable> {
        self.spend_script(&self.spend_rebuild, month_ms, counts)
            .await
    }

    fn key(&self, kind: &str, scope: &str) -> String {
        format!("{}:{kind}:{scope}", self.prefix)
    }

    /// One GCRA step of `cost` against the arrival time stored under `key`.
    async fn take(&self, key: String, limit: u32, cost: u32) -> Result<RateDecision, Unavailable> {
        let limit = limit.max(1);
        let step = (WINDOW / limit) * cost.clamp(1, limit);
        let mut conn = self.conn.clone();
        let mut invocation = self.gcra.key(key);
        invocation.arg(micros(step)).arg(micros(WINDOW));
        let call = invocation.invoke_async::<(i64, i64, i64)>(&mut conn);
        let (ok, retry_us, ahead_us) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| Unavailable("redis did not answer in time".into()))?
            .map_err(|e| Unavailable(e.to_string()))?;
        let to_duration = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        if ok == 1 {
            return Ok(admitted(limit, to_duration(ahead_us)));
        }
        // Same arithmetic as the in-process limiter, so both report alike; the script's
        // microsecond figure can only round the wait down.
        let (_, retry_after) = gcra(limit, cost, to_duration(ahead_us));
        Ok(RateDecision {
            allowed: false,
            limit,
            remaining: 0,
            reset: to_duration(ahead_us),
            retry_after: retry_after.max(to_duration(retry_us)),
        })
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[async_trait]
impl Limiter for RedisLimiter {
    async fn rate(&self, scope: &str, limit: u32) -> Result<RateDecision, Unavailable> {
        self.take(self.key("gcra", scope), limit, 1).await
    }

    async fn tokens(
        &self,
        scope: &str,
        limit: u32,
        cost: u32,
    ) -> Result<RateDecision, Unavailable> {
        self.take(self.key("tpm", scope), limit, cost).await
    }

    async fn settle(&self, scope: &str, limit: u32, delta: i64) -> Result<(), Unavailable> {
        let interval_us = i64::try_from(micros(WINDOW / limit.max(1))).unwrap_or(i64::MAX);
        let mut conn = self.conn.clone();
        let mut invocation = self.settle.key(self.key("tpm", scope));
        invocation.arg(delta.saturating_mul(interval_us));
        tokio::time::timeout(self.timeout, invocation.invoke_async::<i64>(&mut conn))
            .await
            .map_err(|_| Unavailable("redis did not answer in time".into()))?
            .map_err(|e| Unavailable(e.to_string()))?;
        Ok(())
    }

    async fn acquire(&self, scope: &str, limit: u32) -> Result<Option<Permit>, Unavailable> {
        let key = self.key("inflight", scope);
        let mut conn = self.conn.clone();
        let mut invocation = self.acquire.key(&key);
        invocation
            .arg(limit)
            .arg(u64::try_from(SLOT_TTL.as_millis()).unwrap_or(u64::MAX));
        let taken: i64 = tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| Unavailable("redis did not answer in time".into()))?
            .map_err(|e| Unavailable(e.to_string()))?;
        if taken != 1 {
            return Ok(None);
        }
        let release = self.release.clone();
        let conn = self.conn.clone();
        Ok(Some(Permit::new(move || {
            // Drop cannot wait: release in the background (bounded by SLOT_TTL if it fails).
            let mut conn = conn;
            drop(tokio::spawn(async move {
                let invocation = release.key(key);
                if let Err(e) = invocation.invoke_async::<i64>(&mut conn).await {
                    tracing::warn!(error = %e, "releasing an in-flight slot in redis failed; it expires on its own");
                }
            }));
        })))
    }
}
