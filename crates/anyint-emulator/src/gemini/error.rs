//! Google RPC error envelopes: `{"error":{"code","message","status",
//! "details"?}}` and the canned bodies for injected status faults. Builds
//! bodies only; deciding *when* to fail lives in the callers.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::util::json_response;

const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";
const SERVICE: &str = "generativelanguage.googleapis.com";

/// One Google-style error.
#[derive(Clone, Debug)]
pub(crate) struct GoogleError {
    pub(crate) code: StatusCode,
    pub(crate) status: &'static str,
    pub(crate) message: String,
    pub(crate) details: Vec<Value>,
}

impl GoogleError {
    fn new(code: StatusCode, status: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// A 400 `INVALID_ARGUMENT`.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }

    /// A 400 for one bad field, with a `BadRequest` field violation, worded
    /// like the API: `* GenerateContentRequest.<field>: <problem>\n`. `path`
    /// starts with the request message name.
    pub(crate) fn field(path: &str, problem: &str) -> Self {
        let mut err = Self::invalid(format!("* {path}: {problem}\n"));
        let field = path.split_once('.').map_or(path, |(_, f)| f);
        err.details.push(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": field, "description": problem}],
        }));
        err
    }

    /// A 400 for a body that is not valid JSON or names an unknown field.
    pub(crate) fn payload(problem: &str) -> Self {
        let mut err = Self::invalid(format!("Invalid JSON payload received. {problem}"));
        err.details.push(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"description": format!("Invalid JSON payload received. {problem}")}],
        }));
        err
    }

    /// 403 for a request without any credential.
    pub(crate) fn no_key() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
        )
    }

    /// 400 for a wrong API key (the API answers bad keys with 400, not 401).
    pub(crate) fn bad_key() -> Self {
        let mut err = Self::invalid("API key not valid. Please pass a valid API key.");
        err.details.push(json!({
            "@type": ERROR_INFO,
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": SERVICE},
        }));
        err.details.push(json!({
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": "API key not valid. Please pass a valid API key.",
        }));
        err
    }

    /// 401 for a wrong bearer token (OAuth-style credentials).
    pub(crate) fn bad_token() -> Self {
        let mut err = Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login \
             cookie or other valid authentication credential. See \
             https://developers.google.com/identity/sign-in/web/devconsole-project.",
        );
        err.details.push(json!({
            "@type": ERROR_INFO,
            "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "domain": "googleapis.com",
            "metadata": {"service": SERVICE, "method": "google.ai.generativelanguage.v1beta.GenerativeService.GenerateContent"},
        }));
        err
    }

    /// 404 for an unknown model.
    pub(crate) fn model_not_found(model: &str, version: &str, method: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!(
                "models/{model} is not found for API version {version}, or is not supported for \
                 {method}. Call ListModels to see the list of available models and their \
                 supported methods."
            ),
        )
    }

    /// The body the API sends for `code` (used by `status=N` faults). A 429
    /// carries `QuotaFailure` and `Help` details, plus `RetryInfo` when
    /// `retry_after` (seconds) is given.
    pub(crate) fn for_status(
        code: StatusCode,
        model: &str,
        version: &str,
        method: &str,
        retry_after: Option<&str>,
    ) -> Self {
        let (status, message) = match code.as_u16() {
            400 => ("INVALID_ARGUMENT", "Request contains an invalid argument."),
            401 => return Self::bad_token(),
            402 => (
                "RESOURCE_EXHAUSTED",
                "Your prepaid credits are depleted. Please purchase more credits.",
            ),
            403 => ("PERMISSION_DENIED", "The caller does not have permission"),
            404 => return Self::model_not_found(model, version, method),
            409 => ("ABORTED", "The operation was aborted."),
            429 => return Self::rate_limited(code, model, retry_after),
            499 => ("CANCELLED", "The operation was cancelled."),
            500 => (
                "INTERNAL",
                "An internal error has occurred. Please retry or report in \
                 https://developers.generativeai.google/guide/troubleshooting",
            ),
            501 => ("UNIMPLEMENTED", "Operation is not implemented."),
            503 => (
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
            ),
            504 => (
                "DEADLINE_EXCEEDED",
                "Deadline expired before operation could complete.",
            ),
            n if n >= 500 => ("INTERNAL", "An internal error has occurred."),
            _ => ("FAILED_PRECONDITION", "Precondition check failed."),
        };
        Self::new(code, status, message)
    }

    fn rate_limited(code: StatusCode, model: &str, retry_after: Option<&str>) -> Self {
        let mut err = Self::new(
            code,
            "RESOURCE_EXHAUSTED",
            format!(
                "You exceeded your current quota, please check your plan and billing details. \
                 For more information on this error, head to: \
                 https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: \
                 generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: \
                 10, model: {model}"
            ),
        );
        err.details.push(json!({
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaDimensions": {"location": "global", "model": model},
                "quotaValue": "10",
            }],
        }));
        err.details.push(json!({
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more about Gemini API quotas",
                       "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}],
        }));
        if let Some(secs) = retry_after {
            err.details.push(json!({
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": format!("{secs}s"),
            }));
        }
        err
    }

    /// `{"error":{...}}`; `details` only when there are some.
    pub(crate) fn body(&self) -> Value {
        let mut inner = json!({
            "code": self.code.as_u16(),
            "message": self.message,
            "status": self.status,
        });
        if !self.details.is_empty() {
            inner["details"] = Value::Array(self.details.clone());
        }
        json!({"error": inner})
    }

    /// The response; `array` wraps the body in a one-element list, as the
    /// API does on `streamGenerateContent` without `alt=sse`.
    pub(crate) fn into_response(self, array: bool) -> Response {
        let body = self.body();
        let body = if array { json!([body]) } else { body };
        json_response(self.code, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(code: u16) -> &'static str {
        GoogleError::for_status(
            StatusCode::from_u16(code).unwrap(),
            "m",
            "v1beta",
            "generateContent",
            None,
        )
        .status
    }

    #[test]
    fn statuses_follow_codes() {
        assert_eq!(status_of(400), "INVALID_ARGUMENT");
        assert_eq!(status_of(401), "UNAUTHENTICATED");
        assert_eq!(status_of(403), "PERMISSION_DENIED");
        assert_eq!(status_of(404), "NOT_FOUND");
        assert_eq!(status_of(429), "RESOURCE_EXHAUSTED");
        assert_eq!(status_of(500), "INTERNAL");
        assert_eq!(status_of(503), "UNAVAILABLE");
        assert_eq!(status_of(504), "DEADLINE_EXCEEDED");
    }

    #[test]
    fn rate_limit_carries_retry_info_when_asked() {
        let e = GoogleError::for_status(StatusCode::TOO_MANY_REQUESTS, "m", "v1", "x", Some("7"));
        let body = e.body();
        let details = body["error"]["details"].as_array().unwrap();
        assert!(details.iter().any(|d| d["retryDelay"] == "7s"));
        assert_eq!(body["error"]["code"], 429);
        assert!(
            GoogleError::invalid("x").body()["error"]
                .get("details")
                .is_none()
        );
    }
}
