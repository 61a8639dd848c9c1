//! Configuration: one TOML file, parsed strictly and validated into a [`Config`].
//!
//! Unknown fields are rejected, and every error names the file, the field and what is wrong.
//! Secrets are referenced by environment variable name and resolved here; a missing variable is
//! named in the error but its value (or any secret) never is.
//!
//! This file holds the validated types the gateway runs on and the entry points
//! ([`Config::load`], [`Config::parse`]); the file as written is `file.rs`, the checks that turn
//! one into the other are `validate.rs`, and address blocks are `cidr.rs`.

mod cidr;
pub mod demo;
mod file;
mod validate;

use foldhash::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use file::FileConfig;
use validate::validate;

/// Model IDs to their place in [`Config::models`] (looked up on every request).
pub type ModelIndex = HashMap<String, usize>;

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

// === The validated config ===

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

/// What a model does: decided by the kind of its routes' providers (they must agree), except
/// that a model routed to `openai` or `gemini` providers may say `api = "embedding"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelApi {
    /// Chat: served by every chat family, translated when needed.
    Chat,
    /// Embeddings: `POST /openai/v1/embeddings` and Gemini `:embedContent` /
    /// `:batchEmbedContents`, translated when needed.
    Embedding,
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
            Self::Embedding => "embedding",
            Self::DashScope => "dashscope",
            Self::Music => "music",
        }
    }

    /// Where a client uses a model of this API, for error messages.
    pub fn entry_point(self) -> &'static str {
        match self {
            Self::Chat => "a chat route such as POST /openai/v1/chat/completions",
            Self::Embedding => {
                "POST /openai/v1/embeddings or POST /gemini/v1beta/models/{model}:embedContent (or :batchEmbedContents)"
            }
            Self::DashScope => {
                "POST /dashscope/v1/services/aigc/video-generation/video-synthesis (then poll GET /dashscope/v1/tasks/{task_id})"
            }
            Self::Music => {
                "POST /music/v1/generate (then poll GET /music/v1/generate/record-info?taskId=…)"
            }
        }
    }

    /// The noun with its article: "a chat", "an embedding".
    pub fn a_noun(self) -> String {
        let noun = self.noun();
        let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {noun}")
    }

    /// The noun for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Embedding => "embedding",
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
    /// Proxies whose `X-Forwarded-For` / `Forwarded` name the client.
    pub trusted_proxies: Vec<Cidr>,
    /// Env var holding the token `/metrics` requires, if one is required.
    pub metrics_token_env: Option<String>,
    /// The token `/metrics` requires as `Authorization: Bearer …`; `None`: it is open.
    pub metrics_token: Option<Secret>,
    /// Longest a request head may take from its first byte to its end.
    pub header_read_timeout: Duration,
    /// Longest a connection may sit with no request in flight and nothing received (from
    /// accept, or from the end of its last response).
    pub idle_timeout: Duration,
    /// Longest a request body may go without a byte arriving before it is answered 408.
    pub body_read_timeout: Duration,
    /// Most client connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// File descriptors kept out of the connection cap for the store, Redis and upstreams.
    pub fd_reserve: usize,
    /// Serving threads, each with its own single-threaded runtime, accept loop and upstream
    /// connection pools (default: one per CPU core).
    pub workers: usize,
    /// TLS for clients, when both files are set: the PEM certificate chain and private key,
    /// reloaded when they change.
    pub tls: Option<TlsFiles>,
}

impl ServerConfig {
    /// The scheme the listener serves: `https` when the gateway terminates TLS itself.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// `[server] tls_cert_file` and `tls_key_file`.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The PEM certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

/// Usage meter settings.
#[derive(Clone, Debug)]
pub struct MeterConfig {
    /// Longest a usage row waits before it is written.
    pub flush_interval: Duration,
    /// Most rows written in one statement.
    pub batch_size: usize,
    /// Where this instance's usage journal lives; `None` only for benchmarks that measure the
    /// journal's cost (`journal = false`): rows then wait in memory and a crash loses them.
    pub journal_dir: Option<std::path::PathBuf>,
    /// When the journal is flushed to the disk.
    pub fsync: Fsync,
    /// Days raw ledger rows are kept (`None`: forever). Hourly buckets and monthly totals are
    /// kept regardless, so usage and spend stay readable after the rows go.
    pub retention_days: Option<u32>,
}

/// When the usage journal is flushed to the disk (`[meter] fsync`). Every row is written to
/// the journal before its response ends, which survives a crash of the process; this decides
/// what also survives a power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Never: a power loss can lose the rows not yet in the store.
    Never,
    /// Once per write pass of the meter (every `flush_interval`), off the hot path: a power
    /// loss can lose the last pass's rows (the default).
    #[default]
    Batch,
    /// After every row, on the hot path: nothing is lost, at the cost of a disk flush per
    /// response.
    Always,
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
    /// Which OpenAI API an `openai`-kind upstream serves (`api = "chat"` or `"responses"`).
    pub api: UpstreamApi,
    /// Serve a Responses client's hosted `web_search` tool with this upstream's own search
    /// (Anthropic's web search server tool, Gemini's Google Search grounding). Off by default:
    /// upstreams bill searches apart from tokens. `anthropic` and `gemini` kinds only.
    pub web_search: bool,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Default time limits for calls to this provider.
    pub deadlines: Deadlines,
}

/// The API an `openai`-kind upstream speaks. Most OpenAI-compatible servers have only Chat
/// Completions, so that is the default; `api = "responses"` marks a native Responses upstream,
/// to which Responses clients pass through untouched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpstreamApi {
    /// `POST /chat/completions`.
    #[default]
    Chat,
    /// `POST /responses`.
    Responses,
}

/// Responses API state (`[responses]`).
#[derive(Clone, Copy, Debug)]
pub struct ResponsesConfig {
    /// How long a stored response stays readable (`retention_days`, default 30).
    pub retention: Duration,
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
    /// What the model does (chat, embedding, or which task family).
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
    /// Chat models: per hosted web search the upstream ran (not per million).
    #[serde(default)]
    pub per_web_search: u64,
}

impl Price {
    /// The cost of `usage` in micro-units, rounded up so nothing is billed below its price:
    /// the tokens at their per-million prices, plus each web search at `per_web_search`.
    pub fn cost(&self, usage: &anyint_wire::Usage) -> u64 {
        let uncached = usage
            .input_tokens
            .saturating_sub(usage.cache_read_tokens)
            .saturating_sub(usage.cache_write_tokens);
        let total = u128::from(uncached) * u128::from(self.input)
            + u128::from(usage.output_tokens) * u128::from(self.output)
            + u128::from(usage.cache_read_tokens) * u128::from(self.cache_read)
            + u128::from(usage.cache_write_tokens) * u128::from(self.cache_write);
        let searches = u128::from(usage.web_searches) * u128::from(self.per_web_search);
        u64::try_from(total.div_ceil(1_000_000) + searches).unwrap_or(u64::MAX)
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
    pub model_index: ModelIndex,
    /// Async tasks: polling, deadlines and client callbacks.
    pub tasks: TasksConfig,
    /// Stored Responses API conversations.
    pub responses: ResponsesConfig,
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
            web_searches: 0,
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
        // $10 per 1,000 searches is 10,000 micro-units each, on top of the tokens.
        let searched = anyint_wire::Usage {
            web_searches: 2,
            ..u
        };
        let with_search = Price {
            per_web_search: 10_000,
            ..p
        };
        assert_eq!(with_search.cost(&searched), 4_995 + 20_000);
        assert_eq!(p.cost(&searched), 4_995, "unpriced searches are free");
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
}
