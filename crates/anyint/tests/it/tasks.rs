//! Async tasks end to end: DashScope and music families against the emulator, ownership,
//! charging exactly once, signed callbacks with retries, restarts, idempotency, URL safety, and
//! two instances sharing Postgres.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::Mac;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::harness::{ADMIN_TOKEN, TestGateway, UPSTREAM_KEY};

const VIDEO: &str = "/dashscope/v1/services/aigc/video-generation/video-synthesis";

pub fn tasks_toml(extra_tasks: &str) -> String {
    format!(
        r#"
[[providers]]
name = "emu-dashscope"
kind = "dashscope"
base_url = "{{emulator}}/api/v1"
api_key = "{UPSTREAM_KEY}"

[[providers]]
name = "emu-music"
kind = "music"
base_url = "{{emulator}}"
api_key = "{UPSTREAM_KEY}"

[[models]]
id = "wan2.2-t2v-plus"
routes = [{{ provider = "emu-dashscope", upstream_model = "wan2.2-t2v-plus" }}]
price = {{ per_video_second = 1000 }}

[[models]]
id = "wan2.2-t2i-flash"
routes = [{{ provider = "emu-dashscope", upstream_model = "wan2.2-t2i-flash" }}]
price = {{ per_image = 300 }}

[[models]]
id = "V4_5"
routes = [{{ provider = "emu-music", upstream_model = "V4_5" }}]
price = {{ per_song = 5000 }}

[tasks]
{extra_tasks}
{defaults}
"#,
        defaults = [
            ("poll_interval_ms", "50"),
            ("poll_max_interval_ms", "200"),
            ("refresh_after_ms", "0"),
            ("callback_backoff_ms", "50"),
            ("callback_backoff_max_ms", "100"),
        ]
        .iter()
        .filter(|(k, _)| !extra_tasks.contains(&format!("{k} =")))
        .fold(String::new(), |acc, (k, v)| acc + k + " = " + v + "\n")
    )
}

async fn gateway(extra_tasks: &str) -> TestGateway {
    TestGateway::builder()
        .toml(&tasks_toml(&format!(
            "callback_allow_networks = [\"127.0.0.0/8\"]\n{extra_tasks}"
        )))
        .start()
        .await
}

fn video_body(prompt: &str) -> Value {
    json!({"model": "wan2.2-t2v-plus", "input": {"prompt": prompt}, "parameters": {"duration": 5}})
}

async fn create_video(gw: &TestGateway, prompt: &str) -> String {
    let resp = gw
        .post(VIDEO)
        .header("X-DashScope-Async", "enable")
        .json(&video_body(prompt))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["output"]["task_status"], "PENDING");
    v["output"]["task_id"].as_str().unwrap().to_owned()
}

