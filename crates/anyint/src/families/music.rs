//! The music family at `/music/v1/…`, mirroring the Suno-style reseller API's `/api/v1/…` the
//! way `/dashscope/v1/…` mirrors DashScope:
//!
//! - `POST /music/v1/generate` (`prompt`, `style`, `title`, `customMode`, `instrumental`,
//!   `model`, `callBackUrl`, tuning fields) → `{"code":200,"msg":"success","data":{"taskId"}}`
//!   with the gateway's own task ID. A body without the fields the upstream requires is
//!   refused here (code 400), never completed with defaults. `callBackUrl` is the client's: the gateway delivers the
//!   stages there itself, signed; upstream it registers its own per-task URL.
//! - `GET /music/v1/generate/record-info?taskId=…` → the record-info shape, statuses passed
//!   through (`PENDING`, `TEXT_SUCCESS`, `FIRST_SUCCESS`, `SUCCESS`, failure words).
//! - `POST /music/v1/callbacks/{token}`: where the upstream calls back; the unguessable token
//!   names the task.
//!
//! Answers keep the reseller's wrapping `{"code","msg","data"}`. For errors the gateway makes,
//! `code` equals the HTTP status (401, 403, 404 not found, 409, 429 with `Retry-After`, 5xx);
//! an upstream validation code (400, 413, 422) is passed on as the upstream gave it.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{Envelope, FamilyError, json_response, with_log};
use crate::error::{Error, ErrorKind};
use crate::state::SharedState;
use crate::tasks::{NewTask, TaskFamily};

const AUTH_HEADER: &str = "Authorization: Bearer <key>";

/// The family's routes.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/music/v1/generate", post(generate))
        .route("/music/v1/generate/record-info", get(record_info))
        .route("/music/v1/callbacks/{token}", post(upstream_callback))
}

/// Marker for the music envelope.
pub struct Music;

/// An error rendered in the music envelope.
pub type MusicError = FamilyError<Music>;

impl Envelope for Music {
    fn envelope(e: &Error) -> Value {
        let code = e
            .business_code
            .unwrap_or_else(|| i64::from(e.status().as_u16()));
        json!({"code": code, "msg": e.message, "data": null})
    }
}

/// The reseller's success wrapping; takes `data` so a large record is moved, not copied.
fn ok(data: Value) -> Response {
    // `json!` would serialize `data` by reference, a copy; assignment moves it.
    let mut body = json!({"code": 200, "msg": "success"});
    body["data"] = data;
    json_response(StatusCode::OK, &body)
}

/// The reseller's bounds in characters (`shared/protocols/music.md`), by model: `V4` has the
/// smaller custom-mode limits, the newer models the larger; simple mode takes a 500-character
/// description. Fields without a documented limit get one as large as the largest documented.
fn limit(model: &str, custom: bool, path: &str) -> usize {
    let v4 = model == "V4";
    match path {
        "prompt" if !custom => 500,
        "prompt" if v4 => 3000,
        "prompt" => 5000,
        "style" | "negativeTags" if v4 => 200,
        "style" | "negativeTags" => 1000,
        "title" if v4 || model == "V4_5ALL" => 80,
        "title" => 100,
        "callBackUrl" => 2048,
        _ => 256,
    }
}

async fn generate(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, MusicError> {
    let key =
        super::authorize_with(&state, super::presented_key(&headers, None), AUTH_HEADER).await?;
    let bytes = super::read_body(&headers, body, state.config.server.max_body_bytes).await?;
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(Error::invalid(None, "the request body must be a JSON object").into());
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => {
            return Err(Error::invalid(
                Some("model"),
                "`model` is required (for example V4_5); GET /openai/v1/models lists the models your key can use",
            )
            .into());
        }
    };
    let custom = check_required(&obj)?;
    for (name, value) in &obj {
        super::bound_strings(value, name, &|path, _| limit(&model, custom, path))?;
    }
    let callback_url = match obj.remove("callBackUrl") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) if u.is_empty() => None,
        Some(Value::String(u)) => Some(u),
        Some(_) => {
            return Err(
                Error::invalid(Some("callBackUrl"), "`callBackUrl` must be a URL string").into(),
            );
        }
    };
    let new = NewTask {
        family: TaskFamily::Music,
        kind: "song",
        service: "",
        model: model.clone(),
        body: obj,
        callback_url,
        idempotency_key: super::idempotency_key(&headers)?,
        units: 1,
    };
    let created = crate::tasks::create::create(&state, &key, new).await?;
    let resp = super::replayed(ok(json!({"taskId": created.task.id})), created.replayed);
    Ok(with_log(resp, &key.id, Some(&model)))
}

