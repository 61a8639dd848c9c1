//! Extended thinking: its type and budget, and the sampling parameters it
//! rules out.

use serde_json::{Map, Value};

use super::fields::{field, uint};
use crate::anthropic::error::AnthropicError;

/// Smallest `thinking.budget_tokens`.
const MIN_BUDGET: u64 = 1024;

/// Extended thinking as requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Thinking {
    /// `display: "omitted"`: thinking blocks carry only the signature.
    pub(crate) omitted: bool,
}

pub(super) fn thinking(
    obj: &Map<String, Value>,
    max_tokens: Option<usize>,
) -> Result<Option<Thinking>, AnthropicError> {
    let Some(v) = field(obj, "thinking") else {
        return Ok(None);
    };
    let Some(t) = v.as_object() else {
        return Err(AnthropicError::expected("thinking", "a valid dictionary"));
    };
    let omitted = field(t, "display").and_then(Value::as_str) == Some("omitted");
    match field(t, "type").and_then(Value::as_str) {
        Some("disabled") => return Ok(None),
        Some("adaptive") => {}
        Some("enabled") => {
            let Some(budget) = field(t, "budget_tokens") else {
                return Err(AnthropicError::missing("thinking.enabled.budget_tokens"));
            };
            let budget = uint(budget, "thinking.enabled.budget_tokens")?;
            if budget < MIN_BUDGET {
                return Err(AnthropicError::expected(
                    "thinking.enabled.budget_tokens",
                    "greater than or equal to 1024",
                ));
            }
            if let Some(max) = max_tokens {
                if u64::try_from(max).unwrap_or(u64::MAX) <= budget {
                    return Err(AnthropicError::invalid(
                        "`max_tokens` must be greater than `thinking.budget_tokens`. Please \
                         consult our documentation at \
                         https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
                    ));
                }
            }
        }
        _ => {
            return Err(AnthropicError::invalid(
                "thinking: Input tag found using 'type' does not match any of the expected \
                 tags: 'enabled', 'disabled', 'adaptive'",
            ));
        }
    }
    if let Some(temp) = field(obj, "temperature").and_then(Value::as_f64) {
        if (temp - 1.0).abs() > f64::EPSILON {
            return Err(AnthropicError::invalid(
                "`temperature` may only be set to 1 when thinking is enabled. Please consult \
                 our documentation at \
                 https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility",
            ));
        }
    }
    if field(obj, "top_k").is_some() {
        return Err(AnthropicError::invalid(
            "`top_k` must be unset when thinking is enabled. Please consult our documentation \
             at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility",
        ));
    }
    Ok(Some(Thinking { omitted }))
}
