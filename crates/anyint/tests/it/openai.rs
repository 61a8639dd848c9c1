//! The OpenAI-compatible family end to end: models, chat, streams, every documented error.

use serde_json::{Value, json};

use crate::harness::{TestGateway, UPSTREAM_KEY, request_id, sse_data, user};

async fn error_body(resp: reqwest::Response) -> Value {
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    let e = &v["error"];
    for k in ["message", "type", "param", "code"] {
        assert!(e.get(k).is_some(), "error envelope lacks `{k}`: {v}");
    }
    v
}

#[tokio::test]
async fn models_list_has_openai_shape_and_all_models_for_unrestricted_key() {
    let t = TestGateway::start().await;
    let resp = t.get("/openai/v1/models").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "gpt-4o-mini",
            "gpt-4o",
            "alias-model",
            "unreachable",
            "claude",
            "gemini",
            "failover"
        ]
    );
    let first = &v["data"][0];
    assert_eq!(first["object"], "model");
    assert_eq!(first["owned_by"], "openai");
    assert_eq!(first["display_name"], "GPT-4o mini");
    assert!(first["created"].is_i64());

    let one: Value = t
        .get("/openai/v1/models/gpt-4o-mini")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], "gpt-4o-mini");
    let missing = t.get("/openai/v1/models/nope").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        error_body(missing).await["error"]["code"],
        "model_not_found"
    );
}

#[tokio::test]
async fn restricted_key_sees_and_uses_only_its_models() {
    let t = TestGateway::start().await;
    let (_, key) = anyint::auth::issue_key(
        t.store.as_ref(),
        "r",
        "acct",
        Some(vec!["gpt-4o".into()]),
        anyint::store::KeyLimits::default(),
    )
    .await
    .unwrap();
    let v: Value = t
        .http
        .get(t.url("/openai/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-4o"]);

    let resp = t
        .http
        .post(t.url("/openai/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o-mini", "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let v = error_body(resp).await;
    assert_eq!(v["error"]["code"], "model_not_allowed");
    assert_eq!(v["error"]["type"], "permission_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/openai/v1/models"),
        "{v}"
    );
}

#[tokio::test]
async fn chat_returns_upstream_answer_and_meters_its_usage() {
    let t = TestGateway::start().await;
    let resp = t
        .chat(json!({"model": "gpt-4o-mini", "messages": user("Reply with exactly: pong")}))
        .await;
    assert_eq!(resp.status(), 200);
    let rid = request_id(&resp);
    assert!(rid.starts_with("req_"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "pong");
    let usage = &v["usage"];
    let rows = t.usage(&rid).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.prompt_tokens, usage["prompt_tokens"].as_i64().unwrap());
    assert_eq!(
        row.completion_tokens,
        usage["completion_tokens"].as_i64().unwrap()
    );
    assert!(row.prompt_tokens > 0 && row.completion_tokens > 0);
    assert_eq!(
        (row.status, row.outcome.as_str(), row.stream),
        (200, "ok", false)
    );
    assert_eq!(
        (
            row.provider.as_str(),
            row.model.as_str(),
            row.account.as_str()
        ),
        ("emu", "gpt-4o-mini", "acct")
    );
}

#[tokio::test]
async fn public_model_id_is_rewritten_to_the_upstream_model() {
    let t = TestGateway::start().await;
    let resp = t
        .chat(json!({"model": "alias-model", "messages": user("Reply with exactly: x [emulate: tag=alias]")}))
        .await;
    assert_eq!(resp.status(), 200);
    let last: Value = t
        .http
        .get(format!("{}/_emulator/last/alias", t.emulator))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(last["body"]["model"], "gpt-4.1");
    assert_eq!(
        last["headers"]["authorization"],
        format!("Bearer {}", crate::harness::UPSTREAM_KEY)
    );
    let rows = t.usage(&request_id(&resp)).await;
    assert_eq!(
        (rows[0].model.as_str(), rows[0].upstream_model.as_str()),
        ("alias-model", "gpt-4.1")
    );
}

#[tokio::test]
async fn stream_with_include_usage_ends_with_usage_chunk_and_done() {
    let t = TestGateway::start().await;
    let resp = t
        .chat(json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
                     "messages": user("Reply with exactly: one two three")}))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let rid = request_id(&resp);
    let data = sse_data(&resp.text().await.unwrap());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let usage_chunk: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    let text: String = data[..data.len() - 2]
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "one two three");
    let rows = t.usage(&rid).await;
    assert_eq!(
        rows[0].completion_tokens,
        usage_chunk["usage"]["completion_tokens"].as_i64().unwrap()
    );
    assert!(rows[0].stream);
}

