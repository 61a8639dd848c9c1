//! Spend and usage kept incrementally: the monthly totals and hourly buckets written beside the
//! ledger equal the ledger's own sums (replays included), grouped reads over any range are
//! exact, retention removes raw rows and keeps the sums, and credit caps hold across two
//! instances sharing Redis, also after Redis restarts.

use std::collections::{BTreeMap, HashMap};

use anyint::store::{GroupBy, SpendScope, Store, UsageGroup, UsageQuery, UsageRecord};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestGateway, user};
use crate::redis::PrivateRedis;

const HOUR: i64 = 3_600_000;
/// Clients sending at once in the two-instance cap test.
const WORKERS: usize = 16;

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn row(i: usize, rng: &mut Lcg, start_ms: i64, span_ms: i64) -> UsageRecord {
    let key = rng.next(4);
    UsageRecord {
        request_id: format!("req_{i}"),
        key_id: format!("key_{key}"),
        account: format!("acct_{}", key % 2),
        model: ["gpt-4o", "claude", "gemini"][usize::try_from(rng.next(3)).unwrap()].to_owned(),
        provider: "emu".into(),
        upstream_model: "m".into(),
        family: "openai".into(),
        stream: rng.next(2) == 0,
        prompt_tokens: i64::try_from(rng.next(1000)).unwrap(),
        completion_tokens: i64::try_from(rng.next(500)).unwrap(),
        cache_read_tokens: i64::try_from(rng.next(50)).unwrap(),
        cache_write_tokens: i64::try_from(rng.next(20)).unwrap(),
        web_searches: i64::try_from(rng.next(2)).unwrap(),
        status: if rng.next(10) == 0 { 500 } else { 200 },
        outcome: "ok".into(),
        latency_ms: 5,
        created_at_ms: start_ms + i64::try_from(rng.next(u64::try_from(span_ms).unwrap())).unwrap(),
        cost_micros: i64::try_from(rng.next(10_000)).unwrap(),
        team: (key == 1).then(|| "team_a".to_owned()),
    }
}

/// What a grouped read must answer, summed here from the rows themselves.
fn expected(rows: &[UsageRecord], q: &UsageQuery, group: GroupBy) -> Vec<UsageGroup> {
    let mut out: BTreeMap<String, UsageGroup> = BTreeMap::new();
    for r in rows {
        if q.from_ms.is_some_and(|f| r.created_at_ms < f)
            || q.to_ms.is_some_and(|t| r.created_at_ms >= t)
            || q.key_id.as_ref().is_some_and(|k| *k != r.key_id)
            || q.model.as_ref().is_some_and(|m| *m != r.model)
            || q.account.as_ref().is_some_and(|a| *a != r.account)
            || q.team.as_ref().is_some_and(|t| Some(t) != r.team.as_ref())
        {
            continue;
        }
        let g = match group {
            GroupBy::Hour => anyint::clock::rfc3339(r.created_at_ms / HOUR * 3600),
            GroupBy::Day => anyint::clock::rfc3339(r.created_at_ms / 86_400_000 * 86_400)
                .chars()
                .take(10)
                .collect(),
            GroupBy::Minute => anyint::clock::rfc3339(r.created_at_ms / 60_000 * 60),
            GroupBy::Model => r.model.clone(),
            GroupBy::Key => r.key_id.clone(),
            GroupBy::Team => r.team.clone().unwrap_or_default(),
            GroupBy::Account => r.account.clone(),
        };
        let e = out.entry(g.clone()).or_insert(UsageGroup {
            group: g,
            requests: 0,
            errors: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            web_searches: 0,
            cost_micros: 0,
        });
        e.requests += 1;
        e.errors += i64::from(r.status >= 400);
        e.prompt_tokens += r.prompt_tokens;
        e.completion_tokens += r.completion_tokens;
        e.cache_read_tokens += r.cache_read_tokens;
        e.cache_write_tokens += r.cache_write_tokens;
        e.web_searches += r.web_searches;
        e.cost_micros += r.cost_micros;
    }
    out.into_values().collect()
}

fn sorted(mut groups: Vec<UsageGroup>) -> Vec<UsageGroup> {
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    groups
}

