//! The usage journal against real crashes: the `anyint` binary under concurrent load, killed
//! with SIGKILL (at a random moment and in the middle of a slow stream), restarted, and its
//! ledger compared with what the clients saw.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyint::store::{Store, UsageQuery, UsageRecord};
use serde_json::{Value, json};

use crate::binary::{anyint, emulator, listening};
use crate::harness::{UPSTREAM_KEY, fresh_pg_schema, sse_data};

/// Concurrent client connections.
const CONNECTIONS: usize = 32;

fn config(store_url: &str, emulator: &str, journal: &Path) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 5\n\n[store]\nurl = \"{store_url}\"\n\n\
         [meter]\njournal_dir = \"{}\"\n\n\
         [[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{emulator}/v1\"\napi_key = \"{UPSTREAM_KEY}\"\n\n\
         [[models]]\nid = \"gpt-4o-mini\"\nprice = {{ input = 1000000000, output = 2000000000 }}\n\
         routes = [{{ provider = \"emu\", upstream_model = \"gpt-4o-mini\" }}]\n",
        journal.display()
    )
}

/// A running `anyint serve` and its base URL.
struct Gateway {
    /// `None` once waited for.
    child: Option<Child>,
    base: String,
}

impl Gateway {
    async fn start(config: &Path) -> Self {
        let mut child = anyint()
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = listening(child.stdout.take().unwrap()).await;
        Self {
            child: Some(child),
            base,
        }
    }

    fn signal(&self, sig: &str) {
        assert!(
            Command::new("kill")
                .args([sig, &self.pid()])
                .status()
                .unwrap()
                .success()
        );
    }

    fn pid(&self) -> String {
        self.child.as_ref().unwrap().id().to_string()
    }

    async fn wait(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap()
    }
}

/// A failed test must not leave its gateway running.
impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// When a round's load kills the gateway.
#[derive(Clone, Copy)]
enum KillAt {
    /// Once this many responses have completed.
    Completed(usize),
    /// While a slow stream is in flight, once it has delivered a few events.
    MidStream,
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    /// Requests sent (answered or not).
    sent: usize,
    /// Request IDs whose response began (headers arrived).
    started: HashSet<String>,
    /// Completed responses: request ID → the upstream's (prompt, completion) tokens.
    completed: HashMap<String, (i64, i64)>,
    /// The slow stream cut by the mid-stream kill, and the events it delivered.
    cut: Option<(String, usize)>,
}

/// Words of a slow stream's answer; it is paced by the emulator's `chunk_delay_ms`.
const SLOW_WORDS: usize = 100;

/// The `i`-th request of a round: non-streaming, streaming, and now and then a slow stream.
fn body(i: usize) -> (Value, bool, bool) {
    let slow = i % 16 == 5;
    let stream = slow || i % 2 == 1;
    let text = if slow {
        format!(
            "Reply with exactly: {}[emulate: chunk_delay_ms=10]",
            "w ".repeat(SLOW_WORDS)
        )
    } else {
        format!("Reply with exactly: answer number {i}")
    };
    let mut b = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]});
    if stream {
        b["stream"] = json!(true);
        b["stream_options"] = json!({"include_usage": true});
    }
    (b, stream, slow)
}

fn tokens(usage: &Value) -> (i64, i64) {
    (
        usage["prompt_tokens"].as_i64().unwrap(),
        usage["completion_tokens"].as_i64().unwrap(),
    )
}

