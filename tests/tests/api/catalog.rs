//! The catalog, black-box: admin enforcement, validation, HTTP caching, optimistic locking,
//! and pagination that stays correct while rows are being added.

use std::collections::HashSet;

use keel_tests::{Keel, KeelOutput, assert_problem, catalog::NewProduct, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn only_admins_manage_products() {
    let app = spawn_app().await;
    let (catalog, bolt) = (app.catalog(), NewProduct::new("SKU-1").named("Bolt"));
    let member = app
        .auth()
        .register_and_login("member@example.com", "a member passphrase")
        .await
        .access_token;
    assert_problem(catalog.post(&member, &bolt.json()).await, 403).await;
    assert_problem(
        app.client
            .post(app.url("/api/v1/products"))
            .json(&bolt.json())
            .send()
            .await
            .expect("request"),
        401,
    )
    .await;

    let admin = app.auth().admin().await.access_token;
    let created = catalog.create(&admin, &bolt).await;
    assert_eq!(created.etag, "\"1\"");
    let path = created.path();

    let delete_as_member = app.send_as(Method::DELETE, &path, &member).await;
    assert_problem(delete_as_member, 403).await;
    let deleted = app.send_as(Method::DELETE, &path, &admin).await;
    assert_eq!(deleted.status(), 204);
    assert_problem(app.get(&path).await, 404).await;
}

#[tokio::test]
async fn invalid_and_duplicate_products_are_refused() {
    let app = spawn_app().await;
    let catalog = app.catalog();
    let admin = app.auth().admin().await.access_token;
    catalog
        .create(&admin, &NewProduct::new("DUP-1").named("First"))
        .await;
    let second = NewProduct::new("DUP-1").named("Second");
    assert_problem(catalog.post(&admin, &second.json()).await, 409).await;

    let mut bad = NewProduct::new("OK-2").named("Fine").json();
    bad["currency"] = json!("XYZ");
    bad["price_cents"] = json!(0);
    let body = assert_problem(catalog.post(&admin, &bad).await, 422).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(fields.contains(&"/price_cents"), "{body}");

    let mut unknown_currency = NewProduct::new("OK-3").named("Fine").json();
    unknown_currency["currency"] = json!("XYZ");
    let body = assert_problem(catalog.post(&admin, &unknown_currency).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "/currency", "{body}");

    // Each of these is invalid in the published schema too, so the answer names the field.
    for (field, value) in [
        ("name", json!("   ")),
        ("name", json!("two\nlines")),
        ("description", json!("nul \u{0} inside")),
        ("sku", json!("has space")),
    ] {
        let mut product = NewProduct::new("OK-4").named("Fine").json();
        product[field] = value;
        let body = assert_problem(catalog.post(&admin, &product).await, 422).await;
        assert_eq!(body["errors"][0]["field"], format!("/{field}"), "{body}");
    }
    let mut padded = NewProduct::new("OK-5").json();
    padded["name"] = json!("  Padded bolt  ");
    let created = catalog.post(&admin, &padded).await;
    let product = keel_tests::assert_json(created, 201).await;
    assert_eq!(product["name"], "Padded bolt", "stored trimmed");
}

#[tokio::test]
async fn etags_give_304s_and_if_match_prevents_lost_updates() {
    let app = spawn_app().await;
    let admin = app.auth().admin().await.access_token;
    let path = app
        .catalog()
        .create(&admin, &NewProduct::new("ETAG-1").named("Washer"))
        .await
        .path();

    let fetched = app.get(&path).await;
    assert_eq!(fetched.headers()["cache-control"], "public, no-cache");
    let etag = fetched.headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let get_if_none_match = |tag: &str| {
        app.client
            .get(app.url(&path))
            .header("if-none-match", tag)
            .send()
    };
    let revalidated = get_if_none_match(&etag).await.expect("request");
    assert_eq!(revalidated.status(), 304);

    let patch = |if_match: Option<&str>, body: Value| {
        let mut request = app
            .client
            .patch(app.url(&path))
            .bearer_auth(&admin)
            .json(&body);
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        request.send()
    };
    assert_problem(
        patch(None, json!({"stock": 5})).await.expect("request"),
        428,
    )
    .await;

    let updated = patch(Some(&etag), json!({"stock": 5, "name": "Steel washer"}))
        .await
        .expect("request");
    assert_eq!(updated.status(), 200);
    let new_etag = updated.headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(new_etag, etag);
    let body: Value = updated.json().await.expect("json");
    assert_eq!(
        (body["stock"].as_i64(), body["name"].as_str()),
        (Some(5), Some("Steel washer"))
    );
    assert_eq!(body["version"], 2);

    // A second writer still holding the old ETag would overwrite the first: refused, and
    // refused whole: the first writer's stock, name and version all survive it.
    assert_problem(
        patch(Some(&etag), json!({"stock": 99, "name": "Overwritten"}))
            .await
            .expect("request"),
        412,
    )
    .await;
    let after = app.get(&path).await;
    assert_eq!(after.headers()["etag"], new_etag.as_str(), "the ETag moved");
    let after: Value = keel_tests::assert_json(after, 200).await;
    assert_eq!(
        (after["stock"].as_i64(), after["version"].as_i64()),
        (Some(5), Some(2)),
        "{after}"
    );
    assert_eq!(after, body, "the refused PATCH changed the product");
    let stale_check = get_if_none_match(&etag).await.expect("request");
    assert_eq!(stale_check.status(), 200, "an old ETag must not get 304");
}

/// `If-Match: *` means "whatever is there now", which is exactly a lost update: refused with
/// 428 like a missing header, and the product is untouched.
#[tokio::test]
async fn if_match_star_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.auth().admin().await.access_token;
    let product = app
        .catalog()
        .create(&admin, &NewProduct::new("STAR-1").with_stock(7))
        .await;
    let response = app
        .client
        .patch(app.url(&product.path()))
        .bearer_auth(&admin)
        .header("if-match", "*")
        .json(&json!({"stock": 1}))
        .send()
        .await
        .expect("request");
    let body = assert_problem(response, 428).await;
    assert!(
        body["detail"].as_str().unwrap_or_default().contains('*'),
        "{body}"
    );
    let after = app.get(&product.path()).await;
    assert_eq!(after.headers()["etag"], product.etag.as_str());
    assert_eq!(keel_tests::assert_json(after, 200).await["stock"], 7);
}

