//! Callback URL safety, and the resolver that keeps it true at delivery time.
//!
//! A client-supplied URL is a request the gateway makes on the client's behalf from inside the
//! operator's network (SSRF). So: https only (plain http only to allowlisted networks, or when
//! the operator allows it); no credentials in the URL; every address the host resolves to must
//! be public unless its network is in `[tasks] callback_allow_networks`. The check runs when the
//! task is created and again at each delivery, and the delivery client resolves through
//! [`GuardedResolver`], so a DNS answer that changes in between (rebinding) cannot slip through.
//! Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::config::{Cidr, TasksConfig};
use crate::error::Error;

/// Whether `ip` is loopback, private, link-local or otherwise not a public unicast address.
pub fn is_restricted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return restricted_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 (reaches v4 space)
                || first == 0x2002 // 6to4 (embeds a v4 address)
                || v6.segments()[..6].iter().all(|s| *s == 0) // IPv4-compatible ::a.b.c.d
        }
    }
}

fn restricted_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking 198.18.0.0/15
        || a >= 240 // reserved
}

fn allowlisted(allow: &[Cidr], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    };
    allow.iter().any(|c| c.contains(ip))
}

fn refused(message: String) -> Error {
    Error::invalid(Some("callback_url"), message).with_code("callback_url_not_allowed")
}

/// Checks a client's callback URL; the error says what to change.
pub async fn check_url(cfg: &TasksConfig, url: &str) -> Result<reqwest::Url, Error> {
    if url.len() > 2048 {
        return Err(refused(
            "the callback URL is longer than 2048 characters".into(),
        ));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| refused("the callback URL is not a valid absolute URL".into()))?;
    let scheme = parsed.scheme();
    if scheme != "https" && scheme != "http" {
        return Err(refused("the callback URL must use https".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refused(
            "the callback URL must not carry credentials; verify deliveries with the X-AnyInt-Signature header instead".into(),
        ));
    }
    let Some(host) = parsed.host_str() else {
        return Err(refused("the callback URL has no host".into()));
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let addrs: Vec<IpAddr> = match literal {
        Some(ip) => vec![ip],
        None => tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::net::lookup_host((host, port)),
        )
        .await
        .map_err(|_| {
            refused(format!(
                "the callback host `{host}` did not resolve in time"
            ))
        })?
        .map_err(|_| refused(format!("the callback host `{host}` does not resolve")))?
        .map(|a| a.ip())
        .collect(),
    };
    if addrs.is_empty() {
        return Err(refused(format!(
            "the callback host `{host}` does not resolve"
        )));
    }
    let all_allowlisted = addrs
        .iter()
        .all(|ip| allowlisted(&cfg.callback_allow_networks, *ip));
    if let Some(ip) = addrs
        .iter()
        .find(|ip| is_restricted(**ip) && !allowlisted(&cfg.callback_allow_networks, **ip))
    {
        return Err(refused(format!(
            "the callback URL points to a private, loopback or link-local address ({ip}); use a public https endpoint (the operator can allow internal networks with [tasks] callback_allow_networks)"
        )));
    }
    if scheme == "http" && !all_allowlisted && !cfg.callback_allow_http {
        return Err(refused("the callback URL must use https".into()));
    }
    Ok(parsed)
}

/// A DNS resolver for the delivery client that drops restricted addresses not allowlisted,
/// so what was checked is what is connected to.
pub struct GuardedResolver {
    allow: Arc<Vec<Cidr>>,
}

impl GuardedResolver {
    /// A resolver allowing `allow` besides public addresses.
    pub fn new(allow: Vec<Cidr>) -> Self {
        Self {
            allow: Arc::new(allow),
        }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| !is_restricted(a.ip()) || allowlisted(&allow, a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err("the callback host resolves only to refused addresses".into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_are_restricted() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_restricted(ip), "{ip} must be restricted");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_restricted(ip), "{ip} is public");
        }
    }

    fn cfg(allow: &[&str], http: bool) -> TasksConfig {
        let text =
            format!("[tasks]\ncallback_allow_networks = {allow:?}\ncallback_allow_http = {http}\n");
        crate::config::Config::parse(&text, "t.toml", &|_| None)
            .unwrap()
            .tasks
    }

    #[tokio::test]
    async fn urls_are_checked_for_scheme_credentials_and_address() {
        let strict = cfg(&[], false);
        for (url, why) in [
            ("http://127.0.0.1:9/cb", "private"),
            ("https://169.254.169.254/latest", "private"),
            ("https://[::1]/cb", "private"),
            ("http://93.184.216.34/cb", "https"),
            ("ftp://93.184.216.34/cb", "https"),
            ("https://user:pw@93.184.216.34/cb", "credentials"),
            ("not a url", "valid"),
        ] {
            let e = check_url(&strict, url).await.unwrap_err();
            assert_eq!(e.code, Some("callback_url_not_allowed"), "{url}");
            assert!(e.message.contains(why), "{url}: {}", e.message);
        }
        assert!(check_url(&strict, "https://93.184.216.34/cb").await.is_ok());
        let loopback = cfg(&["127.0.0.0/8"], false);
        assert!(check_url(&loopback, "http://127.0.0.1:9/cb").await.is_ok());
        assert!(check_url(&loopback, "http://10.0.0.1/cb").await.is_err());
        assert!(
            check_url(&cfg(&[], true), "http://93.184.216.34/cb")
                .await
                .is_ok()
        );
    }
}
