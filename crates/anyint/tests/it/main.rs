//! End-to-end tests: the emulator and the gateway on 127.0.0.1:0, real HTTP over loopback, a
//! temp SQLite file per test (and a fresh Postgres schema for the `pg_` tests).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::too_many_lines,
    reason = "test harness code fails loudly by design; tests build plain clients"
)]
#![expect(
    unreachable_pub,
    reason = "a test binary has no public API; pub marks harness items shared across modules"
)]

mod accounts;
mod admin;
mod binary;
mod claude_code;
mod conns;
mod console;
mod embeddings;
mod encoding;
mod fuzz;
mod harness;
mod journal;
mod limits;
mod openai;
mod redis;
mod responses;
mod routing;
mod security;
mod spend;
mod store;
mod tasks;
mod tls;
mod translate;
mod verify;
mod web_search;
