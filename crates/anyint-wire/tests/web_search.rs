//! Golden tests for hosted web search on translated routes (`shared/protocols/web-search.md`),
//! through the same chain the gateway runs (`anyint_wire::translate`). Fixtures in
//! `tests/fixtures/web_search/`:
//! - `request.json`, a Responses request with `web_search` (as Codex sends it, plus filters and
//!   a location) and a replayed `web_search_call` → `request.anthropic.json` and
//!   `request.gemini3.json` (the upstream bodies);
//! - `anthropic_response.json` / `gemini_response.json` → `*.responses.json` (the Response
//!   object a client gets);
//! - `anthropic_stream.sse` / `gemini_stream.sse` → `*.responses.sse` (exact client bytes,
//!   also checked against the event grammar).
//!
//! `UPDATE_GOLDEN=1 cargo test -p anyint-wire --test web_search` rewrites the expected files.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "golden helpers are test code: a missing or unreadable fixture must fail the test"
)]

use std::fs;
use std::path::{Path, PathBuf};

use anyint_wire::canonical::EncodeOptions;
use anyint_wire::responses::{Echo, check_stream};
use anyint_wire::sse::SseSplitter;
use anyint_wire::translate::{self, ClientShape, DecodeOptions, Kind, Translator};
use serde_json::{Value, json};

fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/web_search")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    fs::read(path(name)).unwrap_or_else(|_| panic!("{name} is missing"))
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

fn golden_json(name: &str, actual: &Value) {
    if updating() {
        let mut text = serde_json::to_string_pretty(actual).unwrap();
        text.push('\n');
        fs::write(path(name), text).unwrap();
        return;
    }
    let expected: Value = serde_json::from_slice(&read(name)).unwrap();
    assert_eq!(
        actual, &expected,
        "{name} differs (rerun with UPDATE_GOLDEN=1 if intended)"
    );
}

fn golden_text(name: &str, actual: &str) {
    if updating() {
        fs::write(path(name), actual).unwrap();
        return;
    }
    let expected = String::from_utf8(read(name)).unwrap();
    assert!(
        actual == expected,
        "{name} differs (rerun with UPDATE_GOLDEN=1 if intended)\n--- actual\n{actual}"
    );
}

fn echo() -> Echo {
    Echo::new(&read("request.json"), "resp_ws", 1_767_225_600).unwrap()
}

/// A route that serves web search; also what answers to the fixture's request decode with
/// (it asked for a search, and for no limit on parallel calls).
const SERVED: DecodeOptions = DecodeOptions {
    web_search: true,
    first_tool_call_only: false,
};

fn upstream_body(model: &str, kind: Kind) -> Value {
    let echo = echo();
    let mut req = translate::decode_request_with(
        ClientShape::Responses { echo: &echo },
        &read("request.json"),
        SERVED,
    )
    .unwrap();
    model.clone_into(&mut req.model);
    serde_json::from_slice(&translate::encode_request(kind, &req).unwrap()).unwrap()
}

#[test]
fn requests_carry_the_search_tool_and_drop_replayed_searches() {
    let anthropic = upstream_body("claude-sonnet-4-5", Kind::Anthropic);
    golden_json("request.anthropic.json", &anthropic);
    let tools = anthropic["tools"].as_array().unwrap();
    assert_eq!(
        tools.last().unwrap(),
        &json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 3,
                "allowed_domains": ["github.com"],
                "user_location": {"type": "approximate", "city": "Zürich", "country": "CH", "timezone": "Europe/Zurich"}})
    );
    // The replayed search is gone; the answer after it stays.
    let text = anthropic["messages"].to_string();
    assert!(!text.contains("tokio latest release"), "{text}");
    assert!(text.contains("Tokio 1.47 is the latest."), "{text}");

    // Gemini has no allow-list: the filter is refused, never dropped.
    let echo = echo();
    let req = translate::decode_request_with(
        ClientShape::Responses { echo: &echo },
        &read("request.json"),
        SERVED,
    )
    .unwrap();
    // Its answers decode with the options it was decoded with.
    assert_eq!(DecodeOptions::for_request(&req), SERVED);
    let e = translate::encode_request(Kind::Gemini, &req).unwrap_err();
    assert_eq!(e.param_path(), Some("tools[1].filters.allowed_domains"));

    // Without the filter, Gemini 3 takes search and functions in one tool.
    let mut body: Value = serde_json::from_slice(&read("request.json")).unwrap();
    body["tools"][1]
        .as_object_mut()
        .unwrap()
        .remove("filters")
        .unwrap();
    let bytes = body.to_string().into_bytes();
    let mut req =
        translate::decode_request_with(ClientShape::Responses { echo: &echo }, &bytes, SERVED)
            .unwrap();
    req.model = "gemini-3-pro-preview".into();
    let gemini: Value =
        serde_json::from_slice(&translate::encode_request(Kind::Gemini, &req).unwrap()).unwrap();
    golden_json("request.gemini3.json", &gemini);
    assert_eq!(gemini["tools"][0]["googleSearch"], json!({}));
    assert_eq!(
        gemini["toolConfig"]["includeServerSideToolInvocations"],
        true
    );
    // Gemini 2.5 cannot mix them: the search is dropped (the gateway says so).
    req.model = "gemini-2.5-flash".into();
    assert!(anyint_wire::gemini::drops_web_search(&req));
    let old: Value =
        serde_json::from_slice(&translate::encode_request(Kind::Gemini, &req).unwrap()).unwrap();
    assert!(old["tools"][0].get("googleSearch").is_none(), "{old}");

    // Without the provider setting it is today's refusal, naming Codex's switch.
    let e = translate::decode_request(ClientShape::Responses { echo: &echo }, &bytes).unwrap_err();
    assert_eq!(e.param_path(), Some("tools[1]"));
    assert!(e.message.contains("web_search = \"disabled\""), "{e}");
    // And an OpenAI upstream never gets it.
    let e = translate::encode_request(Kind::OpenAi, &req).unwrap_err();
    assert_eq!(e.param_path(), Some("tools[1]"));
}

