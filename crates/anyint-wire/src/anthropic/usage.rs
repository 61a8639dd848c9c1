//! Anthropic usage ⇄ canonical [`Usage`], and usage sniffing for the passthrough path.
//!
//! Anthropic's `input_tokens` excludes cached tokens (total prompt = input + cache_creation +
//! cache_read); canonical `input_tokens` includes them. Decoding adds, encoding subtracts.
//! `server_tool_use.web_search_requests` (cumulative, like the token counts) is the canonical
//! `web_searches`.

use serde::{Deserialize, Deserializer, Serialize};

use crate::Usage;
use crate::sse::Frame;

/// A `usage` object as received. Every count is optional (`message_delta` carries only what
/// changed) and lenient: a value that is not a non-negative integer counts as absent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default, deserialize_with = "count")]
    input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    output_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
    /// Server tools' runs (`web_search_requests`), billed apart from tokens.
    #[serde(default)]
    server_tool_use: Option<ServerToolUse>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
struct ServerToolUse {
    #[serde(default, deserialize_with = "count")]
    web_search_requests: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
struct OutputDetails {
    #[serde(default, deserialize_with = "count")]
    thinking_tokens: Option<u64>,
}

fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(serde_json::Value::deserialize(d)?.as_u64())
}

impl WireUsage {
    /// This report updated by a later one: each count the later one carries wins.
    pub(super) fn merge(self, later: Self) -> Self {
        Self {
            input_tokens: later.input_tokens.or(self.input_tokens),
            output_tokens: later.output_tokens.or(self.output_tokens),
            cache_creation_input_tokens: later
                .cache_creation_input_tokens
                .or(self.cache_creation_input_tokens),
            cache_read_input_tokens: later
                .cache_read_input_tokens
                .or(self.cache_read_input_tokens),
            output_tokens_details: match (later.output_tokens_details, self.output_tokens_details) {
                (Some(l), Some(e)) => Some(OutputDetails {
                    thinking_tokens: l.thinking_tokens.or(e.thinking_tokens),
                }),
                (l, e) => l.or(e),
            },
            server_tool_use: match (later.server_tool_use, self.server_tool_use) {
                (Some(l), Some(e)) => Some(ServerToolUse {
                    web_search_requests: l.web_search_requests.or(e.web_search_requests),
                }),
                (l, e) => l.or(e),
            },
        }
    }

    /// The canonical counts: cached tokens are added into `input_tokens`.
    pub(super) fn canonical(&self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: self
                .input_tokens
                .unwrap_or(0)
                .saturating_add(read)
                .saturating_add(write),
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: read,
            cache_write_tokens: write,
            reasoning_tokens: self
                .output_tokens_details
                .and_then(|d| d.thinking_tokens)
                .unwrap_or(0),
            web_searches: self
                .server_tool_use
                .and_then(|s| s.web_search_requests)
                .unwrap_or(0),
        }
    }

    /// The canonical counts of a partial (`message_delta`) report on its own. Without
    /// `input_tokens` the input is reported as 0, so [`Usage::merge`] keeps the earlier value
    /// instead of taking the cache counts alone for the whole prompt.
    fn canonical_partial(&self) -> Usage {
        let mut u = self.canonical();
        if self.input_tokens.is_none() {
            u.input_tokens = 0;
        }
        u
    }
}

/// Anthropic's `input_tokens` for a canonical usage: the prompt minus cached tokens.
pub(super) fn uncached_input(u: &Usage) -> u64 {
    u.input_tokens
        .saturating_sub(u.cache_read_tokens)
        .saturating_sub(u.cache_write_tokens)
}

