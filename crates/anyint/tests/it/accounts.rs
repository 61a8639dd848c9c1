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
