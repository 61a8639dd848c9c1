//! Hosted web search (see `shared/protocols/web-search.md`): the search a client asked the
//! upstream to run with its own tool (Responses `web_search` → Anthropic
//! `web_search_20250305` → Gemini `googleSearch` grounding), the searches an upstream reports,
//! and the URL citations that tie the answer's text to their sources.
//!
//! Citation offsets are **characters** (Unicode scalar values) into the answer text: every
//! [`Part::Text`](super::Part) of a response concatenated in order, or, in a stream, every
//! `TextDelta` so far. Client encoders cut them down to the text they show (a Responses
//! `output_text`); upstream decoders convert their own units (Gemini's UTF-8 byte spans,
//! Anthropic's whole cited blocks) into them.

use crate::DecodeError;

/// The client asked for hosted web search, run by the upstream's own search. Only present
/// when the gateway serves it on the route (a decode option); encoders of upstreams without a
/// search tool refuse it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebSearch {
    /// Search only these domains (subdomains included). Empty: no restriction.
    pub allowed_domains: Vec<String>,
    /// An approximate location to rank results for.
    pub user_location: Option<UserLocation>,
    /// Most searches in one response (Responses `max_tool_calls`, which caps built-in tools).
    pub max_uses: Option<u64>,
    /// Where the client declared it, as its API names it (`tools[1]`), for refusals.
    pub path: String,
    /// The client's tool type (`web_search`, `web_search_preview`, …), for messages.
    pub tool: String,
}

impl WebSearch {
    /// The 400 of an upstream that has no search tool (`target` names it).
    pub fn unsupported(&self, target: &str) -> DecodeError {
        DecodeError::at(
            "tools",
            self.path.clone(),
            format!(
                "the built-in tool `{}` is not supported by this model's upstream ({target}); \
                 remove it or choose a model whose provider serves web search",
                self.tool
            ),
        )
    }
}

/// An approximate user location (every field optional).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserLocation {
    /// City name.
    pub city: Option<String>,
    /// Region or state.
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
}

/// One source a search returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// The page (Gemini: Google's redirect link to it).
    pub url: String,
    /// Its title, when the upstream gave one.
    pub title: Option<String>,
}

/// One search the upstream ran inside a response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebSearchCall {
    /// The upstream's id for it (Anthropic `srvtoolu_…`; empty for Gemini). Client encoders
    /// mint their own ids; this one only matches stream events of the same search.
    pub id: String,
    /// The query, when known.
    pub query: Option<String>,
    /// Every query it ran (Gemini reports several at once; Anthropic one: `query`).
    pub queries: Vec<String>,
    /// What it found.
    pub sources: Vec<Source>,
    /// It failed (an Anthropic `web_search_tool_result_error`, or a search that never got
    /// its results because the turn paused).
    pub failed: bool,
}

/// A span of the answer text backed by a source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Citation {
    /// The source's URL.
    pub url: String,
    /// The source's title, when known.
    pub title: Option<String>,
    /// First character of the span in the answer text (see the module docs).
    pub start: usize,
    /// One past its last character.
    pub end: usize,
}

/// A search's progress in a stream: `Started` and `Searching` only when the upstream shows the
/// search as it runs (Anthropic); `Done` always, once per search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchProgress {
    /// A search began (its query still unknown).
    Started {
        /// The upstream's id of the search.
        id: String,
    },
    /// Its query is known and it runs.
    Searching {
        /// The upstream's id of the search.
        id: String,
        /// The query.
        query: Option<String>,
    },
    /// It finished (or failed), with what it found.
    Done(WebSearchCall),
}

/// The number of characters in `text` before byte offset `byte`, clamped to the text and
/// backed off to a character boundary.
pub fn chars_before(text: &str, byte: usize) -> usize {
    let mut at = byte.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.get(..at).map_or(0, |s| s.chars().count())
}

/// The byte offset of character `n` of `text` (its length when `n` is past the end).
pub fn byte_of_char(text: &str, n: usize) -> usize {
    text.char_indices().nth(n).map_or(text.len(), |(b, _)| b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_offsets_become_character_offsets() {
        let t = "Café Nørd opened in 2024.";
        assert_eq!(t.len(), 27);
        assert_eq!(t.chars().count(), 25);
        assert_eq!(chars_before(t, 27), 25);
        assert_eq!(chars_before(t, 99), 25);
        // Inside `é` (bytes 3..5): backed off to its start.
        assert_eq!(chars_before(t, 4), 3);
        assert_eq!(chars_before(t, 5), 4);
        assert_eq!(chars_before(t, 0), 0);
        assert_eq!(byte_of_char(t, 4), 5);
        assert_eq!(byte_of_char(t, 25), 27);
        assert_eq!(byte_of_char(t, 40), 27);
        // Astral characters count once.
        assert_eq!(chars_before("🦀x", 5), 2);
    }
}