fn response(upstream: Kind, fixture: &str) -> Value {
    let mut canonical = translate::decode_response(upstream, &read(fixture), SERVED).unwrap();
    canonical.model = "public-model".into();
    let echo = echo();
    let bytes = translate::encode_response(ClientShape::Responses { echo: &echo }, &canonical);
    serde_json::from_slice(&bytes).unwrap()
}

/// A message's text and its cited spans with their URLs.
type Cited = (String, Vec<(String, String)>);

/// `(text, [(cited span, url)])` of each message's output_text, and each search's status and
/// query.
fn summary(out: &Value) -> (Vec<Cited>, Vec<(String, String)>) {
    let mut texts = Vec::new();
    let mut searches = Vec::new();
    for item in out["output"].as_array().unwrap() {
        match item["type"].as_str().unwrap() {
            "message" => {
                let part = &item["content"][0];
                let text = part["text"].as_str().unwrap().to_owned();
                let cited = part["annotations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| {
                        let (s, e) = (
                            usize::try_from(a["start_index"].as_u64().unwrap()).unwrap(),
                            usize::try_from(a["end_index"].as_u64().unwrap()).unwrap(),
                        );
                        let span: String = text.chars().skip(s).take(e - s).collect();
                        (span, a["url"].as_str().unwrap().to_owned())
                    })
                    .collect();
                texts.push((text, cited));
            }
            "web_search_call" => searches.push((
                item["status"].as_str().unwrap().to_owned(),
                item["action"]["query"].as_str().unwrap_or("").to_owned(),
            )),
            "reasoning" => {}
            other => panic!("unexpected item {other}"),
        }
    }
    (texts, searches)
}

#[test]
fn anthropic_searches_and_citations_become_items_and_annotations() {
    let out = response(Kind::Anthropic, "anthropic_response.json");
    golden_json("anthropic_response.responses.json", &out);
    let types: Vec<&str> = out["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["web_search_call", "message", "web_search_call", "message"]
    );
    let (texts, searches) = summary(&out);
    assert_eq!(
        searches,
        [
            ("completed".to_owned(), "tokio releases".to_owned()),
            ("failed".to_owned(), "tokio 1.45".to_owned())
        ]
    );
    // The cited block follows 39 characters (with `–`, 3 bytes) of uncited text.
    assert_eq!(
        texts[0].1,
        [
            (
                "Tokio 1.46 kam vor 1.47 heraus.".to_owned(),
                "https://github.com/tokio-rs/tokio/releases".to_owned()
            ),
            (
                "Tokio 1.46 kam vor 1.47 heraus.".to_owned(),
                "https://tokio.rs/blog".to_owned()
            )
        ]
    );
    assert_eq!(
        out["output"][1]["content"][0]["annotations"][1]["title"],
        ""
    );
    assert_eq!(
        out["output"][0]["action"]["sources"][1]["url"],
        "https://tokio.rs/blog"
    );
    // Nothing opaque reaches the client.
    let text = out.to_string();
    assert!(!text.contains("EqQB") && !text.contains("Eo8B"), "{text}");
    assert_eq!(out["usage"]["input_tokens"], 9120);
}

