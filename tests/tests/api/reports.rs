//! The sales report adds up exactly what was sold, per UTC day, without cancelled orders.

use keel_tests::{assert_json, assert_problem, catalog::NewProduct, spawn_app};
use serde_json::json;

#[tokio::test]
async fn report_totals_match_the_orders_per_day() {
    let app = spawn_app().await;
    let (orders, reports) = (app.orders(), app.reports());
    let admin = app.auth().admin().await.access_token;
    let mut products = Vec::new();
    for (sku, price) in [("R-BOLT", 150), ("R-NUT", 40)] {
        let product = NewProduct::new(sku).priced(price).with_stock(1000);
        products.push(app.catalog().create(&admin, &product).await.id);
    }
    let (bolt, nut) = (products[0].as_str(), products[1].as_str());
    let buyer = app
        .auth()
        .register_and_login("reporter@example.com", "a report test passphrase")
        .await
        .access_token;

    // Yesterday: 2 bolts + 5 nuts = 500. Today: 1 bolt (150), and a cancelled order of 10 nuts.
    let yesterday = orders.place(&buyer, &[(bolt, 2), (nut, 5)]).await;
    sqlx::query("UPDATE orders SET created_at = created_at - interval '1 day' WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&yesterday.id).expect("uuid"))
        .execute(&app.db)
        .await
        .expect("backdate");
    orders.place(&buyer, &[(bolt, 1)]).await;
    let cancelled = orders.place(&buyer, &[(nut, 10)]).await;
    orders.cancel(&buyer, &cancelled.id).await;

    let today = time::OffsetDateTime::now_utc().date();
    let from = today.previous_day().expect("a yesterday");
    let report = assert_json(reports.sales(&admin, from, today).await, 200).await;
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

    assert_problem(reports.sales(&buyer, from, today).await, 403).await;
    assert_problem(reports.sales(&admin, today, from).await, 422).await;

    // A range covers at most 366 days, both ends included: a leap year, not a day more.
    let longest = today - time::Duration::days(365);
    assert_json(reports.sales(&admin, longest, today).await, 200).await;
    let too_long = longest - time::Duration::days(1);
    let problem = assert_problem(reports.sales(&admin, too_long, today).await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "to", "{problem}");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("366 days"),
        "{problem}"
    );
}
