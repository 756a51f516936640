//! Background work: what runs outside requests, and the processes that run it.
//!
//! `keel worker` runs only this; `keel serve` runs it beside the API unless `worker.enabled` is
//! false. Either way it stops with the process: the job in hand finishes, nothing new starts.
//!
//! Scheduled jobs ([`ScheduledJob`]) are registered in one place each: cross-cutting ones in
//! [`FOUNDATION`] here, a feature's in its `Feature::JOBS`, next to its routes. Their intervals
//! are configuration (`worker.schedule.<name>`), and the scheduler runs each once per interval
//! across every replica ([`scheduler`]).

pub mod queue;
pub mod scheduler;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::{config::Settings, mail::Mailer};

/// A periodic job: a name (its `worker.schedule` key and the label of its runs and metrics)
/// and what it does, in the transaction that records its run. It answers how many rows it
/// changed, for the run log.
pub struct ScheduledJob {
    pub name: &'static str,
    pub run: JobFn,
}

pub type JobFn =
    for<'a> fn(&'a mut PgConnection, &'a Settings) -> BoxFuture<'a, Result<u64, sqlx::Error>>;

/// The foundation's own jobs; features add theirs through `Feature::JOBS`.
pub const FOUNDATION: &[ScheduledJob] = &[
    crate::auth::throttle::PURGE_THROTTLE_WINDOWS,
    crate::idempotency::PURGE_IDEMPOTENCY_KEYS,
    scheduler::PRUNE_JOB_RUNS,
    crate::outbox::PRUNE_OUTBOX,
    crate::outbox::REDISPATCH_OUTBOX,
];

/// Every scheduled job of this build.
pub fn scheduled() -> impl Iterator<Item = &'static ScheduledJob> {
    FOUNDATION.iter().chain(crate::features::jobs())
}

/// Runs background work on `db` — the scheduler and the task queue — until `stop` is
/// cancelled, then returns once the job and the tasks in hand have finished.
pub async fn run(db: PgPool, settings: Arc<Settings>, mailer: Mailer, stop: CancellationToken) {
    tracing::info!(
        jobs = scheduled().count(),
        tasks = queue::kinds().count(),
        tick = ?settings.worker.tick,
        concurrency = settings.worker.concurrency,
        "background work started"
    );
    let context = queue::TaskContext {
        db: db.clone(),
        settings: settings.clone(),
        mailer,
    };
    tokio::join!(
        scheduler::run(&db, &settings, &stop),
        queue::run(context, stop.clone()),
    );
    tracing::info!("background work stopped");
}
