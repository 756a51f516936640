//! One-off background tasks on PostgreSQL, through apalis: enqueued by the code that causes
//! them, inside its own transaction, so a rolled-back change leaves no task behind and a
//! committed one cannot lose its task (the transactional outbox).
//!
//! apalis claims tasks with `FOR UPDATE SKIP LOCKED`, wakes on `LISTEN/NOTIFY` and also polls,
//! keeps a heartbeat per worker and puts back the tasks of a worker that stopped beating. Keel
//! adds one thing: a single queue whose tasks name their kind, so one listener connection
//! serves every kind and a feature registers its kinds next to its routes (`Feature::TASKS`),
//! like its scheduled jobs.
//!
//! A task that returns an error is retried at once by apalis, up to [`MAX_ATTEMPTS`]: that is
//! for surprises (a lost connection). Work with its own retry policy — webhook deliveries —
//! records the failure, enqueues its next attempt for later and returns success.

use std::{collections::HashMap, sync::Arc, time::Duration};

use apalis::prelude::{
    BackendExt as _, BoxDynError, PollSnapshot, PollStrategy, TaskBuilder, WorkerBuilder,
    WorkerBuilderExt as _,
};
use apalis_postgres::{Config as QueueConfig, PostgresStorage};
use futures_util::{FutureExt as _, future::BoxFuture};
use opentelemetry::{KeyValue, global, metrics::Counter, trace::TraceContextExt as _};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{config::Settings, mail::Mailer};

/// The one apalis queue (`apalis.jobs.job_type`) Keel's tasks go through.
pub const QUEUE: &str = "keel";

/// Immediate retries of a task that failed unexpectedly, before apalis gives up on it.
pub const MAX_ATTEMPTS: usize = 5;

/// A kind of task: its name (stored with each task) and what runs it.
pub struct TaskKind {
    pub name: &'static str,
    pub run: TaskFn,
}

pub type TaskFn =
    for<'a> fn(serde_json::Value, &'a TaskContext) -> BoxFuture<'a, Result<(), BoxDynError>>;

/// What a running task may use.
#[derive(Clone)]
pub struct TaskContext {
    pub db: PgPool,
    pub settings: Arc<Settings>,
    pub mailer: Mailer,
}

/// A task as stored: its kind and its arguments.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    kind: String,
    args: serde_json::Value,
    /// The W3C trace context (`traceparent`, ...) of the work that queued the task: its run
    /// is a trace of its own, linked to that one. Absent in tasks queued by older builds.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    trace: HashMap<String, String>,
}

/// The foundation's own task kinds; features add theirs through `Feature::TASKS`.
pub const FOUNDATION: &[TaskKind] = &[crate::outbox::DISPATCH, crate::mail::SEND];

/// Every task kind of this build.
pub fn kinds() -> impl Iterator<Item = &'static TaskKind> {
    FOUNDATION.iter().chain(crate::features::tasks())
}

/// Enqueues a task of `kind` on `conn` — pass the transaction making the change, so the task
/// exists exactly when the change does. `after` delays it, to the next whole second (the
/// queue's granularity); a delayed task is picked up by polling (`worker.poll_interval`).
pub async fn enqueue(
    conn: &mut PgConnection,
    kind: &str,
    args: &impl Serialize,
    after: Option<Duration>,
) -> Result<(), sqlx::Error> {
    let mut trace = HashMap::new();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&tracing::Span::current().context(), &mut trace);
    });
    let envelope = Envelope {
        kind: kind.to_owned(),
        args: serde_json::to_value(args).map_err(|err| sqlx::Error::Encode(Box::new(err)))?,
        trace,
    };
    let bytes = serde_json::to_vec(&envelope).map_err(|err| sqlx::Error::Encode(Box::new(err)))?;
    let mut task = TaskBuilder::new(bytes).max_attempts(MAX_ATTEMPTS);
    if let Some(after) = after {
        // apalis stores whole seconds and would floor the due time, running a task up to a
        // second early; rounding up keeps "not before" true (a Retry-After, say).
        let due = (std::time::SystemTime::now() + after)
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        task = task.run_at_timestamp(due.as_secs() + u64::from(due.subsec_nanos() > 0));
    }
    apalis_postgres::queries::push_tasks(conn, QUEUE, vec![task.build()])
        .await
        .map_err(|err| match err {
            apalis_postgres::Error::Database(err) => err,
            other => sqlx::Error::Protocol(other.to_string()),
        })
}

/// Decodes a task's arguments, naming the kind when they do not fit (a task enqueued by an
/// older build whose arguments changed shape).
pub fn args<A: DeserializeOwned>(kind: &str, value: serde_json::Value) -> Result<A, BoxDynError> {
    serde_json::from_value(value).map_err(|err| format!("{kind}: arguments: {err}").into())
}

