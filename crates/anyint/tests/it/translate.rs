//! Anthropic and Gemini families, and translation between every family and every upstream
//! kind, streaming included.

use serde_json::{Value, json};

use crate::harness::{TestGateway, request_id, sse_data, user};

/// The three configured models, one per upstream kind.
const MODELS: [&str; 3] = ["gpt-4o-mini", "claude", "gemini"];

async fn anthropic(t: &TestGateway, body: Value) -> reqwest::Response {
    t.http
        .post(t.url("/anthropic/v1/messages"))
        .header("x-api-key", &t.key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn gemini(t: &TestGateway, model: &str, action: &str, body: Value) -> reqwest::Response {
    t.http
        .post(t.url(&format!("/gemini/v1beta/models/{model}:{action}")))
        .header("x-goog-api-key", &t.key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn gemini_body(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

/// Parses an Anthropic SSE body into (event, data) pairs, checking each has both.
fn anthropic_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let event = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("no event line in {e:?}"));
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("no data line in {e:?}"));
            let data: Value = serde_json::from_str(data).unwrap();
            assert_eq!(data["type"], event, "data.type must equal the event name");
            (event.to_owned(), data)
        })
        .collect()
}

/// Asserts the Anthropic stream grammar strictly and returns (text, tool inputs, stop_reason).
fn check_anthropic_stream(events: &[(String, Value)]) -> (String, Vec<Value>, String) {
    let names: Vec<&str> = events
        .iter()
        .map(|(e, _)| e.as_str())
        .filter(|e| *e != "ping")
        .collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    assert_eq!(names[names.len() - 2], "message_delta", "{names:?}");
    let mut open: Option<u64> = None;
    let mut next_index = 0;
    let mut text = String::new();
    let mut tools = Vec::new();
    let mut partial = String::new();
    let mut stop = String::new();
    for (event, data) in events {
        match event.as_str() {
            "message_start" => {
                assert!(data["message"]["usage"]["input_tokens"].as_u64().unwrap() > 0);
            }
            "content_block_start" => {
                assert!(open.is_none(), "block opened while another is open");
                let i = data["index"].as_u64().unwrap();
                assert_eq!(i, next_index, "block indices must count up from 0");
                open = Some(i);
                next_index += 1;
                partial.clear();
            }
            "content_block_delta" => {
                assert_eq!(
                    Some(data["index"].as_u64().unwrap()),
                    open,
                    "delta for a block that is not open"
                );
                match data["delta"]["type"].as_str().unwrap() {
                    "text_delta" => text.push_str(data["delta"]["text"].as_str().unwrap()),
                    "input_json_delta" => {
                        partial.push_str(data["delta"]["partial_json"].as_str().unwrap());
                    }
                    "thinking_delta" | "signature_delta" => {}
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" => {
                assert_eq!(Some(data["index"].as_u64().unwrap()), open);
                if !partial.is_empty() {
                    tools.push(serde_json::from_str::<Value>(&partial).unwrap());
                    partial.clear();
                }
                open = None;
            }
            "message_delta" => {
                assert!(open.is_none(), "message_delta before every block closed");
                assert!(data["usage"]["output_tokens"].as_u64().unwrap() > 0);
                data["delta"]["stop_reason"]
                    .as_str()
                    .unwrap()
                    .clone_into(&mut stop);
            }
            "message_stop" | "ping" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    (text, tools, stop)
}

fn gemini_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .flat_map(|c| {
            c["candidates"][0]["content"]["parts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|p| p["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn every_family_reaches_every_upstream_kind() {
    let t = TestGateway::start().await;
    for model in MODELS {
        let ask = "Reply with exactly: pong";
        let resp = t.chat(json!({"model": model, "messages": user(ask)})).await;
        assert_eq!(resp.status(), 200, "openai → {model}");
        let rid = request_id(&resp);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            v["choices"][0]["message"]["content"], "pong",
            "openai → {model}: {v}"
        );
        assert_eq!(v["model"], model);
        assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
        assert!(t.usage(&rid).await[0].completion_tokens > 0);

        let resp = anthropic(
            &t,
            json!({"model": model, "max_tokens": 64, "messages": user(ask)}),
        )
        .await;
        assert_eq!(resp.status(), 200, "anthropic → {model}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["content"][0]["text"], "pong", "anthropic → {model}: {v}");
        assert_eq!(v["stop_reason"], "end_turn");
        assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);

        let resp = gemini(&t, model, "generateContent", gemini_body(ask)).await;
        assert_eq!(resp.status(), 200, "gemini → {model}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            gemini_text(std::slice::from_ref(&v)),
            "pong",
            "gemini → {model}: {v}"
        );
        assert_eq!(v["candidates"][0]["finishReason"], "STOP");
        assert!(v["usageMetadata"]["candidatesTokenCount"].as_u64().unwrap() > 0);
    }
}

#[tokio::test]
async fn every_family_streams_from_every_upstream_kind() {
    let t = TestGateway::start().await;
    let ask = "Reply with exactly: alpha beta gamma";
    for model in MODELS {
        let resp = t.chat(json!({"model": model, "stream": true, "stream_options": {"include_usage": true}, "messages": user(ask)})).await;
        let rid = request_id(&resp);
        let data = sse_data(&resp.text().await.unwrap());
        assert_eq!(data.last().unwrap(), "[DONE]", "openai ← {model}");
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "alpha beta gamma", "openai ← {model}");
        let usage = &chunks.last().unwrap()["usage"];
        assert!(
            usage["completion_tokens"].as_u64().unwrap() > 0,
            "openai ← {model}: usage chunk {usage}"
        );
        let row = &t.usage(&rid).await[0];
        assert!(row.completion_tokens > 0 && row.outcome == "ok", "{row:?}");

        let resp = anthropic(
            &t,
            json!({"model": model, "max_tokens": 64, "stream": true, "messages": user(ask)}),
        )
        .await;
        let rid = request_id(&resp);
        let (text, _, stop) =
            check_anthropic_stream(&anthropic_events(&resp.text().await.unwrap()));
        assert_eq!(
            (text.as_str(), stop.as_str()),
            ("alpha beta gamma", "end_turn"),
            "anthropic ← {model}"
        );
        assert!(t.usage(&rid).await[0].completion_tokens > 0);

        let resp = t
            .http
            .post(t.url(&format!(
                "/gemini/v1beta/models/{model}:streamGenerateContent?alt=sse"
            )))
            .header("x-goog-api-key", &t.key)
            .json(&gemini_body(ask))
            .send()
            .await
            .unwrap();
        let rid = request_id(&resp);
        let body = resp.text().await.unwrap();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                line.starts_with("data: "),
                "gemini ← {model}: non-data line {line:?}"
            );
        }
        let chunks: Vec<Value> = sse_data(&body.replace("\r\n", "\n"))
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(gemini_text(&chunks), "alpha beta gamma", "gemini ← {model}");
        assert!(
            chunks.last().unwrap()["usageMetadata"]["candidatesTokenCount"]
                .as_u64()
                .unwrap()
                > 0
        );
        assert!(t.usage(&rid).await[0].completion_tokens > 0);
    }
}

#[tokio::test]
async fn claude_code_style_request_to_an_openai_upstream_streams_a_strict_event_sequence() {
    let t = TestGateway::start().await;
    let tools = json!([
        {"name": "read_file", "description": "Read a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}},
        {"name": "bash", "description": "Run a command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}, "cache_control": {"type": "ephemeral"}}
    ]);
    let body = json!({
        "model": "gpt-4o-mini", "max_tokens": 4096, "stream": true,
        "system": [{"type": "text", "text": "You are a coding agent."}, {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": tools, "tool_choice": {"type": "any"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "List the repo", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "README.md"}, {"type": "text", "text": "now read_file it"}]}
        ]
    });
    let resp = anthropic(&t, body).await;
    assert_eq!(resp.status(), 200);
    let (_, tools, stop) = check_anthropic_stream(&anthropic_events(&resp.text().await.unwrap()));
    assert_eq!(stop, "tool_use");
    assert_eq!(tools.len(), 1);
    assert!(tools[0]["path"].is_string(), "{tools:?}");
}

#[tokio::test]
async fn openai_clients_get_tool_calls_from_anthropic_and_gemini_upstreams() {
    let t = TestGateway::start().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    for model in ["claude", "gemini"] {
        let v: Value = t
            .chat(json!({"model": model, "tools": tools, "tool_choice": "required", "messages": user("weather?")}))
            .await
            .json()
            .await
            .unwrap();
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(
            v["choices"][0]["finish_reason"], "tool_calls",
            "{model}: {v}"
        );
        assert_eq!(call["function"]["name"], "get_weather");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(args["city"].is_string());

        // Send the result back: the upstream sees a proper tool result.
        let follow = json!({"model": model, "tools": tools, "messages": [
            {"role": "user", "content": "weather?"},
            v["choices"][0]["message"].clone(),
            {"role": "tool", "tool_call_id": call["id"], "content": "3C rain"}
        ]});
        let v: Value = t.chat(follow).await.json().await.unwrap();
        assert!(
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .contains("3C rain"),
            "{model}: {v}"
        );

        let resp = t.chat(json!({"model": model, "stream": true, "tools": tools, "tool_choice": "required", "messages": user("weather?")})).await;
        let data = sse_data(&resp.text().await.unwrap());
        let args: String = data
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert!(
            serde_json::from_str::<Value>(&args).unwrap()["city"].is_string(),
            "{model}: {args}"
        );
    }
}

#[tokio::test]
async fn anthropic_family_errors_use_the_anthropic_envelope() {
    let t = TestGateway::start().await;
    let ok = json!({"model": "claude", "max_tokens": 10, "messages": user("hi")});
    let check = |v: &Value, ty: &str| {
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], ty, "{v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    };
    let resp = t
        .http
        .post(t.url("/anthropic/v1/messages"))
        .header("x-api-key", &t.key)
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    check(&v, "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic-version")
    );

    let resp = anthropic(&t, json!({"model": "claude", "messages": user("hi")})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    check(&v, "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );

    let resp = t
        .http
        .post(t.url("/anthropic/v1/messages"))
        .header("x-api-key", "sk-anyint-nope")
        .header("anthropic-version", "2023-06-01")
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    check(&resp.json().await.unwrap(), "authentication_error");
    // SDK 2.x sends the key as a Bearer token.
    let resp = t
        .http
        .post(t.url("/anthropic/v1/messages"))
        .bearer_auth(&t.key)
        .header("anthropic-version", "2026-10-21")
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = t.http.post(t.url("/anthropic/v1/messages")).bearer_auth(&t.key).header("anthropic-version", "2026-10-21").json(&json!({"model": "claude", "max_tokens": 10, "temperature": 0.5, "messages": user("hi")})).send().await.unwrap();
    assert_eq!(resp.status(), 400);

    let resp = anthropic(
        &t,
        json!({"model": "nope", "max_tokens": 10, "messages": user("hi")}),
    )
    .await;
    assert_eq!(resp.status(), 404);
    check(&resp.json().await.unwrap(), "not_found_error");

    let resp = anthropic(&t, json!({"model": "gpt-4o-mini", "max_tokens": 10, "messages": user("hi [emulate: status=429 retry_after=9]")})).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "9");
    assert!(resp.headers().contains_key("request-id"));
    check(&resp.json().await.unwrap(), "rate_limit_error");

    let resp = anthropic(
        &t,
        json!({"model": "claude", "max_tokens": 10, "messages": user("hi [emulate: status=529]")}),
    )
    .await;
    assert_eq!(resp.status(), 503);
    check(&resp.json().await.unwrap(), "api_error");
}

#[tokio::test]
async fn gemini_family_auth_errors_and_array_streams() {
    let t = TestGateway::start().await;
    let resp = t
        .http
        .post(t.url(&format!(
            "/gemini/v1/models/gemini:generateContent?key={}",
            t.key
        )))
        .json(&gemini_body("Reply with exactly: via query key"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(gemini_text(&[resp.json().await.unwrap()]), "via query key");

    let resp = t
        .http
        .post(t.url("/gemini/v1beta/models/gemini:generateContent"))
        .header("x-goog-api-key", "bad")
        .json(&gemini_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["error"]["code"].as_u64(), v["error"]["status"].as_str()),
        (Some(401), Some("UNAUTHENTICATED")),
        "{v}"
    );

    let v: Value = gemini(&t, "nope", "generateContent", gemini_body("hi"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"]["status"], "NOT_FOUND");
    let resp = gemini(&t, "gemini", "generateContent", json!({"contents": []})).await;
    assert_eq!(resp.status(), 400);
    let resp = gemini(
        &t,
        "gpt-4o-mini",
        "generateContent",
        gemini_body("hi [emulate: status=429 retry_after=4]"),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "4");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");

    for model in MODELS {
        let resp = gemini(
            &t,
            model,
            "streamGenerateContent",
            gemini_body("Reply with exactly: one two"),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let arr: Vec<Value> = serde_json::from_str(&resp.text().await.unwrap())
            .unwrap_or_else(|e| panic!("{model}: not a JSON array: {e}"));
        assert_eq!(gemini_text(&arr), "one two", "{model}");
    }
}

#[tokio::test]
async fn untranslatable_fields_are_400_naming_the_field() {
    let t = TestGateway::start().await;
    let resp = t
        .chat(json!({"model": "claude", "n": 2, "messages": user("hi")}))
        .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "n", "{v}");
    let resp = t
        .chat(json!({"model": "gemini", "logprobs": true, "messages": user("hi")}))
        .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("logprobs"),
        "{v}"
    );
    // The same fields are fine where the upstream speaks OpenAI.
    assert_eq!(
        t.chat(json!({"model": "gpt-4o", "n": 2, "messages": user("hi")}))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn models_lists_and_token_counts_in_each_family() {
    let t = TestGateway::start().await;
    let v: Value = t
        .http
        .get(t.url("/anthropic/v1/models"))
        .header("x-api-key", &t.key)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["has_more"], false);
    assert_eq!(v["data"][0]["type"], "model");
    assert!(v["data"][0]["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["data"].as_array().unwrap().len(), 7);
    let v: Value = t
        .http
        .get(t.url("/gemini/v1beta/models"))
        .header("x-goog-api-key", &t.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "models/gemini")
    );

    for model in ["claude", "gpt-4o-mini"] {
        let resp = t
            .http
            .post(t.url("/anthropic/v1/messages/count_tokens"))
            .header("x-api-key", &t.key)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": model, "messages": user("count these words please")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{model}");
        assert!(
            resp.json::<Value>().await.unwrap()["input_tokens"]
                .as_u64()
                .unwrap()
                > 0
        );
    }
    for model in ["gemini", "claude"] {
        let v: Value = gemini(
            &t,
            model,
            "countTokens",
            gemini_body("count these words please"),
        )
        .await
        .json()
        .await
        .unwrap();
        assert!(v["totalTokens"].as_u64().unwrap() > 0, "{model}: {v}");
    }
}

#[tokio::test]
async fn anthropic_passthrough_keeps_upstream_events() {
    let t = TestGateway::start().await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": true, "messages": user("Reply with exactly: same events")});
    let direct = t
        .http
        .post(format!("{}/v1/messages", t.emulator))
        .header("x-api-key", crate::harness::UPSTREAM_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut via_body = body;
    via_body["model"] = json!("claude");
    let via = anthropic(&t, via_body).await.text().await.unwrap();
    let strip_ids = |s: &str| -> Vec<(String, Value)> {
        anthropic_events(s)
            .into_iter()
            .map(|(e, mut d)| {
                if let Some(m) = d.get_mut("message") {
                    m["id"] = Value::Null;
                }
                (e, d)
            })
            .collect()
    };
    assert_eq!(strip_ids(&via), strip_ids(&direct));
}

#[tokio::test]
async fn mid_stream_upstream_error_becomes_each_familys_error_event() {
    let t = TestGateway::start().await;
    let ask = "Reply with exactly: a b c d e f [emulate: error_after=3]";
    for model in MODELS {
        let body = t
            .chat(json!({"model": model, "stream": true, "messages": user(ask)}))
            .await
            .text()
            .await
            .unwrap();
        let data = sse_data(&body);
        assert!(!data.iter().any(|d| d == "[DONE]"), "openai ← {model}");
        assert!(
            data.last().unwrap().contains("\"error\""),
            "openai ← {model}: {body}"
        );
        assert_eq!(
            data.iter().filter(|d| d.contains("\"error\"")).count(),
            1,
            "openai ← {model}: one error: {body}"
        );

        let body = anthropic(
            &t,
            json!({"model": model, "max_tokens": 64, "stream": true, "messages": user(ask)}),
        )
        .await
        .text()
        .await
        .unwrap();
        let events = anthropic_events(&body);
        assert_eq!(
            events.last().unwrap().0,
            "error",
            "anthropic ← {model}: {body}"
        );
        assert!(!events.iter().any(|(e, _)| e == "message_stop"));
        assert_eq!(
            events.iter().filter(|(e, _)| e == "error").count(),
            1,
            "exactly one error event: {body}"
        );

        let resp = t
            .http
            .post(t.url(&format!(
                "/gemini/v1beta/models/{model}:streamGenerateContent?alt=sse"
            )))
            .header("x-goog-api-key", &t.key)
            .json(&gemini_body(ask))
            .send()
            .await
            .unwrap();
        let body = resp.text().await.unwrap();
        let chunks = sse_data(&body.replace("\r\n", "\n"));
        let errors = chunks
            .iter()
            .filter(|c| c.starts_with("{\"error\""))
            .count();
        assert_eq!(errors, 1, "gemini ← {model}: {body}");
        assert!(
            chunks.last().unwrap().starts_with("{\"error\""),
            "gemini ← {model}: the error comes last"
        );
    }
}

#[tokio::test]
async fn claude_codes_start_up_probe_and_beta_query_are_answered() {
    let t = TestGateway::start().await;
    let probe = t
        .http
        .head(t.url("/anthropic/api/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 200);
    let resp = t
        .http
        .post(t.url("/anthropic/v1/messages?beta=true"))
        .header("x-api-key", &t.key)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .json(&serde_json::json!({"model": "claude", "max_tokens": 32,
            "messages": [{"role": "user", "content": "Reply with exactly: beta ok"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "beta ok");
}
