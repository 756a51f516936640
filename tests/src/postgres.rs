//! PostgreSQL for tests: a container per test process, or a database per test on a named server.

use std::time::{Duration, Instant};

use sqlx::{Connection as _, Executor as _, PgConnection};
use testcontainers::{
    ContainerAsync, GenericImage, ImageExt as _,
    core::{IntoContainerPort as _, WaitFor},
    runners::AsyncRunner as _,
};

use crate::free_port;

const DEFAULT_IMAGE: &str = "postgres:17-alpine";
const PASSWORD: &str = "keel-test";

/// A PostgreSQL server for one test: a container this process owns, or an external server.
pub struct TestPostgres {
    container: Option<ContainerAsync<GenericImage>>,
    /// URL of the server's maintenance database, used to create per-test databases.
    admin_url: String,
}

impl TestPostgres {
    /// Another handle on the same server that does not own its container, for a second app on
    /// the same database (a second replica); the server lives as long as `self`.
    pub fn handle(&self) -> Self {
        Self {
            container: None,
            admin_url: self.admin_url.clone(),
        }
    }

    pub async fn start() -> Self {
        if let Ok(url) = std::env::var("APP_TEST_DATABASE_URL") {
            return Self {
                container: None,
                admin_url: url,
            };
        }
        let image = std::env::var("APP_TEST_PG_IMAGE").unwrap_or_else(|_| DEFAULT_IMAGE.to_owned());
        let (name, tag) = image.rsplit_once(':').unwrap_or((image.as_str(), "latest"));
        // A fixed host port (rather than Docker's random one) survives the container being
        // stopped and started again, which the outage tests do.
        let port = free_port();
        let container = GenericImage::new(name, tag)
            .with_exposed_port(5432.tcp())
            .with_wait_for(WaitFor::message_on_stderr(
                "database system is ready to accept connections",
            ))
            .with_env_var("POSTGRES_USER", "keel")
            .with_env_var("POSTGRES_PASSWORD", PASSWORD)
            .with_env_var("POSTGRES_DB", "keel")
            .with_mapped_port(port, 5432.tcp())
            // Durability buys nothing in a throwaway test database and costs seconds per test.
            .with_cmd([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .with_startup_timeout(Duration::from_secs(120))
            .start()
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start PostgreSQL from image {image}: {err}\n\
                     Without a registry, build a local image first: `make pg-image` \
                     (make test does this and exports APP_TEST_PG_IMAGE)."
                )
            });
        let postgres = Self {
            container: Some(container),
            admin_url: format!("postgres://keel:{PASSWORD}@127.0.0.1:{port}/keel"),
        };
        postgres.wait_until_accepting().await;
        postgres
    }

    /// The ready log line can come from an init-time server in some images; only a successful
    /// TCP login proves the final server is up.
    async fn wait_until_accepting(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match PgConnection::connect(&self.admin_url).await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return;
                }
                Err(err) if Instant::now() > deadline => {
                    panic!("PostgreSQL never accepted connections: {err}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Creates an empty database and returns its URL.
    pub async fn create_database(&self) -> String {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&self.admin_url)
            .await
            .expect("connect to the test server");
        // The name is a generated UUID, never input, so building the statement is safe.
        conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        let (base, _) = self
            .admin_url
            .rsplit_once('/')
            .expect("the admin URL names a database");
        format!("{base}/{name}")
    }

    /// Whether this test owns the server (and so may stop it).
    pub fn is_container(&self) -> bool {
        self.container.is_some()
    }

    pub async fn stop(&self) {
        if let Some(container) = &self.container {
            container.stop().await.expect("stop PostgreSQL");
        }
    }

    pub async fn start_again(&self) {
        if let Some(container) = &self.container {
            container.start().await.expect("start PostgreSQL again");
            self.wait_until_accepting().await;
        }
    }
}

/// Holds a lock the readiness probe needs, so `/health/ready` is genuinely slow until
/// [`ReadinessBlocker::release`]: a real slow request without a test-only endpoint.
pub struct ReadinessBlocker(TableLock);

impl ReadinessBlocker {
    pub async fn hold(database_url: &str) -> Self {
        Self(TableLock::hold(database_url, "_sqlx_migrations").await)
    }

    pub async fn release(self) {
        self.0.release().await;
    }
}

/// An `ACCESS EXCLUSIVE` lock on one table, held in an open transaction until
/// [`TableLock::release`]: every request that reads the table waits, holding its connection.
pub struct TableLock(PgConnection);

impl TableLock {
    /// `table` is a name from the test's code, never input.
    pub async fn hold(database_url: &str, table: &'static str) -> Self {
        let mut conn = PgConnection::connect(database_url).await.expect("connect");
        conn.execute("BEGIN").await.expect("begin");
        conn.execute(sqlx::AssertSqlSafe(format!(
            "LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        )))
        .await
        .expect("lock");
        Self(conn)
    }

    pub async fn release(mut self) {
        self.0.execute("ROLLBACK").await.expect("release the lock");
    }
}
