//! Logs, traces and metrics: set up in one place, flushed in one place.
//!
//! Spans always get OpenTelemetry ids, exporter or not, so every JSON log line inside a request
//! carries `trace_id`/`span_id` and an incoming W3C `traceparent` is continued. Export over
//! OTLP — gRPC or HTTP/protobuf — starts when `telemetry.otlp_endpoint` or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; the exporters read the other standard `OTEL_*`
//! variables (headers, timeouts, batch and export intervals) themselves.
//!
//! What is traced: the SERVER span of each request (`middleware`), a CLIENT span per database
//! statement ([`db`]), password hashing (wait and compute), webhook and SMTP calls, and each
//! background task, linked to the trace that queued it (`jobs::queue`).

mod db;
mod process;

pub use db::DURATION_BUCKETS;

use anyhow::Context as _;
use opentelemetry::{KeyValue, global, trace::TraceContextExt as _, trace::TracerProvider as _};
use opentelemetry_otlp::{LogExporter, MetricExporter, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::{
    Resource,
    logs::SdkLoggerProvider,
    metrics::SdkMeterProvider,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider},
};
use tracing_subscriber::{
    EnvFilter, Layer as _,
    filter::{LevelFilter, Targets},
    layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

use crate::config::{LogFormat, OtlpProtocol, TelemetrySettings};

/// Owns the exporters; [`Telemetry::shutdown`] flushes whatever is still buffered.
#[must_use = "dropping Telemetry without shutdown() may lose the last spans"]
pub struct Telemetry {
    tracer_provider: SdkTracerProvider,
    meter_provider: Option<SdkMeterProvider>,
    logger_provider: Option<SdkLoggerProvider>,
    /// Dropped last: writes out the log lines still queued.
    _log_writer: tracing_appender::non_blocking::WorkerGuard,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Err(err) = self.tracer_provider.shutdown() {
            eprintln!("telemetry: flushing traces failed: {err}");
        }
        if let Some(meters) = self.meter_provider
            && let Err(err) = meters.shutdown()
        {
            eprintln!("telemetry: flushing metrics failed: {err}");
        }
        if let Some(logs) = self.logger_provider
            && let Err(err) = logs.shutdown()
        {
            eprintln!("telemetry: flushing logs failed: {err}");
        }
    }
}

/// Where and how to export, once settings and the standard variables are read together.
struct Export {
    /// None: the exporters read `OTEL_EXPORTER_OTLP_ENDPOINT` (and per-signal variants).
    base: Option<String>,
    protocol: OtlpProtocol,
}

impl Export {
    fn from(settings: &TelemetrySettings) -> Option<Self> {
        let from_env = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .ok()
            .filter(|value| !value.trim().is_empty());
        if settings.otlp_endpoint.is_none() && from_env.is_none() {
            return None;
        }
        let protocol = settings
            .otlp_protocol
            .or_else(|| {
                std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
                    .ok()
                    .and_then(|value| value.parse().ok())
            })
            .unwrap_or(OtlpProtocol::HttpProtobuf);
        Some(Self {
            base: settings
                .otlp_endpoint
                .as_deref()
                .map(|base| base.trim_end_matches('/').to_owned()),
            protocol,
        })
    }

    /// The endpoint to give a signal's exporter: the base itself for gRPC, base + the signal's
    /// path for HTTP.
    fn endpoint(&self, http_path: &str) -> Option<String> {
        self.base.as_ref().map(|base| match self.protocol {
            OtlpProtocol::Grpc => base.clone(),
            OtlpProtocol::HttpProtobuf => format!("{base}{http_path}"),
        })
    }
}

/// Builds one signal's exporter over the chosen transport.
macro_rules! exporter {
    ($kind:ident, $export:expr, $path:literal) => {{
        let export: &Export = $export;
        match export.protocol {
            OtlpProtocol::Grpc => {
                let mut builder = $kind::builder().with_tonic();
                if let Some(endpoint) = export.endpoint($path) {
                    builder = builder.with_endpoint(endpoint);
                }
                builder.build()
            }
            OtlpProtocol::HttpProtobuf => {
                let mut builder = $kind::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
                if let Some(endpoint) = export.endpoint($path) {
                    builder = builder.with_endpoint(endpoint);
                }
                builder.build()
            }
        }
        .context(concat!("building the OTLP ", stringify!($kind)))
    }};
}

