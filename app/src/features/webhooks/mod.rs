//! Webhooks: admins subscribe URLs to event types; every event the outbox dispatches is
//! delivered to each subscription, signed per Standard Webhooks, retried with backoff, and
//! every attempt is recorded and listed. The queue (`crate::jobs::queue`) and the outbox
//! (`crate::outbox`) are the foundation's; signing, SSRF rules and delivery records are here.

mod api;
mod deliver;
mod model;
mod repo;
pub mod secret;
pub mod ssrf;

pub use api::WebhooksApi;

use crate::{features::Feature, server::AppState};

pub struct Webhooks;

impl Feature for Webhooks {
    type Api = WebhooksApi;

    fn api(state: &AppState) -> WebhooksApi {
        WebhooksApi {
            db: state.db.clone(),
            settings: state.settings.clone(),
        }
    }

    const LINKS: &'static [crate::openapi::Link] = api::LINKS;
    const TASKS: &'static [crate::jobs::queue::TaskKind] = &[deliver::DELIVER];
    const LISTENERS: &'static [crate::outbox::Listener] = &[deliver::FAN_OUT];
}
