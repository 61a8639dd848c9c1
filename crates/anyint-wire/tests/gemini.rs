//! Golden tests for the Gemini codec: each `tests/fixtures/gemini/<case>.in.*` is decoded to
//! canonical form and encoded back, and both results are compared with the files beside it.
//! `UPDATE_GOLDEN=1 cargo test -p anyint-wire --test gemini` rewrites the expected files.
//!
//! Case kinds, by name prefix:
//! - `request_*.in.json`: a client request → `.canonical.txt` → `.out.json` (upstream body);
//! - `response_*.in.json`: an upstream response → `.canonical.txt` → `.out.json` (client body);
//! - `stream_*.in.sse`: an upstream SSE capture → `.canonical.txt` (events) → `.out.sse` and
//!   `.out.array.json` (the two client stream formats).
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a broken fixture should fail loudly"
)]

use std::fmt::Debug;
use std::fs;
use std::path::{Path, PathBuf};

use anyint_wire::canonical::{EncodeOptions, StreamEvent};
use anyint_wire::gemini::{self, StreamDecoder, StreamEncoder, StreamFormat};
use anyint_wire::sse::SseSplitter;
use serde_json::Value;

const MODEL: &str = "gemini-2.5-flash";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gemini")
}

/// Compares `actual` with the golden file, or rewrites it under `UPDATE_GOLDEN=1`.
fn check(case: &str, suffix: &str, actual: &[u8]) -> Result<(), String> {
    let path = dir().join(format!("{case}.{suffix}"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&path, actual).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(());
    }
    let expected = fs::read(&path).map_err(|e| {
        format!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    })?;
    if expected == actual {
        Ok(())
    } else {
        Err(format!(
            "{} differs (run with UPDATE_GOLDEN=1 to accept):\n--- expected\n{}\n--- actual\n{}",
            path.display(),
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(actual)
        ))
    }
}

fn debug(value: &impl Debug) -> Vec<u8> {
    format!("{value:#?}\n").into_bytes()
}

fn pretty(json: &[u8]) -> Vec<u8> {
    let value: Value = serde_json::from_slice(json).unwrap();
    let mut out = serde_json::to_vec_pretty(&value).unwrap();
    out.push(b'\n');
    out
}

fn cases(prefix: &str, ext: &str) -> Vec<(String, Vec<u8>)> {
    let mut cases: Vec<(String, Vec<u8>)> = fs::read_dir(dir())
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name()?.to_str()?.to_owned();
            let case = name.strip_suffix(&format!(".in.{ext}"))?;
            case.starts_with(prefix)
                .then(|| (case.to_owned(), fs::read(&path).unwrap()))
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no {prefix}*.in.{ext} fixtures");
    cases
}

fn report(failures: &[String]) {
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn golden_requests() {
    let mut failures = Vec::new();
    for (case, input) in cases("request_", "json") {
        let req = gemini::decode_request(&input, MODEL, false).unwrap();
        let body = gemini::encode_request(&req).unwrap();
        failures.extend(check(&case, "canonical.txt", &debug(&req)).err());
        failures.extend(check(&case, "out.json", &pretty(&body)).err());
        // What we send upstream reads back as the same request.
        assert_eq!(
            gemini::decode_request(&body, MODEL, false).unwrap(),
            req,
            "{case}"
        );
    }
    report(&failures);
}

#[test]
fn golden_responses() {
    let mut failures = Vec::new();
    for (case, input) in cases("response_", "json") {
        let resp = gemini::decode_response(&input).unwrap();
        let body = gemini::encode_response(&resp);
        failures.extend(check(&case, "canonical.txt", &debug(&resp)).err());
        failures.extend(check(&case, "out.json", &pretty(&body)).err());
        assert_eq!(gemini::decode_response(&body).unwrap(), resp, "{case}");
        assert_eq!(
            gemini::usage_from_response(&input),
            Some(resp.usage),
            "{case}"
        );
    }
    report(&failures);
}

fn decode_stream(bytes: &[u8]) -> Vec<StreamEvent> {
    let mut split = SseSplitter::new();
    let mut dec = StreamDecoder::new();
    let mut events: Vec<StreamEvent> = split.push(bytes).iter().flat_map(|f| dec.feed(f)).collect();
    if let Some(f) = split.finish() {
        events.extend(dec.feed(&f));
    }
    events.extend(dec.finish());
    events
}

fn encode_stream(events: &[StreamEvent], format: StreamFormat) -> Vec<u8> {
    let opts = EncodeOptions {
        model: "public-model".into(),
        ..EncodeOptions::default()
    };
    let mut enc = StreamEncoder::new(opts, format);
    let mut out: Vec<u8> = events.iter().flat_map(|ev| enc.encode(ev)).collect();
    out.extend(enc.finish());
    out
}

/// Events without the intermediate usage reports (the client stream only carries the last).
fn content_events(events: &[StreamEvent]) -> Vec<&StreamEvent> {
    events
        .iter()
        .filter(|e| !matches!(e, StreamEvent::Usage(_) | StreamEvent::Start { .. }))
        .collect()
}

fn last_usage(events: &[StreamEvent]) -> Option<&StreamEvent> {
    events
        .iter()
        .rev()
        .find(|e| matches!(e, StreamEvent::Usage(_)))
}

#[test]
fn golden_streams() {
    let mut failures = Vec::new();
    for (case, input) in cases("stream_", "sse") {
        assert!(
            input.windows(4).any(|w| w == b"\r\n\r\n"),
            "{case}: captures are CRLF-framed like Google's"
        );
        let events = decode_stream(&input);
        assert_eq!(events.last(), Some(&StreamEvent::End), "{case}");
        let sse = encode_stream(&events, StreamFormat::Sse);
        let array = encode_stream(&events, StreamFormat::JsonArray);
        failures.extend(check(&case, "canonical.txt", &debug(&events)).err());
        failures.extend(check(&case, "out.sse", &sse).err());
        failures.extend(check(&case, "out.array.json", &array).err());

        // The client stream decodes back to the same content and final usage.
        let again = decode_stream(&sse);
        assert_eq!(content_events(&again), content_events(&events), "{case}");
        assert_eq!(last_usage(&again), last_usage(&events), "{case}");
        let Value::Array(chunks) = serde_json::from_slice::<Value>(&array).unwrap() else {
            panic!("{case}: the array format is not a JSON array");
        };
        let text = String::from_utf8(sse).unwrap();
        assert_eq!(chunks.len(), text.matches("data: ").count(), "{case}");
        for line in text.lines().filter(|l| !l.is_empty()) {
            assert!(line.starts_with("data: {"), "{case}: {line}");
        }
    }
    report(&failures);
}
