//! One worker's accept loop, and each connection served by hyper from its first byte to its
//! close or the worker's drain.
//!
//! Why not `axum::serve`: it tells HTTP/1 from HTTP/2 (prior knowledge) by reading a
//! connection's first 24 bytes itself and putting them back in front of the socket. hyper's
//! first read of the request then gets only those 24 bytes, and its next read grows the
//! connection's 8 KB read buffer to 16 KB, copying it: heaptrack measured 16 KB of the about
//! 60 KB a slow stream held. Here a connection's protocol is known before hyper starts (a plain
//! connection's first bytes are peeked and left in the socket, a TLS one's comes from ALPN:
//! [`TimedIo::protocol`]), so hyper's first read takes the request head whole into a buffer
//! of 8 KB that stays that size. A connection that does not tell (part of the HTTP/2 preface
//! and then silence) is served as before, with hyper-util's sniffing.
//!
//! An HTTP/1 connection is served by hyper's own HTTP/1 connection, not hyper-util's: the
//! latter is an enum sized for HTTP/2 (1,544 bytes against 664), held inline in every
//! connection's task for as long as the connection lives, slow streams included. The other
//! two kinds are boxed, so that the task is sized for the HTTP/1 one.

use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use foldhash::HashMap;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::sync::watch;

use super::conn::{CappedListener, Peer, TimedIo};
use super::dispatch::{App, ConnService};
use super::tls::Protocol;

/// hyper's connection settings, for each way a connection is served.
struct Builders {
    http1: http1::Builder,
    http2: auto::Builder<TokioExecutor>,
    sniffing: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new() -> Self {
        let sniffing = || auto::Builder::new(TokioExecutor::new());
        Self {
            http1: http1::Builder::new(),
            http2: sniffing().http2_only(),
            sniffing: sniffing(),
        }
    }
}

/// A connection the drain can ask to close once its requests end.
trait Graceful: Future {
    fn close_gracefully(self: Pin<&mut Self>);
}

impl Graceful for http1::Connection<TokioIo<TimedIo>, ConnService> {
    fn close_gracefully(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl Graceful for auto::Connection<'_, TokioIo<TimedIo>, ConnService, TokioExecutor> {
    fn close_gracefully(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// A worker's drain as its connections see it: a flag read on each poll (one atomic load;
/// a `watch` channel's wait, polled beside every connection's, cost about 500 instructions a
/// request), and each connection's waker, registered once, woken when the flag is set.
#[derive(Default)]
struct Drain {
    stopping: AtomicBool,
    wakers: Mutex<HashMap<u64, Waker>>,
    next: AtomicU64,
}

impl Drain {
    /// Sets the flag, then wakes every connection registered so far; one registering later
    /// reads the flag after its registration, so none misses it.
    fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        if let Ok(wakers) = self.wakers.lock() {
            wakers.values().for_each(Waker::wake_by_ref);
        }
    }

    fn register(&self, waker: Waker) -> Registered<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut wakers) = self.wakers.lock() {
            wakers.insert(id, waker);
        }
        Registered(self, id)
    }
}

/// A connection's waker in the drain, until the connection ends.
struct Registered<'a>(&'a Drain, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Ok(mut wakers) = self.0.wakers.lock() {
            wakers.remove(&self.1);
            // After a burst of connections, the room they grew the table to goes back, all of
            // it once the last has closed: a table of a few KiB allocated mid-burst and kept
            // would pin the allocator's page it sits on, with the rest of the burst's memory.
            if wakers.is_empty() || (wakers.capacity() > 64 && wakers.len() < wakers.capacity() / 4)
            {
                let keep = 2 * wakers.len();
                wakers.shrink_to(keep);
            }
        }
    }
}

/// Accepts from `listener` and serves each connection with `app` until `stopped` turns true;
/// then stops accepting, asks every connection to close once its requests end (HTTP/1: after
/// the response in flight; HTTP/2: a GOAWAY), and returns when all have closed.
pub(crate) async fn run(
    mut listener: CappedListener,
    app: App,
    mut stopped: watch::Receiver<bool>,
) {
    let builders = Arc::new(Builders::new());
    let drain = Arc::new(Drain::default());
    // Every connection's task holds a receiver; the sender sees them all gone.
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let service = app.conn(Peer::of(&io, addr));
        let (builders, drain, open) = (builders.clone(), drain.clone(), open_rx.clone());
        tokio::spawn(async move {
            serve_conn(io, service, &builders, &drain).await;
            drop(open);
        });
    }
    drain.stop();
    drop(open_rx);
    drop(listener);
    open_tx.closed().await;
}

/// Serves one connection to its end; the drain asks it to close gracefully.
async fn serve_conn(mut io: TimedIo, service: ConnService, builders: &Builders, drain: &Drain) {
    let protocol = io.protocol().await;
    let io = TokioIo::new(io);
    match protocol {
        Some(Protocol::Http1) => {
            let conn = pin!(builders.http1.serve_connection(io, service));
            ended(drive(conn, drain).await);
        }
        Some(Protocol::Http2) | None => {
            let builder = match protocol {
                Some(_) => &builders.http2,
                None => &builders.sniffing,
            };
            let mut conn = Box::pin(builder.serve_connection(io, service));
            ended(drive(conn.as_mut(), drain).await);
        }
    }
}

/// Logs how a connection ended, if with an error.
fn ended<E: std::fmt::Display>(result: Result<(), E>) {
    if let Err(e) = result {
        tracing::trace!(error = %e, "connection ended with an error");
    }
}

/// Polls `conn` to its end, asking it to close once the drain begins.
async fn drive<C: Graceful>(mut conn: Pin<&mut C>, drain: &Drain) -> C::Output {
    let mut registered = None;
    let mut closing = false;
    std::future::poll_fn(|cx| {
        if registered.is_none() {
            registered = Some(drain.register(cx.waker().clone()));
        }
        if !closing && drain.stopping.load(Ordering::Acquire) {
            closing = true;
            conn.as_mut().close_gracefully();
        }
        conn.as_mut().poll(cx)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drain_gives_back_a_bursts_room_and_keeps_the_rest() {
        let drain = Drain::default();
        // (entries, capacity) of the drain's table.
        let sizes = || {
            drain
                .wakers
                .lock()
                .map_or((usize::MAX, usize::MAX), |w| (w.len(), w.capacity()))
        };
        let burst: Vec<_> = (0..5000)
            .map(|_| drain.register(Waker::noop().clone()))
            .collect();
        let (_, grown) = sizes();
        assert!(grown >= 5000, "{grown}");
        let mut burst = burst.into_iter();
        let kept: Vec<_> = burst.by_ref().take(10).collect();
        drop(burst);
        let (len, capacity) = sizes();
        assert_eq!(len, 10);
        assert!(capacity <= 64, "{capacity}");
        drain.stop();
        assert!(drain.stopping.load(Ordering::Acquire));
        drop(kept);
        assert_eq!(sizes(), (0, 0), "the last close frees the table");
    }
}
