//! Key-level access rules checked after authentication: expiry (401) and the client-address
//! allowlist (403).
//!
//! The client address is the socket peer, unless the peer is a trusted proxy (`[server]
//! trusted_proxies`); then it is read from the forwarding headers the proxy wrote, walking
//! from the nearest hop outwards and skipping hops that are themselves trusted proxies:
//!
//! - `X-Forwarded-For` entries are `ip`, `ip:port`, `[ipv6]` or `[ipv6]:port`;
//! - RFC 7239 `Forwarded` elements give the hop in `for=` (a token or a quoted string, the
//!   same address forms); `for=unknown` and obfuscated identifiers (`for=_hidden`) name no
//!   address;
//! - when both headers are present they must name the same client. A trusted proxy always
//!   writes one of them; a client can send the other, so believing either one alone would let
//!   the client choose its address.
//!
//! A hop that cannot be read where the answer depends on it (at or right of the first
//! untrusted hop) makes the address *unknown* (`None`), never skipped: skipping would hand
//! the choice to whatever the client wrote further left. An unknown address passes no
//! allowlist; keys without an allowlist are unaffected.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderMap;

use crate::config::Cidr;
use crate::error::{Error, ErrorKind};
use crate::store::ApiKey;

/// One forwarded hop: its address, or `None` when it cannot be read.
type Hop = Option<IpAddr>;

/// The client's address: the peer, or — when the peer is a trusted proxy — the nearest
/// forwarded hop that is not itself a trusted proxy (the leftmost hop when all are trusted).
/// `None` when it cannot be established safely (see the module doc).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let from = |chain: Vec<Hop>| nearest_untrusted(&chain, peer, &is_trusted);
    match (forwarded_chain(headers), forwarded_for_chain(headers)) {
        (None, None) => Some(peer),
        (Some(chain), None) | (None, Some(chain)) => from(chain),
        (Some(forwarded), Some(xff)) => {
            let (a, b) = (from(forwarded), from(xff));
            if a == b { a } else { None }
        }
    }
}

/// Walks `chain` from the nearest hop: trusted hops are proxies and skipped, the first
/// untrusted one is the client, an unreadable one makes the answer unknown.
fn nearest_untrusted(chain: &[Hop], peer: IpAddr, is_trusted: &dyn Fn(IpAddr) -> bool) -> Hop {
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) if is_trusted(*ip) => {}
            Some(ip) => return Some(*ip),
            None => return None,
        }
    }
    // Every hop is a trusted address: the client is the farthest one.
    Some(chain.first().copied().flatten().unwrap_or(peer))
}

/// The `X-Forwarded-For` hops, left to right (every header line, in order); `None` when the
/// header is absent.
fn forwarded_for_chain(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let mut chain = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(text) => chain.extend(text.split(',').map(parse_node)),
            Err(_) => chain.push(None),
        }
    }
    (!chain.is_empty()).then_some(chain)
}

/// The RFC 7239 `Forwarded` hops (each element's `for=`), left to right; `None` when the
/// header is absent. An element without exactly one `for=`, or text that does not parse,
/// is an unreadable hop.
fn forwarded_chain(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let mut chain = Vec::new();
    for value in headers.get_all(http::header::FORWARDED) {
        match value.to_str().ok().and_then(forwarded_elements) {
            Some(elements) => chain.extend(elements.iter().map(|pairs| {
                let mut fors = pairs
                    .iter()
                    .filter(|(name, _)| name.eq_ignore_ascii_case("for"));
                match (fors.next(), fors.next()) {
                    (Some((_, node)), None) => parse_forwarded_node(node),
                    _ => None,
                }
            })),
            None => chain.push(None),
        }
    }
    (!chain.is_empty()).then_some(chain)
}

/// Splits one `Forwarded` header value into its elements, each a list of `name=value` pairs
/// with quoted values unquoted; `None` when the syntax is broken (an unterminated quote, a
/// pair without `=`, stray characters).
fn forwarded_elements(text: &str) -> Option<Vec<Vec<(String, String)>>> {
    // RFC 7230 token characters; an unquoted value may also hold `:`, `[` and `]`, which some
    // proxies leave unquoted around IPv6 addresses and ports.
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let vchar = |c: char| tchar(c) || ":[]".contains(c);
    let mut elements = Vec::new();
    let mut element = Vec::new();
    let mut chars = text.chars().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
    };
    loop {
        skip_ws(&mut chars);
        match chars.peek() {
            None => break,
            Some(',') => {
                chars.next();
                elements.push(std::mem::take(&mut element));
                continue;
            }
            Some(';') => {
                chars.next();
                continue;
            }
            Some(_) => {}
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| tchar(*c)) {
            name.push(c);
        }
        skip_ws(&mut chars);
        if name.is_empty() || chars.next() != Some('=') {
            return None;
        }
        skip_ws(&mut chars);
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| vchar(*c)) {
                value.push(c);
            }
        }
        element.push((name, value));
        skip_ws(&mut chars);
        if !matches!(chars.peek(), None | Some(',' | ';')) {
            return None;
        }
    }
    elements.push(element);
    Some(elements)
}

