//! The config file as written: serde structs that mirror the TOML, with `deny_unknown_fields`
//! everywhere and nothing defaulted or checked yet. Kept apart from the validated types so that
//! the shape operators write and the shape the gateway runs on can differ; `validate.rs` turns
//! one into the other.

use serde::Deserialize;

use super::{Fsync, LogFormat, OnRedisError, Price, ProviderKind, Strategy};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default)]
    pub(super) server: ServerFile,
    #[serde(default)]
    pub(super) store: StoreFile,
    #[serde(default)]
    pub(super) meter: MeterFile,
    #[serde(default)]
    pub(super) routing: RoutingFile,
    #[serde(default)]
    pub(super) limits: LimitsFile,
    #[serde(default)]
    pub(super) providers: Vec<ProviderFile>,
    #[serde(default)]
    pub(super) models: Vec<ModelFile>,
    #[serde(default)]
    pub(super) tasks: TasksFile,
    #[serde(default)]
    pub(super) responses: ResponsesFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResponsesFile {
    pub(super) retention_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TasksFile {
    pub(super) public_url: Option<String>,
    pub(super) poll_interval_ms: Option<u64>,
    pub(super) poll_max_interval_ms: Option<u64>,
    pub(super) refresh_after_ms: Option<u64>,
    pub(super) deadline_secs: Option<u64>,
    pub(super) lease_ms: Option<u64>,
    pub(super) poller_batch: Option<usize>,
    pub(super) idempotency_hours: Option<u64>,
    #[serde(default)]
    pub(super) callback_allow_networks: Vec<String>,
    pub(super) callback_allow_http: Option<bool>,
    pub(super) callback_timeout_ms: Option<u64>,
    pub(super) callback_backoff_ms: Option<u64>,
    pub(super) callback_backoff_max_ms: Option<u64>,
    pub(super) callback_horizon_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerFile {
    pub(super) listen: Option<String>,
    pub(super) admin_token_env: Option<String>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) log_level: Option<String>,
    pub(super) shutdown_grace_secs: Option<u64>,
    pub(super) key_cache_refresh_secs: Option<u64>,
    #[serde(default)]
    pub(super) trusted_proxies: Vec<String>,
    pub(super) metrics_token_env: Option<String>,
    pub(super) header_read_timeout_secs: Option<u64>,
    pub(super) idle_timeout_secs: Option<u64>,
    pub(super) body_read_timeout_secs: Option<u64>,
    pub(super) max_connections: Option<usize>,
    pub(super) fd_reserve: Option<usize>,
    pub(super) workers: Option<usize>,
    pub(super) tls_cert_file: Option<std::path::PathBuf>,
    pub(super) tls_key_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreFile {
    pub(super) url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MeterFile {
    pub(super) flush_interval_ms: Option<u64>,
    pub(super) batch_size: Option<usize>,
    pub(super) journal_dir: Option<String>,
    pub(super) fsync: Option<Fsync>,
    pub(super) journal: Option<bool>,
    pub(super) retention_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsFile {
    pub(super) redis_url: Option<String>,
    pub(super) key_prefix: Option<String>,
    pub(super) on_redis_error: Option<OnRedisError>,
    pub(super) redis_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoutingFile {
    pub(super) max_attempts: Option<u32>,
    pub(super) retry_budget_ms: Option<u64>,
    pub(super) backoff_base_ms: Option<u64>,
    pub(super) backoff_max_ms: Option<u64>,
    pub(super) breaker_window_secs: Option<u64>,
    pub(super) breaker_min_requests: Option<u32>,
    pub(super) breaker_failure_rate: Option<f64>,
    pub(super) breaker_cooldown_secs: Option<u64>,
}

/// One value or a list, for settings such as several API keys.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProviderFile {
    pub(super) name: String,
    pub(super) kind: ProviderKind,
    pub(super) base_url: String,
    pub(super) api_key_env: Option<OneOrMany>,
    pub(super) api_key: Option<OneOrMany>,
    pub(super) anthropic_version: Option<String>,
    pub(super) api: Option<String>,
    pub(super) web_search: Option<bool>,
    pub(super) connect_timeout_ms: Option<u64>,
    pub(super) ttfb_timeout_ms: Option<u64>,
    pub(super) idle_timeout_ms: Option<u64>,
    pub(super) timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModelFile {
    pub(super) id: String,
    pub(super) display_name: Option<String>,
    pub(super) owned_by: Option<String>,
    pub(super) created: Option<i64>,
    pub(super) routes: Vec<RouteFile>,
    #[serde(default)]
    pub(super) fallbacks: Vec<String>,
    pub(super) strategy: Option<Strategy>,
    pub(super) ttfb_timeout_ms: Option<u64>,
    pub(super) idle_timeout_ms: Option<u64>,
    pub(super) total_timeout_ms: Option<u64>,
    pub(super) price: Option<Price>,
    pub(super) api: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteFile {
    pub(super) provider: String,
    pub(super) upstream_model: String,
    pub(super) weight: Option<u32>,
    pub(super) priority: Option<u32>,
}
