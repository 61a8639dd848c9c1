//! anyint: a self-hostable AI API gateway.
//!
//! Clients speak one of several API families (`families`); each request is authenticated
//! (`auth`), checked against policy (`policy`), routed (`gateway`) to an upstream adapter
//! (`providers`), and metered (`meter`) into the store (`store`). Async media tasks (DashScope
//! video and image, music) live in `tasks`: store, poller, charging and signed callbacks.
//!
//! Modules import only downward: leaves (`error`, `clock`, `config`, `family`, `telemetry`),
//! then `store`/`auth`, `policy`, `providers`, `router`/`meter`, `state`, `gateway`/`tasks`,
//! `families`/`admin`/`console`, `server`, `cli`. `scripts/check-layers` enforces it; ARCHITECTURE.md
//! has the table, the codemap and the life of a request.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod error;
pub mod families;
pub mod family;
pub mod gateway;
pub mod invalidation;
pub mod meter;
pub mod policy;
pub mod providers;
pub mod router;
pub mod server;
pub mod state;
pub mod store;
pub mod tasks;
pub mod telemetry;

pub use error::{Error, ErrorKind};
