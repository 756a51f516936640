//! Business features, one folder each: handlers (`api.rs`), types (`model.rs`) and SQL
//! (`repo.rs`) together, so a feature can be copied or deleted in one move.
//!
//! This file is the one place features are registered: the server mounts, the OpenAPI document
//! links and `keel seed` loads exactly what [`register!`] lists, and nothing else names a
//! feature. Adding one is a `pub mod` line and an entry in the list; removing one deletes both.

use futures_util::future::BoxFuture;
use poem_openapi::OpenApi;
use sqlx::PgPool;

use crate::{
    jobs::{ScheduledJob, queue::TaskKind},
    openapi::Link,
    outbox::{EventType, Listener},
    server::AppState,
};

/// What a feature contributes to the service. Implemented by one unit struct per feature;
/// every item but the API has a default, so a feature states only what it has.
pub trait Feature {
    /// Its operations.
    type Api: OpenApi + 'static;

    /// Builds its operations from the state the handlers share.
    fn api(state: &AppState) -> Self::Api;

    /// OpenAPI links between its operations, added to the served document.
    const LINKS: &'static [Link] = &[];

    /// Demo data for `keel seed` (which `make run` calls).
    const SEED: Option<Seed> = None;

    /// Its periodic jobs, run by the scheduler (`crate::jobs`); each needs an interval in
    /// `worker.schedule`.
    const JOBS: &'static [ScheduledJob] = &[];

    /// Its kinds of background task (`crate::jobs::queue`).
    const TASKS: &'static [TaskKind] = &[];

    /// The event types it publishes through the outbox (`crate::outbox::publish`).
    const EVENTS: &'static [EventType] = &[];

    /// What it does with published events, in the dispatch transaction.
    const LISTENERS: &'static [Listener] = &[];
}

/// Loads a feature's demo data, idempotently; answers one line saying what it did.
pub type Seed = for<'a> fn(&'a PgPool) -> BoxFuture<'a, anyhow::Result<String>>;

/// Generates, from the list of features: [`Api`] (every feature's operations as one OpenAPI
/// value), [`api`], [`links`], [`seeds`], [`jobs`], [`tasks`], [`event_types`] and
/// [`listeners`]. The API is a right-nested chain of pairs ending in
/// `()`, because poem-openapi implements `OpenApi` for pairs and `()` (not for 1-tuples), so
/// the chain stays valid however many features remain.
macro_rules! register {
    (@api $first:path $(, $rest:path)*) => {
        (<$first as Feature>::Api, register!(@api $($rest),*))
    };
    (@api) => { () };
    (@build $state:ident; $first:path $(, $rest:path)*) => {
        (<$first as Feature>::api($state), register!(@build $state; $($rest),*))
    };
    (@build $state:ident;) => { () };
    ($($feature:path),+ $(,)?) => {
        /// The operations of every registered feature.
        pub type Api = register!(@api $($feature),+);

        /// Builds every registered feature's operations.
        pub fn api(state: &AppState) -> Api {
            register!(@build state; $($feature),+)
        }

        /// Every registered feature's OpenAPI links.
        pub fn links() -> impl Iterator<Item = &'static Link> {
            [$(<$feature as Feature>::LINKS),+].into_iter().flatten()
        }

        /// Every registered feature's demo data loader, in registration order.
        pub fn seeds() -> impl Iterator<Item = Seed> {
            [$(<$feature as Feature>::SEED),+].into_iter().flatten()
        }

        /// Every registered feature's scheduled jobs.
        pub fn jobs() -> impl Iterator<Item = &'static ScheduledJob> {
            [$(<$feature as Feature>::JOBS),+].into_iter().flatten()
        }

        /// Every registered feature's task kinds.
        pub fn tasks() -> impl Iterator<Item = &'static TaskKind> {
            [$(<$feature as Feature>::TASKS),+].into_iter().flatten()
        }

        /// Every registered feature's event types.
        pub fn event_types() -> impl Iterator<Item = &'static EventType> {
            [$(<$feature as Feature>::EVENTS),+].into_iter().flatten()
        }

        /// Every registered feature's event listeners.
        pub fn listeners() -> impl Iterator<Item = &'static Listener> {
            [$(<$feature as Feature>::LISTENERS),+].into_iter().flatten()
        }
    };
}

pub mod accounts;
pub mod catalog;
pub mod orders;
pub mod reports;
pub mod webhooks;

register!(
    accounts::Accounts,
    catalog::Catalog,
    orders::Orders,
    reports::Reports,
    webhooks::Webhooks,
);
