//! The client API families as a closed enum: a leaf, so the gateway, policy and the family
//! adapters all name a family without importing the adapters.

/// The API shape a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// OpenAI Chat Completions and Models.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini generateContent.
    Gemini,
    /// OpenAI Responses (`/openai/v1/responses`): the OpenAI family's key header and error
    /// envelope, its own wire format.
    Responses,
}

impl Family {
    /// Label for logs, metrics and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Responses => "responses",
        }
    }

    /// The chat wire format this family speaks.
    pub fn wire_kind(self) -> anyint_wire::translate::Kind {
        match self {
            Self::OpenAi => anyint_wire::translate::Kind::OpenAi,
            Self::Anthropic => anyint_wire::translate::Kind::Anthropic,
            Self::Gemini => anyint_wire::translate::Kind::Gemini,
            Self::Responses => anyint_wire::translate::Kind::Responses,
        }
    }

    /// The header this family's clients put their key in, for 401 messages.
    pub fn auth_header(self) -> &'static str {
        match self {
            Self::OpenAi | Self::Responses => "Authorization: Bearer <key>",
            Self::Anthropic => "x-api-key: <key>",
            Self::Gemini => "x-goog-api-key: <key>",
        }
    }
}
