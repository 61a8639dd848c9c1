//! Deterministic upstream emulator (OpenAI Chat Completions and Responses,
//! Anthropic and Gemini wire formats, plus the DashScope and "Suno-style"
//! music async task APIs) with per-request fault injection.
//!
//! This crate owns a small HTTP server that speaks the real wire formats of
//! three chat provider families (error envelopes, SSE framing and all) and
//! of two async task families (create, poll, cancel, callbacks). The
//! gateway uses it in demo mode, in tests and in benchmarks. It must never
//! share types with the gateway: every body is built by hand with
//! `serde_json`, so a bug in the gateway's codecs cannot hide in here.
//!
//! # Endpoints
//!
//! | family | endpoints |
//! |---|---|
//! | OpenAI | `GET /v1/models`, `GET /v1/models/{id}`, `POST /v1/chat/completions`, `POST /v1/embeddings` |
//! | OpenAI Responses | `POST /v1/responses` (JSON or SSE), `POST /v1/responses/input_tokens`; `GET /v1/responses` with `Upgrade: websocket` → 426; `GET`/`DELETE /v1/responses/{id}`, `POST /v1/responses/{id}/cancel`, `GET /v1/responses/{id}/input_items` → 404 (nothing is stored; see [Responses API](#responses-api)) |
//! | Anthropic | `POST /v1/messages`, `POST /v1/messages/count_tokens`; `GET /v1/models[/{id}]` when the request carries `anthropic-version` |
//! | Gemini | `POST /{v1beta,v1}/models/{model}:generateContent`, `:streamGenerateContent` (`?alt=sse` → `data: {json}\r\n\r\n` events; without it one JSON array streamed gradually), `:countTokens`, `:embedContent` and `:batchEmbedContents` (see [Embeddings](#embeddings)); `GET /v1beta/models[/{model}]`, and `GET /v1/models[/{model}]` when the request carries `x-goog-api-key` or `?key=` |
//! | DashScope | `POST /api/v1/services/aigc/video-generation/video-synthesis`, `POST /api/v1/services/aigc/image2video/video-synthesis`, `POST /api/v1/services/aigc/text2image/image-synthesis`, `GET /api/v1/tasks/{task_id}`, `POST /api/v1/tasks/{task_id}/cancel` (see [Async tasks](#async-tasks)) |
//! | Music | `POST /api/v1/generate`, `GET /api/v1/generate/record-info?taskId=…` (see [Async tasks](#async-tasks)) |
//!
//! Auth, checked against [`Options::api_key`] (any non-empty key when unset):
//!
//! - OpenAI: `Authorization: Bearer`; 401 `invalid_request_error`.
//! - Anthropic: `x-api-key` or `Authorization: Bearer`; 401
//!   `authentication_error`. Errors are `{"type":"error","error":{"type",
//!   "message"},"request_id"}` and every response has a `request-id` header
//!   (which `x-request-id` repeats). `anthropic-version` must be
//!   `2023-06-01` or `2026-10-21` (missing or other: 400); under
//!   `2026-10-21` `temperature`/`top_p`/`top_k`, assistant `document` blocks
//!   and cited user text are 400s.
//! - Gemini: `x-goog-api-key`, `?key=` or `Authorization: Bearer`. No key:
//!   403 `PERMISSION_DENIED`; wrong API key: 400 `INVALID_ARGUMENT` with
//!   `API_KEY_INVALID`; wrong bearer token: 401 `UNAUTHENTICATED`. Errors are
//!   `{"error":{"code","message","status","details"?}}`, wrapped in a
//!   one-element array on the JSON-array stream.
//! - DashScope: `Authorization: Bearer`; missing or wrong: 401
//!   `{"code":"InvalidApiKey","message":"Invalid API-key provided.",
//!   "request_id"}`. Errors are `{"code","message","request_id"}`.
//! - Music: `Authorization: Bearer`; missing or wrong: **HTTP 200**
//!   `{"code":401,"msg":"unauthorized","data":null}`. Every answer is a
//!   `{"code","msg","data"}` envelope with a business `code`.
//!
//! Requests are validated like the real APIs (Responses: see
//! [Responses API](#responses-api); Anthropic: unknown top-level
//! fields, required `model`/`max_tokens`/`messages`, roles (`user`,
//! `assistant`, and `system` with non-empty text after the first message,
//! outside the turn pairing), block shapes,
//! `cache_control`, `tool_use`→`tool_result` pairing, thinking budget;
//! Gemini: unknown field names in camelCase or snake_case, non-empty
//! `contents` and `parts`, one data field per part, object
//! `functionResponse.response`, function names, generation config ranges).
//! Any model name is served; only model retrieval knows a fixed list.
//!
//! # Content rules
//!
//! All families share one set of rules. Let `T` be the text of the last user
//! turn (OpenAI: the last `user` message; Responses: the last `user` message
//! of `input`, a string `input` being one; Anthropic and Gemini: the last
//! user turn that has text, so a turn holding only tool results is
//! skipped). The output is chosen by the first rule that matches:
//!
//! 1. `T` contains `Reply with exactly: ` → everything after the marker up to
//!    the end of that line, with any `[emulate: ...]` directive removed, trimmed.
//! 2. `T` has a line with `Call tool NAME with {…}` (a JSON object up to the
//!    end of the line, directives removed), the request offers NAME, and the
//!    choice lets the model call it (not "none", a named choice naming NAME,
//!    an automatic one only while the last turn is not a tool result) → one
//!    call of NAME with exactly that object. Otherwise, when the request has
//!    tools, the tool choice is not "none", and either the
//!    choice forces a call (OpenAI `"required"` / a named function; Responses
//!    also a named custom tool and `allowed_tools` with mode `required`;
//!    Anthropic `any` / `tool`; Gemini mode `ANY`) or `T` mentions a tool's
//!    name → tool calls. A named choice (Gemini: `ANY` with exactly one
//!    `allowedFunctionNames` entry) calls that tool; otherwise the mentioned
//!    tools are called in order of first mention (all of them unless parallel
//!    calls are disabled: OpenAI `parallel_tool_calls: false`, Anthropic
//!    `disable_parallel_tool_use`), and a forced choice with nothing
//!    mentioned calls the first tool. Arguments fill every `required`
//!    property of the tool's schema by type, case-insensitively (`string` →
//!    `"test"`, `number`/`integer` → `1`, `boolean` → `true`, `array` → `[]`,
//!    `object` → its own required properties; an `enum` uses its first
//!    value); a Responses custom tool is called with the plain-string `input`
//!    `test`. OpenAI call ids are `call_…`, Anthropic ids `toolu_01…`, both
//!    derived from the request body; Gemini calls carry no id. *Exception:*
//!    with an automatic choice a mention does not trigger a call when the
//!    last turn is already a tool result, so agent loops terminate.
//! 3. The last turn is a tool result (OpenAI role `tool`; Responses a
//!    `function_call_output` / `custom_tool_call_output` item; Anthropic a
//!    user turn with `tool_result` blocks; Gemini a turn with
//!    `functionResponse` parts) → `Tool result received: ` + the result text
//!    (Responses: the output string or its text parts, every output of the
//!    trailing run of outputs; Anthropic: the text of each `tool_result`;
//!    Gemini: a response object's lone string field, else its compact JSON;
//!    several results joined by newlines).
//! 4. Otherwise `Echo: ` + `T`, or `Hello from the anyint emulator.` when `T`
//!    is empty.
//!
//! Structured output replaces text from rules 3 and 4 (rule 1 still wins;
//! tool calls are unaffected): Responses `text.format` (see below),
//! Anthropic `output_config.format` / the deprecated `output_format`
//! (`json_schema`), Gemini `responseMimeType: "application/json"` with
//! `responseJsonSchema` or `responseSchema`: the compact JSON object filling
//! the schema's required properties like tool arguments (a union takes its
//! first non-null branch); JSON mode without a schema: `{}`; Gemini
//! `text/x.enum`: the schema's first `enum` value. Validation, as the APIs do
//! (`structured-output.md` §4, §5): Anthropic refuses (400) a format whose
//! root is not an object, an object without `additionalProperties: false`,
//! recursion, non-local `$ref`s, keywords it cannot decode with (`minimum`,
//! `maxLength`, `maxItems`, `minItems` > 1, `not`, …), unsupported string
//! formats, and both forms at once; Gemini refuses both schemas at once, a
//! schema without a JSON (or enum) MIME type, other MIME types, unknown field
//! names in `responseSchema` (`Unknown name "additionalProperties" at
//! 'generation_config.response_schema'`), and JSON output with mode `ANY`
//! (`Forced function calling (ANY mode) with a response mime type:
//! 'application/json' is unsupported`).
//!
//! Text output is then cut before the earliest stop string (OpenAI `stop`,
//! Anthropic `stop_sequences`, Gemini `stopSequences`), then truncated to the
//! output limit in words (`max_completion_tokens`/`max_tokens`,
//! Responses `max_output_tokens` minus the reasoning tokens, `max_tokens`,
//! `maxOutputTokens`). Finish reasons: OpenAI `stop`/`length`/
//! `tool_calls`; Responses status `completed` / `incomplete`
//! (`incomplete_details.reason: "max_output_tokens"`); Anthropic
//! `end_turn`, `stop_sequence` (with `stop_sequence` set), `max_tokens`,
//! `tool_use`; Gemini `STOP` (also for function calls) and `MAX_TOKENS`.
//!
//! Web search: when the request offers the provider's search tool (Anthropic
//! a `web_search_20250305`/`_20260209`/`_20260318` server tool, Gemini a
//! `googleSearch` tool) and `T` contains `search` (any case), the model
//! searches once. The query is the first line of `T` without directives,
//! trimmed, at most 100 characters. It finds two results,
//! `https://<domain>/results/<hex of the query>/1` and `…/2` titled
//! `Result <n> for <query>`, `<domain>` being the first `allowed_domains`
//! entry (Anthropic) or `example.com`. The answer (rules 1–4) then starts
//! with `Based on a web search: `, and the rest of its text is cited by
//! both results; a structured-output answer is the JSON alone, with no
//! prefix and no citations (the search still runs). Anthropic: a `server_tool_use` (`srvtoolu_01…`, input
//! `{"query"}`) and its `web_search_tool_result` (`web_search_result`s with
//! `encrypted_content` and `page_age`) come first, then a plain `text`
//! block with the prefix and a `text` block with `citations`
//! (`web_search_result_location`: `url`, `title`, `cited_text`,
//! `encrypted_index`); `usage.server_tool_use` is
//! `{"web_search_requests": 1, "web_fetch_requests": 0}`. Streams send the
//! server tool's input as `input_json_delta`s, the results whole at their
//! block's start, and the cited block as `citations_delta`s before its
//! `text_delta`s. Validation: the tool's `name` must be `web_search`,
//! `max_uses` ≥ 1, `allowed_domains` and `blocked_domains` not both,
//! `user_location.type` `approximate`, no unknown fields, no function also
//! named `web_search`. Gemini: the candidate carries `groundingMetadata`
//! (`webSearchQueries: [query]`, a `searchEntryPoint`, two
//! `groundingChunks` whose `web.uri` is a
//! `vertexaisearch.cloud.google.com/grounding-api-redirect/…` link titled by
//! the result's domain, and one `groundingSupports` entry whose segment is
//! the cited text in UTF-8 **byte** offsets, with `partIndex` when the text
//! is not the first part); usage adds `toolUsePromptTokenCount: 64`
//! (included in `totalTokenCount`). Streams put the metadata on the last
//! chunk, its offsets into the concatenated text. Validation:
//! `googleSearchRetrieval` is refused ("Please use google_search field
//! instead …"); with function declarations too, `gemini-1*`/`gemini-2*`
//! models answer 400 "Tool use with function calling is unsupported by the
//! model." and later ones require
//! `toolConfig.includeServerSideToolInvocations: true`; a
//! `functionCallingConfig` without declarations is a 400. Unknown fields of
//! a `Tool` are refused.
//!
//! Thinking: Anthropic `thinking` `enabled`/`adaptive` puts a `thinking`
//! block (fixed text, signature derived from the body; empty text with
//! `display: "omitted"`) before the answer. Gemini `thinkingConfig` with a
//! non-zero budget reports `thoughtsTokenCount`, adds a `thought: true` part
//! with `includeThoughts`, and gives the first `functionCall` part a
//! `thoughtSignature`.
//!
//! Tokens: input = Σ ⌈chars/4⌉ over message text (Responses: also
//! replayed call names and arguments / inputs, tool outputs and reasoning
//! summaries, plus `instructions`; Anthropic: also
//! `tool_use` name and input JSON, `tool_result` text, thinking text; Gemini:
//! also `functionCall`/`functionResponse` JSON) plus the system prompt and
//! ⌈chars(tools JSON)/4⌉, at least 1; images and files count 0. Output =
//! whitespace-separated words (tool calls: ⌈len(arguments JSON)/4⌉ + 1
//! each; plus thinking words on Anthropic and reasoning-summary words on
//! Responses, reported as `reasoning_tokens`), at least 1 (Anthropic
//! `max_tokens: 0` gives 0), times the choice / candidate count.
//!
//! Prompt cache (Anthropic): the prefix up to the last block with
//! `cache_control` (order tools → system → messages; a top-level
//! `cache_control` makes it the whole prompt) is hashed with the model. The
//! first request with a prefix reports its tokens as
//! `cache_creation_input_tokens` (in `cache_creation.ephemeral_1h_input_tokens`
//! when `ttl` is `1h`), later ones as `cache_read_input_tokens`;
//! `input_tokens` is the rest. `POST /_emulator/reset` forgets the prefixes.
//! Gemini: a `cachedContent` reference adds 1024 tokens reported as
//! `cachedContentTokenCount` (and included in `promptTokenCount`).
//!
//! # Responses API
//!
//! `POST /v1/responses` takes Bearer auth like chat and is counted under
//! `_responses_total` (and `_chat_total`); `input_tokens` under neither.
//! Validation:
//!
//! - Only the documented create params are accepted, plus `client_metadata`
//!   (Codex); anything else is 400 `Unknown parameter: '<name>'.` (code
//!   `unknown_parameter`). `input_tokens` accepts `model`, `input`,
//!   `instructions`, `tools`, `tool_choice`, `parallel_tool_calls`,
//!   `previous_response_id`, `conversation`, `reasoning`, `text`,
//!   `truncation` and needs no `model`. `model` is required on create;
//!   `input` may be left out (then `T` is empty).
//! - Nothing is stored: `previous_response_id` → 400
//!   `previous_response_not_found`; `conversation`, `prompt` and
//!   `background: true` → 400 `unsupported_parameter`; `item_reference` →
//!   400 `item_not_found`; a `reasoning` item with an `id` but no
//!   `encrypted_content` under `store: false` → 404 "Item with id … not
//!   found"; the stored-response routes → 404.
//! - `input` items: messages in easy (`{role, content}`) and typed form,
//!   roles `user`/`assistant`/`system`/`developer` (`phase` checked), user
//!   parts `input_text`/`input_image`/`input_file`/`input_audio`, assistant
//!   parts `output_text`/`refusal`; `function_call` (`call_id`, `name`,
//!   string `arguments`), `custom_tool_call` (string `input`); an output
//!   must follow its call (else 400 `No tool call found for function call
//!   output with call_id X.`, param `input`) and every call needs its output
//!   (else 400 `No tool output found for function call X.`); `reasoning`
//!   (`summary` required); hosted-tool and `compaction` items → 400
//!   `unsupported_value`.
//! - `tools`: flat `function` (`name` matching `^[a-zA-Z0-9_-]{1,64}$`; a
//!   chat-style nested `function` object → 400 `Missing required parameter:
//!   'tools[0].name'.`), `custom` (`format` text or lark/regex grammar),
//!   `namespace` (function/custom tools inside; their calls carry
//!   `namespace`). Hosted tools (`web_search`, `file_search`, …) → 400
//!   `unsupported_value`. `tool_choice`: `none`/`auto`/`required`,
//!   `{type:"function"|"custom",name}` (flat; the tool must exist),
//!   `allowed_tools` (restricts the callable tools).
//! - Strict schemas (`text.format` json_schema with `strict: true`, a
//!   function with `strict: true`) must follow OpenAI's rules (object root,
//!   `additionalProperties: false` and every property `required` in every
//!   object): else 400 `invalid_json_schema` (param `text.format.schema`) /
//!   `invalid_function_parameters` (param `tools[i].parameters`).
//!   `json_object` needs "json" in an input message (400, param
//!   `text.format`). `max_output_tokens` ≥ 16 (`integer_below_min_value`);
//!   `temperature` 0–2, `top_p` 0–1, `top_logprobs` 0–20, `include` values,
//!   `reasoning.effort`/`summary`, `service_tier`, `truncation`,
//!   `metadata` (16 string pairs) are range-checked.
//!
//! Answers follow the content rules, then:
//!
//! - Output items: with `reasoning.effort` set and not `none`, first a
//!   `rs_…` reasoning item with one `summary_text` (`**Planning the
//!   reply**\n\nThinking at <effort> effort.`), carrying
//!   `encrypted_content` only when `include` has
//!   `reasoning.encrypted_content`. Then a `msg_…` message with one
//!   `output_text` part (`annotations: []`, `logprobs: []`), or one item per
//!   call: `fc_…` `function_call` / `ctc_…` `custom_tool_call`, `call_id`
//!   `call_…`. A message cut to nothing by a budget the reasoning used up
//!   is left out. Ids are `prefix_` + 48 hex characters derived from the
//!   body (the response id `resp_…` too), so equal bodies get equal ids.
//! - `encrypted_content` blobs look like Fernet tokens (`gAAAAAB…`) and are
//!   bound to the bearer key that minted them: replayed under another key,
//!   altered, or not minted here → 400 `invalid_encrypted_content`.
//! - `text.format` `json_schema`: unless rule 1 applies, the text is the
//!   compact JSON object filling the schema's required properties like tool
//!   arguments; `json_object`: `{}`.
//! - The response object carries every key real ones do (`null` where
//!   unset), echoing `instructions`, `tools` (functions get `description`
//!   and `strict`, default true), `tool_choice` (default `auto`), `text`
//!   (default `{"format":{"type":"text"},"verbosity":"medium"}`),
//!   `reasoning`, `metadata`, `store` (default true), `service_tier`
//!   (`auto` → `default`), `temperature`/`top_p` (default 1), etc.
//!   `usage`: `input_tokens`, `input_tokens_details.{cached_tokens,
//!   cache_write_tokens}` (0), `output_tokens` (with reasoning),
//!   `output_tokens_details.reasoning_tokens`, `total_tokens`.
//!   `completed_at` is set only on `completed`.
//! - `input_tokens` answers `{"object":"response.input_tokens",
//!   "input_tokens":N}` with the same N as the create's `usage`.
//!
//! # Embeddings
//!
//! Vectors are deterministic: each value derives from a hash of the input
//! (text, or OpenAI token ids) and its position, so the same input always
//! gives the same vector, in either family. OpenAI `POST /v1/embeddings`:
//! `input` as a string, strings, token ids or arrays of them (empty string
//! or array: 400); unit vectors of `dimensions` values (default 8) as floats
//! or `encoding_format: "base64"` (little-endian f32); `usage.prompt_tokens`
//! = Σ ⌈chars/4⌉ (token arrays: their length). Gemini `:embedContent` and
//! `:batchEmbedContents` (at most 100 requests: 400 `at most 100 requests
//! can be in one batch`; each entry's `model`, when given, must name the
//! URL's model; unknown fields refused in either spelling): text parts
//! joined by newlines, 3072 values by default and normalised only at that
//! length; `outputDimensionality` returns the first N values, not
//! re-normalised, as `gemini-embedding-001` does. No usage is reported.
//! Each HTTP call counts once under its tag.
//!
//! # Streams
//!
//! OpenAI streams send a role chunk (`{"role":"assistant","content":""}`),
//! then one chunk per word-ish piece (`"Hello"`, `" world"`) or per tool-call
//! fragment (header fragment with empty arguments, then the arguments in 2+
//! pieces), then an empty-delta chunk with the finish reason, then (only
//! with `stream_options.include_usage`) a `choices: []` usage chunk, then
//! `data: [DONE]`.
//!
//! Responses streams are named events (`event: <type>` then `data: <json>`
//! whose `type` is the same; no `[DONE]`), `sequence_number` counting from 0:
//! `response.created`, `response.in_progress` (output `[]`, usage null), then
//! per item in order (`output_index` 0, 1, …) `response.output_item.added`
//! (status `in_progress`, empty content) → reasoning:
//! `reasoning_summary_part.added`, `reasoning_summary_text.delta` per word,
//! `.done`, `reasoning_summary_part.done`; message: `content_part.added`,
//! `output_text.delta` per word, `output_text.done`, `content_part.done`;
//! function call: `function_call_arguments.delta` (2+ pieces), `.done` (with
//! `name`); custom call: `custom_tool_call_input.delta`, `.done` →
//! `response.output_item.done` (the final item), then one
//! `response.completed` or `response.incomplete` with the whole response.
//! Deltas carry `obfuscation` padding unless
//! `stream_options.include_obfuscation` is false.
//!
//! Anthropic streams are named events (an `event:` line on every one):
//! `message_start` (usage with the input tokens), one `ping` right after the
//! first `content_block_start`, then per block `content_block_start`, deltas
//! (`thinking_delta` pieces then one `signature_delta`; `text_delta` per
//! word; `input_json_delta` with the input JSON in 2+ pieces),
//! `content_block_stop`; then `message_delta` (stop reason, cumulative
//! usage) and `message_stop`.
//!
//! Gemini streams send full `GenerateContentResponse` chunks with only the
//! new parts: thought pieces, then one chunk per word (or all function calls
//! in one chunk). Each candidate's last chunk has its `finishReason`; every
//! chunk has `usageMetadata` (prompt counts only until the final chunk,
//! which has the complete counts), `modelVersion` and `responseId`. No
//! `event:` lines, ids or comments.
//!
//! # Fault specs
//!
//! A spec is a list of `name=value` pairs separated by commas and/or spaces,
//! taken from the first of: the `x-emulator-fault` request header; the model
//! name after a `+` (`gpt-4o-mini+status=503`, or in a Gemini URL
//! `models/gemini-2.5-flash+status=503:generateContent`; always stripped from
//! the echoed model); an `[emulate: ...]` directive in the last user text
//! (DashScope: `input.prompt`; music: the first of `prompt`, `style`,
//! `title` holding one). The same keys work for every family; errors use
//! the family's envelope. Status GETs and cancels of tasks read the header
//! only.
//!
//! | key | effect |
//! |---|---|
//! | `status=N` (400–599) | answer HTTP N with the family's error body for N (see below) |
//! | `quota=1` | OpenAI, with `status=429`: `insufficient_quota` instead of a rate limit |
//! | `retry_after=S` | `retry-after: S` header (any status); Gemini 429s also get `RetryInfo` `retryDelay: "Ss"` |
//! | `retry_after_ms=M` | `retry-after-ms: M` header |
//! | `should_retry=true/false` | `x-should-retry` header |
//! | `latency_ms=M` | wait M ms before answering |
//! | `chunk_delay_ms=M` | wait M ms between stream chunks / events |
//! | `cut_after=N` | stream N chunks / events (the first role chunk, `message_start` or Gemini chunk counts), then abort the connection |
//! | `error_after=N` | stream N chunks / events, then a mid-stream error and a clean end: OpenAI `data: {"error":…}` (no `[DONE]`), Responses an `error` event (`{"error":{"type","code":"server_error","message","param"}}`) then `response.failed` (status `failed`, `error.code` `server_error`, the items done so far; an N at or past the terminal event replaces it), Anthropic `event: error` (`overloaded_error`), Gemini a `{"error":…}` chunk (503 `UNAVAILABLE`) |
//! | `tag=X` | count this request under X (see `/_emulator/counts`) |
//! | `times=K` | with `tag`: the fault applies only to the first K tagged requests |
//! | `every=N` (N ≥ 1) | with `tag`: the fault applies only to every N-th tagged request (the N-th, 2N-th, …); the others succeed normally |
//! | `polls=N` (N ≥ 1), `fail=CODE`, `never`, `stage_ms=M`, `dup_callbacks=1`, `no_callbacks=1`, `fetch_delay_ms=M` | task script of a DashScope / music create request, see [Async tasks](#async-tasks); ignored elsewhere |
//!
//! `times` and `every` both count against the tag's request counter (the
//! one `/_emulator/counts/{tag}` shows, bumped by every request whose spec
//! names the tag, whatever else the spec says), so `POST /_emulator/reset`
//! restarts them. They cannot be combined (400 naming both). A request that
//! `times` / `every` lets through keeps only its `tag` and its task keys:
//! every other key, headers and stream faults included, is ignored for it.
//! Example: a route failing 10% of requests is
//! `status=503,every=10,tag=bench`.
//!
//! Status bodies: Anthropic 400 `invalid_request_error`, 401
//! `authentication_error`, 402 `billing_error`, 403 `permission_error`, 404
//! `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 500
//! `api_error`, 504 `timeout_error`, 529 `overloaded_error` (other 5xx
//! `api_error`, other 4xx `invalid_request_error`). Gemini 400
//! `INVALID_ARGUMENT`, 401 `UNAUTHENTICATED`, 402/429 `RESOURCE_EXHAUSTED`
//! (429 with `QuotaFailure` and `Help` details), 403 `PERMISSION_DENIED`, 404
//! `NOT_FOUND`, 409 `ABORTED`, 499 `CANCELLED`, 500 `INTERNAL`, 501
//! `UNIMPLEMENTED`, 503 `UNAVAILABLE`, 504 `DEADLINE_EXCEEDED` (other 5xx
//! `INTERNAL`, other 4xx `FAILED_PRECONDITION`). DashScope 400
//! `InvalidParameter`, 401 `InvalidApiKey`, 403 `AccessDenied`, 404
//! `ModelNotFound`, 429 `Throttling.RateQuota`, 503 `ServiceUnavailable`,
//! 504 `RequestTimeOut` (other 5xx `InternalError`, other 4xx
//! `InvalidParameter`). Music: HTTP N with `{"code":N,"msg","data":null}`.
//!
//! Unknown keys or bad values are answered with a 400 naming the problem
//! (DashScope `InvalidParameter`; music HTTP 200 with business code 422).
//!
//! # Test endpoints
//!
//! `GET /_emulator/counts`, `GET /_emulator/counts/{tag}`,
//! `GET /_emulator/streams/{tag}` (see below), `GET /_emulator/last/{tag}`
//! (headers and body of the last tagged request, plus `path` with the query
//! for Gemini calls), `GET /_emulator/tasks`, `GET /_emulator/tasks/{task_id}`
//! (see [Async tasks](#async-tasks)) and `POST /_emulator/reset` (which also
//! forgets every task). Generation requests of the three chat families are
//! also counted under `_chat_total`, Responses creates under
//! `_responses_total`, Anthropic ones under `_anthropic_total` and Gemini
//! ones under `_gemini_total`. These endpoints need no API key.
//!
//! # Async tasks
//!
//! DashScope (as the `dashscope` SDK calls it, base `…/api/v1`):
//!
//! - Create (the three `services/aigc/…` endpoints) needs
//!   `X-DashScope-Async: enable` (any case; else 403 `AccessDenied`,
//!   `current user api does not support synchronous calls`) and a JSON body
//!   with `model` and `input.prompt` (video endpoints: `input.prompt`,
//!   `input.img_url` or `input.first_frame_url`); `parameters.duration`
//!   must be a positive integer and image `parameters.n` 1–4. Otherwise 400
//!   `InvalidParameter`. Unknown fields are ignored. Answer: 200
//!   `{"request_id","output":{"task_id","task_status":"PENDING"}}`.
//! - `GET /api/v1/tasks/{task_id}` answers 200 `{"request_id","output":
//!   {"task_id","task_status","submit_time","scheduled_time"?,
//!   "end_time"?,…},"usage"?}`; times are UTC `YYYY-MM-DD HH:MM:SS.mmm`,
//!   `scheduled_time` from the first advance, `end_time` once final.
//!   Statuses: `PENDING` → `RUNNING` → `SUCCEEDED` / `FAILED` (or
//!   `CANCELED`); an id never issued is `UNKNOWN` (still 200). Video
//!   success: `output.video_url` =
//!   `https://dashscope-emulator.invalid/videos/{task_id}.mp4`,
//!   `orig_prompt` (as sent), `actual_prompt` (directives removed) and
//!   `usage: {"duration": parameters.duration (default 5), "video_count":
//!   1, "SR": …}` (`SR` from `parameters.resolution` `"1080P"`, else the
//!   short side of `parameters.size` `"1280*720"`, else 720). Image
//!   success: `output.results: [{"url": "https://dashscope-emulator.invalid/images/{task_id}-{i}.png"}]`
//!   for i < `parameters.n` (default 1) and `usage: {"image_count": n}`.
//!   Failure: `output.code` = the `fail` code and `output.message`.
//! - `POST /api/v1/tasks/{task_id}/cancel`: a `PENDING` task becomes
//!   `CANCELED`, answer 200 `{"request_id"}`; anything else (started,
//!   final, unknown) 400 `UnsupportedOperation`.
//!
//! Music (sunoapi.org / kie.ai shape, at the host root):
//!
//! - `POST /api/v1/generate` needs booleans `customMode` and
//!   `instrumental`, `model` in `V4`, `V4_5`, `V4_5PLUS`, `V4_5ALL`, `V5`,
//!   `V5_5`; custom mode needs `style` and `title` (and `prompt` unless
//!   instrumental), simple mode `prompt`; lengths (directives not counted):
//!   simple prompt 500, custom prompt 3000 (V4) / 5000, style 200 (V4) /
//!   1000, title 80 (V4, V4_5ALL) / 100. `callBackUrl` is optional and must
//!   be http(s). Failures: HTTP 200 `{"code":422,"msg":<problem>,
//!   "data":null}`. Success: `{"code":200,"msg":"success","data":
//!   {"taskId"}}`.
//! - `GET /api/v1/generate/record-info?taskId=…` answers
//!   `{"code":200,"msg":"success","data":{"taskId","parentMusicId":"",
//!   "param":<the request as a JSON string>,"response":{"taskId",
//!   "sunoData":[…]},"status","type":"GENERATE","errorCode",
//!   "errorMessage"}}`; unknown id: `{"code":404,"msg":"task not found",
//!   "data":null}`; no `taskId`: code 422. Statuses: `PENDING` →
//!   `TEXT_SUCCESS` (no clips) → `FIRST_SUCCESS` (1 clip) → `SUCCESS` (2
//!   clips). `sunoData` items: `id`, `audioUrl`, `streamAudioUrl`,
//!   `imageUrl` (under `https://music-emulator.invalid/`), `prompt`
//!   (directives removed; empty when instrumental), `modelName`
//!   (`chirp-v4-5` for `V4_5`), `title`, `tags` (the style), `createTime`
//!   (`YYYY-MM-DD HH:MM:SS`), `duration` (180.0, 192.5). A failed task has
//!   status `GENERATE_AUDIO_FAILED` (`SENSITIVE_WORD_ERROR` or
//!   `CREATE_TASK_FAILED` when that is the `fail` code), `errorCode` 501,
//!   an `errorMessage` and no clips.
//! - Callbacks: each stage reached POSTs to `callBackUrl` `{"code":200,
//!   "msg","data":{"callbackType","task_id","data":[…]}}` with
//!   `callbackType` `text` (no clips), `first` (1), `complete` (2); items
//!   are snake_case (`id`, `audio_url`, `stream_audio_url`, `image_url`,
//!   `prompt`, `model_name`, `title`, `tags`, `createTime`, `duration`). A
//!   failure sends `{"code":501,"msg","data":{"callbackType":"error",
//!   "task_id","data":null}}`. Callbacks of one task go out in order from a
//!   background worker (the poll answer never waits for them), time out
//!   after 5 s and are never retried.
//!
//! Task script keys (in the create request's spec):
//!
//! | key | effect |
//! |---|---|
//! | `polls=N` (N ≥ 1, default 2) | the N-th status GET makes the task final; GETs before it: DashScope `RUNNING`; music `TEXT_SUCCESS` on the 1st, `FIRST_SUCCESS` on the 2nd to (N−1)-th (so N=1 goes straight to the end, N=2 skips `FIRST_SUCCESS`) |
//! | `fail=CODE` | the final state is a failure (DashScope `FAILED` with `output.code` CODE; music as above) |
//! | `never` / `never=1` | the task stops at `RUNNING` / `TEXT_SUCCESS` forever |
//! | `stage_ms=M` (M ≥ 1) | time-driven: the task advances one step every M ms after creation (sending callbacks as it goes) and status GETs do not advance it |
//! | `dup_callbacks=1` | every music callback is POSTed twice |
//! | `no_callbacks=1` | no callbacks even with a `callBackUrl` |
//! | `fetch_delay_ms=M` | each status GET of this task waits M ms before answering |
//!
//! Otherwise each status GET advances the task by one step. Introspection:
//! `GET /_emulator/tasks/{task_id}` → `{"task_id","family"
//! ("dashscope"/"music"),"status" (the family's status name),"fetches"
//! (status GETs),"max_concurrent_fetches" (most GETs of this task in flight
//! at once),"callbacks_sent" (callback POSTs finished, delivered or not),
//! "callbacks_failed" (those without a 2xx answer)}` or 404;
//! `GET /_emulator/tasks` → `{"tasks","fetches","max_concurrent_fetches",
//! "overlapping_tasks" (tasks that ever had 2+ GETs in flight)}`. A GET is
//! in flight from before its `fetch_delay_ms` wait until its answer is
//! built.
//!
//! # Stream accounting
//!
//! Every streaming response (all three families, Responses included) of a
//! request whose spec names a `tag` is accounted under that tag, readable
//! at `GET /_emulator/streams/{tag}` →
//! `{"tag", "started", "completed", "aborted", "cut"}` (zeros when unseen):
//!
//! - `started`: streaming responses begun (the request passed auth, faults
//!   and validation).
//! - `completed`: the body stream handed over every event and the
//!   terminator.
//! - `cut`: the stream reached a deliberate `cut_after` abort or the end of
//!   an `error_after` stream; neither completed nor aborted.
//! - `aborted`: the body was dropped before reaching its end, i.e. the peer
//!   closed the connection mid-stream (a drop guard inside the body notices).
//!   This proves a gateway cancels its upstream stream when its own client
//!   goes away. The server notices a closed connection when it next polls
//!   the body or writes to the socket, so poll this endpoint rather than
//!   expecting the count at once.
//!
//! `started` = `completed` + `cut` + `aborted` + streams still running.
//! `POST /_emulator/reset` clears these counters too; streams still running
//! at a reset are not counted afterwards.
//!
//! # Module layering
//!
//! Modules import only downward, and a child module never imports its
//! parent, so the file-level import graph has no cycle. Bottom up:
//!
//! 1. Leaves, importing nothing of this crate but other leaves: `util`,
//!    `fault`, `content` (the family-neutral content rules), `search` (the
//!    web search rule), `error`
//!    (OpenAI's envelope), the families' error envelopes
//!    `anthropic::error`, `gemini::error`, `dashscope::error` and
//!    `music::error`, and `task::callback` (callback delivery).
//! 2. `task`: the async task store and state machine. Knows no family (a
//!    family hands its wording in as a `task::Dialect`) and not `state`.
//! 3. `state`: per-instance counters, records and the task store.
//! 4. Plumbing over `state`: `gate` (admission; renders its rejections
//!    with the families' leaf error modules, never a handler) and `stream`
//!    (stream pacing and accounting).
//! 5. Family internals, the children of the handlers:
//!    `chat::{request,plan,render}`, `responses::{blob,schema,input,tools,
//!    request,plan,render,events}`, `anthropic::{request,plan,render,
//!    models}`, `gemini::{request,plan,render,models}`,
//!    `dashscope::render`, `music::render`. They import leaves, `task`
//!    (the task bodies) and their siblings (`request` → `plan` →
//!    `render`; `responses`: `blob`/`schema` → `input`/`tools` → `request`
//!    → `plan` → `render` → `events`), never `gate`, `state` or their
//!    parent. The Anthropic and Gemini `request` modules are split by
//!    concern into children (`parse`, `messages`/`contents`, `blocks`,
//!    `tools`, `thinking`/`config`, `text`, `fields`, …) that import one
//!    another and leaves, never `request` itself, which only re-exports them.
//! 6. Handlers, one per family plus the shared ones: `chat`, `responses`,
//!    `embeddings`, `anthropic`, `gemini`, `dashscope`, `music`, `admin` and
//!    `models` (which hands `/v1/models` to `anthropic` or `gemini` when the
//!    request speaks their dialect; the only handler importing handlers).
//!    They may import every layer below and their own children.
//! 7. This root: the router, importing handlers, `gate` (its middleware),
//!    `state` and `task::Kind`.

