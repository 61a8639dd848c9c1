//! The `anthropic-beta` header on a translated route: which flags a non-Anthropic upstream
//! can serve. Passthrough forwards the header untouched and never asks this module.
//!
//! Most betas only unlock request fields, tools or blocks; the decoder judges those fields
//! themselves (refused with a 400 naming them when the upstream cannot honour them), so the
//! flag alone changes nothing and is accepted. Refused here: flags that change the answer on
//! their own and cannot be honoured by another kind of upstream ([`REFUSED`]).

use crate::DecodeError;

/// The header's name.
pub const HEADER: &str = "anthropic-beta";

/// Beta name prefixes (the name before its date) refused on a translated route, with why.
const REFUSED: &[(&str, &str)] = &[(
    "skills-",
    "Agent Skills run in Anthropic's code-execution container, which other upstreams do not have",
)];

/// Checks the comma-separated `anthropic-beta` list of a request that will be translated.
pub fn check_betas(header: &str) -> Result<(), DecodeError> {
    for beta in header.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        if let Some((_, why)) = REFUSED.iter().find(|(p, _)| beta.starts_with(p)) {
            return Err(DecodeError::field(
                HEADER,
                format!(
                    "anthropic-beta: `{beta}` is not supported by this model's upstream: {why}; \
                     remove it or choose a model served by an Anthropic upstream"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_codes_betas_pass_and_skills_is_refused_by_name() {
        let claude_code = "claude-code-20250219,interleaved-thinking-2025-05-14,\
            context-management-2025-06-27,mid-conversation-tool-changes-2026-07-01,\
            thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,effort-2025-11-24";
        assert_eq!(check_betas(claude_code), Ok(()));
        assert_eq!(check_betas(""), Ok(()));
        let e = check_betas("effort-2025-11-24, skills-2025-10-02").unwrap_err();
        assert_eq!(e.param, Some(HEADER));
        assert!(e.message.contains("`skills-2025-10-02`"), "{}", e.message);
    }
}
