//! What other features may do with a product's stock. Catalog owns the `products` table: every
//! write to it from outside this folder goes through these functions, so catalog's invariant —
//! each change bumps `version`, so an ETag goes stale with the stock it showed — is kept here.
//! Each function runs in the caller's transaction, which holds the locks until it ends.

use sqlx::PgConnection;
use uuid::Uuid;

/// A product as a stock change sees it, locked until the caller's transaction ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedProduct {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
    pub stock: i32,
}

/// Locks the products `ids` names (`FOR UPDATE`), in id order, and returns them in that order;
/// ids with no product are absent. Every caller locks in id order, so two transactions naming
/// the same products queue behind each other instead of deadlocking, and the stock read is the
/// stock that will be written.
pub async fn lock(tx: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<LockedProduct>, sqlx::Error> {
    sqlx::query_as!(
        LockedProduct,
        r#"SELECT id, sku, name, price_cents, currency, stock
           FROM products WHERE id = ANY($1)
           ORDER BY id
           FOR UPDATE"#,
        ids,
    )
    .fetch_all(tx)
    .await
}

/// Takes each `(product, quantity)` out of stock. Lock the products first and check the stock
/// against the locked rows; `CHECK (stock >= 0)` is the last line of defence, not the mechanism.
///
/// A product this takes from at or above `low_stock_threshold` to below it publishes
/// `product.low_stock`, in the same transaction.
pub async fn take(
    tx: &mut PgConnection,
    quantities: &[(Uuid, i32)],
    low_stock_threshold: i32,
) -> Result<(), sqlx::Error> {
    let (ids, taken): (Vec<Uuid>, Vec<i32>) = quantities.iter().copied().unzip();
    let crossed = sqlx::query!(
        r#"UPDATE products SET stock = products.stock - x.taken, version = products.version + 1
           FROM unnest($1::uuid[], $2::integer[]) AS x(id, taken)
           WHERE products.id = x.id
           RETURNING products.id, products.sku, products.name, products.stock,
                     products.stock + x.taken AS "before!""#,
        &ids,
        &taken,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .filter(|row| row.stock < low_stock_threshold && row.before >= low_stock_threshold);
    for product in crossed {
        crate::outbox::publish(
            tx,
            LOW_STOCK.name,
            serde_json::json!({
                "product_id": product.id,
                "sku": product.sku,
                "name": product.name,
                "stock": product.stock,
                "threshold": low_stock_threshold,
            }),
        )
        .await?;
    }
    Ok(())
}

pub const LOW_STOCK: crate::outbox::EventType = crate::outbox::EventType {
    name: "product.low_stock",
    description: "An order left a product's stock below catalog.low_stock_threshold. \
        data: product_id, sku, name, stock (now), threshold.",
};

/// Puts each `(product, quantity)` back into stock, e.g. for a cancelled order.
pub async fn put_back(
    tx: &mut PgConnection,
    quantities: &[(Uuid, i32)],
) -> Result<(), sqlx::Error> {
    let (ids, deltas): (Vec<Uuid>, Vec<i32>) = quantities.iter().copied().unzip();
    sqlx::query!(
        r#"UPDATE products SET stock = products.stock + x.delta, version = products.version + 1
           FROM unnest($1::uuid[], $2::integer[]) AS x(id, delta)
           WHERE products.id = x.id"#,
        &ids,
        &deltas,
    )
    .execute(tx)
    .await?;
    Ok(())
}
