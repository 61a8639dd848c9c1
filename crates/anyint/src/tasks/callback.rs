//! Callback URL safety, and the resolver that keeps it true at delivery time.
//!
//! A client-supplied URL is a request the gateway makes on the client's behalf from inside the
//! operator's network (SSRF). So: https only (plain http only to allowlisted networks, or when
//! the operator allows it); no credentials in the URL; every address the host resolves to must
//! be public unless its network is in `[tasks] callback_allow_networks`. "Public" means outside
//! every block of the IANA special-purpose registries for IPv4 and IPv6 (kept below as data),
//! multicast, and deprecated or reserved space; an IPv6 address that embeds an IPv4 address is
//! also judged by that address. The check runs when the
//! task is created and again at each delivery, and the delivery client resolves through
//! [`GuardedResolver`], so a DNS answer that changes in between (rebinding) cannot slip through.
//! Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::config::{Cidr, TasksConfig};
use crate::error::Error;

/// One row of a special-purpose address table: a block and the name the registry gives it.
struct Block<A> {
    net: A,
    len: u8,
    name: &'static str,
}

const fn v4(net: [u8; 4], len: u8, name: &'static str) -> Block<Ipv4Addr> {
    Block {
        net: Ipv4Addr::new(net[0], net[1], net[2], net[3]),
        len,
        name,
    }
}

const fn v6(net: [u16; 8], len: u8, name: &'static str) -> Block<Ipv6Addr> {
    Block {
        net: Ipv6Addr::new(
            net[0], net[1], net[2], net[3], net[4], net[5], net[6], net[7],
        ),
        len,
        name,
    }
}

/// The IANA IPv4 Special-Purpose Address Registry (every row, globally reachable or not: none
/// is a place to deliver a callback), then the other IPv4 blocks that are not public unicast.
const V4_SPECIAL: &[Block<Ipv4Addr>] = &[
    v4([0, 0, 0, 0], 8, "\"this network\" (RFC 791)"),
    v4([0, 0, 0, 0], 32, "\"this host on this network\" (RFC 1122)"),
    v4([10, 0, 0, 0], 8, "private-use (RFC 1918)"),
    v4([100, 64, 0, 0], 10, "shared address space (RFC 6598)"),
    v4([127, 0, 0, 0], 8, "loopback (RFC 1122)"),
    v4([169, 254, 0, 0], 16, "link-local (RFC 3927)"),
    v4([172, 16, 0, 0], 12, "private-use (RFC 1918)"),
    v4([192, 0, 0, 0], 24, "IETF protocol assignments (RFC 6890)"),
    v4(
        [192, 0, 0, 0],
        29,
        "IPv4 service continuity prefix (RFC 7335)",
    ),
    v4([192, 0, 0, 8], 32, "IPv4 dummy address (RFC 7600)"),
    v4(
        [192, 0, 0, 9],
        32,
        "Port Control Protocol anycast (RFC 7723)",
    ),
    v4([192, 0, 0, 10], 32, "TURN anycast (RFC 8155)"),
    v4([192, 0, 0, 170], 32, "NAT64/DNS64 discovery (RFC 8880)"),
    v4([192, 0, 0, 171], 32, "NAT64/DNS64 discovery (RFC 8880)"),
    v4([192, 0, 2, 0], 24, "documentation TEST-NET-1 (RFC 5737)"),
    v4([192, 31, 196, 0], 24, "AS112-v4 (RFC 7535)"),
    v4([192, 52, 193, 0], 24, "AMT (RFC 7450)"),
    v4(
        [192, 88, 99, 0],
        24,
        "deprecated 6to4 relay anycast (RFC 7526)",
    ),
    v4([192, 88, 99, 2], 32, "6a44 relay anycast (RFC 6751)"),
    v4([192, 168, 0, 0], 16, "private-use (RFC 1918)"),
    v4(
        [192, 175, 48, 0],
        24,
        "direct delegation AS112 service (RFC 7534)",
    ),
    v4([198, 18, 0, 0], 15, "benchmarking (RFC 2544)"),
    v4([198, 51, 100, 0], 24, "documentation TEST-NET-2 (RFC 5737)"),
    v4([203, 0, 113, 0], 24, "documentation TEST-NET-3 (RFC 5737)"),
    v4([240, 0, 0, 0], 4, "reserved (RFC 1112)"),
    v4([255, 255, 255, 255], 32, "limited broadcast (RFC 919)"),
    // Not in the special-purpose registry (the IPv4 address space registry has it).
    v4([224, 0, 0, 0], 4, "multicast (RFC 5771)"),
];

