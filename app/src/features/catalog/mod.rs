//! The example catalog: products that anyone can browse and admins manage. It shows keyset
//! pagination with opaque cursors, indexed full-text search, HTTP caching with ETags and
//! optimistic locking with If-Match. Delete this folder (and its migration, and its line in
//! `server::api`) to drop it.

mod api;
mod model;
mod repo;
mod seed;

pub use api::{CatalogApi, LINKS};
pub use seed::seed;
