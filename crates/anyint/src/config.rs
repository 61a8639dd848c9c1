//! Configuration: one TOML file, parsed strictly and validated into a [`Config`].
//!
//! Unknown fields are rejected, and every error names the file, the field and what is wrong.
//! Secrets are referenced by environment variable name and resolved here; a missing variable is
//! named in the error but its value (or any secret) never is.

mod cidr;
pub mod demo;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

pub use cidr::Cidr;
pub use demo::demo_config;

/// The default admin token variable.
pub const DEFAULT_ADMIN_TOKEN_ENV: &str = "ANYINT_ADMIN_TOKEN";
/// The default embedded store.
pub const DEFAULT_STORE_URL: &str = "sqlite://data/anyint.db";

/// A configuration problem, phrased for the operator.
#[derive(Debug, thiserror::Error)]
#[error("config error in {file}: {field}: {message}")]
pub struct Error {
    /// The config file (or `<demo>`).
    pub file: String,
    /// The field path, e.g. `models[1].routes[0].provider`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// A secret value that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself; call only where it is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

// === The file as written ===

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: ServerFile,
    #[serde(default)]
    store: StoreFile,
    #[serde(default)]
    meter: MeterFile,
    #[serde(default)]
    routing: RoutingFile,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    providers: Vec<ProviderFile>,
    #[serde(default)]
    models: Vec<ModelFile>,
    #[serde(default)]
    tasks: TasksFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TasksFile {
    public_url: Option<String>,
    poll_interval_ms: Option<u64>,
    poll_max_interval_ms: Option<u64>,
    refresh_after_ms: Option<u64>,
    deadline_secs: Option<u64>,
    lease_ms: Option<u64>,
    poller_batch: Option<usize>,
    idempotency_hours: Option<u64>,
    #[serde(default)]
    callback_allow_networks: Vec<String>,
    callback_allow_http: Option<bool>,
    callback_timeout_ms: Option<u64>,
    callback_backoff_ms: Option<u64>,
    callback_backoff_max_ms: Option<u64>,
    callback_horizon_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    listen: Option<String>,
    admin_token_env: Option<String>,
    max_body_bytes: Option<usize>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    shutdown_grace_secs: Option<u64>,
    key_cache_refresh_secs: Option<u64>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeterFile {
    flush_interval_ms: Option<u64>,
    batch_size: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    redis_url: Option<String>,
    key_prefix: Option<String>,
    on_redis_error: Option<OnRedisError>,
    redis_timeout_ms: Option<u64>,
}

/// What a request gets when the shared limiter cannot answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRedisError {
    /// Admit the request (limits are briefly not enforced).
    #[default]
    Open,
    /// Refuse it with 503 `limiter_unavailable`.
    Closed,
}

/// Where limits are counted.
#[derive(Clone, Debug)]
pub struct LimitsConfig {
    /// Redis URL for limits shared by several instances; in-process when `None`.
    pub redis_url: Option<String>,
    /// Namespace for the limiter's Redis keys.
    pub key_prefix: String,
    /// Admit requests while Redis is unreachable.
    pub fail_open: bool,
    /// Longest a limiter call waits for Redis.
    pub redis_timeout: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingFile {
    max_attempts: Option<u32>,
    retry_budget_ms: Option<u64>,
    backoff_base_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
    breaker_window_secs: Option<u64>,
    breaker_min_requests: Option<u32>,
    breaker_failure_rate: Option<f64>,
    breaker_cooldown_secs: Option<u64>,
}

/// One value or a list, for settings such as several API keys.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderFile {
    name: String,
    kind: ProviderKind,
    base_url: String,
    api_key_env: Option<OneOrMany>,
    api_key: Option<OneOrMany>,
    anthropic_version: Option<String>,
    connect_timeout_ms: Option<u64>,
    ttfb_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    id: String,
    display_name: Option<String>,
    owned_by: Option<String>,
    created: Option<i64>,
    routes: Vec<RouteFile>,
    #[serde(default)]
    fallbacks: Vec<String>,
    strategy: Option<Strategy>,
    ttfb_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    total_timeout_ms: Option<u64>,
    price: Option<Price>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    provider: String,
    upstream_model: String,
    weight: Option<u32>,
    priority: Option<u32>,
}

// === The validated config ===

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The kind of upstream API a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible API; `base_url` ends in `/v1`.
    #[serde(rename = "openai")]
    OpenAi,
    /// The Anthropic Messages API; `base_url` is the host root (`https://api.anthropic.com`).
    Anthropic,
    /// The Gemini API; `base_url` ends in the API version (`…googleapis.com/v1beta`).
    Gemini,
    /// DashScope async video and image synthesis; `base_url` ends in `/api/v1`.
    #[serde(rename = "dashscope")]
    DashScope,
    /// A Suno-style music reseller API; `base_url` is the host root (`https://api.sunoapi.org`).
    Music,
}

