//! Webhooks end to end: events committed with their change, delivered by the worker to a real
//! HTTP receiver on loopback, signed per Standard Webhooks (verified with the independent
//! `standardwebhooks` crate), retried, recorded, and refused where they must not go.

use std::{collections::HashMap, time::Duration};

use keel_tests::{
    Keel, Session, TestApp, assert_json, assert_problem,
    catalog::NewProduct,
    migrated_database,
    receiver::{Received, Receiver},
    spawn_app_on, spawn_app_with,
};
use reqwest::Method;
use serde_json::{Value, json};

/// Retries quickly: the schedule in test.toml, shortened further.
const FAST_RETRIES: (&str, &str) = ("APP__WEBHOOKS__RETRY_SCHEDULE", "300ms,300ms");

async fn subscribe(app: &TestApp, admin: &Session, url: &str, events: &[&str]) -> Value {
    let response = app
        .send_json(
            Method::POST,
            "/api/v1/webhooks",
            Some(&admin.access_token),
            &json!({ "url": url, "events": events }),
        )
        .await;
    assert_json(response, 201).await
}

/// An admin, a product with plenty of stock, and a buyer.
async fn shop(app: &TestApp) -> (Session, String, Session) {
    let admin = app.auth().admin().await;
    let product = app
        .catalog()
        .create(
            &admin.access_token,
            &NewProduct::new("HOOK-1").priced(1250).with_stock(10_000),
        )
        .await;
    let buyer = app
        .auth()
        .register_and_login("buyer@example.com", "buyer test passphrase")
        .await;
    (admin, product.id, buyer)
}

/// A shop with one subscription to `order.placed` at `receiver`.
struct Hooked {
    app: TestApp,
    receiver: Receiver,
    admin: Session,
    product: String,
    buyer: Session,
    secret: String,
    subscription: String,
}

async fn hooked(overrides: &[(&str, &str)], receiver: Receiver) -> Hooked {
    let app = spawn_app_with(overrides).await;
    let (admin, product, buyer) = shop(&app).await;
    let created = subscribe(&app, &admin, &receiver.url("/"), &["order.placed"]).await;
    Hooked {
        secret: created["secret"].as_str().expect("the secret").to_owned(),
        subscription: created["id"].as_str().expect("id").to_owned(),
        app,
        receiver,
        admin,
        product,
        buyer,
    }
}

impl Hooked {
    async fn order(&self) -> keel_tests::orders::Order {
        self.app
            .orders()
            .place(&self.buyer.access_token, &[(&self.product, 1)])
            .await
    }

    /// `GET /webhooks`, the first page.
    async fn subscriptions(&self) -> Vec<Value> {
        let page = assert_json(
            self.app
                .send_as(Method::GET, "/api/v1/webhooks", &self.admin.access_token)
                .await,
            200,
        )
        .await;
        page["items"].as_array().expect("items").clone()
    }

    async fn wait_for_status(&self, status: &str) -> Vec<Value> {
        wait_for_status(&self.app, &self.admin, &self.subscription, status).await
    }
}

async fn deliveries(app: &TestApp, admin: &Session, subscription: &str) -> Vec<Value> {
    let page = assert_json(
        app.send_as(
            Method::GET,
            &format!("/api/v1/webhooks/{subscription}/deliveries"),
            &admin.access_token,
        )
        .await,
        200,
    )
    .await;
    page["items"].as_array().expect("items").clone()
}

