//! The one policy step after a call's model is resolved (entitlement is
//! `policy::entitlement`): the key's, team's and plan's monthly caps, then the concurrency,
//! request and token limits of every scope. Chat and task creation take it alike;
//! count_tokens is free and takes only entitlement.

use crate::policy::{Admission, Refusal};
use crate::state::AppState;
use crate::store::ApiKey;

/// Admits one call by `key` estimated at `tokens` input tokens (1 for a task). A refusal is
/// the 429 naming the rule, with the rate state for the family's headers.
pub async fn admit(state: &AppState, key: &ApiKey, tokens: u32) -> Result<Admission, Box<Refusal>> {
    let dir = state.directory.get();
    if let Err(error) = state.spend.check(&dir, key).await {
        return Err(Box::new(Refusal { error, rate: None }));
    }
    let scopes = dir.scopes(key);
    crate::policy::admit(
        state.limiter.as_ref(),
        state.config.limits.fail_open,
        &scopes,
        tokens,
    )
    .await
}

/// Admits one task poll (status read, record-info, cancel) by `key`: it counts against the
/// requests-per-minute limits of the key, team and account, like any request. Monthly caps and
/// concurrency do not apply, so a key out of credit can still follow its running tasks.
pub async fn admit_poll(state: &AppState, key: &ApiKey) -> Result<(), crate::error::Error> {
    let dir = state.directory.get();
    let scopes = dir.scopes(key);
    crate::policy::requests(
        state.limiter.as_ref(),
        state.config.limits.fail_open,
        &scopes,
    )
    .await
    .map(|_| ())
    .map_err(|r| r.error)
}
