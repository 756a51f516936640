//! Webhook types.

use poem_openapi::{Enum, Object};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Object)]
pub struct NewSubscription {
    /// Where events are POSTed. `https` in production; addresses inside private networks are
    /// refused unless configured (`webhooks.allowed_networks`).
    #[oai(validator(min_length = 1, max_length = 2048, pattern = r"^[\x21-\x7E]+$"))]
    pub url: String,
    /// Event types to receive (see the event catalogue in the README).
    #[oai(validator(
        min_items = 1,
        max_items = 50,
        unique_items,
        max_length = 100,
        pattern = r"^[a-z_]+(\.[a-z_]+)+$"
    ))]
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Object)]
pub struct Subscription {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    /// False once delivery stopped for good, e.g. the receiver answered 410 Gone.
    pub enabled: bool,
    #[oai(skip_serializing_if_is_none)]
    pub disabled_reason: Option<String>,
    pub created_at: OffsetDateTime,
    /// Set while a rotated-out secret still signs deliveries beside the current one (a second
    /// `webhook-signature` entry): until then receivers may verify with either.
    #[oai(skip_serializing_if_is_none)]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
}

#[derive(Debug, Object)]
pub struct CreatedSubscription {
    #[oai(flatten)]
    pub subscription: Subscription,
    /// The signing secret, `whsec_<base64>`: shown this once, never again. Receivers verify
    /// `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

#[derive(Debug, Object)]
pub struct RotatedSecret {
    #[oai(flatten)]
    pub subscription: Subscription,
    /// The new signing secret, `whsec_<base64>`: shown this once. Deliveries are signed with
    /// it and, until `previous_secret_expires_at`, with the secret it replaces.
    pub secret: String,
}

#[derive(Debug, Object)]
pub struct SubscriptionPage {
    pub items: Vec<Subscription>,
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, sqlx::Type)]
#[oai(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Another attempt is due.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed, or the receiver answered 410 Gone.
    Dead,
    /// The subscription was disabled before it could be delivered.
    Cancelled,
}

/// One HTTP attempt at delivering one event.
#[derive(Debug, Clone, Object)]
pub struct DeliveryAttempt {
    pub id: Uuid,
    pub delivery_id: Uuid,
    /// The `webhook-id` the receiver saw: the same for every attempt at this event.
    pub event_id: Uuid,
    pub event_type: String,
    /// 1 for the first attempt.
    pub attempt: i32,
    /// The receiver's HTTP status; absent when there was no response.
    #[oai(skip_serializing_if_is_none)]
    pub status_code: Option<i32>,
    /// Why the attempt failed, when it did.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    pub attempted_at: OffsetDateTime,
    pub duration_ms: i32,
    /// Where the delivery stands now.
    pub delivery_status: DeliveryStatus,
}

#[derive(Debug, Object)]
pub struct AttemptPage {
    pub items: Vec<DeliveryAttempt>,
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}
