//! Output shapes shared by the request and response encoders, and the small mappings both
//! directions use: stop reasons, cache markers, message ids, tool inputs.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::canonical::{CacheControl, FinishReason, ImageSource};

/// A `cache_control` marker as sent.
#[derive(Serialize)]
pub(super) struct WireCache<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<&'a str>,
}

impl<'a> WireCache<'a> {
    pub(super) fn of(cache: Option<&'a CacheControl>) -> Option<Self> {
        cache.map(|c| Self {
            kind: "ephemeral",
            ttl: c.ttl.as_deref(),
        })
    }
}

/// An image source as sent.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ImageSrc<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

impl<'a> ImageSrc<'a> {
    /// A `data:<type>;base64,<data>` URL becomes an inline source; other URLs stay URLs.
    pub(super) fn of(source: &'a ImageSource) -> Self {
        match source {
            ImageSource::Base64 { media_type, data } => Self::Base64 { media_type, data },
            ImageSource::Url(url) => {
                if let Some(rest) = url.strip_prefix("data:")
                    && let Some((meta, data)) = rest.split_once(',')
                    && let Some(media_type) = meta.strip_suffix(";base64")
                {
                    Self::Base64 { media_type, data }
                } else {
                    Self::Url { url }
                }
            }
        }
    }
}

/// An empty JSON object.
#[derive(Serialize)]
pub(super) struct Empty {}

/// A tool call's `input`: the canonical arguments text, verbatim, or `{}`.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Input<'a> {
    Raw(&'a RawValue),
    Empty(Empty),
}

/// Canonical arguments (JSON text of an object) as a tool `input`. Blank text means no
/// arguments (some OpenAI-compatible upstreams send `""`). `None` when the text is not a
/// JSON object.
pub(super) fn tool_input(arguments: &str) -> Option<Input<'_>> {
    if arguments.trim().is_empty() {
        return Some(Input::Empty(Empty {}));
    }
    let raw: &RawValue = serde_json::from_str(arguments).ok()?;
    raw.get()
        .trim_start()
        .starts_with('{')
        .then_some(Input::Raw(raw))
}

/// The text of a `tool_result` as sent: a plain string, or blocks.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum ResultContent<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

/// A content block as sent in a request or response.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<WireCache<'a>>,
    },
    Image {
        source: ImageSrc<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<WireCache<'a>>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Input<'a>,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<ResultContent<'a>>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<WireCache<'a>>,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
}

/// Maps an Anthropic `stop_reason`.
pub(super) fn decode_stop(s: &str) -> FinishReason {
    match s {
        "end_turn" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "stop_sequence" => FinishReason::StopSequence,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// The Anthropic `stop_reason` for a finish reason. Another family's unknown reason becomes
/// `end_turn` (SDKs type the field as an enum); Anthropic's own extra ones pass through.
pub(super) fn encode_stop(f: &FinishReason) -> &str {
    match f {
        FinishReason::Other(s) if s == "pause_turn" || s == "model_context_window_exceeded" => s,
        FinishReason::Stop | FinishReason::Other(_) => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::StopSequence => "stop_sequence",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// A message id as Anthropic clients expect it: `msg_`-prefixed.
pub(super) fn message_id(id: &str) -> Cow<'_, str> {
    if id.starts_with("msg_") {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(format!("msg_{id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_input_keeps_objects_verbatim_and_refuses_the_rest() {
        let Some(Input::Raw(r)) = tool_input(" {\"a\": 1} ") else {
            panic!("object expected")
        };
        assert_eq!(r.get(), "{\"a\": 1}");
        assert!(matches!(tool_input(""), Some(Input::Empty(_))));
        assert!(tool_input("[1]").is_none());
        assert!(tool_input("{\"a\":").is_none());
        assert!(tool_input("\"x\"").is_none());
    }

    #[test]
    fn data_urls_become_base64() {
        let src = ImageSource::Url("data:image/png;base64,AAAA".into());
        assert_eq!(
            serde_json::to_string(&ImageSrc::of(&src)).unwrap(),
            r#"{"type":"base64","media_type":"image/png","data":"AAAA"}"#
        );
        let src = ImageSource::Url("https://x/y.png".into());
        assert_eq!(
            serde_json::to_string(&ImageSrc::of(&src)).unwrap(),
            r#"{"type":"url","url":"https://x/y.png"}"#
        );
    }

    #[test]
    fn stop_reasons_round_trip() {
        for s in [
            "end_turn",
            "max_tokens",
            "stop_sequence",
            "tool_use",
            "refusal",
            "pause_turn",
            "model_context_window_exceeded",
        ] {
            assert_eq!(encode_stop(&decode_stop(s)), s);
        }
        assert_eq!(
            encode_stop(&FinishReason::Other("SAFETY".into())),
            "end_turn"
        );
        assert_eq!(message_id("msg_1"), "msg_1");
        assert_eq!(message_id("chatcmpl-1"), "msg_chatcmpl-1");
    }
}
