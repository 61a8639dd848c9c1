//! Hosted web search for Responses clients on translated routes: served by Anthropic's web
//! search tool and Gemini's Google Search grounding where the provider has `web_search = true`
//! (the emulator searches when the user text says "search"), answered with `web_search_call`
//! items and `url_citation` annotations, each search metered and priced; refused with the
//! usual 400 elsewhere.

use anyint_wire::responses::check_stream;
use serde_json::{Value, json};

use crate::harness::{TestGateway, request_id};

/// What the emulator is asked: it searches ("search"), then answers exactly this text, whose
/// characters and bytes differ.
const ASK: &str = "Search the web for Café Nørd\nReply with exactly: Café Nørd opened in 2024.";
const ANSWER: &str = "Café Nørd opened in 2024.";
const QUERY: &str = "Search the web for Café Nørd";

/// Micro-units per search of the searching models.
const PER_SEARCH: i64 = 10_000;

/// The test gateway plus providers that serve web search and models on them: `claude-search`,
/// `gemini-search` (Gemini 2.5) and `gemini3-search` (Gemini 3), priced per search only.
async fn gateway() -> TestGateway {
    TestGateway::builder()
        .toml(
            r#"
[[providers]]
name = "emu-anthropic-search"
kind = "anthropic"
base_url = "{emulator}"
api_key = "test-upstream-key"
web_search = true

[[providers]]
name = "emu-gemini-search"
kind = "gemini"
base_url = "{emulator}/v1beta"
api_key = "test-upstream-key"
web_search = true

[[models]]
id = "claude-search"
routes = [{ provider = "emu-anthropic-search", upstream_model = "claude-sonnet-4-5" }]
price = { per_web_search = 10000 }

[[models]]
id = "gemini-search"
routes = [{ provider = "emu-gemini-search", upstream_model = "gemini-2.5-flash" }]
price = { per_web_search = 10000 }

[[models]]
id = "gemini3-search"
routes = [{ provider = "emu-gemini-search", upstream_model = "gemini-3-pro-preview" }]
price = { per_web_search = 10000 }
"#,
        )
        .start()
        .await
}

async fn create(t: &TestGateway, body: &Value) -> reqwest::Response {
    t.post("/openai/v1/responses")
        .json(body)
        .send()
        .await
        .unwrap()
}

fn ask(model: &str) -> Value {
    json!({"model": model, "input": ASK, "store": false,
           "tools": [{"type": "web_search"}],
           "include": ["web_search_call.action.sources"]})
}

fn items<'v>(response: &'v Value, kind: &str) -> Vec<&'v Value> {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == kind)
        .collect()
}

/// The one message's text and its annotations as (cited text, url).
fn cited(response: &Value) -> (String, Vec<(String, String)>) {
    let messages = items(response, "message");
    assert_eq!(messages.len(), 1, "{response}");
    let part = &messages[0]["content"][0];
    let text = part["text"].as_str().unwrap().to_owned();
    let notes = part["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["type"], "url_citation");
            let at = |k: &str| usize::try_from(a[k].as_u64().unwrap()).unwrap();
            let span: String = text
                .chars()
                .skip(at("start_index"))
                .take(at("end_index") - at("start_index"))
                .collect();
            (span, a["url"].as_str().unwrap().to_owned())
        })
        .collect();
    (text, notes)
}

/// Checks a response that searched once and cited both results over the answer.
fn assert_searched(model: &str, response: &Value) {
    let searches = items(response, "web_search_call");
    assert_eq!(searches.len(), 1, "{model}: {response}");
    let ws = searches[0];
    assert!(ws["id"].as_str().unwrap().starts_with("ws_"), "{model}");
    assert_eq!(ws["status"], "completed", "{model}");
    assert_eq!(ws["action"]["type"], "search", "{model}");
    assert_eq!(ws["action"]["query"], QUERY, "{model}");
    let sources = ws["action"]["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2, "{model}");
    let (text, notes) = cited(response);
    assert_eq!(text, format!("Based on a web search: {ANSWER}"), "{model}");
    assert_eq!(notes.len(), 2, "{model}: {response}");
    for ((span, url), source) in notes.iter().zip(sources) {
        assert_eq!(span, ANSWER, "{model}: character offsets");
        assert_eq!(url, source["url"].as_str().unwrap(), "{model}");
    }
}

#[tokio::test]
async fn claude_and_gemini_search_cite_and_meter_the_search() {
    let t = gateway().await;
    for model in ["claude-search", "gemini-search"] {
        let resp = create(&t, &ask(model)).await;
        assert_eq!(resp.status(), 200, "{model}");
        let rid = request_id(&resp);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["status"], "completed", "{model}");
        assert_searched(model, &v);
        // Search first, then the answer.
        assert_eq!(v["output"][0]["type"], "web_search_call", "{model}");
        let rows = t.usage(&rid).await;
        assert_eq!(rows.len(), 1, "{model}");
        assert_eq!(rows[0].web_searches, 1, "{model}");
        assert_eq!(rows[0].cost_micros, PER_SEARCH, "{model}");
        assert_eq!(
            rows[0].prompt_tokens,
            v["usage"]["input_tokens"].as_i64().unwrap(),
            "{model}"
        );
    }
    // Sources only when `include` asks for them.
    let mut body = ask("claude-search");
    body.as_object_mut().unwrap().remove("include");
    let v: Value = create(&t, &body).await.json().await.unwrap();
    let ws = items(&v, "web_search_call");
    assert!(ws[0]["action"].get("sources").is_none(), "{v}");
}

