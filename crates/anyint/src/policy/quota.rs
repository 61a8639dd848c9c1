//! Credit caps: a plan's cap per account, a team's budget and a key's budget, each per UTC
//! calendar month. Admission refuses a request once a cap is used up (429
//! `insufficient_quota`, saying when the month resets, with `x-should-retry: false` so SDKs
//! do not retry in a loop). Settlement is the ledger: every row's cost is added as it is
//! metered, so a stream cut short is charged for what it generated.
//!
//! Counts live in memory per instance, added to as rows settle, and are brought up to the
//! store's monthly totals (kept beside the ledger, a row per key, team and account, never a
//! scan of the ledger) on start and at each cache refresh. With a shared limiter (Redis) the
//! counts are also kept there, incremented atomically as rows settle on any instance and read
//! by admission, so a cap is overshot by at most the requests already in flight when it is
//! reached, however many instances there are. While Redis cannot answer, admission uses the
//! in-process counts; when Redis has lost the counters (a restart), the first admission that
//! notices rebuilds them from the store's totals.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::mpsc;

use crate::error::{Error, ErrorKind};
use crate::policy::directory::Directory;
use crate::policy::limits::Limiter;
use crate::store::{ApiKey, SpendScope, Store, UsageRecord};

/// Most spend changes waiting for Redis at once; past it changes are still counted in process
/// and the shared counters are rebuilt from the store once Redis takes writes again.
const SHARED_QUEUE: usize = 65_536;

#[derive(Default)]
struct Month {
    /// Unix seconds.
    start: i64,
    by_key: HashMap<String, i64>,
    by_team: HashMap<String, i64>,
    by_account: HashMap<String, i64>,
}

impl Month {
    /// Starts the month beginning at `start` (Unix seconds) afresh, unless it is the one kept.
    fn roll_to(&mut self, start: i64) {
        if self.start != start {
            *self = Self {
                start,
                ..Self::default()
            };
        }
    }

    fn map(&mut self, scope: SpendScope) -> &mut HashMap<String, i64> {
        match scope {
            SpendScope::Key => &mut self.by_key,
            SpendScope::Team => &mut self.by_team,
            SpendScope::Account => &mut self.by_account,
        }
    }
}

/// A change of one month's spend, on its way to the shared counters.
struct Change {
    month_ms: i64,
    scopes: [Option<String>; 3],
    delta: i64,
}

/// What the forwarding task is asked to do.
enum Msg {
    /// Add a settled change to the shared counters.
    Change(Change),
    /// Rebuild the month's counters (Unix ms of its start).
    Rebuild(i64),
}

/// What sharing the counters needs.
struct Shared {
    limiter: Arc<dyn Limiter>,
    changes: mpsc::Sender<Msg>,
    /// A rebuild is asked for or under way; admission does not ask again.
    rebuilding: Arc<AtomicBool>,
}

/// Spend so far this month, per key, team and account.
#[derive(Default)]
pub struct SpendTracker {
    month: Arc<Mutex<Month>>,
    shared: OnceLock<Shared>,
}

/// The name of a scope's counter: `key:ID`, `team:ID` or `account:ID`.
fn counter(scope: SpendScope, id: &str) -> String {
    let kind = match scope {
        SpendScope::Key => "key",
        SpendScope::Team => "team",
        SpendScope::Account => "account",
    };
    format!("{kind}:{id}")
}

/// Adds `delta` to `id`'s count, allocating its name only the first time it is seen.
fn add_to(counts: &mut HashMap<String, i64>, id: &str, delta: i64) {
    match counts.get_mut(id) {
        Some(c) => *c += delta,
        None => {
            counts.insert(id.to_owned(), delta);
        }
    }
}

fn month_ms(at_secs: i64) -> i64 {
    crate::clock::month_bounds(at_secs).0.saturating_mul(1000)
}

