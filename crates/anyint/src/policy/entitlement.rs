//! Model entitlement: which configured models a key may use. A key with no allowlist may use
//! every configured model.

use crate::config::{Config, ModelConfig};
use crate::error::{Error, ErrorKind};
use crate::families::Family;
use crate::store::ApiKey;

/// Whether `key` may use model `id`.
pub fn allows(key: &ApiKey, id: &str) -> bool {
    key.models
        .as_ref()
        .is_none_or(|m| m.iter().any(|x| x == id))
}

/// The models `key` may use, in config order.
pub fn visible_models<'a>(
    config: &'a Config,
    key: &'a ApiKey,
) -> impl Iterator<Item = &'a ModelConfig> + 'a {
    config.models.iter().filter(|m| allows(key, &m.id))
}

/// Where each family lists models, for error messages.
fn models_path(family: Family) -> &'static str {
    match family {
        Family::OpenAi => "GET /openai/v1/models",
        Family::Anthropic => "GET /anthropic/v1/models",
        Family::Gemini => "GET /gemini/v1beta/models",
    }
}

/// Resolves a requested model: 404 `model_not_found` when it is not configured, 403
/// `model_not_allowed` when this key may not use it.
pub fn resolve<'a>(
    config: &'a Config,
    key: &ApiKey,
    id: &str,
    family: Family,
) -> Result<&'a ModelConfig, Error> {
    let Some(model) = config.model(id) else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "The model `{id}` does not exist on this gateway. Call {} to list the models your key can use.",
                models_path(family)
            ),
        )
        .with_code("model_not_found")
        .with_param("model"));
    };
    if !allows(key, id) {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "Your key is not allowed to use the model `{id}`. Call {} to list the models your key can use, or ask your administrator to enable this model.",
                models_path(family)
            ),
        )
        .with_code("model_not_allowed")
        .with_param("model"));
    }
    Ok(model)
}
