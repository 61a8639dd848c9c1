//! A Responses client's request → canonical (mapping in the module docs of
//! [`crate::responses`]).

use serde_json::{Map, Value};

use super::{RequestHead, input, native, search, tools};
use crate::DecodeError;
use crate::canonical::{ChatRequest, OutputFormat, Part, Reasoning, SchemaSource};

fn number<T>(
    obj: &Map<String, Value>,
    key: &'static str,
    read: impl Fn(&Value) -> Option<T>,
    what: &str,
) -> Result<Option<T>, DecodeError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => read(v)
            .map(Some)
            .ok_or_else(|| DecodeError::field(key, format!("`{key}` must be {what}"))),
    }
}

/// Decodes a client's Responses request into canonical form. Refuses (400) what only a native
/// Responses upstream can serve ([`RequestHead::native_only`]) and everything malformed,
/// naming the parameter. `previous_response_id` is not read: the gateway rebuilds the history
/// first ([`RequestHead::encode_with_input`]).
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, DecodeError> {
    decode_request_with(body, false)
}

/// [`decode_request`] for a route that serves hosted web search (`web_search`: the
/// gateway's provider setting): a `web_search*` tool becomes [`ChatRequest::web_search`]
/// instead of the 400 every other built-in tool still gets. Without the setting it is exactly
/// [`decode_request`], refusal included.
pub fn decode_request_with(body: &[u8], web_search: bool) -> Result<ChatRequest, DecodeError> {
    let head = RequestHead::decode(body)?;
    let obj: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| DecodeError::body(format!("the request body is not valid JSON: {e}")))?;
    if let Some(n) = native::scan_with(&obj, web_search) {
        return Err(n.error());
    }
    let (mut tools, _) = tools::decode_tools(obj.get("tools"), web_search)?;
    let tool_choice = match obj.get("tool_choice") {
        Some(c) => tools::decode_tool_choice(c, &mut tools)?,
        None => None,
    };
    let mut req = ChatRequest {
        model: head.model,
        stream: head.stream,
        tools,
        tool_choice,
        ..ChatRequest::default()
    };
    if let Some(i) = obj.get("instructions").and_then(Value::as_str)
        && !i.is_empty()
    {
        req.system.push(Part::text(i));
    }
    input::decode(obj.get("input"), &mut req)?;
    req.parallel_tool_calls = number(&obj, "parallel_tool_calls", Value::as_bool, "a boolean")?;
    req.max_tokens = number(
        &obj,
        "max_output_tokens",
        Value::as_u64,
        "a non-negative integer",
    )?;
    req.temperature = number(&obj, "temperature", Value::as_f64, "a number")?;
    req.top_p = number(&obj, "top_p", Value::as_f64, "a number")?;
    match number(
        &obj,
        "top_logprobs",
        Value::as_u64,
        "an integer from 0 to 20",
    )? {
        Some(n) if n > 20 => {
            return Err(DecodeError::field(
                "top_logprobs",
                "`top_logprobs` must be an integer from 0 to 20",
            ));
        }
        // Only OpenAI upstreams can return logprobs; the others' encoders refuse `extra`.
        Some(n) if n > 0 => {
            req.extra.insert("top_logprobs".into(), n.into());
        }
        _ => {}
    }
    let max_tool_calls = number(
        &obj,
        "max_tool_calls",
        Value::as_u64,
        "a non-negative integer",
    )?;
    if web_search {
        req.web_search = search::decode_tool(obj.get("tools"), max_tool_calls)?;
    }
    req.reasoning = reasoning(obj.get("reasoning"))?;
    req.format = match obj.get("text") {
        None | Some(Value::Null) => None,
        Some(Value::Object(text)) => match text.get("format") {
            None | Some(Value::Null) => None,
            Some(f) => Some(decode_format(f)?),
        },
        Some(_) => {
            return Err(DecodeError::field("text", "`text` must be an object"));
        }
    };
    Ok(req)
}

/// `reasoning`: an `effort` is kept as is (`none` means no reasoning to every encoder); a
/// reasoning object without one but with a `summary` asks the provider to think at its default
/// amount; `summary` itself has no canonical home (Anthropic and Gemini clients get the
/// thinking text anyway).
fn reasoning(v: Option<&Value>) -> Result<Option<Reasoning>, DecodeError> {
    let Some(Value::Object(r)) = v else {
        return match v {
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(DecodeError::field(
                "reasoning",
                "`reasoning` must be an object like {\"effort\": \"medium\"}",
            )),
        };
    };
    match r.get("effort") {
        Some(Value::String(e)) => Ok(Some(Reasoning {
            budget_tokens: None,
            effort: Some(e.clone()),
        })),
        None | Some(Value::Null) => Ok(r
            .get("summary")
            .filter(|s| !s.is_null())
            .map(|_| Reasoning::default())),
        Some(_) => Err(DecodeError::at(
            "reasoning",
            "reasoning.effort",
            "`reasoning.effort` must be a string",
        )),
    }
}

/// `text.format` (flat, structured-output.md §2) as a canonical format.
pub(super) fn decode_format(f: &Value) -> Result<OutputFormat, DecodeError> {
    let bad = |path: &str, msg: &str| DecodeError::at("text", path.to_owned(), msg.to_owned());
    match f.get("type").and_then(Value::as_str) {
        Some("text") => Ok(OutputFormat::Text),
        Some("json_object") => Ok(OutputFormat::JsonObject),
        Some("json_schema") => Ok(OutputFormat::JsonSchema {
            name: f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("text.format.name", "`text.format.name` is required"))?
                .to_owned(),
            schema: Some(
                f.get("schema")
                    .filter(|s| s.is_object())
                    .cloned()
                    .ok_or_else(|| {
                        bad(
                            "text.format.schema",
                            "`text.format.schema` must be an object",
                        )
                    })?,
            ),
            description: f
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            strict: f.get("strict").and_then(Value::as_bool),
            source: SchemaSource::ResponsesText,
        }),
        _ => Err(bad(
            "text.format.type",
            "`text.format.type` must be text, json_object or json_schema",
        )),
    }
}

/// `text.format` for a canonical format (`None` for plain text). Another family's schema is
/// translated to strict mode (see the crate's `schema` module), which may refuse it.
pub(super) fn encode_format(f: &OutputFormat) -> Result<Option<Value>, DecodeError> {
    let mut o = Map::new();
    match f {
        OutputFormat::Text => return Ok(None),
        OutputFormat::JsonObject => {
            o.insert("type".into(), "json_object".into());
        }
        OutputFormat::JsonSchema {
            name,
            schema,
            description,
            strict,
            source,
        } => {
            let (schema, strict) = crate::schema::for_openai(schema.as_ref(), *source, *strict)?;
            o.insert("type".into(), "json_schema".into());
            o.insert("name".into(), name.clone().into());
            if let Some(d) = description {
                o.insert("description".into(), d.clone().into());
            }
            if let Some(s) = schema {
                o.insert("schema".into(), s);
            }
            if let Some(s) = strict {
                o.insert("strict".into(), s.into());
            }
        }
    }
    Ok(Some(Value::Object(o)))
}

#[cfg(test)]
mod tests;
