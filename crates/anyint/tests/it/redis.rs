//! Limits shared through Redis: exact across two gateway instances, surviving a Redis restart,
//! and an explicit answer (never a 500) while Redis is unreachable.

use std::process::{Child, Command, Stdio};

use anyint::store::KeyLimits;
use serde_json::{Value, json};

use crate::harness::{TestGateway, user};

/// A private Redis on its own port, so restarting it disturbs no other test.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Self { port, child: None };
        r.spawn().await;
        r
    }

    pub async fn spawn(&mut self) {
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

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two gateways on one fresh Postgres schema with `toml` appended, each refreshing its key and
/// policy caches only once an hour, so only Redis can carry news between them in a test.
pub async fn two_on_one_postgres(toml: &str) -> (TestGateway, TestGateway) {
    let store = crate::harness::fresh_pg_schema().await;
    let gateway = || {
        TestGateway::builder()
            .shared_postgres(&store)
            .server("key_cache_refresh_secs = 3600")
            .toml(toml)
            .start()
    };
    (gateway().await, gateway().await)
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
    // A refresh interval of an hour: only the pub/sub message can update the other instance.
    let (a, b) = two_on_one_postgres(&limits_toml(&redis.url(), &prefix, "open")).await;
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

/// `/readyz`'s body.
async fn ready(t: &TestGateway) -> (u16, Value) {
    let resp = t.http.get(t.url("/readyz")).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Polls `/readyz` until `check` holds (the breaker's state changes in the background).
async fn ready_until(t: &TestGateway, check: impl Fn(&Value) -> bool) -> (u16, Value) {
    for _ in 0..500 {
        let (status, body) = ready(t).await;
        if check(&body) {
            return (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("/readyz never reached the expected state");
}

/// Runs `n` requests, `width` at a time, and returns their statuses.
async fn load(t: &TestGateway, key: &str, n: usize, width: usize) -> Vec<u16> {
    use futures_util::StreamExt;
    futures_util::stream::iter(0..n)
        .map(|_| {
            let req = t
                .http
                .post(t.url("/openai/v1/chat/completions"))
                .bearer_auth(key)
                .json(&chat());
            async move { req.send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(width)
        .collect()
        .await
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// With Redis killed, "open" decides from in-process limits (this instance's share of the
/// limit, the fleet being known from Redis) without asking Redis again, `/readyz` names Redis
/// as down, the outage and the recovery log one line each, and after a restart the limits are
/// counted in Redis again.
#[tokio::test]
async fn redis_outage_open_counts_in_process_shares_then_returns_to_redis() {
    let logs = crate::harness::Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    // One thread: the gateway's tasks log through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut redis = PrivateRedis::start().await;
    let prefix = format!("t{}", hex::encode(anyint::auth::random_bytes::<4>()));
    let client = ::redis::Client::open(redis.url()).unwrap();
    // Another live instance in the fleet: this one takes half of each limit in an outage.
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let _: i64 = ::redis::cmd("ZADD")
        .arg(format!("{prefix}:fleet"))
        .arg(u64::try_from(now_ms).unwrap())
        .arg("inst_peer")
        .query_async(&mut conn)
        .await
        .unwrap();
    let gw = TestGateway::builder()
        .toml(&limits_toml(&redis.url(), &prefix, "open"))
        .start()
        .await;
    let (_, small) = anyint::auth::issue_key(
        gw.store.as_ref(),
        "small",
        "acct",
        None,
        KeyLimits {
            rpm: Some(6),
            ..KeyLimits::default()
        },
    )
    .await
    .unwrap();
    let (_, big) = anyint::auth::issue_key(
        gw.store.as_ref(),
        "big",
        "acct",
        None,
        KeyLimits {
            rpm: Some(100_000),
            concurrency: Some(50),
            ..KeyLimits::default()
        },
    )
    .await
    .unwrap();
    let (status, body) = ready_until(&gw, |b| b["redis_fleet"] == 2).await;
    assert_eq!((status, &body["checks"]["redis"]), (200, &json!("ok")));
    assert_eq!(count(&load(&gw, &small, 1, 1).await, 200), 1);

    redis.kill();
    // Under load: everything is served from in-process limits.
    let statuses = load(&gw, &big, 200, 8).await;
    assert_eq!(count(&statuses, 200), 200, "{statuses:?}");
    // The small key gets its share: half of 6 per minute on this instance.
    let statuses = load(&gw, &small, 6, 1).await;
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    // Let the outage last past any once-a-second retry loop, so one that logs each attempt
    // shows in the log check below (nothing here is timed).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, body) = ready(&gw).await;
    assert_eq!(status, 200, "open: still ready: {body}");
    assert_eq!(body["checks"]["redis"], "down");
    assert_eq!(body["down"], json!(["redis"]));

    redis.spawn().await;
    let (status, body) = ready_until(&gw, |b| b["checks"]["redis"] == "ok").await;
    assert_eq!(status, 200);
    assert_eq!(body["down"], json!([]));
    // Counted in the restarted (empty) Redis again.
    assert_eq!(count(&load(&gw, &small, 1, 1).await, 200), 1);
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}:gcra:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the limiter uses Redis again");

    let text = logs.text();
    assert_eq!(
        text.matches("redis is unreachable").count(),
        1,
        "one line for the outage: {text}"
    );
    assert_eq!(
        text.matches("redis answers again").count(),
        1,
        "one line for the recovery: {text}"
    );
    assert_eq!(
        text.matches(" WARN ").count(),
        1,
        "no other warning, none per request: {text}"
    );
    gw.shutdown().await;
}

/// With Redis killed and "closed", limited requests are refused with 503 at once (the breaker
/// stops asking Redis), `/readyz` is 503 naming Redis, and a restart brings service back.
#[tokio::test(flavor = "multi_thread")]
async fn redis_outage_closed_refuses_at_once_and_recovers() {
    let mut redis = PrivateRedis::start().await;
    let prefix = format!("t{}", hex::encode(anyint::auth::random_bytes::<4>()));
    let gw = TestGateway::builder()
        .toml(&limits_toml(&redis.url(), &prefix, "closed"))
        .start()
        .await;
    let (_, key) = anyint::auth::issue_key(
        gw.store.as_ref(),
        "k",
        "acct",
        None,
        KeyLimits {
            rpm: Some(100_000),
            ..KeyLimits::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(count(&load(&gw, &key, 1, 1).await, 200), 1);
    redis.kill();
    let statuses = load(&gw, &key, 200, 8).await;
    assert_eq!(count(&statuses, 503), 200, "{statuses:?}");
    let (status, body) = ready(&gw).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["down"], json!(["redis"]));
    assert_eq!(body["checks"]["store"], "ok");
    // The unlimited key (no limit to count) is not affected.
    assert_eq!(
        gw.chat(chat()).await.status(),
        200,
        "a key without limits never needs Redis"
    );

    redis.spawn().await;
    let (status, _) = ready_until(&gw, |b| b["checks"]["redis"] == "ok").await;
    assert_eq!(status, 200);
    let statuses = load(&gw, &key, 50, 8).await;
    assert_eq!(count(&statuses, 200), 50, "{statuses:?}");
    gw.shutdown().await;
}
