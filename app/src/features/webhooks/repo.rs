//! SQL for subscriptions, deliveries and their attempts.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    model::{DeliveryAttempt, DeliveryStatus, Subscription},
    secret::Sealed,
};

pub async fn insert(
    db: &PgPool,
    id: Uuid,
    url: &str,
    events: &[String],
    secret: &Sealed,
) -> Result<Subscription, sqlx::Error> {
    sqlx::query_as!(
        Subscription,
        r#"INSERT INTO webhook_subscriptions (id, url, events, secret_ciphertext, secret_key_id)
           VALUES ($1, $2, $3, $4, $5)
           RETURNING id, url, events, enabled, disabled_reason, created_at,
                     CASE WHEN previous_secret_expires_at > now()
                          THEN previous_secret_expires_at END AS previous_secret_expires_at"#,
        id,
        url,
        events,
        secret.ciphertext,
        secret.key_id,
    )
    .fetch_one(db)
    .await
}

/// Replaces the signing secret with `secret`; the one it replaces keeps signing until
/// `previous_expires_at` (replacing any older one still in its grace). None when there is no
/// such subscription.
pub async fn rotate_secret(
    db: &PgPool,
    id: Uuid,
    secret: &Sealed,
    previous_expires_at: OffsetDateTime,
) -> Result<Option<Subscription>, sqlx::Error> {
    // SET reads the row as it was, so the current secret becomes the previous one.
    sqlx::query_as!(
        Subscription,
        r#"UPDATE webhook_subscriptions
           SET previous_secret_ciphertext = secret_ciphertext,
               previous_secret_key_id = secret_key_id,
               previous_secret_expires_at = $4,
               secret_ciphertext = $2,
               secret_key_id = $3
           WHERE id = $1
           RETURNING id, url, events, enabled, disabled_reason, created_at,
                     previous_secret_expires_at"#,
        id,
        secret.ciphertext,
        secret.key_id,
        previous_expires_at,
    )
    .fetch_optional(db)
    .await
}

