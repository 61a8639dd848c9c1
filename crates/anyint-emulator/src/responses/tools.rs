//! Validation of a Responses request's `tools` (flat `function`, `custom`,
//! `namespace`; hosted tools are refused), `tool_choice` and `text`
//! (`format` text / json_object / json_schema, `verbosity`), each with the
//! value the response object echoes back.

use serde_json::{Map, Value, json};

use super::input::CallKind;
use super::schema;
use crate::content::ToolChoice;
use crate::error::ApiError;

/// Hosted (built-in) tool types, which the emulator does not serve.
const HOSTED_TOOLS: &[&str] = &[
    "web_search",
    "web_search_2025_08_26",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "file_search",
    "code_interpreter",
    "computer",
    "computer_use_preview",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
    "tool_search",
    "programmatic_tool_calling",
];
/// Longest function or custom tool name.
const MAX_NAME: usize = 64;

/// A tool the emulator may call.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Callable {
    pub(crate) name: String,
    pub(crate) kind: CallKind,
    /// The `namespace` tool this one sits in.
    pub(crate) namespace: Option<String>,
    /// JSON schema of a function's arguments (custom tools: none).
    pub(crate) parameters: Option<Value>,
}

/// The validated `tools`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tools {
    /// Function and custom tools, namespaces flattened, in request order.
    pub(crate) callable: Vec<Callable>,
    /// The list the response echoes (defaults filled in).
    pub(crate) echo: Vec<Value>,
    /// Characters of the `tools` JSON, for prompt token counting.
    pub(crate) chars: usize,
}

/// The validated `tool_choice`.
#[derive(Clone, Debug)]
pub(crate) struct Selection {
    pub(crate) choice: ToolChoice,
    /// `allowed_tools`: the only tool names that may be called.
    pub(crate) allowed: Option<Vec<String>>,
    pub(crate) echo: Value,
}

/// What the answer text must be.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Format {
    Text,
    JsonObject,
    /// The `schema` of a `json_schema` format.
    JsonSchema(Value),
}

/// The validated `text` config.
#[derive(Clone, Debug)]
pub(crate) struct TextConfig {
    pub(crate) format: Format,
    pub(crate) echo: Value,
}

/// `obj[key]`, treating an explicit `null` as absent.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, param: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object()
        .ok_or_else(|| ApiError::invalid_type(param, "an object", v))
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a str, ApiError> {
    let param = if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    };
    match field(obj, key) {
        None => Err(ApiError::missing(&param)),
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(ApiError::invalid_type(&param, "a string", v)),
    }
}

fn optional<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    at: &str,
    expected: &str,
    ok: fn(&Value) -> bool,
) -> Result<Option<&'a Value>, ApiError> {
    match field(obj, key) {
        Some(v) if !ok(v) => Err(ApiError::invalid_type(&format!("{at}.{key}"), expected, v)),
        other => Ok(other),
    }
}

/// Function / custom tool and schema names: `^[a-zA-Z0-9_-]{1,64}$`.
fn check_name(name: &str, param: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_value(
            param,
            format!(
                "Invalid '{param}': string does not match pattern. Expected a string that \
                 matches the pattern '^[a-zA-Z0-9_-]{{1,{MAX_NAME}}}$'."
            ),
        ))
    }
}

