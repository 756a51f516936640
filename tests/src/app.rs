//! The app under test: the real server, built from the real settings loader, on a random port.

use std::{path::PathBuf, time::Duration};

use keel::{config::Settings, server::Application};
use sqlx::PgPool;

use crate::TestPostgres;

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

    /// A JSON request, with `Authorization: Bearer <token>` when a token is given.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request reached the server")
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
/// `database_url` is the database owner's: migrations run as it, and the service itself
/// connects as its own least-privilege role (see [`service_role_url`]), as in production, so
/// every test proves the role's grants are enough.
pub fn test_environment(database_url: &str) -> Vec<(String, String)> {
    vec![
        (
            "APP__DATABASE__MIGRATION_URL".to_owned(),
            database_url.to_owned(),
        ),
        (
            "APP__DATABASE__URL".to_owned(),
            service_role_url(database_url),
        ),
        ("APP_ENV".to_owned(), "test".to_owned()),
        (
            "APP_CONFIG_DIR".to_owned(),
            config_dir().display().to_string(),
        ),
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
    spawn_app_on(postgres, database_url, overrides).await
}

/// Like [`spawn_app_with`], on a database the test created (and perhaps arranged) itself.
pub async fn spawn_app_on(
    postgres: TestPostgres,
    database_url: String,
    overrides: &[(&str, &str)],
) -> TestApp {
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

/// The URL of the service's role for the database at `owner_url`: roles are shared by every
/// database on a server, so each test database gets its own, created by its migrations.
pub fn service_role_url(owner_url: &str) -> String {
    let mut url = url::Url::parse(owner_url).expect("the owner URL parses");
    let database = url.path().trim_start_matches('/').to_owned();
    url.set_username(&format!("svc_{database}"))
        .and_then(|()| url.set_password(Some(SERVICE_ROLE_PASSWORD)))
        .expect("a postgres URL takes credentials");
    url.to_string()
}

const SERVICE_ROLE_PASSWORD: &str = "service-role-password";

pub fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../app/config")
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free local port")
}

/// A response header's value, empty when it is missing or not text.
pub(crate) fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Asserts a JSON response of this status and returns its body.
pub async fn assert_json(response: reqwest::Response, status: u16) -> serde_json::Value {
    let url = response.url().clone();
    let actual = response.status().as_u16();
    let text = response.text().await.expect("a response body");
    assert_eq!(actual, status, "status of {url}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"))
}

/// Asserts an RFC 9457 problem response and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of {}",
        response.url()
    );
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    let body: serde_json::Value = response.json().await.expect("a JSON problem body");
    assert_eq!(body["status"], status);
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "problem without {field}: {body}");
    }
    body
}
