//! End-to-end checks of the Gemini emulation over loopback HTTP: both API
//! versions, `?key=` auth, SSE and JSON-array streams, countTokens,
//! function calling, validation and fault injection.

use anyint_emulator::Options;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Emu, start};

const KEY: &str = "AIza-test-key-123456";
const MODEL: &str = "gemini-2.5-flash";

impl Emu {
    /// `POST /v1beta/models/{MODEL}:{method}` with `x-goog-api-key`.
    fn call(&self, method: &str) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(&format!("/v1beta/models/{MODEL}:{method}")))
            .header("x-goog-api-key", KEY)
    }

    async fn generate(&self, body: &Value) -> reqwest::Response {
        self.call("generateContent")
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

fn user(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

fn candidate_text(chunk: &Value) -> String {
    chunk["candidates"][0]["content"]["parts"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p["thought"] != true)
                .filter_map(|p| p["text"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

async fn google_error(resp: reqwest::Response) -> Value {
    let body: Value = resp.json().await.unwrap();
    let err = &body["error"];
    assert!(err["code"].is_u64(), "{body}");
    assert!(err["message"].is_string(), "{body}");
    assert!(err["status"].is_string(), "{body}");
    body
}

/// Splits an `alt=sse` body into its JSON chunks, checking the framing:
/// only `data: ` lines, each event ended by `\r\n\r\n`.
fn sse_chunks(text: &str) -> Vec<Value> {
    assert!(text.ends_with("\r\n\r\n"), "{text:?}");
    assert!(!text.contains("event:"), "{text}");
    text.split("\r\n\r\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data = e.strip_prefix("data: ").expect("data: line");
            assert!(!data.contains('\n'), "one line per event: {e:?}");
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn generate_content_shape() {
    let emu = start(Options::default()).await;
    let resp = emu.generate(&user("Reply with exactly: pong")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let cand = &body["candidates"][0];
    assert_eq!(cand["content"]["role"], "model");
    assert_eq!(cand["content"]["parts"], json!([{"text": "pong"}]));
    assert_eq!(cand["finishReason"], "STOP");
    assert_eq!(cand["index"], 0);
    let usage = &body["usageMetadata"];
    let prompt = usage["promptTokenCount"].as_u64().unwrap();
    assert_eq!(usage["candidatesTokenCount"], 1);
    assert_eq!(usage["totalTokenCount"], prompt + 1);
    assert_eq!(body["modelVersion"], MODEL);
    assert!(body["responseId"].is_string());
}

#[tokio::test]
async fn key_query_auth_and_errors() {
    let emu = start(Options {
        api_key: Some(KEY.to_owned()),
    })
    .await;
    let url = |q: &str| format!("{}/v1beta/models/{MODEL}:generateContent{q}", emu.base);
    let ok = emu
        .client
        .post(url(&format!("?key={KEY}")))
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    let missing = emu
        .client
        .post(url(""))
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        google_error(missing).await["error"]["status"],
        "PERMISSION_DENIED"
    );

    let wrong = emu
        .client
        .post(url("?key=AIza-wrong"))
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let body = google_error(wrong).await;
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["details"][0]["reason"], "API_KEY_INVALID");

    let token = emu
        .client
        .post(url(""))
        .bearer_auth("ya29.wrong")
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        google_error(token).await["error"]["status"],
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn sse_stream_framing_and_usage() {
    let emu = start(Options::default()).await;
    let resp = emu
        .call("streamGenerateContent?alt=sse")
        .json(&user("Reply with exactly: It is 3C and raining"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let chunks = sse_chunks(&resp.text().await.unwrap());
    assert_eq!(chunks.len(), 5);
    let text: String = chunks.iter().map(candidate_text).collect();
    assert_eq!(text, "It is 3C and raining");
    let (last, earlier) = chunks.split_last().unwrap();
    for c in earlier {
        assert!(c["candidates"][0].get("finishReason").is_none(), "{c}");
        assert_eq!(c["modelVersion"], MODEL);
        assert_eq!(c["responseId"], last["responseId"]);
    }
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    let usage = &last["usageMetadata"];
    assert_eq!(usage["candidatesTokenCount"], 5);
    assert_eq!(
        usage["totalTokenCount"].as_u64().unwrap(),
        usage["promptTokenCount"].as_u64().unwrap() + 5
    );
}

#[tokio::test]
async fn json_array_stream_without_alt() {
    let emu = start(Options::default()).await;
    let resp = emu
        .call("streamGenerateContent")
        .json(&user("Reply with exactly: one two three"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let text = resp.text().await.unwrap();
    assert!(text.starts_with('['), "{text}");
    assert!(text.ends_with(']'), "{text}");
    let chunks: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(chunks.len(), 3);
    let joined: String = chunks.iter().map(candidate_text).collect();
    assert_eq!(joined, "one two three");
    assert_eq!(chunks[2]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn count_tokens_matches_prompt() {
    let emu = start(Options::default()).await;
    let body = user("count these few words please");
    let generated: Value = emu.generate(&body).await.json().await.unwrap();
    let resp = emu.call("countTokens").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let count: Value = resp.json().await.unwrap();
    assert_eq!(
        count["totalTokens"],
        generated["usageMetadata"]["promptTokenCount"]
    );
    let wrapped = json!({"generateContentRequest": {"model": format!("models/{MODEL}"),
                                                     "contents": body["contents"]}});
    let again: Value = emu
        .call("countTokens")
        .json(&wrapped)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["totalTokens"], count["totalTokens"]);
}

#[tokio::test]
async fn function_call_then_response() {
    let emu = start(Options::default()).await;
    let tools = json!([{"functionDeclarations": [{"name": "get_weather",
        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}},
                       "required": ["city"]}}]}]);
    let mut body = user("What is the weather in Oslo?");
    body["tools"] = tools.clone();
    body["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY"}});
    let v: Value = emu.generate(&body).await.json().await.unwrap();
    let cand = &v["candidates"][0];
    assert_eq!(cand["finishReason"], "STOP");
    let call = &cand["content"]["parts"][0]["functionCall"];
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["args"], json!({"city": "test"}));

    let follow = json!({
        "contents": [
            {"role": "user", "parts": [{"text": "Use get_weather for Oslo"}]},
            {"role": "model", "parts": [{"functionCall": call}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                              "response": {"result": "3C rain"}}}]}
        ],
        "tools": tools,
    });
    let v: Value = emu.generate(&follow).await.json().await.unwrap();
    assert_eq!(candidate_text(&v), "Tool result received: 3C rain");

    // A functionResponse.response that is not an object is the API's 400.
    let mut bad = follow.clone();
    bad["contents"][2]["parts"][0]["functionResponse"]["response"] = json!("3C rain");
    let resp = emu.generate(&bad).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    google_error(resp).await;
}

#[tokio::test]
async fn validation_errors() {
    let emu = start(Options::default()).await;
    for body in [
        json!({}),
        json!({"contents": []}),
        json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}),
        json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}], "max_tokens": 5}),
    ] {
        let resp = emu.generate(&body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let err = google_error(resp).await;
        assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(err["error"]["code"], 400);
    }
}

