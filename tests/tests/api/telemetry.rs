//! Telemetry over the real OTLP/HTTP wire: `keel serve` exports to a receiver in this test,
//! which decodes the protobuf exactly as a collector would.

use std::sync::{Arc, Mutex};

use keel_tests::{Keel, KeelOutput, TestPostgres, free_port};
use opentelemetry_proto::tonic::{
    collector::{metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest},
    common::v1::any_value::Value as AnyValue,
    trace::v1::{Span, span::SpanKind},
};
use poem::{
    Body, EndpointExt as _, Route, Server, handler, listener::TcpListener, post, web::Data,
};
use prost::Message as _;

#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    metric_names: Vec<String>,
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
                received
                    .metric_names
                    .extend(scope.metrics.into_iter().map(|m| m.name));
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
            .metric_names
            .iter()
            .any(|m| m == "http.server.request.duration"),
        "metrics received: {:?}",
        received.metric_names
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
