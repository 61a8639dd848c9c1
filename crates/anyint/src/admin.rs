//! The admin REST API under `/admin/v1/…`, guarded by the operator's admin token.
//!
//! The token comes from the env var named by `[server] admin_token_env`; without it the admin
//! API answers 404 with how to enable it. Client keys never open it: the check compares only
//! against the admin token. Errors use the OpenAI envelope.

pub mod entities;
pub mod tasks;

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind};
use crate::families::json_response;
use crate::families::openai::{OpenAiError, render_error};
use crate::state::SharedState;
use crate::store::{ApiKey, GroupBy, UsageQuery};

/// The admin routes, with the token check applied to each.
pub fn routes(state: SharedState) -> Router<SharedState> {
    Router::new()
        .route("/admin/v1/keys", get(list_keys).post(create_key))
        .route("/admin/v1/keys/{id}", delete(revoke_key).patch(update_key))
        .route("/admin/v1/usage", get(usage))
        .route("/admin/v1/routes", get(routes_state))
        .route(
            "/admin/v1/plans",
            get(entities::list_plans).post(entities::create_plan),
        )
        .route(
            "/admin/v1/plans/{id}",
            axum::routing::patch(entities::update_plan),
        )
        .route(
            "/admin/v1/accounts",
            get(entities::list_accounts).post(entities::create_account),
        )
        .route(
            "/admin/v1/accounts/{id}",
            axum::routing::patch(entities::update_account),
        )
        .route(
            "/admin/v1/teams",
            get(entities::list_teams).post(entities::create_team),
        )
        .route(
            "/admin/v1/teams/{id}",
            axum::routing::patch(entities::update_team),
        )
        .route("/admin/v1/tasks", get(tasks::list))
        .route("/admin/v1/tasks/{id}", get(tasks::get))
        .route("/admin/v1/tasks/{id}/deliveries", get(tasks::deliveries))
        .route(
            "/admin/v1/tasks/{id}/deliveries/{event_id}/replay",
            axum::routing::post(tasks::replay),
        )
        .route(
            "/admin/v1/accounts/{id}/signing-secret",
            get(tasks::get_secret).post(tasks::rotate_secret),
        )
        .route_layer(axum::middleware::from_fn_with_state(state, require_admin))
}

async fn require_admin(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let server = &state.config.server;
    let Some(expected) = &server.admin_token else {
        return render_error(
            Error::new(
                ErrorKind::NotFound,
                format!("the admin API is disabled: set the {} environment variable to an admin token and restart", server.admin_token_env),
            )
            .with_code("admin_disabled"),
        );
    };
    let presented = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    // Comparing digests keeps the comparison time independent of the token's contents.
    let ok = presented.is_some_and(|p| {
        Sha256::digest(p.as_bytes()) == Sha256::digest(expected.expose().as_bytes())
    });
    if !ok {
        return render_error(
            Error::new(
                ErrorKind::Unauthenticated,
                "admin routes need `Authorization: Bearer <admin token>`; client API keys are not accepted here",
            )
            .with_code("invalid_admin_token"),
        );
    }
    next.run(req).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    account: Option<String>,
    models: Option<Vec<String>>,
    expires_at: Option<When>,
    ip_allowlist: Option<Vec<String>>,
    rpm: Option<u32>,
    concurrency: Option<u32>,
    team: Option<String>,
    budget_micros: Option<i64>,
    tpm: Option<u32>,
}

/// A time the admin API takes: Unix seconds or an RFC 3339 timestamp.
#[derive(Deserialize)]
#[serde(untagged)]
enum When {
    Secs(i64),
    Text(String),
}

impl When {
    /// Unix seconds, or a 400 naming `param`.
    fn secs(self, param: &'static str) -> Result<i64, Error> {
        match self {
            Self::Secs(s) => Ok(s),
            Self::Text(t) => crate::clock::parse_rfc3339(&t).ok_or_else(|| {
                Error::invalid(
                    Some(param),
                    format!(
                        "`{param}` must be Unix seconds or an RFC 3339 timestamp like \
                         \"2026-12-31T23:59:59Z\""
                    ),
                )
            }),
        }
    }
}

/// A key as the admin API and `anyint keys … --json` show it (never the key itself);
/// `expires_at` as RFC 3339.
pub fn key_json(k: &ApiKey) -> serde_json::Value {
    json!({
        "id": k.id, "name": k.name, "account": k.account, "models": k.models,
        "prefix": k.prefix, "created_at": k.created_at, "revoked_at": k.revoked_at,
        "expires_at": k.limits.expires_at.map(crate::clock::rfc3339), "ip_allowlist": k.limits.ip_allowlist,
        "rpm": k.limits.rpm, "concurrency": k.limits.concurrency, "team": k.team, "budget_micros": k.limits.budget_micros, "tpm": k.limits.tpm,
    })
}

