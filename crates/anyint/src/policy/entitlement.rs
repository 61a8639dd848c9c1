//! Model entitlement: which configured models a key may use — the intersection of its plan's,
//! its team's and its own model lists (see `policy::directory`).

use crate::config::{Config, ModelApi, ModelConfig};
use crate::error::{Error, ErrorKind};
use crate::family::Family;
use crate::policy::directory::{Denial, DirectoryCache};
use crate::store::ApiKey;

/// What entitlement reads: the configured models and the cached plans, accounts and teams.
#[derive(Clone, Copy)]
pub struct Catalog<'a> {
    /// The validated config (its models).
    pub config: &'a Config,
    /// Plans, accounts and teams.
    pub directory: &'a DirectoryCache,
}

/// Whether `key` may use model `id`.
pub fn allows(state: Catalog<'_>, key: &ApiKey, id: &str) -> bool {
    state.directory.get().check_model(key, id).is_ok()
}

/// The models `key` may use, in config order.
pub fn visible_models<'a>(state: Catalog<'a>, key: &ApiKey) -> Vec<&'a ModelConfig> {
    let dir = state.directory.get();
    state
        .config
        .models
        .iter()
        .filter(|m| dir.check_model(key, &m.id).is_ok())
        .collect()
}

/// The models `key` may use that serve one of `apis`: what the Anthropic (chat) and Gemini
/// (chat and embedding) model lists show, as their SDKs can call only those;
/// `/openai/v1/models` is the full discovery list, tasks included.
pub fn visible_models_serving<'a>(
    state: Catalog<'a>,
    key: &ApiKey,
    apis: &[ModelApi],
) -> Vec<&'a ModelConfig> {
    let mut models = visible_models(state, key);
    models.retain(|m| apis.contains(&m.api));
    models
}

/// Where each family lists models, for error messages.
fn models_path(family: Family) -> &'static str {
    match family {
        Family::OpenAi | Family::Responses => "GET /openai/v1/models",
        Family::Anthropic => "GET /anthropic/v1/models",
        Family::Gemini => "GET /gemini/v1beta/models",
    }
}

/// Resolves a requested model: 404 `model_not_found` when it is not configured, 403
/// `model_not_allowed` naming the level (key, team or plan) that does not include it.
pub fn resolve<'a>(
    state: Catalog<'a>,
    key: &ApiKey,
    id: &str,
    family: Family,
) -> Result<&'a ModelConfig, Error> {
    resolve_for(state, key, id, ModelApi::Chat, models_path(family))
}

/// [`resolve`] for a request of `api` (chat or embedding) from `family`: a 400 naming what the
/// model serves when it serves something else.
pub fn resolve_serving<'a>(
    state: Catalog<'a>,
    key: &ApiKey,
    id: &str,
    api: ModelApi,
    family: Family,
) -> Result<&'a ModelConfig, Error> {
    resolve_for(state, key, id, api, models_path(family))
}

/// [`resolve`] whatever the model serves (a model lookup, `GET /openai/v1/models/{id}`).
pub fn resolve_any<'a>(
    state: Catalog<'a>,
    key: &ApiKey,
    id: &str,
    family: Family,
) -> Result<&'a ModelConfig, Error> {
    let api = state.config.model(id).map_or(ModelApi::Chat, |m| m.api);
    resolve_for(state, key, id, api, models_path(family))
}

/// Resolves a model for an API (chat or a task family): as [`resolve`], plus a 400 naming the
/// right entry point when the model serves another API. `models_path` is named in messages.
pub fn resolve_for<'a>(
    state: Catalog<'a>,
    key: &ApiKey,
    id: &str,
    api: ModelApi,
    models_path: &str,
) -> Result<&'a ModelConfig, Error> {
    let Some(model) = state.config.model(id) else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "The model `{id}` does not exist on this gateway. Call {models_path} to list the models your key can use."
            ),
        )
        .with_code("model_not_found")
        .with_param("model"));
    };
    if let Err(denial) = state.directory.get().check_model(key, id) {
        let who = match denial {
            Denial::Key => "Your key is".to_owned(),
            Denial::Team(t) => format!("Your team `{t}` is"),
            Denial::Plan(p) => format!("Your plan `{p}` is"),
        };
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{who} not allowed to use the model `{id}`. Call {models_path} to list the models your key can use, or ask your administrator to enable this model."
            ),
        )
        .with_code("model_not_allowed")
        .with_param("model"));
    }
    if model.api != api {
        return Err(Error::invalid(
            Some("model"),
            format!(
                "The model `{id}` is {} model and is not served here; use it with {}.",
                model.api.a_noun(),
                model.api.entry_point()
            ),
        )
        .with_code("model_not_supported"));
    }
    Ok(model)
}
