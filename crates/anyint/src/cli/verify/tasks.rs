//! The async checks: a video task polled to a final status, and a callback delivered to a
//! local receiver, signed, and redelivered with the same event ID after a failure.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Ctx, Found, failure, send};

const VIDEO: &str = "/dashscope/v1/services/aigc/video-generation/video-synthesis";
const FINAL: &[&str] = &["SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"];

/// Creates a video task; its ID, or the failure.
async fn create_video(ctx: &Ctx, model: &str, callback: Option<&str>) -> Result<String, Found> {
    let body = json!({"model": model, "input": {"prompt": "anyint verify: a short test clip"},
                      "parameters": {"duration": 5}});
    let mut req = ctx
        .bearer(ctx.post_json(VIDEO, &body))
        .header("X-DashScope-Async", "enable");
    if let Some(url) = callback {
        req = req.header("X-AnyInt-Callback-Url", url);
    }
    let a = send(req).await?;
    if a.status != 200 {
        return Err(failure(&format!("POST {VIDEO}"), &a, Some(model)));
    }
    a.json
        .pointer("/output/task_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            Found::fail(
                "the create answer has no output.task_id",
                "the DashScope route must answer 200 with output.task_id and output.task_status",
            )
        })
}

/// 7. A video task created once, its ID kept, and polled with backoff to a final status.
pub(super) async fn task(ctx: &Ctx) -> Found {
    let model = ctx.video_model();
    if let Some(skip) = ctx.unavailable(model.as_deref(), "--video-model") {
        return skip;
    }
    let model = model.unwrap_or_default();
    let id = match create_video(ctx, &model, None).await {
        Ok(id) => id,
        Err(f) => return f,
    };
    let started = Instant::now();
    let deadline = Duration::from_secs(ctx.args.timeout);
    let mut wait = Duration::from_millis(500);
    let mut polls = 0;
    let mut status = String::from("PENDING");
    loop {
        if started.elapsed() >= deadline {
            clear_progress(ctx);
            return Found::fail(
                format!(
                    "task {id} is still {status} after {} s (--timeout); it was not re-created",
                    ctx.args.timeout
                ),
                format!(
                    "keep polling GET /dashscope/v1/tasks/{id} (never create it again); if tasks never finish, ask the operator to check the `{model}` provider"
                ),
            );
        }
        tokio::time::sleep(wait.min(deadline.saturating_sub(started.elapsed()))).await;
        // Each poll is bounded by what is left of --timeout.
        let left = deadline
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        let req = ctx.get(&format!("/dashscope/v1/tasks/{id}")).timeout(left);
        polls += 1;
        // A transient network failure: keep the ID and poll again.
        let Ok(a) = send(req).await else {
            continue;
        };
        match a.status {
            200 => {}
            429 | 500..=599 => {
                let after = a
                    .headers
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                wait = after
                    .map_or(wait * 2, Duration::from_secs)
                    .min(Duration::from_secs(30));
                continue;
            }
            _ => {
                clear_progress(ctx);
                return failure(&format!("GET /dashscope/v1/tasks/{id}"), &a, Some(&model));
            }
        }
        a.json
            .pointer("/output/task_status")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .clone_into(&mut status);
        progress(ctx, &id, &status, started.elapsed());
        if FINAL.contains(&status.as_str()) {
            clear_progress(ctx);
            return finished(&id, &status, &a.json, polls, started.elapsed());
        }
        // Backoff like the dashscope SDK's wait(): slower the longer the task runs.
        wait = (wait * 3 / 2).min(Duration::from_secs(5));
    }
}

fn finished(id: &str, status: &str, body: &Value, polls: u32, took: Duration) -> Found {
    let secs = took.as_secs_f64();
    match status {
        "SUCCEEDED" => {
            let url = body
                .pointer("/output/video_url")
                .and_then(Value::as_str)
                .unwrap_or("");
            if url.is_empty() {
                return Found::fail(
                    format!("task {id} SUCCEEDED without output.video_url"),
                    "report it to the operator",
                );
            }
            Found::pass(format!(
                "task {id} SUCCEEDED after {polls} polls in {secs:.1} s; video_url present"
            ))
        }
        "FAILED" => {
            let code = body
                .pointer("/output/code")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let msg = body
                .pointer("/output/message")
                .and_then(Value::as_str)
                .unwrap_or("");
            Found::fail(
                format!("task {id} FAILED: {code}: {msg}"),
                "the upstream refused or failed the task; change the request (content, parameters) or retry later — a failed task is not charged",
            )
        }
        other => Found::fail(
            format!("task {id} ended {other} without being asked to"),
            "the deployment lost or cancelled a task it had accepted; report it to the operator",
        ),
    }
}

