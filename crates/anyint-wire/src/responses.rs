//! The OpenAI Responses API wire format (`/v1/responses`, see
//! `shared/protocols/openai-responses.md`), in both directions: Responses as a client family
//! (decode requests, encode Response objects and event streams) and as an upstream kind
//! (encode requests, decode Response objects and streams). Like every wire module it does no
//! IO; the gateway mints response ids and keeps stored responses.
//!
//! # Passthrough and what only a native upstream serves
//! A route to a native Responses upstream forwards the client's body with only `model`
//! rewritten ([`RequestHead::encode_upstream`]). Everything else goes through the canonical
//! model, which cannot carry built-in (hosted) tools (`web_search*`, `file_search`,
//! `code_interpreter`, `computer*`, `image_generation`, `mcp`, `local_shell`, `shell`,
//! `apply_patch`, `tool_search`, … — any `tools[].type` other than `function`, `custom`,
//! `namespace`), a `tool_choice` naming one, `prompt`, `conversation`, `background: true`,
//! `context_management`, `moderation`, `truncation: "auto"`, input items other than messages,
//! function and custom tool calls and results and reasoning (`item_reference`, `compaction`,
//! built-in tool call items, …), and `input_file` / `input_audio` / `file_id` image content.
//! [`RequestHead::native_only`] names the first of them as a [`NativeOnly`]; a translated
//! route refuses it with that 400 (`param` the top-level field, [`DecodeError::path`] the exact
//! place, e.g. `tools[1]`, and a message like "the built-in tool `web_search` is not supported
//! for this model; …"). [`decode_request`] refuses them itself.
//!
//! Hosted web search is the exception where the gateway serves it (a provider setting):
//! [`decode_request_with`] then reads a `web_search*` tool into the canonical request, for an
//! Anthropic or Gemini upstream to run with its own search, and the answer's searches and
//! citations come back as `web_search_call` items and `url_citation` annotations (mapping in
//! `search.rs`). Replayed `web_search_call` input items are accepted on every translated route
//! and dropped: they carry nothing an upstream needs.
//!
//! # Stored state
//! `store` (default `true`), `previous_response_id` and `include` are read by
//! [`RequestHead`] for the gateway, which stores responses ([`StreamEncoder::response`]) and
//! rebuilds history ([`RequestHead::encode_with_input`]). [`decode_request`] never reads
//! `previous_response_id`: the gateway must have replaced it by the history first.
//!
//! # Client request → canonical ([`decode_request`])
//! - `instructions`, and system/developer messages before the first user, assistant or tool
//!   item → `system`, in order. A system or developer message *after* the conversation began
//!   stays where it is, as a user turn with its text: the canonical model has no system role
//!   inside the conversation, and hoisting it would move it before turns it came after (and
//!   change the cached prompt prefix of Anthropic and Gemini at every new instruction). The
//!   cost is that the text is the user's, not the developer's, to the model.
//! - Messages, easy (`{role, content}`) or typed (`type: "message"`), content a string or
//!   parts: `input_text` / `output_text` → text, `refusal` (assistant) → text, `input_image`
//!   with an `image_url` (URL or data URL) → image with its `detail`. `phase`, `id` and
//!   `status` are dropped.
//! - Model-side items that follow each other (assistant messages, `reasoning`,
//!   `function_call`, `custom_tool_call`) form one assistant turn, in order.
//! - `function_call{call_id, name, arguments, namespace?}` → a tool call (id = `call_id`);
//!   `custom_tool_call{call_id, name, input}` → a tool call with arguments `{"input": …}`;
//!   `function_call_output` / `custom_tool_call_output` (output a string or text/image parts)
//!   → a tool result in its own `Tool` message, named after the earlier call with its
//!   `call_id` (Gemini needs the name).
//! - `reasoning{summary, encrypted_content?, content?}` → reasoning: the summary texts joined by
//!   a blank line (else the `reasoning_text` content); `encrypted_content` → the signature,
//!   tagged `openai` ([`crate::canonical::signature`]), unless it is the gateway's own blob
//!   (`anyint1.…`), which carries another provider's tagged signature and redacted thinking
//!   (see [`BLOB_PREFIX`]).
//! - Tools: flat `function` tools; `custom` tools → a function with one required string
//!   parameter `input` (a grammar goes into the description); `namespace` tools → functions
//!   named `<namespace>__<name>` ([`NAMESPACE_SEPARATOR`]). Names must be unique. `strict` has
//!   no canonical home and is dropped.
//! - `tool_choice`: `auto` / `none` / `required` / `{type: function|custom, name}` map
//!   directly; `allowed_tools` keeps only the tools it names, with its `mode`.
//! - `parallel_tool_calls`, `temperature`, `top_p`; `max_output_tokens` → `max_tokens`;
//!   `reasoning.effort` → `Reasoning.effort` (`none` means no reasoning to every encoder; a
//!   `reasoning` with only a `summary` asks for the provider's default thinking);
//!   `text.format` → `format`. A non-zero `top_logprobs` goes to `extra`, which only the
//!   OpenAI encoders take.
//! - Ignored, handled by the gateway or without effect on the answer: `store`,
//!   `previous_response_id`, `include`, `metadata`, `prompt_cache_key`, `prompt_cache_retention`,
//!   `prompt_cache_options`, `client_metadata`, `service_tier`, `safety_identifier`, `user`,
//!   `truncation: "disabled"`, `text.verbosity`, `reasoning.summary`, `background: false`,
//!   `stream_options`, `max_tool_calls` (it counts built-in tool calls only: the search cap when
//!   web search is served), and unknown
//!   top-level fields (Codex adds new ones; the protocol note says to ignore them).
//!
//! # Canonical → Responses upstream ([`encode_request`])
//! `store: false` always (the gateway keeps state); `instructions` = the system texts joined
//! by a blank line; messages as typed items (user `input_text`/`input_image` with `detail`
//! `auto` when unset, assistant `output_text`, calls as `function_call`, results as
//! `function_call_output` — a string, or parts when there are images; a failed result's text
//! starts with "Error"); tools as flat functions with `strict: false` (the API defaults to
//! strict, which refuses ordinary schemas); `tool_choice`, `parallel_tool_calls` (with tools),
//! `max_output_tokens`, `temperature`, `top_p`, `text.format` (another family's schema in
//! strict mode, and JSON mode with a developer message "Respond in JSON." first when no input
//! message says "json", as for Chat: see [`crate::openai`]); `reasoning.effort` from the
//! effort or a token budget (0 `none`, ≤ 2048 `low`, ≤ 8192 `medium`, else `high`);
//! `include: ["reasoning.encrypted_content"]` when reasoning is asked for or replayed. Only
//! reasoning OpenAI signed is replayed; other reasoning is dropped. Refused with a 400: stop
//! sequences (the API has none), `top_k`, `n > 1` and `extra` fields other than
//! `top_logprobs`. Cache markers are dropped (OpenAI caches prefixes itself).
//!
//! # Responses and streams
//! Upstream: `status` `completed` → stop (tool calls when there are calls), `incomplete` with
//! `max_output_tokens` → length, with `content_filter` → content filter; `failed` is an error.
//! Usage maps one to one ([`usage_from_response`]).
//!
//! Client: the Response object ([`encode_response`], [`StreamEncoder`]) has every key §3
//! lists, the request fields echoed from the [`Echo`], and item ids derived from the response
//! id (`msg_<id>_<n>`, `fc_…`, `ctc_…`, `rs_…`, `n` the output index). Calls of custom tools
//! come back as `custom_tool_call{input}` and namespaced ones with their `namespace`. Reasoning
//! items carry `encrypted_content` only when the client included it: OpenAI's blob as issued,
//! another provider's signature or redacted thinking in the gateway's blob, so it comes back
//! with its origin and only ever reaches its issuer.

mod blob;
mod echo;
mod error;
mod grammar;
mod head;
mod input;
mod native;
mod request;
mod response;
mod search;
mod stream_decode;
mod stream_encode;
mod tools;
mod upstream;
mod usage;

#[cfg(test)]
mod proptests;

pub use blob::BLOB_PREFIX;
pub use echo::Echo;
pub use error::{ErrorBody, decode_error, failure_events};
pub use grammar::check_stream;
pub use head::{INCLUDE_ENCRYPTED, RequestHead};
pub use native::NativeOnly;
pub use request::{decode_request, decode_request_with};
pub use response::{decode_response, encode_response};
pub use search::INCLUDE_SOURCES;
pub use stream_decode::StreamDecoder;
pub use stream_encode::StreamEncoder;
pub use tools::{NAMESPACE_SEPARATOR, flat_name};
pub use upstream::encode_request;
pub use usage::{usage_from_frame, usage_from_response};

#[cfg(doc)]
use crate::DecodeError;
use crate::sse::Frame;

/// The type of a stream event: its `event:` name, else its `data.type`.
pub fn event_type(frame: &Frame) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    if let Some(e) = &frame.event {
        return Some(e.clone());
    }
    serde_json::from_str::<Typed>(&frame.data).ok()?.kind
}
