//! Function declarations (name rules, parameters), Google Search grounding
//! (`googleSearch`, and the rules for mixing it with functions) and
//! `toolConfig`, which picks the tool choice and may narrow the callable
//! tools.

use serde_json::{Map, Value};

use super::fields::{bad_value, get, known};
use crate::content::{Tool, ToolChoice};
use crate::gemini::error::GoogleError;

/// The fields a `Tool` may carry.
const TOOL_FIELDS: &[&str] = &[
    "functionDeclarations",
    "googleSearch",
    "googleSearchRetrieval",
    "codeExecution",
    "urlContext",
    "computerUse",
    "fileSearch",
    "googleMaps",
    "retrieval",
];

/// Whether the request's tools include `googleSearch` (a 1.5-era
/// `googleSearchRetrieval` is refused, as 2.0+ models refuse it).
pub(super) fn google_search(obj: &Map<String, Value>) -> Result<bool, GoogleError> {
    let mut found = false;
    for (i, t) in get(obj, "tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(tool) = t.as_object() else {
            continue;
        };
        known(tool, TOOL_FIELDS, &format!("tools[{i}]"))?;
        if get(tool, "googleSearchRetrieval").is_some() {
            return Err(GoogleError::invalid(
                "Please use google_search field instead of google_search_retrieval field.",
            ));
        }
        if let Some(gs) = get(tool, "googleSearch") {
            if !gs.is_object() {
                return Err(bad_value(
                    &format!("tools[{i}].google_search"),
                    "type.googleapis.com/google.ai.generativelanguage.v1beta.Tool.GoogleSearch",
                    gs,
                ));
            }
            found = true;
        }
    }
    Ok(found)
}

/// Whether `toolConfig.includeServerSideToolInvocations` is true.
pub(super) fn server_side_invocations(obj: &Map<String, Value>) -> bool {
    get(obj, "toolConfig")
        .and_then(Value::as_object)
        .and_then(|c| get(c, "includeServerSideToolInvocations"))
        .and_then(Value::as_bool)
        == Some(true)
}

fn valid_function_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

pub(super) fn tools(
    obj: &Map<String, Value>,
    msg: &str,
) -> Result<(Vec<Tool>, usize), GoogleError> {
    let list = match get(obj, "tools") {
        None => return Ok((Vec::new(), 0)),
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(bad_value(
                "tools",
                "type.googleapis.com/google.ai.generativelanguage.v1beta.Tool",
                v,
            ));
        }
    };
    let mut tools = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let decls = t
            .as_object()
            .and_then(|o| get(o, "functionDeclarations"))
            .and_then(Value::as_array);
        for (j, d) in decls.into_iter().flatten().enumerate() {
            let name = d.get("name").and_then(Value::as_str).unwrap_or("");
            if !valid_function_name(name) {
                return Err(GoogleError::field(
                    &format!("{msg}.tools[{i}].function_declarations[{j}].name"),
                    "Invalid function name. Must start with a letter or an underscore. Must be \
                     alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:) or dashes \
                     (-), with a maximum length of 64.",
                ));
            }
            let params = d
                .get("parameters")
                .or_else(|| d.get("parametersJsonSchema"))
                .or_else(|| d.get("parameters_json_schema"))
                .filter(|p| !p.is_null())
                .cloned();
            tools.push(Tool {
                name: name.to_owned(),
                parameters: params,
            });
        }
    }
    let chars = Value::Array(list.clone()).to_string().chars().count();
    Ok((tools, chars))
}

/// `toolConfig.functionCallingConfig`: `AUTO`/`VALIDATED` → auto, `ANY` →
/// required (named when exactly one function is allowed), `NONE` → none.
/// `allowedFunctionNames` narrows the callable tools.
pub(super) fn tool_config(
    obj: &Map<String, Value>,
    tools: Vec<Tool>,
    msg: &str,
) -> Result<(Vec<Tool>, ToolChoice), GoogleError> {
    let fcc = get(obj, "toolConfig")
        .and_then(Value::as_object)
        .and_then(|c| get(c, "functionCallingConfig"))
        .and_then(Value::as_object);
    if fcc.is_some() && tools.is_empty() {
        return Err(GoogleError::invalid(
            "Function calling config is set without function_declarations.",
        ));
    }
    let mode = fcc
        .and_then(|c| get(c, "mode"))
        .map(|m| m.as_str().unwrap_or("").to_owned());
    let allowed: Vec<String> = fcc
        .and_then(|c| get(c, "allowedFunctionNames"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mode = mode.as_deref().unwrap_or("AUTO");
    if !matches!(
        mode,
        "AUTO" | "ANY" | "NONE" | "VALIDATED" | "MODE_UNSPECIFIED"
    ) {
        return Err(GoogleError::payload(&format!(
            "Invalid value at 'tool_config.function_calling_config.mode' \
             (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \
             \"{mode}\""
        )));
    }
    if !allowed.is_empty() && !matches!(mode, "ANY" | "VALIDATED") {
        return Err(GoogleError::field(
            &format!("{msg}.tool_config.function_calling_config.allowed_function_names"),
            "allowed_function_names may only be set when mode is ANY or VALIDATED.",
        ));
    }
    let tools: Vec<Tool> = if allowed.is_empty() {
        tools
    } else {
        tools
            .into_iter()
            .filter(|t| allowed.contains(&t.name))
            .collect()
    };
    let choice = match mode {
        _ if tools.is_empty() => ToolChoice::None,
        "NONE" => ToolChoice::None,
        "ANY" if allowed.len() == 1 => ToolChoice::Named(allowed.concat()),
        "ANY" => ToolChoice::Required,
        _ => ToolChoice::Auto,
    };
    Ok((tools, choice))
}
