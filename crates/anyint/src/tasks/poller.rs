//! The background poller: every instance claims due unfinished tasks under a lease (no leader;
//! `FOR UPDATE SKIP LOCKED` on Postgres), refreshes them from upstream, and fails those past
//! their deadline. The next poll of each task backs off the longer it sits unchanged.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use crate::state::AppState;

/// Runs the poll loop until the task is aborted.
pub async fn run(state: Arc<AppState>) {
    let cfg = &state.config.tasks;
    let owner = state.instance_id.clone();
    let lease_ms = i64::try_from(cfg.lease.as_millis()).unwrap_or(i64::MAX);
    // A pass claims only what it fetches at once, so no claimed task waits out its lease
    // behind others (another instance could then take it while this one is still busy).
    let batch = i64::try_from(cfg.poller_batch).unwrap_or(32);
    // Wake often enough for the shortest poll interval without spinning on an idle store.
    let tick = (cfg.poll_interval / 2).clamp(Duration::from_millis(20), Duration::from_secs(1));
    loop {
        let now = crate::clock::unix_millis();
        let due = match state
            .store
            .claim_due_tasks(&owner, now, lease_ms, batch)
            .await
        {
            Ok(t) => {
                crate::telemetry::store_answered();
                t
            }
            Err(e) => {
                // Retried every tick; an outage is logged once.
                crate::telemetry::store_failed("claiming due tasks", &e);
                Vec::new()
            }
        };
        let full = i64::try_from(due.len()).unwrap_or(0) >= batch;
        futures_util::stream::iter(due)
            .for_each_concurrent(cfg.poller_batch, |task| {
                let state = state.clone();
                let owner = owner.clone();
                async move {
                    super::status::refresh(&state, task, &owner).await;
                }
            })
            .await;
        if !full {
            tokio::time::sleep(tick).await;
        }
    }
}
