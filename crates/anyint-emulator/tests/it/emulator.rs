//! End-to-end checks of the emulator over real loopback HTTP with reqwest:
//! wire shapes, streaming order, auth, validation and fault injection.

use anyint_emulator::Options;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Emu, KEY, start};

impl Emu {
    async fn chat(&self, body: &Value) -> reqwest::Response {
        self.bearer_post("/v1/chat/completions")
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

fn user(content: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]})
}

/// Splits an SSE body into its `data:` payloads.
fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap().to_owned())
        .collect()
}

fn json_chunks(data: &[String]) -> Vec<Value> {
    data.iter()
        .filter(|d| d.as_str() != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn assert_envelope(body: &Value) {
    let err = body["error"].as_object().expect("error object");
    for key in ["message", "type", "param", "code"] {
        assert!(err.contains_key(key), "missing {key} in {body}");
    }
}

#[tokio::test]
async fn models_list_and_retrieve() {
    let emu = start(Options::default()).await;
    let resp = emu.bearer_get("/v1/models").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().unwrap();
    assert!(data.iter().any(|m| m["id"] == "gpt-4o-mini"));
    for m in data {
        assert_eq!(m["object"], "model");
        assert!(m["created"].is_u64());
        assert!(m["owned_by"].is_string());
    }

    let one: Value = emu
        .bearer_get("/v1/models/gpt-4o")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], "gpt-4o");

    let missing = emu.bearer_get("/v1/models/nope").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert_envelope(&body);
    assert_eq!(body["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn chat_reply_exactly_with_usage() {
    let emu = start(Options::default()).await;
    let resp = emu.chat(&user("Reply with exactly: pong")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key("x-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-mini");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "pong");
    assert!(choice["message"]["refusal"].is_null());
    assert!(choice["logprobs"].is_null());
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &body["usage"];
    assert_eq!(usage["completion_tokens"], 1);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + 1
    );
}

#[tokio::test]
async fn chat_stream_without_usage() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: Hello world");
    body["stream"] = json!(true);
    let resp = emu.chat(&body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let data = sse_data(&resp.text().await.unwrap());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks = json_chunks(&data);
    assert_eq!(chunks.len(), 4);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello world");
    assert_eq!(chunks[3]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
    let id = &chunks[0]["id"];
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(&c["id"], id);
        assert!(c.get("usage").is_none(), "unexpected usage key in {c}");
    }
}

#[tokio::test]
async fn chat_stream_with_usage() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: Hello world");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let data = sse_data(&emu.chat(&body).await.text().await.unwrap());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks = json_chunks(&data);
    assert_eq!(chunks.len(), 5);
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 2);
    for c in rest {
        assert!(c["usage"].is_null() && c.get("usage").is_some());
    }
    assert_eq!(rest.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

fn tool_body(stream: bool) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "stream": stream,
        "messages": [{"role": "user", "content": "What's the weather? Use get_weather."}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"]}}}]
    })
}

#[tokio::test]
async fn chat_tool_call_non_stream() {
    let emu = start(Options::default()).await;
    let body: Value = emu.chat(&tool_body(false)).await.json().await.unwrap();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "test", "days": 1}));
}

