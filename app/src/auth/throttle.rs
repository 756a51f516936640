//! Login throttling: failed attempts are counted per account (in PostgreSQL, so every replica
//! sees them) and per client IP (in memory, per replica). Over either limit, login answers 429
//! with `Retry-After` until the window that started with the first failure has passed.
//! Successful logins are never counted; they clear the account's failures.
//!
//! A per-IP limit shared by all replicas belongs at the ingress as well: this one is per pod.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use sqlx::PgPool;

use crate::{config::ThrottleSettings, error::ApiError};

/// Above this many tracked IPs, expired entries are swept on the next failure.
const SWEEP_AT: usize = 10_000;

pub struct LoginThrottle {
    db: PgPool,
    settings: ThrottleSettings,
    by_ip: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginThrottle {
    pub fn new(db: PgPool, settings: ThrottleSettings) -> Self {
        Self {
            db,
            settings,
            by_ip: Mutex::new(HashMap::new()),
        }
    }

    pub fn client_ip_header(&self) -> Option<&str> {
        self.settings.client_ip_header.as_deref()
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
        if by_ip.len() >= SWEEP_AT {
            by_ip.retain(|_, (_, started)| started.elapsed() < window);
        }
        let entry = by_ip.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}
