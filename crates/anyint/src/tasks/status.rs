//! A task's status over its life: lookup with refresh-on-read, the leased refresh from
//! upstream (client polls and the poller), [`apply`] (a state change with its outbox events
//! and, when final, its one ledger row, in one transaction), cancel, and the upstream's own
//! callbacks.

use std::time::Duration;

use serde_json::Value;

use super::render;
use super::{TaskFamily, cost, millis, sha256_hex};
use crate::error::{Error, ErrorKind};
use crate::providers::{Call, Observation, Provider, ProviderAdapter};
use crate::state::AppState;
use crate::store::{ApiKey, NewDelivery, Task, TaskStatus, TaskUpdate, UsageRecord};

/// The caller's task: `None` when it does not exist *or* belongs to another account (the
/// answers must not differ). A stale unfinished task is refreshed from upstream first.
pub async fn lookup(
    state: &AppState,
    key: &ApiKey,
    id: &str,
    family: TaskFamily,
) -> Result<Option<Task>, Error> {
    // A poll is a request: it counts against the key's requests per minute.
    crate::gateway::admission::admit_poll(state, key).await?;
    let Some(task) = owned(state, key, id, family).await? else {
        return Ok(None);
    };
    let now = crate::clock::unix_millis();
    let fresh = task
        .refreshed_at_ms
        .saturating_add(millis(state.config.tasks.refresh_after))
        > now;
    if task.settled || task.upstream_id.is_none() || fresh {
        return Ok(Some(task));
    }
    if !claim(state, &task).await? {
        // Another poller is on it; its answer lands soon.
        return Ok(Some(task));
    }
    Ok(Some(refresh(state, task, &state.instance_id).await))
}

/// The task if it exists and belongs to `key`'s account and `family`; `None` otherwise, the
/// same for both cases so existence never leaks. An ID outside the ID rule is missing without
/// a store round trip, so both backends answer it alike.
async fn owned(
    state: &AppState,
    key: &ApiKey,
    id: &str,
    family: TaskFamily,
) -> Result<Option<Task>, Error> {
    if !crate::store::is_valid_id(id) {
        return Ok(None);
    }
    Ok(state
        .store
        .task(id)
        .await?
        .filter(|t| t.account == key.account && t.family == family.as_str()))
}

/// Takes this instance's lease on an unfinished task; `false` when another holder has it.
async fn claim(state: &AppState, task: &Task) -> Result<bool, Error> {
    let now = crate::clock::unix_millis();
    let lease = millis(state.config.tasks.lease);
    Ok(state
        .store
        .claim_task(&task.id, &state.instance_id, now, lease)
        .await?)
}

/// Fetches a leased task's status from upstream and applies it; the lease is released either
/// way. Returns the task as it now stands.
pub async fn refresh(state: &AppState, mut task: Task, owner: &str) -> Task {
    let obs = if task.upstream_id.is_none() {
        expired(state, &task)
    } else {
        fetch(state, &task).await.unwrap_or_else(|e| {
            // As for creation: never the upstream's message, which may quote the request.
            tracing::warn!(task = %task.id, provider = %task.provider, error = e.kind.as_str(), code = e.code.unwrap_or(""), status = e.status().as_u16(), cause = e.cause.as_deref().unwrap_or(""), "task status refresh failed; will retry");
            Observation::unchanged()
        })
    };
    // The deadline is judged after a last look upstream, so a task that finished just in time
    // is not failed for when it was polled.
    let obs = if !obs.status.is_terminal() && crate::clock::unix_millis() >= task.deadline_ms {
        expired(state, &task)
    } else {
        obs
    };
    match apply(state, &mut task, obs, Some(owner)).await {
        Ok(Some(mut t)) => {
            t.request = std::mem::take(&mut task.request);
            t
        }
        Ok(None) => task,
        Err(e) => {
            tracing::warn!(task = %task.id, error = e.kind.as_str(), cause = e.cause.as_deref().unwrap_or(""), "task update failed; will retry");
            task
        }
    }
}