/// The queue's own migrations (the `apalis` schema), applied by `keel migrate` after Keel's.
pub fn migrator() -> sqlx::migrate::Migrator {
    PostgresStorage::migrations()
}

/// Runs tasks until `stop` is cancelled; then stops claiming, lets the tasks in hand finish
/// and hands back any it had claimed but not started.
pub async fn run(context: TaskContext, stop: CancellationToken) {
    let worker = &context.settings.worker;
    let config = QueueConfig::default()
        .queue(QUEUE)
        .batch_size(worker.concurrency)
        .heartbeat_interval(worker.heartbeat);
    let backend = PostgresStorage::<Envelope>::new(&context.db)
        .with_config(config)
        .with_pubsub()
        .poll_with_strategy(Every::new(worker.poll_interval));
    let name = format!("keel-{}", uuid::Uuid::now_v7());
    let handler_context = context.clone();
    let apalis_worker = WorkerBuilder::new(name)
        .backend(backend)
        .concurrency(worker.concurrency)
        .build(move |envelope: Envelope| {
            let context = handler_context.clone();
            async move {
                dispatch(envelope, &context)
                    .await
                    .map_err(|err| TaskFailed(err.to_string()))
            }
        });
    let stopped = stop.clone();
    let result = apalis_worker
        .run_until(async move {
            stopped.cancelled().await;
            Ok::<(), std::io::Error>(())
        })
        .await;
    if let Err(err) = result {
        tracing::error!(error = %err, "the task worker stopped with an error");
    }
}

/// Wakes the fetcher every `period`. apalis 1.0's own `IntervalStrategy` arms its next delay
/// without polling it after one fires, so no wake-up is registered and polling stalls until
/// something else (a NOTIFY, the heartbeat) wakes the worker: delayed retries, which send no
/// NOTIFY, then wait up to a heartbeat. A tokio interval polled until pending always leaves
/// the next tick armed.
struct Every(tokio::time::Interval);

impl Every {
    fn new(period: Duration) -> Self {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self(interval)
    }
}

impl PollStrategy for Every {
    fn poll_drive(
        &mut self,
        cx: &mut std::task::Context<'_>,
        _: &PollSnapshot,
    ) -> std::task::Poll<Option<()>> {
        let mut fired = false;
        while self.0.poll_tick(cx).is_ready() {
            fired = true;
        }
        if fired {
            std::task::Poll::Ready(Some(()))
        } else {
            std::task::Poll::Pending
        }
    }
}

/// A task's failure as apalis stores it (`last_result`). A concrete type, not `BoxDynError`:
/// with the boxed error the worker's future cannot be proven `Send` (rust-lang/rust#102211).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TaskFailed(String);

async fn dispatch(envelope: Envelope, context: &TaskContext) -> Result<(), BoxDynError> {
    let Some(kind) = kinds().find(|kind| kind.name == envelope.kind) else {
        // A kind this build does not know (a newer build enqueued it, or a feature was
        // removed): failing keeps it in the table, visible, instead of dropping it.
        return Err(format!("unknown task kind {:?}", envelope.kind).into());
    };
    // A run is its own trace (a consumer span), linked to the one that queued it: a retry
    // hours later is not stretched into the request's trace, but one click leads there.
    let span = tracing::info_span!(
        "task",
        otel.name = format!("process {}", kind.name),
        otel.kind = "consumer",
        messaging.system = "apalis",
        messaging.destination.name = QUEUE,
        messaging.operation.type = "process",
        task.kind = kind.name,
        otel.status_code = tracing::field::Empty,
    );
    let _ = span.set_parent(opentelemetry::Context::new());
    let queued_by =
        global::get_text_map_propagator(|propagator| propagator.extract(&envelope.trace));
    let queued_by = queued_by.span().span_context().clone();
    if queued_by.is_valid() {
        span.add_link(queued_by);
    }
    // A panicking task fails like an erring one, and the worker goes on.
    let result = std::panic::AssertUnwindSafe((kind.run)(envelope.args, context))
        .catch_unwind()
        .instrument(span.clone())
        .await
        .unwrap_or_else(|_| Err(format!("task {} panicked", kind.name).into()));
    if result.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    let outcome = if result.is_ok() { "success" } else { "failure" };
    static TASKS: std::sync::OnceLock<Counter<u64>> = std::sync::OnceLock::new();
    TASKS
        .get_or_init(|| {
            global::meter("keel")
                .u64_counter("keel.tasks.runs")
                .with_description("Background task runs by kind and outcome: success, failure")
                .build()
        })
        .add(
            1,
            &[
                KeyValue::new("task", kind.name),
                KeyValue::new("outcome", outcome),
            ],
        );
    if let Err(err) = &result {
        tracing::warn!(task = kind.name, error = %err, "task failed");
    }
    result
}