async fn poll(gw: &TestGateway, id: &str) -> Value {
    gw.get(&format!("/dashscope/v1/tasks/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until `check` passes, re-evaluating every 20 ms (at most 60 s); no timing is asserted.
async fn eventually<F, Fut, T>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..3_000 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gave up waiting for {what}");
}

async fn poll_until_final(gw: &TestGateway, id: &str) -> Value {
    eventually("a final status", || async {
        let v = poll(gw, id).await;
        let s = v["output"]["task_status"].as_str().unwrap_or("").to_owned();
        ["SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"]
            .contains(&s.as_str())
            .then_some(v)
    })
    .await
}

#[tokio::test]
async fn video_task_is_polled_to_success_and_charged_once() {
    let gw = gateway("").await;
    let id = create_video(&gw, "a cat runs [emulate: polls=2]").await;
    assert!(id.starts_with("task_"));
    let done = poll_until_final(&gw, &id).await;
    assert_eq!(done["output"]["task_status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"]["task_id"], id.as_str());
    assert!(
        done["output"]["video_url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert_eq!(done["usage"]["duration"], 5);
    // The client sees the gateway's task ID, never the upstream's.
    let task = gw.store.task(&id).await.unwrap().unwrap();
    let upstream = task.upstream_id.clone().unwrap();
    assert_ne!(upstream, id);
    // One ledger row, priced per second of video.
    let rows = gw.usage(&id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].cost_micros, 5 * 1000);
    assert_eq!(rows[0].outcome, "task_succeeded");
    // Polling again changes nothing and charges nothing more.
    assert_eq!(poll(&gw, &id).await["output"]["task_status"], "SUCCEEDED");
    assert_eq!(gw.usage(&id).await.len(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn failed_task_is_refunded_and_timeout_fails_the_task() {
    let gw = gateway("deadline_secs = 1").await;
    let failed = create_video(&gw, "x [emulate: fail=DataInspectionFailed]").await;
    let v = poll_until_final(&gw, &failed).await;
    assert_eq!(v["output"]["task_status"], "FAILED");
    assert_eq!(v["output"]["code"], "DataInspectionFailed");
    assert_eq!(gw.usage(&failed).await[0].cost_micros, 0);

    let stuck = create_video(&gw, "x [emulate: never=1]").await;
    let v = poll_until_final(&gw, &stuck).await;
    assert_eq!(v["output"]["task_status"], "FAILED");
    assert_eq!(v["output"]["code"], "TaskTimeout");
    let rows = gw.usage(&stuck).await;
    assert_eq!((rows.len(), rows[0].cost_micros), (1, 0));

    // The admin list filters by status in the store; an unknown status is a 400 naming it.
    let ok = create_video(&gw, "a cat runs [emulate: polls=1]").await;
    assert_eq!(
        poll_until_final(&gw, &ok).await["output"]["task_status"],
        "SUCCEEDED"
    );
    let ids = |status: &'static str| {
        let req = gw.admin(
            reqwest::Method::GET,
            &format!("/admin/v1/tasks?status={status}"),
        );
        async move {
            let v: Value = req.send().await.unwrap().json().await.unwrap();
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids("failed").await, vec![stuck.clone(), failed.clone()]);
    assert_eq!(ids("succeeded").await, vec![ok]);
    assert!(ids("running").await.is_empty());
    let resp = gw
        .admin(reqwest::Method::GET, "/admin/v1/tasks?status=done")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "status");
    assert!(v["error"]["message"].as_str().unwrap().contains("`done`"));
    gw.shutdown().await;
}

#[tokio::test]
async fn unknown_and_foreign_task_ids_get_the_same_answer() {
    let gw = gateway("").await;
    let id = create_video(&gw, "mine").await;
    let (_, other) = anyint::auth::issue_key(
        gw.store.as_ref(),
        "other",
        "another-account",
        None,
        anyint::store::KeyLimits::default(),
    )
    .await
    .unwrap();
    gw.gw.as_ref().unwrap().state.keys.reload().await.unwrap();
    let ask = |key: String, id: String| {
        let gw = &gw;
        async move {
            let r = gw
                .http
                .get(gw.url(&format!("/dashscope/v1/tasks/{id}")))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let mut v: Value = r.json().await.unwrap();
            v["request_id"] = Value::Null;
            v["output"]["task_id"] = Value::Null;
            (status, v)
        }
    };
    let foreign = ask(other.clone(), id.clone()).await;
    let missing = ask(other, "task_00000000000000000000000000000000".into()).await;
    assert_eq!(foreign, missing);
    assert_eq!(foreign.0, 200);
    assert_eq!(foreign.1["output"]["task_status"], "UNKNOWN");
    // The owner sees it.
    assert_ne!(poll(&gw, &id).await["output"]["task_status"], "UNKNOWN");
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_refusal_leaves_no_task_and_errors_use_dashscope_shape() {
    let gw = gateway("").await;
    let r = gw
        .post(VIDEO)
        .json(&video_body("x [emulate: status=503]"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "ServiceUnavailable");
    assert!(v["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(gw.store.tasks(None, None, 10).await.unwrap().is_empty());

    let r = gw
        .post(VIDEO)
        .json(&json!({"model": "gpt-4o-mini", "input": {"prompt": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "InvalidParameter");
    assert!(v["message"].as_str().unwrap().contains("chat"), "{v}");

    let r = gw
        .post(VIDEO)
        .json(&json!({"model": "wan2.2-t2v-plus"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = gw
        .http
        .post(gw.url(VIDEO))
        .json(&video_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "InvalidApiKey");
    // A video model on a chat route is refused with the right entry point.
    let r = gw
        .chat(json!({"model": "wan2.2-t2v-plus", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("/dashscope/v1/"));
    gw.shutdown().await;
}

#[tokio::test]
async fn idempotency_key_replays_the_same_task_and_refuses_another_body() {
    let gw = gateway("").await;
    let send = |body: Value| {
        gw.post(VIDEO)
            .header("Idempotency-Key", "order-42")
            .json(&body)
            .send()
    };
    let first: Value = send(video_body("same"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again = send(video_body("same")).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["output"]["task_id"], again["output"]["task_id"]);
    let conflict = send(video_body("different")).await.unwrap();
    assert_eq!(conflict.status(), 409);
    // A different callback URL is a different request too.
    let other_callback = gw
        .post(VIDEO)
        .header("Idempotency-Key", "order-42")
        .header("X-AnyInt-Callback-Url", "http://127.0.0.1:9/elsewhere")
        .json(&video_body("same"))
        .send()
        .await
        .unwrap();
    assert_eq!(other_callback.status(), 409);
    assert_eq!(gw.store.tasks(None, None, 10).await.unwrap().len(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn private_callback_urls_are_refused_unless_allowlisted() {
    let gw = TestGateway::builder().toml(&tasks_toml("")).start().await;
    for url in [
        "http://127.0.0.1:9/cb",
        "https://169.254.169.254/x",
        "http://example.com/cb",
    ] {
        let r = gw
            .post(VIDEO)
            .header("X-AnyInt-Callback-Url", url)
            .json(&video_body("x"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{url}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "InvalidParameter");
        assert!(v["message"].as_str().unwrap().contains("callback"), "{v}");
    }
    assert!(gw.store.tasks(None, None, 10).await.unwrap().is_empty());
    gw.shutdown().await;
}

/// A callback receiver that answers 500 to its first `fail` requests.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    fail: Arc<Mutex<usize>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    r.seen.lock().unwrap().push((headers, body));
    let mut fail = r.fail.lock().unwrap();
    if *fail > 0 {
        *fail -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn start_receiver(fail: usize) -> (Receiver, String) {
    let r = Receiver {
        fail: Arc::new(Mutex::new(fail)),
        ..Receiver::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

async fn secret(gw: &TestGateway, account: &str) -> String {
    let v: Value = gw
        .admin(
            reqwest::Method::GET,
            &format!("/admin/v1/accounts/{account}/signing-secret"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["secret"].as_str().unwrap().to_owned()
}

fn verify(secret: &str, headers: &HeaderMap, body: &str) {
    let sig = headers["x-anyint-signature"].to_str().unwrap();
    let (t, v1) = sig.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    assert_eq!(hex::encode(mac.finalize().into_bytes()), v1);
}

#[tokio::test]
async fn callback_is_retried_until_acknowledged_with_one_event_id_and_a_valid_signature() {
    let gw = gateway("").await;
    let (rx, url) = start_receiver(2).await;
    let r = gw
        .post(VIDEO)
        .header("X-AnyInt-Callback-Url", &url)
        .json(&video_body("x [emulate: polls=1]"))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["output"]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = eventually("three delivery attempts", || async {
        let seen = rx.seen.lock().unwrap().clone();
        (seen.len() >= 3).then_some(seen)
    })
    .await;
    let secret = secret(&gw, "acct").await;
    let ids: Vec<_> = seen
        .iter()
        .map(|(h, _)| h["x-anyint-event-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|i| i == &ids[0]), "{ids:?}");
    for (h, body) in &seen {
        verify(&secret, h, body);
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["output"]["task_id"], id.as_str());
        assert_eq!(v["output"]["task_status"], "SUCCEEDED");
    }
    let log: Value = eventually("the delivery to be marked delivered", || async {
        let log: Value = gw
            .admin(
                reqwest::Method::GET,
                &format!("/admin/v1/tasks/{id}/deliveries"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (log["data"][0]["state"] == "delivered").then_some(log)
    })
    .await;
    assert_eq!(log["data"][0]["attempts"], 3);
    assert_eq!(log["data"][0]["attempt_log"][0]["status"], 500);
    assert_eq!(log["data"][0]["attempt_log"][2]["status"], 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn dead_delivery_can_be_replayed() {
    let gw = gateway("callback_horizon_secs = 1").await;
    let (rx, url) = start_receiver(usize::MAX).await;
    let r = gw
        .post(VIDEO)
        .header("X-AnyInt-Callback-Url", &url)
        .json(&video_body("x [emulate: polls=1]"))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["output"]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/admin/v1/tasks/{id}/deliveries");
    let event = eventually("the delivery to die", || async {
        let log: Value = gw
            .admin(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (log["data"][0]["state"] == "dead")
            .then(|| log["data"][0]["event_id"].as_str().unwrap().to_owned())
    })
    .await;
    *rx.fail.lock().unwrap() = 0;
    let r = gw
        .admin(reqwest::Method::POST, &format!("{path}/{event}/replay"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    eventually("the replay to be delivered", || async {
        let log: Value = gw
            .admin(reqwest::Method::GET, &path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (log["data"][0]["state"] == "delivered").then_some(())
    })
    .await;
    gw.shutdown().await;
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}/anyint.db", dir.path().display());
    let (rx, url) = start_receiver(usize::MAX).await;
    let extra = "callback_allow_networks = [\"127.0.0.0/8\"]\ncallback_backoff_ms = 100\n";
    let first = TestGateway::builder()
        .store_url(&store_url)
        .toml(&tasks_toml(extra))
        .start()
        .await;
    let emulator = first.emulator.clone();
    let r = first
        .post(VIDEO)
        .header("X-AnyInt-Callback-Url", &url)
        .json(&video_body("x [emulate: polls=1]"))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["output"]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("a failed delivery attempt", || async {
        (!rx.seen.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    first.shutdown().await;
    let pending = first_store_deliveries(&store_url, &id).await;
    assert_eq!(pending, "pending");
    *rx.fail.lock().unwrap() = 0;
    let second = TestGateway::builder()
        .store_url(&store_url)
        .upstream(&emulator)
        .toml(&tasks_toml(extra))
        .start()
        .await;
    eventually("delivery after the restart", || async {
        (first_store_deliveries(&store_url, &id).await == "delivered").then_some(())
    })
    .await;
    let seen = rx.seen.lock().unwrap().clone();
    let last = &seen.last().unwrap().0;
    assert_eq!(last["x-anyint-event-id"], seen[0].0["x-anyint-event-id"]);
    second.shutdown().await;
}

async fn first_store_deliveries(store_url: &str, id: &str) -> String {
    let store = anyint::store::open(store_url).await.unwrap();
    let d = store.deliveries(id).await.unwrap();
    d.first().map(|(d, _)| d.state.clone()).unwrap_or_default()
}

#[tokio::test]
async fn music_stages_flow_from_upstream_callbacks_to_the_client() {
    music_stages(gateway(QUIET_POLLER).await).await;
}

#[tokio::test]
async fn pg_music_stages_flow_from_upstream_callbacks_to_the_client() {
    let extra = format!("callback_allow_networks = [\"127.0.0.0/8\"]\n{QUIET_POLLER}");
    let gw = TestGateway::builder()
        .postgres()
        .toml(&tasks_toml(&extra))
        .start()
        .await;
    music_stages(gw).await;
}

/// The background poller an hour away: only the upstream's callbacks move a task.
const QUIET_POLLER: &str = "poll_interval_ms = 60000\npoll_max_interval_ms = 60000";

async fn music_stages(gw: TestGateway) {
    let (rx, url) = start_receiver(0).await;
    let r = gw
        .post("/music/v1/generate")
        .json(
            &json!({"customMode": false, "instrumental": false, "model": "V4_5",
                      "prompt": "a calm piano piece [emulate: stage_ms=30 polls=3]", "callBackUrl": url}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 200);
    let id = v["data"]["taskId"].as_str().unwrap().to_owned();
    // The background poller is an hour away: only the upstream's callbacks move the task.
    let seen = eventually("the complete callback", || async {
        let seen = rx.seen.lock().unwrap().clone();
        seen.iter()
            .any(|(_, b)| b.contains("\"complete\""))
            .then_some(seen)
    })
    .await;
    let kinds: Vec<String> = seen
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["data"]["callbackType"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["text", "first", "complete"]);
    let complete: Value = serde_json::from_str(&seen[2].1).unwrap();
    assert_eq!(complete["data"]["task_id"], id.as_str());
    assert_eq!(complete["data"]["data"].as_array().unwrap().len(), 2);
    assert!(complete["data"]["data"][0]["audio_url"].is_string());
    let secret = secret(&gw, "acct").await;
    for (h, b) in &seen {
        verify(&secret, h, b);
    }
    let r: Value = gw
        .get(&format!("/music/v1/generate/record-info?taskId={id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"]["status"], "SUCCESS");
    assert_eq!(
        r["data"]["response"]["sunoData"].as_array().unwrap().len(),
        2
    );
    assert_eq!(gw.usage(&id).await[0].cost_micros, 5000);
    let missing = gw
        .get("/music/v1/generate/record-info?taskId=task_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["code"], 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn pg_two_instances_poll_a_thousand_tasks_once_each() {
    let url = crate::harness::fresh_pg_schema().await;
    let extra = "poller_batch = 50\n";
    let a = TestGateway::builder()
        .shared_postgres(&url)
        .toml(&tasks_toml(extra))
        .start()
        .await;
    let b = TestGateway::builder()
        .shared_postgres(&url)
        .upstream(&a.emulator)
        .toml(&tasks_toml(extra))
        .start()
        .await;
    let mut ids = Vec::with_capacity(1_000);
    for chunk in 0..20 {
        let creates = (0..50).map(|i| {
            a.post(VIDEO)
                .json(&video_body(&format!(
                    "task {chunk}-{i} [emulate: polls=3, fetch_delay_ms=5]"
                )))
                .send()
        });
        for r in futures_util::future::join_all(creates).await {
            let v: Value = r.unwrap().json().await.unwrap();
            ids.push(v["output"]["task_id"].as_str().unwrap().to_owned());
        }
    }
    let store = a.store.clone();
    eventually("every task to settle", || async {
        let settled = store
            .tasks(None, None, 2_000)
            .await
            .unwrap()
            .iter()
            .filter(|t| t.settled)
            .count();
        (settled == 1_000).then_some(())
    })
    .await;
    let stats: Value = a
        .http
        .get(format!("{}/_emulator/tasks", a.emulator))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["overlapping_tasks"], 0, "{stats}");
    assert_eq!(stats["max_concurrent_fetches"], 1, "{stats}");
    for id in &ids {
        let rows = a.usage(id).await;
        assert_eq!(rows.len(), 1, "task {id}");
        assert_eq!(rows[0].cost_micros, 5_000);
    }
    // Both instances did some of the polling.
    let polled_by_b = b.gw.as_ref().unwrap().state.instance_id.clone();
    assert!(!polled_by_b.is_empty());
    a.shutdown().await;
    b.shutdown().await;
}

#[test]
fn admin_token_is_the_harness_one() {
    assert!(!ADMIN_TOKEN.is_empty());
}

/// Starts the `anyint` binary on `config`; returns the child and its base URL.
async fn spawn_gateway(config: &std::path::Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_anyint"))
        .args(["serve", "--config"])
        .arg(config)
        .env("ANYINT_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let base = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                l.trim()
                    .strip_prefix("anyint listening on ")
                    .map(str::to_owned)
            })
            .expect("the gateway exited before listening");
        std::thread::spawn(move || lines.for_each(drop));
        base
    })
    .await
    .unwrap();
    (child, base)
}

#[tokio::test]
async fn sigkilled_gateway_delivers_pending_callbacks_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let emulator_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emulator = format!("http://{}", emulator_listener.local_addr().unwrap());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(anyint_emulator::serve(
        emulator_listener,
        anyint_emulator::Options {
            api_key: Some(UPSTREAM_KEY.into()),
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let config = dir.path().join("anyint.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\nurl = \"sqlite://{}/gw.db\"\n{}",
            dir.path().display(),
            tasks_toml("callback_allow_networks = [\"127.0.0.0/8\"]\ncallback_backoff_ms = 100\n")
                .replace("{emulator}", &emulator)
        ),
    )
    .unwrap();
    let (rx, url) = start_receiver(usize::MAX).await;
    let (mut first, base) = spawn_gateway(&config).await;
    let http = reqwest::Client::new();
    let key: Value = http
        .post(format!("{base}/admin/v1/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "k"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    let created: Value = http
        .post(format!("{base}{VIDEO}"))
        .bearer_auth(&key)
        .header("X-AnyInt-Callback-Url", &url)
        .json(&video_body("x [emulate: polls=1]"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["output"]["task_id"].as_str().unwrap().to_owned();
    eventually("a failed delivery attempt", || async {
        (!rx.seen.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    // SIGKILL: no drain, no flush, whatever was in flight is cut.
    first.kill().unwrap();
    first.wait().unwrap();
    let before = rx.seen.lock().unwrap().len();
    *rx.fail.lock().unwrap() = 0;
    let (mut second, _) = spawn_gateway(&config).await;
    let delivered = eventually("the delivery after the restart", || async {
        let seen = rx.seen.lock().unwrap().clone();
        (seen.len() > before).then_some(seen)
    })
    .await;
    let event = |h: &HeaderMap| h["x-anyint-event-id"].to_str().unwrap().to_owned();
    assert_eq!(event(&delivered[0].0), event(&delivered.last().unwrap().0));
    assert!(delivered.last().unwrap().1.contains(&id));
    eventually("the store to record it delivered", || async {
        (first_store_deliveries(&format!("sqlite://{}/gw.db", dir.path().display()), &id).await
            == "delivered")
            .then_some(())
    })
    .await;
    second.kill().unwrap();
    second.wait().unwrap();
}

#[tokio::test]
async fn dashscope_aliases_async_header_and_music_requires_its_fields() {
    let gw = gateway("").await;
    // Whichever base the SDK is given: /dashscope/v1, /dashscope/api/v1 or /dashscope.
    for base in ["/dashscope/api/v1", "/dashscope"] {
        let r = gw
            .post(&format!(
                "{base}/services/aigc/video-generation/video-synthesis"
            ))
            .json(&video_body("alias"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{base}");
        let id = r.json::<Value>().await.unwrap()["output"]["task_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let polled: Value = gw
            .get(&format!("{base}/tasks/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(polled["output"]["task_id"], id.as_str());
    }
    let sync = gw
        .post(VIDEO)
        .header("X-DashScope-Async", "disable")
        .json(&video_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status(), 403);
    assert_eq!(sync.json::<Value>().await.unwrap()["code"], "AccessDenied");
    // The upstream requires the flags and the mode's fields: a body without them is refused
    // in the music envelope, never completed with guesses.
    for (body, field) in [
        (
            json!({"model": "V4_5", "prompt": "[Verse] la la", "style": "pop", "title": "Song"}),
            "customMode",
        ),
        (
            json!({"model": "V4_5", "customMode": true, "prompt": "la", "style": "pop", "title": "Song"}),
            "instrumental",
        ),
        (
            json!({"model": "V4_5", "customMode": true, "instrumental": true, "style": "pop"}),
            "title",
        ),
        (
            json!({"model": "V4_5", "customMode": true, "instrumental": false, "style": "pop", "title": "Song"}),
            "prompt",
        ),
        (
            json!({"model": "V4_5", "customMode": false, "instrumental": false, "prompt": "  "}),
            "prompt",
        ),
        (
            json!({"model": "V4_5", "customMode": "yes", "instrumental": false, "prompt": "a"}),
            "customMode",
        ),
    ] {
        let r = gw
            .post("/music/v1/generate")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["code"].as_i64(), &v["data"]),
            (Some(400), &Value::Null),
            "{v}"
        );
        assert!(v["msg"].as_str().unwrap().contains(field), "{v}");
    }
    let r = gw
        .post("/music/v1/generate")
        .json(&json!({"model": "V4_5", "customMode": true, "instrumental": false, "prompt": "[Verse] la la", "style": "pop", "title": "Song"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 200, "{v}");
    gw.shutdown().await;
}

#[tokio::test]
async fn pg_spend_reload_counts_unsettled_reservations() {
    let gw = TestGateway::builder()
        .postgres()
        .toml(&tasks_toml("callback_allow_networks = [\"127.0.0.0/8\"]\n"))
        .start()
        .await;
    create_video(&gw, "x [emulate: never=1]").await;
    // SUM over BIGINT is NUMERIC on Postgres; the reload (run at every start) must read it.
    let tracker = anyint::policy::quota::SpendTracker::new();
    tracker.reload(gw.store.as_ref()).await.unwrap();
    let reserved = gw.store.task_reservations().await.unwrap();
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[0].micros, 5 * 1000);
    gw.shutdown().await;
}

#[tokio::test]
async fn account_creation_returns_its_signing_secret_and_rotation_replaces_it() {
    let gw = gateway("").await;
    let created: Value = gw
        .admin(reqwest::Method::POST, "/admin/v1/accounts")
        .json(&json!({"id": "acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = created["signing_secret"].as_str().unwrap().to_owned();
    assert!(first.starts_with("whsec_"), "{created}");
    assert_eq!(secret(&gw, "acme").await, first);
    let rotated: Value = gw
        .admin(
            reqwest::Method::POST,
            "/admin/v1/accounts/acme/signing-secret",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(rotated["secret"], first.as_str());
    assert_eq!(
        secret(&gw, "acme").await,
        rotated["secret"].as_str().unwrap()
    );
    // Client keys never reach it.
    let r = gw
        .get("/admin/v1/accounts/acme/signing-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    gw.shutdown().await;
}

/// Each task family bounds its request fields as its upstream does: a field over the limit is
/// a 400 in the family's envelope that names the field, before anything is stored or sent.
#[tokio::test]
async fn oversized_task_fields_are_refused_naming_the_field() {
    let gw = gateway("").await;
    let long = |n: usize| "x".repeat(n);
    for (body, field) in [
        (video_body(&long(2001)), "input.prompt"),
        (
            json!({"model": "wan2.2-t2v-plus", "input": {"prompt": "p", "negative_prompt": long(501)}}),
            "input.negative_prompt",
        ),
        (
            json!({"model": "wan2.2-t2v-plus", "input": {"prompt": "p", "img_url": format!("https://e.com/{}", long(2100))}}),
            "input.img_url",
        ),
        (
            json!({"model": "wan2.2-t2v-plus", "input": {"prompt": "p"}, "parameters": {"size": long(300)}}),
            "parameters.size",
        ),
    ] {
        let resp = gw.post(VIDEO).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{field}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["code"], "InvalidParameter", "{v}");
        assert!(v["request_id"].is_string(), "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{field}`")),
            "{v}"
        );
    }
    // At the limit it passes (characters, not bytes: 2000 two-byte characters).
    create_video(&gw, &"é".repeat(2000)).await;

    for (body, field) in [
        (
            json!({"customMode": false, "instrumental": false, "model": "V4_5", "prompt": long(501)}),
            "prompt",
        ),
        (
            json!({"customMode": true, "instrumental": false, "model": "V4_5", "prompt": long(5001), "style": "s", "title": "t"}),
            "prompt",
        ),
        (
            json!({"customMode": true, "instrumental": true, "model": "V4_5", "style": long(1001), "title": "t"}),
            "style",
        ),
        (
            json!({"customMode": true, "instrumental": true, "model": "V4_5", "style": "s", "title": long(101)}),
            "title",
        ),
    ] {
        let resp = gw
            .post("/music/v1/generate")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{field}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["code"], 400, "{v}");
        assert!(v["data"].is_null(), "{v}");
        assert!(
            v["msg"].as_str().unwrap().contains(&format!("`{field}`")),
            "{v}"
        );
    }
    let ok = gw
        .post("/music/v1/generate")
        .json(&json!({"customMode": true, "instrumental": false, "model": "V4_5", "prompt": long(5000), "style": "s", "title": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok.status(),
        200,
        "custom-mode lyrics up to 5000 characters pass"
    );
    assert_eq!(
        gw.store.tasks(None, None, 10).await.unwrap().len(),
        2,
        "refused tasks leave no row"
    );
    gw.shutdown().await;
}

/// Task polls count against the key's requests per minute: past it, a poll is a 429 in the
/// family's envelope with `Retry-After`.
#[tokio::test]
async fn task_polls_count_against_the_keys_request_limit() {
    let gw = gateway("").await;
    let (_, key) = anyint::auth::issue_key(
        gw.store.as_ref(),
        "polls",
        "acct",
        None,
        anyint::store::KeyLimits {
            rpm: Some(4),
            ..anyint::store::KeyLimits::default()
        },
    )
    .await
    .unwrap();
    let create = gw
        .http
        .post(gw.url(VIDEO))
        .bearer_auth(&key)
        .json(&video_body("a cat"))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 200);
    let id = create.json::<Value>().await.unwrap()["output"]["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let music = gw
        .http
        .post(gw.url("/music/v1/generate"))
        .bearer_auth(&key)
        .json(&json!({"customMode": false, "instrumental": false, "model": "V4_5", "prompt": "piano"}))
        .send()
        .await
        .unwrap();
    assert_eq!(music.status(), 200);
    let music_id = music.json::<Value>().await.unwrap()["data"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Two creates and two polls use the 4 requests of the minute.
    let ds_poll = || {
        gw.http
            .get(gw.url(&format!("/dashscope/v1/tasks/{id}")))
            .bearer_auth(&key)
            .send()
    };
    let music_poll = || {
        gw.http
            .get(gw.url(&format!("/music/v1/generate/record-info?taskId={music_id}")))
            .bearer_auth(&key)
            .send()
    };
    assert_eq!(ds_poll().await.unwrap().status(), 200);
    assert_eq!(music_poll().await.unwrap().status(), 200);

    let refused = ds_poll().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let v: Value = refused.json().await.unwrap();
    assert_eq!(v["code"], "Throttling.RateQuota", "{v}");
    let refused = music_poll().await.unwrap();
    assert_eq!(refused.status(), 429);
    let v: Value = refused.json().await.unwrap();
    assert_eq!(v["code"], 429, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("rate limit"), "{v}");
    let cancel = gw
        .http
        .post(gw.url(&format!("/dashscope/v1/tasks/{id}/cancel")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 429, "a cancel is a request too");
    gw.shutdown().await;
}
