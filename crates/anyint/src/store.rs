//! Persistent state behind one [`Store`] trait: API keys (hashed), policy entities, the usage
//! ledger, and (through its [`TaskStore`] part) async tasks and their callback outbox.
//!
//! Two backends share one SQL implementation ([`sql::SqlStore`] on sqlx's `Any` driver):
//! SQLite, the embedded default, and Postgres for several gateway instances. Each backend owns
//! its connection setup (`sqlite.rs`, `postgres.rs`); the schema migrations they share are in
//! `migrations.rs`. The hot path never calls the store directly: keys come from
//! `auth::KeyCache` and usage goes through `meter`.

mod ledger_sql;
mod migrations;
mod postgres;
mod responses;
mod responses_sql;
mod sql;
mod sqlite;
mod tasks;
mod tasks_sql;

pub use responses::{ResponseStore, StoredResponse};
pub use tasks::{
    Delivery, DeliveryAttempt, DeliveryNext, NewDelivery, Reservation, Submitted, Task, TaskStatus,
    TaskStore, TaskUpdate,
};

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

/// A store failure. Messages carry no secrets (URLs are redacted before they get here).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed a query.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The store URL is not usable.
    #[error("{0}")]
    Config(String),
}

/// A store failure reaches a client as a retryable internal error; the cause is only logged.
/// The conversion lives here, not in `error`, so that the leaf error type knows nothing of the
/// store.
impl From<Error> for crate::error::Error {
    fn from(e: Error) -> Self {
        Self::new(
            crate::error::ErrorKind::Internal,
            "the gateway's store is unavailable; retry shortly",
        )
        .with_cause(e)
    }
}

/// An API key as stored: the hash, never the key.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ApiKey {
    /// Stable ID, `key_…`.
    pub id: String,
    /// Operator-chosen name.
    pub name: String,
    /// Owning account.
    pub account: String,
    /// Model allowlist; `None` means every configured model.
    pub models: Option<Vec<String>>,
    /// The key's visible prefix, for identification.
    pub prefix: String,
    /// Hex SHA-256 of the full key.
    #[serde(skip)]
    pub key_hash: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// Per-key restrictions.
    #[serde(flatten)]
    pub limits: KeyLimits,
    /// The team the key belongs to, if any.
    pub team: Option<String>,
}

/// The kinds of policy entity kept as (id, JSON spec) rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityKind {
    /// Subscriptions: model entitlement and default limits for accounts.
    Plan,
    /// Customers.
    Account,
    /// Groups of keys within an account.
    Team,
}

impl EntityKind {
    /// The name stored in the `kind` column and used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Account => "account",
            Self::Team => "team",
        }
    }
}

/// A stored policy entity.
#[derive(Clone, Debug, PartialEq)]
pub struct Entity {
    /// Operator-chosen ID.
    pub id: String,
    /// The validated spec, as JSON.
    pub spec: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
}

/// Restrictions on one key, each off when `None`.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyLimits {
    /// Unix seconds after which the key is refused (401).
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Client addresses allowed to use the key, as CIDRs (`203.0.113.0/24`, `2001:db8::/32`).
    #[serde(default)]
    pub ip_allowlist: Option<Vec<String>>,
    /// Requests per minute.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Requests in flight at once, streams included.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Credit budget per UTC calendar month, in micro-units.
    #[serde(default)]
    pub budget_micros: Option<i64>,
    /// Tokens per minute (input and output).
    #[serde(default)]
    pub tpm: Option<u32>,
}

/// One metered request. No prompt or completion text, by construction.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct UsageRecord {
    /// The gateway request ID (unique: a retried flush cannot double-count).
    pub request_id: String,
    /// The key that made the request.
    pub key_id: String,
    /// The key's account.
    pub account: String,
    /// Public model ID.
    pub model: String,
    /// Provider name that served it.
    pub provider: String,
    /// Model ID sent upstream.
    pub upstream_model: String,
    /// Client family, e.g. `openai`.
    pub family: String,
    /// Whether it streamed.
    pub stream: bool,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Input tokens read from the provider's cache.
    pub cache_read_tokens: i64,
    /// Input tokens written to the provider's cache.
    pub cache_write_tokens: i64,
    /// Hosted web searches the upstream ran (priced per search).
    pub web_searches: i64,
    /// HTTP status the client got.
    pub status: i64,
    /// `ok`, `client_closed`, `upstream_cut`, `interrupted` (the gateway stopped mid-stream;
    /// billed up to its last progress record) or an error kind.
    pub outcome: String,
    /// Milliseconds from request to last byte.
    pub latency_ms: i64,
    /// Unix milliseconds when the request arrived.
    pub created_at_ms: i64,
    /// Cost in integer micro-units, from the served model's price.
    pub cost_micros: i64,
    /// The key's team, when it has one.
    pub team: Option<String>,
}

/// Filters for reading the ledger.
#[derive(Clone, Debug, Default)]
pub struct UsageQuery {
    /// Only this account.
    pub account: Option<String>,
    /// Only this team.
    pub team: Option<String>,
    /// Only this key.
    pub key_id: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// Only this request.
    pub request_id: Option<String>,
    /// Only rows at or after this instant (Unix milliseconds).
    pub from_ms: Option<i64>,
    /// Only rows before this instant (Unix milliseconds).
    pub to_ms: Option<i64>,
    /// At most this many rows, newest first.
    pub limit: i64,
}

