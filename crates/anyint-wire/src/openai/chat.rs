//! OpenAI Chat Completions ⇄ canonical, for translation to and from other families.
//!
//! Decoding a client request keeps every field that changes the answer. Fields that do not
//! change it are dropped on purpose and listed here: `user`, `store`, `metadata`,
//! `service_tier`, `safety_identifier`, `prompt_cache_key`, `seed`, `stream_options` (the
//! gateway handles usage itself), `logprobs: false`, `response_format: {"type":"text"}`,
//! `modalities: ["text"]`, and zero-valued `frequency_penalty` / `presence_penalty`.
//! Everything else without a canonical home goes to `extra`, which other families' encoders
//! refuse with a 400 naming the field.
//!
//! Encoding for an OpenAI-compatible upstream: system blocks become one `system` message
//! (cache markers are dropped: OpenAI caches prompts automatically); reasoning parts in past
//! assistant turns are dropped (Chat Completions has no input for them); tool results become
//! `tool` messages; `max_tokens` is sent as `max_completion_tokens`; a thinking budget maps to
//! `reasoning_effort` (≤ 2048 low, ≤ 8192 medium, else high); `top_k` has no equivalent and is
//! refused, and so is `n > 1` (the translated path carries one choice back). A `tool` message
//! holds only text: a tool result's images go in a `user` message right after the tool
//! messages. Reasoning signatures are dropped (OpenAI has none). Usage sent to OpenAI clients
//! adds `prompt_tokens_details.cache_write_tokens` when the upstream wrote to its cache.

mod decode;
mod encode;
mod response;
mod shared;

pub use decode::decode_request;
pub use encode::encode_request;
pub(super) use response::{decode_finish, encode_finish, encode_usage};
pub use response::{decode_response, encode_response};

#[cfg(test)]
mod tests;
