//! The rules of placing an order, as a pure function of what was asked for and what the
//! locked product rows say. Placing is lock → [`plan`] → write; keeping the middle free of I/O
//! lets the rules be tested exhaustively (property tests below) without a database.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use crate::features::catalog::stock::LockedProduct;

/// The most units of one product an order may hold, however many lines name it; the
/// `order_lines` table checks the same bound.
pub const MAX_QUANTITY: i64 = 1000;

/// Why an order cannot be placed as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("an order needs at least one line")]
    NoLines,
    /// Lines (by index) naming no product.
    #[error("no such product")]
    UnknownProducts(Vec<usize>),
    #[error("all products of one order must share a currency")]
    MixedCurrency,
    /// The lines naming one product add up to more than [`MAX_QUANTITY`]; `index` is the first
    /// line naming it.
    #[error("{quantity} units of one product in one order; at most {MAX_QUANTITY}")]
    QuantityTooLarge { index: usize, quantity: i64 },
    #[error(
        "Insufficient stock for product {product_id} ({sku}): {requested} requested, {available} available."
    )]
    OutOfStock {
        product_id: Uuid,
        sku: String,
        requested: i64,
        available: i32,
    },
    #[error("the order total is too large")]
    TotalTooLarge,
}

/// One line of a planned order: one product, its merged quantity, its price now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLine {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    pub unit_price_cents: i64,
}

/// An order that may be written: lines in product-id order, the total in `currency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub currency: String,
    pub total_cents: i64,
    pub lines: Vec<PlannedLine>,
}

impl Plan {
    /// What the order takes out of stock.
    pub fn quantities(&self) -> Vec<(Uuid, i32)> {
        self.lines
            .iter()
            .map(|line| (line.product_id, line.quantity))
            .collect()
    }
}

/// The products to lock for `requested`: each once, in lock (id) order.
pub fn products_to_lock(requested: &[(Uuid, i32)]) -> Vec<Uuid> {
    merge(requested).into_keys().collect()
}

/// Decides the order: merges lines naming one product, then checks that every product exists,
/// that they share a currency, that no product is asked for more than [`MAX_QUANTITY`] times,
/// that the locked stock covers each, and that the total fits.
pub fn plan(requested: &[(Uuid, i32)], locked: &[LockedProduct]) -> Result<Plan, PlaceError> {
    if requested.is_empty() {
        return Err(PlaceError::NoLines);
    }
    let by_id: HashMap<Uuid, &LockedProduct> = locked.iter().map(|p| (p.id, p)).collect();
    let unknown: Vec<usize> = requested
        .iter()
        .enumerate()
        .filter(|(_, (id, _))| !by_id.contains_key(id))
        .map(|(index, _)| index)
        .collect();
    if !unknown.is_empty() {
        return Err(PlaceError::UnknownProducts(unknown));
    }
    let merged = merge(requested);
    let products: Vec<(&LockedProduct, usize, i64)> = merged
        .iter()
        .map(|(id, (index, quantity))| (by_id[id], *index, *quantity))
        .collect();
    let currency = &products[0].0.currency;
    if products.iter().any(|(p, _, _)| &p.currency != currency) {
        return Err(PlaceError::MixedCurrency);
    }
    if let Some((_, index, quantity)) = products.iter().find(|(_, _, q)| *q > MAX_QUANTITY) {
        return Err(PlaceError::QuantityTooLarge {
            index: *index,
            quantity: *quantity,
        });
    }
    let mut total: i64 = 0;
    let mut lines = Vec::with_capacity(products.len());
    for (product, _, quantity) in products {
        if i64::from(product.stock) < quantity {
            return Err(PlaceError::OutOfStock {
                product_id: product.id,
                sku: product.sku.clone(),
                requested: quantity,
                available: product.stock,
            });
        }
        total = product
            .price_cents
            .checked_mul(quantity)
            .and_then(|line| total.checked_add(line))
            .ok_or(PlaceError::TotalTooLarge)?;
        lines.push(PlannedLine {
            product_id: product.id,
            sku: product.sku.clone(),
            name: product.name.clone(),
            // At most MAX_QUANTITY, checked above.
            quantity: i32::try_from(quantity).map_err(|_| PlaceError::TotalTooLarge)?,
            unit_price_cents: product.price_cents,
        });
    }
    Ok(Plan {
        currency: currency.clone(),
        total_cents: total,
        lines,
    })
}

