//! Where a reasoning signature comes from, so it only ever goes back to the provider that
//! issued it.
//!
//! Reasoning signatures (Anthropic `thinking.signature`, Gemini `thoughtSignature`, OpenAI
//! Responses `reasoning.encrypted_content`) are opaque strings that only their issuer can
//! verify: Anthropic answers 400 "Invalid `signature` in `thinking` block" to a Gemini
//! signature, Gemini 400 "Thought signature is not valid" to an Anthropic one, OpenAI 400
//! `invalid_encrypted_content` to anything it did not mint. Canonical signatures stay plain
//! strings, but carry their origin as a prefix: `anyint:anthropic:<sig>`, `anyint:gemini:<sig>`
//! or `anyint:openai:<sig>` ([`tag`]). Real signatures are base64 (OpenAI's base64url) and
//! never contain `:`, so the prefix cannot clash with one.
//!
//! The codecs apply four rules:
//! - Decoders (upstream responses and streams, client requests) read a signature with
//!   [`from_wire`]: an untagged one is the decoding family's own and gets its tag; a tagged one
//!   (a signature the gateway handed to a client of another family earlier) keeps its tag.
//! - Client encoders write with [`for_client`]: their own family's signatures untagged (so a
//!   same-family round trip is byte-identical), foreign ones tagged, so they come back with
//!   their origin.
//! - Upstream encoders write with [`for_upstream`]: only their own family's signatures,
//!   untagged; reasoning signed by another provider must be dropped (or sent unsigned where
//!   the upstream accepts that).
//! - A canonical signature without a tag (one built by hand rather than decoded) has no known
//!   origin and is taken to belong to whichever family writes it.

/// The common prefix of every origin tag.
const PREFIX: &str = "anyint:";

/// The provider family that issued a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Anthropic Messages (`thinking.signature`).
    Anthropic,
    /// Gemini generateContent (`thoughtSignature`).
    Gemini,
    /// OpenAI Responses (`reasoning.encrypted_content`). Chat Completions has no signatures.
    OpenAi,
}

impl Origin {
    /// The name used in the tag.
    pub fn name(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::OpenAi => "openai",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "anthropic" => Some(Self::Anthropic),
            "gemini" => Some(Self::Gemini),
            "openai" => Some(Self::OpenAi),
            _ => None,
        }
    }
}

/// `sig` tagged with its origin: `anyint:<origin>:<sig>`.
pub fn tag(origin: Origin, sig: &str) -> String {
    format!("{PREFIX}{}:{sig}", origin.name())
}

/// Splits a canonical signature into its origin (when tagged) and the provider's own string.
/// Anything that is not a well-formed tag is returned whole, with no origin.
pub fn parse(s: &str) -> (Option<Origin>, &str) {
    let tagged = s
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(name, sig)| Origin::from_name(name).map(|o| (o, sig)));
    match tagged {
        Some((origin, sig)) => (Some(origin), sig),
        None => (None, s),
    }
}

/// A signature read from `origin`'s wire, in canonical form: tagged with `origin` unless it
/// already carries a tag (a foreign signature a client of `origin` echoes back).
pub fn from_wire(origin: Origin, sig: &str) -> String {
    match parse(sig) {
        (Some(_), _) => sig.to_owned(),
        (None, raw) => tag(origin, raw),
    }
}

/// A canonical signature as a client of family `own` receives it: untagged when it is `own`'s
/// (or has no known origin), tagged otherwise.
pub fn for_client(own: Origin, sig: &str) -> &str {
    match parse(sig) {
        (Some(o), raw) if o == own => raw,
        (None, raw) => raw,
        (Some(_), _) => sig,
    }
}

/// A canonical signature as an upstream of family `own` may receive it: the provider's own
/// string when `own` issued it (or its origin is unknown), `None` when another provider did.
pub fn for_upstream(own: Origin, sig: &str) -> Option<&str> {
    match parse(sig) {
        (Some(o), raw) if o == own => Some(raw),
        (None, raw) => Some(raw),
        (Some(_), _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_and_parse_round_trip() {
        assert_eq!(tag(Origin::Gemini, "CiQB"), "anyint:gemini:CiQB");
        assert_eq!(tag(Origin::Anthropic, "EqQB"), "anyint:anthropic:EqQB");
        assert_eq!(parse("anyint:gemini:CiQB"), (Some(Origin::Gemini), "CiQB"));
        assert_eq!(
            parse("anyint:anthropic:EqQB"),
            (Some(Origin::Anthropic), "EqQB")
        );
        assert_eq!(parse("EqQB"), (None, "EqQB"));
        assert_eq!(parse("anyint:openai:gAAA"), (Some(Origin::OpenAi), "gAAA"));
        assert_eq!(tag(Origin::OpenAi, "gAAA"), "anyint:openai:gAAA");
        assert_eq!(parse("anyint:mistral:x"), (None, "anyint:mistral:x"));
        assert_eq!(parse("anyint:gemini"), (None, "anyint:gemini"));
        assert_eq!(parse(""), (None, ""));
    }

    #[test]
    fn decoders_tag_once_and_encoders_pick_by_origin() {
        let g = from_wire(Origin::Gemini, "S");
        assert_eq!(g, "anyint:gemini:S");
        // A Gemini signature echoed by an Anthropic client keeps its origin.
        assert_eq!(from_wire(Origin::Anthropic, &g), g);
        assert_eq!(for_client(Origin::Gemini, &g), "S");
        assert_eq!(for_client(Origin::Anthropic, &g), g);
        assert_eq!(for_client(Origin::Anthropic, "plain"), "plain");
        assert_eq!(for_upstream(Origin::Gemini, &g), Some("S"));
        assert_eq!(for_upstream(Origin::Anthropic, &g), None);
        assert_eq!(for_upstream(Origin::Anthropic, "plain"), Some("plain"));
        // OpenAI's encrypted reasoning goes back to OpenAI only.
        let o = from_wire(Origin::OpenAi, "gAAAAB");
        assert_eq!(for_upstream(Origin::OpenAi, &o), Some("gAAAAB"));
        assert_eq!(for_upstream(Origin::Anthropic, &o), None);
        assert_eq!(for_upstream(Origin::Gemini, &o), None);
        assert_eq!(for_client(Origin::OpenAi, &o), "gAAAAB");
        assert_eq!(for_client(Origin::OpenAi, &g), g);
    }
}
