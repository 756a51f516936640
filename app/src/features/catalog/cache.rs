//! Product reads from memory, correct across replicas: every change to a product row fires a
//! `NOTIFY catalog_products, '<id>'` (a trigger, so hand-written SQL counts too), and each
//! replica listens and forgets that product. A replica serves a cached product at most the
//! notification's delay (about a millisecond on one network) after another replica's change
//! committed; its own changes it forgets at once.
//!
//! The cache serves only while its listener is connected: a replica that cannot hear about
//! changes reads the database, and forgets everything when it hears again, since changes made
//! meanwhile were never announced to it. A read that started before a change it raced with
//! does not store what it read (the generation check in [`ProductCache::get`]).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use hashlink::LruCache;
use opentelemetry::{KeyValue, global, metrics::Counter};
use sqlx::{PgPool, postgres::PgListener};
use uuid::Uuid;

use super::{model::Product, repo};

const CHANNEL: &str = "catalog_products";

/// Products kept; the least recently read go first. A product is about 300 bytes.
const CAPACITY: usize = 10_000;

pub struct ProductCache {
    entries: Mutex<LruCache<Uuid, Product>>,
    /// Bumped by every forgetting, so a read racing a change can tell.
    generation: AtomicU64,
    listening: AtomicBool,
    lookups: Counter<u64>,
}

impl ProductCache {
    /// A cache whose listener runs on `db` until the process ends.
    pub fn start(db: &PgPool) -> Arc<Self> {
        let cache = Arc::new(Self {
            entries: Mutex::new(LruCache::new(CAPACITY)),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            lookups: global::meter("keel")
                .u64_counter("keel.cache.lookups")
                .with_description("Cache lookups by cache and outcome: hit, miss")
                .build(),
        });
        tokio::spawn(listen(Arc::downgrade(&cache), db.clone()));
        cache
    }

    /// The product, from memory when it is there and the cache can trust it, else from `db`.
    pub async fn get(&self, db: &PgPool, id: Uuid) -> Result<Option<Product>, sqlx::Error> {
        let listening = self.listening.load(Ordering::Acquire);
        if listening && let Some(product) = self.lock().get(&id).cloned() {
            self.count("hit");
            return Ok(Some(product));
        }
        let generation = self.generation.load(Ordering::Acquire);
        let product = repo::find(db, id).await?;
        self.count("miss");
        if let Some(product) = &product {
            let mut entries = self.lock();
            // Checked under the lock that forgetting takes too: nothing was forgotten since
            // this read began, so what it read is not older than anything announced.
            if listening && self.generation.load(Ordering::Acquire) == generation {
                entries.insert(id, product.clone());
            }
        }
        Ok(product)
    }

    /// Forgets `id` in this replica now (its own change; the others hear by NOTIFY).
    pub fn forget(&self, id: Uuid) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(&id);
    }

    fn forget_all(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Uuid, Product>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self, outcome: &'static str) {
        self.lookups.add(
            1,
            &[
                KeyValue::new("cache", "products"),
                KeyValue::new("outcome", outcome),
            ],
        );
    }
}

/// Listens for changes until the cache is dropped, reconnecting after a lost connection.
async fn listen(cache: std::sync::Weak<ProductCache>, db: PgPool) {
    loop {
        let mut listener = match connect(&db).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::debug!(error = %err, "product cache: cannot listen yet; reading through");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if cache.strong_count() == 0 {
                    return;
                }
                continue;
            }
        };
        {
            let Some(cache) = cache.upgrade() else { return };
            // Whatever changed while nobody listened was never announced here.
            cache.forget_all();
            cache.listening.store(true, Ordering::Release);
        }
        loop {
            let received = listener.try_recv().await;
            let Some(cache) = cache.upgrade() else { return };
            match received {
                Ok(Some(notification)) => match notification.payload().parse::<Uuid>() {
                    Ok(id) => cache.forget(id),
                    Err(_) => cache.forget_all(),
                },
                // The connection was lost: stop trusting the cache until listening again.
                Ok(None) | Err(_) => {
                    cache.listening.store(false, Ordering::Release);
                    cache.forget_all();
                    break;
                }
            }
        }
    }
}

/// A connection of its own, beside the request pool (whose size requests count on), with the
/// same connect options.
async fn connect(db: &PgPool) -> Result<PgListener, sqlx::Error> {
    let options = (*db.connect_options())
        .clone()
        .application_name("keel-product-cache");
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(options);
    let mut listener = PgListener::connect_with(&own).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
