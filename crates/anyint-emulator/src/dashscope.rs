//! DashScope (Alibaba Model Studio) async synthesis under `/api/v1`, as the
//! `dashscope` SDK calls it: the three create endpoints (video, image-to-
//! video, text-to-image), `GET /tasks/{id}` and `POST /tasks/{id}/cancel`.
//! Runs the gate (Bearer auth, faults in `{code,message,request_id}`),
//! insists on `X-DashScope-Async: enable`, validates the few fields a task
//! needs and leaves the task's life to [`crate::task`]. Unknown `input` and
//! `parameters` fields are ignored, as the SDK sends deprecated ones.

pub(crate) mod error;
mod render;

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use self::error::invalid;
use crate::fault::{self, Fault};
use crate::gate::{self, Family, Incoming};
use crate::state::State;
use crate::task::{self, Kind, Task};
use crate::util::{json_response, uuid_like};

/// Request header that must be `enable` on create calls.
const ASYNC_HEADER: &str = "x-dashscope-async";
/// Largest `parameters.n` of an image task.
const MAX_IMAGES: u64 = 4;

/// The create route for tasks of `kind`: `POST /api/v1/services/aigc/video-generation/
/// video-synthesis` and `…/image2video/video-synthesis` (video), `…/text2image/
/// image-synthesis` (image).
pub(crate) fn create_route(kind: Kind) -> axum::routing::MethodRouter<Arc<State>> {
    axum::routing::post(
        move |AxState(state): AxState<Arc<State>>, headers: HeaderMap, body: Bytes| async move {
            create(&state, &headers, &body, kind).await
        },
    )
}

/// `GET /api/v1/tasks/{task_id}`: advances the task one step (unless it is
/// time-driven) and answers its state; `UNKNOWN` (still 200) for ids this
/// emulator never issued.
pub(crate) async fn fetch(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let rid = request_id(&state);
    let fault = match admit_bare(&state, &headers, &rid).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let body = task::poll(&state.tasks, &id, is_dashscope, |t| render::task(t, &rid))
        .await
        .unwrap_or_else(|| render::unknown(&id, &rid));
    fault.decorate(json_response(StatusCode::OK, &body))
}

/// `POST /api/v1/tasks/{task_id}/cancel`: only a `PENDING` task cancels.
pub(crate) async fn cancel(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let rid = request_id(&state);
    let fault = match admit_bare(&state, &headers, &rid).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let canceled = state
        .tasks
        .with(&id, |t| is_dashscope(t.kind).then(|| t.cancel()))
        .flatten();
    let resp = match canceled {
        Some(true) => json_response(StatusCode::OK, &json!({"request_id": rid})),
        Some(false) => error::cannot_cancel(
            "Failed to cancel the task, please confirm that the task is in PENDING status.",
            &rid,
        ),
        None => error::cannot_cancel(
            "Failed to cancel the task, the task does not exist or has expired.",
            &rid,
        ),
    };
    fault.decorate(resp)
}

