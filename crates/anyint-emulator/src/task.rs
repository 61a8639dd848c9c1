//! Async tasks shared by the DashScope and music families: the in-memory
//! registry, the family-neutral state machine a [`TaskScript`] drives, the
//! status-GET accounting (`fetches`, concurrent fetches, with a drop guard)
//! and the stage timer of `stage_ms` tasks. Wire shapes (status names,
//! bodies, callback payloads) belong to the families, which hand theirs in
//! as a [`Dialect`] when they create a task, so this module imports no
//! family (nor `state`, which holds the [`Tasks`]); callback delivery
//! belongs to [`callback`]. State changes only when a status GET or the
//! stage timer advances a task, so a test controls exactly when a task
//! finishes.

mod callback;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::fault::TaskScript;
use crate::util::{fnv64, now_millis};

/// Distinguishes emulator instances in one process, so task ids never
/// collide between two emulators behind one gateway.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// What a task produces; decides its family and its wire shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// DashScope video synthesis (both video endpoints).
    Video,
    /// DashScope image synthesis.
    Image,
    /// A "Suno-style" music generation.
    Music,
}

impl Kind {
    /// The `family` shown by `/_emulator/tasks/{id}`.
    fn family(self) -> &'static str {
        match self {
            Self::Video | Self::Image => "dashscope",
            Self::Music => "music",
        }
    }
}

/// How a family words its tasks; handed over with every task it creates.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dialect {
    /// The family's name for a task's current state.
    pub(crate) status: fn(&Task) -> &'static str,
    /// The callback body for a task entering a phase, if that stage sends
    /// one.
    pub(crate) callback: fn(&Task, Phase) -> Option<Value>,
}

/// Where a task stands, in no family's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Created, never advanced.
    Pending,
    /// Advanced this many times (≥ 1) without reaching the final state.
    Working(u32),
    Succeeded,
    Failed,
    Canceled,
}

impl Phase {
    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

/// One task and its accounting.
#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) id: String,
    pub(crate) kind: Kind,
    dialect: Dialect,
    pub(crate) script: TaskScript,
    /// The create request body, as received.
    pub(crate) request: Value,
    /// Unix ms of creation, of the first advance and of the final state.
    pub(crate) submitted_ms: u64,
    pub(crate) scheduled_ms: Option<u64>,
    pub(crate) ended_ms: Option<u64>,
    steps: u32,
    canceled: bool,
    fetches: u64,
    in_flight: u64,
    max_in_flight: u64,
    callbacks_sent: u64,
    callbacks_failed: u64,
    /// Queue of callback bodies for this task's delivery worker; dropped
    /// once no further callback can happen, which ends the worker.
    callbacks: Option<UnboundedSender<Value>>,
}

impl Task {
    pub(crate) fn new(
        id: String,
        kind: Kind,
        dialect: Dialect,
        script: TaskScript,
        request: Value,
    ) -> Self {
        Self {
            id,
            kind,
            dialect,
            script,
            request,
            submitted_ms: now_millis(),
            scheduled_ms: None,
            ended_ms: None,
            steps: 0,
            canceled: false,
            fetches: 0,
            in_flight: 0,
            max_in_flight: 0,
            callbacks_sent: 0,
            callbacks_failed: 0,
            callbacks: None,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        if self.canceled {
            Phase::Canceled
        } else if self.steps == 0 {
            Phase::Pending
        } else if !self.script.never && self.steps >= self.script.polls() {
            if self.script.fail.is_some() {
                Phase::Failed
            } else {
                Phase::Succeeded
            }
        } else {
            Phase::Working(self.steps)
        }
    }

    /// True when the task can no longer change on its own: final, or a
    /// `never` task that has started working.
    fn settled(&self) -> bool {
        self.phase().is_terminal() || (self.script.never && self.steps >= 1)
    }

    /// Moves one step on, stamping the times and queueing the family's
    /// callback for the new phase. No-op once settled.
    fn step(&mut self, now_ms: u64) {
        if self.settled() {
            return;
        }
        self.steps += 1;
        self.scheduled_ms.get_or_insert(now_ms);
        let phase = self.phase();
        if phase.is_terminal() {
            self.ended_ms = Some(now_ms);
        }
        self.notify(phase);
    }

    /// Cancels a task still pending; false (and no change) otherwise.
    pub(crate) fn cancel(&mut self) -> bool {
        if self.phase() != Phase::Pending {
            return false;
        }
        self.canceled = true;
        self.ended_ms = Some(now_millis());
        self.callbacks = None;
        true
    }

    /// The family's name for the current state.
    pub(crate) fn status(&self) -> &'static str {
        (self.dialect.status)(self)
    }

