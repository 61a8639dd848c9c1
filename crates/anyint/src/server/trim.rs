//! Giving the serving workers' free memory back to the system once they go quiet, and the
//! background runtime's after them.
//!
//! The binary allocates with mimalloc (v3, vendored by `libmimalloc-sys`). A page a thread
//! empties by its own frees goes back to mimalloc's arenas at once, unless it is the only
//! page of its size class: that one is kept, retired, for 16 rounds of the thread's
//! allocation slow path, one round every 1,000 slow-path allocations. A page emptied by other
//! threads' frees (a ledger row is freed on the meter's thread) waits for its owner to
//! collect, which the slow path does every 10,000 calls. The arenas return freed pages to the
//! system once a second has passed, at the next page free or collection. A worker that goes
//! quiet after a burst allocates nothing, so none of this ran: a minute after 1,000 slow
//! streams, 20.3 → 25.8 MB as built, 20.1 → 23.0 MB trimmed. `mi_collect` would do it
//! but takes `unsafe`, which the workspace forbids. Instead a worker whose requests have all
//! ended, with none begun or ended for a whole tick, takes the slow path itself, enough times
//! for the retired pages to expire and a collection to run: a block above mimalloc's
//! small-object limit (1 KiB) always takes it. It does so on two quiet ticks, the second
//! collection returning to the system what the first freed. About a millisecond each; a worker
//! that keeps beginning requests, or still carries a stream, never trims. Quiet used to mean
//! only that no request had begun, so a burst of streams longer than a tick spent both trims
//! while its streams were still open (measured with 20 s streams: 0.5–0.7 MB more left after
//! each burst, within what runs differ by). These counts are mimalloc's defaults; were they to
//! change, a trim would free less, never more than it should.
//!
//! The background runtime's threads (the meter's writer, the refreshes) are left holding pages
//! by a burst too, and a quiet one takes the slow path as seldom as a quiet worker. Worker
//! trims are counted; a background thread about to park trims when the count has moved since
//! its last look, and once more a tick later ([`on_background_park`]): a few times after a
//! burst, never under steady load or while the gateway stays idle.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Trims the serving workers have made: each one asks every background thread for one too.
static WORKER_TRIMS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// A background thread's trims ([`on_background_park`]).
    static BACKGROUND: Cell<BackgroundTrims> = const {
        Cell::new(BackgroundTrims {
            seen: 0,
            follow_up: None,
        })
    };
    /// Requests the worker on this thread has begun.
    static BEGUN: Cell<u64> = const { Cell::new(0) };
    /// Requests the worker on this thread has ended (their response bodies dropped).
    static ENDED: Cell<u64> = const { Cell::new(0) };
}

/// How often a worker looks whether it has gone quiet.
const TICK: Duration = Duration::from_secs(2);
/// Quiet ticks that trim, after activity: the second's collection returns to the system what
/// the first freed, past mimalloc's purge delay (one second).
const TRIMS: u8 = 2;
/// Slow-path allocations a trim makes: 17 rounds, so that a page retired before the trim has
/// expired by its end, and at least one collection whatever the counters stood at.
const SLOW_ALLOCATIONS: usize = 17_000;
/// A size that always takes mimalloc's slow path.
const SLOW_SIZE: usize = 2 * 1024;

/// Counts a request begun on this thread's worker.
pub(super) fn note_request() {
    BEGUN.with(|n| n.set(n.get() + 1));
}

/// Counts a request ended on this thread's worker. A connection's requests end on the worker
/// that serves it; an end counted elsewhere would only keep that worker from trimming.
pub(super) fn note_end() {
    ENDED.with(|n| n.set(n.get() + 1));
}

/// Requests begun and ended on this thread, as a tick reads them.
fn counts() -> Counts {
    Counts {
        begun: BEGUN.with(Cell::get),
        ended: ENDED.with(Cell::get),
    }
}

/// What a tick reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    begun: u64,
    ended: u64,
}

/// When to trim, from the request counts read at each tick.
#[derive(Debug)]
struct Quiet {
    seen: Counts,
    /// Quiet ticks trimmed since the last activity; [`TRIMS`] until there is some.
    trimmed: u8,
}

impl Quiet {
    fn new(now: Counts) -> Self {
        Self {
            seen: now,
            trimmed: TRIMS,
        }
    }

    /// Whether to trim at a tick that read `now`.
    fn tick(&mut self, now: Counts) -> bool {
        if now != self.seen {
            self.seen = now;
            self.trimmed = 0;
            return false;
        }
        // A stream still open holds what it holds; the trims wait for its end.
        if now.begun != now.ended || self.trimmed >= TRIMS {
            return false;
        }
        self.trimmed += 1;
        true
    }
}