/// Refuses a body without the fields the upstream requires (`customMode` and `instrumental`;
/// in custom mode `style` and `title`, and `prompt` unless instrumental; in simple mode
/// `prompt`), as the upstream would, rather than guessing them. Returns whether the body is in
/// custom mode.
fn check_required(obj: &serde_json::Map<String, Value>) -> Result<bool, Error> {
    let flag = |field: &'static str| match obj.get(field) {
        Some(Value::Bool(b)) => Ok(*b),
        None | Some(Value::Null) => Err(Error::invalid(
            Some(field),
            format!("`{field}` is required: true or false"),
        )),
        Some(_) => Err(Error::invalid(
            Some(field),
            format!("`{field}` must be true or false"),
        )),
    };
    let custom = flag("customMode")?;
    let instrumental = flag("instrumental")?;
    let (required, mode): (&[&'static str], &str) = match (custom, instrumental) {
        (true, true) => (&["style", "title"], "in custom mode"),
        (true, false) => (
            &["style", "title", "prompt"],
            "in custom mode with vocals (instrumental: false)",
        ),
        (false, _) => (&["prompt"], "in simple mode (customMode: false)"),
    };
    for &field in required {
        match obj.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            None | Some(Value::Null | Value::String(_)) => {
                return Err(Error::invalid(
                    Some(field),
                    format!("`{field}` is required {mode}"),
                ));
            }
            Some(_) => {
                return Err(Error::invalid(
                    Some(field),
                    format!("`{field}` must be a string"),
                ));
            }
        }
    }
    Ok(custom)
}

/// The record-info query.
#[derive(serde::Deserialize)]
struct RecordQuery {
    #[serde(rename = "taskId")]
    task_id: Option<String>,
}

async fn record_info(
    State(state): State<SharedState>,
    query: Result<Query<RecordQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, MusicError> {
    let key =
        super::authorize_with(&state, super::presented_key(&headers, None), AUTH_HEADER).await?;
    let Some(task_id) = query
        .ok()
        .and_then(|q| q.0.task_id)
        .filter(|t| !t.is_empty())
    else {
        return Err(
            Error::invalid(Some("taskId"), "the taskId query parameter is required").into(),
        );
    };
    let Some(task) =
        crate::tasks::status::lookup(&state, &key, &task_id, TaskFamily::Music).await?
    else {
        // The same answer whether the task is missing or another account's.
        return Err(Error::new(ErrorKind::NotFound, "task not found")
            .with_code("task_not_found")
            .into());
    };
    let model = task.model.clone();
    Ok(with_log(
        ok(crate::tasks::render::music_record(task)),
        &key.id,
        Some(&model),
    ))
}

async fn upstream_callback(
    State(state): State<SharedState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, MusicError> {
    let bytes = super::read_body(&headers, body, 1024 * 1024).await?;
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unknown_callback().into());
    }
    if crate::tasks::status::upstream_callback(&state, &token, &bytes).await? {
        Ok(json_response(
            StatusCode::OK,
            &json!({"code": 200, "msg": "received"}),
        ))
    } else {
        Err(unknown_callback().into())
    }
}

fn unknown_callback() -> Error {
    Error::new(
        ErrorKind::NotFound,
        "no task is waiting for a callback at this URL",
    )
}
