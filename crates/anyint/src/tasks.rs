//! Async media tasks (DashScope video and image, music): creation, status refresh, charging
//! and the events that feed client callbacks. Families parse and render; this module owns the
//! life of a task:
//!
//! 1. `create`: entitlement, limits and quota; a `submitting` row with the reservation and the
//!    `Idempotency-Key` is stored *before* the upstream call, so two replays cannot create two
//!    upstream tasks; the upstream's refusal deletes the row (nothing is left behind).
//! 2. `refresh` (on a client poll of a stale task, and by [`poller`]): one instance at a time,
//!    under a lease; the observation is applied by [`apply`].
//! 3. [`apply`]: a state change, its outbox events and, on a terminal state, its one ledger row
//!    commit together (`store::TaskStore::apply_task`), so the charge settles exactly once.
//! 4. [`outbox`] delivers the events, signed; [`callback`] guards callback URLs and takes the
//!    upstream's own callbacks.

pub mod callback;
pub mod outbox;
pub mod poller;
pub mod render;

use std::time::Duration;

use serde_json::Value;

use crate::config::{ModelApi, ModelConfig};
use crate::error::{Error, ErrorKind};
use crate::providers::{Call, Observation, Provider, ProviderAdapter};
use crate::state::AppState;
use crate::store::{ApiKey, NewDelivery, Task, TaskStatus, TaskUpdate, UsageRecord};

/// A task family: which client shape created the task and renders it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskFamily {
    /// `/dashscope/v1/…`.
    DashScope,
    /// `/music/v1/…`.
    Music,
}

impl TaskFamily {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DashScope => "dashscope",
            Self::Music => "music",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "music" {
            Self::Music
        } else {
            Self::DashScope
        }
    }

    fn api(self) -> ModelApi {
        match self {
            Self::DashScope => ModelApi::DashScope,
            Self::Music => ModelApi::Music,
        }
    }
}

/// A parsed create request, in the family's own shape.
pub struct NewTask {
    /// The family.
    pub family: TaskFamily,
    /// `video`, `image` or `song`.
    pub kind: &'static str,
    /// DashScope service path (`aigc/video-generation/video-synthesis`); empty for music.
    pub service: &'static str,
    /// Public model ID.
    pub model: String,
    /// The client's body, forwarded with `model` (and music's `callBackUrl`) replaced.
    pub body: serde_json::Map<String, Value>,
    /// The client's callback URL.
    pub callback_url: Option<String>,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// Units reserved: seconds of video, images, or one song.
    pub units: u64,
}

/// A created (or replayed) task.
pub struct Created {
    /// The task.
    pub task: Task,
    /// Whether an `Idempotency-Key` replay returned an existing task.
    pub replayed: bool,
}

/// The price of `units` of `kind` on `model`, in micro-units.
fn unit_price(model: &ModelConfig, kind: &str) -> u64 {
    match kind {
        "video" => model.price.per_video_second,
        "image" => model.price.per_image,
        _ => model.price.per_song,
    }
}

fn cost(model: Option<&ModelConfig>, kind: &str, units: u64) -> i64 {
    model.map_or(0, |m| {
        i64::try_from(unit_price(m, kind).saturating_mul(units)).unwrap_or(i64::MAX)
    })
}

