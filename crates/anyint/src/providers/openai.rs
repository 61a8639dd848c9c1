//! The OpenAI-compatible upstream adapter (`kind = "openai"`).

use http::header::{AUTHORIZATION, CONTENT_TYPE};

use super::{Call, Provider};
use crate::error::Error;

/// Builds `POST {base_url}/chat/completions` with the provider's key.
pub fn chat_request(
    p: &Provider,
    call: &Call<'_>,
    body: impl Into<crate::providers::http::Payload>,
) -> crate::providers::http::Request {
    let req = p.chat_post().unwrap_or_else(|| {
        p.client()
            .post(format!("{}/chat/completions", p.config.base_url))
    });
    authorized(req, p, call).body(body)
}

/// Builds `POST {base_url}/responses/input_tokens` (a native Responses upstream's counter).
pub fn input_tokens_request(
    p: &Provider,
    call: &Call<'_>,
    body: impl Into<crate::providers::http::Payload>,
) -> crate::providers::http::Request {
    post(p, call, "/responses/input_tokens", body)
}

/// Builds `POST {base_url}/embeddings`.
pub fn embeddings_request(
    p: &Provider,
    call: &Call<'_>,
    body: impl Into<crate::providers::http::Payload>,
) -> crate::providers::http::Request {
    post(p, call, "/embeddings", body)
}

/// `POST {base_url}{path}` with the provider's key and a JSON body.
fn post(
    p: &Provider,
    call: &Call<'_>,
    path: &str,
    body: impl Into<crate::providers::http::Payload>,
) -> crate::providers::http::Request {
    let req = p.client().post(format!("{}{path}", p.config.base_url));
    authorized(req, p, call).body(body)
}

/// `req` with `call`'s key, time limit and a JSON content type.
fn authorized(
    req: crate::providers::http::Request,
    p: &Provider,
    call: &Call<'_>,
) -> crate::providers::http::Request {
    let req = match p.credential(call) {
        Some(v) => req.header(AUTHORIZATION, v),
        None => req.header(AUTHORIZATION, format!("Bearer {}", call.key.expose())),
    };
    req.timeout(call.total)
        .header(CONTENT_TYPE, "application/json")
}

/// Maps an OpenAI-shaped error reply to the gateway error.
pub fn decode_error(
    p: &Provider,
    status: http::StatusCode,
    headers: &http::header::HeaderMap,
    body: &[u8],
) -> Error {
    let decoded = anyint_wire::openai::decode_error(body);
    let quota = decoded.as_ref().is_some_and(|e| {
        e.kind.as_deref() == Some("insufficient_quota")
            || e.code.as_deref() == Some("insufficient_quota")
    });
    super::http::classify(
        &p.config.name,
        status,
        super::http::retry_after(headers),
        decoded.as_ref().map(|e| e.message.as_str()),
        quota,
    )
}
