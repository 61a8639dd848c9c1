//! Giving a serving worker's free memory back to the system once the worker goes quiet.
//!
//! The binary allocates with mimalloc, which keeps each thread's emptied pages in that
//! thread's heap. It hands them back to its arenas only from the thread's own allocation slow
//! path (every 1,000 slow-path allocations it frees the pages retired longest, every 10,000 it
//! collects the whole heap), and the arenas return them to the system a second later, again
//! on an allocation or a free. A worker that goes quiet after a burst makes no allocation at
//! all, so the burst's pages stayed resident: measured a minute after 1,000 slow streams,
//! 5.6 MB of the 7–9 MB the gateway had grown were mimalloc's, with 1 MB of it live.
//! `mi_collect` would return them but takes `unsafe`, which the workspace forbids. Instead a
//! worker that has served requests and then none for a whole tick takes the slow path itself,
//! enough times for a full collection: a block above mimalloc's small-object limit (1 KiB)
//! always takes it. It does so on two quiet ticks, the second for the arenas to return what
//! the first handed them. About a millisecond each; a busy worker never trims.

use std::cell::Cell;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

thread_local! {
    /// Requests the worker on this thread has begun.
    static SERVED: Cell<u64> = const { Cell::new(0) };
}

/// How often a worker looks whether it has gone quiet.
const TICK: Duration = Duration::from_secs(2);
/// Quiet ticks that trim, after activity: the second returns what the first freed once past
/// mimalloc's purge delay (one second).
const TRIMS: u8 = 2;
/// Slow-path allocations a trim makes: a full collection whatever its counters stood at.
const SLOW_ALLOCATIONS: usize = 12_000;
/// A size that always takes mimalloc's slow path.
const SLOW_SIZE: usize = 2 * 1024;

/// Counts a request begun on this thread's worker.
pub(super) fn note_request() {
    SERVED.with(|n| n.set(n.get().wrapping_add(1)));
}

/// When to trim, from the request count read at each tick.
#[derive(Debug)]
struct Quiet {
    seen: u64,
    /// Quiet ticks trimmed since the last activity; [`TRIMS`] until there is some.
    trimmed: u8,
}

impl Quiet {
    fn new(served: u64) -> Self {
        Self {
            seen: served,
            trimmed: TRIMS,
        }
    }

    /// Whether to trim at a tick that read `served`.
    fn tick(&mut self, served: u64) -> bool {
        if served != self.seen {
            self.seen = served;
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
    let mut quiet = Quiet::new(SERVED.with(Cell::get));
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        if quiet.tick(SERVED.with(Cell::get)) {
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
        // Nothing served since start: nothing to give back.
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

    #[test]
    fn counts_requests_per_thread() {
        let before = SERVED.with(Cell::get);
        note_request();
        note_request();
        assert_eq!(SERVED.with(Cell::get), before + 2);
        let other = std::thread::spawn(|| {
            note_request();
            SERVED.with(Cell::get)
        })
        .join()
        .unwrap();
        assert_eq!(other, 1);
        assert_eq!(SERVED.with(Cell::get), before + 2);
    }
}
