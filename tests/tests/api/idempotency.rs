//! The foundation's Idempotency-Key mechanism on its own, through the library, so it stays
//! tested when the example domain (its first user) is removed.

use keel::{
    error::ApiError,
    idempotency::{Key, Once, run_once},
};
use keel_tests::{TestApp, spawn_app};
use poem::http::StatusCode;
use uuid::Uuid;

async fn user_id(app: &TestApp) -> Uuid {
    let user = app
        .auth()
        .create_account("idem@example.com", "an idempotency passphrase")
        .await;
    user["id"].as_str().expect("id").parse().expect("uuid")
}

/// Runs `action` once under `key` for `request`, counting how often the action really ran.
async fn attempt(
    app: &TestApp,
    user_id: Uuid,
    key: &str,
    request: &[u8],
    runs: &mut u32,
    result: Result<String, ApiError>,
    commit: bool,
) -> Result<Once<String>, ApiError> {
    let mut tx = app.db.begin().await.expect("begin");
    let outcome = run_once(
        &mut tx,
        Some(Key { user_id, key }),
        request,
        StatusCode::CREATED,
        async |_| {
            *runs += 1;
            result
        },
    )
    .await;
    if commit && outcome.is_ok() {
        tx.commit().await.expect("commit");
    }
    outcome
}

#[tokio::test]
async fn a_key_runs_its_action_once_and_replays_the_first_result() {
    let app = spawn_app().await;
    let user = user_id(&app).await;
    let mut runs = 0;

    let first = attempt(
        &app,
        user,
        "k1",
        b"body",
        &mut runs,
        Ok("first".into()),
        true,
    )
    .await;
    assert!(matches!(first, Ok(Once::Done(ref v)) if v == "first"));
    let again = attempt(
        &app,
        user,
        "k1",
        b"body",
        &mut runs,
        Ok("second".into()),
        true,
    )
    .await;
    assert!(matches!(again, Ok(Once::Replayed(ref v)) if v == "first"));
    assert_eq!(runs, 1, "the replay must not run the action");

    let other_body = attempt(&app, user, "k1", b"other", &mut runs, Ok("x".into()), true).await;
    assert!(matches!(other_body, Err(ApiError::Validation(_))));
    assert_eq!(runs, 1);
}

#[tokio::test]
async fn a_failed_or_rolled_back_attempt_leaves_the_key_free() {
    let app = spawn_app().await;
    let user = user_id(&app).await;
    let mut runs = 0;

    let failed = attempt(
        &app,
        user,
        "k2",
        b"body",
        &mut runs,
        Err(ApiError::Conflict("out of stock".into())),
        true,
    )
    .await;
    assert!(matches!(failed, Err(ApiError::Conflict(_))));
    let rolled_back = attempt(
        &app,
        user,
        "k2",
        b"body",
        &mut runs,
        Ok("lost".into()),
        false,
    )
    .await;
    assert!(matches!(rolled_back, Ok(Once::Done(_))));

    let retried = attempt(
        &app,
        user,
        "k2",
        b"body",
        &mut runs,
        Ok("kept".into()),
        true,
    )
    .await;
    assert!(matches!(retried, Ok(Once::Done(ref v)) if v == "kept"));
    assert_eq!(
        runs, 3,
        "every attempt that was not committed really ran again"
    );
}

/// Keys are kept 24 hours: a record older than that is forgotten and the action runs again
/// under the same key; one just younger still replays.
#[tokio::test]
async fn a_key_older_than_24_hours_is_forgotten() {
    let app = spawn_app().await;
    let user = user_id(&app).await;
    let mut runs = 0;
    for key in ["old", "recent"] {
        let first = attempt(
            &app,
            user,
            key,
            b"body",
            &mut runs,
            Ok("first".into()),
            true,
        )
        .await;
        assert!(matches!(first, Ok(Once::Done(_))));
    }
    for (key, age) in [
        ("old", "24 hours 1 minute"),
        ("recent", "23 hours 59 minutes"),
    ] {
        sqlx::query(
            "UPDATE idempotency_keys SET created_at = now() - $3::interval
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user)
        .bind(key)
        .bind(age)
        .execute(&app.db)
        .await
        .expect("age the key");
    }

    let old = attempt(
        &app,
        user,
        "old",
        b"body",
        &mut runs,
        Ok("again".into()),
        true,
    )
    .await;
    assert!(matches!(old, Ok(Once::Done(ref v)) if v == "again"));
    let recent = attempt(
        &app,
        user,
        "recent",
        b"body",
        &mut runs,
        Ok("again".into()),
        true,
    )
    .await;
    assert!(matches!(recent, Ok(Once::Replayed(ref v)) if v == "first"));
    assert_eq!(runs, 3, "two first runs and the forgotten key's second");
}
