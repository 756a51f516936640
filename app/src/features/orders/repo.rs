//! SQL for orders: placing (stock through catalog's `stock` module) and status changes.
//! Functions that must run inside a transaction take the caller's
//! `&mut PgConnection`; the handler opens and commits it.

use std::collections::HashMap;

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    model::{Order, OrderLine, OrderStatus},
    plan::{self, PlaceError},
};
use crate::{
    features::catalog::stock,
    outbox::{self, EventType},
};
use poem_openapi::types::ToJSON as _;

struct OrderRow {
    id: Uuid,
    status: OrderStatus,
    currency: String,
    total_cents: i64,
    created_at: OffsetDateTime,
}

struct LineRow {
    order_id: Uuid,
    product_id: Option<Uuid>,
    sku: String,
    name: String,
    quantity: i32,
    unit_price_cents: i64,
}

/// Why placing or changing an order failed: a rule of the order, or the database.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error(transparent)]
    Rejected(#[from] PlaceError),
    /// Only placed orders can be cancelled or fulfilled.
    #[error("the order is {0}; only placed orders can change")]
    NotPlaced(OrderStatus),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Places an order inside `tx`, the caller's transaction: all lines or none. Lock the products
/// (catalog, in id order) → [`plan::plan`] the order against the locked rows → take the stock
/// (catalog) and write the order and its lines.
///
/// The order publishes `order.placed` (and catalog `product.low_stock` for products it leaves
/// below `low_stock_threshold`) in the same transaction.
pub async fn place(
    tx: &mut PgConnection,
    user_id: Uuid,
    requested: &[(Uuid, i32)],
    low_stock_threshold: i32,
) -> Result<Order, OrderError> {
    let locked = stock::lock(tx, &plan::products_to_lock(requested)).await?;
    let plan = plan::plan(requested, &locked)?;
    stock::take(tx, &plan.quantities(), low_stock_threshold).await?;

    let order_id = Uuid::now_v7();
    let created_at = sqlx::query_scalar!(
        r#"INSERT INTO orders (id, user_id, currency, total_cents) VALUES ($1, $2, $3, $4)
           RETURNING created_at"#,
        order_id,
        user_id,
        plan.currency,
        plan.total_cents,
    )
    .fetch_one(&mut *tx)
    .await?;

    let ids: Vec<Uuid> = plan.lines.iter().map(|line| line.product_id).collect();
    let lines: Vec<OrderLine> = plan
        .lines
        .into_iter()
        .map(|line| OrderLine {
            product_id: Some(line.product_id),
            sku: line.sku,
            name: line.name,
            quantity: line.quantity,
            unit_price_cents: line.unit_price_cents,
        })
        .collect();
    let line_numbers: Vec<i32> = (1..).take(lines.len()).collect();
    sqlx::query!(
        r#"INSERT INTO order_lines (order_id, line_no, product_id, sku, name, quantity, unit_price_cents)
           SELECT $1, * FROM unnest($2::integer[], $3::uuid[], $4::text[], $5::text[],
                                    $6::integer[], $7::bigint[])"#,
        order_id,
        &line_numbers,
        &ids,
        &lines.iter().map(|l| l.sku.clone()).collect::<Vec<_>>(),
        &lines.iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
        &lines.iter().map(|l| l.quantity).collect::<Vec<_>>(),
        &lines.iter().map(|l| l.unit_price_cents).collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;

    let order = Order {
        id: order_id,
        status: OrderStatus::Placed,
        currency: plan.currency,
        total_cents: plan.total_cents,
        items: lines,
        created_at,
    };
    outbox::publish(tx, PLACED.name, event_data(&order, user_id)).await?;
    Ok(order)
}

pub const PLACED: EventType = EventType {
    name: "order.placed",
    description: "An order was placed and its stock reserved. data: the order as \
        GET /orders/{id} returns it, plus user_id.",
};
pub const CANCELLED: EventType = EventType {
    name: "order.cancelled",
    description: "A placed order was cancelled and restocked. data: the order, plus user_id.",
};
pub const FULFILLED: EventType = EventType {
    name: "order.fulfilled",
    description: "A placed order was marked fulfilled. data: the order, plus user_id.",
};

/// An event's `data`: the order as the API shows it, and whose it is.
fn event_data(order: &Order, user_id: Uuid) -> serde_json::Value {
    let mut data = order.to_json().unwrap_or_default();
    if let Some(fields) = data.as_object_mut() {
        fields.insert("user_id".to_owned(), serde_json::json!(user_id));
    }
    data
}

/// Orders with their lines.
async fn load(conn: &mut PgConnection, rows: Vec<OrderRow>) -> Result<Vec<Order>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let lines = sqlx::query_as!(
        LineRow,
        r#"SELECT order_id, product_id, sku, name, quantity, unit_price_cents
           FROM order_lines WHERE order_id = ANY($1) ORDER BY order_id, line_no"#,
        &ids,
    )
    .fetch_all(conn)
    .await?;
    let mut by_order: HashMap<Uuid, Vec<OrderLine>> = HashMap::new();
    for line in lines {
        by_order.entry(line.order_id).or_default().push(OrderLine {
            product_id: line.product_id,
            sku: line.sku,
            name: line.name,
            quantity: line.quantity,
            unit_price_cents: line.unit_price_cents,
        });
    }
    Ok(rows
        .into_iter()
        .map(|row| Order {
            id: row.id,
            status: row.status,
            currency: row.currency,
            total_cents: row.total_cents,
            items: by_order.remove(&row.id).unwrap_or_default(),
            created_at: row.created_at,
        })
        .collect())
}

/// One order, if it exists and `viewer` may see it (its owner, or anyone when `viewer` is
/// `None`, i.e. an admin). Others' orders are indistinguishable from missing ones.
pub async fn find(
    db: &PgPool,
    id: Uuid,
    viewer: Option<Uuid>,
) -> Result<Option<Order>, sqlx::Error> {
    find_on(&mut *db.acquire().await?, id, viewer).await
}

async fn find_on(
    conn: &mut PgConnection,
    id: Uuid,
    viewer: Option<Uuid>,
) -> Result<Option<Order>, sqlx::Error> {
    let rows = sqlx::query_as!(
        OrderRow,
        r#"SELECT id, status AS "status: OrderStatus", currency, total_cents, created_at FROM orders
           WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)"#,
        id,
        viewer,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(load(conn, rows).await?.pop())
}

/// A page of `user_id`'s orders, newest first, strictly after `after`.
pub async fn page(
    db: &PgPool,
    user_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Order>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    let rows = sqlx::query_as!(
        OrderRow,
        r#"SELECT id, status AS "status: OrderStatus", currency, total_cents, created_at FROM orders
           WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2)
           ORDER BY id DESC LIMIT $3"#,
        user_id,
        after,
        limit,
    )
    .fetch_all(&mut *conn)
    .await?;
    load(&mut conn, rows).await
}