/// The observation for a task past its deadline, or one whose creation never completed.
fn expired(state: &AppState, task: &Task) -> Observation {
    if task.upstream_id.is_none() {
        let native = if task.family == "music" {
            "CREATE_TASK_FAILED"
        } else {
            "FAILED"
        };
        return Observation::failed(
            native,
            "SubmitInterrupted",
            "the gateway was interrupted while creating this task upstream; it was not charged; create it again".into(),
        );
    }
    let secs = state.config.tasks.deadline.as_secs();
    if task.family == "music" {
        Observation::failed(
            "GENERATE_AUDIO_FAILED",
            "408",
            format!("the task did not finish within {secs} s; it was not charged"),
        )
    } else {
        Observation::failed(
            "FAILED",
            "TaskTimeout",
            format!("the task did not finish within {secs} s; it was not charged"),
        )
    }
}

/// The task's provider and a call with the provider key that created the task (a task exists
/// only in the upstream account that made it), limited to `total` and to the provider's time
/// to first byte.
fn task_call<'a>(
    state: &'a AppState,
    task: &Task,
    total: Duration,
) -> Result<(&'a Provider, Call<'a>), Error> {
    let provider = state
        .providers
        .iter()
        .find(|p| p.config.name == task.provider)
        .ok_or_else(|| {
            Error::internal(format!(
                "task {} names provider {} which is no longer configured",
                task.id, task.provider
            ))
        })?;
    let call = provider.call(
        usize::try_from(task.key_slot).unwrap_or(0),
        total.min(provider.config.deadlines.ttfb),
    );
    Ok((provider, call))
}

async fn fetch(state: &AppState, task: &Task) -> Result<Observation, Error> {
    // Bounded well inside the lease, so a slow upstream cannot outlive our ownership.
    let (provider, call) = task_call(state, task, state.config.tasks.lease / 2)?;
    let upstream_id = task.upstream_id.as_deref().unwrap_or_default();
    let body = match provider.adapter {
        ProviderAdapter::Music => {
            provider
                .fetch(crate::providers::music::status_request(
                    provider,
                    &call,
                    upstream_id,
                ))
                .await?
        }
        _ => {
            provider
                .fetch(crate::providers::dashscope::status_request(
                    provider,
                    &call,
                    upstream_id,
                ))
                .await?
        }
    };
    match provider.adapter {
        ProviderAdapter::Music => crate::providers::music::decode_status(provider, &body),
        _ => crate::providers::dashscope::decode_status(provider, &body),
    }
}

/// The next background poll: soon after a change, then less often the longer a task sits
/// unchanged (a quarter of its quiet time, within the configured bounds).
fn next_poll(state: &AppState, task: &Task, changed: bool, now: i64) -> i64 {
    let cfg = &state.config.tasks;
    let quiet = if changed {
        0
    } else {
        now.saturating_sub(task.updated_at_ms)
    };
    let wait = (quiet / 4).clamp(millis(cfg.poll_interval), millis(cfg.poll_max_interval));
    now.saturating_add(wait)
}

