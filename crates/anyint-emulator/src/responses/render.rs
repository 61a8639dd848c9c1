//! Renders a [`Plan`] as Responses API objects: the `response` object
//! (every key real responses carry, `null` where unset), its output items
//! (in their `in_progress` skeleton and final forms) and `usage`. No IO,
//! no timing; the stream events are built from these in `events`.

use serde_json::{Map, Value, json};

use super::plan::{Output, Plan};
use super::request::ResponsesRequest;

/// The fields every response object of one request shares.
pub(crate) struct Meta<'a> {
    pub(crate) id: &'a str,
    pub(crate) created_at: u64,
    pub(crate) model: &'a str,
}

/// Where a response object is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    InProgress,
    Completed,
    Incomplete,
    Failed,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Incomplete => "incomplete",
            Self::Failed => "failed",
        }
    }

    /// The final status of a plan.
    pub(crate) fn of(plan: &Plan) -> Self {
        if plan.incomplete {
            Self::Incomplete
        } else {
            Self::Completed
        }
    }
}

/// The `output_text` part of a message.
pub(crate) fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

/// The `summary_text` part of a reasoning item.
pub(crate) fn summary_part(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

/// An output item: its skeleton as `output_item.added` shows it
/// (`done: false`: no content, status `in_progress`), or its final form.
/// `incomplete` marks a final message cut at `max_output_tokens`.
pub(crate) fn item(out: &Output, done: bool, incomplete: bool) -> Value {
    let status = match (done, incomplete) {
        (false, _) => "in_progress",
        (true, false) => "completed",
        (true, true) => "incomplete",
    };
    let mut v = match out {
        Output::Reasoning {
            id,
            summary,
            encrypted,
        } => {
            let summary = if done {
                json!([summary_part(summary)])
            } else {
                json!([])
            };
            let mut v = json!({"id": id, "type": "reasoning", "summary": summary});
            if let Some(blob) = encrypted {
                v["encrypted_content"] = json!(blob);
            }
            return v;
        }
        Output::Message { id, text } => {
            let content = if done {
                json!([text_part(text)])
            } else {
                json!([])
            };
            json!({"id": id, "type": "message", "status": status, "content": content,
                   "role": "assistant"})
        }
        Output::FunctionCall {
            id,
            call_id,
            name,
            arguments,
            ..
        } => json!({
            "id": id,
            "type": "function_call",
            "status": status,
            "arguments": if done { arguments.as_str() } else { "" },
            "call_id": call_id,
            "name": name,
        }),
        Output::CustomCall {
            id,
            call_id,
            name,
            input,
            ..
        } => json!({
            "id": id,
            "type": "custom_tool_call",
            "status": status,
            "call_id": call_id,
            "name": name,
            "input": if done { input.as_str() } else { "" },
        }),
    };
    if let Output::FunctionCall {
        namespace: Some(ns),
        ..
    }
    | Output::CustomCall {
        namespace: Some(ns),
        ..
    } = out
    {
        v["namespace"] = json!(ns);
    }
    v
}

/// The final items of a plan.
pub(crate) fn final_items(plan: &Plan) -> Vec<Value> {
    plan.output
        .iter()
        .map(|o| item(o, true, plan.incomplete))
        .collect()
}

pub(crate) fn usage(plan: &Plan) -> Value {
    json!({
        "input_tokens": plan.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": plan.output_tokens,
        "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
        "total_tokens": plan.input_tokens + plan.output_tokens,
    })
}

/// A `response` object. `error` is `{code, message}` for a failed one.
pub(crate) fn response(
    meta: &Meta<'_>,
    req: &ResponsesRequest,
    status: Status,
    output: Vec<Value>,
    usage: Option<Value>,
    error: Option<Value>,
) -> Value {
    let mut v: Map<String, Value> = req.echo.clone();
    let mut put = |k: &str, value: Value| {
        v.insert(k.to_owned(), value);
    };
    put("id", json!(meta.id));
    put("object", json!("response"));
    put("created_at", json!(meta.created_at));
    put("status", json!(status.name()));
    put("background", json!(false));
    put(
        "completed_at",
        if status == Status::Completed {
            json!(meta.created_at)
        } else {
            Value::Null
        },
    );
    put("error", error.unwrap_or(Value::Null));
    put(
        "incomplete_details",
        if status == Status::Incomplete {
            json!({"reason": "max_output_tokens"})
        } else {
            Value::Null
        },
    );
    put("model", json!(meta.model));
    put("output", Value::Array(output));
    put("previous_response_id", Value::Null);
    put("usage", usage.unwrap_or(Value::Null));
    Value::Object(v)
}

/// The non-streaming body: the finished response.
pub(crate) fn finished(meta: &Meta<'_>, req: &ResponsesRequest, plan: &Plan) -> Value {
    response(
        meta,
        req,
        Status::of(plan),
        final_items(plan),
        Some(usage(plan)),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responses::request::{Endpoint, parse};

    const META: Meta<'static> = Meta {
        id: "resp_x",
        created_at: 7,
        model: "m",
    };

    fn req() -> ResponsesRequest {
        parse(
            Some(&json!({"model": "m", "input": "hi"})),
            Endpoint::Create,
            "k",
        )
        .unwrap()
    }

    #[test]
    fn response_has_every_key() {
        let plan = Plan {
            output: vec![Output::Message {
                id: "msg_1".to_owned(),
                text: "hi".to_owned(),
            }],
            incomplete: false,
            input_tokens: 2,
            output_tokens: 1,
            reasoning_tokens: 0,
        };
        let v = finished(&META, &req(), &plan);
        for key in [
            "id",
            "object",
            "created_at",
            "status",
            "background",
            "completed_at",
            "error",
            "incomplete_details",
            "instructions",
            "max_output_tokens",
            "max_tool_calls",
            "model",
            "output",
            "parallel_tool_calls",
            "previous_response_id",
            "prompt_cache_key",
            "prompt_cache_retention",
            "reasoning",
            "safety_identifier",
            "service_tier",
            "store",
            "temperature",
            "text",
            "tool_choice",
            "tools",
            "top_logprobs",
            "top_p",
            "truncation",
            "usage",
            "user",
            "metadata",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
        assert_eq!(v["status"], "completed");
        assert_eq!(v["completed_at"], 7);
        assert_eq!(v["output"][0]["content"][0], text_part("hi"));
        assert_eq!(v["usage"]["total_tokens"], 3);
        assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 0);
        assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 0);
    }

    #[test]
    fn items_in_both_forms() {
        let call = Output::FunctionCall {
            id: "fc_1".to_owned(),
            call_id: "call_1".to_owned(),
            name: "f".to_owned(),
            namespace: Some("ns".to_owned()),
            arguments: "{}".to_owned(),
        };
        let added = item(&call, false, false);
        assert_eq!(
            (added["status"].as_str(), added["arguments"].as_str()),
            (Some("in_progress"), Some(""))
        );
        assert_eq!(added["namespace"], "ns");
        let done = item(&call, true, false);
        assert_eq!(
            (done["status"].as_str(), done["arguments"].as_str()),
            (Some("completed"), Some("{}"))
        );
        let msg = Output::Message {
            id: "msg_1".to_owned(),
            text: "a".to_owned(),
        };
        assert_eq!(item(&msg, true, true)["status"], "incomplete");
        assert_eq!(item(&msg, false, true)["content"], json!([]));
        let rs = Output::Reasoning {
            id: "rs_1".to_owned(),
            summary: "s".to_owned(),
            encrypted: None,
        };
        assert!(item(&rs, true, false).get("encrypted_content").is_none());
        assert_eq!(item(&rs, false, false)["summary"], json!([]));
    }
}
