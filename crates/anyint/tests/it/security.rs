//! Hardening: malformed IDs answer like missing ones on both stores.

use reqwest::Method;
use serde_json::Value;

use crate::harness::{Captured, TestGateway};

/// A path segment or query value, percent-encoded (everything but RFC 3986 unreserved bytes).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Who calls a route: a client key or the admin token.
#[derive(Clone, Copy)]
enum Caller {
    Client,
    Admin,
}

/// Every route that takes an ID from its path or query: method, caller, the URL with `{}`
/// where the (encoded) ID goes, and whether an unknown well-formed ID is a fair baseline (the
/// signing-secret routes create a secret for any well-formed account).
const ROUTES: &[(Method, Caller, &str, bool)] = &[
    (Method::GET, Caller::Client, "/dashscope/v1/tasks/{}", true),
    (
        Method::GET,
        Caller::Client,
        "/dashscope/api/v1/tasks/{}",
        true,
    ),
    (
        Method::POST,
        Caller::Client,
        "/dashscope/v1/tasks/{}/cancel",
        true,
    ),
    (
        Method::GET,
        Caller::Client,
        "/music/v1/generate/record-info?taskId={}",
        true,
    ),
    (Method::GET, Caller::Admin, "/admin/v1/tasks/{}", true),
    (
        Method::GET,
        Caller::Admin,
        "/admin/v1/tasks/{}/deliveries",
        true,
    ),
    (
        Method::POST,
        Caller::Admin,
        "/admin/v1/tasks/{}/deliveries/evt_1/replay",
        true,
    ),
    (
        Method::POST,
        Caller::Admin,
        "/admin/v1/tasks/task_1/deliveries/{}/replay",
        true,
    ),
    (
        Method::GET,
        Caller::Admin,
        "/admin/v1/tasks?account={}",
        true,
    ),
    (Method::DELETE, Caller::Admin, "/admin/v1/keys/{}", true),
    (Method::PATCH, Caller::Admin, "/admin/v1/plans/{}", true),
    (Method::PATCH, Caller::Admin, "/admin/v1/accounts/{}", true),
    (Method::PATCH, Caller::Admin, "/admin/v1/teams/{}", true),
    (
        Method::GET,
        Caller::Admin,
        "/admin/v1/accounts/{}/signing-secret",
        false,
    ),
    (
        Method::POST,
        Caller::Admin,
        "/admin/v1/accounts/{}/signing-secret",
        false,
    ),
    (
        Method::GET,
        Caller::Admin,
        "/admin/v1/usage?account={}",
        true,
    ),
    (Method::GET, Caller::Admin, "/admin/v1/usage?team={}", true),
    (Method::GET, Caller::Admin, "/admin/v1/usage?key={}", true),
    (
        Method::GET,
        Caller::Admin,
        "/admin/v1/usage?request_id={}",
        true,
    ),
    (Method::GET, Caller::Admin, "/admin/v1/usage?model={}", true),
    (
        Method::GET,
        Caller::Admin,
        "/admin/v1/usage?account={}&group_by=model",
        true,
    ),
];

/// A well-formed ID nothing has.
const MISSING: &str = "task_00000000000000000000000000000000";

/// The malformed IDs: NUL alone and inside, over-long, unicode.
fn malformed() -> Vec<String> {
    vec![
        "\0".to_owned(),
        "task_\0x".to_owned(),
        "x".repeat(300),
        "tâche-é".to_owned(),
        "💥".to_owned(),
    ]
}

/// One route's answer to `id`: status and body, with the request ID dropped and the ID itself
/// (as JSON writes it) replaced by `<ID>`, so answers to different IDs compare.
async fn answer(gw: &TestGateway, route: &(Method, Caller, &str, bool), id: &str) -> (u16, String) {
    let (method, caller, template, _) = route;
    let url = gw.url(&template.replace("{}", &encode(id)));
    let req = match caller {
        Caller::Client => gw.http.request(method.clone(), url).bearer_auth(&gw.key),
        Caller::Admin => gw
            .http
            .request(method.clone(), url)
            .bearer_auth(crate::harness::ADMIN_TOKEN),
    };
    let req = if *method == Method::PATCH {
        req.json(&serde_json::json!({}))
    } else {
        req
    };
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let mut body: Value = resp.json().await.unwrap_or(Value::Null);
    if let Some(obj) = body.as_object_mut() {
        obj.remove("request_id");
    }
    let quoted = serde_json::to_string(id).unwrap();
    let escaped = &quoted[1..quoted.len() - 1];
    (status, body.to_string().replace(escaped, "<ID>"))
}

