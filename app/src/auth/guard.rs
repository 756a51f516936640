//! The bearer-token security scheme. Declaring it on an operation both protects it and shows
//! it in the OpenAPI document, which is what makes Swagger UI's "Authorize" button work.

use std::sync::Arc;

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};

use super::{Claims, Role, TokenKeys};
use crate::error::ApiError;

/// An access token (`Authorization: Bearer <token>`), verified: handlers get its claims.
#[derive(Debug, SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "authenticate")]
pub struct BearerAuth(pub Claims);

async fn authenticate(req: &Request, bearer: Bearer) -> poem::Result<Claims> {
    let keys = req
        .data::<Arc<TokenKeys>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("token keys are not installed")))?;
    keys.verify(&bearer.token).map_err(|err| {
        tracing::info!(reason = %err, "access token refused");
        ApiError::Unauthorized("The access token is invalid or expired.".into()).into()
    })
}

impl BearerAuth {
    /// Admin-only operations call this first: members get 403.
    pub fn require_admin(&self) -> Result<&Claims, ApiError> {
        match self.0.role {
            Role::Admin => Ok(&self.0),
            Role::Member => Err(ApiError::Forbidden(
                "This operation requires the admin role.".into(),
            )),
        }
    }
}