/// Hex SHA-256.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Creates a task (or replays one for its `Idempotency-Key`).
pub async fn create(
    state: &crate::state::SharedState,
    key: &ApiKey,
    new: NewTask,
) -> Result<Created, Error> {
    let model = crate::policy::entitlement::resolve_for(
        state.catalog(),
        key,
        &new.model,
        new.family.api(),
        "GET /openai/v1/models",
    )?;
    if let Some(url) = &new.callback_url {
        callback::check_url(&state.config.tasks, url).await?;
    }
    let request = Value::Object(new.body.clone());
    // serde_json's map is ordered by key, so the hash ignores formatting and key order; the
    // callback URL is part of the request too.
    let hashed = serde_json::json!({"body": &request, "callback_url": &new.callback_url});
    let request_hash = sha256_hex(hashed.to_string().as_bytes());
    if let Some(k) = &new.idempotency_key
        && let Some(existing) = replay(state, key, k, &request_hash).await?
    {
        return Ok(Created {
            task: existing,
            replayed: true,
        });
    }
    // Requests per minute and concurrency apply to creation; the permits end with it.
    let _admission = crate::gateway::admission::admit(state, key, 1)
        .await
        .map_err(|r| r.error)?;

    let token =
        (new.family == TaskFamily::Music).then(|| hex::encode(crate::auth::random_bytes::<32>()));
    let task = submitting_row(
        state,
        key,
        model,
        &new,
        request,
        request_hash.clone(),
        token.as_deref(),
    );
    let reserved = task.reserved_micros;
    if !state.store.insert_task(&task).await? {
        // Another request with this key won the race.
        let k = new.idempotency_key.as_deref().unwrap_or_default();
        return match replay(state, key, k, &request_hash).await? {
            Some(t) => Ok(Created {
                task: t,
                replayed: true,
            }),
            None => Err(in_progress()),
        };
    }
    state
        .spend
        .adjust(&key.id, key.team.as_deref(), &key.account, reserved);
    // The upstream call and its bookkeeping run to the end even if the client goes away, so a
    // created upstream task is always recorded (or a refused one always cleaned up).
    let owned = (state.clone(), key.clone(), model.id.clone());
    tokio::spawn(async move {
        let (state, key, model_id) = owned;
        finish_create(&state, &key, &model_id, task, &new, token.as_deref()).await
    })
    .await
    .map_err(|e| Error::internal(format!("task creation was interrupted: {e}")))?
}

/// Creates the stored `submitting` task upstream and records the outcome.
async fn finish_create(
    state: &AppState,
    key: &ApiKey,
    model_id: &str,
    task: Task,
    new: &NewTask,
    token: Option<&str>,
) -> Result<Created, Error> {
    let (id, reserved) = (task.id.clone(), task.reserved_micros);
    let Some(model) = state.config.model(model_id) else {
        return Err(Error::internal("the model left the config during creation"));
    };
    match submit(state, key, model, &task, new, token).await {
        Ok(submitted) => {
            let now = crate::clock::unix_millis();
            let next = now.saturating_add(millis(state.config.tasks.poll_interval));
            state
                .store
                .task_submitted(&id, &submitted, now, next)
                .await?;
            metrics::counter!(crate::telemetry::METRIC_TASKS, "family" => new.family.as_str(), "event" => "created").increment(1);
            Ok(Created {
                task: Task {
                    provider: submitted.provider,
                    upstream_model: submitted.upstream_model,
                    upstream_id: Some(submitted.upstream_id),
                    key_slot: submitted.key_slot,
                    status: TaskStatus::Pending,
                    next_poll_ms: next,
                    ..task
                },
                replayed: false,
            })
        }
        Err(e) => {
            // Nothing was created upstream: leave nothing behind, hold no credit.
            if let Err(d) = state.store.delete_task(&id).await {
                tracing::warn!(error = %d, task = %id, "could not delete a task the upstream refused; the poller will fail it");
            } else {
                state
                    .spend
                    .adjust(&key.id, key.team.as_deref(), &key.account, -reserved);
            }
            Err(e)
        }
    }
}

/// How long a task may sit in `submitting` before the poller decides its creator died.
const SUBMIT_GRACE_MS: i64 = 15 * 60 * 1000;

