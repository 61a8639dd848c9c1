//! Key-level access rules checked after authentication: expiry (401) and the client-address
//! allowlist (403). The client address is the socket peer, or the `X-Forwarded-For` entry
//! added by the nearest trusted proxy when the peer is one (`[server] trusted_proxies`).

use std::net::IpAddr;

use http::HeaderMap;

use crate::config::Cidr;
use crate::error::{Error, ErrorKind};
use crate::store::ApiKey;

/// The client's address: the peer, or — when the peer is a trusted proxy — the rightmost
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    if !trusted.iter().any(|c| c.contains(peer)) {
        return peer;
    }
    let chain: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    chain
        .into_iter()
        .rev()
        .find(|ip| !trusted.iter().any(|c| c.contains(*ip)))
        .unwrap_or(peer)
}

/// Applies the key's expiry and address allowlist.
pub fn check(key: &ApiKey, client: IpAddr, now: i64) -> Result<(), Error> {
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
    if let Some(list) = &key.limits.ip_allowlist
        && !list
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

    #[test]
    fn forwarded_for_is_used_only_behind_a_trusted_proxy() {
        let trusted = [Cidr::parse("127.0.0.1/32").unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 127.0.0.1".parse().unwrap());
        assert_eq!(
            client_ip("127.0.0.1".parse().unwrap(), &h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // An untrusted peer cannot claim another address.
        assert_eq!(
            client_ip("198.51.100.7".parse().unwrap(), &h, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip("127.0.0.1".parse().unwrap(), &HeaderMap::new(), &trusted),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
