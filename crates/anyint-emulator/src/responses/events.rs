//! The SSE events of a streamed response, in the exact grammar of the
//! Responses API: `response.created`, `response.in_progress`, then per
//! output item `output_item.added` → its part / delta / done events →
//! `output_item.done`, then exactly one `response.completed` or
//! `response.incomplete`. Every event is framed `event: <type>` +
//! `data: <json>` and carries a `sequence_number` counting from 0. Also
//! the `error` + `response.failed` pair of a mid-stream failure. No IO.

use bytes::Bytes;
use serde_json::{Value, json};

use super::plan::{Output, Plan};
use super::render::{self, Meta, Status};
use super::request::ResponsesRequest;
use crate::content::pieces;
use crate::util::{fnv64, hex_id};

/// Longest `obfuscation` padding.
const OBFUSCATION_LEN: usize = 16;

/// The message of the in-stream failure (`error_after`).
const FAILURE_MESSAGE: &str = "The server had an error processing your request. Sorry about \
                               that! You can retry your request, or contact us through our help \
                               center at help.openai.com if you keep seeing this error.";

/// `event: <type>\ndata: <json>\n\n`.
pub(crate) fn frame(event: &Value) -> Bytes {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    Bytes::from(format!("event: {kind}\ndata: {event}\n\n"))
}

/// Collects events and numbers them.
struct Events<'a> {
    list: Vec<Value>,
    /// Add `obfuscation` padding to delta events.
    obfuscation: bool,
    seed: &'a [u8],
}

impl Events<'_> {
    fn push(&mut self, kind: &str, mut body: Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.list.len());
        self.list.push(body);
    }

    /// A delta event; gets deterministic `obfuscation` padding when on.
    fn delta(&mut self, kind: &str, mut body: Value) {
        if self.obfuscation {
            let delta = body["delta"].as_str().unwrap_or("");
            let len = OBFUSCATION_LEN.saturating_sub(delta.chars().count()).max(1);
            let seq = self.list.len().to_le_bytes();
            let pad = hex_id(&fnv64(&[self.seed, &seq]).to_le_bytes(), len);
            body["obfuscation"] = json!(pad);
        }
        self.push(kind, body);
    }
}

/// Splits arguments into at least two pieces (when there are ≥ 2 chars) of
/// at most 8 characters each.
fn split(args: &str) -> Vec<String> {
    let chars: Vec<char> = args.chars().collect();
    let size = chars.len().div_ceil(2).clamp(1, 8);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// Every event of the stream, numbered, in order.
pub(crate) fn events(
    meta: &Meta<'_>,
    req: &ResponsesRequest,
    plan: &Plan,
    seed: &[u8],
) -> Vec<Value> {
    let mut ev = Events {
        list: Vec::new(),
        obfuscation: req.obfuscation,
        seed,
    };
    let start = render::response(meta, req, Status::InProgress, Vec::new(), None, None);
    ev.push("response.created", json!({"response": start}));
    ev.push("response.in_progress", json!({"response": start}));
    for (index, out) in plan.output.iter().enumerate() {
        let id = out.id();
        let at = |extra: Value| {
            let mut v = json!({"item_id": id, "output_index": index});
            if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
                v.extend(extra);
            }
            v
        };
        ev.push(
            "response.output_item.added",
            json!({"output_index": index, "item": render::item(out, false, plan.incomplete)}),
        );
        match out {
            Output::Reasoning { summary, .. } => {
                let part =
                    |text: &str| json!({"summary_index": 0, "part": render::summary_part(text)});
                ev.push("response.reasoning_summary_part.added", at(part("")));
                for piece in pieces(summary) {
                    ev.delta(
                        "response.reasoning_summary_text.delta",
                        at(json!({"summary_index": 0, "delta": piece})),
                    );
                }
                ev.push(
                    "response.reasoning_summary_text.done",
                    at(json!({"summary_index": 0, "text": summary})),
                );
                ev.push("response.reasoning_summary_part.done", at(part(summary)));
            }
            Output::Message { text, .. } => {
                let part =
                    |text: &str| json!({"content_index": 0, "part": render::text_part(text)});
                ev.push("response.content_part.added", at(part("")));
                for piece in pieces(text) {
                    ev.delta(
                        "response.output_text.delta",
                        at(json!({"content_index": 0, "delta": piece, "logprobs": []})),
                    );
                }
                ev.push(
                    "response.output_text.done",
                    at(json!({"content_index": 0, "text": text, "logprobs": []})),
                );
                ev.push("response.content_part.done", at(part(text)));
            }
            Output::FunctionCall {
                name, arguments, ..
            } => {
                for piece in split(arguments) {
                    ev.delta(
                        "response.function_call_arguments.delta",
                        at(json!({"delta": piece})),
                    );
                }
                ev.push(
                    "response.function_call_arguments.done",
                    at(json!({"name": name, "arguments": arguments})),
                );
            }
            Output::CustomCall { input, .. } => {
                for piece in split(input) {
                    ev.delta(
                        "response.custom_tool_call_input.delta",
                        at(json!({"delta": piece})),
                    );
                }
                ev.push(
                    "response.custom_tool_call_input.done",
                    at(json!({"input": input})),
                );
            }
        }
        ev.push(
            "response.output_item.done",
            json!({"output_index": index, "item": render::item(out, true, plan.incomplete)}),
        );
    }
    let status = Status::of(plan);
    let kind = if status == Status::Incomplete {
        "response.incomplete"
    } else {
        "response.completed"
    };
    let end = render::finished(meta, req, plan);
    ev.push(kind, json!({"response": end}));
    ev.list
}

