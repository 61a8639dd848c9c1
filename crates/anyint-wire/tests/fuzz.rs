//! Fuzzing that stays in the suite: every decoder in this crate, fed arbitrary bytes, arbitrary
//! JSON and mutations of the fixtures' valid bodies and streams, must return (`Ok` or a
//! `DecodeError`), never panic. What decodes is encoded again for every kind, so an encoder
//! meeting a strange but valid canonical value is covered too.
//!
//! Mutations of real bodies reach the deep paths that random JSON never does (a tool call's
//! arguments, a content part's fields); random JSON with the wire formats' own field names
//! covers the shapes the fixtures never show. Case counts are bounded so the suite stays fast;
//! `PROPTEST_CASES` raises them for a longer run.

#![expect(
    clippy::panic,
    reason = "a fixture that stops decoding must fail the fuzz, not weaken it"
)]

use std::path::Path;
use std::sync::OnceLock;

use anyint_wire::canonical::{DecodeOptions, EncodeOptions};
use anyint_wire::sse::{Frame, SseSplitter};
use anyint_wire::translate::{self, ClientShape, Kind, Translator};
use anyint_wire::{anthropic, gemini, json, openai, responses};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};

const KINDS: [Kind; 4] = [Kind::OpenAi, Kind::Anthropic, Kind::Gemini, Kind::Responses];

/// Field names and values the four wire formats use, so random objects look enough like
/// requests, responses and events to get past the first checks.
const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "stream",
    "tools",
    "tool_choice",
    "function",
    "name",
    "arguments",
    "parameters",
    "input",
    "input_schema",
    "id",
    "tool_call_id",
    "tool_use_id",
    "contents",
    "parts",
    "functionCall",
    "functionResponse",
    "args",
    "response",
    "systemInstruction",
    "system",
    "generationConfig",
    "responseSchema",
    "responseJsonSchema",
    "responseMimeType",
    "response_format",
    "json_schema",
    "schema",
    "strict",
    "properties",
    "items",
    "required",
    "enum",
    "anyOf",
    "max_tokens",
    "max_output_tokens",
    "temperature",
    "top_p",
    "stop",
    "stop_sequences",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "usageMetadata",
    "promptTokenCount",
    "candidatesTokenCount",
    "choices",
    "delta",
    "index",
    "finish_reason",
    "candidates",
    "finishReason",
    "output",
    "output_text",
    "instructions",
    "previous_response_id",
    "reasoning",
    "effort",
    "thinking",
    "budget_tokens",
    "signature",
    "data",
    "requests",
    "embedding",
    "embeddings",
    "values",
    "encoding_format",
    "dimensions",
    "outputDimensionality",
    "taskType",
    "source",
    "image_url",
    "url",
    "inlineData",
    "mimeType",
    "tool_calls",
    "stream_options",
    "include_usage",
    "parallel_tool_calls",
    "text_format",
    "format",
    "delta_type",
    "content_block",
    "message",
    "error",
    "status",
    "code",
    "sequence_number",
    "item",
    "item_id",
    "output_index",
    "call_id",
    "web_search_options",
    "web_search",
    "citations",
];
const WORDS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "text",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "image",
    "json_schema",
    "json_object",
    "object",
    "string",
    "array",
    "auto",
    "any",
    "none",
    "required",
    "message",
    "function_call",
    "function_call_output",
    "input_text",
    "output_text",
    "reasoning",
    "web_search",
    "application/json",
    "STOP",
    "MAX_TOKENS",
    "stop",
    "length",
    "tool_calls",
    "end_turn",
    "message_start",
    "content_block_delta",
    "text_delta",
    "input_json_delta",
    "response.completed",
    "response.output_text.delta",
    "data:",
    "[DONE]",
    "",
    "\u{0}",
    "é",
    "{\"a\":",
];

fn cases(n: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(n),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Arbitrary JSON, biased toward the formats' own names.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(WORDS).prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

struct Seeds {
    bodies: Vec<Value>,
    streams: Vec<Vec<Frame>>,
    echo: responses::Echo,
}

/// Every JSON body and SSE capture under `tests/fixtures`.
fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut bodies = Vec::new();
        let mut streams = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
            &mut |path| {
                let Ok(bytes) = std::fs::read(path) else {
                    return;
                };
                match path.extension().and_then(|e| e.to_str()) {
                    Some("json") => {
                        if let Ok(v) = serde_json::from_slice(&bytes) {
                            bodies.push(v);
                        }
                    }
                    Some("sse") => {
                        let mut split = SseSplitter::new();
                        let mut frames = split.push(&bytes);
                        frames.extend(split.finish());
                        streams.push(frames);
                    }
                    _ => {}
                }
            },
        );
        assert!(
            bodies.len() > 50 && streams.len() > 20,
            "fixtures not found"
        );
        let echo_body = include_bytes!("fixtures/pairs/responses_to_openai/client_request.json");
        let Ok(echo) = responses::Echo::new(echo_body, "resp_fuzz", 0) else {
            panic!("the Responses fixture request no longer decodes")
        };
        Seeds {
            bodies,
            streams,
            echo,
        }
    })
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk(&path, f);
        } else {
            f(&path);
        }
    }
}