/// Validates `tools`.
pub(crate) fn tools(v: Option<&Value>) -> Result<Tools, ApiError> {
    let list = match v {
        None => return Ok(Tools::default()),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(ApiError::invalid_type("tools", "an array", v)),
    };
    let mut out = Tools {
        chars: Value::Array(list.clone()).to_string().chars().count(),
        ..Tools::default()
    };
    for (i, t) in list.iter().enumerate() {
        let at = format!("tools[{i}]");
        let obj = object(t, &at)?;
        let echo = match string(obj, "type", &at)? {
            "namespace" => {
                let name = string(obj, "name", &at)?;
                optional(obj, "description", &at, "a string", Value::is_string)?;
                let inner = match field(obj, "tools") {
                    None => return Err(ApiError::missing(&format!("{at}.tools"))),
                    Some(Value::Array(a)) => a,
                    Some(v) => {
                        return Err(ApiError::invalid_type(
                            &format!("{at}.tools"),
                            "an array",
                            v,
                        ));
                    }
                };
                let mut echoed = Vec::new();
                for (j, t) in inner.iter().enumerate() {
                    let here = format!("{at}.tools[{j}]");
                    let o = object(t, &here)?;
                    let kind = string(o, "type", &here)?;
                    if !matches!(kind, "function" | "custom") {
                        return Err(ApiError::invalid_value(
                            &format!("{here}.type"),
                            format!(
                                "Invalid value: '{kind}'. Supported values are: 'function' \
                                 and 'custom'."
                            ),
                        ));
                    }
                    let (callable, echo) = callable(o, kind, &here, Some(name))?;
                    out.callable.push(callable);
                    echoed.push(echo);
                }
                let mut echo = obj.clone();
                echo.insert("tools".to_owned(), Value::Array(echoed));
                Value::Object(echo)
            }
            kind @ ("function" | "custom") => {
                let (callable, echo) = callable(obj, kind, &at, None)?;
                out.callable.push(callable);
                echo
            }
            hosted if HOSTED_TOOLS.contains(&hosted) => {
                return Err(ApiError::invalid_request(format!(
                    "Hosted tool '{hosted}' is not supported by this server (the anyint \
                     emulator serves only function, custom and namespace tools)."
                ))
                .with_param(format!("{at}.type"))
                .with_code("unsupported_value"));
            }
            other => {
                return Err(ApiError::invalid_value(
                    &format!("{at}.type"),
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'function', 'custom', \
                         'namespace', {}.",
                        HOSTED_TOOLS
                            .iter()
                            .map(|h| format!("'{h}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        };
        out.echo.push(echo);
    }
    Ok(out)
}

/// One function or custom tool and its echo.
fn callable(
    obj: &Map<String, Value>,
    kind: &str,
    at: &str,
    namespace: Option<&str>,
) -> Result<(Callable, Value), ApiError> {
    let name = string(obj, "name", at)?;
    check_name(name, &format!("{at}.name"))?;
    optional(obj, "description", at, "a string", Value::is_string)?;
    let mut echo = obj.clone();
    echo.entry("description").or_insert(Value::Null);
    if kind == "custom" {
        if let Some(format) = optional(obj, "format", at, "an object", Value::is_object)? {
            custom_format(format, &format!("{at}.format"))?;
        }
        let tool = Callable {
            name: name.to_owned(),
            kind: CallKind::Custom,
            namespace: namespace.map(str::to_owned),
            parameters: None,
        };
        return Ok((tool, Value::Object(echo)));
    }
    let parameters = optional(obj, "parameters", at, "an object", Value::is_object)?;
    let strict = optional(obj, "strict", at, "a boolean", Value::is_boolean)?;
    if strict == Some(&Value::Bool(true)) {
        if let Some(params) = parameters {
            schema::check_strict(params).map_err(|msg| {
                ApiError::invalid_request(format!("Invalid schema for function '{name}': {msg}"))
                    .with_param(format!("{at}.parameters"))
                    .with_code("invalid_function_parameters")
            })?;
        }
    }
    echo.insert(
        "parameters".to_owned(),
        parameters.cloned().unwrap_or(Value::Null),
    );
    echo.insert(
        "strict".to_owned(),
        strict.cloned().unwrap_or(Value::Bool(true)),
    );
    let tool = Callable {
        name: name.to_owned(),
        kind: CallKind::Function,
        namespace: namespace.map(str::to_owned),
        parameters: parameters.cloned(),
    };
    Ok((tool, Value::Object(echo)))
}

/// A custom tool's `format`: `{type:"text"}` or a lark / regex grammar.
fn custom_format(v: &Value, at: &str) -> Result<(), ApiError> {
    let obj = object(v, at)?;
    match string(obj, "type", at)? {
        "text" => Ok(()),
        "grammar" => {
            let syntax = string(obj, "syntax", at)?;
            if !matches!(syntax, "lark" | "regex") {
                return Err(ApiError::invalid_value(
                    &format!("{at}.syntax"),
                    format!("Invalid value: '{syntax}'. Supported values are: 'lark' and 'regex'."),
                ));
            }
            string(obj, "definition", at)?;
            Ok(())
        }
        other => Err(ApiError::invalid_value(
            &format!("{at}.type"),
            format!("Invalid value: '{other}'. Supported values are: 'text' and 'grammar'."),
        )),
    }
}

fn not_in_tools(kind: &str) -> ApiError {
    ApiError::invalid_value(
        "tool_choice",
        format!("Tool choice '{kind}' not found in 'tools' parameter."),
    )
}

/// Validates `tool_choice` against the callable tools.
pub(crate) fn tool_choice(v: Option<&Value>, callable: &[Callable]) -> Result<Selection, ApiError> {
    let Some(v) = v else {
        return Ok(Selection {
            choice: ToolChoice::Auto,
            allowed: None,
            echo: json!("auto"),
        });
    };
    let choice = match v {
        Value::String(s) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            other => {
                return Err(ApiError::invalid_value(
                    "tool_choice",
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'none', 'auto', and \
                         'required'."
                    ),
                ));
            }
        },
        Value::Object(obj) => {
            let kind = string(obj, "type", "tool_choice")?;
            match kind {
                "function" | "custom" => {
                    let name = string(obj, "name", "tool_choice")?;
                    let want = if kind == "function" {
                        CallKind::Function
                    } else {
                        CallKind::Custom
                    };
                    if !callable.iter().any(|t| t.name == name && t.kind == want) {
                        return Err(not_in_tools(kind));
                    }
                    ToolChoice::Named(name.to_owned())
                }
                "allowed_tools" => return allowed_tools(obj, callable, v),
                other => return Err(not_in_tools(other)),
            }
        }
        other => {
            return Err(ApiError::invalid_type(
                "tool_choice",
                "a string or object",
                other,
            ));
        }
    };
    Ok(Selection {
        choice,
        allowed: None,
        echo: v.clone(),
    })
}

/// `{type:"allowed_tools", mode:"auto"|"required", tools:[{type,name}…]}`.
fn allowed_tools(
    obj: &Map<String, Value>,
    callable: &[Callable],
    raw: &Value,
) -> Result<Selection, ApiError> {
    let choice = match string(obj, "mode", "tool_choice")? {
        "auto" => ToolChoice::Auto,
        "required" => ToolChoice::Required,
        other => {
            return Err(ApiError::invalid_value(
                "tool_choice.mode",
                format!("Invalid value: '{other}'. Supported values are: 'auto' and 'required'."),
            ));
        }
    };
    let list = match field(obj, "tools") {
        None => return Err(ApiError::missing("tool_choice.tools")),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(ApiError::invalid_type("tool_choice.tools", "an array", v)),
    };
    let mut allowed = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let at = format!("tool_choice.tools[{i}]");
        let o = object(t, &at)?;
        let kind = string(o, "type", &at)?;
        if !matches!(kind, "function" | "custom") {
            return Err(not_in_tools(kind));
        }
        let name = string(o, "name", &at)?;
        if !callable.iter().any(|t| t.name == name) {
            return Err(not_in_tools(kind));
        }
        allowed.push(name.to_owned());
    }
    Ok(Selection {
        choice,
        allowed: Some(allowed),
        echo: raw.clone(),
    })
}

/// Validates `text` (`format`, `verbosity`).
pub(crate) fn text(v: Option<&Value>) -> Result<TextConfig, ApiError> {
    let empty = Map::new();
    let obj = match v {
        None => &empty,
        Some(v) => object(v, "text")?,
    };
    let verbosity = match field(obj, "verbosity") {
        None => "medium",
        Some(Value::String(s)) if matches!(s.as_str(), "low" | "medium" | "high") => s,
        Some(v) => {
            return Err(ApiError::invalid_value(
                "text.verbosity",
                format!("Invalid value: {v}. Supported values are: 'low', 'medium', and 'high'."),
            ));
        }
    };
    let (format, format_echo) = match field(obj, "format") {
        None => (Format::Text, json!({"type": "text"})),
        Some(v) => format(object(v, "text.format")?)?,
    };
    Ok(TextConfig {
        format,
        echo: json!({"format": format_echo, "verbosity": verbosity}),
    })
}

fn format(obj: &Map<String, Value>) -> Result<(Format, Value), ApiError> {
    const AT: &str = "text.format";
    match string(obj, "type", AT)? {
        "text" => Ok((Format::Text, json!({"type": "text"}))),
        "json_object" => Ok((Format::JsonObject, json!({"type": "json_object"}))),
        "json_schema" => {
            let name = string(obj, "name", AT)?;
            check_name(name, "text.format.name")?;
            let schema = match field(obj, "schema") {
                None => return Err(ApiError::missing("text.format.schema")),
                Some(v @ Value::Object(_)) => v,
                Some(v) => {
                    return Err(ApiError::invalid_type("text.format.schema", "an object", v));
                }
            };
            let description = optional(obj, "description", AT, "a string", Value::is_string)?;
            let strict = optional(obj, "strict", AT, "a boolean", Value::is_boolean)?;
            if strict == Some(&Value::Bool(true)) {
                schema::check_strict(schema).map_err(|msg| {
                    ApiError::invalid_request(format!(
                        "Invalid schema for response_format '{name}': {msg}"
                    ))
                    .with_param("text.format.schema")
                    .with_code("invalid_json_schema")
                })?;
            }
            let echo = json!({
                "type": "json_schema",
                "description": description,
                "name": name,
                "schema": schema,
                "strict": strict.cloned().unwrap_or(Value::Bool(false)),
            });
            Ok((Format::JsonSchema(schema.clone()), echo))
        }
        other => Err(ApiError::invalid_value(
            "text.format.type",
            format!(
                "Invalid value: '{other}'. Supported values are: 'text', 'json_object', and \
                 'json_schema'."
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(r: Result<impl std::fmt::Debug, ApiError>) -> Option<String> {
        r.unwrap_err().param
    }

    #[test]
    fn flat_function_custom_and_namespace_tools() {
        let list = json!([
            {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
            {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
            {"type": "namespace", "name": "files", "description": "d", "tools": [
                {"type": "function", "name": "read_file", "strict": false}]}
        ]);
        let t = tools(Some(&list)).unwrap();
        let names: Vec<_> = t.callable.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["get_weather", "apply_patch", "read_file"]);
        assert_eq!(t.callable[1].kind, CallKind::Custom);
        assert_eq!(t.callable[2].namespace.as_deref(), Some("files"));
        assert_eq!(t.echo[0]["strict"], true);
        assert!(t.echo[0]["description"].is_null());
        assert_eq!(t.echo[2]["tools"][0]["strict"], false);
    }

    #[test]
    fn tool_errors() {
        let nested = json!([{"type": "function", "function": {"name": "f"}}]);
        let e = tools(Some(&nested)).unwrap_err();
        assert_eq!(e.message, "Missing required parameter: 'tools[0].name'.");
        let hosted = json!([{"type": "web_search"}]);
        assert_eq!(
            tools(Some(&hosted)).unwrap_err().code,
            Some("unsupported_value")
        );
        let bad_name = json!([{"type": "function", "name": "a b"}]);
        assert_eq!(
            param(tools(Some(&bad_name))).as_deref(),
            Some("tools[0].name")
        );
        let loose = json!([{"type": "function", "name": "f", "strict": true,
            "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}]);
        let e = tools(Some(&loose)).unwrap_err();
        assert_eq!(e.code, Some("invalid_function_parameters"));
        assert_eq!(e.param.as_deref(), Some("tools[0].parameters"));
    }

    #[test]
    fn tool_choices() {
        let t = tools(Some(
            &json!([{"type": "function", "name": "f"}, {"type": "custom", "name": "c"}]),
        ))
        .unwrap()
        .callable;
        assert_eq!(tool_choice(None, &t).unwrap().choice, ToolChoice::Auto);
        let named = tool_choice(Some(&json!({"type": "function", "name": "f"})), &t).unwrap();
        assert_eq!(named.choice, ToolChoice::Named("f".to_owned()));
        let custom = tool_choice(Some(&json!({"type": "custom", "name": "c"})), &t).unwrap();
        assert_eq!(custom.choice, ToolChoice::Named("c".to_owned()));
        let nested = json!({"type": "function", "function": {"name": "f"}});
        assert_eq!(
            param(tool_choice(Some(&nested), &t)).as_deref(),
            Some("tool_choice.name")
        );
        let missing = json!({"type": "function", "name": "g"});
        assert_eq!(
            param(tool_choice(Some(&missing), &t)).as_deref(),
            Some("tool_choice")
        );
        let hosted = json!({"type": "web_search"});
        assert!(tool_choice(Some(&hosted), &t).is_err());
        let allowed = json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "custom", "name": "c"}]});
        let a = tool_choice(Some(&allowed), &t).unwrap();
        assert_eq!(a.choice, ToolChoice::Required);
        assert_eq!(a.allowed, Some(vec!["c".to_owned()]));
    }

    #[test]
    fn text_formats() {
        assert_eq!(
            text(None).unwrap().echo,
            json!({"format": {"type": "text"}, "verbosity": "medium"})
        );
        let js = json!({"format": {"type": "json_schema", "name": "out", "strict": true, "schema": {
            "type": "object", "additionalProperties": false, "required": ["a"], "properties": {"a": {"type": "integer"}}}}});
        let t = text(Some(&js)).unwrap();
        assert!(matches!(t.format, Format::JsonSchema(_)));
        assert_eq!(t.echo["format"]["strict"], true);
        assert!(t.echo["format"]["description"].is_null());
        let no_schema = json!({"format": {"type": "json_schema", "name": "out"}});
        assert_eq!(
            param(text(Some(&no_schema))).as_deref(),
            Some("text.format.schema")
        );
        let nested = json!({"format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {}}}});
        assert_eq!(
            param(text(Some(&nested))).as_deref(),
            Some("text.format.name")
        );
        let loose = json!({"format": {"type": "json_schema", "name": "o", "strict": true, "schema": {"type": "object"}}});
        assert_eq!(
            text(Some(&loose)).unwrap_err().code,
            Some("invalid_json_schema")
        );
        assert!(text(Some(&json!({"verbosity": "loud"}))).is_err());
    }
}
