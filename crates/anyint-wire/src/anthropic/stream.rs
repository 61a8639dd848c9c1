//! Messages streams: upstream SSE frames → canonical events ([`StreamDecoder`]) and canonical
//! events → the SSE bytes an Anthropic client receives ([`StreamEncoder`]).

mod decoder;
mod encoder;
mod unwrap;

pub use decoder::StreamDecoder;
pub use encoder::{StreamEncoder, error_event};

#[cfg(test)]
mod tests;
