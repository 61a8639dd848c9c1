//! anyint-wire: the bytes ⇄ types layer of the gateway.
//!
//! Owns SSE framing, each family's wire knowledge (what a request carries, where usage and errors
//! live in a response) and the canonical types shared by every family. It must never do IO: no
//! tokio, no HTTP client, no clock. Everything here is a pure function or a small state machine
//! fed with bytes, so it can be tested exhaustively and cannot block the gateway.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::string_slice))]

pub mod anthropic;
pub mod canonical;
pub mod embeddings;
pub mod error;
pub mod gemini;
pub mod json;
pub mod openai;
pub mod report;
pub mod responses;
mod schema;
pub mod sse;
pub mod translate;

pub use canonical::Usage;
pub use error::DecodeError;