impl ProviderKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::DashScope => "dashscope",
            Self::Music => "music",
        }
    }

    /// The API a model routed to this kind serves.
    pub fn api(self) -> ModelApi {
        match self {
            Self::OpenAi | Self::Anthropic | Self::Gemini => ModelApi::Chat,
            Self::DashScope => ModelApi::DashScope,
            Self::Music => ModelApi::Music,
        }
    }
}

/// What a model does, decided by the kind of its routes' providers (they must agree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelApi {
    /// Chat: served by every chat family, translated when needed.
    Chat,
    /// DashScope async video and image tasks, at `/dashscope/v1/…`.
    DashScope,
    /// Music generation tasks, at `/music/v1/…`.
    Music,
}

impl ModelApi {
    /// The spelling in model lists.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::DashScope => "dashscope",
            Self::Music => "music",
        }
    }

    /// Where a client uses a model of this API, for error messages.
    pub fn entry_point(self) -> &'static str {
        match self {
            Self::Chat => "a chat route such as POST /openai/v1/chat/completions",
            Self::DashScope => {
                "POST /dashscope/v1/services/aigc/video-generation/video-synthesis (then poll GET /dashscope/v1/tasks/{task_id})"
            }
            Self::Music => {
                "POST /music/v1/generate (then poll GET /music/v1/generate/record-info?taskId=…)"
            }
        }
    }

    /// The noun for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::DashScope => "DashScope video/image",
            Self::Music => "music",
        }
    }
}

/// HTTP server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Env var holding the admin token.
    pub admin_token_env: String,
    /// The admin token, if that variable is set; without it the admin API is off.
    pub admin_token: Option<Secret>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Log line format.
    pub log_format: LogFormat,
    /// Default log filter when `RUST_LOG` is unset.
    pub log_level: String,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// How often the key cache reloads from the store (other processes' changes).
    pub key_cache_refresh: Duration,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Cidr>,
}

/// Usage meter settings.
#[derive(Clone, Copy, Debug)]
pub struct MeterConfig {
    /// Longest a usage row waits before it is written.
    pub flush_interval: Duration,
    /// Most rows written in one statement.
    pub batch_size: usize,
}

/// How a model picks among its healthy routes of the best priority tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Weighted random (the default).
    #[default]
    Weighted,
    /// Power of two choices on a peak-EWMA of time to first byte.
    Latency,
}

/// Retry, budget and circuit-breaker settings.
#[derive(Clone, Copy, Debug)]
pub struct RoutingConfig {
    /// Most upstream attempts for one request, across routes and fallbacks.
    pub max_attempts: u32,
    /// Longest one request may spend retrying before it answers.
    pub retry_budget: Duration,
    /// First backoff step (full jitter: a random wait in `[0, step]`).
    pub backoff_base: Duration,
    /// Largest backoff step.
    pub backoff_max: Duration,
    /// Window over which a route's error rate is measured.
    pub breaker_window: Duration,
    /// Fewest attempts in the window before the breaker may open.
    pub breaker_min_requests: u32,
    /// Error rate at which the breaker opens.
    pub breaker_failure_rate: f64,
    /// How long an open breaker waits before a half-open probe.
    pub breaker_cooldown: Duration,
}

