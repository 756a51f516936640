//! What handlers share, built once from Settings.

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    sync::{Arc, Mutex},
};

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
    /// One instance per application of whatever features share between their APIs (the
    /// catalog's product cache, which orders also write through); see [`AppState::shared`].
    shared: Arc<Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
}

impl AppState {
    /// This application's one `T`, made by `init` the first time it is asked for. Per
    /// application rather than per process, so two servers in one test process stay apart.
    pub fn shared<T: Any + Send + Sync>(&self, init: impl FnOnce() -> Arc<T>) -> Arc<T> {
        let mut shared = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = shared
            .entry(TypeId::of::<T>())
            .or_insert_with(|| init() as Arc<dyn Any + Send + Sync>)
            .clone();
        drop(shared);
        // Stored under T's own TypeId, so the downcast cannot fail.
        entry.downcast::<T>().unwrap_or_else(|_| unreachable!())
    }

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
            shared: Arc::default(),
        })
    }
}