#[tokio::test]
async fn streams_show_the_search_and_follow_the_grammar() {
    let t = gateway().await;
    for model in ["claude-search", "gemini-search"] {
        let mut body = ask(model);
        body["stream"] = json!(true);
        let resp = create(&t, &body).await;
        assert_eq!(resp.status(), 200, "{model}");
        let rid = request_id(&resp);
        let text = resp.text().await.unwrap();
        check_stream(text.as_bytes()).unwrap_or_else(|e| panic!("{model}: {e}\n{text}"));
        let events: Vec<Value> = text
            .split("\n\n")
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        for k in [
            "response.web_search_call.in_progress",
            "response.web_search_call.searching",
            "response.web_search_call.completed",
            "response.output_text.annotation.added",
        ] {
            assert!(kinds.contains(&k), "{model}: no {k}");
        }
        let last = events.last().unwrap();
        assert_eq!(last["type"], "response.completed", "{model}");
        assert_searched(model, &last["response"]);
        let rows = t.usage(&rid).await;
        assert_eq!(
            (
                rows[0].web_searches,
                rows[0].cost_micros,
                rows[0].outcome.as_str()
            ),
            (1, PER_SEARCH, "ok"),
            "{model}"
        );
    }
}

#[tokio::test]
async fn providers_without_the_setting_still_refuse_naming_codexs_switch() {
    let t = gateway().await;
    for model in ["claude", "gemini", "gpt-4o-mini"] {
        for stream in [false, true] {
            let mut body = ask(model);
            body["stream"] = json!(stream);
            let resp = create(&t, &body).await;
            assert_eq!(resp.status(), 400, "{model}");
            let v: Value = resp.json().await.unwrap();
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(
                msg.starts_with("the built-in tool `web_search` is not supported"),
                "{model}: {msg}"
            );
            assert!(msg.contains("web_search = \"disabled\""), "{model}: {msg}");
            assert_eq!(v["error"]["param"], "tools", "{model}");
        }
    }
    // Other built-in tools stay refused where search is served.
    let mut body = ask("claude-search");
    body["tools"] =
        json!([{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["v"]}]);
    let resp = create(&t, &body).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("file_search")
    );
    // input_tokens counts a search request only where it is served.
    for (model, status) in [("claude-search", 200), ("claude", 400)] {
        let resp = t
            .post("/openai/v1/responses/input_tokens")
            .json(&ask(model))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{model}");
    }
}

/// A Codex-style turn: function tools beside `web_search`, and a replayed search (no id, no
/// sources) in the history.
fn codex_turn(model: &str) -> Value {
    json!({
        "model": model, "store": false, "stream": false, "tool_choice": "auto",
        "tools": [
            {"type": "function", "name": "shell", "parameters": {"type": "object",
             "properties": {"command": {"type": "string"}}, "required": ["command"]}},
            {"type": "web_search", "external_web_access": false}
        ],
        "input": [
            {"role": "user", "content": "search for tokio"},
            {"type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "tokio"}},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Found it.", "annotations": []}]},
            {"role": "user", "content": [{"type": "input_text", "text": "Search again please"}]}
        ]
    })
}

