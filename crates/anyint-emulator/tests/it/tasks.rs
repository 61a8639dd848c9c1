//! End-to-end checks of the async task families over loopback HTTP:
//! DashScope video/image tasks and "Suno-style" music tasks, their task
//! scripts (`polls`, `fail`, `never`, `stage_ms`, `dup_callbacks`,
//! `fetch_delay_ms`), callbacks to a small axum receiver and the
//! `/_emulator/tasks` accounting.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::harness::{Emu, KEY, json_of, start_locked};

const VIDEO: &str = "/api/v1/services/aigc/video-generation/video-synthesis";
const I2V: &str = "/api/v1/services/aigc/image2video/video-synthesis";
const IMAGE: &str = "/api/v1/services/aigc/text2image/image-synthesis";
/// Upper bound on waiting for something asynchronous (callbacks, counters).
const PATIENCE: Duration = Duration::from_secs(10);

impl Emu {
    /// A DashScope create call with the async header.
    fn ds_post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.bearer_post(path)
            .header("X-DashScope-Async", "enable")
            .json(body)
    }

    /// Creates a DashScope task and returns its id.
    async fn ds_create(&self, path: &str, body: &Value) -> String {
        let (status, body) = json_of(self.ds_post(path, body).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["output"]["task_status"], "PENDING");
        assert!(body["request_id"].as_str().is_some_and(|r| r.len() == 36));
        body["output"]["task_id"].as_str().unwrap().to_owned()
    }

    async fn ds_get(&self, id: &str) -> Value {
        let resp = self
            .bearer_get(&format!("/api/v1/tasks/{id}"))
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(resp).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn ds_cancel(&self, id: &str) -> (StatusCode, Value) {
        let resp = self
            .bearer_post(&format!("/api/v1/tasks/{id}/cancel"))
            .send()
            .await
            .unwrap();
        json_of(resp).await
    }

    fn music_post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.bearer_post("/api/v1/generate").json(body)
    }

    /// Creates a music task and returns its id.
    async fn music_create(&self, body: &Value) -> String {
        let (status, body) = json_of(self.music_post(body).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["code"], 200, "{body}");
        assert_eq!(body["msg"], "success");
        body["data"]["taskId"].as_str().unwrap().to_owned()
    }

    async fn record(&self, id: &str) -> Value {
        let resp = self
            .bearer_get("/api/v1/generate/record-info")
            .query(&[("taskId", id)])
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(resp).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn task_info(&self, id: &str) -> Value {
        self.get_json(&format!("/_emulator/tasks/{id}")).await
    }

    /// Polls the task's introspection until `done` holds (or gives up).
    async fn wait_info(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let info = self.task_info(id).await;
            if done(&info) || tokio::time::Instant::now() > deadline {
                return info;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn video(prompt: &str) -> Value {
    json!({
        "model": "wan2.2-t2v-plus",
        "input": {"prompt": prompt, "extend_prompt": true, "function": "video-synthesis"},
        "parameters": {"size": "1280*720", "duration": 10},
    })
}

fn song(prompt: &str, callback: Option<&str>) -> Value {
    let mut body = json!({
        "customMode": true, "instrumental": false, "model": "V4_5",
        "prompt": prompt, "style": "synthwave", "title": "Night Drive",
    });
    if let Some(url) = callback {
        body["callBackUrl"] = json!(url);
    }
    body
}

/// `YYYY-MM-DD HH:MM:SS.mmm`.
fn is_ds_time(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 23
            && s.char_indices().all(|(i, c)| match i {
                4 | 7 => c == '-',
                10 => c == ' ',
                13 | 16 => c == ':',
                19 => c == '.',
                _ => c.is_ascii_digit(),
            })
    })
}

/// A callback receiver: every POST body lands in the channel.
struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<Value>,
}

