//! SQL for users, sessions (refresh-token families), refresh tokens and password-reset tokens.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand_core::{OsRng, RngCore as _};
use sha2::{Digest as _, Sha256};
use sqlx::{PgConnection, PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{auth::Role, db::ConstraintExt as _};

/// Why an account could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
}

pub async fn insert_user(
    db: &PgPool,
    email: &str,
    display_name: &str,
    role: Role,
    password_hash: &str,
) -> Result<UserRow, InsertUserError> {
    sqlx::query_as!(
        UserRow,
        r#"INSERT INTO users (id, email, display_name, role, password_hash)
           VALUES ($1, $2, $3, $4, $5)
           RETURNING id, email, display_name, role AS "role: Role", password_hash, created_at"#,
        Uuid::now_v7(),
        email,
        display_name,
        role as Role,
        password_hash,
    )
    .fetch_one(db)
    .await
    .on_constraint("users_email_key", || InsertUserError::EmailTaken)
}

pub async fn find_by_email(db: &PgPool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, email, display_name, role AS "role: Role", password_hash, created_at
           FROM users WHERE lower(email) = lower($1)"#,
        email,
    )
    .fetch_optional(db)
    .await
}

pub async fn find_by_id(db: &PgPool, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, email, display_name, role AS "role: Role", password_hash, created_at
           FROM users WHERE id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
}

pub async fn set_password_hash(
    db: impl PgExecutor<'_>,
    id: Uuid,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        id,
        hash
    )
    .execute(db)
    .await?;
    Ok(())
}

/// An opaque refresh token and the only form of it the database keeps.
pub struct RefreshToken {
    pub token: String,
    pub hash: Vec<u8>,
}

impl RefreshToken {
    pub fn generate() -> Self {
        let (token, hash) = opaque_token();
        Self { token, hash }
    }
}

