//! The Anthropic Messages wire format (see `shared/protocols/anthropic.md`), in both directions:
//! Anthropic as a client family (decode requests, encode responses and streams) and as an
//! upstream kind (encode requests, decode responses and streams). Pure functions and small
//! state machines over bytes; this module never does IO.
//!
//! # Client requests ([`decode_request`])
//! Validated like the Messages API, with errors naming the top-level field (`param`).
//! - Safely ignored (they never change the answer, or have nothing to act on once server tools
//!   are refused): `metadata`, `service_tier`, `container`, `inference_geo`, top-level
//!   `cache_control` (automatic caching only changes cost), `context_management` (without
//!   server-side pruning the conversation goes whole: cost, not meaning), `thinking.display`,
//!   the per-tool `strict` / `input_examples` / `defer_loading` flags (a deferred tool is sent
//!   whole), `citations` on input text blocks
//!   (except that 2026-10-21 refuses non-empty ones in user turns, as the API does), and
//!   `cache_control` on `tool_use` blocks (canonical tool calls carry no cache marker).
//!   Fields whose value is `null` count as absent.
//! - Refused with a 400: `document` blocks (and other block types with no canonical home),
//!   server tools (any `tools[].type` other than `custom`), image sources other than
//!   `base64`/`url`, and, with `anthropic-version: 2026-10-21` or later, `temperature`,
//!   `top_p` and `top_k` (the API removed them in that version).
//! - Mapped: `thinking {enabled, budget_tokens}` → `Reasoning{budget_tokens}`;
//!   `{disabled}` → `Reasoning{budget_tokens: Some(0)}` (a zero budget means "no thinking" to
//!   every encoder); `{adaptive}` → `Reasoning::default()` (think, provider's choice of
//!   amount);
//!   `output_config.effort` → `Reasoning.effort`; `output_config.format` (`{type:
//!   "json_schema", schema}`) and the deprecated top-level `output_format` (the same shape; both
//!   at once is a 400 naming `output_format`) → a constrained JSON Schema format named
//!   `response` ([`OutputFormat::constrained`](crate::canonical::OutputFormat::constrained),
//!   source `output_config` / `output_format`), which other families' encoders translate
//!   (see the crate's `schema` module); `tool_choice.disable_parallel_tool_use: true` →
//!   `parallel_tool_calls: Some(false)` (other families' encoders send it only with tools).
//! - `role: "system"` entries in `messages` after the first (Claude Code's reminders; text
//!   only) → [`Role::System`](crate::canonical::Role::System) messages at that point, which
//!   OpenAI Chat upstreams get as `system` messages and Responses upstreams as `developer`
//!   items in place, and Gemini and Anthropic upstreams as more system text, in order. A
//!   system message as the first entry is refused, as the API does.
//! - Everything else (e.g. other `output_config` fields, `mcp_servers`) is kept in `extra`,
//!   which other families' encoders refuse with a 400 naming the field.
//! - The `anthropic-beta` header: accepted, except the betas [`check_betas`] refuses (flags
//!   that change the answer on their own and that another kind of upstream cannot honour);
//!   the fields a beta unlocks are judged like any other field.
//!
//! # Upstream requests ([`encode_request`])
//! The provider sends `anthropic-version: 2023-06-01`, so sampling parameters pass through,
//! except that `temperature` and `top_p` are never sent together: Claude Sonnet 4.5 and later
//! answer 400 to both. When both are set `temperature` is kept and `top_p` omitted.
//! - `max_tokens` defaults to [`DEFAULT_MAX_TOKENS`] (4096) when the client gave none.
//! - Reasoning: a zero budget or effort `none` → `thinking {type: disabled}`; a budget → that
//!   budget (raised to the API minimum of 1024); an effort without budget → a budget from
//!   [`effort_budget`] (`minimal` 1024, `low` 2048, `medium` and unknown 8192, `high` 16384,
//!   `xhigh`/`max` 24576); a reasoning request with neither → 8192. When `max_tokens` is not
//!   above the budget it becomes budget + `max_tokens`, so the answer keeps the room the
//!   client asked for.
//! - OpenAI-style `Role::Tool` messages become user turns; consecutive turns with the same
//!   role are merged, and in user turns `tool_result` blocks are moved first (the API requires
//!   it). Empty text blocks, unsigned reasoning (from families without signatures) and turns
//!   left empty are dropped, since the API refuses them.
//! - Reasoning signatures carry their origin (see [`crate::canonical::signature`]): thinking
//!   Anthropic signed is sent with its signature as issued; reasoning another provider signed
//!   (a Gemini `thoughtSignature`) is dropped whole, since Anthropic cannot verify it and
//!   refuses thinking blocks without a valid signature. Image `detail` has no equivalent and
//!   is dropped; `data:` URLs become base64 sources.
//! - `n > 1` and any `extra` field are refused with a 400 naming the field.
//! - `parallel_tool_calls: false` → `disable_parallel_tool_use: true` on the tool choice (an
//!   `auto` choice when the client gave none); not sent without tools or with choice `none`.
//!
//! ## Structured output (structured-output.md §5, §7)
//! - An Anthropic client's own schema goes back as `output_config.format` as it was sent (the
//!   deprecated `output_format` too, rewritten to `output_config.format`).
//! - Another family's JSON Schema whose root is an object (and that is not recursive) →
//!   native `output_config.format: {type: "json_schema", schema}`, the schema translated like
//!   the SDK's `transform_schema` (see the crate's `schema` module): objects closed with
//!   `additionalProperties: false`, `oneOf` → `anyOf`, type lists → `anyOf`, unsupported
//!   constraints moved into `description` when the client asked for no guarantee (`strict`
//!   not true), and refused with a 400 naming the keyword's path when it did. The format's
//!   description becomes the root's when that has none.
//! - Where the native format cannot carry it, one forced tool does
//!   (`tool_choice: {type: tool, name, disable_parallel_tool_use: true}`):
//!   JSON mode, and a `json_schema` without schema → [`JSON_TOOL`] with
//!   `input_schema: {"type": "object"}` (the native format needs `additionalProperties: false`
//!   on every object, so it has no "any object"); a recursive schema (no native form) →
//!   [`JSON_TOOL`] with the schema, without `strict` (refused with a 400 when a guarantee was
//!   asked: nothing can give it); a schema whose root is not an object → [`JSON_VALUE_TOOL`]
//!   with `{"type":"object","properties":{"value": schema},"required":["value"]}` (its
//!   definitions moved to the root), `strict: true` when a guarantee was asked.
//! - A forced tool excludes what the API refuses with it: extended thinking ("Thinking may not
//!   be enabled when tool_choice forces tool use") and the request's own callable tools (the
//!   model could no longer call them). Both are a 400 naming the format's parameter: choose
//!   one. A client tool named like either reserved tool is a 400 naming `tools`.
//!
//! # Responses and streams
//! A call of [`JSON_TOOL`] or [`JSON_VALUE_TOOL`] is the answer's text, not a tool call: the
//! response's `tool_use` input (or its `value`) becomes a text part, whitespace between tokens
//! removed but keys in the order generated; in a stream its `input_json_delta` pieces become
//! text deltas as they come (for the value tool, the text inside the wrapper). It takes no
//! tool call ordinal, and `stop_reason: tool_use` with no other call becomes `Stop`.
//!
//! Ids pass through: a response id gets a `msg_` prefix when it lacks one, tool call ids are
//! never rewritten (so a later `tool_result` still refers to its call). Web search's
//! `server_tool_use` / `web_search_tool_result` pairs and the citations of text blocks become
//! canonical searches and citations (`search.rs`, which also maps a canonical request's hosted
//! web search to the `web_search_20250305` server tool); other blocks with no canonical home
//! are skipped when decoding, and Anthropic clients get no search blocks (the text carries
//! what was found). Canonical usage counts input *including* cache; Anthropic's
//! `input_tokens` excludes it, so decoding adds `cache_read` + `cache_creation` and encoding
//! subtracts them; `server_tool_use.web_search_requests` is the search count.
//!
//! Signatures: decoders (upstream responses and streams, client requests) tag the thinking
//! signatures they read as Anthropic's, unless a client echoes back one already tagged with
//! another origin; encoders for Anthropic clients write Anthropic signatures as issued and
//! other providers' with their tag, so they come back recognisable.

mod beta;
mod error;
mod head;
mod request;
mod response;
mod search;
mod stream;
mod usage;
mod wire;

pub use beta::{HEADER as BETA_HEADER, check_betas};
pub use error::{ErrorBody, decode_error};
pub use head::RequestHead;
pub use request::{decode_request, effort_budget, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{StreamDecoder, StreamEncoder, error_event};
pub use usage::{usage_from_frame, usage_from_response};

/// The `anthropic-version` header values the gateway accepts from clients.
pub const VERSIONS: &[&str] = &["2023-06-01", "2026-10-21"];

/// `max_tokens` sent upstream when the canonical request has none (the API requires it).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The smallest `thinking.budget_tokens` the API accepts.
pub const MIN_THINKING_BUDGET: u64 = 1024;

/// The forced tool that carries structured output to Anthropic when the native
/// `output_config.format` cannot: its input is the answer. Reserved: a client tool of this name
/// is refused, and the decoders turn a call of it into the answer's text.
pub const JSON_TOOL: &str = "anyint_json_response";

/// The forced tool for a schema whose root is not an object: its input is
/// `{"value": <the answer>}`. Reserved like [`JSON_TOOL`].
pub const JSON_VALUE_TOOL: &str = "anyint_json_value";
