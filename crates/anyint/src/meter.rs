//! Usage metering: one ledger row per request, durable before its response ends, written to
//! the store in batches off the hot path.
//!
//! Handlers hand finished rows to [`Meter::record`], which never blocks on the database: it
//! appends the row to this instance's [`journal::Journal`] (written before it returns, so a
//! crash of the process cannot lose it) and wakes the writer. [`Meter::record_durably`] is the
//! same for a handler that can wait: the row is written when its future is done, with the
//! rows of the other requests the thread finished in the same turn (one write for all), and
//! [`Meter::record_staged`] the same for a stream's end, which the relay holds for one turn. A
//! single writer task tails the journal and writes its rows to the store in batches (up to
//! `batch_size` a statement, every `flush_interval`), then rotates the journal once its rows
//! are committed. The journal is the queue: nothing grows in memory however far the store
//! falls behind. A failed store write keeps its rows and retries with backoff. A stream in
//! flight journals provisional rows ([`Meter::checkpoint`]) so that a crash mid-stream still
//! bills what was delivered.
//! [`MeterTask::shutdown`] writes everything and removes the journal. Streams are metered by
//! [`tap::UsageTap`], which reads usage from the events as they pass.

pub mod journal;
pub mod tap;

use foldhash::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use self::journal::{Entry, Journal, Pending, Tail};
use crate::config::{MeterConfig, Price};
use crate::error::Error;
use crate::store::{Store, UsageRecord};

/// Longest shutdown waits for the store; rows it could not take stay in the journal for the
/// next start.
const SHUTDOWN_WRITE: Duration = Duration::from_secs(10);