/// Checks a key request's fields against the config; shared by the admin API and the CLI.
pub fn validate_new_key(
    config: Option<&crate::config::Config>,
    name: &str,
    models: Option<&[String]>,
    limits: &crate::store::KeyLimits,
) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(Error::invalid(
            Some("name"),
            "`name` must be a non-empty string",
        ));
    }
    if let Some(list) = &limits.ip_allowlist
        && let Some(bad) = list
            .iter()
            .find(|c| crate::config::Cidr::parse(c).is_none())
    {
        return Err(Error::invalid(
            Some("ip_allowlist"),
            format!("`{bad}` is not a CIDR like 203.0.113.0/24 or 2001:db8::/32"),
        ));
    }
    if limits.rpm == Some(0) || limits.concurrency == Some(0) {
        return Err(Error::invalid(
            None,
            "`rpm` and `concurrency` must be at least 1 (omit them for no limit)",
        ));
    }
    if let (Some(config), Some(models)) = (config, models) {
        if let Some(unknown) = models.iter().find(|m| config.model(m).is_none()) {
            return Err(Error::invalid(
                Some("models"),
                format!("`models` names `{unknown}`, which is not a configured model"),
            ));
        }
    }
    Ok(())
}

async fn create_key(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OpenAiError> {
    let bytes = crate::families::read_body(&headers, body, 64 * 1024).await?;
    let req: CreateKey = serde_json::from_slice(&bytes).map_err(|e| {
        Error::invalid(
            None,
            format!("invalid body: {e}; expected {{\"name\", \"account\"?, \"models\"?}}"),
        )
    })?;
    let limits = crate::store::KeyLimits {
        expires_at: req.expires_at.map(|t| t.secs("expires_at")).transpose()?,
        ip_allowlist: req.ip_allowlist,
        rpm: req.rpm,
        concurrency: req.concurrency,
        budget_micros: req.budget_micros,
        tpm: req.tpm,
    };
    validate_new_key(
        Some(&state.config),
        &req.name,
        req.models.as_deref(),
        &limits,
    )?;
    let team_account = match &req.team {
        Some(team) => match state.directory.get().teams.get(team) {
            Some(t) => Some(t.account.clone()),
            None => {
                return Err(Error::invalid(
                    Some("team"),
                    format!("no team `{team}`; create it with POST /admin/v1/teams"),
                )
                .into());
            }
        },
        None => None,
    };
    let account = req
        .account
        .filter(|a| !a.is_empty())
        .or_else(|| team_account.clone())
        .unwrap_or_else(|| "default".to_owned());
    if !crate::store::is_valid_id(&account) {
        return Err(Error::invalid(
            Some("account"),
            format!("`account` must be {}", crate::store::ID_RULE),
        )
        .into());
    }
    if team_account.as_ref().is_some_and(|a| *a != account) {
        return Err(Error::invalid(Some("team"), "the team belongs to another account").into());
    }
    let (record, key) = crate::auth::issue_team_key(
        state.store.as_ref(),
        req.name.trim(),
        &account,
        req.models,
        limits,
        req.team,
    )
    .await
    .map_err(Error::from)?;
    state.keys.insert(record.clone());
    state.changed().await;
    let mut body = key_json(&record);
    body["key"] = json!(key);
    Ok(json_response(StatusCode::CREATED, &body))
}

async fn list_keys(State(state): State<SharedState>) -> Result<Response, OpenAiError> {
    let keys = state.store.list_keys().await.map_err(Error::from)?;
    let data: Vec<_> = keys.iter().map(key_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data}),
    ))
}

async fn revoke_key(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, OpenAiError> {
    let record = if crate::store::is_valid_id(&id) {
        state
            .store
            .revoke_key(&id, crate::clock::unix_secs())
            .await
            .map_err(Error::from)?
    } else {
        None
    };
    let Some(record) = record else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no key with id `{id}`; list keys with GET /admin/v1/keys"),
        )
        .with_code("key_not_found")
        .into());
    };
    state.keys.remove(&record.key_hash);
    state.changed().await;
    Ok(json_response(StatusCode::OK, &key_json(&record)))
}

/// The fields `PATCH /admin/v1/keys/{id}` may replace (`null` clears one).
const KEY_PATCH_FIELDS: &[&str] = &[
    "models",
    "expires_at",
    "ip_allowlist",
    "rpm",
    "concurrency",
    "budget_micros",
    "tpm",
];

