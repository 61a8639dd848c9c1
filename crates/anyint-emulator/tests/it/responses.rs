//! The OpenAI Responses API over real loopback HTTP: validation errors,
//! JSON bodies, the strict stream grammar, tool rounds (function and
//! custom), structured output, reasoning blobs, truncation, faults and the
//! side routes (`input_tokens`, the WebSocket upgrade, stored ids).

use anyint_emulator::Options;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Emu, KEY, json_of, start};

const FAULT: &str = "x-emulator-fault";

impl Emu {
    async fn responses(&self, body: &Value) -> reqwest::Response {
        self.bearer_post("/v1/responses")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A streamed create: its events, checked against the grammar, and
    /// the final response object.
    async fn stream(&self, body: &Value) -> (Vec<Value>, Value) {
        let mut body = body.clone();
        body["stream"] = json!(true);
        let resp = self.responses(&body).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        let events = sse(&resp.text().await.unwrap());
        let last = check_grammar(&events);
        (events, last)
    }
}

fn user(text: &str) -> Value {
    json!({"model": "gpt-5.1", "input": text})
}

/// Parses an SSE body into its events, asserting each is exactly an
/// `event:` line naming the data's `type` and one `data:` line.
fn sse(text: &str) -> Vec<Value> {
    assert!(!text.contains("[DONE]"), "{text}");
    text.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut lines = block.lines();
            let name = lines.next().unwrap().strip_prefix("event: ").unwrap();
            let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
            assert!(lines.next().is_none(), "{block}");
            let v: Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["type"], name, "{block}");
            v
        })
        .collect()
}

/// The per-item events that may come between `added` and `done`, by item
/// type, in order: (event type, may repeat). None for unknown types.
fn item_grammar(kind: &str) -> Option<&'static [(&'static str, bool)]> {
    let grammar: &[(&str, bool)] = match kind {
        "message" => &[
            ("response.content_part.added", false),
            ("response.output_text.delta", true),
            ("response.output_text.done", false),
            ("response.content_part.done", false),
        ],
        "reasoning" => &[
            ("response.reasoning_summary_part.added", false),
            ("response.reasoning_summary_text.delta", true),
            ("response.reasoning_summary_text.done", false),
            ("response.reasoning_summary_part.done", false),
        ],
        "function_call" => &[
            ("response.function_call_arguments.delta", true),
            ("response.function_call_arguments.done", false),
        ],
        "custom_tool_call" => &[
            ("response.custom_tool_call_input.delta", true),
            ("response.custom_tool_call_input.done", false),
        ],
        _ => return None,
    };
    Some(grammar)
}

