//! Database calls as CLIENT spans and a duration histogram, from the events sqlx already emits.
//!
//! sqlx reports every statement it finished (`sqlx::query`: the SQL, rows, elapsed) and, when
//! asked, every pool checkout (`sqlx::pool::acquire`: how long it waited) as tracing events in
//! the caller's span. This layer turns each statement into a span that ends now and started
//! `elapsed` ago, a child of the span it ran in, named by its query summary (`SELECT users`),
//! with the OpenTelemetry database attributes — the SQL text as written, with `$1`
//! placeholders, never parameter values, which sqlx never puts in these events.

use std::time::{Duration, SystemTime};

use opentelemetry::{
    KeyValue, global,
    metrics::Histogram,
    trace::{SpanKind, TraceContextExt as _, Tracer as _},
};
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{layer::Context, registry::LookupSpan};

/// Targets of the sqlx events this layer reads, for its filter.
pub const QUERY_TARGET: &str = "sqlx::query";
pub const ACQUIRE_TARGET: &str = "sqlx::pool::acquire";

/// Bucket bounds (seconds) for durations of requests and database work: the ones the
/// OpenTelemetry HTTP semantic conventions recommend.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

pub struct DbLayer {
    tracer: opentelemetry_sdk::trace::Tracer,
    operations: Histogram<f64>,
    waits: Histogram<f64>,
}

impl DbLayer {
    pub fn new(tracer: opentelemetry_sdk::trace::Tracer) -> Self {
        let meter = global::meter("keel");
        Self {
            tracer,
            operations: meter
                .f64_histogram("db.client.operation.duration")
                .with_unit("s")
                .with_description("Duration of database statements")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            waits: meter
                .f64_histogram("db.client.connection.wait_time")
                .with_unit("s")
                .with_description("Time to obtain a connection from the pool")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
        }
    }
}

/// The fields of one sqlx event.
#[derive(Default)]
struct Fields {
    summary: String,
    statement: String,
    elapsed_secs: Option<f64>,
    acquired_after_secs: Option<f64>,
    rows_returned: Option<u64>,
    rows_affected: Option<u64>,
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            "elapsed_secs" => self.elapsed_secs = Some(value),
            "acquired_after_secs" => self.acquired_after_secs = Some(value),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "rows_returned" => self.rows_returned = Some(value),
            "rows_affected" => self.rows_affected = Some(value),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => value.clone_into(&mut self.summary),
            "db.statement" => value.clone_into(&mut self.statement),
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S> tracing_subscriber::Layer<S> for DbLayer
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let target = event.metadata().target();
        if target != QUERY_TARGET && target != ACQUIRE_TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(waited) = fields.acquired_after_secs {
            self.waits.record(waited, &[]);
            return;
        }
        let Some(elapsed) = fields.elapsed_secs else {
            return;
        };
        // sqlx gives the whole statement only when it is longer than its four-word summary.
        let sql = if fields.statement.trim().is_empty() {
            fields.summary.trim_end_matches(" …")
        } else {
            fields.statement.trim()
        };
        let summary = Summary::of(sql);
        let mut attributes = vec![KeyValue::new("db.system.name", "postgresql")];
        if let Some(operation) = summary.operation {
            attributes.push(KeyValue::new("db.operation.name", operation));
        }
        if let Some(collection) = summary.collection() {
            attributes.push(KeyValue::new("db.collection.name", collection.to_owned()));
        }
        self.operations.record(elapsed, &attributes);

        // A statement outside any traced work (a scheduler tick's bookkeeping) would be a
        // trace of one span: noise. Only statements inside a span become spans.
        let Some(parent) = ctx.event_span(event) else {
            return;
        };
        let parent = tracing::dispatcher::get_default(|dispatch| {
            tracing_opentelemetry::get_otel_context(&parent.id(), dispatch)
        });
        let Some(parent) = parent else { return };
        if !parent.span().span_context().is_valid() {
            return;
        }
        let end = SystemTime::now();
        let start = end
            .checked_sub(Duration::from_secs_f64(elapsed.max(0.0)))
            .unwrap_or(end);
        attributes.push(KeyValue::new("db.query.summary", summary.text.clone()));
        attributes.push(KeyValue::new("db.query.text", sql.to_owned()));
        if let Some(rows) = fields.rows_returned.filter(|rows| *rows > 0) {
            attributes.push(KeyValue::new(
                "db.response.returned_rows",
                i64::try_from(rows).unwrap_or(i64::MAX),
            ));
        }
        let mut span = self
            .tracer
            .span_builder(summary.text)
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        opentelemetry::trace::Span::end_with_timestamp(&mut span, end);
    }
}

