//! The bearer-token security scheme. Declaring it on an operation both protects it and shows
//! it in the OpenAPI document, which is what makes Swagger UI's "Authorize" button work.

use std::sync::Arc;

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};
use sqlx::PgPool;

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
    /// Admin-only operations call this first: members get 403, and a token whose session has
    /// ended gets 401 at once (see [`BearerAuth::require_live_session`]).
    pub async fn require_admin(&self, db: &PgPool) -> Result<&Claims, ApiError> {
        self.require_role(Role::Admin)?;
        self.require_live_session(db).await
    }

    /// The role check alone, for operations that need no database.
    pub fn require_role(&self, role: Role) -> Result<&Claims, ApiError> {
        if self.0.role == role {
            Ok(&self.0)
        } else {
            let name = match role {
                Role::Admin => "admin",
                Role::Member => "member",
            };
            Err(ApiError::Forbidden(format!(
                "This operation requires the {name} role."
            )))
        }
    }

    /// An access token outlives the session it was issued for until it expires (it is checked
    /// by signature alone, which is what makes it cheap). Sensitive operations, such as a
    /// password change and everything admin-only, also check that the session is still live,
    /// so a logout, a detected refresh-token reuse or a password change elsewhere takes effect
    /// there at once: one indexed lookup per such request.
    pub async fn require_live_session(&self, db: &PgPool) -> Result<&Claims, ApiError> {
        let live = sqlx::query_scalar!(
            r#"SELECT EXISTS (
                   SELECT 1 FROM sessions
                   WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL
               ) AS "live!""#,
            self.0.sid,
            self.0.sub,
        )
        .fetch_one(db)
        .await?;
        if live {
            Ok(&self.0)
        } else {
            Err(ApiError::Unauthorized(
                "The session of this access token has ended; log in again.".into(),
            ))
        }
    }
}
