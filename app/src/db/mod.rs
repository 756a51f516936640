//! The PostgreSQL pool, embedded migrations, and the readiness probe.

pub mod roles;

use std::str::FromStr;

use anyhow::Context as _;
use secrecy::ExposeSecret;
use sqlx::{
    Connection as _, PgConnection, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::config::DatabaseSettings;

/// Migrations compiled into the binary, so `keel migrate` needs nothing but a database URL.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Builds the pool without connecting: the server starts (and reports not-ready) while the
/// database is still coming up, instead of crash-looping.
pub fn connect_lazy(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    let pool = pool_options(settings, settings.max_connections)
        .min_connections(settings.min_connections)
        .connect_lazy_with(connect_options(settings)?);
    Ok(observed("api", pool))
}

fn pool_options(settings: &DatabaseSettings, max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(settings.idle_timeout)
        // A connection that died with the server (or was ended by a failover) must not be handed
        // out after it returns. This costs a round trip per checkout, on top of the one sqlx
        // makes when a connection is returned: two of the three round trips of a one-query
        // request. Pinging only connections idle for a while was measured and dropped: right
        // after a failover, every pooled connection failed one request.
        .test_before_acquire(true)
        // Every checkout reports its wait (as a debug event), which telemetry turns into the
        // `db.client.connection.wait_time` histogram; logs ignore it at their usual levels.
        .acquire_time_level(log::LevelFilter::Debug)
}

/// Reports the pool's connections (`db.client.connection.count` by state, and `.max`) at each
/// metric export, named `pool` (`db.client.connection.pool.name`).
fn observed(name: &'static str, pool: PgPool) -> PgPool {
    let meter = opentelemetry::global::meter("keel");
    let name_attribute = opentelemetry::KeyValue::new("db.client.connection.pool.name", name);
    let counted = pool.clone();
    let attribute = name_attribute.clone();
    meter
        .i64_observable_up_down_counter("db.client.connection.count")
        .with_unit("{connection}")
        .with_description("Connections open in the pool, by state (idle, used)")
        .with_callback(move |observer| {
            let open = i64::from(counted.size());
            let idle = i64::try_from(counted.num_idle()).unwrap_or(i64::MAX);
            for (state, count) in [("idle", idle), ("used", (open - idle).max(0))] {
                observer.observe(
                    count,
                    &[
                        attribute.clone(),
                        opentelemetry::KeyValue::new("db.client.connection.state", state),
                    ],
                );
            }
        })
        .build();
    let max = i64::from(pool.options().get_max_connections());
    meter
        .i64_observable_up_down_counter("db.client.connection.max")
        .with_unit("{connection}")
        .with_description("The most connections the pool may open")
        .with_callback(move |observer| observer.observe(max, std::slice::from_ref(&name_attribute)))
        .build();
    pool
}

/// The readiness probe's own single connection, apart from the request pool. Readiness says
/// whether this replica can serve — the database reachable and migrated — not whether the
/// pool is momentarily busy: a probe that queued behind a saturated pool would time out on
/// every replica at once and Kubernetes would take them all out of the Service in a traffic
/// spike, turning saturation into an outage.
pub fn probe_lazy(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    let pool = pool_options(settings, 1)
        .connect_lazy_with(connect_options(settings)?.application_name("keel-probe"));
    Ok(observed("probe", pool))
}

/// Background work's own pool (`worker.max_connections`), apart from the request pool: a burst
/// of requests cannot starve the scheduler, and a slow job cannot take connections from
/// requests.
pub fn worker_lazy(
    settings: &DatabaseSettings,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    let pool = pool_options(settings, max_connections)
        .connect_lazy_with(connect_options(settings)?.application_name("keel-worker"));
    Ok(observed("worker", pool))
}

fn connect_options(settings: &DatabaseSettings) -> Result<PgConnectOptions, sqlx::Error> {
    Ok(PgConnectOptions::from_str(settings.url.expose_secret())?
        .statement_cache_capacity(settings.statement_cache_capacity)
        .application_name("keel")
        // A query must not outlive the request that asked for it: past the HTTP timeout the
        // client has its 503, and the query would only hold locks and a connection.
        .options([(
            "statement_timeout",
            format!("{}ms", settings.statement_timeout.as_millis()),
        )]))
}

/// Applies pending migrations as the schema owner, then hands the service its rights.
///
/// The owner is `database.migration_url` when set: it applies migrations and grants the role
/// named in `database.url` exactly row access (see [`roles`]), so the running service cannot
/// change the schema. Without it (local development, one role for everything) migrations run
/// over `database.url` and no grants are made.
///
/// The connection carries no statement timeout: building an index on a large table may
/// rightly take longer than any request.
pub async fn migrate(settings: &DatabaseSettings) -> anyhow::Result<()> {
    let (owner_url, owner_key) = match &settings.migration_url {
        Some(url) => (url, "database.migration_url"),
        None => (&settings.url, "database.url"),
    };
    let options = PgConnectOptions::from_str(owner_url.expose_secret())
        .with_context(|| owner_key.to_owned())?
        .application_name("keel-migrate")
        .options([("statement_timeout", "0")]);
    let mut owner = PgConnection::connect_with(&options)
        .await
        .with_context(|| format!("connecting as the schema owner ({owner_key})"))?;
    MIGRATOR
        .run(&mut owner)
        .await
        .context("applying migrations")?;
    // The task queue's own (schema apalis, tracked in apalis._sqlx_migrations). It creates the
    // hstore and pgcrypto extensions, trusted ones that a database owner may create.
    crate::jobs::queue::migrator()
        .run(&mut owner)
        .await
        .context("applying the task queue's migrations (schema apalis)")?;

    if settings.migration_url.is_some() {
        let service_url = url::Url::parse(settings.url.expose_secret()).context("database.url")?;
        match roles::ServiceRole::from_url(&service_url) {
            Some(role) if role.name != options.get_username() => {
                roles::grant_service_role(&mut owner, &role)
                    .await
                    .with_context(|| {
                        format!("granting the service role {:?} its rights", role.name)
                    })?;
                tracing::info!(role = %role.name, "service role granted row access");
            }
            Some(_) => tracing::warn!(
                "database.url and database.migration_url name the same user: the service runs as the schema owner"
            ),
            // Config validation requires both when migration_url is set.
            None => anyhow::bail!("database.url: names no user and password to grant"),
        }
    }
    owner
        .close()
        .await
        .context("closing the owner connection")?;
    Ok(())
}

/// Why the service is not ready, if it is not.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("database unreachable")]
    Unreachable(#[source] sqlx::Error),
    #[error("database migrations pending: {pending:?} of this binary are not applied")]
    MigrationsPending { pending: Vec<i64> },
}

/// Ready means the database answers and holds every migration this binary was built with, each
/// applied successfully — the set, not just the newest, so a skipped or failed one counts — the
/// task queue's included. A binary older than the schema is fine (rolling deploys): versions it
/// does not know are ignored.
pub async fn check_ready(pool: &PgPool) -> Result<(), NotReady> {
    let missing_table = |err: sqlx::Error| match &err {
        // No migrations table yet: nothing has been applied to this database.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => Ok(Vec::new()),
        _ => Err(NotReady::Unreachable(err)),
    };
    let applied = sqlx::query_scalar!(r#"SELECT version FROM _sqlx_migrations WHERE success"#)
        .fetch_all(pool)
        .await
        .or_else(missing_table)?;
    let mut pending = pending_migrations(MIGRATOR.iter().map(|m| m.version), &applied);
    let queue_applied =
        sqlx::query_scalar!(r#"SELECT version FROM apalis._sqlx_migrations WHERE success"#)
            .fetch_all(pool)
            .await
            .or_else(missing_table)?;
    pending.extend(pending_migrations(
        crate::jobs::queue::migrator().iter().map(|m| m.version),
        &queue_applied,
    ));
    if pending.is_empty() {
        Ok(())
    } else {
        Err(NotReady::MigrationsPending { pending })
    }
}

/// The versions of `expected` not in `applied`, in order.
fn pending_migrations(expected: impl Iterator<Item = i64>, applied: &[i64]) -> Vec<i64> {
    let applied: std::collections::HashSet<i64> = applied.iter().copied().collect();
    let mut pending: Vec<i64> = expected.filter(|v| !applied.contains(v)).collect();
    pending.sort_unstable();
    pending
}

/// Errors that mean "the database is not there right now" rather than "this query is wrong".
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    ) || matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|code| {
        // Class 57: operator intervention (e.g. admin shutdown); 08: connection exceptions.
        code.starts_with("57") || code.starts_with("08")
    }))
}

