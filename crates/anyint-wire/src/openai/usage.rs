//! Where OpenAI reports usage: the `usage` object of a response, and of the final stream chunk.

use serde::Deserialize;

use crate::Usage;

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        let prompt = u.prompt_tokens_details;
        Self {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
            cache_read_tokens: prompt.as_ref().and_then(|p| p.cached_tokens).unwrap_or(0),
            cache_write_tokens: prompt
                .as_ref()
                .and_then(|p| p.cache_write_tokens)
                .unwrap_or(0),
            reasoning_tokens: u
                .completion_tokens_details
                .and_then(|c| c.reasoning_tokens)
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
struct Chunk {
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
}

/// The usage of a non-streaming response body, if it reports one.
pub fn usage_from_response(body: &[u8]) -> Option<Usage> {
    crate::json::top_level(body, "usage", |w: WithUsage| w.usage).map(Usage::from)
}

/// What one stream chunk says about usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamUsage {
    /// The chunk carries no usage.
    None,
    /// The chunk carries usage alongside choices.
    Inline(Usage),
    /// The chunk exists only to carry usage (`choices: []`): the one `include_usage` adds.
    UsageOnly(Usage),
}

/// Inspects one `data:` payload of a chat stream. Cheap for the common chunk without usage:
/// it only parses when a `"usage"` key is followed by an object.
pub fn usage_from_chunk(data: &str) -> StreamUsage {
    if !has_usage_object(data) {
        return StreamUsage::None;
    }
    let Ok(chunk) = serde_json::from_str::<Chunk>(data) else {
        return StreamUsage::None;
    };
    match (chunk.usage, chunk.choices) {
        (Some(u), Some(c)) if c.is_empty() => StreamUsage::UsageOnly(u.into()),
        (Some(u), _) => StreamUsage::Inline(u.into()),
        (None, _) => StreamUsage::None,
    }
}

/// Whether a chat stream chunk sets a finish reason (`"finish_reason":"stop"`, not `null`).
pub fn gives_finish_reason(data: &str) -> bool {
    has_field_starting(data, &FINISH_KEY, b'"')
}

// One searcher for each key, for every chunk of every stream: `str::find` builds one per
// call, which cost more than the search itself on a short chunk.
/// The searcher for the `finish_reason` key.
pub(crate) static FINISH_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"finish_reason\""));
/// The searcher for the `usage` key.
pub(crate) static USAGE_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage\""));

fn has_usage_object(data: &str) -> bool {
    has_field_starting(data, &USAGE_KEY, b'{')
}

/// Whether some occurrence of the quoted key `key` (its finder) in `data` is followed by `:`
/// and a value starting with `first` (an occurrence inside a string value is followed by
/// something else, and the search goes on).
fn has_field_starting(data: &str, key: &memchr::memmem::Finder<'_>, first: u8) -> bool {
    let mut rest = data.as_bytes();
    while let Some(pos) = key.find(rest) {
        rest = rest.get(pos + key.needle().len()..).unwrap_or_default();
        if value_starts_with(rest, first) {
            return true;
        }
    }
    false
}

