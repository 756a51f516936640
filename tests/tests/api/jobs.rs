//! Background work: the scheduler runs each job once per interval across replicas, `keel worker`
//! runs it alone behind its own probes, and `keel serve` runs it in-process unless told not to.

use std::time::Duration;

use keel_tests::{Keel, KeelOutput, TestPostgres, migrated_database, spawn_app_on};
use sqlx::{PgPool, postgres::PgPoolOptions};
use time::OffsetDateTime;

/// Every job slow enough not to run twice in a test, but `fast` every `interval`.
fn schedule(fast: &str, interval: &str) -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = keel::jobs::scheduled()
        .map(|job| job.name)
        .map(|job| {
            let value = if job == fast { interval } else { "1h" };
            (
                format!("APP__WORKER__SCHEDULE__{}", job.to_uppercase()),
                value.to_owned(),
            )
        })
        .collect();
    settings.push(("APP__WORKER__TICK".to_owned(), "50ms".to_owned()));
    settings
}

fn borrowed(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect()
}

async fn owner_pool(database_url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(database_url)
        .await
        .expect("connect as the owner")
}

async fn runs_of(db: &PgPool, job: &str) -> Vec<OffsetDateTime> {
    sqlx::query_scalar(
        "SELECT started_at FROM scheduled_job_runs WHERE job = $1 AND error IS NULL ORDER BY started_at",
    )
    .bind(job)
    .fetch_all(db)
    .await
    .expect("read the run log")
}

/// Two `keel worker` replicas, ticking every 50 ms, share one job due every second: it runs
/// once per second in all, never twice within a second, whichever replica gets there first.
#[tokio::test]
async fn two_workers_run_each_job_once_per_interval() {
    let (_postgres, database_url) = migrated_database().await;

    let start_worker = || {
        Keel::command(["worker"])
            .test_environment(&database_url)
            .env("APP__DATABASE__MIGRATE_ON_START", "false")
            .envs(schedule("purge_throttle_windows", "1s"))
            .start()
    };
    let (first, second) = tokio::join!(start_worker(), start_worker());
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    first.sigterm();
    second.sigterm();
    let (first, second) = tokio::join!(first.wait(), second.wait());
    for KeelOutput { code, stderr, .. } in [&first, &second] {
        assert_eq!(*code, Some(0), "stderr: {stderr}");
    }

    let db = owner_pool(&database_url).await;
    let runs = runs_of(&db, "purge_throttle_windows").await;
    // 4.5 s at one run per second: 4 or 5, depending on where the first tick fell.
    assert!(
        (4..=5).contains(&runs.len()),
        "{} runs in 4.5 s: {runs:?}",
        runs.len()
    );
    for pair in runs.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= time::Duration::SECOND,
            "ran twice within its interval: {runs:?}"
        );
    }
    // The slow jobs ran exactly once: at the first tick, on one replica only.
    for job in ["purge_sessions", "purge_idempotency_keys", "prune_job_runs"] {
        assert_eq!(runs_of(&db, job).await.len(), 1, "{job}");
    }
}

/// `keel worker` serves only its probes; the API is not there.
#[tokio::test]
async fn the_worker_process_serves_probes_only_and_stops_cleanly() {
    let postgres = TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let worker = Keel::command(["worker"])
        .test_environment(&database_url)
        .start()
        .await;
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{}/health/ready", worker.base))
        .send()
        .await
        .expect("ready answers");
    assert_eq!(ready.status(), 200);
    let api = client
        .get(format!("{}/api/v1/products", worker.base))
        .send()
        .await
        .expect("the port answers");
    assert_eq!(api.status(), 404, "a worker must not serve the API");

    worker.sigterm();
    let KeelOutput { code, stderr, .. } = worker.wait().await;
    assert_eq!(code, Some(0), "stderr: {stderr}");
}

/// `keel serve` runs the scheduler unless `worker.enabled` is false, for a deployment whose
/// worker Deployment runs it instead. Both servers start together; once the enabled one has
/// run every job, the disabled one, given as long and a second more, has run none.
#[tokio::test]
async fn serve_runs_background_work_unless_disabled() {
    let start = |enabled: &'static str| async move {
        let postgres = TestPostgres::start().await;
        let database_url = postgres.create_database().await;
        let mut overrides = schedule("prune_job_runs", "1h");
        overrides.push(("APP__WORKER__ENABLED".to_owned(), enabled.to_owned()));
        spawn_app_on(postgres, database_url, &borrowed(&overrides)).await
    };
    let (enabled, disabled) = tokio::join!(start("true"), start("false"));
    let all_jobs = "SELECT count(DISTINCT job) FROM scheduled_job_runs";
    // Every job of this build: each is due at start-up.
    let jobs = i64::try_from(keel::jobs::scheduled().count()).expect("a few jobs");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let ran: i64 = sqlx::query_scalar(all_jobs)
            .fetch_one(&enabled.db)
            .await
            .expect("read the run log");
        if ran == jobs {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker.enabled = true ran {ran} of {jobs} jobs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ran: i64 = sqlx::query_scalar(all_jobs)
        .fetch_one(&disabled.db)
        .await
        .expect("read the run log");
    assert_eq!(ran, 0, "worker.enabled = false ran jobs");
}

