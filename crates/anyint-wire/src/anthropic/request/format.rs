//! Structured output for an Anthropic upstream: native `output_config.format` where it can
//! carry the request, else one forced tool whose input is the answer (rules in the module
//! docs of [`crate::anthropic`]).

use serde_json::{Value, json};

use crate::DecodeError;
use crate::anthropic::{JSON_TOOL, JSON_VALUE_TOOL};
use crate::canonical::{ChatRequest, OutputFormat, ToolChoice};
use crate::schema::{self, Target};

/// How the request's format is sent.
#[derive(Debug, PartialEq)]
pub(super) enum Plan {
    /// Free text.
    None,
    /// `output_config.format: {type: json_schema, schema}`.
    Native(Value),
    /// One forced tool, its input the answer (or, for [`JSON_VALUE_TOOL`], its `value`).
    Tool {
        name: &'static str,
        description: String,
        schema: Value,
        /// Strict tool use (constrained input), for a guarantee the native format cannot
        /// give because of the schema's root.
        strict: bool,
    },
}

/// Decides how `req.format` goes to Anthropic. `thinking`: extended thinking will be enabled.
pub(super) fn plan(req: &ChatRequest, thinking: bool) -> Result<Plan, DecodeError> {
    let (schema, source, guarantee, description) = match &req.format {
        None | Some(OutputFormat::Text) => return Ok(Plan::None),
        Some(OutputFormat::JsonObject) => {
            return forced(
                req,
                thinking,
                "response_format",
                "JSON mode has no native equivalent",
                JSON_TOOL,
                json!({"type": "object"}),
                None,
                false,
            );
        }
        Some(OutputFormat::JsonSchema {
            schema: None,
            source,
            ..
        }) => {
            return forced(
                req,
                thinking,
                source.param(),
                "a JSON format without a schema has no native equivalent",
                JSON_TOOL,
                json!({"type": "object"}),
                None,
                false,
            );
        }
        Some(OutputFormat::JsonSchema {
            schema: Some(schema),
            source,
            strict,
            description,
            ..
        }) => (
            schema,
            *source,
            *strict == Some(true),
            description.as_deref(),
        ),
    };
    if source.is_anthropic() {
        // The client's own Anthropic schema: as it was sent.
        return Ok(Plan::Native(schema.clone()));
    }
    let mut translated = schema::translate(schema, source, guarantee, Target::Anthropic)?;
    let recursive = schema::is_recursive(&translated);
    if recursive && guarantee {
        return Err(DecodeError::at(
            source.param(),
            source.path(),
            format!(
                "`{}`: a recursive schema cannot be enforced by this model's upstream \
                 (anthropic); flatten the recursion to a fixed depth or choose a model served \
                 by a compatible upstream",
                source.path()
            ),
        ));
    }
    if schema::is_object_type(&translated) {
        if !recursive {
            schema::describe_root(&mut translated, description);
            return Ok(Plan::Native(translated));
        }
        return forced(
            req,
            thinking,
            source.param(),
            "a recursive schema has no native equivalent",
            JSON_TOOL,
            translated,
            description,
            false,
        );
    }
    forced(
        req,
        thinking,
        source.param(),
        "native structured output needs an object at the schema's root",
        JSON_VALUE_TOOL,
        wrap_value(translated),
        description,
        guarantee,
    )
}

/// The forced-tool plan, unless the request also asks for what a forced tool excludes.
#[expect(
    clippy::too_many_arguments,
    reason = "private helper; each argument is one fact of the message or the tool"
)]
fn forced(
    req: &ChatRequest,
    thinking: bool,
    param: &'static str,
    why: &str,
    name: &'static str,
    schema: Value,
    description: Option<&str>,
    strict: bool,
) -> Result<Plan, DecodeError> {
    if thinking {
        return Err(DecodeError::field(
            param,
            format!(
                "this structured output needs a forced tool call on this model's upstream \
                 (anthropic) ({why}), and Anthropic refuses forced tool use together with \
                 extended thinking; turn thinking (reasoning) off, or send a JSON schema whose \
                 root is an object"
            ),
        ));
    }
    let callable = !req.tools.is_empty() && req.tool_choice != Some(ToolChoice::None);
    if callable {
        return Err(DecodeError::field(
            param,
            format!(
                "this structured output needs a forced tool call on this model's upstream \
                 (anthropic) ({why}), which would stop the model calling the request's own \
                 tools; remove the tools (or set the tool choice to none), or send a JSON \
                 schema whose root is an object"
            ),
        ));
    }
    let what = if name == JSON_VALUE_TOOL {
        "Respond by calling this tool exactly once, with the complete answer in `value`."
    } else {
        "Respond by calling this tool exactly once; its input is the complete answer."
    };
    let description = match description {
        Some(d) if !d.is_empty() => format!("{what} The answer: {d}"),
        _ => what.to_owned(),
    };
    Ok(Plan::Tool {
        name,
        description,
        schema,
        strict,
    })
}

