//! The handles every request needs (store, caches, policy, router, meter, providers), built
//! once by `server` and read by the gateway, tasks, families and admin. It owns no behaviour
//! beyond applying an admin change everywhere.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;

use crate::auth::KeyCache;
use crate::config::Config;
use crate::meter::Meter;
use crate::providers::Provider;
use crate::store::Store;

/// Everything a handler needs. Immutable after start except the caches it points to.
pub struct AppState {
    /// The validated config.
    pub config: Arc<Config>,
    /// The store (never used on the hot path).
    pub store: Arc<dyn Store>,
    /// The key cache (the hot path's view of keys).
    pub keys: Arc<KeyCache>,
    /// The usage meter.
    pub meter: Meter,
    /// Providers, indexed like `config.providers`.
    pub providers: Vec<Provider>,
    /// The Prometheus registry.
    pub metrics: PrometheusHandle,
    /// Live route state: breakers, latency, key rotation.
    pub router: crate::router::Router,
    /// Rate and concurrency limits.
    pub limiter: Arc<dyn crate::policy::limits::Limiter>,
    /// Plans, accounts and teams (cached).
    pub directory: Arc<crate::policy::directory::DirectoryCache>,
    /// This month's spend per key, team and account.
    pub spend: Arc<crate::policy::quota::SpendTracker>,
    /// Cross-instance invalidation, when Redis is configured.
    pub invalidator: Option<Arc<crate::invalidation::Invalidator>>,
    /// This process's ID, the owner name of the task and delivery leases it takes.
    pub instance_id: String,
    /// Signals the callback outbox that new events were written, so delivery starts now
    /// rather than at its next tick.
    pub outbox_wake: Notify,
    /// The base URL upstreams call back (`[tasks] public_url`, else the bound address).
    pub public_url: String,
}

impl AppState {
    /// Applies an admin change everywhere: this instance's caches now, others via Redis.
    pub async fn changed(&self) {
        if let Err(e) = self.keys.reload().await {
            tracing::warn!(error = %e, "key cache reload after an admin change failed");
        }
        if let Err(e) = self.directory.reload().await {
            tracing::warn!(error = %e, "policy reload after an admin change failed");
        }
        if let Some(inv) = &self.invalidator {
            inv.publish().await;
        }
    }
}

impl AppState {
    /// The models and directory entitlement decisions read.
    pub fn catalog(&self) -> crate::policy::entitlement::Catalog<'_> {
        crate::policy::entitlement::Catalog {
            config: &self.config,
            directory: &self.directory,
        }
    }
}

/// The state as handlers receive it.
pub type SharedState = Arc<AppState>;
