//! End-to-end checks of the Anthropic Messages emulation over loopback HTTP:
//! wire shapes, strict stream event order, validation, auth, prompt-cache
//! accounting and fault injection.

use anyint_emulator::Options;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Emu, start};

const KEY: &str = "sk-ant-test-123456";
const VERSION: &str = "2023-06-01";

impl Emu {
    /// A POST with `x-api-key` and `anthropic-version` set.
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .header("x-api-key", KEY)
            .header("anthropic-version", VERSION)
    }

    async fn messages(&self, body: &Value) -> reqwest::Response {
        self.post("/v1/messages").json(body).send().await.unwrap()
    }
}

fn user(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 256,
           "messages": [{"role": "user", "content": text}]})
}

fn weather_tools() -> Value {
    json!([{"name": "get_weather", "description": "Current weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                             "required": ["city"]}}])
}

/// Parses a named-event SSE body into `(event, data)` pairs, asserting that
/// every event has an `event:` line whose name equals `data.type`.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (head, data) = e.split_once('\n').expect("event and data lines");
            let name = head.strip_prefix("event: ").expect("event: line");
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name, "{e}");
            (name.to_owned(), data)
        })
        .collect()
}

fn names(ev: &[(String, Value)]) -> Vec<&str> {
    ev.iter().map(|(n, _)| n.as_str()).collect()
}

async fn error_body(resp: reqwest::Response) -> Value {
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert!(body["request_id"].is_string(), "{body}");
    body
}

#[tokio::test]
async fn non_stream_message_shape() {
    let emu = start(Options::default()).await;
    let resp = emu.messages(&user("Reply with exactly: pong")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let rid = resp.headers()["request-id"].to_str().unwrap().to_owned();
    assert_eq!(resp.headers()["x-request-id"].to_str().unwrap(), rid);
    let body: Value = resp.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["content"], json!([{"type": "text", "text": "pong"}]));
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["stop_sequence"].is_null());
    let usage = &body["usage"];
    assert_eq!(usage["output_tokens"], 1);
    assert!(usage["input_tokens"].as_u64().unwrap() >= 1);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 0);
}

#[tokio::test]
async fn echo_system_blocks_and_bearer_auth() {
    let emu = start(Options {
        api_key: Some(KEY.to_owned()),
    })
    .await;
    let mut body = user("hello there");
    body["system"] = json!([{"type": "text", "text": "Be brief."}]);
    let resp = emu
        .client
        .post(format!("{}/v1/messages", emu.base))
        .bearer_auth(KEY)
        .header("anthropic-version", "2026-10-21")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "Echo: hello there");
}

#[tokio::test]
async fn auth_errors() {
    let emu = start(Options {
        api_key: Some(KEY.to_owned()),
    })
    .await;
    let url = format!("{}/v1/messages", emu.base);
    let missing = emu
        .client
        .post(&url)
        .header("anthropic-version", VERSION)
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let body = error_body(missing).await;
    assert_eq!(body["error"]["type"], "authentication_error");
    let wrong = emu
        .client
        .post(&url)
        .header("x-api-key", "sk-ant-wrong")
        .header("anthropic-version", VERSION)
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        error_body(wrong).await["error"]["type"],
        "authentication_error"
    );
}