async fn create(state: &Arc<State>, headers: &HeaderMap, body: &Bytes, kind: Kind) -> Response {
    let rid = request_id(state);
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let raw_model = json
        .as_ref()
        .and_then(|v| v.get("model"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let (model, suffix) = fault::split_model(raw_model);
    let prompt = json
        .as_ref()
        .and_then(|v| v.pointer("/input/prompt"))
        .and_then(Value::as_str);
    let incoming = Incoming {
        headers,
        body,
        json: json.as_ref(),
        model_suffix: suffix,
        text: prompt,
        model,
        is_chat: false,
    };
    let family = Family::DashScope { request_id: &rid };
    let fault = match gate::admit_as(state, &incoming, family).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let resp = if is_async(headers) {
        match validate(json.clone(), kind) {
            Err(msg) => invalid(&msg, &rid),
            Ok(mut request) => {
                request["model"] = Value::String(model.to_owned());
                let id = uuid_like(&state.tasks.fresh_seed());
                let task = Task::new(
                    id.clone(),
                    kind,
                    render::DIALECT,
                    fault.task.clone(),
                    request,
                );
                task::create(&state.tasks, task, None);
                json_response(StatusCode::OK, &render::created(&id, &rid))
            }
        }
    } else {
        error::error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "current user api does not support synchronous calls",
            &rid,
        )
    };
    fault.decorate(resp)
}

/// The gate for calls without a body (status GET, cancel): auth and
/// header faults only.
async fn admit_bare(state: &State, headers: &HeaderMap, rid: &str) -> Result<Fault, Response> {
    let incoming = Incoming {
        headers,
        body: &[],
        json: None,
        model_suffix: None,
        text: None,
        model: "",
        is_chat: false,
    };
    gate::admit_as(state, &incoming, Family::DashScope { request_id: rid }).await
}

fn is_dashscope(kind: Kind) -> bool {
    matches!(kind, Kind::Video | Kind::Image)
}

/// A UUID-shaped `request_id`, as DashScope sends.
fn request_id(state: &State) -> String {
    uuid_like(&state.tasks.fresh_seed())
}

/// `X-DashScope-Async: enable`, any case.
fn is_async(headers: &HeaderMap) -> bool {
    headers
        .get(ASYNC_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("enable"))
}

/// Checks what a task needs and returns the body to keep; the error is an
/// `InvalidParameter` message.
fn validate(json: Option<Value>, kind: Kind) -> Result<Value, String> {
    let Some(body) = json.filter(Value::is_object) else {
        return Err("The request body is not a valid JSON object.".to_owned());
    };
    if body
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("Field required: model".to_owned());
    }
    let Some(input) = body.get("input").filter(|i| i.is_object()) else {
        return Err("Field required: input".to_owned());
    };
    let text = |name: &str| {
        input
            .get(name)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
    };
    match kind {
        Kind::Image if !text("prompt") => return Err("Field required: input.prompt".to_owned()),
        Kind::Video if !(text("prompt") || text("img_url") || text("first_frame_url")) => {
            return Err("Field required: input.prompt or input.img_url".to_owned());
        }
        _ => {}
    }
    let params = match body.get("parameters") {
        None | Some(Value::Null) => None,
        Some(p @ Value::Object(_)) => Some(p),
        Some(_) => return Err("parameters must be an object".to_owned()),
    };
    let param = |name: &str| params.and_then(|p| p.get(name)).filter(|v| !v.is_null());
    if let Some(d) = param("duration") {
        if d.as_u64().is_none_or(|d| d == 0) {
            return Err("parameters.duration must be a positive integer".to_owned());
        }
    }
    if let Some(n) = param("n") {
        if n.as_u64().is_none_or(|n| !(1..=MAX_IMAGES).contains(&n)) {
            return Err(format!(
                "parameters.n must be an integer between 1 and {MAX_IMAGES}"
            ));
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: Value, kind: Kind) -> Result<Value, String> {
        validate(Some(body), kind)
    }

    #[test]
    fn validation_needs_model_and_prompt_or_image() {
        let ok = json!({"model": "wan2.2-t2v-plus", "input": {"prompt": "a cat", "function": "x"}});
        assert!(check(ok, Kind::Video).is_ok());
        let image_only = json!({"model": "m", "input": {"img_url": "https://x/y.png"}});
        assert!(check(image_only.clone(), Kind::Video).is_ok());
        assert!(
            check(image_only, Kind::Image)
                .unwrap_err()
                .contains("prompt")
        );
        let no_model = json!({"input": {"prompt": "a"}});
        assert!(check(no_model, Kind::Video).unwrap_err().contains("model"));
        let empty = json!({"model": "m", "input": {"prompt": " "}});
        assert!(check(empty, Kind::Video).is_err());
        assert!(validate(None, Kind::Video).is_err());
    }

    #[test]
    fn validation_checks_duration_and_n() {
        let with =
            |params: Value| json!({"model": "m", "input": {"prompt": "p"}, "parameters": params});
        assert!(check(with(json!({"duration": 10})), Kind::Video).is_ok());
        assert!(check(with(json!({"duration": "10"})), Kind::Video).is_err());
        assert!(check(with(json!({"n": 4})), Kind::Image).is_ok());
        assert!(check(with(json!({"n": 5})), Kind::Image).is_err());
        assert!(check(with(json!("x")), Kind::Image).is_err());
    }

    #[test]
    fn async_header_is_case_insensitive() {
        let mut h = HeaderMap::new();
        assert!(!is_async(&h));
        h.insert(ASYNC_HEADER, "ENABLE".parse().unwrap());
        assert!(is_async(&h));
        h.insert(ASYNC_HEADER, "disable".parse().unwrap());
        assert!(!is_async(&h));
    }
}