#[tokio::test]
async fn codex_turns_replay_searches_and_mix_with_function_tools() {
    let t = gateway().await;
    for model in ["claude-search", "gemini3-search"] {
        let resp = create(&t, &codex_turn(model)).await;
        assert_eq!(resp.status(), 200, "{model}");
        assert!(resp.headers().get("x-anyint-warning").is_none(), "{model}");
        let v: Value = resp.json().await.unwrap();
        let ws = items(&v, "web_search_call");
        assert_eq!(ws.len(), 1, "{model}: {v}");
        assert_eq!(ws[0]["action"]["query"], "Search again please", "{model}");
    }
    // Gemini 2.5 cannot combine Google Search with functions: answered without the search,
    // and the header says why.
    let resp = create(&t, &codex_turn("gemini-search")).await;
    assert_eq!(resp.status(), 200);
    let warning = resp.headers()["x-anyint-warning"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(warning.contains("web_search"), "{warning}");
    let rid = request_id(&resp);
    let v: Value = resp.json().await.unwrap();
    assert!(items(&v, "web_search_call").is_empty(), "{v}");
    assert_eq!(t.usage(&rid).await[0].web_searches, 0);
}

#[tokio::test]
async fn a_stored_search_continues_with_previous_response_id() {
    let t = gateway().await;
    for model in ["claude-search", "gemini-search"] {
        let mut first = ask(model);
        first["store"] = json!(true);
        let v: Value = create(&t, &first).await.json().await.unwrap();
        let id = v["id"].as_str().unwrap();
        // The stored output (with its web_search_call) is replayed as history and dropped.
        let next = json!({"model": model, "previous_response_id": id,
                          "input": "Reply with exactly: thanks", "tools": [{"type": "web_search"}]});
        let resp = create(&t, &next).await;
        assert_eq!(resp.status(), 200, "{model}");
        let v: Value = resp.json().await.unwrap();
        assert!(items(&v, "web_search_call").is_empty(), "{model}: {v}");
        assert_eq!(cited(&v).0, "thanks", "{model}");
        let listed: Value = t
            .get(&format!("/openai/v1/responses/{id}/input_items?order=asc"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{model}");
    }
}

/// Structured output and hosted search together: the search runs, and the answer is the JSON
/// alone (the emulator writes no lead-in that would break it), with no citations into it.
#[tokio::test]
async fn structured_output_with_search_answers_the_json() {
    let t = gateway().await;
    let schema = json!({"type": "object", "additionalProperties": false,
        "properties": {"city": {"type": "string"}, "high_c": {"type": "number"}},
        "required": ["city", "high_c"]});
    for model in ["claude-search", "gemini3-search"] {
        let body = json!({"model": model, "store": false,
            "input": "Search for the forecast in Bergen.",
            "tools": [{"type": "web_search"}],
            "text": {"format": {"type": "json_schema", "name": "forecast", "schema": schema,
                                "strict": true}}});
        let resp = create(&t, &body).await;
        assert_eq!(resp.status(), 200, "{model}");
        let rid = request_id(&resp);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(items(&v, "web_search_call").len(), 1, "{model}: {v}");
        let (text, notes) = cited(&v);
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"city": "test", "high_c": 1}),
            "{model}"
        );
        assert!(notes.is_empty(), "{model}: {v}");
        assert_eq!(t.usage(&rid).await[0].web_searches, 1, "{model}");
    }
}

/// A provider with `web_search = true` decodes the request with its search; the answer is
/// still decoded for what the request asked: `parallel_tool_calls: false` keeps Gemini's
/// first call only, with the search tool offered or not, streamed or not.
#[tokio::test]
async fn parallel_tool_calls_false_holds_on_a_provider_that_serves_search() {
    let t = gateway().await;
    let function = |name: &str| {
        json!({"type": "function", "name": name,
               "parameters": {"type": "object", "properties": {}}})
    };
    let calls = |response: &Value| -> Vec<String> {
        items(response, "function_call")
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for (model, search) in [("gemini3-search", true), ("gemini-search", false)] {
        let mut tools = vec![function("get_weather"), function("get_time")];
        if search {
            tools.push(json!({"type": "web_search"}));
        }
        let mut body = json!({"model": model, "store": false, "tools": tools,
            "input": "Use get_weather and get_time, please."});
        // Both calls by default: the single call below is the gateway's doing.
        let v: Value = create(&t, &body).await.json().await.unwrap();
        assert_eq!(calls(&v), ["get_weather", "get_time"], "{model}: {v}");
        body["parallel_tool_calls"] = json!(false);
        let resp = create(&t, &body).await;
        assert_eq!(resp.status(), 200, "{model}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(calls(&v), ["get_weather"], "{model}: {v}");
        body["stream"] = json!(true);
        let text = create(&t, &body).await.text().await.unwrap();
        check_stream(text.as_bytes()).unwrap_or_else(|e| panic!("{model}: {e}\n{text}"));
        let last: Value = text
            .split("\n\n")
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            .last()
            .map(|d| serde_json::from_str(d).unwrap())
            .unwrap();
        assert_eq!(last["type"], "response.completed", "{model}");
        assert_eq!(calls(&last["response"]), ["get_weather"], "{model}: {text}");
    }
}