async fn receiver() -> Receiver {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/cb",
            post(
                |State(tx): State<mpsc::UnboundedSender<Value>>, body: Bytes| async move {
                    tx.send(serde_json::from_slice(&body).unwrap()).unwrap();
                    "ok"
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url: format!("http://{addr}/cb"),
        rx,
    }
}

impl Receiver {
    async fn next(&mut self) -> Value {
        tokio::time::timeout(PATIENCE, self.rx.recv())
            .await
            .expect("callback in time")
            .unwrap()
    }

    async fn types(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            let cb = self.next().await;
            out.push(cb["data"]["callbackType"].as_str().unwrap().to_owned());
        }
        out
    }
}

// === DashScope ===

#[tokio::test]
async fn dashscope_video_polls_to_succeeded_with_usage() {
    let emu = start_locked().await;
    let id = emu.ds_create(VIDEO, &video("a cat running")).await;

    let first = emu.ds_get(&id).await;
    let out = &first["output"];
    assert_eq!(out["task_id"], id.as_str());
    assert_eq!(out["task_status"], "RUNNING");
    assert!(is_ds_time(&out["submit_time"]) && is_ds_time(&out["scheduled_time"]));
    assert!(out.get("end_time").is_none() && first.get("usage").is_none());

    let done = emu.ds_get(&id).await;
    let out = &done["output"];
    assert_eq!(out["task_status"], "SUCCEEDED");
    assert!(is_ds_time(&out["end_time"]));
    assert_eq!(
        out["video_url"],
        format!("https://dashscope-emulator.invalid/videos/{id}.mp4")
    );
    assert_eq!(out["orig_prompt"], "a cat running");
    assert_eq!(
        done["usage"],
        json!({"duration": 10, "video_count": 1, "SR": 720})
    );

    // Terminal: later polls answer the same state.
    assert_eq!(emu.ds_get(&id).await["output"]["task_status"], "SUCCEEDED");
    let info = emu.task_info(&id).await;
    assert_eq!(info["family"], "dashscope");
    assert_eq!(info["status"], "SUCCEEDED");
    assert_eq!(info["fetches"], 3);
    assert_eq!(info["max_concurrent_fetches"], 1);
}

#[tokio::test]
async fn dashscope_default_duration_and_image_to_video() {
    let emu = start_locked().await;
    let body = json!({"model": "wan2.2-kf2v-flash",
                      "input": {"first_frame_url": "https://x/a.png"},
                      "parameters": {"resolution": "1080P"}});
    let id = emu.ds_create(I2V, &body).await;
    let header = emu
        .client
        .get(emu.url(&format!("/api/v1/tasks/{id}")))
        .bearer_auth(KEY)
        .header("x-emulator-fault", "latency_ms=1")
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), StatusCode::OK);
    let done = emu.ds_get(&id).await;
    assert_eq!(done["output"]["task_status"], "SUCCEEDED");
    assert_eq!(
        done["usage"],
        json!({"duration": 5, "video_count": 1, "SR": 1080})
    );
}

#[tokio::test]
async fn dashscope_without_async_header_is_403() {
    let emu = start_locked().await;
    let resp = emu
        .client
        .post(emu.url(VIDEO))
        .bearer_auth(KEY)
        .json(&video("a cat"))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "AccessDenied");
    assert_eq!(
        body["message"],
        "current user api does not support synchronous calls"
    );
    assert!(body["request_id"].is_string());

    let upper = emu
        .ds_post(VIDEO, &video("a cat"))
        .header("X-DashScope-Async", "ENABLE")
        .send()
        .await
        .unwrap();
    assert_eq!(upper.status(), StatusCode::OK);
}

