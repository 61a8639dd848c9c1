//! "Suno-style" music generation in the reseller format (sunoapi.org,
//! kie.ai): `POST /api/v1/generate` and `GET /api/v1/generate/record-info`.
//! Every answer is a `{"code","msg","data"}` envelope whose `code` is a
//! business code: auth and validation failures answer HTTP 200 with code
//! 401 / 422, only injected faults change the HTTP status. Runs the gate,
//! validates the generate body like the resellers do and leaves the task's
//! life to [`crate::task`]; stage callbacks go to `callBackUrl`.

pub(crate) mod error;
mod render;

use std::sync::Arc;

use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use self::error::invalid;
use crate::fault::{self, strip_directives};
use crate::gate::{self, Family, Incoming};
use crate::state::State;
use crate::task::{self, Kind, Task};
use crate::util::{hex_id, query_pairs};

/// Accepted `model` values.
const MODELS: [&str; 6] = ["V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5", "V5_5"];
/// Fields that may carry an `[emulate: …]` directive, in the order read.
const DIRECTIVE_FIELDS: [&str; 3] = ["prompt", "style", "title"];

/// `POST /api/v1/generate`.
pub(crate) async fn generate(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let field = |name: &str| json.as_ref()?.get(name)?.as_str();
    let (model, suffix) = fault::split_model(field("model").unwrap_or(""));
    let text = DIRECTIVE_FIELDS
        .into_iter()
        .filter_map(field)
        .find(|t| fault::directive(t).is_some());
    let incoming = Incoming {
        headers: &headers,
        body: &body,
        json: json.as_ref(),
        model_suffix: suffix,
        text,
        model,
        is_chat: false,
    };
    let fault = match gate::admit_as(&state, &incoming, Family::Music).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let resp = match validate(json.as_ref(), model) {
        Err(msg) => invalid(&msg),
        Ok(callback) => {
            let mut request = json.clone().unwrap_or(Value::Null);
            request["model"] = Value::String(model.to_owned());
            let id = hex_id(&state.tasks.fresh_seed(), 32);
            let task = Task::new(
                id.clone(),
                Kind::Music,
                render::DIALECT,
                fault.task.clone(),
                request,
            );
            task::create(&state.tasks, task, callback);
            render::ok(&json!({"taskId": id}))
        }
    };
    fault.decorate(resp)
}

/// `GET /api/v1/generate/record-info?taskId=…`: advances the task one step
/// (unless it is time-driven) and answers its record; business code 404
/// for an unknown id.
pub(crate) async fn record_info(
    AxState(state): AxState<Arc<State>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let incoming = Incoming {
        headers: &headers,
        body: &[],
        json: None,
        model_suffix: None,
        text: None,
        model: "",
        is_chat: false,
    };
    let fault = match gate::admit_as(&state, &incoming, Family::Music).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let id = query_pairs(query.as_deref().unwrap_or(""))
        .into_iter()
        .find_map(|(k, v)| (k == "taskId").then_some(v))
        .filter(|v| !v.is_empty());
    let resp = match id {
        None => invalid("taskId is required"),
        Some(id) => match task::poll(&state.tasks, &id, is_music, render::record).await {
            Some(data) => render::ok(&data),
            None => error::envelope(StatusCode::OK, 404, "task not found"),
        },
    };
    fault.decorate(resp)
}

fn is_music(kind: Kind) -> bool {
    kind == Kind::Music
}

/// Checks a generate body (music.md §2); returns the callback URL to use.
/// The error is the business-422 `msg`.
fn validate(json: Option<&Value>, model: &str) -> Result<Option<String>, String> {
    let Some(body) = json.filter(|v| v.is_object()) else {
        return Err("request body must be a JSON object".to_owned());
    };
    let flag = |name: &str| match body.get(name) {
        None | Some(Value::Null) => Err(format!("{name} is required")),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{name} must be a boolean")),
    };
    let custom = flag("customMode")?;
    let instrumental = flag("instrumental")?;
    if model.is_empty() {
        return Err("model is required".to_owned());
    }
    if !MODELS.contains(&model) {
        return Err(format!("model must be one of {}", MODELS.join(", ")));
    }
    // Text fields: `None` when absent or blank; length without directives.
    let text = |name: &str| match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(strip_directives(s).trim().chars().count())),
        Some(_) => Err(format!("{name} must be a string")),
    };
    let (prompt, style, title) = (text("prompt")?, text("style")?, text("title")?);
    let v4 = model == "V4";
    if custom {
        let mut required = vec![("style", style), ("title", title)];
        if !instrumental {
            required.push(("prompt", prompt));
        }
        if let Some((name, _)) = required.iter().find(|(_, len)| len.is_none()) {
            return Err(format!("{name} is required in custom mode"));
        }
        let title_max = if v4 || model == "V4_5ALL" { 80 } else { 100 };
        too_long("prompt", prompt, if v4 { 3000 } else { 5000 })?;
        too_long("style", style, if v4 { 200 } else { 1000 })?;
        too_long("title", title, title_max)?;
    } else {
        if prompt.is_none() {
            return Err("prompt is required".to_owned());
        }
        too_long("prompt", prompt, 500)?;
    }
    match body.get("callBackUrl") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url)) if url.trim().is_empty() => Ok(None),
        Some(Value::String(url)) if url.starts_with("http://") || url.starts_with("https://") => {
            Ok(Some(url.clone()))
        }
        Some(_) => Err("callBackUrl must be an http(s) URL".to_owned()),
    }
}

fn too_long(name: &str, len: Option<usize>, max: usize) -> Result<(), String> {
    match len {
        Some(n) if n > max => Err(format!("{name} is too long ({n} > {max} characters)")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &Value) -> Result<Option<String>, String> {
        let model = body["model"].as_str().unwrap_or("");
        validate(Some(body), model)
    }

    #[test]
    fn custom_mode_requirements() {
        let mut body = json!({"customMode": true, "instrumental": true, "model": "V4_5",
                              "style": "jazz", "title": "T"});
        assert_eq!(check(&body), Ok(None));
        body["instrumental"] = json!(false);
        assert!(check(&body).unwrap_err().contains("prompt"));
        body["prompt"] = json!("[Verse] la");
        body["callBackUrl"] = json!("http://127.0.0.1:9/cb");
        assert_eq!(check(&body), Ok(Some("http://127.0.0.1:9/cb".to_owned())));
        body["title"] = json!("");
        assert!(check(&body).unwrap_err().contains("title"));
    }

    #[test]
    fn simple_mode_and_types() {
        let body = json!({"customMode": false, "instrumental": false, "model": "V5",
                          "prompt": "a song"});
        assert_eq!(check(&body), Ok(None));
        let long = json!({"customMode": false, "instrumental": false, "model": "V5",
                          "prompt": "x".repeat(501)});
        assert!(check(&long).unwrap_err().contains("too long"));
        let no_flag = json!({"instrumental": false, "model": "V5", "prompt": "a"});
        assert_eq!(check(&no_flag), Err("customMode is required".to_owned()));
        let bad_flag = json!({"customMode": "no", "instrumental": false, "model": "V5"});
        assert!(check(&bad_flag).unwrap_err().contains("boolean"));
        let bad_model = json!({"customMode": false, "instrumental": false, "model": "V3",
                               "prompt": "a"});
        assert!(check(&bad_model).unwrap_err().contains("V4_5PLUS"));
        let bad_url = json!({"customMode": false, "instrumental": false, "model": "V5",
                             "prompt": "a", "callBackUrl": "ftp://x"});
        assert!(check(&bad_url).is_err());
    }
}