/// Time limits for one upstream call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// Until the response headers (and, for streams, the first body bytes) arrive; past it the
    /// request fails over before anything reached the client.
    pub ttfb: Duration,
    /// Longest silence inside a stream.
    pub idle: Duration,
    /// Whole request, first byte to last.
    pub total: Duration,
}

/// An upstream provider.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Unique name referenced by routes.
    pub name: String,
    /// Which API it speaks.
    pub kind: ProviderKind,
    /// Base URL without trailing slash.
    pub base_url: String,
    /// The upstream API keys, used in rotation.
    pub api_keys: Vec<Secret>,
    /// `anthropic-version` sent to Anthropic upstreams on translated requests.
    pub anthropic_version: String,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Default time limits for calls to this provider.
    pub deadlines: Deadlines,
}

/// One way to serve a model.
#[derive(Clone, Debug)]
pub struct RouteConfig {
    /// Index into [`Config::providers`].
    pub provider: usize,
    /// The model ID the provider knows.
    pub upstream_model: String,
    /// Share of traffic within its priority tier.
    pub weight: u32,
    /// Tier: lower is tried first.
    pub priority: u32,
}

/// A public model.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// Public ID clients send.
    pub id: String,
    /// Human name.
    pub display_name: String,
    /// Owner shown in model lists.
    pub owned_by: String,
    /// Unix seconds shown as `created`.
    pub created: i64,
    /// Candidate routes.
    pub routes: Vec<RouteConfig>,
    /// Models tried, in order, when every route of this one failed.
    pub fallbacks: Vec<String>,
    /// How routes are chosen within a tier.
    pub strategy: Strategy,
    /// Per-model time limits overriding the provider's (`None` keeps the provider's).
    pub ttfb_timeout: Option<Duration>,
    /// Per-model idle-stream limit.
    pub idle_timeout: Option<Duration>,
    /// Per-model total limit.
    pub total_timeout: Option<Duration>,
    /// Prices for metering; free when unset.
    pub price: Price,
    /// What the model does (chat or which task family).
    pub api: ModelApi,
}

/// A model's prices, in integer micro-units of the operator's currency per one million tokens
/// (no floats for money). `input` applies to uncached input tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Uncached input tokens.
    #[serde(default)]
    pub input: u64,
    /// Output tokens (reasoning included).
    #[serde(default)]
    pub output: u64,
    /// Input tokens read from the provider's cache.
    #[serde(default)]
    pub cache_read: u64,
    /// Input tokens written to the provider's cache.
    #[serde(default)]
    pub cache_write: u64,
    /// Task models: per second of generated video (not per million).
    #[serde(default)]
    pub per_video_second: u64,
    /// Task models: per generated image.
    #[serde(default)]
    pub per_image: u64,
    /// Task models: per song task (each task yields two tracks).
    #[serde(default)]
    pub per_song: u64,
}

