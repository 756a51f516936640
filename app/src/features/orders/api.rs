//! Order endpoints.

use poem::http::StatusCode;
use poem_openapi::{
    ApiResponse, OpenApi, Tags,
    param::{Header, Path, Query},
    payload::Json,
};
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    model::{NewOrder, Order, OrderPage, OrderStatus},
    plan::PlaceError,
    repo::{self, OrderError},
};
use crate::{
    auth::{BearerAuth, Role},
    error::{ApiError, FieldError},
    idempotency::{self, Once},
    json::JsonBody,
    openapi::Link,
    pagination::{self, Cursor, Limit},
};

#[derive(Tags)]
enum OrderTags {
    /// Buying from the catalog.
    Orders,
}

#[derive(ApiResponse)]
enum PlaceOrderResponse {
    /// The order was placed and its stock reserved (or, for a repeated Idempotency-Key, the
    /// first response is replayed).
    #[oai(status = 201)]
    Created(Json<Order>, #[oai(header = "Location")] String),
}

/// What a placed order feeds into (OpenAPI links): read, cancel, fulfil.
pub const LINKS: &[Link] = &[
    Link::by_id(("/api/v1/orders", "post", "201"), "GetOrder", "getOrder"),
    Link::by_id(
        ("/api/v1/orders", "post", "201"),
        "CancelOrder",
        "cancelOrder",
    ),
    Link::by_id(
        ("/api/v1/orders", "post", "201"),
        "FulfilOrder",
        "fulfilOrder",
    ),
];

pub struct OrdersApi {
    pub db: PgPool,
    /// `catalog.low_stock_threshold`, for the `product.low_stock` event.
    pub low_stock_threshold: i32,
    /// Orders change stock: each committed change is forgotten in this replica's product
    /// cache at once (other replicas hear of it by NOTIFY).
    pub products: std::sync::Arc<crate::features::catalog::ProductCache>,
}

/// The HTTP face of the order rules: which status, which field. Only this module knows that a
/// line is `/items/{index}` in the request body.
impl From<OrderError> for ApiError {
    fn from(err: OrderError) -> Self {
        match err {
            OrderError::Rejected(PlaceError::UnknownProducts(indices)) => Self::Validation(
                indices
                    .into_iter()
                    .map(|index| {
                        FieldError::new(format!("/items/{index}/product_id"), "no such product")
                    })
                    .collect(),
            ),
            OrderError::Rejected(err @ PlaceError::QuantityTooLarge { index, .. }) => {
                Self::Validation(vec![FieldError::new(
                    format!("/items/{index}/quantity"),
                    err.to_string(),
                )])
            }
            OrderError::Rejected(
                err @ (PlaceError::NoLines | PlaceError::MixedCurrency | PlaceError::TotalTooLarge),
            ) => Self::Validation(vec![FieldError::new("/items", err.to_string())]),
            OrderError::Rejected(err @ PlaceError::OutOfStock { .. }) => {
                Self::Conflict(err.to_string())
            }
            OrderError::NotPlaced(status) => Self::Conflict(format!(
                "The order is {status}; only placed orders can change."
            )),
            OrderError::Database(err) => err.into(),
        }
    }
}

/// The orders a caller may act on: their own, or any for an admin.
fn viewer(auth: &BearerAuth) -> Option<Uuid> {
    (auth.0.role != Role::Admin).then_some(auth.0.sub)
}

#[OpenApi(prefix_path = "/api/v1", tag = "OrderTags::Orders")]
impl OrdersApi {
    /// Place an order: reserve stock for every line, all or nothing.
    ///
    /// 409 names the product that is short. With `Idempotency-Key`, a retry of the same request
    /// returns the first response and creates nothing; the same key with another body is 422.
    #[oai(path = "/orders", method = "post", operation_id = "placeOrder")]
    async fn place(
        &self,
        auth: BearerAuth,
        /// A client-chosen unique key (e.g. a UUID) per intended order; kept 24 hours.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[\x20-\x7E]*$")
        )]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<NewOrder>,
    ) -> Result<PlaceOrderResponse, ApiError> {
        let user = auth.0.sub;
        let threshold = self.low_stock_threshold;
        let lines: Vec<(Uuid, i32)> = body
            .0
            .items
            .iter()
            .map(|item| (item.product_id, item.quantity.get()))
            .collect();
        let mut tx = self.db.begin().await?;
        let key = idempotency_key
            .0
            .as_deref()
            .map(|key| idempotency::Key { user_id: user, key });
        let placed = idempotency::run_once(
            &mut tx,
            key,
            &fingerprint(&lines),
            StatusCode::CREATED,
            async |tx| Ok(repo::place(tx, user, &lines, threshold).await?),
        )
        .await?;
        tx.commit().await?;
        if let Once::Done(order) = &placed {
            self.forget_products(order);
            tracing::info!(order = %order.id, user = %user, total_cents = order.total_cents, "order placed");
            record_placed(&order.currency, order.total_cents);
        }
        let order = placed.into_inner();
        let location = location(order.id);
        Ok(PlaceOrderResponse::Created(Json(order), location))
    }

    /// The caller's orders, newest first.
    #[oai(path = "/orders", method = "get", operation_id = "listOrders")]
    async fn list(
        &self,
        auth: BearerAuth,
        /// Page size, 1–100.
        #[oai(default)]
        limit: Query<Limit>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<OrderPage>, ApiError> {
        let after = cursor.0.map(Cursor::after);
        let mut items = repo::page(&self.db, auth.0.sub, after, limit.0.fetch()).await?;
        let next_cursor = pagination::split(&mut items, limit.0, |order| order.id);
        Ok(Json(OrderPage { items, next_cursor }))
    }

    /// One order (its owner, or an admin; others get 404).
    #[oai(path = "/orders/:id", method = "get", operation_id = "getOrder")]
    async fn get(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<Order>, ApiError> {
        let order = repo::find(&self.db, id.0, viewer(&auth))
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(Json(order))
    }

    /// Cancel a placed order and put its stock back (owner or admin).
    #[oai(
        path = "/orders/:id/cancel",
        method = "post",
        operation_id = "cancelOrder"
    )]
    async fn cancel(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<Order>, ApiError> {
        self.transition(id.0, viewer(&auth), OrderStatus::Cancelled)
            .await
    }

    /// Mark a placed order fulfilled (admin).
    #[oai(
        path = "/orders/:id/fulfil",
        method = "post",
        operation_id = "fulfilOrder"
    )]
    async fn fulfil(&self, auth: BearerAuth, id: Path<Uuid>) -> Result<Json<Order>, ApiError> {
        auth.require_admin(&self.db).await?;
        self.transition(id.0, None, OrderStatus::Fulfilled).await
    }
}