    fn notify(&mut self, phase: Phase) {
        if let Some(tx) = &self.callbacks {
            if let Some(body) = (self.dialect.callback)(self, phase) {
                let copies = if self.script.dup_callbacks { 2 } else { 1 };
                for _ in 0..copies {
                    // A closed queue means the worker is gone; nothing to do.
                    let _ = tx.send(body.clone());
                }
            }
        }
        if self.settled() {
            self.callbacks = None;
        }
    }

    fn info(&self) -> Value {
        json!({
            "task_id": self.id,
            "family": self.kind.family(),
            "status": self.status(),
            "fetches": self.fetches,
            "max_concurrent_fetches": self.max_in_flight,
            "callbacks_sent": self.callbacks_sent,
            "callbacks_failed": self.callbacks_failed,
        })
    }
}

/// All tasks of one emulator instance.
#[derive(Debug)]
pub(crate) struct Tasks {
    map: Mutex<HashMap<String, Task>>,
    ids: AtomicU64,
    seed: u64,
    /// Client for callbacks, shared by this instance's delivery workers.
    client: Arc<callback::Client>,
}

/// Locks ignoring poison: tasks stay usable after a panicking handler.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tasks {
    pub(crate) fn new() -> Self {
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self {
            map: Mutex::default(),
            ids: AtomicU64::new(0),
            seed: fnv64(&[&instance.to_le_bytes(), &clock.to_le_bytes()]),
            client: Arc::default(),
        }
    }

    /// Fresh seed bytes for an id (task or request), unique per instance
    /// and call.
    pub(crate) fn fresh_seed(&self) -> [u8; 16] {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut out = [0; 16];
        let (a, b) = out.split_at_mut(8);
        a.copy_from_slice(&self.seed.to_le_bytes());
        b.copy_from_slice(&n.to_le_bytes());
        out
    }

    /// Runs `f` on the task `id`, if known.
    pub(crate) fn with<R>(&self, id: &str, f: impl FnOnce(&mut Task) -> R) -> Option<R> {
        lock(&self.map).get_mut(id).map(f)
    }

    /// `/_emulator/tasks/{id}` body, if known.
    pub(crate) fn info(&self, id: &str) -> Option<Value> {
        self.with(id, |t| t.info())
    }

    /// `/_emulator/tasks` body.
    pub(crate) fn summary(&self) -> Value {
        let map = lock(&self.map);
        let fetches: u64 = map.values().map(|t| t.fetches).sum();
        let max = map.values().map(|t| t.max_in_flight).max().unwrap_or(0);
        let overlapping = map.values().filter(|t| t.max_in_flight >= 2).count();
        json!({
            "tasks": map.len(),
            "fetches": fetches,
            "max_concurrent_fetches": max,
            "overlapping_tasks": overlapping,
        })
    }

    /// Forgets every task. Stage timers and callback workers of forgotten
    /// tasks stop on their own.
    pub(crate) fn clear(&self) {
        lock(&self.map).clear();
    }

    /// Starts counting one status GET of `id` if its kind is accepted;
    /// the guard ends it. Also returns the task's `fetch_delay_ms`.
    fn begin_fetch(
        &self,
        id: &str,
        accept: fn(Kind) -> bool,
    ) -> Option<(FetchGuard<'_>, Option<u64>)> {
        self.with(id, |t| {
            if !accept(t.kind) {
                return None;
            }
            t.fetches += 1;
            t.in_flight += 1;
            t.max_in_flight = t.max_in_flight.max(t.in_flight);
            Some(t.script.fetch_delay_ms)
        })
        .flatten()
        .map(|delay| {
            let guard = FetchGuard {
                tasks: self,
                id: id.to_owned(),
            };
            (guard, delay)
        })
    }
}

/// Ends one counted status GET when dropped, however the handler exits.
struct FetchGuard<'a> {
    tasks: &'a Tasks,
    id: String,
}

impl Drop for FetchGuard<'_> {
    fn drop(&mut self) {
        self.tasks.with(&self.id, |t| {
            t.in_flight = t.in_flight.saturating_sub(1);
        });
    }
}

/// Registers a new task. With a callback URL (and no `no_callbacks`) a
/// delivery worker starts; with `stage_ms` the stage timer starts.
pub(crate) fn create(tasks: &Arc<Tasks>, mut task: Task, callback_url: Option<String>) {
    if let Some(url) = callback_url.filter(|_| !task.script.no_callbacks) {
        let (ledger, id) = (Arc::clone(tasks), task.id.clone());
        let record = move |delivered: bool| {
            ledger.with(&id, |t| {
                t.callbacks_sent += 1;
                if !delivered {
                    t.callbacks_failed += 1;
                }
            });
        };
        task.callbacks = Some(callback::spawn(Arc::clone(&tasks.client), url, record));
    }
    let timer = task.script.stage_ms;
    let id = task.id.clone();
    lock(&tasks.map).insert(id.clone(), task);
    if let Some(ms) = timer {
        tokio::spawn(run_stages(Arc::clone(tasks), id, Duration::from_millis(ms)));
    }
}

