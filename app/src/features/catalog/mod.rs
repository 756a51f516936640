//! The example catalog: products that anyone can browse and admins manage. It shows keyset
//! pagination with opaque cursors, indexed full-text search, HTTP caching with ETags and
//! optimistic locking with If-Match. `make remove-example` deletes it with the rest of the example.

mod api;
mod cache;
mod model;
mod repo;
mod seed;
pub mod stock;

pub use api::CatalogApi;
pub use cache::ProductCache;

/// The application's product cache, for features that change products (orders' stock).
pub fn product_cache(state: &AppState) -> std::sync::Arc<ProductCache> {
    state.shared(|| ProductCache::start(&state.db))
}

use crate::{
    features::{Feature, Seed},
    server::AppState,
};

pub struct Catalog;

impl Feature for Catalog {
    type Api = CatalogApi;

    fn api(state: &AppState) -> CatalogApi {
        CatalogApi {
            db: state.db.clone(),
            cache: product_cache(state),
        }
    }

    const LINKS: &'static [crate::openapi::Link] = api::LINKS;
    const SEED: Option<Seed> = Some(seed::load);
    const EVENTS: &'static [crate::outbox::EventType] = &[stock::LOW_STOCK];
}
