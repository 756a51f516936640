//! The transactional outbox: a change and the events it causes commit together or not at all.
//!
//! [`publish`] writes the event row and a `outbox.dispatch` task in the caller's transaction.
//! The task hands the event to every feature listening for its type ([`Listener`], registered
//! in `Feature::LISTENERS`) inside one transaction of its own: webhooks fan it out to
//! subscriptions, orders queue a receipt. A listener must be idempotent per event id — a task
//! can run twice if its worker dies after committing — which `ON CONFLICT DO NOTHING` on
//! `(event, subscriber)` gives the webhook fan-out.

use std::time::Duration;

use futures_util::{FutureExt as _, future::BoxFuture};
use serde::{Deserialize, Serialize};
use sqlx::{Connection as _, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    config::Settings,
    jobs::{
        ScheduledJob,
        queue::{self, TaskContext, TaskKind},
    },
};

/// A type of event a feature publishes: its name (`order.placed`) and what it means, for the
/// webhook API and the event catalogue.
pub struct EventType {
    pub name: &'static str,
    pub description: &'static str,
}

/// An event as listeners see it.
#[derive(Debug, Clone)]
pub struct Event {
    /// Also the `webhook-id` of every delivery of it.
    pub id: Uuid,
    pub kind: String,
    pub data: serde_json::Value,
    pub occurred_at: OffsetDateTime,
}

/// Something a feature does with events, inside the dispatch transaction.
pub struct Listener {
    pub name: &'static str,
    pub run: ListenerFn,
}

pub type ListenerFn = for<'a> fn(
    &'a mut PgConnection,
    &'a Event,
    &'a Settings,
) -> BoxFuture<'a, Result<(), sqlx::Error>>;

/// Every event type of this build.
pub fn event_types() -> impl Iterator<Item = &'static EventType> {
    crate::features::event_types()
}

/// Records `data` as an event of type `kind` on `conn`, the caller's transaction, and queues
/// its dispatch there too. Returns the event id.
pub async fn publish(
    conn: &mut PgConnection,
    kind: &'static str,
    data: serde_json::Value,
) -> Result<Uuid, sqlx::Error> {
    if !event_types().any(|known| known.name == kind) {
        // Webhook subscribers could never ask for it: a programming error, refused loudly.
        return Err(sqlx::Error::Protocol(format!(
            "event type {kind:?} is not registered in any Feature::EVENTS"
        )));
    }
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO outbox_events (id, type, payload) VALUES ($1, $2, $3)",
        id,
        kind,
        data,
    )
    .execute(&mut *conn)
    .await?;
    queue::enqueue(conn, DISPATCH_KIND, &DispatchArgs { event_id: id }, None).await?;
    Ok(id)
}

#[derive(Serialize, Deserialize)]
struct DispatchArgs {
    event_id: Uuid,
}

const DISPATCH_KIND: &str = "outbox.dispatch";

pub const DISPATCH: TaskKind = TaskKind {
    name: DISPATCH_KIND,
    run: |args, context| dispatch(args, context).boxed(),
};

async fn dispatch(
    args: serde_json::Value,
    context: &TaskContext,
) -> Result<(), apalis::prelude::BoxDynError> {
    let args: DispatchArgs = queue::args(DISPATCH_KIND, args)?;
    let failure = match hand_to_listeners(args.event_id, context).await {
        Ok(()) => return Ok(()),
        Err(failure) => failure,
    };
    // The listeners' work rolled back with their transaction. The event stays undispatched and
    // is tried again later, for ever: an event is never dropped, and the lag shows it waits.
    let mut conn = context.db.acquire().await?;
    let mut tx = conn.begin().await?;
    let attempts: i32 = sqlx::query_scalar!(
        "SELECT attempts FROM outbox_events WHERE id = $1 FOR UPDATE",
        args.event_id,
    )
    .fetch_one(&mut *tx)
    .await?
        + 1;
    let wait = retry_wait(attempts);
    sqlx::query!(
        r#"UPDATE outbox_events SET attempts = $2, last_error = left($3, 500), available_at = $4
           WHERE id = $1"#,
        args.event_id,
        attempts,
        failure,
        OffsetDateTime::now_utc() + wait,
    )
    .execute(&mut *tx)
    .await?;
    queue::enqueue(&mut tx, DISPATCH_KIND, &args, Some(wait)).await?;
    tx.commit().await?;
    tracing::warn!(
        event = %args.event_id, attempts, error = %failure, retry_in = ?wait,
        "outbox event not dispatched; will retry"
    );
    Ok(())
}