/// One status GET: counts it, waits `fetch_delay_ms`, advances the task
/// unless it is time-driven, and renders it. `None` for an unknown id or a
/// kind the caller's family does not `accept`.
pub(crate) async fn poll<R>(
    tasks: &Tasks,
    id: &str,
    accept: fn(Kind) -> bool,
    render: impl FnOnce(&Task) -> R,
) -> Option<R> {
    let (guard, delay) = tasks.begin_fetch(id, accept)?;
    if let Some(ms) = delay.filter(|&ms| ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let out = tasks.with(id, |t| {
        if t.script.stage_ms.is_none() {
            t.step(now_millis());
        }
        render(t)
    });
    drop(guard);
    out
}

/// The stage timer: advances `id` every `every` after creation until it
/// settles or is forgotten.
async fn run_stages(tasks: Arc<Tasks>, id: String, every: Duration) {
    let start = tokio::time::Instant::now();
    let mut n: u32 = 0;
    loop {
        n = n.saturating_add(1);
        tokio::time::sleep_until(start + every.saturating_mul(n)).await;
        let settled = tasks.with(&id, |t| {
            t.step(now_millis());
            t.settled()
        });
        if settled != Some(false) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault;

    /// A dialect for tasks no family renders.
    const PLAIN: Dialect = Dialect {
        status: |_| "STATUS",
        callback: |_, _| None,
    };

    fn task(spec: &str) -> Task {
        let script = fault::parse(spec).unwrap().task;
        Task::new("t".to_owned(), Kind::Video, PLAIN, script, Value::Null)
    }

    fn walk(spec: &str, steps: usize) -> Vec<Phase> {
        let mut t = task(spec);
        (0..steps)
            .map(|i| {
                t.step(1000 + i as u64);
                t.phase()
            })
            .collect()
    }

    #[test]
    fn polls_decide_the_final_step() {
        use Phase::{Failed, Succeeded, Working};
        assert_eq!(task("").phase(), Phase::Pending);
        assert_eq!(walk("", 3), [Working(1), Succeeded, Succeeded]);
        assert_eq!(walk("polls=1", 2), [Succeeded, Succeeded]);
        assert_eq!(walk("polls=3", 3), [Working(1), Working(2), Succeeded]);
        assert_eq!(walk("fail=X", 2), [Working(1), Failed]);
        assert_eq!(walk("never polls=1", 3), [Working(1); 3]);
    }

    #[test]
    fn times_are_stamped_once() {
        let mut t = task("polls=2");
        t.step(5);
        t.step(9);
        t.step(11);
        assert_eq!(
            (t.submitted_ms > 0, t.scheduled_ms, t.ended_ms),
            (true, Some(5), Some(9))
        );
    }

    #[test]
    fn only_pending_tasks_cancel() {
        let mut t = task("");
        assert!(t.cancel());
        assert_eq!(t.phase(), Phase::Canceled);
        t.step(1);
        assert_eq!(t.phase(), Phase::Canceled);
        let mut running = task("");
        running.step(1);
        assert!(!running.cancel());
    }

    #[test]
    fn fetch_guard_counts_overlap() {
        let tasks = Tasks::new();
        lock(&tasks.map).insert("t".to_owned(), task("fetch_delay_ms=7"));
        let any = |_| true;
        let (a, delay) = tasks.begin_fetch("t", any).unwrap();
        assert_eq!(delay, Some(7));
        let (b, _) = tasks.begin_fetch("t", any).unwrap();
        drop((a, b));
        let (c, _) = tasks.begin_fetch("t", any).unwrap();
        drop(c);
        assert!(tasks.begin_fetch("nope", any).is_none());
        assert!(tasks.begin_fetch("t", |k| k == Kind::Music).is_none());
        let info = tasks.info("t").unwrap();
        assert_eq!(
            (
                info["fetches"].as_u64(),
                info["max_concurrent_fetches"].as_u64()
            ),
            (Some(3), Some(2))
        );
        assert_eq!(tasks.summary()["overlapping_tasks"], 1);
        tasks.clear();
        assert_eq!(tasks.summary()["tasks"], 0);
    }

    #[test]
    fn ids_are_fresh() {
        let (a, b) = (Tasks::new(), Tasks::new());
        assert_ne!(a.fresh_seed(), a.fresh_seed());
        assert_ne!(a.fresh_seed()[..8], b.fresh_seed()[..8]);
    }
}
