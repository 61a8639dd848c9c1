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
    // Gemini writes `usageMetadata` into every chunk, so the tap reads it from every frame of
    // every Gemini stream: through the scanner, parsing only that field. `sniff`'s serde read
    // built the whole chunk as a `Value` (its `rest`, for the search count) after trying it as
    // an array, about 29,000 instructions a chunk. A frame that may count searches (the key
    // spelled out, or any `\u` escape that could spell it) is still read by `sniff`.
    static SEARCHES: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"webSearchQueries"));
    static ESCAPE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\\u"));
    let bytes = frame.data.as_bytes();
    if SEARCHES.find(bytes).is_some() || ESCAPE.find(bytes).is_some() {
        return sniff(bytes);
    }
    crate::json::top_level_or(bytes, "usageMetadata", || sniff(bytes).map(Counts))
        .map(|Counts(u)| u)
}

/// A `usageMetadata` object read as canonical usage (no searches: those are in the rest of the
/// chunk).
struct Counts(Usage);

impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::<String, Value>::deserialize(d).map(|m| Counts(from_metadata(&m)))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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

    fn frame_of(data: &str) -> Frame {
        Frame {
            raw: bytes::Bytes::new(),
            event: None,
            data: data.into(),
        }
    }

    /// A chunk's JSON: candidates with text (escapes, `\u` included), grounding metadata with
    /// or without searches, and `usageMetadata` absent, null, counts of every JSON type, or
    /// something else.
    fn chunk_json() -> impl Strategy<Value = String> {
        let count = prop_oneof![
            3 => (0u64..100).prop_map(|n| json!(n)),
            1 => (0u64..100).prop_map(|n| json!(n.to_string())),
            1 => Just(json!(7.0)),
            1 => Just(json!(-3)),
            1 => Just(Value::Null),
        ];
        let names = proptest::sample::subsequence(
            vec![
                "promptTokenCount",
                "candidatesTokenCount",
                "thoughtsTokenCount",
                "cachedContentTokenCount",
                "toolUsePromptTokenCount",
                "prompt_token_count",
            ],
            0..6,
        );
        let metadata = (names, proptest::collection::vec(count, 6)).prop_map(|(names, counts)| {
            let mut m = serde_json::Map::new();
            for (name, c) in names.into_iter().zip(counts) {
                m.insert(name.into(), c);
            }
            m.insert(
                "promptTokensDetails".into(),
                json!([{"modality": "TEXT", "tokenCount": 9}]),
            );
            Value::Object(m)
        });
        let usage = prop_oneof![
            2 => Just(None),
            1 => Just(Some(Value::Null)),
            6 => metadata.prop_map(Some),
            1 => Just(Some(json!(5))),
        ];
        let text = "[a-z \"\\\\\n\u{e9}\u{1f600}]{0,12}";
        let grounding = prop_oneof![
            4 => Just(None),
            1 => Just(Some(json!({"webSearchQueries": ["q1", "q2"]}))),
        ];
        (usage, text, grounding, any::<bool>()).prop_map(|(usage, text, grounding, escape)| {
            let mut candidate =
                json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
            if let Some(g) = grounding {
                candidate["groundingMetadata"] = g;
            }
            let mut chunk = json!({"candidates": [candidate], "modelVersion": "m"});
            if let Some(u) = usage {
                chunk["usageMetadata"] = u;
            }
            let text = chunk.to_string();
            // Now and then non-ASCII written as `\u` escapes, as some serialisers do.
            if escape {
                text.replace('\u{e9}', "\\u00e9")
            } else {
                text
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// A frame's usage read through the scanner is the one serde's whole-chunk read gives.
        #[test]
        fn frame_usage_is_read_as_the_whole_chunk_read_reads_it(data in chunk_json()) {
            prop_assert_eq!(usage_from_frame(&frame_of(&data)), sniff(data.as_bytes()), "{}", data);
        }
    }

    /// Frames the scanner path answers, and those it leaves to serde.
    #[test]
    fn frame_usage_edge_cases() {
        for data in [
            r#"{"candidates":[],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":3}}"#,
            r#"{"usageMetadata":null}"#,
            r#"{"usageMetadata":5,"candidates":[]}"#,
            r#"{"usageMetadata":{"promptTokenCount":1},"usageMetadata":{"promptTokenCount":2}}"#,
            r#"{"candidates":[{"groundingMetadata":{"webSearchQueries":["q"]}}],"usageMetadata":{"candidatesTokenCount":1}}"#,
            r#"{"candidates":[{"groundingMetadata":{"web\u0053earchQueries":["q"]}}],"usageMetadata":{"candidatesTokenCount":1}}"#,
            r#"{"candidates":[]}"#,
            r#"{"usageMetadata":{"promptTokenCount":2}"#,
            r#"[{"usageMetadata":{"promptTokenCount":2}}]"#,
        ] {
            assert_eq!(
                usage_from_frame(&frame_of(data)),
                sniff(data.as_bytes()),
                "{data}"
            );
        }
        let escaped = r#"{"candidates":[{"groundingMetadata":{"web\u0053earchQueries":["q"]}}],"usageMetadata":{"candidatesTokenCount":1}}"#;
        assert_eq!(
            usage_from_frame(&frame_of(escaped)).unwrap().web_searches,
            1
        );
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
