//! Messages requests: client body → canonical ([`decode_request`]) and canonical → upstream
//! body ([`encode_request`]).

pub(super) mod check;
mod decode;
mod encode;
mod format;

pub use decode::decode_request;
pub use encode::{effort_budget, encode_request};

#[cfg(test)]
mod tests;
