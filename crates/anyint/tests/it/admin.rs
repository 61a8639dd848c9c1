//! The admin API: token guard, key lifecycle, usage listing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestGateway, request_id, user};

#[tokio::test]
async fn admin_api_is_off_without_a_token() {
    let t = TestGateway::builder().no_admin().start().await;
    let resp = t
        .http
        .get(t.url("/admin/v1/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ANYINT_ADMIN_TOKEN"),
        "{v}"
    );
}

#[tokio::test]
async fn client_keys_never_open_the_admin_api() {
    let t = TestGateway::start().await;
    for req in [
        t.get("/admin/v1/keys"),
        t.http.get(t.url("/admin/v1/keys")),
        t.http.get(t.url("/admin/v1/keys")).bearer_auth("nope"),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_admin_token");
    }
}

#[tokio::test]
async fn key_lifecycle_create_list_use_revoke() {
    let t = TestGateway::start().await;
    let resp = t
        .admin(Method::POST, "/admin/v1/keys")
        .json(&json!({"name": "ci", "account": "team-a", "models": ["gpt-4o"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    for k in ["id", "key", "name", "account", "models", "created_at"] {
        assert!(created.get(k).is_some(), "missing {k}: {created}");
    }
    assert_eq!(created["account"], "team-a");
    assert_eq!(created["models"], json!(["gpt-4o"]));
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-anyint-"));

    let list: Value = t
        .admin(Method::GET, "/admin/v1/keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == created["id"])
        .unwrap()
        .clone();
    assert!(listed.get("key").is_none(), "list must not show keys");
    assert!(
        !list.to_string().contains(&key),
        "the full key leaked in the list"
    );
    assert!(key.starts_with(listed["prefix"].as_str().unwrap()));
    // The hash is stored, never the key.
    let stored = t.store.list_keys().await.unwrap();
    let row = stored.iter().find(|k| k.id == created["id"]).unwrap();
    assert_eq!(row.key_hash, anyint::auth::hash_key(&key));

    let resp = t
        .http
        .post(t.url("/openai/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o", "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let id = created["id"].as_str().unwrap();
    let revoked: Value = t
        .admin(Method::DELETE, &format!("/admin/v1/keys/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(revoked["revoked_at"].is_i64());
    let again = t
        .admin(Method::DELETE, "/admin/v1/keys/key_doesnotexist")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn bad_key_requests_are_400() {
    let t = TestGateway::start().await;
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x", "models": ["no-such-model"]}),
        json!({"name": "x", "extra": 1}),
    ] {
        let resp = t
            .admin(Method::POST, "/admin/v1/keys")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
    }
}

#[tokio::test]
async fn usage_api_lists_ledger_rows_without_content() {
    let t = TestGateway::start().await;
    let secret_prompt = "Reply with exactly: confidential-words-123";
    let resp = t
        .chat(json!({"model": "gpt-4o-mini", "messages": user(secret_prompt)}))
        .await;
    let rid = request_id(&resp);
    let v: Value = t
        .admin(Method::GET, &format!("/admin/v1/usage?request_id={rid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["request_id"], rid);
    assert!(rows[0]["prompt_tokens"].as_i64().unwrap() > 0);
    assert!(!v.to_string().contains("confidential-words-123"));
}

#[tokio::test]
async fn usage_api_groups_by_model_and_key_with_exact_cost() {
    let t = TestGateway::start().await;
    for model in ["gpt-4o", "gpt-4o", "gpt-4o-mini"] {
        assert_eq!(
            t.chat(json!({"model": model, "messages": user("Reply with exactly: a b c")}))
                .await
                .status(),
            200
        );
    }
    let v: Value = t
        .admin(Method::GET, "/admin/v1/usage?group_by=model")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let groups = v["data"].as_array().unwrap();
    let four_o = groups.iter().find(|g| g["group"] == "gpt-4o").unwrap();
    assert_eq!(four_o["requests"], 2);
    assert!(
        four_o["cost_micros"].as_i64().unwrap() > 0,
        "gpt-4o has a price: {four_o}"
    );
    let mini = groups.iter().find(|g| g["group"] == "gpt-4o-mini").unwrap();
    assert_eq!(
        (mini["requests"].as_i64(), mini["cost_micros"].as_i64()),
        (Some(1), Some(0))
    );

    let v: Value = t
        .admin(Method::GET, "/admin/v1/usage?group_by=day&from=2020-01-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][0]["requests"], 3);
    let v: Value = t
        .admin(Method::GET, "/admin/v1/usage?group_by=key&to=2020-01-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"], json!([]));
    for bad in ["group_by=week", "from=yesterday", "teamz=t1"] {
        let r = t
            .admin(Method::GET, &format!("/admin/v1/usage?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn usage_groups_by_hour_and_counts_errors() {
    let t = TestGateway::start().await;
    assert_eq!(
        t.chat(json!({"model": "gpt-4o-mini", "messages": user("hi")}))
            .await
            .status(),
        200
    );
    let bad = t
        .chat(json!({"model": "gpt-4o-mini", "messages": user("x [emulate: status=400]")}))
        .await;
    assert!(bad.status().is_client_error(), "{}", bad.status());
    for group in ["hour", "minute"] {
        let v: Value = t
            .admin(Method::GET, &format!("/admin/v1/usage?group_by={group}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let data = v["data"].as_array().unwrap();
        let requests: i64 = data.iter().map(|g| g["requests"].as_i64().unwrap()).sum();
        let errors: i64 = data.iter().map(|g| g["errors"].as_i64().unwrap()).sum();
        assert_eq!((requests, errors), (2, 1), "{v}");
        let label = data[0]["group"].as_str().unwrap();
        assert!(label.ends_with(":00Z") && label.len() == 20, "{label}");
    }
}

#[tokio::test]
async fn admin_api_edits_a_key_s_restrictions() {
    let t = TestGateway::start().await;
    let made: Value = t
        .admin(Method::POST, "/admin/v1/keys")
        .json(&json!({"name": "editable", "rpm": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = made["id"].as_str().unwrap();
    let path = format!("/admin/v1/keys/{id}");
    let resp = t
        .admin(Method::PATCH, &path)
        .json(&json!({"models": ["gpt-4o"], "rpm": null, "concurrency": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["models"], json!(["gpt-4o"]));
    assert_eq!(v["rpm"], Value::Null);
    assert_eq!(v["concurrency"], 2);
    // The key cache has the change: the key may no longer use another model.
    let key = made["key"].as_str().unwrap();
    let resp = t
        .http
        .post(t.url("/openai/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt-4o-mini", "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    for (body, status) in [
        (json!({"name": "renamed"}), 400),
        (json!({"models": ["no-such-model"]}), 400),
        (json!({"rpm": 0}), 400),
    ] {
        let resp = t
            .admin(Method::PATCH, &path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{body}");
    }
    let resp = t
        .admin(Method::PATCH, "/admin/v1/keys/key_nope")
        .json(&json!({"rpm": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