/// Rows over two months, written in batches (some twice, as a journal replay would), against
/// totals and grouped reads over aligned, unaligned, open and sub-hour ranges.
async fn totals_and_buckets_equal_the_ledger(store: &dyn Store) {
    let (month, next) = anyint::clock::month_bounds(anyint::clock::unix_secs());
    let (prev, _) = anyint::clock::month_bounds(month - 1);
    let (month_ms, next_ms, prev_ms) = (month * 1000, next * 1000, prev * 1000);
    let mut rng = Lcg(7);
    let rows: Vec<UsageRecord> = (0..1500)
        .map(|i| row(i, &mut rng, prev_ms, next_ms - prev_ms))
        .collect();
    for chunk in rows[..1400].chunks(137) {
        store.insert_usage(chunk).await.unwrap();
    }
    // A replay of rows already stored, mixed with nothing new: nothing may count twice.
    store.insert_usage(&rows[100..400]).await.unwrap();
    // Stored rows and new ones in one batch: the new ones count, once.
    store.insert_usage(&rows[1300..1450]).await.unwrap();
    // A new batch that holds one request twice: it counts once.
    let mut twice = rows[1450..].to_vec();
    twice.push(rows[1460].clone());
    store.insert_usage(&twice).await.unwrap();

    for (start, end) in [(prev_ms, month_ms), (month_ms, next_ms)] {
        let mut want: HashMap<(SpendScope, String), i64> = HashMap::new();
        for r in rows
            .iter()
            .filter(|r| (start..end).contains(&r.created_at_ms))
        {
            *want.entry((SpendScope::Key, r.key_id.clone())).or_default() += r.cost_micros;
            *want
                .entry((SpendScope::Account, r.account.clone()))
                .or_default() += r.cost_micros;
            if let Some(t) = &r.team {
                *want.entry((SpendScope::Team, t.clone())).or_default() += r.cost_micros;
            }
        }
        let got: HashMap<(SpendScope, String), i64> = store
            .spend_totals(start)
            .await
            .unwrap()
            .into_iter()
            .map(|t| ((t.scope, t.id), t.cost_micros))
            .collect();
        assert_eq!(got, want, "spend totals of the month starting at {start}");
    }

    let mut ranges: Vec<(Option<i64>, Option<i64>)> = vec![
        (None, None),
        (Some(month_ms), None),
        (Some(prev_ms), Some(next_ms)),
        (Some(month_ms + 5 * HOUR), Some(month_ms + 9 * HOUR)),
        (
            Some(month_ms + 5 * HOUR + 1),
            Some(month_ms + 5 * HOUR + 1000),
        ),
        (None, Some(month_ms + 3 * HOUR + 17)),
    ];
    for _ in 0..12 {
        let a =
            prev_ms + i64::try_from(rng.next(u64::try_from(next_ms - prev_ms).unwrap())).unwrap();
        let len = i64::try_from(rng.next(40 * 86_400_000)).unwrap();
        ranges.push((Some(a), Some(a + len)));
    }
    let filters = [
        UsageQuery::default(),
        UsageQuery {
            key_id: Some("key_1".into()),
            ..UsageQuery::default()
        },
        UsageQuery {
            team: Some("team_a".into()),
            model: Some("claude".into()),
            ..UsageQuery::default()
        },
        UsageQuery {
            account: Some("acct_0".into()),
            ..UsageQuery::default()
        },
    ];
    for (from_ms, to_ms) in ranges {
        for f in &filters {
            let q = UsageQuery {
                from_ms,
                to_ms,
                ..f.clone()
            };
            for group in [
                GroupBy::Hour,
                GroupBy::Day,
                GroupBy::Model,
                GroupBy::Key,
                GroupBy::Team,
                GroupBy::Account,
            ] {
                let got = sorted(store.usage_summary(&q, group).await.unwrap());
                assert_eq!(
                    got,
                    expected(&rows, &q, group),
                    "{group:?} over {from_ms:?}..{to_ms:?} with {q:?}"
                );
            }
        }
    }
}

