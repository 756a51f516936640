//! Liveness and readiness probes, in the OpenAPI document like every other operation.

use poem_openapi::{Object, OpenApi, Tags, payload::Json};
use sqlx::PgPool;

use crate::{db, error::ApiError};

#[derive(Tags)]
enum HealthTags {
    /// Probes for orchestrators and load balancers.
    Health,
}

#[derive(Debug, Object)]
pub struct HealthStatus {
    /// `ok` for liveness, `ready` for readiness.
    pub status: String,
}

pub struct HealthApi {
    /// The probe's own connection, never the request pool's (see `db::probe_lazy`).
    pub probe: PgPool,
}

#[OpenApi(prefix_path = "/health", tag = "HealthTags::Health")]
impl HealthApi {
    /// Liveness: the process is running and serving HTTP.
    ///
    /// Deliberately touches no dependency, so a database outage never gets the pod restarted.
    #[oai(path = "/live", method = "get")]
    async fn live(&self) -> Result<Json<HealthStatus>, ApiError> {
        Ok(Json(HealthStatus {
            status: "ok".to_owned(),
        }))
    }

    /// Readiness: the database answers and every migration of this build is applied.
    ///
    /// Checked over a connection of its own, so a saturated request pool still reports ready:
    /// the replica can serve, it is only busy.
    #[oai(path = "/ready", method = "get")]
    async fn ready(&self) -> Result<Json<HealthStatus>, ApiError> {
        match db::check_ready(&self.probe).await {
            Ok(()) => Ok(Json(HealthStatus {
                status: "ready".to_owned(),
            })),
            Err(not_ready) => {
                tracing::debug!(reason = %not_ready, "not ready");
                Err(match not_ready {
                    db::NotReady::Unreachable(_) => ApiError::Unavailable("database"),
                    db::NotReady::MigrationsPending { .. } => {
                        ApiError::Unavailable("database schema (migrations pending)")
                    }
                })
            }
        }
    }
}
