//! Runs each scheduled job once per interval, across however many replicas run the scheduler.
//!
//! Every tick, for each job: in one transaction, take the job's advisory lock without waiting
//! (`pg_try_advisory_xact_lock`; a replica that does not get it skips the job this tick), check
//! the run log for a run that started within the interval, and if there is none, run the job
//! and log the run — all before the lock is released at commit. So two replicas never run a job
//! at once, and a replica that gets the lock just after another's run sees that run and skips.
//!
//! A failed job is rolled back to a savepoint and its error logged as a run, so it is retried
//! after its interval, not every tick.

use std::time::Duration;

use futures_util::FutureExt as _;
use opentelemetry::{KeyValue, global, metrics::Counter};
use sqlx::{Acquire as _, PgPool};
use tokio_util::sync::CancellationToken;

use super::{ScheduledJob, scheduled};
use crate::config::Settings;

pub const PRUNE_JOB_RUNS: ScheduledJob = ScheduledJob {
    name: "prune_job_runs",
    run: |conn, _| {
        async move {
            // A week of runs answers "did it run, and what happened" without growing forever.
            let deleted = sqlx::query!(
                "DELETE FROM scheduled_job_runs WHERE started_at < now() - interval '7 days'"
            )
            .execute(conn)
            .await?;
            Ok(deleted.rows_affected())
        }
        .boxed()
    },
};

/// What one look at a job found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Another replica holds the job's lock: it is running it, or checking it, right now.
    Busy,
    /// It ran within its interval.
    NotDue,
    /// It ran here, changing this many rows.
    Ran(u64),
    /// It ran here and failed; the error is in the run log and the logs.
    Failed,
}

pub async fn run(db: &PgPool, settings: &Settings, stop: &CancellationToken) {
    let runs = global::meter("keel")
        .u64_counter("keel.jobs.runs")
        .with_description("Scheduled job runs by job and outcome: success, failure")
        .build();
    let lag = global::meter("keel")
        .f64_gauge("keel.outbox.lag")
        .with_unit("s")
        .with_description("Age of the oldest outbox event not yet dispatched (0: none waits)")
        .build();
    let mut tick = tokio::time::interval(settings.worker.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match db.acquire().await {
            Ok(mut conn) => match crate::outbox::lag_seconds(&mut conn).await {
                Ok(seconds) => lag.record(seconds, &[]),
                Err(err) => tracing::warn!(error = %err, "cannot measure the outbox lag"),
            },
            Err(err) => tracing::warn!(error = %err, "cannot measure the outbox lag"),
        }
        for job in scheduled() {
            // Checked between jobs, not inside one: a job in hand finishes and commits.
            if stop.is_cancelled() {
                return;
            }
            let Some(interval) = settings.worker.interval(job.name) else {
                continue;
            };
            match run_if_due(db, settings, job, interval).await {
                Ok(outcome) => count(&runs, job, outcome),
                // The database is down or the job's lock query failed: the next tick retries.
                Err(err) => {
                    tracing::warn!(job = job.name, error = %err, "cannot check a scheduled job")
                }
            }
        }
    }
}

fn count(runs: &Counter<u64>, job: &ScheduledJob, outcome: Outcome) {
    let outcome = match outcome {
        Outcome::Ran(_) => "success",
        Outcome::Failed => "failure",
        Outcome::Busy | Outcome::NotDue => return,
    };
    runs.add(
        1,
        &[
            // Not `job`: Prometheus keeps that label for the scrape job (the service).
            KeyValue::new("job.name", job.name),
            KeyValue::new("outcome", outcome),
        ],
    );
}

/// Runs `job` if no replica has within `interval`; see the module's comment for why this is
/// once per interval however many replicas call it.
pub async fn run_if_due(
    db: &PgPool,
    settings: &Settings,
    job: &ScheduledJob,
    interval: Duration,
) -> Result<Outcome, sqlx::Error> {
    let mut tx = db.begin().await?;
    let locked = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtextextended('keel.scheduled_job:' || $1, 0)) AS "locked!""#,
        job.name,
    )
    .fetch_one(&mut *tx)
    .await?;
    if !locked {
        return Ok(Outcome::Busy);
    }
    // clock_timestamp, not now(): now() is this transaction's start, which may be a while
    // before the lock was granted.
    let due = sqlx::query_scalar!(
        r#"SELECT NOT EXISTS (
               SELECT 1 FROM scheduled_job_runs
               WHERE job = $1 AND started_at > clock_timestamp() - make_interval(secs => $2)
           ) AS "due!""#,
        job.name,
        interval.as_secs_f64(),
    )
    .fetch_one(&mut *tx)
    .await?;
    if !due {
        return Ok(Outcome::NotDue);
    }

    let started = sqlx::query_scalar!(r#"SELECT clock_timestamp() AS "now!""#)
        .fetch_one(&mut *tx)
        .await?;
    let mut savepoint = tx.begin().await?;
    let result = (job.run)(&mut savepoint, settings).await;
    let (affected, error) = match result {
        Ok(affected) => {
            savepoint.commit().await?;
            (Some(affected), None)
        }
        Err(err) => {
            savepoint.rollback().await?;
            tracing::error!(job = job.name, error = %err, "scheduled job failed");
            (None, Some(err.to_string()))
        }
    };
    sqlx::query!(
        r#"INSERT INTO scheduled_job_runs (job, started_at, finished_at, affected, error)
           VALUES ($1, $2, clock_timestamp(), $3, $4)"#,
        job.name,
        started,
        affected.map(|rows| i64::try_from(rows).unwrap_or(i64::MAX)),
        error,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(match affected {
        Some(affected) => {
            tracing::info!(job = job.name, affected, "scheduled job ran");
            Outcome::Ran(affected)
        }
        None => Outcome::Failed,
    })
}