/// A store in a fresh SQLite file; the directory lives as long as the returned guard.
async fn sqlite_store() -> (tempfile::TempDir, std::sync::Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = anyint::store::open(&format!("sqlite://{}/s.db", dir.path().display()))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn totals_and_buckets_equal_the_ledger_sqlite() {
    let (_dir, store) = sqlite_store().await;
    totals_and_buckets_equal_the_ledger(store.as_ref()).await;
}

#[tokio::test]
async fn pg_totals_and_buckets_equal_the_ledger() {
    let store = anyint::store::open(&crate::harness::fresh_pg_schema().await)
        .await
        .unwrap();
    totals_and_buckets_equal_the_ledger(store.as_ref()).await;
}

/// Rows older than the retention go; the buckets and totals that summed them stay.
async fn retention_keeps_the_sums(store: &dyn Store, removes_months: bool) {
    let now = anyint::clock::unix_millis();
    let (month, _) = anyint::clock::month_bounds(now / 1000);
    let (old_month, _) = anyint::clock::month_bounds(month - 200 * 86_400);
    let old_ms = old_month * 1000;
    let mut rng = Lcg(11);
    let old: Vec<UsageRecord> = (0..300)
        .map(|i| row(i, &mut rng, old_ms, 86_400_000))
        .collect();
    let recent: Vec<UsageRecord> = (300..400)
        .map(|i| row(i, &mut rng, now - 2 * HOUR, HOUR))
        .collect();
    store.insert_usage(&old).await.unwrap();
    store.insert_usage(&recent).await.unwrap();
    let all = UsageQuery {
        limit: 10_000,
        ..UsageQuery::default()
    };
    let before = sorted(store.usage_summary(&all, GroupBy::Day).await.unwrap());
    let totals_before = store.spend_totals(old_ms).await.unwrap();

    let removed = store
        .maintain_usage(now, Some(now - 90 * 86_400_000))
        .await
        .unwrap();
    assert_eq!(removed, if removes_months { 1 } else { 300 });
    let left = store.usage(&all).await.unwrap();
    assert_eq!(left.len(), 100, "only the recent rows are left");
    assert!(left.iter().all(|r| r.created_at_ms >= now - 2 * HOUR));
    assert_eq!(
        sorted(store.usage_summary(&all, GroupBy::Day).await.unwrap()),
        before,
        "the hourly buckets still answer for the removed rows"
    );
    assert_eq!(store.spend_totals(old_ms).await.unwrap(), totals_before);
    // Nothing more to remove; a row for the removed month can still be written.
    assert_eq!(
        store
            .maintain_usage(now, Some(now - 90 * 86_400_000))
            .await
            .unwrap(),
        0
    );
    store
        .insert_usage(&[row(999, &mut rng, old_ms, HOUR)])
        .await
        .unwrap();
}

#[tokio::test]
async fn retention_keeps_the_sums_sqlite() {
    let (_dir, store) = sqlite_store().await;
    retention_keeps_the_sums(store.as_ref(), false).await;
}

#[tokio::test]
async fn pg_retention_drops_whole_months() {
    let url = crate::harness::fresh_pg_schema().await;
    let store = anyint::store::open(&url).await.unwrap();
    retention_keeps_the_sums(store.as_ref(), true).await;
    // This month's and next month's partitions exist ahead of their rows.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT CAST(c.relname AS TEXT) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = CAST('usage_ledger' AS regclass) ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let (month, next) = anyint::clock::month_bounds(anyint::clock::unix_secs());
    let name = |s: i64| {
        let d = anyint::clock::rfc3339(s);
        format!("usage_ledger_m{}{}", &d[..4], &d[5..7])
    };
    let names: Vec<String> = names.into_iter().map(|n| n.0).collect();
    assert!(
        names.contains(&name(month)) && names.contains(&name(next)),
        "{names:?}"
    );
}

/// A request to the priced model with `key`, its whole answer read (so its row is recorded
/// before the caller's next step): the status and the body.
async fn priced_chat(t: &TestGateway, key: &str) -> (u16, Value) {
    let resp = t
        .http
        .post(t.url("/openai/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt-4o", "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn cap_config(redis: &str, prefix: &str) -> String {
    format!(
        "\n[limits]\nredis_url = \"{redis}\"\nkey_prefix = \"{prefix}\"\non_redis_error = \"open\"\nredis_timeout_ms = 500\n"
    )
}

async fn post_admin(t: &TestGateway, path: &str, body: Value) {
    let resp = t
        .admin(Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "{path}: {}",
        resp.text().await.unwrap()
    );
}

/// Two instances on one Postgres and one Redis, with a refresh interval of an hour so that
/// only the shared counters can tell one instance what the other spent: a plan cap is
/// overshot by no more than the requests in flight when it is reached, and every refusal is
/// `insufficient_quota`.
#[tokio::test(flavor = "multi_thread")]
async fn pg_two_instances_hold_a_plan_cap_through_redis() {
    let redis = PrivateRedis::start().await;
    let prefix = format!("t{}", hex::encode(anyint::auth::random_bytes::<4>()));
    let (a, b) = crate::redis::two_on_one_postgres(&cap_config(&redis.url(), &prefix)).await;
    // One request's cost, measured on a key without a cap.
    let resp = a
        .chat(json!({"model": "gpt-4o", "messages": user("hi")}))
        .await;
    let rid = crate::harness::request_id(&resp);
    assert_eq!(resp.status(), 200);
    let one = a.usage(&rid).await[0].cost_micros;
    assert!(one > 0);
    let cap = one * 40;
    post_admin(
        &a,
        "/admin/v1/plans",
        json!({"id": "capped", "credit_cap_micros": cap}),
    )
    .await;
    post_admin(
        &a,
        "/admin/v1/accounts",
        json!({"id": "thrifty", "plan": "capped"}),
    )
    .await;
    let created: Value = a
        .admin(Method::POST, "/admin/v1/keys")
        .json(&json!({"name": "k", "account": "thrifty"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    // B learns of the plan, account and key now (its own refresh is an hour away).
    let bs = &b.gw.as_ref().unwrap().state;
    bs.keys.reload().await.unwrap();
    bs.directory.reload().await.unwrap();

    // 8 workers per instance, 200 requests in all: at most 16 in flight at any moment.
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers = (0..WORKERS).map(|w| {
        let t = if w % 2 == 0 { &a } else { &b };
        let (next, key) = (next.clone(), key.clone());
        async move {
            let mut seen = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 200 {
                let (status, body) = priced_chat(t, &key).await;
                seen.push((status, body["error"]["code"].as_str().map(str::to_owned)));
            }
            seen
        }
    });
    let seen: Vec<(u16, Option<String>)> = futures_util::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    let admitted = seen.iter().filter(|s| s.0 == 200).count();
    for (status, code) in &seen {
        assert!(
            *status == 200 || (*status == 429 && code.as_deref() == Some("insufficient_quota")),
            "{status} {code:?}"
        );
    }
    a.gw.as_ref().unwrap().state.meter.flush().await;
    bs.meter.flush().await;
    let rows = a
        .store
        .usage(&UsageQuery {
            account: Some("thrifty".into()),
            limit: 10_000,
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    // Refusals are in the ledger too, at no cost.
    assert_eq!(rows.len(), 200);
    assert_eq!(rows.iter().filter(|r| r.status == 200).count(), admitted);
    let spent: i64 = rows.iter().map(|r| r.cost_micros).sum();
    let largest = rows.iter().map(|r| r.cost_micros).max().unwrap_or(0);
    assert!(spent >= cap, "the cap was reached: {spent} of {cap}");
    assert!(
        spent <= cap + i64::try_from(WORKERS).unwrap() * largest,
        "spent {spent} against a cap of {cap}: more than {WORKERS} requests of at most {largest} over it"
    );
    assert!(admitted < 200, "some requests were refused");
}

/// A restarted Redis has lost the counters: the first capped admission rebuilds them from the
/// store's totals, and they go on counting from there.
#[tokio::test(flavor = "multi_thread")]
async fn shared_spend_counters_are_rebuilt_after_a_redis_restart() {
    let mut redis = PrivateRedis::start().await;
    let prefix = format!("t{}", hex::encode(anyint::auth::random_bytes::<4>()));
    let t = TestGateway::builder()
        .toml(&cap_config(&redis.url(), &prefix))
        .start()
        .await;
    let created: Value = t
        .admin(Method::POST, "/admin/v1/keys")
        .json(&json!({"name": "k", "budget_micros": 1_000_000_000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (key, id) = (
        created["key"].as_str().unwrap().to_owned(),
        created["id"].as_str().unwrap().to_owned(),
    );
    let ask = || async { priced_chat(&t, &key).await.0 };
    let month_ms = anyint::clock::month_bounds(anyint::clock::unix_secs()).0 * 1000;
    let counter = format!("{prefix}:spend:{month_ms}:key:{id}");
    let stored = || async {
        t.gw.as_ref().unwrap().state.meter.flush().await;
        t.store
            .spend_totals(month_ms)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.scope == SpendScope::Key && s.id == id)
            .map_or(0, |s| s.cost_micros)
    };
    let read = |url: String, counter: String| async move {
        let client = ::redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        ::redis::cmd("GET")
            .arg(&counter)
            .query_async::<Option<i64>>(&mut conn)
            .await
            .unwrap()
    };
    // Counters equal the store's totals once the changes in flight have landed.
    // The port stays the same across the restart.
    let url = redis.url();
    let settled = |want: i64| {
        let (url, counter) = (url.clone(), counter.clone());
        async move {
            for _ in 0..500 {
                if read(url.clone(), counter.clone()).await == Some(want) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!(
                "the shared counter never reached {want}: {:?}",
                read(url, counter).await
            );
        }
    };
    for _ in 0..3 {
        assert_eq!(ask().await, 200);
    }
    let first = stored().await;
    assert!(first > 0);
    settled(first).await;

    redis.kill();
    redis.spawn().await;
    assert_eq!(
        read(url.clone(), counter.clone()).await,
        None,
        "a new Redis is empty"
    );
    // Admissions go on (in-process while the breaker is open); one of them rebuilds.
    for _ in 0..20 {
        assert_eq!(ask().await, 200);
        if read(url.clone(), counter.clone()).await.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        assert_eq!(ask().await, 200);
    }
    let total = stored().await;
    assert!(total > first);
    settled(total).await;
}
