//! Test harness: every test gets the real server on `127.0.0.1:0` and a database of its own.
//!
//! PostgreSQL comes from a container started through testcontainers, one per test process
//! (nextest runs each test in its own process, so tests never share state or interfere):
//! - image `postgres:17-alpine`, or `APP_TEST_PG_IMAGE` (the Makefile sets it to a locally built
//!   image when no registry is reachable);
//! - or no container at all when `APP_TEST_DATABASE_URL` names a server; each test then creates a
//!   fresh database on it.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use keel::{config::Settings, server::Application};
use sqlx::{Connection as _, Executor as _, PgConnection, PgPool};
use testcontainers::{
    ContainerAsync, GenericImage, ImageExt as _,
    core::{IntoContainerPort as _, WaitFor},
    runners::AsyncRunner as _,
};

const DEFAULT_IMAGE: &str = "postgres:17-alpine";
const PASSWORD: &str = "keel-test";

/// A PostgreSQL server for one test: a container this process owns, or an external server.
pub struct TestPostgres {
    container: Option<ContainerAsync<GenericImage>>,
    /// URL of the server's maintenance database, used to create per-test databases.
    admin_url: String,
}

impl TestPostgres {
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

/// A running server with its own database.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    pub client: reqwest::Client,
    /// A pool on the app's database, for arranging state and checking results.
    pub db: PgPool,
    pub database_url: String,
    pub postgres: TestPostgres,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request reached the server")
    }

    /// A body-less request with `Authorization: Bearer <token>`.
    pub async fn send_as(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request reached the server")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The environment a test server is configured from: the real loader, the real `test.toml`.
pub fn test_environment(database_url: &str) -> Vec<(String, String)> {
    vec![
        ("APP_ENV".to_owned(), "test".to_owned()),
        (
            "APP_CONFIG_DIR".to_owned(),
            config_dir().display().to_string(),
        ),
        ("APP__DATABASE__URL".to_owned(), database_url.to_owned()),
        ("APP__SERVER__PORT".to_owned(), "0".to_owned()),
    ]
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Like [`spawn_app`], with extra `APP__...` settings, e.g. `("APP__HTTP__REQUEST_TIMEOUT", "300ms")`.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let postgres = TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let mut environment = test_environment(&database_url);
    environment.extend(
        overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let settings = Settings::load_from(environment).expect("test settings are valid");

    let app = Application::build(settings).await.expect("the app starts");
    let address = format!("http://{}", app.local_addr());
    let db = app.state().db.clone();
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    TestApp {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client"),
        db,
        database_url,
        postgres,
        shutdown: Some(shutdown),
    }
}

pub fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../app/config")
}

/// The `keel` binary, for tests of the command line and process behaviour. `make test` builds
/// it first; `KEEL_BIN` points elsewhere.
pub fn keel_bin() -> PathBuf {
    if let Ok(path) = std::env::var("KEEL_BIN") {
        return PathBuf::from(path);
    }
    // Test executables live in target/<profile>/deps; binaries one level up.
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("keel"))
        .expect("target directory layout");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p keel` first (make test does)",
        bin.display()
    );
    bin
}

/// Runs `keel` with exactly the given environment (plus PATH) and returns (exit code, stdout, stderr).
pub fn run_keel(args: &[&str], environment: &[(String, String)]) -> (Option<i32>, String, String) {
    let output = Command::new(keel_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(environment.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .expect("run keel");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free local port")
}

/// Asserts an RFC 9457 problem response and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of {}",
        response.url()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("a JSON problem body");
    assert_eq!(body["status"], status);
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "problem without {field}: {body}");
    }
    body
}

/// Holds a lock the readiness probe needs, so `/health/ready` is genuinely slow until
/// [`ReadinessBlocker::release`]: a real slow request without a test-only endpoint.
pub struct ReadinessBlocker(PgConnection);

impl ReadinessBlocker {
    pub async fn hold(database_url: &str) -> Self {
        let mut conn = PgConnection::connect(database_url).await.expect("connect");
        conn.execute("BEGIN").await.expect("begin");
        conn.execute("LOCK TABLE _sqlx_migrations IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
        Self(conn)
    }

    pub async fn release(mut self) {
        self.0.execute("ROLLBACK").await.expect("release the lock");
    }
}

/// `keel serve` as a child process, for what only a real process shows: signals, exit codes,
/// what it writes to stdout.
pub struct KeelProcess {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`
    pub base: String,
}

impl KeelProcess {
    /// Starts `keel serve` on a free port with the test environment plus `extra`, and waits
    /// until it answers.
    pub async fn start(database_url: &str, extra: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = Command::new(keel_bin())
            .arg("serve")
            .env_clear()
            .envs(test_environment(database_url))
            .env("APP__SERVER__PORT", port.to_string())
            .envs(extra.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start keel serve");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client
            .get(format!("{base}/health/live"))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "keel serve never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, base }
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit and returns its exit code, stdout and stderr.
    pub async fn wait(self) -> (Option<i32>, String, String) {
        let output = tokio::task::spawn_blocking(move || self.child.wait_with_output())
            .await
            .expect("join")
            .expect("wait for keel");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// An Ed25519 signing key for tests that mint their own tokens: hand its PEM to the app as
/// `APP__AUTH__SIGNING_KEY`, sign with [`TestKey::encoding_key`].
pub struct TestKey {
    pub pem: String,
    key: ed25519_dalek::SigningKey,
}

impl TestKey {
    pub fn generate() -> Self {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let pem = key
            .to_pkcs8_pem(Default::default())
            .expect("PEM encoding")
            .to_string();
        Self { pem, key }
    }

    /// The public half, SPKI PEM, as `auth.verification_keys` takes it.
    pub fn public_pem(&self) -> String {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        self.key
            .verifying_key()
            .to_public_key_pem(Default::default())
            .expect("PEM encoding")
    }

    pub fn encoding_key(&self) -> jsonwebtoken::EncodingKey {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let der = self.key.to_pkcs8_der().expect("DER encoding");
        jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())
    }
}

/// Registers an account and logs it in; returns the login response body.
pub async fn register_and_login(app: &TestApp, email: &str, password: &str) -> serde_json::Value {
    let registered = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(
            &serde_json::json!({"email": email, "password": password, "display_name": "Test User"}),
        )
        .send()
        .await
        .expect("register");
    assert_eq!(
        registered.status(),
        201,
        "{}",
        registered.text().await.unwrap_or_default()
    );
    login(app, email, password)
        .await
        .json()
        .await
        .expect("token pair")
}

pub async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login")
}

/// An access token of a fresh admin account.
pub async fn admin_token(app: &TestApp) -> String {
    let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "admin test passphrase";
    register_and_login(app, &email, password).await;
    sqlx::query("UPDATE users SET role = 'admin' WHERE email = $1")
        .bind(&email)
        .execute(&app.db)
        .await
        .expect("promote");
    let pair: serde_json::Value = login(app, &email, password)
        .await
        .json()
        .await
        .expect("tokens");
    pair["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}
