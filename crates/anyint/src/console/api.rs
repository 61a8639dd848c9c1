//! The console's one data path: it calls the admin REST API in process, through the admin
//! router itself (`admin::routes`), and renders what the API answers. Validation, store access
//! and cache updates stay in the admin handlers; the console holds no SQL and no second
//! implementation of any admin action.
//!
//! The internal request carries the configured admin token (the console is only reachable with
//! a session, which only that token opens); it never leaves the process and passes no logging
//! middleware.

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt as _;

use crate::state::SharedState;

/// The admin API's answer to one call.
pub(super) struct Reply {
    /// The HTTP status.
    pub(super) status: StatusCode,
    /// The JSON body (`Null` when it was not JSON).
    pub(super) body: Value,
}

impl Reply {
    /// Whether the call succeeded.
    pub(super) fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The `data` array of a list answer (empty otherwise).
    pub(super) fn data(&self) -> &[Value] {
        self.body["data"].as_array().map_or(&[], Vec::as_slice)
    }

    /// The admin API's error message, for showing to the operator.
    pub(super) fn message(&self) -> String {
        self.body["error"]["message"].as_str().map_or_else(
            || format!("the admin API answered {}", self.status),
            str::to_owned,
        )
    }
}

/// Calls the admin API: `path` is `/admin/v1/…` with its query string.
pub(super) async fn call(
    state: &SharedState,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Reply {
    let token = state
        .config
        .server
        .admin_token
        .as_ref()
        .map_or("", |t| t.expose());
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let Ok(req) = req.body(body) else {
        return Reply {
            status: StatusCode::BAD_REQUEST,
            body: serde_json::json!({"error": {"message": "that address cannot be requested"}}),
        };
    };
    let router = crate::admin::routes(state.clone()).with_state(state.clone());
    let Ok(resp) = router.oneshot(req).await;
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    Reply {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// `GET` shorthand.
pub(super) async fn get(state: &SharedState, path: impl AsRef<str>) -> Reply {
    call(state, Method::GET, path.as_ref(), None).await
}