impl OrdersApi {
    fn forget_products(&self, order: &Order) {
        for product in order.items.iter().filter_map(|line| line.product_id) {
            self.products.forget(product);
        }
    }

    async fn transition(
        &self,
        id: Uuid,
        viewer: Option<Uuid>,
        to: OrderStatus,
    ) -> Result<Json<Order>, ApiError> {
        let mut tx = self.db.begin().await?;
        repo::transition(&mut tx, id, viewer, to)
            .await?
            .ok_or(ApiError::NotFound)?;
        tx.commit().await?;
        let order = repo::find(&self.db, id, None)
            .await?
            .ok_or(ApiError::NotFound)?;
        self.forget_products(&order);
        Ok(Json(order))
    }
}

fn location(id: Uuid) -> String {
    format!("/api/v1/orders/{id}")
}

/// What makes two order requests "the same" for Idempotency-Key: their lines, in order.
fn fingerprint(lines: &[(Uuid, i32)]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for (product, quantity) in lines {
        hasher.update(product.as_bytes());
        hasher.update(quantity.to_be_bytes());
    }
    hasher.finalize().to_vec()
}

/// `keel.orders.placed` and `keel.orders.revenue` (minor units), by currency: counted once
/// the order has committed, never for an idempotent replay.
fn record_placed(currency: &str, total_cents: i64) {
    use opentelemetry::{KeyValue, metrics::Counter};
    use std::sync::OnceLock;
    static METERS: OnceLock<(Counter<u64>, Counter<u64>)> = OnceLock::new();
    let (placed, revenue) = METERS.get_or_init(|| {
        let meter = opentelemetry::global::meter("keel");
        (
            meter
                .u64_counter("keel.orders.placed")
                .with_unit("{order}")
                .with_description("Orders placed, by currency")
                .build(),
            meter
                .u64_counter("keel.orders.revenue")
                .with_unit("{cent}")
                .with_description("Value of orders placed, in minor units of their currency")
                .build(),
        )
    });
    let currency = [KeyValue::new("currency", currency.to_owned())];
    placed.add(1, &currency);
    revenue.add(u64::try_from(total_cents).unwrap_or(0), &currency);
}
