//! Throttling, counted in PostgreSQL so that every replica sees the same counters: failed
//! logins per account, and logins, registrations and password-reset requests per client
//! network. Over a limit, the request is answered 429 with `Retry-After` until the window that
//! started with the first counted attempt has passed.
//!
//! A login attempt is counted before its password is checked and stays counted only if that
//! check happened and failed: a right password takes it back (and forgives the account's
//! failures), and so does a request abandoned before the check — a client that hung up, a
//! hashing queue that was full — so only guesses that were actually judged use up a limit.

use std::{
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

use futures_util::FutureExt as _;
use poem::Request;
use sqlx::PgPool;

use crate::{config::ThrottleSettings, error::ApiError, jobs::ScheduledJob};

/// A counter whose window has passed counts nothing: the next attempt starts a new window.
/// Without this, every email ever mistyped and every client ever seen would keep its row.
pub const PURGE_THROTTLE_WINDOWS: ScheduledJob = ScheduledJob {
    name: "purge_throttle_windows",
    run: |conn, settings| {
        async move {
            let deleted = sqlx::query!(
                "DELETE FROM throttle_windows
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

/// What a counter counts, per what: the `scope` column of `throttle_windows`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    LoginAccount,
    LoginClient,
    RegistrationClient,
    PasswordResetClient,
}

impl Scope {
    const fn as_str(self) -> &'static str {
        match self {
            Self::LoginAccount => "login:account",
            Self::LoginClient => "login:client",
            Self::RegistrationClient => "registration:client",
            Self::PasswordResetClient => "password-reset:client",
        }
    }
}

pub struct LoginThrottle {
    db: PgPool,
    settings: ThrottleSettings,
}

impl LoginThrottle {
    pub fn new(db: PgPool, settings: ThrottleSettings) -> Self {
        Self { db, settings }
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

    /// Counts a login attempt against the client and the account *before* its password is
    /// checked, and refuses it (429) when that goes over either limit. Counting first,
    /// atomically (one upsert per counter), is what makes concurrent guesses count: a burst of
    /// attempts cannot all pass a check before any failure is recorded. The attempt is taken
    /// back unless [`LoginAttempt::checked`] is called before it is dropped.
    pub async fn begin(&self, account: &str, ip: Option<IpAddr>) -> Result<LoginAttempt, ApiError> {
        let mut attempt = LoginAttempt {
            db: self.db.clone(),
            counted: Vec::with_capacity(2),
            checked: false,
        };
        let limits = [
            ip.map(|ip| {
                (
                    Scope::LoginClient,
                    ip.to_string(),
                    self.settings.max_failures_per_ip,
                )
            }),
            Some((
                Scope::LoginAccount,
                account.to_owned(),
                self.settings.max_failures_per_account,
            )),
        ];
        for (scope, key, limit) in limits.into_iter().flatten() {
            let over = self.count(scope, &key, limit).await?;
            attempt.counted.push((scope, key));
            if let Some(retry_after) = over {
                return Err(ApiError::TooManyRequests { retry_after });
            }
        }
        Ok(attempt)
    }

    /// Counts a registration from `ip`; 429 once it is over `max_registrations_per_ip`. Each
    /// registration costs a password hash, so this also bounds how fast one client can queue
    /// hashing work.
    pub async fn begin_registration(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        self.limit(
            Scope::RegistrationClient,
            ip,
            self.settings.max_registrations_per_ip,
        )
        .await
    }

    /// Counts a password-reset request from `ip`; 429 once it is over
    /// `max_password_resets_per_ip`. Each request queues a task and may send an email, so this
    /// bounds how much of either one client can cause.
    pub async fn begin_password_reset(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        self.limit(
            Scope::PasswordResetClient,
            ip,
            self.settings.max_password_resets_per_ip,
        )
        .await
    }

    async fn limit(&self, scope: Scope, ip: Option<IpAddr>, max: u32) -> Result<(), ApiError> {
        let Some(ip) = ip else { return Ok(()) };
        match self.count(scope, &ip.to_string(), max).await? {
            Some(retry_after) => Err(ApiError::TooManyRequests { retry_after }),
            None => Ok(()),
        }
    }

    /// Counts one attempt; `Some(retry_after)` when that makes more than `limit` in the window.
    /// A window that has passed starts over at this attempt.
    async fn count(
        &self,
        scope: Scope,
        key: &str,
        limit: u32,
    ) -> Result<Option<Duration>, sqlx::Error> {
        let counted = sqlx::query!(
            r#"INSERT INTO throttle_windows (scope, key, attempts, window_started_at)
               VALUES ($1, $2, 1, now())
               ON CONFLICT (scope, key) DO UPDATE SET
                 attempts = CASE
                   WHEN throttle_windows.window_started_at + make_interval(secs => $3) <= now() THEN 1
                   ELSE throttle_windows.attempts + 1 END,
                 window_started_at = CASE
                   WHEN throttle_windows.window_started_at + make_interval(secs => $3) <= now() THEN now()
                   ELSE throttle_windows.window_started_at END
               RETURNING attempts,
                 extract(epoch FROM window_started_at + make_interval(secs => $3) - now())::float8
                   AS "remaining!""#,
            scope.as_str(),
            key,
            self.settings.window.as_secs_f64(),
        )
        .fetch_one(&self.db)
        .await?;
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        Ok((counted.attempts > limit).then(|| Duration::from_secs_f64(counted.remaining.max(1.0))))
    }
}

/// A login attempt [`LoginThrottle::begin`] counted. Dropped before [`LoginAttempt::checked`],
/// it is taken back, in a task of its own (a drop cannot wait).
#[must_use = "an attempt dropped unchecked is taken back"]
pub struct LoginAttempt {
    db: PgPool,
    counted: Vec<(Scope, String)>,
    checked: bool,
}

impl LoginAttempt {
    /// The password was checked: the attempt stays counted unless it
    /// [`succeeded`](Self::succeeded).
    pub fn checked(&mut self) {
        self.checked = true;
    }

    /// The password was right: the attempt is no failure, and the account's earlier failures
    /// are forgiven.
    pub async fn succeeded(mut self) -> Result<(), ApiError> {
        self.checked = true;
        let (account, clients): (Vec<_>, Vec<_>) = std::mem::take(&mut self.counted)
            .into_iter()
            .partition(|(scope, _)| *scope == Scope::LoginAccount);
        let mut tx = self.db.begin().await?;
        for (scope, key) in account {
            sqlx::query!(
                "DELETE FROM throttle_windows WHERE scope = $1 AND key = $2",
                scope.as_str(),
                key,
            )
            .execute(&mut *tx)
            .await?;
        }
        uncount(&mut *tx, &clients).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Drop for LoginAttempt {
    fn drop(&mut self) {
        if self.checked || self.counted.is_empty() {
            return;
        }
        let (db, counted) = (self.db.clone(), std::mem::take(&mut self.counted));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = uncount(&db, &counted).await {
                    tracing::warn!(error = %err, "an abandoned login attempt stays counted");
                }
            });
        }
    }
}

/// Takes one attempt back from each counter (never below zero).
async fn uncount(
    db: impl sqlx::PgExecutor<'_>,
    counted: &[(Scope, String)],
) -> Result<(), sqlx::Error> {
    if counted.is_empty() {
        return Ok(());
    }
    let scopes: Vec<&str> = counted.iter().map(|(scope, _)| scope.as_str()).collect();
    let keys: Vec<&str> = counted.iter().map(|(_, key)| key.as_str()).collect();
    sqlx::query!(
        "UPDATE throttle_windows SET attempts = attempts - 1
         WHERE (scope, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
           AND attempts > 0",
        &scopes as &[&str],
        &keys as &[&str],
    )
    .execute(db)
    .await?;
    Ok(())
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
}