/// `{"type":"object","properties":{"value":S},"required":["value"]}`, with `S`'s definitions
/// moved to the root, where its references point.
fn wrap_value(mut schema: Value) -> Value {
    let mut root = json!({
        "type": "object",
        "required": ["value"],
        "additionalProperties": false,
    });
    if let (Some(inner), Some(outer)) = (schema.as_object_mut(), root.as_object_mut()) {
        for k in ["$defs", "definitions"] {
            if let Some(defs) = inner.remove(k) {
                outer.insert(k.into(), defs);
            }
        }
    }
    if let Some(outer) = root.as_object_mut() {
        outer.insert("properties".into(), json!({ "value": schema }));
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{SchemaSource, Tool};

    fn schema_request(schema: Value, strict: Option<bool>) -> ChatRequest {
        ChatRequest {
            format: Some(OutputFormat::JsonSchema {
                name: "out".into(),
                schema: Some(schema),
                description: Some("the weather".into()),
                strict,
                source: SchemaSource::ChatResponseFormat,
            }),
            ..ChatRequest::default()
        }
    }

    #[test]
    fn object_schemas_go_native_transformed() {
        let req = schema_request(
            json!({"type": "object", "properties": {
                "city": {"type": "string", "minLength": 1},
                "temp": {"type": ["number", "null"]}}, "required": ["city", "temp"]}),
            None,
        );
        assert_eq!(
            plan(&req, false).unwrap(),
            Plan::Native(json!({"type": "object", "additionalProperties": false,
                "description": "the weather",
                "properties": {
                    "city": {"type": "string", "description": "{minLength: 1}"},
                    "temp": {"anyOf": [{"type": "number"}, {"type": "null"}]}},
                "required": ["city", "temp"]}))
        );
        // Thinking and the client's tools are fine with the native format.
        let mut req = req;
        req.tools.push(Tool {
            name: "f".into(),
            description: None,
            parameters: json!({"type": "object"}),
            cache: None,
        });
        assert!(matches!(plan(&req, true), Ok(Plan::Native(_))));
    }

    #[test]
    fn a_guarantee_refuses_what_anthropic_cannot_enforce() {
        let req = schema_request(
            json!({"type": "object", "additionalProperties": false, "required": ["n"],
                "properties": {"n": {"type": "integer", "minimum": 1}}}),
            Some(true),
        );
        let e = plan(&req, false).unwrap_err();
        assert_eq!(e.param, Some("response_format"));
        assert_eq!(
            e.path.as_deref(),
            Some("response_format.json_schema.schema.properties.n.minimum")
        );
    }

    #[test]
    fn json_mode_recursion_and_array_roots_use_the_forced_tool() {
        let mut req = ChatRequest {
            format: Some(OutputFormat::JsonObject),
            ..ChatRequest::default()
        };
        let Plan::Tool {
            name,
            schema,
            strict,
            ..
        } = plan(&req, false).unwrap()
        else {
            panic!("forced tool expected")
        };
        assert_eq!(
            (name, schema, strict),
            (JSON_TOOL, json!({"type": "object"}), false)
        );
        let e = plan(&req, true).unwrap_err();
        assert!(e.message.contains("extended thinking"), "{e}");
        req.tools.push(Tool {
            name: "f".into(),
            description: None,
            parameters: json!({"type": "object"}),
            cache: None,
        });
        assert!(plan(&req, false).unwrap_err().message.contains("own tools"));
        req.tool_choice = Some(ToolChoice::None);
        assert!(matches!(plan(&req, false), Ok(Plan::Tool { .. })));

        let tree = json!({"type": "object", "properties": {"kids": {"type": "array",
            "items": {"$ref": "#"}}}});
        let Plan::Tool { name, strict, .. } =
            plan(&schema_request(tree.clone(), None), false).unwrap()
        else {
            panic!("forced tool expected")
        };
        assert_eq!((name, strict), (JSON_TOOL, false));
        let e = plan(&schema_request(tree, Some(true)), false).unwrap_err();
        assert!(e.message.contains("recursive"), "{e}");

        let list = json!({"type": "array", "items": {"$ref": "#/$defs/x"},
            "$defs": {"x": {"type": "string"}}});
        let Plan::Tool {
            name,
            schema,
            strict,
            description,
        } = plan(&schema_request(list, Some(true)), false).unwrap()
        else {
            panic!("forced tool expected")
        };
        assert_eq!((name, strict), (JSON_VALUE_TOOL, true));
        assert!(
            description.ends_with("The answer: the weather"),
            "{description}"
        );
        assert_eq!(
            schema,
            json!({"type": "object", "required": ["value"], "additionalProperties": false,
                "$defs": {"x": {"type": "string"}},
                "properties": {"value": {"type": "array", "items": {"$ref": "#/$defs/x"}}}})
        );
    }

    #[test]
    fn anthropic_schemas_pass_as_sent() {
        let s = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let req = ChatRequest {
            format: Some(OutputFormat::constrained(
                s.clone(),
                SchemaSource::AnthropicOutputFormat,
            )),
            ..ChatRequest::default()
        };
        assert_eq!(plan(&req, true).unwrap(), Plan::Native(s));
    }
}
