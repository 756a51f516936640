//! The order receipt: an email to the buyer for every `order.placed`, queued in the dispatch
//! transaction, so each event yields one receipt task however often dispatch is retried.

use futures_util::FutureExt as _;
use html_escape::encode_text as html;
use sqlx::PgConnection;

use super::repo::PLACED;
use crate::{
    config::Settings,
    mail::{self, Email},
    outbox::{Event, Listener},
};

pub const SEND_RECEIPT: Listener = Listener {
    name: "orders.receipt",
    run: |conn, event, settings| queue_receipt(conn, event, settings).boxed(),
};

async fn queue_receipt(
    conn: &mut PgConnection,
    event: &Event,
    _settings: &Settings,
) -> Result<(), sqlx::Error> {
    if event.kind != PLACED.name {
        return Ok(());
    }
    let Some(user_id) = event
        .data
        .get("user_id")
        .and_then(|id| id.as_str())
        .and_then(|id| id.parse::<uuid::Uuid>().ok())
    else {
        return Ok(());
    };
    let Some(buyer) = sqlx::query!(
        "SELECT email, display_name FROM users WHERE id = $1",
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        // The account was deleted before dispatch: no one to write to.
        return Ok(());
    };
    mail::enqueue(
        conn,
        receipt(&buyer.email, &buyer.display_name, &event.data),
    )
    .await
}

/// The receipt for an order's event data (see `order.placed`).
fn receipt(to: &str, name: &str, order: &serde_json::Value) -> Email {
    let id = order["id"].as_str().unwrap_or_default();
    let currency = order["currency"].as_str().unwrap_or_default();
    let money = |cents: i64| format!("{}.{:02} {currency}", cents / 100, (cents % 100).abs());
    let lines: Vec<(String, i64, i64)> = order["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|line| {
                    (
                        line["name"].as_str().unwrap_or_default().to_owned(),
                        line["quantity"].as_i64().unwrap_or_default(),
                        line["unit_price_cents"].as_i64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let total = money(order["total_cents"].as_i64().unwrap_or_default());

    let mut text = format!("Hello {name},\n\nthank you for your order {id}.\n\n");
    let mut rows = String::new();
    for (product, quantity, unit) in &lines {
        text.push_str(&format!("  {quantity} x {product} at {}\n", money(*unit)));
        rows.push_str(&format!(
            "<tr><td>{quantity}</td><td>{}</td><td>{}</td></tr>",
            html(product),
            money(*unit)
        ));
    }
    text.push_str(&format!("\nTotal: {total}\n"));
    let html_body = format!(
        "<!doctype html><html><body><p>Hello {},</p><p>thank you for your order \
         <code>{id}</code>.</p><table><thead><tr><th>Qty</th><th>Product</th><th>Unit price</th>\
         </tr></thead><tbody>{rows}</tbody></table><p><strong>Total: {total}</strong></p>\
         </body></html>",
        html(name),
    );
    Email {
        to: to.to_owned(),
        subject: format!("Your order {id}"),
        text,
        html: html_body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receipt_lists_every_line_and_escapes_names_in_html() {
        let order = serde_json::json!({
            "id": "0193a0c4-0000-7000-8000-000000000001",
            "currency": "EUR",
            "total_cents": 2598,
            "items": [{"name": "Mug <b>", "quantity": 2, "unit_price_cents": 1299}],
        });
        let email = receipt("ada@example.com", "Ada & co", &order);
        assert_eq!(email.to, "ada@example.com");
        assert!(email.text.contains("2 x Mug <b> at 12.99 EUR"));
        assert!(email.text.contains("Total: 25.98 EUR"));
        assert!(email.html.contains("Mug &lt;b&gt;"));
        assert!(email.html.contains("Ada &amp; co"));
        assert!(!email.html.contains("<b>"));
    }
}
