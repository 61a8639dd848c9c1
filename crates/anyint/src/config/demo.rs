//! The `--demo` configuration: the built-in emulator as the only provider, a SQLite file under
//! `./data/`, and a handful of models. Built as TOML text so it passes the same validation as a
//! file an operator writes.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::{Config, EnvLookup, Error};

/// The upstream key the demo gateway sends to its in-process emulator.
pub const DEMO_UPSTREAM_KEY: &str = "demo-upstream-key";

/// Models the demo serves, with their display names.
const DEMO_MODELS: &[(&str, &str, &str)] = &[
    ("gpt-4o-mini", "GPT-4o mini (emulated)", "openai"),
    ("gpt-4o", "GPT-4o (emulated)", "openai"),
    ("gpt-4.1", "GPT-4.1 (emulated)", "openai"),
    ("o4-mini", "o4-mini (emulated)", "openai"),
];

/// The demo config, with the emulator at `emulator_base` (e.g. `http://127.0.0.1:4000`).
pub fn demo_config(
    emulator_base: &str,
    listen: SocketAddr,
    env: EnvLookup<'_>,
) -> Result<Config, Error> {
    let mut text = format!(
        "[server]\nlisten = \"{listen}\"\n\n[store]\nurl = \"sqlite://data/anyint.db\"\n\n\
         [[providers]]\nname = \"emulator\"\nkind = \"openai\"\nbase_url = \"{emulator_base}/v1\"\n\
         api_key = \"{DEMO_UPSTREAM_KEY}\"\n"
    );
    for (id, name, owner) in DEMO_MODELS {
        let _ = write!(
            text,
            "\n[[models]]\nid = \"{id}\"\ndisplay_name = \"{name}\"\nowned_by = \"{owner}\"\n\
             routes = [{{ provider = \"emulator\", upstream_model = \"{id}\" }}]\n"
        );
    }
    Config::parse(&text, "<demo>", env)
}