/// Quantity per product, with the index of the first line naming it; ordered by id.
fn merge(requested: &[(Uuid, i32)]) -> BTreeMap<Uuid, (usize, i64)> {
    let mut merged: BTreeMap<Uuid, (usize, i64)> = BTreeMap::new();
    for (index, (id, quantity)) in requested.iter().enumerate() {
        merged.entry(*id).or_insert((index, 0)).1 += i64::from(*quantity);
    }
    merged
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn product(id: u128, stock: i32, price_cents: i64, currency: &str) -> LockedProduct {
        LockedProduct {
            id: Uuid::from_u128(id),
            sku: format!("SKU-{id}"),
            name: format!("product {id}"),
            price_cents,
            currency: currency.to_owned(),
            stock,
        }
    }

    /// Up to 5 products in one currency, and up to 8 lines naming them (or, when `unknown`,
    /// also a product that does not exist).
    fn scenario() -> impl Strategy<Value = (Vec<LockedProduct>, Vec<(Uuid, i32)>)> {
        prop::collection::vec((0..2_000i32, 1..100_000i64), 1..5).prop_flat_map(|rows| {
            let products: Vec<LockedProduct> = rows
                .iter()
                .enumerate()
                .map(|(i, (stock, price))| product(i as u128 + 1, *stock, *price, "EUR"))
                .collect();
            let ids = products.len() as u128;
            let lines = prop::collection::vec((1..=ids, 1..=1000i32), 1..8).prop_map(|lines| {
                lines
                    .into_iter()
                    .map(|(id, quantity)| (Uuid::from_u128(id), quantity))
                    .collect::<Vec<_>>()
            });
            (Just(products), lines)
        })
    }

    proptest! {
        /// A plan reserves exactly what was asked, per product, never more than the stock, and
        /// its total is the sum of its lines.
        #[test]
        fn a_plan_matches_the_request_and_the_stock((products, requested) in scenario()) {
            let mut asked: BTreeMap<Uuid, i64> = BTreeMap::new();
            for (id, quantity) in &requested {
                *asked.entry(*id).or_default() += i64::from(*quantity);
            }
            match plan(&requested, &products) {
                Ok(plan) => {
                    let planned: BTreeMap<Uuid, i64> = plan
                        .lines
                        .iter()
                        .map(|l| (l.product_id, i64::from(l.quantity)))
                        .collect();
                    prop_assert_eq!(&planned, &asked);
                    for line in &plan.lines {
                        let stock = products.iter().find(|p| p.id == line.product_id).map(|p| p.stock);
                        prop_assert!(i64::from(line.quantity) <= i64::from(stock.unwrap_or(0)));
                        prop_assert!(i64::from(line.quantity) <= MAX_QUANTITY);
                    }
                    let total: i64 = plan.lines.iter().map(|l| l.unit_price_cents * i64::from(l.quantity)).sum();
                    prop_assert_eq!(plan.total_cents, total);
                    prop_assert!(plan.lines.windows(2).all(|w| w[0].product_id < w[1].product_id));
                    prop_assert_eq!(products_to_lock(&requested), planned.keys().copied().collect::<Vec<_>>());
                }
                Err(PlaceError::QuantityTooLarge { index, quantity }) => {
                    prop_assert!(quantity > MAX_QUANTITY);
                    prop_assert_eq!(asked.get(&requested[index].0).copied(), Some(quantity));
                }
                Err(PlaceError::OutOfStock { product_id, requested: wanted, available, .. }) => {
                    prop_assert_eq!(asked.get(&product_id).copied(), Some(wanted));
                    prop_assert!(wanted > i64::from(available));
                    prop_assert!(asked.values().all(|q| *q <= MAX_QUANTITY));
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        /// A line naming a product that does not exist is reported by its index, whatever else.
        #[test]
        fn unknown_products_are_named_by_line((products, mut requested) in scenario(), at in 0..8usize) {
            let at = at.min(requested.len());
            requested.insert(at, (Uuid::from_u128(999), 1));
            prop_assert_eq!(plan(&requested, &products), Err(PlaceError::UnknownProducts(vec![at])));
        }
    }

    #[test]
    fn lines_naming_one_product_merge_and_are_bounded_together() {
        let bolts = product(1, 5_000, 10, "EUR");
        let twice_600 = [(bolts.id, 600), (bolts.id, 600)];
        assert_eq!(
            plan(&twice_600, std::slice::from_ref(&bolts)),
            Err(PlaceError::QuantityTooLarge {
                index: 0,
                quantity: 1200
            })
        );
        let twice_500 = [(bolts.id, 500), (bolts.id, 500)];
        let planned = plan(&twice_500, &[bolts]).expect("1000 units fit");
        assert_eq!(planned.lines.len(), 1);
        assert_eq!(planned.lines[0].quantity, 1000);
        assert_eq!(planned.total_cents, 10_000);
    }

    #[test]
    fn one_order_one_currency() {
        let euro = product(1, 10, 100, "EUR");
        let dollar = product(2, 10, 100, "USD");
        let requested = [(euro.id, 1), (dollar.id, 1)];
        assert_eq!(
            plan(&requested, &[euro, dollar]),
            Err(PlaceError::MixedCurrency)
        );
    }

    #[test]
    fn a_total_past_i64_is_refused_not_wrapped() {
        let dear = product(1, 10, i64::MAX / 2, "EUR");
        assert_eq!(
            plan(&[(dear.id, 3)], &[dear]),
            Err(PlaceError::TotalTooLarge)
        );
    }

    #[test]
    fn nothing_asked_nothing_planned() {
        assert_eq!(plan(&[], &[]), Err(PlaceError::NoLines));
    }
}
