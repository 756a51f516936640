//! Telemetry over the real OTLP/HTTP wire: `keel serve` exports to a receiver in this test,
//! which decodes the protobuf exactly as a collector would.

use std::sync::{Arc, Mutex};

use std::collections::HashMap;

use keel_tests::{Keel, KeelOutput, TestPostgres, free_port, service_role_url};
use opentelemetry_proto::tonic::{
    collector::{metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest},
    common::v1::any_value::Value as AnyValue,
    metrics::v1::{Metric, metric::Data as MetricData, number_data_point::Value as NumberValue},
    trace::v1::{Span, span::SpanKind},
};
use poem::{
    Body, EndpointExt as _, Route, Server, handler, listener::TcpListener, post, web::Data,
};
use prost::Message as _;
use serde_json::json;

#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    metrics: Vec<Metric>,
}

impl Received {
    fn metric_names(&self) -> Vec<&str> {
        self.metrics.iter().map(|m| m.name.as_str()).collect()
    }
}

type Shared = Arc<Mutex<Received>>;

#[handler]
async fn traces(body: Body, received: Data<&Shared>) -> &'static str {
    let bytes = body.into_vec().await.unwrap_or_default();
    if let Ok(request) = ExportTraceServiceRequest::decode(bytes.as_slice())
        && let Ok(mut received) = received.lock()
    {
        for resource in request.resource_spans {
            for scope in resource.scope_spans {
                received.spans.extend(scope.spans);
            }
        }
    }
    ""
}

#[handler]
async fn metrics(body: Body, received: Data<&Shared>) -> &'static str {
    let bytes = body.into_vec().await.unwrap_or_default();
    if let Ok(request) = ExportMetricsServiceRequest::decode(bytes.as_slice())
        && let Ok(mut received) = received.lock()
    {
        for resource in request.resource_metrics {
            for scope in resource.scope_metrics {
                received.metrics.extend(scope.metrics);
            }
        }
    }
    ""
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v| v.value)
}