impl Price {
    /// The cost of `usage` in micro-units, rounded up so nothing is billed below its price.
    pub fn cost(&self, usage: &anyint_wire::Usage) -> u64 {
        let uncached = usage
            .input_tokens
            .saturating_sub(usage.cache_read_tokens)
            .saturating_sub(usage.cache_write_tokens);
        let total = u128::from(uncached) * u128::from(self.input)
            + u128::from(usage.output_tokens) * u128::from(self.output)
            + u128::from(usage.cache_read_tokens) * u128::from(self.cache_read)
            + u128::from(usage.cache_write_tokens) * u128::from(self.cache_write);
        u64::try_from(total.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

/// The validated configuration the gateway runs on.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where it came from, for messages.
    pub source: String,
    /// Server settings.
    pub server: ServerConfig,
    /// Store URL (`sqlite://…` or `postgres://…`).
    pub store_url: String,
    /// Meter settings.
    pub meter: MeterConfig,
    /// Retry and breaker settings.
    pub routing: RoutingConfig,
    /// Rate-limit backend.
    pub limits: LimitsConfig,
    /// Providers in file order.
    pub providers: Vec<ProviderConfig>,
    /// Models in file order.
    pub models: Vec<ModelConfig>,
    /// Model ID → index into `models`.
    pub model_index: HashMap<String, usize>,
    /// Async tasks: polling, deadlines and client callbacks.
    pub tasks: TasksConfig,
}

/// Async task settings (`[tasks]`).
#[derive(Clone, Debug)]
pub struct TasksConfig {
    /// The gateway's base URL as upstream providers reach it, for their callbacks to it
    /// (`http://<bound address>` when unset).
    pub public_url: Option<String>,
    /// First background poll after creation; the interval then grows per task.
    pub poll_interval: Duration,
    /// Longest interval between background polls of one task.
    pub poll_max_interval: Duration,
    /// A client poll refreshes from upstream when the stored status is older than this.
    pub refresh_after: Duration,
    /// A task unfinished this long after creation fails with a timeout and is refunded.
    pub deadline: Duration,
    /// How long one instance owns a task (or a delivery) it is working on.
    pub lease: Duration,
    /// Tasks one background pass claims and fetches at once, per instance.
    pub poller_batch: usize,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_window: Duration,
    /// Networks client callbacks may target even though they are private, loopback or
    /// link-local; plain http is also allowed to these.
    pub callback_allow_networks: Vec<Cidr>,
    /// Allow plain-http callback URLs to public addresses (https only when false).
    pub callback_allow_http: bool,
    /// Time limit for one callback delivery.
    pub callback_timeout: Duration,
    /// First retry delay of a failed delivery; it doubles per attempt.
    pub callback_backoff: Duration,
    /// Longest delay between delivery attempts.
    pub callback_backoff_max: Duration,
    /// How long a delivery is retried before it is marked dead.
    pub callback_horizon: Duration,
}

/// Reads the environment; injected so tests need not mutate the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The real environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    /// Loads and validates a config file.
    pub fn load(path: &Path, env: EnvLookup<'_>) -> Result<Self, Error> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error {
            file: file.clone(),
            field: "(file)".into(),
            message: format!("cannot read the file: {e}"),
        })?;
        Self::parse(&text, &file, env)
    }

    /// Parses and validates config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str, env: EnvLookup<'_>) -> Result<Self, Error> {
        let raw: FileConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().to_owned();
            let field = e.span().map_or_else(
                || "(document)".into(),
                |s| {
                    let line = text
                        .get(..s.start)
                        .map_or(1, |t| t.matches('\n').count() + 1);
                    format!("line {line}")
                },
            );
            Error {
                file: file.to_owned(),
                field,
                message,
            }
        })?;
        validate(raw, file, env)
    }

    /// The model with public ID `id`.
    pub fn model(&self, id: &str) -> Option<&ModelConfig> {
        self.model_index.get(id).and_then(|&i| self.models.get(i))
    }
}