#[test]
fn gemini_grounding_becomes_a_search_item_and_character_annotations() {
    let out = response(Kind::Gemini, "gemini_response.json");
    golden_json("gemini_response.responses.json", &out);
    let (texts, searches) = summary(&out);
    assert_eq!(
        searches,
        [("completed".to_owned(), "Café Nørd Eröffnung".to_owned())]
    );
    // Bytes 4..30 of the part are characters 4..27.
    let span = "Café Nørd öffnete 2024.".to_owned();
    assert_eq!(
        texts,
        [(
            "Das Café Nørd öffnete 2024.".to_owned(),
            vec![
                (
                    span.clone(),
                    "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbC".to_owned()
                ),
                (
                    span,
                    "https://vertexaisearch.cloud.google.com/grounding-api-redirect/DeF".to_owned()
                )
            ]
        )]
    );
    // The search result tokens are input.
    assert_eq!(out["usage"]["input_tokens"], 322);
    let types: Vec<&str> = out["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["reasoning", "web_search_call", "message"]);
}

fn stream(upstream: Kind, fixture: &str) -> String {
    let echo = echo();
    let opts = EncodeOptions {
        model: "public-model".into(),
        created: 1_767_225_600,
        ..EncodeOptions::default()
    };
    let mut t = Translator::new(
        upstream,
        SERVED,
        ClientShape::Responses { echo: &echo },
        opts,
    );
    let mut split = SseSplitter::new();
    let mut frames = split.push(&read(fixture));
    frames.extend(split.finish());
    let mut out = Vec::new();
    for f in &frames {
        t.feed(f, &mut out).unwrap();
    }
    t.finish(&mut out);
    assert!(t.is_complete());
    String::from_utf8(out).unwrap()
}

fn event_types(sse: &str) -> Vec<String> {
    SseSplitter::new()
        .push(sse.as_bytes())
        .iter()
        .map(|f| f.event.clone().unwrap())
        .collect()
}

#[test]
fn an_anthropic_stream_shows_each_search_as_it_runs() {
    let sse = stream(Kind::Anthropic, "anthropic_stream.sse");
    check_stream(sse.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{sse}"));
    golden_text("anthropic_stream.responses.sse", &sse);
    let types = event_types(&sse);
    let first_search: Vec<&str> = types.iter().skip(2).take(5).map(String::as_str).collect();
    assert_eq!(
        first_search,
        [
            "response.output_item.added",
            "response.web_search_call.in_progress",
            "response.web_search_call.searching",
            "response.web_search_call.completed",
            "response.output_item.done"
        ]
    );
    let annotation = types
        .iter()
        .position(|t| t == "response.output_text.annotation.added")
        .unwrap();
    assert_eq!(types[annotation - 1], "response.output_text.delta");
    let done = SseSplitter::new().push(sse.as_bytes()).pop().unwrap();
    let done: Value = serde_json::from_str(&done.data).unwrap();
    assert_eq!(done["type"], "response.completed");
    let (texts, searches) = summary(&done["response"]);
    assert_eq!(
        texts,
        [(
            "Laut Suche – Tokio 1.46 kam vor 1.47.".to_owned(),
            vec![(
                "Tokio 1.46 kam vor 1.47.".to_owned(),
                "https://github.com/tokio-rs/tokio/releases".to_owned()
            )]
        )]
    );
    // The turn paused before the second search's results: it is failed, with its query.
    assert_eq!(
        searches,
        [
            ("completed".to_owned(), "tokio releases".to_owned()),
            ("failed".to_owned(), "tokio 1.45".to_owned())
        ]
    );
}

#[test]
fn a_gemini_stream_reports_its_search_after_the_text() {
    let sse = stream(Kind::Gemini, "gemini_stream.sse");
    check_stream(sse.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{sse}"));
    golden_text("gemini_stream.responses.sse", &sse);
    let types = event_types(&sse);
    let tail: Vec<&str> = types
        .iter()
        .rev()
        .take(10)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "response.output_text.annotation.added",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.web_search_call.in_progress",
            "response.web_search_call.searching",
            "response.web_search_call.completed",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let done = SseSplitter::new().push(sse.as_bytes()).pop().unwrap();
    let done: Value = serde_json::from_str(&done.data).unwrap();
    let (texts, searches) = summary(&done["response"]);
    assert_eq!(texts[0].0, "Das Café Nørd öffnete 2024.");
    assert_eq!(texts[0].1.len(), 2);
    assert!(
        texts[0]
            .1
            .iter()
            .all(|(span, _)| span == "Café Nørd öffnete 2024.")
    );
    assert_eq!(
        searches,
        [("completed".to_owned(), "Café Nørd Eröffnung".to_owned())]
    );
    assert_eq!(done["response"]["usage"]["input_tokens"], 322);
}
