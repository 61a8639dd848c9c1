//! The store contract, run against both backends.

use anyint::store::{GroupBy, Store, StoredResponse, UsageQuery, UsageRecord};
use serde_json::json;

use crate::harness::TestGateway;

fn row(id: &str, tokens: i64) -> UsageRecord {
    UsageRecord {
        request_id: id.into(),
        key_id: "key_1".into(),
        account: "a".into(),
        model: "m".into(),
        provider: "p".into(),
        upstream_model: "u".into(),
        family: "openai".into(),
        stream: true,
        prompt_tokens: tokens,
        completion_tokens: tokens * 2,
        cache_read_tokens: 1,
        cache_write_tokens: 0,
        web_searches: tokens % 3,
        status: 200,
        outcome: "ok".into(),
        latency_ms: 5,
        created_at_ms: 1_700_000_000_000 + tokens,
        cost_micros: tokens * 7,
        team: None,
    }
}

async fn contract(store: &dyn Store) {
    let (k, key) = anyint::auth::issue_key(
        store,
        "n",
        "acct",
        Some(vec!["m1".into(), "m2".into()]),
        anyint::store::KeyLimits::default(),
    )
    .await
    .unwrap();
    let found = store
        .key_by_hash(&anyint::auth::hash_key(&key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, k);
    assert!(
        store
            .active_keys()
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == k.id)
    );
    let revoked = store.revoke_key(&k.id, 42).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(42));
    assert!(
        !store
            .active_keys()
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == k.id)
    );
    assert!(store.revoke_key("key_missing", 1).await.unwrap().is_none());

    let rows: Vec<UsageRecord> = (1..=1200).map(|i| row(&format!("r{i}"), i)).collect();
    store.insert_usage(&rows).await.unwrap();
    // A retried batch does not double-count.
    store.insert_usage(&rows[..10]).await.unwrap();
    let all = store
        .usage(&UsageQuery {
            key_id: Some("key_1".into()),
            limit: 5000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1200);
    let one = store
        .usage(&UsageQuery {
            request_id: Some("r7".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(one, vec![row("r7", 7)]);
    // Sums are exact integers, on both backends.
    let all_q = UsageQuery {
        key_id: Some("key_1".into()),
        ..Default::default()
    };
    let by_model = store.usage_summary(&all_q, GroupBy::Model).await.unwrap();
    assert_eq!(by_model.len(), 1);
    let g = &by_model[0];
    assert_eq!(
        (
            g.group.as_str(),
            g.requests,
            g.prompt_tokens,
            g.completion_tokens
        ),
        ("m", 1200, 720_600, 1_441_200)
    );
    assert_eq!((g.cache_read_tokens, g.cost_micros), (1200, 5_044_200));
    // 1..=1200 mod 3: 400 each of 0, 1, 2.
    assert_eq!(g.web_searches, 1200);
    let by_day = store.usage_summary(&all_q, GroupBy::Day).await.unwrap();
    assert_eq!(
        by_day
            .iter()
            .map(|g| (g.group.as_str(), g.requests))
            .collect::<Vec<_>>(),
        [("2023-11-14", 1200)]
    );
    let window = UsageQuery {
        from_ms: Some(1_700_000_000_101),
        to_ms: Some(1_700_000_000_201),
        ..Default::default()
    };
    let by_key = store.usage_summary(&window, GroupBy::Key).await.unwrap();
    assert_eq!(
        by_key
            .iter()
            .map(|g| (g.group.as_str(), g.requests))
            .collect::<Vec<_>>(),
        [("key_1", 100)]
    );
    responses_contract(store).await;
    store.ping().await.unwrap();
    // Migrating twice is a no-op.
    store.migrate().await.unwrap();
}

/// Stored responses: owned by one account, readable until they expire, deleted once.
async fn responses_contract(store: &dyn Store) {
    let stored = |id: &str, expires_at_ms: i64| StoredResponse {
        id: id.to_owned(),
        account: "acct".to_owned(),
        key_id: "key_1".to_owned(),
        model: "gpt-4o-mini".to_owned(),
        created_at_ms: 1_000,
        expires_at_ms,
        input: json!([{"id": "msg_1", "type": "message", "role": "user", "content": "hi"}]),
        response: json!({"id": id, "object": "response", "output": []}),
    };
    store.put_response(&stored("resp_a", 10_000)).await.unwrap();
    store
        .put_response(&stored("resp_old", 2_000))
        .await
        .unwrap();
    let got = store.response("resp_a", "acct", 5_000).await.unwrap();
    assert_eq!(got, Some(stored("resp_a", 10_000)));
    assert_eq!(
        store.response("resp_a", "other", 5_000).await.unwrap(),
        None
    );
    assert_eq!(
        store.response("resp_old", "acct", 5_000).await.unwrap(),
        None
    );
    assert_eq!(
        store.response("resp_\0x", "acct", 5_000).await.unwrap(),
        None
    );
    // A rewrite replaces.
    let mut again = stored("resp_a", 20_000);
    "gpt-4o".clone_into(&mut again.model);
    store.put_response(&again).await.unwrap();
    assert_eq!(
        store.response("resp_a", "acct", 15_000).await.unwrap(),
        Some(again)
    );
    assert_eq!(store.purge_responses(5_000, 100).await.unwrap(), 1);
    assert!(!store.delete_response("resp_a", "other").await.unwrap());
    assert!(store.delete_response("resp_a", "acct").await.unwrap());
    assert!(!store.delete_response("resp_a", "acct").await.unwrap());
    assert_eq!(store.response("resp_a", "acct", 5_000).await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_store_contract() {
    let t = TestGateway::start().await;
    assert_eq!(t.store.backend(), "sqlite");
    contract(t.store.as_ref()).await;
}

#[tokio::test]
async fn pg_store_contract() {
    let t = TestGateway::builder().postgres().start().await;
    assert_eq!(t.store.backend(), "postgres");
    contract(t.store.as_ref()).await;
}

/// A TCP proxy to Postgres that the test can cut: while cut, it forwards nothing and holds
/// every socket open (a partition, the case where a pool's queries hang rather than fail).
struct Partition {
    port: u16,
    cut: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl Partition {
    async fn start(target: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(tokio::sync::watch::channel(false).0);
        let target = target.to_owned();
        let cuts = cut.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mut cut = cuts.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    if *cut.borrow_and_update() {
                        let _ = cut.wait_for(|c| !*c).await;
                    } else {
                        let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                            _ = cut.wait_for(|c| *c) => {}
                        }
                        // Cut: hold both sockets, silent, until the partition heals.
                        let _ = cut.wait_for(|c| !*c).await;
                        drop(server);
                    }
                    // Healed: close, so the pool opens fresh connections.
                    drop(client);
                });
            }
        });
        Self { port, cut }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// With the store partitioned away, `/readyz` answers promptly (not after the pool's acquire
/// wait) with 503 naming the store, the hot path keeps serving from its caches, and readiness
/// returns when the store does.
#[tokio::test]
async fn pg_readyz_reports_an_unreachable_store_and_its_return() {
    let direct = crate::harness::fresh_pg_schema().await;
    let proxy = Partition::start("127.0.0.1:5432").await;
    let via_proxy = direct.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port), 1);
    assert_ne!(via_proxy, direct, "the store URL goes through the proxy");
    let gw = TestGateway::builder()
        .shared_postgres(&via_proxy)
        .start()
        .await;
    let ready = || async {
        let resp = gw.http.get(gw.url("/readyz")).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<serde_json::Value>().await.unwrap())
    };
    let (status, body) = ready().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["store"], "ok");
    assert_eq!(body["checks"]["redis"], "not_configured");

    proxy.set_cut(true);
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["store"], "down");
    assert_eq!(body["down"], json!(["store"]));
    // Keys are cached and usage is queued: requests are still served, under load.
    let statuses: Vec<u16> = {
        use futures_util::StreamExt;
        futures_util::stream::iter(0..40)
            .map(|_| async {
                gw.chat(json!({"model": "gpt-4o-mini", "messages": crate::harness::user("hi")}))
                    .await
                    .status()
                    .as_u16()
            })
            .buffer_unordered(8)
            .collect()
            .await
    };
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    proxy.set_cut(false);
    let mut healed = false;
    for _ in 0..500 {
        if ready().await.0 == 200 {
            healed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(healed, "/readyz did not report the store's return");
    // Nothing was lost: every request answered during the partition has its ledger row.
    let store = gw.store.clone();
    gw.shutdown().await;
    let rows = store
        .usage(&UsageQuery {
            model: Some("gpt-4o-mini".into()),
            limit: 1000,
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 40);
}

/// An empty poll for due tasks or callbacks only reads: it answers while another connection
/// holds SQLite's write lock, where a claiming `UPDATE` would wait out the busy timeout and
/// fail with "database is locked".
#[tokio::test]
async fn sqlite_empty_polls_do_not_take_the_write_lock() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/anyint.db", dir.path().display());
    let t = TestGateway::builder().store_url(&url).start().await;
    let mut writer = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut writer)
        .await
        .unwrap();
    let now = 1_700_000_000_000;
    let deliveries = t.store.claim_deliveries("probe", now, 1_000, 16).await;
    let tasks = t.store.claim_due_tasks("probe", now, 1_000, 16).await;
    sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();
    assert!(deliveries.unwrap().is_empty());
    assert!(tasks.unwrap().is_empty());
}
