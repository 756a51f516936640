//! Password reset by email. The request only queues `accounts.password_reset` with the address
//! it was given; the worker looks the account up, makes the token and sends it. So the request
//! costs the same whether or not the address has an account, and answers the same: nothing in
//! the API tells who has one.
//!
//! The token goes from the worker to the SMTP server directly (not through `mail.send`), so it
//! is never written to the queue table; the database keeps only its hash.

use std::time::Duration;

use apalis::prelude::BoxDynError;
use futures_util::FutureExt as _;
use html_escape::{encode_double_quoted_attribute as attribute, encode_text as html};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::repo::{self, ResetAccount, ResetToken};
use crate::{
    jobs::queue::{self, TaskContext, TaskKind},
    mail,
};

/// Reset links an account may have outstanding (unused, unexpired). Beyond it a request sends
/// nothing: anyone can ask for a stranger's reset, and this bounds the mail they can make
/// arrive in that stranger's inbox to this many per `auth.password_reset_ttl`.
const MAX_OUTSTANDING: i64 = 3;

/// Sends of one reset email before it is given up. Fewer and sooner than `mail.send`'s: a link
/// arriving after its expiry is useless, and the user can simply ask again.
const SEND_ATTEMPTS: u32 = 3;

#[derive(Serialize, Deserialize)]
struct ResetArgs {
    /// As the requester typed it: it may belong to no account.
    email: String,
    #[serde(default)]
    attempt: u32,
}

/// Queues a reset for `email` on `conn`. One insert, the same for every address.
pub async fn enqueue(conn: &mut PgConnection, email: &str) -> Result<(), sqlx::Error> {
    let args = ResetArgs {
        email: email.to_owned(),
        attempt: 0,
    };
    queue::enqueue(conn, KIND, &args, None).await
}

const KIND: &str = "accounts.password_reset";

pub const SEND_RESET: TaskKind = TaskKind {
    name: KIND,
    run: |args, context| send_reset(args, context).boxed(),
};

async fn send_reset(args: serde_json::Value, context: &TaskContext) -> Result<(), BoxDynError> {
    let args: ResetArgs = queue::args(KIND, args)?;
    let ttl = context.settings.auth.password_reset_ttl;
    let token = ResetToken::generate();
    let mut tx = context.db.begin().await?;
    let Some(account) = repo::lock_account_for_reset(&mut tx, &args.email).await? else {
        // No account has this address; its requester got the same 202 as anyone.
        return Ok(());
    };
    if account.outstanding >= MAX_OUTSTANDING {
        tracing::info!(
            user = %account.id,
            outstanding = account.outstanding,
            "password reset not sent: the account has as many unused reset links as allowed"
        );
        return Ok(());
    }
    repo::insert_reset_token(&mut tx, account.id, &token, ttl).await?;
    // Committed before sending, so the link works the moment it arrives.
    tx.commit().await?;

    let email = reset_email(&account, &context.settings.email.public_url, &token, ttl);
    let err = match context.mailer.send(&email).await {
        Ok(()) => {
            tracing::info!(user = %account.id, "password reset email sent");
            return Ok(());
        }
        Err(err) => err,
    };
    // No one received this token; it must not work, nor count as outstanding.
    repo::delete_reset_token(&context.db, &token).await?;
    let attempt = args.attempt + 1;
    let Some(wait) = err.retry_in(attempt, SEND_ATTEMPTS, context.settings.email.retry_wait) else {
        tracing::error!(user = %account.id, error = %err, attempts = attempt, "password reset email given up");
        return Ok(());
    };
    tracing::warn!(user = %account.id, error = %err, attempt, retry_in = ?wait, "password reset email not sent; will retry");
    // The retry queues the address again, never the token: it makes a fresh one.
    let mut conn = context.db.acquire().await?;
    queue::enqueue(&mut conn, KIND, &ResetArgs { attempt, ..args }, Some(wait)).await?;
    Ok(())
}

/// The reset email: a link to the front end's reset page and, for clients that have no such
/// page, the token itself.
fn reset_email(
    account: &ResetAccount,
    public_url: &str,
    token: &ResetToken,
    ttl: Duration,
) -> mail::Email {
    let link = format!(
        "{}/reset-password?token={}",
        public_url.trim_end_matches('/'),
        token.token
    );
    let valid_for = humantime::format_duration(ttl);
    let text = format!(
        "Hello {name},\n\n\
         someone, hopefully you, asked to reset the password of the account {email}.\n\n\
         To choose a new password, open this link within {valid_for}:\n\n{link}\n\n\
         or, where you are asked for a reset token, enter:\n\n{token}\n\n\
         It works once. If you did not ask for this, ignore this email: your password stays \
         as it is.\n",
        name = account.display_name,
        email = account.email,
        token = token.token,
    );
    let html_body = format!(
        "<!doctype html><html><body><p>Hello {name},</p>\
         <p>someone, hopefully you, asked to reset the password of the account {email}.</p>\
         <p>To choose a new password, open this link within {valid_for}:</p>\
         <p><a href=\"{href}\">Reset your password</a></p>\
         <p>or, where you are asked for a reset token, enter:</p><p><code>{token}</code></p>\
         <p>It works once. If you did not ask for this, ignore this email: your password stays \
         as it is.</p></body></html>",
        name = html(&account.display_name),
        email = html(&account.email),
        href = attribute(&link),
        token = html(&token.token),
    );
    mail::Email {
        to: account.email.clone(),
        subject: "Reset your password".to_owned(),
        text,
        html: html_body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_email_carries_the_link_and_the_token_and_escapes_the_name() {
        let account = ResetAccount {
            id: uuid::Uuid::nil(),
            email: "ada@example.com".to_owned(),
            display_name: "Ada <b>".to_owned(),
            outstanding: 0,
        };
        let token = ResetToken::generate();
        let email = reset_email(
            &account,
            "https://app.example.com/",
            &token,
            Duration::from_secs(1800),
        );
        let link = format!(
            "https://app.example.com/reset-password?token={}",
            token.token
        );
        assert_eq!(email.to, "ada@example.com");
        assert!(email.text.contains(&link), "{}", email.text);
        assert!(email.text.contains("within 30m"), "{}", email.text);
        assert!(
            email.html.contains(&format!("href=\"{link}\"")),
            "{}",
            email.html
        );
        assert!(email.html.contains("Ada &lt;b&gt;"), "{}", email.html);
        assert!(!email.html.contains("<b>"), "{}", email.html);
        assert_eq!(token.token.len(), 43, "32 bytes, base64url without padding");
    }
}
