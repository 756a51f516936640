//! The service's least-privilege role: migrations run as the schema owner and grant the
//! service's role row access only, so a compromised or buggy service cannot change the schema.
//! (Every other test already runs the service as that role: its grants are enough.)

use keel_tests::{service_role_url, spawn_app};
use sqlx::{Connection as _, Executor as _, PgConnection};

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .map(|code| code.into_owned())
}

#[tokio::test]
async fn the_service_role_reads_and_writes_rows_but_cannot_change_the_schema() {
    let app = spawn_app().await;
    let mut service = PgConnection::connect(&service_role_url(&app.database_url))
        .await
        .expect("the service role logs in with the password from database.url");

    let rows = service
        .execute("UPDATE users SET display_name = display_name")
        .await;
    assert!(rows.is_ok(), "row access is granted: {rows:?}");

    for statement in [
        "DROP TABLE users",
        "TRUNCATE throttle_windows",
        "ALTER TABLE users ADD COLUMN smuggled text",
        "CREATE TABLE smuggled (id int)",
        "CREATE INDEX smuggled ON users (display_name)",
        "DELETE FROM _sqlx_migrations",
    ] {
        let refused = service
            .execute(statement)
            .await
            .expect_err(&format!("the service role ran {statement:?}"));
        assert_eq!(
            sqlstate(&refused).as_deref(),
            Some("42501"),
            "{statement}: {refused}"
        );
    }
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut service)
        .await
        .expect("readiness may read the migrations table");
    assert!(applied > 0);
}

#[tokio::test]
async fn migrating_again_applies_a_rotated_password() {
    let app = spawn_app().await;
    let old_url = service_role_url(&app.database_url);
    let mut rotated = url::Url::parse(&old_url).expect("url");
    rotated
        .set_password(Some("rotated p@ss/word"))
        .expect("takes a password");

    let mut environment = keel_tests::test_environment(&app.database_url);
    environment.push(("APP__DATABASE__URL".into(), rotated.to_string()));
    let settings = keel::config::Settings::load_from(environment).expect("settings");
    keel::db::migrate(&settings.database)
        .await
        .expect("migrations run as the owner");

    let refused = PgConnection::connect(&old_url)
        .await
        .expect_err("the old password no longer works");
    assert_eq!(sqlstate(&refused).as_deref(), Some("28P01"), "{refused}");
    PgConnection::connect(rotated.as_str())
        .await
        .expect("the new password works");
}

/// Rotation without a failure window (`scripts/db-app-password.sh`): the secret switches to
/// the other of two roles with a fresh password, and `keel migrate` creates or updates that
/// role. The role the running pods use keeps its password, so connections they open before
/// they are restarted still log in; the new role has exactly the same rights.
#[tokio::test]
async fn rotating_to_the_alternate_role_keeps_the_running_service_connecting() {
    let app = spawn_app().await;
    let session = app
        .auth()
        .register_and_login("rotation@example.com", "a rotation test passphrase")
        .await;
    let running = url::Url::parse(&service_role_url(&app.database_url)).expect("url");
    let mut alternate = running.clone();
    alternate
        .set_username(&format!("{}_b", running.username()))
        .and_then(|()| alternate.set_password(Some("the alternate role's new password")))
        .expect("takes credentials");

    let mut environment = keel_tests::test_environment(&app.database_url);
    environment.push(("APP__DATABASE__URL".into(), alternate.to_string()));
    let settings = keel::config::Settings::load_from(environment).expect("settings");
    keel::db::migrate(&settings.database)
        .await
        .expect("migrations run as the owner and grant the alternate role");

    // Every connection the running service holds is gone, as after a database failover: it
    // must log in again, with the credentials it started with.
    let mut owner = PgConnection::connect(&app.database_url)
        .await
        .expect("owner");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
        .bind(running.username())
        .execute(&mut owner)
        .await
        .expect("end the service's sessions");
    assert_eq!(app.auth().me(&session.access_token).await.status(), 200);

    let mut next = PgConnection::connect(alternate.as_str())
        .await
        .expect("the alternate role logs in with the new password");
    next.execute("UPDATE users SET display_name = display_name")
        .await
        .expect("row access is granted to the alternate role");
    let refused = next
        .execute("DROP TABLE users")
        .await
        .expect_err("the alternate role cannot change the schema");
    assert_eq!(sqlstate(&refused).as_deref(), Some("42501"), "{refused}");
}