#[tokio::test]
async fn stream_without_include_usage_hides_usage_but_still_meters_it() {
    let t = TestGateway::start().await;
    let resp = t
        .chat(json!({"model": "gpt-4o-mini", "stream": true, "messages": user("Reply with exactly: alpha beta [emulate: tag=nousage]")}))
        .await;
    let rid = request_id(&resp);
    let data = sse_data(&resp.text().await.unwrap());
    assert_eq!(data.last().unwrap(), "[DONE]");
    for d in &data[..data.len() - 1] {
        let chunk: Value = serde_json::from_str(d).unwrap();
        assert!(
            !chunk["choices"].as_array().unwrap().is_empty(),
            "usage-only chunk leaked: {d}"
        );
        assert!(chunk["usage"].is_null(), "usage leaked: {d}");
    }
    // The gateway asked the upstream for usage even though the client did not.
    let last: Value = t
        .http
        .get(format!("{}/_emulator/last/nousage", t.emulator))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(last["body"]["stream_options"]["include_usage"], true);
    let rows = t.usage(&rid).await;
    assert!(
        rows[0].completion_tokens > 0 && rows[0].prompt_tokens > 0,
        "{rows:?}"
    );
    assert_eq!(rows[0].outcome, "ok");
}

#[tokio::test]
async fn streamed_tool_call_arguments_arrive_intact() {
    let t = TestGateway::start().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let resp = t
        .chat(
            json!({"model": "gpt-4o", "stream": true, "tools": tools, "tool_choice": "required",
                     "messages": user("weather in Oslo?")}),
        )
        .await;
    let data = sse_data(&resp.text().await.unwrap());
    let mut args = String::new();
    let mut finish = None;
    for d in data.iter().filter(|d| *d != "[DONE]") {
        let c: Value = serde_json::from_str(d).unwrap();
        if let Some(a) = c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        {
            args.push_str(a);
        }
        if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_owned());
        }
    }
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    let parsed: Value = serde_json::from_str(&args).unwrap();
    assert!(parsed["city"].is_string());
}

#[tokio::test]
async fn passthrough_stream_bytes_equal_what_the_upstream_sent() {
    let t = TestGateway::start().await;
    let body = json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
                      "messages": user("Reply with exactly: the same bytes")});
    let direct = t
        .http
        .post(format!("{}/v1/chat/completions", t.emulator))
        .bearer_auth(crate::harness::UPSTREAM_KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let via = t.chat(body).await.text().await.unwrap();
    // `created` is the emulator's clock; everything else must be byte-identical.
    let strip = |s: &str| {
        s.split("\"created\":")
            .enumerate()
            .map(|(i, p)| {
                if i == 0 {
                    p.to_owned()
                } else {
                    p.trim_start_matches(char::is_numeric).to_owned()
                }
            })
            .collect::<String>()
    };
    assert_eq!(strip(&via), strip(&direct));
}

#[tokio::test]
async fn auth_failures_are_401_with_invalid_api_key() {
    let t = TestGateway::start().await;
    let chat = json!({"model": "gpt-4o-mini", "messages": user("hi")});
    let url = t.url("/openai/v1/chat/completions");
    for req in [
        t.http.post(&url).json(&chat),
        t.http.post(&url).bearer_auth("sk-anyint-wrong").json(&chat),
        t.http.get(t.url("/openai/v1/models")),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers().contains_key("x-request-id"));
        let v = error_body(resp).await;
        assert_eq!(v["error"]["type"], "authentication_error");
        assert_eq!(v["error"]["code"], "invalid_api_key");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Authorization: Bearer"),
            "{v}"
        );
    }
}

