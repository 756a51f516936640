//! What handlers share, built once from Settings.

use std::sync::Arc;

use sqlx::PgPool;

use crate::{
    auth::{LoginThrottle, Passwords, TokenKeys},
    config::Settings,
};

/// What handlers share: built once from Settings, cloned into each API struct.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    /// The readiness probe's connection, apart from `db` (see [`crate::db::probe_lazy`]).
    pub probe: PgPool,
    pub keys: Arc<TokenKeys>,
    pub passwords: Passwords,
    pub throttle: Arc<LoginThrottle>,
    pub settings: Arc<Settings>,
}

impl AppState {
    pub fn new(settings: Settings, db: PgPool) -> anyhow::Result<Self> {
        let keys = TokenKeys::from_settings(&settings.auth, settings.environment)?;
        let passwords = Passwords::new(
            settings.auth.argon2,
            settings.auth.password_hash_concurrency,
        )?
        .with_queue_limit(settings.auth.password_hash_queue);
        let throttle = LoginThrottle::new(db.clone(), settings.auth.throttle.clone());
        let probe = crate::db::probe_lazy(&settings.database)?;
        Ok(Self {
            db,
            probe,
            keys: Arc::new(keys),
            passwords,
            throttle: Arc::new(throttle),
            settings: Arc::new(settings),
        })
    }
}