/// The row stored before the upstream call: `submitting`, holding the reservation.
fn submitting_row(
    state: &AppState,
    key: &ApiKey,
    model: &ModelConfig,
    new: &NewTask,
    request: Value,
    request_hash: String,
    token: Option<&str>,
) -> Task {
    let now = crate::clock::unix_millis();
    let cfg = &state.config.tasks;
    let id = format!("task_{}", hex::encode(crate::auth::random_bytes::<16>()));
    let reserved = cost(Some(model), new.kind, new.units);
    Task {
        id,
        family: new.family.as_str().to_owned(),
        kind: new.kind.to_owned(),
        account: key.account.clone(),
        key_id: key.id.clone(),
        team: key.team.clone(),
        model: model.id.clone(),
        provider: String::new(),
        upstream_model: String::new(),
        upstream_id: None,
        status: TaskStatus::Submitting,
        native_status: "PENDING".to_owned(),
        stage: 0,
        request,
        result: None,
        error_code: None,
        error_message: None,
        callback_url: new.callback_url.clone(),
        callback_token_hash: token.map(|t| sha256_hex(t.as_bytes())),
        idempotency_key: new.idempotency_key.clone(),
        request_hash,
        created_at_ms: now,
        updated_at_ms: now,
        refreshed_at_ms: now,
        finished_at_ms: None,
        deadline_ms: now.saturating_add(millis(cfg.deadline)),
        // Checked by the poller only if creation never completes (a crash mid-create); far
        // enough out that a slow but live upstream create is never failed under it.
        next_poll_ms: now
            .saturating_add(millis(cfg.lease))
            .saturating_add(SUBMIT_GRACE_MS),
        polls: 0,
        reserved_micros: reserved,
        charged_micros: None,
        settled: false,
        key_slot: 0,
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn in_progress() -> Error {
    Error::new(
        ErrorKind::Conflict,
        "a request with this Idempotency-Key is still being processed; retry in a moment",
    )
    .with_code("idempotency_key_in_use")
    .with_retry_after(Some(Duration::from_secs(1)))
}

/// The task an `Idempotency-Key` already names, if it may be replayed; 409 if the key was
/// used with another body.
async fn replay(
    state: &AppState,
    key: &ApiKey,
    idem: &str,
    request_hash: &str,
) -> Result<Option<Task>, Error> {
    let Some(t) = state.store.task_by_idempotency(&key.account, idem).await? else {
        return Ok(None);
    };
    let window = millis(state.config.tasks.idempotency_window);
    if t.created_at_ms.saturating_add(window) < crate::clock::unix_millis() {
        state.store.clear_idempotency(&t.id).await?;
        return Ok(None);
    }
    if t.request_hash != request_hash {
        return Err(Error::new(
            ErrorKind::Conflict,
            "this Idempotency-Key was already used with a different request body; use a new key for a new task",
        )
        .with_code("idempotency_key_reused"));
    }
    if t.status == TaskStatus::Submitting {
        return Err(in_progress());
    }
    Ok(Some(t))
}

/// One creation attempt on the route the attempt loop chose.
struct Submit<'a> {
    state: &'a AppState,
    task: &'a Task,
    new: &'a NewTask,
    token: Option<&'a str>,
}

impl crate::gateway::attempt::Work for Submit<'_> {
    /// The upstream task ID, and the slot of the key that created it.
    type Output = (String, usize);

    async fn run(
        &mut self,
        at: &crate::gateway::attempt::Attempt<'_>,
    ) -> Result<((String, usize), Option<Duration>), Error> {
        let provider = at.provider;
        let mut body = self.new.body.clone();
        body.insert(
            "model".into(),
            Value::String(at.route.upstream_model.clone()),
        );
        if let Some(t) = self.token {
            body.insert(
                "callBackUrl".into(),
                Value::String(format!("{}/music/v1/callbacks/{t}", self.state.public_url)),
            );
        }
        let body = Value::Object(body).to_string().into_bytes();
        // A create answers at once: it is bounded by the provider's time to first byte.
        let call = Call {
            key: at.call.key,
            total: provider.config.deadlines.ttfb,
        };
        let req = match provider.adapter {
            ProviderAdapter::Music => {
                crate::providers::music::create_request(provider, &call, body)
            }
            _ => {
                crate::providers::dashscope::create_request(provider, &call, self.new.service, body)
            }
        };
        let answer = provider
            .fetch(req)
            .await
            .and_then(|b| match provider.adapter {
                ProviderAdapter::Music => crate::providers::music::decode_created(provider, &b),
                _ => crate::providers::dashscope::decode_created(provider, &b),
            });
        match answer {
            Ok(upstream_id) => Ok(((upstream_id, at.slot), Some(at.started.elapsed()))),
            Err(e) => {
                tracing::warn!(task = %self.task.id, provider = %provider.config.name, error = %e.message, cause = e.cause.as_deref().unwrap_or(""), "task create failed upstream");
                Err(e)
            }
        }
    }
}

