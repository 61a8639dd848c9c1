//! The HTTP server: shared state, the route table, and start/stop with a graceful drain.
//!
//! Shutdown order matters for "lose nothing": stop accepting, let in-flight requests and
//! streams finish (up to `shutdown_grace`), then stop the usage meter (it writes every row and
//! removes its journal, or leaves the journal for the next start), then exit. At start the
//! meter replays stopped instances' journals before spend is loaded and before serving.

mod conn;
mod dispatch;
mod observe;
mod serve;
pub mod tls;
mod trim;
mod workers;

pub use trim::on_background_park;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::KeyCache;
use crate::config::Config;
use crate::error::Error;
use crate::families;
use crate::meter::{Meter, MeterTask};
use crate::providers::Provider;
use crate::state::{AppState, SharedState};
use crate::store::Store;

/// The full route table.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .merge(families::openai::routes())
        .merge(families::responses::routes())
        .merge(families::anthropic::routes())
        .merge(families::gemini::routes())
        .merge(families::dashscope::routes())
        .merge(families::music::routes())
        .merge(crate::admin::routes(state.clone()))
        .merge(crate::console::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::edge,
        ))
        .with_state(state)
}

async fn healthz() -> Response {
    families::json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// The longest `/readyz` waits for the store: a pool whose connections hang must not hold the
/// probe for its acquire timeout.
const READY_WAIT: Duration = Duration::from_millis(800);

/// `/readyz`: 200 when the store answers within [`READY_WAIT`], the usage journal can be
/// written and, with `on_redis_error = "closed"`, the limiter's Redis answers; 503 otherwise. The body names
/// each dependency's state and lists the ones down. Redis's state is the breaker's, read from
/// memory.
async fn readyz(State(state): State<SharedState>) -> Response {
    let store_ok = match tokio::time::timeout(READY_WAIT, state.store.ping()).await {
        Ok(Ok(())) => {
            crate::telemetry::store_answered();
            true
        }
        Ok(Err(e)) => {
            crate::telemetry::store_failed("readiness check", &e);
            false
        }
        Err(_) => {
            crate::telemetry::store_failed("readiness check", &"no answer within 800 ms");
            false
        }
    };
    let redis = state.limiter.backend();
    let redis_ok = redis.is_none_or(|r| r.reachable);
    let journal_ok = match state.meter.health() {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed: the usage journal is not writable");
            false
        }
    };
    let mut down = Vec::new();
    if !store_ok {
        down.push("store");
    }
    if !journal_ok {
        down.push("journal");
    }
    if !redis_ok {
        down.push("redis");
    }
    // Redis down with "open" still serves (in-process limits): ready, but reported.
    let ready = store_ok && journal_ok && (redis_ok || state.config.limits.fail_open);
    let word = |ok: bool| if ok { "ok" } else { "down" };
    let mut body = serde_json::json!({
        "status": if ready { "ready" } else { "unavailable" },
        "store": state.store.backend(),
        "checks": {
            "store": word(store_ok),
            "journal": word(journal_ok),
            "redis": if redis.is_some() { word(redis_ok) } else { "not_configured" },
        },
        "down": down,
    });
    if let Some(r) = redis {
        // The instances sharing the limits, as last seen in Redis (0: not yet known).
        body["redis_fleet"] = r.fleet.into();
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    families::json_response(status, &body)
}

/// `/metrics`: open unless `[server] metrics_token_env` names a token, which must then come as
/// `Authorization: Bearer <token>` (compared by digest, like the admin token).
async fn metrics(State(state): State<SharedState>, headers: http::HeaderMap) -> Response {
    if let Some(expected) = &state.config.server.metrics_token {
        use sha2::{Digest, Sha256};
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let ok = presented.is_some_and(|p| {
            Sha256::digest(p.as_bytes()) == Sha256::digest(expected.expose().as_bytes())
        });
        if !ok {
            let mut resp = families::openai::render_error(
                Error::new(
                    crate::error::ErrorKind::Unauthenticated,
                    "/metrics needs `Authorization: Bearer <metrics token>` (the token in the variable named by [server] metrics_token_env)",
                )
                .with_code("invalid_metrics_token"),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
    }
    // Breaker states are read at scrape time rather than pushed on every transition.
    for r in state.router.snapshot(&state.config) {
        let gauge = match r.state {
            "open" => 2.0,
            "half_open" => 1.0,
            _ => 0.0,
        };
        metrics::gauge!(crate::telemetry::METRIC_ROUTE_STATE, "model" => r.model, "provider" => r.provider, "upstream_model" => r.upstream_model).set(gauge);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found(uri: http::Uri) -> Response {
    families::unknown_route(uri.path())
}

async fn method_not_allowed(method: http::Method, uri: http::Uri) -> Response {
    families::wrong_method(uri.path(), &method)
}

/// A running gateway.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The shared state (tests read the meter and caches through it).
    pub state: SharedState,
    workers: workers::Workers,
    background: Vec<JoinHandle<()>>,
    meter_task: MeterTask,
    grace: Duration,
    cap: usize,
    balance: Arc<conn::Balance>,
}

/// The in-process limiter, or the Redis one (behind its breaker) when `[limits] redis_url` is
/// set; `instance` names this gateway in the Redis fleet.
async fn build_limiter(
    config: &Config,
    instance: &str,
) -> Result<Arc<dyn crate::policy::limits::Limiter>, Error> {
    Ok(match &config.limits.redis_url {
        Some(url) => {
            let redis = crate::policy::limits::redis::RedisLimiter::connect(
                url,
                &config.limits.key_prefix,
                config.limits.redis_timeout,
            )
            .await
            .map_err(|e| {
                Error::internal(format!(
                    "limits.redis_url {}: {e}; start Redis or remove [limits] redis_url",
                    crate::store::redact_url(url)
                ))
            })?;
            Arc::new(crate::policy::limits::breaker::Breaker::new(
                redis,
                config.limits.fail_open,
                instance,
            ))
        }
        None => Arc::new(crate::policy::limits::LocalLimiter::new()),
    })
}

/// The cross-instance invalidator, when Redis is configured.
async fn build_invalidator(
    config: &Config,
) -> Result<Option<Arc<crate::invalidation::Invalidator>>, Error> {
    let Some(url) = &config.limits.redis_url else {
        return Ok(None);
    };
    let inv = crate::invalidation::Invalidator::connect(url, &config.limits.key_prefix)
        .await
        .map_err(|e| {
            Error::internal(format!(
                "limits.redis_url {}: {e}",
                crate::store::redact_url(url)
            ))
        })?;
    Ok(Some(Arc::new(inv)))
}

/// Reloads keys, spend and the policy directory every `key_cache_refresh`, so changes made by
/// other processes (the CLI, other instances without Redis) are picked up.
fn spawn_refresher(state: SharedState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.config.server.key_cache_refresh);
        tick.tick().await;
        loop {
            tick.tick().await;
            // Each failure serves the cached copy; an outage is logged once (telemetry).
            let outcomes = [
                ("key cache refresh", state.keys.reload().await),
                (
                    "spend refresh",
                    state.spend.reload(state.store.as_ref()).await,
                ),
                ("policy refresh", state.directory.reload().await),
            ];
            for (what, outcome) in outcomes {
                match outcome {
                    Ok(()) => crate::telemetry::store_answered(),
                    Err(e) => crate::telemetry::store_failed(what, &e),
                }
            }
        }
    })
}

/// Keeps the Prometheus recorder's histograms trimmed.
fn spawn_upkeep(metrics: PrometheusHandle) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            metrics.run_upkeep();
        }
    })
}

