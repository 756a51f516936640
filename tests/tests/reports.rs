//! The sales report adds up exactly what was sold, per UTC day, without cancelled orders.

use keel_tests::{admin_token, assert_problem, register_and_login, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn report_totals_match_the_orders_per_day() {
    let app = spawn_app().await;
    let admin = admin_token(&app).await;
    let mut products = Vec::new();
    for (sku, price) in [("R-BOLT", 150), ("R-NUT", 40)] {
        let created: Value = app
            .client
            .post(app.url("/api/v1/products"))
            .bearer_auth(&admin)
            .json(&json!({"sku": sku, "name": sku, "price_cents": price, "currency": "EUR", "stock": 1000}))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        products.push(created["id"].as_str().expect("id").to_owned());
    }
    let buyer = register_and_login(&app, "reporter@example.com", "a report test passphrase").await;
    let buyer = buyer["access_token"].as_str().expect("token").to_owned();
    let place = |items: Value| {
        app.client
            .post(app.url("/api/v1/orders"))
            .bearer_auth(&buyer)
            .json(&json!({ "items": items }))
            .send()
    };
    let id =
        |order: &Value| uuid::Uuid::parse_str(order["id"].as_str().expect("id")).expect("uuid");

    // Yesterday: 2 bolts + 5 nuts = 500. Today: 1 bolt (150), and a cancelled order of 10 nuts.
    let yesterday: Value = place(json!([{"product_id": products[0], "quantity": 2}, {"product_id": products[1], "quantity": 5}]))
        .await.expect("request").json().await.expect("json");
    sqlx::query("UPDATE orders SET created_at = created_at - interval '1 day' WHERE id = $1")
        .bind(id(&yesterday))
        .execute(&app.db)
        .await
        .expect("backdate");
    place(json!([{"product_id": products[0], "quantity": 1}]))
        .await
        .expect("request");
    let cancelled: Value = place(json!([{"product_id": products[1], "quantity": 10}]))
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let path = format!("/api/v1/orders/{}/cancel", id(&cancelled));
    app.client
        .post(app.url(&path))
        .bearer_auth(&buyer)
        .send()
        .await
        .expect("cancel");

    let today = time::OffsetDateTime::now_utc().date();
    let from = today.previous_day().expect("a yesterday");
    let report: Value = app
        .send_as(
            Method::GET,
            &format!("/api/v1/reports/sales?from={from}&to={today}"),
            &admin,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        report["days"],
        json!([
            {"date": from.to_string(), "currency": "EUR", "orders": 1, "revenue_cents": 500},
            {"date": today.to_string(), "currency": "EUR", "orders": 1, "revenue_cents": 150},
        ]),
        "{report}"
    );
    let top: Vec<(String, i64)> = report["top_products"]
        .as_array()
        .expect("top")
        .iter()
        .map(|p| {
            (
                p["sku"].as_str().unwrap_or_default().to_owned(),
                p["units"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(top, vec![("R-NUT".to_owned(), 5), ("R-BOLT".to_owned(), 3)]);

    let as_member = app
        .send_as(
            Method::GET,
            &format!("/api/v1/reports/sales?from={from}&to={today}"),
            &buyer,
        )
        .await;
    assert_problem(as_member, 403).await;
    let backwards = app
        .send_as(
            Method::GET,
            &format!("/api/v1/reports/sales?from={today}&to={from}"),
            &admin,
        )
        .await;
    assert_problem(backwards, 422).await;
}
