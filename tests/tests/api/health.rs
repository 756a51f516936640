//! Probes, request ids and response headers: what every deployment relies on.

use keel_tests::{
    Keel, KeelOutput, TestPostgres, assert_json, assert_problem, service_role_url, spawn_app,
    spawn_app_on, spawn_app_with,
};
use sqlx::{Connection as _, Executor as _, PgConnection};

#[tokio::test]
async fn live_answers_while_the_process_runs() {
    let app = spawn_app().await;
    let body = assert_json(app.get("/health/live").await, 200).await;
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn ready_once_migrations_are_applied() {
    let app = spawn_app().await;
    let body = assert_json(app.get("/health/ready").await, 200).await;
    assert_eq!(body["status"], "ready");
}

/// Readiness checks the set of migrations, not the newest: one missing is 503 whichever it
/// is, and a migration this binary does not know (a newer release's, mid rolling deploy) is no
/// reason to stop serving.
#[tokio::test]
async fn ready_needs_every_migration_of_this_build_and_tolerates_newer_ones() {
    let app = spawn_app().await;
    let mut owner = PgConnection::connect(&app.database_url)
        .await
        .expect("owner");
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut owner)
            .await
            .expect("applied versions");
    assert!(versions.len() >= 2, "{versions:?}");
    let (first, last) = (versions[0], versions[versions.len() - 1]);

    for missing in [last, first] {
        sqlx::query("UPDATE _sqlx_migrations SET success = false WHERE version = $1")
            .bind(missing)
            .execute(&mut owner)
            .await
            .expect("mark one migration failed");
        let body = assert_problem(app.get("/health/ready").await, 503).await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("migrations"),
            "{missing}: {body}"
        );
        sqlx::query("UPDATE _sqlx_migrations SET success = true WHERE version = $1")
            .bind(missing)
            .execute(&mut owner)
            .await
            .expect("restore");
        assert_eq!(app.get("/health/ready").await.status(), 200);
    }

    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, 'from a newer release', true, '\\x00', 0)",
    )
    .bind(last + 1)
    .execute(&mut owner)
    .await
    .expect("a newer release's migration");
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

#[tokio::test]
async fn not_ready_until_keel_migrate_has_run() {
    // Migrations create the service's role; made by hand here, so that before `keel migrate`
    // the service can log in and find the schema missing, rather than not log in at all.
    let postgres = TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let service = url::Url::parse(&service_role_url(&database_url)).expect("url");
    let mut owner = PgConnection::connect(&database_url).await.expect("owner");
    owner
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE ROLE {} LOGIN PASSWORD '{}'",
            service.username(),
            service.password().unwrap_or_default()
        )))
        .await
        .expect("create the service role");
    let app = spawn_app_on(
        postgres,
        database_url,
        &[("APP__DATABASE__MIGRATE_ON_START", "false")],
    )
    .await;
    let body = assert_problem(app.get("/health/ready").await, 503).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("migrations"),
        "{body}"
    );

    let KeelOutput { code, stderr, .. } = Keel::command(["migrate"])
        .test_environment(&app.database_url)
        .run();
    assert_eq!(code, Some(0), "keel migrate failed: {stderr}");

    assert_eq!(app.get("/health/ready").await.status(), 200);
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;

    let response = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");

    let generated = app.get("/health/live").await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");

    // An id that could forge log lines is replaced, not echoed.
    let response = app
        .client
        .get(app.url("/nowhere"))
        .header("x-request-id", "a b c")
        .send()
        .await
        .expect("request");
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(echoed, "a b c");
    let body = assert_problem(response, 404).await;
    assert_eq!(body["request_id"], echoed.as_str());
}

/// With `http.trust_request_id = false` (production's default) a caller's id never reaches
/// the logs or the problem documents: the server's own replaces it. With `true` it is kept.
#[tokio::test]
async fn caller_request_ids_are_kept_only_when_trusted() {
    let sent = "caller-chosen-id-7";
    for (trust, kept) in [("false", false), ("true", true)] {
        let app = spawn_app_with(&[("APP__HTTP__TRUST_REQUEST_ID", trust)]).await;
        let response = app
            .client
            .get(app.url("/nowhere"))
            .header("x-request-id", sent)
            .send()
            .await
            .expect("request");
        let answered = response.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let body = assert_problem(response, 404).await;
        assert_eq!(body["request_id"], answered.as_str(), "trust {trust}");
        if kept {
            assert_eq!(answered, sent, "trust {trust}");
        } else {
            assert_ne!(answered, sent, "trust {trust}");
            let generated = uuid::Uuid::parse_str(&answered)
                .unwrap_or_else(|err| panic!("trust {trust}: {answered:?} is no UUID: {err}"));
            assert_eq!(generated.get_version_num(), 7, "trust {trust}: {answered}");
        }
    }
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_app().await;
    let response = app.get("/health/live").await;
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
}

