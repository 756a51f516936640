//! Logs, traces and metrics: set up in one place, flushed in one place.
//!
//! Spans always get OpenTelemetry ids, exporter or not, so every JSON log line inside a request
//! carries `trace_id`/`span_id` and an incoming W3C `traceparent` is continued. Export over
//! OTLP/HTTP starts only when `telemetry.otlp_endpoint` is set.

use anyhow::Context as _;
use opentelemetry::{global, trace::TraceContextExt as _, trace::TracerProvider as _};
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::{
    Resource, metrics::SdkMeterProvider, propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use tracing_subscriber::{
    EnvFilter, Layer as _, filter::LevelFilter, layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

use crate::config::{LogFormat, TelemetrySettings};

/// Owns the exporters; [`Telemetry::shutdown`] flushes whatever is still buffered.
#[must_use = "dropping Telemetry without shutdown() may lose the last spans"]
pub struct Telemetry {
    tracer_provider: SdkTracerProvider,
    meter_provider: Option<SdkMeterProvider>,
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
    }
}

/// Installs the global subscriber, propagator and (when configured) OTLP exporters.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<Telemetry> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    // Resource::builder() also reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();

    let mut tracer_provider = SdkTracerProvider::builder().with_resource(resource.clone());
    let mut meter_provider = None;
    if let Some(base) = &settings.otlp_endpoint {
        let base = base.trim_end_matches('/');
        let spans = SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{base}/v1/traces"))
            .build()
            .context("building the OTLP span exporter")?;
        tracer_provider = tracer_provider.with_batch_exporter(spans);

        let metrics = MetricExporter::builder()
            .with_http()
            .with_endpoint(format!("{base}/v1/metrics"))
            .build()
            .context("building the OTLP metric exporter")?;
        let meters = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_periodic_exporter(metrics)
            .build();
        global::set_meter_provider(meters.clone());
        meter_provider = Some(meters);
    }
    let tracer_provider = tracer_provider.build();
    let tracer = tracer_provider.tracer("keel");

    let log_filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => {
            EnvFilter::try_new(&directives).context("RUST_LOG is not a valid filter")?
        }
        _ => EnvFilter::try_new(&settings.log_filter).context("telemetry.log_filter")?,
    };
    let logs = match settings.log_format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_target(true).boxed(),
        LogFormat::Json => json_logs().boxed(),
    };
    // Traces have their own filter: a quiet log level must not hide request spans.
    let traces = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(LevelFilter::INFO);

    tracing_subscriber::registry()
        .with(logs.with_filter(log_filter))
        .with(traces)
        .try_init()
        .context("a global tracing subscriber was already installed")?;

    Ok(Telemetry {
        tracer_provider,
        meter_provider,
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
