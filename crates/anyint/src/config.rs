//! Configuration: one TOML file, parsed strictly and validated into a [`Config`].
//!
//! Unknown fields are rejected, and every error names the file, the field and what is wrong.
//! Secrets are referenced by environment variable name and resolved here; a missing variable is
//! named in the error but its value (or any secret) never is.

pub mod demo;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

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
    providers: Vec<ProviderFile>,
    #[serde(default)]
    models: Vec<ModelFile>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderFile {
    name: String,
    kind: ProviderKind,
    base_url: String,
    api_key_env: Option<String>,
    api_key: Option<String>,
    anthropic_version: Option<String>,
    connect_timeout_ms: Option<u64>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    provider: String,
    upstream_model: String,
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
}

impl ProviderKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
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
}

/// Usage meter settings.
#[derive(Clone, Copy, Debug)]
pub struct MeterConfig {
    /// Longest a usage row waits before it is written.
    pub flush_interval: Duration,
    /// Most rows written in one statement.
    pub batch_size: usize,
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
    /// The upstream API key.
    pub api_key: Secret,
    /// `anthropic-version` sent to Anthropic upstreams on translated requests.
    pub anthropic_version: String,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
}

/// One way to serve a model.
#[derive(Clone, Debug)]
pub struct RouteConfig {
    /// Index into [`Config::providers`].
    pub provider: usize,
    /// The model ID the provider knows.
    pub upstream_model: String,
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
    /// Candidate routes, in priority order.
    pub routes: Vec<RouteConfig>,
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
    /// Providers in file order.
    pub providers: Vec<ProviderConfig>,
    /// Models in file order.
    pub models: Vec<ModelConfig>,
    /// Model ID → index into `models`.
    pub model_index: HashMap<String, usize>,
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

    let providers = validate_providers(raw.providers, &err, env)?;
    let (models, model_index) = validate_models(raw.models, &providers, &err)?;
    Ok(Config {
        source: file.to_owned(),
        server,
        store_url,
        meter,
        providers,
        models,
        model_index,
    })
}

type ErrFn<'a> = &'a dyn Fn(String, String) -> Error;

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
        let api_key = match (p.api_key_env, p.api_key) {
            (Some(_), Some(_)) => {
                return Err(err(
                    at("api_key"),
                    "set either api_key_env or api_key, not both".into(),
                ));
            }
            (Some(var), None) => env(&var).map(Secret).ok_or_else(|| {
                err(
                    at("api_key_env"),
                    format!("environment variable {var} is not set"),
                )
            })?,
            (None, Some(key)) => Secret(key),
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
            api_key,
            anthropic_version: p
                .anthropic_version
                .unwrap_or_else(|| "2023-06-01".to_owned()),
            connect_timeout: Duration::from_millis(p.connect_timeout_ms.unwrap_or(5_000)),
            timeout: Duration::from_secs(p.timeout_secs.unwrap_or(600)),
        });
    }

    Ok(providers)
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
            routes.push(RouteConfig {
                provider,
                upstream_model: r.upstream_model,
            });
        }
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
        });
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
        assert_eq!(c.providers[0].api_key.expose(), "sk-secret-value");
        assert_eq!(c.model("m1").unwrap().owned_by, "up");
        assert!(!format!("{c:?}").contains("sk-secret-value"));
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
