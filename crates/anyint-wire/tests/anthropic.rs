//! Golden tests for the Anthropic codec. Each input in `tests/fixtures/anthropic/` is decoded
//! to canonical form and encoded back; both results are compared with checked-in files:
//! - `<case>.response.json` → `<case>.canonical.txt` + `<case>.expected.json` (compared as JSON);
//! - `<case>.stream.sse` → `<case>.events.txt` (one canonical event per line) +
//!   `<case>.expected.sse` (exact bytes);
//! - `<case>.request.json` → `<case>.canonical.txt` + `<case>.expected.json` (compared as JSON).
//!
//! `UPDATE_GOLDEN=1 cargo test -p anyint-wire --test anthropic` rewrites the expected files.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "golden helpers are test code: a missing or unreadable fixture must fail the test"
)]

use std::fs;
use std::path::{Path, PathBuf};

use anyint_wire::anthropic::{
    StreamDecoder, StreamEncoder, decode_request, decode_response, encode_request, encode_response,
};
use anyint_wire::canonical::{EncodeOptions, StreamEvent};
use anyint_wire::sse::{Frame, SseSplitter};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/anthropic")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// The cases whose input file ends with `suffix`, as (case name, input path), sorted.
fn cases(suffix: &str) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.strip_suffix(suffix)?.to_owned();
            Some((name, p))
        })
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no `*{suffix}` fixtures");
    found
}