/// What follows the first `kept` events of a stream that fails mid-way:
/// the nested `error` event, then `response.failed` whose output holds
/// the items that were already done. Sequence numbers continue.
pub(crate) fn failure(meta: &Meta<'_>, req: &ResponsesRequest, kept: &[Value]) -> Vec<Value> {
    let done: Vec<Value> = kept
        .iter()
        .filter(|e| e["type"] == "response.output_item.done")
        .map(|e| e["item"].clone())
        .collect();
    let error = json!({"code": "server_error", "message": FAILURE_MESSAGE});
    let failed = render::response(meta, req, Status::Failed, done, None, Some(error));
    vec![
        json!({
            "type": "error",
            "sequence_number": kept.len(),
            "error": {"type": "server_error", "code": "server_error",
                      "message": FAILURE_MESSAGE, "param": null},
        }),
        json!({
            "type": "response.failed",
            "sequence_number": kept.len() + 1,
            "response": failed,
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responses::plan::plan;
    use crate::responses::request::{Endpoint, parse};

    const META: Meta<'static> = Meta {
        id: "resp_x",
        created_at: 1,
        model: "m",
    };

    fn stream(body: &Value) -> Vec<Value> {
        let req = parse(Some(body), Endpoint::Create, "k").unwrap();
        events(&META, &req, &plan(&req, b"s", "k"), b"s")
    }

    fn types(ev: &[Value]) -> Vec<&str> {
        ev.iter().map(|e| e["type"].as_str().unwrap()).collect()
    }

    #[test]
    fn text_stream_grammar() {
        let ev = stream(&json!({"model": "m", "input": "Reply with exactly: Hello world"}));
        assert_eq!(
            types(&ev),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, e) in ev.iter().enumerate() {
            assert_eq!(e["sequence_number"], i);
        }
        assert_eq!(ev[4]["delta"], "Hello");
        assert!(ev[4]["obfuscation"].is_string());
        assert_eq!(ev[6]["text"], "Hello world");
        assert_eq!(ev[9]["response"]["usage"]["output_tokens"], 2);
        assert!(ev[0]["response"]["usage"].is_null());
        let framed = std::str::from_utf8(&frame(&ev[0])).unwrap().to_owned();
        assert!(framed.starts_with("event: response.created\ndata: {"));
    }

    #[test]
    fn reasoning_and_call_stream() {
        let ev = stream(
            &json!({"model": "m", "input": "use f", "reasoning": {"effort": "low"},
            "tools": [{"type": "function", "name": "f"}],
            "stream": true, "stream_options": {"include_obfuscation": false}}),
        );
        let t = types(&ev);
        assert_eq!(
            t[2..7],
            [
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.delta",
            ]
        );
        assert!(ev.iter().all(|e| e.get("obfuscation").is_none()));
        let args = ev
            .iter()
            .position(|e| e["type"] == "response.function_call_arguments.done")
            .unwrap();
        assert_eq!(ev[args]["output_index"], 1);
        assert_eq!(ev[args]["arguments"], "{}");
        assert_eq!(t.last(), Some(&"response.completed"));
    }

    #[test]
    fn failure_continues_the_numbering() {
        let ev = stream(&json!({"model": "m", "input": "hi"}));
        let tail = failure(
            &META,
            &parse(Some(&json!({"model": "m"})), Endpoint::Create, "k").unwrap(),
            &ev[..9],
        );
        assert_eq!(tail[0]["sequence_number"], 9);
        assert_eq!(tail[0]["error"]["code"], "server_error");
        assert_eq!(tail[1]["type"], "response.failed");
        assert_eq!(tail[1]["response"]["status"], "failed");
        assert_eq!(tail[1]["response"]["output"].as_array().unwrap().len(), 1);
        assert_eq!(split("{}"), ["{", "}"]);
    }
}