fn progress(ctx: &Ctx, id: &str, status: &str, took: Duration) {
    if ctx.progress {
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r  … task {id} {status} ({:.0} s)   ",
            took.as_secs_f64()
        );
        let _ = err.flush();
    }
}

fn clear_progress(ctx: &Ctx) {
    if ctx.progress {
        let mut err = std::io::stderr();
        let _ = write!(err, "\r{:70}\r", "");
        let _ = err.flush();
    }
}

/// What the receiver saw: (event ID, signature header, body, status answered).
type Seen = Arc<Mutex<Vec<(String, String, String, u16)>>>;

/// Answers 500 to the first delivery of each event (to see it retried), 200 after.
async fn receive(
    axum::extract::State(seen): axum::extract::State<Seen>,
    headers: http::HeaderMap,
    body: String,
) -> http::StatusCode {
    let get = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (event, sig) = (get("x-anyint-event-id"), get("x-anyint-signature"));
    let Ok(mut seen) = seen.lock() else {
        return http::StatusCode::INTERNAL_SERVER_ERROR;
    };
    let first = !seen.iter().any(|(e, ..)| *e == event);
    let status = if first {
        http::StatusCode::INTERNAL_SERVER_ERROR
    } else {
        http::StatusCode::OK
    };
    seen.push((event, sig, body, status.as_u16()));
    status
}

/// Creates a music task with `callBackUrl`; its ID, or the failure.
async fn create_music(ctx: &Ctx, model: &str, callback: &str) -> Result<String, Found> {
    let body = json!({"customMode": false, "instrumental": true, "model": model,
                      "prompt": "anyint verify: a short calm piano piece", "callBackUrl": callback});
    let a = send(ctx.bearer(ctx.post_json("/music/v1/generate", &body))).await?;
    if a.status != 200 || a.json.get("code").and_then(Value::as_i64) != Some(200) {
        return Err(failure("POST /music/v1/generate", &a, Some(model)));
    }
    a.json
        .pointer("/data/taskId")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            Found::fail(
                "the create answer has no data.taskId",
                "report it to the operator",
            )
        })
}

/// Check 8: a callback reaches a local receiver, is redelivered with the same event ID after a
/// 500, and carries a signature (verified with `ANYINT_CALLBACK_SECRET` when set).
pub(super) async fn callback(ctx: &Ctx) -> Found {
    let Some((model, music)) = ctx.callback_model() else {
        return Found::skip(
            "no music or video model is available to this key (pass --music-model or --video-model)",
        );
    };
    if !music && ctx.status("task") == Some(super::Status::Fail) {
        return Found::skip("skipped: the task check failed on the same video model");
    }
    if let Some(skip) = ctx.unavailable(Some(&model), "--music-model") {
        return skip;
    }
    let listener = match tokio::net::TcpListener::bind(ctx.args.callback_listen).await {
        Ok(l) => l,
        Err(e) => {
            return Found::fail(
                format!("cannot listen on {}: {e}", ctx.args.callback_listen),
                "pass --callback-listen with a free local address the deployment can reach",
            );
        }
    };
    let Ok(mut addr) = listener.local_addr() else {
        return Found::fail("the receiver has no address", "pass --callback-listen");
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::IpAddr::from([127, 0, 0, 1]));
    }
    let path = format!(
        "/anyint-verify/{}",
        hex::encode(crate::auth::random_bytes::<8>())
    );
    let url = match &ctx.args.callback_url {
        Some(public) => format!("{}{path}", public.trim_end_matches('/')),
        None => format!("http://{addr}{path}"),
    };
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/anyint-verify/{token}", axum::routing::post(receive))
        // Behind a tunnel or proxy the path may arrive rewritten.
        .fallback(axum::routing::post(receive))
        .with_state(seen.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let found = deliveries(ctx, &model, music, &url, &seen).await;
    server.abort();
    found
}

