//! Accounts: registration, login, token refresh and logout, the current user, password change,
//! the published verification keys, and the `create-admin` command's logic.

mod api;
mod model;
mod repo;

pub use api::{AccountsApi, KeysApi};
pub use repo::{AdminOutcome, create_or_promote_admin};
