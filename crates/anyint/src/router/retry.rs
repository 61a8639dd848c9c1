//! Retry policy: which failures are retried, how long to wait, and what the client is told
//! when every route and fallback has failed.
//!
//! Retried: connect errors, timeouts, and upstream 408, 429, 500, 502, 503, 504 and 529 — but
//! only before any byte reached the client, and never a client error (400-class). An upstream
//! `retry-after` is honoured when it fits in the request's budget; otherwise the request moves
//! on. Backoff is exponential with full jitter (a random wait in `[0, min(max, base·2ⁿ)]`).

use std::time::Duration;

use super::balance::Rng;
use crate::error::{Error, ErrorKind};

/// What a failed attempt means for the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The client's request is at fault: answer now, try nothing else.
    Client,
    /// The upstream throttled; it may say when to come back.
    Throttled(Option<Duration>),
    /// The upstream failed or was unreachable; it may say when to come back.
    Unavailable(Option<Duration>),
    /// The upstream did not answer in time.
    Timeout,
    /// This key's quota is exhausted: another key or route may work, this key will not.
    QuotaExhausted,
    /// The upstream refused this key (401/403): another key or route may work.
    KeyRejected,
    /// The route itself is misconfigured (upstream 401/403/404): try other routes only.
    RouteBroken,
}

impl Class {
    /// Whether the failure counts against the route's health.
    pub fn counts_against_route(self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::Timeout | Self::RouteBroken
        )
    }
}

/// Classifies a failed attempt.
pub fn classify(e: &Error) -> Class {
    match e.kind {
        ErrorKind::UpstreamRateLimited => Class::Throttled(e.retry_after),
        ErrorKind::UpstreamTimeout => Class::Timeout,
        ErrorKind::UpstreamUnavailable | ErrorKind::UpstreamProtocol => match e.code {
            Some(crate::providers::http::CODE_QUOTA) => Class::QuotaExhausted,
            Some(crate::providers::http::CODE_KEY_REJECTED) => Class::KeyRejected,
            Some(crate::providers::http::CODE_ROUTE_BROKEN) => Class::RouteBroken,
            _ => Class::Unavailable(e.retry_after),
        },
        ErrorKind::InvalidRequest
        | ErrorKind::Unauthenticated
        | ErrorKind::PermissionDenied
        | ErrorKind::NotFound
        | ErrorKind::PayloadTooLarge
        | ErrorKind::RequestTimeout
        | ErrorKind::Conflict
        | ErrorKind::RateLimited
        | ErrorKind::QuotaExceeded
        | ErrorKind::Overloaded
        | ErrorKind::Internal => Class::Client,
    }
}

/// The `n`-th backoff (0-based) with full jitter.
pub fn backoff(n: u32, base: Duration, max: Duration, rng: &mut Rng) -> Duration {
    let step = base
        .saturating_mul(1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX))
        .min(max);
    rng.duration_up_to(step)
}

/// The client's answer once every attempt failed: 429 with the shortest `Retry-After` when
/// every failure was a throttle, otherwise 503 (or the last failure when it is more specific).
pub fn exhausted(failures: Vec<Error>) -> Error {
    let all_throttled = !failures.is_empty()
        && failures
            .iter()
            .all(|e| e.kind == ErrorKind::UpstreamRateLimited);
    if all_throttled {
        let shortest = failures.iter().filter_map(|e| e.retry_after).min();
        let mut e = failures
            .into_iter()
            .next()
            .unwrap_or_else(|| Error::internal("no failures"));
        e.retry_after = shortest;
        return e;
    }
    let attempts = failures.len();
    match failures
        .into_iter()
        .rev()
        .find(|e| e.kind != ErrorKind::UpstreamRateLimited)
    {
        Some(last) if attempts <= 1 => last,
        Some(last) => {
            let cause = last.cause.clone().unwrap_or_default();
            Error::new(ErrorKind::UpstreamUnavailable, format!("every upstream route for this model failed ({attempts} attempts); retry the request"))
                .with_code("upstream_unavailable")
                .with_retry_after(last.retry_after)
                .with_cause(format!("last failure: {cause}"))
        }
        None => Error::new(
            ErrorKind::UpstreamUnavailable,
            "no upstream route is available for this model right now; retry shortly",
        )
        .with_code("upstream_unavailable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_the_cap() {
        let mut rng = Rng::new(9);
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for n in 0..10 {
            let cap = (base * 2u32.pow(n)).min(max);
            for _ in 0..50 {
                assert!(backoff(n, base, max, &mut rng) <= cap);
            }
        }
        // Full jitter actually spreads: not every draw is the cap.
        let draws: Vec<_> = (0..50).map(|_| backoff(3, base, max, &mut rng)).collect();
        assert!(draws.iter().any(|d| *d < Duration::from_millis(400)));
    }

    #[test]
    fn all_throttles_give_429_with_the_shortest_retry_after() {
        let t = |s| {
            Error::new(ErrorKind::UpstreamRateLimited, "t")
                .with_retry_after(Some(Duration::from_secs(s)))
        };
        let e = exhausted(vec![t(9), t(3), t(5)]);
        assert_eq!(e.kind, ErrorKind::UpstreamRateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn mixed_failures_give_503() {
        let e = exhausted(vec![
            Error::new(ErrorKind::UpstreamRateLimited, "t"),
            Error::new(ErrorKind::UpstreamUnavailable, "u"),
            Error::new(ErrorKind::UpstreamTimeout, "x"),
        ]);
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(exhausted(Vec::new()).status() == http::StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&Error::invalid(None, "x")), Class::Client);
        assert_eq!(
            classify(&Error::new(ErrorKind::UpstreamTimeout, "x")),
            Class::Timeout
        );
        let q = Error::new(ErrorKind::UpstreamUnavailable, "q")
            .with_code(crate::providers::http::CODE_QUOTA);
        assert_eq!(classify(&q), Class::QuotaExhausted);
    }
}
