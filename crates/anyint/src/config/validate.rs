//! From the file as written to the [`Config`] the gateway runs on: defaults applied, secrets
//! resolved from the environment, CIDRs parsed, and cross-references (routes to providers,
//! fallbacks to models) checked. Every error names the file and the field at fault.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{FileConfig, ModelFile, ProviderFile, RoutingFile, ServerFile, TasksFile};
use super::{
    Cidr, Config, DEFAULT_ADMIN_TOKEN_ENV, DEFAULT_STORE_URL, Deadlines, EnvLookup, Error,
    LimitsConfig, MeterConfig, ModelApi, ModelConfig, OnRedisError, ProviderConfig, ProviderKind,
    ResponsesConfig, RouteConfig, RoutingConfig, Secret, ServerConfig, TasksConfig, UpstreamApi,
};

/// The journal's default home: `journal/` beside a SQLite file, `data/journal` otherwise.
fn default_journal_dir(store_url: &str) -> PathBuf {
    let sqlite = store_url
        .strip_prefix("sqlite://")
        .or_else(|| store_url.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or(p))
        .filter(|p| !p.is_empty() && *p != ":memory:");
    match sqlite.map(Path::new).and_then(Path::parent) {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("journal"),
        Some(_) => PathBuf::from("journal"),
        None => PathBuf::from("data/journal"),
    }
}

