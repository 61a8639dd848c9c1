//! Where the Responses API reports usage: the Response object's `usage`, also carried by the
//! terminal stream events (`response.completed`, `.incomplete`, `.failed`).
//!
//! `input_tokens` includes cached tokens and `output_tokens` includes reasoning tokens, like the
//! canonical counts, so the mapping is one to one: `input_tokens_details.cached_tokens` →
//! `cache_read_tokens`, `input_tokens_details.cache_write_tokens` → `cache_write_tokens`,
//! `output_tokens_details.reasoning_tokens` → `reasoning_tokens`. Missing fields count as 0.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Usage;
use crate::sse::Frame;

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        let input = u.input_tokens_details;
        Self {
            input_tokens: u.input_tokens.unwrap_or(0),
            output_tokens: u.output_tokens.unwrap_or(0),
            cache_read_tokens: input.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write_tokens: input.and_then(|d| d.cache_write_tokens).unwrap_or(0),
            reasoning_tokens: u
                .output_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
            web_searches: 0,
        }
    }
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    response: Option<WithUsage>,
}

/// The usage of a Response object (a non-streamed body), if it reports one.
pub fn usage_from_response(body: &[u8]) -> Option<Usage> {
    crate::json::top_level(body, "usage", |w: WithUsage| w.usage).map(Usage::from)
}

/// The usage a stream event reports: `response.usage` of a terminal event, `None` for every
/// other event (and for a terminal one whose `usage` is null). Cheap for the common delta
/// events: only data mentioning `"usage"` is parsed.
pub fn usage_from_frame(frame: &Frame) -> Option<Usage> {
    if !frame.data.contains("\"usage\"") {
        return None;
    }
    serde_json::from_str::<Event>(&frame.data)
        .ok()?
        .response?
        .usage
        .map(Usage::from)
}

/// The Responses `usage` object for canonical usage (every key the SDK models require).
pub(super) fn encode_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "input_tokens_details": {
            "cached_tokens": u.cache_read_tokens,
            "cache_write_tokens": u.cache_write_tokens,
        },
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.input_tokens + u.output_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const USAGE: &str = r#"{"input_tokens":1234,"input_tokens_details":{"cached_tokens":1024,"cache_write_tokens":7},"output_tokens":58,"output_tokens_details":{"reasoning_tokens":16},"total_tokens":1292}"#;

    fn frame(data: String) -> Frame {
        Frame {
            raw: bytes::Bytes::new(),
            event: None,
            data,
        }
    }

    #[test]
    fn maps_every_count_and_round_trips() {
        let u = usage_from_response(format!(r#"{{"id":"resp_1","usage":{USAGE}}}"#).as_bytes())
            .unwrap();
        assert_eq!(
            u,
            Usage {
                input_tokens: 1234,
                output_tokens: 58,
                cache_read_tokens: 1024,
                cache_write_tokens: 7,
                reasoning_tokens: 16,
                web_searches: 0,
            }
        );
        assert_eq!(
            encode_usage(&u),
            serde_json::from_str::<Value>(USAGE).unwrap()
        );
        assert!(usage_from_response(br#"{"id":"resp_1","usage":null}"#).is_none());
        assert!(usage_from_response(b"nope").is_none());
        let partial = usage_from_response(br#"{"usage":{"input_tokens":3}}"#).unwrap();
        assert_eq!((partial.input_tokens, partial.output_tokens), (3, 0));
    }

    #[test]
    fn terminal_events_carry_usage() {
        let done = format!(
            r#"{{"type":"response.completed","sequence_number":9,"response":{{"id":"r","usage":{USAGE}}}}}"#
        );
        assert_eq!(usage_from_frame(&frame(done)).unwrap().output_tokens, 58);
        let created =
            r#"{"type":"response.created","sequence_number":0,"response":{"id":"r","usage":null}}"#;
        assert!(usage_from_frame(&frame(created.to_owned())).is_none());
        let delta = r#"{"type":"response.output_text.delta","delta":"\"usage\""}"#;
        assert!(usage_from_frame(&frame(delta.to_owned())).is_none());
    }
}
