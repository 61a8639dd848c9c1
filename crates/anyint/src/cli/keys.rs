//! `anyint keys …` and `anyint usage`: operate on the configured store directly, so they work
//! whether or not a gateway is running (a running gateway picks changes up on its next cache
//! refresh, or at once for a new key on first use).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Subcommand;

use crate::config::{Config, DEFAULT_STORE_URL};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub(super) enum KeysCommand {
    /// Create a key and print it once.
    Create {
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// The owning account.
        #[arg(long, default_value = "default")]
        account: String,
        /// Comma-separated model allowlist (default: every configured model).
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
        /// Refuse the key after this many seconds from now.
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<i64>,
        /// Comma-separated CIDRs the key may be used from (e.g. 203.0.113.0/24).
        #[arg(long, value_delimiter = ',', value_name = "CIDRS")]
        ip_allowlist: Option<Vec<String>>,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u32>,
        /// Requests in flight at once, streams included.
        #[arg(long)]
        concurrency: Option<u32>,
        /// Monthly credit budget, in micro-units.
        #[arg(long)]
        budget_micros: Option<i64>,
        /// Tokens per minute.
        #[arg(long)]
        tpm: Option<u32>,
        /// The team the key belongs to (its account is the team's).
        #[arg(long)]
        team: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never the keys themselves, only their prefixes).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by ID.
    Revoke {
        /// The key ID (key_…).
        id: String,
    },
}

pub(super) async fn open(config: Option<&Config>) -> Result<Arc<dyn Store>, String> {
    let url = config.map_or(DEFAULT_STORE_URL, |c| c.store_url.as_str());
    crate::store::open(url)
        .await
        .map_err(|e| format!("opening store {}: {e}", crate::store::redact_url(url)))
}

/// The account a new key belongs to: the team's when a team is given (and the `--account`
/// flag, if set, must agree), which must follow the ID rule.
async fn team_account(
    store: &Arc<dyn Store>,
    team: Option<&str>,
    account: String,
) -> Result<String, String> {
    if !crate::store::is_valid_id(&account) {
        return Err(format!("--account must be {}", crate::store::ID_RULE));
    }
    let Some(team_id) = team else {
        return Ok(account);
    };
    let directory = crate::policy::directory::DirectoryCache::new(store.clone());
    directory.reload().await.map_err(|e| e.to_string())?;
    let dir = directory.get();
    let Some(t) = dir.teams.get(team_id) else {
        return Err(format!("no team {team_id}; see `anyint teams list`"));
    };
    if account != "default" && account != t.account {
        return Err(format!(
            "team {team_id} belongs to account {}, not {account}",
            t.account
        ));
    }
    Ok(t.account.clone())
}

pub(super) async fn run(config_path: Option<PathBuf>, action: KeysCommand) -> Result<(), String> {
    let config = super::load_config(config_path)?;
    let store = open(config.as_ref()).await?;
    match action {
        KeysCommand::Create {
            name,
            account,
            models,
            expires_in,
            ip_allowlist,
            rpm,
            concurrency,
            budget_micros,
            tpm,
            team,
            json,
        } => {
            let limits = crate::store::KeyLimits {
                expires_at: expires_in.map(|s| crate::clock::unix_secs().saturating_add(s)),
                ip_allowlist,
                rpm,
                concurrency,
                budget_micros,
                tpm,
            };
            let models = models.map(|m| {
                m.into_iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            });
            crate::admin::validate_new_key(config.as_ref(), &name, models.as_deref(), &limits)
                .map_err(|e| e.message)?;
            let account = team_account(&store, team.as_deref(), account).await?;
            let (record, key) = crate::auth::issue_team_key(
                store.as_ref(),
                name.trim(),
                &account,
                models,
                limits,
                team,
            )
            .await
            .map_err(|e| e.to_string())?;
            if json {
                let mut v = crate::admin::key_json(&record);
                v["key"] = serde_json::json!(key);
                println!("{v}");
            } else {
                println!(
                    "Created key {} ({}) for account {}.",
                    record.id, record.name, record.account
                );
                println!("Key (shown once, store it now): {key}");
            }
        }
        KeysCommand::List { json } => {
            let keys = store.list_keys().await.map_err(|e| e.to_string())?;
            if json {
                let keys: Vec<_> = keys.iter().map(crate::admin::key_json).collect();
                println!("{}", serde_json::Value::from(keys));
            } else {
                println!(
                    "{:<22} {:<20} {:<16} {:<18} {:<10} MODELS",
                    "ID", "NAME", "ACCOUNT", "PREFIX", "STATUS"
                );
                for k in keys {
                    let status = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    let models = k.models.map_or_else(|| "*".to_owned(), |m| m.join(","));
                    println!(
                        "{:<22} {:<20} {:<16} {:<18} {:<10} {models}",
                        k.id, k.name, k.account, k.prefix, status
                    );
                }
            }
        }
        KeysCommand::Revoke { id } => match store
            .revoke_key(&id, crate::clock::unix_secs())
            .await
            .map_err(|e| e.to_string())?
        {
            Some(k) => println!("Revoked {} ({}).", k.id, k.name),
            None => return Err(format!("no key with id {id}; see `anyint keys list`")),
        },
    }
    Ok(())
}

pub(super) async fn usage(
    config_path: Option<PathBuf>,
    params: &std::collections::HashMap<String, String>,
    json: bool,
) -> Result<(), String> {
    let config = super::load_config(config_path)?;
    let store = open(config.as_ref()).await?;
    let (query, group) = crate::admin::usage_query(params).map_err(|e| e.message)?;
    if let Some(group) = group {
        let groups = store
            .usage_summary(&query, group)
            .await
            .map_err(|e| e.to_string())?;
        if json {
            println!(
                "{}",
                serde_json::to_string(&groups).map_err(|e| e.to_string())?
            );
            return Ok(());
        }
        println!(
            "{:<24} {:>9} {:>12} {:>12} {:>10} {:>10} {:>14}",
            "GROUP", "REQUESTS", "PROMPT", "COMPLETION", "CACHE_RD", "CACHE_WR", "COST_MICROS"
        );
        for g in groups {
            println!(
                "{:<24} {:>9} {:>12} {:>12} {:>10} {:>10} {:>14}",
                g.group,
                g.requests,
                g.prompt_tokens,
                g.completion_tokens,
                g.cache_read_tokens,
                g.cache_write_tokens,
                g.cost_micros
            );
        }
        return Ok(());
    }
    let rows = store.usage(&query).await.map_err(|e| e.to_string())?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&rows).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!(
        "{:<36} {:<22} {:<16} {:>7} {:>7} {:>6} {:<14} {:>8} {:>11}",
        "REQUEST", "KEY", "MODEL", "PROMPT", "COMPL", "STATUS", "OUTCOME", "MS", "COST_MICROS"
    );
    for r in rows {
        println!(
            "{:<36} {:<22} {:<16} {:>7} {:>7} {:>6} {:<14} {:>8} {:>11}",
            r.request_id,
            r.key_id,
            r.model,
            r.prompt_tokens,
            r.completion_tokens,
            r.status,
            r.outcome,
            r.latency_ms,
            r.cost_micros
        );
    }
    Ok(())
}
