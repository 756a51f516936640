//! The example sales report: aggregation in SQL over an index made for it.

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
