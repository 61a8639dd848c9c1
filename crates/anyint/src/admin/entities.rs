//! Admin REST for plans, accounts and teams: `POST` creates (409 if the ID exists), `GET`
//! lists, `PATCH /{id}` replaces the given fields. Every change reloads the policy cache, so it
//! applies to the next request on this instance.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind};
use crate::families::json_response;
use crate::families::openai::OpenAiError;
use crate::policy::directory::{AccountSpec, PlanSpec, TeamSpec};
use crate::state::SharedState;
use crate::store::{Entity, EntityKind};

/// The parts of a create body: `id` plus the spec's fields.
fn split_id(body: &[u8]) -> Result<(String, Value), Error> {
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(None, format!("invalid JSON body: {e}")))?;
    let Some(obj) = v.as_object_mut() else {
        return Err(Error::invalid(None, "the body must be a JSON object"));
    };
    let id = match obj.remove("id") {
        Some(Value::String(id)) if crate::store::is_valid_id(&id) => id,
        _ => {
            return Err(Error::invalid(
                Some("id"),
                format!("`id` must be a string of {}", crate::store::ID_RULE),
            ));
        }
    };
    Ok((id, v))
}

fn parse_spec<T: DeserializeOwned>(kind: EntityKind, v: Value) -> Result<T, Error> {
    serde_json::from_value(v)
        .map_err(|e| Error::invalid(None, format!("invalid {}: {e}", kind.as_str())))
}

/// Checks references and model names against the config and the directory.
fn validate(state: &SharedState, kind: EntityKind, spec: &Value) -> Result<(), Error> {
    validate_against(&state.directory.get(), Some(&state.config), kind, spec)
}

/// Checks references (plan, account) against `dir` and model names against `config` when
/// one is loaded.
fn validate_against(
    dir: &crate::policy::directory::Directory,
    config: Option<&crate::config::Config>,
    kind: EntityKind,
    spec: &Value,
) -> Result<(), Error> {
    if let Some(models) = spec.get("models").and_then(Value::as_array)
        && let Some(unknown) = models
            .iter()
            .filter_map(Value::as_str)
            .find(|m| config.is_some_and(|c| c.model(m).is_none()))
    {
        return Err(Error::invalid(
            Some("models"),
            format!("`models` names `{unknown}`, which is not a configured model"),
        ));
    }
    match kind {
        EntityKind::Account => {
            if let Some(plan) = spec.get("plan").and_then(Value::as_str)
                && !dir.plans.contains_key(plan)
            {
                return Err(Error::invalid(
                    Some("plan"),
                    format!("no plan `{plan}`; create it with POST /admin/v1/plans"),
                ));
            }
        }
        EntityKind::Team => {
            if let Some(account) = spec.get("account").and_then(Value::as_str)
                && !dir.accounts.contains_key(account)
            {
                return Err(Error::invalid(
                    Some("account"),
                    format!("no account `{account}`; create it with POST /admin/v1/accounts"),
                ));
            }
        }
        EntityKind::Plan => {}
    }
    for limit in ["rpm", "concurrency"] {
        if spec.get(limit).and_then(Value::as_u64) == Some(0) {
            return Err(Error::invalid(
                None,
                format!("`{limit}` must be at least 1 (omit it for no limit)"),
            ));
        }
    }
    Ok(())
}

/// Validates `v` as the spec of `kind` and returns it re-serialized (normalized).
fn normalize(kind: EntityKind, v: Value) -> Result<Value, Error> {
    fn round<T: DeserializeOwned + Serialize>(kind: EntityKind, v: Value) -> Result<Value, Error> {
        let spec: T = parse_spec(kind, v)?;
        serde_json::to_value(spec).map_err(Error::internal)
    }
    match kind {
        EntityKind::Plan => round::<PlanSpec>(kind, v),
        EntityKind::Account => round::<AccountSpec>(kind, v),
        EntityKind::Team => round::<TeamSpec>(kind, v),
    }
}

fn entity_json(e: &Entity) -> Value {
    let mut v = json!({"id": e.id, "created_at": e.created_at});
    if let (Some(obj), Some(spec)) = (v.as_object_mut(), e.spec.as_object()) {
        obj.extend(spec.clone());
    }
    v
}

