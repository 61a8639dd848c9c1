//! Validation errors shared by the full decoder and the passthrough head, worded like the
//! Messages API's own (`field: problem`) so clients see familiar messages.

use crate::DecodeError;

pub(in crate::anthropic) fn required(param: &'static str) -> DecodeError {
    DecodeError::field(param, format!("{param}: Field required"))
}

pub(in crate::anthropic) fn not_string(param: &'static str) -> DecodeError {
    DecodeError::field(param, format!("{param}: Input should be a valid string"))
}

pub(in crate::anthropic) fn model(model: &str) -> Result<(), DecodeError> {
    if model.is_empty() {
        return Err(DecodeError::field(
            "model",
            "model: String should have at least 1 character",
        ));
    }
    Ok(())
}

pub(in crate::anthropic) fn max_tokens_type() -> DecodeError {
    DecodeError::field(
        "max_tokens",
        "max_tokens: Input should be a non-negative integer",
    )
}

pub(in crate::anthropic) fn stream_type() -> DecodeError {
    DecodeError::field("stream", "stream: Input should be a valid boolean")
}

pub(in crate::anthropic) fn messages_type() -> DecodeError {
    DecodeError::field(
        "messages",
        "messages: Input should be a valid list of message objects",
    )
}

pub(in crate::anthropic) fn messages_empty() -> DecodeError {
    DecodeError::field("messages", "messages: at least one message is required")
}

pub(in crate::anthropic) fn role(i: usize) -> DecodeError {
    let message = if i == 0 {
        "messages.0.role: Input should be 'user' or 'assistant' (a system message may follow \
         the first message; put the opening system prompt in `system`)"
            .to_owned()
    } else {
        format!("messages.{i}.role: Input should be 'user', 'assistant' or 'system'")
    };
    DecodeError::field("messages", message)
}

/// Whether `role` may stand at `messages.{i}`: a system message only after the first.
pub(in crate::anthropic) fn role_allowed(i: usize, role: Option<&str>) -> bool {
    match role {
        Some("user" | "assistant") => true,
        Some("system") => i > 0,
        _ => false,
    }
}

pub(in crate::anthropic) fn content_required(i: usize) -> DecodeError {
    DecodeError::field("messages", format!("messages.{i}.content: Field required"))
}