mod admin;
mod anthropic;
mod chat;
mod content;
mod dashscope;
mod embeddings;
mod error;
mod fault;
mod gate;
mod gemini;
mod models;
mod music;
mod responses;
mod search;
mod state;
mod stream;
mod task;
mod util;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt;

/// Largest request body the emulator reads (big enough for inline images).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Options for one emulator instance.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// When set, every provider request must carry this key (OpenAI:
    /// `Authorization: Bearer`; Anthropic: `x-api-key` or bearer; Gemini:
    /// `x-goog-api-key`, `?key=` or bearer). When unset, any non-empty key
    /// is accepted (a missing one is still rejected).
    pub api_key: Option<String>,
}

/// Builds the emulator's router. State lives inside, so the router can be
/// nested into another app or served directly.
pub fn router(opts: Options) -> Router {
    let state = Arc::new(state::State::new(opts));
    Router::new()
        .route("/v1/models", get(models::list))
        .route(
            "/v1/models/{id}",
            get(models::retrieve).post(gemini::action_v1),
        )
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/embeddings", post(embeddings::handle))
        .route(
            "/v1/responses",
            post(responses::create).get(responses::socket),
        )
        .route(
            "/v1/responses/input_tokens",
            post(responses::input_tokens).fallback(error::not_found),
        )
        .route(
            "/v1/responses/{id}",
            get(responses::stored)
                .delete(responses::stored)
                .fallback(error::not_found),
        )
        .route("/v1/responses/{id}/cancel", post(responses::stored))
        .route("/v1/responses/{id}/input_items", get(responses::stored))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1beta/models", get(gemini::list_v1beta))
        .route(
            "/v1beta/models/{target}",
            get(gemini::get_v1beta).post(gemini::action_v1beta),
        )
        .route(
            "/api/v1/services/aigc/video-generation/video-synthesis",
            dashscope::create_route(task::Kind::Video),
        )
        .route(
            "/api/v1/services/aigc/image2video/video-synthesis",
            dashscope::create_route(task::Kind::Video),
        )
        .route(
            "/api/v1/services/aigc/text2image/image-synthesis",
            dashscope::create_route(task::Kind::Image),
        )
        .route("/api/v1/tasks/{task_id}", get(dashscope::fetch))
        .route("/api/v1/tasks/{task_id}/cancel", post(dashscope::cancel))
        .route("/api/v1/generate", post(music::generate))
        .route("/api/v1/generate/record-info", get(music::record_info))
        .route("/_emulator/counts", get(admin::counts))
        .route("/_emulator/counts/{tag}", get(admin::count))
        .route("/_emulator/streams/{tag}", get(admin::streams))
        .route("/_emulator/last/{tag}", get(admin::last))
        .route("/_emulator/tasks", get(admin::tasks))
        .route("/_emulator/tasks/{task_id}", get(admin::task))
        .route("/_emulator/reset", post(admin::reset))
        .fallback(error::not_found)
        .layer(axum::middleware::map_response_with_state(
            Arc::clone(&state),
            gate::add_request_id,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serves the emulator on an already-bound listener until `shutdown`
/// resolves. Sets `TCP_NODELAY` on every accepted socket.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        // Best effort: a socket that refuses NODELAY still works, only slower.
        drop(tcp.set_nodelay(true));
    });
    axum::serve(listener, router(opts))
        .with_graceful_shutdown(shutdown)
        .await
}
