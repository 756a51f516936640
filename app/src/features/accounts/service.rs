//! Account use cases that are not HTTP: `keel users create-admin` calls them, and a handler
//! could. They speak domain types and `anyhow` for the command line, never problem documents.

use sqlx::PgPool;

use super::{
    model::{DisplayName, Email},
    repo,
};
use crate::auth::{Passwords, Role, password::NewPassword};

/// What `keel users create-admin` did.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    Created,
    Promoted,
    AlreadyAdmin,
}

/// Promotes an existing account, or creates one with the password `read_password` supplies
/// (called only when needed, so promoting never asks for a password it would not use).
pub async fn create_or_promote_admin(
    db: &PgPool,
    passwords: &Passwords,
    email: &str,
    display_name: &str,
    read_password: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<AdminOutcome> {
    let email = Email::parse(email).map_err(|err| anyhow::anyhow!("--email {email:?} {err}"))?;
    let display_name = DisplayName::parse(display_name)
        .map_err(|err| anyhow::anyhow!("--display-name {display_name:?} {err}"))?;
    if let Some(user) = repo::find_by_email(db, email.as_str()).await? {
        if user.role == Role::Admin {
            return Ok(AdminOutcome::AlreadyAdmin);
        }
        repo::set_role(db, user.id, Role::Admin).await?;
        return Ok(AdminOutcome::Promoted);
    }
    let password = NewPassword::parse(read_password()?)
        .map_err(|err| anyhow::anyhow!("the password {err}"))?;
    crate::auth::password::check_policy(password.as_str(), "password")
        .map_err(|err| anyhow::anyhow!("the password {}", err.message))?;
    let hash = passwords.hash(password.into_inner().into()).await?;
    // A concurrent registration can take the email between the lookup and the insert.
    repo::insert_user(
        db,
        email.as_str(),
        display_name.as_str(),
        Role::Admin,
        &hash,
    )
    .await?;
    Ok(AdminOutcome::Created)
}
