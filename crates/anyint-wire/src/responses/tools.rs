//! Responses tools ⇄ canonical functions, and the names that restore a client's tools.
//!
//! - `function` tools are flat (`{type, name, description?, parameters?, strict?}`); a missing
//!   or null `parameters` is an empty object schema. `strict` has no canonical home and is
//!   dropped (the schema still reaches the upstream, without the constrained-decoding promise).
//! - A `custom` (free-text) tool becomes a function with one required string parameter
//!   `input`; a `grammar` format is appended to the description as text, since no other
//!   upstream can enforce it. Its calls are restored as `custom_tool_call{input}`.
//! - A `namespace` groups functions and custom tools; each is flattened to the function
//!   `<namespace>__<name>` (two underscores) and restored with its `namespace` on the way back.
//!   A namespace's description is appended to each of its tools' descriptions.
//! - Flattened names must be unique (400 naming the later tool).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::DecodeError;
use crate::canonical::{Tool, ToolChoice};

/// The separator between a namespace and a tool name in a flattened function name.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// The canonical function name of tool `name`, inside `namespace` when given.
pub fn flat_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}{NAMESPACE_SEPARATOR}{name}"),
        _ => name.to_owned(),
    }
}

/// A tool as the client declared it, for restoring its calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ClientTool {
    /// The namespace it was declared in.
    pub namespace: Option<String>,
    /// Its name inside the namespace.
    pub name: String,
    /// A free-text `custom` tool (calls are `custom_tool_call{input}`).
    pub custom: bool,
}

/// Canonical function name → the client's tool, for every tool that needs restoring (custom
/// or namespaced); plain functions are not listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ToolNames(HashMap<String, ClientTool>);

impl ToolNames {
    /// The client's tool behind canonical function `name`, if it is not a plain function.
    pub(super) fn get(&self, name: &str) -> Option<&ClientTool> {
        self.0.get(name)
    }
}

fn string<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// The JSON Schema of a custom tool's one parameter.
fn custom_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"input": {"type": "string", "description": "The raw input for the tool."}},
        "required": ["input"],
        "additionalProperties": false
    })
}

fn custom_description(t: &Value) -> Option<String> {
    let desc = string(t, "description").map(str::to_owned);
    let format = t.get("format");
    let grammar = format.filter(|f| string(f, "type") == Some("grammar"));
    let Some(g) = grammar else {
        return desc;
    };
    let syntax = string(g, "syntax").unwrap_or("lark");
    let definition = string(g, "definition").unwrap_or_default();
    let rule =
        format!("The `input` must be text that follows this {syntax} grammar:\n{definition}");
    Some(match desc {
        Some(d) => format!("{d}\n\n{rule}"),
        None => rule,
    })
}

/// One `function` or `custom` tool (at `path`), flattened into `namespace`.
fn one_tool(
    t: &Value,
    path: &str,
    namespace: Option<(&str, Option<&str>)>,
    names: &mut ToolNames,
) -> Result<Tool, DecodeError> {
    let kind = string(t, "type").unwrap_or_default();
    let name = string(t, "name").filter(|n| !n.is_empty()).ok_or_else(|| {
        DecodeError::at(
            "tools",
            format!("{path}.name"),
            format!("{path}.name is required (a non-empty string)"),
        )
    })?;
    let flat = flat_name(namespace.map(|(ns, _)| ns), name);
    let (description, parameters) = match kind {
        "function" => (
            string(t, "description").map(str::to_owned),
            match t.get("parameters") {
                None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
                Some(p @ Value::Object(_)) => p.clone(),
                Some(_) => {
                    return Err(DecodeError::at(
                        "tools",
                        format!("{path}.parameters"),
                        format!("{path}.parameters must be a JSON Schema object"),
                    ));
                }
            },
        ),
        "custom" => (custom_description(t), custom_schema()),
        other => {
            return Err(DecodeError::at(
                "tools",
                format!("{path}.type"),
                format!("{path}.type `{other}` cannot be used here; use `function` or `custom`"),
            ));
        }
    };
    let description = match (
        description,
        namespace.and_then(|(ns, d)| d.map(|d| (ns, d))),
    ) {
        (Some(d), Some((ns, nd))) => Some(format!("{d}\n\n(Part of `{ns}`: {nd})")),
        (None, Some((ns, nd))) => Some(format!("(Part of `{ns}`: {nd})")),
        (d, None) => d,
    };
    if kind == "custom" || namespace.is_some() {
        names.0.insert(
            flat.clone(),
            ClientTool {
                namespace: namespace.map(|(ns, _)| ns.to_owned()),
                name: name.to_owned(),
                custom: kind == "custom",
            },
        );
    }
    Ok(Tool {
        name: flat,
        description,
        parameters,
        cache: None,
    })
}

