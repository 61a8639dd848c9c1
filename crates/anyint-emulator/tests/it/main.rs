//! End-to-end tests of the emulator: every test starts its own emulator on
//! 127.0.0.1:0 through the one shared [`harness`] and talks real HTTP to it
//! with reqwest. One module per area: the OpenAI endpoints (`emulator`),
//! the OpenAI Responses API (`responses`), `anthropic`, `gemini`, `streams` (`every=N` faults and stream
//! accounting across the families) and `tasks` (DashScope and music).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns; a panic is the failure report"
)]

mod anthropic;
mod emulator;
mod gemini;
mod harness;
mod responses;
mod streams;
mod tasks;