/// Checks the whole Responses stream grammar strictly and returns the
/// terminal event's response: `sequence_number` 0, 1, 2…; `created` then
/// `in_progress`; per item (dense `output_index` from 0) `added`, its own
/// events (same `item_id` and `output_index`, deltas adding up to the
/// done text), `done`; then exactly one terminal event whose output equals
/// the done items.
fn check_grammar(events: &[Value]) -> Value {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i, "event {i}: {e}");
    }
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types[..2], ["response.created", "response.in_progress"]);
    let start = &events[0]["response"];
    assert_eq!(start["status"], "in_progress");
    assert_eq!(start["output"], json!([]));
    assert!(start["usage"].is_null());
    assert_eq!(events[1]["response"], *start);
    let id = start["id"].as_str().unwrap();
    assert!(id.starts_with("resp_"), "{id}");

    let mut done_items = Vec::new();
    let mut i = 2;
    while events[i]["type"] == "response.output_item.added" {
        let index = done_items.len();
        let added = &events[i];
        assert_eq!(added["output_index"], index, "{added}");
        let item = &added["item"];
        let item_id = item["id"].as_str().unwrap();
        let kind = item["type"].as_str().unwrap();
        i += 1;
        let mut deltas = String::new();
        let mut done_text = None;
        let grammar = item_grammar(kind).expect("a known item type");
        for (expected, repeats) in grammar {
            let mut seen = 0;
            while events[i]["type"] == *expected && (seen == 0 || *repeats) {
                let e = &events[i];
                assert_eq!(e["item_id"], item_id, "{e}");
                assert_eq!(e["output_index"], index, "{e}");
                if let Some(d) = e["delta"].as_str() {
                    deltas.push_str(d);
                }
                for key in ["text", "arguments", "input"] {
                    if let Some(t) = e.get(key).and_then(Value::as_str) {
                        done_text = Some(t.to_owned());
                    }
                }
                seen += 1;
                i += 1;
            }
            // Text deltas may be absent for an empty text; every other event
            // must be there.
            assert!(seen > 0 || *repeats, "missing {expected} at event {i}");
        }
        assert_eq!(Some(deltas), done_text, "deltas of {item_id}");
        let done = &events[i];
        assert_eq!(done["type"], "response.output_item.done", "{done}");
        assert_eq!(done["output_index"], index);
        assert_eq!(done["item"]["id"], item_id);
        assert_eq!(done["item"]["type"], kind);
        done_items.push(done["item"].clone());
        i += 1;
    }
    assert_eq!(
        i,
        events.len() - 1,
        "one terminal event must end the stream"
    );
    let last = &events[i];
    let status = match last["type"].as_str().unwrap() {
        "response.completed" => Some("completed"),
        "response.incomplete" => Some("incomplete"),
        _ => None,
    }
    .expect("a completed or incomplete terminal event");
    let resp = &last["response"];
    assert_eq!(resp["status"], status);
    assert_eq!(resp["id"], id);
    assert_eq!(resp["output"], Value::Array(done_items));
    assert!(resp["usage"]["input_tokens"].is_u64());
    resp.clone()
}

fn assert_error(body: &Value, param: Option<&str>, code: Option<&str>) {
    let err = body["error"].as_object().expect("error object");
    for key in ["message", "type", "param", "code"] {
        assert!(err.contains_key(key), "missing {key} in {body}");
    }
    assert_eq!(err["type"], "invalid_request_error", "{body}");
    assert_eq!(err["param"].as_str(), param, "{body}");
    assert_eq!(err["code"].as_str(), code, "{body}");
}