/// The IANA IPv6 Special-Purpose Address Registry, then the other IPv6 blocks that are not
/// public unicast. Two rows are judged by the IPv4 address they carry instead
/// ([`V6_BY_EMBEDDED`]).
const V6_SPECIAL: &[Block<Ipv6Addr>] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback (RFC 4291)"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified (RFC 4291)"),
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, "IPv4-mapped (RFC 4291)"),
    v6(
        [0x64, 0xff9b, 0, 0, 0, 0, 0, 0],
        96,
        "IPv4-IPv6 translation (RFC 6052)",
    ),
    v6(
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        "local-use IPv4-IPv6 translation (RFC 8215)",
    ),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only (RFC 6666)"),
    v6(
        [0x100, 0, 0, 1, 0, 0, 0, 0],
        64,
        "dummy IPv6 prefix (RFC 9780)",
    ),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "IETF protocol assignments (RFC 2928)",
    ),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "Teredo (RFC 4380)"),
    v6(
        [0x2001, 1, 0, 0, 0, 0, 0, 1],
        128,
        "Port Control Protocol anycast (RFC 7723)",
    ),
    v6(
        [0x2001, 1, 0, 0, 0, 0, 0, 2],
        128,
        "TURN anycast (RFC 8155)",
    ),
    v6(
        [0x2001, 1, 0, 0, 0, 0, 0, 3],
        128,
        "DNS-SD SRP anycast (RFC 9665)",
    ),
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, "benchmarking (RFC 5180)"),
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, "AMT (RFC 7450)"),
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, "AS112-v6 (RFC 7535)"),
    v6(
        [0x2001, 0x10, 0, 0, 0, 0, 0, 0],
        28,
        "deprecated ORCHID (RFC 4843)",
    ),
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, "ORCHIDv2 (RFC 7343)"),
    v6(
        [0x2001, 0x30, 0, 0, 0, 0, 0, 0],
        28,
        "drone remote ID entity tags (RFC 9374)",
    ),
    v6(
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "documentation (RFC 3849)",
    ),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, "6to4 (RFC 3056)"),
    v6(
        [0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0],
        48,
        "direct delegation AS112 service (RFC 7534)",
    ),
    v6(
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "documentation (RFC 9637)",
    ),
    v6(
        [0x5f00, 0, 0, 0, 0, 0, 0, 0],
        16,
        "segment routing SIDs (RFC 9602)",
    ),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local (RFC 4193)"),
    v6(
        [0xfe80, 0, 0, 0, 0, 0, 0, 0],
        10,
        "link-local unicast (RFC 4291)",
    ),
    // Not in the special-purpose registry.
    v6(
        [0, 0, 0, 0, 0, 0, 0, 0],
        96,
        "deprecated IPv4-compatible (RFC 4291)",
    ),
    v6(
        [0, 0, 0, 0, 0xffff, 0, 0, 0],
        96,
        "IPv4-translated (RFC 2765)",
    ),
    v6(
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        "deprecated site-local (RFC 3879)",
    ),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast (RFC 4291)"),
];

/// The rows of [`V6_SPECIAL`] that only translate an IPv4 address: reaching one reaches the
/// IPv4 address it embeds (through a NAT64 translator for `64:ff9b::/96`, which DNS64
/// answers with for every IPv4-only host), so the embedded address decides.
const V6_BY_EMBEDDED: &[Block<Ipv6Addr>] = &[
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, "IPv4-mapped (RFC 4291)"),
    v6(
        [0x64, 0xff9b, 0, 0, 0, 0, 0, 0],
        96,
        "IPv4-IPv6 translation (RFC 6052)",
    ),
];

/// Global unicast, the only IPv6 space allocated for public addresses (IANA IPv6 address
/// space registry); anything outside it that no row names is reserved by the IETF.
const V6_GLOBAL_UNICAST: Block<Ipv6Addr> = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3, "");

fn in_v4(b: &Block<Ipv4Addr>, ip: Ipv4Addr) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(b.len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(b.net) & mask
}

fn in_v6(b: &Block<Ipv6Addr>, ip: Ipv6Addr) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(b.len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(b.net) & mask
}