/// `PATCH /admin/v1/keys/{id}`: replaces the given restrictions of a key (its name, account
/// and team stay); the change reaches the key cache at once.
async fn update_key(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OpenAiError> {
    let bytes = crate::families::read_body(&headers, body, 64 * 1024).await?;
    let patch: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(None, format!("invalid JSON body: {e}")))?;
    let Some(fields) = patch.as_object() else {
        return Err(Error::invalid(None, "the body must be a JSON object").into());
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !KEY_PATCH_FIELDS.contains(&k.as_str()))
    {
        return Err(Error::invalid(
            None,
            format!(
                "`{unknown}` cannot be changed; a key's changeable fields are {}",
                KEY_PATCH_FIELDS.join(", ")
            ),
        )
        .into());
    }
    let not_found = || {
        Error::new(
            ErrorKind::NotFound,
            format!("no key with id `{id}`; list keys with GET /admin/v1/keys"),
        )
        .with_code("key_not_found")
    };
    if !crate::store::is_valid_id(&id) {
        return Err(not_found().into());
    }
    let keys = state.store.list_keys().await.map_err(Error::from)?;
    let Some(existing) = keys.into_iter().find(|k| k.id == id) else {
        return Err(not_found().into());
    };
    let mut merged = serde_json::to_value(&existing.limits).map_err(Error::internal)?;
    let mut models = existing.models.clone();
    for (k, v) in fields {
        if k == "models" {
            models = serde_json::from_value(v.clone()).map_err(|e| {
                Error::invalid(
                    Some("models"),
                    format!("`models` must be a list of model IDs or null: {e}"),
                )
            })?;
        } else {
            merged[k] = v.clone();
        }
    }
    let limits: crate::store::KeyLimits = serde_json::from_value(merged)
        .map_err(|e| Error::invalid(None, format!("invalid restriction: {e}")))?;
    validate_new_key(
        Some(&state.config),
        &existing.name,
        models.as_deref(),
        &limits,
    )?;
    let record = state
        .store
        .update_key(&id, models.as_deref(), &limits)
        .await
        .map_err(Error::from)?
        .ok_or_else(not_found)?;
    state.changed().await;
    Ok(json_response(StatusCode::OK, &key_json(&record)))
}

/// The usage API's query parameters.
const USAGE_PARAMS: &[&str] = &[
    "account",
    "team",
    "key",
    "model",
    "request_id",
    "from",
    "to",
    "group_by",
    "limit",
];

/// Builds a usage query from `/admin/v1/usage` parameters (also used by `anyint usage`).
pub fn usage_query<S: std::hash::BuildHasher>(
    q: &HashMap<String, String, S>,
) -> Result<(UsageQuery, Option<GroupBy>), Error> {
    if let Some(unknown) = q.keys().find(|k| !USAGE_PARAMS.contains(&k.as_str())) {
        return Err(Error::invalid(
            None,
            format!(
                "unknown parameter `{unknown}`; supported: {}",
                USAGE_PARAMS.join(", ")
            ),
        ));
    }
    let instant = |name: &'static str| -> Result<Option<i64>, Error> {
        q.get(name)
            .map(|v| {
                crate::clock::parse_instant(v)
                    .map(|s| s.saturating_mul(1000))
                    .ok_or_else(|| {
                        Error::invalid(
                            Some(name),
                            format!("`{name}` must be Unix seconds or a date like 2025-01-31"),
                        )
                    })
            })
            .transpose()
    };
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| Error::invalid(Some("limit"), "`limit` must be an integer"))?,
        None => 100,
    };
    let group = match q.get("group_by").map(String::as_str) {
        None => None,
        Some("minute") => Some(GroupBy::Minute),
        Some("hour") => Some(GroupBy::Hour),
        Some("day") => Some(GroupBy::Day),
        Some("model") => Some(GroupBy::Model),
        Some("key") => Some(GroupBy::Key),
        Some("team") => Some(GroupBy::Team),
        Some("account") => Some(GroupBy::Account),
        Some(other) => {
            return Err(Error::invalid(
                Some("group_by"),
                format!(
                    "`group_by` must be minute, hour, day, model, key, team or account, not `{other}`"
                ),
            ));
        }
    };
    let query = UsageQuery {
        account: q.get("account").cloned(),
        team: q.get("team").cloned(),
        key_id: q.get("key").cloned(),
        model: q.get("model").cloned(),
        request_id: q.get("request_id").cloned(),
        from_ms: instant("from")?,
        to_ms: instant("to")?,
        limit,
    };
    Ok((query, group))
}

/// Whether a usage filter can match a row at all: an ID filter outside the ID rule, or a model
/// with a control character, matches none (and is not sent to a store, whose backends would
/// answer it differently).
fn matches_anything(q: &UsageQuery) -> bool {
    [&q.account, &q.team, &q.key_id, &q.request_id]
        .into_iter()
        .flatten()
        .all(|id| crate::store::is_valid_id(id))
        && !q
            .model
            .as_ref()
            .is_some_and(|m| m.contains(char::is_control))
}

async fn usage(
    State(state): State<SharedState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, OpenAiError> {
    let (query, group) = usage_query(&q)?;
    // Read-your-writes: rows of requests that already answered are written before reading.
    state.meter.flush().await;
    let possible = matches_anything(&query);
    let body = if let Some(g) = group {
        let data = if possible {
            state
                .store
                .usage_summary(&query, g)
                .await
                .map_err(Error::from)?
        } else {
            Vec::new()
        };
        json!({"object": "list", "group_by": q.get("group_by"), "data": data})
    } else {
        let data = if possible {
            state.store.usage(&query).await.map_err(Error::from)?
        } else {
            Vec::new()
        };
        json!({"object": "list", "data": data})
    };
    Ok(json_response(StatusCode::OK, &body))
}

async fn routes_state(State(state): State<SharedState>) -> Response {
    let data = state.router.snapshot(&state.config);
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}
