//! The canonical chat request and response.

use serde_json::{Map, Value};

/// Who said a message. Tool results travel as [`Part::ToolResult`] inside `User` (Anthropic,
/// Gemini) or as their own `Tool` message (OpenAI); both decode to [`Role::Tool`] only when the
/// source family has a tool role. The system prompt before the conversation is
/// [`ChatRequest::system`]; [`Role::System`] is a system message inside it (Anthropic
/// `messages` entries with `role: "system"` after the first), kept where it was said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The end user (also carries tool results for Anthropic and Gemini).
    User,
    /// The model.
    Assistant,
    /// An OpenAI `tool` message: one tool result.
    Tool,
    /// A system message in the middle of the conversation (text only). Encoders send it at
    /// that point where the upstream has such messages (OpenAI Chat and Responses), and
    /// append its text to the system prompt where it has not (Anthropic, Gemini).
    System,
}

/// A prompt-cache marker (Anthropic `cache_control`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheControl {
    /// Optional TTL such as `5m` or `1h`.
    pub ttl: Option<String>,
}

/// Where an image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// Inline bytes.
    Base64 {
        /// MIME type, e.g. `image/png`.
        media_type: String,
        /// Base64 data.
        data: String,
    },
    /// A URL the provider fetches.
    Url(String),
}

/// One piece of message content.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Plain text.
    Text {
        /// The text.
        text: String,
        /// Cache marker placed on this block.
        cache: Option<CacheControl>,
    },
    /// An image.
    Image {
        /// The bytes or URL.
        source: ImageSource,
        /// Detail hint (OpenAI `detail`), passed where supported.
        detail: Option<String>,
        /// Cache marker.
        cache: Option<CacheControl>,
    },
    /// A tool call made by the assistant.
    ToolCall {
        /// Call ID used to match the result.
        id: String,
        /// Function name.
        name: String,
        /// Arguments as JSON text (an object).
        arguments: String,
    },
    /// The result of a tool call.
    ToolResult {
        /// The call ID it answers.
        call_id: String,
        /// Function name, when the family carries it (Gemini needs it).
        name: Option<String>,
        /// Result content (text and images).
        content: Vec<Part>,
        /// Whether the tool failed.
        is_error: bool,
        /// Cache marker.
        cache: Option<CacheControl>,
    },
    /// Model reasoning ("thinking").
    Reasoning {
        /// The reasoning text (empty when redacted).
        text: String,
        /// Provider signature that must be echoed back unchanged, to the provider that issued
        /// it only. Decoders tag it with its origin (`anyint:gemini:…`); see [`super::signature`].
        signature: Option<String>,
        /// Opaque redacted reasoning data.
        redacted: Option<String>,
    },
}

impl Part {
    /// A text part without cache marker.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text {
            text: text.into(),
            cache: None,
        }
    }
}

/// One conversation turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The speaker.
    pub role: Role,
    /// The content, in order.
    pub parts: Vec<Part>,
}

/// A function the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    /// Function name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
    /// Cache marker (Anthropic caches up to and including this tool).
    pub cache: Option<CacheControl>,
}

/// How the model may use tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This tool must be called.
    Tool(String),
}

/// Reasoning configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reasoning {
    /// Token budget for thinking.
    pub budget_tokens: Option<u64>,
    /// Effort level (`low`, `medium`, `high`, …).
    pub effort: Option<String>,
}

/// Where a structured-output schema came from: whose JSON Schema rules it was written under
/// (structured-output.md §6), and the client parameter a refusal names.
///
/// Encoders pass a schema on unchanged to upstreams that speak its source's rules (an OpenAI
/// source to OpenAI Chat or Responses, an Anthropic source to Anthropic, a Gemini source to
/// Gemini) and translate it for the others (see the crate's `schema` module).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SchemaSource {
    /// OpenAI Chat `response_format.json_schema.schema`.
    #[default]
    ChatResponseFormat,
    /// OpenAI Responses `text.format.schema`.
    ResponsesText,
    /// Anthropic `output_config.format.schema` (always constrained decoding).
    AnthropicOutputConfig,
    /// Anthropic's deprecated top-level `output_format.schema` (same meaning).
    AnthropicOutputFormat,
    /// Gemini `generationConfig.responseJsonSchema` (plain JSON Schema; Gemini ignores the
    /// keywords it does not support).
    GeminiJsonSchema,
    /// Gemini `generationConfig.responseSchema` (the OpenAPI subset), converted to JSON
    /// Schema when decoded.
    GeminiSchema,
}

impl SchemaSource {
    /// The client's top-level parameter holding the schema.
    pub fn param(self) -> &'static str {
        match self {
            Self::ChatResponseFormat => "response_format",
            Self::ResponsesText => "text",
            Self::AnthropicOutputConfig => "output_config",
            Self::AnthropicOutputFormat => "output_format",
            Self::GeminiJsonSchema | Self::GeminiSchema => "generationConfig",
        }
    }

    /// The client's path to the schema, the prefix of a refused keyword's path.
    pub fn path(self) -> &'static str {
        match self {
            Self::ChatResponseFormat => "response_format.json_schema.schema",
            Self::ResponsesText => "text.format.schema",
            Self::AnthropicOutputConfig => "output_config.format.schema",
            Self::AnthropicOutputFormat => "output_format.schema",
            Self::GeminiJsonSchema => "generationConfig.responseJsonSchema",
            Self::GeminiSchema => "generationConfig.responseSchema",
        }
    }

    /// Whether the schema is in OpenAI's dialect (Chat or Responses).
    pub fn is_openai(self) -> bool {
        matches!(self, Self::ChatResponseFormat | Self::ResponsesText)
    }

    /// Whether the schema is in Anthropic's dialect.
    pub fn is_anthropic(self) -> bool {
        matches!(
            self,
            Self::AnthropicOutputConfig | Self::AnthropicOutputFormat
        )
    }
}