/// The wait before dispatching an event again after its `attempts`-th failure: 1 s, doubling,
/// at most 5 minutes.
fn retry_wait(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(9);
    Duration::from_secs(1 << doublings).min(Duration::from_secs(300))
}

/// Runs every listener on the event in one transaction and marks it dispatched there; on
/// failure, says why (the transaction is rolled back).
async fn hand_to_listeners(event_id: Uuid, context: &TaskContext) -> Result<(), String> {
    let db_error = |err: sqlx::Error| format!("database: {err}");
    let mut conn = context.db.acquire().await.map_err(db_error)?;
    let mut tx = conn.begin().await.map_err(db_error)?;
    let Some(event) = sqlx::query_as!(
        Event,
        r#"SELECT id, type AS kind, payload AS data, occurred_at FROM outbox_events
           WHERE id = $1 AND dispatched_at IS NULL FOR UPDATE"#,
        event_id,
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?
    else {
        // Dispatched already (this task ran twice), or pruned.
        return Ok(());
    };
    for listener in crate::features::listeners() {
        (listener.run)(&mut tx, &event, &context.settings)
            .await
            .map_err(|err| format!("listener {}: {err}", listener.name))?;
    }
    sqlx::query!(
        r#"UPDATE outbox_events SET dispatched_at = now(), attempts = attempts + 1,
                  last_error = NULL
           WHERE id = $1"#,
        event.id
    )
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)
}

/// Deletes dispatched events older than `worker.outbox_retention` (what features keep about
/// them, such as webhook deliveries, goes with them by `ON DELETE CASCADE`), and finished queue
/// tasks of the same age.
pub const PRUNE_OUTBOX: ScheduledJob = ScheduledJob {
    name: "prune_outbox",
    run: |conn, settings| {
        async move {
            let retention = settings.worker.outbox_retention;
            let cutoff = OffsetDateTime::now_utc()
                - time::Duration::try_from(retention).unwrap_or(time::Duration::WEEK);
            let events = sqlx::query!(
                "DELETE FROM outbox_events WHERE occurred_at < $1 AND dispatched_at IS NOT NULL",
                cutoff,
            )
            .execute(&mut *conn)
            .await?
            .rows_affected();
            let tasks = sqlx::query!(
                r#"DELETE FROM apalis.jobs WHERE job_type = $1 AND status IN ('Done', 'Killed')
                   AND done_at < $2"#,
                queue::QUEUE,
                cutoff,
            )
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Ok(events + tasks)
        }
        .boxed()
    },
};

/// How long past its due time an undispatched event may wait before it is queued again.
/// Generous: a busy queue is not a lost task, and a second dispatch task is only wasted work.
const STALE_AFTER: time::Duration = time::Duration::minutes(5);

/// Queues dispatch again for events long past due with no dispatch to show for it — their
/// task was given up by the queue (it failed [`queue::MAX_ATTEMPTS`] times at once, say while
/// the database was away) — so no committed event is stranded. Dispatch is idempotent, so
/// an event whose task was merely slow is dispatched once all the same.
pub const REDISPATCH_OUTBOX: ScheduledJob = ScheduledJob {
    name: "redispatch_outbox",
    run: |conn, _| {
        async move {
            let now = OffsetDateTime::now_utc();
            let stranded = sqlx::query_scalar!(
                r#"UPDATE outbox_events SET available_at = $2
                   WHERE id IN (SELECT id FROM outbox_events
                                WHERE dispatched_at IS NULL AND available_at < $1
                                ORDER BY available_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
                   RETURNING id"#,
                now - STALE_AFTER,
                now,
            )
            .fetch_all(&mut *conn)
            .await?;
            for &event_id in &stranded {
                queue::enqueue(conn, DISPATCH_KIND, &DispatchArgs { event_id }, None).await?;
            }
            if !stranded.is_empty() {
                tracing::warn!(
                    events = stranded.len(),
                    "outbox events queued again for dispatch"
                );
            }
            Ok(stranded.len() as u64)
        }
        .boxed()
    },
};

/// Seconds since the oldest event not yet dispatched was published; 0 when none waits.
pub async fn lag_seconds(conn: &mut PgConnection) -> Result<f64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(occurred_at))::float8, 0) AS "lag!"
           FROM outbox_events WHERE dispatched_at IS NULL"#
    )
    .fetch_one(conn)
    .await
}