/// Waits until the subscription's newest attempt shows its delivery in `status`.
async fn wait_for_status(
    app: &TestApp,
    admin: &Session,
    subscription: &str,
    status: &str,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let attempts = deliveries(app, admin, subscription).await;
        if attempts
            .first()
            .is_some_and(|a| a["delivery_status"] == status)
        {
            return attempts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery became {status}: {attempts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn verify(secret: &str, request: &Received) {
    standardwebhooks::Webhook::new(secret)
        .expect("the secret is a Standard Webhooks secret")
        .verify(&request.body, &request.headers)
        .expect("the signature verifies with the secret shown at creation");
}

#[tokio::test]
async fn placing_an_order_delivers_a_signed_order_placed_event() {
    let app = spawn_app_with(&[]).await;
    let receiver = Receiver::start().await;
    let (admin, product, buyer) = shop(&app).await;
    let created = subscribe(
        &app,
        &admin,
        &receiver.url("/hooks/keel"),
        &["order.placed"],
    )
    .await;
    let secret = created["secret"].as_str().expect("the secret, shown once");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let subscription = created["id"].as_str().expect("id");

    let order = app
        .orders()
        .place(&buyer.access_token, &[(&product, 2)])
        .await;

    let received = receiver.wait_for(1, Duration::from_secs(20)).await;
    let request = &received[0];
    verify(secret, request);
    assert_eq!(request.path, "/hooks/keel");
    let body = request.json();
    assert_eq!(body["type"], "order.placed");
    assert_eq!(body["data"]["id"], order.id.as_str());
    assert_eq!(body["data"]["total_cents"], 2500);
    assert!(
        body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );

    let attempts = wait_for_status(&app, &admin, subscription, "delivered").await;
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(attempts[0]["status_code"], 200);
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["event_type"], "order.placed");
    assert_eq!(attempts[0]["event_id"], request.header("webhook-id"));

    // The secret is never shown again.
    let listed = assert_json(
        app.send_as(Method::GET, "/api/v1/webhooks", &admin.access_token)
            .await,
        200,
    )
    .await;
    assert_eq!(listed["items"][0]["id"], subscription);
    assert!(!listed.to_string().contains("whsec_"), "{listed}");
    // Only subscribed types arrive: a cancellation is not one of them.
    let cancelled = app.orders().cancel(&buyer.access_token, &order.id).await;
    assert_eq!(cancelled.status(), 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 1);
}

/// With tracing on (here an SDK tracer in the test process, which the in-process server
/// shares), each attempt is a CLIENT span whose context travels in `traceparent`.
#[tokio::test]
async fn deliveries_carry_traceparent() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).expect("the test's subscriber");

    let hooked = hooked(&[], Receiver::start().await).await;
    hooked.order().await;

    let received = hooked.receiver.wait_for(1, Duration::from_secs(20)).await;
    let traceparent = received[0].header("traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    assert_ne!(parts[1], "0".repeat(32), "a real trace id: {traceparent}");
}

#[tokio::test]
async fn a_failing_receiver_gets_the_event_again_with_the_same_id_until_it_answers() {
    let receiver = Receiver::scripted_with(&[(500, None), (503, Some("1")), (200, None)]).await;
    let hooked = hooked(&[FAST_RETRIES], receiver).await;
    hooked.order().await;

    let received = hooked.receiver.wait_for(3, Duration::from_secs(20)).await;
    let ids: Vec<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one event, one id: {ids:?}"
    );
    for request in &received {
        verify(&hooked.secret, request);
    }
    let attempts = hooked.wait_for_status("delivered").await;
    let statuses: Vec<&Value> = attempts.iter().map(|a| &a["status_code"]).collect();
    assert_eq!(
        statuses,
        [&json!(200), &json!(503), &json!(500)],
        "{attempts:#?}"
    );
    assert_eq!(attempts[2]["attempt"], 1);
    assert_eq!(attempts[0]["attempt"], 3);
    // Retry-After: 1 was honoured: the third attempt came at least a second after the second
    // (attempted_at is when an attempt started; the 503 came back a moment after it).
    let at = |a: &Value| {
        time::OffsetDateTime::parse(
            a["attempted_at"].as_str().expect("attempted_at"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("an RFC 3339 time")
    };
    assert!(
        at(&attempts[0]) - at(&attempts[1]) >= time::Duration::milliseconds(900),
        "{attempts:#?}"
    );
    assert_eq!(hooked.receiver.received().len(), 3, "nothing after the 200");
}

#[tokio::test]
async fn a_receiver_that_always_fails_leaves_a_dead_delivery_in_the_api() {
    let hooked = hooked(&[FAST_RETRIES], Receiver::scripted(&[500]).await).await;
    hooked.order().await;

    // Two retries configured: three attempts, then dead.
    let attempts = hooked.wait_for_status("dead").await;
    assert_eq!(attempts.len(), 3, "{attempts:#?}");
    assert!(attempts.iter().all(|a| a["status_code"] == 500));
    assert!(
        attempts[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{attempts:#?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        hooked.receiver.received().len(),
        3,
        "no attempt after the last"
    );
    // The subscription stays enabled: the next event is tried afresh.
    assert_eq!(hooked.subscriptions().await[0]["enabled"], true);
}

#[tokio::test]
async fn gone_disables_the_subscription() {
    let hooked = hooked(&[FAST_RETRIES], Receiver::scripted(&[410]).await).await;
    hooked.order().await;
    let attempts = hooked.wait_for_status("dead").await;
    assert_eq!(attempts.len(), 1, "410 is final: {attempts:#?}");

    let subscription = &hooked.subscriptions().await[0];
    assert_eq!(subscription["enabled"], false);
    assert!(
        subscription["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("410")),
        "{subscription}"
    );
    hooked.order().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        hooked.receiver.received().len(),
        1,
        "nothing more to a gone receiver"
    );
}

/// `webhook-signature`'s entries, each `v1,<base64>`.
fn signatures(request: &Received) -> Vec<&str> {
    request.header("webhook-signature").split(' ').collect()
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_until_its_grace_ends() {
    let hooked = hooked(&[], Receiver::start().await).await;
    let path = format!("/api/v1/webhooks/{}/secret", hooked.subscription);
    let rotated = assert_json(
        hooked
            .app
            .send_as(Method::POST, &path, &hooked.admin.access_token)
            .await,
        200,
    )
    .await;
    let secret = rotated["secret"]
        .as_str()
        .expect("the new secret, shown once");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_ne!(secret, hooked.secret);
    let expires = time::OffsetDateTime::parse(
        rotated["previous_secret_expires_at"]
            .as_str()
            .expect("the old secret's grace"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("an RFC 3339 time");
    let grace = expires - time::OffsetDateTime::now_utc();
    assert!(
        grace > time::Duration::hours(23) && grace <= time::Duration::hours(24),
        "webhooks.secret_rotation_grace is 24h: {grace}"
    );
    let listed = hooked.subscriptions().await;
    assert_eq!(
        listed[0]["previous_secret_expires_at"],
        rotated["previous_secret_expires_at"]
    );
    assert!(!json!(listed).to_string().contains("whsec_"), "{listed:?}");

    // In the grace: two entries, so a receiver holding either secret accepts the delivery.
    hooked.order().await;
    let first = &hooked.receiver.wait_for(1, Duration::from_secs(20)).await[0];
    assert_eq!(signatures(first).len(), 2, "{:?}", first.headers);
    verify(secret, first);
    verify(&hooked.secret, first);

    // Past it (brought forward here rather than waited for): the new secret alone signs.
    sqlx::query(
        "UPDATE webhook_subscriptions SET previous_secret_expires_at = now() - interval '1 second'",
    )
    .execute(&hooked.app.db)
    .await
    .expect("end the grace");
    hooked.order().await;
    let second = &hooked.receiver.wait_for(2, Duration::from_secs(20)).await[1];
    assert_eq!(signatures(second).len(), 1, "{:?}", second.headers);
    verify(secret, second);
    assert!(
        standardwebhooks::Webhook::new(&hooked.secret)
            .expect("a secret")
            .verify(&second.body, &second.headers)
            .is_err(),
        "the old secret no longer verifies"
    );
    assert!(
        hooked.subscriptions().await[0]
            .get("previous_secret_expires_at")
            .is_none()
    );

    // Admins only, and only existing subscriptions.
    let member = hooked
        .app
        .auth()
        .register_and_login("member@example.com", "member test passphrase")
        .await;
    assert_problem(
        hooked
            .app
            .send_as(Method::POST, &path, &member.access_token)
            .await,
        403,
    )
    .await;
    assert_problem(
        hooked
            .app
            .send_as(
                Method::POST,
                &format!("/api/v1/webhooks/{}/secret", uuid::Uuid::now_v7()),
                &hooked.admin.access_token,
            )
            .await,
        404,
    )
    .await;
}

/// The outbox row of the only event, as an operator would read it.
async fn outbox_row(app: &TestApp) -> Value {
    sqlx::query_scalar(
        "SELECT jsonb_build_object('attempts', attempts, 'last_error', last_error,
                'dispatched', dispatched_at IS NOT NULL,
                'deferred', available_at > occurred_at)
         FROM outbox_events",
    )
    .fetch_one(&app.db)
    .await
    .expect("the event's row")
}

/// A listener that fails rolls the whole dispatch back; the event keeps its failures and why,
/// waits, and is dispatched once the cause is gone. Here the cause is a constraint that
/// refuses every webhook delivery row, added and then dropped by the test.
#[tokio::test]
async fn a_failed_dispatch_is_recorded_on_the_event_and_retried() {
    let hooked = hooked(&[], Receiver::start().await).await;
    // The table's owner may alter it; the service's role, app.db's, may not.
    let owner = sqlx::PgPool::connect(&hooked.app.database_url)
        .await
        .expect("connect as the owner");
    sqlx::query("ALTER TABLE webhook_deliveries ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
        .execute(&owner)
        .await
        .expect("add the constraint");
    hooked.order().await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let row = loop {
        let row = outbox_row(&hooked.app).await;
        if row["attempts"].as_i64() >= Some(1) {
            break row;
        }
        assert!(tokio::time::Instant::now() < deadline, "{row}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(row["dispatched"], false, "{row}");
    assert_eq!(row["deferred"], true, "{row}");
    assert!(
        row["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("webhooks.fan_out") && e.contains("refuse_all")),
        "{row}"
    );
    assert!(hooked.receiver.received().is_empty());

    sqlx::query("ALTER TABLE webhook_deliveries DROP CONSTRAINT refuse_all")
        .execute(&owner)
        .await
        .expect("drop the constraint");
    let received = hooked.receiver.wait_for(1, Duration::from_secs(30)).await;
    verify(&hooked.secret, &received[0]);
    let row = outbox_row(&hooked.app).await;
    assert_eq!(row["dispatched"], true, "{row}");
    assert_eq!(row["last_error"], Value::Null, "{row}");
    assert!(row["attempts"].as_i64() >= Some(2), "{row}");
}

/// An event whose dispatch task is gone (the queue gave up on it) is queued again by the
/// `redispatch_outbox` job once it is five minutes past due. The event is written here as
/// `publish` would, minus its task, with its due time in the past.
#[tokio::test]
async fn a_stranded_event_is_queued_again_and_delivered() {
    let hooked = hooked(
        &[
            ("APP__WORKER__TICK", "1s"),
            ("APP__WORKER__SCHEDULE__REDISPATCH_OUTBOX", "1s"),
        ],
        Receiver::start().await,
    )
    .await;
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO outbox_events (id, type, payload, occurred_at, available_at)
         VALUES ($1, 'order.placed', '{\"id\": \"stranded\"}', now() - interval '10 minutes',
                 now() - interval '10 minutes')",
    )
    .bind(id)
    .execute(&hooked.app.db)
    .await
    .expect("a stranded event");

    let received = hooked.receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(received[0].header("webhook-id"), id.to_string());
    assert_eq!(received[0].json()["data"]["id"], "stranded");
    verify(&hooked.secret, &received[0]);
}

#[tokio::test]
async fn internal_addresses_are_refused_without_the_allowlist() {
    let app = spawn_app_with(&[("APP__WEBHOOKS__ALLOWED_NETWORKS", "")]).await;
    let admin = app.auth().admin().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]:9/",
        // A name, not an address: what it resolves to decides.
        "http://localhost:9/hook",
    ] {
        let response = app
            .send_json(
                Method::POST,
                "/api/v1/webhooks",
                Some(&admin.access_token),
                &json!({ "url": url, "events": ["order.placed"] }),
            )
            .await;
        let problem = assert_problem(response, 422).await;
        let error = &problem["errors"][0];
        assert_eq!(error["field"], "/url", "{url}: {problem}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("not allowed")),
            "{url}: {problem}"
        );
    }
    let nothing: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_subscriptions")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(nothing, 0);
}

#[tokio::test]
async fn subscriptions_are_validated_and_for_admins_only() {
    let app = spawn_app_with(&[("APP__WEBHOOKS__REQUIRE_HTTPS", "true")]).await;
    let admin = app.auth().admin().await;
    let member = app
        .auth()
        .register_and_login("member@example.com", "member test passphrase")
        .await;
    let body = json!({ "url": "https://127.0.0.1:9/", "events": ["order.placed"] });
    let forbidden = app
        .send_json(
            Method::POST,
            "/api/v1/webhooks",
            Some(&member.access_token),
            &body,
        )
        .await;
    assert_problem(forbidden, 403).await;

    let cases = [
        (
            json!({ "url": "http://127.0.0.1:9/", "events": ["order.placed"] }),
            "/url",
            "https",
        ),
        (
            json!({ "url": "ftp://example.com/", "events": ["order.placed"] }),
            "/url",
            "http",
        ),
        (
            json!({ "url": "https://u:p@127.0.0.1/", "events": ["order.placed"] }),
            "/url",
            "password",
        ),
        (
            json!({ "url": "https://127.0.0.1:9/", "events": ["order.shipped"] }),
            "/events/0",
            "order.placed",
        ),
    ];
    for (body, field, says) in cases {
        let response = app
            .send_json(
                Method::POST,
                "/api/v1/webhooks",
                Some(&admin.access_token),
                &body,
            )
            .await;
        let problem = assert_problem(response, 422).await;
        let errors = problem["errors"].as_array().expect("errors");
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field
                    && e["message"].as_str().is_some_and(|m| m.contains(says))),
            "{body}: {problem}"
        );
    }
    let unknown = app
        .send_as(
            Method::DELETE,
            &format!("/api/v1/webhooks/{}", uuid::Uuid::now_v7()),
            &admin.access_token,
        )
        .await;
    assert_problem(unknown, 404).await;
}

#[tokio::test]
async fn the_secret_is_not_readable_from_the_database_row() {
    let app = spawn_app_with(&[]).await;
    let receiver = Receiver::start().await;
    let admin = app.auth().admin().await;
    let created = subscribe(&app, &admin, &receiver.url("/"), &["order.placed"]).await;
    let secret = created["secret"].as_str().expect("secret");
    let key = base64_decode(secret.trim_start_matches("whsec_"));

    let row: Value = sqlx::query_scalar(
        "SELECT row_to_json(s)::jsonb FROM webhook_subscriptions s WHERE id = $1::uuid",
    )
    .bind(created["id"].as_str())
    .fetch_one(&app.db)
    .await
    .expect("the row");
    assert!(
        !row.to_string()
            .contains(secret.trim_start_matches("whsec_")),
        "{row}"
    );
    let ciphertext: Vec<u8> =
        sqlx::query_scalar("SELECT secret_ciphertext FROM webhook_subscriptions")
            .fetch_one(&app.db)
            .await
            .expect("ciphertext");
    assert!(!ciphertext.windows(key.len()).any(|w| w == key.as_slice()));
    assert!(
        ciphertext.len() >= key.len() + 12 + 16,
        "nonce and tag kept with it"
    );

    // Deleting the subscription removes it.
    let deleted = app
        .send_as(
            Method::DELETE,
            &format!("/api/v1/webhooks/{}", created["id"].as_str().expect("id")),
            &admin.access_token,
        )
        .await;
    assert_eq!(deleted.status(), 204);
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

/// 200 events, two `keel worker` processes, one stopped (SIGTERM) half-way: every event is
/// delivered exactly once — a graceful stop finishes what it holds and hands back the rest.
#[tokio::test]
async fn two_workers_deliver_every_event_once_and_a_stopped_one_loses_nothing() {
    const EVENTS: usize = 200;
    let (postgres, database_url) = migrated_database().await;
    let app = spawn_app_on(
        postgres,
        database_url.clone(),
        &[("APP__WORKER__ENABLED", "false")],
    )
    .await;
    let receiver = Receiver::start().await;
    let (admin, product, buyer) = shop(&app).await;
    subscribe(&app, &admin, &receiver.url("/"), &["order.placed"]).await;
    for _ in 0..EVENTS {
        app.orders()
            .place(&buyer.access_token, &[(&product, 1)])
            .await;
    }

    let start_worker = || {
        Keel::command(["worker"])
            .test_environment(&database_url)
            .env("APP__DATABASE__MIGRATE_ON_START", "false")
            .env("APP__WORKER__CONCURRENCY", "4")
            .start()
    };
    let (first, second) = tokio::join!(start_worker(), start_worker());
    receiver.wait_for(EVENTS / 4, Duration::from_secs(60)).await;
    first.sigterm();
    let stopped = first.wait().await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);

    receiver.wait_for(EVENTS, Duration::from_secs(60)).await;
    // A moment for any duplicate to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for request in receiver.received() {
        *per_id
            .entry(request.header("webhook-id").to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_id.len(), EVENTS, "every event delivered");
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    second.sigterm();
    assert_eq!(second.wait().await.code, Some(0));
}
