//! The Gemini upstream adapter (`kind = "gemini"`): `x-goog-api-key`, the model in the URL, and
//! `alt=sse` for streams.

use http::header::CONTENT_TYPE;

use super::{Call, Provider};
use crate::error::Error;

/// Builds `POST {base_url}/models/{model}:generateContent` or `:streamGenerateContent?alt=sse`.
pub fn chat_request(
    p: &Provider,
    call: &Call<'_>,
    model: &str,
    body: impl Into<crate::providers::http::Payload>,
    stream: bool,
) -> crate::providers::http::Request {
    let action = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    post(
        p,
        call,
        &format!("{}/models/{model}:{action}", p.config.base_url),
        body,
    )
}

/// Builds `POST {base_url}/models/{model}:countTokens`.
pub fn count_tokens_request(
    p: &Provider,
    call: &Call<'_>,
    model: &str,
    body: impl Into<crate::providers::http::Payload>,
) -> crate::providers::http::Request {
    post(
        p,
        call,
        &format!("{}/models/{model}:countTokens", p.config.base_url),
        body,
    )
}

/// Builds `POST {base_url}/models/{model}:{action}` for `embedContent` or
/// `batchEmbedContents`.
pub fn embed_request(
    p: &Provider,
    call: &Call<'_>,
    model: &str,
    action: &str,
    body: impl Into<crate::providers::http::Payload>,
) -> crate::providers::http::Request {
    post(
        p,
        call,
        &format!("{}/models/{model}:{action}", p.config.base_url),
        body,
    )
}

fn post(
    p: &Provider,
    call: &Call<'_>,
    url: &str,
    body: impl Into<crate::providers::http::Payload>,
) -> crate::providers::http::Request {
    p.client()
        .post(url)
        .timeout(call.total)
        .header("x-goog-api-key", call.key.expose())
        .header(CONTENT_TYPE, "application/json")
        .body(body)
}

/// Maps a Google RPC error reply (`{"error":{"code","message","status"}}`).
pub fn decode_error(
    p: &Provider,
    status: http::StatusCode,
    headers: &http::header::HeaderMap,
    body: &[u8],
) -> Error {
    let decoded = anyint_wire::gemini::decode_error(body);
    super::http::classify(
        &p.config.name,
        status,
        super::http::retry_after(headers),
        decoded.as_ref().map(|e| e.message.as_str()),
        false,
    )
}