#[tokio::test]
async fn validation_errors() {
    let emu = start(Options::default()).await;
    let cases = [
        (
            json!({"model": "m", "input": "hi", "messages": []}),
            Some("messages"),
            Some("unknown_parameter"),
        ),
        (
            json!({"input": "hi"}),
            Some("model"),
            Some("missing_required_parameter"),
        ),
        (
            json!({"model": "m", "input": "hi",
                   "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
            Some("tools[0].name"),
            Some("missing_required_parameter"),
        ),
        (
            json!({"model": "m", "input": [
                {"role": "user", "content": "hi"},
                {"type": "function_call_output", "call_id": "call_x", "output": "1"}]}),
            Some("input"),
            None,
        ),
        (
            json!({"model": "m", "input": "hi", "previous_response_id": "resp_abc"}),
            Some("previous_response_id"),
            Some("previous_response_not_found"),
        ),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            Some("input[0].id"),
            Some("item_not_found"),
        ),
        (
            json!({"model": "m", "input": "hi", "max_output_tokens": 8}),
            Some("max_output_tokens"),
            Some("integer_below_min_value"),
        ),
        (
            json!({"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}}}),
            Some("text.format"),
            None,
        ),
        (
            json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}),
            Some("tools[0].type"),
            Some("unsupported_value"),
        ),
    ];
    for (body, param, code) in cases {
        let (status, err) = json_of(emu.responses(&body).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {err}");
        assert_error(&err, param, code);
    }
    let (_, err) = json_of(
        emu.responses(&json!({"model": "m", "input": "hi", "foo": 1}))
            .await,
    )
    .await;
    assert_eq!(err["error"]["message"], "Unknown parameter: 'foo'.");
    let (_, err) = json_of(
        emu.responses(&json!({"model": "m", "input": [
            {"type": "function_call_output", "call_id": "call_x", "output": "1"}]}))
            .await,
    )
    .await;
    assert_eq!(
        err["error"]["message"],
        "No tool call found for function call output with call_id call_x."
    );
    // Codex's extra field is accepted.
    let mut codex = user("hi");
    codex["client_metadata"] = json!({"x-codex-installation-id": "abc"});
    assert_eq!(emu.responses(&codex).await.status(), StatusCode::OK);

    let resp = emu
        .client
        .post(emu.url("/v1/responses"))
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn non_stream_text() {
    let emu = start(Options::default()).await;
    let resp = emu.responses(&user("Reply with exactly: pong")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key("x-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "gpt-5.1");
    assert!(body["created_at"].is_u64());
    assert!(body["error"].is_null() && body["incomplete_details"].is_null());
    assert_eq!(
        body["text"],
        json!({"format": {"type": "text"}, "verbosity": "medium"})
    );
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["parallel_tool_calls"], true);
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    let msg = &output[0];
    assert!(msg["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["role"], "assistant");
    assert_eq!(msg["status"], "completed");
    assert_eq!(
        msg["content"],
        json!([{"type": "output_text", "annotations": [], "logprobs": [], "text": "pong"}])
    );
    let usage = &body["usage"];
    assert_eq!(usage["output_tokens"], 1);
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + 1
    );

    // Typed messages with every part kind; the echo rule.
    let typed = json!({"model": "m", "instructions": "be brief", "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev"}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look at"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"},
            {"type": "input_text", "text": " this"}]}]});
    let body: Value = emu.responses(&typed).await.json().await.unwrap();
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        "Echo: look at this"
    );
    assert_eq!(body["instructions"], "be brief");

    let counts = emu.get_json("/_emulator/counts").await;
    assert_eq!(counts["_responses_total"], 2);
    assert_eq!(counts["_chat_total"], 2);
}

#[tokio::test]
async fn stream_grammar_for_text() {
    let emu = start(Options::default()).await;
    let (events, last) = emu
        .stream(&user("Reply with exactly: Hello brave new world"))
        .await;
    assert_eq!(last["status"], "completed");
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello brave new world");
    assert_eq!(last["output"][0]["content"][0]["text"], text);
    assert_eq!(last["usage"]["output_tokens"], 4);
    let delta = events
        .iter()
        .find(|e| e["type"] == "response.output_text.delta")
        .unwrap();
    assert_eq!(delta["content_index"], 0);
    assert_eq!(delta["logprobs"], json!([]));
    assert!(delta["obfuscation"].is_string());
    let added = &events[3];
    assert_eq!(added["type"], "response.content_part.added");
    assert_eq!(
        added["part"],
        json!({"type": "output_text", "annotations": [], "logprobs": [], "text": ""})
    );
}

fn weather_tools() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "Weather by city",
            "strict": true,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                           "days": {"type": "integer"}},
                           "required": ["city", "days"], "additionalProperties": false}},
           {"type": "function", "name": "get_time", "parameters": {"type": "object"}}])
}