/// The `usage` of a response body as sent to a client.
#[expect(clippy::struct_field_names, reason = "field names are the wire's")]
#[derive(Serialize)]
pub(super) struct UsageOut {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> Self {
        Self {
            input_tokens: uncached_input(u),
            output_tokens: u.output_tokens,
            cache_creation_input_tokens: u.cache_write_tokens,
            cache_read_input_tokens: u.cache_read_tokens,
        }
    }
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Carrier {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<WithUsage>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// The usage of a non-streamed Anthropic response body, if it reports one.
pub fn usage_from_response(body: &[u8]) -> Option<Usage> {
    crate::json::top_level(body, "usage", |w: WithUsage| w.usage).map(|u| u.canonical())
}

/// The usage one SSE frame of an Anthropic stream reports, if any: `message_start` (the
/// prompt, with a small output count) and `message_delta` (cumulative; its counts replace
/// earlier ones via [`Usage::merge`]). Other frames are rejected by their `event:` name without
/// parsing; a frame without one is parsed only if it mentions `message_start`/`message_delta`.
pub fn usage_from_frame(frame: &Frame) -> Option<Usage> {
    let named = match frame.event.as_deref() {
        Some(n @ ("message_start" | "message_delta")) => Some(n),
        Some(_) => return None,
        None => None,
    };
    if named.is_none()
        && !frame.data.contains("\"message_start\"")
        && !frame.data.contains("\"message_delta\"")
    {
        return None;
    }
    let c: Carrier = serde_json::from_str(&frame.data).ok()?;
    match named.or(c.kind.as_deref())? {
        "message_start" => c.message?.usage.map(|u| u.canonical()),
        "message_delta" => c.usage.map(|u| u.canonical_partial()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(event: Option<&str>, data: &str) -> Frame {
        Frame {
            raw: bytes::Bytes::new(),
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn decoding_adds_cache_and_encoding_subtracts_it() {
        let u = usage_from_response(br#"{"usage":{"input_tokens":10,"output_tokens":4,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens_details":{"thinking_tokens":3}}}"#).unwrap();
        assert_eq!(
            u,
            Usage {
                input_tokens: 1110,
                output_tokens: 4,
                cache_read_tokens: 1000,
                cache_write_tokens: 100,
                reasoning_tokens: 3,
                web_searches: 0,
            }
        );
        let out = serde_json::to_value(UsageOut::from(&u)).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"input_tokens":10,"output_tokens":4,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000})
        );
        // Inconsistent canonical counts never underflow.
        let odd = Usage {
            input_tokens: 5,
            cache_read_tokens: 10,
            ..Usage::default()
        };
        assert_eq!(uncached_input(&odd), 0);
    }

    #[test]
    fn web_search_requests_are_counted_and_merged() {
        let u = usage_from_response(br#"{"usage":{"input_tokens":9120,"output_tokens":210,"server_tool_use":{"web_search_requests":2,"web_fetch_requests":0}}}"#).unwrap();
        assert_eq!((u.input_tokens, u.web_searches), (9120, 2));
        let start = usage_from_frame(&frame(
            Some("message_start"),
            r#"{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}"#,
        ))
        .unwrap();
        let delta = usage_from_frame(&frame(
            Some("message_delta"),
            r#"{"type":"message_delta","usage":{"output_tokens":9,"server_tool_use":{"web_search_requests":3}}}"#,
        ))
        .unwrap();
        let total = start.merge(delta);
        assert_eq!(
            (total.input_tokens, total.output_tokens, total.web_searches),
            (25, 9, 3)
        );
    }

    #[test]
    fn nulls_and_garbage_counts_are_absent() {
        let u = usage_from_response(br#"{"usage":{"input_tokens":7,"output_tokens":-1,"cache_creation_input_tokens":null,"cache_read_input_tokens":"x"}}"#).unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (7, 0));
        assert!(usage_from_response(b"{}").is_none());
        assert!(usage_from_response(b"nope").is_none());
    }

    #[test]
    fn frames_report_start_and_cumulative_delta_usage() {
        let start = usage_from_frame(&frame(
            Some("message_start"),
            r#"{"type":"message_start","message":{"id":"m","content":[],"usage":{"input_tokens":25,"output_tokens":1,"cache_read_input_tokens":5}}}"#,
        ))
        .unwrap();
        assert_eq!((start.input_tokens, start.cache_read_tokens), (30, 5));
        let delta = usage_from_frame(&frame(
            Some("message_delta"),
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9,"cache_read_input_tokens":5}}"#,
        ))
        .unwrap();
        assert_eq!((delta.input_tokens, delta.output_tokens), (0, 9));
        assert_eq!(start.merge(delta).input_tokens, 30);
        let full = usage_from_frame(&frame(
            None,
            r#"{"type":"message_delta","usage":{"input_tokens":20,"output_tokens":9,"cache_read_input_tokens":5}}"#,
        ))
        .unwrap();
        assert_eq!(full.input_tokens, 25);
        assert!(usage_from_frame(&frame(Some("ping"), r#"{"type":"ping"}"#)).is_none());
        assert!(
            usage_from_frame(&frame(
                Some("content_block_delta"),
                r#"{"usage":{"input_tokens":1}}"#
            ))
            .is_none()
        );
        assert!(usage_from_frame(&frame(Some("message_start"), "{")).is_none());
    }
}
