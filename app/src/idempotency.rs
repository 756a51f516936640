//! `Idempotency-Key` for any handler that creates something: a retry with the same key and
//! the same request returns the first response and creates nothing; the same key with another
//! request is a 422. Keys are per user and kept 24 hours. The mechanism and its table
//! (`idempotency_keys`) belong to the foundation; a feature uses it in one call, [`run_once`],
//! inside the transaction that does the work, so the claim, the work and the stored response
//! commit or roll back together.

use futures_util::FutureExt as _;
use poem::http::StatusCode;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    error::{ApiError, FieldError},
    jobs::ScheduledJob,
};

/// A key past its 24 h is already ignored by [`run_once`]; this takes its row away.
pub const PURGE_IDEMPOTENCY_KEYS: ScheduledJob = ScheduledJob {
    name: "purge_idempotency_keys",
    run: |conn, _| {
        async move {
            let deleted = sqlx::query!(
                "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'"
            )
            .execute(conn)
            .await?;
            Ok(deleted.rows_affected())
        }
        .boxed()
    },
};

/// Who asks, with which key: idempotency is scoped per user.
pub struct Key<'a> {
    pub user_id: Uuid,
    pub key: &'a str,
}

/// What [`run_once`] did.
pub enum Once<T> {
    /// The action ran; its result is stored under the key.
    Done(T),
    /// The key was used before with this request: the first result, replayed.
    Replayed(T),
}

impl<T> Once<T> {
    pub fn into_inner(self) -> T {
        match self {
            Self::Done(value) | Self::Replayed(value) => value,
        }
    }
}

/// Runs `action` in `tx` unless `key` was already used for the same `request` (any bytes that
/// identify it, e.g. a hash of the body), in which case the stored result is returned instead.
/// Without a key the action simply runs. `status` is recorded with the stored result.
pub async fn run_once<T: ToJSON + ParseFromJSON>(
    tx: &mut PgConnection,
    key: Option<Key<'_>>,
    request: &[u8],
    status: StatusCode,
    action: impl AsyncFnOnce(&mut PgConnection) -> Result<T, ApiError>,
) -> Result<Once<T>, ApiError> {
    let Some(Key { user_id, key }) = key else {
        return Ok(Once::Done(action(tx).await?));
    };
    match claim_key(tx, user_id, key, request).await? {
        KeyState::Claimed => {}
        KeyState::Replay { response } => {
            return T::parse_from_json(Some(response))
                .map(Once::Replayed)
                .map_err(|err| {
                    ApiError::Internal(anyhow::anyhow!(
                        "stored idempotent response: {}",
                        err.into_message()
                    ))
                });
        }
        KeyState::Mismatch => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "Idempotency-Key",
                "was already used with a different request body",
            )]));
        }
    }
    let result = action(tx).await?;
    let status = i16::try_from(status.as_u16()).unwrap_or(i16::MAX);
    store_response(
        tx,
        user_id,
        key,
        status,
        &result.to_json().unwrap_or_default(),
    )
    .await?;
    Ok(Once::Done(result))
}

/// What an Idempotency-Key already stands for.
enum KeyState {
    /// First use: the caller's transaction now holds the key.
    Claimed,
    /// Used before with this body: here is the response to replay. Only successes are
    /// stored; a failed attempt rolls its claim back, so a retry simply tries again.
    Replay { response: serde_json::Value },
    /// Used before with another body.
    Mismatch,
}

/// Claims `key` for `user_id` inside `tx`. A concurrent request with the same key blocks on
/// the insert until this transaction ends, then sees its outcome: the stored response if it
/// committed, or a free key if it rolled back. Records older than 24 h are forgotten.
async fn claim_key(
    tx: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    request_hash: &[u8],
) -> Result<KeyState, sqlx::Error> {
    sqlx::query!(
        r#"DELETE FROM idempotency_keys
           WHERE user_id = $1 AND key = $2 AND created_at < now() - interval '24 hours'"#,
        user_id,
        key,
    )
    .execute(&mut *tx)
    .await?;
    let claimed = sqlx::query!(
        r#"INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
           ON CONFLICT (user_id, key) DO NOTHING"#,
        user_id,
        key,
        request_hash,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if claimed {
        return Ok(KeyState::Claimed);
    }
    let stored = sqlx::query!(
        r#"SELECT request_hash, status_code, response FROM idempotency_keys
           WHERE user_id = $1 AND key = $2"#,
        user_id,
        key,
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(
        match (
            stored.request_hash == request_hash,
            stored.status_code,
            stored.response,
        ) {
            (false, _, _) => KeyState::Mismatch,
            (true, Some(_), Some(response)) => KeyState::Replay { response },
            // Only committed claims are visible, and they always carry a response.
            (true, _, _) => KeyState::Mismatch,
        },
    )
}

async fn store_response(
    tx: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    status: i16,
    response: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"UPDATE idempotency_keys SET status_code = $3, response = $4
           WHERE user_id = $1 AND key = $2"#,
        user_id,
        key,
        status,
        response,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