#[tokio::test]
async fn token_responses_are_never_stored_and_hsts_is_configurable() {
    let app = spawn_app().await;
    let auth = app.auth();
    auth.create_account("cache@example.com", "correct horse battery staple")
        .await;
    let login = auth
        .login("cache@example.com", "correct horse battery staple")
        .await;
    let (cache, pragma) = (
        login.headers()["cache-control"].clone(),
        login.headers()["pragma"].clone(),
    );
    let session = keel_tests::auth::Session::from_response(login).await;
    let refreshed = auth.refresh(&session.refresh_token).await;
    let me = auth.me(&session.access_token).await;
    for (what, headers) in [
        ("login", (cache, pragma)),
        (
            "refresh",
            (
                refreshed.headers()["cache-control"].clone(),
                refreshed.headers()["pragma"].clone(),
            ),
        ),
        (
            "me",
            (
                me.headers()["cache-control"].clone(),
                me.headers()["pragma"].clone(),
            ),
        ),
    ] {
        assert_eq!(headers.0, "no-store", "{what}");
        assert_eq!(headers.1, "no-cache", "{what}");
    }
    // Off by default: a plain-HTTP local run must not pin browsers to HTTPS.
    assert!(me.headers().get("strict-transport-security").is_none());

    let app = spawn_app_with(&[("APP__HTTP__HSTS_MAX_AGE", "1d")]).await;
    let response = app.get("/health/live").await;
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=86400; includeSubDomains"
    );
}

#[tokio::test]
async fn security_headers_can_be_switched_off() {
    let app = spawn_app_with(&[("APP__HTTP__SECURITY_HEADERS", "false")]).await;
    let response = app.get("/health/live").await;
    assert!(response.headers().get("content-security-policy").is_none());
}

#[tokio::test]
async fn cors_allows_only_listed_origins_and_refusals_are_problems_with_security_headers() {
    let app = spawn_app_with(&[
        ("APP__HTTP__CORS__ALLOWED_ORIGINS", "https://app.example"),
        ("APP__HTTP__CORS__MAX_AGE", "10m"),
    ])
    .await;
    let allowed = app
        .client
        .get(app.url("/health/live"))
        .header("origin", "https://app.example")
        .send()
        .await
        .expect("request");
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    // Browsers let scripts read the request id, to quote in a bug report.
    let exposed = allowed.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");

    let other = app
        .client
        .get(app.url("/health/live"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("request");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // A refusal is a response like any other: the security headers and the request id too.
    for name in [
        "x-content-type-options",
        "x-frame-options",
        "content-security-policy",
        "cache-control",
        "x-request-id",
    ] {
        assert!(other.headers().contains_key(name), "no {name} on the 403");
    }
    assert_problem(other, 403).await;

    // Preflight: the allowed origin gets the method, the header and the configured max-age;
    // another origin gets no grant.
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/users/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let granted = preflight("https://app.example").await.expect("preflight");
    assert!(granted.status().is_success(), "{}", granted.status());
    let grant = |name: &str| {
        granted
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    assert_eq!(grant("access-control-allow-origin"), "https://app.example");
    assert!(grant("access-control-allow-methods").contains("get"));
    assert!(grant("access-control-allow-headers").contains("authorization"));
    assert_eq!(grant("access-control-max-age"), "600");
    let refused = preflight("https://evil.example").await.expect("preflight");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(refused.status(), 403);
}

/// `keel healthcheck --url` is what the chart's `helm test` pod runs against the Service: it must
/// load no configuration (the test pod has no database URL or signing key) and follow readiness.
#[tokio::test]
async fn healthcheck_url_follows_a_remote_servers_readiness_without_config() {
    let check = |url: String| {
        tokio::task::spawn_blocking(move || {
            // Production settings without a database URL would fail to load: none are loaded.
            Keel::command(["healthcheck", "--url", &url])
                .env("APP_ENV", "production")
                .run()
        })
    };

    let ready = spawn_app().await;
    let KeelOutput { code, stderr, .. } = check(ready.url("/health/ready")).await.expect("join");
    assert_eq!(code, Some(0), "{stderr}");

    let unready = spawn_app_with(&[("APP__DATABASE__MIGRATE_ON_START", "false")]).await;
    let KeelOutput { code, stderr, .. } = check(unready.url("/health/ready")).await.expect("join");
    assert_eq!(code, Some(1));
    assert!(
        stderr.trim().lines().count() == 1 && stderr.contains("503"),
        "{stderr}"
    );

    let KeelOutput { code, stderr, .. } = check("ftp://example.invalid/".to_owned())
        .await
        .expect("join");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--url"), "{stderr}");
}
