//! OpenAI error envelopes: `{"error":{"message","type","param","code"}}` with
//! all four keys, and the canned bodies used for injected status faults.
//! Builds responses only; deciding *when* to fail lives in the callers.

use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::util::{describe, json_response};

/// One OpenAI-style error, ready to become a response.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) kind: &'static str,
    pub(crate) param: Option<String>,
    pub(crate) code: Option<&'static str>,
}

impl ApiError {
    /// A 400 `invalid_request_error` with no param and no code.
    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: None,
        }
    }

    pub(crate) fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The body real OpenAI sends for unparsable JSON.
    pub(crate) fn bad_json() -> Self {
        Self::invalid_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, \
             but what was sent was not valid JSON. If you have trouble figuring out how to fix \
             this, please contact us through our help center at help.openai.com.)",
        )
    }

    pub(crate) fn missing(param: &str) -> Self {
        Self::invalid_request(format!("Missing required parameter: '{param}'."))
            .with_param(param)
            .with_code("missing_required_parameter")
    }

    pub(crate) fn invalid_type(param: &str, expected: &str, got: &Value) -> Self {
        Self::invalid_request(format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            describe(got)
        ))
        .with_param(param)
        .with_code("invalid_type")
    }

    pub(crate) fn invalid_value(param: &str, message: impl Into<String>) -> Self {
        Self::invalid_request(message)
            .with_param(param)
            .with_code("invalid_value")
    }

    /// 401 for a request without a usable bearer key (OpenAI sends code null).
    pub(crate) fn no_key() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: "You didn't provide an API key. You need to provide your API key in an \
                      Authorization header using Bearer auth (i.e. Authorization: Bearer \
                      YOUR_KEY). You can obtain an API key from \
                      https://platform.openai.com/account/api-keys."
                .to_owned(),
            kind: "invalid_request_error",
            param: None,
            code: None,
        }
    }

    /// 401 for a wrong key; the key is masked like OpenAI does.
    pub(crate) fn bad_key(key: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: format!(
                "Incorrect API key provided: {}. You can find your API key at \
                 https://platform.openai.com/account/api-keys.",
                mask(key)
            ),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
        }
    }

    pub(crate) fn model_not_found(model: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("The model '{model}' does not exist"),
            kind: "invalid_request_error",
            param: Some("model".to_owned()),
            code: Some("model_not_found"),
        }
    }

    /// The body real OpenAI sends for `status` (used by `status=N` faults).
    pub(crate) fn for_status(status: StatusCode, quota: bool, model: &str) -> Self {
        let (message, kind, code): (String, &'static str, Option<&'static str>) =
            match status.as_u16() {
                400 => (
                    "Emulated bad request.".to_owned(),
                    "invalid_request_error",
                    None,
                ),
                401 => return Self::bad_key("sk-emulated-fault"),
                403 => (
                    "Country, region, or territory not supported".to_owned(),
                    "request_forbidden",
                    Some("unsupported_country_region_territory"),
                ),
                404 => return Self::model_not_found(model),
                429 if quota => (
                    "You exceeded your current quota, please check your plan and billing \
                     details. For more information on this error, read the docs: \
                     https://platform.openai.com/docs/guides/error-codes/api-errors."
                        .to_owned(),
                    "insufficient_quota",
                    Some("insufficient_quota"),
                ),
                429 => (
                    format!(
                        "Rate limit reached for {model} in organization org-emulator on \
                         requests per min (RPM): Limit 3, Used 3, Requested 1. Please try \
                         again in 20s. Visit https://platform.openai.com/account/rate-limits \
                         to learn more."
                    ),
                    "requests",
                    Some("rate_limit_exceeded"),
                ),
                500 => (
                    "The server had an error while processing your request. Sorry about that!"
                        .to_owned(),
                    "server_error",
                    None,
                ),
                502 | 503 => (
                    "The engine is currently overloaded, please try again later.".to_owned(),
                    "service_unavailable_error",
                    Some("server_is_overloaded"),
                ),
                529 => (
                    "The server is overloaded, please try again later.".to_owned(),
                    "overloaded_error",
                    Some("overloaded"),
                ),
                n if n >= 500 => (
                    format!("Emulated server error (HTTP {n})."),
                    "server_error",
                    None,
                ),
                n => (
                    format!("Emulated client error (HTTP {n})."),
                    "invalid_request_error",
                    None,
                ),
            };
        Self {
            status,
            message,
            kind,
            param: None,
            code,
        }
    }

    pub(crate) fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body())
    }
}

/// `sk-abc****wxyz`: first three and last four characters of long keys.
fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        return "****".to_owned();
    }
    let head: String = chars.iter().take(3).collect();
    let tail: String = chars.iter().skip(chars.len() - 4).collect();
    format!("{head}****{tail}")
}

/// Fallback for unknown paths, worded like OpenAI's.
pub(crate) async fn not_found(method: Method, uri: Uri) -> Response {
    let mut err = ApiError::invalid_request(format!("Invalid URL ({method} {})", uri.path()));
    err.status = StatusCode::NOT_FOUND;
    err.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_always_has_four_keys() {
        let body = ApiError::invalid_request("x").body();
        let inner = body["error"].as_object().unwrap();
        for key in ["message", "type", "param", "code"] {
            assert!(inner.contains_key(key), "{key}");
        }
    }

    #[test]
    fn status_bodies_match_openai() {
        let rl = ApiError::for_status(StatusCode::TOO_MANY_REQUESTS, false, "m").body();
        assert_eq!(rl["error"]["type"], "requests");
        assert_eq!(rl["error"]["code"], "rate_limit_exceeded");
        let q = ApiError::for_status(StatusCode::TOO_MANY_REQUESTS, true, "m").body();
        assert_eq!(q["error"]["type"], "insufficient_quota");
        let o = ApiError::for_status(StatusCode::SERVICE_UNAVAILABLE, false, "m").body();
        assert_eq!(o["error"]["code"], "server_is_overloaded");
        let nf = ApiError::for_status(StatusCode::NOT_FOUND, false, "m").body();
        assert_eq!(nf["error"]["code"], "model_not_found");
    }

    #[test]
    fn keys_are_masked() {
        assert_eq!(mask("short"), "****");
        assert_eq!(mask("sk-abcdefghijklmnop"), "sk-****mnop");
    }
}