impl SpendTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the counts in `limiter` too (when it shares them across instances), rebuilding
    /// them from `store` when they are missing. Starts the task that forwards settled spend.
    pub fn share(&self, limiter: Arc<dyn Limiter>, store: Arc<dyn Store>) {
        if !limiter.shares_spend() {
            return;
        }
        let (changes, rx) = mpsc::channel(SHARED_QUEUE);
        let rebuilding = Arc::new(AtomicBool::new(false));
        let forwarder = Forwarder {
            limiter: limiter.clone(),
            store,
            month: self.month.clone(),
            rebuilding: rebuilding.clone(),
            rx,
            pending: HashMap::new(),
        };
        if self
            .shared
            .set(Shared {
                limiter,
                changes,
                rebuilding,
            })
            .is_ok()
        {
            drop(tokio::spawn(forwarder.run()));
        }
    }

    /// Adds a metered row's cost to the month the row belongs to.
    pub fn add(&self, row: &UsageRecord) {
        self.bump(
            row.created_at_ms.div_euclid(1000),
            &row.key_id,
            row.team.as_deref(),
            &row.account,
            row.cost_micros,
        );
    }

    /// Adds `delta` micro-units (negative to release) to a key's, team's and account's spend
    /// this month: task reservations and their settlement.
    pub fn adjust(&self, key_id: &str, team: Option<&str>, account: &str, delta: i64) {
        self.bump(crate::clock::unix_secs(), key_id, team, account, delta);
    }

    /// Adds `delta` to the month holding `at_secs`, starting that month afresh if it is not
    /// the one tracked, and passes it on to the shared counters.
    fn bump(&self, at_secs: i64, key_id: &str, team: Option<&str>, account: &str, delta: i64) {
        if delta == 0 {
            return;
        }
        let (start, _) = crate::clock::month_bounds(at_secs);
        let Ok(mut m) = self.month.lock() else { return };
        m.roll_to(start);
        add_to(&mut m.by_key, key_id, delta);
        if let Some(team) = team {
            add_to(&mut m.by_team, team, delta);
        }
        add_to(&mut m.by_account, account, delta);
        // Sent under the lock: a rebuild, which takes the counts and the queued changes under
        // the same lock, then sees every change exactly once.
        if let Some(shared) = self.shared.get() {
            let change = Change {
                month_ms: start.saturating_mul(1000),
                scopes: [
                    Some(counter(SpendScope::Key, key_id)),
                    team.map(|t| counter(SpendScope::Team, t)),
                    Some(counter(SpendScope::Account, account)),
                ],
                delta,
            };
            if shared.changes.try_send(Msg::Change(change)).is_err() {
                drop(m);
                tracing::warn!(
                    "the shared spend counters fell behind; they are rebuilt from this instance's counts and the store"
                );
                self.rebuild_shared(start.saturating_mul(1000));
            }
        }
    }

    /// Brings the counts up to the store's totals for this month: each count becomes the
    /// larger of the store's (which holds every instance's committed rows) and this
    /// instance's (which holds its rows not yet committed), so a reload never lowers a count
    /// below what this instance knows was spent.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), crate::store::Error> {
        let (start, _) = crate::clock::month_bounds(crate::clock::unix_secs());
        let stored = totals(store, start.saturating_mul(1000)).await?;
        if let Ok(mut m) = self.month.lock() {
            m.roll_to(start);
            for ((scope, id), micros) in stored {
                let count = m.map(scope).entry(id).or_default();
                *count = (*count).max(micros);
            }
        }
        Ok(())
    }

    fn spent(&self, scope: SpendScope, id: &str) -> i64 {
        let (start, _) = crate::clock::month_bounds(crate::clock::unix_secs());
        self.month
            .lock()
            .ok()
            .filter(|m| m.start == start)
            .and_then(|mut m| m.map(scope).get(id).copied())
            .unwrap_or(0)
    }

    /// Asks the forwarding task to rebuild the shared counters for `month_ms`, unless a
    /// rebuild is already asked for.
    fn rebuild_shared(&self, month_ms: i64) {
        let Some(shared) = self.shared.get() else {
            return;
        };
        if shared.rebuilding.swap(true, Ordering::AcqRel) {
            return;
        }
        // A full queue drops this ask; the next admission asks again.
        if shared.changes.try_send(Msg::Rebuild(month_ms)).is_err() {
            shared.rebuilding.store(false, Ordering::Release);
        }
    }

    /// Refuses `key` when any cap that applies to it is used up. Reads the shared counters
    /// when there are caps and a shared limiter answers, the in-process counts otherwise.
    pub async fn check(&self, dir: &Directory, key: &ApiKey) -> Result<(), Error> {
        let mut caps: Vec<(String, i64, SpendScope, &str)> = Vec::new();
        if let Some(cap) = key.limits.budget_micros {
            caps.push((format!("key {}", key.prefix), cap, SpendScope::Key, &key.id));
        }
        if let Some(team_id) = &key.team
            && let Some(cap) = dir.teams.get(team_id).and_then(|t| t.budget_micros)
        {
            caps.push((format!("team {team_id}"), cap, SpendScope::Team, team_id));
        }
        if let Some((plan_id, plan)) = dir.plan_of(&key.account)
            && let Some(cap) = plan.credit_cap_micros
        {
            let label = format!("account {} (plan {plan_id})", key.account);
            caps.push((label, cap, SpendScope::Account, &key.account));
        }
        if caps.is_empty() {
            return Ok(());
        }
        let now = crate::clock::unix_secs();
        let shared = match self.shared.get() {
            Some(shared) => {
                let names: Vec<String> = caps.iter().map(|c| counter(c.2, c.3)).collect();
                let month = month_ms(now);
                match shared.limiter.spend_read(month, &names).await {
                    Ok(Some(values)) => Some(values),
                    Ok(None) => {
                        self.rebuild_shared(month);
                        None
                    }
                    // The breaker has opened; it logs the outage once.
                    Err(_) => None,
                }
            }
            None => None,
        };
        let over = caps
            .into_iter()
            .enumerate()
            .find_map(|(i, (label, cap, scope, id))| {
                let spent = match &shared {
                    Some(values) => values.get(i).copied().unwrap_or(0),
                    None => self.spent(scope, id),
                };
                (spent >= cap).then_some((label, cap, spent))
            });
        match over {
            None => Ok(()),
            Some((label, cap, spent)) => {
                let (_, reset) = crate::clock::month_bounds(now);
                Err(Error::new(
                    ErrorKind::QuotaExceeded,
                    format!(
                        "the monthly credit cap of {cap} micro-units for {label} is used up ({spent} spent); it resets at {}. Retrying before then will not succeed; ask your administrator to raise the cap",
                        crate::clock::rfc3339(reset)
                    ),
                )
                .with_code("insufficient_quota"))
            }
        }
    }
}

