//! Renders an Anthropic [`Plan`] as a `message` object or as the ordered
//! named SSE events of a Messages stream (`event:` line on every event). No
//! IO, no timing.

use bytes::Bytes;
use serde_json::{Value, json};

use super::plan::{Block, Plan, Usage};
use crate::content::pieces;
use crate::search::Found;
use crate::util::{base64, hex_id};

/// The fields the message object repeats.
pub(crate) struct Meta<'a> {
    pub(crate) id: &'a str,
    pub(crate) model: &'a str,
}

/// The `usage` object; `output` overrides the output count (the
/// `message_start` event carries a small placeholder).
fn usage_json(u: &Usage, output: usize) -> Value {
    let (five, hour) = if u.one_hour {
        (0, u.cache_creation)
    } else {
        (u.cache_creation, 0)
    };
    let mut usage = json!({
        "input_tokens": u.input,
        "cache_creation_input_tokens": u.cache_creation,
        "cache_read_input_tokens": u.cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": five,
            "ephemeral_1h_input_tokens": hour,
        },
        "output_tokens": output,
        "service_tier": "standard",
    });
    if u.web_searches > 0 {
        usage["server_tool_use"] =
            json!({"web_search_requests": u.web_searches, "web_fetch_requests": 0});
    }
    usage
}

/// An opaque blob standing in for Anthropic's encrypted page content and
/// citation index, derived from what it stands for.
fn opaque(kind: &str, of: &str) -> String {
    base64(hex_id(&[kind.as_bytes(), of.as_bytes()].concat(), 32).as_bytes())
}

fn result_json(r: &Found) -> Value {
    json!({"type": "web_search_result", "url": r.url, "title": r.title,
           "encrypted_content": opaque("content", &r.url), "page_age": "1 day ago"})
}

fn citation_json(r: &Found) -> Value {
    json!({"type": "web_search_result_location", "url": r.url, "title": r.title,
           "cited_text": r.snippet, "encrypted_index": opaque("index", &r.url)})
}

