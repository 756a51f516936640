//! Accounts: registration, login, token refresh and logout, the current user, password change,
//! the published verification keys, and the `create-admin` command's logic.

mod api;
mod model;
mod repo;
mod service;

pub use api::{AccountsApi, KeysApi};
pub use service::{AdminOutcome, create_or_promote_admin};

use crate::{features::Feature, server::AppState};

pub struct Accounts;

impl Feature for Accounts {
    type Api = (AccountsApi, KeysApi);

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
