//! Music task bodies: the success envelope, the record-info `data`
//! (camelCase `sunoData` items), the stage callbacks (snake_case items,
//! `task_id`) and the family's status names. Tracks are derived from the
//! task alone, so a record and a callback describe the same clip with the
//! same ids and URLs. Builds bodies only; errors live in
//! [`super::error`].

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::fault::strip_directives;
use crate::task::{Dialect, Phase, Task};
use crate::util::{datetime, json_response, uuid_like};

/// Host of the clip URLs (never resolvable).
const MEDIA_BASE: &str = "https://music-emulator.invalid";
/// Tracks a finished task has.
const TRACKS: usize = 2;
/// `errorCode` of a failed task and `code` of its `error` callback.
const FAILURE_CODE: u16 = 501;

/// `{"code":200,"msg":"success","data":data}`.
pub(super) fn ok(data: &Value) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"code": 200, "msg": "success", "data": data}),
    )
}

/// How music words its tasks: record-info statuses and stage callbacks.
pub(super) const DIALECT: Dialect = Dialect {
    status,
    callback: callback_body,
};

/// The record-info `status` of a task.
fn status(t: &Task) -> &'static str {
    match t.phase() {
        Phase::Pending => "PENDING",
        Phase::Working(1) => "TEXT_SUCCESS",
        Phase::Working(_) => "FIRST_SUCCESS",
        Phase::Succeeded => "SUCCESS",
        // Music tasks cannot be canceled; keep the mapping total anyway.
        Phase::Canceled => "CREATE_TASK_FAILED",
        Phase::Failed => failure(t).0,
    }
}

/// `(status, errorMessage)` of a failed task, from its `fail=CODE`.
fn failure(t: &Task) -> (&'static str, String) {
    match t.script.fail.as_deref().unwrap_or("") {
        "SENSITIVE_WORD_ERROR" => (
            "SENSITIVE_WORD_ERROR",
            "The prompt contains sensitive words.".to_owned(),
        ),
        "CREATE_TASK_FAILED" => ("CREATE_TASK_FAILED", "Task creation failed.".to_owned()),
        code => (
            "GENERATE_AUDIO_FAILED",
            format!("Audio generation failed ({code})."),
        ),
    }
}

/// How many tracks are ready in the current phase.
fn ready(phase: Phase) -> usize {
    match phase {
        Phase::Working(n) if n >= 2 => 1,
        Phase::Succeeded => TRACKS,
        Phase::Pending | Phase::Working(_) | Phase::Failed | Phase::Canceled => 0,
    }
}

/// The record-info `data` of a task.
pub(super) fn record(t: &Task) -> Value {
    let phase = t.phase();
    let clips: Vec<Value> = (0..ready(phase)).map(|i| clip(t, i).camel()).collect();
    let (error_code, error_message) = if phase == Phase::Failed {
        (json!(FAILURE_CODE), json!(failure(t).1))
    } else {
        (Value::Null, Value::Null)
    };
    json!({
        "taskId": t.id,
        "parentMusicId": "",
        "param": t.request.to_string(),
        "response": {"taskId": t.id, "sunoData": clips},
        "status": status(t),
        "type": "GENERATE",
        "errorCode": error_code,
        "errorMessage": error_message,
    })
}

/// The callback for entering `phase`, if that stage sends one: `text`
/// (first working state), `first` (second working state), `complete` or
/// `error`.
fn callback_body(t: &Task, phase: Phase) -> Option<Value> {
    let (kind, msg) = match phase {
        Phase::Working(1) => ("text", "Text generation completed successfully."),
        Phase::Working(2) => ("first", "First audio generated successfully."),
        Phase::Succeeded => ("complete", "All generated successfully."),
        Phase::Failed => {
            return Some(json!({
                "code": FAILURE_CODE,
                "msg": failure(t).1,
                "data": {"callbackType": "error", "task_id": t.id, "data": null},
            }));
        }
        Phase::Pending | Phase::Working(_) | Phase::Canceled => return None,
    };
    let clips: Vec<Value> = (0..ready(phase)).map(|i| clip(t, i).snake()).collect();
    Some(json!({
        "code": 200,
        "msg": msg,
        "data": {"callbackType": kind, "task_id": t.id, "data": clips},
    }))
}

/// One generated clip.
struct Clip {
    id: String,
    prompt: String,
    model_name: String,
    title: String,
    tags: String,
    create_time: String,
    duration: f64,
}

impl Clip {
    fn audio_url(&self) -> String {
        format!("{MEDIA_BASE}/audio/{}.mp3", self.id)
    }

    fn stream_audio_url(&self) -> String {
        format!("{MEDIA_BASE}/stream/{}", self.id)
    }

    fn image_url(&self) -> String {
        format!("{MEDIA_BASE}/images/{}.jpeg", self.id)
    }

    /// A record-info `sunoData` item.
    fn camel(&self) -> Value {
        json!({
            "id": self.id,
            "audioUrl": self.audio_url(),
            "streamAudioUrl": self.stream_audio_url(),
            "imageUrl": self.image_url(),
            "prompt": self.prompt,
            "modelName": self.model_name,
            "title": self.title,
            "tags": self.tags,
            "createTime": self.create_time,
            "duration": self.duration,
        })
    }

    /// A callback `data.data` item (`createTime` stays camelCase).
    fn snake(&self) -> Value {
        json!({
            "id": self.id,
            "audio_url": self.audio_url(),
            "stream_audio_url": self.stream_audio_url(),
            "image_url": self.image_url(),
            "prompt": self.prompt,
            "model_name": self.model_name,
            "title": self.title,
            "tags": self.tags,
            "createTime": self.create_time,
            "duration": self.duration,
        })
    }
}

/// Clip `index` of task `t`: ids from the task id, text from the request
/// with directives removed (instrumental clips carry no lyrics).
fn clip(t: &Task, index: usize) -> Clip {
    let text = |name: &str| {
        let raw = t.request.get(name).and_then(Value::as_str).unwrap_or("");
        strip_directives(raw).trim().to_owned()
    };
    let instrumental = t.request.get("instrumental") == Some(&Value::Bool(true));
    let model = t.request.get("model").and_then(Value::as_str).unwrap_or("");
    let title = text("title");
    let index_f = f64::from(u32::try_from(index).unwrap_or(0));
    Clip {
        id: uuid_like(format!("{}/{index}", t.id).as_bytes()),
        prompt: if instrumental {
            String::new()
        } else {
            text("prompt")
        },
        model_name: format!("chirp-{}", model.to_ascii_lowercase().replace('_', "-")),
        title: if title.is_empty() {
            "Untitled".to_owned()
        } else {
            title
        },
        tags: text("style"),
        create_time: datetime(t.scheduled_ms.unwrap_or(t.submitted_ms), false),
        duration: 180.0 + 12.5 * index_f,
    }
}
