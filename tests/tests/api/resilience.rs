//! Database outages and shutdown: the service degrades loudly, recovers by itself, and drains.

use std::time::{Duration, Instant};

use keel_tests::{
    Keel, KeelOutput, ReadinessBlocker, TableLock, TestPostgres, assert_problem, spawn_app_with,
};

#[tokio::test]
async fn a_database_outage_is_503_with_retry_after_everywhere_and_recovers_without_restart() {
    let app = spawn_app_with(&[("APP__DATABASE__ACQUIRE_TIMEOUT", "1s")]).await;
    if !app.postgres.is_container() {
        eprintln!("skipped: APP_TEST_DATABASE_URL names a server this test cannot stop");
        return;
    }
    assert_eq!(app.get("/health/ready").await.status(), 200);
    let session = app
        .auth()
        .register_and_login("outage@example.com", "an outage test passphrase")
        .await;

    app.postgres.stop().await;
    for (path, response) in [
        ("/health/ready", app.get("/health/ready").await),
        (
            "/api/v1/users/me",
            app.auth().me(&session.access_token).await,
        ),
    ] {
        // Fails within the pool's acquire timeout instead of hanging on a dead server, and
        // says when to come back.
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = assert_problem(response, 503).await;
        assert_eq!(
            body["type"], "urn:keel:problem:dependency-unavailable",
            "{path}: {body}"
        );
        assert_eq!(retry_after.as_deref(), Some("1"), "{path}");
    }
    let started = Instant::now();
    assert_problem(app.auth().me(&session.access_token).await, 503).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // The process is alive and still serving what does not need the database.
    assert_eq!(app.get("/health/live").await.status(), 200);

    app.postgres.start_again().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = app.get("/health/ready").await.status();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The request pool recovers too, with the same token: nothing was lost in the outage.
    let me = app.auth().me(&session.access_token).await;
    assert_eq!(me.status(), 200);
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let postgres = TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let keel = Keel::command(["serve"])
        .test_environment(&database_url)
        .start()
        .await;
    let client = reqwest::Client::new();
    let ready = format!("{}/health/ready", keel.base);
    assert_eq!(
        client.get(&ready).send().await.expect("ready").status(),
        200
    );

    let blocker = ReadinessBlocker::hold(&database_url).await;
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.get(ready).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    keel.sigterm();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Draining: new connections are refused while the old request is still running.
    let late = reqwest::Client::new()
        .get(format!("{}/health/live", keel.base))
        .send()
        .await;
    assert!(late.is_err(), "accepted a new request after SIGTERM");
    assert!(
        !in_flight.is_finished(),
        "the slow request finished too early to prove anything"
    );

    blocker.release().await;
    let status = in_flight
        .await
        .expect("join")
        .expect("the in-flight request completed");
    assert_eq!(status, reqwest::StatusCode::OK);

    let KeelOutput { code, stderr, .. } = keel.wait().await;
    assert_eq!(code, Some(0), "stderr: {stderr}");
}

/// A drain cannot hold a pod hostage: a request still running at `server.shutdown_timeout`
/// is cut off, and the process exits anyway (cleanly, having logged why), well before
/// Kubernetes' grace period would SIGKILL it.
#[tokio::test]
async fn a_drain_longer_than_the_shutdown_timeout_is_cut_off_and_the_process_exits() {
    let postgres = TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let keel = Keel::command(["serve"])
        .test_environment(&database_url)
        .env("APP__SERVER__SHUTDOWN_TIMEOUT", "1s")
        .start()
        .await;
    let ready = format!("{}/health/ready", keel.base);
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(&ready).send().await.expect("ready").status(),
        200
    );

    let blocker = ReadinessBlocker::hold(&database_url).await;
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.get(ready).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    keel.sigterm();
    let KeelOutput {
        code,
        stdout,
        stderr,
    } = keel.wait().await;
    let took = signalled.elapsed();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    // 1 s of drain, then at most 2 s closing the pools while the cut-off request's statement
    // still waits on the lock (which outlives the process: it is released below).
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(6),
        "exited {took:?} after SIGTERM"
    );
    let answer = in_flight.await.expect("join");
    assert!(
        answer.is_err(),
        "the slow request was answered ({answer:?}) although the lock was still held"
    );
    assert!(
        format!("{stdout}{stderr}").contains("shutdown timeout reached"),
        "no log line says why: {stdout}{stderr}"
    );
    blocker.release().await;
}

/// A query cannot outlive its request: PostgreSQL cancels it at `database.statement_timeout`.
/// Migrations run without it: a timeout of 1 ms would cancel the first migration's DDL.
#[tokio::test]
async fn statements_are_cancelled_at_the_timeout_and_migrations_are_exempt() {
    let app = spawn_app_with(&[]).await;
    let fresh_database = app.postgres.create_database().await;
    let mut environment = keel_tests::test_environment(&fresh_database);
    environment.push(("APP__DATABASE__STATEMENT_TIMEOUT".into(), "1ms".into()));
    let settings = keel::config::Settings::load_from(environment).expect("settings");

    keel::db::migrate(&settings.database)
        .await
        .expect("migrations run whatever the statement timeout");

    let pool = keel::db::connect_lazy(&settings.database).expect("pool");
    let shown = sqlx::query_scalar::<_, String>("SHOW statement_timeout")
        .fetch_one(&pool)
        .await
        .expect("show");
    assert_eq!(shown, "1ms");
    let cancelled = sqlx::query("SELECT pg_sleep(5)")
        .execute(&pool)
        .await
        .expect_err("cancelled by the statement timeout");
    let code = cancelled
        .as_database_error()
        .and_then(|error| error.code())
        .map(|code| code.into_owned());
    assert_eq!(code.as_deref(), Some("57014"), "{cancelled}");
}

/// Every connection held: a request that needs one fails with 503 problem+json once the
/// acquire timeout passes, instead of hanging until the request timeout, and the service
/// answers normally again as soon as connections are free. Meanwhile the replica stays ready:
/// it is busy, not broken, and must not be taken out of the Service for it.
#[tokio::test]
async fn an_exhausted_pool_fails_fast_with_503_stays_ready_and_recovers() {
    let app = spawn_app_with(&[
        ("APP__DATABASE__MAX_CONNECTIONS", "2"),
        ("APP__DATABASE__ACQUIRE_TIMEOUT", "1s"),
        ("APP__HTTP__REQUEST_TIMEOUT", "60s"),
    ])
    .await;
    let session = app
        .auth()
        .register_and_login("pool@example.com", "correct horse battery staple")
        .await;
    let lock = TableLock::hold(&app.database_url, "users").await;
    // Two requests wait on the lock, each holding one of the pool's two connections.
    let held: Vec<_> = (0..2)
        .map(|_| {
            let request = app
                .client
                .get(app.url("/api/v1/users/me"))
                .bearer_auth(&session.access_token)
                .send();
            tokio::spawn(request)
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let body = assert_problem(app.auth().me(&session.access_token).await, 503).await;
    assert_eq!(
        body["type"], "urn:keel:problem:dependency-unavailable",
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let ready = app.get("/health/ready").await;
    assert_eq!(
        ready.status(),
        200,
        "a saturated pool made the replica unready"
    );

    lock.release().await;
    for request in held {
        let status = request.await.expect("joined").expect("answered").status();
        assert_eq!(status, 200);
    }
    assert_eq!(app.auth().me(&session.access_token).await.status(), 200);
}
