//! The Suno-style music upstream (`kind = "music"`, `base_url` at the host root, as
//! `https://api.sunoapi.org`): `POST /api/v1/generate`, `GET /api/v1/generate/record-info`,
//! and staged callbacks (`text`, `first`, `complete`, `error`). Answers are wrapped as
//! `{"code","msg","data"}` where `code` is a business code that can differ from the HTTP
//! status, so it is checked on every answer. Wire facts: `shared/protocols/music.md`.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

use super::{Call, Observation, Provider};
use crate::error::Error;
use crate::store::TaskStatus;

/// The create request.
pub fn create_request(
    p: &Provider,
    call: &Call<'_>,
    body: Vec<u8>,
) -> crate::providers::http::Request {
    p.client()
        .post(format!("{}/api/v1/generate", p.config.base_url))
        .timeout(call.total)
        .header(AUTHORIZATION, format!("Bearer {}", call.key.expose()))
        .header(CONTENT_TYPE, "application/json")
        .body(Bytes::from(body))
}

/// The record-info request for an upstream task.
pub fn status_request(
    p: &Provider,
    call: &Call<'_>,
    upstream_id: &str,
) -> crate::providers::http::Request {
    p.client()
        .get(format!("{}/api/v1/generate/record-info", p.config.base_url))
        .query(&[("taskId", upstream_id)])
        .timeout(call.total)
        .header(AUTHORIZATION, format!("Bearer {}", call.key.expose()))
}

fn protocol_error(p: &Provider, what: &str) -> Error {
    super::http::protocol_error(&p.config.name, what)
}

/// Unwraps `{"code":200,"data":…}`; any other business code becomes the gateway error, with
/// the upstream's code kept for the music family to show.
fn unwrap(p: &Provider, body: &[u8]) -> Result<Value, Error> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| protocol_error(p, "answer is not JSON"))?;
    let code = v
        .get("code")
        .and_then(Value::as_i64)
        .ok_or_else(|| protocol_error(p, "answer has no business code"))?;
    if code == 200 {
        return Ok(v.get("data").cloned().unwrap_or(Value::Null));
    }
    let msg = v.get("msg").and_then(Value::as_str);
    Err(business_error(p, code, msg))
}

/// The gateway error for a business code. Codes mean different things at different resellers
/// (429 is a rate limit at one and out of credit at another), so only the unambiguous ones are
/// given a meaning beyond their HTTP class.
fn business_error(p: &Provider, code: i64, msg: Option<&str>) -> Error {
    let status = u16::try_from(code)
        .ok()
        .and_then(|c| http::StatusCode::from_u16(c).ok())
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(http::StatusCode::BAD_GATEWAY);
    let mut e = super::http::classify(&p.config.name, status, None, msg, code == 402);
    // Validation codes reach the client as the upstream said them.
    if matches!(code, 400 | 413 | 422) {
        e.business_code = Some(code);
    }
    e
}

/// The upstream task ID from a create answer.
pub fn decode_created(p: &Provider, body: &[u8]) -> Result<String, Error> {
    let data = unwrap(p, body)?;
    data.get("taskId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| protocol_error(p, "create answer has no data.taskId"))
}

/// The status, stage and error of a music status word.
fn status_of(native: &str) -> Option<(TaskStatus, i64)> {
    Some(match native {
        "PENDING" => (TaskStatus::Pending, 0),
        "TEXT_SUCCESS" => (TaskStatus::Running, 1),
        "FIRST_SUCCESS" => (TaskStatus::Running, 2),
        "SUCCESS" => (TaskStatus::Succeeded, 3),
        "CREATE_TASK_FAILED"
        | "GENERATE_AUDIO_FAILED"
        | "CALLBACK_EXCEPTION"
        | "SENSITIVE_WORD_ERROR" => (TaskStatus::Failed, 3),
        _ => return None,
    })
}

/// Reads a record-info answer. The kept result is the record's `data` object.
pub fn decode_status(p: &Provider, body: &[u8]) -> Result<Observation, Error> {
    let data = unwrap(p, body)?;
    let native = data
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| protocol_error(p, "record-info has no data.status"))?
        .to_owned();
    let Some((status, stage)) = status_of(&native) else {
        return Ok(Observation::unchanged());
    };
    let error = (status == TaskStatus::Failed).then(|| {
        let code = match data.get("errorCode") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => "500".to_owned(),
        };
        let msg = data
            .get("errorMessage")
            .and_then(Value::as_str)
            .unwrap_or("music generation failed")
            .to_owned();
        (code, msg)
    });
    Ok(Observation {
        status,
        native,
        stage,
        units: (status == TaskStatus::Succeeded).then_some(1),
        result: json!({"sunoData": data.pointer("/response/sunoData").cloned().unwrap_or(json!([]))}),
        error,
    })
}