#[tokio::test]
async fn requests_are_exported_as_server_spans_continuing_traceparent_and_flushed_on_stop() {
    let received = Shared::default();
    let collector_port = free_port();
    let collector = Route::new()
        .at("/v1/traces", post(traces))
        .at("/v1/metrics", post(metrics))
        .data(received.clone());
    tokio::spawn(
        Server::new(TcpListener::bind(format!("127.0.0.1:{collector_port}"))).run(collector),
    );

    let postgres = TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let collector_url = format!("http://127.0.0.1:{collector_port}");
    let keel = Keel::command(["serve"])
        .test_environment(&database_url)
        .envs([
            ("APP__TELEMETRY__OTLP_ENDPOINT", collector_url.as_str()),
            ("APP__TELEMETRY__LOG_FORMAT", "json"),
            ("APP__TELEMETRY__LOG_FILTER", "info"),
            // Long enough that only the shutdown flush can deliver the spans in time.
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
            ("OTEL_SERVICE_NAME", "keel-under-test"),
        ])
        .start()
        .await;
    let client = reqwest::Client::new();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = client
        .get(format!("{}/health/ready", keel.base))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);

    keel.sigterm();
    let KeelOutput {
        code,
        stdout,
        stderr,
    } = keel.wait().await;
    assert_eq!(code, Some(0), "{stderr}");

    let received = received.lock().expect("lock");
    let span = received
        .spans
        .iter()
        .find(|s| s.name == "GET /health/ready")
        .unwrap_or_else(|| {
            let names: Vec<&str> = received.spans.iter().map(|s| s.name.as_str()).collect();
            panic!("no span named after the route among {names:?}")
        });
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(hex(&span.trace_id), trace_id, "traceparent not continued");
    assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(
        attribute(span, "http.route"),
        Some(AnyValue::StringValue("/health/ready".into()))
    );
    assert_eq!(
        attribute(span, "http.request.method"),
        Some(AnyValue::StringValue("GET".into()))
    );
    assert_eq!(
        attribute(span, "http.response.status_code"),
        Some(AnyValue::IntValue(200))
    );
    assert!(
        received
            .metric_names()
            .contains(&"http.server.request.duration"),
        "metrics received: {:?}",
        received.metric_names()
    );

    // JSON logs inside the request carry the same trace id.
    let completed = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "request completed" && line["trace_id"] == trace_id)
        .unwrap_or_else(|| panic!("no JSON access log line with trace_id {trace_id}:\n{stdout}"));
    assert!(completed["span_id"].is_string(), "{completed}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP receiver on a free port: what it got, and its base URL.
fn start_collector() -> (Shared, String) {
    let received = Shared::default();
    let port = free_port();
    let collector = Route::new()
        .at("/v1/traces", post(traces))
        .at("/v1/metrics", post(metrics))
        .data(received.clone());
    tokio::spawn(Server::new(TcpListener::bind(format!("127.0.0.1:{port}"))).run(collector));
    (received, format!("http://127.0.0.1:{port}"))
}

/// README: `keel.auth.logins` counts login attempts by `outcome` — success, failure,
/// throttled — as exported over OTLP, the only way metrics leave the process.
#[tokio::test]
async fn login_attempts_are_counted_by_outcome() {
    let (received, collector_url) = start_collector();
    let postgres = TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let keel = Keel::command(["serve"])
        .test_environment(&database_url)
        .envs([
            ("APP__TELEMETRY__OTLP_ENDPOINT", collector_url.as_str()),
            ("APP__AUTH__THROTTLE__MAX_FAILURES_PER_ACCOUNT", "3"),
            // Only the flush at shutdown exports: one cumulative point per outcome.
            ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
        ])
        .start()
        .await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{}/api/v1/auth/{path}", keel.base))
            .json(&body)
            .send()
    };
    let (email, password) = ("counted@example.com", "a counted passphrase");
    let registered = post(
        "register",
        json!({"email": email, "password": password, "display_name": "C"}),
    )
    .await
    .expect("register");
    assert_eq!(registered.status(), 201);
    let login = |password: &'static str| {
        let request = post("login", json!({"email": email, "password": password}));
        async move { request.await.expect("login").status().as_u16() }
    };
    let mut statuses = Vec::new();
    for attempt in [
        password,
        password,
        "wrong guess one",
        "wrong guess two",
        "wrong guess three",
        "wrong guess four",
    ] {
        statuses.push(login(attempt).await);
    }
    assert_eq!(statuses, [200, 200, 401, 401, 401, 429]);

    keel.sigterm();
    let KeelOutput { code, stderr, .. } = keel.wait().await;
    assert_eq!(code, Some(0), "{stderr}");

    let received = received.lock().expect("lock");
    let mut counted = HashMap::new();
    for metric in received
        .metrics
        .iter()
        .filter(|m| m.name == "keel.auth.logins")
    {
        let Some(MetricData::Sum(sum)) = &metric.data else {
            panic!("keel.auth.logins is not a sum: {metric:?}");
        };
        assert!(sum.is_monotonic, "a counter: {metric:?}");
        for point in &sum.data_points {
            let outcome = point
                .attributes
                .iter()
                .find(|kv| kv.key == "outcome")
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value);
            let Some(AnyValue::StringValue(outcome)) = outcome else {
                panic!("a login point without an outcome: {point:?}");
            };
            let Some(NumberValue::AsInt(value)) = &point.value else {
                panic!("a login count that is no integer: {point:?}");
            };
            // Cumulative: the latest export holds the total.
            let total = counted.entry(outcome).or_insert(0);
            *total = (*value).max(*total);
        }
    }
    let expected: HashMap<String, i64> = [("success", 2), ("failure", 3), ("throttled", 1)]
        .map(|(outcome, n)| (outcome.to_owned(), n))
        .into();
    assert_eq!(
        counted,
        expected,
        "metrics received: {:?}",
        received.metric_names()
    );
}