/// Every route's answers to every malformed ID; each must be what a missing well-formed ID
/// gets (or, where there is no such baseline, a 404), never a 5xx.
async fn malformed_ids_answer_like_missing_ones(gw: &TestGateway) -> Vec<(String, u16, String)> {
    let mut all = Vec::new();
    for route in ROUTES {
        let baseline = answer(gw, route, MISSING).await;
        for id in malformed() {
            let got = answer(gw, route, &id).await;
            let what = format!("{} {} with {id:?}", route.0, route.2);
            assert!(got.0 < 500, "{what}: {got:?}");
            if route.3 {
                assert_eq!(got, baseline, "{what}");
            } else {
                assert_eq!(got.0, 404, "{what}: {got:?}");
            }
            all.push((what, got.0, got.1));
        }
    }
    all
}

#[tokio::test]
async fn malformed_ids_answer_like_missing_ones_on_sqlite() {
    let gw = TestGateway::start().await;
    malformed_ids_answer_like_missing_ones(&gw).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn pg_malformed_ids_answer_like_missing_ones_and_as_on_sqlite() {
    let pg = TestGateway::builder().postgres().start().await;
    let on_pg = malformed_ids_answer_like_missing_ones(&pg).await;
    pg.shutdown().await;
    let sqlite = TestGateway::start().await;
    let on_sqlite = malformed_ids_answer_like_missing_ones(&sqlite).await;
    sqlite.shutdown().await;
    assert_eq!(on_pg, on_sqlite);
}

/// What can be looked up is what can be created: the admin API refuses new IDs outside the rule.
#[tokio::test]
async fn ids_outside_the_rule_cannot_be_created() {
    let gw = TestGateway::start().await;
    for (path, body, param) in [
        (
            "/admin/v1/accounts",
            serde_json::json!({"id": "acme corp"}),
            "id",
        ),
        (
            "/admin/v1/plans",
            serde_json::json!({"id": "pro\u{0}"}),
            "id",
        ),
        (
            "/admin/v1/teams",
            serde_json::json!({"id": "x".repeat(129)}),
            "id",
        ),
        (
            "/admin/v1/keys",
            serde_json::json!({"name": "k", "account": "ünï"}),
            "account",
        ),
    ] {
        let resp = gw
            .admin(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{path} {body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["param"], param, "{v}");
    }
    let resp = gw
        .admin(Method::POST, "/admin/v1/accounts")
        .json(&serde_json::json!({"id": "acme_EU-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    gw.shutdown().await;
}

/// An upstream refuses a task create with a message that quotes the prompt (as real providers'
/// moderation errors do): the client hears it, the logs do not.
#[tokio::test]
async fn a_failed_task_create_logs_no_prompt_text() {
    const SECRET: &str = "SECRET-PROMPT-7f3a";
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    // The test runs on one thread, so the gateway's tasks log through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_url = format!("http://{}", upstream.local_addr().unwrap());
    let refuse = axum::Router::new().fallback(|| async {
        let body = serde_json::json!({
            "code": "DataInspectionFailed",
            "message": format!("Input data may contain inappropriate content: '{SECRET}'"),
            "request_id": "up-1",
        });
        (
            axum::http::StatusCode::BAD_REQUEST,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
    });
    tokio::spawn(async move { axum::serve(upstream, refuse).await.unwrap() });
    let gw = TestGateway::builder()
        .toml(&format!(
            r#"
[[providers]]
name = "refusing"
kind = "dashscope"
base_url = "{upstream_url}/api/v1"
api_key = "k"

[[models]]
id = "wan2.2-t2v-plus"
routes = [{{ provider = "refusing", upstream_model = "wan2.2-t2v-plus" }}]
price = {{ per_video_second = 1000 }}
"#
        ))
        .start()
        .await;
    let resp = gw
        .post("/dashscope/v1/services/aigc/video-generation/video-synthesis")
        .json(&serde_json::json!({"model": "wan2.2-t2v-plus", "input": {"prompt": SECRET}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // The client is told why (it is their own prompt).
    assert!(resp.text().await.unwrap().contains(SECRET));
    gw.shutdown().await;
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("task create failed upstream"))
        .unwrap_or_else(|| panic!("no create failure logged:\n{text}"));
    assert!(
        line.contains("invalid_request") && line.contains("400"),
        "{line}"
    );
    assert!(!text.contains(SECRET), "prompt text in the logs:\n{text}");
}

/// The SQLite store holds signing secrets and prompts: only its owner may read it.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data").join("store");
    let db = dir.join("anyint.db");
    let gw = TestGateway::builder()
        .store_url(&format!("sqlite://{}", db.display()))
        .start()
        .await;
    // A write, so the WAL and its index exist.
    let resp = gw
        .admin(Method::POST, "/admin/v1/accounts")
        .json(&serde_json::json!({"id": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    for d in [tmp.path().join("data"), dir.clone()] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    for f in ["anyint.db", "anyint.db-wal", "anyint.db-shm"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    gw.shutdown().await;

    // A file an older version left readable is tightened at the next start.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let gw = TestGateway::builder()
        .store_url(&format!("sqlite://{}", db.display()))
        .start()
        .await;
    assert_eq!(mode(&db), 0o600);
    gw.shutdown().await;
}

#[tokio::test]
async fn metrics_is_open_by_default_and_needs_the_token_when_one_is_set() {
    let open = TestGateway::start().await;
    let resp = open.http.get(open.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    open.shutdown().await;

    let gw = TestGateway::builder()
        .server("metrics_token_env = \"ANYINT_TEST_METRICS_TOKEN\"")
        .start()
        .await;
    let url = gw.url("/metrics");
    for req in [
        gw.http.get(&url),
        gw.http.get(&url).bearer_auth("wrong"),
        // Neither a client key nor the admin token opens it.
        gw.http.get(&url).bearer_auth(&gw.key),
        gw.http.get(&url).bearer_auth(crate::harness::ADMIN_TOKEN),
        gw.http
            .get(&url)
            .basic_auth("x", Some(crate::harness::METRICS_TOKEN)),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_metrics_token", "{v}");
    }
    let resp = gw
        .http
        .get(&url)
        .bearer_auth(crate::harness::METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("anyint_"));
    gw.shutdown().await;
}

/// An upstream that redirects is a wrong `base_url`: the gateway does not follow it (the
/// provider key would go wherever the redirect points: reqwest keeps `x-api-key` across
/// hosts), and the client gets an answer naming the operator's fix.
#[tokio::test]
async fn upstream_redirects_are_not_followed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let target = {
        let hits = hits.clone();
        axum::Router::new().fallback(move || {
            hits.fetch_add(1, Ordering::SeqCst);
            async { "{}" }
        })
    };
    let target_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target_listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(target_listener, target).await });
    let redirector = axum::Router::new().fallback(move || async move {
        (
            axum::http::StatusCode::TEMPORARY_REDIRECT,
            [("location", format!("http://{target_addr}/v1/messages"))],
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, redirector).await });
    let gw = TestGateway::builder()
        .toml(&format!(
            "\n[[providers]]\nname = \"moved\"\nkind = \"anthropic\"\nbase_url = \"http://{redirect_addr}\"\napi_key = \"sk-upstream-secret\"\n\n[[models]]\nid = \"moved\"\nroutes = [{{ provider = \"moved\", upstream_model = \"claude-sonnet-4-5\" }}]\n"
        ))
        .start()
        .await;
    let resp = gw
        .post("/openai/v1/chat/completions")
        .json(&serde_json::json!({"model": "moved", "messages": crate::harness::user("hi")}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    assert!(status >= 500, "{status} {v}");
    assert_eq!(v["error"]["code"], "upstream_misconfigured", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("base_url"),
        "{v}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect was followed");
}
