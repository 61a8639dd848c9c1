//! Limits shared through Redis: exact across two gateway instances, surviving a Redis restart,
//! and an explicit answer (never a 500) while Redis is unreachable.

use std::process::{Child, Command, Stdio};

use anyint::store::KeyLimits;
use serde_json::{Value, json};

use crate::harness::{TestGateway, user};

/// A private Redis on its own port, so restarting it disturbs no other test.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Self { port, child: None };
        r.spawn().await;
        r
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server must be installed (the test command installs the machine's services)",
            );
        self.child = Some(child);
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn limits_toml(url: &str, prefix: &str, mode: &str) -> String {
    format!(
        "\n[limits]\nredis_url = \"{url}\"\nkey_prefix = \"{prefix}\"\non_redis_error = \"{mode}\"\nredis_timeout_ms = 500\n"
    )
}

fn chat() -> Value {
    json!({"model": "gpt-4o-mini", "messages": user("hi")})
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_sharing_redis_admit_exactly_the_limit() {
    let redis = PrivateRedis::start().await;
    let prefix = format!("t{}", hex::encode(anyint::auth::random_bytes::<4>()));
    let a = TestGateway::builder()
        .toml(&limits_toml(&redis.url(), &prefix, "closed"))
        .start()
        .await;
    let b = TestGateway::builder()
        .toml(&limits_toml(&redis.url(), &prefix, "closed"))
        .start()
        .await;
    let (record, key) = anyint::auth::issue_key(
        a.store.as_ref(),
        "shared",
        "acct",
        None,
        KeyLimits {
            rpm: Some(60),
            ..KeyLimits::default()
        },
    )
    .await
    .unwrap();
    // The same key on the second instance (as a shared store would give it).
    b.store.insert_key(&record).await.unwrap();
    let requests = (0..200).map(|i| {
        let t = if i % 2 == 0 { &a } else { &b };
        let req = t
            .http
            .post(t.url("/openai/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&chat());
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(requests).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((ok, limited), (60, 140), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_outage_follows_the_configured_mode_and_a_restart_recovers() {
    let mut redis = PrivateRedis::start().await;
    let prefix = format!("t{}", hex::encode(anyint::auth::random_bytes::<4>()));
    let closed = TestGateway::builder()
        .toml(&limits_toml(&redis.url(), &prefix, "closed"))
        .start()
        .await;
    let open = TestGateway::builder()
        .toml(&limits_toml(&redis.url(), &prefix, "open"))
        .start()
        .await;
    let limited = KeyLimits {
        rpm: Some(1000),
        concurrency: Some(10),
        ..KeyLimits::default()
    };
    let (_, ck) =
        anyint::auth::issue_key(closed.store.as_ref(), "c", "acct", None, limited.clone())
            .await
            .unwrap();
    let (_, ok_key) = anyint::auth::issue_key(open.store.as_ref(), "o", "acct", None, limited)
        .await
        .unwrap();
    let send = |t: &TestGateway, key: &str| {
        t.http
            .post(t.url("/openai/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat())
            .send()
    };
    assert_eq!(send(&closed, &ck).await.unwrap().status(), 200);
    assert_eq!(send(&open, &ok_key).await.unwrap().status(), 200);

    redis.kill();
    let resp = send(&closed, &ck).await.unwrap();
    assert_eq!(
        resp.status(),
        503,
        "fail-closed refuses with a clear status, not a 500"
    );
    assert!(resp.headers().contains_key("retry-after"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "limiter_unavailable");
    assert_eq!(
        send(&open, &ok_key).await.unwrap().status(),
        200,
        "fail-open admits"
    );

    // A fresh Redis has no scripts loaded: the limiter reconnects and reloads them.
    redis.spawn().await;
    let mut recovered = false;
    for _ in 0..300 {
        if send(&closed, &ck).await.unwrap().status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        recovered,
        "the limiter did not recover after Redis came back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_admin_changes_reach_other_instances_through_redis() {
    let redis = PrivateRedis::start().await;
    let prefix = format!("t{}", hex::encode(anyint::auth::random_bytes::<4>()));
    let store = crate::harness::fresh_pg_schema().await;
    // A refresh interval of an hour: only the pub/sub message can update the other instance.
    let gateway = || {
        TestGateway::builder()
            .shared_postgres(&store)
            .server("key_cache_refresh_secs = 3600")
            .toml(&limits_toml(&redis.url(), &prefix, "open"))
            .start()
    };
    let a = gateway().await;
    let b = gateway().await;
    let created: Value = a
        .admin(reqwest::Method::POST, "/admin/v1/keys")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap();
    let on_b = || {
        b.http
            .post(b.url("/openai/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat())
            .send()
    };
    assert_eq!(on_b().await.unwrap().status(), 200);

    // Revoked on A: B refuses it without waiting for its hourly refresh.
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        a.admin(reqwest::Method::DELETE, &format!("/admin/v1/keys/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let mut refused = false;
    for _ in 0..500 {
        if on_b().await.unwrap().status() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(refused, "the revocation never reached the other instance");
}