/// Turns a violated constraint into the domain error it means, at the call site that knows:
/// `insert(..).await.on_constraint("users_email_key", || InsertUserError::EmailTaken)`. Any
/// other database error converts into the same error type through its `From<sqlx::Error>`.
pub trait ConstraintExt<T> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        name: &str,
        error: impl FnOnce() -> E,
    ) -> Result<T, E>;
}

impl<T> ConstraintExt<T> for Result<T, sqlx::Error> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        name: &str,
        error: impl FnOnce() -> E,
    ) -> Result<T, E> {
        self.map_err(|err| match &err {
            sqlx::Error::Database(db) if db.constraint() == Some(name) => error(),
            _ => err.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::pending_migrations;

    #[test]
    fn pending_is_every_expected_version_not_applied() {
        let expected = || [1, 2, 3].into_iter();
        assert_eq!(
            pending_migrations(expected(), &[1, 2, 3]),
            Vec::<i64>::new()
        );
        // A newer binary's migration on the database: still ready (rolling deploy).
        assert_eq!(
            pending_migrations(expected(), &[1, 2, 3, 4]),
            Vec::<i64>::new()
        );
        assert_eq!(pending_migrations(expected(), &[1, 2]), vec![3]);
        // The newest is there but one before it is not: not ready.
        assert_eq!(pending_migrations(expected(), &[1, 3]), vec![2]);
        assert_eq!(pending_migrations(expected(), &[]), vec![1, 2, 3]);
    }
}
