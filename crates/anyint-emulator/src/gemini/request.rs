//! Validation of a `GenerateContentRequest` (or `countTokens` body) into
//! [`GenerateRequest`], rejecting what the real API rejects: unknown field
//! names (proto JSON accepts camelCase and snake_case), empty `contents`,
//! bad roles, parts without exactly one data field, non-object function
//! responses, invalid function names and out-of-range generation config.
//!
//! [`parse`] reads the endpoint's body shape and the top level, counts the
//! prompt's tokens, and hands each part to the file that owns its rules:
//! `contents` (roles, parts and their one data field), `tools`
//! (declarations and `toolConfig`), `config` (`generationConfig` and
//! thinking) and `format` (structured output: `responseMimeType`,
//! `responseSchema`, `responseJsonSchema`). `text` reads the validated
//! contents for the content rules.

mod config;
mod contents;
mod fields;
mod format;
mod parse;
mod text;
mod tools;

pub(crate) use format::Output as ResponseFormat;
pub(crate) use parse::{Endpoint, GenerateRequest, check_search, parse};
pub(crate) use text::{last_function_result, last_user_text};

#[cfg(test)]
mod tests;
