//! `usageMetadata` ⇄ canonical [`Usage`], and cheap usage sniffing for the passthrough path.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::fields::count;
use crate::Usage;
use crate::sse::Frame;

/// Canonical usage from a `usageMetadata` object (see the module docs for the mapping).
pub(super) fn from_metadata(m: &Map<String, Value>) -> Usage {
    let thoughts = count(m, "thoughtsTokenCount");
    Usage {
        input_tokens: count(m, "promptTokenCount")
            .saturating_add(count(m, "toolUsePromptTokenCount")),
        output_tokens: count(m, "candidatesTokenCount").saturating_add(thoughts),
        cache_read_tokens: count(m, "cachedContentTokenCount"),
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
        web_searches: 0,
    }
}

/// The `usageMetadata` object for canonical usage. Zero optional counts are left out, as
/// Google does.
pub(super) fn to_metadata(u: &Usage) -> Value {
    let mut m = json!({
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens.saturating_sub(u.reasoning_tokens),
        "totalTokenCount": u.input_tokens.saturating_add(u.output_tokens),
    });
    if let Some(obj) = m.as_object_mut() {
        if u.cache_read_tokens > 0 {
            obj.insert("cachedContentTokenCount".into(), u.cache_read_tokens.into());
        }
        if u.reasoning_tokens > 0 {
            obj.insert("thoughtsTokenCount".into(), u.reasoning_tokens.into());
        }
    }
    m
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default, rename = "usageMetadata")]
    usage: Option<Map<String, Value>>,
    /// The rest, for the grounding metadata's search count.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

impl WithUsage {
    /// The chunk's usage with its searches; `None` when it reports neither.
    fn usage(&self) -> Option<Usage> {
        let searches = super::search::searches_of(&self.rest);
        let mut u = match &self.usage {
            Some(m) => from_metadata(m),
            None if searches > 0 => Usage::default(),
            None => return None,
        };
        u.web_searches = searches;
        Some(u)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    /// The non-`alt=sse` stream body: a JSON array of chunks. Tried first, because serde would
    /// also read a one-element array as the struct.
    Many(Vec<WithUsage>),
    One(WithUsage),
}

const KEYS: [&[u8]; 2] = [b"\"usageMetadata\"", b"\"webSearchQueries\""];

fn sniff(bytes: &[u8]) -> Option<Usage> {
    if !KEYS.iter().any(|k| bytes.windows(k.len()).any(|w| w == *k)) {
        return None;
    }
    match serde_json::from_slice::<Body>(bytes).ok()? {
        Body::One(b) => b.usage(),
        // The last chunk with usage carries the final counts, and the last that counts
        // searches the final search count.
        Body::Many(chunks) => chunks
            .iter()
            .filter_map(WithUsage::usage)
            .reduce(Usage::merge),
    }
}

/// The usage of a generateContent response body (or of a whole non-SSE stream body, which is a
/// JSON array of chunks), if it reports one, with the searches its grounding metadata counts
/// (`webSearchQueries`). Only parses when `"usageMetadata"` or `"webSearchQueries"` occurs.
pub fn usage_from_response(body: &[u8]) -> Option<Usage> {
    sniff(body)
}

/// The usage one `alt=sse` stream frame reports, if any. Every chunk may carry counts; the last
/// one seen is authoritative (merge them with [`Usage::merge`]). A chunk with grounding
/// metadata also reports its searches. Only parses when `"usageMetadata"` or
/// `"webSearchQueries"` occurs.
pub fn usage_from_frame(frame: &Frame) -> Option<Usage> {
    sniff(frame.data.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_maps_to_canonical_and_back() {
        let m = json!({"promptTokenCount": 41, "candidatesTokenCount": 9, "thoughtsTokenCount": 5,
            "cachedContentTokenCount": 30, "totalTokenCount": 55});
        let u = from_metadata(m.as_object().unwrap());
        assert_eq!(
            u,
            Usage {
                input_tokens: 41,
                output_tokens: 14,
                cache_read_tokens: 30,
                cache_write_tokens: 0,
                reasoning_tokens: 5,
                web_searches: 0,
            }
        );
        assert_eq!(to_metadata(&u), m);
        let plain = Usage {
            input_tokens: 3,
            output_tokens: 4,
            ..Usage::default()
        };
        assert_eq!(
            to_metadata(&plain),
            json!({"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7})
        );
    }

    #[test]
    fn missing_counts_are_zero_and_tool_use_prompt_is_input() {
        let m =
            json!({"promptTokenCount": 10, "toolUsePromptTokenCount": 5, "totalTokenCount": 15});
        let u = from_metadata(m.as_object().unwrap());
        assert_eq!((u.input_tokens, u.output_tokens), (15, 0));
    }

    #[test]
    fn grounding_queries_are_counted_as_searches() {
        let body = br#"{"candidates":[{"content":{"parts":[{"text":"x"}]},"groundingMetadata":{"webSearchQueries":["a","b"]}}],"usageMetadata":{"promptTokenCount":2,"toolUsePromptTokenCount":30}}"#;
        let u = usage_from_response(body).unwrap();
        assert_eq!((u.input_tokens, u.web_searches), (32, 2));
        // A chunk with grounding but no usage still counts; merged, the tokens stay.
        let arr = br#"[{"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":8}},{"candidates":[{"groundingMetadata":{"webSearchQueries":["a"]}}]}]"#;
        let u = usage_from_response(arr).unwrap();
        assert_eq!((u.output_tokens, u.web_searches), (8, 1));
    }

    #[test]
    fn sniffing_bodies_arrays_and_frames() {
        let body =
            br#"{"candidates":[],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":3}}"#;
        assert_eq!(usage_from_response(body).unwrap().output_tokens, 3);
        let arr = br#"[{"usageMetadata":{"promptTokenCount":2}},{"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":8}},{"x":1}]"#;
        assert_eq!(usage_from_response(arr).unwrap().output_tokens, 8);
        assert!(usage_from_response(br#"{"candidates":[]}"#).is_none());
        assert!(usage_from_response(b"\"usageMetadata\" garbage").is_none());
        let frame = Frame {
            raw: bytes::Bytes::new(),
            event: None,
            data: r#"{"usageMetadata":{"promptTokenCount":4,"thoughtsTokenCount":1}}"#.into(),
        };
        let u = usage_from_frame(&frame).unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.reasoning_tokens),
            (4, 1, 1)
        );
    }
}
