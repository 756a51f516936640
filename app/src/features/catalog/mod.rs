//! The example catalog: products that anyone can browse and admins manage. It shows keyset
//! pagination with opaque cursors, indexed full-text search, HTTP caching with ETags and
//! optimistic locking with If-Match. `make remove-example` deletes it with the rest of the example.

mod api;
mod model;
mod repo;
mod seed;
pub mod stock;

pub use api::CatalogApi;

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
        }
    }

    const LINKS: &'static [crate::openapi::Link] = api::LINKS;
    const SEED: Option<Seed> = Some(seed::load);
    const EVENTS: &'static [crate::outbox::EventType] = &[stock::LOW_STOCK];
}