/// Track fields: record-info spells them in camelCase, callbacks in snake_case.
const TRACK_FIELDS: &[(&str, &str)] = &[
    ("audio_url", "audioUrl"),
    ("source_audio_url", "sourceAudioUrl"),
    ("stream_audio_url", "streamAudioUrl"),
    ("source_stream_audio_url", "sourceStreamAudioUrl"),
    ("image_url", "imageUrl"),
    ("source_image_url", "sourceImageUrl"),
    ("model_name", "modelName"),
];

/// Renames a track's keys between the two spellings (`to_camel` picks the direction).
pub fn convert_track(track: &Value, to_camel: bool) -> Value {
    let Some(obj) = track.as_object() else {
        return track.clone();
    };
    let out = obj
        .iter()
        .map(|(k, v)| {
            let renamed = TRACK_FIELDS.iter().find_map(|(snake, camel)| {
                let (from, to) = if to_camel {
                    (snake, camel)
                } else {
                    (camel, snake)
                };
                (k == from).then(|| (*to).to_owned())
            });
            (renamed.unwrap_or_else(|| k.clone()), v.clone())
        })
        .collect();
    Value::Object(out)
}

/// Reads an upstream callback: the upstream task ID it names and what it says.
pub fn decode_callback(body: &[u8]) -> Result<(Option<String>, Observation), Error> {
    let bad = |what: &str| {
        Error::invalid(
            None,
            format!("the callback body is not a music callback: {what}"),
        )
    };
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let data = v.get("data").ok_or_else(|| bad("no data"))?;
    let task_id = data
        .get("task_id")
        .or_else(|| data.get("taskId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let kind = data
        .get("callbackType")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no data.callbackType"))?;
    let ok = v.get("code").and_then(Value::as_i64).unwrap_or(200) == 200;
    let native = match kind {
        "text" if ok => "TEXT_SUCCESS",
        "first" if ok => "FIRST_SUCCESS",
        "complete" if ok => "SUCCESS",
        "text" | "first" | "complete" | "error" => "GENERATE_AUDIO_FAILED",
        _ => return Err(bad("unknown callbackType")),
    };
    let Some((status, stage)) = status_of(native) else {
        return Err(bad("unknown callbackType"));
    };
    let tracks: Vec<Value> = data
        .get("data")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(|t| convert_track(t, true)).collect())
        .unwrap_or_default();
    let error = (status == TaskStatus::Failed).then(|| {
        let code = v.get("code").and_then(Value::as_i64).unwrap_or(500);
        let msg = v
            .get("msg")
            .and_then(Value::as_str)
            .unwrap_or("music generation failed");
        (code.to_string(), msg.to_owned())
    });
    Ok((
        task_id,
        Observation {
            status,
            native: native.to_owned(),
            stage,
            units: (status == TaskStatus::Succeeded).then_some(1),
            result: json!({"sunoData": tracks}),
            error,
        },
    ))
}

/// Maps a music error reply with a non-2xx HTTP status to the gateway error.
pub fn decode_error(
    p: &Provider,
    status: http::StatusCode,
    headers: &http::header::HeaderMap,
    body: &[u8],
) -> Error {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let msg = v
        .as_ref()
        .and_then(|v| v.get("msg").or_else(|| v.get("message")))
        .and_then(Value::as_str);
    super::http::classify(
        &p.config.name,
        status,
        super::http::retry_after(headers),
        msg,
        status.as_u16() == 402,
    )
}
