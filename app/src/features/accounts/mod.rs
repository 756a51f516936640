//! Accounts: registration, login, token refresh and logout, the current user, password change
//! and reset by email, the published verification keys, and the `create-admin` command's logic.

mod api;
mod model;
mod repo;
mod reset;
mod service;

pub use api::{AccountsApi, KeysApi};
pub use service::{AdminOutcome, create_or_promote_admin};

use futures_util::FutureExt as _;

use crate::{
    features::Feature,
    jobs::{ScheduledJob, queue::TaskKind},
    server::AppState,
};

pub struct Accounts;

impl Feature for Accounts {
    type Api = (AccountsApi, KeysApi);

    // Reset tokens are purged with the sessions: both are credentials that stopped working,
    // and one job needs no interval of its own.
    const JOBS: &'static [ScheduledJob] = &[ScheduledJob {
        name: "purge_sessions",
        run: |conn, settings| {
            async move {
                let sessions =
                    repo::purge_ended_sessions(conn, settings.auth.session_lifetime).await?;
                Ok(sessions + repo::purge_reset_tokens(conn).await?)
            }
            .boxed()
        },
    }];

    const TASKS: &'static [TaskKind] = &[reset::SEND_RESET];

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
