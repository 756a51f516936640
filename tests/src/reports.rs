//! The example sales report.

use reqwest::{Method, Response};
use time::Date;

use crate::TestApp;

/// The requests of `/api/v1/reports`.
pub struct Reports<'a> {
    app: &'a TestApp,
}

impl TestApp {
    pub fn reports(&self) -> Reports<'_> {
        Reports { app: self }
    }
}

impl Reports<'_> {
    /// `GET /api/v1/reports/sales?from=<from>&to=<to>`
    pub async fn sales(&self, token: &str, from: Date, to: Date) -> Response {
        self.app
            .send_as(
                Method::GET,
                &format!("/api/v1/reports/sales?from={from}&to={to}"),
                token,
            )
            .await
    }
}