/// Sends `total` requests over [`CONNECTIONS`] connections and SIGKILLs the gateway at `kill`.
async fn load(gw: &Gateway, key: &str, total: usize, kill: KillAt) -> Seen {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let pid = gw.pid();
    let url = format!("{}/openai/v1/chat/completions", gw.base);
    let kill_now = {
        let killed = killed.clone();
        move || {
            if !killed.swap(true, Ordering::SeqCst) {
                assert!(
                    Command::new("kill")
                        .args(["-KILL", &pid])
                        .status()
                        .unwrap()
                        .success()
                );
            }
        }
    };
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (http, next, done, seen, url, key) = (
            http.clone(),
            next.clone(),
            done.clone(),
            seen.clone(),
            url.clone(),
            key.to_owned(),
        );
        let (kill_now, killed) = (kill_now.clone(), killed.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total || killed.load(Ordering::SeqCst) {
                    return;
                }
                let (b, stream, slow) = body(i);
                seen.lock().unwrap().sent += 1;
                let Ok(mut resp) = http.post(&url).bearer_auth(&key).json(&b).send().await else {
                    continue;
                };
                assert_eq!(resp.status(), 200);
                let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
                seen.lock().unwrap().started.insert(rid.clone());
                let mut received = Vec::new();
                let mut events = 0;
                let complete = loop {
                    match resp.chunk().await {
                        Ok(Some(c)) => {
                            events += c.windows(2).filter(|w| w == b"\n\n").count();
                            received.extend_from_slice(&c);
                            if slow
                                && events >= 6
                                && matches!(kill, KillAt::MidStream)
                                && done.load(Ordering::SeqCst) >= 500
                                && !killed.load(Ordering::SeqCst)
                            {
                                seen.lock().unwrap().cut = Some((rid.clone(), events));
                                kill_now();
                            }
                        }
                        Ok(None) => break true,
                        Err(_) => break false,
                    }
                };
                let text = String::from_utf8_lossy(&received);
                let usage = if !complete {
                    None
                } else if stream {
                    text.ends_with("data: [DONE]\n\n")
                        .then(|| {
                            sse_data(&text)
                                .iter()
                                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                                .find(|v| v["usage"].is_object())
                                .map(|v| tokens(&v["usage"]))
                        })
                        .flatten()
                } else {
                    serde_json::from_str::<Value>(&text)
                        .ok()
                        .map(|v| tokens(&v["usage"]))
                };
                if let Some(u) = usage {
                    seen.lock().unwrap().completed.insert(rid, u);
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    if let KillAt::Completed(at) = kill
                        && n >= at
                    {
                        kill_now();
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    assert!(
        killed.load(Ordering::SeqCst),
        "the round ended before its kill"
    );
    Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap()
}

async fn ledger(store: &dyn Store) -> HashMap<String, UsageRecord> {
    store
        .usage(&UsageQuery {
            limit: 1_000_000,
            ..UsageQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.request_id.clone(), r))
        .collect()
}

/// Checks the ledger after a restart against everything the clients saw so far.
async fn check(store: &dyn Store, seen: &[Seen]) {
    let rows = ledger(store).await;
    let sent: usize = seen.iter().map(|s| s.sent).sum();
    let completed: usize = seen.iter().map(|s| s.completed.len()).sum();
    assert!(
        rows.len() >= completed && rows.len() <= sent,
        "{} rows for {completed} completed responses of {sent} requests",
        rows.len()
    );
    eprintln!(
        "ledger after restart: {} rows, {completed} completed responses, {sent} requests sent",
        rows.len()
    );
    let (mut billed, mut reported) = ((0, 0), (0, 0));
    for s in seen {
        for rid in &s.started {
            assert!(
                rows.contains_key(rid),
                "a response began but has no row: {rid}"
            );
        }
        for (rid, &(prompt, completion)) in &s.completed {
            let row = &rows[rid];
            assert_eq!(
                (
                    row.prompt_tokens,
                    row.completion_tokens,
                    row.outcome.as_str()
                ),
                (prompt, completion, "ok"),
                "{rid}"
            );
            billed = (
                billed.0 + row.prompt_tokens,
                billed.1 + row.completion_tokens,
            );
            reported = (reported.0 + prompt, reported.1 + completion);
        }
    }
    assert_eq!(billed, reported);
}

/// Two kills under load (one at a random moment, one in the middle of a slow stream), each
/// followed by a restart that replays the journal; then a clean stop.
async fn survives_kill_nine(store_url: String) {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator().await;
    let journal: PathBuf = dir.path().join("journal");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config(&store_url, &emulator, &journal)).unwrap();
    let store = anyint::store::open(&store_url).await.unwrap();
    let (_, key) = anyint::auth::issue_key(
        store.as_ref(),
        "crash",
        "acct",
        None,
        anyint::store::KeyLimits::default(),
    )
    .await
    .unwrap();

    let mut seen = Vec::new();
    let gw = Gateway::start(&path).await;
    seen.push(load(&gw, &key, 1500, KillAt::Completed(700)).await);
    assert!(!gw.wait().await.success());
    let gw = Gateway::start(&path).await;
    check(store.as_ref(), &seen).await;

    seen.push(load(&gw, &key, 1500, KillAt::MidStream).await);
    assert!(!gw.wait().await.success());
    let gw = Gateway::start(&path).await;
    check(store.as_ref(), &seen).await;
    let (cut, delivered) = seen[1].cut.clone().unwrap();
    let row = &ledger(store.as_ref()).await[&cut];
    // The client reads behind the gateway: on a loaded machine the gateway may have finished
    // the stream before the kill landed. Either way the row is consistent.
    let whole = i64::try_from(SLOW_WORDS).unwrap();
    assert!(
        row.outcome == "interrupted" || (row.outcome == "ok" && row.completion_tokens == whole),
        "{row:?}"
    );
    // Billed for what was delivered up to its last progress record (how far that got depends
    // on timing, so only the bound is checked): never more than the whole answer.
    assert!(
        row.completion_tokens <= whole,
        "{row:?} after {delivered} events"
    );
    assert!(row.cost_micros > 0, "{row:?}");

    // A clean stop writes everything and leaves no journal behind.
    gw.signal("-TERM");
    assert!(gw.wait().await.success());
    check(store.as_ref(), &seen).await;
    let left: Vec<_> = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_nine_under_load_loses_no_usage_row() {
    let dir = tempfile::tempdir().unwrap();
    survives_kill_nine(format!("sqlite://{}/gw.db", dir.path().display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_kill_nine_under_load_loses_no_usage_row() {
    survives_kill_nine(fresh_pg_schema().await).await;
}

#[test]
fn unwritable_journal_dir_refuses_to_start_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // A directory under a regular file cannot be created, even by root.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let journal = file.join("journal");
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        config(
            &format!("sqlite://{}/gw.db", dir.path().display()),
            "http://127.0.0.1:1",
            &journal,
        ),
    )
    .unwrap();
    let out = anyint()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&journal.display().to_string()) && err.contains("journal"),
        "{err}"
    );
}