/// Decodes `tools` (null or an array) into canonical functions and the names to restore.
/// Built-in tools are refused here too (the native-only scan names them first), except hosted
/// web search when the route serves it (`web_search`), which is skipped here and read by
/// [`super::search::decode_tool`].
pub(super) fn decode_tools(
    tools: Option<&Value>,
    web_search: bool,
) -> Result<(Vec<Tool>, ToolNames), DecodeError> {
    let mut names = ToolNames::default();
    let Some(tools) = tools.filter(|t| !t.is_null()) else {
        return Ok((Vec::new(), names));
    };
    let arr = tools
        .as_array()
        .ok_or_else(|| DecodeError::field("tools", "`tools` must be an array"))?;
    let mut out: Vec<Tool> = Vec::with_capacity(arr.len());
    let push = |tool: Tool, path: &str, out: &mut Vec<Tool>| {
        if out.iter().any(|t| t.name == tool.name) {
            return Err(DecodeError::at(
                "tools",
                path.to_owned(),
                format!(
                    "{path}: tool names must be unique, and `{}` is declared twice \
                     (a namespaced tool counts as `<namespace>{NAMESPACE_SEPARATOR}<name>`)",
                    tool.name
                ),
            ));
        }
        out.push(tool);
        Ok(())
    };
    for (i, t) in arr.iter().enumerate() {
        let path = format!("tools[{i}]");
        if web_search && string(t, "type").is_some_and(super::search::is_web_search) {
            continue;
        }
        if string(t, "type") == Some("namespace") {
            let ns = string(t, "name").filter(|n| !n.is_empty()).ok_or_else(|| {
                DecodeError::at(
                    "tools",
                    format!("{path}.name"),
                    format!("{path}.name is required (a non-empty string)"),
                )
            })?;
            let inner = t.get("tools").and_then(Value::as_array).ok_or_else(|| {
                DecodeError::at(
                    "tools",
                    format!("{path}.tools"),
                    format!("{path}.tools must be an array"),
                )
            })?;
            let ns_desc = string(t, "description").filter(|d| !d.is_empty());
            for (j, inner_tool) in inner.iter().enumerate() {
                let inner_path = format!("{path}.tools[{j}]");
                let tool = one_tool(inner_tool, &inner_path, Some((ns, ns_desc)), &mut names)?;
                push(tool, &inner_path, &mut out)?;
            }
        } else {
            let tool = one_tool(t, &path, None, &mut names)?;
            push(tool, &path, &mut out)?;
        }
    }
    Ok((out, names))
}

/// The names to restore, read leniently from a client's `tools` (tools that do not decode,
/// such as built-in ones, are skipped).
pub(super) fn names_of(tools: Option<&Value>) -> ToolNames {
    let mut names = ToolNames::default();
    for t in tools.and_then(Value::as_array).into_iter().flatten() {
        if string(t, "type") == Some("namespace") {
            let ns = string(t, "name").unwrap_or_default();
            for inner in t
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let _ = one_tool(inner, "", Some((ns, None)), &mut names);
            }
        } else {
            let _ = one_tool(t, "", None, &mut names);
        }
    }
    names
}

