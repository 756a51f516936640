//! Orders, black-box: no oversell under a race, no deadlock between opposite lock orders,
//! idempotent retries, ownership, stock that returns on cancellation, and no half-written
//! order when the process is killed mid-request.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use keel_tests::{
    Keel, TestApp, TestKey, assert_json, assert_problem, catalog::NewProduct, spawn_app_with,
};
use serde_json::{Value, json};

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
            let response = app.orders().post(&buyer, &[(&product, 1)], None).await;
            status_and_body(response).await
        })
    });
    let outcomes: Vec<(u16, Value)> = futures_join(attempts).await;
    let statuses: Vec<u16> = outcomes.iter().map(|(status, _)| *status).collect();
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
    // A buyer told "no" learns which product ran out, by id and by sku.
    for (_, problem) in outcomes.iter().filter(|(status, _)| *status == 409) {
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&product) && detail.contains("LAST-50"),
            "a 409 that does not name the product: {problem}"
        );
    }
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

/// A keyed order that fails (409, out of stock) stores nothing under its key, so the same
/// request retried once the product is restocked is really tried again: 201, not a replay of
/// the 409 — and from then on the key replays that 201.
#[tokio::test]
async fn a_failed_keyed_order_keeps_no_key_and_its_retry_succeeds() {
    let app = spawn_app_with(POOL).await;
    let admin = app.auth().admin().await.access_token;
    let product = app
        .catalog()
        .create(&admin, &NewProduct::new("RETRY-1").with_stock(2))
        .await;
    let buyer = user_token(&app, "later@example.com").await;
    let items = [(product.id.as_str(), 3)];

    let refused = app.orders().post(&buyer, &items, Some("retry-key")).await;
    assert_problem(refused, 409).await;
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE key = 'retry-key'")
            .fetch_one(&app.db)
            .await
            .expect("count keys");
    assert_eq!(stored, 0, "the failed attempt left its key behind");

    let restocked = app
        .client
        .patch(app.url(&product.path()))
        .bearer_auth(&admin)
        .header("if-match", &product.etag)
        .json(&json!({"stock": 5}))
        .send()
        .await
        .expect("request");
    assert_json(restocked, 200).await;

    let placed = assert_json(
        app.orders().post(&buyer, &items, Some("retry-key")).await,
        201,
    )
    .await;
    let replayed = assert_json(
        app.orders().post(&buyer, &items, Some("retry-key")).await,
        201,
    )
    .await;
    assert_eq!(replayed, placed);
    assert_eq!(app.catalog().stock(&product.id).await, 2);
}

