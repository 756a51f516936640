//! Webhook subscription endpoints (admin).

use std::sync::Arc;

use poem_openapi::{
    ApiResponse, OpenApi, Tags,
    param::{Path, Query},
    payload::Json,
};
use secrecy::ExposeSecret as _;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    model::{AttemptPage, CreatedSubscription, NewSubscription, RotatedSecret, SubscriptionPage},
    repo,
    secret::{SigningKey, Vault},
    ssrf,
};
use crate::{
    auth::BearerAuth,
    config::Settings,
    error::{ApiError, FieldError},
    json::JsonBody,
    openapi::Link,
    outbox,
    pagination::{self, Cursor, Limit},
};

#[derive(Tags)]
enum WebhookTags {
    /// Outbound events, signed per Standard Webhooks.
    Webhooks,
}

#[derive(ApiResponse)]
enum CreateSubscriptionResponse {
    /// Subscribed. The response carries the signing secret; it is never shown again.
    #[oai(status = 201)]
    Created(
        Json<CreatedSubscription>,
        #[oai(header = "Location")] String,
    ),
}

#[derive(ApiResponse)]
enum DeleteSubscriptionResponse {
    /// Unsubscribed; its pending deliveries and their records are gone.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
enum RotateSecretResponse {
    /// Rotated. The response carries the new signing secret; it is never shown again.
    #[oai(status = 200)]
    Rotated(Json<RotatedSecret>),
}

/// What a new subscription feeds into (OpenAPI links): its deliveries, and deleting it.
pub const LINKS: &[Link] = &[
    Link::by_id(
        ("/api/v1/webhooks", "post", "201"),
        "ListDeliveries",
        "listWebhookDeliveries",
    ),
    Link::by_id(
        ("/api/v1/webhooks", "post", "201"),
        "RotateSecret",
        "rotateWebhookSecret",
    ),
    Link::by_id(
        ("/api/v1/webhooks", "post", "201"),
        "DeleteWebhook",
        "deleteWebhook",
    ),
];

pub struct WebhooksApi {
    pub db: PgPool,
    pub settings: Arc<Settings>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "WebhookTags::Webhooks")]
impl WebhooksApi {
    /// Subscribe a URL to event types (admin).
    ///
    /// The response's `secret` (`whsec_...`) signs every delivery; store it now, it is not
    /// shown again. The URL must be `https` in production, and may not resolve to a loopback,
    /// private, link-local, CGNAT or metadata address unless configured (422 names why).
    #[oai(path = "/webhooks", method = "post", operation_id = "createWebhook")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: JsonBody<NewSubscription>,
    ) -> Result<CreateSubscriptionResponse, ApiError> {
        auth.require_admin(&self.db).await?;
        let new = body.0;
        let mut errors: Vec<FieldError> = new
            .events
            .iter()
            .enumerate()
            .filter(|(_, name)| !outbox::event_types().any(|known| known.name == name.as_str()))
            .map(|(index, name)| {
                let known: Vec<&str> = outbox::event_types().map(|known| known.name).collect();
                FieldError::new(
                    format!("/events/{index}"),
                    format!("{name:?} is not an event type; known: {}", known.join(", ")),
                )
            })
            .collect();
        let settings = &self.settings.webhooks;
        match ssrf::check_syntax(&new.url, settings) {
            Ok(url) => {
                if let Err(err) = ssrf::resolve(&url, &settings.allowed_networks()).await {
                    errors.push(FieldError::new("/url", err.to_string()));
                }
            }
            Err(err) => errors.push(FieldError::new("/url", err.to_string())),
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let id = Uuid::now_v7();
        let key = SigningKey::generate();
        let sealed = Vault::new(settings)
            .seal(id, &key)
            .map_err(|err| ApiError::Internal(err.into()))?;
        let subscription = repo::insert(&self.db, id, &new.url, &new.events, &sealed).await?;
        Ok(CreateSubscriptionResponse::Created(
            Json(CreatedSubscription {
                subscription,
                secret: key.to_whsec().expose_secret().to_owned(),
            }),
            format!("/api/v1/webhooks/{id}"),
        ))
    }

    /// List subscriptions, newest first (admin). Secrets are never included.
    #[oai(path = "/webhooks", method = "get", operation_id = "listWebhooks")]
    async fn list(
        &self,
        auth: BearerAuth,
        #[oai(default)] limit: Query<Limit>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<SubscriptionPage>, ApiError> {
        auth.require_admin(&self.db).await?;
        let mut items = repo::page(&self.db, cursor.0.map(Cursor::after), limit.0.fetch()).await?;
        let next_cursor = pagination::split(&mut items, limit.0, |s| s.id);
        Ok(Json(SubscriptionPage { items, next_cursor }))
    }

    /// Replace the signing secret (admin), e.g. when it may have leaked.
    ///
    /// The response's `secret` is the new one, shown this once. Until
    /// `previous_secret_expires_at` (`webhooks.secret_rotation_grace` from now) every delivery
    /// carries two `webhook-signature` entries, by the new secret and by the one it replaces,
    /// so a receiver verifying with either accepts it while it switches. Rotating again within
    /// that time ends the older secret's grace at once.
    #[oai(
        path = "/webhooks/:id/secret",
        method = "post",
        operation_id = "rotateWebhookSecret"
    )]
    async fn rotate_secret(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<RotateSecretResponse, ApiError> {
        auth.require_admin(&self.db).await?;
        let key = SigningKey::generate();
        let sealed = Vault::new(&self.settings.webhooks)
            .seal(id.0, &key)
            .map_err(|err| ApiError::Internal(err.into()))?;
        let grace = time::Duration::try_from(self.settings.webhooks.secret_rotation_grace)
            .map_err(|err| ApiError::Internal(err.into()))?;
        let expires_at = time::OffsetDateTime::now_utc() + grace;
        let subscription = repo::rotate_secret(&self.db, id.0, &sealed, expires_at)
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(RotateSecretResponse::Rotated(Json(RotatedSecret {
            subscription,
            secret: key.to_whsec().expose_secret().to_owned(),
        })))
    }

    /// Unsubscribe (admin). Deliveries in flight are dropped with their records.
    #[oai(
        path = "/webhooks/:id",
        method = "delete",
        operation_id = "deleteWebhook"
    )]
    async fn delete(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<DeleteSubscriptionResponse, ApiError> {
        auth.require_admin(&self.db).await?;
        if repo::delete(&self.db, id.0).await? {
            Ok(DeleteSubscriptionResponse::Deleted)
        } else {
            Err(ApiError::NotFound)
        }
    }

    /// Recent delivery attempts to a subscription, newest first (admin): one entry per HTTP
    /// attempt with the receiver's status or the error, and where its delivery stands.
    #[oai(
        path = "/webhooks/:id/deliveries",
        method = "get",
        operation_id = "listWebhookDeliveries"
    )]
    async fn deliveries(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        #[oai(default)] limit: Query<Limit>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<Cursor>>,
    ) -> Result<Json<AttemptPage>, ApiError> {
        auth.require_admin(&self.db).await?;
        repo::find(&self.db, id.0)
            .await?
            .ok_or(ApiError::NotFound)?;
        let mut items =
            repo::attempts(&self.db, id.0, cursor.0.map(Cursor::after), limit.0.fetch()).await?;
        let next_cursor = pagination::split(&mut items, limit.0, |a| a.id);
        Ok(Json(AttemptPage { items, next_cursor }))
    }
}