fn golden_text(path: &Path, actual: &str) {
    if updating() {
        fs::write(path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_GOLDEN=1", path.display()));
    assert!(
        actual == expected,
        "{} differs (rerun with UPDATE_GOLDEN=1 if intended)\n--- actual\n{actual}\n--- expected\n{expected}",
        path.display()
    );
}

fn golden_json(path: &Path, actual: &Value) {
    if updating() {
        let mut text = serde_json::to_string_pretty(actual).unwrap();
        text.push('\n');
        fs::write(path, text).unwrap();
        return;
    }
    let expected: Value = serde_json::from_slice(
        &fs::read(path)
            .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_GOLDEN=1", path.display())),
    )
    .unwrap();
    assert_eq!(
        actual,
        &expected,
        "{} differs (rerun with UPDATE_GOLDEN=1 if intended)",
        path.display()
    );
}

fn frames_of(bytes: &[u8], chunk: usize) -> Vec<Frame> {
    let mut s = SseSplitter::new();
    let mut frames: Vec<Frame> = bytes.chunks(chunk).flat_map(|c| s.push(c)).collect();
    frames.extend(s.finish());
    frames
}

fn decode_stream(frames: &[Frame]) -> Vec<StreamEvent> {
    let mut d = StreamDecoder::new();
    let mut events: Vec<StreamEvent> = frames.iter().flat_map(|f| d.feed(f)).collect();
    events.extend(d.finish());
    events
}

fn encode_stream(events: &[StreamEvent]) -> Vec<u8> {
    let mut e = StreamEncoder::new(EncodeOptions {
        model: "claude-public".into(),
        input_tokens_estimate: 30,
        ..EncodeOptions::default()
    });
    let mut out: Vec<u8> = events.iter().flat_map(|ev| e.encode(ev)).collect();
    out.extend(e.finish());
    out
}

/// Event names, without pings and empty deltas (neither reaches a translated client).
fn names(frames: &[Frame]) -> Vec<&str> {
    frames
        .iter()
        .filter(|f| {
            let data: Value = serde_json::from_str(&f.data).unwrap_or_default();
            let delta = &data["delta"];
            !["text", "thinking", "signature", "partial_json"]
                .iter()
                .any(|k| delta[*k] == "")
        })
        .filter_map(|f| f.event.as_deref())
        .filter(|n| *n != "ping")
        .collect()
}

#[test]
fn responses() {
    for (name, input) in cases(".response.json") {
        let canonical = decode_response(&fs::read(&input).unwrap()).unwrap();
        golden_text(
            &dir().join(format!("{name}.canonical.txt")),
            &format!("{canonical:#?}\n"),
        );
        let encoded: Value = serde_json::from_slice(&encode_response(&canonical)).unwrap();
        golden_json(&dir().join(format!("{name}.expected.json")), &encoded);
    }
}

#[test]
fn text_and_tool_response_survives_the_round_trip_unchanged() {
    let input = fs::read(dir().join("text_and_tool.response.json")).unwrap();
    let back = encode_response(&decode_response(&input).unwrap());
    assert_eq!(
        serde_json::from_slice::<Value>(&back).unwrap(),
        serde_json::from_slice::<Value>(&input).unwrap()
    );
}

#[test]
fn streams() {
    for (name, input) in cases(".stream.sse") {
        let bytes = fs::read(&input).unwrap();
        let frames = frames_of(&bytes, bytes.len().max(1));
        let events = decode_stream(&frames);
        let mut listing = events
            .iter()
            .map(|e| format!("{e:?}"))
            .collect::<Vec<_>>()
            .join("\n");
        listing.push('\n');
        golden_text(&dir().join(format!("{name}.events.txt")), &listing);
        let out = encode_stream(&events);
        golden_text(
            &dir().join(format!("{name}.expected.sse")),
            &String::from_utf8(out.clone()).unwrap(),
        );
        // The client sees the upstream's event sequence (pings and empty deltas aside).
        assert_eq!(names(&frames_of(&out, out.len())), names(&frames), "{name}");
        // However the upstream bytes are chunked, the events are the same.
        for chunk in 1..=17 {
            assert_eq!(
                decode_stream(&frames_of(&bytes, chunk)),
                events,
                "{name}, chunk {chunk}"
            );
        }
    }
}

#[test]
fn thinking_text_tool_stream_has_the_exact_event_sequence() {
    let out = fs::read(dir().join("thinking_text_tool.expected.sse")).unwrap();
    let frames = frames_of(&out, out.len());
    let seq: Vec<String> = frames
        .iter()
        .map(|f| {
            let data: Value = serde_json::from_str(&f.data).unwrap();
            let event = f.event.as_deref().unwrap();
            assert_eq!(data["type"], event);
            match event {
                "content_block_start" => format!(
                    "{event}[{}] {}",
                    data["index"],
                    data["content_block"]["type"].as_str().unwrap()
                ),
                "content_block_delta" => format!(
                    "{event}[{}] {}",
                    data["index"],
                    data["delta"]["type"].as_str().unwrap()
                ),
                "content_block_stop" => format!("{event}[{}]", data["index"]),
                _ => event.to_owned(),
            }
        })
        .collect();
    assert_eq!(
        seq,
        [
            "message_start",
            "content_block_start[0] thinking",
            "content_block_delta[0] thinking_delta",
            "content_block_delta[0] thinking_delta",
            "content_block_delta[0] signature_delta",
            "content_block_stop[0]",
            "content_block_start[1] text",
            "content_block_delta[1] text_delta",
            "content_block_delta[1] text_delta",
            "content_block_stop[1]",
            "content_block_start[2] tool_use",
            "content_block_delta[2] input_json_delta",
            "content_block_delta[2] input_json_delta",
            "content_block_delta[2] input_json_delta",
            "content_block_stop[2]",
            "message_delta",
            "message_stop",
        ]
    );
    // The split tool input still concatenates to the call's arguments.
    let json: String = frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(&f.data).ok())
        .filter_map(|d| d["delta"]["partial_json"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json).unwrap(),
        serde_json::json!({"city":"Oslo","unit":"celsius"})
    );
}

#[test]
fn requests() {
    for (name, input) in cases(".request.json") {
        let canonical = decode_request(&fs::read(&input).unwrap(), "2023-06-01").unwrap();
        golden_text(
            &dir().join(format!("{name}.canonical.txt")),
            &format!("{canonical:#?}\n"),
        );
        let body = encode_request(&canonical).unwrap();
        golden_json(
            &dir().join(format!("{name}.expected.json")),
            &serde_json::from_slice(&body).unwrap(),
        );
        assert_eq!(
            decode_request(&body, "2023-06-01").unwrap(),
            canonical,
            "{name}"
        );
    }
}