/// `GET /orders` walked with a small page: every order of the caller exactly once, newest
/// first, none of anyone else's, and a cursor means the same page however often it is used,
/// even after newer orders arrive.
#[tokio::test]
async fn order_pages_walk_every_order_once_newest_first() {
    let app = spawn_app_with(POOL).await;
    let admin = app.auth().admin().await.access_token;
    let product = new_product(&app, &admin, "PAGES-1", 100).await;
    let buyer = user_token(&app, "pages@example.com").await;
    let someone_else = user_token(&app, "elsewhere@example.com").await;
    let mut placed = Vec::new();
    for n in 0..7 {
        placed.push(app.orders().place(&buyer, &[(&product, 1)]).await.id);
        if n % 3 == 0 {
            app.orders().place(&someone_else, &[(&product, 1)]).await;
        }
    }
    let page = |cursor: Option<String>| {
        let path = match cursor {
            Some(cursor) => format!("/api/v1/orders?limit=3&cursor={cursor}"),
            None => "/api/v1/orders?limit=3".to_owned(),
        };
        let (app, buyer) = (&app, &buyer);
        async move { assert_json(app.send_as(reqwest::Method::GET, &path, buyer).await, 200).await }
    };

    let (mut seen, mut cursors, mut cursor) = (Vec::new(), Vec::new(), None);
    loop {
        let current = page(cursor.clone()).await;
        let items = current["items"].as_array().expect("items");
        assert!(items.len() <= 3, "{current}");
        let mut times = Vec::new();
        for item in items {
            seen.push(item["id"].as_str().expect("id").to_owned());
            let created = item["created_at"].as_str().expect("created_at");
            times.push(
                time::OffsetDateTime::parse(
                    created,
                    &time::format_description::well_known::Rfc3339,
                )
                .expect("RFC 3339"),
            );
        }
        assert!(
            times.windows(2).all(|t| t[0] >= t[1]),
            "not newest first: {times:?}"
        );
        match current["next_cursor"].as_str() {
            Some(next) => {
                cursors.push((next.to_owned(), page(Some(next.to_owned())).await));
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    let newest_first: Vec<String> = placed.iter().rev().cloned().collect();
    assert_eq!(
        seen, newest_first,
        "each order once, newest first, only the caller's"
    );
    assert_eq!(cursors.len(), 2, "7 orders in pages of 3");

    app.orders().place(&buyer, &[(&product, 1)]).await;
    for (cursor, first_read) in cursors {
        assert_eq!(
            page(Some(cursor.clone())).await,
            first_read,
            "cursor {cursor} changed its page"
        );
    }
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

/// `kill -9` in the middle of a burst of orders: the process gets no chance to roll back or
/// drain, so only PostgreSQL's transactions stand between a crash and a half-placed order.
/// Afterwards every order that got a 201 is there with its stock reserved, nothing else is
/// half-written, and retrying the lost requests with their Idempotency-Keys on a fresh server
/// settles each to exactly one order.
#[tokio::test]
async fn kill_9_during_a_burst_of_orders_loses_and_half_writes_nothing() {
    const STOCK: i64 = 100_000;
    // One signing key for the in-process app that arranges and the process that is killed, so
    // the buyer's token is good on both.
    let key = TestKey::generate();
    let app = spawn_app_with(&[("APP__AUTH__SIGNING_KEY", key.pem.as_str())]).await;
    let admin = app.auth().admin().await.access_token;
    let products = [
        new_product(&app, &admin, "CRASH-A", STOCK).await,
        new_product(&app, &admin, "CRASH-B", STOCK).await,
    ];
    let buyer = user_token(&app, "crash@example.com").await;
    let server = Keel::command(["serve"])
        .test_environment(&app.database_url)
        .env("APP__AUTH__SIGNING_KEY", &key.pem)
        .env("APP__DATABASE__MAX_CONNECTIONS", "10")
        // Eight buyers queue on the same two rows: on a busy machine waiting for a connection
        // can take longer than the outage-oriented default.
        .env("APP__DATABASE__ACQUIRE_TIMEOUT", "30s")
        .start()
        .await;

    let attempts = Arc::new(std::sync::Mutex::new(Vec::<Attempt>::new()));
    let placed = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let clients = (0..8).map(|worker| {
        let (client, base, buyer) = (client.clone(), server.base.clone(), buyer.clone());
        let (products, attempts, placed) = (products.clone(), attempts.clone(), placed.clone());
        tokio::spawn(async move {
            for n in 0.. {
                let attempt = Attempt::new(&products, worker * 10_000 + n);
                let outcome = attempt.send(&client, &base, &buyer).await;
                let crashed = outcome.is_none();
                if outcome == Some(201) {
                    placed.fetch_add(1, Ordering::Relaxed);
                }
                attempts
                    .lock()
                    .expect("attempts")
                    .push(Attempt { outcome, ..attempt });
                if crashed {
                    break;
                }
            }
        })
    });
    let clients: Vec<_> = clients.collect();
    // Enough placed to be sure the kill lands mid-burst, with every worker in a request.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while placed.load(Ordering::Relaxed) < 60 {
        assert!(
            std::time::Instant::now() < deadline,
            "the burst never got going"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    server.sigkill();
    let ended = server.wait().await;
    assert_eq!(ended.code, None, "ended by the signal: {}", ended.stderr);
    futures_join(clients.into_iter()).await;
    let attempts = std::mem::take(&mut *attempts.lock().expect("attempts"));
    let lost = attempts.iter().filter(|a| a.outcome.is_none()).count();
    assert!(
        lost > 0,
        "the kill landed between requests, proving nothing"
    );
    // On a loaded machine a request may also time out (503) before the kill; like a lost
    // answer, that leaves the client not knowing, and it is retried below the same way.
    assert!(
        attempts
            .iter()
            .all(|a| matches!(a.outcome, Some(201 | 503) | None)),
        "a request failed before the kill: {:?}",
        attempts.iter().map(|a| a.outcome).collect::<Vec<_>>()
    );

    // Every 201 is in the database, exactly as ordered, and stock adds up with no remainder.
    for attempt in attempts.iter().filter(|a| a.outcome == Some(201)) {
        assert_eq!(
            stored_lines(&app, &attempt.key).await,
            attempt.lines(),
            "order for key {} after the crash",
            attempt.key
        );
    }
    assert_nothing_half_written(&app, &products, STOCK).await;

    // The requests whose answers the crash ate (or that timed out): the client cannot know
    // whether they landed.
    // Retrying with the same key is safe: each ends as exactly one order, either way.
    let restarted = Keel::command(["serve"])
        .test_environment(&app.database_url)
        .env("APP__AUTH__SIGNING_KEY", &key.pem)
        .start()
        .await;
    for attempt in attempts.iter().filter(|a| a.outcome != Some(201)) {
        assert_eq!(
            attempt.send(&client, &restarted.base, &buyer).await,
            Some(201)
        );
        assert_eq!(stored_lines(&app, &attempt.key).await, attempt.lines());
    }
    assert_nothing_half_written(&app, &products, STOCK).await;
    restarted.sigterm();
    assert_eq!(restarted.wait().await.code, Some(0));
}

/// One order request of the burst: its Idempotency-Key, its lines, what came back (`None`:
/// no response, the connection died).
#[derive(Clone, Debug)]
struct Attempt {
    key: String,
    lines: Vec<(String, i64)>,
    outcome: Option<u16>,
}

impl Attempt {
    /// Two lines of small varying quantities, in either product order.
    fn new(products: &[String; 2], n: i64) -> Self {
        let mut lines = vec![
            (products[0].clone(), 1 + n % 3),
            (products[1].clone(), 1 + n % 2),
        ];
        if n % 2 == 1 {
            lines.reverse();
        }
        Self {
            key: uuid::Uuid::new_v4().to_string(),
            lines,
            outcome: None,
        }
    }

    async fn send(&self, client: &reqwest::Client, base: &str, token: &str) -> Option<u16> {
        let items: Vec<Value> = self
            .lines
            .iter()
            .map(|(product, quantity)| json!({"product_id": product, "quantity": quantity}))
            .collect();
        client
            .post(format!("{base}/api/v1/orders"))
            .bearer_auth(token)
            .header("idempotency-key", &self.key)
            .json(&json!({ "items": items }))
            .send()
            .await
            .ok()
            .map(|response| response.status().as_u16())
    }

    /// The lines as the database keeps them: sorted by product.
    fn lines(&self) -> Vec<(String, i64)> {
        let mut lines = self.lines.clone();
        lines.sort();
        lines
    }
}

/// The lines of the one order stored under this Idempotency-Key, sorted by product.
async fn stored_lines(app: &TestApp, key: &str) -> Vec<(String, i64)> {
    let rows: Vec<(uuid::Uuid, i32)> = sqlx::query_as(
        "SELECT l.product_id, l.quantity
         FROM idempotency_keys k
         JOIN orders o ON o.id = (k.response->>'id')::uuid
         JOIN order_lines l ON l.order_id = o.id
         WHERE k.key = $1 AND o.status = 'placed'
         ORDER BY l.product_id",
    )
    .bind(key)
    .fetch_all(&app.db)
    .await
    .expect("query the order");
    rows.into_iter()
        .map(|(product, quantity)| (product.to_string(), i64::from(quantity)))
        .collect()
}

/// No order without lines or with a wrong total, no claimed key without its response and
/// order, no order without its key, and for each product the stock taken equals the
/// quantities of its order lines.
async fn assert_nothing_half_written(app: &TestApp, products: &[String; 2], stock: i64) {
    let broken: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders o
         WHERE NOT EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id)
            OR o.total_cents <> (SELECT sum(l.quantity * l.unit_price_cents)
                                 FROM order_lines l WHERE l.order_id = o.id)",
    )
    .fetch_one(&app.db)
    .await
    .expect("count broken orders");
    assert_eq!(broken, 0, "orders without lines or with a wrong total");
    let (keys, answered, orders): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM idempotency_keys),
                (SELECT count(*) FROM idempotency_keys k
                 JOIN orders o ON o.id = (k.response->>'id')::uuid
                 WHERE k.status_code = 201),
                (SELECT count(*) FROM orders)",
    )
    .fetch_one(&app.db)
    .await
    .expect("count keys and orders");
    assert_eq!(keys, answered, "a claimed key without its stored order");
    assert_eq!(
        keys, orders,
        "an order without its key, or a key without its order"
    );
    for product in products {
        let reserved: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(quantity), 0)::bigint FROM order_lines WHERE product_id = $1::uuid",
        )
        .bind(product)
        .fetch_one(&app.db)
        .await
        .expect("sum the lines");
        assert_eq!(
            stock - app.catalog().stock(product).await,
            reserved,
            "stock taken for {product} differs from what its orders hold"
        );
    }
}