#[tokio::test]
async fn revoked_key_is_refused_immediately() {
    let t = TestGateway::start().await;
    let created: Value = t
        .admin(reqwest::Method::POST, "/admin/v1/keys")
        .json(&json!({"name": "temp"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap();
    let ok = t
        .http
        .get(t.url("/openai/v1/models"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let del = t
        .admin(
            reqwest::Method::DELETE,
            &format!("/admin/v1/keys/{}", created["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let resp = t
        .http
        .get(t.url("/openai/v1/models"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(error_body(resp).await["error"]["code"], "invalid_api_key");
}

#[tokio::test]
async fn malformed_requests_are_400_naming_the_param() {
    let t = TestGateway::start().await;
    let url = t.url("/openai/v1/chat/completions");
    let cases: Vec<(&str, Value)> = vec![
        ("{not json", Value::Null),
        (
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
            json!("model"),
        ),
        (r#"{"model":"gpt-4o-mini"}"#, json!("messages")),
        (
            r#"{"model":"gpt-4o-mini","messages":[]}"#,
            json!("messages"),
        ),
        (
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}"#,
            json!("stream_options"),
        ),
        ("[1,2,3]", Value::Null),
    ];
    for (body, param) in cases {
        let resp = t
            .http
            .post(&url)
            .bearer_auth(&t.key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let v = error_body(resp).await;
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn unknown_model_is_404_model_not_found() {
    let t = TestGateway::start().await;
    let resp = t
        .chat(json!({"model": "gpt-9", "messages": user("hi")}))
        .await;
    assert_eq!(resp.status(), 404);
    let rid = request_id(&resp);
    let v = error_body(resp).await;
    assert_eq!(v["error"]["code"], "model_not_found");
    assert!(v["error"]["message"].as_str().unwrap().contains("gpt-9"));
    // Refused requests are metered too, with their status.
    let rows = t.usage(&rid).await;
    assert_eq!(
        (rows[0].status, rows[0].outcome.as_str()),
        (404, "not_found")
    );
}

#[tokio::test]
async fn upstream_429_keeps_its_retry_after() {
    let t = TestGateway::start().await;
    let resp = t.chat(json!({"model": "gpt-4o-mini", "messages": user("hi [emulate: status=429 retry_after=7]")})).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let v = error_body(resp).await;
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn upstream_quota_exhaustion_is_not_the_clients_429() {
    let t = TestGateway::start().await;
    let resp = t
        .chat(json!({"model": "gpt-4o-mini", "messages": user("hi [emulate: status=429 quota=1 tag=quota]")}))
        .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(
        error_body(resp).await["error"]["code"],
        "upstream_quota_exhausted"
    );
    // Not retried: the same key's quota will not come back within the request.
    let v: Value = t
        .http
        .get(format!("{}/_emulator/counts/quota", t.emulator))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["count"], 1);
}

#[tokio::test]
async fn upstream_5xx_and_connection_failure_are_503() {
    let t = TestGateway::start().await;
    for status in [500, 502, 503, 504] {
        let resp = t.chat(json!({"model": "gpt-4o-mini", "messages": user(&format!("hi [emulate: status={status}]"))})).await;
        assert_eq!(resp.status(), 503, "upstream {status}");
        let v = error_body(resp).await;
        assert_eq!(v["error"]["code"], "upstream_unavailable");
        assert!(
            !v.to_string().contains("server_is_overloaded"),
            "upstream body echoed: {v}"
        );
    }
    let resp = t
        .chat(json!({"model": "unreachable", "messages": user("hi")}))
        .await;
    assert_eq!(resp.status(), 503);
    let rid = request_id(&resp);
    assert_eq!(
        error_body(resp).await["error"]["code"],
        "upstream_unavailable"
    );
    let rows = t.usage(&rid).await;
    assert_eq!((rows[0].status, rows[0].provider.as_str()), (503, "dead"));
}

#[tokio::test]
async fn unreachable_first_route_fails_over_to_the_next() {
    let t = TestGateway::start().await;
    let resp = t
        .chat(json!({"model": "failover", "messages": user("Reply with exactly: served")}))
        .await;
    assert_eq!(resp.status(), 200);
    let rid = request_id(&resp);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "served");
    let rows = t.usage(&rid).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].provider.as_str(), rows[0].status), ("emu", 200));
}

#[tokio::test]
async fn upstream_400_is_a_400_in_the_upstreams_words() {
    let t = TestGateway::start().await;
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "tool_choice": "required"});
    // Passed through to its own kind, the refusal reads as the upstream wrote it.
    let resp = t.chat(body.clone()).await;
    assert_eq!(resp.status(), 400);
    let v = error_body(resp).await;
    assert_eq!(
        v["error"]["message"],
        "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
        "{v}"
    );
    // Translated (a Responses client), the gateway says the upstream refused it, then its words.
    let resp = t
        .post("/openai/v1/responses")
        .json(&json!({"model": "gpt-4o-mini", "input": "x", "tool_choice": "required"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v = error_body(resp).await;
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with(
            "the upstream provider rejected the request: Invalid value for 'tool_choice'"
        ),
        "{v}"
    );
}

#[tokio::test]
async fn stream_cut_mid_way_ends_with_an_error_event_and_no_done() {
    let t = TestGateway::start().await;
    let resp = t
        .chat(json!({"model": "gpt-4o-mini", "stream": true,
                     "messages": user("Reply with exactly: a b c d e f g [emulate: cut_after=3]")}))
        .await;
    assert_eq!(resp.status(), 200);
    let rid = request_id(&resp);
    let data = sse_data(&resp.text().await.unwrap());
    assert!(!data.iter().any(|d| d == "[DONE]"));
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_unavailable");
    let rows = t.usage(&rid).await;
    assert_eq!(rows[0].outcome, "upstream_cut");
    // Cut before the usage report: billed for what was generated, not nothing.
    assert!(
        rows[0].completion_tokens >= 1 && rows[0].prompt_tokens > 0,
        "{:?}",
        rows[0]
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let t = TestGateway::builder().max_body(1024).start().await;
    let big = "x".repeat(4096);
    let resp = t
        .chat(json!({"model": "gpt-4o-mini", "messages": user(&big)}))
        .await;
    assert_eq!(resp.status(), 413);
    let v = error_body(resp).await;
    assert!(v["error"]["message"].as_str().unwrap().contains("1024"));
}

/// A body of many frames, sent chunked (no length declared) or with its length, reaches the
/// upstream whole; chunked past the limit, it gets 413 like a declared one.
#[tokio::test]
async fn bodies_of_many_frames_are_read_whole_and_bounded() {
    let t = TestGateway::builder().max_body(1024 * 1024).start().await;
    let text = "abcd ".repeat(60_000); // 300,000 characters: about 75,000 tokens to the emulator
    let body =
        serde_json::to_vec(&json!({"model": "gpt-4o-mini", "messages": user(&text)})).unwrap();
    let frames = |body: &[u8]| {
        let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(7_000).map(|c| Ok(c.to_vec())).collect();
        reqwest::Body::wrap_stream(futures_util::stream::iter(pieces))
    };
    for chunked in [true, false] {
        let req = t
            .post("/openai/v1/chat/completions")
            .header("content-type", "application/json");
        let req = if chunked {
            req.body(frames(&body))
        } else {
            req.header("content-length", body.len()).body(frames(&body))
        };
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "chunked: {chunked}");
        let v: serde_json::Value = resp.json().await.unwrap();
        let prompt = v["usage"]["prompt_tokens"].as_u64().unwrap();
        assert!(
            (74_000..77_000).contains(&prompt),
            "chunked: {chunked}: the upstream counted {prompt} prompt tokens"
        );
    }
    let over = vec![b' '; 1024 * 1024 + 1];
    let resp = t
        .post("/openai/v1/chat/completions")
        .header("content-type", "application/json")
        .body(frames(&over))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let v = error_body(resp).await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("1048576"),
        "{v}"
    );
}

#[tokio::test]
async fn unknown_route_and_health_endpoints() {
    let t = TestGateway::start().await;
    let resp = t.get("/openai/v1/nope").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().contains_key("x-request-id"));
    error_body(resp).await;
    assert_eq!(
        t.http.get(t.url("/healthz")).send().await.unwrap().status(),
        200
    );
    let ready: Value = t
        .http
        .get(t.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["store"], "sqlite");
    t.chat(json!({"model": "gpt-4o-mini", "messages": user("hi")}))
        .await;
    let metrics = t
        .http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("anyint_requests_total{"), "{metrics}");
    assert!(metrics.contains("route=\"/openai/v1/chat/completions\""));
    assert!(metrics.contains("anyint_request_duration_seconds_bucket"));
}

/// The hot routes, served without the router, answer as the routes around them do: each in
/// its family's envelope with both request-ID headers; another method on the path gets the
/// router's 405, and a path one slash longer its 404.
#[tokio::test]
async fn hot_routes_answer_as_routed_ones_do() {
    use anyint::families::HotRoute;
    let t = TestGateway::start().await;
    for path in HotRoute::ALL.map(HotRoute::path) {
        assert_eq!(
            HotRoute::find(&http::Method::POST, path).map(HotRoute::path),
            Some(path)
        );
        let resp = t
            .http
            .post(t.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        let rid = request_id(&resp);
        assert_eq!(resp.headers()["request-id"], rid.as_str(), "{path}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["error"]["message"].as_str().is_some(), "{path}: {v}");
        assert_eq!(
            v["type"] == "error",
            path.starts_with("/anthropic/"),
            "{path}: {v}"
        );

        let resp = t.http.put(t.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 405, "{path}");
        assert!(resp.headers().contains_key("x-request-id"), "{path}");
        let resp = t.post(&format!("{path}/")).json(&json!({})).send().await;
        assert_eq!(resp.unwrap().status(), 404, "{path}/");
    }
    assert_eq!(
        HotRoute::find(&http::Method::GET, HotRoute::OpenAiChat.path()),
        None
    );
}

#[tokio::test]
async fn shutdown_drains_and_flushes_usage() {
    let t = TestGateway::start().await;
    let resp = t
        .chat(json!({"model": "gpt-4o-mini", "messages": user("hi")}))
        .await;
    let rid = request_id(&resp);
    let store = t.store.clone();
    t.shutdown().await;
    let rows = store
        .usage(&anyint::store::UsageQuery {
            request_id: Some(rid),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn pg_gateway_meters_into_postgres() {
    let t = TestGateway::builder().postgres().start().await;
    let resp = t
        .chat(json!({"model": "gpt-4o-mini", "messages": user("Reply with exactly: pg")}))
        .await;
    assert_eq!(resp.status(), 200);
    let rid = request_id(&resp);
    let rows = t.usage(&rid).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].completion_tokens > 0);
    let ready: Value = t
        .http
        .get(t.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["store"], "postgres");
}

#[tokio::test]
async fn streams_over_one_reused_connection_all_complete() {
    let t = TestGateway::start().await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    for i in 0..20 {
        let body = json!({"model": "gpt-4o-mini", "stream": true, "messages": user(&format!("Reply with exactly: n{i}"))});
        let resp = client
            .post(t.url("/openai/v1/chat/completions"))
            .bearer_auth(&t.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let data = sse_data(&resp.text().await.unwrap());
        assert_eq!(data.last().unwrap(), "[DONE]", "stream {i}");
    }
}

#[tokio::test]
async fn ledger_rows_carry_the_cost_at_the_models_price() {
    let t = TestGateway::start().await;
    for stream in [false, true] {
        let resp = t.chat(json!({"model": "gpt-4o", "stream": stream, "messages": user("Reply with exactly: priced words here")})).await;
        let rid = request_id(&resp);
        let _ = resp.text().await.unwrap();
        let row = &t.usage(&rid).await[0];
        assert!(row.prompt_tokens > 0 && row.completion_tokens > 0);
        // 2.5 and 10 units per million tokens, in micro-units, rounded up.
        let expected =
            (row.prompt_tokens * 2_500_000 + row.completion_tokens * 10_000_000 + 999_999)
                / 1_000_000;
        assert_eq!(row.cost_micros, expected, "stream={stream}: {row:?}");
    }
    // Unpriced models cost nothing.
    let resp = t
        .chat(json!({"model": "gpt-4o-mini", "messages": user("hi")}))
        .await;
    assert_eq!(t.usage(&request_id(&resp)).await[0].cost_micros, 0);
}

#[tokio::test]
async fn pg_a_model_name_with_nul_does_not_stall_metering() {
    let t = TestGateway::builder().postgres().start().await;
    let resp = t
        .chat(json!({"model": "x\u{0}y", "messages": user("hi")}))
        .await;
    assert_eq!(resp.status(), 404);
    let bad = request_id(&resp);
    let resp = t
        .chat(json!({"model": "gpt-4o-mini", "messages": user("hi")}))
        .await;
    let good = request_id(&resp);
    // Both rows are written: the refused request's model is stored without the NUL.
    assert_eq!(t.usage(&bad).await[0].model, "xy");
    assert_eq!(t.usage(&good).await.len(), 1);
}

#[tokio::test]
async fn an_absurd_upstream_retry_after_is_clamped_not_a_panic() {
    let t = TestGateway::start().await;
    let resp = t.chat(json!({"model": "gpt-4o-mini", "messages": user("hi [emulate: status=429 retry_after=1e20]")})).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "86400");
}

#[tokio::test]
async fn a_foreign_authorization_header_does_not_hide_a_valid_key() {
    let t = TestGateway::start().await;
    let resp = t
        .http
        .post(t.url("/anthropic/v1/messages"))
        .header("authorization", "Bearer some-other-token")
        .header("x-api-key", &t.key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude", "max_tokens": 8, "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_in_their_familys_envelope() {
    let t = TestGateway::start().await;
    let get = |path: &str| t.http.get(t.url(path)).bearer_auth(&t.key).send();
    // OpenAI: names the family's routes and says "not supported".
    let resp = get("/openai/v1/nope").await.unwrap();
    assert_eq!(resp.status(), 404);
    let v = error_body(resp).await;
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("not supported") && msg.contains("POST /openai/v1/chat/completions"),
        "{msg}"
    );
    // Anthropic: {"type":"error","error":{"type":"not_found_error",…}}.
    let resp = get("/anthropic/v1/nope").await.unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["type"].as_str(), v["error"]["type"].as_str()),
        (Some("error"), Some("not_found_error"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/anthropic/v1/messages")
    );
    // Gemini: the Google RPC envelope.
    let v: Value = get("/gemini/v1beta/nope")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["error"]["code"].as_i64(), v["error"]["status"].as_str()),
        (Some(404), Some("NOT_FOUND"))
    );
    // DashScope: {code, message, request_id}.
    let v: Value = get("/dashscope/v1/nope")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["code"].is_string() && v["request_id"].is_string(), "{v}");
    // Music: the reseller's {code, msg, data} with a business code.
    let v: Value = get("/music/v1/nope").await.unwrap().json().await.unwrap();
    assert_eq!(v["code"], 404, "{v}");
    // A wrong method keeps the family's envelope and says 405.
    let resp = t
        .http
        .get(t.url("/anthropic/v1/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    let resp = t
        .http
        .get(t.url("/openai/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let v = error_body(resp).await;
    assert_eq!(v["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn a_path_that_is_not_utf8_and_a_get_on_a_gemini_action_answer_in_the_familys_envelope() {
    let t = TestGateway::start().await;
    // Invalid UTF-8 once percent-decoded: 400 in the envelope of the prefix, not plain text.
    let resp = t.get("/dashscope/v1/tasks/%FF%FE").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(v["code"].is_string() && v["request_id"].is_string(), "{v}");
    let resp = t.get("/openai/v1/models/%C3%28").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let v = error_body(resp).await;
    assert_eq!(v["error"]["code"], "invalid_path");
    // A GET on a POST-only Gemini action is a 405 in the Google envelope, not a model 404.
    let resp = t
        .http
        .get(t.url("/gemini/v1beta/models/gemini:generateContent"))
        .header("x-goog-api-key", &t.key)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 405, "{v}");
    assert!(v["error"]["status"].is_string(), "{v}");
}

/// The value of the one series of `name` whose labels include all of `labels`, 0 when absent.
fn series(metrics: &str, name: &str, labels: &[&str]) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// The per-request series count every request and token exactly (their handles are cached
/// per serving thread after the first request): a model only this test uses, so other tests
/// sharing the process cannot move its series.
#[tokio::test]
async fn request_and_token_metrics_count_each_request_exactly() {
    let t = TestGateway::builder()
        .toml(
            "[[models]]\nid = \"metrics-only\"\nroutes = [{ provider = \"emu\", upstream_model = \"gpt-4o-mini\" }]\n",
        )
        .start()
        .await;
    let (mut input, mut output) = (0, 0);
    for _ in 0..5 {
        let resp = t
            .chat(json!({"model": "metrics-only", "messages": user("count me")}))
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        input += body["usage"]["prompt_tokens"].as_u64().unwrap();
        output += body["usage"]["completion_tokens"].as_u64().unwrap();
    }
    let metrics = t.text_of("/metrics").await;
    let model = "model=\"metrics-only\"";
    let route = "route=\"/openai/v1/chat/completions\"";
    assert_eq!(
        series(
            &metrics,
            "anyint_requests_total",
            &[model, route, "status=\"200\""]
        ),
        5,
        "{metrics}"
    );
    assert!(input > 0 && output > 0);
    assert_eq!(
        series(
            &metrics,
            "anyint_tokens_total",
            &[model, "direction=\"input\""]
        ),
        input
    );
    assert_eq!(
        series(
            &metrics,
            "anyint_tokens_total",
            &[model, "direction=\"output\""]
        ),
        output
    );
    assert!(series(&metrics, "anyint_request_duration_seconds_count", &[route]) >= 5);
    t.shutdown().await;
}

#[tokio::test]
async fn a_large_passthrough_body_reaches_the_upstream_whole_with_only_the_model_rewritten() {
    let t = TestGateway::start().await;
    // A conversation far over the size the gateway forwards as slices of the client's body,
    // with escapes and non-ASCII text, around short fields that are rewritten, added or kept.
    let mut messages: Vec<Value> = (0..400)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            json!({"role": role, "content": format!("turn {i}: \"quoted\" \\ back, naïve café ✓ {}", "x".repeat(i % 50))})
        })
        .collect();
    messages.push(
        json!({"role": "user", "content": "Reply with exactly: done [emulate: tag=bigpass]"}),
    );
    for stream in [false, true] {
        let body = json!({"messages": messages, "model": "alias-model", "stream": stream, "temperature": 0.5, "metadata": {"k": "v"}});
        assert!(body.to_string().len() > 40_000);
        let resp = t.chat(body).await;
        assert_eq!(resp.status(), 200, "stream={stream}");
        assert!(resp.text().await.unwrap().contains("done"));
        let sent = &t.upstream_request("bigpass").await["body"];
        assert_eq!(sent["messages"], json!(messages), "stream={stream}");
        assert_eq!(sent["model"], "gpt-4.1");
        assert_eq!(
            (&sent["temperature"], &sent["metadata"]),
            (&json!(0.5), &json!({"k": "v"}))
        );
        assert_eq!(sent["stream"], json!(stream));
        assert_eq!(
            sent["stream_options"]["include_usage"] == json!(true),
            stream
        );
    }
}

#[tokio::test]
async fn upstream_calls_carry_one_host_header_and_the_providers_credential() {
    let t = TestGateway::start().await;
    let host = t.emulator.strip_prefix("http://").unwrap().to_owned();
    for (model, tag, credential, want) in [
        (
            "gpt-4o-mini",
            "hdr-openai",
            "authorization",
            format!("Bearer {UPSTREAM_KEY}"),
        ),
        (
            "claude",
            "hdr-anthropic",
            "x-api-key",
            UPSTREAM_KEY.to_owned(),
        ),
    ] {
        let resp = t
            .chat(json!({"model": model, "messages": user(&format!("Reply with exactly: ok [emulate: tag={tag}]"))}))
            .await;
        assert_eq!(resp.status(), 200, "{model}");
        assert_eq!(resp.headers()["x-anyint-served-model"], model);
        let seen = t.upstream_request(tag).await;
        // The emulator joins repeated headers with ", ": one value means one header.
        assert_eq!(seen["headers"]["host"], host.as_str(), "{model}: {seen}");
        assert_eq!(seen["headers"][credential], want.as_str(), "{model}");
    }
}
