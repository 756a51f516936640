//! Login throttling: failed attempts are counted per account (in PostgreSQL, so every replica
//! sees them) and per client IP (in memory, per replica). Over either limit, login answers 429
//! with `Retry-After` until the window that started with the first failure has passed.
//! Successful logins are never counted; they clear the account's failures.
//!
//! A per-IP limit shared by all replicas belongs at the ingress as well: this one is per pod.

use std::{
    net::{IpAddr, Ipv6Addr},
    sync::Mutex,
    time::{Duration, Instant},
};

use hashlink::LinkedHashMap;
use poem::Request;
use sqlx::PgPool;

use crate::{config::ThrottleSettings, error::ApiError};

/// The most client networks tracked per replica. Beyond it the oldest entry is dropped: memory
/// stays bounded whatever an attacker with many addresses does, and no request ever waits for a
/// scan of the whole map under the lock.
const MAX_TRACKED: usize = 100_000;

pub struct LoginThrottle {
    db: PgPool,
    settings: ThrottleSettings,
    /// In first-failure order, so the front is always the oldest window.
    by_ip: Mutex<LinkedHashMap<IpAddr, (u32, Instant)>>,
}

impl LoginThrottle {
    pub fn new(db: PgPool, settings: ThrottleSettings) -> Self {
        Self {
            db,
            settings,
            by_ip: Mutex::new(LinkedHashMap::new()),
        }
    }

    /// The client a request is counted against: behind `trusted_proxy_hops` proxies, the entry
    /// of `client_ip_header` that many places from the right (the one our outermost proxy
    /// wrote; anything left of it is the client's own say), else the TCP peer. IPv6 clients are
    /// counted per /64, the smallest network one subscriber is usually given.
    pub fn client_of(&self, req: &Request) -> Option<IpAddr> {
        let peer = || req.remote_addr().as_socket_addr().map(|addr| addr.ip());
        let forwarded = self
            .settings
            .client_ip_header
            .as_deref()
            .and_then(|header| {
                let entries: Vec<&str> = req
                    .headers()
                    .get_all(header)
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .flat_map(|value| value.split(','))
                    .collect();
                let index = entries
                    .len()
                    .checked_sub(self.settings.trusted_proxy_hops)?;
                entries[index].trim().parse::<IpAddr>().ok()
            });
        forwarded.or_else(peer).map(network_of)
    }

    /// 429 when either the account or the IP is over its limit.
    pub async fn check(&self, account: &str, ip: Option<IpAddr>) -> Result<(), ApiError> {
        if let Some(ip) = ip
            && let Some(retry_after) = self.ip_blocked_for(ip)
        {
            return Err(ApiError::TooManyRequests { retry_after });
        }
        let window = self.settings.window.as_secs_f64();
        let blocked_for = sqlx::query_scalar!(
            r#"SELECT extract(epoch FROM window_started_at + make_interval(secs => $2) - now())::float8
                 AS "seconds!"
               FROM login_failures
               WHERE account = $1 AND failures >= $3
                 AND window_started_at + make_interval(secs => $2) > now()"#,
            account,
            window,
            i32::try_from(self.settings.max_failures_per_account).unwrap_or(i32::MAX),
        )
        .fetch_optional(&self.db)
        .await?;
        match blocked_for {
            Some(seconds) => Err(ApiError::TooManyRequests {
                retry_after: Duration::from_secs_f64(seconds.max(1.0)),
            }),
            None => Ok(()),
        }
    }

    pub async fn record_failure(&self, account: &str, ip: Option<IpAddr>) -> Result<(), ApiError> {
        if let Some(ip) = ip {
            self.count_ip_failure(ip);
        }
        // A window older than `window` starts over at one failure.
        sqlx::query!(
            r#"INSERT INTO login_failures (account, failures, window_started_at)
               VALUES ($1, 1, now())
               ON CONFLICT (account) DO UPDATE SET
                 failures = CASE
                   WHEN login_failures.window_started_at + make_interval(secs => $2) <= now() THEN 1
                   ELSE login_failures.failures + 1 END,
                 window_started_at = CASE
                   WHEN login_failures.window_started_at + make_interval(secs => $2) <= now() THEN now()
                   ELSE login_failures.window_started_at END"#,
            account,
            self.settings.window.as_secs_f64(),
        )
        .execute(&self.db)
        .await?;
        Ok(())
    }

