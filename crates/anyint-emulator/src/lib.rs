//! Deterministic OpenAI upstream emulator with per-request fault injection.
//!
//! This crate owns a small HTTP server that speaks the real OpenAI wire format
//! (`/v1/models`, `/v1/chat/completions`, `/v1/embeddings`, error envelopes,
//! SSE streams). The gateway uses it in demo mode, in tests and in benchmarks.
//! It must never share types with the gateway: every body is built by hand
//! with `serde_json`, so a bug in the gateway's codecs cannot hide in here.
//!
//! # Content rules (chat)
//!
//! Let `T` be the text of the last `user` message (string content, or the
//! concatenation of its `text` parts). The assistant output is chosen by the
//! first rule that matches:
//!
//! 1. `T` contains `Reply with exactly: ` → everything after the marker up to
//!    the end of that line, with any `[emulate: ...]` directive removed, trimmed.
//! 2. The request has `tools`, `tool_choice` is not `"none"`, and either
//!    `tool_choice` is `"required"` / names a function, or `T` mentions a tool's
//!    function name → tool calls (content `null`, finish `tool_calls`). A named
//!    choice calls that tool; otherwise the mentioned tools are called in order
//!    of first mention (all of them when two or more are mentioned and
//!    `parallel_tool_calls` is not `false`, else only the first); `"required"`
//!    with nothing mentioned calls the first tool. Arguments fill every
//!    `required` property of the tool's JSON schema by type (`string` → `"test"`,
//!    `number`/`integer` → `1`, `boolean` → `true`, `array` → `[]`, `object` →
//!    an object with its own required properties filled; an `enum` uses its
//!    first value). Call ids are `call_` + hex derived from the request body and
//!    the call index. *Exception:* with `tool_choice` `"auto"` a mention does
//!    not trigger a call when the last message is already a `tool` result, so
//!    agent loops terminate.
//! 3. The last message has role `tool` → `Tool result received: ` + its content.
//! 4. Otherwise `Echo: ` + `T`, or `Hello from the anyint emulator.` when `T`
//!    is empty.
//!
//! Text output is then cut before the earliest `stop` string (finish `stop`),
//! then truncated to `max_completion_tokens` / `max_tokens` words (finish
//! `length`). Every one of the `n` choices carries the same output.
//!
//! Tokens: `prompt_tokens` = Σ over messages of ⌈chars(text)/4⌉ plus
//! ⌈chars(tools JSON)/4⌉, at least 1. `completion_tokens` = number of
//! whitespace-separated words (tool calls: ⌈len(arguments)/4⌉ + 1 each), at
//! least 1, times `n`.
//!
//! Streams send a role chunk (`{"role":"assistant","content":""}`), then one
//! chunk per word-ish piece (`"Hello"`, `" world"`) or per tool-call fragment
//! (header fragment with empty arguments, then the arguments in 2+ pieces),
//! then an empty-delta chunk with the finish reason, then (only with
//! `stream_options.include_usage`) a `choices: []` usage chunk, then
//! `data: [DONE]`.
//!
//! # Fault specs
//!
//! A spec is a list of `name=value` pairs separated by commas and/or spaces,
//! taken from the first of: the `x-emulator-fault` request header; the model
//! name after a `+` (`gpt-4o-mini+status=503`, always stripped from the echoed
//! model); an `[emulate: ...]` directive in the last user message.
//!
//! | key | effect |
//! |---|---|
//! | `status=N` (400–599) | answer HTTP N with the OpenAI error body for N |
//! | `quota=1` | with `status=429`: `insufficient_quota` instead of a rate limit |
//! | `retry_after=S` | `retry-after: S` header (any status) |
//! | `retry_after_ms=M` | `retry-after-ms: M` header |
//! | `should_retry=true/false` | `x-should-retry` header |
//! | `latency_ms=M` | wait M ms before answering |
//! | `chunk_delay_ms=M` | wait M ms between stream chunks |
//! | `cut_after=N` | stream N chunks (role chunk is the first), then abort |
//! | `tag=X` | count this request under X (see `/_emulator/counts`) |
//! | `times=K` | with `tag`: the fault applies only to the first K tagged requests |
//!
//! Unknown keys or bad values are answered with a 400 naming the problem.
//!
//! # Test endpoints
//!
//! `GET /_emulator/counts`, `GET /_emulator/counts/{tag}`,
//! `GET /_emulator/last/{tag}` (headers and body of the last tagged request)
//! and `POST /_emulator/reset`. Chat requests are also counted under
//! `_chat_total`. These endpoints need no API key.

mod admin;
mod chat;
mod embeddings;
mod error;
mod fault;
mod gate;
mod models;
mod state;
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
    /// When set, every `/v1` request must carry `Authorization: Bearer <key>`.
    /// When unset, any non-empty bearer key is accepted (a missing one is
    /// still a 401).
    pub api_key: Option<String>,
}

/// Builds the emulator's router. State lives inside, so the router can be
/// nested into another app or served directly.
pub fn router(opts: Options) -> Router {
    let state = Arc::new(state::State::new(opts));
    Router::new()
        .route("/v1/models", get(models::list))
        .route("/v1/models/{id}", get(models::retrieve))
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/embeddings", post(embeddings::handle))
        .route("/_emulator/counts", get(admin::counts))
        .route("/_emulator/counts/{tag}", get(admin::count))
        .route("/_emulator/last/{tag}", get(admin::last))
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
