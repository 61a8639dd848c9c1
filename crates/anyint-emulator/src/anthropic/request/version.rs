//! The `anthropic-version` header: which versions exist, and the name
//! error messages quote. Several checks differ between versions.

use crate::anthropic::error::AnthropicError;

/// API versions the emulator accepts in `anthropic-version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    V2023_06_01,
    V2026_10_21,
}

impl Version {
    /// Parses the header value; the error is the API's message.
    pub(crate) fn parse(header: Option<&str>) -> Result<Self, AnthropicError> {
        match header {
            None => Err(AnthropicError::invalid(
                "anthropic-version: header is required",
            )),
            Some("2023-06-01") => Ok(Self::V2023_06_01),
            Some("2026-10-21") => Ok(Self::V2026_10_21),
            Some(other) => Err(AnthropicError::invalid(format!(
                "anthropic-version: \"{other}\" is not a valid version"
            ))),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::V2023_06_01 => "2023-06-01",
            Self::V2026_10_21 => "2026-10-21",
        }
    }
}