#[tokio::test]
async fn max_tokens_stop_sequences_and_thoughts() {
    let emu = start(Options::default()).await;
    let mut body = user("Reply with exactly: one two three");
    body["generationConfig"] = json!({"maxOutputTokens": 2});
    let v: Value = emu.generate(&body).await.json().await.unwrap();
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(candidate_text(&v), "one two");

    body["generationConfig"] = json!({"stopSequences": [" three"], "candidateCount": 2});
    let v: Value = emu.generate(&body).await.json().await.unwrap();
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(v["candidates"][1]["index"], 1);
    assert_eq!(candidate_text(&v), "one two");

    body["generationConfig"] = json!({"thinkingConfig": {"includeThoughts": true}});
    let v: Value = emu.generate(&body).await.json().await.unwrap();
    let parts = v["candidates"][0]["content"]["parts"].as_array().unwrap();
    assert_eq!(parts[0]["thought"], true);
    assert_eq!(parts[1]["text"], "one two three");
    let usage = &v["usageMetadata"];
    let thoughts = usage["thoughtsTokenCount"].as_u64().unwrap();
    assert!(thoughts > 0);
    assert_eq!(
        usage["totalTokenCount"].as_u64().unwrap(),
        usage["promptTokenCount"].as_u64().unwrap() + 3 + thoughts
    );
}

