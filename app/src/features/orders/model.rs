//! Order types.

use poem_openapi::{Enum, Object};
use time::OffsetDateTime;
use uuid::Uuid;

// One spelling for the API and the `text` column (`CHECK (status IN (...))`), which decodes
// with no fallback: an unknown value is an error, never a silent `Placed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, sqlx::Type)]
#[oai(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum OrderStatus {
    Placed,
    Cancelled,
    Fulfilled,
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Placed => "placed",
            Self::Cancelled => "cancelled",
            Self::Fulfilled => "fulfilled",
        })
    }
}

#[derive(Debug, Clone, Object)]
pub struct OrderLine {
    /// Absent once the product has been deleted from the catalog.
    #[oai(skip_serializing_if_is_none)]
    pub product_id: Option<Uuid>,
    /// The product's sku and name when it was ordered.
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    /// The price when it was ordered, in minor units.
    pub unit_price_cents: i64,
}

#[derive(Debug, Clone, Object)]
pub struct Order {
    pub id: Uuid,
    pub status: OrderStatus,
    pub currency: String,
    /// Sum of quantity × unit price, computed by the server.
    pub total_cents: i64,
    pub items: Vec<OrderLine>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Object)]
pub struct OrderItemRequest {
    pub product_id: Uuid,
    #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
    pub quantity: i32,
}

#[derive(Debug, Object)]
pub struct NewOrder {
    /// 1 to 50 lines; lines naming the same product are added together.
    #[oai(validator(min_items = 1, max_items = 50))]
    pub items: Vec<OrderItemRequest>,
}

#[derive(Debug, Object)]
pub struct OrderPage {
    pub items: Vec<Order>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}