async fn deliveries(ctx: &Ctx, model: &str, music: bool, url: &str, seen: &Seen) -> Found {
    let created = if music {
        create_music(ctx, model, url).await
    } else {
        create_video(ctx, model, Some(url)).await
    };
    let id = match created {
        Ok(id) => id,
        Err(f) if f.reason.contains("callback") => {
            return Found::skip(format!(
                "the deployment refuses callbacks to {url}: {}",
                f.reason
            ));
        }
        Err(f) => return f,
    };
    let started = Instant::now();
    let deadline = Duration::from_secs(ctx.args.timeout);
    // Wait for a redelivery: the same event ID after the receiver's 500.
    let redelivered = loop {
        let snapshot = seen.lock().map(|s| s.clone()).unwrap_or_default();
        let twice = snapshot
            .iter()
            .find(|(e, ..)| snapshot.iter().filter(|(other, ..)| other == e).count() >= 2);
        if let Some((event, ..)) = twice {
            break Some(event.clone());
        }
        if started.elapsed() >= deadline {
            break None;
        }
        progress(ctx, &id, "waiting for a callback", started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    clear_progress(ctx);
    let Some(event) = redelivered else {
        let got = seen.lock().map_or(0, |s| s.len());
        if got == 0 {
            return Found::skip(format!(
                "no callback reached {url} within {} s: the deployment cannot reach this receiver (use --callback-listen on an address it can reach)",
                ctx.args.timeout
            ));
        }
        return Found::fail(
            format!(
                "a callback arrived but was not redelivered after the receiver answered 500 (within {} s)",
                ctx.args.timeout
            ),
            "the deployment must retry non-2xx callback deliveries with the same event ID",
        );
    };
    // Stay for the task's final event, so no delivery is left retrying against a receiver that
    // has gone (the deployment would keep it until its horizon).
    let snapshot = loop {
        let now = seen.lock().map(|s| s.clone()).unwrap_or_default();
        if now.iter().any(|(_, _, body, _)| is_final_event(body)) || started.elapsed() >= deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let final_seen = if snapshot.iter().any(|(_, _, b, _)| is_final_event(b)) {
        "final event received"
    } else {
        "the task had not finished when --timeout ended"
    };
    if !snapshot.iter().all(|(_, _, body, _)| body.contains(&id)) {
        return Found::fail(
            "a callback body does not name the task",
            "report it to the operator",
        );
    }
    let signed = signature_verdict(&snapshot);
    match signed {
        Err(f) => f,
        Ok(note) => Found::pass(format!(
            "{} deliveries to {url}; event {event} redelivered after a 500 (deduplicate on X-AnyInt-Event-Id); {note}; {final_seen}",
            snapshot.len()
        )),
    }
}

/// Whether a callback body reports a final state (music `complete`/`error`, DashScope
/// SUCCEEDED, FAILED or CANCELED).
fn is_final_event(body: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return false;
    };
    let music = v.pointer("/data/callbackType").and_then(Value::as_str);
    let dashscope = v.pointer("/output/task_status").and_then(Value::as_str);
    matches!(music, Some("complete" | "error"))
        || matches!(dashscope, Some("SUCCEEDED" | "FAILED" | "CANCELED"))
}

/// Checks every delivery's `X-AnyInt-Signature`: verified with `ANYINT_CALLBACK_SECRET` when
/// it is set, else its format and freshness.
fn signature_verdict(snapshot: &[(String, String, String, u16)]) -> Result<String, Found> {
    let secret = std::env::var("ANYINT_CALLBACK_SECRET")
        .ok()
        .filter(|s| !s.is_empty());
    let now = crate::clock::unix_secs();
    for (_, sig, body, _) in snapshot {
        let parsed = sig
            .split_once(",v1=")
            .and_then(|(t, v1)| Some((t.strip_prefix("t=")?.parse::<i64>().ok()?, v1)));
        let Some((t, v1)) = parsed.filter(|(_, v1)| v1.len() == 64) else {
            return Err(Found::fail(
                format!("a delivery's X-AnyInt-Signature is missing or malformed: {sig:?}"),
                "deliveries must carry X-AnyInt-Signature: t=<unix>,v1=<hex HMAC-SHA256>",
            ));
        };
        if (now - t).abs() > 300 {
            return Err(Found::fail(
                "a delivery's signature timestamp is more than 5 minutes off",
                "check the clocks of the deployment and this machine",
            ));
        }
        if let Some(secret) = &secret
            && crate::tasks::outbox::signature(secret, t, body) != *sig
        {
            return Err(Found::fail(
                format!(
                    "the signature does not verify with ANYINT_CALLBACK_SECRET (v1={}…)",
                    v1.get(..8).unwrap_or("")
                ),
                "set ANYINT_CALLBACK_SECRET to your account's signing secret (GET /admin/v1/accounts/{account}/signing-secret)",
            ));
        }
    }
    Ok(if secret.is_some() {
        "signatures verified with ANYINT_CALLBACK_SECRET".into()
    } else {
        "signatures well-formed and fresh (set ANYINT_CALLBACK_SECRET to verify them)".into()
    })
}
