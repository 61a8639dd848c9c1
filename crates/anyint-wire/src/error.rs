//! Decode errors: what was wrong with a client's or upstream's bytes, phrased for the client.

/// A request body the gateway cannot accept. `message` is safe to show to the client and says
/// what to fix; `param` names the offending top-level field when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// What is wrong and how to fix it. Never contains request content.
    pub message: String,
    /// The request field at fault, e.g. `model`.
    pub param: Option<&'static str>,
}

impl DecodeError {
    /// An error about one named field.
    pub fn field(param: &'static str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: Some(param),
        }
    }

    /// An error about the body as a whole.
    pub fn body(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: None,
        }
    }
}