/// The IPv4 address an IPv6 address carries, in every form that embeds one: IPv4-mapped
/// (`::ffff:0:0/96`), IPv4-compatible (`::/96`), IPv4-translated (`::ffff:0:0:0/96`), NAT64
/// (`64:ff9b::/96`, and `64:ff9b:1::/48` with the RFC 6052 /48 layout), 6to4 (`2002::/16`)
/// and Teredo (`2001::/32`, the client address stored inverted).
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    let seg = ip.segments();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    let prefixed = |net: [u16; 8], len: u8| in_v6(&v6(net, len, ""), ip);
    if prefixed([0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || prefixed([0, 0, 0, 0, 0, 0, 0, 0], 96)
        || prefixed([0, 0, 0, 0, 0xffff, 0, 0, 0], 96)
        || prefixed([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        Some(last)
    } else if prefixed([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48) {
        // RFC 6052 §2.2 for a /48: bits 64–71 (the "u" octet) are skipped.
        Some(Ipv4Addr::new(o[6], o[7], o[9], o[10]))
    } else if seg[0] == 0x2002 {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else if seg[0] == 0x2001 && seg[1] == 0 {
        Some(Ipv4Addr::from(!u32::from(last)))
    } else {
        None
    }
}

/// Why an address may not receive a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restriction {
    /// The special-purpose block it is in (of the embedded IPv4 address, when that decided).
    pub block: &'static str,
    /// The IPv4 address the IPv6 address embeds, when it is the restricted one.
    pub embedded: Option<Ipv4Addr>,
}

impl std::fmt::Display for Restriction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.embedded {
            Some(v4) => write!(f, "it embeds {v4}, {}", self.block),
            None => f.write_str(self.block),
        }
    }
}

/// Why `ip` is not a public unicast address, if it is not. IPv4: its row of the table. IPv6:
/// the most specific row of the table names it, except the rows that only translate an IPv4
/// address, which are judged by that address; the embedded IPv4 address of every other form
/// is checked too; and anything outside global unicast is reserved.
pub fn restriction(ip: IpAddr) -> Option<Restriction> {
    let v4_block = |v4: Ipv4Addr| V4_SPECIAL.iter().find(|b| in_v4(b, v4)).map(|b| b.name);
    let named = |block: &'static str| Restriction {
        block,
        embedded: None,
    };
    let v6 = match ip {
        IpAddr::V4(v4) => return v4_block(v4).map(named),
        IpAddr::V6(v6) => v6,
    };
    let row = V6_SPECIAL
        .iter()
        .filter(|b| in_v6(b, v6))
        .max_by_key(|b| b.len);
    let translation = row.is_some_and(|r| {
        V6_BY_EMBEDDED
            .iter()
            .any(|b| b.net == r.net && b.len == r.len)
    });
    if let Some(r) = row
        && !translation
    {
        return Some(named(r.name));
    }
    if let Some(v4) = embedded_v4(v6)
        && let Some(block) = v4_block(v4)
    {
        return Some(Restriction {
            block,
            embedded: Some(v4),
        });
    }
    (row.is_none() && !in_v6(&V6_GLOBAL_UNICAST, v6))
        .then(|| named("reserved by the IETF (outside global unicast 2000::/3)"))
}

