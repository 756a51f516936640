//! Telemetry over the real OTLP wire, both transports: `keel serve` exports to a receiver in
//! this test (`keel_tests::otlp`), which decodes the protobuf exactly as a collector would.

use std::collections::HashMap;

use keel_tests::{
    Keel, KeelOutput, TestPostgres,
    otlp::{OtlpCollector, Protocol, attribute, hex, string},
    service_role_url,
};
use opentelemetry_proto::tonic::{
    common::v1::any_value::Value as AnyValue,
    metrics::v1::{metric::Data as MetricData, number_data_point::Value as NumberValue},
    trace::v1::span::SpanKind,
};
use serde_json::json;

/// One registration, traced from the caller (`traceparent`), exported over `protocol` with
/// OTLP logs on: a SERVER span named by its route continuing the caller's trace, CLIENT
/// database spans inside it with the `db.*` attributes, the password hashing as a span, a
/// request-duration histogram point for the route, and the request's log record carrying the
/// same trace id — all flushed by the graceful stop (the batch delay is a minute).
async fn one_request_is_exported_over(protocol: Protocol) {
    let collector = OtlpCollector::start(protocol).await;
    let postgres = TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let keel = Keel::command(["serve"])
        .test_environment(&database_url)
        .envs([
            ("APP__TELEMETRY__OTLP_ENDPOINT", collector.url.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.name()),
            ("APP__TELEMETRY__OTLP_LOGS", "true"),
            ("APP__TELEMETRY__LOG_FORMAT", "json"),
            ("APP__TELEMETRY__LOG_FILTER", "info"),
            // Long enough that only the shutdown flush can deliver the spans in time.
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "60000"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
            ("OTEL_SERVICE_NAME", "keel-under-test"),
            ("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=keel-0"),
        ])
        .start()
        .await;
    let client = reqwest::Client::new();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = client
        .post(format!("{}/api/v1/auth/register", keel.base))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(
            &json!({"email": "traced@example.com", "password": "a traced passphrase",
                      "display_name": "Traced"}),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    // Work queued by a request runs in a trace of its own, linked to the request's.
    let queued_by = "0af7651916cd43dd8448eb211c80319c";
    let response = client
        .post(format!("{}/api/v1/auth/password-reset", keel.base))
        .header("traceparent", format!("00-{queued_by}-b7ad6b7169203331-01"))
        .json(&json!({"email": "traced@example.com"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 202);
    let owner = sqlx::PgPool::connect(&database_url).await.expect("connect");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM apalis.jobs WHERE status = 'Done'")
        .fetch_one(&owner)
        .await
        .expect("read the queue")
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reset task never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    keel.sigterm();
    let KeelOutput {
        code,
        stdout,
        stderr,
    } = keel.wait().await;
    assert_eq!(code, Some(0), "{stderr}");

    let received = collector.received();
    let names: Vec<&str> = received.spans.iter().map(|s| s.name.as_str()).collect();
    let server = received
        .spans
        .iter()
        .find(|s| s.name == "POST /api/v1/auth/register")
        .unwrap_or_else(|| panic!("{protocol:?}: no span named after the route among {names:?}"));
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(hex(&server.trace_id), trace_id, "traceparent not continued");
    assert_eq!(hex(&server.parent_span_id), "00f067aa0ba902b7");
    let attrs = &server.attributes;
    assert_eq!(
        attribute(attrs, "http.route"),
        string("/api/v1/auth/register")
    );
    assert_eq!(attribute(attrs, "http.request.method"), string("POST"));
    assert_eq!(
        attribute(attrs, "http.response.status_code"),
        Some(AnyValue::IntValue(201))
    );

    // The user's insert: a CLIENT span, a child of the request's, named by its summary.
    let insert = received
        .spans
        .iter()
        .find(|s| s.name == "INSERT users")
        .unwrap_or_else(|| panic!("{protocol:?}: no database span among {names:?}"));
    assert_eq!(insert.kind, SpanKind::Client as i32);
    assert_eq!(insert.trace_id, server.trace_id);
    assert_eq!(insert.parent_span_id, server.span_id);
    assert_eq!(
        attribute(&insert.attributes, "db.system.name"),
        string("postgresql")
    );
    assert_eq!(
        attribute(&insert.attributes, "db.operation.name"),
        string("INSERT")
    );
    assert_eq!(
        attribute(&insert.attributes, "db.collection.name"),
        string("users")
    );
    let text = format!("{:?}", attribute(&insert.attributes, "db.query.text"));
    assert!(text.contains("$1"), "placeholders, not values: {text}");
    assert!(!text.contains("traced@example.com"), "{text}");
    assert!(insert.start_time_unix_nano >= server.start_time_unix_nano);
    assert!(insert.end_time_unix_nano <= server.end_time_unix_nano);
    // Password hashing: the wait for a permit and the computation, inside the request.
    let hashing = received
        .spans
        .iter()
        .find(|s| s.name == "password")
        .unwrap_or_else(|| panic!("{protocol:?}: no password span among {names:?}"));
    assert_eq!(hashing.parent_span_id, server.span_id);
    assert!(
        received
            .spans
            .iter()
            .any(|s| s.name == "argon2id" && s.parent_span_id == hashing.span_id),
        "{names:?}"
    );

    let task = received
        .spans
        .iter()
        .find(|s| s.name == "process accounts.password_reset")
        .unwrap_or_else(|| panic!("{protocol:?}: no task span among {names:?}"));
    assert_eq!(task.kind, SpanKind::Consumer as i32);
    assert_ne!(hex(&task.trace_id), queued_by, "a trace of its own");
    assert!(
        task.links
            .iter()
            .any(|link| hex(&link.trace_id) == queued_by),
        "linked to the request that queued it: {task:?}"
    );
    assert!(
        received
            .spans
            .iter()
            .any(|s| s.trace_id == task.trace_id && s.name.starts_with("SELECT")),
        "the task's statements are in its trace"
    );

    let duration = received
        .metrics
        .iter()
        .find(|m| m.name == "http.server.request.duration")
        .unwrap_or_else(|| {
            panic!(
                "{protocol:?}: metrics received: {:?}",
                received.metric_names()
            )
        });
    let Some(MetricData::Histogram(histogram)) = &duration.data else {
        panic!("not a histogram: {duration:?}");
    };
    assert!(
        histogram.data_points.iter().any(|point| {
            attribute(&point.attributes, "http.route") == string("/api/v1/auth/register")
                && point.count == 1
                && point.explicit_bounds.contains(&0.25)
        }),
        "{duration:?}"
    );
    assert!(
        received
            .metric_names()
            .contains(&"db.client.operation.duration"),
        "{:?}",
        received.metric_names()
    );

    // The resource names the service, its version and environment, and what the platform
    // added through OTEL_RESOURCE_ATTRIBUTES.
    let resource = received.resources.first().expect("a resource");
    for (key, value) in [
        ("service.name", "keel-under-test"),
        ("service.version", env!("CARGO_PKG_VERSION")),
        ("deployment.environment.name", "test"),
        ("k8s.pod.name", "keel-0"),
    ] {
        assert_eq!(
            attribute(&resource.attributes, key),
            string(value),
            "{resource:?}"
        );
    }

    // The access log, over OTLP, in the request's trace; and on stdout, as JSON, too.
    let record = received
        .logs
        .iter()
        .find(|log| {
            format!("{:?}", log.body).contains("request completed")
                && hex(&log.trace_id) == trace_id
        })
        .unwrap_or_else(|| {
            panic!(
                "{protocol:?}: no OTLP log record of the request: {:#?}",
                received.logs.len()
            )
        });
    assert_eq!(record.span_id, server.span_id);
    let completed = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "request completed" && line["trace_id"] == trace_id)
        .unwrap_or_else(|| panic!("no JSON access log line with trace_id {trace_id}:\n{stdout}"));
    assert!(completed["span_id"].is_string(), "{completed}");
}

#[tokio::test]
async fn one_request_is_exported_over_grpc() {
    one_request_is_exported_over(Protocol::Grpc).await;
}

#[tokio::test]
async fn one_request_is_exported_over_http_protobuf() {
    one_request_is_exported_over(Protocol::HttpProtobuf).await;
}

/// README: `keel.auth.logins` counts login attempts by `outcome` — success, failure,
/// throttled — as exported over OTLP, the only way metrics leave the process.
#[tokio::test]
async fn login_attempts_are_counted_by_outcome() {
    let collector = OtlpCollector::start(Protocol::HttpProtobuf).await;
    let postgres = TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let keel = Keel::command(["serve"])
        .test_environment(&database_url)
        .envs([
            ("APP__TELEMETRY__OTLP_ENDPOINT", collector.url.as_str()),
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

    let received = collector.received();
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

/// The name Prometheus gives an OTLP metric (the collector's and Prometheus's own OTLP
/// translation): dots to underscores, the unit as a suffix, `_total` on counters.
fn prometheus_name(metric: &opentelemetry_proto::tonic::metrics::v1::Metric) -> String {
    let mut name = metric.name.replace('.', "_");
    match metric.unit.as_str() {
        "s" => name.push_str("_seconds"),
        "By" => name.push_str("_bytes"),
        "1" => name.push_str("_ratio"),
        _ => {}
    }
    if let Some(MetricData::Sum(sum)) = &metric.data
        && sum.is_monotonic
    {
        name.push_str("_total");
    }
    name
}

/// `observability/metrics.txt` lists every metric the dashboards and alert rules query
/// (`observability/check.sh` holds them to it). Here the app runs a little of everything — logins,
/// an order, its webhook and receipt, a password reset, the scheduler — and every listed name
/// must be among what it really exported, so renaming a metric breaks this test, not a
/// dashboard nobody looks at until an incident.
#[tokio::test]
async fn every_metric_the_dashboards_query_is_emitted() {
    let collector = OtlpCollector::start(Protocol::HttpProtobuf).await;
    let sink = keel_tests::SmtpSink::start().await;
    let receiver = keel_tests::receiver::Receiver::start().await;
    let postgres = TestPostgres::start().await;
    let database_url = postgres.create_database().await;
    let sink_port = sink.port().to_string();
    let keel = Keel::command(["serve"])
        .test_environment(&database_url)
        .envs([
            ("APP__TELEMETRY__OTLP_ENDPOINT", collector.url.as_str()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
            ("APP__EMAIL__ENABLED", "true"),
            ("APP__EMAIL__SMTP_HOST", "127.0.0.1"),
            ("APP__EMAIL__SMTP_PORT", sink_port.as_str()),
            ("APP__EMAIL__SMTP_TLS", "none"),
            ("APP__WORKER__TICK", "200ms"),
        ])
        .start()
        .await;
    let client = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/v1/{path}", keel.base);
    let owner = sqlx::PgPool::connect(&database_url).await.expect("connect");
    let sign_in = |email: &'static str| {
        let (client, api) = (&client, &api);
        async move {
            let body = json!({"email": email, "password": "a dashboard passphrase"});
            let response = client
                .post(api("auth/login"))
                .json(&body)
                .send()
                .await
                .expect("login");
            assert_eq!(response.status(), 200);
            let session: serde_json::Value = response.json().await.expect("a session");
            session["access_token"]
                .as_str()
                .expect("a token")
                .to_owned()
        }
    };
    for email in ["admin@example.com", "buyer@example.com"] {
        let response = client
            .post(api("auth/register"))
            .json(
                &json!({"email": email, "password": "a dashboard passphrase",
                          "display_name": "D"}),
            )
            .send()
            .await
            .expect("register");
        assert_eq!(response.status(), 201);
    }
    sqlx::query("UPDATE users SET role = 'admin' WHERE email = 'admin@example.com'")
        .execute(&owner)
        .await
        .expect("make an admin");
    let wrong = client
        .post(api("auth/login"))
        .json(&json!({"email": "buyer@example.com", "password": "not the passphrase"}))
        .send()
        .await
        .expect("login");
    assert_eq!(wrong.status(), 401);
    let admin = sign_in("admin@example.com").await;
    let buyer = sign_in("buyer@example.com").await;
    let reset = client
        .post(api("auth/password-reset"))
        .json(&json!({"email": "buyer@example.com"}))
        .send()
        .await
        .expect("reset");
    assert_eq!(reset.status(), 202);
    let me = client
        .get(api("users/me"))
        .bearer_auth(&buyer)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), 200);
    let hooks = client
        .get(api("webhooks"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("webhooks");
    assert_eq!(hooks.status(), 200);
    // Without any event type (the example domain removed), nothing can be delivered, so the
    // webhook metrics cannot appear; everything else still must.
    let mut exempt: Vec<&str> = Vec::new();
    if keel::outbox::event_types().next().is_none() {
        exempt.extend([
            "keel_webhooks_deliveries_total",
            "keel_webhooks_delivery_lag_seconds",
        ]);
    }
    let orders = 0;
    // example-domain:begin
    let orders = orders + order_with_a_webhook(&client, &api, &admin, &buyer, &receiver).await;
    // example-domain:end
    if orders > 0 {
        receiver
            .wait_for(orders, std::time::Duration::from_secs(30))
            .await;
    }
    // The reset email, and each order's receipt.
    sink.wait_for(1 + orders, std::time::Duration::from_secs(30))
        .await;
    // The scheduler ran each job at start; give its tick a moment to record the outbox lag.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    keel.sigterm();
    let KeelOutput { code, stderr, .. } = keel.wait().await;
    assert_eq!(code, Some(0), "{stderr}");

    let received = collector.received();
    let emitted: std::collections::BTreeSet<String> =
        received.metrics.iter().map(prometheus_name).collect();
    let listed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../observability/metrics.txt"),
    )
    .expect("observability/metrics.txt");
    let missing: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter(|name| !emitted.contains(*name) && !exempt.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboards or alerts query {missing:?}, which the app did not emit; it emitted {emitted:?}"
    );
}

// example-domain:begin
/// A subscription to `order.placed` at `receiver`, a product, and one order of it: one
/// delivery and one receipt follow. Returns the number of orders placed.
async fn order_with_a_webhook(
    client: &reqwest::Client,
    api: &impl Fn(&str) -> String,
    admin: &str,
    buyer: &str,
    receiver: &keel_tests::receiver::Receiver,
) -> usize {
    let subscribed = client
        .post(api("webhooks"))
        .bearer_auth(admin)
        .json(&json!({"url": receiver.url("/"), "events": ["order.placed"]}))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(subscribed.status(), 201);
    let product = client
        .post(api("products"))
        .bearer_auth(admin)
        .json(
            &json!({"sku": "DASH-1", "name": "Dial", "description": "", "price_cents": 999,
                      "currency": "EUR", "stock": 100}),
        )
        .send()
        .await
        .expect("create a product");
    assert_eq!(product.status(), 201);
    let product: serde_json::Value = product.json().await.expect("a product");
    let order = client
        .post(api("orders"))
        .bearer_auth(buyer)
        .json(&json!({"items": [{"product_id": product["id"], "quantity": 2}]}))
        .send()
        .await
        .expect("order");
    assert_eq!(order.status(), 201);
    1
}
// example-domain:end
