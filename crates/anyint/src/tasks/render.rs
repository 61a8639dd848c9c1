//! The client-facing bodies of a task, in each task family's own shape: the DashScope poll
//! answer (also the body of its callbacks), and music's record-info `data` and callback
//! stages. They live with the tasks because both the family routes (poll answers) and the
//! outbox events (callback bodies) render them.

use serde_json::{Value, json};

use crate::store::{Task, TaskStatus};

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC), DashScope's time format.
fn ds_time(ms: i64) -> String {
    let iso = crate::clock::rfc3339(ms.div_euclid(1000));
    format!(
        "{}.{:03}",
        iso.trim_end_matches('Z').replacen('T', " ", 1),
        ms.rem_euclid(1000)
    )
}

/// The task in DashScope's shape (the poll answer, and the body of its callbacks): the
/// upstream's output with the gateway's task ID, the gateway's status, and the usage.
pub fn dashscope_task(task: &Task, request_id: &str) -> Value {
    let stored = task.result.as_ref();
    let mut output = stored
        .and_then(|r| r.get("output"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    output.insert("task_id".into(), Value::String(task.id.clone()));
    output.insert(
        "task_status".into(),
        Value::String(task.native_status.clone()),
    );
    output
        .entry("submit_time")
        .or_insert_with(|| Value::String(ds_time(task.created_at_ms)));
    if let Some(end) = task.finished_at_ms {
        output
            .entry("end_time")
            .or_insert_with(|| Value::String(ds_time(end)));
    }
    if let (Some(code), Some(message)) = (&task.error_code, &task.error_message) {
        output.insert("code".into(), Value::String(code.clone()));
        output.insert("message".into(), Value::String(message.clone()));
    }
    let mut body = json!({"request_id": request_id, "output": output});
    if let Some(usage) = stored
        .and_then(|r| r.get("usage"))
        .filter(|u| u.is_object())
    {
        body["usage"] = usage.clone();
    }
    body
}

/// The error code as the reseller writes it: a number when it is one.
fn error_code(task: &Task) -> Value {
    task.error_code.as_deref().map_or(Value::Null, |c| {
        c.parse::<i64>()
            .map_or_else(|_| Value::String(c.to_owned()), Value::from)
    })
}

fn tracks(task: &Task) -> Vec<Value> {
    task.result
        .as_ref()
        .and_then(|r| r.get("sunoData"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The record-info `data` for a task, with the gateway's task ID. Takes the task, so the stored
/// request is serialized from the one copy loaded, never cloned.
pub fn music_record(mut task: Task) -> Value {
    let mut param = std::mem::take(&mut task.request);
    if let (Some(obj), Some(url)) = (param.as_object_mut(), &task.callback_url) {
        obj.insert("callBackUrl".into(), Value::String(url.clone()));
    }
    let text = param.to_string();
    drop(param);
    let param = Value::String(text);
    let mut data = json!({
        "taskId": task.id,
        "parentMusicId": "",
        "response": {"taskId": task.id, "sunoData": tracks(&task)},
        "status": task.native_status,
        "type": "GENERATE",
        "operationType": "generate",
        "errorCode": error_code(&task),
        "errorMessage": task.error_message,
        "createTime": task.created_at_ms,
    });
    // Moved in, not serialized by reference (a copy) as `json!` would.
    data["param"] = param;
    data
}

/// The client callback for a task's current stage, in the reseller's callback shape (tracks
/// in snake_case), or `None` for a stage without a callback (`PENDING`).
pub fn music_callback(task: &Task) -> Option<Value> {
    let (kind, code, msg) = match (task.status, task.native_status.as_str()) {
        (TaskStatus::Failed | TaskStatus::Canceled, _) => (
            "error",
            error_code(task).as_i64().unwrap_or(500),
            task.error_message
                .clone()
                .unwrap_or_else(|| "music generation failed".into()),
        ),
        (_, "TEXT_SUCCESS") => ("text", 200, "Text generation completed.".to_owned()),
        (_, "FIRST_SUCCESS") => ("first", 200, "First track generation completed.".to_owned()),
        (TaskStatus::Succeeded, _) => ("complete", 200, "All generated successfully.".to_owned()),
        _ => return None,
    };
    let items: Vec<Value> = tracks(task)
        .iter()
        .map(|t| crate::providers::music::convert_track(t, false))
        .collect();
    let data = if kind == "error" {
        Value::Null
    } else {
        Value::Array(items)
    };
    Some(json!({
        "code": code,
        "msg": msg,
        "data": {"callbackType": kind, "task_id": task.id, "data": data},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_use_dashscope_format() {
        assert_eq!(ds_time(1_760_208_956_952), "2025-10-11 18:55:56.952");
    }
}