fn block_json(b: &Block) -> Value {
    match b {
        Block::Thinking {
            thinking,
            signature,
        } => json!({"type": "thinking", "thinking": thinking, "signature": signature}),
        Block::Text(text) => json!({"type": "text", "text": text}),
        Block::ToolUse { id, name, input } => {
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
        Block::Search { id, query } => json!({"type": "server_tool_use", "id": id,
            "name": "web_search", "input": {"query": query}}),
        Block::SearchResult {
            tool_use_id,
            results,
        } => json!({"type": "web_search_tool_result", "tool_use_id": tool_use_id,
            "content": results.iter().map(result_json).collect::<Vec<_>>()}),
        Block::CitedText { text, sources } => json!({"type": "text", "text": text,
            "citations": sources.iter().map(citation_json).collect::<Vec<_>>()}),
    }
}

fn message(meta: &Meta<'_>, content: Vec<Value>, plan: Option<&Plan>, usage: Value) -> Value {
    let mut m = json!({
        "id": meta.id,
        "type": "message",
        "role": "assistant",
        "model": meta.model,
        "stop_reason": plan.map(|p| p.stop_reason),
        "stop_sequence": plan.and_then(|p| p.stop_sequence.as_deref()),
    });
    m["content"] = Value::Array(content);
    m["usage"] = usage;
    m
}

/// The non-streaming `message` body.
pub(crate) fn complete(meta: &Meta<'_>, plan: &Plan, usage: &Usage) -> Value {
    let content = plan.blocks.iter().map(block_json).collect();
    message(meta, content, Some(plan), usage_json(usage, usage.output))
}

/// One `event: <type>\ndata: {...}\n\n` SSE event.
fn event(data: &Value) -> Bytes {
    let name = data.get("type").and_then(Value::as_str).unwrap_or("error");
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// All events of the stream in order: `message_start`, one `ping` (after
/// the first `content_block_start`, as the API sends it), the blocks,
/// `message_delta`, `message_stop`.
pub(crate) fn events(meta: &Meta<'_>, plan: &Plan, usage: &Usage) -> Vec<Bytes> {
    let ping = event(&json!({"type": "ping"}));
    let start = message(
        meta,
        Vec::new(),
        None,
        usage_json(usage, usage.output.min(1)),
    );
    let mut out = vec![event(&json!({"type": "message_start", "message": start}))];
    if plan.blocks.is_empty() {
        out.push(ping.clone());
    }
    for (index, block) in plan.blocks.iter().enumerate() {
        let empty = match block {
            Block::Thinking { .. } => json!({"type": "thinking", "thinking": "", "signature": ""}),
            Block::Text(_) => json!({"type": "text", "text": ""}),
            Block::ToolUse { id, name, .. } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": {}})
            }
            Block::Search { id, .. } => {
                json!({"type": "server_tool_use", "id": id, "name": "web_search", "input": {}})
            }
            // Results arrive whole at the block's start, with no deltas.
            Block::SearchResult { .. } => block_json(block),
            Block::CitedText { .. } => json!({"type": "text", "text": "", "citations": []}),
        };
        out.push(event(&json!({
            "type": "content_block_start", "index": index, "content_block": empty,
        })));
        if index == 0 {
            out.push(ping.clone());
        }
        let delta =
            |d: Value| event(&json!({"type": "content_block_delta", "index": index, "delta": d}));
        match block {
            Block::Thinking {
                thinking,
                signature,
            } => {
                for piece in pieces(thinking) {
                    out.push(delta(json!({"type": "thinking_delta", "thinking": piece})));
                }
                out.push(delta(
                    json!({"type": "signature_delta", "signature": signature}),
                ));
            }
            Block::Text(text) => {
                for piece in pieces(text) {
                    out.push(delta(json!({"type": "text_delta", "text": piece})));
                }
            }
            Block::ToolUse { input, .. } => {
                let json = serde_json::to_string(input).unwrap_or_default();
                for part in split_json(&json) {
                    out.push(delta(
                        json!({"type": "input_json_delta", "partial_json": part}),
                    ));
                }
            }
            Block::Search { query, .. } => {
                let json = json!({"query": query}).to_string();
                for part in split_json(&json) {
                    out.push(delta(
                        json!({"type": "input_json_delta", "partial_json": part}),
                    ));
                }
            }
            Block::SearchResult { .. } => {}
            Block::CitedText { text, sources } => {
                // Citations come before the text they cite, as the API sends them.
                for s in sources {
                    out.push(delta(
                        json!({"type": "citations_delta", "citation": citation_json(s)}),
                    ));
                }
                for piece in pieces(text) {
                    out.push(delta(json!({"type": "text_delta", "text": piece})));
                }
            }
        }
        out.push(event(
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }
    let mut final_usage = usage_json(usage, usage.output);
    if let Some(u) = final_usage.as_object_mut() {
        // message_delta usage is cumulative but carries no cache breakdown.
        u.remove("cache_creation");
        u.remove("service_tier");
    }
    out.push(event(&json!({
        "type": "message_delta",
        "delta": {"stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence},
        "usage": final_usage,
    })));
    out.push(event(&json!({"type": "message_stop"})));
    out
}

/// Splits tool input JSON into at least two pieces (when there are ≥ 2
/// chars) of at most 8 characters each.
fn split_json(json: &str) -> Vec<String> {
    let chars: Vec<char> = json.chars().collect();
    let size = chars.len().div_ceil(2).clamp(1, 8);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    const META: Meta<'static> = Meta {
        id: "msg_1",
        model: "claude-x",
    };

    fn parse(events: &[Bytes]) -> Vec<(String, Value)> {
        events
            .iter()
            .map(|e| {
                let s = std::str::from_utf8(e).unwrap();
                let (head, data) = s.split_once('\n').unwrap();
                let name = head.strip_prefix("event: ").unwrap().to_owned();
                let data = data
                    .strip_prefix("data: ")
                    .unwrap()
                    .strip_suffix("\n\n")
                    .unwrap();
                (name, serde_json::from_str(data).unwrap())
            })
            .collect()
    }

    #[test]
    fn text_stream_sequence() {
        let plan = Plan {
            blocks: vec![Block::Text("Hi there".to_owned())],
            stop_reason: "end_turn",
            stop_sequence: None,
            output_tokens: 2,
            web_searches: 0,
        };
        let usage = Usage {
            input: 5,
            output: 2,
            ..Usage::default()
        };
        let ev = parse(&events(&META, &plan, &usage));
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        for (name, data) in &ev {
            assert_eq!(data["type"], name.as_str());
        }
        assert_eq!(ev[0].1["message"]["usage"]["input_tokens"], 5);
        assert!(ev[0].1["message"]["stop_reason"].is_null());
        assert_eq!(ev[6].1["usage"]["output_tokens"], 2);
        let body = complete(&META, &plan, &usage);
        assert_eq!(body["content"][0]["text"], "Hi there");
        assert_eq!(body["usage"]["cache_read_input_tokens"], 0);
    }

    #[test]
    fn tool_input_arrives_in_pieces() {
        let mut input = Map::new();
        input.insert("city".to_owned(), json!("test"));
        let plan = Plan {
            blocks: vec![Block::ToolUse {
                id: "toolu_1".to_owned(),
                name: "f".to_owned(),
                input,
            }],
            stop_reason: "tool_use",
            stop_sequence: None,
            output_tokens: 5,
            web_searches: 0,
        };
        let ev = parse(&events(&META, &plan, &Usage::default()));
        let parts: Vec<&str> = ev
            .iter()
            .filter(|(n, _)| n == "content_block_delta")
            .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap())
            .collect();
        assert!(parts.len() >= 2);
        assert_eq!(parts.concat(), r#"{"city":"test"}"#);
        assert_eq!(split_json("{}"), vec!["{", "}"]);
    }
}