/// 256 random bits, base64url, and their SHA-256: the token to hand out and the hash to store.
fn opaque_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Starts a session (a refresh-token family) for a login and stores its first token.
pub async fn start_session(
    db: &PgPool,
    user_id: Uuid,
    token: &RefreshToken,
    expires_at: OffsetDateTime,
) -> Result<Uuid, sqlx::Error> {
    let session_id = Uuid::now_v7();
    let mut tx = db.begin().await?;
    sqlx::query!(
        "INSERT INTO sessions (id, user_id) VALUES ($1, $2)",
        session_id,
        user_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        token.hash,
        session_id,
        expires_at,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(session_id)
}

pub enum Rotation {
    Rotated {
        user_id: Uuid,
        role: Role,
        session_id: Uuid,
    },
    /// Unknown, expired, or from a revoked session.
    Invalid,
    /// Already spent: someone holds a copy. The whole session has been revoked.
    Reused,
}

/// Spends `presented` and stores `next` in the same session, atomically. Row locks serialize
/// concurrent refreshes of one token: the loser sees it spent, which counts as reuse.
///
/// `next` expires at `expires_at`, but never after the session's absolute end, `lifetime`
/// after its login: refreshing extends a session only up to that, never forever.
pub async fn rotate(
    db: &PgPool,
    presented: &str,
    next: &RefreshToken,
    expires_at: OffsetDateTime,
    lifetime: time::Duration,
) -> Result<Rotation, sqlx::Error> {
    let mut tx = db.begin().await?;
    let found = sqlx::query!(
        r#"SELECT t.session_id, t.spent_at, t.expires_at, s.revoked_at, s.user_id,
                  s.created_at AS session_started, u.role AS "role: Role"
           FROM refresh_tokens t
           JOIN sessions s ON s.id = t.session_id
           JOIN users u ON u.id = s.user_id
           WHERE t.token_hash = $1
           FOR UPDATE OF t, s"#,
        hash_token(presented),
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(found) = found else {
        return Ok(Rotation::Invalid);
    };
    if found.revoked_at.is_some() {
        return Ok(Rotation::Invalid);
    }
    if found.spent_at.is_some() {
        sqlx::query!(
            "UPDATE sessions SET revoked_at = now() WHERE id = $1",
            found.session_id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::warn!(session = %found.session_id, user = %found.user_id, "refresh token reused; session revoked");
        return Ok(Rotation::Reused);
    }
    let now = OffsetDateTime::now_utc();
    let session_ends = found.session_started.saturating_add(lifetime);
    if found.expires_at <= now || session_ends <= now {
        return Ok(Rotation::Invalid);
    }
    let expires_at = expires_at.min(session_ends);
    sqlx::query!(
        "UPDATE refresh_tokens SET spent_at = now() WHERE token_hash = $1",
        hash_token(presented)
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        next.hash,
        found.session_id,
        expires_at,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Rotation::Rotated {
        user_id: found.user_id,
        role: found.role,
        session_id: found.session_id,
    })
}

/// Revokes the session `token` belongs to, if it is `user_id`'s. Returns whether one was.
pub async fn revoke_session_of(
    db: &PgPool,
    token: &str,
    user_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let revoked = sqlx::query!(
        r#"UPDATE sessions SET revoked_at = coalesce(revoked_at, now())
           WHERE user_id = $2
             AND id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1)"#,
        hash_token(token),
        user_id,
    )
    .execute(db)
    .await?;
    Ok(revoked.rows_affected() > 0)
}

/// Revokes every session of the user but `keep` (the one asking, if any), in the caller's
/// transaction.
pub async fn revoke_sessions(
    db: &mut PgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> Result<u64, sqlx::Error> {
    let revoked = sqlx::query!(
        "UPDATE sessions SET revoked_at = now()
         WHERE user_id = $1 AND id IS DISTINCT FROM $2 AND revoked_at IS NULL",
        user_id,
        keep as Option<Uuid>,
    )
    .execute(db)
    .await?;
    Ok(revoked.rows_affected())
}

pub async fn set_role(db: &PgPool, id: Uuid, role: Role) -> Result<(), sqlx::Error> {
    sqlx::query!("UPDATE users SET role = $2 WHERE id = $1", id, role as Role)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes sessions that have ended — revoked, or past their absolute `lifetime` — with their
/// refresh tokens, and refresh tokens past their expiry in live sessions. Every token deleted
/// here is already refused; a spent one is kept until it expires, because presenting it again
/// is how a stolen token is detected (it revokes the family).
pub async fn purge_ended_sessions(
    conn: &mut PgConnection,
    lifetime: std::time::Duration,
) -> Result<u64, sqlx::Error> {
    let sessions = sqlx::query!(
        "DELETE FROM sessions
         WHERE revoked_at IS NOT NULL OR created_at + make_interval(secs => $1) <= now()",
        lifetime.as_secs_f64(),
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let tokens = sqlx::query!("DELETE FROM refresh_tokens WHERE expires_at <= now()")
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(sessions + tokens)
}

/// An emailed password-reset token and the only form of it the database keeps.
pub struct ResetToken {
    pub token: String,
    pub hash: Vec<u8>,
}

impl ResetToken {
    pub fn generate() -> Self {
        let (token, hash) = opaque_token();
        Self { token, hash }
    }
}

/// The account a reset was asked for, locked until the caller's transaction ends, so two
/// requests for one account count its outstanding tokens one after the other.
pub struct ResetAccount {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    /// Tokens of this account that are unused and unexpired.
    pub outstanding: i64,
}

pub async fn lock_account_for_reset(
    conn: &mut PgConnection,
    email: &str,
) -> Result<Option<ResetAccount>, sqlx::Error> {
    let Some(user) = sqlx::query!(
        "SELECT id, email, display_name FROM users WHERE lower(email) = lower($1) FOR UPDATE",
        email,
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    // A statement of its own, after the lock: one statement's snapshot is taken before it
    // waits for the lock, so it would not see the tokens the previous holder inserted.
    let outstanding = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM password_reset_tokens
           WHERE user_id = $1 AND used_at IS NULL AND expires_at > now()"#,
        user.id,
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(ResetAccount {
        id: user.id,
        email: user.email,
        display_name: user.display_name,
        outstanding,
    }))
}

/// Stores `token` for the user, expiring `ttl` from now by the database's clock, which is the
/// clock that [`spend_reset_token`] checks it against.
pub async fn insert_reset_token(
    conn: &mut PgConnection,
    user_id: Uuid,
    token: &ResetToken,
    ttl: std::time::Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO password_reset_tokens (token_hash, user_id, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
        token.hash,
        user_id,
        ttl.as_secs_f64(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets a token whose email could not be sent: no one holds it, and it must not count
/// against the account's outstanding tokens.
pub async fn delete_reset_token(db: &PgPool, token: &ResetToken) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM password_reset_tokens WHERE token_hash = $1",
        token.hash
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Whose unused, unexpired token `token` is, without spending it: a cheap refusal of a wrong
/// token before a password is hashed for it.
pub async fn reset_token_owner(db: &PgPool, token: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT user_id FROM password_reset_tokens
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()",
        hash_token(token),
    )
    .fetch_optional(db)
    .await
}

/// Spends `token` if it is unused and unexpired, answering whose it was. One statement, so of
/// two confirmations racing with one token exactly one gets an owner; the other none.
pub async fn spend_reset_token(
    conn: &mut PgConnection,
    token: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "UPDATE password_reset_tokens SET used_at = now()
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
         RETURNING user_id",
        hash_token(token),
    )
    .fetch_optional(conn)
    .await
}

/// Deletes the user's unused reset tokens: after a reset, a link from an older email must not
/// reset the password again.
pub async fn delete_outstanding_reset_tokens(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query!(
        "DELETE FROM password_reset_tokens WHERE user_id = $1 AND used_at IS NULL",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected())
}

/// Deletes reset tokens that no longer work: used, or past their expiry.
pub async fn purge_reset_tokens(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query!(
        "DELETE FROM password_reset_tokens WHERE used_at IS NOT NULL OR expires_at <= now()"
    )
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected())
}