fn validate(raw: FileConfig, file: &str, env: EnvLookup<'_>) -> Result<Config, Error> {
    let err = |field: String, message: String| Error {
        file: file.to_owned(),
        field,
        message,
    };
    let listen_text = raw.server.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen = listen_text.parse().map_err(|_| {
        err(
            "server.listen".into(),
            format!("`{listen_text}` is not an address like 127.0.0.1:8080"),
        )
    })?;
    let admin_token_env = raw
        .server
        .admin_token_env
        .unwrap_or_else(|| DEFAULT_ADMIN_TOKEN_ENV.to_owned());
    let admin_token = env(&admin_token_env).map(Secret);
    let log_level = raw.server.log_level.unwrap_or_else(|| "info".into());
    let mut trusted_proxies = Vec::with_capacity(raw.server.trusted_proxies.len());
    for (i, c) in raw.server.trusted_proxies.iter().enumerate() {
        let cidr = Cidr::parse(c).ok_or_else(|| {
            err(
                format!("server.trusted_proxies[{i}]"),
                format!("`{c}` is not a CIDR like 10.0.0.0/8"),
            )
        })?;
        trusted_proxies.push(cidr);
    }
    let server = ServerConfig {
        listen,
        admin_token,
        admin_token_env,
        max_body_bytes: raw.server.max_body_bytes.unwrap_or(32 * 1024 * 1024),
        log_format: raw.server.log_format.unwrap_or_default(),
        log_level,
        shutdown_grace: Duration::from_secs(raw.server.shutdown_grace_secs.unwrap_or(30)),
        key_cache_refresh: Duration::from_secs(
            raw.server.key_cache_refresh_secs.unwrap_or(5).max(1),
        ),
        trusted_proxies,
    };
    let store_url = raw
        .store
        .url
        .unwrap_or_else(|| DEFAULT_STORE_URL.to_owned());
    if !(store_url.starts_with("sqlite:")
        || store_url.starts_with("postgres://")
        || store_url.starts_with("postgresql://"))
    {
        return Err(err(
            "store.url".into(),
            "must start with sqlite:// or postgres://".into(),
        ));
    }
    let meter = MeterConfig {
        flush_interval: Duration::from_millis(raw.meter.flush_interval_ms.unwrap_or(200).max(1)),
        batch_size: raw.meter.batch_size.unwrap_or(500).clamp(1, 5000),
    };

    let routing = validate_routing(&raw.routing, &err)?;
    if let Some(url) = &raw.limits.redis_url
        && !(url.starts_with("redis://") || url.starts_with("rediss://"))
    {
        return Err(err(
            "limits.redis_url".into(),
            "must start with redis:// or rediss://".into(),
        ));
    }
    let limits = LimitsConfig {
        redis_url: raw.limits.redis_url,
        key_prefix: raw.limits.key_prefix.unwrap_or_else(|| "anyint".into()),
        fail_open: raw.limits.on_redis_error.unwrap_or_default() == OnRedisError::Open,
        redis_timeout: Duration::from_millis(raw.limits.redis_timeout_ms.unwrap_or(250).max(1)),
    };
    let providers = validate_providers(raw.providers, &err, env)?;
    let (models, model_index) = validate_models(raw.models, &providers, &err)?;
    let tasks = validate_tasks(raw.tasks, &err)?;
    Ok(Config {
        tasks,
        source: file.to_owned(),
        routing,
        limits,
        server,
        store_url,
        meter,
        providers,
        models,
        model_index,
    })
}

type ErrFn<'a> = &'a dyn Fn(String, String) -> Error;

fn validate_tasks(t: TasksFile, err: ErrFn<'_>) -> Result<TasksConfig, Error> {
    let public_url = match t.public_url {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            Some(u.trim_end_matches('/').to_owned())
        }
        Some(_) => {
            return Err(err(
                "tasks.public_url".into(),
                "must be an http:// or https:// URL".into(),
            ));
        }
        None => None,
    };
    let mut callback_allow_networks = Vec::with_capacity(t.callback_allow_networks.len());
    for (i, c) in t.callback_allow_networks.iter().enumerate() {
        callback_allow_networks.push(Cidr::parse(c).ok_or_else(|| {
            err(
                format!("tasks.callback_allow_networks[{i}]"),
                format!("`{c}` is not a CIDR like 127.0.0.0/8"),
            )
        })?);
    }
    let ms = |v: Option<u64>, default: u64| Duration::from_millis(v.unwrap_or(default).max(1));
    let poll_interval = ms(t.poll_interval_ms, 5_000);
    let poll_max_interval = ms(t.poll_max_interval_ms, 60_000);
    if poll_interval > poll_max_interval {
        return Err(err(
            "tasks.poll_interval_ms".into(),
            "must not exceed tasks.poll_max_interval_ms".into(),
        ));
    }
    let callback_backoff = ms(t.callback_backoff_ms, 1_000);
    let callback_backoff_max = ms(t.callback_backoff_max_ms, 3_600_000);
    if callback_backoff > callback_backoff_max {
        return Err(err(
            "tasks.callback_backoff_ms".into(),
            "must not exceed tasks.callback_backoff_max_ms".into(),
        ));
    }
    Ok(TasksConfig {
        public_url,
        poll_interval,
        poll_max_interval,
        refresh_after: Duration::from_millis(t.refresh_after_ms.unwrap_or(1_000)),
        deadline: Duration::from_secs(t.deadline_secs.unwrap_or(3_600).max(1)),
        lease: ms(t.lease_ms, 30_000),
        poller_batch: t.poller_batch.unwrap_or(32).clamp(1, 256),
        idempotency_window: Duration::from_secs(t.idempotency_hours.unwrap_or(24).max(1) * 3_600),
        callback_allow_networks,
        callback_allow_http: t.callback_allow_http.unwrap_or(false),
        callback_timeout: ms(t.callback_timeout_ms, 10_000),
        callback_backoff,
        callback_backoff_max,
        callback_horizon: Duration::from_secs(t.callback_horizon_secs.unwrap_or(86_400).max(1)),
    })
}

