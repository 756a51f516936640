//! Delivery: the outbox listener that fans an event out to its subscriptions, and the task
//! that makes one signed HTTP attempt and decides what follows.
//!
//! At least once: a receiver may see an event twice (a worker that dies between the receiver's
//! answer and our commit retries it), always with the same `webhook-id`, so receivers dedupe
//! by it. Each attempt is recorded before the next is queued, in one transaction.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use apalis::prelude::BoxDynError;
use futures_util::FutureExt as _;
use opentelemetry::{
    KeyValue, global,
    metrics::{Counter, Histogram},
};
use opentelemetry_http::HeaderInjector;
use rand_core::{OsRng, RngCore as _};
use serde::{Deserialize, Serialize};
use sqlx::Connection as _;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use uuid::Uuid;

use super::{
    model::DeliveryStatus,
    repo::{self, Attempt, DeliveryJob},
    secret::{Sealed, Vault},
    ssrf,
};
use crate::{
    config::WebhookSettings,
    jobs::queue::{self, TaskContext, TaskKind},
    outbox::{Event, Listener},
};

/// Longest `Retry-After` honoured; a receiver asking for more gets this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

pub const FAN_OUT: Listener = Listener {
    name: "webhooks.fan_out",
    run: |conn, event, _settings| fan_out(conn, event).boxed(),
};

async fn fan_out(conn: &mut sqlx::PgConnection, event: &Event) -> Result<(), sqlx::Error> {
    for delivery_id in repo::fan_out(conn, event.id, &event.kind).await? {
        queue::enqueue(conn, DELIVER_KIND, &DeliverArgs { delivery_id }, None).await?;
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct DeliverArgs {
    delivery_id: Uuid,
}

const DELIVER_KIND: &str = "webhooks.deliver";

pub const DELIVER: TaskKind = TaskKind {
    name: DELIVER_KIND,
    run: |args, context| deliver(args, context).boxed(),
};

/// What came of one attempt.
struct Response {
    status: Option<u16>,
    error: Option<String>,
    retry_after: Option<Duration>,
}

async fn deliver(args: serde_json::Value, context: &TaskContext) -> Result<(), BoxDynError> {
    let args: DeliverArgs = queue::args(DELIVER_KIND, args)?;
    let Some(job) = repo::delivery(&context.db, args.delivery_id).await? else {
        // Its subscription was deleted meanwhile.
        return Ok(());
    };
    if job.status != DeliveryStatus::Pending {
        // Already finished: this task ran twice (its worker was presumed dead).
        return Ok(());
    }
    if !job.enabled {
        repo::cancel(&context.db, job.id).await?;
        return Ok(());
    }
    let settings = &context.settings.webhooks;
    let number = job.attempts + 1;
    let span = tracing::info_span!(
        "POST webhook",
        otel.kind = "client",
        http.request.method = "POST",
        url.full = %job.url,
        webhook.id = %job.event_id,
        webhook.event = %job.event_type,
        webhook.attempt = number,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    let at = OffsetDateTime::now_utc();
    let started = Instant::now();
    let response = attempt(settings, &job, at).instrument(span.clone()).await;
    let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    if let Some(status) = response.status {
        span.record("http.response.status_code", status);
    }
    if response.error.is_some() || !response.status.is_some_and(|s| (200..300).contains(&s)) {
        span.record(
            "error.type",
            response
                .status
                .map_or("error".to_owned(), |s| s.to_string()),
        );
    }

    let retries: Vec<Duration> = settings.retry_schedule().collect();
    let (status, next, outcome) = match response.status {
        Some(200..=299) => (DeliveryStatus::Delivered, None, "delivered"),
        Some(410) => (DeliveryStatus::Dead, None, "gone"),
        _ => match retries.get(usize::try_from(job.attempts).unwrap_or(usize::MAX)) {
            Some(scheduled) => {
                let wait = jittered(*scheduled).max(response.retry_after.unwrap_or_default());
                (DeliveryStatus::Pending, Some(wait), "failed")
            }
            None => (DeliveryStatus::Dead, None, "dead"),
        },
    };
    let record = Attempt {
        number,
        at,
        duration_ms,
        status_code: response.status.map(i32::from),
        error: response.error.as_deref(),
    };
    let next_at = next.map(|wait| OffsetDateTime::now_utc() + wait);
    let mut conn = context.db.acquire().await?;
    let mut tx = conn.begin().await?;
    repo::record(&mut tx, job.id, &record, status, next_at).await?;
    if response.status == Some(410) {
        repo::disable(
            &mut tx,
            job.subscription_id,
            "the receiver answered 410 Gone",
        )
        .await?;
    }
    if let Some(wait) = next {
        queue::enqueue(
            &mut tx,
            DELIVER_KIND,
            &DeliverArgs {
                delivery_id: job.id,
            },
            Some(wait),
        )
        .await?;
    }
    tx.commit().await?;

    deliveries().add(1, &[KeyValue::new("outcome", outcome)]);
    if status == DeliveryStatus::Delivered {
        let lag = (OffsetDateTime::now_utc() - job.occurred_at).as_seconds_f64();
        delivery_lag().record(lag.max(0.0), &[]);
    }
    match (status, next) {
        (DeliveryStatus::Pending, Some(wait)) => tracing::info!(
            delivery = %job.id, attempt = number, status = ?response.status,
            error = response.error.as_deref(), retry_in = ?wait, "webhook attempt failed; will retry"
        ),
        (DeliveryStatus::Dead, _) => tracing::warn!(
            delivery = %job.id, attempt = number, status = ?response.status,
            error = response.error.as_deref(), "webhook delivery dead"
        ),
        _ => {}
    }
    Ok(())
}

/// One signed POST to the subscriber, to the address its name resolves to now, checked.
async fn attempt(settings: &WebhookSettings, job: &DeliveryJob, at: OffsetDateTime) -> Response {
    let failed = |error: String| Response {
        status: None,
        error: Some(error),
        retry_after: None,
    };
    let shared = match Shared::get(settings) {
        Ok(shared) => shared,
        Err(err) => return failed(format!("http client: {err}")),
    };
    let open = |ciphertext: &[u8], key_id: &str| {
        shared.vault.open(
            job.subscription_id,
            &Sealed {
                ciphertext: ciphertext.to_vec(),
                key_id: key_id.to_owned(),
            },
        )
    };
    let key = match open(&job.secret_ciphertext, &job.secret_key_id) {
        Ok(key) => key,
        Err(err) => return failed(format!("signing secret: {err}")),
    };
    let previous = match (&job.previous_secret_ciphertext, &job.previous_secret_key_id) {
        (Some(ciphertext), Some(key_id)) => match open(ciphertext, key_id) {
            Ok(key) => Some(key),
            Err(err) => return failed(format!("previous signing secret: {err}")),
        },
        _ => None,
    };
    let url = match ssrf::check_syntax(&job.url, settings) {
        Ok(url) => url,
        Err(err) => return failed(format!("url {err}")),
    };
    // The resolver checks again as it connects; this check names the refusal plainly, and is
    // the only one for an IP-literal URL, which no resolver sees.
    if let Err(err) = ssrf::resolve(&url, &settings.allowed_networks()).await {
        return failed(format!("url {err}"));
    }
    let body = match serde_json::to_vec(&serde_json::json!({
        "type": job.event_type,
        "timestamp": job.occurred_at.format(&Rfc3339).unwrap_or_default(),
        "data": job.payload,
    })) {
        Ok(body) => body,
        Err(err) => return failed(format!("payload: {err}")),
    };
    let id = job.event_id.to_string();
    let timestamp = at.unix_timestamp();
    // While a rotated-out secret is in its grace, both sign: a receiver holding either verifies.
    let signature = std::iter::once(&key)
        .chain(previous.as_ref())
        .map(|key| key.sign(&id, timestamp, &body))
        .collect::<Vec<_>>()
        .join(" ");

    let mut headers = http::HeaderMap::new();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(
            &tracing::Span::current().context(),
            &mut HeaderInjector(&mut headers),
        );
    });
    let request = shared
        .client
        .post(url.clone())
        .headers(headers)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body);
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_retry_after);
            Response {
                status: Some(status),
                error: (!response.status().is_success())
                    .then(|| format!("the receiver answered {status}")),
                retry_after,
            }
        }
        // The error's chain names the cause (timeout, refused, TLS) without the body.
        Err(err) => failed(error_chain(&err)),
    }
}

