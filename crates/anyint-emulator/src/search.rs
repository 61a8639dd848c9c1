//! The family-neutral web search rule (see the crate docs): whether a
//! request that offers the provider's search tool searches, with which
//! query, and the fake results it finds. Pure: no IO, no wire shapes.

use crate::fault;
use crate::util::hex_id;

/// What the answer text starts with when the model searched; the rest is
/// the content rules' text, cited by both results.
pub(crate) const PREFIX: &str = "Based on a web search: ";

/// Longest query, in characters.
const MAX_QUERY: usize = 100;

/// One fake search result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) url: String,
    pub(crate) title: String,
    /// The page text a citation quotes.
    pub(crate) snippet: String,
}

/// The search a request runs: `T` (the last user text) mentions "search"
/// (any case). `None` when it does not.
pub(crate) fn query(t: &str) -> Option<String> {
    if !t.to_lowercase().contains("search") {
        return None;
    }
    let first = t.lines().next().unwrap_or_default();
    let q: String = fault::strip_directives(first)
        .trim()
        .chars()
        .take(MAX_QUERY)
        .collect();
    Some(if q.is_empty() { "search".to_owned() } else { q })
}

/// The two results every search finds: on the first allowed domain when
/// the request restricts domains, else on `example.com`; the path is
/// derived from the query.
pub(crate) fn results(query: &str, allowed_domains: &[String]) -> Vec<Found> {
    let domain = allowed_domains
        .first()
        .map_or("example.com", String::as_str);
    let slug = hex_id(query.as_bytes(), 8);
    (1..=2)
        .map(|n| Found {
            url: format!("https://{domain}/results/{slug}/{n}"),
            title: format!("Result {n} for {query}"),
            snippet: format!("Excerpt {n} of a page about {query}."),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_only_when_asked() {
        assert_eq!(query("hello"), None);
        assert_eq!(
            query("Please SEARCH the web for tokio [emulate: tag=x]\nReply with exactly: hi")
                .as_deref(),
            Some("Please SEARCH the web for tokio")
        );
        let long = format!("search {}", "x".repeat(300));
        assert_eq!(query(&long).unwrap().chars().count(), MAX_QUERY);
        let r = results("q", &[]);
        assert_eq!(r.len(), 2);
        assert!(r[0].url.starts_with("https://example.com/results/"));
        assert_eq!(r, results("q", &[]), "deterministic");
        let r = results("q", &["docs.rs".to_owned()]);
        assert!(r[1].url.starts_with("https://docs.rs/results/") && r[1].url.ends_with("/2"));
    }
}