#[tokio::test]
async fn missing_version_and_max_tokens_are_400() {
    let emu = start(Options::default()).await;
    let resp = emu
        .client
        .post(format!("{}/v1/messages", emu.base))
        .header("x-api-key", KEY)
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(
        body["error"]["message"],
        "anthropic-version: header is required"
    );

    let mut no_max = user("hi");
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let resp = emu.messages(&no_max).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = error_body(resp).await;
    assert_eq!(body["error"]["message"], "max_tokens: Field required");

    // OpenAI-only fields and removed sampling params are rejected too.
    let mut extra = user("hi");
    extra["n"] = json!(1);
    assert_eq!(emu.messages(&extra).await.status(), StatusCode::BAD_REQUEST);
    let mut temp = user("hi");
    temp["temperature"] = json!(0.2);
    assert_eq!(emu.messages(&temp).await.status(), StatusCode::OK);
    let resp = emu
        .client
        .post(format!("{}/v1/messages", emu.base))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2026-10-21")
        .json(&temp)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn stream_text_event_sequence() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: Hello big world");
    body["stream"] = json!(true);
    let resp = emu.messages(&body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let ev = events(&resp.text().await.unwrap());
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let start = &ev[0].1["message"];
    assert_eq!(start["content"], json!([]));
    assert!(start["stop_reason"].is_null());
    assert!(start["usage"]["input_tokens"].as_u64().unwrap() >= 1);
    assert_eq!(
        ev[1].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = ev[3..6]
        .iter()
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, "Hello big world");
    assert_eq!(ev[6].1["index"], 0);
    assert_eq!(ev[7].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(ev[7].1["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn stream_tool_use_input_json_reassembles() {
    let emu = start(Options::default()).await;
    let mut body = user("What is the weather in Oslo?");
    body["tools"] = weather_tools();
    body["tool_choice"] = json!({"type": "any"});
    body["stream"] = json!(true);
    let ev = events(&emu.messages(&body).await.text().await.unwrap());
    let n = names(&ev);
    assert_eq!(n[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(
        n[n.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let block = &ev[1].1["content_block"];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({}));
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    let parts: Vec<&str> = ev[3..ev.len() - 3]
        .iter()
        .map(|(name, d)| {
            assert_eq!(name, "content_block_delta");
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert!(parts.len() >= 2, "{parts:?}");
    let input: Value = serde_json::from_str(&parts.concat()).unwrap();
    assert_eq!(input, json!({"city": "test"}));
    assert_eq!(ev[ev.len() - 2].1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn stream_thinking_then_text() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: done");
    body["max_tokens"] = json!(4096);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    body["stream"] = json!(true);
    let ev = events(&emu.messages(&body).await.text().await.unwrap());
    assert_eq!(ev[1].1["content_block"]["type"], "thinking");
    assert_eq!(ev[1].1["content_block"]["signature"], "");
    let stop0 = ev
        .iter()
        .position(|(n, d)| n == "content_block_stop" && d["index"] == 0)
        .unwrap();
    let deltas: Vec<&Value> = ev[2..stop0]
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| &d["delta"])
        .collect();
    let (last, thinking) = deltas.split_last().unwrap();
    assert_eq!(last["type"], "signature_delta");
    assert!(!last["signature"].as_str().unwrap().is_empty());
    assert!(!thinking.is_empty());
    assert!(thinking.iter().all(|d| d["type"] == "thinking_delta"));
    let start1 = &ev[stop0 + 1].1;
    assert_eq!(start1["type"], "content_block_start");
    assert_eq!(start1["index"], 1);
    assert_eq!(start1["content_block"]["type"], "text");

    body["stream"] = json!(false);
    let full: Value = emu.messages(&body).await.json().await.unwrap();
    assert_eq!(full["content"][0]["type"], "thinking");
    assert!(full["content"][0]["signature"].as_str().unwrap().len() > 16);
    assert_eq!(full["content"][1], json!({"type": "text", "text": "done"}));
}

#[tokio::test]
async fn tool_use_then_tool_result() {
    let emu = start(Options::default()).await;
    let mut body = user("Call get_weather for Oslo");
    body["tools"] = weather_tools();
    let first: Value = emu.messages(&body).await.json().await.unwrap();
    assert_eq!(first["stop_reason"], "tool_use");
    let call = &first["content"][0];
    assert_eq!(call["type"], "tool_use");
    assert_eq!(call["input"], json!({"city": "test"}));

    body["messages"] = json!([
        {"role": "user", "content": "Call get_weather for Oslo"},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                      "content": [{"type": "text", "text": "3C, rain"}]}]}
    ]);
    let second: Value = emu.messages(&body).await.json().await.unwrap();
    assert_eq!(second["stop_reason"], "end_turn");
    assert_eq!(
        second["content"][0]["text"],
        "Tool result received: 3C, rain"
    );

    // A tool_use left unanswered is the API's 400.
    body["messages"][2]["content"] = json!("forgot the result");
    let resp = emu.messages(&body).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err = error_body(resp).await;
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tool_use` ids were found without `tool_result`")
    );
}

#[tokio::test]
async fn stop_sequences_and_max_tokens() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: one two STOP three");
    body["stop_sequences"] = json!(["STOP"]);
    let v: Value = emu.messages(&body).await.json().await.unwrap();
    assert_eq!(v["stop_reason"], "stop_sequence");
    assert_eq!(v["stop_sequence"], "STOP");
    assert_eq!(v["content"][0]["text"], "one two ");

    let mut body = user("Reply with exactly: one two three");
    body["max_tokens"] = json!(2);
    let v: Value = emu.messages(&body).await.json().await.unwrap();
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["content"][0]["text"], "one two");
    assert_eq!(v["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn cache_control_creates_then_reads() {
    let emu = start(Options::default()).await;
    let mut body = user("first question");
    body["system"] = json!([{"type": "text", "text": "You are a long and detailed system prompt.",
                             "cache_control": {"type": "ephemeral"}}]);
    let first: Value = emu.messages(&body).await.json().await.unwrap();
    let u1 = &first["usage"];
    assert!(
        u1["cache_creation_input_tokens"].as_u64().unwrap() > 0,
        "{u1}"
    );
    assert_eq!(u1["cache_read_input_tokens"], 0);

    body["messages"][0]["content"] = json!("a different follow-up question");
    let second: Value = emu.messages(&body).await.json().await.unwrap();
    let u2 = &second["usage"];
    assert_eq!(u2["cache_creation_input_tokens"], 0);
    assert_eq!(
        u2["cache_read_input_tokens"],
        u1["cache_creation_input_tokens"]
    );

    emu.client
        .post(format!("{}/_emulator/reset", emu.base))
        .send()
        .await
        .unwrap();
    let third: Value = emu.messages(&body).await.json().await.unwrap();
    assert!(
        third["usage"]["cache_creation_input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn count_tokens_matches_usage() {
    let emu = start(Options::default()).await;
    let body = user("count these few words please");
    let usage: Value = emu.messages(&body).await.json().await.unwrap();
    let mut count_body = body.clone();
    count_body.as_object_mut().unwrap().remove("max_tokens");
    let resp = emu
        .post("/v1/messages/count_tokens")
        .json(&count_body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let count: Value = resp.json().await.unwrap();
    assert_eq!(
        count,
        json!({"input_tokens": usage["usage"]["input_tokens"]})
    );
}

#[tokio::test]
async fn fault_statuses_render_anthropic_errors() {
    let emu = start(Options::default()).await;
    let resp = emu
        .post("/v1/messages")
        .header("x-emulator-fault", "status=429 retry_after=3")
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "3");
    assert_eq!(error_body(resp).await["error"]["type"], "rate_limit_error");

    let mut body = user("hi");
    body["model"] = json!("claude-sonnet-4-5+status=529");
    let resp = emu.messages(&body).await;
    assert_eq!(resp.status().as_u16(), 529);
    assert_eq!(error_body(resp).await["error"]["type"], "overloaded_error");

    let resp = emu.messages(&user("hi [emulate: status=500]")).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_body(resp).await["error"]["type"], "api_error");

    for (status, kind) in [
        (400, "invalid_request_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
    ] {
        let resp = emu
            .post("/v1/messages")
            .header("x-emulator-fault", format!("status={status}"))
            .json(&user("hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status);
        assert_eq!(error_body(resp).await["error"]["type"], kind);
    }

    let resp = emu
        .post("/v1/messages")
        .header("x-emulator-fault", "stauts=500")
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        error_body(resp).await["error"]["type"],
        "invalid_request_error"
    );
}

#[tokio::test]
async fn cut_after_aborts_the_stream() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: one two three four");
    body["stream"] = json!(true);
    let resp = emu
        .post("/v1/messages")
        .header("x-emulator-fault", "cut_after=2")
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
    let ev = events(&String::from_utf8(received).unwrap());
    assert_eq!(names(&ev), ["message_start", "content_block_start"]);
}

#[tokio::test]
async fn error_after_sends_an_error_event() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: one two three four");
    body["stream"] = json!(true);
    let resp = emu
        .post("/v1/messages")
        .header("x-emulator-fault", "error_after=3")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ev = events(&resp.text().await.unwrap());
    assert_eq!(
        names(&ev),
        ["message_start", "content_block_start", "ping", "error"]
    );
    assert_eq!(ev[3].1["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn tagged_requests_are_counted_and_recorded() {
    let emu = start(Options::default()).await;
    let send = || {
        emu.post("/v1/messages")
            .header("x-emulator-fault", "status=529 times=1 tag=anth")
            .json(&user("hi"))
            .send()
    };
    assert_eq!(send().await.unwrap().status().as_u16(), 529);
    assert_eq!(send().await.unwrap().status(), StatusCode::OK);
    let count: Value = emu
        .client
        .get(format!("{}/_emulator/counts/anth", emu.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 2);
    let last: Value = emu
        .client
        .get(format!("{}/_emulator/last/anth", emu.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(last["headers"]["anthropic-version"], VERSION);
    assert_eq!(last["body"]["max_tokens"], 256);
    let counts: Value = emu
        .client
        .get(format!("{}/_emulator/counts", emu.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["_anthropic_total"], 2);
    assert_eq!(counts["_chat_total"], 2);
}

#[tokio::test]
async fn models_list_depends_on_version_header() {
    let emu = start(Options::default()).await;
    let anthropic: Value = emu
        .client
        .get(format!("{}/v1/models?limit=2", emu.base))
        .header("x-api-key", KEY)
        .header("anthropic-version", VERSION)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anthropic["data"].as_array().unwrap().len(), 2);
    assert_eq!(anthropic["data"][0]["type"], "model");
    assert_eq!(anthropic["has_more"], true);
    assert_eq!(anthropic["first_id"], anthropic["data"][0]["id"]);
    let after = anthropic["last_id"].as_str().unwrap();
    let next: Value = emu
        .client
        .get(format!("{}/v1/models?after_id={after}", emu.base))
        .header("x-api-key", KEY)
        .header("anthropic-version", VERSION)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(next["first_id"], anthropic["first_id"]);
    assert_eq!(next["has_more"], false);

    let openai: Value = emu
        .client
        .get(format!("{}/v1/models", emu.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openai["object"], "list");

    let one = emu
        .client
        .get(format!("{}/v1/models/claude-sonnet-4-5", emu.base))
        .header("x-api-key", KEY)
        .header("anthropic-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    let one: Value = one.json().await.unwrap();
    assert_eq!(one["id"], "claude-sonnet-4-5-20250929");
}

fn forecast_format() -> Value {
    json!({"type": "json_schema", "schema": {
        "type": "object", "additionalProperties": false,
        "properties": {
            "city": {"type": "string"},
            "high_c": {"type": "number"},
            "wind": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "alerts": {"type": "array", "items": {"type": "string"}},
            "note": {"type": "string"}},
        "required": ["city", "high_c", "wind", "alerts"]}})
}

#[tokio::test]
async fn output_config_format_answers_json_filling_the_schema() {
    let emu = start(Options::default()).await;
    let mut body = user("Forecast for Bergen, please.");
    body["output_config"] = json!({"effort": "low", "format": forecast_format()});
    let resp = emu.messages(&body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["stop_reason"], "end_turn");
    let text = out["content"][0]["text"].as_str().unwrap();
    let answer: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        answer,
        json!({"city": "test", "high_c": 1, "wind": 1, "alerts": []})
    );
    // The deprecated top-level form answers the same, and streams the JSON as text deltas.
    let mut body = user("Forecast for Bergen, please.");
    body["output_format"] = forecast_format();
    body["stream"] = json!(true);
    let resp = emu.messages(&body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ev = events(&resp.text().await.unwrap());
    let streamed: String = ev
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(streamed, text);
    // "Reply with exactly" still wins, as for OpenAI formats.
    let mut body = user("Reply with exactly: {\"city\":\"Oslo\"}");
    body["output_config"] = json!({"format": forecast_format()});
    let out: Value = emu.messages(&body).await.json().await.unwrap();
    assert_eq!(out["content"][0]["text"], "{\"city\":\"Oslo\"}");
}

#[tokio::test]
async fn output_config_format_is_validated_like_the_api() {
    let emu = start(Options::default()).await;
    let with = |config: Value| {
        let mut body = user("hi");
        body["output_config"] = config;
        body
    };
    let bad = [
        (
            with(
                json!({"format": {"type": "json_schema", "schema": {"type": "object",
                "additionalProperties": false,
                "properties": {"n": {"type": "integer", "minimum": 1}}}}}),
            ),
            "'minimum' is not supported (at properties.n)",
        ),
        (
            with(
                json!({"format": {"type": "json_schema", "schema": {"type": "object",
                "properties": {"a": {"type": "string"}}}}}),
            ),
            "'additionalProperties' must be set to false",
        ),
        (
            with(
                json!({"format": {"type": "json_schema", "schema": {"type": "object",
                "additionalProperties": false, "properties": {"kids": {"type": "array",
                "items": {"$ref": "#"}}}}}}),
            ),
            "recursive schemas are not supported",
        ),
        (
            with(json!({"format": {"type": "json_object"}})),
            "output_config.format.type: Input should be 'json_schema'",
        ),
    ];
    for (body, message) in bad {
        let resp = emu.messages(&body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let err = error_body(resp).await;
        assert_eq!(err["error"]["type"], "invalid_request_error");
        let got = err["error"]["message"].as_str().unwrap();
        assert!(got.contains(message), "{got}");
    }
    let mut both = with(json!({"format": forecast_format()}));
    both["output_format"] = forecast_format();
    assert_eq!(emu.messages(&both).await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_forced_json_tool_answers_with_its_input() {
    // The gateway's fallback for JSON mode: one forced tool whose input is the answer.
    let emu = start(Options::default()).await;
    let mut body = user("Forecast as JSON");
    body["tools"] = json!([{"name": "anyint_json_response", "description": "the answer",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]}}]);
    body["tool_choice"] = json!({"type": "tool", "name": "anyint_json_response",
        "disable_parallel_tool_use": true});
    let out: Value = emu.messages(&body).await.json().await.unwrap();
    assert_eq!(out["stop_reason"], "tool_use");
    assert_eq!(out["content"][0]["name"], "anyint_json_response");
    assert_eq!(out["content"][0]["input"], json!({"city": "test"}));
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    body["max_tokens"] = json!(2048);
    let resp = emu.messages(&body).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err = error_body(resp).await;
    assert_eq!(
        err["error"]["message"],
        "Thinking may not be enabled when tool_choice forces tool use."
    );
}

fn search_tool() -> Value {
    json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 3,
           "allowed_domains": ["docs.rs"], "user_location": {"type": "approximate", "city": "Oslo"}})
}

#[tokio::test]
async fn web_search_runs_when_asked_and_cites_its_results() {
    let emu = start(Options::default()).await;
    let mut body = user("Search the web for tokio\nReply with exactly: Tokio 1.47 is out.");
    body["tools"] = json!([search_tool()]);
    let resp = emu.messages(&body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    let c = &v["content"];
    assert_eq!(c[0]["type"], "server_tool_use");
    assert!(c[0]["id"].as_str().unwrap().starts_with("srvtoolu_01"));
    assert_eq!(c[0]["input"], json!({"query": "Search the web for tokio"}));
    assert_eq!(c[1]["type"], "web_search_tool_result");
    assert_eq!(c[1]["tool_use_id"], c[0]["id"]);
    let results = c[1]["content"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert!(
        results[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://docs.rs/results/")
    );
    assert!(results[0]["encrypted_content"].is_string());
    assert_eq!(
        c[2],
        json!({"type": "text", "text": "Based on a web search: "})
    );
    assert_eq!(c[3]["text"], "Tokio 1.47 is out.");
    let cites = c[3]["citations"].as_array().unwrap();
    assert_eq!(cites.len(), 2);
    assert_eq!(cites[0]["type"], "web_search_result_location");
    assert_eq!(cites[1]["url"], results[1]["url"]);
    assert!(cites[0]["encrypted_index"].is_string() && cites[0]["cited_text"].is_string());
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(
        v["usage"]["server_tool_use"],
        json!({"web_search_requests": 1, "web_fetch_requests": 0})
    );

    // Not mentioned: no search, no server_tool_use usage.
    let mut plain = user("Reply with exactly: hi");
    plain["tools"] = json!([search_tool()]);
    let v: Value = emu.messages(&plain).await.json().await.unwrap();
    assert_eq!(v["content"], json!([{"type": "text", "text": "hi"}]));
    assert!(v["usage"].get("server_tool_use").is_none());
    // Without the tool, "search" is just text.
    let v: Value = emu
        .messages(&user("search for x"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["content"][0]["text"], "Echo: search for x");
}

#[tokio::test]
async fn web_search_streams_its_blocks_in_order() {
    let emu = start(Options::default()).await;
    let mut body = user("search the docs\nReply with exactly: Found two pages.");
    body["tools"] = json!([search_tool()]);
    body["stream"] = json!(true);
    let text = emu.messages(&body).await.text().await.unwrap();
    let ev = events(&text);
    let starts: Vec<&str> = ev
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| d["content_block"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        ["server_tool_use", "web_search_tool_result", "text", "text"]
    );
    let first = &ev
        .iter()
        .find(|(n, _)| n == "content_block_start")
        .unwrap()
        .1;
    assert_eq!(first["content_block"]["input"], json!({}));
    let input: String = ev
        .iter()
        .filter(|(_, d)| d["index"] == 0 && d["delta"]["type"] == "input_json_delta")
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(input, r#"{"query":"search the docs"}"#);
    // The results come whole, with no deltas.
    assert!(
        !ev.iter()
            .any(|(n, d)| n == "content_block_delta" && d["index"] == 1)
    );
    let cited: Vec<&str> = ev
        .iter()
        .filter(|(_, d)| d["index"] == 3 && d["type"] == "content_block_delta")
        .map(|(_, d)| d["delta"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(cited[..2], ["citations_delta", "citations_delta"]);
    assert!(cited[2..].iter().all(|t| *t == "text_delta"));
    let cited_start = ev
        .iter()
        .find(|(n, d)| n == "content_block_start" && d["index"] == 3)
        .unwrap();
    assert_eq!(cited_start.1["content_block"]["citations"], json!([]));
    let delta = &ev.iter().find(|(n, _)| n == "message_delta").unwrap().1;
    assert_eq!(delta["usage"]["server_tool_use"]["web_search_requests"], 1);
}

#[tokio::test]
async fn web_search_tools_are_validated_like_the_api() {
    let emu = start(Options::default()).await;
    let cases = [
        json!({"type": "web_search_20250305", "name": "search"}),
        json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 0}),
        json!({"type": "web_search_20250305", "name": "web_search",
               "allowed_domains": ["a.com"], "blocked_domains": ["b.com"]}),
        json!({"type": "web_search_20250305", "name": "web_search", "user_location": {"city": "Oslo"}}),
        json!({"type": "web_search_20250305", "name": "web_search", "bogus": 1}),
    ];
    for tool in cases {
        let mut body = user("search");
        body["tools"] = json!([tool]);
        let resp = emu.messages(&body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{tool}");
        let err = error_body(resp).await;
        assert_eq!(err["error"]["type"], "invalid_request_error", "{tool}");
    }
    // A function may not take the search tool's name.
    let mut body = user("search");
    body["tools"] =
        json!([search_tool(), {"name": "web_search", "input_schema": {"type": "object"}}]);
    let resp = emu.messages(&body).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err = error_body(resp).await;
    assert!(err["error"]["message"].as_str().unwrap().contains("unique"));
}

#[tokio::test]
async fn web_search_with_output_config_format_answers_the_json_alone() {
    let emu = start(Options::default()).await;
    let mut body = user("Search for the forecast in Bergen.");
    body["tools"] = json!([search_tool()]);
    body["output_config"] = json!({"format": forecast_format()});
    let resp = emu.messages(&body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    let c = v["content"].as_array().unwrap();
    // The search still runs; the answer is one uncited text block that parses.
    let types: Vec<&str> = c.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["server_tool_use", "web_search_tool_result", "text"]);
    assert!(c[2].get("citations").is_none(), "{}", c[2]);
    let answer: Value = serde_json::from_str(c[2]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        answer,
        json!({"city": "test", "high_c": 1, "wind": 1, "alerts": []})
    );
    assert_eq!(v["usage"]["server_tool_use"]["web_search_requests"], 1);
}
