//! Orders, black-box: no oversell under a race, no deadlock between opposite lock orders,
//! idempotent retries, ownership, and stock that returns on cancellation.

use std::sync::Arc;

use keel_tests::{TestApp, assert_json, assert_problem, catalog::NewProduct, spawn_app_with};
use serde_json::Value;

/// A product at 2.50 EUR with this much stock; returns its id.
async fn new_product(app: &TestApp, admin: &str, sku: &str, stock: i64) -> String {
    let product = NewProduct::new(sku).priced(250).with_stock(stock);
    app.catalog().create(admin, &product).await.id
}

/// A new member account's access token.
async fn user_token(app: &TestApp, email: &str) -> String {
    app.auth()
        .register_and_login(email, "an order test passphrase")
        .await
        .access_token
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
    let admin = app.auth().admin().await.access_token;
    let product = new_product(&app, &admin, "LAST-50", 50).await;
    let buyer = user_token(&app, "buyer@example.com").await;

    let attempts = (0..200).map(|_| {
        let (app, buyer, product) = (app.clone(), buyer.clone(), product.clone());
        tokio::spawn(async move {
            app.orders()
                .post(&buyer, &[(&product, 1)], None)
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
    assert_eq!(app.catalog().stock(&product).await, 0);
}

#[tokio::test]
async fn opposite_lock_orders_do_not_deadlock() {
    let app = Arc::new(spawn_app_with(POOL).await);
    let admin = app.auth().admin().await.access_token;
    let a = new_product(&app, &admin, "PAIR-A", 1000).await;
    let b = new_product(&app, &admin, "PAIR-B", 1000).await;
    let buyer = user_token(&app, "pairs@example.com").await;

    let attempts = (0..60).map(|n| {
        let (app, buyer, a, b) = (app.clone(), buyer.clone(), a.clone(), b.clone());
        tokio::spawn(async move {
            let lines = if n % 2 == 0 {
                [(a.as_str(), 1), (b.as_str(), 2)]
            } else {
                [(b.as_str(), 2), (a.as_str(), 1)]
            };
            app.orders()
                .post(&buyer, &lines, None)
                .await
                .status()
                .as_u16()
        })
    });
    let statuses = futures_join(attempts).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(app.catalog().stock(&a).await, 1000 - 60);
    assert_eq!(app.catalog().stock(&b).await, 1000 - 120);
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_other_bodies() {
    let app = Arc::new(spawn_app_with(POOL).await);
    let (orders, catalog) = (app.orders(), app.catalog());
    let admin = app.auth().admin().await.access_token;
    let product = new_product(&app, &admin, "IDEM-1", 100).await;
    let buyer = user_token(&app, "retry@example.com").await;
    let items = [(product.as_str(), 3)];

    let first = assert_json(orders.post(&buyer, &items, Some("key-1")).await, 201).await;
    let replay = assert_json(orders.post(&buyer, &items, Some("key-1")).await, 201).await;
    assert_eq!(replay, first);
    assert_eq!(
        catalog.stock(&product).await,
        97,
        "a replay reserved stock again"
    );

    let other = orders.post(&buyer, &[(&product, 4)], Some("key-1")).await;
    assert_problem(other, 422).await;

    // Concurrent duplicates: one order, everyone gets it.
    let duplicates = (0..10).map(|_| {
        let (app, buyer, product) = (app.clone(), buyer.clone(), product.clone());
        tokio::spawn(async move {
            let response = app
                .orders()
                .post(&buyer, &[(&product, 3)], Some("key-2"))
                .await;
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.expect("json")["id"].clone()
        })
    });
    let ids = futures_join(duplicates).await;
    assert!(ids.windows(2).all(|pair| pair[0] == pair[1]), "{ids:?}");
    assert_eq!(catalog.stock(&product).await, 94);

    // Keys are per user: another user's same key is a new order.
    let other_buyer = user_token(&app, "other@example.com").await;
    assert_eq!(
        orders
            .post(&other_buyer, &items, Some("key-1"))
            .await
            .status(),
        201
    );
    assert_eq!(catalog.stock(&product).await, 91);
}

#[tokio::test]
async fn orders_are_private_cancellable_and_fulfillable() {
    let app = spawn_app_with(POOL).await;
    let (orders, catalog) = (app.orders(), app.catalog());
    let admin = app.auth().admin().await.access_token;
    let product = new_product(&app, &admin, "OWN-1", 10).await;
    let alice = user_token(&app, "alice@example.com").await;
    let bob = user_token(&app, "bob@example.com").await;

    let placed = orders.place(&alice, &[(&product, 4)]).await;
    assert_eq!(placed.body["total_cents"], 1000);
    assert_eq!(placed.body["status"], "placed");

    assert_problem(orders.get(&bob, &placed.id).await, 404).await;
    assert_eq!(orders.get(&admin, &placed.id).await.status(), 200);
    let mine = assert_json(orders.list(&bob).await, 200).await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(0));

    assert_problem(orders.fulfil(&alice, &placed.id).await, 403).await;
    assert_problem(orders.cancel(&bob, &placed.id).await, 404).await;

    assert_eq!(catalog.stock(&product).await, 6);
    let cancelled = orders.cancel(&alice, &placed.id).await;
    assert_eq!(
        cancelled.json::<Value>().await.expect("json")["status"],
        "cancelled"
    );
    assert_eq!(catalog.stock(&product).await, 10, "cancelling restocks");
    assert_problem(orders.cancel(&alice, &placed.id).await, 409).await;

    let second = orders.place(&alice, &[(&product, 1)]).await;
    let fulfilled = orders.fulfil(&admin, &second.id).await;
    assert_eq!(
        fulfilled.json::<Value>().await.expect("json")["status"],
        "fulfilled"
    );
}

#[tokio::test]
async fn invalid_orders_name_what_is_wrong() {
    let app = spawn_app_with(POOL).await;
    let orders = app.orders();
    let buyer = user_token(&app, "typo@example.com").await;
    let nowhere = uuid::Uuid::new_v4().to_string();
    let unknown = orders.post(&buyer, &[(&nowhere, 1)], None).await;
    let body = assert_problem(unknown, 422).await;
    assert_eq!(body["errors"][0]["field"], "/items/0/product_id");
    let nowhere = uuid::Uuid::new_v4().to_string();
    let zero = orders.post(&buyer, &[(&nowhere, 0)], None).await;
    assert_problem(zero, 422).await;
    assert_problem(orders.post(&buyer, &[], None).await, 422).await;
}

/// Lines naming one product merge; over 1000 units in total used to reach the table's CHECK
/// constraint and answer 500. It is a 422 naming the first such line, and nothing is reserved.
#[tokio::test]
async fn lines_of_one_product_are_bounded_together() {
    let app = spawn_app_with(POOL).await;
    let admin = app.auth().admin().await.access_token;
    let bolts = new_product(&app, &admin, "MERGED-1", 5_000).await;
    let buyer = user_token(&app, "bulk@example.com").await;

    let response = app
        .orders()
        .post(&buyer, &[(&bolts, 600), (&bolts, 600)], None)
        .await;
    let body = assert_problem(response, 422).await;
    assert_eq!(body["errors"][0]["field"], "/items/0/quantity", "{body}");
    assert_eq!(app.catalog().stock(&bolts).await, 5_000);

    let order = app
        .orders()
        .place(&buyer, &[(&bolts, 500), (&bolts, 500)])
        .await;
    assert_eq!(order.body["items"][0]["quantity"], 1000);
    assert_eq!(app.catalog().stock(&bolts).await, 4_000);
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