/// Replaces one node of `seed`, chosen by walking `steps`, with `with`; some last steps at
/// an object delete the key instead.
fn mutate(seed: &Value, steps: &[usize], with: Value) -> Value {
    let mut out = seed.clone();
    replace_at(&mut out, steps, with);
    out
}

fn replace_at(node: &mut Value, steps: &[usize], with: Value) {
    let Some((&step, rest)) = steps.split_first() else {
        *node = with;
        return;
    };
    if step % 5 == 0 {
        *node = with;
        return;
    }
    match node {
        Value::Object(map) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(step % map.len())
                .cloned()
                .unwrap_or_default();
            if rest.is_empty() && step % 7 == 1 {
                map.remove(&key);
            } else if let Some(child) = map.get_mut(&key) {
                replace_at(child, rest, with);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = step % items.len();
            replace_at(&mut items[i], rest, with);
        }
        _ => *node = with,
    }
}

fn shapes(echo: &responses::Echo) -> [ClientShape<'_>; 5] {
    [
        ClientShape::OpenAi,
        ClientShape::Anthropic {
            version: "2023-06-01",
            betas: "",
        },
        ClientShape::Gemini {
            model: "m",
            stream: true,
            sse: true,
        },
        ClientShape::Gemini {
            model: "m",
            stream: false,
            sse: false,
        },
        ClientShape::Responses { echo },
    ]
}

fn opts() -> [DecodeOptions; 2] {
    [
        DecodeOptions::default(),
        DecodeOptions {
            first_tool_call_only: true,
            web_search: true,
        },
    ]
}

/// Every decoder of a whole body, request or response; what decodes is encoded again.
fn decode_everything(body: &[u8]) {
    let echo = &seeds().echo;
    let _ = json::RawObject::decode(body);
    let _ = openai::ChatRequestHead::decode(body);
    let _ = anthropic::RequestHead::decode(body);
    let _ = responses::RequestHead::decode(body);
    let _ = responses::Echo::new(body, "resp_x", 1);
    let _ = openai::decode_error(body);
    let _ = anthropic::decode_error(body);
    let _ = gemini::decode_error(body);
    let _ = responses::decode_error(body);
    embed_everything(body);
    for shape in shapes(echo) {
        for opt in opts() {
            if let Ok(req) = translate::decode_request_with(shape, body, opt) {
                for kind in KINDS {
                    let _ = translate::encode_request(kind, &req);
                }
            }
        }
    }
    for kind in KINDS {
        let _ = kind.usage_from_response(body);
        for opt in opts() {
            if let Ok(resp) = translate::decode_response(kind, body, opt) {
                for shape in shapes(echo) {
                    let _ = translate::encode_response(shape, &resp);
                }
            }
        }
    }
}

/// Every embeddings decoder of a whole body; what decodes is encoded again both ways.
fn embed_everything(body: &[u8]) {
    use anyint_wire::embeddings::{self, Encoding, gemini as g, openai as o};
    let mut requests = Vec::new();
    requests.extend(o::decode_request(body).ok());
    for method in [g::Method::Single, g::Method::Batch] {
        requests.extend(g::decode_request(body, method, "m").ok());
    }
    for req in &requests {
        let _ = o::encode_request(req, "u");
        let _ = g::encode_batches(req, "u");
        let _ = req.estimate_tokens();
    }
    let _ = g::rewrite_models(body, "u");
    let _ = o::usage_from_response(body);
    for mut resp in [o::decode_response(body), g::decode_response(body)]
        .into_iter()
        .flatten()
    {
        for req in &requests {
            embeddings::normalize_shortened(req, &mut resp);
        }
        let _ = o::encode_response(&resp, "m", Encoding::Base64, 1);
        let _ = g::encode_response(&resp, g::Method::Batch);
    }
}

/// Every stream pair over `frames`, with the meter's per-frame report.
fn translate_everything(frames: &[Frame]) {
    let echo = &seeds().echo;
    for upstream in KINDS {
        for frame in frames {
            let _ = upstream.report(frame);
        }
        for shape in shapes(echo) {
            for opt in opts() {
                let enc = EncodeOptions {
                    model: "m".into(),
                    include_usage: true,
                    input_tokens_estimate: 3,
                    created: 0,
                };
                let mut t = Translator::new(upstream, opt, shape, enc);
                let mut out = Vec::new();
                for frame in frames {
                    if t.feed(frame, &mut out).is_err() {
                        let _ = t.fail("upstream_error", "stopped");
                        break;
                    }
                }
                t.finish(&mut out);
            }
        }
    }
}

