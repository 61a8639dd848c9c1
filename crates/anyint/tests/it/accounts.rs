//! Plans, accounts and teams: entitlement as plan ∩ team ∩ key, limits shared by a team and
//! by an account, admin changes applied at once.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestGateway, user};

async fn admin(t: &TestGateway, method: Method, path: &str, body: Value) -> (u16, Value) {
    let resp = t.admin(method, path).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn key(t: &TestGateway, body: Value) -> String {
    let (status, v) = admin(t, Method::POST, "/admin/v1/keys", body).await;
    assert_eq!(status, 201, "{v}");
    v["key"].as_str().unwrap().to_owned()
}

async fn models(t: &TestGateway, key: &str) -> Vec<String> {
    let v: Value = t
        .http
        .get(t.url("/openai/v1/models"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn chat(t: &TestGateway, key: &str, model: &str) -> (u16, Value) {
    let resp = t
        .http
        .post(t.url("/openai/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn entitlement_is_plan_and_team_and_key_and_changes_apply_at_once() {
    let t = TestGateway::start().await;
    assert_eq!(
        admin(
            &t,
            Method::POST,
            "/admin/v1/plans",
            json!({"id": "starter", "models": ["gpt-4o-mini", "gpt-4o"]})
        )
        .await
        .0,
        201
    );
    assert_eq!(
        admin(
            &t,
            Method::POST,
            "/admin/v1/accounts",
            json!({"id": "acme", "plan": "starter"})
        )
        .await
        .0,
        201
    );
    assert_eq!(
        admin(
            &t,
            Method::POST,
            "/admin/v1/teams",
            json!({"id": "research", "account": "acme", "models": ["gpt-4o", "claude"]})
        )
        .await
        .0,
        201
    );
    let account_key = key(&t, json!({"name": "a", "account": "acme"})).await;
    let team_key = key(&t, json!({"name": "t", "team": "research"})).await;
    let narrow_key = key(
        &t,
        json!({"name": "n", "team": "research", "models": ["gpt-4o-mini"]}),
    )
    .await;

    assert_eq!(models(&t, &account_key).await, ["gpt-4o-mini", "gpt-4o"]);
    assert_eq!(models(&t, &team_key).await, ["gpt-4o"], "plan ∩ team");
    assert_eq!(
        models(&t, &narrow_key).await,
        Vec::<String>::new(),
        "plan ∩ team ∩ key is empty"
    );

    let (status, v) = chat(&t, &account_key, "claude").await;
    assert_eq!(status, 403);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("plan `starter`"),
        "{v}"
    );
    let (status, v) = chat(&t, &team_key, "gpt-4o-mini").await;
    assert_eq!(status, 403);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("team `research`"),
        "{v}"
    );
    assert_eq!(chat(&t, &team_key, "gpt-4o").await.0, 200);

    // Upgrading the account's plan applies to the next request.
    assert_eq!(
        admin(&t, Method::POST, "/admin/v1/plans", json!({"id": "pro"}))
            .await
            .0,
        201
    );
    let (status, v) = admin(
        &t,
        Method::PATCH,
        "/admin/v1/accounts/acme",
        json!({"plan": "pro"}),
    )
    .await;
    assert_eq!((status, v["plan"].as_str()), (200, Some("pro")));
    assert_eq!(chat(&t, &account_key, "claude").await.0, 200);
    assert_eq!(models(&t, &team_key).await, ["gpt-4o", "claude"]);
}

#[tokio::test]
async fn team_and_account_limits_are_shared_by_their_keys() {
    let t = TestGateway::start().await;
    admin(
        &t,
        Method::POST,
        "/admin/v1/plans",
        json!({"id": "small", "rpm": 4}),
    )
    .await;
    admin(
        &t,
        Method::POST,
        "/admin/v1/accounts",
        json!({"id": "acme", "plan": "small"}),
    )
    .await;
    admin(
        &t,
        Method::POST,
        "/admin/v1/teams",
        json!({"id": "ops", "account": "acme", "rpm": 2}),
    )
    .await;
    let team_a = key(&t, json!({"name": "a", "team": "ops"})).await;
    let team_b = key(&t, json!({"name": "b", "team": "ops"})).await;
    let other = key(&t, json!({"name": "c", "account": "acme"})).await;

    assert_eq!(chat(&t, &team_a, "gpt-4o-mini").await.0, 200);
    assert_eq!(chat(&t, &team_b, "gpt-4o-mini").await.0, 200);
    let (status, v) = chat(&t, &team_a, "gpt-4o-mini").await;
    assert_eq!(
        status, 429,
        "the team's 2 per minute are shared by both keys"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("team ops"),
        "{v}"
    );

    // The account's plan allows 4 per minute across all its keys; the team's refusal above
    // did not use one of them.
    assert_eq!(chat(&t, &other, "gpt-4o-mini").await.0, 200);
    assert_eq!(chat(&t, &other, "gpt-4o-mini").await.0, 200);
    let (status, v) = chat(&t, &other, "gpt-4o-mini").await;
    assert_eq!(status, 429);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("account acme"),
        "{v}"
    );
}

#[tokio::test]
async fn admin_validation_for_plans_accounts_and_teams() {
    let t = TestGateway::start().await;
    assert_eq!(
        admin(&t, Method::POST, "/admin/v1/plans", json!({"id": "p"}))
            .await
            .0,
        201
    );
    let (status, v) = admin(&t, Method::POST, "/admin/v1/plans", json!({"id": "p"})).await;
    assert_eq!(status, 409, "duplicate id: {v}");
    for (path, body) in [
        (
            "/admin/v1/plans",
            json!({"id": "q", "models": ["no-such-model"]}),
        ),
        ("/admin/v1/plans", json!({"id": "q", "bogus": 1})),
        ("/admin/v1/plans", json!({"models": []})),
        ("/admin/v1/accounts", json!({"id": "a", "plan": "missing"})),
        ("/admin/v1/teams", json!({"id": "t", "account": "missing"})),
        ("/admin/v1/keys", json!({"name": "k", "team": "missing"})),
    ] {
        let (status, v) = admin(&t, Method::POST, path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {v}");
    }
    assert_eq!(
        admin(
            &t,
            Method::PATCH,
            "/admin/v1/accounts/nobody",
            json!({"plan": "p"})
        )
        .await
        .0,
        404
    );
    let (_, list) = admin(&t, Method::GET, "/admin/v1/plans", json!(null)).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn credit_caps_refuse_with_insufficient_quota_after_settling_real_usage() {
    let t = TestGateway::start().await;
    // gpt-4o is priced in the harness (2.5 / 10 units per million tokens): a small request
    // costs a few hundred micro-units.
    let budget_key = key(&t, json!({"name": "b", "budget_micros": 1})).await;
    let (status, _) = chat(&t, &budget_key, "gpt-4o").await;
    assert_eq!(status, 200, "admission sees an unspent budget");
    let resp = t
        .http
        .post(t.url("/openai/v1/chat/completions"))
        .bearer_auth(&budget_key)
        .json(&json!({"model": "gpt-4o", "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(
        resp.headers()["x-should-retry"],
        "false",
        "no tight retry loop"
    );
    assert!(!resp.headers().contains_key("retry-after"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["error"]["type"].as_str(), v["error"]["code"].as_str()),
        (Some("insufficient_quota"), Some("insufficient_quota"))
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("resets at") && message.contains("key sk-anyint-"),
        "{message}"
    );
    // Unpriced models cost nothing, but the cap is per key: still refused.
    assert_eq!(chat(&t, &budget_key, "gpt-4o-mini").await.0, 429);

    // A plan's cap is shared by every key of the account; a stream that runs past it is
    // charged in full and the next request is refused.
    admin(
        &t,
        Method::POST,
        "/admin/v1/plans",
        json!({"id": "capped", "credit_cap_micros": 1}),
    )
    .await;
    admin(
        &t,
        Method::POST,
        "/admin/v1/accounts",
        json!({"id": "thrifty", "plan": "capped"}),
    )
    .await;
    let a = key(&t, json!({"name": "a", "account": "thrifty"})).await;
    let b = key(&t, json!({"name": "b", "account": "thrifty"})).await;
    let resp = t
        .http
        .post(t.url("/openai/v1/chat/completions"))
        .bearer_auth(&a)
        .json(&json!({"model": "gpt-4o", "stream": true, "messages": user("Reply with exactly: a b c d e f")}))
        .send()
        .await
        .unwrap();
    let rid = crate::harness::request_id(&resp);
    assert!(resp.text().await.unwrap().contains("[DONE]"));
    assert!(
        t.usage(&rid).await[0].cost_micros > 1,
        "billed for what was generated"
    );
    let (status, v) = chat(&t, &b, "gpt-4o").await;
    assert_eq!(status, 429);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("account thrifty (plan capped)"),
        "{v}"
    );

    // Spend survives a reload from the ledger (another instance, or a restart).
    let state = &t.gw.as_ref().unwrap().state;
    state.spend.reload(state.store.as_ref()).await.unwrap();
    assert_eq!(chat(&t, &b, "gpt-4o").await.0, 429);
    let v: Value = t
        .admin(
            Method::GET,
            "/admin/v1/usage?group_by=account&account=thrifty",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["data"][0]["cost_micros"].as_i64().unwrap() > 1);
}
