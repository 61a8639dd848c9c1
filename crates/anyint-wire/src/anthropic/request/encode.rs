//! Canonical [`ChatRequest`] → the body for an Anthropic upstream. The body borrows from the
//! request; only tool schemas missing `type: object` are copied. Mapping choices are listed in
//! the module docs of [`crate::anthropic`].

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::format::{self, Plan};
use crate::DecodeError;
use crate::anthropic::search;
use crate::anthropic::wire::{Block, ImageSrc, ResultContent, WireCache, tool_input};
use crate::anthropic::{DEFAULT_MAX_TOKENS, JSON_TOOL, JSON_VALUE_TOOL, MIN_THINKING_BUDGET};
use crate::canonical::signature::{self, Origin};
use crate::canonical::{ChatRequest, Message, Part, Reasoning, Role, Tool, ToolChoice};

/// The thinking budget used for an effort level when no budget was given: `minimal` 1024,
/// `low` 2048, `medium` (and any unknown level) 8192, `high` 16384, `xhigh`/`max` 24576.
/// The largest keeps budget + the default 4096 answer tokens under 32k, the smallest output
/// cap among current thinking models.
pub fn effort_budget(effort: &str) -> u64 {
    match effort {
        "minimal" => 1024,
        "low" => 2048,
        "high" => 16_384,
        "xhigh" | "max" => 24_576,
        _ => 8192,
    }
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<Block<'a>>,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<AnyTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Choice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<Value>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: Cow<'a, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<WireCache<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    strict: bool,
}

/// A function tool, or the hosted web search server tool.
#[derive(Serialize)]
#[serde(untagged)]
enum AnyTool<'a> {
    Function(WireTool<'a>),
    WebSearch(search::WebSearchTool<'a>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Choice<'a> {
    Auto {
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    Any {
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    Tool {
        name: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    None,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Thinking {
    Enabled { budget_tokens: u64 },
    Disabled,
}

/// Encodes a canonical request for an Anthropic upstream (which is sent
/// `anthropic-version: 2023-06-01`, so sampling parameters are allowed).
pub fn encode_request(req: &ChatRequest) -> Result<Vec<u8>, DecodeError> {
    if let Some(k) = req.extra.keys().next() {
        return Err(DecodeError::unsupported(k, "anthropic"));
    }
    if let Some(t) = req
        .tools
        .iter()
        .find(|t| t.name == JSON_TOOL || t.name == JSON_VALUE_TOOL)
    {
        return Err(DecodeError::field(
            "tools",
            format!(
                "the tool name `{}` is reserved by the gateway (it carries structured output to \
                 this model's upstream, anthropic); rename the tool",
                t.name
            ),
        ));
    }
    if req.n.is_some_and(|n| n > 1) {
        return Err(DecodeError::field(
            "n",
            "`n` greater than 1 is not supported by this model's upstream (anthropic); send one request per choice",
        ));
    }
    let max_tokens = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let (thinking, max_tokens) = thinking(req.reasoning.as_ref(), max_tokens);
    let plan = format::plan(req, matches!(thinking, Some(Thinking::Enabled { .. })))?;
    let mut tools: Vec<WireTool<'_>> = req.tools.iter().map(encode_tool).collect();
    let mut tool_choice = tool_choice(req);
    let mut output_config = None;
    match &plan {
        Plan::None => {}
        Plan::Native(schema) => {
            output_config = Some(json!({"format": {"type": "json_schema", "schema": schema}}));
        }
        Plan::Tool {
            name,
            description,
            schema,
            strict,
        } => {
            tools.push(WireTool {
                name,
                description: Some(description),
                input_schema: Cow::Borrowed(schema),
                cache_control: None,
                strict: *strict,
            });
            // One call, so the answer is one object.
            tool_choice = Some(Choice::Tool {
                name,
                disable_parallel_tool_use: true,
            });
        }
    }
    let body = Body {
        model: &req.model,
        max_tokens,
        system: encode_system(req.folded_system())?,
        messages: encode_messages(&req.messages)?,
        temperature: req.temperature,
        // Claude Sonnet 4.5 and later refuse both at once; `temperature` is the one every
        // family sends, so it wins.
        top_p: req.top_p.filter(|_| req.temperature.is_none()),
        top_k: req.top_k,
        stop_sequences: &req.stop,
        stream: req.stream,
        tools: tools
            .into_iter()
            .map(AnyTool::Function)
            .chain(search::tool(req)?.map(AnyTool::WebSearch))
            .collect(),
        tool_choice,
        thinking,
        output_config,
    };
    serde_json::to_vec(&body).map_err(|e| DecodeError::body(e.to_string()))
}

/// The `thinking` object and the (possibly raised) `max_tokens`.
fn thinking(r: Option<&Reasoning>, max_tokens: u64) -> (Option<Thinking>, u64) {
    let Some(r) = r else {
        return (None, max_tokens);
    };
    let budget = match (r.budget_tokens, r.effort.as_deref()) {
        (Some(0), _) | (None, Some("none")) => return (Some(Thinking::Disabled), max_tokens),
        (Some(b), _) => b.max(MIN_THINKING_BUDGET),
        (None, Some(e)) => effort_budget(e),
        (None, None) => effort_budget("medium"),
    };
    let max_tokens = if max_tokens <= budget {
        budget.saturating_add(max_tokens.max(1))
    } else {
        max_tokens
    };
    (
        Some(Thinking::Enabled {
            budget_tokens: budget,
        }),
        max_tokens,
    )
}

fn tool_choice(req: &ChatRequest) -> Option<Choice<'_>> {
    // The API refuses tool_choice without tools; without tools no call can happen anyway.
    if req.tools.is_empty() {
        return None;
    }
    let disable_parallel_tool_use = req.parallel_tool_calls == Some(false);
    Some(match &req.tool_choice {
        None if disable_parallel_tool_use => Choice::Auto {
            disable_parallel_tool_use,
        },
        None => return None,
        Some(ToolChoice::Auto) => Choice::Auto {
            disable_parallel_tool_use,
        },
        Some(ToolChoice::Required) => Choice::Any {
            disable_parallel_tool_use,
        },
        Some(ToolChoice::Tool(name)) => Choice::Tool {
            name,
            disable_parallel_tool_use,
        },
        Some(ToolChoice::None) => Choice::None,
    })
}

fn encode_tool(t: &Tool) -> WireTool<'_> {
    let input_schema = match &t.parameters {
        Value::Object(o) if o.contains_key("type") => Cow::Borrowed(&t.parameters),
        Value::Object(o) => {
            let mut o = o.clone();
            o.insert("type".into(), Value::String("object".into()));
            Cow::Owned(Value::Object(o))
        }
        _ => {
            let mut o = Map::new();
            o.insert("type".into(), Value::String("object".into()));
            o.insert("properties".into(), Value::Object(Map::new()));
            Cow::Owned(Value::Object(o))
        }
    };
    WireTool {
        name: &t.name,
        description: t.description.as_deref(),
        input_schema,
        cache_control: WireCache::of(t.cache.as_ref()),
        strict: false,
    }
}

/// The system prompt, with the text of mid-conversation system messages appended in order:
/// Anthropic-kind upstreams are not all known to take `role: "system"` inside `messages`.
fn encode_system<'a>(parts: impl Iterator<Item = &'a Part>) -> Result<Vec<Block<'a>>, DecodeError> {
    let mut out = Vec::new();
    for p in parts {
        match p {
            Part::Text { text, .. } if text.is_empty() => {}
            Part::Text { text, cache } => out.push(Block::Text {
                text,
                cache_control: WireCache::of(cache.as_ref()),
            }),
            _ => {
                return Err(DecodeError::field(
                    "system",
                    "this model's upstream (anthropic) accepts only text in the system prompt",
                ));
            }
        }
    }
    Ok(out)
}

fn encode_messages(messages: &[Message]) -> Result<Vec<WireMessage<'_>>, DecodeError> {
    let mut out: Vec<WireMessage<'_>> = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let role = match m.role {
            Role::Assistant => "assistant",
            Role::User | Role::Tool => "user",
            // In the system prompt (see `encode_system`).
            Role::System => continue,
        };
        let mut content = Vec::with_capacity(m.parts.len());
        for p in &m.parts {
            if let Some(b) = encode_part(p, i)? {
                content.push(b);
            }
        }
        if content.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.role == role => last.content.append(&mut content),
            _ => out.push(WireMessage { role, content }),
        }
    }
    for m in &mut out {
        if m.role == "user" {
            // Stable: tool results keep their order and come first, as the API requires.
            m.content
                .sort_by_key(|b| !matches!(b, Block::ToolResult { .. }));
        }
    }
    Ok(out)
}

