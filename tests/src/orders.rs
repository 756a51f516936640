//! The example orders: placing, reading, cancelling and fulfilling them.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::{TestApp, assert_json};

/// The requests of `/api/v1/orders`.
pub struct Orders<'a> {
    app: &'a TestApp,
}

impl TestApp {
    pub fn orders(&self) -> Orders<'_> {
        Orders { app: self }
    }
}

impl Orders<'_> {
    /// `POST /api/v1/orders` of `(product id, quantity)` lines, in this order, with an
    /// `Idempotency-Key` when one is given.
    pub async fn post(
        &self,
        token: &str,
        lines: &[(&str, i64)],
        idempotency_key: Option<&str>,
    ) -> Response {
        let items: Vec<Value> = lines
            .iter()
            .map(|(product, quantity)| json!({"product_id": product, "quantity": quantity}))
            .collect();
        let mut request = self
            .app
            .client
            .post(self.app.url("/api/v1/orders"))
            .bearer_auth(token)
            .json(&json!({ "items": items }));
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.expect("request reached the server")
    }

    /// Places an order, expecting success.
    pub async fn place(&self, token: &str, lines: &[(&str, i64)]) -> Order {
        let body = assert_json(self.post(token, lines, None).await, 201).await;
        let id = body["id"].as_str().expect("the order's id").to_owned();
        Order { id, body }
    }

    /// The orders `token`'s account may see.
    pub async fn list(&self, token: &str) -> Response {
        self.app.send_as(Method::GET, "/api/v1/orders", token).await
    }

    pub async fn get(&self, token: &str, id: &str) -> Response {
        self.app
            .send_as(Method::GET, &format!("/api/v1/orders/{id}"), token)
            .await
    }

    pub async fn cancel(&self, token: &str, id: &str) -> Response {
        self.app
            .send_as(Method::POST, &format!("/api/v1/orders/{id}/cancel"), token)
            .await
    }

    pub async fn fulfil(&self, token: &str, id: &str) -> Response {
        self.app
            .send_as(Method::POST, &format!("/api/v1/orders/{id}/fulfil"), token)
            .await
    }
}

/// An order as placing it returned it.
#[derive(Clone, Debug)]
pub struct Order {
    pub id: String,
    pub body: Value,
}