#[tokio::test]
async fn chat_tool_call_stream() {
    let emu = start(Options::default()).await;
    let data = sse_data(&emu.chat(&tool_body(true)).await.text().await.unwrap());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks = json_chunks(&data);
    let head = &chunks[1]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(head["index"], 0);
    assert_eq!(head["type"], "function");
    assert_eq!(head["function"]["name"], "get_weather");
    assert_eq!(head["function"]["arguments"], "");
    let pieces: Vec<&str> = chunks[2..]
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert!(pieces.len() >= 2);
    let args: Value = serde_json::from_str(&pieces.concat()).unwrap();
    assert_eq!(args, json!({"city": "test", "days": 1}));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn auth_required_when_key_set() {
    let emu = start(Options {
        api_key: Some(KEY.to_owned()),
    })
    .await;
    let url = format!("{}/v1/chat/completions", emu.base);

    let none = emu
        .client
        .post(&url)
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_envelope(&none.json().await.unwrap());

    let wrong = emu
        .client
        .post(&url)
        .bearer_auth("sk-wrong-key-000000")
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_envelope(&body);
    assert_eq!(body["error"]["code"], "invalid_api_key");

    assert_eq!(emu.chat(&user("hi")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn validation_errors_name_the_param() {
    let emu = start(Options::default()).await;
    let cases = [
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            "model",
        ),
        (json!({"model": "gpt-4o-mini"}), "messages"),
        (json!({"model": "gpt-4o-mini", "messages": []}), "messages"),
        (
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": true}}),
            "stream_options",
        ),
    ];
    for (body, param) in cases {
        let resp = emu.chat(&body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_envelope(&err);
        assert_eq!(err["error"]["type"], "invalid_request_error");
        assert_eq!(err["error"]["param"], param);
    }
    let resp = emu
        .bearer_post("/v1/chat/completions")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_envelope(&resp.json().await.unwrap());
}

#[tokio::test]
async fn fault_status_429_with_retry_after() {
    let emu = start(Options::default()).await;
    let resp = emu
        .bearer_post("/v1/chat/completions")
        .header("x-emulator-fault", "status=429,retry_after=2")
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "2");
    let body: Value = resp.json().await.unwrap();
    assert_envelope(&body);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");

    // Same fault from the model suffix and from a message directive.
    let mut body = user("hi");
    body["model"] = json!("gpt-4o-mini+status=429 quota=1");
    let resp = emu.chat(&body).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "insufficient_quota");

    let resp = emu
        .chat(&user("hi [emulate: status=503 retry_after_ms=1500]"))
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after-ms"], "1500");

    // A suffix is stripped from the echoed model.
    let mut body = user("hi");
    body["model"] = json!("gpt-4o+tag=strip");
    let ok: Value = emu.chat(&body).await.json().await.unwrap();
    assert_eq!(ok["model"], "gpt-4o");

    // Typos fail loudly.
    let resp = emu
        .bearer_post("/v1/chat/completions")
        .header("x-emulator-fault", "stauts=500")
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"]["message"].as_str().unwrap().contains("stauts"));
}

#[tokio::test]
async fn fault_cut_after_aborts_stream() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: one two three four five");
    body["stream"] = json!(true);
    let resp = emu
        .bearer_post("/v1/chat/completions")
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
    let text = String::from_utf8(received).unwrap();
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(errored, "the body should end with a transport error");
    let chunks = json_chunks(&sse_data(&text));
    assert_eq!(chunks.len(), 2, "{text}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
}

#[tokio::test]
async fn fault_times_then_success_and_counts() {
    let emu = start(Options::default()).await;
    let send = || {
        emu.bearer_post("/v1/chat/completions")
            .header("x-emulator-fault", "status=503 times=2 tag=x")
            .json(&user("Reply with exactly: ok"))
            .send()
    };
    assert_eq!(
        send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let ok = send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "ok");

    let count: Value = emu
        .bearer_get("/_emulator/counts/x")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count, json!({"tag": "x", "count": 3}));
    let all: Value = emu
        .bearer_get("/_emulator/counts")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["x"], 3);
    assert_eq!(all["_chat_total"], 3);

    let last: Value = emu
        .bearer_get("/_emulator/last/x")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        last["headers"]["x-emulator-fault"],
        "status=503 times=2 tag=x"
    );
    assert_eq!(last["body"]["model"], "gpt-4o-mini");

    let reset = emu.bearer_post("/_emulator/reset").send().await.unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    let count: Value = emu
        .bearer_get("/_emulator/counts/x")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 0);
}

#[tokio::test]
async fn embeddings_floats_and_base64() {
    let emu = start(Options::default()).await;
    let resp = emu
        .bearer_post("/v1/embeddings")
        .json(&json!({"model": "text-embedding-3-small", "input": ["a", "b"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(body["data"][0]["object"], "embedding");
    assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() >= 2);

    let b64: Value = emu
        .bearer_post("/v1/embeddings")
        .json(&json!({"model": "text-embedding-3-small", "input": "a", "encoding_format": "base64", "dimensions": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b64["data"][0]["embedding"].as_str().unwrap().len(), 16);

    let empty = emu
        .bearer_post("/v1/embeddings")
        .json(&json!({"model": "text-embedding-3-small", "input": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert_envelope(&empty.json().await.unwrap());
}

#[tokio::test]
async fn fault_error_after_sends_an_error_chunk() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: one two three");
    body["stream"] = json!(true);
    let resp = emu
        .bearer_post("/v1/chat/completions")
        .header("x-emulator-fault", "error_after=2")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.len(), 3, "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    let err: Value = serde_json::from_str(&data[2]).unwrap();
    assert_envelope(&err);
    assert_eq!(err["error"]["type"], "server_error");
}

#[tokio::test]
async fn chat_response_format_shapes_the_answer_as_json() {
    let emu = start(Options::default()).await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "degrees": {"type": "integer"}},
        "required": ["city", "degrees"], "additionalProperties": false});
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Weather in Oslo?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "weather", "strict": true, "schema": schema}}});
    let v: Value = emu.chat(&body).await.json().await.unwrap();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(text).unwrap();
    assert!(
        parsed["city"].is_string() && parsed["degrees"].is_i64(),
        "{parsed}"
    );
    // JSON mode needs the word in the messages, as the API does.
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_object"}});
    let resp = emu.chat(&body).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "answer in JSON"}],
        "response_format": {"type": "json_object"}});
    let v: Value = emu.chat(&body).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "{}");
}
