//! Validation of a Messages (or count_tokens) request body into
//! [`MessagesRequest`], rejecting what the real API rejects with its
//! `path: problem` wording: unknown top-level fields, missing `max_tokens`,
//! bad roles and blocks, `tool_use`/`tool_result` pairing, thinking limits
//! and the parameters removed in API version `2026-10-21`.
//!
//! [`parse`] checks the top level and hands each part to the file that owns
//! its rules: `messages` (turns, roles, `tool_use`/`tool_result` pairing,
//! `system`), `blocks` (one content block's shape and `cache_control`),
//! `tools` (definitions and `tool_choice`), `thinking` and `format`
//! (structured output: `output_config`, `output_format`). `text` reads the
//! validated messages for the content rules.

mod blocks;
mod fields;
mod format;
mod messages;
mod parse;
mod text;
mod thinking;
mod tools;
mod version;

pub(crate) use parse::{Endpoint, MessagesRequest, parse};
pub(crate) use text::{last_tool_result, last_user_text, text_of};
pub(crate) use version::Version;

#[cfg(test)]
mod tests;