/// What a statement does to what: `SELECT users`, `INSERT orders`, ... in the form of the
/// OpenTelemetry `db.query.summary` (operations and the tables they name, in order).
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub text: String,
    /// The first operation (`SELECT`, `INSERT`, `UPDATE`, `DELETE`, ...).
    pub operation: Option<&'static str>,
    /// The first table named, if any.
    collections: Vec<String>,
}

impl Summary {
    pub fn collection(&self) -> Option<&str> {
        self.collections.first().map(String::as_str)
    }

    /// Reads `sql` word by word, skipping string literals, quoted identifiers are kept as
    /// names; at most a few parts, so a long statement gives a short name.
    pub fn of(sql: &str) -> Self {
        const OPERATIONS: &[&str] = &[
            "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "CALL", "LOCK", "TRUNCATE",
        ];
        const BEFORE_TABLE: &[&str] = &["FROM", "INTO", "JOIN", "UPDATE", "TABLE"];
        let mut parts: Vec<String> = Vec::new();
        let mut operation = None;
        let mut collections = Vec::new();
        let mut expect_table = false;
        for word in words(sql) {
            let upper = word.to_ascii_uppercase();
            if let Some(op) = OPERATIONS.iter().find(|op| **op == upper) {
                operation.get_or_insert(*op);
                if parts.last().is_none_or(|last| last != op) {
                    parts.push((*op).to_owned());
                }
                expect_table = *op == "UPDATE" || *op == "TRUNCATE" || *op == "LOCK";
                continue;
            }
            if BEFORE_TABLE.contains(&upper.as_str()) {
                expect_table = true;
                continue;
            }
            if expect_table {
                expect_table = false;
                let name = word.trim_matches('"');
                // `SELECT ... FROM (subquery)`, `DELETE FROM ONLY t`, function calls: no table.
                let is_name = name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                    && name.chars().next().is_some_and(|c| !c.is_ascii_digit());
                if upper == "ONLY" {
                    expect_table = true;
                } else if is_name && !collections.iter().any(|c| c == name) {
                    collections.push(name.to_owned());
                    parts.push(name.to_owned());
                }
            }
            if parts.len() >= 6 {
                break;
            }
        }
        let text = if parts.is_empty() {
            sql.split_whitespace().next().unwrap_or("SQL").to_owned()
        } else {
            parts.join(" ")
        };
        Self {
            text,
            operation,
            collections,
        }
    }
}

/// The words of `sql`: identifiers and keywords, with literals, comments and punctuation left
/// out. Good enough to name a statement, not to parse one.
fn words(sql: &str) -> impl Iterator<Item = &str> {
    let bytes = sql.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'\'' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                }
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'"' => {
                    let start = i;
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += 1;
                    }
                    i = (i + 1).min(bytes.len());
                    return sql.get(start..i);
                }
                c if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'$' => {
                    let start = i;
                    while i < bytes.len()
                        && (bytes[i].is_ascii_alphanumeric()
                            || bytes[i] == b'_'
                            || bytes[i] == b'.'
                            || bytes[i] == b'$')
                    {
                        i += 1;
                    }
                    return sql.get(start..i);
                }
                _ => i += 1,
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_named_by_operation_and_table() {
        for (sql, text, operation, collection) in [
            (
                "SELECT id, email FROM users WHERE id = $1",
                "SELECT users",
                Some("SELECT"),
                Some("users"),
            ),
            (
                "INSERT INTO outbox_events (id, type) VALUES ($1, 'a FROM b')",
                "INSERT outbox_events",
                Some("INSERT"),
                Some("outbox_events"),
            ),
            (
                "UPDATE products SET stock = stock - $2 WHERE id = $1",
                "UPDATE products",
                Some("UPDATE"),
                Some("products"),
            ),
            (
                "DELETE FROM apalis.jobs WHERE done_at < $1",
                "DELETE apalis.jobs",
                Some("DELETE"),
                Some("apalis.jobs"),
            ),
            (
                "SELECT o.id FROM orders o JOIN order_items i ON i.order_id = o.id",
                "SELECT orders order_items",
                Some("SELECT"),
                Some("orders"),
            ),
            (
                "WITH gone AS (DELETE FROM sessions RETURNING id) SELECT count(*) FROM gone",
                "DELETE sessions SELECT gone",
                Some("DELETE"),
                Some("sessions"),
            ),
            ("SELECT 1", "SELECT", Some("SELECT"), None),
            ("BEGIN", "BEGIN", None, None),
        ] {
            let summary = Summary::of(sql);
            assert_eq!(summary.text, text, "{sql}");
            assert_eq!(summary.operation, operation, "{sql}");
            assert_eq!(summary.collection(), collection, "{sql}");
        }
    }
}