/// A `Forwarded` node (`for=` value): `unknown` and obfuscated identifiers (`_…`) name no
/// address.
fn parse_forwarded_node(node: &str) -> Hop {
    if node.eq_ignore_ascii_case("unknown") || node.starts_with('_') {
        return None;
    }
    parse_node(node)
}

/// One hop's address: `ip`, `ip:port` (IPv4), `[ipv6]`, `[ipv6]:port`, or a bare IPv6
/// address; IPv4-mapped IPv6 addresses become IPv4. `None` for anything else.
fn parse_node(text: &str) -> Hop {
    let text = text.trim();
    let ip = if let Some(rest) = text.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?)
    } else if let Ok(ip) = text.parse::<IpAddr>() {
        ip
    } else {
        let (host, port) = text.split_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(host.parse::<Ipv4Addr>().ok()?)
    };
    Some(ip.to_canonical())
}

/// A port: a number up to 65535, or an RFC 7239 obfuscated port (`_abc`).
fn is_port(text: &str) -> bool {
    match text.strip_prefix('_') {
        Some(obf) => {
            !obf.is_empty()
                && obf
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
        }
        None => {
            !text.is_empty()
                && text.len() <= 5
                && text.bytes().all(|b| b.is_ascii_digit())
                && text.parse::<u16>().is_ok()
        }
    }
}

