//! Order types.

use poem_openapi::{
    Enum, Object,
    registry::MetaSchema,
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON},
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::plan::MAX_QUANTITY;

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
    pub quantity: Quantity,
}

/// Units of one product on one line: 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i32);

impl Quantity {
    pub fn new(units: i64) -> Option<Self> {
        (1..=MAX_QUANTITY)
            .contains(&units)
            .then(|| i32::try_from(units).ok().map(Self))
            .flatten()
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

crate::text::scalar_type!(
    Quantity,
    "integer(int32)",
    MetaSchema {
        minimum: Some(1.0),
        maximum: Some(MAX_QUANTITY as f64),
        ..MetaSchema::new_with_format("integer", "int32")
    }
);

impl ParseFromJSON for Quantity {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let value = value.unwrap_or_default();
        value
            .as_i64()
            .and_then(Self::new)
            .ok_or_else(|| ParseError::custom(format!("must be 1 to {MAX_QUANTITY} units")))
    }
}

impl ToJSON for Quantity {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0))
    }
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
