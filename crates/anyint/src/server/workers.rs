//! Serving workers: `[server] workers` threads, each running its own single-threaded Tokio
//! runtime that accepts from the shared listening socket and serves its connections from the
//! first byte to the last, like nginx's worker processes.
//!
//! Why not one multi-threaded runtime: a request there hops threads (the client connection's
//! task, the handler, the upstream connection's task, work stealing), and every hop is a
//! wake-up through the kernel. On a worker, the client socket, the handler and the upstream
//! connection (from the worker's own pool, see `providers::http::bind_worker`) share one
//! thread, so a plain request costs no cross-thread wake-up. Every worker is woken for a new
//! connection; one that accepts while two or more connections ahead of the least busy hands
//! the socket over (`conn::Balance`), so a burst opened at once is spread over the cores.
//!
//! What is not per worker: the gateway's background tasks (the meter's writer, refreshers,
//! the task poller and outbox) run on the runtime that started it, and so do the store's and
//! Redis's connections opened at start; a request that uses Redis limits or the store talks
//! to them across threads. A connection the store's pool or Redis's client opens later, from
//! a worker, is driven by that worker's reactor for everyone, which is why a worker's runtime
//! stays up after its drain until the process exits. Tasks a request spawns (a task's
//! creation, a limiter's retry) run on its worker. Each worker also runs
//! `trim::keep_trimmed`, which returns its free memory once it goes quiet.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio_rustls::TlsAcceptor;

use super::conn;
use crate::error::Error;

/// The running workers.
pub(crate) struct Workers {
    stop: watch::Sender<bool>,
    drained: Vec<oneshot::Receiver<()>>,
}

/// What every worker serves with.
#[derive(Clone)]
pub(crate) struct Serving {
    pub(crate) app: super::dispatch::App,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) timeouts: conn::Timeouts,
    pub(crate) tls: Option<TlsAcceptor>,
    /// The workers' connection counts.
    pub(crate) balance: Arc<conn::Balance>,
}

impl Workers {
    /// Starts one worker per hand-off channel, accepting from `listener`; returns once every
    /// one is accepting.
    pub(crate) async fn start(
        listener: TcpListener,
        serving: Serving,
        handoffs: Vec<conn::Handoffs>,
    ) -> Result<Self, Error> {
        let listener = listener.into_std().map_err(Error::internal)?;
        let (stop, stopped) = watch::channel(false);
        let mut drained = Vec::with_capacity(handoffs.len());
        let mut started = Vec::with_capacity(handoffs.len());
        for (index, handed) in (1..).zip(handoffs) {
            // A duplicate descriptor of the same socket: each worker's runtime watches it.
            let listener = listener.try_clone().map_err(Error::internal)?;
            let (ready, is_ready) = oneshot::channel::<Result<(), String>>();
            let (done, is_done) = oneshot::channel();
            let worker = Worker {
                index,
                listener,
                serving: serving.clone(),
                handed,
                stopped: stopped.clone(),
                // The starting thread's log subscriber: the global one in the binary, a
                // test's own when it set one for its thread. (A scoped default makes enabled
                // log calls look the subscriber up per thread; calls below the level filter
                // never get that far.)
                logs: tracing::dispatcher::get_default(Clone::clone),
            };
            std::thread::Builder::new()
                .name(format!("anyint-worker-{index}"))
                .spawn(move || worker.run(ready, done))
                .map_err(|e| Error::internal(format!("starting serving worker {index}: {e}")))?;
            started.push(is_ready);
            drained.push(is_done);
        }
        for is_ready in started {
            match is_ready.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Error::internal(e)),
                Err(_) => return Err(Error::internal("a serving worker stopped while starting")),
            }
        }
        Ok(Self { stop, drained })
    }

    /// Stops accepting on every worker and waits up to `grace` for their in-flight requests
    /// and streams to end; `false` when some outlived it (they are left to the process's exit).
    pub(crate) async fn drain(self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        let all = futures_util::future::join_all(self.drained);
        tokio::time::timeout(grace, all).await.is_ok()
    }
}

/// One worker, before its thread starts.
struct Worker {
    index: usize,
    listener: std::net::TcpListener,
    serving: Serving,
    handed: conn::Handoffs,
    stopped: watch::Receiver<bool>,
    /// The log subscriber of the thread that started the gateway.
    logs: tracing::Dispatch,
}

impl Worker {
    /// The worker thread: serve until stopped, report drained, then keep the runtime up.
    fn run(self, ready: oneshot::Sender<Result<(), String>>, done: oneshot::Sender<()>) {
        let Self {
            index,
            listener,
            serving,
            handed,
            stopped,
            logs,
        } = self;
        let _logs = tracing::dispatcher::set_default(&logs);
        crate::providers::http::bind_worker(index);
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready.send(Err(format!(
                    "serving worker {index}: cannot start its runtime: {e}"
                )));
                return;
            }
        };
        runtime.block_on(async move {
            let listener = match TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready.send(Err(format!("serving worker {index}: {e}")));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            let listener = conn::CappedListener::new(
                listener,
                serving.slots,
                serving.timeouts,
                serving.tls,
                serving.balance,
                index - 1,
                handed,
            );
            tokio::spawn(super::trim::keep_trimmed(stopped.clone()));
            super::serve::run(listener, serving.app, stopped).await;
            let _ = done.send(());
            // The runtime stays up until the process exits: store and Redis connections this
            // worker opened are driven by its reactor, and the meter's last flush may use them.
            std::future::pending::<()>().await;
        });
    }
}
