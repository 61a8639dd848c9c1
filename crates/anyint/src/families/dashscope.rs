//! The DashScope-compatible family at `/dashscope/v1/…`, mirroring DashScope's `/api/v1/…` so
//! the official `dashscope` SDK works with `base_http_api_url = "<gateway>/dashscope/v1"`:
//!
//! - `POST /services/aigc/video-generation/video-synthesis` (text/image to video),
//!   `POST /services/aigc/image2video/video-synthesis` (first+last frame),
//!   `POST /services/aigc/text2image/image-synthesis` (text to image),
//!   `POST /services/aigc/image2image/image-synthesis` (image edit): always asynchronous;
//!   `X-DashScope-Async: enable` is accepted and implied. The answer is HTTP 200 (the SDK
//!   drops the body of a 201) with `{request_id, output:{task_id, task_status:"PENDING"}}`.
//!   Optional headers: `X-AnyInt-Callback-Url` (signed state-change callbacks) and
//!   `Idempotency-Key`.
//! - `GET /tasks/{task_id}`: the DashScope task shape with usage. An ID that does not exist or
//!   belongs to another account gets DashScope's answer for an unknown ID: HTTP 200 with
//!   `task_status: "UNKNOWN"`.
//! - `POST /tasks/{task_id}/cancel`: cancels a PENDING task (no charge).
//!
//! Errors are DashScope's `{code, message, request_id}` with the gateway's status.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{Envelope, FamilyError, json_response, with_log};
use crate::error::{Error, ErrorKind};
use crate::state::SharedState;
use crate::tasks::{NewTask, TaskFamily};

/// The header a client names its callback URL in.
pub const CALLBACK_HEADER: &str = "x-anyint-callback-url";
const AUTH_HEADER: &str = "Authorization: Bearer <key>";

/// The family's routes, under `/dashscope/v1` and, as aliases, `/dashscope/api/v1` and
/// `/dashscope` (whichever of these a client sets as the SDK's base URL works).
pub fn routes() -> Router<SharedState> {
    let mut router = Router::new();
    for base in ["/dashscope/v1", "/dashscope/api/v1", "/dashscope"] {
        router = router
            .route(
                &format!("{base}/services/aigc/video-generation/video-synthesis"),
                create_route("video", "aigc/video-generation/video-synthesis"),
            )
            .route(
                &format!("{base}/services/aigc/image2video/video-synthesis"),
                create_route("video", "aigc/image2video/video-synthesis"),
            )
            .route(
                &format!("{base}/services/aigc/text2image/image-synthesis"),
                create_route("image", "aigc/text2image/image-synthesis"),
            )
            .route(
                &format!("{base}/services/aigc/image2image/image-synthesis"),
                create_route("image", "aigc/image2image/image-synthesis"),
            )
            .route(&format!("{base}/tasks/{{task_id}}"), get(get_task))
            .route(
                &format!("{base}/tasks/{{task_id}}/cancel"),
                post(cancel_task),
            );
    }
    router
}

/// Marker for the DashScope envelope.
pub struct DashScope;

/// An error rendered in the DashScope envelope.
pub type DashScopeError = FamilyError<DashScope>;

/// DashScope's code for a gateway error.
fn code(e: &Error) -> &'static str {
    match e.kind {
        ErrorKind::InvalidRequest | ErrorKind::PayloadTooLarge => {
            if e.code == Some("UnsupportedOperation") {
                "UnsupportedOperation"
            } else {
                "InvalidParameter"
            }
        }
        ErrorKind::Unauthenticated => "InvalidApiKey",
        ErrorKind::PermissionDenied => "AccessDenied",
        ErrorKind::NotFound => {
            if e.code == Some("model_not_found") {
                "ModelNotFound"
            } else {
                "NotFound"
            }
        }
        ErrorKind::Conflict => "Conflict",
        ErrorKind::RateLimited | ErrorKind::UpstreamRateLimited => "Throttling.RateQuota",
        ErrorKind::QuotaExceeded => "Throttling.AllocationQuota",
        ErrorKind::UpstreamUnavailable | ErrorKind::Overloaded | ErrorKind::UpstreamProtocol => {
            "ServiceUnavailable"
        }
        ErrorKind::UpstreamTimeout | ErrorKind::RequestTimeout => "RequestTimeOut",
        ErrorKind::Internal => "InternalError",
    }
}

impl Envelope for DashScope {
    fn envelope(e: &Error) -> Value {
        json!({
            "code": code(e),
            "message": e.message,
            "request_id": crate::telemetry::request_id(),
        })
    }
}

/// A create route for one synthesis service: the kind it bills and its DashScope path.
fn create_route(
    kind: &'static str,
    service: &'static str,
) -> axum::routing::MethodRouter<SharedState> {
    post(
        move |State(state): State<SharedState>, headers: HeaderMap, body: Body| async move {
            create(&state, &headers, body, kind, service).await
        },
    )
}