/// What every attempt in this process shares, built on first use from its settings: one HTTP
/// client, so connections to a receiver are pooled and reused, and the opened encryption keys.
struct Shared {
    client: reqwest::Client,
    vault: Vault,
}

impl Shared {
    fn get(settings: &WebhookSettings) -> Result<&'static Shared, reqwest::Error> {
        static SHARED: OnceLock<Shared> = OnceLock::new();
        if let Some(shared) = SHARED.get() {
            return Ok(shared);
        }
        let client = reqwest::Client::builder()
            // New connections go only where the SSRF rules allow, checked as they are made.
            .dns_resolver(std::sync::Arc::new(ssrf::CheckedResolver {
                allowed: settings.allowed_networks(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would connect wherever it resolves the name.
            .no_proxy()
            .timeout(settings.timeout)
            .user_agent(concat!("keel-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let built = Shared {
            client,
            vault: Vault::new(settings),
        };
        Ok(SHARED.get_or_init(|| built))
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// `wait` moved by up to 20 % either way, so receivers that failed together are not retried
/// together.
fn jittered(wait: Duration) -> Duration {
    let unit = f64::from(OsRng.next_u32()) / f64::from(u32::MAX);
    wait.mul_f64(0.8 + 0.4 * unit)
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn deliveries() -> &'static Counter<u64> {
    static DELIVERIES: OnceLock<Counter<u64>> = OnceLock::new();
    DELIVERIES.get_or_init(|| {
        global::meter("keel")
            .u64_counter("keel.webhooks.deliveries")
            .with_description(
                "Webhook delivery attempts by outcome: delivered, failed (will retry), dead, gone (410)",
            )
            .build()
    })
}

fn delivery_lag() -> &'static Histogram<f64> {
    static LAG: OnceLock<Histogram<f64>> = OnceLock::new();
    LAG.get_or_init(|| {
        global::meter("keel")
            .f64_histogram("keel.webhooks.delivery.lag")
            .with_unit("s")
            .with_description("From an event's commit to its successful delivery")
            .build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("999999999"), Some(MAX_RETRY_AFTER));
        let soon = std::time::SystemTime::now() + Duration::from_secs(120);
        let parsed = parse_retry_after(&httpdate::fmt_http_date(soon)).expect("a date");
        assert!(parsed > Duration::from_secs(100) && parsed <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..1000 {
            let wait = jittered(Duration::from_secs(100));
            assert!(wait >= Duration::from_secs(80) && wait <= Duration::from_secs(120));
        }
    }
}