fn frame(event: Option<&str>, data: String) -> Frame {
    let mut raw = Vec::new();
    if let Some(e) = event {
        raw.extend_from_slice(format!("event: {e}\n").as_bytes());
    }
    raw.extend_from_slice(format!("data: {data}\n\n").as_bytes());
    Frame {
        raw: raw.into(),
        event: event.map(str::to_owned),
        data,
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&body);
        let mut split = SseSplitter::new();
        let mut frames = split.push(&body);
        frames.extend(split.finish());
        translate_everything(&frames);
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        decode_everything(&serde_json::to_vec(&v).unwrap_or_default());
    }

    #[test]
    fn mutated_bodies_never_panic(
        seed in any::<prop::sample::Index>(),
        steps in prop::collection::vec(any::<usize>(), 1..8),
        with in arb_json(),
    ) {
        let seeds = &seeds().bodies;
        let body = mutate(seed.get(seeds), &steps, with);
        decode_everything(&serde_json::to_vec(&body).unwrap_or_default());
    }

    #[test]
    fn mutated_streams_never_panic(
        seed in any::<prop::sample::Index>(),
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), prop::collection::vec(any::<usize>(), 1..6), arb_json(), 0u8..4),
            1..4,
        ),
    ) {
        let mut frames = seed.get(&seeds().streams).clone();
        for (at, steps, with, op) in edits {
            if frames.is_empty() {
                break;
            }
            let i = at.index(frames.len());
            let event = frames[i].event.clone();
            match op {
                // A field of the frame's JSON replaced.
                0 | 1 => {
                    let data = serde_json::from_str(&frames[i].data).unwrap_or(Value::Null);
                    let data = mutate(&data, &steps, with).to_string();
                    frames[i] = frame(event.as_deref(), data);
                }
                // The frame's data replaced whole, its event name kept.
                2 => frames[i] = frame(event.as_deref(), with.to_string()),
                // A frame dropped or repeated.
                _ if steps[0] % 2 == 0 => { frames.remove(i); }
                _ => {
                    let again = frames[i].clone();
                    frames.insert(i, again);
                }
            }
        }
        translate_everything(&frames);
    }

    #[test]
    fn arbitrary_events_never_panic(
        events in prop::collection::vec(
            (prop::option::of(prop::sample::select(WORDS)), arb_json()),
            0..12,
        ),
    ) {
        let frames: Vec<Frame> = events
            .into_iter()
            .map(|(event, data)| frame(event, data.to_string()))
            .collect();
        translate_everything(&frames);
    }
}