/// The URL the gateway names itself by (task callbacks): `[tasks] public_url`, or the listen
/// address (loopback for an unspecified one) with the scheme served.
fn public_url(config: &Config, addr: SocketAddr) -> String {
    config.tasks.public_url.clone().unwrap_or_else(|| {
        let ip = if addr.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            addr.ip()
        };
        let scheme = config.server.scheme();
        format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
    })
}

/// Opens the store, warms the key cache, and starts serving on `listener`.
pub async fn start(config: Config, listener: TcpListener) -> Result<Running, Error> {
    let store = crate::store::open(&config.store_url).await.map_err(|e| {
        Error::internal(format!(
            "opening store {}: {e}",
            crate::store::redact_url(&config.store_url)
        ))
    })?;
    start_with_store(config, store, listener).await
}

/// Like [`start`], with an already opened store.
pub async fn start_with_store(
    config: Config,
    store: Arc<dyn Store>,
    listener: TcpListener,
) -> Result<Running, Error> {
    let config = Arc::new(config);
    let keys = Arc::new(KeyCache::new(store.clone()));
    keys.reload().await?;
    let directory = Arc::new(crate::policy::directory::DirectoryCache::new(store.clone()));
    directory.reload().await?;
    let providers = config
        .providers
        .iter()
        .cloned()
        .map(|p| Provider::new(p, config.server.workers))
        .collect::<Result<Vec<_>, _>>()?;
    let spend = Arc::new(crate::policy::quota::SpendTracker::new());
    let instance_id = crate::auth::new_id("inst_");
    let limiter = build_limiter(&config, &instance_id).await?;
    let prices = config.models.iter().map(|m| (m.id.clone(), m.price));
    // The meter replays the journals of stopped instances first, so spend counts their rows.
    let (meter, meter_task) = Meter::start(
        store.clone(),
        config.meter.clone(),
        &instance_id,
        prices.collect(),
        spend.clone(),
        limiter.clone(),
    )
    .await?;
    spend.reload(store.as_ref()).await?;
    spend.share(limiter.clone(), store.clone());
    let metrics = crate::telemetry::metrics_handle();
    let routes = crate::router::Router::new(&config);
    let invalidator = build_invalidator(&config).await?;
    let addr = listener.local_addr().map_err(Error::internal)?;
    let tls = (config.server.tls.as_ref())
        .map(|f| tls::Tls::load(&f.cert, &f.key))
        .transpose()?;
    let public_url = public_url(&config, addr);
    let state = Arc::new(AppState {
        public_url,
        config: config.clone(),
        store,
        keys: keys.clone(),
        meter,
        providers,
        metrics: metrics.clone(),
        router: routes,
        limiter,
        directory: directory.clone(),
        spend: spend.clone(),
        invalidator: invalidator.clone(),
        instance_id,
        outbox_wake: tokio::sync::Notify::new(),
    });

    let outbox = crate::tasks::outbox::Outbox::new(&config.tasks)?;
    let app = dispatch::App::new(router(state.clone()), state.clone());
    let cap = conn::effective_cap(&config.server, conn::raise_fd_limit());
    let (balance, handoffs) = conn::Balance::new(config.server.workers);
    let serving = workers::Serving {
        app,
        balance: balance.clone(),
        slots: Arc::new(tokio::sync::Semaphore::new(cap)),
        timeouts: conn::Timeouts::new(&config.server),
        tls: tls.as_ref().map(tls::Tls::acceptor),
    };
    // Serving starts before the background tasks, so a failure to start leaves none running.
    let workers = workers::Workers::start(listener, serving, handoffs).await?;
    let key_refresher = spawn_refresher(state.clone());
    let poller = tokio::spawn(crate::tasks::poller::run(state.clone()));
    let outbox = tokio::spawn(crate::tasks::outbox::run(state.clone(), outbox));
    let listener_task = state
        .invalidator
        .clone()
        .map(|inv| tokio::spawn(inv.listen(state.keys.clone(), state.directory.clone())));
    let upkeep = spawn_upkeep(metrics);
    let cert_reload = tls.as_ref().map(tls::Tls::spawn_reload);
    Ok(Running {
        addr,
        state,
        workers,
        background: [key_refresher, upkeep, poller, outbox]
            .into_iter()
            .chain(listener_task)
            .chain(cert_reload)
            .collect(),
        meter_task,
        grace: config.server.shutdown_grace,
        cap,
        balance,
    })
}

impl Running {
    /// Client connections open now.
    pub fn open_connections(&self) -> usize {
        self.balance.counts().iter().sum()
    }

    /// Client connections open on each serving worker.
    pub fn connections_by_worker(&self) -> Vec<usize> {
        self.balance.counts()
    }

    /// The connection cap in force (`max_connections`, lowered by the open-file limit).
    pub fn connection_cap(&self) -> usize {
        self.cap
    }

    /// Stops accepting, drains in-flight requests (up to the grace period), flushes usage.
    pub async fn shutdown(self) {
        if !self.workers.drain(self.grace).await {
            tracing::warn!(
                grace_secs = self.grace.as_secs(),
                "in-flight requests outlived the shutdown grace period; they end with the process"
            );
        }
        for task in &self.background {
            task.abort();
        }
        self.meter_task.shutdown().await;
        tracing::info!("usage flushed; shutdown complete");
    }
}

/// Resolves on SIGTERM or ctrl-c.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    // The SIGTERM handler is installed now, not when the future is first polled, so a caller
    // that builds it before announcing it is listening can never be killed by an early
    // SIGTERM's default action.
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {},
            () = term => {},
        }
    }
}
