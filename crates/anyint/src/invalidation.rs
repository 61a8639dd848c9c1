//! Cross-instance cache invalidation through Redis pub/sub (when `[limits] redis_url` is set).
//!
//! An admin change on one instance publishes on `{key_prefix}:invalidate`; every instance
//! (itself included) reloads its key cache and policy directory when the message arrives, so
//! a revoked key or a changed plan takes effect everywhere without waiting for the periodic
//! refresh. If the subscription drops, the listener reconnects; the periodic refresh remains
//! the backstop.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use crate::auth::KeyCache;
use crate::policy::directory::DirectoryCache;

/// Publishes and receives invalidations.
pub struct Invalidator {
    client: redis::Client,
    publisher: ConnectionManager,
    channel: String,
}

impl Invalidator {
    /// Connects to Redis at `url`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let publisher = ConnectionManager::new(client.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            publisher,
            channel: format!("{prefix}:invalidate"),
        })
    }

    /// Tells every instance to reload. Best effort: a failure is logged, and the periodic
    /// refresh still catches up.
    pub async fn publish(&self) {
        let mut conn = self.publisher.clone();
        if let Err(e) = conn.publish::<_, _, ()>(&self.channel, "reload").await {
            tracing::warn!(error = %e, "publishing a cache invalidation failed; other instances catch up at their next refresh");
        }
    }

    /// Listens until the task is aborted, reloading the caches on every message.
    pub async fn listen(self: Arc<Self>, keys: Arc<KeyCache>, directory: Arc<DirectoryCache>) {
        loop {
            match self.client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    // Failures here retry every second while Redis is down; the limiter's
                    // breaker logs the outage once, so they stay at debug.
                    if let Err(e) = pubsub.subscribe(&self.channel).await {
                        tracing::debug!(error = %e, "subscribing to cache invalidations failed");
                    } else {
                        let mut messages = pubsub.on_message();
                        while messages.next().await.is_some() {
                            if let Err(e) = keys.reload().await {
                                tracing::warn!(error = %e, "key cache reload after invalidation failed");
                            }
                            if let Err(e) = directory.reload().await {
                                tracing::warn!(error = %e, "policy reload after invalidation failed");
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "connecting for cache invalidations failed; retrying");
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
