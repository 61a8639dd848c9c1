//! Renders a [`Plan`] as a `chat.completion` object or as the ordered list of
//! SSE events of a `chat.completion.chunk` stream. No IO, no timing.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::plan::{Output, Plan, pieces};

/// The fields every response or chunk repeats.
pub(crate) struct Meta<'a> {
    pub(crate) id: &'a str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
}

fn usage(plan: &Plan) -> Value {
    json!({
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
    })
}

/// The non-streaming `chat.completion` body.
pub(crate) fn completion(meta: &Meta<'_>, plan: &Plan, n: usize) -> Value {
    let (message, finish) = match &plan.output {
        Output::Text { content, finish } => (
            json!({"role": "assistant", "content": content, "refusal": null}),
            *finish,
        ),
        Output::Tools(calls) => {
            let calls: Vec<Value> = calls
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    })
                })
                .collect();
            (
                json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": calls}),
                "tool_calls",
            )
        }
    };
    let choices: Vec<Value> = (0..n)
        .map(|index| {
            json!({
                "index": index,
                "message": message,
                "logprobs": null,
                "finish_reason": finish,
            })
        })
        .collect();
    json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": choices,
        "usage": usage(plan),
    })
}

/// One `data: {...}\n\n` event.
fn event(meta: &Meta<'_>, choices: Value, usage: Option<Value>) -> Bytes {
    let mut chunk = Map::new();
    chunk.insert("id".to_owned(), json!(meta.id));
    chunk.insert("object".to_owned(), json!("chat.completion.chunk"));
    chunk.insert("created".to_owned(), json!(meta.created));
    chunk.insert("model".to_owned(), json!(meta.model));
    chunk.insert("choices".to_owned(), choices);
    if let Some(u) = usage {
        chunk.insert("usage".to_owned(), u);
    }
    Bytes::from(format!("data: {}\n\n", Value::Object(chunk)))
}

/// All events of the stream, in order, without the final `data: [DONE]`.
pub(crate) fn chunks(meta: &Meta<'_>, plan: &Plan, n: usize, include_usage: bool) -> Vec<Bytes> {
    let null_usage = || include_usage.then_some(Value::Null);
    let choice = |index: usize, delta: Value, finish: Option<&str>| json!([{"index": index, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut out = Vec::new();
    for index in 0..n {
        let role = json!({"role": "assistant", "content": ""});
        out.push(event(meta, choice(index, role, None), null_usage()));
        let finish = match &plan.output {
            Output::Text { content, finish } => {
                for piece in pieces(content) {
                    let delta = json!({"content": piece});
                    out.push(event(meta, choice(index, delta, None), null_usage()));
                }
                *finish
            }
            Output::Tools(calls) => {
                for (ci, call) in calls.iter().enumerate() {
                    let head = json!({"tool_calls": [{
                        "index": ci,
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }]});
                    out.push(event(meta, choice(index, head, None), null_usage()));
                    for part in split_arguments(&call.arguments) {
                        let delta =
                            json!({"tool_calls": [{"index": ci, "function": {"arguments": part}}]});
                        out.push(event(meta, choice(index, delta, None), null_usage()));
                    }
                }
                "tool_calls"
            }
        };
        out.push(event(
            meta,
            choice(index, json!({}), Some(finish)),
            null_usage(),
        ));
    }
    if include_usage {
        out.push(event(meta, json!([]), Some(usage(plan))));
    }
    out
}

/// Splits arguments into at least two pieces (when there are ≥ 2 chars) of
/// at most 8 characters each.
fn split_arguments(args: &str) -> Vec<String> {
    let chars: Vec<char> = args.chars().collect();
    let size = chars.len().div_ceil(2).clamp(1, 8);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::plan::Call;
    use super::*;

    const META: Meta<'static> = Meta {
        id: "chatcmpl-x",
        created: 1,
        model: "m",
    };

    fn text_plan(content: &str) -> Plan {
        Plan {
            output: Output::Text {
                content: content.to_owned(),
                finish: "stop",
            },
            prompt_tokens: 3,
            completion_tokens: 2,
        }
    }

    fn parse_events(events: &[Bytes]) -> Vec<Value> {
        events
            .iter()
            .map(|e| {
                let s = std::str::from_utf8(e).unwrap();
                let body = s
                    .strip_prefix("data: ")
                    .unwrap()
                    .strip_suffix("\n\n")
                    .unwrap();
                serde_json::from_str(body).unwrap()
            })
            .collect()
    }

    #[test]
    fn completion_shape() {
        let v = completion(&META, &text_plan("hi"), 2);
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"].as_array().unwrap().len(), 2);
        assert_eq!(v["choices"][1]["index"], 1);
        assert!(v["choices"][0]["message"]["refusal"].is_null());
        assert!(v["choices"][0]["logprobs"].is_null());
        assert_eq!(v["usage"]["total_tokens"], 5);
    }

    #[test]
    fn stream_without_usage_has_no_usage_key() {
        let ev = parse_events(&chunks(&META, &text_plan("Hello world"), 1, false));
        assert_eq!(ev.len(), 4);
        assert_eq!(
            ev[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(ev[1]["choices"][0]["delta"]["content"], "Hello");
        assert_eq!(ev[2]["choices"][0]["delta"]["content"], " world");
        assert_eq!(ev[3]["choices"][0]["delta"], json!({}));
        assert_eq!(ev[3]["choices"][0]["finish_reason"], "stop");
        assert!(ev.iter().all(|e| e.get("usage").is_none()));
    }

    #[test]
    fn stream_with_usage_ends_with_usage_chunk() {
        let ev = parse_events(&chunks(&META, &text_plan("Hi"), 1, true));
        let last = ev.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"]["total_tokens"], 5);
        assert!(ev[..ev.len() - 1].iter().all(|e| e["usage"].is_null()));
    }

    #[test]
    fn stream_tool_calls_split_arguments() {
        let plan = Plan {
            output: Output::Tools(vec![Call {
                id: "call_a".to_owned(),
                name: "f".to_owned(),
                arguments: r#"{"city":"test"}"#.to_owned(),
            }]),
            prompt_tokens: 1,
            completion_tokens: 1,
        };
        let ev = parse_events(&chunks(&META, &plan, 1, false));
        let head = &ev[1]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(head["id"], "call_a");
        assert_eq!(head["function"]["arguments"], "");
        let args: String = ev[2..ev.len() - 1]
            .iter()
            .map(|e| {
                e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert!(ev.len() - 3 >= 2);
        assert_eq!(args, r#"{"city":"test"}"#);
        assert_eq!(
            ev.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );
        assert_eq!(split_arguments("{}"), vec!["{", "}"]);
    }
}
