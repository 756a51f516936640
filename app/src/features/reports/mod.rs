//! The example sales report: aggregation in SQL over an index made for it.

mod api;

pub use api::ReportsApi;