#[tokio::test]
async fn fault_statuses_render_google_errors() {
    let emu = start(Options::default()).await;
    let resp = emu
        .call("generateContent")
        .header("x-emulator-fault", "status=429 retry_after=7")
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    let body = google_error(resp).await;
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    let details = body["error"]["details"].as_array().unwrap();
    assert!(details.iter().any(|d| d["retryDelay"] == "7s"), "{body}");

    let resp = emu
        .client
        .post(format!(
            "{}/v1beta/models/{MODEL}+status=503:generateContent",
            emu.base
        ))
        .header("x-goog-api-key", KEY)
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(google_error(resp).await["error"]["status"], "UNAVAILABLE");

    for (status, name) in [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (500, "INTERNAL"),
        (504, "DEADLINE_EXCEEDED"),
    ] {
        let resp = emu
            .generate(&user(&format!("hi [emulate: status={status}]")))
            .await;
        assert_eq!(resp.status().as_u16(), status);
        assert_eq!(google_error(resp).await["error"]["status"], name);
    }

    // On the JSON-array stream the error body is wrapped in a list.
    let resp = emu
        .call("streamGenerateContent")
        .header("x-emulator-fault", "status=500")
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body[0]["error"]["status"], "INTERNAL");
}

#[tokio::test]
async fn cut_after_and_error_after_on_sse() {
    let emu = start(Options::default()).await;
    let body = user("Reply with exactly: one two three four");
    let resp = emu
        .call("streamGenerateContent?alt=sse")
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
    assert_eq!(sse_chunks(&String::from_utf8(received).unwrap()).len(), 2);

    let resp = emu
        .call("streamGenerateContent?alt=sse")
        .header("x-emulator-fault", "error_after=1")
        .json(&body)
        .send()
        .await
        .unwrap();
    let chunks = sse_chunks(&resp.text().await.unwrap());
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1]["error"]["status"], "UNAVAILABLE");
}