/// Decodes `tool_choice`. `allowed_tools` restricts `tools` to the tools it names and becomes
/// `auto` or `required` (its `mode`); no tools allowed at all becomes `none`.
pub(super) fn decode_tool_choice(
    choice: &Value,
    tools: &mut Vec<Tool>,
) -> Result<Option<ToolChoice>, DecodeError> {
    let bad = |path: &str, msg: String| DecodeError::at("tool_choice", path.to_owned(), msg);
    let named = |v: &Value, path: &str| -> Result<String, DecodeError> {
        let name = string(v, "name")
            .ok_or_else(|| bad(&format!("{path}.name"), format!("{path}.name is required")))?;
        Ok(flat_name(string(v, "namespace"), name))
    };
    Ok(Some(match choice {
        Value::Null => return Ok(None),
        Value::String(s) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(bad(
                    "tool_choice",
                    format!("`tool_choice` `{other}` is not one of none, auto, required"),
                ));
            }
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function" | "custom") => ToolChoice::Tool(named(choice, "tool_choice")?),
            Some("allowed_tools") => {
                let list = o.get("tools").and_then(Value::as_array).ok_or_else(|| {
                    bad(
                        "tool_choice.tools",
                        "tool_choice.tools must be an array".to_owned(),
                    )
                })?;
                let allowed = list
                    .iter()
                    .enumerate()
                    .map(|(i, t)| named(t, &format!("tool_choice.tools[{i}]")))
                    .collect::<Result<Vec<String>, _>>()?;
                if let Some(missing) = allowed
                    .iter()
                    .find(|n| !tools.iter().any(|t| &t.name == *n))
                {
                    return Err(bad(
                        "tool_choice.tools",
                        format!("tool_choice.tools names `{missing}`, which is not in `tools`"),
                    ));
                }
                tools.retain(|t| allowed.contains(&t.name));
                match o.get("mode").and_then(Value::as_str) {
                    _ if tools.is_empty() => ToolChoice::None,
                    Some("required") => ToolChoice::Required,
                    None | Some("auto") => ToolChoice::Auto,
                    Some(other) => {
                        return Err(bad(
                            "tool_choice.mode",
                            format!("tool_choice.mode `{other}` is not one of auto, required"),
                        ));
                    }
                }
            }
            _ => {
                return Err(bad(
                    "tool_choice",
                    "`tool_choice` must be none, auto, required or an object with a `type`"
                        .to_owned(),
                ));
            }
        },
        _ => {
            return Err(bad(
                "tool_choice",
                "`tool_choice` must be a string or an object".to_owned(),
            ));
        }
    }))
}