    pub async fn record_success(&self, account: &str) -> Result<(), ApiError> {
        sqlx::query!("DELETE FROM login_failures WHERE account = $1", account)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    fn ip_blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let by_ip = self
            .by_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (failures, started) = by_ip.get(&ip)?;
        let elapsed = started.elapsed();
        (*failures >= self.settings.max_failures_per_ip && elapsed < self.settings.window)
            .then(|| (self.settings.window - elapsed).max(Duration::from_secs(1)))
    }

    fn count_ip_failure(&self, ip: IpAddr) {
        let window = self.settings.window;
        let mut by_ip = self
            .by_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (failures, started) = match by_ip.remove(&ip) {
            Some((failures, started)) if started.elapsed() < window => (failures, started),
            _ => (0, Instant::now()),
        };
        while by_ip.len() >= MAX_TRACKED {
            by_ip.pop_front();
        }
        // Re-inserted at the back: the map stays ordered by window start.
        by_ip.insert(ip, (failures + 1, started));
    }
}

/// IPv6 addresses by their /64 network; IPv4 (and IPv4-mapped IPv6) addresses as they are.
fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(header: Option<&str>, hops: usize) -> LoginThrottle {
        let settings = ThrottleSettings {
            max_failures_per_account: 5,
            max_failures_per_ip: 2,
            window: Duration::from_secs(60),
            client_ip_header: header.map(str::to_owned),
            trusted_proxy_hops: hops,
        };
        let db = sqlx::PgPool::connect_lazy("postgres://unused@127.0.0.1/unused").expect("lazy");
        LoginThrottle::new(db, settings)
    }

    fn request(forwarded: &[&str]) -> Request {
        let mut builder = Request::builder();
        for value in forwarded {
            builder = builder.header("x-forwarded-for", *value);
        }
        builder.finish()
    }

    #[tokio::test]
    async fn the_client_is_counted_from_the_right_past_trusted_proxies() {
        let one = throttle(Some("x-forwarded-for"), 1);
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        // The client wrote the first entry; our load balancer appended the real peer.
        assert_eq!(
            one.client_of(&request(&["6.6.6.6, 203.0.113.7"])),
            ip("203.0.113.7")
        );
        assert_eq!(
            one.client_of(&request(&["6.6.6.6", "203.0.113.7"])),
            ip("203.0.113.7")
        );
        let two = throttle(Some("x-forwarded-for"), 2);
        assert_eq!(
            two.client_of(&request(&["1.1.1.1, 203.0.113.7, 10.0.0.2"])),
            ip("203.0.113.7")
        );
        // Too few entries, a missing header, or garbage: the TCP peer (none in this test).
        assert_eq!(two.client_of(&request(&["203.0.113.7"])), None);
        assert_eq!(one.client_of(&request(&[])), None);
        assert_eq!(one.client_of(&request(&["not an ip"])), None);
        // No header configured: forwarded values are ignored entirely.
        assert_eq!(
            throttle(None, 1).client_of(&request(&["203.0.113.7"])),
            None
        );
    }

    #[tokio::test]
    async fn ipv6_clients_are_counted_per_64() {
        let one = throttle(Some("x-forwarded-for"), 1);
        let a = one.client_of(&request(&["2001:db8:1:2:aaaa::1"]));
        let b = one.client_of(&request(&["2001:db8:1:2:bbbb::9"]));
        let other = one.client_of(&request(&["2001:db8:1:3::1"]));
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(
            network_of("::ffff:192.0.2.1".parse().expect("ip")),
            "192.0.2.1".parse::<IpAddr>().expect("ip")
        );
    }

    #[tokio::test]
    async fn the_map_is_bounded_and_evicts_the_oldest() {
        let limiter = throttle(None, 1);
        let first: IpAddr = "192.0.2.1".parse().expect("ip");
        limiter.count_ip_failure(first);
        limiter.count_ip_failure(first);
        assert!(limiter.ip_blocked_for(first).is_some());
        for n in 0..MAX_TRACKED as u32 {
            limiter.count_ip_failure(IpAddr::V4((0x0a00_0000 + n).into()));
        }
        let tracked = limiter
            .by_ip
            .lock()
            .map(|map| map.len())
            .unwrap_or_default();
        assert_eq!(tracked, MAX_TRACKED);
        assert!(
            limiter.ip_blocked_for(first).is_none(),
            "the oldest went first"
        );
    }
}