pub async fn find(db: &PgPool, id: Uuid) -> Result<Option<Subscription>, sqlx::Error> {
    sqlx::query_as!(
        Subscription,
        r#"SELECT id, url, events, enabled, disabled_reason, created_at,
                  CASE WHEN previous_secret_expires_at > now()
                       THEN previous_secret_expires_at END AS previous_secret_expires_at
           FROM webhook_subscriptions WHERE id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
}

/// A page of subscriptions, newest first, strictly after `after`.
pub async fn page(
    db: &PgPool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Subscription>, sqlx::Error> {
    sqlx::query_as!(
        Subscription,
        r#"SELECT id, url, events, enabled, disabled_reason, created_at,
                  CASE WHEN previous_secret_expires_at > now()
                       THEN previous_secret_expires_at END AS previous_secret_expires_at
           FROM webhook_subscriptions WHERE ($1::uuid IS NULL OR id < $1)
           ORDER BY id DESC LIMIT $2"#,
        after,
        limit,
    )
    .fetch_all(db)
    .await
}

/// Deletes a subscription with its deliveries and their records; false when there was none.
pub async fn delete(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!("DELETE FROM webhook_subscriptions WHERE id = $1", id)
        .execute(db)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

/// A page of a subscription's delivery attempts, newest first, strictly after `after`.
pub async fn attempts(
    db: &PgPool,
    subscription: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<DeliveryAttempt>, sqlx::Error> {
    sqlx::query_as!(
        DeliveryAttempt,
        r#"SELECT a.id, a.delivery_id, d.event_id, e.type AS event_type, a.attempt, a.status_code,
                  a.error, a.attempted_at, a.duration_ms,
                  d.status AS "delivery_status: DeliveryStatus"
           FROM webhook_delivery_attempts a
           JOIN webhook_deliveries d ON d.id = a.delivery_id
           JOIN outbox_events e ON e.id = d.event_id
           WHERE d.subscription_id = $1 AND ($2::uuid IS NULL OR a.id < $2)
           ORDER BY a.id DESC LIMIT $3"#,
        subscription,
        after,
        limit,
    )
    .fetch_all(db)
    .await
}

/// Creates a pending delivery of the event for every enabled subscription to its type, in the
/// dispatch transaction; returns the new ones (none the second time for the same event).
pub async fn fan_out(
    conn: &mut PgConnection,
    event: Uuid,
    event_type: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"INSERT INTO webhook_deliveries (id, event_id, subscription_id)
           SELECT gen_random_uuid(), $1, id FROM webhook_subscriptions
           WHERE enabled AND $2 = ANY (events)
           ON CONFLICT (event_id, subscription_id) DO NOTHING
           RETURNING id"#,
        event,
        event_type,
    )
    .fetch_all(conn)
    .await
}

/// What one attempt needs: the delivery, its subscription and its event.
pub struct DeliveryJob {
    pub id: Uuid,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub subscription_id: Uuid,
    pub url: String,
    pub enabled: bool,
    pub secret_ciphertext: Vec<u8>,
    pub secret_key_id: String,
    /// The rotated-out secret, while it still signs.
    pub previous_secret_ciphertext: Option<Vec<u8>>,
    pub previous_secret_key_id: Option<String>,
    pub event_id: Uuid,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub occurred_at: OffsetDateTime,
}

pub async fn delivery(db: &PgPool, id: Uuid) -> Result<Option<DeliveryJob>, sqlx::Error> {
    sqlx::query_as!(
        DeliveryJob,
        r#"SELECT d.id, d.status AS "status: DeliveryStatus", d.attempts, d.subscription_id,
                  s.url, s.enabled, s.secret_ciphertext, s.secret_key_id,
                  CASE WHEN s.previous_secret_expires_at > now()
                       THEN s.previous_secret_ciphertext END AS previous_secret_ciphertext,
                  CASE WHEN s.previous_secret_expires_at > now()
                       THEN s.previous_secret_key_id END AS previous_secret_key_id,
                  e.id AS event_id, e.type AS event_type, e.payload, e.occurred_at
           FROM webhook_deliveries d
           JOIN webhook_subscriptions s ON s.id = d.subscription_id
           JOIN outbox_events e ON e.id = d.event_id
           WHERE d.id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
}

/// The record of one attempt.
pub struct Attempt<'a> {
    pub number: i32,
    pub at: OffsetDateTime,
    pub duration_ms: i32,
    pub status_code: Option<i32>,
    pub error: Option<&'a str>,
}

/// Records an attempt and moves the delivery to `status` (with its next attempt's time while
/// pending), in the caller's transaction.
pub async fn record(
    conn: &mut PgConnection,
    delivery: Uuid,
    attempt: &Attempt<'_>,
    status: DeliveryStatus,
    next_attempt_at: Option<OffsetDateTime>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO webhook_delivery_attempts
               (id, delivery_id, attempt, attempted_at, duration_ms, status_code, error)
           VALUES ($1, $2, $3, $4, $5, $6, left($7, 500))"#,
        Uuid::now_v7(),
        delivery,
        attempt.number,
        attempt.at,
        attempt.duration_ms,
        attempt.status_code,
        attempt.error,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        r#"UPDATE webhook_deliveries
           SET attempts = $2, status = $3, next_attempt_at = $4,
               finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END
           WHERE id = $1"#,
        delivery,
        attempt.number,
        status as DeliveryStatus,
        next_attempt_at,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ends a delivery without an attempt (its subscription was disabled meanwhile).
pub async fn cancel(db: &PgPool, delivery: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"UPDATE webhook_deliveries SET status = 'cancelled', finished_at = now(),
                  next_attempt_at = NULL
           WHERE id = $1 AND status = 'pending'"#,
        delivery,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Stops all delivery to a subscription, saying why.
pub async fn disable(
    conn: &mut PgConnection,
    subscription: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"UPDATE webhook_subscriptions SET enabled = false, disabled_reason = $2
           WHERE id = $1"#,
        subscription,
        reason,
    )
    .execute(conn)
    .await?;
    Ok(())
}
