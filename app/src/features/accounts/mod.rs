//! Accounts: registration, login, token refresh and logout, the current user, password change,
//! the published verification keys, and the `create-admin` command's logic.

mod api;
mod model;
mod repo;
mod service;

pub use api::{AccountsApi, KeysApi};
pub use service::{AdminOutcome, create_or_promote_admin};

use futures_util::FutureExt as _;

use crate::{features::Feature, jobs::ScheduledJob, server::AppState};

pub struct Accounts;

impl Feature for Accounts {
    type Api = (AccountsApi, KeysApi);

    const JOBS: &'static [ScheduledJob] = &[ScheduledJob {
        name: "purge_sessions",
        run: |conn, settings| {
            repo::purge_ended_sessions(conn, settings.auth.session_lifetime).boxed()
        },
    }];

    fn api(state: &AppState) -> Self::Api {
        (
            AccountsApi::new(
                state.db.clone(),
                state.passwords.clone(),
                state.throttle.clone(),
                state.settings.auth.refresh_token_ttl,
                state.settings.auth.session_lifetime,
            ),
            KeysApi,
        )
    }
}