fn validate_routing(r: &RoutingFile, err: ErrFn<'_>) -> Result<RoutingConfig, Error> {
    let rate = r.breaker_failure_rate.unwrap_or(0.5);
    if !(rate > 0.0 && rate <= 1.0) {
        return Err(err(
            "routing.breaker_failure_rate".into(),
            "must be in (0, 1]".into(),
        ));
    }
    if r.backoff_base_ms.unwrap_or(100) > r.backoff_max_ms.unwrap_or(2_000) {
        return Err(err(
            "routing.backoff_base_ms".into(),
            "must not exceed routing.backoff_max_ms".into(),
        ));
    }
    let max_attempts = r.max_attempts.unwrap_or(3);
    if max_attempts == 0 {
        return Err(err(
            "routing.max_attempts".into(),
            "must be at least 1".into(),
        ));
    }
    Ok(RoutingConfig {
        max_attempts,
        retry_budget: Duration::from_millis(r.retry_budget_ms.unwrap_or(15_000)),
        backoff_base: Duration::from_millis(r.backoff_base_ms.unwrap_or(100)),
        backoff_max: Duration::from_millis(r.backoff_max_ms.unwrap_or(2_000)),
        breaker_window: Duration::from_secs(r.breaker_window_secs.unwrap_or(30).max(1)),
        breaker_min_requests: r.breaker_min_requests.unwrap_or(5).max(1),
        breaker_failure_rate: rate,
        breaker_cooldown: Duration::from_secs(r.breaker_cooldown_secs.unwrap_or(15)),
    })
}

