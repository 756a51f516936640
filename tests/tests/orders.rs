//! Orders, black-box: no oversell under a race, no deadlock between opposite lock orders,
//! idempotent retries, ownership, and stock that returns on cancellation.

use std::sync::Arc;

use keel_tests::{TestApp, admin_token, assert_problem, register_and_login, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

async fn user_token(app: &TestApp, email: &str) -> String {
    let pair = register_and_login(app, email, "an order test passphrase").await;
    pair["access_token"].as_str().expect("token").to_owned()
}

async fn new_product(app: &TestApp, admin: &str, sku: &str, stock: i32) -> String {
    let response = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(admin)
        .json(&json!({"sku": sku, "name": sku, "price_cents": 250, "currency": "EUR", "stock": stock}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    body["id"].as_str().expect("id").to_owned()
}

async fn stock(app: &TestApp, product: &str) -> i64 {
    let body: Value = app
        .get(&format!("/api/v1/products/{product}"))
        .await
        .json()
        .await
        .expect("json");
    body["stock"].as_i64().expect("stock")
}

async fn order(app: &TestApp, token: &str, items: Value, key: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(token)
        .json(&json!({ "items": items }));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.expect("request")
}

// Enough connections for the race to be a race, and room to queue: 200 buyers of one row
// wait their turn on its lock, longer than the outage-oriented 2 s acquire timeout allows.
const POOL: &[(&str, &str)] = &[
    ("APP__DATABASE__MAX_CONNECTIONS", "20"),
    ("APP__DATABASE__ACQUIRE_TIMEOUT", "60s"),
];

#[tokio::test]
async fn two_hundred_buyers_for_fifty_units_never_oversell() {
    let app = Arc::new(spawn_app_with(POOL).await);
    let admin = admin_token(&app).await;
    let product = new_product(&app, &admin, "LAST-50", 50).await;
    let buyer = user_token(&app, "buyer@example.com").await;

    let attempts = (0..200).map(|_| {
        let (app, buyer, product) = (app.clone(), buyer.clone(), product.clone());
        tokio::spawn(async move {
            order(
                &app,
                &buyer,
                json!([{"product_id": product, "quantity": 1}]),
                None,
            )
            .await
            .status()
            .as_u16()
        })
    });
    let statuses: Vec<u16> = futures_join(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        50,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        150,
        "{statuses:?}"
    );
    assert_eq!(stock(&app, &product).await, 0);
}

#[tokio::test]
async fn opposite_lock_orders_do_not_deadlock() {
    let app = Arc::new(spawn_app_with(POOL).await);
    let admin = admin_token(&app).await;
    let a = new_product(&app, &admin, "PAIR-A", 1000).await;
    let b = new_product(&app, &admin, "PAIR-B", 1000).await;
    let buyer = user_token(&app, "pairs@example.com").await;

    let attempts = (0..60).map(|n| {
        let (app, buyer) = (app.clone(), buyer.clone());
        let items = if n % 2 == 0 {
            json!([{"product_id": a, "quantity": 1}, {"product_id": b, "quantity": 2}])
        } else {
            json!([{"product_id": b, "quantity": 2}, {"product_id": a, "quantity": 1}])
        };
        tokio::spawn(async move { order(&app, &buyer, items, None).await.status().as_u16() })
    });
    let statuses = futures_join(attempts).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(stock(&app, &a).await, 1000 - 60);
    assert_eq!(stock(&app, &b).await, 1000 - 120);
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_other_bodies() {
    let app = Arc::new(spawn_app_with(POOL).await);
    let admin = admin_token(&app).await;
    let product = new_product(&app, &admin, "IDEM-1", 100).await;
    let buyer = user_token(&app, "retry@example.com").await;
    let items = json!([{"product_id": product, "quantity": 3}]);

    let first = order(&app, &buyer, items.clone(), Some("key-1")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    let replay = order(&app, &buyer, items.clone(), Some("key-1")).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.json::<Value>().await.expect("json"), first);
    assert_eq!(
        stock(&app, &product).await,
        97,
        "a replay reserved stock again"
    );

    let other = order(
        &app,
        &buyer,
        json!([{"product_id": product, "quantity": 4}]),
        Some("key-1"),
    )
    .await;
    assert_problem(other, 422).await;

    // Concurrent duplicates: one order, everyone gets it.
    let duplicates = (0..10).map(|_| {
        let (app, buyer, items) = (app.clone(), buyer.clone(), items.clone());
        tokio::spawn(async move {
            let response = order(&app, &buyer, items, Some("key-2")).await;
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.expect("json")["id"].clone()
        })
    });
    let ids = futures_join(duplicates).await;
    assert!(ids.windows(2).all(|pair| pair[0] == pair[1]), "{ids:?}");
    assert_eq!(stock(&app, &product).await, 94);

    // Keys are per user: another user's same key is a new order.
    let other_buyer = user_token(&app, "other@example.com").await;
    assert_eq!(
        order(&app, &other_buyer, items, Some("key-1"))
            .await
            .status(),
        201
    );
    assert_eq!(stock(&app, &product).await, 91);
}

#[tokio::test]
async fn orders_are_private_cancellable_and_fulfillable() {
    let app = spawn_app_with(POOL).await;
    let admin = admin_token(&app).await;
    let product = new_product(&app, &admin, "OWN-1", 10).await;
    let alice = user_token(&app, "alice@example.com").await;
    let bob = user_token(&app, "bob@example.com").await;

    let placed: Value = order(
        &app,
        &alice,
        json!([{"product_id": product, "quantity": 4}]),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(placed["total_cents"], 1000);
    assert_eq!(placed["status"], "placed");
    let path = format!("/api/v1/orders/{}", placed["id"].as_str().expect("id"));

    let as_bob = app.send_as(Method::GET, &path, &bob).await;
    assert_problem(as_bob, 404).await;
    let as_admin = app.send_as(Method::GET, &path, &admin).await;
    assert_eq!(as_admin.status(), 200);
    let mine: Value = app
        .send_as(Method::GET, "/api/v1/orders", &bob)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(0));

    let fulfil_as_alice = app
        .send_as(Method::POST, &format!("{path}/fulfil"), &alice)
        .await;
    assert_problem(fulfil_as_alice, 403).await;
    let cancel_as_bob = app
        .send_as(Method::POST, &format!("{path}/cancel"), &bob)
        .await;
    assert_problem(cancel_as_bob, 404).await;

    assert_eq!(stock(&app, &product).await, 6);
    let cancelled = app
        .send_as(Method::POST, &format!("{path}/cancel"), &alice)
        .await;
    assert_eq!(
        cancelled.json::<Value>().await.expect("json")["status"],
        "cancelled"
    );
    assert_eq!(stock(&app, &product).await, 10, "cancelling restocks");
    let again = app
        .send_as(Method::POST, &format!("{path}/cancel"), &alice)
        .await;
    assert_problem(again, 409).await;

    let second: Value = order(
        &app,
        &alice,
        json!([{"product_id": product, "quantity": 1}]),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    let second_path = format!(
        "/api/v1/orders/{}/fulfil",
        second["id"].as_str().expect("id")
    );
    let fulfilled = app.send_as(Method::POST, &second_path, &admin).await;
    assert_eq!(
        fulfilled.json::<Value>().await.expect("json")["status"],
        "fulfilled"
    );
}

#[tokio::test]
async fn invalid_orders_name_what_is_wrong() {
    let app = spawn_app_with(POOL).await;
    let buyer = user_token(&app, "typo@example.com").await;
    let unknown = order(
        &app,
        &buyer,
        json!([{"product_id": uuid::Uuid::new_v4(), "quantity": 1}]),
        None,
    )
    .await;
    let body = assert_problem(unknown, 422).await;
    assert_eq!(body["errors"][0]["field"], "/items/0/product_id");
    let zero = order(
        &app,
        &buyer,
        json!([{"product_id": uuid::Uuid::new_v4(), "quantity": 0}]),
        None,
    )
    .await;
    assert_problem(zero, 422).await;
    assert_problem(order(&app, &buyer, json!([]), None).await, 422).await;
}

async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut results = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        results.push(task.await.expect("task"));
    }
    results
}