/// Creates an entity directly in the store (the CLI's path): the same normalization and
/// checks as the admin API, against the store's current directory.
pub async fn create_in_store(
    store: std::sync::Arc<dyn crate::store::Store>,
    config: Option<&crate::config::Config>,
    kind: EntityKind,
    body: &[u8],
) -> Result<Value, Error> {
    let (id, spec) = split_id(body)?;
    let spec = normalize(kind, spec)?;
    let directory = crate::policy::directory::DirectoryCache::new(store.clone());
    directory.reload().await?;
    validate_against(&directory.get(), config, kind, &spec)?;
    let entity = Entity {
        id,
        spec,
        created_at: crate::clock::unix_secs(),
    };
    if !store.insert_entity(kind, &entity).await? {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("a {} with id `{}` already exists", kind.as_str(), entity.id),
        ));
    }
    Ok(entity_json(&entity))
}

/// Lists entities as the admin API shows them.
pub async fn list_in_store(
    store: &dyn crate::store::Store,
    kind: EntityKind,
) -> Result<Vec<Value>, Error> {
    Ok(store
        .entities(kind)
        .await?
        .iter()
        .map(entity_json)
        .collect())
}

/// `POST /admin/v1/{plans,accounts,teams}`.
pub(super) async fn create(
    state: SharedState,
    kind: EntityKind,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, OpenAiError> {
    let bytes = crate::families::read_body(headers, body, 64 * 1024).await?;
    let (id, spec) = split_id(&bytes)?;
    let spec = normalize(kind, spec)?;
    validate(&state, kind, &spec)?;
    let entity = Entity {
        id,
        spec,
        created_at: crate::clock::unix_secs(),
    };
    if !state
        .store
        .insert_entity(kind, &entity)
        .await
        .map_err(Error::from)?
    {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "a {} with id `{}` already exists; PATCH it instead",
                kind.as_str(),
                entity.id
            ),
        )
        .with_code("already_exists")
        .into());
    }
    state.changed().await;
    let mut body = entity_json(&entity);
    if kind == EntityKind::Account {
        // The account's callback signing secret, shown with the account that owns it.
        let secret = crate::tasks::outbox::secret_for(&state, &entity.id)
            .await
            .map_err(Error::from)?;
        body["signing_secret"] = Value::String(secret);
    }
    Ok(json_response(StatusCode::CREATED, &body))
}

/// `GET /admin/v1/{plans,accounts,teams}`.
pub(super) async fn list(state: SharedState, kind: EntityKind) -> Result<Response, OpenAiError> {
    let data: Vec<Value> = state
        .store
        .entities(kind)
        .await
        .map_err(Error::from)?
        .iter()
        .map(entity_json)
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data}),
    ))
}

/// `PATCH /admin/v1/{plans,accounts,teams}/{id}`: the given fields replace the stored ones.
pub(super) async fn update(
    state: SharedState,
    kind: EntityKind,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, OpenAiError> {
    let bytes = crate::families::read_body(headers, body, 64 * 1024).await?;
    let patch: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(None, format!("invalid JSON body: {e}")))?;
    let Some(existing) = state
        .store
        .entities(kind)
        .await
        .map_err(Error::from)?
        .into_iter()
        .find(|e| e.id == id)
    else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no {} with id `{id}`", kind.as_str()),
        )
        .with_code("not_found")
        .into());
    };
    let mut merged = existing.spec.clone();
    if let (Some(target), Some(fields)) = (merged.as_object_mut(), patch.as_object()) {
        for (k, v) in fields {
            target.insert(k.clone(), v.clone());
        }
    } else {
        return Err(Error::invalid(None, "the body must be a JSON object").into());
    }
    let spec = normalize(kind, merged)?;
    validate(&state, kind, &spec)?;
    state
        .store
        .update_entity(kind, id, &spec)
        .await
        .map_err(Error::from)?;
    state.changed().await;
    Ok(json_response(
        StatusCode::OK,
        &entity_json(&Entity {
            id: id.to_owned(),
            spec,
            created_at: existing.created_at,
        }),
    ))
}

macro_rules! routes_for {
    ($create:ident, $list:ident, $update:ident, $kind:expr) => {
        pub(super) async fn $create(
            State(state): State<SharedState>,
            headers: HeaderMap,
            body: Body,
        ) -> Result<Response, OpenAiError> {
            create(state, $kind, &headers, body).await
        }
        pub(super) async fn $list(
            State(state): State<SharedState>,
        ) -> Result<Response, OpenAiError> {
            list(state, $kind).await
        }
        pub(super) async fn $update(
            State(state): State<SharedState>,
            Path(id): Path<String>,
            headers: HeaderMap,
            body: Body,
        ) -> Result<Response, OpenAiError> {
            update(state, $kind, &id, &headers, body).await
        }
    };
}

routes_for!(create_plan, list_plans, update_plan, EntityKind::Plan);
routes_for!(
    create_account,
    list_accounts,
    update_account,
    EntityKind::Account
);
routes_for!(create_team, list_teams, update_team, EntityKind::Team);
