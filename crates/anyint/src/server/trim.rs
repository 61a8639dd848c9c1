//! Giving a serving worker's free memory back to the system once the worker goes quiet.
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
//! but takes `unsafe`, which the workspace forbids. Instead a worker that has begun requests
//! and then none for a whole tick takes the slow path itself, enough times for the retired
//! pages to expire and a collection to run: a block above mimalloc's small-object limit
//! (1 KiB) always takes it. It does so on two quiet ticks, the second collection returning to
//! the system what the first freed. About a millisecond each; a worker that keeps beginning
//! requests never trims (one that only carries long streams may, which frees only empty
//! pages). These counts are mimalloc's defaults; were they to change, a trim would free less,
//! never more than it should.

use std::cell::Cell;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

thread_local! {
    /// Requests the worker on this thread has begun.
    static BEGUN: Cell<u64> = const { Cell::new(0) };
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

/// When to trim, from the request count read at each tick.
#[derive(Debug)]
struct Quiet {
    seen: u64,
    /// Quiet ticks trimmed since the last activity; [`TRIMS`] until there is some.
    trimmed: u8,
}

impl Quiet {
    fn new(begun: u64) -> Self {
        Self {
            seen: begun,
            trimmed: TRIMS,
        }
    }

    /// Whether to trim at a tick that read `begun`.
    fn tick(&mut self, begun: u64) -> bool {
        if begun != self.seen {
            self.seen = begun;
            self.trimmed = 0;
            return false;
        }
        if self.trimmed >= TRIMS {
            return false;
        }
        self.trimmed += 1;
        true
    }
}

/// Runs on a worker's runtime until `stopped`: trims the worker's heap on its quiet ticks.
pub(super) async fn keep_trimmed(mut stopped: watch::Receiver<bool>) {
    let mut quiet = Quiet::new(BEGUN.with(Cell::get));
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        if quiet.tick(BEGUN.with(Cell::get)) {
            trim();
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

    #[test]
    fn trims_on_the_first_quiet_ticks_after_activity_only() {
        let mut q = Quiet::new(5);
        // Nothing begun since start: nothing to give back.
        assert!(!q.tick(5));
        assert!(!q.tick(5));
        // Busy: never while requests keep coming.
        assert!(!q.tick(9));
        assert!(!q.tick(40));
        // Quiet: two trims, then none.
        assert!(q.tick(40));
        assert!(q.tick(40));
        assert!(!q.tick(40));
        assert!(!q.tick(40));
        // One request later, the next quiet ticks trim again.
        assert!(!q.tick(41));
        assert!(q.tick(41));
        // Activity between the two trims starts over.
        assert!(!q.tick(50));
        assert!(q.tick(50));
        assert!(q.tick(50));
        assert!(!q.tick(50));
    }
}