/// README: "Passwords, tokens and the database URL are never logged." A whole account's life
/// at the most verbose level every crate offers (`trace`), then a start that fails on a wrong
/// database password; no secret may appear in anything the process wrote.
#[tokio::test]
async fn secrets_never_reach_the_logs_even_at_trace() {
    let postgres = TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    // The service role's password is whatever APP__DATABASE__URL says; make it findable.
    let service_password = format!("svc-secret-{unique}");
    let mut service_url = url::Url::parse(&service_role_url(&database_url)).expect("URL");
    service_url
        .set_password(Some(&service_password))
        .expect("a password");
    let owner_password = url::Url::parse(&database_url)
        .expect("URL")
        .password()
        .unwrap_or_default()
        .to_owned();
    let keel = Keel::command(["serve"])
        .test_environment(&database_url)
        .envs([
            ("APP__DATABASE__URL", service_url.as_str()),
            ("APP__TELEMETRY__LOG_FILTER", "trace"),
            ("APP__TELEMETRY__LOG_FORMAT", "json"),
        ])
        .start()
        .await;

    let client = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/v1/{path}", keel.base);
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        (status, body)
    };
    let (email, password) = ("logged@example.com", format!("first-secret-{unique}"));
    let new_password = format!("second-secret-{unique}");
    let wrong_password = format!("wrong-secret-{unique}");
    let forged_token = format!("forged.{unique}.token");

    let (status, _) = send(
        client
            .post(api("auth/register"))
            .json(&json!({"email": email, "password": password, "display_name": "Logged"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = send(
        client
            .post(api("auth/login"))
            .json(&json!({"email": email, "password": wrong_password})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, first) = send(
        client
            .post(api("auth/login"))
            .json(&json!({"email": email, "password": password})),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = send(
        client
            .post(api("auth/refresh"))
            .json(&json!({"refresh_token": first["refresh_token"]})),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let token = |pair: &serde_json::Value, field: &str| {
        pair[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {pair}"))
            .to_owned()
    };
    let (first_access, first_refresh) = (
        token(&first, "access_token"),
        token(&first, "refresh_token"),
    );
    let (access, second_refresh) = (
        token(&second, "access_token"),
        token(&second, "refresh_token"),
    );
    let access = access.as_str();
    let (status, _) = send(
        client
            .put(api("users/me/password"))
            .bearer_auth(access)
            .json(&json!({"current_password": password, "new_password": new_password})),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(client.get(api("users/me")).bearer_auth(&forged_token)).await;
    assert_eq!(status, 401);
    // A spent token presented again: the reuse path logs a warning.
    let (status, _) = send(
        client
            .post(api("auth/refresh"))
            .json(&json!({"refresh_token": first["refresh_token"]})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = send(
        client
            .post(api("auth/logout"))
            .bearer_auth(access)
            .json(&json!({"refresh_token": second["refresh_token"]})),
    )
    .await;
    assert_eq!(status, 204);

    keel.sigterm();
    let served = keel.wait().await;
    assert_eq!(served.code, Some(0), "{}", served.stderr);
    // Verbose enough to show every SQL statement (sqlx logs them at debug).
    assert!(
        served
            .stdout
            .lines()
            .any(|line| line.contains(r#""level":"DEBUG","#) && line.contains("sqlx::query")),
        "debug logging was not on:\n{}",
        served.stdout
    );

    // A start that cannot log in to the database says so, without the password it tried.
    let mut refused_url = url::Url::parse(&database_url).expect("URL");
    let refused_password = format!("refused-secret-{unique}");
    refused_url
        .set_password(Some(&refused_password))
        .expect("a password");
    let refused = Keel::command(["serve"])
        .test_environment(&database_url)
        .envs([
            ("APP__DATABASE__MIGRATION_URL", refused_url.as_str()),
            ("APP__TELEMETRY__LOG_FILTER", "trace"),
        ])
        .run();
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("password authentication failed"),
        "{}",
        refused.stderr
    );

    let secrets = [
        ("the password", password.as_str()),
        ("the new password", new_password.as_str()),
        ("a wrong password", wrong_password.as_str()),
        ("an access token", first_access.as_str()),
        ("an access token", access),
        ("a refresh token", first_refresh.as_str()),
        ("a refresh token", second_refresh.as_str()),
        ("a forged token", forged_token.as_str()),
        ("the service's database password", service_password.as_str()),
        ("the owner's database password", owner_password.as_str()),
        ("a refused database password", refused_password.as_str()),
    ];
    for (stream, text) in [
        ("serve stdout", &served.stdout),
        ("serve stderr", &served.stderr),
        ("refused start stdout", &refused.stdout),
        ("refused start stderr", &refused.stderr),
    ] {
        for (what, secret) in secrets.iter().filter(|(_, secret)| !secret.is_empty()) {
            if let Some(line) = text.lines().find(|line| line.contains(secret)) {
                panic!("{what} is in the {stream}: {line}");
            }
        }
    }
}
