//! The service's least-privilege role: the schema owner (`database.migration_url`) applies
//! migrations, then gives the role named by `database.url` exactly what the service needs —
//! reading and writing rows — and nothing that changes the schema.
//!
//! The owner also sets the role's password from `database.url`, so the Secret holding that URL
//! stays the one source of truth: rotating it and re-running `keel migrate` applies it. The
//! password travels as a SCRAM-SHA-256 verifier built here, never as plain text, so it cannot
//! surface in the server's statement log.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac as _};
use rand_core::{OsRng, RngCore as _};
use sha2::{Digest as _, Sha256};
use sqlx::{Connection as _, PgConnection};

/// PostgreSQL's own default (`scram_iterations`).
const SCRAM_ITERATIONS: u32 = 4096;

/// The login role the service connects as, read from `database.url`.
pub struct ServiceRole {
    pub name: String,
    password: String,
}

impl ServiceRole {
    /// `None` when the URL names no user or no password: then there is no role to manage.
    pub fn from_url(url: &url::Url) -> Option<Self> {
        let name = percent_decoded(url.username())?;
        let password = percent_decoded(url.password()?)?;
        (!name.is_empty() && !password.is_empty()).then_some(Self { name, password })
    }
}

fn percent_decoded(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// Creates the role if it is missing, sets its password, and grants it the service's rights
/// on every table and sequence of the current schema and of the task queue's `apalis` schema,
/// now and for tables later migrations create. Runs as the owner, in one transaction, so a failure leaves the old grants.
pub async fn grant_service_role(
    owner: &mut PgConnection,
    role: &ServiceRole,
) -> Result<(), sqlx::Error> {
    let verifier = scram_sha_256_verifier(&role.password, &random_salt());
    let mut tx = owner.begin().await?;
    let exists: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS "exists!""#,
        role.name
    )
    .fetch_one(&mut *tx)
    .await?;
    let verb = if exists { "ALTER" } else { "CREATE" };
    // Identifiers and literals cannot be bound parameters in DDL; format() quotes them
    // server-side (%I, %L), so a role name from configuration cannot inject SQL.
    let statements: Vec<String> = sqlx::query_scalar!(
        r#"SELECT unnest(ARRAY[
               format('%s ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD %L', $1::text, $2::text, $3::text),
               format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), $2),
               format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), $2),
               format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', current_schema(), $2),
               format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), $2),
               -- Readiness reads the migrations table; only the owner writes it.
               format('REVOKE INSERT, UPDATE, DELETE ON %I._sqlx_migrations FROM %I', current_schema(), $2),
               format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', current_schema(), $2),
               format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO %I', current_schema(), $2),
               -- The task queue's schema (apalis): the same row access, and its functions.
               format('GRANT USAGE ON SCHEMA apalis TO %I', $2),
               format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA apalis TO %I', $2),
               format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA apalis TO %I', $2),
               format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA apalis TO %I', $2),
               format('REVOKE INSERT, UPDATE, DELETE ON apalis._sqlx_migrations FROM %I', $2),
               format('ALTER DEFAULT PRIVILEGES IN SCHEMA apalis GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', $2)
           ]) AS "statement!""#,
        verb,
        role.name,
        verifier,
    )
    .fetch_all(&mut *tx)
    .await?;
    for statement in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

fn random_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    salt
}

/// The stored form PostgreSQL keeps for a SCRAM-SHA-256 password (RFC 5802, RFC 7677), as
/// `CREATE ROLE ... PASSWORD` accepts it: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
fn scram_sha_256_verifier(password: &str, salt: &[u8]) -> String {
    // PostgreSQL normalises with SASLprep and, like libpq, uses the raw bytes when that fails.
    let prepared = stringprep::saslprep(password)
        .map(|prepared| prepared.into_owned())
        .unwrap_or_else(|_| password.to_owned());
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(prepared.as_bytes(), salt, SCRAM_ITERATIONS, &mut salted);
    let client_key = hmac_sha256(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac_sha256(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifier_matches_an_independent_implementation() {
        // From Python's hashlib.pbkdf2_hmac and hmac over the same RFC 5802 steps, salt fixed.
        // That PostgreSQL accepts it is proven by every integration test, which logs in as the
        // service role through SCRAM.
        assert_eq!(
            scram_sha_256_verifier("correct horse", &[0u8; 16]),
            "SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAA==$\
             2kxHSX/FffGvMzLfBgaORy0IBRapYpLVmvdWFZ1vpXo=:\
             o0TfMAUPl9eOT0i6fvvMvvp8nipChPrYMp3Uyx3iLJ0="
        );
    }

    #[test]
    fn the_role_comes_from_the_url_decoded() {
        let url =
            url::Url::parse("postgres://keel%5Fapp:p%40ss%2Bw%3Ard@db:5432/keel").expect("url");
        let role = ServiceRole::from_url(&url).expect("a role");
        assert_eq!(role.name, "keel_app");
        assert_eq!(role.password, "p@ss+w:rd");
        let without_password = url::Url::parse("postgres://keel_app@db/keel").expect("url");
        assert!(ServiceRole::from_url(&without_password).is_none());
    }
}
