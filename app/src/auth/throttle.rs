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

use futures_util::FutureExt as _;
use hashlink::LinkedHashMap;
use poem::Request;
use sqlx::PgPool;

use crate::{config::ThrottleSettings, error::ApiError, jobs::ScheduledJob};

/// A counter whose window has passed counts nothing: the next failure starts a new window.
/// Without this, every email ever mistyped would keep its row.
pub const PURGE_LOGIN_FAILURES: ScheduledJob = ScheduledJob {
    name: "purge_login_failures",
    run: |conn, settings| {
        async move {
            let deleted = sqlx::query!(
                "DELETE FROM login_failures
                 WHERE window_started_at + make_interval(secs => $1) <= now()",
                settings.auth.throttle.window.as_secs_f64(),
            )
            .execute(conn)
            .await?;
            Ok(deleted.rows_affected())
        }
        .boxed()
    },
};

/// The most client networks tracked per replica. Beyond it the oldest entry is dropped: memory
/// stays bounded whatever an attacker with many addresses does, and no request ever waits for a
/// scan of the whole map under the lock.
const MAX_TRACKED: usize = 100_000;

pub struct LoginThrottle {
    db: PgPool,
    settings: ThrottleSettings,
    /// Login attempts per client network, this replica only.
    by_ip: Windows,
    /// Registrations per client network, this replica only.
    registrations: Windows,
    /// Password-reset requests per client network, this replica only.
    resets: Windows,
}

impl LoginThrottle {
    pub fn new(db: PgPool, settings: ThrottleSettings) -> Self {
        Self {
            db,
            by_ip: Windows::new(settings.window),
            registrations: Windows::new(settings.window),
            resets: Windows::new(settings.window),
            settings,
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

    /// Counts an attempt against the account and the client *before* its password is checked,
    /// and refuses it (429) when that goes over either limit. Counting first, atomically (one
    /// upsert for the account, one locked update for the client), is what makes concurrent
    /// guesses count: a burst of attempts cannot all pass a check before any failure is
    /// recorded. [`LoginThrottle::succeeded`] takes a successful attempt back.
    pub async fn begin(&self, account: &str, ip: Option<IpAddr>) -> Result<(), ApiError> {
        if let Some(ip) = ip
            && let Some(retry_after) = self.by_ip.count(ip, self.settings.max_failures_per_ip)
        {
            return Err(ApiError::TooManyRequests { retry_after });
        }
        // A window older than `window` starts over at this attempt.
        let counted = sqlx::query!(
            r#"INSERT INTO login_failures (account, failures, window_started_at)
               VALUES ($1, 1, now())
               ON CONFLICT (account) DO UPDATE SET
                 failures = CASE
                   WHEN login_failures.window_started_at + make_interval(secs => $2) <= now() THEN 1
                   ELSE login_failures.failures + 1 END,
                 window_started_at = CASE
                   WHEN login_failures.window_started_at + make_interval(secs => $2) <= now() THEN now()
                   ELSE login_failures.window_started_at END
               RETURNING failures,
                 extract(epoch FROM window_started_at + make_interval(secs => $2) - now())::float8
                   AS "remaining!""#,
            account,
            self.settings.window.as_secs_f64(),
        )
        .fetch_one(&self.db)
        .await?;
        let limit = i32::try_from(self.settings.max_failures_per_account).unwrap_or(i32::MAX);
        if counted.failures > limit {
            return Err(ApiError::TooManyRequests {
                retry_after: Duration::from_secs_f64(counted.remaining.max(1.0)),
            });
        }
        Ok(())
    }

    /// The attempt [`LoginThrottle::begin`] counted was right: it was no failure, and the
    /// account's earlier failures are forgiven.
    pub async fn succeeded(&self, account: &str, ip: Option<IpAddr>) -> Result<(), ApiError> {
        if let Some(ip) = ip {
            self.by_ip.uncount(ip);
        }
        sqlx::query!("DELETE FROM login_failures WHERE account = $1", account)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Counts a registration from `ip`; 429 once it is over `max_registrations_per_ip`. Each
    /// registration costs a password hash, so this also bounds how fast one client can queue
    /// hashing work.
    pub fn begin_registration(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        Self::limit(
            &self.registrations,
            self.settings.max_registrations_per_ip,
            ip,
        )
    }

    /// Counts a password-reset request from `ip`; 429 once it is over
    /// `max_password_resets_per_ip`. Each request queues a task and may send an email, so this
    /// bounds how much of either one client can cause.
    pub fn begin_password_reset(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        Self::limit(&self.resets, self.settings.max_password_resets_per_ip, ip)
    }

    fn limit(windows: &Windows, max: u32, ip: Option<IpAddr>) -> Result<(), ApiError> {
        match ip.and_then(|ip| windows.count(ip, max)) {
            Some(retry_after) => Err(ApiError::TooManyRequests { retry_after }),
            None => Ok(()),
        }
    }
}

/// Attempts per client network within a window, in memory. In first-attempt order, so the
/// front is always the oldest window; bounded by [`MAX_TRACKED`].
struct Windows {
    window: Duration,
    map: Mutex<LinkedHashMap<IpAddr, (u32, Instant)>>,
}

impl Windows {
    fn new(window: Duration) -> Self {
        Self {
            window,
            map: Mutex::new(LinkedHashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkedHashMap<IpAddr, (u32, Instant)>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one attempt; `Some(retry_after)` when that makes more than `limit` in the window.
    fn count(&self, ip: IpAddr, limit: u32) -> Option<Duration> {
        let mut map = self.lock();
        let (attempts, started) = match map.remove(&ip) {
            Some((attempts, started)) if started.elapsed() < self.window => (attempts, started),
            _ => (0, Instant::now()),
        };
        while map.len() >= MAX_TRACKED {
            map.pop_front();
        }
        let attempts = attempts.saturating_add(1);
        // Re-inserted at the back: the map stays ordered by window start.
        map.insert(ip, (attempts, started));
        (attempts > limit).then(|| {
            self.window
                .saturating_sub(started.elapsed())
                .max(Duration::from_secs(1))
        })
    }

    fn uncount(&self, ip: IpAddr) {
        if let Some((attempts, _)) = self.lock().get_mut(&ip) {
            *attempts = attempts.saturating_sub(1);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
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
            max_registrations_per_ip: 2,
            max_password_resets_per_ip: 2,
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

    #[test]
    fn windows_count_refuse_past_the_limit_and_evict_the_oldest() {
        let windows = Windows::new(Duration::from_secs(60));
        let first: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(windows.count(first, 2).is_none());
        assert!(windows.count(first, 2).is_none());
        assert!(windows.count(first, 2).is_some(), "the third of two");
        windows.uncount(first);
        assert!(
            windows.count(first, 2).is_some(),
            "still over after one is taken back"
        );
        for n in 0..MAX_TRACKED as u32 {
            windows.count(IpAddr::V4((0x0a00_0000 + n).into()), 2);
        }
        assert_eq!(windows.len(), MAX_TRACKED);
        assert!(windows.count(first, 2).is_none(), "the oldest went first");
    }
}
