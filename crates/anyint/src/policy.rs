//! Policy: may this key do this, now? Expiry and address allowlist (`access`), model
//! entitlement (`entitlement`), and rate and concurrency limits (`limits`), each a plain
//! function the gateway calls in a visible order.

pub mod access;
pub mod directory;
pub mod entitlement;
pub mod limits;
pub mod quota;

use crate::error::{Error, ErrorKind};
use limits::{Limiter, Permit, RateDecision};

/// What admission granted: a concurrency slot to hold until the response ends, and the rate
/// state for the `x-ratelimit-*` headers.
#[derive(Debug, Default)]
pub struct Admission {
    /// Held until the last byte of the response (one per level with a concurrency limit).
    pub permits: Vec<Permit>,
    /// The per-minute decision, when the key has a limit.
    pub rate: Option<RateDecision>,
    /// The tightest tokens-per-minute decision.
    pub tokens: Option<RateDecision>,
    /// Token scopes to settle once the real usage is known: (scope, limit).
    pub settle: Vec<(String, u32)>,
}

/// A refused admission: the error (429, naming the rule) and the rate state for headers.
#[derive(Debug)]
pub struct Refusal {
    /// The client-facing error.
    pub error: Error,
    /// The per-minute state, when that limit refused.
    pub rate: Option<RateDecision>,
}

/// Applies the concurrency and per-minute limits of every scope (key, team, account).
/// Concurrency is checked first, so a request refused for concurrency does not use up a
/// per-minute slot. A refusal names the level and the rule, and carries `Retry-After`.
pub async fn admit(
    limiter: &dyn Limiter,
    fail_open: bool,
    scopes: &[directory::Scope<'_>],
    estimate: u32,
) -> Result<Admission, Box<Refusal>> {
    let mut admission = Admission::default();
    for scope in scopes {
        if let Some(n) = scope.concurrency {
            let acquired = match limiter.acquire(&scope.id, n).await {
                Ok(p) => p,
                Err(e) => {
                    unavailable(&e, fail_open)?;
                    continue;
                }
            };
            let Some(p) = acquired else {
                let error = Error::new(
                    ErrorKind::RateLimited,
                    format!("concurrency limit reached for {}: {n} requests in flight; retry when one finishes", scope.label),
                )
                .with_code("rate_limit_exceeded")
                .with_retry_after(Some(std::time::Duration::from_secs(1)));
                return Err(Box::new(Refusal { error, rate: None }));
            };
            admission.permits.push(p);
        }
    }
    admission.rate = requests(limiter, fail_open, scopes).await?;
    // Tokens last: they are admitted on an estimate and settled on the real usage.
    for scope in scopes {
        if let Some(n) = scope.tpm {
            let d = match limiter.tokens(&scope.id, n, estimate).await {
                Ok(d) => d,
                Err(e) => {
                    unavailable(&e, fail_open)?;
                    continue;
                }
            };
            if !d.allowed {
                let error = per_minute_refusal("token rate limit", scope.label, n, "tokens", &d);
                return Err(Box::new(Refusal {
                    error,
                    rate: admission.rate,
                }));
            }
            admission.settle.push((scope.id.clone(), n));
            if admission.tokens.is_none_or(|t| d.remaining < t.remaining) {
                admission.tokens = Some(d);
            }
        }
    }
    Ok(admission)
}

/// Counts one request against every scope's requests-per-minute limit; returns the tightest
/// decision (for the headers), or the refusal naming the level. Task polls take only this step.
pub async fn requests(
    limiter: &dyn Limiter,
    fail_open: bool,
    scopes: &[directory::Scope<'_>],
) -> Result<Option<RateDecision>, Box<Refusal>> {
    let mut tightest: Option<RateDecision> = None;
    for scope in scopes {
        if let Some(n) = scope.rpm {
            let d = match limiter.rate(&scope.id, n).await {
                Ok(d) => d,
                Err(e) => {
                    unavailable(&e, fail_open)?;
                    continue;
                }
            };
            if !d.allowed {
                let error = per_minute_refusal("rate limit", scope.label, n, "requests", &d);
                return Err(Box::new(Refusal {
                    error,
                    rate: Some(d),
                }));
            }
            // The headers report the tightest level.
            if tightest.is_none_or(|r| d.remaining < r.remaining) {
                tightest = Some(d);
            }
        }
    }
    Ok(tightest)
}

/// A 429 for a per-minute limit, naming the level and the rule and saying when to retry.
fn per_minute_refusal(
    rule: &str,
    level: directory::Label<'_>,
    n: u32,
    unit: &str,
    d: &RateDecision,
) -> Error {
    let secs = d.retry_after.as_secs_f64().ceil();
    Error::new(
        ErrorKind::RateLimited,
        format!("{rule} reached for {level}: {n} {unit} per minute; retry after {secs} s"),
    )
    .with_code("rate_limit_exceeded")
    .with_retry_after(Some(d.retry_after))
}

/// The limiter could not decide: with `fail_open` the request proceeds (counted);
/// otherwise it is refused with a 503 that says to retry shortly — never a 500. Not logged per
/// request: the Redis breaker logs an outage once, when it begins and when it ends.
fn unavailable(e: &limits::Unavailable, fail_open: bool) -> Result<(), Box<Refusal>> {
    metrics::counter!(crate::telemetry::METRIC_LIMITER_ERRORS, "mode" => if fail_open { "open" } else { "closed" }).increment(1);
    tracing::debug!(error = %e, fail_open, "rate limiter unavailable");
    if fail_open {
        return Ok(());
    }
    let error = Error::new(
        ErrorKind::Overloaded,
        "the gateway's rate limiter is unavailable; retry shortly",
    )
    .with_code("limiter_unavailable")
    .with_retry_after(Some(std::time::Duration::from_secs(1)));
    Err(Box::new(Refusal { error, rate: None }))
}
