//! Creating a task: entitlement, the callback URL check, an `Idempotency-Key` replay, the
//! policy step, then a `submitting` row with the reservation stored *before* the upstream
//! call (so two replays cannot create two upstream tasks), and the upstream create through the
//! gateway's attempt loop. The upstream's refusal deletes the row: nothing is left behind.

use std::time::Duration;

use serde_json::Value;

use super::{Created, NewTask, TaskFamily, cost, millis, sha256_hex};
use crate::config::ModelConfig;
use crate::error::{Error, ErrorKind};
use crate::providers::{Call, ProviderAdapter};
use crate::state::AppState;
use crate::store::{ApiKey, Task, TaskStatus};

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
        super::callback::check_url(&state.config.tasks, url).await?;
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
            total: provider.config.deadlines.ttfb,
            ..at.call
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
            Ok(upstream_id) => Ok(((upstream_id, at.call.slot), Some(at.started.elapsed()))),
            Err(e) => {
                // Kind, code and status only: an upstream's message may quote the prompt (the
                // client hears it; the logs must not).
                tracing::warn!(task = %self.task.id, provider = %provider.config.name, error = e.kind.as_str(), code = e.code.unwrap_or(""), status = e.status().as_u16(), cause = e.cause.as_deref().unwrap_or(""), "task create failed upstream");
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