enum Ctl {
    Flush(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

/// A request admitted on an estimate: (estimated tokens, [(token scope, its limit)]).
type Settlement = (u32, Vec<(String, u32)>);

/// The cheap, cloneable handle handlers record usage with.
#[derive(Clone)]
pub struct Meter {
    ctl: mpsc::UnboundedSender<Ctl>,
    wake: Arc<Notify>,
    /// `None` only with `journal = false` (benchmarks).
    journal: Option<Arc<Journal>>,
    /// Rows waiting in memory: every row without a journal, and rows whose append failed.
    memory: Arc<Mutex<Vec<UsageRecord>>>,
    /// Model ID → price, for each row's cost.
    prices: Arc<HashMap<String, Price>>,
    /// This month's spend, updated as rows are priced.
    spend: Arc<crate::policy::quota::SpendTracker>,
    /// Token limits to settle when a request's row arrives: request ID → (estimate, scopes).
    settlements: Arc<Mutex<HashMap<String, Settlement>>>,
    limiter: Arc<dyn crate::policy::limits::Limiter>,
}

/// A row recorded by [`Meter::record_durably`] (or a [`StagedRow`] made [`StagedRow::durable`]):
/// done once the row is in the journal. Its first poll only stands aside (it wakes itself and
/// returns), so that the other tasks ready on this thread stage their rows first; the next poll
/// writes every staged row at once, or finds its row already written. Dropped before that, it
/// writes the row then.
#[must_use = "the row reaches the journal when this is awaited or dropped"]
pub struct Durable {
    row: StagedRow,
    deferred: bool,
}

impl std::future::Future for Durable {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.row.is_pending() && !self.deferred {
            self.deferred = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        self.row.write();
        std::task::Poll::Ready(())
    }
}

/// A final row staged in the journal ([`Meter::record_staged`]): written by
/// [`StagedRow::commit`], or when dropped, with every row staged before it.
#[must_use = "the row reaches the journal when this is committed or dropped"]
pub struct StagedRow {
    staged: Option<(Arc<Journal>, journal::Ticket)>,
}

impl StagedRow {
    /// Whether the row still waits for a write (it does not when the journal wrote it at once,
    /// or took no row).
    pub fn is_pending(&self) -> bool {
        self.staged.is_some()
    }

    /// Writes the row, unless another commit has since written it.
    pub fn commit(mut self) {
        self.write();
    }

    /// The row written after standing aside for one turn: see [`Durable`].
    pub fn durable(self) -> Durable {
        Durable {
            row: self,
            deferred: false,
        }
    }

    fn write(&mut self) {
        if let Some((journal, ticket)) = self.staged.take() {
            // A failed write is marked on the journal (`/readyz`); the row is in the queue.
            journal.commit(&ticket);
        }
    }
}

impl Drop for StagedRow {
    fn drop(&mut self) {
        self.write();
    }
}

/// The writer task; await [`MeterTask::shutdown`] after the server has drained.
pub struct MeterTask {
    handle: JoinHandle<()>,
    ctl: mpsc::UnboundedSender<Ctl>,
    /// The ledger's upkeep (partitions, retention); `None` in unit tests.
    upkeep: Option<JoinHandle<()>>,
}

impl Meter {
    /// Opens this instance's journal (an error naming the path when it cannot be written),
    /// replays the journals of stopped instances into `store`, and starts the writer.
    pub async fn start(
        store: Arc<dyn Store>,
        cfg: MeterConfig,
        instance: &str,
        prices: HashMap<String, Price>,
        spend: Arc<crate::policy::quota::SpendTracker>,
        limiter: Arc<dyn crate::policy::limits::Limiter>,
    ) -> Result<(Self, MeterTask), Error> {
        let journal = match &cfg.journal_dir {
            Some(dir) => {
                let journal = Journal::open(dir, instance, cfg.fsync)?;
                journal::replay(dir, instance, store.as_ref(), cfg.batch_size).await?;
                Some(Arc::new(journal))
            }
            None => None,
        };
        let writer = Writer::new(store, cfg, journal);
        let upkeep = tokio::spawn(upkeep(writer.store.clone(), writer.cfg.retention_days));
        let (meter, mut task) = Self::spawn(writer, prices, spend, limiter);
        task.upkeep = Some(upkeep);
        Ok((meter, task))
    }

    /// Starts `writer` and returns its handles.
    fn spawn(
        writer: Writer,
        prices: HashMap<String, Price>,
        spend: Arc<crate::policy::quota::SpendTracker>,
        limiter: Arc<dyn crate::policy::limits::Limiter>,
    ) -> (Self, MeterTask) {
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let (journal, memory) = (writer.journal.clone(), writer.memory.clone());
        let handle = tokio::spawn(writer.run(ctl_rx, wake.clone()));
        let meter = Self {
            ctl: ctl.clone(),
            wake,
            journal,
            memory,
            prices: Arc::new(prices),
            spend,
            settlements: Arc::default(),
            limiter,
        };
        (
            meter,
            MeterTask {
                handle,
                ctl,
                upkeep: None,
            },
        )
    }

    /// `Err` naming the journal file and the error while rows cannot be journaled.
    pub fn health(&self) -> Result<(), String> {
        self.journal.as_ref().map_or(Ok(()), |j| j.health())
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

    /// Sets the row's cost from its model's price; `false` when the model has none.
    fn price(&self, row: &mut UsageRecord) -> bool {
        let Some(price) = self.prices.get(&row.model) else {
            return false;
        };
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
        true
    }

    /// Records a request's final row, pricing it by its model. Never blocks on the database;
    /// when it returns the row is in the journal (or, only if the journal cannot be written,
    /// queued in memory with `/readyz` failing).
    pub fn record(&self, row: UsageRecord) {
        self.record_staged(row).commit();
    }

    /// [`Meter::record`] for a caller that can wait: the row is in the journal when the
    /// returned future is done (or when it is dropped). The write waits until the other
    /// requests that are ready on this thread have staged theirs, so that one write carries
    /// them all: under load a serving thread finishes several requests at once, and a write
    /// each was the gateway's largest cost in the kernel after the network's.
    pub fn record_durably(&self, row: UsageRecord) -> Durable {
        self.record_staged(row).durable()
    }

    /// [`Meter::record`] for a stream about to forward the chunk that ends it: the row is
    /// staged in the journal, and written when the returned [`StagedRow`] is committed or
    /// dropped, which the relay does before that chunk goes out. Between the two, other
    /// streams ending on this thread stage theirs, and one write carries them all (a write
    /// per stream was one system call a request on the streaming path).
    pub fn record_staged(&self, row: UsageRecord) -> StagedRow {
        let mut staged = None;
        if let Some(row) = self.prepare(row) {
            let unjournaled = match self.journal.as_ref() {
                Some(j) => match j.stage(true, row) {
                    journal::Staged::Ticket(ticket) => {
                        staged = Some((Arc::clone(j), ticket));
                        None
                    }
                    journal::Staged::Written(row) => row.map(|r| *r),
                },
                None => Some(row),
            };
            self.keep(unjournaled);
        }
        StagedRow { staged }
    }

    /// Queues in memory a row the journal did not take, and wakes the writer.
    fn keep(&self, unjournaled: Option<UsageRecord>) {
        if let Some(row) = unjournaled
            && let Ok(mut memory) = self.memory.lock()
        {
            memory.push(row);
        }
        self.wake.notify_one();
    }

    /// Settles, prices and counts a final row; `None` once the meter has stopped.
    fn prepare(&self, mut row: UsageRecord) -> Option<UsageRecord> {
        self.settle(&row);
        if self.price(&mut row) {
            self.spend.add(&row);
        }
        // Only rows that produced tokens (always a configured model) touch the counters, so
        // refused requests with made-up model names cannot create metric series.
        if row.prompt_tokens > 0 || row.completion_tokens > 0 {
            crate::telemetry::record_tokens(
                &row.model,
                u64::try_from(row.prompt_tokens).unwrap_or(0),
                u64::try_from(row.completion_tokens).unwrap_or(0),
            );
        }
        if row.web_searches > 0 {
            metrics::counter!(crate::telemetry::METRIC_WEB_SEARCHES, "model" => row.model.clone(), "provider" => row.provider.clone())
                .increment(u64::try_from(row.web_searches).unwrap_or(0));
        }
        if self.ctl.is_closed() {
            tracing::error!(request_id = %row.request_id, "usage row recorded after the meter stopped; it was not stored");
            return None;
        }
        Some(row)
    }

    /// Journals what a stream in flight would be billed if the gateway stopped now (a
    /// provisional row, superseded by the final one). Without a journal it does nothing.
    pub fn checkpoint(&self, mut row: UsageRecord) {
        if let Some(journal) = &self.journal {
            self.price(&mut row);
            // A failure is counted, logged once and shown by `/readyz`; the final row still
            // reaches the store through memory.
            let _ = journal.append(false, row);
        }
    }

    /// Waits until every row recorded before this call is written (read-your-writes for the
    /// usage API and tests).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.ctl.send(Ctl::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

impl MeterTask {
    /// Writes everything recorded so far, removes the journal, and stops the writer.
    pub async fn shutdown(self) {
        let (done, wait) = oneshot::channel();
        if self.ctl.send(Ctl::Stop(done)).is_ok() {
            let _ = wait.await;
        }
        let _ = self.handle.await;
        if let Some(upkeep) = self.upkeep {
            upkeep.abort();
        }
    }
}

/// The writer task's state.
struct Writer {
    store: Arc<dyn Store>,
    cfg: MeterConfig,
    journal: Option<Arc<Journal>>,
    memory: Arc<Mutex<Vec<UsageRecord>>>,
    /// The part of the open segment that overflowed the journal's queue and is still to be
    /// read from the file.
    spilled: Option<Tail>,
    /// The open segment's length at the last take.
    segment_len: u64,
    /// Part of the open segment could not be read back: its rows stay in the file for the
    /// next start's replay, so the segment is kept.
    unread: bool,
    /// Streams in flight: request ID → its latest provisional entry, carried into the next
    /// segment at rotation.
    live: HashMap<String, Vec<u8>>,
    /// A segment is rotated once the writer has read this far into it.
    rotate_bytes: u64,
}

/// A final entry joins the batch; a provisional one replaces its request's earlier one.
fn take_entry(live: &mut HashMap<String, Vec<u8>>, e: Entry, batch: &mut Vec<UsageRecord>) {
    if e.is_final {
        take_rows(live, vec![e.row], batch);
    } else {
        live.insert(e.row.request_id, e.line);
    }
}

/// Final rows join the batch; their streams are no longer in flight. Into an empty batch the
/// rows' vector itself is moved: a queue of hundreds of rows (about 300 bytes each) moved row
/// by row, or into a batch grown by doubling, was copied several times over.
fn take_rows(
    live: &mut HashMap<String, Vec<u8>>,
    rows: Vec<UsageRecord>,
    batch: &mut Vec<UsageRecord>,
) {
    if !live.is_empty() {
        for r in &rows {
            live.remove(&r.request_id);
        }
        // A burst of streams grew the table, and a map keeps its largest size: once most of
        // them have ended, give the room back (about 100 bytes a stream; a table of up to
        // 1,024 is left as it is).
        if live.capacity() > 1024 && live.len() < live.capacity() / 8 {
            live.shrink_to(2 * live.len());
        }
    }
    if batch.is_empty() {
        *batch = rows;
    } else {
        batch.extend(rows);
    }
}

impl Writer {
    /// A writer into `store`, taking rows from `journal` when there is one, that has taken
    /// nothing yet.
    fn new(store: Arc<dyn Store>, cfg: MeterConfig, journal: Option<Arc<Journal>>) -> Self {
        Self {
            store,
            cfg,
            journal,
            memory: Arc::default(),
            spilled: None,
            segment_len: 0,
            unread: false,
            live: HashMap::default(),
            rotate_bytes: journal::ROTATE_BYTES,
        }
    }

    async fn run(mut self, mut ctl: mpsc::UnboundedReceiver<Ctl>, wake: Arc<Notify>) {
        loop {
            let mut waiters = Vec::new();
            let mut stop = None;
            let mut closed = false;
            let mut take = |c: Option<Ctl>| match c {
                Some(Ctl::Flush(w)) => waiters.push(w),
                Some(Ctl::Stop(w)) => stop = Some(w),
                None => closed = true,
            };
            tokio::select! {
                () = wake.notified() => {
                    // Gather rows for the flush interval, unless a flush is asked for first.
                    tokio::select! {
                        () = tokio::time::sleep(self.cfg.flush_interval) => {}
                        c = ctl.recv() => take(c),
                    }
                }
                c = ctl.recv() => take(c),
            }
            while let Ok(c) = ctl.try_recv() {
                take(Some(c));
            }
            if let Some(done) = stop {
                self.stop().await;
                for w in waiters {
                    let _ = w.send(());
                }
                let _ = done.send(());
                return;
            }
            self.pass().await;
            for w in waiters {
                let _ = w.send(());
            }
            if closed {
                return;
            }
            self.maybe_rotate().await;
        }
    }

    /// Writes every row journaled or queued so far: the journal's queue, then what overflowed
    /// it (read from the file a megabyte at a time), then rows kept in memory.
    ///
    /// The queue is taken at most once a pass (not at all when the pass begins while a tail
    /// that overflowed it is still being read): rows that arrive while it writes wait for the
    /// next pass.
    /// Taking them at once made a busy gateway write batches of the few dozen rows that came
    /// in during the last write, and a batch rewrites the last page of the ledger and of each
    /// index and aggregate table whatever its size: the store wrote four times the pages and
    /// flushed the journal every few milliseconds.
    async fn pass(&mut self) {
        let mut fresh = true;
        loop {
            let mut batch = Vec::new();
            let mut more = false;
            if let Some(tail) = self.spilled.as_mut() {
                match tail.read() {
                    Ok(entries) => {
                        more = true;
                        for e in entries {
                            take_entry(&mut self.live, e, &mut batch);
                        }
                        if tail.done() {
                            self.spilled = None;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, path = %tail.path.display(), "reading the usage journal failed; its unread rows stay in the file for the next start's replay");
                        self.spilled = None;
                        self.unread = true;
                    }
                }
            } else if !fresh {
                return;
            } else if let Some(journal) = &self.journal {
                let pending = journal.take();
                more = !pending.rows.is_empty() || pending.spilled.is_some();
                self.take_pending(pending, &mut batch);
            }
            if fresh {
                self.take_memory(&mut batch);
                fresh = false;
            }
            if batch.is_empty() && !more {
                return;
            }
            if !batch.is_empty() {
                if let Some(j) = self.journal.clone() {
                    // A disk flush can take milliseconds: not on a runtime thread.
                    let _ = tokio::task::spawn_blocking(move || j.sync()).await;
                }
                write_with_retry(self.store.as_ref(), &mut batch, self.cfg.batch_size).await;
            }
        }
    }

    /// Moves what the journal queued into `batch` and notes what overflowed it.
    fn take_pending(&mut self, pending: Pending, batch: &mut Vec<UsageRecord>) {
        self.segment_len = pending.segment_len;
        self.live.extend(pending.progress);
        take_rows(&mut self.live, pending.rows, batch);
        self.spilled = pending.spilled;
    }

    /// Everything not yet taken, read to the end (at rotation and stop, appends held):
    /// `false` when part of the segment could not be read, now or by an earlier pass.
    fn take_all(&mut self, pending: Pending, batch: &mut Vec<UsageRecord>) -> bool {
        let earlier = self.spilled.take().map(|t| self.read_rest(t, batch));
        self.take_pending(pending, batch);
        let later = self.spilled.take().map(|t| self.read_rest(t, batch));
        earlier != Some(false) && later != Some(false) && !self.unread
    }

    /// Reads what is left of `tail` into `batch`; `false` when it could not be read.
    fn read_rest(&mut self, mut tail: Tail, batch: &mut Vec<UsageRecord>) -> bool {
        match tail.read_to_end() {
            Ok(entries) => {
                for e in entries {
                    take_entry(&mut self.live, e, batch);
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, path = %tail.path.display(), "reading the usage journal failed");
                false
            }
        }
    }

    /// Moves the rows queued in memory into `batch`.
    fn take_memory(&mut self, batch: &mut Vec<UsageRecord>) {
        let rows = self
            .memory
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default();
        take_rows(&mut self.live, rows, batch);
    }

    /// Starts a new segment once the open one is large and its rows are written: the streams
    /// still in flight carry their provisional entries over, and the old segment is removed
    /// (kept for the next start's replay if part of it could not be read).
    async fn maybe_rotate(&mut self) {
        let Some(journal) = self.journal.clone() else {
            return;
        };
        if self.segment_len < self.rotate_bytes {
            return;
        }
        let mut batch = Vec::new();
        let mut read = true;
        let old = journal.rotate(|pending| {
            read = self.take_all(pending, &mut batch);
            self.live.values().flatten().copied().collect()
        });
        self.segment_len = 0;
        if old.is_some() {
            self.unread = false;
        }
        write_with_retry(self.store.as_ref(), &mut batch, self.cfg.batch_size).await;
        let Some(old) = old else { return };
        if !read {
            tracing::error!(path = %old.display(), "a usage journal segment could not be read back; it is kept for the next start to replay");
            return;
        }
        if let Err(e) = std::fs::remove_file(&old) {
            tracing::warn!(error = %e, path = %old.display(), "removing a written usage journal segment failed");
        }
    }

    /// Closes the journal, writes everything, and removes the journal when nothing is left.
    async fn stop(&mut self) {
        let mut batch = Vec::new();
        let mut closed: Option<PathBuf> = None;
        let mut read = true;
        if let Some(journal) = self.journal.clone() {
            closed = journal.close(|pending| read = self.take_all(pending, &mut batch));
        }
        self.take_memory(&mut batch);
        let pending = batch.len();
        let written = tokio::time::timeout(
            SHUTDOWN_WRITE,
            write_with_retry(self.store.as_ref(), &mut batch, self.cfg.batch_size),
        )
        .await
        .is_ok();
        match (&self.journal, closed) {
            (Some(journal), Some(path)) if written && read && self.live.is_empty() => {
                let _ = std::fs::remove_file(&path);
                journal.remove_lock();
            }
            (Some(_), Some(path)) => {
                tracing::warn!(path = %path.display(), streams = self.live.len(), written, "usage rows left in the journal; the next start replays them");
            }
            _ if !written => {
                tracing::error!(
                    rows = pending,
                    "the store did not take the last usage rows before shutdown; they are lost"
                );
            }
            _ => {}
        }
    }
}

/// How often the ledger's upkeep runs.
const UPKEEP_EVERY: Duration = Duration::from_secs(3600);

/// The ledger's upkeep, at start and hourly: next month's storage is prepared ahead of time
/// and raw rows past `retention_days` are removed (their hourly buckets and monthly totals
/// stay). A failure is logged and tried again at the next turn.
async fn upkeep(store: Arc<dyn Store>, retention_days: Option<u32>) {
    loop {
        let now = crate::clock::unix_millis();
        let keep_from = retention_days.map(|d| now - i64::from(d) * 86_400_000);
        match store.maintain_usage(now, keep_from).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                removed = n,
                retention_days,
                "removed usage ledger rows past their retention"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "the usage ledger's upkeep failed; it runs again in an hour");
            }
        }
        tokio::time::sleep(UPKEEP_EVERY).await;
    }
}

/// Writes `batch` in chunks, retrying failures with capped exponential backoff until it lands.
/// A chunk that keeps failing while the store answers pings holds a row the store refuses; it
/// is written row by row and a refused row goes to the error log (IDs and counts only), so one
/// bad row cannot block every later one.
async fn write_with_retry(store: &dyn Store, batch: &mut Vec<UsageRecord>, chunk: usize) {
    let mut backoff = Duration::from_millis(50);
    let mut failures = 0u32;
    // Rows before `done` are written. They are dropped together at the end: draining each
    // chunk as it landed moved the rest of a batch of thousands of rows every time.
    let mut done = 0;
    while done < batch.len() {
        let n = (batch.len() - done).min(chunk.max(1));
        match store
            .insert_usage(batch.get(done..done + n).unwrap_or_default())
            .await
        {
            Ok(()) => {
                done += n;
                backoff = Duration::from_millis(50);
                failures = 0;
                crate::telemetry::store_answered();
            }
            Err(e) => {
                metrics::counter!(crate::telemetry::METRIC_METER_WRITE_ERRORS).increment(1);
                failures += 1;
                if failures >= 3 && store.ping().await.is_ok() {
                    batch.drain(..done);
                    done = 0;
                    isolate(store, batch, n).await;
                    failures = 0;
                    continue;
                }
                // An outage is logged once; the pending count is in each retry's debug line.
                tracing::debug!(pending = batch.len() - done, "usage write failed; retrying");
                crate::telemetry::store_failed("usage write", &e);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    batch.clear();
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn ended_streams_give_back_the_room_a_burst_grew_their_table_to() {
        let mut live = HashMap::default();
        let rows: Vec<_> = (0..5000).map(|i| row(&format!("req_{i}"), 1)).collect();
        for r in &rows {
            live.insert(r.request_id.clone(), b"progress".to_vec());
        }
        let mut batch = Vec::new();
        take_rows(
            &mut live,
            rows.get(..4990).unwrap_or_default().to_vec(),
            &mut batch,
        );
        assert_eq!(batch.len(), 4990);
        assert_eq!(live.len(), 10);
        assert!(live.capacity() <= 1024, "{}", live.capacity());
        assert!(live.contains_key("req_4995"));
    }

    pub(crate) fn row(id: &str, completion: i64) -> UsageRecord {
        UsageRecord {
            stream: true,
            completion_tokens: completion,
            ..journal::tests::row(id)
        }
    }

    /// A meter writing to `store`, through `journal` when given (flushing every millisecond,
    /// rotating segments past 2 KB).
    fn spawn_meter(store: Arc<dyn Store>, journal: Option<Journal>) -> (Meter, MeterTask) {
        spawn_meter_with(store, journal, Duration::from_millis(1), 2048)
    }

    /// A meter flushing every `flush_interval`, rotating segments past `rotate_bytes`.
    pub(crate) fn spawn_meter_with(
        store: Arc<dyn Store>,
        journal: Option<Journal>,
        flush_interval: Duration,
        rotate_bytes: u64,
    ) -> (Meter, MeterTask) {
        let cfg = MeterConfig {
            flush_interval,
            batch_size: 50,
            journal_dir: None,
            fsync: crate::config::Fsync::Never,
            retention_days: None,
        };
        let mut writer = Writer::new(store, cfg, journal.map(Arc::new));
        writer.rotate_bytes = rotate_bytes;
        Meter::spawn(
            writer,
            HashMap::default(),
            Arc::new(crate::policy::quota::SpendTracker::new()),
            Arc::new(crate::policy::limits::LocalLimiter::new()),
        )
    }

    /// A SQLite store in `dir`.
    pub(crate) async fn sqlite_store(dir: &std::path::Path) -> Arc<dyn Store> {
        crate::store::open(&format!("sqlite://{}/t.db", dir.display()))
            .await
            .unwrap()
    }

    /// A SQLite store in `dir`, and a meter journaling to `dir/journal` (its path given)
    /// that writes the store only when told to flush.
    pub(crate) async fn journaled_meter(
        dir: &std::path::Path,
    ) -> (Arc<dyn Store>, std::path::PathBuf, Meter, MeterTask) {
        let store = sqlite_store(dir).await;
        let jdir = dir.join("journal");
        let journal = Journal::open(&jdir, "inst_d", crate::config::Fsync::Never).unwrap();
        let (meter, task) = spawn_meter_with(
            store.clone(),
            Some(journal),
            Duration::from_secs(60),
            1 << 30,
        );
        (store, jdir, meter, task)
    }

    /// The stored rows of `request_id`.
    async fn rows_of(store: &dyn Store, request_id: &str) -> Vec<UsageRecord> {
        store
            .usage(&crate::store::UsageQuery {
                request_id: Some(request_id.into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
    }

    /// A usage tap on an OpenAI stream for `request_id`, metered by `meter`, started now.
    pub(crate) fn openai_tap(meter: &Meter, request_id: &str) -> tap::UsageTap {
        tap::UsageTap::new(
            anyint_wire::translate::Kind::OpenAi,
            (
                meter.clone(),
                row(request_id, 0),
                tokio::time::Instant::now(),
            ),
        )
    }

    /// The lines of every journal segment in `dir` that name `request_id`.
    pub(crate) fn journal_lines(dir: &std::path::Path, request_id: &str) -> Vec<String> {
        let needle = format!("\"{request_id}\"");
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .flat_map(|text| {
                text.lines()
                    .filter(|l| l.contains(&needle))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// A row recorded durably is staged at once and written on the future's second poll
    /// (the first stands aside for the other requests ready on the thread), together with
    /// whatever else was staged; a future dropped unpolled writes its row as it goes. Every
    /// row reaches the store once.
    #[tokio::test]
    async fn a_durable_row_is_in_the_journal_when_awaited_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (store, jdir, meter, task) = journaled_meter(dir.path()).await;
        let mut first = std::pin::pin!(meter.record_durably(row("req_d1", 1)));
        let mut second = std::pin::pin!(meter.record_durably(row("req_d2", 1)));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert!(journal_lines(&jdir, "req_d1").is_empty(), "staged only");
        assert!(first.as_mut().poll(&mut cx).is_ready());
        assert_eq!(journal_lines(&jdir, "req_d1").len(), 1);
        assert_eq!(
            journal_lines(&jdir, "req_d2").len(),
            1,
            "written with the first"
        );
        assert!(second.as_mut().poll(&mut cx).is_ready());
        drop(meter.record_durably(row("req_d3", 1)));
        assert_eq!(journal_lines(&jdir, "req_d3").len(), 1);
        meter.record_durably(row("req_d4", 1)).await;
        assert_eq!(journal_lines(&jdir, "req_d4").len(), 1);
        meter.flush().await;
        for id in ["req_d1", "req_d2", "req_d3", "req_d4"] {
            assert_eq!(rows_of(store.as_ref(), id).await.len(), 1, "{id}");
        }
        task.shutdown().await;
    }

    /// Rotation under way, with the journal's queue overflowing: every row is written once,
    /// old segments removed, and a stream in flight keeps its provisional row across segments,
    /// so a crash after many rotations still bills it.
    #[tokio::test]
    async fn rotation_keeps_streams_in_flight_and_removes_written_segments() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(dir.path()).await;
        let jdir = dir.path().join("journal");
        // A queue smaller than the rows between flushes: each pass also reads an overflow
        // from the file.
        let journal = Journal::open(&jdir, "inst_a", crate::config::Fsync::Never)
            .unwrap()
            .with_queue_rows(7);
        let (meter, task) = spawn_meter(store.clone(), Some(journal));
        meter.checkpoint(row("req_live", 7));
        for i in 0..200 {
            meter.record(row(&format!("req_{i}"), 1));
            if i % 20 == 0 {
                meter.flush().await;
            }
        }
        meter.flush().await;
        let stored = store
            .usage(&crate::store::UsageQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(stored.len(), 200);
        let segments = |dir: &std::path::Path| {
            std::fs::read_dir(dir)
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".journal"))
                .collect::<Vec<_>>()
        };
        let now = segments(&jdir);
        assert_eq!(now.len(), 1, "written segments are removed: {now:?}");
        assert_ne!(now[0], "usage-inst_a-000000.journal", "it rotated");

        // The process dies: nothing more is written, the lock is released.
        task.handle.abort();
        let _ = task.handle.await;
        drop(meter);
        let replayed = journal::replay(&jdir, "inst_b", store.as_ref(), 50)
            .await
            .unwrap();
        assert!(replayed >= 1);
        let live = rows_of(store.as_ref(), "req_live").await;
        assert_eq!(
            live.len(),
            1,
            "the stream in flight is billed after the crash"
        );
        assert_eq!(live[0].completion_tokens, 7);
        assert!(segments(&jdir).is_empty(), "a replayed journal is removed");
    }

    /// A stream's first provisional row goes to the journal when the stream first waits for
    /// the upstream (or forwards a byte), not when it starts: one whose first chunk holds the
    /// whole answer journals its final row only, and one that waited is still billed after a
    /// crash.
    #[tokio::test]
    async fn a_stream_journals_its_first_provisional_row_before_it_waits() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(dir.path()).await;
        let jdir = dir.path().join("journal");
        let journal = Journal::open(&jdir, "inst_a", crate::config::Fsync::Never).unwrap();
        let (meter, task) = spawn_meter(store.clone(), Some(journal));
        let tap = |id: &str| openai_tap(&meter, id);
        let lines = |id: &str| journal_lines(&jdir, id).len();

        let mut waiting = tap("req_wait");
        assert_eq!(
            lines("req_wait"),
            0,
            "nothing journaled before the first wait"
        );
        waiting.before_wait();
        waiting.before_wait();
        assert_eq!(lines("req_wait"), 1, "one provisional row, written once");

        let mut whole = tap("req_whole");
        let mut splitter = anyint_wire::sse::SseSplitter::new();
        let answer = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n";
        for frame in splitter.push(answer.as_bytes()) {
            whole.observe(&frame);
        }
        whole.checkpoint();
        whole.before_wait();
        assert_eq!(lines("req_whole"), 1, "the final row only");

        // The process dies with `req_wait` in flight: what is on disk now is what the next
        // start replays (a copy, since this process still holds the journal).
        task.handle.abort();
        let _ = task.handle.await;
        let crashed = dir.path().join("crashed");
        std::fs::create_dir(&crashed).unwrap();
        for e in std::fs::read_dir(&jdir).unwrap() {
            let path = e.unwrap().path();
            std::fs::copy(&path, crashed.join(path.file_name().unwrap())).unwrap();
        }
        drop((waiting, whole, meter));
        journal::replay(&crashed, "inst_b", store.as_ref(), 50)
            .await
            .unwrap();
        let rows = rows_of(store.as_ref(), "req_wait").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].outcome, "interrupted");
        let rows = rows_of(store.as_ref(), "req_whole").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].outcome, "ok");
    }

    /// A stream in flight journals progress by events or by time, not per event: a model's
    /// pace (a token every 30 ms here) adds at most one provisional row a second, a burst one
    /// per `PROGRESS_EVENTS` events, and the latest row bills what was delivered by then.
    #[tokio::test]
    async fn a_stream_journals_progress_by_events_or_time_not_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(dir.path()).await;
        let jdir = dir.path().join("journal");
        let journal = Journal::open(&jdir, "inst_a", crate::config::Fsync::Never).unwrap();
        // No flush and no rotation while the streams run: every line written stays in the one
        // segment, to be counted.
        let (meter, _task) = spawn_meter_with(
            store.clone(),
            Some(journal),
            Duration::from_secs(3600),
            u64::MAX,
        );
        // The streams' clock from here on moves only as the test says.
        tokio::time::pause();
        // The provisional lines of `id` in the journal, as the completion tokens each bills.
        let billed = |id: &str| {
            let mut lines: Vec<(i64, bool)> = journal_lines(&jdir, id)
                .iter()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    (
                        v["row"]["completion_tokens"].as_i64().unwrap(),
                        v["final"].as_bool().unwrap(),
                    )
                })
                .collect();
            lines.sort_unstable();
            lines
        };
        let content = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\n";
        let feed = |tap: &mut tap::UsageTap, splitter: &mut anyint_wire::sse::SseSplitter| {
            for frame in splitter.push(content.as_bytes()) {
                tap.observe(&frame);
            }
            tap.checkpoint();
        };