fn validate_providers(
    raw: Vec<ProviderFile>,
    err: ErrFn<'_>,
    env: EnvLookup<'_>,
) -> Result<Vec<ProviderConfig>, Error> {
    let mut providers: Vec<ProviderConfig> = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let at = |f: &str| format!("providers[{i}].{f}");
        if p.name.is_empty() {
            return Err(err(at("name"), "must not be empty".into()));
        }
        if providers.iter().any(|q| q.name == p.name) {
            return Err(err(
                at("name"),
                format!("provider `{}` is defined twice", p.name),
            ));
        }
        if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
            return Err(err(
                at("base_url"),
                "must be an http:// or https:// URL".into(),
            ));
        }
        let api_keys = match (p.api_key_env, p.api_key) {
            (Some(_), Some(_)) => {
                return Err(err(
                    at("api_key"),
                    "set either api_key_env or api_key, not both".into(),
                ));
            }
            (Some(vars), None) => vars
                .into_vec()
                .into_iter()
                .map(|var| {
                    env(&var).map(Secret).ok_or_else(|| {
                        err(
                            at("api_key_env"),
                            format!("environment variable {var} is not set"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            (None, Some(keys)) => keys.into_vec().into_iter().map(Secret).collect(),
            (None, None) => {
                return Err(err(
                    at("api_key_env"),
                    "set api_key_env (preferred) or api_key".into(),
                ));
            }
        };
        providers.push(ProviderConfig {
            name: p.name,
            kind: p.kind,
            base_url: p.base_url.trim_end_matches('/').to_owned(),
            api_keys,
            anthropic_version: p
                .anthropic_version
                .unwrap_or_else(|| "2023-06-01".to_owned()),
            connect_timeout: Duration::from_millis(p.connect_timeout_ms.unwrap_or(5_000)),
            deadlines: Deadlines {
                ttfb: Duration::from_millis(p.ttfb_timeout_ms.unwrap_or(120_000)),
                idle: Duration::from_millis(p.idle_timeout_ms.unwrap_or(120_000)),
                total: Duration::from_secs(p.timeout_secs.unwrap_or(600)),
            },
        });
        if providers.last().is_some_and(|p| {
            p.api_keys.is_empty() || p.api_keys.iter().any(|k| k.expose().trim().is_empty())
        }) {
            return Err(err(
                at("api_key"),
                "needs at least one key, and no key may be empty".into(),
            ));
        }
        if [
            p.ttfb_timeout_ms,
            p.idle_timeout_ms,
            p.connect_timeout_ms,
            p.timeout_secs,
        ]
        .contains(&Some(0))
        {
            return Err(err(
                at("timeouts"),
                "timeouts must be greater than zero".into(),
            ));
        }
    }

    Ok(providers)
}

/// The API a model's routes serve, or the first route that disagrees with the first one.
fn model_api(
    routes: &[RouteConfig],
    providers: &[ProviderConfig],
) -> Result<ModelApi, (usize, ModelApi)> {
    let api = routes
        .first()
        .and_then(|r| providers.get(r.provider))
        .map_or(ModelApi::Chat, |p| p.kind.api());
    match routes.iter().position(|r| {
        providers
            .get(r.provider)
            .is_some_and(|p| p.kind.api() != api)
    }) {
        Some(j) => Err((j, api)),
        None => Ok(api),
    }
}

fn validate_models(
    raw: Vec<ModelFile>,
    providers: &[ProviderConfig],
    err: ErrFn<'_>,
) -> Result<(Vec<ModelConfig>, HashMap<String, usize>), Error> {
    let mut models = Vec::with_capacity(raw.len());
    let mut model_index = HashMap::new();
    for (i, m) in raw.into_iter().enumerate() {
        let at = |f: &str| format!("models[{i}].{f}");
        if m.id.is_empty() {
            return Err(err(at("id"), "must not be empty".into()));
        }
        if model_index.insert(m.id.clone(), i).is_some() {
            return Err(err(at("id"), format!("model `{}` is defined twice", m.id)));
        }
        if [m.ttfb_timeout_ms, m.idle_timeout_ms, m.total_timeout_ms].contains(&Some(0)) {
            return Err(err(
                at("timeouts"),
                "timeouts must be greater than zero".into(),
            ));
        }
        if m.routes.is_empty() {
            return Err(err(at("routes"), "a model needs at least one route".into()));
        }
        let mut routes = Vec::with_capacity(m.routes.len());
        for (j, r) in m.routes.into_iter().enumerate() {
            let provider = providers
                .iter()
                .position(|p| p.name == r.provider)
                .ok_or_else(|| {
                    err(
                        format!("models[{i}].routes[{j}].provider"),
                        format!(
                            "no provider named `{}` is defined in [[providers]]",
                            r.provider
                        ),
                    )
                })?;
            let weight = r.weight.unwrap_or(1);
            if weight == 0 {
                return Err(err(
                    format!("models[{i}].routes[{j}].weight"),
                    "must be at least 1 (remove the route to disable it)".into(),
                ));
            }
            routes.push(RouteConfig {
                provider,
                upstream_model: r.upstream_model,
                weight,
                priority: r.priority.unwrap_or(0),
            });
        }
        let api = model_api(&routes, providers).map_err(|(j, api)| {
            err(
                format!("models[{i}].routes[{j}].provider"),
                format!(
                    "all routes of a model must serve the same API; routes[0] is a {} provider",
                    api.noun()
                ),
            )
        })?;
        let owned_by = m.owned_by.unwrap_or_else(|| {
            routes
                .first()
                .and_then(|r| providers.get(r.provider))
                .map_or_else(String::new, |p| p.name.clone())
        });
        models.push(ModelConfig {
            display_name: m.display_name.unwrap_or_else(|| m.id.clone()),
            id: m.id,
            owned_by,
            created: m.created.unwrap_or(1_735_689_600),
            routes,
            fallbacks: m.fallbacks,
            strategy: m.strategy.unwrap_or_default(),
            ttfb_timeout: m.ttfb_timeout_ms.map(Duration::from_millis),
            idle_timeout: m.idle_timeout_ms.map(Duration::from_millis),
            total_timeout: m.total_timeout_ms.map(Duration::from_millis),
            price: m.price.unwrap_or_default(),
            api,
        });
    }
    for (i, m) in models.iter().enumerate() {
        for (j, f) in m.fallbacks.iter().enumerate() {
            let same_api = model_index
                .get(f)
                .and_then(|&k| models.get(k))
                .is_some_and(|other: &ModelConfig| other.api == m.api);
            if f == &m.id || !same_api {
                return Err(err(
                    format!("models[{i}].fallbacks[{j}]"),
                    format!(
                        "`{f}` must be another model defined in [[models]], serving the same API"
                    ),
                ));
            }
        }
    }
    Ok((models, model_index))
}

/// A shared, immutable config.
pub type SharedConfig = Arc<Config>;

/// Where `--config` points when not given: `ANYINT_CONFIG`, else `anyint.toml` if present.
pub fn default_path() -> Option<PathBuf> {
    process_env("ANYINT_CONFIG").map(PathBuf::from).or_else(|| {
        let p = PathBuf::from("anyint.toml");
        p.exists().then_some(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SET_KEY").then(|| "sk-secret-value".to_owned())
    }

    const OK: &str = r#"
[server]
listen = "127.0.0.1:9999"
[[providers]]
name = "up"
kind = "openai"
base_url = "http://127.0.0.1:1/v1/"
api_key_env = "SET_KEY"
[[models]]
id = "m1"
routes = [{ provider = "up", upstream_model = "u1" }]
"#;

    #[test]
    fn valid_config_resolves_secrets_and_routes() {
        let c = Config::parse(OK, "t.toml", &env).unwrap();
        assert_eq!(c.providers[0].base_url, "http://127.0.0.1:1/v1");
        assert_eq!(c.providers[0].api_keys[0].expose(), "sk-secret-value");
        assert_eq!(c.model("m1").unwrap().owned_by, "up");
        assert!(!format!("{c:?}").contains("sk-secret-value"));
    }

    #[test]
    fn cost_is_exact_integer_micro_units_rounded_up() {
        let p = Price {
            input: 3_000_000,
            output: 15_000_000,
            cache_read: 300_000,
            cache_write: 3_750_000,
            ..Price::default()
        };
        let u = anyint_wire::Usage {
            input_tokens: 1_000,
            output_tokens: 200,
            cache_read_tokens: 400,
            cache_write_tokens: 100,
            reasoning_tokens: 0,
        };
        // 500 uncached × 3 + 200 × 15 + 400 × 0.3 + 100 × 3.75 = 1500 + 3000 + 120 + 375 micro-units.
        assert_eq!(p.cost(&u), 4_995);
        let one = anyint_wire::Usage {
            input_tokens: 1,
            ..Default::default()
        };
        assert_eq!(
            Price {
                input: 1,
                ..Price::default()
            }
            .cost(&one),
            1,
            "a fraction of a micro-unit rounds up"
        );
        assert_eq!(Price::default().cost(&u), 0);
    }

    #[test]
    fn unknown_field_is_rejected_with_file_and_line() {
        let e = Config::parse(
            "[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n",
            "t.toml",
            &env,
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("t.toml") && s.contains("bogus") && s.contains("line 3"),
            "{s}"
        );
    }

    #[test]
    fn missing_env_var_is_named_and_value_never_shown() {
        let text = OK.replace("SET_KEY", "MISSING_KEY");
        let s = Config::parse(&text, "t.toml", &env)
            .unwrap_err()
            .to_string();
        assert!(
            s.contains("providers[0].api_key_env") && s.contains("MISSING_KEY"),
            "{s}"
        );
    }

    #[test]
    fn route_to_unknown_provider_names_the_field() {
        let text = OK.replace("provider = \"up\"", "provider = \"nope\"");
        let s = Config::parse(&text, "t.toml", &env)
            .unwrap_err()
            .to_string();
        assert!(
            s.contains("models[0].routes[0].provider") && s.contains("nope"),
            "{s}"
        );
    }
}