/// `Idempotency-Key` is untrusted input that reaches a primary key: whatever bytes a client
/// sends, the server either uses exactly that key (1–255 visible ASCII characters or spaces: a
/// 201, then the same order replayed) or refuses with a 422 naming the header and creates nothing — never a
/// 500, and never a key silently dropped so that the retry places a second order.
#[test]
fn any_idempotency_key_is_used_exactly_or_refused_by_name() {
    use proptest::{
        prelude::*,
        test_runner::{Config, TestCaseError, TestRunner},
    };

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    // The app's PostgreSQL container is dropped inside the runtime, as it needs.
    let _entered = runtime.enter();
    let (app, buyer, product) = runtime.block_on(async {
        let app = spawn_app_with(&[]).await;
        let admin = app.auth().admin().await.access_token;
        let product = new_product(&app, &admin, "KEYS", 100_000).await;
        let buyer = user_token(&app, "keys@example.com").await;
        (app, buyer, product)
    });
    // Bytes a client can put in a header field: visible ASCII, spaces and tabs (which HTTP
    // trims at the ends), and obs-text (not UTF-8 on its own).
    let byte = prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'\t'), 1 => 0x80u8..=0xff];
    let keys = prop_oneof![
        proptest::collection::vec(byte.clone(), 0..20),
        proptest::collection::vec(byte, 240..270),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    // Short keys repeat across cases (and shrinking retries them): a key seen before must
    // replay its first order, not place another.
    let seen = std::cell::RefCell::new(std::collections::HashMap::<String, Value>::new());
    let outcome = runner.run(&keys, |raw| {
        runtime.block_on(async {
            let header = reqwest::header::HeaderValue::from_bytes(&raw)
                .map_err(|err| TestCaseError::reject(err.to_string()))?;
            let sent = || async {
                app.client
                    .post(app.url("/api/v1/orders"))
                    .bearer_auth(&buyer)
                    .header("idempotency-key", header.clone())
                    .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
                    .send()
                    .await
                    .expect("request reached the server")
            };
            let orders_before = order_count(&app).await;
            // What the server sees: HTTP drops the spaces and tabs around a field value.
            let value = raw.trim_ascii();
            let usable = std::str::from_utf8(value).ok().filter(|key| {
                key.bytes().all(|b| (0x20..0x7f).contains(&b)) && (1..=255).contains(&key.len())
            });
            let (status, first) = status_and_body(sent().await).await;
            let earlier = usable.and_then(|key| seen.borrow().get(key).cloned());
            match usable {
                Some(_) if let Some(earlier) = earlier => {
                    prop_assert_eq!(status, 201, "{}", first);
                    prop_assert_eq!(&first, &earlier, "the first order with this key, replayed");
                    prop_assert_eq!(order_count(&app).await, orders_before);
                }
                Some(key) => {
                    seen.borrow_mut().insert(key.to_owned(), first.clone());
                    prop_assert_eq!(status, 201, "{}", first);
                    let (status, replay) = status_and_body(sent().await).await;
                    prop_assert_eq!(status, 201, "{}", replay);
                    prop_assert_eq!(&replay, &first);
                    let stored: Vec<String> = sqlx::query_scalar(
                        "SELECT key FROM idempotency_keys WHERE response->>'id' = $1",
                    )
                    .bind(first["id"].as_str())
                    .fetch_all(&app.db)
                    .await
                    .expect("the stored key");
                    prop_assert_eq!(stored, vec![key.to_owned()]);
                    prop_assert_eq!(order_count(&app).await, orders_before + 1);
                }
                None => {
                    prop_assert_eq!(status, 422, "{}", first);
                    prop_assert_eq!(&first["errors"][0]["field"], "Idempotency-Key");
                    prop_assert_eq!(order_count(&app).await, orders_before);
                }
            }
            Ok(())
        })
    });
    if let Err(err) = outcome {
        panic!("{err}");
    }
}

async fn status_and_body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

async fn order_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&app.db)
        .await
        .expect("count orders")
}