/// Installs the global subscriber, propagator and (when configured) OTLP exporters. Called
/// inside the Tokio runtime: the gRPC exporters need it.
pub fn init(settings: &TelemetrySettings, environment: &str) -> anyhow::Result<Telemetry> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    // Resource::builder() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the chart puts
    // the pod, namespace and node there); the standard variable names the service when set.
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(settings.service_name.clone());
    }
    // One per process, so replicas' series stay apart (Prometheus's `instance` label), unless
    // the platform names the instance itself.
    let named_instance = std::env::var("OTEL_RESOURCE_ATTRIBUTES")
        .is_ok_and(|attributes| attributes.contains("service.instance.id="));
    if !named_instance {
        resource = resource.with_attribute(KeyValue::new(
            "service.instance.id",
            uuid::Uuid::new_v4().to_string(),
        ));
    }
    let resource = resource
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("deployment.environment.name", environment.to_owned()),
        ])
        .build();

    let mut tracer_provider = SdkTracerProvider::builder().with_resource(resource.clone());
    if std::env::var_os("OTEL_TRACES_SAMPLER").is_none() {
        tracer_provider = tracer_provider.with_sampler(Sampler::ParentBased(Box::new(
            Sampler::TraceIdRatioBased(settings.sampling_ratio),
        )));
    }
    let mut meter_provider = None;
    let mut logger_provider = None;
    let export = Export::from(settings);
    if let Some(export) = &export {
        tracer_provider =
            tracer_provider.with_batch_exporter(exporter!(SpanExporter, export, "/v1/traces")?);
        let meters = SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_periodic_exporter(exporter!(MetricExporter, export, "/v1/metrics")?)
            .build();
        global::set_meter_provider(meters.clone());
        meter_provider = Some(meters);
        if settings.otlp_logs {
            logger_provider = Some(
                SdkLoggerProvider::builder()
                    .with_resource(resource)
                    .with_batch_exporter(exporter!(LogExporter, export, "/v1/logs")?)
                    .build(),
            );
        }
    }
    let tracer_provider = tracer_provider.build();
    let tracer = tracer_provider.tracer("keel");
    process::observe();

    let log_filter = || -> anyhow::Result<EnvFilter> {
        match std::env::var("RUST_LOG") {
            Ok(directives) if !directives.is_empty() => {
                EnvFilter::try_new(&directives).context("RUST_LOG is not a valid filter")
            }
            _ => EnvFilter::try_new(&settings.log_filter).context("telemetry.log_filter"),
        }
    };
    // Lines go to stdout from a thread of their own, batched into few writes: a write(2) per
    // line on the request path cost more than formatting the line. Never lossy: when the
    // queue (128k lines) is full, logging waits rather than dropping lines.
    let (writer, log_writer) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("keel-log-writer")
        .finish(std::io::BufWriter::new(std::io::stdout()));
    let logs = match settings.log_format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_target(true)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => json_logs().with_writer(writer).boxed(),
    };
    // Traces have their own filter: a quiet log level must not hide request spans.
    let traces = tracing_opentelemetry::layer()
        .with_tracer(tracer.clone())
        .with_filter(LevelFilter::INFO);
    // sqlx's per-statement and per-checkout events, whatever the log level says. Spans at
    // INFO pass too: a layer sees only the spans its own filter lets through, and a statement
    // needs the span it ran in to become its child.
    let statements = db::DbLayer::new(tracer).with_filter(
        Targets::new()
            .with_default(LevelFilter::INFO)
            .with_target(db::QUERY_TARGET, LevelFilter::DEBUG)
            .with_target(db::ACQUIRE_TARGET, LevelFilter::DEBUG),
    );
    // The same records as stdout, over OTLP, under the same filter.
    let otlp_logs = match &logger_provider {
        Some(provider) => Some(
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(provider)
                .with_filter(log_filter()?),
        ),
        None => None,
    };

    tracing_subscriber::registry()
        .with(logs.with_filter(log_filter()?))
        .with(traces)
        .with(statements)
        .with(otlp_logs)
        .try_init()
        .context("a global tracing subscriber was already installed")?;

    Ok(Telemetry {
        tracer_provider,
        meter_provider,
        logger_provider,
        _log_writer: log_writer,
    })
}

fn json_logs<S>() -> json_subscriber::fmt::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let mut layer = json_subscriber::fmt::layer()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true);
    layer
        .inner_layer_mut()
        .add_multiple_dynamic_fields(|event, ctx, writer| {
            let Some(span) = ctx.event_span(event) else {
                return;
            };
            let cx = tracing::dispatcher::get_default(|dispatch| {
                tracing_opentelemetry::get_otel_context(&span.id(), dispatch)
            });
            if let Some(cx) = cx {
                let span_context = cx.span().span_context().clone();
                if span_context.is_valid() {
                    // Hex strings always serialize; there is no failure to report here.
                    let _ = writer.write_field("trace_id", span_context.trace_id().to_string());
                    let _ = writer.write_field("span_id", span_context.span_id().to_string());
                }
            }
        });
    layer
}