/// How usage is summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// By UTC minute (the console's last-hour chart).
    Minute,
    /// By UTC hour (the console's last-day chart).
    Hour,
    /// By UTC day.
    Day,
    /// By public model.
    Model,
    /// By key.
    Key,
    /// By team (keys without a team are left out).
    Team,
    /// By account.
    Account,
}

/// One group of summed usage. Tokens and cost are exact integers.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct UsageGroup {
    /// The group's value: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:00Z` (hour, minute), a model ID or a
    /// key ID.
    pub group: String,
    /// Requests in the group.
    pub requests: i64,
    /// Requests answered with an HTTP status of 400 or more.
    pub errors: i64,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Cached input tokens read.
    pub cache_read_tokens: i64,
    /// Cached input tokens written.
    pub cache_write_tokens: i64,
    /// Hosted web searches.
    pub web_searches: i64,
    /// Cost in micro-units.
    pub cost_micros: i64,
}

/// What a spend total belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpendScope {
    /// A key's budget.
    Key,
    /// A team's budget.
    Team,
    /// An account's plan cap.
    Account,
}

/// One month's spend of one key, team or account, kept as ledger rows are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendTotal {
    /// Whose spend.
    pub scope: SpendScope,
    /// The key, team or account ID.
    pub id: String,
    /// Micro-units.
    pub cost_micros: i64,
}

/// The persistence boundary. Object-safe so backends are chosen at runtime.
#[async_trait]
pub trait Store: TaskStore + ResponseStore + Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), Error>;
    /// Cheap liveness query for `/readyz`.
    async fn ping(&self) -> Result<(), Error>;
    /// Inserts a new key.
    async fn insert_key(&self, key: &ApiKey) -> Result<(), Error>;
    /// All keys, newest first.
    async fn list_keys(&self) -> Result<Vec<ApiKey>, Error>;
    /// Active (unrevoked) keys, for the cache.
    async fn active_keys(&self) -> Result<Vec<ApiKey>, Error>;
    /// The key with this hash, revoked or not.
    async fn key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, Error>;
    /// Revokes a key; `None` when no such key exists.
    async fn revoke_key(&self, id: &str, now: i64) -> Result<Option<ApiKey>, Error>;
    /// Replaces a key's model allowlist and restrictions; `None` when no such key exists.
    async fn update_key(
        &self,
        id: &str,
        models: Option<&[String]>,
        limits: &KeyLimits,
    ) -> Result<Option<ApiKey>, Error>;
    /// Inserts a policy entity; `Ok(false)` when one with this ID already exists.
    async fn insert_entity(&self, kind: EntityKind, entity: &Entity) -> Result<bool, Error>;
    /// Replaces an entity's spec; `Ok(false)` when it does not exist.
    async fn update_entity(
        &self,
        kind: EntityKind,
        id: &str,
        spec: &serde_json::Value,
    ) -> Result<bool, Error>;
    /// All entities of a kind, by ID.
    async fn entities(&self, kind: EntityKind) -> Result<Vec<Entity>, Error>;
    /// Writes usage rows atomically; rows whose request ID is already stored are skipped.
    async fn insert_usage(&self, rows: &[UsageRecord]) -> Result<(), Error>;
    /// Reads usage rows, newest first.
    async fn usage(&self, q: &UsageQuery) -> Result<Vec<UsageRecord>, Error>;
    /// Sums usage matching `q` (its `limit` is ignored) by `group`.
    async fn usage_summary(&self, q: &UsageQuery, group: GroupBy)
    -> Result<Vec<UsageGroup>, Error>;
    /// The spend of every key, team and account in the UTC month starting at `month_ms`, as
    /// kept beside the ledger (a row per scope, never a scan of the ledger).
    async fn spend_totals(&self, month_ms: i64) -> Result<Vec<SpendTotal>, Error>;
    /// The ledger's upkeep, off the hot path: prepares the storage for this month and the
    /// next, and removes raw rows from before `keep_from_ms` (hourly buckets and totals are
    /// kept). Returns how many rows (SQLite) or monthly partitions (Postgres) went.
    async fn maintain_usage(&self, now_ms: i64, keep_from_ms: Option<i64>) -> Result<u64, Error>;
}

/// Opens the store at `url` (`sqlite://…` or `postgres://…`) and migrates it.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, Error> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(sqlite::open(url).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(postgres::open(url).await?)
    } else {
        return Err(Error::Config(
            "store url must start with sqlite:// or postgres://".into(),
        ));
    };
    store.migrate().await?;
    Ok(store)
}

/// The longest ID the gateway stores or looks up.
pub const MAX_ID_LEN: usize = 128;

/// The ID rule, one for every kind of ID (task, key, event, request, account, team, plan):
/// 1 to [`MAX_ID_LEN`] ASCII letters, digits, `_` or `-`. Every ID the gateway issues has this
/// shape and the admin API and CLI create no other; an ID from a URL or query that breaks it
/// is answered as missing before it reaches a store (Postgres refuses a NUL byte in text that
/// SQLite takes, so otherwise the backends would answer differently).
pub fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The rule in words, for error messages.
pub const ID_RULE: &str = "1 to 128 ASCII letters, digits, `_` or `-`";

/// Removes any password from a database URL so it can be printed.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rule() {
        for ok in ["a", "task_0f3a", "key_ABC-1", &"x".repeat(MAX_ID_LEN)] {
            assert!(is_valid_id(ok), "{ok:?}");
        }
        for bad in [
            "",
            "\0",
            "task_\0x",
            &"x".repeat(MAX_ID_LEN + 1),
            "tâche",
            "a b",
            "a.b",
            "a/b",
            "💥",
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }
}