/// serde_json's split of an object into raw top-level fields: what [`json::scan`] must agree
/// with.
fn serde_fields(body: &[u8]) -> Option<Vec<(String, String)>> {
    struct Fields;
    impl<'de> serde::de::Visitor<'de> for Fields {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                let v: &'de serde_json::value::RawValue = map.next_value()?;
                out.push((k.into_owned(), v.get().to_owned()));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let fields = serde::Deserializer::deserialize_map(&mut de, Fields).ok()?;
    de.end().ok()?;
    Some(fields)
}

/// Bytes that change a JSON document's meaning or validity.
const JSON_BYTES: &[u8] = b"\"\\{}[],:0-.eE+ u\x01\xff\ttnf1";

/// Byte edits (insert, replace, delete) of `text` at the given positions.
fn edit_bytes(text: &[u8], edits: &[(usize, usize, u8)]) -> Vec<u8> {
    let mut body = text.to_vec();
    for &(at, byte, op) in edits {
        let i = if body.is_empty() { 0 } else { at % body.len() };
        let b = JSON_BYTES[byte % JSON_BYTES.len()];
        match op % 3 {
            0 => body.insert(i, b),
            1 if i < body.len() => body[i] = b,
            _ if i < body.len() => {
                body.remove(i);
            }
            _ => {}
        }
    }
    body
}

proptest! {
    #![proptest_config(cases(2048))]

    /// The scanner accepts a body only when serde_json does, with the same fields; and it takes
    /// every valid object without escapes (the fast path is the common one).
    #[test]
    fn the_scanner_agrees_with_serde(
        v in arb_json(),
        edits in prop::collection::vec((any::<usize>(), any::<usize>(), any::<u8>()), 0..4),
    ) {
        let v = if v.is_object() { v } else { json!({"model": "m", "messages": v}) };
        let body = edit_bytes(&serde_json::to_vec(&v).unwrap_or_default(), &edits);
        let fast = json::scan::object_fields(&body)
            .map(|f| f.into_iter().map(|(k, v)| (k.into_owned(), v.to_owned())).collect::<Vec<_>>());
        let slow = serde_fields(&body);
        if fast.is_some() {
            prop_assert_eq!(&fast, &slow, "{}", String::from_utf8_lossy(&body));
        } else if slow.is_some() {
            // The scanner leaves escaped top-level keys to serde; nothing else.
            prop_assert!(body.contains(&b'\\'), "serde accepts what the scanner refused: {}", String::from_utf8_lossy(&body));
        }
    }
}

proptest! {
    #![proptest_config(cases(2048))]

    /// Reading the messages' fields in the validating pass gives what the split and a second
    /// pass over the last `messages` value give.
    #[test]
    fn reading_while_splitting_agrees_with_two_passes(
        v in arb_json(),
        wrap in any::<bool>(),
        edits in prop::collection::vec((any::<usize>(), any::<usize>(), any::<u8>()), 0..4),
    ) {
        let v = if v.is_object() && !wrap { v } else { json!({"model": "m", "messages": v, "n": 1}) };
        let body = edit_bytes(&serde_json::to_vec(&v).unwrap_or_default(), &edits);
        let one = json::scan::object_fields_reading(&body, Some(("messages", ["role", "content"])));
        let fields = json::scan::object_fields(&body);
        prop_assert_eq!(one.as_ref().map(|(f, _)| f), fields.as_ref(), "{}", String::from_utf8_lossy(&body));
        if let (Some((_, read)), Some(fields)) = (one, fields) {
            let last = fields.iter().rev().find(|(k, _)| k == "messages").map(|(_, v)| *v);
            let two = last.and_then(|raw| json::scan::array_object_fields(raw, ["role", "content"]));
            prop_assert_eq!(read, two, "{}", String::from_utf8_lossy(&body));
        }
    }
}

proptest! {
    #![proptest_config(cases(2048))]

    /// A field read from the end is the object's last field as serde splits it, whenever serde
    /// accepts the body; and a last field is found so whenever its value does not hold the key.
    #[test]
    fn the_last_field_agrees_with_serde(
        v in arb_json(),
        usage in arb_json(),
        last in any::<bool>(),
        edits in prop::collection::vec((any::<usize>(), any::<usize>(), any::<u8>()), 0..4),
    ) {
        let v = if v.is_object() { v } else { json!({"model": "m", "messages": v}) };
        let mut written = serde_json::to_string(&v).unwrap_or_default();
        if last {
            // Written by hand: a map's own order may not put it last.
            written.pop();
            if written.len() > 1 {
                written.push(',');
            }
            written.push_str(r#""usage":"#);
            written.push_str(&usage.to_string());
            written.push('}');
        }
        let body = edit_bytes(written.as_bytes(), &edits);
        let text = String::from_utf8_lossy(&body).into_owned();
        let found = json::scan::last_field(&body, "usage").map(|raw| String::from_utf8_lossy(raw).into_owned());
        if let Some(fields) = serde_fields(&body) {
            let tail = fields.last().filter(|(k, _)| k == "usage").map(|(_, raw)| raw.clone());
            if let Some(raw) = &found {
                prop_assert_eq!(Some(raw), tail.as_ref(), "{}", text);
            } else if let Some(raw) = tail {
                // Missed only when the value holds the key, or an edit escaped something.
                prop_assert!(raw.contains("usage") || body.contains(&b'\\'), "missed: {}", text);
            }
        }
    }
}

#[test]
fn the_mutator_reaches_nested_fields() {
    // Guards the fuzzer itself: a walk must be able to change something below the top level.
    let seed = json!({"a": {"b": [1, 2]}});
    let changed = mutate(&seed, &[1, 1, 1], json!("x"));
    assert_ne!(changed, seed);
    assert_eq!(changed["a"]["b"].as_array().map(Vec::len), Some(2));
}

#[test]
fn the_seeds_hold_valid_bodies_of_every_shape_and_kind() {
    // Mutating valid bodies only reaches deep paths if the seeds decode to begin with.
    let s = seeds();
    for shape in shapes(&s.echo) {
        let ok = s.bodies.iter().any(|b| {
            let bytes = serde_json::to_vec(b).unwrap_or_default();
            translate::decode_request(shape, &bytes).is_ok()
        });
        assert!(ok, "no seed decodes as a {shape:?} request");
    }
    for kind in KINDS {
        let ok = s.bodies.iter().any(|b| {
            let bytes = serde_json::to_vec(b).unwrap_or_default();
            translate::decode_response(kind, &bytes, DecodeOptions::default()).is_ok()
        });
        assert!(ok, "no seed decodes as a {kind:?} response");
    }
}