/// Applies an observation: writes the change with its events (and, when terminal, its one
/// ledger row) atomically. `lease_owner` is `None` for an upstream callback. Returns the task
/// as updated, or `None` when the store refused (lease lost, already settled, or stale).
pub async fn apply(
    state: &AppState,
    task: &mut Task,
    obs: Observation,
    lease_owner: Option<&str>,
) -> Result<Option<Task>, Error> {
    let now = crate::clock::unix_millis();
    let changed = !obs.native.is_empty()
        && obs.stage >= task.stage
        && (obs.native != task.native_status || obs.status != task.status);
    if !changed && lease_owner.is_none() {
        // A repeated or stale callback: nothing to do.
        return Ok(None);
    }
    // Everything but the stored request, which can be megabytes of prompt and inline media: an
    // update never changes it, so it is not copied (callers move it over when they need it).
    let request = std::mem::take(&mut task.request);
    let mut next = task.clone();
    task.request = request;
    next.polls = task.polls + i64::from(lease_owner.is_some());
    next.refreshed_at_ms = now;
    next.next_poll_ms = next_poll(state, task, changed, now);
    let mut events = Vec::new();
    let mut settlement = None;
    if changed {
        next.status = obs.status;
        next.native_status = obs.native.clone();
        next.stage = obs.stage;
        next.updated_at_ms = now;
        if !obs.result.is_null() {
            next.result = Some(obs.result.clone());
        }
        if let Some((code, msg)) = &obs.error {
            next.error_code = Some(code.clone());
            next.error_message = Some(msg.clone());
        }
        if next.status.is_terminal() {
            let model = state.config.model(&task.model);
            let charge = if next.status == TaskStatus::Succeeded {
                obs.units
                    .map_or(task.reserved_micros, |u| cost(model, &task.kind, u))
            } else {
                0
            };
            next.settled = true;
            next.charged_micros = Some(charge);
            next.finished_at_ms = Some(now);
            settlement = Some(ledger_row(&next, charge, now));
        }
        let event_id = event_id(&task.id, &next.native_status);
        if let Some(url) = &task.callback_url
            && let Some(body) = event_body(&next, &event_id)
        {
            events.push(NewDelivery {
                event_id,
                task_id: task.id.clone(),
                account: task.account.clone(),
                url: url.clone(),
                body,
                expires_at_ms: now.saturating_add(millis(state.config.tasks.callback_horizon)),
            });
        }
    }
    let update = TaskUpdate {
        id: task.id.clone(),
        lease_owner: lease_owner.map(str::to_owned),
        status: next.status,
        native_status: next.native_status.clone(),
        stage: next.stage,
        result: next.result.clone(),
        error_code: next.error_code.clone(),
        error_message: next.error_message.clone(),
        now_ms: now,
        next_poll_ms: next.next_poll_ms,
        polls: next.polls,
        changed,
        events,
        settlement: settlement.clone(),
    };
    let has_events = !update.events.is_empty();
    if !state.store.apply_task(&update).await? {
        // A callback moved the task past this observation (or it settled): the lease is not
        // needed any more, and holding it would delay the next poll.
        if let Some(owner) = lease_owner {
            state.store.release_task(&task.id, owner).await?;
        }
        return Ok(None);
    }
    if let Some(row) = settlement {
        // The reservation becomes the charge.
        state.spend.adjust(
            &task.key_id,
            task.team.as_deref(),
            &task.account,
            row.cost_micros - task.reserved_micros,
        );
        metrics::counter!(crate::telemetry::METRIC_TASKS, "family" => TaskFamily::parse(&task.family).as_str(), "event" => next.status.as_str()).increment(1);
    }
    if has_events {
        state.outbox_wake.notify_one();
    }
    Ok(Some(next))
}

/// The stable ID of the event reporting a task's native status: `evt_<task>_<status>`, kept
/// inside the ID rule whatever the upstream calls its status (other characters become `_`, and
/// the status part is cut to fit), so every event can be named in the admin API.
fn event_id(task_id: &str, native_status: &str) -> String {
    let room = crate::store::MAX_ID_LEN.saturating_sub(task_id.len() + "evt__".len());
    let status: String = native_status
        .chars()
        .take(room)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("evt_{task_id}_{status}")
}

/// The one ledger row of a finished task; its request ID is the task ID, so it can only ever
/// be written once.
fn ledger_row(task: &Task, charged: i64, now: i64) -> UsageRecord {
    UsageRecord {
        request_id: task.id.clone(),
        key_id: task.key_id.clone(),
        account: task.account.clone(),
        model: task.model.clone(),
        provider: task.provider.clone(),
        upstream_model: task.upstream_model.clone(),
        family: task.family.clone(),
        stream: false,
        prompt_tokens: 0,
        completion_tokens: 0,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        web_searches: 0,
        status: 200,
        outcome: format!("task_{}", task.status.as_str()),
        latency_ms: now.saturating_sub(task.created_at_ms),
        created_at_ms: now,
        cost_micros: charged,
        team: task.team.clone(),
    }
}

