//! The top level of a request: the `countTokens` wrapper, the allowed
//! fields, and the prompt's token count (contents, system instruction,
//! tools and cached content). Builds the [`GenerateRequest`] the plan acts
//! on.

use serde_json::{Map, Value};

use super::config::{Config, config};
use super::contents::{contents, part, part_tokens};
use super::fields::{bad_value, get, known};
use super::format::Output;
use super::tools::{google_search, server_side_invocations, tool_config, tools};
use crate::content::{Tool, ToolChoice};
use crate::gemini::error::GoogleError;

const REQUEST: &str = "GenerateContentRequest";
const TOP_FIELDS: &[&str] = &[
    "model",
    "contents",
    "systemInstruction",
    "generationConfig",
    "tools",
    "toolConfig",
    "safetySettings",
    "cachedContent",
];
/// Tokens a `cachedContent` reference contributes (and reports as cached).
pub(crate) const CACHED_CONTENT_TOKENS: usize = 1024;

/// The parts of a generate request the emulator acts on.
#[derive(Clone, Debug)]
pub(crate) struct GenerateRequest {
    pub(crate) contents: Vec<Value>,
    pub(crate) tools: Vec<Tool>,
    pub(crate) tool_choice: ToolChoice,
    /// The tools include `googleSearch` (grounding).
    pub(crate) google_search: bool,
    /// The request declares functions (before `allowedFunctionNames`
    /// narrows them).
    pub(crate) declares_functions: bool,
    /// `toolConfig.includeServerSideToolInvocations`.
    pub(crate) server_side_invocations: bool,
    pub(crate) stop: Vec<String>,
    pub(crate) max_tokens: Option<usize>,
    pub(crate) candidates: usize,
    /// Thinking is on; `Some(true)` also returns thought summaries.
    pub(crate) thinking: Option<bool>,
    /// Prompt tokens: contents, system instruction and tools, plus the
    /// cached content (at least 1).
    pub(crate) prompt_tokens: usize,
    /// Tokens served from `cachedContent` (0 without it).
    pub(crate) cached_tokens: usize,
    /// What the answer's text must be (structured output).
    pub(crate) output: Output,
}

/// Which body shape to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Generate,
    CountTokens,
}

pub(crate) fn parse(
    json: Option<&Value>,
    endpoint: Endpoint,
) -> Result<GenerateRequest, GoogleError> {
    let Some(obj) = json.and_then(Value::as_object) else {
        return Err(GoogleError::payload("Unexpected token."));
    };
    if endpoint == Endpoint::CountTokens {
        known(obj, &["contents", "generateContentRequest"], "")?;
        if let Some(inner) = get(obj, "generateContentRequest") {
            let Some(inner) = inner.as_object() else {
                return Err(bad_value(
                    "generate_content_request",
                    "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentRequest",
                    inner,
                ));
            };
            return generate(inner, "CountTokensRequest.generate_content_request");
        }
        return generate(obj, "CountTokensRequest");
    }
    generate(obj, REQUEST)
}

fn generate(obj: &Map<String, Value>, msg: &str) -> Result<GenerateRequest, GoogleError> {
    if msg != "CountTokensRequest" {
        known(obj, TOP_FIELDS, "")?;
    }
    let contents = contents(obj, msg)?;
    let system_tokens = match get(obj, "systemInstruction") {
        None => 0,
        Some(Value::Object(sys)) => {
            let parts = get(sys, "parts").and_then(Value::as_array);
            for (j, p) in parts.into_iter().flatten().enumerate() {
                part(p, &format!("system_instruction.parts[{j}]"), msg)?;
            }
            parts.into_iter().flatten().map(part_tokens).sum()
        }
        Some(v) => {
            return Err(bad_value(
                "system_instruction",
                "type.googleapis.com/google.ai.generativelanguage.v1beta.Content",
                v,
            ));
        }
    };
    let (tools, tools_chars) = tools(obj, msg)?;
    let declares_functions = !tools.is_empty();
    let google_search = google_search(obj)?;
    let (tools, tool_choice) = tool_config(obj, tools, msg)?;
    let Config {
        stop,
        max_tokens,
        candidates,
        thinking,
        output,
    } = config(obj, msg)?;
    if matches!(output, Output::Json(_))
        && matches!(tool_choice, ToolChoice::Required | ToolChoice::Named(_))
    {
        return Err(GoogleError::invalid(
            "Forced function calling (ANY mode) with a response mime type: 'application/json' \
             is unsupported",
        ));
    }
    let cached_tokens = if get(obj, "cachedContent").is_some() {
        CACHED_CONTENT_TOKENS
    } else {
        0
    };
    let content_tokens: usize = contents
        .iter()
        .filter_map(|c| c.get("parts").and_then(Value::as_array))
        .flatten()
        .map(part_tokens)
        .sum();
    let prompt_tokens =
        (content_tokens + system_tokens + tools_chars.div_ceil(4)).max(1) + cached_tokens;
    Ok(GenerateRequest {
        contents,
        tools,
        tool_choice,
        google_search,
        declares_functions,
        server_side_invocations: server_side_invocations(obj),
        stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
        max_tokens,
        candidates,
        thinking,
        prompt_tokens,
        cached_tokens,
        output,
    })
}

/// The rules for Google Search next to function declarations, which depend
/// on the model: Gemini 1.x and 2.x refuse the mix; later models need
/// `toolConfig.includeServerSideToolInvocations`.
pub(crate) fn check_search(req: &GenerateRequest, model: &str) -> Result<(), GoogleError> {
    if !req.google_search || !req.declares_functions {
        return Ok(());
    }
    if model.starts_with("gemini-1") || model.starts_with("gemini-2") {
        return Err(GoogleError::invalid(
            "Tool use with function calling is unsupported by the model.",
        ));
    }
    if !req.server_side_invocations {
        return Err(GoogleError::invalid(
            "Please enable tool_config.include_server_side_tool_invocations to use Built-in \
             tools with Function calling.",
        ));
    }
    Ok(())
}