/// A canonical function tool as a flat Responses `function` tool. `strict: false` is explicit:
/// the Responses API defaults to strict mode, which refuses schemas that are not strict-ready.
pub(super) fn encode_tool(t: &Tool) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!("function"));
    o.insert("name".into(), json!(t.name));
    if let Some(d) = &t.description {
        o.insert("description".into(), json!(d));
    }
    o.insert("parameters".into(), t.parameters.clone());
    o.insert("strict".into(), json!(false));
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_and_namespaced_tools_flatten_and_are_remembered() {
        let tools = json!([
            {"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": true},
            {"type": "custom", "name": "apply_patch", "description": "Edit files.",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: \"*** Begin Patch\""}},
            {"type": "namespace", "name": "calendar", "description": "The user's calendar.", "tools": [
                {"type": "function", "name": "list_events"},
                {"type": "custom", "name": "note"}
            ]}
        ]);
        let (t, names) = decode_tools(Some(&tools), false).unwrap();
        let flat: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            flat,
            [
                "get_weather",
                "apply_patch",
                "calendar__list_events",
                "calendar__note"
            ]
        );
        assert_eq!(t[1].parameters, custom_schema());
        let d = t[1].description.as_deref().unwrap();
        assert!(
            d.starts_with(
                "Edit files.\n\nThe `input` must be text that follows this lark grammar:\nstart:"
            ),
            "{d}"
        );
        assert_eq!(t[2].parameters, json!({"type": "object", "properties": {}}));
        assert_eq!(
            t[2].description.as_deref(),
            Some("(Part of `calendar`: The user's calendar.)")
        );
        assert_eq!(names.get("get_weather"), None);
        assert_eq!(
            names.get("apply_patch"),
            Some(&ClientTool {
                namespace: None,
                name: "apply_patch".into(),
                custom: true
            })
        );
        assert_eq!(
            names.get("calendar__note"),
            Some(&ClientTool {
                namespace: Some("calendar".into()),
                name: "note".into(),
                custom: true
            })
        );
        assert_eq!(names_of(Some(&tools)), names);
    }

    #[test]
    fn invalid_tools_name_their_path() {
        let cases = [
            (json!([{"type": "function"}]), "tools[0].name"),
            (
                json!([{"type": "function", "name": "f"}, {"type": "function", "name": "f"}]),
                "tools[1]",
            ),
            (
                json!([{"type": "function", "name": "a__b"}, {"type": "namespace", "name": "a", "tools": [{"type": "function", "name": "b"}]}]),
                "tools[1].tools[0]",
            ),
            (
                json!([{"type": "function", "name": "f", "parameters": "x"}]),
                "tools[0].parameters",
            ),
            (
                json!([{"type": "namespace", "name": "n"}]),
                "tools[0].tools",
            ),
            (json!([{"type": "web_search"}]), "tools[0].name"),
            (
                json!([{"type": "web_search", "name": "w"}]),
                "tools[0].type",
            ),
        ];
        for (tools, path) in cases {
            let e = decode_tools(Some(&tools), false).unwrap_err();
            assert_eq!(e.param, Some("tools"));
            assert_eq!(e.param_path(), Some(path), "{tools}");
        }
        assert!(decode_tools(Some(&json!({})), false).is_err());
    }

    #[test]
    fn tool_choice_forms() {
        let (base, _) = decode_tools(
            Some(&json!([
                {"type": "function", "name": "a"}, {"type": "function", "name": "b"},
                {"type": "namespace", "name": "n", "tools": [{"type": "custom", "name": "c"}]}
            ])),
            false,
        )
        .unwrap();
        let choose = |c: Value| {
            let mut t = base.clone();
            decode_tool_choice(&c, &mut t).map(|c| (c, t.len()))
        };
        assert_eq!(choose(json!("auto")).unwrap(), (Some(ToolChoice::Auto), 3));
        assert_eq!(choose(json!("none")).unwrap(), (Some(ToolChoice::None), 3));
        assert_eq!(
            choose(json!("required")).unwrap(),
            (Some(ToolChoice::Required), 3)
        );
        assert_eq!(choose(Value::Null).unwrap(), (None, 3));
        assert_eq!(
            choose(json!({"type": "function", "name": "b"})).unwrap(),
            (Some(ToolChoice::Tool("b".into())), 3)
        );
        assert_eq!(
            choose(json!({"type": "custom", "name": "c", "namespace": "n"})).unwrap(),
            (Some(ToolChoice::Tool("n__c".into())), 3)
        );
        assert_eq!(
            choose(json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "b"}]})).unwrap(),
            (Some(ToolChoice::Required), 1)
        );
        assert_eq!(
            choose(json!({"type": "allowed_tools", "mode": "auto", "tools": []})).unwrap(),
            (Some(ToolChoice::None), 0)
        );
        for (c, path) in [
            (json!("sometimes"), "tool_choice"),
            (json!({"type": "function"}), "tool_choice.name"),
            (
                json!({"type": "allowed_tools", "tools": [{"type": "function", "name": "zz"}]}),
                "tool_choice.tools",
            ),
            (
                json!({"type": "allowed_tools", "mode": "x", "tools": [{"type": "function", "name": "a"}]}),
                "tool_choice.mode",
            ),
            (json!(3), "tool_choice"),
        ] {
            assert_eq!(choose(c).unwrap_err().param_path(), Some(path));
        }
    }

    #[test]
    fn encodes_flat_non_strict_functions() {
        let t = Tool {
            name: "f".into(),
            description: Some("d".into()),
            parameters: json!({"type": "object"}),
            cache: None,
        };
        assert_eq!(
            encode_tool(&t),
            json!({"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": false})
        );
    }
}
