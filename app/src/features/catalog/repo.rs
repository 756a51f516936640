//! SQL for products.

use sqlx::PgPool;
use uuid::Uuid;

use super::model::{Currency, NewProduct, Product, ProductPatch};
use crate::db::ConstraintExt as _;

/// Why a product could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    #[error("a product with this sku already exists")]
    DuplicateSku,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn insert(db: &PgPool, new: &NewProduct) -> Result<Product, ProductError> {
    sqlx::query_as!(
        Product,
        r#"INSERT INTO products (id, sku, name, description, price_cents, currency, stock)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           RETURNING id, sku, name, description, price_cents, currency, stock, version,
                     created_at, updated_at"#,
        Uuid::now_v7(),
        new.sku.as_str(),
        new.name.as_str(),
        new.description.as_str(),
        new.price_cents,
        new.currency.code(),
        new.stock,
    )
    .fetch_one(db)
    .await
    .on_constraint("products_sku_key", || ProductError::DuplicateSku)
}

pub async fn find(db: &PgPool, id: Uuid) -> Result<Option<Product>, sqlx::Error> {
    sqlx::query_as!(
        Product,
        r#"SELECT id, sku, name, description, price_cents, currency, stock, version,
                  created_at, updated_at
           FROM products WHERE id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
}

/// One page, newest first, strictly after `after` in id order. Ids are UUIDv7, so id order is
/// creation order, and a page boundary is a fixed point: rows inserted while a client walks the
/// pages land before it and can never shift, repeat or hide the rows still to come.
pub async fn page(
    db: &PgPool,
    search: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Product>, sqlx::Error> {
    match search {
        Some(search) => search_page(db, search, after, limit).await,
        None => {
            sqlx::query_as!(
                Product,
                r#"SELECT id, sku, name, description, price_cents, currency, stock, version,
                          created_at, updated_at
                   FROM products
                   WHERE ($1::uuid IS NULL OR id < $1)
                   ORDER BY id DESC
                   LIMIT $2"#,
                after,
                limit,
            )
            .fetch_all(db)
            .await
        }
    }
}

/// Newest rows [`search_page`] checks in id order before it turns to the full-text index.
const SEARCH_WINDOW: i64 = 2000;

/// [`page`] of the products matching the `to_tsquery` expression `search`.
///
/// The GIN index finds matches but cannot return them in id order: a broad term ("brass" in a
/// catalog of fasteners) made PostgreSQL collect and sort every match, 62,500 of a million
/// rows, for 20 of them (140–200 ms). So the newest [`SEARCH_WINDOW`] rows are walked in id
/// order first, lazily, stopping at `limit` matches: a term matching one row in a hundred or
/// more is answered from a few hundred rows, whatever the size of the catalog. Only a rarer
/// term falls through to the index, for the rows older than the window, where it has few
/// matches to sort. The index query sits behind `OFFSET 0` with nothing but the match in it:
/// given the window's edge as well, PostgreSQL (which cannot estimate either condition) walked
/// the primary key past a million rows for a term that matched none (300 ms instead of 2).
async fn search_page(
    db: &PgPool,
    search: &str,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Product>, sqlx::Error> {
    sqlx::query_as!(
        Product,
        r#"WITH recent AS MATERIALIZED (
               SELECT id, search FROM products
               WHERE ($1::uuid IS NULL OR id < $1)
               ORDER BY id DESC
               LIMIT $4
           ), recent_hits AS (
               SELECT id FROM recent
               WHERE search @@ to_tsquery('simple', $2)
               ORDER BY id DESC
               LIMIT $3
           ), older_hits AS (
               SELECT id FROM (
                   SELECT id FROM products
                   WHERE (SELECT count(*) FROM recent_hits) < $3
                     AND (SELECT count(*) FROM recent) = $4
                     AND search @@ to_tsquery('simple', $2)
                   OFFSET 0
               ) AS matches
               WHERE id < (SELECT id FROM recent ORDER BY id LIMIT 1)
               ORDER BY id DESC
               LIMIT $3
           )
           SELECT id, sku, name, description, price_cents, currency, stock, version,
                  created_at, updated_at
           FROM products
           WHERE id IN (SELECT id FROM recent_hits UNION ALL SELECT id FROM older_hits)
           ORDER BY id DESC
           LIMIT $3"#,
        after,
        search,
        limit,
        SEARCH_WINDOW,
    )
    .fetch_all(db)
    .await
}

pub enum Update {
    Updated(Product),
    /// The product exists at another version than the caller's If-Match.
    Stale,
    NotFound,
}

/// Applies `patch` only if the product is still at `expected_version`: the optimistic lock.
pub async fn update(
    db: &PgPool,
    id: Uuid,
    expected_version: i32,
    patch: &ProductPatch,
) -> Result<Update, ProductError> {
    let updated = sqlx::query_as!(
        Product,
        r#"UPDATE products SET
             sku = coalesce($3, sku),
             name = coalesce($4, name),
             description = coalesce($5, description),
             price_cents = coalesce($6, price_cents),
             currency = coalesce($7, currency),
             stock = coalesce($8, stock),
             version = version + 1
           WHERE id = $1 AND version = $2
           RETURNING id, sku, name, description, price_cents, currency, stock, version,
                     created_at, updated_at"#,
        id,
        expected_version,
        patch.sku.as_ref().map(|sku| sku.as_str()),
        patch.name.as_ref().map(|name| name.as_str()),
        patch.description.as_ref().map(|text| text.as_str()),
        patch.price_cents,
        patch.currency.map(Currency::code),
        patch.stock,
    )
    .fetch_optional(db)
    .await
    .on_constraint("products_sku_key", || ProductError::DuplicateSku)?;
    if let Some(product) = updated {
        return Ok(Update::Updated(product));
    }
    Ok(match find(db, id).await? {
        Some(_) => Update::Stale,
        None => Update::NotFound,
    })
}

pub async fn delete(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!("DELETE FROM products WHERE id = $1", id)
        .execute(db)
        .await?;
    Ok(deleted.rows_affected() > 0)
}