#[tokio::test]
async fn tool_call_round() {
    let emu = start(Options::default()).await;
    let ask = json!({"role": "user", "content": [{"type": "input_text", "text": "Weather? Use get_weather."}]});
    let body = json!({"model": "m", "input": [ask], "tools": weather_tools()});
    let first: Value = emu.responses(&body).await.json().await.unwrap();
    let call = &first["output"][0];
    assert_eq!(first["output"].as_array().unwrap().len(), 1);
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert!(call["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["status"], "completed");
    assert_eq!(call["name"], "get_weather");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "test", "days": 1}));
    assert_eq!(first["tools"][0]["strict"], true);
    assert!(first["tools"][1]["description"].is_null());

    // The same call streamed.
    let (events, last) = emu.stream(&body).await;
    assert_eq!(last["output"][0]["name"], "get_weather");
    let done = events
        .iter()
        .find(|e| e["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done["name"], "get_weather");
    let deltas = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .count();
    assert!(deltas >= 2);

    // Round two: replay the call and its output → text, streamed.
    let round = json!({"model": "m", "tools": weather_tools(), "input": [
        ask, call,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "3°C, rain"}]});
    let (_, last) = emu.stream(&round).await;
    assert_eq!(
        last["output"][0]["content"][0]["text"],
        "Tool result received: 3°C, rain"
    );

    // Both tools mentioned → two calls; parallel_tool_calls:false → one.
    let both = json!({"model": "m", "input": "get_time and get_weather", "tools": weather_tools()});
    let two: Value = emu.responses(&both).await.json().await.unwrap();
    let names: Vec<&str> = two["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_time", "get_weather"]);
    let mut single = both.clone();
    single["parallel_tool_calls"] = json!(false);
    let one: Value = emu.responses(&single).await.json().await.unwrap();
    assert_eq!(one["output"].as_array().unwrap().len(), 1);
    assert_eq!(one["parallel_tool_calls"], false);

    // A call replayed without its output is rejected like the real API.
    let dangling = json!({"model": "m", "input": [ask, call]});
    let (status, err) = json_of(emu.responses(&dangling).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("No tool output found for function call call_")
    );
}

#[tokio::test]
async fn custom_tool_call() {
    let emu = start(Options::default()).await;
    let tools = json!([{"type": "custom", "name": "apply_patch", "description": "Patch files",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}]);
    let body = json!({"model": "m", "input": "fix it", "tools": tools,
                      "tool_choice": {"type": "custom", "name": "apply_patch"}});
    let (events, last) = emu.stream(&body).await;
    let call = &last["output"][0];
    assert_eq!(call["type"], "custom_tool_call");
    assert!(call["id"].as_str().unwrap().starts_with("ctc_"));
    assert_eq!(call["name"], "apply_patch");
    assert_eq!(call["input"], "test");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "response.custom_tool_call_input.done" && e["input"] == "test")
    );
    assert_eq!(
        last["tool_choice"],
        json!({"type": "custom", "name": "apply_patch"})
    );

    let round = json!({"model": "m", "tools": tools, "input": [
        {"role": "user", "content": "use apply_patch"}, call,
        {"type": "custom_tool_call_output", "call_id": call["call_id"], "output": "Done!"}]});
    let body: Value = emu.responses(&round).await.json().await.unwrap();
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        "Tool result received: Done!"
    );
}