/// Whether `after_key`, the bytes after a quoted key, are `:` and a value starting with
/// `first` (JSON's whitespace, all ASCII, allowed around the colon).
pub(crate) fn value_starts_with(after_key: &[u8], first: u8) -> bool {
    after_key
        .trim_ascii_start()
        .strip_prefix(b":")
        .is_some_and(|after| after.trim_ascii_start().first() == Some(&first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_are_told_from_null_ones() {
        assert!(gives_finish_reason(
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#
        ));
        assert!(gives_finish_reason(
            r#"{"choices":[{"finish_reason" : "length"}]}"#
        ));
        assert!(!gives_finish_reason(
            r#"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}"#
        ));
        assert!(!gives_finish_reason(
            r#"{"choices":[{"delta":{"content":"finish_reason"}}]}"#
        ));
        // The key inside a string comes first; the field after it still counts.
        assert!(gives_finish_reason(
            r#"{"choices":[{"delta":{"content":"finish_reason"},"finish_reason":"stop"}]}"#
        ));
    }

    #[test]
    fn response_usage_is_read_as_serde_reads_the_whole_body() {
        let usage = r#"{"prompt_tokens":5,"completion_tokens":7}"#;
        let bodies = [
            format!(
                r#"{{"id":"x","choices":[{{"message":{{"content":"a \"usage\": {{}}"}}}}],"usage":{usage}}}"#
            ),
            format!(r#"{{"usage":{usage},"id":"x"}}"#),
            r#"{"id":"x","usage":null}"#.to_owned(),
            r#"{"id":"x"}"#.to_owned(),
            r#"{"id":"x","choices":[{"usage":{"prompt_tokens":9}}]}"#.to_owned(),
            // Serde refuses a duplicated field; the scanner leaves that case to it.
            format!(r#"{{"usage":{usage},"usage":{usage},"id":"x"}}"#),
            // An escaped key is left to serde, which reads it as `usage`.
            format!(r#"{{"\u0075sage":{usage}}}"#),
            r#"{"usage":"five"}"#.to_owned(),
            r#"{"usage":{"prompt_tokens":-1}}"#.to_owned(),
            format!(r#"{{"usage":{usage}}} trailing"#),
            // Serde reads a struct from an array too (here its first element as `usage`).
            format!(r#"[{{"usage":{usage}}}]"#),
            format!(r#"{{"usage":{usage}"#),
            String::new(),
        ];
        let mut read = 0;
        for body in &bodies {
            let by_serde = serde_json::from_slice::<WithUsage>(body.as_bytes())
                .ok()
                .and_then(|w| w.usage)
                .map(Usage::from);
            assert_eq!(usage_from_response(body.as_bytes()), by_serde, "{body}");
            read += usize::from(by_serde.is_some());
        }
        assert_eq!(read, 4, "the bodies serde reads a usage object from");
        // Read from the end, a usage that ends the body counts, where serde refuses the body:
        // the field twice, or a fault before it. An answer so written is billed, not free.
        for body in [
            r#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":5,"completion_tokens":7}}"#,
            r#"{"id":"x","choices":[{]}],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#,
        ] {
            let usage = usage_from_response(body.as_bytes());
            assert_eq!(
                usage.map(|u| (u.input_tokens, u.output_tokens)),
                Some((5, 7)),
                "{body}"
            );
        }
    }

    #[test]
    fn response_usage_with_details() {
        let u = usage_from_response(br#"{"id":"x","usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":3}}}"#).unwrap();
        assert_eq!(
            (
                u.input_tokens,
                u.output_tokens,
                u.cache_read_tokens,
                u.reasoning_tokens
            ),
            (5, 7, 2, 3)
        );
        assert!(usage_from_response(br#"{"id":"x"}"#).is_none());
        assert!(usage_from_response(b"not json").is_none());
    }

    #[test]
    fn chunk_kinds() {
        assert_eq!(
            usage_from_chunk(r#"{"choices":[{"delta":{}}],"usage":null}"#),
            StreamUsage::None
        );
        let only = usage_from_chunk(
            r#"{"choices":[],"usage": {"prompt_tokens":1,"completion_tokens":2}}"#,
        );
        assert!(matches!(only, StreamUsage::UsageOnly(u) if u.output_tokens == 2));
        let inline = usage_from_chunk(
            r#"{"choices":[{"delta":{}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
        );
        assert!(matches!(inline, StreamUsage::Inline(_)));
        assert_eq!(usage_from_chunk("[DONE]"), StreamUsage::None);
        assert_eq!(
            usage_from_chunk(r#"{"content":"\"usage\": {"}"#),
            StreamUsage::None
        );
    }
}