/// The month's totals from the store, with the credit held by unfinished tasks, which counts
/// as spent until they settle.
async fn totals(
    store: &dyn Store,
    month_ms: i64,
) -> Result<HashMap<(SpendScope, String), i64>, crate::store::Error> {
    let mut out: HashMap<(SpendScope, String), i64> = HashMap::new();
    for t in store.spend_totals(month_ms).await? {
        *out.entry((t.scope, t.id)).or_default() += t.cost_micros;
    }
    for r in store.task_reservations().await? {
        *out.entry((SpendScope::Key, r.key_id)).or_default() += r.micros;
        if let Some(team) = r.team {
            *out.entry((SpendScope::Team, team)).or_default() += r.micros;
        }
        *out.entry((SpendScope::Account, r.account)).or_default() += r.micros;
    }
    Ok(out)
}

/// The task that keeps the shared counters: settled changes go in one call per batch, summed
/// per counter, so a busy gateway makes one Redis call per batch, not per row. While Redis
/// cannot take them, changes wait summed per counter (memory bounded by the number of keys,
/// teams and accounts, not by traffic). Rebuilds run here too, so that no change is both in
/// a rebuild and added after it.
struct Forwarder {
    limiter: Arc<dyn Limiter>,
    store: Arc<dyn Store>,
    month: Arc<Mutex<Month>>,
    rebuilding: Arc<AtomicBool>,
    rx: mpsc::Receiver<Msg>,
    /// Month (Unix ms) → counter → change not yet in Redis.
    pending: HashMap<i64, HashMap<String, i64>>,
}

