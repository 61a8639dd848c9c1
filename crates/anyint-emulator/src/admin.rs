//! `/_emulator/*`: test-only introspection of per-tag counters, per-tag
//! stream outcomes, the last request seen per tag and the async tasks'
//! fetch and callback accounting. No API key needed; never reachable under
//! `/v1`.

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::state::State;
use crate::util::json_response;

/// `GET /_emulator/counts` → `{"tag": count, ...}`.
pub(crate) async fn counts(AxState(state): AxState<Arc<State>>) -> Response {
    json_response(StatusCode::OK, &json!(state.counts()))
}

/// `GET /_emulator/counts/{tag}` → `{"tag": tag, "count": n}` (0 if unseen).
pub(crate) async fn count(
    AxState(state): AxState<Arc<State>>,
    Path(tag): Path<String>,
) -> Response {
    let n = state.count(&tag);
    json_response(StatusCode::OK, &json!({"tag": tag, "count": n}))
}

/// `GET /_emulator/streams/{tag}` → `{"tag", "started", "completed",
/// "aborted", "cut"}` (all 0 if unseen).
pub(crate) async fn streams(
    AxState(state): AxState<Arc<State>>,
    Path(tag): Path<String>,
) -> Response {
    json_response(StatusCode::OK, &state.streams(&tag))
}

/// `GET /_emulator/last/{tag}` → `{"headers": {...}, "body": ...}` or 404.
pub(crate) async fn last(AxState(state): AxState<Arc<State>>, Path(tag): Path<String>) -> Response {
    if let Some(record) = state.last(&tag) {
        json_response(StatusCode::OK, &record)
    } else {
        let mut err = ApiError::invalid_request(format!("no request seen with tag `{tag}`"));
        err.status = StatusCode::NOT_FOUND;
        err.into_response()
    }
}

/// `GET /_emulator/tasks` → `{"tasks", "fetches", "max_concurrent_fetches",
/// "overlapping_tasks"}` over every task.
pub(crate) async fn tasks(AxState(state): AxState<Arc<State>>) -> Response {
    json_response(StatusCode::OK, &state.tasks.summary())
}

/// `GET /_emulator/tasks/{task_id}` → `{"task_id", "family", "status",
/// "fetches", "max_concurrent_fetches", "callbacks_sent",
/// "callbacks_failed"}` or 404.
pub(crate) async fn task(AxState(state): AxState<Arc<State>>, Path(id): Path<String>) -> Response {
    if let Some(info) = state.tasks.info(&id) {
        json_response(StatusCode::OK, &info)
    } else {
        let mut err = ApiError::invalid_request(format!("no task `{id}`"));
        err.status = StatusCode::NOT_FOUND;
        err.into_response()
    }
}

/// `POST /_emulator/reset` clears counters, stream outcomes,
/// last-request records and tasks.
pub(crate) async fn reset(AxState(state): AxState<Arc<State>>) -> Response {
    state.reset();
    json_response(StatusCode::OK, &json!({"reset": true}))
}
