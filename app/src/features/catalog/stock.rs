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
pub async fn take(tx: &mut PgConnection, quantities: &[(Uuid, i32)]) -> Result<(), sqlx::Error> {
    adjust(tx, quantities.iter().map(|(id, quantity)| (*id, -quantity))).await
}

/// Puts each `(product, quantity)` back into stock, e.g. for a cancelled order.
pub async fn put_back(
    tx: &mut PgConnection,
    quantities: &[(Uuid, i32)],
) -> Result<(), sqlx::Error> {
    adjust(tx, quantities.iter().copied()).await
}

async fn adjust(
    tx: &mut PgConnection,
    deltas: impl Iterator<Item = (Uuid, i32)>,
) -> Result<(), sqlx::Error> {
    let (ids, deltas): (Vec<Uuid>, Vec<i32>) = deltas.unzip();
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