/// Moves a placed order to `cancelled` (putting its stock back) or `fulfilled`, inside `tx`,
/// the caller's transaction, and publishes `order.cancelled` or `order.fulfilled` there. `None`
/// when there is no such order that `viewer` may change.
pub async fn transition(
    tx: &mut PgConnection,
    id: Uuid,
    viewer: Option<Uuid>,
    to: OrderStatus,
) -> Result<Option<()>, OrderError> {
    let current = sqlx::query!(
        r#"SELECT status AS "status: OrderStatus", user_id FROM orders
           WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2) FOR UPDATE"#,
        id,
        viewer,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(current) = current else {
        return Ok(None);
    };
    let status = current.status;
    if status != OrderStatus::Placed {
        return Err(OrderError::NotPlaced(status));
    }
    if to == OrderStatus::Cancelled {
        let lines = sqlx::query!(
            r#"SELECT product_id AS "product_id!", quantity FROM order_lines
               WHERE order_id = $1 AND product_id IS NOT NULL ORDER BY product_id"#,
            id
        )
        .fetch_all(&mut *tx)
        .await?;
        let quantities: Vec<(Uuid, i32)> =
            lines.iter().map(|l| (l.product_id, l.quantity)).collect();
        // Locked in id order, like placing, so a cancel and an order never deadlock.
        let ids: Vec<Uuid> = quantities.iter().map(|(id, _)| *id).collect();
        stock::lock(tx, &ids).await?;
        stock::put_back(tx, &quantities).await?;
    }
    sqlx::query!(
        "UPDATE orders SET status = $2 WHERE id = $1",
        id,
        to as OrderStatus
    )
    .execute(&mut *tx)
    .await?;
    let event = if to == OrderStatus::Cancelled {
        &CANCELLED
    } else {
        &FULFILLED
    };
    if let Some(order) = find_on(tx, id, None).await? {
        outbox::publish(tx, event.name, event_data(&order, current.user_id)).await?;
    }
    Ok(Some(()))
}