/// Applies the key's expiry and address allowlist. `client` is `None` when the address could
/// not be established (see the module doc): a key with an allowlist is then refused.
pub fn check(key: &ApiKey, client: Option<IpAddr>, now: i64) -> Result<(), Error> {
    if key.limits.expires_at.is_some_and(|t| now >= t) {
        return Err(Error::new(
            ErrorKind::Unauthenticated,
            format!(
                "the API key {} has expired; ask your administrator for a new key",
                key.prefix
            ),
        )
        .with_code("invalid_api_key"));
    }
    let Some(list) = &key.limits.ip_allowlist else {
        return Ok(());
    };
    let Some(client) = client else {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the API key {} is limited to certain addresses, but the client address could not be determined: a trusted proxy forwarded an X-Forwarded-For or Forwarded entry the gateway cannot read, or the two headers disagree; fix the proxy's forwarding headers",
                key.prefix
            ),
        )
        .with_code("ip_not_allowed"));
    };
    if !list
        .iter()
        .filter_map(|c| Cidr::parse(c))
        .any(|c| c.contains(client))
    {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!("the API key {} may not be used from address {client}; ask your administrator to allow it", key.prefix),
        )
        .with_code("ip_not_allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Header lines, in order.
    type Headers<'a> = &'a [(&'static str, &'a str)];

    fn headers(pairs: Headers<'_>) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_used_only_behind_a_trusted_proxy() {
        let trusted = [Cidr::parse("127.0.0.1/32").unwrap()];
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 127.0.0.1")]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &h, &trusted),
            Some(ip("203.0.113.9"))
        );
        // An untrusted peer cannot claim another address.
        assert_eq!(
            client_ip(ip("198.51.100.7"), &h, &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn node_forms() {
        for (text, want) in [
            ("203.0.113.9", Some("203.0.113.9")),
            (" 203.0.113.9 ", Some("203.0.113.9")),
            ("198.51.100.7:5678", Some("198.51.100.7")),
            ("198.51.100.7:_port", Some("198.51.100.7")),
            ("[2001:db8::7]", Some("2001:db8::7")),
            ("[2001:db8::7]:443", Some("2001:db8::7")),
            ("2001:db8::7", Some("2001:db8::7")),
            ("::ffff:203.0.113.9", Some("203.0.113.9")),
            ("[::ffff:203.0.113.9]:80", Some("203.0.113.9")),
            ("unknown", None),
            ("", None),
            ("198.51.100.7:", None),
            ("198.51.100.7:65536", None),
            ("198.51.100.7:80:80", None),
            ("[2001:db8::7", None),
            ("[2001:db8::7]x", None),
            ("[203.0.113.9]", None),
            ("fe80::1%eth0", None),
            ("example.com", None),
            ("example.com:80", None),
        ] {
            assert_eq!(parse_node(text), want.map(ip), "{text:?}");
        }
        for (text, want) in [
            ("unknown", None),
            ("UNKNOWN", None),
            ("_hidden", None),
            ("203.0.113.9", Some("203.0.113.9")),
        ] {
            assert_eq!(parse_forwarded_node(text), want.map(ip), "{text:?}");
        }
    }

    #[test]
    fn forwarded_syntax() {
        let parsed = forwarded_elements(
            r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711", for="a\"b,c;d""#,
        )
        .unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0][0], ("for".to_owned(), "192.0.2.60".to_owned()));
        assert_eq!(parsed[0].len(), 3);
        assert_eq!(
            parsed[1][0],
            ("For".to_owned(), "[2001:db8:cafe::17]:4711".to_owned())
        );
        assert_eq!(parsed[2][0].1, "a\"b,c;d");
        for broken in [
            "for",
            "for=\"1.2.3.4",
            "for=1.2.3.4 x",
            "=1.2.3.4",
            "for=a\"b\"",
        ] {
            assert!(forwarded_elements(broken).is_none(), "{broken:?}");
        }
    }

    /// Every spoofing shape of the hardening issue, plus the readable forms, behind a trusted
    /// proxy at 127.0.0.1 with 10.0.0.0/8 also trusted.
    #[test]
    fn client_address_table() {
        let trusted = [
            Cidr::parse("127.0.0.1/32").unwrap(),
            Cidr::parse("10.0.0.0/8").unwrap(),
        ];
        let xff = "x-forwarded-for";
        let fwd = "forwarded";
        let table: &[(Headers<'_>, Option<&str>)] = &[
            (&[(xff, "203.0.113.9")], Some("203.0.113.9")),
            (&[(xff, "203.0.113.9, 10.0.0.2")], Some("203.0.113.9")),
            // Entries left of the client are the client's own words.
            (&[(xff, "unknown, 203.0.113.9")], Some("203.0.113.9")),
            (&[(xff, "198.51.100.1, 203.0.113.9")], Some("203.0.113.9")),
            // The spoofing shapes: the real client is the rightmost entry, or unreadable.
            (
                &[(xff, "203.0.113.9, 198.51.100.7:5678")],
                Some("198.51.100.7"),
            ),
            (&[(xff, "203.0.113.9, [2001:db8::7]")], Some("2001:db8::7")),
            (
                &[(xff, "203.0.113.9, [2001:db8::7]:443")],
                Some("2001:db8::7"),
            ),
            (&[(xff, "203.0.113.9, unknown")], None),
            (&[(xff, "203.0.113.9, unknown, 10.0.0.2")], None),
            (&[(xff, "203.0.113.9, ")], None),
            (&[(xff, "203.0.113.9, example.com")], None),
            // Several header lines are one list, in order.
            (
                &[(xff, "203.0.113.9"), (xff, "198.51.100.7")],
                Some("198.51.100.7"),
            ),
            (&[(xff, "203.0.113.9"), (xff, "unknown")], None),
            // Only trusted hops: the farthest one is the client.
            (&[(xff, "10.0.0.5, 10.0.0.2")], Some("10.0.0.5")),
            // RFC 7239.
            (&[(fwd, "for=203.0.113.9")], Some("203.0.113.9")),
            (
                &[(fwd, "for=203.0.113.9;proto=https, for=10.0.0.2")],
                Some("203.0.113.9"),
            ),
            (&[(fwd, r#"for="[2001:db8::7]:4711""#)], Some("2001:db8::7")),
            (
                &[(fwd, r#"for=203.0.113.9, for="198.51.100.7:5678""#)],
                Some("198.51.100.7"),
            ),
            (&[(fwd, "for=203.0.113.9, for=unknown")], None),
            (&[(fwd, "for=203.0.113.9, for=_gazonk")], None),
            (&[(fwd, "for=203.0.113.9, proto=https")], None),
            (&[(fwd, "for=203.0.113.9, for=1.2.3.4;for=5.6.7.8")], None),
            (&[(fwd, "for=203.0.113.9, for=\"broken")], None),
            (
                &[(fwd, "for=_hidden, for=203.0.113.9")],
                Some("203.0.113.9"),
            ),
            // Both headers: they must agree.
            (
                &[(fwd, "for=203.0.113.9"), (xff, "203.0.113.9")],
                Some("203.0.113.9"),
            ),
            (&[(fwd, "for=203.0.113.9"), (xff, "198.51.100.7")], None),
            (
                &[
                    (fwd, "for=198.51.100.7"),
                    (xff, "203.0.113.9, 198.51.100.7"),
                ],
                Some("198.51.100.7"),
            ),
        ];
        for (pairs, want) in table {
            let h = headers(pairs);
            assert_eq!(
                client_ip(ip("127.0.0.1"), &h, &trusted),
                want.map(ip),
                "{pairs:?}"
            );
            // From an untrusted peer the headers mean nothing.
            assert_eq!(
                client_ip(ip("192.0.2.1"), &h, &trusted),
                Some(ip("192.0.2.1"))
            );
        }
    }

    fn key(allowlist: Option<&[&str]>) -> ApiKey {
        ApiKey {
            id: "key_1".into(),
            name: "k".into(),
            account: "acct".into(),
            models: None,
            prefix: "sk-anyint-k".into(),
            key_hash: String::new(),
            created_at: 0,
            revoked_at: None,
            limits: crate::store::KeyLimits {
                ip_allowlist: allowlist.map(|l| l.iter().map(|s| (*s).to_owned()).collect()),
                ..crate::store::KeyLimits::default()
            },
            team: None,
        }
    }

    #[test]
    fn an_unknown_address_passes_no_allowlist() {
        let limited = key(Some(&["0.0.0.0/0", "::/0"]));
        let e = check(&limited, None, 0).unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (ErrorKind::PermissionDenied, Some("ip_not_allowed"))
        );
        assert!(
            e.message.contains("could not be determined"),
            "{}",
            e.message
        );
        assert!(check(&limited, Some(ip("203.0.113.9")), 0).is_ok());
        let open = key(None);
        assert!(check(&open, None, 0).is_ok());
    }
}
