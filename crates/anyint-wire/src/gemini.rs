//! The Gemini generateContent wire format (see `shared/protocols/gemini.md`), both directions:
//! a Gemini client's request and response bodies and stream, and a Gemini upstream's.
//!
//! Like every wire module this one does no IO. The model is never in a Gemini body: it comes
//! from (and goes into) the URL path `models/{model}:generateContent`, so [`decode_request`]
//! takes it as an argument and [`encode_request`] leaves it out.
//!
//! # Client request → canonical ([`decode_request`])
//!
//! Field names are accepted in camelCase and in snake_case, as Google's JSON parser does (the
//! REST docs' curl examples use `system_instruction`, `generation_config`). A `parts` given as a
//! single object instead of an array is accepted too.
//!
//! Validated like the API, with [`DecodeError::param`] naming the top-level field: `contents`
//! must be a non-empty array; each turn's `role` is `user` or `model` (missing means `user`);
//! each turn has parts, and each part has exactly one data field. Media other than images
//! (`inlineData`/`fileData` with a non-`image/*` MIME type) cannot be translated and is a 400
//! naming `contents`.
//!
//! Mapping:
//! - `systemInstruction` text parts → `system`; `contents` → `messages` (`model` → assistant;
//!   function responses stay in a user turn as [`Part::ToolResult`](crate::canonical::Part)).
//! - Thought signatures are tagged as Gemini's (see [`crate::canonical::signature`]); a
//!   signature another provider issued, which the gateway gave this client with its origin tag,
//!   keeps that tag.
//! - A `thought: true` text part → `Reasoning{text, signature}`. A `thoughtSignature` on any
//!   other part (Gemini signs the first function call or text after its thinking) becomes an
//!   empty `Reasoning{text: "", signature}` placed right before that part; the encoders put it
//!   back on the part that follows, so the signature survives a round trip.
//! - `functionCall{name, args, id?}` → `ToolCall`. Without an `id` the call gets `call_<n>`,
//!   `n` being its 0-based ordinal among all function calls of the request. Responses use
//!   `call_<responseId>_<n>` instead, so ids from different turns never collide.
//! - `functionResponse{name, response, id?}` → `ToolResult{name, content: [JSON text of
//!   response]}`. `call_id` is its `id` when given; otherwise it answers the earliest still
//!   unanswered earlier `functionCall` with the same name (first in, first out per name), and a
//!   response matching no call gets `call_<name>`. `is_error` is set when `response` is exactly
//!   `{"error": …}` (the shape Google's docs recommend for failures).
//! - `tools[].functionDeclarations` → tools. `parameters` (an OpenAPI-subset schema) is
//!   converted to JSON Schema: upper-case types become lower-case, `nullable` becomes a
//!   `"null"` type, `propertyOrdering` is dropped and int64 bounds sent as strings become
//!   numbers; `parametersJsonSchema` is taken as is. A declaration without either gets an empty
//!   object schema. A declaration's `response`/`behavior` are ignored.
//! - `toolConfig.functionCallingConfig.mode`: `AUTO` → auto, `NONE` → none, `ANY` → required,
//!   or `Tool(name)` when `allowedFunctionNames` names exactly one function. `ANY` with several
//!   allowed names keeps only those tools (the model can call nothing else either way).
//!   `VALIDATED` (auto with schema-constrained calls) maps to auto.
//! - `generationConfig`: `maxOutputTokens`, `temperature`, `topP`, `topK`, `stopSequences`,
//!   `candidateCount` (→ `n`), `thinkingConfig.thinkingBudget` (→ `budget_tokens`; `-1`,
//!   "dynamic", is the default and maps to no budget) and `thinkingConfig.thinkingLevel`
//!   (→ `effort`, lower-cased).
//! - Structured output: `responseMimeType: "application/json"` alone → JSON mode;
//!   with `responseJsonSchema` → that schema, constrained (source `responseJsonSchema`); with
//!   `responseSchema` → the schema converted to JSON Schema (lower-case types, `nullable` → a
//!   `"null"` type, `format: "enum"` dropped, `propertyOrdering` kept as a hint), constrained
//!   (source `responseSchema`). Both schemas at once, a schema that is not an object, or a
//!   schema without a JSON MIME type is a 400 naming `generationConfig`, as the API answers.
//!
//! Kept in [`ChatRequest::extra`](crate::canonical::ChatRequest) (so another family's encoder
//! refuses them with a 400): every other `generationConfig` field as `generationConfig.<name>`
//! (`responseMimeType` `text/x.enum` and other types with their schema, `seed`, penalties,
//! logprobs,
//! `responseModalities` other than `["TEXT"]`, `speechConfig`, …), `cachedContent`,
//! non-function tools (`googleSearch`, `codeExecution`, `urlContext`, …) as `tools`,
//! `executableCode`/`codeExecutionResult` parts as `contents.<kind>`, multimodal
//! `functionResponse.parts` as `contents.functionResponse.parts`, and any unknown top-level
//! field under its own name.
//!
//! Safely ignored: `safetySettings` (only tightens or loosens Google's own filters),
//! `labels` (billing tags), `toolConfig.retrievalConfig` (only read by grounding tools, which
//! are refused anyway), `thinkingConfig.includeThoughts` (reasoning an upstream returns is sent
//! as `thought` parts, which Gemini clients keep apart from the answer),
//! `responseMimeType: "text/plain"` (the default), `responseModalities: ["TEXT"]`, a `model`
//! field in the body (the URL wins), part metadata such as `videoMetadata`.
//!
//! # Canonical → Gemini upstream ([`encode_request`])
//!
//! - Structured output (structured-output.md §4, §7): JSON mode → `responseMimeType:
//!   "application/json"`; a JSON Schema → that MIME type with `responseJsonSchema`, a Gemini
//!   client's own `responseJsonSchema` as sent and its `responseSchema` back as
//!   `responseSchema`. Another family's schema is translated (see the crate's `schema`
//!   module): type lists → `anyOf`, `const` → a one-value `enum`, `definitions` → `$defs`,
//!   annotations dropped; keywords Gemini ignores (`pattern`, `minLength`, `uniqueItems`, …) are dropped
//!   when the client asked for no guarantee and refused with a 400 naming their path when it
//!   did. The format's description becomes the root's when that has none. JSON output with a
//!   forced tool call (`required` or a named tool: mode `ANY`) is a 400 naming the format's
//!   parameter (Gemini: "Forced function calling (ANY mode) with a response mime type:
//!   'application/json' is unsupported"), and so is JSON output with callable tools on
//!   Gemini 1.x/2.x models (structured-output.md §4: do not send both there).
//! - A non-empty `extra` is refused with a 400 naming its first field, and so is `n > 1`
//!   (a Gemini upstream could return several candidates, but every decoder here reads only the
//!   first, so `n > 1` is rejected in both stream and non-stream mode).
//! - Tool results become `functionResponse` parts of a user turn. The name is the result's
//!   `name`, else the name of the earlier tool call with that id; a result matching no call is
//!   a 400 naming `messages`. `response` must be an object: a JSON object text is sent as is,
//!   anything else (other JSON, plain text) as `{"result": …}`, and a failed result as
//!   `{"error": …}`. Images in a tool result follow it as separate parts of the same turn.
//! - Consecutive turns of the same Gemini role are merged (tool results and user text are both
//!   `user`).
//! - Image URLs become `fileData{mimeType, fileUri}` with the MIME type guessed from the
//!   extension (`image/jpeg` when unknown); `data:` URLs become `inlineData`.
//! - Reasoning with a Gemini signature becomes a `thought` part carrying `thoughtSignature`
//!   (an empty one lends its signature to the next part). When the thought text is directly
//!   followed by a tool call in the same turn, the signature goes on that `functionCall` part
//!   instead, which is where Gemini put it (an Anthropic client folds it into the thinking
//!   block before the call). Reasoning without a signature, reasoning signed by another
//!   provider (whose signature Gemini cannot verify, see [`crate::canonical::signature`]) and
//!   redacted reasoning are dropped: Gemini reads nothing from unsigned thought text.
//! - For Gemini 3 and later upstreams (model not `gemini-1*`/`gemini-2*`), the first function
//!   call of a model turn that carries no signature gets Google's documented placeholder
//!   `skip_thought_signature_validator`, because those models reject unsigned calls in history
//!   (e.g. a conversation started on another provider).
//! - Cache markers are dropped: Gemini has no per-block `cache_control` and caches prompt
//!   prefixes implicitly (reported back as `cachedContentTokenCount`).
//! - `parallel_tool_calls: false` with tools (and a tool choice other than none): Gemini has
//!   no switch for it and may call several functions at once, even with one forced function
//!   (structured-output.md §8). The encoder adds a last system line "Call at most one function
//!   per turn."; the decoders, given the request's
//!   [`DecodeOptions`](crate::canonical::DecodeOptions), keep the turn's first function call
//!   and drop the rest (see below). `true` is Gemini's behaviour anyway and is dropped.
//!   Reasoning effort becomes
//!   `thinkingLevel` for Gemini 3+, and a token budget (low 1024, medium 8192, high 24576,
//!   none/minimal 0) for Gemini 1/2 models, which have no levels.
//!
//! # Responses and streams
//!
//! Hosted web search (a canonical request's `web_search`) becomes the `googleSearch` tool, and
//! a candidate's `groundingMetadata` becomes a canonical search with character-offset
//! citations; Gemini clients get neither (mapping and the rules for mixing with function
//! declarations in `search.rs`). A calling config is sent only with function declarations,
//! which Gemini requires.
//!
//! Only the first candidate is read. With
//! [`DecodeOptions::first_tool_call_only`](crate::canonical::DecodeOptions) (the request said
//! `parallel_tool_calls: false`), only the turn's first `functionCall` is kept, in the response
//! ([`decode_response_with`]) and in the stream ([`StreamDecoder::with_options`], across
//! chunks); later calls and the signature carrier right before them are dropped, text and
//! thoughts stay. Usage is left as reported: the dropped calls were generated, so they are
//! billed. `STOP` with a function call means tool calls; `MAX_TOKENS`
//! is length; `SAFETY`, `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII` and the
//! `IMAGE_*` filter reasons are content filtering; a blocked prompt (no candidates,
//! `promptFeedback.blockReason`) is content filtering with no parts; anything else is kept by
//! name. Gemini has no separate stop-sequence reason, so both stop reasons encode as `STOP`.
//!
//! Usage: canonical `input_tokens` is `promptTokenCount` (which already includes cached tokens)
//! plus `toolUsePromptTokenCount` (the results of Google's own tools, billed as input);
//! `output_tokens` is `candidatesTokenCount + thoughtsTokenCount`; `reasoning_tokens` is
//! `thoughtsTokenCount`; `cache_read_tokens` is `cachedContentTokenCount`.
//!
//! Tool call arguments that are not a JSON object (or not JSON at all) are sent to Gemini, which
//! only takes objects, as `{"_raw": "<text>"}`; empty arguments as `{}`.
//!
//! The client stream is either SSE (`alt=sse`): each chunk `data: <JSON>\r\n\r\n`, the CRLF
//! framing Google is reported to use, and nothing else (no `event:`, no comments, which the
//! google-genai parser would choke on); or, without `alt=sse`, one JSON array written
//! gradually. Image output parts in a stream have no canonical event and are dropped.
//!
//! Gemini signatures are written to Gemini clients as issued; other providers' signatures keep
//! their origin tag (`anyint:anthropic:…`), so a client echoing them back never gets them
//! replayed to Gemini.

mod error;
mod fields;
mod parts;
mod request;
mod response;
mod schema;
mod search;
mod stream_decode;
mod stream_encode;
mod upstream;
mod usage;

#[cfg(test)]
mod proptests;

pub use error::{ErrorBody, decode_error, error_json, status_for};
pub use request::decode_request;
pub use response::{decode_response, decode_response_with, encode_response};
pub use search::drops_web_search;
pub use stream_decode::StreamDecoder;
pub use stream_encode::{StreamEncoder, StreamFormat};
pub use upstream::encode_request;
pub use usage::{usage_from_frame, usage_from_response};
