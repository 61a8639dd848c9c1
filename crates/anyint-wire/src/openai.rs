//! The OpenAI Chat Completions wire format (see `shared/protocols/openai.md`).
//!
//! Today this module knows what the passthrough path needs: the fields a request must carry,
//! where usage sits in a response and in a stream, and the error envelope. Full translation to
//! the canonical model arrives with the other families.

mod error;
mod request;
mod usage;

pub use error::{ErrorBody, decode_error};
pub use request::ChatRequestHead;
pub use usage::{StreamUsage, usage_from_chunk, usage_from_response};
