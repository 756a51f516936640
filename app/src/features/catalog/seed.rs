//! `keel seed`: a demo catalog of fasteners for local runs, so Swagger UI has something to show.
//! Idempotent: products whose sku exists are left alone.

use futures_util::{FutureExt as _, future::BoxFuture};
use sqlx::PgPool;
use uuid::Uuid;

const MATERIALS: &[(&str, &str, i64)] = &[
    ("ST", "Steel", 100),
    ("SS", "Stainless steel", 180),
    ("BR", "Brass", 240),
    ("ZP", "Zinc-plated steel", 120),
];
const ITEMS: &[(&str, &str, &str, i64)] = &[
    (
        "HB",
        "hex bolt",
        "Fully threaded hex head bolt, DIN 933.",
        35,
    ),
    ("HN", "hex nut", "Hex nut, DIN 934.", 8),
    ("FW", "flat washer", "Flat washer, DIN 125.", 3),
    (
        "MS",
        "machine screw",
        "Pan head Phillips machine screw, ISO 7045.",
        12,
    ),
    ("LN", "lock nut", "Nylon insert lock nut, DIN 985.", 15),
];
const SIZES: &[(&str, i64)] = &[("M4", 1), ("M6", 2), ("M8", 3)];

/// The catalog's [`crate::features::Seed`].
pub fn load(db: &PgPool) -> BoxFuture<'_, anyhow::Result<String>> {
    async move {
        let inserted = insert(db).await?;
        Ok(format!("{inserted} demo products added"))
    }
    .boxed()
}

/// Inserts the demo catalog; returns how many products were new.
async fn insert(db: &PgPool) -> Result<u64, sqlx::Error> {
    let mut inserted = 0;
    for (material_code, material, material_factor) in MATERIALS {
        for (item_code, item, description, base_cents) in ITEMS {
            for (size, size_factor) in SIZES {
                let sku = format!("{item_code}-{material_code}-{size}");
                let name = format!("{material} {item} {size}");
                let price_cents = base_cents * material_factor * size_factor / 100 + 5;
                // Deterministic but varied stock, so demo orders can run some items out.
                let stock = i32::try_from((price_cents * 7) % 480 + 20).unwrap_or(100);
                inserted += sqlx::query!(
                    r#"INSERT INTO products (id, sku, name, description, price_cents, currency, stock)
                       VALUES ($1, $2, $3, $4, $5, 'EUR', $6)
                       ON CONFLICT (sku) DO NOTHING"#,
                    Uuid::now_v7(),
                    sku,
                    name,
                    *description,
                    price_cents,
                    stock,
                )
                .execute(db)
                .await?
                .rows_affected();
            }
        }
    }
    Ok(inserted)
}