/// Structured output: the shape the answer's text must take (OpenAI Chat `response_format`,
/// Responses `text.format`, Anthropic `output_config.format`, Gemini `responseMimeType` with
/// `responseJsonSchema` or `responseSchema`; see `shared/protocols/structured-output.md`).
#[derive(Clone, Debug, PartialEq)]
pub enum OutputFormat {
    /// Free text, the default.
    Text,
    /// Any valid JSON object ("JSON mode").
    JsonObject,
    /// JSON matching a JSON Schema.
    JsonSchema {
        /// The format's name (`[a-zA-Z0-9_-]`, at most 64 characters for OpenAI).
        name: String,
        /// The JSON Schema. Chat Completions makes it optional, Responses requires it.
        schema: Option<Value>,
        /// What the output is for.
        description: Option<String>,
        /// Constrained decoding (`strict: true`); without it the schema is a hint. Anthropic
        /// and Gemini sources always constrain, and decode as `Some(true)`.
        strict: Option<bool>,
        /// Where the schema came from (its rules, and the parameter errors name).
        source: SchemaSource,
    },
}

/// The name a structured-output format gets when its source family has none (Anthropic,
/// Gemini), for OpenAI upstreams, which require one.
pub const DEFAULT_FORMAT_NAME: &str = "response";

impl OutputFormat {
    /// Whether this asks for nothing beyond free text.
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text)
    }

    /// A JSON Schema format from a family without names or a strict flag (Anthropic, Gemini):
    /// named [`DEFAULT_FORMAT_NAME`], constrained.
    pub fn constrained(schema: Value, source: SchemaSource) -> Self {
        Self::JsonSchema {
            name: DEFAULT_FORMAT_NAME.to_owned(),
            schema: Some(schema),
            description: None,
            strict: Some(true),
            source,
        }
    }
}

/// A chat request in canonical form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// Model ID (public on decode; the gateway sets the upstream ID before encoding).
    pub model: String,
    /// System prompt blocks (text, possibly with cache markers).
    pub system: Vec<Part>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Available tools.
    pub tools: Vec<Tool>,
    /// Tool policy.
    pub tool_choice: Option<ToolChoice>,
    /// Whether parallel tool calls are allowed.
    pub parallel_tool_calls: Option<bool>,
    /// Output token cap.
    pub max_tokens: Option<u64>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling.
    pub top_k: Option<u64>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Whether to stream.
    pub stream: bool,
    /// Thinking / reasoning settings.
    pub reasoning: Option<Reasoning>,
    /// Number of choices requested (only 1 can be translated).
    pub n: Option<u64>,
    /// Structured output. `None` and `Some(Text)` both mean free text.
    pub format: Option<OutputFormat>,
    /// Hosted web search, when the client asked for it and the route serves it.
    pub web_search: Option<super::WebSearch>,
    /// Source-family fields with no canonical home, by name. Encoders of another family refuse
    /// them with a 400.
    pub extra: Map<String, Value>,
}

/// Why generation stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// Natural end of turn.
    Stop,
    /// A stop sequence matched.
    StopSequence,
    /// The token cap was hit.
    Length,
    /// The model called tools.
    ToolCalls,
    /// Content was filtered or refused.
    ContentFilter,
    /// Anything else, as the upstream named it.
    Other(String),
}

/// A complete (non-streamed) response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatResponse {
    /// Response ID.
    pub id: String,
    /// Model that answered (the gateway sets the public ID before encoding).
    pub model: String,
    /// Unix seconds, when known.
    pub created: Option<i64>,
    /// The assistant's content, in order.
    pub parts: Vec<Part>,
    /// Why it stopped.
    pub finish: Option<FinishReason>,
    /// The stop sequence that matched.
    pub stop_sequence: Option<String>,
    /// Token usage.
    pub usage: super::Usage,
    /// Searches the upstream ran, each with the number of `parts` that came before it.
    pub web_searches: Vec<(usize, super::WebSearchCall)>,
    /// URL citations, in characters of the answer text (see [`super::Citation`]).
    pub citations: Vec<super::Citation>,
}

impl ChatRequest {
    /// The system prompt, then the parts of every [`Role::System`] message in order: the whole
    /// system text, for upstreams with no system messages inside the conversation.
    pub fn folded_system(&self) -> impl Iterator<Item = &Part> {
        self.system.iter().chain(
            self.messages
                .iter()
                .filter(|m| m.role == Role::System)
                .flat_map(|m| m.parts.iter()),
        )
    }

    /// A rough input-token estimate (about four characters a token, a flat 85 per image), for
    /// the places that must say something before the upstream reports real usage: Anthropic's
    /// `message_start` and `count_tokens` for upstreams without a counting endpoint.
    pub fn estimate_input_tokens(&self) -> u64 {
        fn part_chars(p: &Part) -> usize {
            match p {
                Part::Text { text, .. } | Part::Reasoning { text, .. } => text.len(),
                Part::Image { .. } => 340,
                Part::ToolCall {
                    name, arguments, ..
                } => name.len() + arguments.len(),
                Part::ToolResult { content, .. } => content.iter().map(part_chars).sum(),
            }
        }
        let chars: usize = self.system.iter().map(part_chars).sum::<usize>()
            + self
                .messages
                .iter()
                .flat_map(|m| m.parts.iter())
                .map(part_chars)
                .sum::<usize>()
            + self
                .tools
                .iter()
                .map(|t| {
                    t.name.len()
                        + t.description.as_ref().map_or(0, String::len)
                        + t.parameters.to_string().len()
                })
                .sum::<usize>();
        u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX).max(1)
    }
}
