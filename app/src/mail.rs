//! Outgoing email: an SMTP client (lettre) and the `mail.send` task that delivers a message
//! enqueued by the change that causes it, so a rolled-back change sends nothing and a
//! committed one is not lost if the SMTP server is briefly away.

use std::{sync::Arc, sync::OnceLock, time::Duration};

use apalis::prelude::BoxDynError;
use futures_util::FutureExt as _;
use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
    },
};
use opentelemetry::{KeyValue, global, metrics::Counter};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use tracing::Instrument as _;

use crate::{
    config::{EmailSettings, SmtpTls},
    jobs::queue::{self, TaskContext, TaskKind},
};

/// An email to send: both a plain-text and an HTML part, as mail clients expect.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Sends email over SMTP, or (with `email.enabled` off) logs that it would have.
#[derive(Clone)]
pub struct Mailer {
    transport: Option<Arc<AsyncSmtpTransport<Tokio1Executor>>>,
    from: Option<Mailbox>,
    /// `host:port` of the relay, for the CLIENT span.
    relay: (String, u16),
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the message cannot be built: {0}")]
    Message(String),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

impl Mailer {
    pub fn new(settings: &EmailSettings) -> anyhow::Result<Self> {
        if !settings.enabled {
            return Ok(Self {
                transport: None,
                from: None,
                relay: (settings.smtp_host.clone(), settings.smtp_port),
            });
        }
        let tls = match settings.smtp_tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(TlsParameters::new(settings.smtp_host.clone())?),
            SmtpTls::Tls => Tls::Wrapper(TlsParameters::new(settings.smtp_host.clone())?),
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.smtp_host)
                .port(settings.smtp_port)
                .tls(tls)
                .timeout(Some(settings.timeout));
        if let (Some(username), Some(password)) = (&settings.smtp_username, &settings.smtp_password)
        {
            builder = builder.credentials(Credentials::new(
                username.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            transport: Some(Arc::new(builder.build())),
            from: Some(settings.from.parse()?),
            relay: (settings.smtp_host.clone(), settings.smtp_port),
        })
    }

    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        let (Some(transport), Some(from)) = (&self.transport, &self.from) else {
            tracing::info!(subject = %email.subject, "email disabled (email.enabled = false); not sent");
            return Ok(());
        };
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|err| MailError::Message(format!("recipient: {err}")))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&email.subject)
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|err| MailError::Message(err.to_string()))?;
        // One CLIENT span per message; SMTP has no header a relay reads trace context from.
        let span = tracing::info_span!(
            "SMTP send",
            otel.kind = "client",
            network.protocol.name = "smtp",
            server.address = %self.relay.0,
            server.port = self.relay.1,
            otel.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        let result = transport
            .send(message)
            .instrument(span.clone())
            .await
            .map(|_| ());
        if let Err(err) = &result {
            span.record("otel.status_code", "ERROR");
            span.record(
                "error.type",
                if err.is_permanent() {
                    "permanent"
                } else {
                    "transient"
                },
            );
        }
        emails().add(
            1,
            &[KeyValue::new(
                "outcome",
                if result.is_ok() { "sent" } else { "failed" },
            )],
        );
        result.map_err(MailError::from)
    }
}

fn emails() -> &'static Counter<u64> {
    static EMAILS: OnceLock<Counter<u64>> = OnceLock::new();
    EMAILS.get_or_init(|| {
        global::meter("keel")
            .u64_counter("keel.emails")
            .with_description("Emails handed to the SMTP server, by outcome: sent, failed")
            .build()
    })
}

impl MailError {
    /// When to try a send that failed like this again, after `attempts` tries of at most
    /// `max`: `first` (`email.retry_wait`), then doubling, so the SMTP server has time to come
    /// back. None when retrying cannot help — a message that does not build, a permanent (5xx)
    /// SMTP reply — or the tries are used up.
    pub fn retry_in(&self, attempts: u32, max: u32, first: Duration) -> Option<Duration> {
        let permanent = match self {
            Self::Message(_) => true,
            Self::Smtp(smtp) => smtp.is_permanent(),
        };
        (!permanent && attempts < max).then(|| first * (1 << attempts.saturating_sub(1).min(6)))
    }
}

/// Attempts at one email before it is given up (logged, counted as failed).
const SEND_ATTEMPTS: u32 = 6;

#[derive(Serialize, Deserialize)]
struct SendArgs {
    email: Email,
    #[serde(default)]
    attempt: u32,
}

/// Enqueues `email` on `conn`, in the caller's transaction.
pub async fn enqueue(conn: &mut PgConnection, email: Email) -> Result<(), sqlx::Error> {
    queue::enqueue(conn, SEND_KIND, &SendArgs { email, attempt: 0 }, None).await
}

const SEND_KIND: &str = "mail.send";

pub const SEND: TaskKind = TaskKind {
    name: SEND_KIND,
    run: |args, context| send_task(args, context).boxed(),
};

async fn send_task(args: serde_json::Value, context: &TaskContext) -> Result<(), BoxDynError> {
    let args: SendArgs = queue::args(SEND_KIND, args)?;
    let Err(err) = context.mailer.send(&args.email).await else {
        return Ok(());
    };
    let attempt = args.attempt + 1;
    let Some(wait) = err.retry_in(attempt, SEND_ATTEMPTS, context.settings.email.retry_wait) else {
        tracing::error!(error = %err, attempts = attempt, "email given up");
        return Ok(());
    };
    tracing::warn!(error = %err, attempt, retry_in = ?wait, "email not sent; will retry");
    let mut conn = context.db.acquire().await?;
    queue::enqueue(
        &mut conn,
        SEND_KIND,
        &SendArgs {
            email: args.email,
            attempt,
        },
        Some(wait),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_that_does_not_build_is_never_retried() {
        let err = MailError::Message("recipient: invalid".to_owned());
        assert_eq!(err.retry_in(1, 6, Duration::from_secs(30)), None);
    }
}
