//! The Anthropic Messages upstream adapter (`kind = "anthropic"`): `x-api-key` and exactly one
//! `anthropic-version` value.

use http::header::CONTENT_TYPE;

use super::{Call, ForwardHeaders, Provider};
use crate::error::Error;

fn post(
    p: &Provider,
    call: &Call<'_>,
    path: &str,
    body: impl Into<crate::providers::http::Payload>,
    forward: &ForwardHeaders,
) -> crate::providers::http::Request {
    let version = forward
        .anthropic_version
        .as_deref()
        .unwrap_or(&p.config.anthropic_version);
    let chat = if path == "/v1/messages" {
        p.chat_post()
    } else {
        None
    };
    let req = chat.unwrap_or_else(|| p.client().post(format!("{}{path}", p.config.base_url)));
    let req = match p.credential(call) {
        Some(v) => req.header("x-api-key", v),
        None => req.header("x-api-key", call.key.expose()),
    };
    let mut req = req
        .timeout(call.total)
        .header("anthropic-version", version)
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(beta) = &forward.anthropic_beta {
        req = req.header(anyint_wire::anthropic::BETA_HEADER, beta);
    }
    req
}

/// Builds `POST {base_url}/v1/messages`.
pub fn chat_request(
    p: &Provider,
    call: &Call<'_>,
    body: impl Into<crate::providers::http::Payload>,
    forward: &ForwardHeaders,
) -> crate::providers::http::Request {
    post(p, call, "/v1/messages", body, forward)
}

/// Builds `POST {base_url}/v1/messages/count_tokens`.
pub fn count_tokens_request(
    p: &Provider,
    call: &Call<'_>,
    body: impl Into<crate::providers::http::Payload>,
    forward: &ForwardHeaders,
) -> crate::providers::http::Request {
    post(p, call, "/v1/messages/count_tokens", body, forward)
}

/// Maps an Anthropic error reply (`{"type":"error","error":{"type","message"}}`).
pub fn decode_error(
    p: &Provider,
    status: http::StatusCode,
    headers: &http::header::HeaderMap,
    body: &[u8],
) -> Error {
    let decoded = anyint_wire::anthropic::decode_error(body);
    let billing = decoded
        .as_ref()
        .is_some_and(|e| e.kind.as_deref() == Some("billing_error"));
    super::http::classify(
        &p.config.name,
        status,
        super::http::retry_after(headers),
        decoded.as_ref().map(|e| e.message.as_str()),
        billing,
    )
}
