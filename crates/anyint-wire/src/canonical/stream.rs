//! Canonical stream events: what every stream decoder emits and every stream encoder consumes.
//!
//! Sequencing rules decoders guarantee: `Start` comes first; text and reasoning deltas belong to
//! the current content block; a tool call is opened by `ToolCallStart` with its ordinal
//! `index` (0, 1, …) and continued by `ToolArgsDelta` with the same index; `Usage` may come
//! any number of times and carries the latest cumulative counts; a search's `WebSearch` events
//! come in the order started, searching, done (the first two may be missing); a `Citation` comes
//! after the text it cites; `Finish` comes once, after all content; `End` closes a stream that
//! completed normally. A stream that ends without `End` was cut short.

use super::{ChatRequest, Citation, FinishReason, SearchProgress, ToolChoice, Usage};

/// One canonical stream event.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// The response began.
    Start {
        /// Response ID.
        id: String,
        /// Model as the upstream named it.
        model: String,
    },
    /// More answer text.
    TextDelta(String),
    /// More reasoning text.
    ReasoningDelta(String),
    /// The reasoning block's signature, tagged with its origin (see [`super::signature`]).
    ReasoningSignature(String),
    /// Opaque redacted reasoning.
    RedactedReasoning(String),
    /// A tool call begins.
    ToolCallStart {
        /// Ordinal of the call in this response.
        index: u32,
        /// Call ID.
        id: String,
        /// Function name.
        name: String,
    },
    /// More argument JSON for tool call `index`.
    ToolArgsDelta {
        /// Ordinal of the call.
        index: u32,
        /// A fragment of the arguments' JSON text.
        json: String,
    },
    /// Hosted web search progress (see [`SearchProgress`]).
    WebSearch(SearchProgress),
    /// A span of the answer text so far is backed by a source; offsets are characters of
    /// every `TextDelta` so far (see [`Citation`]).
    Citation(Citation),
    /// Latest cumulative usage.
    Usage(Usage),
    /// Generation finished.
    Finish {
        /// Why.
        reason: FinishReason,
        /// The stop sequence that matched, when known.
        stop_sequence: Option<String>,
    },
    /// The upstream reported an error inside the stream.
    Error {
        /// The upstream's message (for logs; the client gets a gateway message).
        message: String,
    },
    /// The stream completed normally.
    End,
}

/// What a stream encoder needs to know about the response it writes.
#[derive(Clone, Debug, Default)]
pub struct EncodeOptions {
    /// The model ID to show the client (the public ID it asked for).
    pub model: String,
    /// OpenAI only: whether the client asked for the final usage chunk.
    pub include_usage: bool,
    /// An estimate of input tokens, for families that announce usage before the upstream
    /// reports it (Anthropic `message_start`). The real count follows at the end.
    pub input_tokens_estimate: u64,
    /// Unix seconds to stamp on chunks that carry a creation time.
    pub created: i64,
}

/// What a request is decoded and answered with beyond the canonical model, both ways:
///
/// - Decoding the client's request: what the route it is decoded for serves (`web_search`;
///   see [`crate::translate::decode_request_with`]).
/// - Decoding an upstream's answer: what it must enforce because the upstream could not be
///   asked for it (`first_tool_call_only`). Build these with [`DecodeOptions::for_request`]
///   from the canonical request that was sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Keep only the first tool call of the turn: the request said `parallel_tool_calls:
    /// false` (Anthropic `disable_parallel_tool_use`) with tools that may be called, and an
    /// upstream without such a switch (Gemini) may make several (structured-output.md §8).
    /// The dropped calls were generated, so usage is left as the upstream reported it.
    pub first_tool_call_only: bool,
    /// The upstream runs hosted web search itself (the provider's `web_search` setting): a
    /// Responses client's `web_search` tool becomes [`ChatRequest::web_search`] instead of a
    /// 400 (see [`crate::responses::decode_request_with`]). Other families' hosted tools are
    /// refused either way.
    pub web_search: bool,
}

impl DecodeOptions {
    /// The options for answers to `req` (`web_search` when it asked for a search, which only
    /// a route that serves one decodes).
    pub fn for_request(req: &ChatRequest) -> Self {
        Self {
            first_tool_call_only: req.parallel_tool_calls == Some(false)
                && !req.tools.is_empty()
                && req.tool_choice != Some(ToolChoice::None),
            web_search: req.web_search.is_some(),
        }
    }
}