/// The client-callback body for a task's new state, in its family's shape (`None` for states
/// the family has no event for).
fn event_body(task: &Task, event_id: &str) -> Option<String> {
    match TaskFamily::parse(&task.family) {
        TaskFamily::DashScope => Some(render::dashscope_task(task, event_id).to_string()),
        TaskFamily::Music => render::music_callback(task).map(|v| v.to_string()),
    }
}

/// Cancels a pending DashScope task upstream and settles it with no charge.
pub async fn cancel(state: &AppState, key: &ApiKey, id: &str) -> Result<Option<Task>, Error> {
    crate::gateway::admission::admit_poll(state, key).await?;
    let Some(mut task) = owned(state, key, id, TaskFamily::DashScope).await? else {
        return Ok(None);
    };
    if task.status != TaskStatus::Pending {
        let now = if task.status == TaskStatus::Submitting {
            "still being created"
        } else {
            task.native_status.as_str()
        };
        return Err(Error::invalid(
            None,
            format!("only PENDING tasks can be canceled; this task is {now}"),
        )
        .with_code("UnsupportedOperation"));
    }
    let owner = &state.instance_id;
    if !claim(state, &task).await? {
        return Err(Error::new(
            ErrorKind::Conflict,
            "the task's status is being refreshed right now; retry the cancel in a moment",
        )
        .with_code("task_busy")
        .with_retry_after(Some(Duration::from_secs(1))));
    }
    let result = async {
        let (p, call) = task_call(state, &task, Duration::MAX)?;
        let upstream_id = task.upstream_id.as_deref().unwrap_or_default();
        p.fetch(crate::providers::dashscope::cancel_request(
            p,
            &call,
            upstream_id,
        ))
        .await
    }
    .await;
    let obs = match result {
        Ok(_) => Observation {
            status: TaskStatus::Canceled,
            native: "CANCELED".into(),
            stage: 3,
            result: Value::Null,
            error: None,
            units: None,
        },
        Err(e) => {
            let _ = apply(state, &mut task, Observation::unchanged(), Some(owner)).await;
            return Err(e);
        }
    };
    apply(state, &mut task, obs, Some(owner))
        .await
        .map(|t| t.or(Some(task)))
}

/// Takes an upstream's callback for the task holding `token`: `Ok(false)` when no task holds
/// it. A repeated or out-of-order callback changes nothing; a new stage is applied like a
/// poll result.
pub async fn upstream_callback(state: &AppState, token: &str, body: &[u8]) -> Result<bool, Error> {
    let hash = sha256_hex(token.as_bytes());
    let Some(mut task) = state.store.task_by_callback_token(&hash).await? else {
        return Ok(false);
    };
    let (upstream_id, obs) = crate::providers::music::decode_callback(body)?;
    if task.upstream_id.is_none() {
        // It called back before creation was recorded; polling picks the state up.
        return Ok(true);
    }
    if upstream_id.is_some() && upstream_id != task.upstream_id {
        return Err(Error::invalid(
            None,
            "the callback names another task than the one this URL belongs to",
        ));
    }
    if task.settled {
        return Ok(true);
    }
    if obs.status.is_terminal() {
        // A callback alone never settles a charge: the final state is confirmed with the
        // upstream, under the lease (if a poller holds it, its answer is moments away).
        if claim(state, &task).await? {
            refresh(state, task, &state.instance_id).await;
        }
        return Ok(true);
    }
    apply(state, &mut task, obs, None).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_follow_the_id_rule() {
        let task = "task_0123456789abcdef0123456789abcdef";
        assert_eq!(
            event_id(task, "TEXT_SUCCESS"),
            format!("{task}_text_success").replacen("task_", "evt_task_", 1)
        );
        for native in ["SUCCEEDED", "in progress", "états/é", &"X".repeat(500), ""] {
            let id = event_id(task, native);
            assert!(crate::store::is_valid_id(&id), "{native:?} → {id:?}");
            assert!(id.starts_with(&format!("evt_{task}_")), "{id}");
        }
    }
}