#[tokio::test]
async fn search_matches_words_and_prefixes() {
    let app = spawn_app().await;
    let catalog = app.catalog();
    let admin = app.auth().admin().await.access_token;
    for (sku, name) in [
        ("B-M8", "Steel bolt M8"),
        ("N-M8", "Steel nut M8"),
        ("W-10", "Rubber washer"),
    ] {
        catalog
            .create(&admin, &NewProduct::new(sku).named(name))
            .await;
    }

    let names = |page: &Value| -> HashSet<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(names(&catalog.page("q=steel").await).len(), 2);
    assert_eq!(
        names(&catalog.page("q=steel%20bol").await),
        HashSet::from(["Steel bolt M8".to_owned()])
    );
    assert_eq!(
        names(&catalog.page("q=wash").await),
        HashSet::from(["Rubber washer".to_owned()])
    );
    assert!(names(&catalog.page("q=titanium").await).is_empty());
}

/// Search walks the newest rows in id order before it asks the full-text index (a broad term
/// is then cheap at any catalog size): whichever way a page is found, walking the pages gives
/// exactly the matches, newest first, as SQL sees them — for a broad term, for a rare one whose
/// matches all lie beyond the newest 2,000 rows, and for one whose pages straddle that edge.
#[tokio::test]
async fn search_pages_are_exact_whether_the_matches_are_new_or_old() {
    let app = spawn_app().await;
    // Ids in insertion order of n, so n = 2600 is the newest row.
    sqlx::query(
        r#"INSERT INTO products (id, sku, name, price_cents, currency, stock)
           SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
                  'S-' || n,
                  CASE WHEN n % 3 = 0 THEN 'Steel' ELSE 'Brass' END
                    || CASE WHEN n % 130 = 0 THEN ' bolt' ELSE ' part' END
                    || CASE WHEN n <= 500 AND n % 10 = 0 THEN ' gasket' ELSE '' END,
                  100, 'EUR', 1
           FROM generate_series(1, 2600) AS n"#,
    )
    .execute(&app.db)
    .await
    .expect("a catalog larger than the search window");

    for (q, tsquery, expected) in [
        ("steel", "steel:*", 866),
        ("gask", "gask:*", 50),
        ("steel%20bol", "steel:* & bol:*", 6),
        ("bolt", "bolt:*", 20),
    ] {
        let truth: Vec<String> = sqlx::query_scalar(
            "SELECT id::text FROM products WHERE search @@ to_tsquery('simple', $1) ORDER BY id DESC",
        )
        .bind(tsquery)
        .fetch_all(&app.db)
        .await
        .expect("the matches as SQL finds them");
        assert_eq!(truth.len(), expected, "{q}");

        let mut walked = Vec::new();
        let mut query = format!("q={q}&limit=20");
        loop {
            let page = app.catalog().page(&query).await;
            walked.extend(
                page["items"]
                    .as_array()
                    .expect("items")
                    .iter()
                    .map(|item| item["id"].as_str().expect("id").to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(cursor) if walked.len() < 200 => {
                    query = format!("q={q}&limit=20&cursor={cursor}");
                }
                _ => break,
            }
        }
        if expected > 200 {
            assert_eq!(walked, truth[..walked.len()], "{q}: the first pages");
            assert_eq!(walked.len(), 200, "{q}");
        } else {
            assert_eq!(walked, truth, "{q}: every match once, newest first");
        }
    }
}

#[tokio::test]
async fn pages_never_repeat_a_row_while_rows_are_inserted() {
    let app = spawn_app().await;
    let catalog = app.catalog();
    let admin = app.auth().admin().await.access_token;
    for n in 0..25 {
        let part = NewProduct::new(&format!("P-{n:03}")).named(&format!("Part {n}"));
        catalog.create(&admin, &part).await;
    }
    let mut seen = HashSet::new();
    let mut query = "limit=7".to_owned();
    let mut pages = 0;
    loop {
        let current = catalog.page(&query).await;
        // Someone adds products between every two page requests.
        let meanwhile = NewProduct::new(&format!("NEW-{pages:03}")).named("Inserted meanwhile");
        catalog.create(&admin, &meanwhile).await;
        for item in current["items"].as_array().expect("items") {
            let id = item["id"].as_str().expect("id").to_owned();
            assert!(seen.insert(id), "row seen twice");
        }
        pages += 1;
        match current["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=7&cursor={cursor}"),
            None => break,
        }
    }
    // Every row that existed when the walk began was seen exactly once.
    assert_eq!(seen.len(), 25);
    assert_eq!(pages, 4);
    assert_problem(app.get("/api/v1/products?cursor=garbage").await, 422).await;
    assert_problem(app.get("/api/v1/products?limit=101").await, 422).await;
}

