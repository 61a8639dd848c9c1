//! The DashScope upstream (`kind = "dashscope"`, `base_url` ending in `/api/v1`): async video and
//! image synthesis. Create with `X-DashScope-Async: enable`, poll `GET /tasks/{id}`, cancel
//! `POST /tasks/{id}/cancel`. Wire facts: `shared/protocols/dashscope.md`.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

use super::{Call, Observation, Provider};
use crate::error::Error;
use crate::store::TaskStatus;

/// The create request for service path `service` (e.g. `aigc/video-generation/video-synthesis`).
pub fn create_request(
    p: &Provider,
    call: &Call<'_>,
    service: &str,
    body: Vec<u8>,
) -> crate::providers::http::Request {
    p.client()
        .post(format!("{}/services/{service}", p.config.base_url))
        .timeout(call.total)
        .header(AUTHORIZATION, format!("Bearer {}", call.key.expose()))
        .header(CONTENT_TYPE, "application/json")
        .header("X-DashScope-Async", "enable")
        .body(Bytes::from(body))
}

/// The status request for an upstream task.
pub fn status_request(
    p: &Provider,
    call: &Call<'_>,
    upstream_id: &str,
) -> crate::providers::http::Request {
    p.client()
        .get(format!(
            "{}/tasks/{}",
            p.config.base_url,
            path_segment(upstream_id)
        ))
        .timeout(call.total)
        .header(AUTHORIZATION, format!("Bearer {}", call.key.expose()))
}

/// The cancel request for an upstream task.
pub fn cancel_request(
    p: &Provider,
    call: &Call<'_>,
    upstream_id: &str,
) -> crate::providers::http::Request {
    p.client()
        .post(format!(
            "{}/tasks/{}/cancel",
            p.config.base_url,
            path_segment(upstream_id)
        ))
        .timeout(call.total)
        .header(AUTHORIZATION, format!("Bearer {}", call.key.expose()))
}

/// Keeps an upstream ID from escaping its path segment.
fn path_segment(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

fn protocol_error(p: &Provider, what: &str) -> Error {
    super::http::protocol_error(&p.config.name, what)
}

/// The upstream task ID from a create answer.
pub fn decode_created(p: &Provider, body: &[u8]) -> Result<String, Error> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| protocol_error(p, "create answer is not JSON"))?;
    v.pointer("/output/task_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| protocol_error(p, "create answer has no output.task_id"))
}

/// Reads a status answer: the status, the progress stage, the billed units and the view kept
/// as the task's result (`{"output":…,"usage":…}`).
pub fn decode_status(p: &Provider, body: &[u8]) -> Result<Observation, Error> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| protocol_error(p, "status answer is not JSON"))?;
    let output = v
        .get("output")
        .filter(|o| o.is_object())
        .ok_or_else(|| protocol_error(p, "status answer has no output"))?;
    let native = output
        .get("task_status")
        .and_then(Value::as_str)
        .ok_or_else(|| protocol_error(p, "status answer has no output.task_status"))?
        .to_ascii_uppercase();
    let (status, stage) = match native.as_str() {
        "PENDING" => (TaskStatus::Pending, 0),
        "RUNNING" | "SUSPENDED" => (TaskStatus::Running, 1),
        "SUCCEEDED" => (TaskStatus::Succeeded, 3),
        "FAILED" => (TaskStatus::Failed, 3),
        "CANCELED" => (TaskStatus::Canceled, 3),
        // UNKNOWN right after creation can be propagation delay: no change; the deadline ends
        // a task the upstream has really lost.
        _ => return Ok(Observation::unchanged()),
    };
    let usage = v.get("usage").cloned().unwrap_or(Value::Null);
    let error = (status == TaskStatus::Failed).then(|| {
        (
            output
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("InternalError")
                .to_owned(),
            output
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the upstream task failed")
                .to_owned(),
        )
    });
    Ok(Observation {
        status,
        native,
        stage,
        units: billed_units(&usage),
        result: serde_json::json!({"output": output, "usage": usage}),
        error,
    })
}

/// Units billed from `usage`, whichever generation's fields are present: seconds of video
/// times videos, or images.
fn billed_units(usage: &Value) -> Option<u64> {
    let num = |k: &str| usage.get(k).and_then(Value::as_f64).filter(|v| *v >= 0.0);
    let seconds = num("output_video_duration")
        .or_else(|| num("duration"))
        .or_else(|| num("video_duration"));
    if let Some(s) = seconds {
        let count = num("video_count").unwrap_or(1.0).max(1.0);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "non-negative, finite, rounded up; durations are small"
        )]
        return Some((s * count).ceil() as u64);
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a non-negative image count"
    )]
    num("image_count").map(|n| n.ceil() as u64)
}

/// Maps a DashScope error reply (`{code, message, request_id}`) to the gateway error.
pub fn decode_error(
    p: &Provider,
    status: http::StatusCode,
    headers: &http::header::HeaderMap,
    body: &[u8],
) -> Error {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = field("code").unwrap_or_default();
    let message = field("message").or_else(|| field("msg"));
    let quota = code == "Throttling.AllocationQuota" || code == "Arrearage";
    super::http::classify(
        &p.config.name,
        status,
        super::http::retry_after(headers),
        message.as_deref(),
        quota,
    )
}