/// Runs on a worker's runtime until `stopped`: trims the worker's heap on its quiet ticks.
pub(super) async fn keep_trimmed(mut stopped: watch::Receiver<bool>) {
    let mut quiet = Quiet::new(counts());
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        if quiet.tick(counts()) {
            trim();
            WORKER_TRIMS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs on a background runtime thread about to park: trims it when a serving worker has
/// trimmed since its last look, and once more a [`TICK`] later. One relaxed load when there
/// is nothing to do.
pub fn on_background_park() {
    let trims = WORKER_TRIMS.load(Ordering::Relaxed);
    if BACKGROUND.with(|cell| {
        let mut state = cell.get();
        let due = state.on_park(trims, std::time::Instant::now);
        cell.set(state);
        due
    }) {
        trim();
    }
}

/// A background thread's trims. The follow-up is what returns to the system the pages the
/// thread's last trim freed: the arenas purge only at a collection a second or more after a
/// free, and after the workers' last trim nothing else would make one.
#[derive(Clone, Copy, Debug, Default)]
struct BackgroundTrims {
    /// Of [`WORKER_TRIMS`], the count last trimmed for.
    seen: u64,
    /// When the follow-up trim is due, if one is.
    follow_up: Option<std::time::Instant>,
}

impl BackgroundTrims {
    /// Whether this park trims, `trims` being the worker trims counted so far; `now` is
    /// called only to set a follow-up or to see whether a pending one is due.
    fn on_park(&mut self, trims: u64, now: impl FnOnce() -> std::time::Instant) -> bool {
        if trims != self.seen {
            // Worker trims missed between two parks are made up by one.
            self.seen = trims;
            self.follow_up = Some(now() + TICK);
            return true;
        }
        match self.follow_up {
            Some(at) if now() >= at => {
                self.follow_up = None;
                true
            }
            _ => false,
        }
    }
}

/// Takes the allocator's slow path [`SLOW_ALLOCATIONS`] times on this thread.
fn trim() {
    for _ in 0..SLOW_ALLOCATIONS {
        // Kept opaque so that the allocation and its free are not optimised away.
        drop(std::hint::black_box(Vec::<u8>::with_capacity(SLOW_SIZE)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts with `n` begun and `open` of them still in flight.
    fn at(n: u64, open: u64) -> Counts {
        Counts {
            begun: n,
            ended: n - open,
        }
    }

    /// Ticks `q` through `steps`, each the counts read and whether that tick trims.
    fn ticks(q: &mut Quiet, steps: &[(Counts, bool)]) {
        for (k, &(now, trims)) in steps.iter().enumerate() {
            assert_eq!(q.tick(now), trims, "tick {k}: {now:?}");
        }
    }

    #[test]
    fn trims_on_the_first_quiet_ticks_after_activity_only() {
        let mut q = Quiet::new(at(5, 0));
        ticks(
            &mut q,
            &[
                // Nothing begun since start: nothing to give back.
                (at(5, 0), false),
                (at(5, 0), false),
                // Busy: never while requests keep coming.
                (at(9, 0), false),
                (at(40, 0), false),
                // Quiet: two trims, then none.
                (at(40, 0), true),
                (at(40, 0), true),
                (at(40, 0), false),
                (at(40, 0), false),
                // One request later, the next quiet ticks trim again.
                (at(41, 0), false),
                (at(41, 0), true),
                // Activity between the two trims starts over.
                (at(50, 0), false),
                (at(50, 0), true),
                (at(50, 0), true),
                (at(50, 0), false),
            ],
        );
    }

    #[test]
    fn a_background_thread_trims_when_the_worker_trims_moved_and_once_more_a_tick_later() {
        let t0 = std::time::Instant::now();
        let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
        let mut b = BackgroundTrims::default();
        // Parks before any worker trim: nothing to do, and no clock read.
        assert!(!b.on_park(0, || unreachable!()));
        // A worker trimmed: the next park trims; the follow-up waits a tick.
        assert!(b.on_park(1, || at(0.0)));
        assert!(!b.on_park(1, || at(0.5)));
        assert!(!b.on_park(1, || at(1.9)));
        assert!(b.on_park(1, || at(2.0)));
        // Then nothing until the workers trim again; no clock read meanwhile.
        assert!(!b.on_park(1, || unreachable!()));
        // Three worker trims between two parks: one trim makes up for them, and its own
        // follow-up replaces the pending one.
        assert!(b.on_park(2, || at(10.0)));
        assert!(b.on_park(5, || at(11.0)));
        assert!(!b.on_park(5, || at(12.5)));
        assert!(b.on_park(5, || at(13.0)));
        assert!(!b.on_park(5, || unreachable!()));
    }

    #[test]
    fn streams_still_open_keep_their_trims_for_their_end() {
        let mut q = Quiet::new(at(0, 0));
        ticks(
            &mut q,
            &[
                // A burst of 1,000 streams begins, then nothing begins or ends for a while.
                (at(1_000, 1_000), false),
                (at(1_000, 1_000), false),
                (at(1_000, 1_000), false),
                // Some end: activity.
                (at(1_000, 400), false),
                // A few stay open, quietly: still no trim.
                (at(1_000, 3), false),
                (at(1_000, 3), false),
                // The last end; the two quiet ticks after it trim.
                (at(1_000, 0), false),
                (at(1_000, 0), true),
                (at(1_000, 0), true),
                (at(1_000, 0), false),
            ],
        );
    }
}
