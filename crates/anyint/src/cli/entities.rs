//! `anyint plans|accounts|teams create|list`: the admin API's entity operations, on the
//! configured store directly (a running gateway picks them up at its next refresh).

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Map, Value, json};

use crate::store::EntityKind;

/// `create` and `list` for one entity kind.
#[derive(Debug, Subcommand)]
pub(super) enum EntityCommand {
    /// Create one.
    Create {
        /// Its ID.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Plan of an account.
        #[arg(long)]
        plan: Option<String>,
        /// Account of a team.
        #[arg(long)]
        account: Option<String>,
        /// Comma-separated model allowlist (plans and teams).
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
        /// Requests per minute (plans: per account; teams: shared by the team).
        #[arg(long)]
        rpm: Option<u32>,
        /// Requests in flight.
        #[arg(long)]
        concurrency: Option<u32>,
        /// Monthly credit cap of a plan, in micro-units.
        #[arg(long)]
        credit_cap_micros: Option<i64>,
        /// Monthly budget of a team, in micro-units.
        #[arg(long)]
        budget_micros: Option<i64>,
    },
    /// List them.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(
    config_path: Option<PathBuf>,
    kind: EntityKind,
    action: EntityCommand,
) -> Result<(), String> {
    let config = super::load_config(config_path)?;
    let store = super::keys::open(config.as_ref()).await?;
    match action {
        EntityCommand::Create {
            id,
            name,
            plan,
            account,
            models,
            rpm,
            concurrency,
            credit_cap_micros,
            budget_micros,
        } => {
            let mut body = Map::new();
            body.insert("id".into(), json!(id));
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    body.insert(k.to_owned(), v);
                }
            };
            put("name", name.map(Value::from));
            put("plan", plan.map(Value::from));
            put("account", account.map(Value::from));
            put("models", models.map(|m| json!(m)));
            put("rpm", rpm.map(Value::from));
            put("concurrency", concurrency.map(Value::from));
            put("credit_cap_micros", credit_cap_micros.map(Value::from));
            put("budget_micros", budget_micros.map(Value::from));
            let body = serde_json::to_vec(&Value::Object(body)).map_err(|e| e.to_string())?;
            let created =
                crate::admin::entities::create_in_store(store, config.as_ref(), kind, &body)
                    .await
                    .map_err(|e| e.message)?;
            println!("{created}");
        }
        EntityCommand::List { json } => {
            let all = crate::admin::entities::list_in_store(store.as_ref(), kind)
                .await
                .map_err(|e| e.message)?;
            if json {
                println!("{}", Value::Array(all));
            } else {
                for e in all {
                    println!("{e}");
                }
            }
        }
    }
    Ok(())
}