/// The purge jobs delete what has ended and nothing else: a live session, a spent refresh
/// token that still detects reuse, a counter inside its window and a key inside its 24 h stay.
#[tokio::test]
async fn purges_delete_what_has_ended_and_keep_the_rest() {
    let (postgres, database_url) = migrated_database().await;
    let owner = owner_pool(&database_url).await;
    sqlx::raw_sql(
        r#"
        INSERT INTO users (id, email, display_name, password_hash)
            VALUES ('00000000-0000-0000-0000-000000000001', 'a@example.com', 'A', 'x');
        INSERT INTO sessions (id, user_id, created_at, revoked_at) VALUES
            ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', now(), NULL),
            ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-000000000001', now() - interval '91 days', NULL),
            ('00000000-0000-0000-0000-00000000000c', '00000000-0000-0000-0000-000000000001', now(), now());
        INSERT INTO refresh_tokens (token_hash, session_id, expires_at, spent_at) VALUES
            (sha256('live'), '00000000-0000-0000-0000-00000000000a', now() + interval '1 day', NULL),
            (sha256('spent'), '00000000-0000-0000-0000-00000000000a', now() + interval '1 day', now()),
            (sha256('expired'), '00000000-0000-0000-0000-00000000000a', now() - interval '1 second', NULL),
            (sha256('of-the-old-session'), '00000000-0000-0000-0000-00000000000b', now() + interval '1 day', NULL);
        INSERT INTO throttle_windows (scope, key, attempts, window_started_at) VALUES
            ('login:account', 'fresh@example.com', 3, now()),
            ('login:account', 'stale@example.com', 3, now() - interval '1 day');
        INSERT INTO idempotency_keys (user_id, key, request_hash, created_at) VALUES
            ('00000000-0000-0000-0000-000000000001', 'fresh', '\x00', now()),
            ('00000000-0000-0000-0000-000000000001', 'stale', '\x00', now() - interval '25 hours');
        INSERT INTO outbox_events (id, type, payload, occurred_at, dispatched_at) VALUES
            ('00000000-0000-0000-0000-0000000000e1', 'order.placed', '{}', now(), now()),
            ('00000000-0000-0000-0000-0000000000e2', 'order.placed', '{}', now() - interval '8 days', now() - interval '8 days'),
            ('00000000-0000-0000-0000-0000000000e3', 'order.placed', '{}', now() - interval '8 days', NULL);
        INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, done_at)
            VALUES ('old-done', 'keel', '\x7b7d', 'Done', 1, 5, now() - interval '8 days', now() - interval '8 days'),
                   ('new-done', 'keel', '\x7b7d', 'Done', 1, 5, now(), now()),
                   ('old-pending', 'keel', '\x7b7d', 'Pending', 0, 5, now() + interval '1 day', NULL);
        "#,
    )
    .execute(&owner)
    .await
    .expect("arrange rows of every age");

    // Every job is due at the first tick of a new process.
    let mut overrides = schedule("prune_job_runs", "1h");
    overrides.push((
        "APP__DATABASE__MIGRATE_ON_START".to_owned(),
        "false".to_owned(),
    ));
    let app = spawn_app_on(postgres, database_url, &borrowed(&overrides)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while runs_of(&app.db, "purge_idempotency_keys").await.is_empty()
        || runs_of(&app.db, "prune_outbox").await.is_empty()
        || runs_of(&app.db, "purge_sessions").await.is_empty()
        || runs_of(&app.db, "purge_throttle_windows").await.is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the purge jobs never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let strings = |query: &'static str| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, String>(query)
                .fetch_all(&db)
                .await
                .expect("read what is left")
        }
    };
    assert_eq!(
        strings("SELECT id::text FROM sessions ORDER BY id").await,
        ["00000000-0000-0000-0000-00000000000a"],
        "only the live session is left"
    );
    assert_eq!(
        strings(
            "SELECT t.name FROM refresh_tokens r
             JOIN (VALUES ('live'), ('spent'), ('expired'), ('of-the-old-session')) AS t (name)
               ON r.token_hash = sha256(t.name::bytea)
             ORDER BY t.name"
        )
        .await,
        ["live", "spent"],
    );
    assert_eq!(
        strings("SELECT key FROM throttle_windows").await,
        ["fresh@example.com"]
    );
    assert_eq!(strings("SELECT key FROM idempotency_keys").await, ["fresh"]);
    // Old and dispatched goes; recent, or not yet dispatched, stays; so do unfinished tasks.
    assert_eq!(
        strings("SELECT right(id::text, 2) FROM outbox_events ORDER BY id").await,
        ["e1", "e3"]
    );
    assert_eq!(
        strings("SELECT id FROM apalis.jobs WHERE id IN ('old-done', 'new-done', 'old-pending') ORDER BY id").await,
        ["new-done", "old-pending"]
    );
    let affected: i64 =
        sqlx::query_scalar("SELECT affected FROM scheduled_job_runs WHERE job = 'purge_sessions'")
            .fetch_one(&app.db)
            .await
            .expect("the run is logged");
    // Two ended sessions (their tokens go with them) and one expired token.
    assert_eq!(affected, 3);
}