pub(super) fn validate(raw: FileConfig, file: &str, env: EnvLookup<'_>) -> Result<Config, Error> {
    let err = |field: String, message: String| Error {
        file: file.to_owned(),
        field,
        message,
    };
    let server = validate_server(raw.server, &err, env)?;
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
    let journal_dir = match (raw.meter.journal, raw.meter.journal_dir) {
        (Some(false), _) => None,
        (_, Some(dir)) if dir.trim().is_empty() => {
            return Err(err(
                "meter.journal_dir".into(),
                "must name a directory".into(),
            ));
        }
        (_, Some(dir)) => Some(PathBuf::from(dir)),
        (_, None) => Some(default_journal_dir(&store_url)),
    };
    let meter = MeterConfig {
        flush_interval: Duration::from_millis(raw.meter.flush_interval_ms.unwrap_or(200).max(1)),
        batch_size: raw.meter.batch_size.unwrap_or(500).clamp(1, 5000),
        journal_dir,
        fsync: raw.meter.fsync.unwrap_or_default(),
        // 0 keeps raw rows forever.
        retention_days: match raw.meter.retention_days {
            Some(0) => None,
            Some(days) => Some(days),
            None => Some(90),
        },
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
    let retention_days = raw.responses.retention_days.unwrap_or(30);
    if retention_days == 0 {
        return Err(err(
            "responses.retention_days".into(),
            "must be at least 1 (send `store: false` to keep nothing)".into(),
        ));
    }
    Ok(Config {
        tasks,
        responses: ResponsesConfig {
            retention: Duration::from_secs(retention_days.saturating_mul(86_400)),
        },
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

fn validate_server(
    raw: ServerFile,
    err: ErrFn<'_>,
    env: EnvLookup<'_>,
) -> Result<ServerConfig, Error> {
    let listen_text = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen = listen_text.parse().map_err(|_| {
        err(
            "server.listen".into(),
            format!("`{listen_text}` is not an address like 127.0.0.1:8080"),
        )
    })?;
    let admin_token_env = raw
        .admin_token_env
        .unwrap_or_else(|| DEFAULT_ADMIN_TOKEN_ENV.to_owned());
    let admin_token = env(&admin_token_env).map(Secret);
    let log_level = raw.log_level.unwrap_or_else(|| "info".into());
    let mut trusted_proxies = Vec::with_capacity(raw.trusted_proxies.len());
    for (i, c) in raw.trusted_proxies.iter().enumerate() {
        let cidr = Cidr::parse(c).ok_or_else(|| {
            err(
                format!("server.trusted_proxies[{i}]"),
                format!("`{c}` is not a CIDR like 10.0.0.0/8"),
            )
        })?;
        trusted_proxies.push(cidr);
    }
    let metrics_token_env = raw.metrics_token_env;
    let metrics_token = match &metrics_token_env {
        None => None,
        // Asked for protection that cannot be given: refuse to start rather than serve it open.
        Some(name) => Some(env(name).filter(|t| !t.trim().is_empty()).map(Secret).ok_or_else(
            || {
                err(
                    "server.metrics_token_env".into(),
                    format!("the environment variable {name} is not set (or empty); set it to the token /metrics must require, or remove metrics_token_env to leave /metrics open"),
                )
            },
        )?),
    };
    let secs = |field: &str, value: Option<u64>, default: u64| match value.unwrap_or(default) {
        0 => Err(err(
            format!("server.{field}"),
            "must be at least 1 (seconds)".into(),
        )),
        n => Ok(Duration::from_secs(n)),
    };
    let header_read_timeout = secs("header_read_timeout_secs", raw.header_read_timeout_secs, 10)?;
    let idle_timeout = secs("idle_timeout_secs", raw.idle_timeout_secs, 30)?;
    let body_read_timeout = secs("body_read_timeout_secs", raw.body_read_timeout_secs, 30)?;
    let max_connections = raw.max_connections.unwrap_or(4096);
    if max_connections == 0 {
        return Err(err(
            "server.max_connections".into(),
            "must be at least 1".into(),
        ));
    }
    // Like nginx's `worker_processes auto`: one serving worker per core.
    let workers = match raw.workers {
        Some(0) => {
            return Err(err(
                "server.workers".into(),
                "must be at least 1 (serving threads; leave it out for one per CPU core)".into(),
            ));
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    };
    let tls = match (raw.tls_cert_file, raw.tls_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(super::TlsFiles { cert, key }),
        (Some(_), None) => {
            return Err(err(
                "server.tls_key_file".into(),
                "tls_cert_file is set without tls_key_file; set both (PEM files) or neither".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(err(
                "server.tls_cert_file".into(),
                "tls_key_file is set without tls_cert_file; set both (PEM files) or neither".into(),
            ));
        }
    };
    Ok(ServerConfig {
        tls,
        header_read_timeout,
        idle_timeout,
        body_read_timeout,
        max_connections,
        fd_reserve: raw.fd_reserve.unwrap_or(128),
        workers,
        listen,
        admin_token,
        admin_token_env,
        max_body_bytes: raw.max_body_bytes.unwrap_or(32 * 1024 * 1024),
        log_format: raw.log_format.unwrap_or_default(),
        log_level,
        shutdown_grace: Duration::from_secs(raw.shutdown_grace_secs.unwrap_or(30)),
        key_cache_refresh: Duration::from_secs(raw.key_cache_refresh_secs.unwrap_or(5).max(1)),
        trusted_proxies,
        metrics_token_env,
        metrics_token,
    })
}

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

/// `api`: Chat Completions unless an `openai` provider says `responses`.
fn upstream_api(
    api: Option<&str>,
    kind: ProviderKind,
    field: String,
    err: ErrFn<'_>,
) -> Result<UpstreamApi, Error> {
    match (api, kind) {
        (None | Some("chat"), _) => Ok(UpstreamApi::Chat),
        (Some("responses"), ProviderKind::OpenAi) => Ok(UpstreamApi::Responses),
        (Some("responses"), _) => Err(err(
            field,
            "`responses` is only for kind = \"openai\" providers".into(),
        )),
        (Some(other), _) => Err(err(
            field,
            format!("unknown API `{other}`; use \"chat\" (the default) or \"responses\""),
        )),
    }
}

/// `web_search`: off unless set, and only for the kinds with a search of their own.
fn web_search(
    set: Option<bool>,
    kind: ProviderKind,
    field: String,
    err: ErrFn<'_>,
) -> Result<bool, Error> {
    match (set, kind) {
        (None | Some(false), _) => Ok(false),
        (Some(true), ProviderKind::Anthropic | ProviderKind::Gemini) => Ok(true),
        (Some(true), kind) => Err(err(
            field,
            format!(
                "hosted web search is served only by anthropic (its web search tool) and \
                 gemini (Google Search grounding) providers, not by a `{}` one; remove \
                 web_search (Responses clients reach OpenAI's own web_search through a \
                 provider with api = \"responses\")",
                kind.as_str()
            ),
        )),
    }
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
        let api = upstream_api(p.api.as_deref(), p.kind, at("api"), err)?;
        let web_search = web_search(p.web_search, p.kind, at("web_search"), err)?;
        providers.push(ProviderConfig {
            api,
            web_search,
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

/// The model's `api` setting over the one its providers imply: `"embedding"` marks an
/// embedding model routed to `openai` or `gemini` providers; `"chat"` or a task API must be what
/// the providers serve anyway.
fn declared_api(
    declared: Option<&str>,
    implied: ModelApi,
    routes: &[RouteConfig],
    providers: &[ProviderConfig],
) -> Result<ModelApi, String> {
    let Some(declared) = declared else {
        return Ok(implied);
    };
    let api = match declared {
        "chat" => ModelApi::Chat,
        "embedding" => ModelApi::Embedding,
        "dashscope" => ModelApi::DashScope,
        "music" => ModelApi::Music,
        other => {
            return Err(format!(
                "unknown api `{other}`; use \"chat\" (the default) or \"embedding\""
            ));
        }
    };
    if api == ModelApi::Embedding {
        let embeds = |r: &RouteConfig| {
            providers
                .get(r.provider)
                .is_some_and(|p| matches!(p.kind, ProviderKind::OpenAi | ProviderKind::Gemini))
        };
        return if routes.iter().all(embeds) {
            Ok(api)
        } else {
            Err("an embedding model's routes must all use `openai` or `gemini` providers (the other kinds have no embeddings API)".into())
        };
    }
    if api == implied {
        Ok(api)
    } else {
        Err(format!(
            "api = \"{declared}\" does not match the model's providers, which serve {}",
            implied.noun()
        ))
    }
}

fn validate_models(
    raw: Vec<ModelFile>,
    providers: &[ProviderConfig],
    err: ErrFn<'_>,
) -> Result<(Vec<ModelConfig>, crate::config::ModelIndex), Error> {
    let mut models = Vec::with_capacity(raw.len());
    let mut model_index = crate::config::ModelIndex::default();
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
        let api = declared_api(m.api.as_deref(), api, &routes, providers)
            .map_err(|message| err(at("api"), message))?;
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
    fn connection_limits_default_to_closing_within_45_s_and_refuse_zero() {
        let c = Config::parse(OK, "t.toml", &env).unwrap();
        let s = &c.server;
        assert!(s.idle_timeout + s.header_read_timeout <= Duration::from_secs(45));
        assert!(s.body_read_timeout <= Duration::from_secs(45));
        assert_eq!((s.max_connections, s.fd_reserve), (4096, 128));
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        assert_eq!(s.workers, cores, "one serving worker per core by default");
        let three = OK.replace("[server]\n", "[server]\nworkers = 3\n");
        assert_eq!(
            Config::parse(&three, "t.toml", &env)
                .unwrap()
                .server
                .workers,
            3
        );
        for key in [
            "idle_timeout_secs",
            "header_read_timeout_secs",
            "body_read_timeout_secs",
            "max_connections",
            "workers",
        ] {
            let zero = OK.replace("[server]\n", &format!("[server]\n{key} = 0\n"));
            let e = Config::parse(&zero, "t.toml", &env)
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("server.{key}")), "{e}");
        }
    }

    #[test]
    fn metrics_token_env_must_be_set_when_named() {
        let c = Config::parse(OK, "t.toml", &env).unwrap();
        assert!(c.server.metrics_token.is_none());
        let named = OK.replace("[server]\n", "[server]\nmetrics_token_env = \"SET_KEY\"\n");
        let c = Config::parse(&named, "t.toml", &env).unwrap();
        assert_eq!(
            c.server.metrics_token.as_ref().map(Secret::expose),
            Some("sk-secret-value")
        );
        let missing = named.replace(
            "metrics_token_env = \"SET_KEY\"",
            "metrics_token_env = \"NOPE\"",
        );
        let s = Config::parse(&missing, "t.toml", &env)
            .unwrap_err()
            .to_string();
        assert!(
            s.contains("server.metrics_token_env") && s.contains("NOPE"),
            "{s}"
        );
    }

    #[test]
    fn web_search_is_off_by_default_and_only_for_anthropic_and_gemini() {
        let c = Config::parse(OK, "t.toml", &env).unwrap();
        assert!(!c.providers[0].web_search);
        let on = |kind: &str, extra: &str| {
            OK.replace(
                "kind = \"openai\"",
                &format!("kind = \"{kind}\"\nweb_search = true{extra}"),
            )
        };
        for kind in ["anthropic", "gemini"] {
            let c = Config::parse(&on(kind, ""), "t.toml", &env).unwrap();
            assert!(c.providers[0].web_search, "{kind}");
        }
        for (kind, extra) in [("openai", ""), ("openai", "\napi = \"responses\"")] {
            let s = Config::parse(&on(kind, extra), "t.toml", &env)
                .unwrap_err()
                .to_string();
            assert!(
                s.contains("providers[0].web_search") && s.contains("anthropic"),
                "{s}"
            );
        }
        let off = OK.replace("kind = \"openai\"", "kind = \"openai\"\nweb_search = false");
        assert!(!Config::parse(&off, "t.toml", &env).unwrap().providers[0].web_search);
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

    #[test]
    fn a_model_says_it_embeds_and_only_openai_or_gemini_providers_can_serve_it() {
        let embed = OK.replace(
            "id = \"m1\"",
            "id = \"m1\"\napi = \"embedding\"\nprice = { input = 20000 }",
        );
        let c = Config::parse(&embed, "t.toml", &env).unwrap();
        assert_eq!(c.models[0].api, ModelApi::Embedding);
        assert_eq!(c.models[0].price.input, 20_000);
        let chat = OK.replace("id = \"m1\"", "id = \"m1\"\napi = \"chat\"");
        assert_eq!(
            Config::parse(&chat, "t.toml", &env).unwrap().models[0].api,
            ModelApi::Chat
        );
        for (kind, api, needle) in [
            ("anthropic", "embedding", "`openai` or `gemini`"),
            ("openai", "music", "does not match"),
            ("openai", "vectors", "unknown api"),
        ] {
            let text = OK
                .replace("kind = \"openai\"", &format!("kind = \"{kind}\""))
                .replace("id = \"m1\"", &format!("id = \"m1\"\napi = \"{api}\""));
            let s = Config::parse(&text, "t.toml", &env)
                .unwrap_err()
                .to_string();
            assert!(s.contains("models[0].api") && s.contains(needle), "{s}");
        }
        // A fallback must serve the same API: a chat model cannot stand in for an embedding one.
        let fallback = format!(
            "{embed}[[models]]\nid = \"m2\"\napi = \"embedding\"\nfallbacks = [\"m3\"]\nroutes = [{{ provider = \"up\", upstream_model = \"u2\" }}]\n[[models]]\nid = \"m3\"\nroutes = [{{ provider = \"up\", upstream_model = \"u3\" }}]\n"
        );
        let s = Config::parse(&fallback, "t.toml", &env)
            .unwrap_err()
            .to_string();
        assert!(s.contains("fallbacks[0]"), "{s}");
    }
}