#[tokio::test]
async fn dashscope_bad_key_is_401() {
    let emu = start_locked().await;
    for auth in [Some("Bearer sk-wrong"), None] {
        let mut req = emu
            .client
            .post(emu.url(VIDEO))
            .header("X-DashScope-Async", "enable")
            .json(&video("a cat"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let (status, body) = json_of(req.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "InvalidApiKey");
        assert_eq!(body["message"], "Invalid API-key provided.");
        assert!(body["request_id"].is_string());
    }
    let resp = emu
        .client
        .get(emu.url("/api/v1/tasks/x"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn dashscope_unknown_task_is_unknown() {
    let emu = start_locked().await;
    let body = emu.ds_get("no-such-task").await;
    assert_eq!(
        body["output"],
        json!({"task_id": "no-such-task", "task_status": "UNKNOWN"})
    );
    assert!(body["request_id"].is_string());
    let (status, _) = emu.admin("/_emulator/tasks/no-such-task").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dashscope_validation_errors_are_400() {
    let emu = start_locked().await;
    let cases = [
        json!({"input": {"prompt": "a"}}),
        json!({"model": "m", "input": {"prompt": ""}}),
        json!({"model": "m", "input": {"prompt": "a"}, "parameters": {"duration": "5"}}),
        json!({"model": "m", "input": {"prompt": "[emulate: polls=0]"}}),
    ];
    for body in cases {
        let (status, err) = json_of(emu.ds_post(VIDEO, &body).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(err["code"], "InvalidParameter", "{body}");
        assert!(err["message"].is_string());
    }
    let raw = emu
        .client
        .post(emu.url(IMAGE))
        .bearer_auth(KEY)
        .header("X-DashScope-Async", "enable")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn dashscope_create_faults_use_dashscope_errors() {
    let emu = start_locked().await;
    let (status, body) = json_of(
        emu.ds_post(VIDEO, &video("hi [emulate: status=503]"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "ServiceUnavailable");
    assert!(body["request_id"].is_string() && body["message"].is_string());

    let resp = emu
        .ds_post(IMAGE, &video("hi"))
        .header("x-emulator-fault", "status=429,retry_after=7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "Throttling.RateQuota");
    let (_, summary) = emu.admin("/_emulator/tasks").await;
    assert_eq!(summary["tasks"], 0);
}

#[tokio::test]
async fn dashscope_fail_directive_fails_the_task() {
    let emu = start_locked().await;
    let id = emu
        .ds_create(
            VIDEO,
            &video("x [emulate: fail=DataInspectionFailed polls=1]"),
        )
        .await;
    let body = emu.ds_get(&id).await;
    let out = &body["output"];
    assert_eq!(out["task_status"], "FAILED");
    assert_eq!(out["code"], "DataInspectionFailed");
    assert!(out["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(is_ds_time(&out["end_time"]));
    assert!(out.get("video_url").is_none() && body.get("usage").is_none());
}

#[tokio::test]
async fn dashscope_never_stays_running() {
    let emu = start_locked().await;
    let id = emu.ds_create(VIDEO, &video("x [emulate: never]")).await;
    for _ in 0..4 {
        let out = emu.ds_get(&id).await["output"].clone();
        assert_eq!(out["task_status"], "RUNNING");
        assert!(out.get("end_time").is_none());
    }
}

#[tokio::test]
async fn dashscope_image_task_has_results() {
    let emu = start_locked().await;
    let body = json!({"model": "wan2.2-t2i-flash", "input": {"prompt": "a fox"},
                      "parameters": {"size": "1024*1024", "n": 2}});
    let id = emu.ds_create(IMAGE, &body).await;
    emu.ds_get(&id).await;
    let done = emu.ds_get(&id).await;
    assert_eq!(done["output"]["task_status"], "SUCCEEDED");
    let base = "https://dashscope-emulator.invalid/images";
    assert_eq!(
        done["output"]["results"],
        json!([{"url": format!("{base}/{id}-0.png")}, {"url": format!("{base}/{id}-1.png")}])
    );
    assert_eq!(done["usage"], json!({"image_count": 2}));
}

#[tokio::test]
async fn dashscope_cancel_only_while_pending() {
    let emu = start_locked().await;
    let id = emu.ds_create(VIDEO, &video("x")).await;
    let (status, body) = emu.ds_cancel(&id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["request_id"].is_string());
    let out = emu.ds_get(&id).await["output"].clone();
    assert_eq!(out["task_status"], "CANCELED");

    let (status, body) = emu.ds_cancel(&id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "UnsupportedOperation");

    let running = emu.ds_create(VIDEO, &video("x")).await;
    emu.ds_get(&running).await;
    let (status, body) = emu.ds_cancel(&running).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "UnsupportedOperation");
    let (status, _) = emu.ds_cancel("missing").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn dashscope_time_driven_task_ignores_polls() {
    let emu = start_locked().await;
    let slow = emu
        .ds_create(VIDEO, &video("x [emulate: stage_ms=600000]"))
        .await;
    for _ in 0..3 {
        assert_eq!(emu.ds_get(&slow).await["output"]["task_status"], "PENDING");
    }
    let fast = emu
        .ds_create(VIDEO, &video("x [emulate: stage_ms=5]"))
        .await;
    let info = emu.wait_info(&fast, |i| i["status"] == "SUCCEEDED").await;
    assert_eq!(info["status"], "SUCCEEDED");
    assert_eq!(info["fetches"], 0);
}

#[tokio::test]
async fn overlapping_fetches_are_counted() {
    let emu = start_locked().await;
    let id = emu
        .ds_create(VIDEO, &video("x [emulate: fetch_delay_ms=500 polls=5]"))
        .await;
    let (a, b) = tokio::join!(emu.ds_get(&id), emu.ds_get(&id));
    assert_eq!(a["output"]["task_status"], "RUNNING");
    assert_eq!(b["output"]["task_status"], "RUNNING");
    let calm = emu.ds_create(VIDEO, &video("x")).await;
    emu.ds_get(&calm).await;
    emu.ds_get(&calm).await;

    let info = emu.task_info(&id).await;
    assert_eq!(info["fetches"], 2);
    assert_eq!(info["max_concurrent_fetches"], 2);
    assert_eq!(emu.task_info(&calm).await["max_concurrent_fetches"], 1);
    let (_, summary) = emu.admin("/_emulator/tasks").await;
    assert_eq!(
        summary,
        json!({"tasks": 2, "fetches": 4, "max_concurrent_fetches": 2, "overlapping_tasks": 1})
    );

    let reset = emu
        .client
        .post(emu.url("/_emulator/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    let (_, summary) = emu.admin("/_emulator/tasks").await;
    assert_eq!(summary["tasks"], 0);
    assert_eq!(emu.ds_get(&id).await["output"]["task_status"], "UNKNOWN");
}

// === Music ===

#[tokio::test]
async fn music_record_info_walks_the_stages() {
    let emu = start_locked().await;
    let request = song("[Verse] neon rain [emulate: polls=3]", None);
    let id = emu.music_create(&request).await;

    let pending = emu.record(&id).await;
    assert_eq!(pending["code"], 200);
    let data = &pending["data"];
    assert_eq!(data["taskId"], id.as_str());
    assert_eq!(data["status"], "TEXT_SUCCESS");
    assert_eq!(data["type"], "GENERATE");
    assert_eq!(data["response"]["sunoData"], json!([]));
    let param: Value = serde_json::from_str(data["param"].as_str().unwrap()).unwrap();
    assert_eq!(param, request);
    assert!(data["errorCode"].is_null());

    let first = emu.record(&id).await;
    assert_eq!(first["data"]["status"], "FIRST_SUCCESS");
    assert_eq!(
        first["data"]["response"]["sunoData"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let done = emu.record(&id).await;
    assert_eq!(done["data"]["status"], "SUCCESS");
    let clips = done["data"]["response"]["sunoData"].as_array().unwrap();
    assert_eq!(clips.len(), 2);
    assert_ne!(clips[0]["id"], clips[1]["id"]);
    for clip in clips {
        for key in [
            "id",
            "audioUrl",
            "streamAudioUrl",
            "imageUrl",
            "prompt",
            "modelName",
            "title",
            "tags",
            "createTime",
        ] {
            assert!(clip[key].is_string(), "{key} in {clip}");
        }
        assert!(
            clip["audioUrl"]
                .as_str()
                .unwrap()
                .starts_with("https://music-emulator.invalid/")
        );
        assert!(clip["duration"].is_f64());
        assert_eq!(clip["prompt"], "[Verse] neon rain");
        assert_eq!(clip["title"], "Night Drive");
        assert_eq!(clip["tags"], "synthwave");
    }
    // The first clip is the same one FIRST_SUCCESS showed.
    assert_eq!(clips[0], first["data"]["response"]["sunoData"][0]);
    let info = emu.task_info(&id).await;
    assert_eq!(
        (info["family"].as_str(), info["fetches"].as_u64()),
        (Some("music"), Some(3))
    );
}

#[tokio::test]
async fn music_simple_instrumental_and_header_script() {
    let emu = start_locked().await;
    let id = emu
        .music_create(
            &json!({"customMode": false, "instrumental": true, "model": "V5",
                              "prompt": "calm piano"}),
        )
        .await;
    assert_eq!(emu.record(&id).await["data"]["status"], "TEXT_SUCCESS");
    let done = emu.record(&id).await;
    assert_eq!(done["data"]["status"], "SUCCESS");
    assert_eq!(done["data"]["response"]["sunoData"][0]["prompt"], "");

    let header = emu
        .music_post(&song("la", None))
        .header("x-emulator-fault", "polls=1")
        .send()
        .await
        .unwrap();
    let body: Value = header.json().await.unwrap();
    let one = body["data"]["taskId"].as_str().unwrap().to_owned();
    assert_eq!(emu.record(&one).await["data"]["status"], "SUCCESS");
}

#[tokio::test]
async fn music_errors_are_business_codes() {
    let emu = start_locked().await;
    let bad_key = emu
        .client
        .post(emu.url("/api/v1/generate"))
        .bearer_auth("sk-wrong")
        .json(&song("la", None))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(bad_key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"code": 401, "msg": "unauthorized", "data": null})
    );

    let mut no_title = song("la", None);
    no_title.as_object_mut().unwrap().remove("title");
    let mut bad_model = song("la", None);
    bad_model["model"] = json!("V3_5");
    let mut no_flag = song("la", None);
    no_flag.as_object_mut().unwrap().remove("instrumental");
    for body in [
        no_title,
        bad_model,
        no_flag,
        song("[emulate: polls=x]", None),
    ] {
        let (status, err) = json_of(emu.music_post(&body).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(err["code"], 422, "{body}");
        assert!(err["msg"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(err["data"].is_null());
    }

    let unknown = emu.record("nope").await;
    assert_eq!(
        unknown,
        json!({"code": 404, "msg": "task not found", "data": null})
    );

    let mut faulty = song("la", None);
    faulty["title"] = json!("T [emulate: status=503]");
    let (status, body) = json_of(emu.music_post(&faulty).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], 503);
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn music_callbacks_follow_the_stages() {
    let emu = start_locked().await;
    let mut rx = receiver().await;
    let id = emu
        .music_create(&song("la [emulate: polls=3]", Some(&rx.url)))
        .await;
    for _ in 0..3 {
        emu.record(&id).await;
    }
    let text = rx.next().await;
    assert_eq!(text["code"], 200);
    assert_eq!(text["data"]["callbackType"], "text");
    assert_eq!(text["data"]["task_id"], id.as_str());
    let first = rx.next().await;
    assert_eq!(first["data"]["callbackType"], "first");
    assert_eq!(first["data"]["data"].as_array().unwrap().len(), 1);
    let complete = rx.next().await;
    assert_eq!(complete["data"]["callbackType"], "complete");
    let items = complete["data"]["data"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        for key in [
            "id",
            "audio_url",
            "stream_audio_url",
            "image_url",
            "prompt",
            "model_name",
            "title",
            "tags",
            "createTime",
        ] {
            assert!(item[key].is_string(), "{key} in {item}");
        }
        assert!(item.get("audioUrl").is_none());
    }
    let info = emu.wait_info(&id, |i| i["callbacks_sent"] == 3).await;
    assert_eq!(
        (
            info["callbacks_sent"].as_u64(),
            info["callbacks_failed"].as_u64()
        ),
        (Some(3), Some(0))
    );
}

#[tokio::test]
async fn music_dup_callbacks_doubles_each_stage() {
    let emu = start_locked().await;
    let mut rx = receiver().await;
    let id = emu
        .music_create(&song("la [emulate: dup_callbacks=1]", Some(&rx.url)))
        .await;
    emu.record(&id).await;
    emu.record(&id).await;
    assert_eq!(rx.types(4).await, ["text", "text", "complete", "complete"]);
    let info = emu.wait_info(&id, |i| i["callbacks_sent"] == 4).await;
    assert_eq!(info["callbacks_sent"], 4);
}

#[tokio::test]
async fn music_failure_sends_an_error_callback() {
    let emu = start_locked().await;
    let mut rx = receiver().await;
    let id = emu
        .music_create(&song("la [emulate: fail=boom]", Some(&rx.url)))
        .await;
    emu.record(&id).await;
    let failed = emu.record(&id).await;
    let data = &failed["data"];
    assert_eq!(data["status"], "GENERATE_AUDIO_FAILED");
    assert_eq!(data["errorCode"], 501);
    assert!(data["errorMessage"].is_string());
    assert_eq!(data["response"]["sunoData"], json!([]));
    assert_eq!(rx.types(1).await, ["text"]);
    let error = rx.next().await;
    assert_eq!(error["code"], 501);
    assert_eq!(error["data"]["callbackType"], "error");
    assert!(error["data"]["data"].is_null());

    let sensitive = emu
        .music_create(&song(
            "la [emulate: fail=SENSITIVE_WORD_ERROR polls=1]",
            None,
        ))
        .await;
    let data = emu.record(&sensitive).await["data"].clone();
    assert_eq!(data["status"], "SENSITIVE_WORD_ERROR");
    assert_eq!(data["errorCode"], 501);
}

#[tokio::test]
async fn music_time_driven_task_calls_back_on_its_own() {
    let emu = start_locked().await;
    let mut rx = receiver().await;
    let id = emu
        .music_create(&song("la [emulate: stage_ms=20 polls=3]", Some(&rx.url)))
        .await;
    assert_eq!(rx.types(3).await, ["text", "first", "complete"]);
    let done = emu.record(&id).await;
    assert_eq!(done["data"]["status"], "SUCCESS");
    assert_eq!(
        done["data"]["response"]["sunoData"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let quiet = emu
        .music_create(&song(
            "la [emulate: stage_ms=600000 no_callbacks=1]",
            Some(&rx.url),
        ))
        .await;
    for _ in 0..2 {
        assert_eq!(emu.record(&quiet).await["data"]["status"], "PENDING");
    }
}

#[tokio::test]
async fn failed_callbacks_are_counted_not_retried() {
    let emu = start_locked().await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cb", closed.local_addr().unwrap());
    drop(closed);
    let id = emu
        .music_create(&song("la [emulate: polls=1]", Some(&url)))
        .await;
    emu.record(&id).await;
    let info = emu.wait_info(&id, |i| i["callbacks_sent"] == 1).await;
    assert_eq!(
        (
            info["callbacks_sent"].as_u64(),
            info["callbacks_failed"].as_u64()
        ),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn families_do_not_see_each_others_tasks() {
    let emu = start_locked().await;
    let music = emu.music_create(&song("la", None)).await;
    assert_eq!(emu.ds_get(&music).await["output"]["task_status"], "UNKNOWN");
    let (status, _) = emu.ds_cancel(&music).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let ds = emu.ds_create(VIDEO, &video("x")).await;
    assert_eq!(emu.record(&ds).await["code"], 404);
    assert_eq!(emu.task_info(&music).await["status"], "PENDING");
    assert_eq!(emu.task_info(&ds).await["status"], "PENDING");
}
