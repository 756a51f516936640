//! The example orders: buying reserves stock for every line in one transaction, locked in a
//! fixed order so concurrent orders can neither oversell nor deadlock; `Idempotency-Key` makes
//! retries safe. Depends on `catalog` (products) and `accounts` (users).

mod api;
mod model;
mod plan;
mod receipt;
mod repo;

pub use api::OrdersApi;

use crate::{features::Feature, server::AppState};

pub struct Orders;

impl Feature for Orders {
    type Api = OrdersApi;

    fn api(state: &AppState) -> OrdersApi {
        OrdersApi {
            db: state.db.clone(),
            low_stock_threshold: state.settings.catalog.low_stock_threshold,
            products: crate::features::catalog::product_cache(state),
        }
    }

    const LINKS: &'static [crate::openapi::Link] = api::LINKS;
    const EVENTS: &'static [crate::outbox::EventType] =
        &[repo::PLACED, repo::CANCELLED, repo::FULFILLED];
    const LISTENERS: &'static [crate::outbox::Listener] = &[receipt::SEND_RECEIPT];
}