impl Forwarder {
    async fn run(mut self) {
        let mut buf = Vec::with_capacity(256);
        loop {
            if self.pending.is_empty() {
                if self.rx.recv_many(&mut buf, 256).await == 0 {
                    return;
                }
            } else {
                // Waiting to retry: take new changes as they come, or try again shortly.
                tokio::select! {
                    n = self.rx.recv_many(&mut buf, 256) => if n == 0 { return },
                    () = tokio::time::sleep(crate::policy::limits::breaker::PROBE_EVERY) => {}
                }
            }
            let mut rebuild = None;
            for msg in buf.drain(..) {
                match msg {
                    Msg::Change(c) => self.take(c),
                    Msg::Rebuild(month_ms) => rebuild = Some(month_ms),
                }
            }
            if let Some(month_ms) = rebuild {
                self.rebuild(month_ms).await;
            }
            self.send().await;
        }
    }

    fn take(&mut self, change: Change) {
        let month = self.pending.entry(change.month_ms).or_default();
        for name in change.scopes.into_iter().flatten() {
            *month.entry(name).or_default() += change.delta;
        }
    }

    /// Sends every pending change; what Redis does not take stays pending.
    async fn send(&mut self) {
        let months: Vec<i64> = self.pending.keys().copied().collect();
        for month_ms in months {
            let Some(deltas) = self.pending.get(&month_ms) else {
                continue;
            };
            let deltas: Vec<(String, i64)> = deltas
                .iter()
                .filter(|(_, d)| **d != 0)
                .map(|(n, d)| (n.clone(), *d))
                .collect();
            match self.limiter.spend_add(month_ms, &deltas).await {
                Ok(true) => {
                    self.pending.remove(&month_ms);
                }
                // Redis lost the counters: rebuild them from the store and this instance's
                // counts, which hold these changes; if another instance rebuilt first, they are
                // added on top (counted twice at worst, never lost).
                Ok(false) => self.rebuild(month_ms).await,
                Err(_) => {}
            }
        }
    }

    /// Builds the month's counters from the larger of the store's totals (every instance's
    /// committed rows) and this instance's counts (its rows, committed or not). The counts
    /// are taken under the lock every change is queued under, together with the queued
    /// changes, which they already hold and which are therefore not added again.
    async fn rebuild(&mut self, month_ms: i64) {
        let stored = totals(self.store.as_ref(), month_ms).await;
        let mut held: HashMap<String, i64> = HashMap::new();
        let mut counts: HashMap<String, i64> = HashMap::new();
        let month = self.month.clone();
        if let Ok(mut m) = month.lock() {
            while let Ok(msg) = self.rx.try_recv() {
                if let Msg::Change(c) = msg {
                    if c.month_ms == month_ms {
                        for name in c.scopes.into_iter().flatten() {
                            *held.entry(name).or_default() += c.delta;
                        }
                    } else {
                        self.take(c);
                    }
                }
            }
            if m.start.saturating_mul(1000) == month_ms {
                for scope in [SpendScope::Key, SpendScope::Team, SpendScope::Account] {
                    for (id, micros) in m.map(scope).iter() {
                        counts.insert(counter(scope, id), *micros);
                    }
                }
            }
        }
        for (name, micros) in self.pending.remove(&month_ms).unwrap_or_default() {
            *held.entry(name).or_default() += micros;
        }
        match stored {
            Ok(stored) => {
                for ((scope, id), micros) in stored {
                    let c = counts.entry(counter(scope, &id)).or_default();
                    *c = (*c).max(micros);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading spend totals for the shared counters failed; rebuilding from this instance's counts");
            }
        }
        let counts: Vec<(String, i64)> = counts.into_iter().collect();
        match self.limiter.spend_rebuild(month_ms, &counts).await {
            Ok(true) => {
                tracing::info!(counters = counts.len(), "rebuilt the shared spend counters");
            }
            // Another instance rebuilt first, without this instance's changes in flight: add
            // them (an overcount at worst, never an undercount).
            Ok(false) | Err(_) => {
                self.pending.entry(month_ms).or_default().extend(held);
            }
        }
        self.rebuilding.store(false, Ordering::Release);
    }
}