#[tokio::test]
async fn keel_seed_loads_the_demo_catalog_once() {
    let app = spawn_app().await;
    for _ in 0..2 {
        let KeelOutput { code, stderr, .. } = Keel::command(["seed"])
            .test_environment(&app.database_url)
            .run();
        assert_eq!(code, Some(0), "{stderr}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(count, 60);
    let found = app.catalog().page("q=stainless%20hex%20bolt").await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(3), "{found}");
}

/// Two replicas on one database, each with its own product cache. Whatever one changes — a
/// PATCH through its API, or SQL by hand — the other stops serving from memory within the
/// notification's delay, and never serves the old version after that. The replica that made
/// the change serves the new version at once.
#[tokio::test]
async fn a_change_in_one_replica_is_not_served_stale_by_another() {
    let (postgres, database_url) = keel_tests::migrated_database().await;
    let a = keel_tests::spawn_app_on(postgres, database_url.clone(), &[]).await;
    let b = keel_tests::spawn_app_on(a.postgres.handle(), database_url, &[]).await;
    let admin = a.auth().admin().await.access_token;
    let product = a
        .catalog()
        .create(&admin, &NewProduct::new("CACHE-1").with_stock(10))
        .await;
    let path = format!("/api/v1/products/{}", product.id);
    let stock_in = |app: &keel_tests::TestApp| {
        let request = app.client.get(app.url(&path)).send();
        async move {
            let body: Value = request.await.expect("request").json().await.expect("json");
            body["stock"].as_i64().expect("stock")
        }
    };
    // Both replicas have read it, so both hold it in memory now.
    for _ in 0..3 {
        assert_eq!(stock_in(&a).await, 10);
        assert_eq!(stock_in(&b).await, 10);
    }

    let changed = a
        .client
        .patch(a.url(&path))
        .bearer_auth(&admin)
        .header("if-match", &product.etag)
        .json(&json!({"stock": 7}))
        .send()
        .await
        .expect("request");
    assert_eq!(changed.status(), 200);
    assert_eq!(
        stock_in(&a).await,
        7,
        "the replica that changed it, at once"
    );
    assert_eventually_and_then_always(|| stock_in(&b), 7).await;

    // A change by hand, outside the API, is announced by the trigger all the same.
    sqlx::query("UPDATE products SET stock = 3, version = version + 1 WHERE sku = 'CACHE-1'")
        .execute(&a.db)
        .await
        .expect("update by hand");
    assert_eventually_and_then_always(|| stock_in(&a), 3).await;
    assert_eventually_and_then_always(|| stock_in(&b), 3).await;
}

/// `read` returns `expected` within a second (the notification's delay, with room for a busy
/// machine), and keeps returning it.
async fn assert_eventually_and_then_always<F, Fut>(read: F, expected: i64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let seen = read().await;
        if seen == expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {seen}, not {expected}, a second after the change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for _ in 0..20 {
        assert_eq!(read().await, expected, "served stale after serving fresh");
    }
}