        let stream = |id: &str| (openai_tap(&meter, id), anyint_wire::sse::SseSplitter::new());

        // Paced: 100 content events 30 ms apart, 3 s of streaming.
        let (mut paced, mut splitter) = stream("req_paced");
        let pace = Duration::from_millis(30);
        paced.before_wait();
        for _ in 0..100 {
            tokio::time::advance(pace).await;
            feed(&mut paced, &mut splitter);
        }
        let lines = billed("req_paced");
        // The first row, then at most one a second of streaming.
        let streamed = pace * 100;
        let most = 1 + usize::try_from(streamed.as_secs()).unwrap();
        assert!(
            (2..=most).contains(&lines.len()),
            "{} provisional rows for 100 events over {streamed:?}: {lines:?}",
            lines.len()
        );
        assert!(lines.iter().all(|&(_, fin)| !fin), "{lines:?}");
        // The latest bills the events up to it (one token per content event after the first),
        // at most a `PROGRESS_EVERY` of streaming behind the last one.
        let behind = i64::try_from(tap::PROGRESS_EVERY.as_millis() / pace.as_millis()).unwrap();
        let latest = lines.last().unwrap().0;
        assert!((99 - behind..=99).contains(&latest), "{lines:?}");

        // A burst: 200 events at once, no time passing.
        let (mut burst, mut splitter) = stream("req_burst");
        for _ in 0..200 {
            feed(&mut burst, &mut splitter);
        }
        let lines = billed("req_burst");
        let by_events = 1 + usize::try_from(200 / tap::PROGRESS_EVENTS).unwrap();
        assert_eq!(lines.len(), by_events, "{lines:?}");
        drop((paced, burst));
    }

    /// A stream cut before its usage chunk is billed one token per content event: the role
    /// chunk, the finish chunk and the usage chunk's absence add nothing.
    #[tokio::test]
    async fn a_cut_stream_is_billed_for_its_content_events_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(dir.path()).await;
        let (meter, _task) = spawn_meter(store.clone(), None);
        let mut tap = openai_tap(&meter, "req_cut");
        let mut splitter = anyint_wire::sse::SseSplitter::new();
        let chunk = |delta: &str, finish: &str| {
            format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
            )
        };
        let stream = [
            chunk(r#"{"role":"assistant","content":""}"#, "null"),
            chunk(r#"{"content":"a"}"#, "null"),
            chunk(r#"{"content":"b"}"#, "null"),
            chunk(r#"{"content":"c"}"#, "null"),
            chunk("{}", r#""stop""#),
        ]
        .concat();
        for frame in splitter.push(stream.as_bytes()) {
            tap.observe(&frame);
        }
        tap.finish(tap::End::UpstreamCut);
        meter.flush().await;
        let rows = rows_of(store.as_ref(), "req_cut").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].completion_tokens, 3, "{:?}", rows[0]);
    }
}