/// Whether a failed create may be tried on another route: only when the upstream cannot have
/// created the task (not after a timeout, and not after a 2xx whose body was unreadable).
fn nothing_created(e: &Error) -> bool {
    !matches!(
        e.kind,
        ErrorKind::UpstreamTimeout | ErrorKind::UpstreamProtocol | ErrorKind::Internal
    )
}

/// Creates the task upstream through the attempt loop on the model's routes (no fallback
/// models, no waits: a client is waiting for its task ID).
async fn submit(
    state: &AppState,
    key: &ApiKey,
    model: &ModelConfig,
    task: &Task,
    new: &NewTask,
    token: Option<&str>,
) -> Result<crate::store::Submitted, Error> {
    let mut work = Submit {
        state,
        task,
        new,
        token,
    };
    let retries = crate::gateway::attempt::Retries {
        fallbacks: false,
        waits: false,
        may_retry: nothing_created,
    };
    let started = tokio::time::Instant::now();
    let ((upstream_id, slot), via) =
        crate::gateway::attempt::run(state, (key, started), model, retries, &mut work)
            .await
            .map_err(|f| f.error)?;
    Ok(crate::store::Submitted {
        provider: via.provider.config.name.clone(),
        upstream_model: via.route.upstream_model.clone(),
        upstream_id,
        key_slot: i64::try_from(slot).unwrap_or(0),
    })
}

/// The caller's task: `None` when it does not exist *or* belongs to another account (the
/// answers must not differ). A stale unfinished task is refreshed from upstream first.
pub async fn lookup(
    state: &AppState,
    key: &ApiKey,
    id: &str,
    family: TaskFamily,
) -> Result<Option<Task>, Error> {
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
/// same for both cases so existence never leaks.
async fn owned(
    state: &AppState,
    key: &ApiKey,
    id: &str,
    family: TaskFamily,
) -> Result<Option<Task>, Error> {
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
pub async fn refresh(state: &AppState, task: Task, owner: &str) -> Task {
    let obs = if task.upstream_id.is_none() {
        expired(state, &task)
    } else {
        fetch(state, &task).await.unwrap_or_else(|e| {
            tracing::warn!(task = %task.id, provider = %task.provider, error = %e.message, cause = e.cause.as_deref().unwrap_or(""), "task status refresh failed; will retry");
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
    match apply(state, &task, obs, Some(owner)).await {
        Ok(Some(t)) => t,
        Ok(None) => task,
        Err(e) => {
            tracing::warn!(task = %task.id, error = %e.message, cause = e.cause.as_deref().unwrap_or(""), "task update failed; will retry");
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
    let call = Call {
        key: provider.key(usize::try_from(task.key_slot).unwrap_or(0)),
        total: total.min(provider.config.deadlines.ttfb),
    };
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
    task: &Task,
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
    let mut next = task.clone();
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
        let event_id = format!(
            "evt_{}_{}",
            task.id,
            next.native_status.to_ascii_lowercase()
        );
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
    let Some(task) = owned(state, key, id, TaskFamily::DashScope).await? else {
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
            let _ = apply(state, &task, Observation::unchanged(), Some(owner)).await;
            return Err(e);
        }
    };
    apply(state, &task, obs, Some(owner))
        .await
        .map(|t| t.or(Some(task)))
}

/// Takes an upstream's callback for the task holding `token`: `Ok(false)` when no task holds
/// it. A repeated or out-of-order callback changes nothing; a new stage is applied like a
/// poll result.
pub async fn upstream_callback(state: &AppState, token: &str, body: &[u8]) -> Result<bool, Error> {
    let hash = sha256_hex(token.as_bytes());
    let Some(task) = state.store.task_by_callback_token(&hash).await? else {
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
    apply(state, &task, obs, None).await?;
    Ok(true)
}
