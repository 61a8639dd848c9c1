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
    /// The exact parameter path when it is finer than `param`, as the OpenAI API names it:
    /// `tools[2].type`, `input[5]`, `tool_choice.name`. `param` then holds its top-level field.
    pub path: Option<String>,
}

impl DecodeError {
    /// An error about one named field.
    pub fn field(param: &'static str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: Some(param),
            path: None,
        }
    }

    /// An error about one element of a top-level field: `param` is the field (`tools`), `path`
    /// the element (`tools[2].type`).
    pub fn at(param: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: Some(param),
            path: Some(path.into()),
        }
    }

    /// The most precise name of the parameter at fault: `path`, else `param`.
    pub fn param_path(&self) -> Option<&str> {
        self.path.as_deref().or(self.param)
    }

    /// A field the source family carried that the target upstream cannot honour. `param` is
    /// set when the name is one of the well-known fields (it must be `'static`); the message
    /// always names it.
    pub fn unsupported(field: &str, target: &str) -> Self {
        const KNOWN: &[&str] = &[
            "logprobs",
            "top_logprobs",
            "response_format",
            "frequency_penalty",
            "presence_penalty",
            "logit_bias",
            "audio",
            "prediction",
            "web_search_options",
            "modalities",
            "verbosity",
            "tool_choice",
            "functions",
            "function_call",
            "n",
            "parallel_tool_calls",
            "top_k",
            "tools",
            "cachedContent",
            "generationConfig",
            "output_config",
            "container",
            "mcp_servers",
            "documents",
        ];
        let root = field.split('.').next().unwrap_or(field);
        Self {
            message: format!(
                "`{field}` is not supported by this model's upstream ({target}); remove it or choose a model served by a compatible upstream"
            ),
            param: KNOWN.iter().find(|k| **k == root).copied(),
            path: None,
        }
    }

    /// An error about the body as a whole.
    pub fn body(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: None,
            path: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_names_the_field_and_reads_well() {
        for target in ["openai", "anthropic", "gemini"] {
            let e = DecodeError::unsupported("response_format.json_schema", target);
            assert_eq!(e.param, Some("response_format"));
            assert_eq!(
                e.message,
                format!(
                    "`response_format.json_schema` is not supported by this model's upstream ({target}); remove it or choose a model served by a compatible upstream"
                )
            );
            assert!(!e.message.contains("a openai") && !e.message.contains("a anthropic"));
        }
        assert_eq!(DecodeError::unsupported("x_custom", "openai").param, None);
    }
}
