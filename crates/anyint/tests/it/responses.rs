//! The Responses API end to end, for a model of every upstream kind: translated to Chat
//! Completions (`gpt-4o-mini`), Anthropic (`claude`) and Gemini (`gemini`), and passed through
//! to a native Responses upstream (`gpt-resp`); stored state, streams checked against the
//! event grammar, errors in the OpenAI envelope.

use anyint_wire::responses::check_stream;
use serde_json::{Value, json};

use crate::harness::{TestGateway, request_id};

const MODELS: [&str; 4] = ["gpt-4o-mini", "claude", "gemini", "gpt-resp"];

/// The test gateway plus `gpt-resp`, a model on a native Responses upstream (the emulator
/// with `api = "responses"`).
pub async fn gateway() -> TestGateway {
    TestGateway::builder()
        .toml(
            r#"
[[providers]]
name = "emu-responses"
kind = "openai"
api = "responses"
base_url = "{emulator}/v1"
api_key = "test-upstream-key"

[[models]]
id = "gpt-resp"
routes = [{ provider = "emu-responses", upstream_model = "gpt-5" }]
"#,
        )
        .start()
        .await
}

async fn create(t: &TestGateway, body: Value) -> reqwest::Response {
    t.post("/openai/v1/responses")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The text of every `output_text` part, joined (what the SDKs call `output_text`).
fn output_text(v: &Value) -> String {
    v["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["type"] == "output_text")
        .map(|p| p["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The `data` objects of an SSE body, in order.
fn events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn every_upstream_kind_answers_a_plain_create() {
    let t = gateway().await;
    for model in MODELS {
        let resp = create(
            &t,
            json!({"model": model, "input": "Reply with exactly: pong", "store": false}),
        )
        .await;
        assert_eq!(resp.status(), 200, "{model}");
        let rid = request_id(&resp);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["object"], "response", "{model}: {v}");
        assert_eq!(v["status"], "completed", "{model}");
        assert_eq!(output_text(&v), "pong", "{model}: {v}");
        assert!(v["id"].as_str().unwrap().starts_with("resp_"), "{model}");
        let usage = &v["usage"];
        let (input, output) = (
            usage["input_tokens"].as_i64().unwrap(),
            usage["output_tokens"].as_i64().unwrap(),
        );
        assert!(input > 0 && output > 0, "{model}: {usage}");
        assert_eq!(usage["total_tokens"].as_i64().unwrap(), input + output);
        let rows = t.usage(&rid).await;
        assert_eq!(rows.len(), 1, "{model}");
        assert_eq!(rows[0].family, "responses");
        assert_eq!(
            (rows[0].prompt_tokens, rows[0].completion_tokens),
            (input, output),
            "{model}"
        );
    }
}

#[tokio::test]
async fn streams_follow_the_event_grammar_for_every_upstream_kind() {
    let t = gateway().await;
    for model in MODELS {
        let resp = create(
            &t,
            json!({"model": model, "input": "Reply with exactly: streamed words", "stream": true, "store": false}),
        )
        .await;
        assert_eq!(resp.status(), 200, "{model}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let rid = request_id(&resp);
        let body = resp.text().await.unwrap();
        check_stream(body.as_bytes()).unwrap_or_else(|e| panic!("{model}: {e}\n{body}"));
        let evs = events(&body);
        let last = evs.last().unwrap();
        assert_eq!(last["type"], "response.completed", "{model}");
        assert_eq!(output_text(&last["response"]), "streamed words", "{model}");
        let deltas: String = evs
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .map(|e| e["delta"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(deltas, "streamed words", "{model}");
        let rows = t.usage(&rid).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].completion_tokens,
            last["response"]["usage"]["output_tokens"].as_i64().unwrap(),
            "{model}"
        );
        assert_eq!(rows[0].outcome, "ok");
    }
}

#[tokio::test]
async fn a_function_tool_loop_works_on_every_upstream_kind() {
    let t = gateway().await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    for model in MODELS {
        let v: Value = create(
            &t,
            json!({"model": model, "store": false, "tools": tools, "input": "Call get_weather for Oslo"}),
        )
        .await
        .json()
        .await
        .unwrap();
        let call = v["output"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "function_call")
            .unwrap_or_else(|| panic!("{model}: no call in {v}"))
            .clone();
        assert_eq!(call["name"], "get_weather", "{model}");
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert!(args["city"].is_string(), "{model}: {args}");
        let second = json!({"model": model, "store": false, "tools": tools, "input": [
            {"role": "user", "content": "Call get_weather for Oslo"},
            {"type": "function_call", "call_id": call["call_id"], "name": "get_weather", "arguments": call["arguments"]},
            {"type": "function_call_output", "call_id": call["call_id"], "output": "3 degrees and rain"}
        ]});
        let v: Value = create(&t, second).await.json().await.unwrap();
        assert_eq!(v["status"], "completed", "{model}: {v}");
        assert!(
            output_text(&v).contains("3 degrees and rain"),
            "{model}: {v}"
        );
    }
}

#[tokio::test]
async fn previous_response_id_continues_a_stored_conversation_on_any_upstream() {
    let t = gateway().await;
    for model in MODELS {
        let first: Value = create(
            &t,
            json!({"model": model, "input": "Reply with exactly: first turn"}),
        )
        .await
        .json()
        .await
        .unwrap();
        let id = first["id"].as_str().unwrap().to_owned();
        assert_eq!(first["store"], true, "{model}: store defaults to true");
        let tag = format!("prev{}", model.replace('-', ""));
        let second = create(
            &t,
            json!({"model": model, "previous_response_id": id,
                   "input": format!("Reply with exactly: second turn [emulate: tag={tag}]")}),
        )
        .await;
        assert_eq!(second.status(), 200, "{model}");
        let second: Value = second.json().await.unwrap();
        assert_eq!(output_text(&second), "second turn", "{model}");
        if model != "gpt-resp" {
            // Translated answers echo it; a native upstream's answer passes through as it was
            // (the gateway sent it the whole history instead; see the README).
            assert_eq!(second["previous_response_id"], id.as_str(), "{model}");
        }
        // The upstream got the whole history: the first question, its answer, the new one.
        let last = t.upstream_request(&tag).await;
        let sent = last["body"].to_string();
        for part in ["first turn", "second turn"] {
            assert!(
                sent.contains(part),
                "{model}: upstream body lacks {part:?}: {sent}"
            );
        }
        // input_items lists both user messages and the first answer, newest first.
        let items: Value = t
            .get(&format!(
                "/openai/v1/responses/{}/input_items",
                second["id"].as_str().unwrap()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let data = items["data"].as_array().unwrap();
        assert_eq!(data.len(), 3, "{model}: {items}");
        assert!(data.iter().all(|i| i["id"].is_string()));
        assert_eq!(items["has_more"], false);
        assert_eq!(items["first_id"], data[0]["id"]);
    }
}

#[tokio::test]
async fn stored_responses_are_retrieved_deleted_and_private_to_their_account() {
    let t = gateway().await;
    let v: Value = create(
        &t,
        json!({"model": "claude", "input": "Reply with exactly: keep me"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = v["id"].as_str().unwrap();
    let path = format!("/openai/v1/responses/{id}");
    let got: Value = t.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["id"], id);
    assert_eq!(output_text(&got), "keep me");
    // Another account's key gets exactly the answer for a missing ID.
    let other = t.key_for_other_account().await;
    let foreign = t
        .http
        .get(t.url(&path))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    let missing = t
        .get("/openai/v1/responses/resp_doesnotexist")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (foreign.status().as_u16(), missing.status().as_u16()),
        (404, 404)
    );
    let (foreign, missing): (Value, Value) =
        (foreign.json().await.unwrap(), missing.json().await.unwrap());
    assert_eq!(foreign["error"]["type"], missing["error"]["type"]);
    assert_eq!(foreign["error"]["type"], "invalid_request_error");
    let continued = t
        .http
        .post(t.url("/openai/v1/responses"))
        .bearer_auth(&other)
        .json(&json!({"model": "claude", "previous_response_id": id, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(continued.status(), 400);
    let e: Value = continued.json().await.unwrap();
    assert_eq!(e["error"]["code"], "previous_response_not_found");
    assert_eq!(e["error"]["param"], "previous_response_id");
    // Delete, then it is gone.
    let del = t
        .http
        .delete(t.url(&path))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let d: Value = del.json().await.unwrap();
    assert_eq!(
        (d["deleted"].as_bool(), d["object"].as_str()),
        (Some(true), Some("response"))
    );
    assert_eq!(t.get(&path).send().await.unwrap().status(), 404);
    assert_eq!(
        t.http
            .delete(t.url(&path))
            .bearer_auth(&t.key)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn store_false_keeps_nothing_and_streams_are_stored_before_they_end() {
    let t = gateway().await;
    let v: Value = create(
        &t,
        json!({"model": "gemini", "input": "hi", "store": false}),
    )
    .await
    .json()
    .await
    .unwrap();
    let path = format!("/openai/v1/responses/{}", v["id"].as_str().unwrap());
    assert_eq!(t.get(&path).send().await.unwrap().status(), 404);
    // A streamed response is readable as soon as its stream has ended, on every upstream kind.
    for model in MODELS {
        let body = create(
            &t,
            json!({"model": model, "input": "Reply with exactly: streamed", "stream": true}),
        )
        .await
        .text()
        .await
        .unwrap();
        let done = events(&body).pop().unwrap();
        let id = done["response"]["id"].as_str().unwrap().to_owned();
        let got: Value = t
            .get(&format!("/openai/v1/responses/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(output_text(&got), "streamed", "{model}: {got}");
    }
}

#[tokio::test]
async fn built_in_tools_are_refused_on_translated_routes_naming_the_tool() {
    let t = gateway().await;
    for model in ["gpt-4o-mini", "claude", "gemini"] {
        let resp = create(
            &t,
            json!({"model": model, "input": "hi", "tools": [{"type": "web_search"}]}),
        )
        .await;
        assert_eq!(resp.status(), 400, "{model}");
        let v: Value = resp.json().await.unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("web_search"), "{model}: {msg}");
        assert_eq!(v["error"]["param"], "tools");
    }
}

#[tokio::test]
async fn a_failure_after_the_first_byte_ends_with_error_then_response_failed() {
    let t = gateway().await;
    for model in MODELS {
        let body = create(
            &t,
            json!({"model": model, "stream": true, "store": false,
                   "input": "Reply with exactly: one two three four five six [emulate: error_after=3]"}),
        )
        .await
        .text()
        .await
        .unwrap();
        let evs = events(&body);
        let n = evs.len();
        assert!(n >= 2, "{model}: {body}");
        assert_eq!(evs[n - 2]["type"], "error", "{model}: {body}");
        assert_eq!(evs[n - 1]["type"], "response.failed", "{model}: {body}");
        let seqs: Vec<u64> = evs
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "{model}: sequence numbers {seqs:?}"
        );
    }
}

#[tokio::test]
async fn websocket_upgrade_is_426_and_compact_says_what_to_do() {
    let t = gateway().await;
    let resp = t
        .get("/openai/v1/responses")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 426);
    let resp = t
        .post("/openai/v1/responses/compact")
        .json(&json!({"model": "claude", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model_providers")
    );
}

#[tokio::test]
async fn input_tokens_counts_for_native_and_translated_models() {
    let t = gateway().await;
    for model in ["claude", "gpt-resp"] {
        let resp = t
            .post("/openai/v1/responses/input_tokens")
            .json(&json!({"model": model, "input": "How many tokens is this?"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{model}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["object"], "response.input_tokens", "{model}");
        assert!(v["input_tokens"].as_u64().unwrap() > 0, "{model}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_a_response_streamed_on_one_instance_continues_on_another() {
    let store = crate::harness::fresh_pg_schema().await;
    let a = TestGateway::builder().shared_postgres(&store).start().await;
    let b = TestGateway::builder().shared_postgres(&store).start().await;
    for model in ["claude", "gemini"] {
        let body = a
            .post("/openai/v1/responses")
            .json(&json!({"model": model, "input": "Reply with exactly: from a", "stream": true}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let id = events(&body).pop().unwrap()["response"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // The moment the stream ended on A, B (same store, A's key) continues it.
        let resp = b
            .http
            .post(b.url("/openai/v1/responses"))
            .bearer_auth(&a.key)
            .json(&json!({"model": model, "previous_response_id": id, "input": "Reply with exactly: from b"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{model}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(output_text(&v), "from b");
        let items: Value = b
            .http
            .get(b.url(&format!(
                "/openai/v1/responses/{}/input_items",
                v["id"].as_str().unwrap()
            )))
            .bearer_auth(&a.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            items["data"].as_array().unwrap().len(),
            3,
            "{model}: {items}"
        );
    }
}
