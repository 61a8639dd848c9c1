//! Callback delivery: one worker per task POSTs the queued bodies to the
//! task's callback URL in order, each once (a failure is counted, never
//! retried), and records the outcome on the task. Builds no bodies.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::state::State;

/// How long one callback POST may take.
pub(super) const TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the worker for task `id`; bodies sent to the returned queue are
/// POSTed to `url`. The worker ends when the queue's sender is dropped.
pub(super) fn spawn(state: Arc<State>, id: String, url: String) -> UnboundedSender<Value> {
    let (tx, rx) = unbounded_channel();
    tokio::spawn(deliver(state, id, url, rx));
    tx
}

async fn deliver(state: Arc<State>, id: String, url: String, mut rx: UnboundedReceiver<Value>) {
    while let Some(body) = rx.recv().await {
        let delivered = post(state.tasks.client(), &url, &body).await;
        state.tasks.with(&id, |t| {
            t.callbacks_sent += 1;
            if !delivered {
                t.callbacks_failed += 1;
            }
        });
    }
}

/// True when the receiver answered 2xx.
async fn post(client: Option<reqwest::Client>, url: &str, body: &Value) -> bool {
    let Some(client) = client else {
        return false;
    };
    client
        .post(url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(body.to_string())
        .send()
        .await
        .is_ok_and(|resp| resp.status().is_success())
}
