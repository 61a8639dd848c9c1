//! The one gateway error type. Every failure becomes an [`Error`]; each family renders it in its
//! own envelope (`families::*::render_error`). Status and retryability are decided here, once,
//! by exhaustive matches, so adding a kind forces both decisions.

use std::time::Duration;

/// Who caused a failure, after pingora: it decides logging level and metrics labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The client sent something wrong; fixing the request fixes it.
    Client,
    /// The upstream provider failed or refused.
    Upstream,
    /// The gateway itself failed.
    Gateway,
}

/// The closed set of failure kinds a client can see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed or invalid request: fix the request.
    InvalidRequest,
    /// Missing, unknown or revoked key.
    Unauthenticated,
    /// The key may not do this (model not entitled, admin route, policy).
    PermissionDenied,
    /// The resource (model, key, route) does not exist.
    NotFound,
    /// The body exceeds the configured limit.
    PayloadTooLarge,
    /// The request body stalled longer than `[server] body_read_timeout_secs`.
    RequestTimeout,
    /// The resource already exists (admin creates).
    Conflict,
    /// A gateway rate limit refused the request: back off.
    RateLimited,
    /// A credit cap is used up for the period.
    QuotaExceeded,
    /// The upstream throttled the request.
    UpstreamRateLimited,
    /// The upstream failed (5xx, connection refused or reset) or is misconfigured.
    UpstreamUnavailable,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// The upstream answered with something the gateway could not read.
    UpstreamProtocol,
    /// The gateway is shedding load or shutting down.
    Overloaded,
    /// A bug or an unexpected local failure (store down).
    Internal,
}

impl ErrorKind {
    /// The HTTP status for this kind.
    pub fn status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::InvalidRequest => S::BAD_REQUEST,
            Self::Unauthenticated => S::UNAUTHORIZED,
            Self::PermissionDenied => S::FORBIDDEN,
            Self::NotFound => S::NOT_FOUND,
            Self::PayloadTooLarge => S::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => S::REQUEST_TIMEOUT,
            Self::Conflict => S::CONFLICT,
            Self::RateLimited | Self::QuotaExceeded | Self::UpstreamRateLimited => {
                S::TOO_MANY_REQUESTS
            }
            Self::UpstreamUnavailable | Self::UpstreamProtocol | Self::Overloaded => {
                S::SERVICE_UNAVAILABLE
            }
            Self::UpstreamTimeout => S::GATEWAY_TIMEOUT,
            Self::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether a client retrying the same request later may succeed.
    pub fn is_retryable(self) -> bool {
        match self {
            Self::RateLimited
            | Self::UpstreamRateLimited
            | Self::UpstreamUnavailable
            | Self::UpstreamTimeout
            | Self::UpstreamProtocol
            | Self::Overloaded
            | Self::RequestTimeout
            | Self::Internal => true,
            Self::InvalidRequest
            | Self::Unauthenticated
            | Self::PermissionDenied
            | Self::NotFound
            | Self::PayloadTooLarge
            | Self::Conflict
            | Self::QuotaExceeded => false,
        }
    }

    /// Low-cardinality label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::Conflict => "conflict",
            Self::RateLimited => "rate_limited",
            Self::QuotaExceeded => "quota_exceeded",
            Self::UpstreamRateLimited => "upstream_rate_limited",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::UpstreamProtocol => "upstream_protocol",
            Self::Overloaded => "overloaded",
            Self::Internal => "internal",
        }
    }

    /// Who is at fault for this kind.
    pub fn fault(self) -> Fault {
        match self {
            Self::InvalidRequest
            | Self::Unauthenticated
            | Self::PermissionDenied
            | Self::NotFound
            | Self::PayloadTooLarge
            | Self::RequestTimeout
            | Self::Conflict
            | Self::RateLimited
            | Self::QuotaExceeded => Fault::Client,
            Self::UpstreamRateLimited
            | Self::UpstreamUnavailable
            | Self::UpstreamTimeout
            | Self::UpstreamProtocol => Fault::Upstream,
            Self::Overloaded | Self::Internal => Fault::Gateway,
        }
    }
}

/// A gateway failure: what the client is told, and what only the logs see.
#[derive(Clone, Debug)]
pub struct Error {
    /// The kind decides status and envelope type.
    pub kind: ErrorKind,
    /// Safe to show the client: says what to fix. Never contains keys or prompt text.
    pub message: String,
    /// The request field at fault.
    pub param: Option<&'static str>,
    /// A machine-readable code, e.g. `model_not_found`.
    pub code: Option<&'static str>,
    /// How long the client should wait before retrying.
    pub retry_after: Option<Duration>,
    /// Internal detail for the logs (redacted by construction: no keys, no content).
    pub cause: Option<String>,
    /// An upstream's own numeric business code (music resellers wrap `{code,msg,data}`), kept
    /// for families that show one.
    pub business_code: Option<i64>,
}

/// Shorthand for results in the gateway.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a client-facing message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
            cause: None,
            business_code: None,
        }
    }

    /// 400 about one field.
    pub fn invalid(param: Option<&'static str>, message: impl Into<String>) -> Self {
        Self {
            param,
            ..Self::new(ErrorKind::InvalidRequest, message)
        }
    }

    /// 500 with a logged cause; the client sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::Internal,
            "the gateway hit an internal error; retry the request",
        )
        .with_cause(cause)
    }

    /// Sets the machine-readable code.
    #[must_use]
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// Sets the request field at fault.
    #[must_use]
    pub fn with_param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    /// Sets the logged cause.
    #[must_use]
    pub fn with_cause(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// Sets the retry hint.
    #[must_use]
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> http::StatusCode {
        self.kind.status()
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<anyint_wire::DecodeError> for Error {
    fn from(e: anyint_wire::DecodeError) -> Self {
        Self::invalid(e.param, e.message)
    }
}

/// A request body went `[server] body_read_timeout_secs` without a byte: the server's body
/// wrapper fails the read with this, and the families' body reader answers it with 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled for {0:?}")]
pub struct BodyStalled(pub Duration);
