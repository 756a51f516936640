//! Which URLs a webhook may call: the service must not become a way into its own network
//! (server-side request forgery). A subscriber URL is checked when it is registered and again,
//! resolved afresh, before every attempt, and once more by the HTTP client's resolver when it
//! connects: a connection goes only to an address that passed, so a name that resolves
//! elsewhere a moment later (DNS rebinding) changes nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use url::Url;

use crate::config::WebhookSettings;

/// Why a URL may not be called.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("is not an absolute http(s) URL")]
    NotHttp,
    #[error("must use https")]
    NotHttps,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("must not carry a fragment")]
    Fragment,
    #[error("host {host} does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
    #[error("host {host} resolves to {address}, a {kind} address, which is not allowed")]
    Internal {
        host: String,
        address: IpAddr,
        kind: &'static str,
    },
}

/// The checks that need no DNS: scheme, https where required, no credentials or fragment.
pub fn check_syntax(url: &str, settings: &WebhookSettings) -> Result<Url, Refused> {
    let url = Url::parse(url).map_err(|_| Refused::NotHttp)?;
    match url.scheme() {
        "https" => {}
        "http" if !settings.require_https => {}
        "http" => return Err(Refused::NotHttps),
        _ => return Err(Refused::NotHttp),
    }
    if url.host().is_none() {
        return Err(Refused::NotHttp);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused::Credentials);
    }
    if url.fragment().is_some() {
        return Err(Refused::Fragment);
    }
    Ok(url)
}

/// Resolves `url`'s host and returns the address to connect to, checked by [`resolve_host`].
pub async fn resolve(url: &Url, allowed: &[IpNet]) -> Result<SocketAddr, Refused> {
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses = resolve_host(url.host_str().unwrap_or_default(), port, allowed).await?;
    addresses
        .first()
        .copied()
        .ok_or_else(|| Refused::Unresolved {
            host: url.host_str().unwrap_or_default().to_owned(),
            reason: "no addresses".to_owned(),
        })
}

/// Resolves `host` (a name or an IP literal). Every address the name resolves to must be
/// allowed — a name with one public and one internal record is refused, since which one a
/// client picks is not ours to decide.
pub async fn resolve_host(
    host: &str,
    port: u16,
    allowed: &[IpNet],
) -> Result<Vec<SocketAddr>, Refused> {
    // Bracketed IPv6 literals come back from `host_str` with their brackets.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|err| Refused::Unresolved {
                host: host.to_owned(),
                reason: err.to_string(),
            })?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(Refused::Unresolved {
            host: host.to_owned(),
            reason: "no addresses".to_owned(),
        });
    }
    for address in &addresses {
        let ip = canonical(address.ip());
        if let Some(kind) = internal_kind(ip)
            && !allowed.iter().any(|network| network.contains(&ip))
        {
            return Err(Refused::Internal {
                host: host.to_owned(),
                address: ip,
                kind,
            });
        }
    }
    Ok(addresses)
}

/// The HTTP client's resolver: a connection to a subscriber goes only to addresses that pass
/// [`resolve_host`] at the moment of connecting, so a name that passed the check before the
/// attempt and resolves elsewhere a moment later (DNS rebinding) is refused, and pooled
/// connections can be reused safely. (IP-literal URLs skip resolvers; the attempt checks those.)
pub struct CheckedResolver {
    pub allowed: Vec<IpNet>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            // The connector puts the URL's port on each address.
            let addresses = resolve_host(name.as_str(), 0, &allowed).await?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// IPv4 written as IPv6 (`::ffff:127.0.0.1`) is the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// What kind of non-public address `ip` is, if it is one.
fn internal_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match () {
        () if ip.is_loopback() => "loopback",
        () if ip.is_private() => "private",
        // 169.254.0.0/16, which holds the cloud metadata service (169.254.169.254).
        () if ip.is_link_local() => "link-local",
        () if a == 100 && (64..128).contains(&b) => "carrier-grade NAT",
        () if a == 0 => "unspecified",
        () if ip.is_broadcast() || ip.is_multicast() => "multicast or broadcast",
        // 192.0.0.0/24 (IETF protocol assignments), 198.18.0.0/15 (benchmarking),
        // 240.0.0.0/4 (reserved).
        () if (a == 192 && b == 0 && ip.octets()[2] == 0)
            || (a == 198 && (b & 0xfe) == 18)
            || a >= 240 =>
        {
            "reserved"
        }
        () => return None,
    })
}

fn internal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match () {
        () if ip.is_loopback() => "loopback",
        () if ip.is_unspecified() => "unspecified",
        // fc00::/7, unique local (AWS's IPv6 metadata endpoint fd00:ec2::254 is in it).
        () if (first & 0xfe00) == 0xfc00 => "private",
        () if (first & 0xffc0) == 0xfe80 => "link-local",
        () if ip.is_multicast() => "multicast or broadcast",
        // 64:ff9b::/96, NAT64: the IPv4 address it embeds decides.
        () if ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] => {
            let [.., c, d] = ip.segments();
            let embedded = Ipv4Addr::new((c >> 8) as u8, c as u8, (d >> 8) as u8, d as u8);
            return internal_v4(embedded);
        }
        () => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_named_and_public_ones_pass() {
        for (address, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.5.4", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("fd00:ec2::254", "private"),
            ("fe80::1", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
        ] {
            let ip = canonical(address.parse().expect("address"));
            assert_eq!(internal_kind(ip), Some(kind), "{address}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "100.128.0.1",
        ] {
            assert_eq!(
                internal_kind(public.parse().expect("address")),
                None,
                "{public}"
            );
        }
    }

    #[tokio::test]
    async fn the_allowlist_opens_exactly_its_networks() {
        let url = Url::parse("http://127.0.0.1:9000/hook").expect("url");
        assert!(matches!(
            resolve(&url, &[]).await,
            Err(Refused::Internal {
                kind: "loopback",
                ..
            })
        ));
        let loopback: IpNet = "127.0.0.0/8".parse().expect("net");
        assert_eq!(
            resolve(&url, &[loopback]).await,
            Ok("127.0.0.1:9000".parse().expect("addr"))
        );
        let other: IpNet = "10.0.0.0/8".parse().expect("net");
        assert!(resolve(&url, &[other]).await.is_err());
    }
}
