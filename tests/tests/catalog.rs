//! The catalog, black-box: admin enforcement, validation, HTTP caching, optimistic locking,
//! and pagination that stays correct while rows are being added.

use std::collections::HashSet;

use keel_tests::{TestApp, admin_token, assert_problem, register_and_login, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

fn product(sku: &str, name: &str) -> Value {
    json!({"sku": sku, "name": name, "description": "", "price_cents": 1999, "currency": "EUR", "stock": 10})
}

async fn create(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/products"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn create_ok(app: &TestApp, token: &str, sku: &str, name: &str) -> Value {
    let response = create(app, token, &product(sku, name)).await;
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    response.json().await.expect("product")
}

async fn page(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/products?{query}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("page")
}

#[tokio::test]
async fn only_admins_manage_products() {
    let app = spawn_app().await;
    let member = register_and_login(&app, "member@example.com", "a member passphrase").await;
    let member = member["access_token"].as_str().expect("token").to_owned();
    assert_problem(create(&app, &member, &product("SKU-1", "Bolt")).await, 403).await;
    assert_problem(
        app.client
            .post(app.url("/api/v1/products"))
            .json(&product("SKU-1", "Bolt"))
            .send()
            .await
            .expect("request"),
        401,
    )
    .await;

    let admin = admin_token(&app).await;
    let created = create(&app, &admin, &product("SKU-1", "Bolt")).await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["etag"], "\"1\"");
    let body: Value = created.json().await.expect("json");
    let path = format!("/api/v1/products/{}", body["id"].as_str().expect("id"));

    let delete_as_member = app.send_as(Method::DELETE, &path, &member).await;
    assert_problem(delete_as_member, 403).await;
    let deleted = app.send_as(Method::DELETE, &path, &admin).await;
    assert_eq!(deleted.status(), 204);
    assert_problem(app.get(&path).await, 404).await;
}

#[tokio::test]
async fn invalid_and_duplicate_products_are_refused() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    create_ok(&app, &admin, "DUP-1", "First").await;
    assert_problem(create(&app, &admin, &product("DUP-1", "Second")).await, 409).await;

    let mut bad = product("OK-2", "Fine");
    bad["currency"] = json!("XYZ");
    bad["price_cents"] = json!(0);
    let body = assert_problem(create(&app, &admin, &bad).await, 422).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(fields.contains(&"/price_cents"), "{body}");

    let mut unknown_currency = product("OK-3", "Fine");
    unknown_currency["currency"] = json!("XYZ");
    let body = assert_problem(create(&app, &admin, &unknown_currency).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "/currency", "{body}");
}

#[tokio::test]
async fn etags_give_304s_and_if_match_prevents_lost_updates() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let created = create_ok(&app, &admin, "ETAG-1", "Washer").await;
    let path = format!("/api/v1/products/{}", created["id"].as_str().expect("id"));

    let fetched = app.get(&path).await;
    assert_eq!(fetched.headers()["cache-control"], "public, no-cache");
    let etag = fetched.headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let revalidated = app
        .client
        .get(app.url(&path))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("request");
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

    // A second writer still holding the old ETag would overwrite the first: refused.
    assert_problem(
        patch(Some(&etag), json!({"stock": 99}))
            .await
            .expect("request"),
        412,
    )
    .await;
    let stale_check = app
        .client
        .get(app.url(&path))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(stale_check.status(), 200, "an old ETag must not get 304");
}

#[tokio::test]
async fn search_matches_words_and_prefixes() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    create_ok(&app, &admin, "B-M8", "Steel bolt M8").await;
    create_ok(&app, &admin, "N-M8", "Steel nut M8").await;
    create_ok(&app, &admin, "W-10", "Rubber washer").await;

    let names = |page: &Value| -> HashSet<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(names(&page(&app, "q=steel").await).len(), 2);
    assert_eq!(
        names(&page(&app, "q=steel%20bol").await),
        HashSet::from(["Steel bolt M8".to_owned()])
    );
    assert_eq!(
        names(&page(&app, "q=wash").await),
        HashSet::from(["Rubber washer".to_owned()])
    );
    assert!(names(&page(&app, "q=titanium").await).is_empty());
}

#[tokio::test]
async fn pages_never_repeat_a_row_while_rows_are_inserted() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    for n in 0..25 {
        create_ok(&app, &admin, &format!("P-{n:03}"), &format!("Part {n}")).await;
    }
    let mut seen = HashSet::new();
    let mut query = "limit=7".to_owned();
    let mut pages = 0;
    loop {
        let current = page(&app, &query).await;
        // Someone adds products between every two page requests.
        create_ok(
            &app,
            &admin,
            &format!("NEW-{pages:03}"),
            "Inserted meanwhile",
        )
        .await;
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
    let environment = keel_tests::test_environment(&app.database_url);
    for _ in 0..2 {
        let (code, _, stderr) = keel_tests::run_keel(&["seed"], &environment);
        assert_eq!(code, Some(0), "{stderr}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(count, 60);
    let found = page(&app, "q=stainless%20hex%20bolt").await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(3), "{found}");
}
