//! Usage metering: one ledger row per request, written in batches off the hot path.
//!
//! Handlers hand finished rows to [`Meter::record`], which never blocks and never touches the
//! database. A single writer task batches rows (up to `batch_size`, or every `flush_interval`)
//! into one transaction. A failed write keeps its rows and retries with backoff, so a database
//! hiccup delays usage but does not lose it. [`MeterTask::shutdown`] drains everything queued.
//! Streams are metered by [`tap::UsageTap`], which reads usage from the events as they pass.

pub mod tap;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::{MeterConfig, Price};
use crate::store::{Store, UsageRecord};

enum Msg {
    Row(Box<UsageRecord>),
    Flush(oneshot::Sender<()>),
}

/// A request admitted on an estimate: (estimated tokens, [(token scope, its limit)]).
type Settlement = (u32, Vec<(String, u32)>);

/// The cheap, cloneable handle handlers record usage with.
#[derive(Clone)]
pub struct Meter {
    tx: mpsc::UnboundedSender<Msg>,
    /// Model ID → price, for each row's cost.
    prices: Arc<HashMap<String, Price>>,
    /// This month's spend, updated as rows are priced.
    spend: Arc<crate::policy::quota::SpendTracker>,
    /// Token limits to settle when a request's row arrives: request ID → (estimate, scopes).
    settlements: Arc<Mutex<HashMap<String, Settlement>>>,
    limiter: Arc<dyn crate::policy::limits::Limiter>,
}

/// The writer task; await [`MeterTask::shutdown`] after the server has drained.
pub struct MeterTask {
    handle: JoinHandle<()>,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Meter {
    /// Starts the writer over `store`.
    pub fn start(
        store: Arc<dyn Store>,
        cfg: MeterConfig,
        prices: HashMap<String, Price>,
        spend: Arc<crate::policy::quota::SpendTracker>,
        limiter: Arc<dyn crate::policy::limits::Limiter>,
    ) -> (Self, MeterTask) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = tokio::spawn(writer(store, cfg, rx));
        let meter = Self {
            tx: tx.clone(),
            prices: Arc::new(prices),
            spend,
            settlements: Arc::default(),
            limiter,
        };
        (meter, MeterTask { handle, tx })
    }

    /// Remembers that `request_id` was admitted on `estimate` tokens against `scopes`, to be
    /// settled when its row is recorded.
    pub fn expect_usage(&self, request_id: &str, estimate: u32, scopes: Vec<(String, u32)>) {
        if let Ok(mut s) = self.settlements.lock() {
            s.insert(request_id.to_owned(), (estimate, scopes));
        }
    }

    /// Corrects the token limits of the row's request by (actual − estimate).
    fn settle(&self, row: &UsageRecord) {
        let Some((estimate, scopes)) = self
            .settlements
            .lock()
            .ok()
            .and_then(|mut s| s.remove(&row.request_id))
        else {
            return;
        };
        let actual = row.prompt_tokens.saturating_add(row.completion_tokens);
        let delta = actual - i64::from(estimate);
        if delta == 0 {
            return;
        }
        let limiter = self.limiter.clone();
        drop(tokio::spawn(async move {
            for (scope, limit) in scopes {
                if let Err(e) = limiter.settle(&scope, limit, delta).await {
                    tracing::warn!(error = %e, "settling a token limit failed");
                }
            }
        }));
    }

    /// Queues a row, pricing it by its model. Never blocks; rows queued before shutdown are
    /// always written.
    pub fn record(&self, mut row: UsageRecord) {
        self.settle(&row);
        if let Some(price) = self.prices.get(&row.model) {
            let tokens = |t: i64| u64::try_from(t).unwrap_or(0);
            let usage = anyint_wire::Usage {
                input_tokens: tokens(row.prompt_tokens),
                output_tokens: tokens(row.completion_tokens),
                cache_read_tokens: tokens(row.cache_read_tokens),
                cache_write_tokens: tokens(row.cache_write_tokens),
                reasoning_tokens: 0,
                web_searches: tokens(row.web_searches),
            };
            row.cost_micros = i64::try_from(price.cost(&usage)).unwrap_or(i64::MAX);
            self.spend.add(&row);
        }
        // Only rows that produced tokens (always a configured model) touch the counters, so
        // refused requests with made-up model names cannot create metric series.
        if row.prompt_tokens > 0 || row.completion_tokens > 0 {
            metrics::counter!(crate::telemetry::METRIC_TOKENS, "direction" => "input", "model" => row.model.clone())
                .increment(u64::try_from(row.prompt_tokens).unwrap_or(0));
            metrics::counter!(crate::telemetry::METRIC_TOKENS, "direction" => "output", "model" => row.model.clone())
                .increment(u64::try_from(row.completion_tokens).unwrap_or(0));
        }
        if row.web_searches > 0 {
            metrics::counter!(crate::telemetry::METRIC_WEB_SEARCHES, "model" => row.model.clone(), "provider" => row.provider.clone())
                .increment(u64::try_from(row.web_searches).unwrap_or(0));
        }
        if self.tx.send(Msg::Row(Box::new(row))).is_err() {
            tracing::error!("usage row recorded after the meter stopped; it was not stored");
        }
    }

