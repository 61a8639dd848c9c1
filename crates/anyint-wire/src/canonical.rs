//! Canonical, family-independent types. Every family converts its wire format to and from
//! these, so translating between N families takes 2N converters, not N².
//!
//! The model covers what the chat families can express (text, images, tools, reasoning,
//! cache markers, sampling, stop sequences, structured output, hosted web search, usage). A request field a family cannot map here is
//! either listed as safely ignorable in that family's module docs, or kept in
//! [`ChatRequest::extra`]; an encoder for a *different* family refuses a non-empty `extra`
//! with a 400 naming the field, so nothing is dropped silently.

mod chat;
mod search;
pub mod signature;
mod stream;
mod usage;

pub use chat::{
    CacheControl, ChatRequest, ChatResponse, DEFAULT_FORMAT_NAME, FinishReason, ImageSource,
    Message, OutputFormat, Part, Reasoning, Role, SchemaSource, Tool, ToolChoice,
};
pub use search::{
    Citation, SearchProgress, Source, UserLocation, WebSearch, WebSearchCall, byte_of_char,
    chars_before,
};
pub use stream::{DecodeOptions, EncodeOptions, StreamEvent};
pub use usage::Usage;