/// Whether `ip` is loopback, private, link-local or otherwise not a public unicast address.
pub fn is_restricted(ip: IpAddr) -> bool {
    restriction(ip).is_some()
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
    if let Some((ip, why)) = addrs
        .iter()
        .filter(|ip| !allowlisted(&cfg.callback_allow_networks, **ip))
        .find_map(|ip| restriction(*ip).map(|why| (ip, why)))
    {
        return Err(refused(format!(
            "the callback URL points to a private, loopback, link-local or other special-purpose address ({ip}: {why}); use a public https endpoint (the operator can allow internal networks with [tasks] callback_allow_networks)"
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

    fn last_v4(b: &Block<Ipv4Addr>) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(b.net) | u32::MAX.checked_shr(u32::from(b.len)).unwrap_or(0))
    }

    fn last_v6(b: &Block<Ipv6Addr>) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(b.net) | u128::MAX.checked_shr(u32::from(b.len)).unwrap_or(0))
    }

    /// Every row of both tables, at both ends of its block: refused, except the translation
    /// rows, which are judged by the IPv4 address they carry.
    #[test]
    fn every_special_purpose_row_is_restricted() {
        for b in V4_SPECIAL {
            for ip in [b.net, last_v4(b)] {
                let r = restriction(IpAddr::V4(ip));
                assert!(r.is_some(), "{ip} ({}) must be restricted", b.name);
            }
        }
        for b in V6_SPECIAL {
            for ip in [b.net, last_v6(b)] {
                assert!(
                    is_restricted(IpAddr::V6(ip)),
                    "{ip} ({}) must be restricted",
                    b.name
                );
            }
        }
        for b in V6_BY_EMBEDDED {
            assert!(V6_SPECIAL.iter().any(|r| r.net == b.net && r.len == b.len));
            let with = |v4: Ipv4Addr| Ipv6Addr::from(u128::from(b.net) | u128::from(u32::from(v4)));
            for (v4, restricted) in [
                ("127.0.0.1", true),
                ("169.254.169.254", true),
                ("10.0.0.1", true),
                ("8.8.8.8", false),
                ("93.184.216.34", false),
            ] {
                let ip = with(v4.parse().unwrap());
                assert_eq!(
                    is_restricted(IpAddr::V6(ip)),
                    restricted,
                    "{ip} ({})",
                    b.name
                );
            }
        }
    }

    /// The gaps the hardening issue found, and the forms around them.
    #[test]
    fn embedded_ipv4_forms_and_issue_gaps() {
        for ip in [
            "::ffff:0:127.0.0.1", // IPv4-translated loopback
            "::ffff:0:a9fe:a9fe", // IPv4-translated 169.254.169.254
            "fec0::1",            // site-local
            "100::1",             // discard-only
            "2001::1",            // Teredo
            "192.88.99.1",        // 6to4 relay anycast
            "2002::1",            // 6to4: stays refused
            "2002:0808:0808::1",  // 6to4 of a public address: still refused
            "::127.0.0.1",        // IPv4-compatible
            "::8.8.8.8",          // IPv4-compatible, deprecated whatever it embeds
            "64:ff9b::127.0.0.1", // NAT64 of loopback
            "64:ff9b:1:7f00:1::", // local-use NAT64
            "::ffff:169.254.169.254",
            "4000::1", // outside global unicast
            "224.0.0.1",
            "ff02::1",
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert!(is_restricted(parsed), "{ip} must be restricted");
        }
        for ip in [
            "8.8.8.8",
            "93.184.216.34",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert!(
                !is_restricted(parsed),
                "{ip} is public: {:?}",
                restriction(parsed)
            );
        }
        for (v6, v4) in [
            ("::ffff:127.0.0.1", Some("127.0.0.1")),
            ("::127.0.0.1", Some("127.0.0.1")),
            ("::ffff:0:127.0.0.1", Some("127.0.0.1")),
            ("64:ff9b::a9fe:a9fe", Some("169.254.169.254")),
            // RFC 6052 /48 layout: 192.0.2.33 around the u octet.
            ("64:ff9b:1:c000:2:2100::", Some("192.0.2.33")),
            ("2002:c000:0221::1", Some("192.0.2.33")),
            // RFC 4380's example: client 192.0.2.45, stored inverted.
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some("192.0.2.45")),
            ("2606:4700::1111", None),
        ] {
            assert_eq!(
                embedded_v4(v6.parse().unwrap()),
                v4.map(|a| a.parse().unwrap()),
                "{v6}"
            );
        }
        // A translated address names what it embeds.
        let r = restriction("64:ff9b::127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(r.embedded, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            restriction("::1".parse().unwrap()).unwrap().block,
            "loopback (RFC 4291)"
        );
    }

    #[tokio::test]
    async fn issue_gap_urls_are_refused() {
        let strict = cfg(&[], false);
        for url in [
            "https://[::ffff:0:127.0.0.1]/cb",
            "https://[::ffff:0:a9fe:a9fe]/cb",
            "https://[fec0::1]/cb",
            "https://[100::1]/cb",
            "https://[2001::1]/cb",
            "https://192.88.99.1/cb",
            "https://[2002::1]/cb",
        ] {
            let e = check_url(&strict, url).await.unwrap_err();
            assert_eq!(e.code, Some("callback_url_not_allowed"), "{url}");
            assert!(
                e.message.contains("special-purpose"),
                "{url}: {}",
                e.message
            );
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
