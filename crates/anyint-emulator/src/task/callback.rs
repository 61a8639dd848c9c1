//! Callback delivery: one worker per task POSTs the queued bodies to the
//! task's callback URL in order, each once (a failure is reported, never
//! retried), and hands every outcome to the caller, which records it on
//! the task. Builds no bodies and knows no task: imports nothing of this
//! crate.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// How long one callback POST may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client callbacks go out with, built on first use (`None` if
/// that failed).
#[derive(Debug, Default)]
pub(super) struct Client(OnceLock<Option<reqwest::Client>>);

impl Client {
    fn get(&self) -> Option<reqwest::Client> {
        self.0
            .get_or_init(|| reqwest::Client::builder().timeout(TIMEOUT).build().ok())
            .clone()
    }
}

/// Starts a delivery worker; bodies sent to the returned queue are POSTed
/// to `url` with `client`, and `outcome` hears of each (true when the
/// receiver answered 2xx). The worker ends when the queue's sender is
/// dropped.
pub(super) fn spawn(
    client: Arc<Client>,
    url: String,
    outcome: impl Fn(bool) + Send + 'static,
) -> UnboundedSender<Value> {
    let (tx, rx) = unbounded_channel();
    tokio::spawn(deliver(client, url, rx, outcome));
    tx
}

async fn deliver(
    client: Arc<Client>,
    url: String,
    mut rx: UnboundedReceiver<Value>,
    outcome: impl Fn(bool),
) {
    while let Some(body) = rx.recv().await {
        let delivered = post(client.get(), &url, &body).await;
        outcome(delivered);
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
