//! SQL for orders: stock reservation, status changes, idempotency records.

use std::collections::{BTreeMap, HashMap};

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::{Order, OrderLine, OrderStatus};
use crate::error::{ApiError, FieldError};

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

/// Places an order inside `tx`: all lines or none.
///
/// The product rows are locked with `FOR UPDATE` in id order. Every order locks in that same
/// order, so two orders naming the same products in different orders queue behind each other
/// instead of deadlocking; and with the rows locked, the stock checked is the stock written.
/// The `stock >= 0` CHECK is the last line of defence, not the mechanism.
pub async fn place(
    tx: &mut PgConnection,
    user_id: Uuid,
    requested: &[(Uuid, i32)],
) -> Result<Order, ApiError> {
    // Lines naming one product are added together; BTreeMap keeps them in lock order.
    let mut quantities: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (product_id, quantity) in requested {
        *quantities.entry(*product_id).or_default() += i64::from(*quantity);
    }
    let ids: Vec<Uuid> = quantities.keys().copied().collect();
    let products = sqlx::query!(
        r#"SELECT id, sku, name, price_cents, currency, stock
           FROM products WHERE id = ANY($1)
           ORDER BY id
           FOR UPDATE"#,
        &ids,
    )
    .fetch_all(&mut *tx)
    .await?;
    let by_id: HashMap<Uuid, _> = products.iter().map(|p| (p.id, p)).collect();

    let missing: Vec<FieldError> = requested
        .iter()
        .enumerate()
        .filter(|(_, (id, _))| !by_id.contains_key(id))
        .map(|(index, _)| FieldError::new(format!("/items/{index}/product_id"), "no such product"))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::Validation(missing));
    }
    let currency = products[0].currency.clone();
    if products.iter().any(|p| p.currency != currency) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "/items",
            "all products of one order must share a currency",
        )]));
    }

    let mut total: i64 = 0;
    let mut quantity_column = Vec::with_capacity(ids.len());
    for (id, quantity) in &quantities {
        let product = by_id[id];
        if i64::from(product.stock) < *quantity {
            return Err(ApiError::Conflict(format!(
                "Insufficient stock for product {} ({}): {} requested, {} available.",
                product.id, product.sku, quantity, product.stock
            )));
        }
        let line_total = product.price_cents.checked_mul(*quantity);
        total = line_total
            .and_then(|line| total.checked_add(line))
            .ok_or_else(|| {
                ApiError::Validation(vec![FieldError::new(
                    "/items",
                    "the order total is too large",
                )])
            })?;
        quantity_column.push(i32::try_from(*quantity).unwrap_or(i32::MAX));
    }

    sqlx::query!(
        r#"UPDATE products SET stock = products.stock - x.quantity, version = products.version + 1
           FROM unnest($1::uuid[], $2::integer[]) AS x(id, quantity)
           WHERE products.id = x.id"#,
        &ids,
        &quantity_column,
    )
    .execute(&mut *tx)
    .await?;

    let order_id = Uuid::now_v7();
    let created_at = sqlx::query_scalar!(
        r#"INSERT INTO orders (id, user_id, currency, total_cents) VALUES ($1, $2, $3, $4)
           RETURNING created_at"#,
        order_id,
        user_id,
        currency,
        total,
    )
    .fetch_one(&mut *tx)
    .await?;

    let lines: Vec<OrderLine> = ids
        .iter()
        .zip(&quantity_column)
        .map(|(id, quantity)| {
            let product = by_id[id];
            OrderLine {
                product_id: Some(*id),
                sku: product.sku.clone(),
                name: product.name.clone(),
                quantity: *quantity,
                unit_price_cents: product.price_cents,
            }
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
        &quantity_column,
        &lines.iter().map(|l| l.unit_price_cents).collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;

    Ok(Order {
        id: order_id,
        status: OrderStatus::Placed,
        currency,
        total_cents: total,
        items: lines,
        created_at,
    })
}

/// Orders with their lines. `owner` restricts to one user's orders.
async fn load(db: &PgPool, rows: Vec<OrderRow>) -> Result<Vec<Order>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let lines = sqlx::query_as!(
        LineRow,
        r#"SELECT order_id, product_id, sku, name, quantity, unit_price_cents
           FROM order_lines WHERE order_id = ANY($1) ORDER BY order_id, line_no"#,
        &ids,
    )
    .fetch_all(db)
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
    let rows = sqlx::query_as!(
        OrderRow,
        r#"SELECT id, status AS "status: OrderStatus", currency, total_cents, created_at FROM orders
           WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)"#,
        id,
        viewer,
    )
    .fetch_all(db)
    .await?;
    Ok(load(db, rows).await?.pop())
}

