//! Database outages and shutdown: the service degrades loudly, recovers by itself, and drains.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use keel_tests::{
    TestPostgres, assert_problem, free_port, keel_bin, spawn_app_with, test_environment,
};
use sqlx::{Connection as _, Executor as _};

#[tokio::test]
async fn database_outage_turns_ready_503_and_recovers_without_restart() {
    let app = spawn_app_with(&[("APP__DATABASE__ACQUIRE_TIMEOUT", "1s")]).await;
    if !app.postgres.is_container() {
        eprintln!("skipped: APP_TEST_DATABASE_URL names a server this test cannot stop");
        return;
    }
    assert_eq!(app.get("/health/ready").await.status(), 200);

    app.postgres.stop().await;
    let started = Instant::now();
    let body = assert_problem(app.get("/health/ready").await, 503).await;
    assert_eq!(body["type"], "urn:keel:problem:dependency-unavailable");
    // Fails within the pool's acquire timeout instead of hanging on a dead server.
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
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let postgres = TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let port = free_port();
    let child = Command::new(keel_bin())
        .arg("serve")
        .env_clear()
        .envs(test_environment(&database_url))
        .env("APP__SERVER__PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keel serve");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .map(|r| r.status())
        .ok()
        != Some(reqwest::StatusCode::OK)
    {
        assert!(Instant::now() < deadline, "keel serve never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Make the readiness probe slow by holding a lock it needs.
    let mut blocker = sqlx::PgConnection::connect(&database_url)
        .await
        .expect("connect");
    blocker.execute("BEGIN").await.expect("begin");
    blocker
        .execute("LOCK TABLE _sqlx_migrations IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/health/ready");
        async move { client.get(url).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Draining: new connections are refused while the old request is still running.
    let late = reqwest::Client::new()
        .get(format!("{base}/health/live"))
        .send()
        .await;
    assert!(late.is_err(), "accepted a new request after SIGTERM");
    assert!(
        !in_flight.is_finished(),
        "the slow request finished too early to prove anything"
    );

    blocker.execute("ROLLBACK").await.expect("release the lock");
    let status = in_flight
        .await
        .expect("join")
        .expect("the in-flight request completed");
    assert_eq!(status, reqwest::StatusCode::OK);

    let exit = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let stderr = String::from_utf8_lossy(&exit.stderr).into_owned();
    assert_eq!(exit.status.code(), Some(0), "stderr: {stderr}");
}