/// DashScope's bounds (`shared/protocols/dashscope.md`): prompts in characters (the largest
/// any listed model accepts; each model's own, smaller limit is the upstream's to enforce),
/// media URLs as links or as `data:` URLs of the largest inline file (audio, 15 MB, base64).
const PROMPT_CHARS: usize = 2000;
const NEGATIVE_PROMPT_CHARS: usize = 500;
const URL_CHARS: usize = 2048;
const DATA_URL_CHARS: usize = 20 * 1024 * 1024;
const OTHER_CHARS: usize = 256;

/// The limit for the string at `path` (`model`, `input.…`, `parameters.…`).
fn limit(path: &str, text: &str) -> usize {
    match path {
        "input.prompt" => PROMPT_CHARS,
        "input.negative_prompt" => NEGATIVE_PROMPT_CHARS,
        p if p.starts_with("input.") => {
            if text.starts_with("data:") {
                DATA_URL_CHARS
            } else {
                URL_CHARS
            }
        }
        _ => OTHER_CHARS,
    }
}

/// A positive integer parameter, or its default; a 400 naming it otherwise.
fn positive(
    params: Option<&Value>,
    name: &'static str,
    default: u64,
    max: u64,
) -> Result<u64, Error> {
    match params.and_then(|p| p.get(name)) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
            Error::invalid(
                Some("parameters"),
                format!("parameters.{name} must be an integer from 1 to {max}"),
            )
        }),
    }
}

async fn create(
    state: &SharedState,
    headers: &HeaderMap,
    body: Body,
    kind: &'static str,
    service: &'static str,
) -> Result<Response, DashScopeError> {
    let key =
        super::authorize_with(state, super::presented_key(headers, None), AUTH_HEADER).await?;
    let log = |resp: Response, model: Option<&str>| with_log(resp, &key.id, model);
    if let Some(v) = super::header_text(headers, "x-dashscope-async")?
        && !v.eq_ignore_ascii_case("enable")
    {
        // DashScope's own answer to a synchronous call of an async-only service.
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            "this service is asynchronous only: send X-DashScope-Async: enable (or omit the header)",
        )
        .into());
    }
    let bytes = super::read_body(headers, body, state.config.server.max_body_bytes).await?;
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(Error::invalid(None, "the request body must be a JSON object").into());
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(Error::invalid(Some("model"), "`model` is required (a string)").into()),
    };
    if !obj.get("input").is_some_and(Value::is_object) {
        return Err(Error::invalid(
            Some("input"),
            "`input` is required: an object with `prompt` (and `img_url` for image-to-video)",
        )
        .into());
    }
    let params = obj.get("parameters");
    if params.is_some_and(|p| !p.is_object() && !p.is_null()) {
        return Err(Error::invalid(Some("parameters"), "`parameters` must be an object").into());
    }
    for (name, value) in &obj {
        super::bound_strings(value, name, &limit)?;
    }
    let units = if kind == "video" {
        positive(params, "duration", 5, 600)?
    } else {
        positive(params, "n", 1, 16)?
    };
    let callback_url = super::header_text(headers, CALLBACK_HEADER)?
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    let new = NewTask {
        family: TaskFamily::DashScope,
        kind,
        service,
        model: model.clone(),
        body: obj,
        callback_url,
        idempotency_key: super::idempotency_key(headers)?,
        units,
    };
    let created = crate::tasks::create::create(state, &key, new).await?;
    let request_id = crate::telemetry::request_id();
    let body = json!({
        "request_id": request_id,
        "output": {"task_id": created.task.id, "task_status": created.task.native_status},
    });
    let resp = super::replayed(json_response(StatusCode::OK, &body), created.replayed);
    Ok(log(resp, Some(&model)))
}

async fn get_task(
    State(state): State<SharedState>,
    Path(task_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, DashScopeError> {
    let key =
        super::authorize_with(&state, super::presented_key(&headers, None), AUTH_HEADER).await?;
    let request_id = crate::telemetry::request_id();
    let body =
        match crate::tasks::status::lookup(&state, &key, &task_id, TaskFamily::DashScope).await? {
            Some(task) => crate::tasks::render::dashscope_task(&task, &request_id),
            None => unknown(&task_id, &request_id),
        };
    Ok(with_log(
        json_response(StatusCode::OK, &body),
        &key.id,
        None,
    ))
}

/// DashScope's answer for an ID it does not know.
fn unknown(task_id: &str, request_id: &str) -> Value {
    json!({"request_id": request_id, "output": {"task_id": task_id, "task_status": "UNKNOWN"}})
}

async fn cancel_task(
    State(state): State<SharedState>,
    Path(task_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, DashScopeError> {
    let key =
        super::authorize_with(&state, super::presented_key(&headers, None), AUTH_HEADER).await?;
    match crate::tasks::status::cancel(&state, &key, &task_id).await? {
        Some(_) => Ok(with_log(
            json_response(
                StatusCode::OK,
                &json!({"request_id": crate::telemetry::request_id()}),
            ),
            &key.id,
            None,
        )),
        None => Err(Error::new(
            ErrorKind::NotFound,
            format!("no task `{task_id}` exists for this account"),
        )
        .into()),
    }
}
