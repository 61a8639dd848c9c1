//! DashScope task bodies: the `{request_id, output:{task_id, task_status,
//! …}, usage?}` answers of create and status calls, and the family's
//! `task_status` names. Builds bodies only; errors live in
//! [`super::error`].

use serde_json::{Value, json};

use crate::task::{Dialect, Kind, Phase, Task};
use crate::util::datetime;

/// Host of the result URLs (never resolvable).
const RESULT_BASE: &str = "https://dashscope-emulator.invalid";
/// `parameters.duration` when the request has none.
const DEFAULT_DURATION: u64 = 5;
/// `usage.SR` when the request names no resolution or size.
const DEFAULT_SR: u64 = 720;

/// How DashScope words its tasks: `task_status` names, no callbacks.
pub(super) const DIALECT: Dialect = Dialect {
    status: |t| status(t.phase()),
    callback: |_, _| None,
};

/// DashScope's `task_status` for a phase.
fn status(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "PENDING",
        Phase::Working(_) => "RUNNING",
        Phase::Succeeded => "SUCCEEDED",
        Phase::Failed => "FAILED",
        Phase::Canceled => "CANCELED",
    }
}

/// The create answer.
pub(super) fn created(task_id: &str, request_id: &str) -> Value {
    json!({
        "request_id": request_id,
        "output": {"task_id": task_id, "task_status": status(Phase::Pending)},
    })
}

/// The status answer for an id never issued (HTTP 200 all the same).
pub(super) fn unknown(task_id: &str, request_id: &str) -> Value {
    json!({
        "request_id": request_id,
        "output": {"task_id": task_id, "task_status": "UNKNOWN"},
    })
}

/// The status answer for a known task.
pub(super) fn task(t: &Task, request_id: &str) -> Value {
    let phase = t.phase();
    let mut output = json!({
        "task_id": t.id,
        "task_status": status(phase),
        "submit_time": datetime(t.submitted_ms, true),
    });
    if let Some(ms) = t.scheduled_ms {
        output["scheduled_time"] = json!(datetime(ms, true));
    }
    if let Some(ms) = t.ended_ms {
        output["end_time"] = json!(datetime(ms, true));
    }
    let mut body = json!({"request_id": request_id});
    let param = |name: &str| t.request.pointer(&format!("/parameters/{name}"));
    match phase {
        Phase::Succeeded => {
            let prompt = t
                .request
                .pointer("/input/prompt")
                .and_then(Value::as_str)
                .unwrap_or("");
            match t.kind {
                Kind::Image => {
                    let n = param("n").and_then(Value::as_u64).unwrap_or(1);
                    let results: Vec<Value> = (0..n)
                        .map(|i| json!({"url": format!("{RESULT_BASE}/images/{}-{i}.png", t.id)}))
                        .collect();
                    output["results"] = json!(results);
                    body["usage"] = json!({"image_count": n});
                }
                Kind::Video => {
                    output["video_url"] = json!(format!("{RESULT_BASE}/videos/{}.mp4", t.id));
                    output["orig_prompt"] = json!(prompt);
                    output["actual_prompt"] = json!(crate::fault::strip_directives(prompt).trim());
                    let duration = param("duration")
                        .and_then(Value::as_u64)
                        .unwrap_or(DEFAULT_DURATION);
                    let sr = short_side(param("resolution"), param("size"));
                    body["usage"] = json!({"duration": duration, "video_count": 1, "SR": sr});
                }
                // Music tasks are never fetched through DashScope routes.
                Kind::Music => {}
            }
        }
        Phase::Failed => {
            let code = t.script.fail.as_deref().unwrap_or("InternalError");
            output["code"] = json!(code);
            output["message"] = json!(failure_message(code));
        }
        Phase::Pending | Phase::Working(_) | Phase::Canceled => {}
    }
    body["output"] = output;
    body
}

/// `usage.SR`: the number in `resolution` (`"1080P"`), else the short
/// side of `size` (`"1280*720"`), else 720.
fn short_side(resolution: Option<&Value>, size: Option<&Value>) -> u64 {
    let from_resolution = resolution
        .and_then(Value::as_str)
        .and_then(|r| r.trim().trim_end_matches(['P', 'p']).parse().ok());
    let from_size = || {
        let (w, h) = size.and_then(Value::as_str)?.split_once('*')?;
        let (w, h): (u64, u64) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
        Some(w.min(h))
    };
    from_resolution.or_else(from_size).unwrap_or(DEFAULT_SR)
}

fn failure_message(code: &str) -> String {
    match code {
        "DataInspectionFailed" => "Output data may contain inappropriate content.".to_owned(),
        other => format!("Emulated task failure ({other})."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sr_comes_from_resolution_or_size() {
        assert_eq!(short_side(Some(&json!("1080P")), None), 1080);
        assert_eq!(short_side(None, Some(&json!("1280*720"))), 720);
        assert_eq!(short_side(None, Some(&json!("832*480"))), 480);
        assert_eq!(short_side(Some(&json!("big")), None), DEFAULT_SR);
        assert_eq!(short_side(None, None), DEFAULT_SR);
    }
}
