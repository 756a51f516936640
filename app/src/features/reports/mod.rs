//! The example sales report: aggregation in SQL over an index made for it. It reads the
//! `sales` and `sale_lines` views, the read model the orders feature owns, not its tables.

mod api;

pub use api::ReportsApi;

use crate::{features::Feature, server::AppState};

pub struct Reports;

impl Feature for Reports {
    type Api = ReportsApi;

    fn api(state: &AppState) -> ReportsApi {
        ReportsApi {
            db: state.db.clone(),
        }
    }
}