    /// Waits until every row queued before this call is written (read-your-writes for the
    /// usage API and tests).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

impl MeterTask {
    /// Writes everything queued so far, then stops the writer.
    pub async fn shutdown(self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.await;
        }
        self.handle.abort();
        let _ = self.handle.await;
    }
}

async fn writer(store: Arc<dyn Store>, cfg: MeterConfig, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut batch: Vec<UsageRecord> = Vec::with_capacity(cfg.batch_size);
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        // Wait for the first message, then gather more until the batch is full or the
        // interval passes. A flush request ends the gathering at once.
        let Some(first) = rx.recv().await else { break };
        let deadline = tokio::time::Instant::now() + cfg.flush_interval;
        let mut msg = Some(first);
        loop {
            match msg.take() {
                Some(Msg::Row(row)) => batch.push(*row),
                Some(Msg::Flush(w)) => {
                    waiters.push(w);
                    // Take everything already queued, then write now.
                    while let Ok(m) = rx.try_recv() {
                        match m {
                            Msg::Row(row) => batch.push(*row),
                            Msg::Flush(w) => waiters.push(w),
                        }
                    }
                    break;
                }
                None => {}
            }
            if batch.len() >= cfg.batch_size {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => msg = Some(m),
                Ok(None) | Err(_) => break,
            }
        }
        write_with_retry(store.as_ref(), &mut batch, cfg.batch_size).await;
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
    write_with_retry(store.as_ref(), &mut batch, cfg.batch_size).await;
}

/// Writes `batch` in chunks, retrying failures with capped exponential backoff until it lands.
/// A chunk that keeps failing while the store answers pings holds a row the store refuses; it
/// is written row by row and a refused row goes to the error log (IDs and counts only), so one
/// bad row cannot block every later one.
async fn write_with_retry(store: &dyn Store, batch: &mut Vec<UsageRecord>, chunk: usize) {
    let mut backoff = Duration::from_millis(50);
    let mut failures = 0u32;
    while !batch.is_empty() {
        let n = batch.len().min(chunk.max(1));
        match store.insert_usage(batch.get(..n).unwrap_or_default()).await {
            Ok(()) => {
                batch.drain(..n);
                backoff = Duration::from_millis(50);
                failures = 0;
                crate::telemetry::store_answered();
            }
            Err(e) => {
                metrics::counter!(crate::telemetry::METRIC_METER_WRITE_ERRORS).increment(1);
                failures += 1;
                if failures >= 3 && store.ping().await.is_ok() {
                    isolate(store, batch, n).await;
                    failures = 0;
                    continue;
                }
                // An outage is logged once; the pending count is in each retry's debug line.
                tracing::debug!(pending = batch.len(), "usage write failed; retrying");
                crate::telemetry::store_failed("usage write", &e);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Writes the first `n` rows one at a time; rows the store refuses are logged and dropped.
async fn isolate(store: &dyn Store, batch: &mut Vec<UsageRecord>, n: usize) {
    for row in batch.drain(..n).collect::<Vec<_>>() {
        if let Err(e) = store.insert_usage(std::slice::from_ref(&row)).await {
            metrics::counter!(crate::telemetry::METRIC_METER_DEAD_ROWS).increment(1);
            tracing::error!(
                error = %e,
                request_id = %row.request_id,
                key_id = %row.key_id,
                prompt_tokens = row.prompt_tokens,
                completion_tokens = row.completion_tokens,
                cost_micros = row.cost_micros,
                "usage row refused by the store; recorded here instead"
            );
        }
    }
}