#[tokio::test]
async fn v1_prefix_and_models() {
    let emu = start(Options::default()).await;
    let resp = emu
        .client
        .post(format!("{}/v1/models/{MODEL}:generateContent", emu.base))
        .header("x-goog-api-key", KEY)
        .json(&user("Reply with exactly: v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(candidate_text(&v), "v1");

    for path in ["/v1beta/models?pageSize=2", "/v1/models?pageSize=2"] {
        let list: Value = emu
            .client
            .get(format!("{}{path}", emu.base))
            .header("x-goog-api-key", KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let models = list["models"].as_array().unwrap();
        assert_eq!(models.len(), 2, "{list}");
        assert!(models[0]["name"].as_str().unwrap().starts_with("models/"));
        assert!(list["nextPageToken"].is_string());
    }
    let one: Value = emu
        .client
        .get(format!("{}/v1beta/models/{MODEL}?key={KEY}", emu.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["name"], format!("models/{MODEL}"));

    let tagged = emu
        .client
        .post(format!(
            "{}/v1/models/{MODEL}:streamGenerateContent?alt=sse",
            emu.base
        ))
        .header("x-goog-api-key", KEY)
        .header("x-emulator-fault", "tag=gem")
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(tagged.status(), StatusCode::OK);
    let last: Value = emu
        .client
        .get(format!("{}/_emulator/last/gem", emu.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        last["path"],
        format!("/v1/models/{MODEL}:streamGenerateContent?alt=sse")
    );
}

fn forecast_schema() -> Value {
    json!({"type": "object", "properties": {
        "city": {"type": "string"}, "high_c": {"type": "number"},
        "wind": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
        "note": {"type": "string"}},
        "required": ["city", "high_c", "wind"]})
}

#[tokio::test]
async fn json_output_fills_the_schema() {
    let emu = start(Options::default()).await;
    let mut body = user("Forecast for Bergen");
    body["generationConfig"] =
        json!({"responseMimeType": "application/json", "responseJsonSchema": forecast_schema()});
    let resp = emu.generate(&body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let out: Value = resp.json().await.unwrap();
    let text = candidate_text(&out);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"city": "test", "high_c": 1, "wind": 1})
    );
    assert_eq!(out["candidates"][0]["finishReason"], "STOP");
    // The OpenAPI form, snake_case, streamed: the same JSON as text.
    body["generationConfig"] = json!({"response_mime_type": "application/json",
        "response_schema": {"type": "OBJECT", "properties": {
            "city": {"type": "STRING"}, "high_c": {"type": "NUMBER", "nullable": true}},
            "required": ["city", "high_c"], "propertyOrdering": ["city", "high_c"]}});
    let resp = emu
        .call("streamGenerateContent?alt=sse")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let chunks = sse_chunks(&resp.text().await.unwrap());
    let streamed: String = chunks.iter().map(candidate_text).collect();
    assert_eq!(
        serde_json::from_str::<Value>(&streamed).unwrap(),
        json!({"city": "test", "high_c": 1})
    );
    // JSON mode without a schema: an object.
    body["generationConfig"] = json!({"responseMimeType": "application/json"});
    let out: Value = emu.generate(&body).await.json().await.unwrap();
    assert_eq!(candidate_text(&out), "{}");
}

#[tokio::test]
async fn json_output_is_validated_like_the_api() {
    let emu = start(Options::default()).await;
    let with = |config: Value| {
        let mut body = user("hi");
        body["generationConfig"] = config;
        body
    };
    let cases = [
        (
            with(json!({"responseMimeType": "application/json",
                "responseSchema": {"type": "OBJECT"}, "responseJsonSchema": forecast_schema()})),
            "cannot both be set",
        ),
        (
            with(json!({"responseMimeType": "application/json",
                "responseSchema": {"type": "OBJECT", "additionalProperties": false}})),
            "Unknown name \"additionalProperties\" at 'generation_config.response_schema'",
        ),
        (
            with(json!({"responseJsonSchema": forecast_schema()})),
            "must be `application/json`",
        ),
    ];
    for (body, message) in cases {
        let resp = emu.generate(&body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let err = google_error(resp).await;
        let got = err["error"]["message"].as_str().unwrap();
        assert!(got.contains(message), "{got}");
    }
    // Forced function calling with JSON output.
    let mut body = with(json!({"responseMimeType": "application/json"}));
    body["tools"] = json!([{"functionDeclarations": [{"name": "get_time"}]}]);
    body["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY"}});
    let resp = emu.generate(&body).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err = google_error(resp).await;
    assert_eq!(
        err["error"]["message"],
        "Forced function calling (ANY mode) with a response mime type: 'application/json' is \
         unsupported"
    );
    // AUTO with JSON is accepted.
    body["toolConfig"] = json!({"functionCallingConfig": {"mode": "AUTO"}});
    assert_eq!(emu.generate(&body).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn google_search_grounds_the_answer_in_bytes() {
    let emu = start(Options::default()).await;
    let mut body =
        user("Search: when did Café Nørd open?\nReply with exactly: Café Nørd opened in 2024.");
    body["tools"] = json!([{"googleSearch": {}}]);
    let resp = emu.generate(&body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    let cand = &v["candidates"][0];
    let text = candidate_text(&v);
    assert_eq!(text, "Based on a web search: Café Nørd opened in 2024.");
    let g = &cand["groundingMetadata"];
    assert_eq!(
        g["webSearchQueries"],
        json!(["Search: when did Café Nørd open?"])
    );
    assert!(g["searchEntryPoint"]["renderedContent"].is_string());
    let chunks = g["groundingChunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 2);
    assert!(
        chunks[0]["web"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("https://vertexaisearch.cloud.google.com/grounding-api-redirect/")
    );
    assert_eq!(chunks[0]["web"]["title"], "example.com");
    let seg = &g["groundingSupports"][0]["segment"];
    // Byte offsets: the cited text is 25 characters but 27 bytes.
    let (start, end) = (
        usize::try_from(seg["startIndex"].as_u64().unwrap()).unwrap(),
        usize::try_from(seg["endIndex"].as_u64().unwrap()).unwrap(),
    );
    assert_eq!(end - start, 27);
    assert_eq!(
        &text.as_bytes()[start..end],
        seg["text"].as_str().unwrap().as_bytes()
    );
    assert_eq!(seg["text"], "Café Nørd opened in 2024.");
    assert!(seg.get("partIndex").is_none());
    assert_eq!(
        g["groundingSupports"][0]["groundingChunkIndices"],
        json!([0, 1])
    );
    let u = &v["usageMetadata"];
    assert_eq!(u["toolUsePromptTokenCount"], 64);
    assert_eq!(
        u["totalTokenCount"].as_u64().unwrap(),
        u["promptTokenCount"].as_u64().unwrap() + u["candidatesTokenCount"].as_u64().unwrap() + 64
    );

    // The stream carries it on the last chunk, over the concatenated text.
    let text = emu
        .call("streamGenerateContent?alt=sse")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let chunks = sse_chunks(&text);
    let (last, earlier) = chunks.split_last().unwrap();
    assert!(
        earlier
            .iter()
            .all(|c| c["candidates"][0].get("groundingMetadata").is_none())
    );
    assert_eq!(
        last["candidates"][0]["groundingMetadata"]["groundingSupports"][0]["segment"]["endIndex"],
        end
    );
    let all: String = chunks.iter().map(candidate_text).collect();
    assert_eq!(all, "Based on a web search: Café Nørd opened in 2024.");

    // No mention of searching: no grounding.
    let mut plain = user("Reply with exactly: hi");
    plain["tools"] = json!([{"google_search": {}}]);
    let v: Value = emu.generate(&plain).await.json().await.unwrap();
    assert!(v["candidates"][0].get("groundingMetadata").is_none());
    assert!(v["usageMetadata"].get("toolUsePromptTokenCount").is_none());
}

#[tokio::test]
async fn google_search_with_functions_follows_the_model_rules() {
    let emu = start(Options::default()).await;
    let decl = json!({"functionDeclarations": [{"name": "get_time"}]});
    let mut body = user("search the time");
    body["tools"] = json!([decl.clone(), {"googleSearch": {}}]);
    // Gemini 2.x: the mix is refused.
    let resp = emu.generate(&body).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err = google_error(resp).await;
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("function calling is unsupported")
    );
    // Gemini 3: allowed with includeServerSideToolInvocations, refused without.
    let call = |body: &Value| {
        emu.client
            .post(emu.url("/v1beta/models/gemini-3-pro-preview:generateContent"))
            .header("x-goog-api-key", KEY)
            .json(body)
            .send()
    };
    let resp = call(&body).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err = google_error(resp).await;
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("include_server_side_tool_invocations")
    );
    body["tools"] = json!([{"functionDeclarations": [{"name": "get_time"}], "googleSearch": {}}]);
    body["toolConfig"] = json!({"includeServerSideToolInvocations": true});
    let resp = call(&body).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["candidates"][0]["groundingMetadata"]["webSearchQueries"],
        json!(["search the time"])
    );
    // The 1.5-era tool and a calling config without functions are refused.
    for bad in [
        json!({"contents": body["contents"], "tools": [{"googleSearchRetrieval": {}}]}),
        json!({"contents": body["contents"], "tools": [{"googleSearch": {}}],
               "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}}),
        json!({"contents": body["contents"], "tools": [{"googleSearch": {}, "bogus": {}}]}),
    ] {
        let resp = emu.generate(&bad).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        google_error(resp).await;
    }
}

#[tokio::test]
async fn google_search_with_a_json_schema_answers_the_json_alone() {
    let emu = start(Options::default()).await;
    let mut body = user("Search for the forecast in Bergen.");
    body["tools"] = json!([{"googleSearch": {}}]);
    body["generationConfig"] =
        json!({"responseMimeType": "application/json", "responseJsonSchema": forecast_schema()});
    let resp = emu.generate(&body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    // Grounded (the search ran), but the text is the JSON alone, with no cited span.
    assert_eq!(
        serde_json::from_str::<Value>(&candidate_text(&v)).unwrap(),
        json!({"city": "test", "high_c": 1, "wind": 1})
    );
    let g = &v["candidates"][0]["groundingMetadata"];
    assert_eq!(
        g["webSearchQueries"],
        json!(["Search for the forecast in Bergen."])
    );
    assert_eq!(g["groundingChunks"].as_array().unwrap().len(), 2);
    assert!(
        g.get("groundingSupports")
            .is_none_or(|s| s.as_array().is_some_and(Vec::is_empty)),
        "{g}"
    );
    assert_eq!(v["usageMetadata"]["toolUsePromptTokenCount"], 64);
}

fn embed_request(text: &str, dims: Option<u64>) -> Value {
    let mut r =
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]}});
    if let Some(d) = dims {
        r["task_type"] = json!("RETRIEVAL_DOCUMENT");
        r["output_dimensionality"] = json!(d);
    }
    r
}

fn norm(values: &Value) -> f64 {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap().powi(2))
        .sum::<f64>()
        .sqrt()
}

#[tokio::test]
async fn embeddings_are_deterministic_full_length_unit_vectors_and_shortened_prefixes() {
    let emu = start(Options::default()).await;
    let url = |m: &str| emu.url(&format!("/v1beta/models/gemini-embedding-001:{m}"));
    let single: Value = emu
        .client
        .post(url("embedContent"))
        .header("x-goog-api-key", KEY)
        .json(&embed_request("red apple", None))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let full = &single["embedding"]["values"];
    assert_eq!(full.as_array().unwrap().len(), 3072);
    assert!(
        (norm(full) - 1.0).abs() < 1e-3,
        "the full length is normalised"
    );
    assert!(
        single.get("usageMetadata").is_none(),
        "Gemini reports no usage"
    );

    let batch = json!({"requests": [
        embed_request("red apple", Some(4)),
        embed_request("green pear", Some(4)),
        embed_request("red apple", None),
    ]});
    let resp = emu
        .client
        .post(emu.url("/v1/models/gemini-embedding-001:batchEmbedContents"))
        .header("x-goog-api-key", KEY)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let out: Value = resp.json().await.unwrap();
    let e = out["embeddings"].as_array().unwrap();
    assert_eq!(e.len(), 3);
    assert_eq!(e[0]["values"].as_array().unwrap().len(), 4);
    assert_eq!(e[2]["values"], *full, "the same text gives the same vector");
    assert_ne!(e[0]["values"], e[1]["values"]);
    for i in 0..4 {
        assert_eq!(e[0]["values"][i], full[i], "a shortened vector is a prefix");
    }
    assert!(norm(&e[0]["values"]) < 0.99, "and is not normalised");
}

#[tokio::test]
async fn embedding_batches_hold_at_most_one_hundred_requests_and_name_the_url_model() {
    let emu = start(Options::default()).await;
    let url = emu.url("/v1beta/models/gemini-embedding-001:batchEmbedContents");
    let over = json!({"requests": vec![embed_request("x", Some(2)); 101]});
    let resp = emu
        .client
        .post(&url)
        .header("x-goog-api-key", KEY)
        .json(&over)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = google_error(resp).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 100 requests can be in one batch"),
        "{body}"
    );
    let hundred = json!({"requests": vec![embed_request("x", Some(2)); 100]});
    let ok = emu
        .client
        .post(&url)
        .header("x-goog-api-key", KEY)
        .json(&hundred)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let mut other = embed_request("x", None);
    other["model"] = json!("models/another-model");
    for bad in [
        json!({"requests": [other]}),
        json!({"requests": []}),
        json!({"requests": [{"content": {"parts": [{"text": "x"}]}, "bogus": 1}]}),
    ] {
        let resp = emu
            .client
            .post(&url)
            .header("x-goog-api-key", KEY)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        google_error(resp).await;
    }
    let tagged = emu
        .client
        .post(emu.url("/v1beta/models/gemini-embedding-001+status=503:batchEmbedContents"))
        .header("x-goog-api-key", KEY)
        .json(&json!({"requests": [embed_request("x", None)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(tagged.status(), StatusCode::SERVICE_UNAVAILABLE);
}
