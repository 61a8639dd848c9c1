//! Admin views of async tasks and their callback deliveries, and the per-account callback
//! signing secrets:
//!
//! - `GET /admin/v1/tasks?account=&status=&limit=` (newest first; `status` one of
//!   `submitting`, `pending`, `running`, `succeeded`, `failed`, `canceled`), `GET /admin/v1/tasks/{id}`;
//! - `GET /admin/v1/tasks/{id}/deliveries`: the delivery log (every attempt, its status or
//!   error); `POST /admin/v1/tasks/{id}/deliveries/{event_id}/replay` re-queues a delivery
//!   that is dead (or still failing) with a fresh retry horizon;
//! - `GET /admin/v1/accounts/{id}/signing-secret` (created on first read) and
//!   `POST …/signing-secret` (rotates it).
//!
//! IDs outside the ID rule (`store::is_valid_id`) get the answer of a missing one (404, or an
//! empty list for a filter) without reaching the store.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use crate::error::{Error, ErrorKind};
use crate::families::json_response;
use crate::families::openai::OpenAiError;
use crate::state::SharedState;
use crate::store::TaskStatus;

fn no_task(id: &str) -> Error {
    Error::new(ErrorKind::NotFound, format!("no task `{id}`")).with_code("task_not_found")
}

/// The answer for an account ID outside the ID rule: no such account can exist.
fn no_account(id: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!(
            "no account `{id}`; account IDs are {}",
            crate::store::ID_RULE
        ),
    )
    .with_code("account_not_found")
}

/// `GET /admin/v1/tasks`.
pub async fn list(
    State(state): State<SharedState>,
    Query(q): Query<HashMap<String, String, std::collections::hash_map::RandomState>>,
) -> Result<Response, OpenAiError> {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .unwrap_or(100)
        .clamp(1, 1_000);
    let account = q
        .get("account")
        .map(String::as_str)
        .filter(|a| !a.is_empty());
    let status = match q.get("status").map(String::as_str).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(TaskStatus::parse(s).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "unknown task status `{}`; use one of submitting, pending, running, succeeded, failed, canceled",
                    s.chars().take(40).collect::<String>()
                ),
            )
            .with_param("status")
        })?),
    };
    // An account outside the ID rule has no tasks.
    let tasks = if account.is_some_and(|a| !crate::store::is_valid_id(a)) {
        Vec::new()
    } else {
        state
            .store
            .tasks(account, status, limit)
            .await
            .map_err(Error::from)?
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": tasks}),
    ))
}

/// `GET /admin/v1/tasks/{id}`.
pub async fn get(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, OpenAiError> {
    if !crate::store::is_valid_id(&id) {
        return Err(no_task(&id).into());
    }
    let task = state
        .store
        .task(&id)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| no_task(&id))?;
    Ok(json_response(StatusCode::OK, &json!(task)))
}

/// `GET /admin/v1/tasks/{id}/deliveries`.
pub async fn deliveries(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, OpenAiError> {
    if !crate::store::is_valid_id(&id)
        || state.store.task(&id).await.map_err(Error::from)?.is_none()
    {
        return Err(no_task(&id).into());
    }
    let rows = state.store.deliveries(&id).await.map_err(Error::from)?;
    let data: Vec<_> = rows
        .into_iter()
        .map(|(d, attempts)| {
            let mut v = json!(d);
            v["attempt_log"] = json!(attempts);
            v
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"object": "list", "task_id": id, "data": data}),
    ))
}

/// `POST /admin/v1/tasks/{id}/deliveries/{event_id}/replay`.
pub async fn replay(
    State(state): State<SharedState>,
    Path((id, event_id)): Path<(String, String)>,
) -> Result<Response, OpenAiError> {
    let now = crate::clock::unix_millis();
    let horizon =
        i64::try_from(state.config.tasks.callback_horizon.as_millis()).unwrap_or(i64::MAX);
    let well_formed = crate::store::is_valid_id(&id) && crate::store::is_valid_id(&event_id);
    let done = well_formed
        && state
            .store
            .replay_delivery(&id, &event_id, now, now.saturating_add(horizon))
            .await
            .map_err(Error::from)?;
    if !done {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("task `{id}` has no undelivered event `{event_id}` (delivered events are not replayed)"),
        )
        .with_code("delivery_not_found")
        .into());
    }
    state.outbox_wake.notify_one();
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({"task_id": id, "event_id": event_id, "state": "pending"}),
    ))
}

fn secret_json(account: &str, secret: &str) -> serde_json::Value {
    json!({
        "account": account,
        "secret": secret,
        "algorithm": "HMAC-SHA256",
        "header": "X-AnyInt-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">",
    })
}

/// `GET /admin/v1/accounts/{id}/signing-secret`: the account's secret (created on first read).
pub async fn get_secret(
    State(state): State<SharedState>,
    Path(account): Path<String>,
) -> Result<Response, OpenAiError> {
    if !crate::store::is_valid_id(&account) {
        return Err(no_account(&account).into());
    }
    let secret = crate::tasks::outbox::secret_for(&state, &account)
        .await
        .map_err(Error::from)?;
    Ok(json_response(
        StatusCode::OK,
        &secret_json(&account, &secret),
    ))
}

/// `POST /admin/v1/accounts/{id}/signing-secret`: rotates the secret.
pub async fn rotate_secret(
    State(state): State<SharedState>,
    Path(account): Path<String>,
) -> Result<Response, OpenAiError> {
    if !crate::store::is_valid_id(&account) {
        return Err(no_account(&account).into());
    }
    let secret = state
        .store
        .put_signing_secret(
            &account,
            &crate::tasks::outbox::new_secret(),
            crate::clock::unix_secs(),
            true,
        )
        .await
        .map_err(Error::from)?;
    Ok(json_response(
        StatusCode::CREATED,
        &secret_json(&account, &secret),
    ))
}
