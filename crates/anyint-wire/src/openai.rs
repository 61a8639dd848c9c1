//! The OpenAI Chat Completions wire format (see `shared/protocols/openai.md`).
//!
//! Two paths use it. Passthrough (OpenAI client, OpenAI-compatible upstream) needs only the
//! request head, usage sniffing and the error envelope. Translation uses the full codecs in
//! `chat` and `stream`, which convert to and from the canonical model.

mod chat;
mod error;
mod format;
mod request;
mod stream;
mod usage;

pub use chat::{decode_request, decode_response, encode_request, encode_response};
pub use error::{ErrorBody, decode_error};
pub use request::ChatRequestHead;
pub use stream::{StreamDecoder, StreamEncoder};
pub(crate) use usage::{FINISH_KEY, USAGE_KEY, value_starts_with};
pub use usage::{StreamUsage, gives_finish_reason, usage_from_chunk, usage_from_response};
