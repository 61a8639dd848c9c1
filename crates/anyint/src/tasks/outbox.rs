//! The callback outbox: delivers task events to client callback URLs, signed, retried with
//! exponential backoff until acknowledged (any 2xx) or past the horizon, then dead (and
//! replayable from the admin API).
//!
//! Events are rows written in the same transaction as the state change they report
//! (`store::TaskStore::apply_task`), so a crash can delay a delivery but never lose one. Each
//! instance claims due deliveries under a lease (`FOR UPDATE SKIP LOCKED` on Postgres), so
//! several instances share the work without a leader. Delivery is at least once; receivers
//! deduplicate by `X-AnyInt-Event-Id`, which is stable across retries.
//!
//! Signature: `X-AnyInt-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<body>">`,
//! keyed by the account's signing secret (`/admin/v1/accounts/{id}/signing-secret`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hmac::{Hmac, Mac};

use crate::config::TasksConfig;
use crate::state::AppState;
use crate::store::{Delivery, DeliveryAttempt, DeliveryNext};

/// Deliveries one pass claims, all sent at once: nothing claimed waits out its lease.
const BATCH: usize = 16;

/// The delivery client, owned by the delivery loop ([`run`]).
pub struct Outbox {
    client: reqwest::Client,
}

impl Outbox {
    /// A client that never follows redirects and resolves only to permitted addresses.
    pub fn new(cfg: &TasksConfig) -> Result<Self, crate::error::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the host itself, around the guarded resolver.
            .no_proxy()
            .timeout(cfg.callback_timeout)
            .connect_timeout(cfg.callback_timeout)
            .dns_resolver(Arc::new(super::callback::GuardedResolver::new(
                cfg.callback_allow_networks.clone(),
            )))
            .user_agent(concat!("anyint-callbacks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                crate::error::Error::internal(format!("building the callback client: {e}"))
            })?;
        Ok(Self { client })
    }
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    // HMAC takes keys of any length; the else arm cannot be reached.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A fresh signing secret.
pub fn new_secret() -> String {
    format!("whsec_{}", hex::encode(crate::auth::random_bytes::<32>()))
}

/// The account's signing secret, created on first use.
pub async fn secret_for(state: &AppState, account: &str) -> Result<String, crate::store::Error> {
    if let Some(s) = state.store.signing_secret(account).await? {
        return Ok(s);
    }
    state
        .store
        .put_signing_secret(account, &new_secret(), crate::clock::unix_secs(), false)
        .await
}

/// Delay before attempt `n + 1` after `n` failures: doubling from the base, capped, with
/// jitter in its upper half so a receiver's recovery is not met by a thundering herd.
fn backoff(cfg: &TasksConfig, failures: i64, rng: &mut crate::router::balance::Rng) -> Duration {
    let exp = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = cfg
        .callback_backoff
        .saturating_mul(1u32 << exp)
        .min(cfg.callback_backoff_max);
    full / 2 + rng.duration_up_to(full / 2)
}

/// Runs the delivery loop until the task is aborted.
pub async fn run(state: Arc<AppState>, outbox: Outbox) {
    let outbox = Arc::new(outbox);
    let owner = state.instance_id.clone();
    let lease = state.config.tasks.callback_timeout + Duration::from_secs(5);
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    loop {
        let now = crate::clock::unix_millis();
        let due = match state
            .store
            .claim_deliveries(&owner, now, lease_ms, i64::try_from(BATCH).unwrap_or(16))
            .await
        {
            Ok(d) => {
                crate::telemetry::store_answered();
                d
            }
            Err(e) => {
                // Retried every tick; an outage is logged once.
                crate::telemetry::store_failed("claiming callback deliveries", &e);
                Vec::new()
            }
        };
        let full = due.len() >= BATCH;
        futures_util::stream::iter(due)
            .for_each_concurrent(BATCH, |d| {
                let (state, outbox) = (state.clone(), outbox.clone());
                let owner = owner.clone();
                async move { deliver(&state, &outbox, &owner, d).await }
            })
            .await;
        if !full {
            tokio::select! {
                () = state.outbox_wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }
}

/// One attempt at one delivery, logged with its outcome.
async fn deliver(state: &AppState, outbox: &Outbox, owner: &str, d: Delivery) {
    let cfg = &state.config.tasks;
    let started = Instant::now();
    let at_ms = crate::clock::unix_millis();
    let attempt = d.attempts + 1;
    let sent = send(state, outbox, &d).await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status, error) = match &sent {
        Ok(s) if (200..300).contains(s) => (Some(i64::from(*s)), None),
        Ok(s) => (
            Some(i64::from(*s)),
            Some(format!("the receiver answered HTTP {s}")),
        ),
        Err(e) => (None, Some(e.clone())),
    };
    let next = if error.is_none() {
        DeliveryNext::Delivered
    } else {
        let mut rng = state.router.rng();
        let delay = i64::try_from(backoff(cfg, attempt, &mut rng).as_millis()).unwrap_or(i64::MAX);
        let at = crate::clock::unix_millis().saturating_add(delay);
        if at > d.expires_at_ms {
            DeliveryNext::Dead
        } else {
            DeliveryNext::Retry(at)
        }
    };
    let outcome = match next {
        DeliveryNext::Delivered => "delivered",
        DeliveryNext::Retry(_) => "retry",
        DeliveryNext::Dead => "dead",
    };
    metrics::counter!(crate::telemetry::METRIC_CALLBACKS, "outcome" => outcome).increment(1);
    if next == DeliveryNext::Dead {
        tracing::warn!(event_id = %d.event_id, task = %d.task_id, attempts = attempt, "callback delivery is dead after its retry horizon; replay it from the admin API");
    }
    let record = DeliveryAttempt {
        attempt,
        at_ms,
        status,
        error,
        duration_ms,
    };
    if let Err(e) = state
        .store
        .finish_attempt(&d.event_id, owner, &record, next)
        .await
    {
        tracing::warn!(error = %e, event_id = %d.event_id, "recording a callback attempt failed; it will be retried");
    }
}

/// Sends one signed delivery; the receiver's status, or why there was none (no URL or body
/// detail: both may be sensitive).
async fn send(state: &AppState, outbox: &Outbox, d: &Delivery) -> Result<u16, String> {
    let url = super::callback::check_url(&state.config.tasks, &d.url)
        .await
        .map_err(|e| e.message)?;
    let secret = secret_for(state, &d.account)
        .await
        .map_err(|_| "the signing secret could not be read".to_owned())?;
    let t = crate::clock::unix_secs();
    let resp = outbox
        .client
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("X-AnyInt-Event-Id", &d.event_id)
        .header("X-AnyInt-Task-Id", &d.task_id)
        .header("X-AnyInt-Signature", signature(&secret, t, &d.body))
        .body(d.body.clone())
        .send()
        .await
        .map_err(|e| crate::providers::http::describe(&e))?;
    Ok(resp.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231 test case 2 covers HMAC itself; this pins the framing.
        let sig = signature("Jefe", 1, "what do ya want for nothing?");
        assert!(sig.starts_with("t=1,v1="));
        assert_eq!(sig.len(), "t=1,v1=".len() + 64);
        assert_ne!(sig, signature("Jefe", 2, "what do ya want for nothing?"));
        assert_ne!(sig, signature("jefe", 1, "what do ya want for nothing?"));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
