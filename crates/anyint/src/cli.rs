//! The `anyint` command line: `serve`, `keys`, `plans`, `accounts`, `teams`, `usage`,
//! `emulate` and `verify`.

mod entities;
mod keys;
mod serve;
pub mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// anyint: one base URL and one key for many AI model providers.
#[derive(Debug, Parser)]
#[command(name = "anyint", version, about)]
pub struct Cli {
    /// Config file (TOML). Defaults to $ANYINT_CONFIG, then ./anyint.toml.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Listen address, overriding [server] listen.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Run with no config: the built-in emulator as provider, SQLite under ./data/, and a
        /// fresh demo key printed with ready-to-paste curl lines.
        #[arg(long, conflicts_with = "config")]
        demo: bool,
    },
    /// Manage client API keys in the configured store.
    Keys {
        #[command(subcommand)]
        action: keys::KeysCommand,
    },
    /// Manage plans (model entitlement, default limits, credit caps).
    Plans {
        #[command(subcommand)]
        action: entities::EntityCommand,
    },
    /// Manage accounts (customers and their plans).
    Accounts {
        #[command(subcommand)]
        action: entities::EntityCommand,
    },
    /// Manage teams (groups of keys with shared limits and budgets).
    Teams {
        #[command(subcommand)]
        action: entities::EntityCommand,
    },
    /// Show recent usage ledger rows.
    Usage {
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        /// Only this key ID.
        #[arg(long)]
        key: Option<String>,
        /// Only this model.
        #[arg(long)]
        model: Option<String>,
        /// From this time (Unix seconds or YYYY-MM-DD, UTC).
        #[arg(long)]
        from: Option<String>,
        /// Until this time, exclusive (Unix seconds or YYYY-MM-DD, UTC).
        #[arg(long)]
        to: Option<String>,
        /// Sum by day, model or key instead of listing requests.
        #[arg(long, value_name = "day|model|key")]
        group_by: Option<String>,
        /// At most this many rows (when not grouping).
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a deployment end to end: the customer integration checklist (key from
    /// ANYINT_API_KEY).
    Verify(verify::VerifyArgs),
    /// Run the provider emulator alone.
    Emulate {
        /// Listen address.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4000")]
        listen: SocketAddr,
        /// Require this upstream key (Authorization: Bearer) from callers.
        #[arg(long, value_name = "ENV_VAR")]
        api_key_env: Option<String>,
    },
}

/// Parses arguments and runs the command; returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The serving workers run runtimes of their own; this one's threads carry the meter's
    // writer and the refreshes, and give back what a burst left them once the workers have.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(crate::server::on_background_park)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("anyint: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("anyint: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { listen, demo } => serve::run(cli.config, listen, demo).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Keys { action } => keys::run(cli.config, action).await,
        Command::Plans { action } => {
            entities::run(cli.config, crate::store::EntityKind::Plan, action).await
        }
        Command::Accounts { action } => {
            entities::run(cli.config, crate::store::EntityKind::Account, action).await
        }
        Command::Teams { action } => {
            entities::run(cli.config, crate::store::EntityKind::Team, action).await
        }
        Command::Usage {
            account,
            key,
            model,
            from,
            to,
            group_by,
            limit,
            json,
        } => {
            let params = [
                ("account", account),
                ("key", key),
                ("model", model),
                ("from", from),
                ("to", to),
                ("group_by", group_by),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .chain(std::iter::once(("limit".to_owned(), limit.to_string())))
            .collect();
            keys::usage(cli.config, &params, json).await
        }
        Command::Emulate {
            listen,
            api_key_env,
        } => serve::emulate(listen, api_key_env).await,
    }
}

/// Loads the config named by `--config`, `$ANYINT_CONFIG` or `./anyint.toml`, if any.
fn load_config(path: Option<PathBuf>) -> Result<Option<crate::config::Config>, String> {
    match path.or_else(crate::config::default_path) {
        Some(p) => crate::config::Config::load(&p, &crate::config::process_env)
            .map(Some)
            .map_err(|e| e.to_string()),
        None => Ok(None),
    }
}