#[tokio::test]
async fn structured_output() {
    let emu = start(Options::default()).await;
    let schema = json!({"type": "object", "additionalProperties": false,
        "required": ["name", "age", "tags", "address", "kind"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {"type": "object", "additionalProperties": false, "required": ["city"],
                        "properties": {"city": {"type": "string"}}},
            "kind": {"type": "string", "enum": ["a", "b"]}}});
    let body = json!({"model": "m", "input": "Describe someone.",
        "text": {"format": {"type": "json_schema", "name": "person", "strict": true, "schema": schema}}});
    for streamed in [false, true] {
        let resp = if streamed {
            emu.stream(&body).await.1
        } else {
            emu.responses(&body).await.json().await.unwrap()
        };
        let text = resp["output"][0]["content"][0]["text"].as_str().unwrap();
        let v: Value = serde_json::from_str(text).unwrap();
        for key in ["name", "age", "tags", "address", "kind"] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(v["address"]["city"], "test");
        assert_eq!(v["kind"], "a");
        assert_eq!(resp["text"]["format"]["name"], "person");
        assert_eq!(resp["text"]["format"]["strict"], true);
    }
    // json_object: valid JSON.
    let body = json!({"model": "m", "input": "Answer in JSON.", "text": {"format": {"type": "json_object"}}});
    let resp: Value = emu.responses(&body).await.json().await.unwrap();
    let text = resp["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(serde_json::from_str::<Value>(text).unwrap().is_object());
    // A strict schema the real API would reject.
    let loose = json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema",
        "name": "o", "strict": true, "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}});
    let (status, err) = json_of(emu.responses(&loose).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(
        &err,
        Some("text.format.schema"),
        Some("invalid_json_schema"),
    );
}

#[tokio::test]
async fn reasoning_items_and_encrypted_content() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: ok");
    body["reasoning"] = json!({"effort": "medium", "summary": "auto"});
    let plain: Value = emu.responses(&body).await.json().await.unwrap();
    let rs = &plain["output"][0];
    assert!(rs["id"].as_str().unwrap().starts_with("rs_"));
    assert_eq!(rs["type"], "reasoning");
    assert_eq!(rs["summary"][0]["type"], "summary_text");
    assert!(
        rs["summary"][0]["text"]
            .as_str()
            .unwrap()
            .contains("medium")
    );
    assert!(rs.get("encrypted_content").is_none());
    assert_eq!(plain["output"][1]["content"][0]["text"], "ok");
    let reasoning_tokens = plain["usage"]["output_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap();
    assert!(reasoning_tokens > 0);
    assert_eq!(plain["usage"]["output_tokens"], reasoning_tokens + 1);
    assert_eq!(
        plain["reasoning"],
        json!({"effort": "medium", "summary": "auto"})
    );

    body["include"] = json!(["reasoning.encrypted_content"]);
    body["store"] = json!(false);
    let (events, last) = emu.stream(&body).await;
    let rs = last["output"][0].clone();
    let blob = rs["encrypted_content"].as_str().unwrap().to_owned();
    assert!(blob.starts_with("gAAAAA"));
    assert_eq!(events[2]["item"]["encrypted_content"], blob.as_str());

    // The blob is accepted back (Codex-style stateless replay)…
    let replay = |item: Value, key: &str| {
        emu.client
            .post(emu.url("/v1/responses"))
            .bearer_auth(key)
            .json(&json!({"model": "m", "store": false, "input": [
                {"role": "user", "content": "Reply with exactly: ok"}, item,
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "again"}]}))
            .send()
    };
    let ok = replay(rs.clone(), KEY).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // …but not under another key, nor when tampered with.
    let (status, err) = json_of(replay(rs.clone(), "sk-other-key-000000").await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "invalid_encrypted_content");
    let mut forged = rs.clone();
    forged["encrypted_content"] = json!(format!("{blob}00"));
    let (status, err) = json_of(replay(forged, KEY).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "invalid_encrypted_content");
    // Without the blob the id cannot be resolved when nothing is stored.
    let mut bare = rs;
    bare.as_object_mut().unwrap().remove("encrypted_content");
    let (status, _) = json_of(replay(bare, KEY).await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn max_output_tokens_gives_incomplete() {
    let emu = start(Options::default()).await;
    let words: Vec<String> = (1..=20).map(|i| format!("w{i}")).collect();
    let mut body = user(&format!("Reply with exactly: {}", words.join(" ")));
    body["max_output_tokens"] = json!(16);
    let resp: Value = emu.responses(&body).await.json().await.unwrap();
    assert_eq!(resp["status"], "incomplete");
    assert_eq!(
        resp["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert!(resp["completed_at"].is_null());
    assert_eq!(resp["output"][0]["status"], "incomplete");
    assert_eq!(
        resp["output"][0]["content"][0]["text"],
        words[..16].join(" ")
    );
    assert_eq!(resp["usage"]["output_tokens"], 16);
    assert_eq!(resp["max_output_tokens"], 16);

    let (events, last) = emu.stream(&body).await;
    assert_eq!(events.last().unwrap()["type"], "response.incomplete");
    assert_eq!(last["incomplete_details"]["reason"], "max_output_tokens");
}

#[tokio::test]
async fn fault_429_with_retry_after() {
    let emu = start(Options::default()).await;
    let body = user("hi [emulate: status=429 retry_after=3 tag=rl]");
    let resp = emu.responses(&body).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "3");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");
    assert_eq!(emu.get_json("/_emulator/counts/rl").await["count"], 1);
    let last = emu.get_json("/_emulator/last/rl").await;
    assert_eq!(last["body"], body);
    // The same through the header, on a stream request.
    let mut body = user("hi");
    body["stream"] = json!(true);
    let resp = emu
        .bearer_post("/v1/responses")
        .header(FAULT, "status=503")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn stream_cut_mid_way() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: one two three four five");
    body["stream"] = json!(true);
    let resp = emu
        .bearer_post("/v1/responses")
        .header(FAULT, "cut_after=4,tag=cut")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut received = Vec::new();
    let mut errored = false;
    let mut stream = resp.bytes_stream();
    while let Some(item) = stream.next().await {
        if let Ok(bytes) = item {
            received.extend_from_slice(&bytes);
        } else {
            errored = true;
            break;
        }
    }
    assert!(errored, "the body should end with a transport error");
    let events = sse(&String::from_utf8(received).unwrap());
    assert_eq!(events.len(), 4);
    assert_eq!(events[3]["type"], "response.content_part.added");
    assert!(events.iter().all(|e| {
        !e["type"]
            .as_str()
            .unwrap()
            .starts_with("response.completed")
    }));
}

#[tokio::test]
async fn stream_error_event_then_failed() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: one two three");
    body["stream"] = json!(true);
    let resp = emu
        .bearer_post("/v1/responses")
        .header(FAULT, "error_after=5")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let events = sse(&resp.text().await.unwrap());
    assert_eq!(events.len(), 7);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i);
    }
    let err = &events[5];
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["code"], "server_error");
    assert_eq!(err["error"]["type"], "server_error");
    let failed = &events[6];
    assert_eq!(failed["type"], "response.failed");
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(failed["response"]["error"]["code"], "server_error");
    assert!(failed["response"]["usage"].is_null());

    // Past the end, the failure replaces the terminal event.
    let resp = emu
        .bearer_post("/v1/responses")
        .header(FAULT, "error_after=999")
        .json(&body)
        .send()
        .await
        .unwrap();
    let events = sse(&resp.text().await.unwrap());
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types[types.len() - 2..], ["error", "response.failed"]);
    assert!(!types.contains(&"response.completed"));
    assert_eq!(
        events.last().unwrap()["response"]["output"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn side_routes() {
    let emu = start(Options::default()).await;
    let resp = emu
        .bearer_post("/v1/responses/input_tokens")
        .json(&json!({"model": "m", "input": "one two three", "instructions": "abcd"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"object": "response.input_tokens", "input_tokens": 5})
    );
    let full: Value = emu
        .responses(&json!({"model": "m", "input": "one two three", "instructions": "abcd"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(full["usage"]["input_tokens"], 5);

    let ws = emu
        .bearer_get("/v1/responses")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(ws.status(), StatusCode::UPGRADE_REQUIRED);
    let plain = emu.bearer_get("/v1/responses").send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::NOT_FOUND);

    for (method, path) in [
        ("GET", "/v1/responses/resp_1"),
        ("DELETE", "/v1/responses/resp_1"),
        ("POST", "/v1/responses/resp_1/cancel"),
        ("GET", "/v1/responses/resp_1/input_items"),
    ] {
        let resp = emu
            .client
            .request(method.parse().unwrap(), emu.url(path))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(resp).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(
            body["error"]["message"],
            "Response with id 'resp_1' not found."
        );
    }
    let compact = emu
        .bearer_post("/v1/responses/compact")
        .json(&json!({"model": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(compact.status(), StatusCode::NOT_FOUND);
}