fn nested(i: usize) -> DecodeError {
    DecodeError::field(
        "messages",
        format!("messages[{i}]: tool results may contain only text and images"),
    )
}

/// One canonical part as a block; `None` for parts the API would refuse and that carry
/// nothing it could use (empty text, unsigned reasoning, reasoning another provider signed).
fn encode_part(p: &Part, i: usize) -> Result<Option<Block<'_>>, DecodeError> {
    Ok(Some(match p {
        Part::Text { text, .. } if text.is_empty() => return Ok(None),
        Part::Text { text, cache } => Block::Text {
            text,
            cache_control: WireCache::of(cache.as_ref()),
        },
        Part::Image { source, cache, .. } => Block::Image {
            source: ImageSrc::of(source),
            cache_control: WireCache::of(cache.as_ref()),
        },
        Part::ToolCall {
            id,
            name,
            arguments,
        } => Block::ToolUse {
            id,
            name,
            input: tool_input(arguments).ok_or_else(|| {
                DecodeError::field(
                    "messages",
                    format!(
                        "messages[{i}]: the arguments of tool call `{id}` are not a JSON object"
                    ),
                )
            })?,
        },
        Part::ToolResult {
            call_id,
            content,
            is_error,
            cache,
            ..
        } => Block::ToolResult {
            tool_use_id: call_id,
            content: result_content(content, i)?,
            is_error: *is_error,
            cache_control: WireCache::of(cache.as_ref()),
        },
        Part::Reasoning {
            redacted: Some(data),
            ..
        } => Block::RedactedThinking { data },
        Part::Reasoning {
            text,
            signature: Some(signature),
            ..
        } => match signature::for_upstream(Origin::Anthropic, signature) {
            Some(signature) => Block::Thinking {
                thinking: text,
                signature,
            },
            // Signed by another provider: Anthropic cannot verify it, and refuses thinking
            // without a valid signature, so the block goes.
            None => return Ok(None),
        },
        Part::Reasoning { .. } => return Ok(None),
    }))
}

fn result_content(parts: &[Part], i: usize) -> Result<Option<ResultContent<'_>>, DecodeError> {
    if let [Part::Text { text, cache: None }] = parts {
        return Ok(Some(ResultContent::Text(text)));
    }
    let mut blocks = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            Part::Text { .. } | Part::Image { .. } => {
                if let Some(b) = encode_part(p, i)? {
                    blocks.push(b);
                }
            }
            _ => return Err(nested(i)),
        }
    }
    Ok((!blocks.is_empty()).then_some(ResultContent::Blocks(blocks)))
}
