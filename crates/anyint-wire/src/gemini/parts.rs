//! Gemini `Part` ⇄ canonical [`Part`], shared by the request, response and stream codecs.
//!
//! Decoding keeps the function-call bookkeeping (synthesized ids, matching responses to calls
//! by name) and tags the thought signatures it reads as Gemini's (see
//! [`crate::canonical::signature`]); encoding keeps thought signatures on the part they belong
//! to, and sends each only where it may go.

mod decode;
mod encode;

pub(super) use decode::PartsDecoder;
pub(super) use encode::{PartsWriter, function_call, image_part};

#[cfg(test)]
mod tests;
