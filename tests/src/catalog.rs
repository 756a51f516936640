//! The example catalog: products as an admin creates them and anyone reads them.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::{TestApp, app::header, assert_json};

/// The requests of `/api/v1/products`.
pub struct Catalog<'a> {
    app: &'a TestApp,
}

impl TestApp {
    pub fn catalog(&self) -> Catalog<'_> {
        Catalog { app: self }
    }
}

impl Catalog<'_> {
    /// `POST /api/v1/products` with any body, for the refusals.
    pub async fn post(&self, token: &str, body: &Value) -> Response {
        self.app
            .send_json(Method::POST, "/api/v1/products", Some(token), body)
            .await
    }

    /// Creates a product, expecting success.
    pub async fn create(&self, token: &str, product: &NewProduct) -> Product {
        let response = self.post(token, &product.json()).await;
        let etag = header(&response, "etag");
        let body = assert_json(response, 201).await;
        let id = body["id"].as_str().expect("the product's id").to_owned();
        Product { id, etag }
    }

    /// The product's stock as anyone reads it.
    pub async fn stock(&self, id: &str) -> i64 {
        let product = assert_json(self.app.get(&format!("/api/v1/products/{id}")).await, 200).await;
        product["stock"].as_i64().expect("stock")
    }

    /// One page of `GET /api/v1/products?<query>`, expecting success.
    pub async fn page(&self, query: &str) -> Value {
        assert_json(
            self.app.get(&format!("/api/v1/products?{query}")).await,
            200,
        )
        .await
    }
}

/// What an admin sends to create a product: 10 units at 19.99 EUR unless told otherwise.
#[derive(Clone, Debug)]
pub struct NewProduct {
    sku: String,
    name: String,
    price_cents: i64,
    stock: i64,
}

impl NewProduct {
    /// A product named after its SKU.
    pub fn new(sku: &str) -> Self {
        Self {
            sku: sku.to_owned(),
            name: sku.to_owned(),
            price_cents: 1999,
            stock: 10,
        }
    }

    pub fn named(self, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..self
        }
    }

    pub fn priced(self, price_cents: i64) -> Self {
        Self {
            price_cents,
            ..self
        }
    }

    pub fn with_stock(self, stock: i64) -> Self {
        Self { stock, ..self }
    }

    /// The request body, for tests that break it on purpose.
    pub fn json(&self) -> Value {
        json!({
            "sku": self.sku,
            "name": self.name,
            "description": "",
            "price_cents": self.price_cents,
            "currency": "EUR",
            "stock": self.stock,
        })
    }
}

/// A product as its creation returned it.
#[derive(Clone, Debug)]
pub struct Product {
    pub id: String,
    /// The `ETag` of the created version.
    pub etag: String,
}

impl Product {
    /// `/api/v1/products/<id>`
    pub fn path(&self) -> String {
        format!("/api/v1/products/{}", self.id)
    }
}