/// A page of `user_id`'s orders, newest first, strictly after `after`.
pub async fn page(
    db: &PgPool,
    user_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Order>, sqlx::Error> {
    let rows = sqlx::query_as!(
        OrderRow,
        r#"SELECT id, status AS "status: OrderStatus", currency, total_cents, created_at FROM orders
           WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2)
           ORDER BY id DESC LIMIT $3"#,
        user_id,
        after,
        limit,
    )
    .fetch_all(db)
    .await?;
    load(db, rows).await
}

/// Moves a placed order to `cancelled` (restocking it) or `fulfilled`, in one transaction.
/// Restocking locks products in id order, like placing does.
pub async fn transition(
    db: &PgPool,
    id: Uuid,
    viewer: Option<Uuid>,
    to: OrderStatus,
) -> Result<Option<Order>, ApiError> {
    let mut tx = db.begin().await?;
    let status = sqlx::query_scalar!(
        r#"SELECT status AS "status: OrderStatus" FROM orders
           WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2) FOR UPDATE"#,
        id,
        viewer,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(status) = status else {
        return Ok(None);
    };
    if status != OrderStatus::Placed {
        return Err(ApiError::Conflict(format!(
            "The order is {status}; only placed orders can change."
        )));
    }
    if to == OrderStatus::Cancelled {
        sqlx::query!(
            r#"SELECT p.id FROM products p JOIN order_lines l ON l.product_id = p.id
               WHERE l.order_id = $1 ORDER BY p.id FOR UPDATE OF p"#,
            id
        )
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query!(
            r#"UPDATE products SET stock = products.stock + l.quantity, version = products.version + 1
               FROM order_lines l WHERE l.order_id = $1 AND l.product_id = products.id"#,
            id
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query!(
        "UPDATE orders SET status = $2 WHERE id = $1",
        id,
        to as OrderStatus
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(find(db, id, None).await?)
}

/// What an Idempotency-Key already stands for.
pub enum KeyState {
    /// First use: the caller's transaction now holds the key.
    Claimed,
    /// Used before with this body: here is the response to replay. Only successes (201) are
    /// stored; a failed attempt rolls its claim back, so a retry simply tries again.
    Replay { response: serde_json::Value },
    /// Used before with another body.
    Mismatch,
}

/// Claims `key` for `user_id` inside `tx`. A concurrent request with the same key blocks on
/// the insert until this transaction ends, then sees its outcome: the stored response if it
/// committed, or a free key if it rolled back. Records older than 24 h are forgotten.
pub async fn claim_key(
    tx: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    request_hash: &[u8],
) -> Result<KeyState, sqlx::Error> {
    sqlx::query!(
        r#"DELETE FROM idempotency_keys
           WHERE user_id = $1 AND key = $2 AND created_at < now() - interval '24 hours'"#,
        user_id,
        key,
    )
    .execute(&mut *tx)
    .await?;
    let claimed = sqlx::query!(
        r#"INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
           ON CONFLICT (user_id, key) DO NOTHING"#,
        user_id,
        key,
        request_hash,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if claimed {
        return Ok(KeyState::Claimed);
    }
    let stored = sqlx::query!(
        r#"SELECT request_hash, status_code, response FROM idempotency_keys
           WHERE user_id = $1 AND key = $2"#,
        user_id,
        key,
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(
        match (
            stored.request_hash == request_hash,
            stored.status_code,
            stored.response,
        ) {
            (false, _, _) => KeyState::Mismatch,
            (true, Some(_), Some(response)) => KeyState::Replay { response },
            // Only committed claims are visible, and they always carry a response.
            (true, _, _) => KeyState::Mismatch,
        },
    )
}

pub async fn store_response(
    tx: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    status: i16,
    response: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"UPDATE idempotency_keys SET status_code = $3, response = $4
           WHERE user_id = $1 AND key = $2"#,
        user_id,
        key,
        status,
        response,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
