//! The HTTP middleware stack, each piece switched and tuned from `[http]` in the config.
//!
//! Order, outermost first (see `server::build_routes`):
//! `RequestContext` → `SecurityHeaders` → CORS → `Problems` → `Timeout` → `BodyLimit` →
//! `ReadableHeaders` → routes.
//! CORS sits outside `Problems` so error responses carry CORS headers too; `RequestContext`
//! is outermost so the span, the metric and the access log see the final status.

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::FutureExt as _;
use opentelemetry::{
    KeyValue, global,
    metrics::{Histogram, UpDownCounter},
    trace::TraceContextExt as _,
};
use opentelemetry_http::HeaderExtractor;
use poem::{
    Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, Result,
    http::{HeaderValue, Method, header},
};
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::error::{ApiError, FieldError};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the current request, as echoed in `x-request-id` and problem documents.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// Caller-supplied ids end up in logs: accept only short, plain tokens.
fn acceptable_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
}

/// Request id, server span (continuing an incoming `traceparent`), duration metric, access log.
pub struct RequestContext {
    pub trust_request_id: bool,
}

impl<E: Endpoint> Middleware<E> for RequestContext {
    type Output = RequestContextEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestContextEndpoint {
            inner,
            trust_request_id: self.trust_request_id,
            duration: global::meter("keel")
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP server requests")
                .with_boundaries(crate::telemetry::DURATION_BUCKETS.to_vec())
                .build(),
            active: global::meter("keel")
                .i64_up_down_counter("http.server.active_requests")
                .with_unit("{request}")
                .with_description("HTTP server requests in flight")
                .build(),
        }
    }
}

pub struct RequestContextEndpoint<E> {
    inner: E,
    trust_request_id: bool,
    duration: Histogram<f64>,
    active: UpDownCounter<i64>,
}

impl<E: Endpoint> Endpoint for RequestContextEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let started = Instant::now();
        let request_id: Arc<str> = req
            .header(REQUEST_ID_HEADER)
            .filter(|id| self.trust_request_id && acceptable_request_id(id))
            .map_or_else(|| uuid::Uuid::now_v7().to_string().into(), Arc::from);
        req.set_data(RequestId(request_id.clone()));

        let method = req.method().clone();
        let in_flight = [
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("url.scheme", "http"),
        ];
        self.active.add(1, &in_flight);
        // Counted back down however the request ends, a dropped connection included.
        let _in_flight = CountedDown {
            counter: &self.active,
            attributes: &in_flight,
        };
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %method,
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = %method,
            http.route = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
            url.path = %req.uri().path(),
            url.scheme = "http",
            network.protocol.version = ?req.version(),
            client.address = %req.remote_addr(),
            user_agent.original = req.header(header::USER_AGENT.as_str()).unwrap_or_default(),
            request_id = %request_id,
        );
        let parent = global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(req.headers()))
        });
        // Fails only when no OpenTelemetry layer is installed (e.g. in unit tests).
        let _ = span.set_parent(parent);

        let result = self.inner.call(req).instrument(span.clone()).await;
        let mut response = match result {
            Ok(response) => response.into_response(),
            Err(err) => ApiError::from_poem(err).into_response_with(Some(&request_id)),
        };

        let status = response.status();
        // Unmatched requests carry an empty pattern: no route, and no per-URL span names.
        let route = response
            .data::<PathPattern>()
            .map(|p| p.0.clone())
            .filter(|p| !p.is_empty());
        if let Some(route) = &route {
            let name = format!("{method} {route}");
            // The OpenTelemetry span is already started by now: recording `otel.name` only
            // renames the log view of it, so rename the exported span directly too.
            span.context().span().update_name(name.clone());
            span.record("otel.name", name);
            span.record("http.route", route.as_ref());
        }
        // i64: OpenTelemetry exports u64 fields as strings, and this attribute is an int.
        span.record("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", status.as_str());
        }
        let elapsed = started.elapsed();
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("http.response.status_code", i64::from(status.as_u16())),
        ];
        if let Some(route) = &route {
            attributes.push(KeyValue::new("http.route", route.to_string()));
        }
        if status.is_server_error() {
            attributes.push(KeyValue::new("error.type", status.as_str().to_owned()));
        }
        attributes.push(KeyValue::new("url.scheme", "http"));
        self.duration.record(elapsed.as_secs_f64(), &attributes);
        span.in_scope(|| {
            tracing::info!(
                status = status.as_u16(),
                latency_ms = elapsed.as_secs_f64() * 1000.0,
                "request completed"
            );
        });

        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        Ok(response)
    }
}

/// Takes one off `counter` when dropped.
struct CountedDown<'a> {
    counter: &'a UpDownCounter<i64>,
    attributes: &'a [KeyValue],
}

impl Drop for CountedDown<'_> {
    fn drop(&mut self) {
        self.counter.add(-1, self.attributes);
    }
}

/// Turns every error and panic below it into a problem+json response.
pub struct Problems {
    /// Methods each route template accepts, for the `Allow` header of a 405.
    pub allowed_methods: Arc<AllowedMethods>,
}

impl<E: Endpoint> Middleware<E> for Problems {
    type Output = ProblemsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ProblemsEndpoint {
            inner,
            allowed_methods: self.allowed_methods.clone(),
        }
    }
}

pub struct ProblemsEndpoint<E> {
    inner: E,
    allowed_methods: Arc<AllowedMethods>,
}

impl<E: Endpoint> Endpoint for ProblemsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let request_id = req.data::<RequestId>().map(|id| id.0.clone());
        let path = req.uri().path().to_owned();
        let outcome = AssertUnwindSafe(self.inner.call(req)).catch_unwind().await;
        let err = match outcome {
            Ok(Ok(response)) => return Ok(response.into_response()),
            Ok(Err(err)) => err,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_owned());
                ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into()
            }
        };
        let route = err.data::<PathPattern>().cloned();
        let api_error = match ApiError::from_poem(err) {
            ApiError::MethodNotAllowed { .. } => ApiError::MethodNotAllowed {
                allow: self.allowed_methods.for_path(&path),
            },
            other => other,
        };
        let mut response = api_error.into_response_with(request_id.as_deref());
        if let Some(route) = route {
            response.set_data(route);
        }
        Ok(response)
    }
}

/// Route templates (`/api/v1/products/{id}`) and the methods each accepts.
#[derive(Debug, Default)]
pub struct AllowedMethods {
    routes: Vec<(Vec<String>, Vec<&'static str>)>,
}

impl AllowedMethods {
    pub fn new(routes: HashMap<String, Vec<&'static str>>) -> Self {
        let routes = routes
            .into_iter()
            .map(|(template, mut methods)| {
                methods.sort_unstable();
                methods.dedup();
                let segments = template.split('/').map(str::to_owned).collect();
                (segments, methods)
            })
            .collect();
        Self { routes }
    }

    pub fn for_path(&self, path: &str) -> Vec<&'static str> {
        let segments: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .find(|(template, _)| {
                template.len() == segments.len()
                    && template.iter().zip(&segments).all(|(t, s)| {
                        t == s || (t.starts_with('{') && t.ends_with('}') && !s.is_empty())
                    })
            })
            .map(|(_, methods)| methods.clone())
            .unwrap_or_default()
    }
}

/// Answers 503 problem+json when the inner endpoint takes longer than the limit.
pub struct Timeout(pub Duration);

impl<E: Endpoint> Middleware<E> for Timeout {
    type Output = TimeoutEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        TimeoutEndpoint {
            inner,
            limit: self.0,
        }
    }
}

pub struct TimeoutEndpoint<E> {
    inner: E,
    limit: Duration,
}

impl<E: Endpoint> Endpoint for TimeoutEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        match tokio::time::timeout(self.limit, self.inner.call(req)).await {
            Ok(result) => result,
            Err(_) => Err(ApiError::Timeout(self.limit).into()),
        }
    }
}

/// Refuses bodies over the limit with 413: by `Content-Length` before reading anything, and
/// while reading for chunked bodies that declare no length.
pub struct BodyLimit(pub usize);

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint {
            inner,
            limit: self.0,
        }
    }
}

pub struct BodyLimitEndpoint<E> {
    inner: E,
    limit: usize,
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let too_large = || ApiError::PayloadTooLarge {
            limit: Some(self.limit),
        };
        match req.header(header::CONTENT_LENGTH.as_str()) {
            Some(length) => {
                let length: usize = length
                    .parse()
                    .map_err(|_| ApiError::BadRequest("Content-Length is not a number.".into()))?;
                if length > self.limit {
                    return Err(too_large().into());
                }
            }
            // No declared length: a chunked HTTP/1.1 body, or any HTTP/2 body (h2c is served on
            // the same port, and its DATA frames need no length header). Read it here, stopping
            // at the limit, so no handler or extractor ever reads an unbounded body.
            None => {
                let body = req
                    .take_body()
                    .into_bytes_limit(self.limit)
                    .await
                    .map_err(|err| match err {
                        poem::error::ReadBodyError::PayloadTooLarge => too_large(),
                        other => ApiError::BadRequest(format!("Could not read the body: {other}")),
                    })?;
                req.set_body(body);
            }
        }
        self.inner.call(req).await
    }
}

/// The schema of every header parameter the API declares: visible ASCII and spaces, which is
/// what [`ReadableHeaders`] lets through. Stated in the document so that clients and fuzzers
/// know it; `#[oai(validator(pattern = ...))]` takes only a literal, so each declaration
/// repeats it and `routes::tests` checks that they all do.
pub const HEADER_VALUE_PATTERN: &str = r"^[\x20-\x7E]*$";

/// Refuses a request carrying one of the API's declared header parameters with a value that is
/// not visible ASCII. poem-openapi reads such a value as if the header were absent, which would
/// silently turn a retry's `Idempotency-Key` into a second order, or an `If-Match` into "needs
/// If-Match"; a 422 naming the header tells the client what is wrong instead.
/// Each header is named as the document spells it, for the problem's `field`.
pub struct ReadableHeaders(pub Arc<[(header::HeaderName, String)]>);

impl<E: Endpoint> Middleware<E> for ReadableHeaders {
    type Output = ReadableHeadersEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ReadableHeadersEndpoint {
            inner,
            names: self.0.clone(),
        }
    }
}

pub struct ReadableHeadersEndpoint<E> {
    inner: E,
    names: Arc<[(header::HeaderName, String)]>,
}

impl<E: Endpoint> Endpoint for ReadableHeadersEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let unreadable = self.names.iter().find(|(name, _)| {
            req.headers()
                .get_all(name)
                .iter()
                .any(|value| value.to_str().is_err())
        });
        if let Some((_, declared)) = unreadable {
            let errors = vec![FieldError::new(
                declared.clone(),
                "must be visible ASCII characters",
            )];
            return Err(ApiError::Validation(errors).into());
        }
        self.inner.call(req).await
    }
}

/// `nosniff`, `DENY` framing, no referrer, a CSP, HSTS when configured, and `no-store` on
/// every response that did not choose its own caching: API responses carry tokens and personal
/// data, and a shared cache must never keep them.
pub struct SecurityHeaders {
    /// `Strict-Transport-Security: max-age=…`; `None` (zero in config) sends no header, for
    /// plain-HTTP local runs where HSTS would pin a browser to a port that has no TLS.
    pub hsts_max_age: Option<Duration>,
}

const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
const DOCS_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

impl<E: Endpoint> Middleware<E> for SecurityHeaders {
    type Output = SecurityHeadersEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        let hsts = self.hsts_max_age.and_then(|age| {
            HeaderValue::from_str(&format!("max-age={}; includeSubDomains", age.as_secs())).ok()
        });
        SecurityHeadersEndpoint { inner, hsts }
    }
}

pub struct SecurityHeadersEndpoint<E> {
    inner: E,
    hsts: Option<HeaderValue>,
}

impl<E: Endpoint> Endpoint for SecurityHeadersEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let is_docs = req.uri().path() == "/docs" || req.uri().path().starts_with("/docs/");
        let is_preflight = req.method() == Method::OPTIONS;
        let request_id = req.data::<RequestId>().map(|id| id.0.clone());
        // CORS sits inside and refuses an origin with an error, not a response: render it here
        // so the refusal carries these headers too instead of skipping them.
        let mut response = match self.inner.call(req).await {
            Ok(response) => response.into_response(),
            Err(err) => ApiError::from_poem(err).into_response_with(request_id.as_deref()),
        };
        let headers = response.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if !is_preflight {
            let csp = if is_docs { DOCS_CSP } else { API_CSP };
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            );
        }
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            // For HTTP/1.0 caches, which predate Cache-Control.
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        }
        if let Some(hsts) = &self.hsts {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_bounded_plain_tokens() {
        assert!(acceptable_request_id("3f2a-1b_c.d:e/f"));
        assert!(!acceptable_request_id(""));
        assert!(!acceptable_request_id(&"a".repeat(129)));
        assert!(!acceptable_request_id("abc\ninjected log line"));
    }

    proptest::proptest! {
        /// A request id reaches the logs only if it is short and plain, whatever was sent.
        #[test]
        fn only_plain_request_ids_are_accepted(value in "\\PC{0,140}|[a-z0-9:/._-]{1,130}") {
            if acceptable_request_id(&value) {
                proptest::prop_assert!(value.len() <= 128 && !value.is_empty());
                proptest::prop_assert!(value.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }

    #[test]
    fn allowed_methods_match_templates() {
        let table = AllowedMethods::new(HashMap::from([
            ("/health/live".to_owned(), vec!["GET"]),
            (
                "/api/v1/things/{id}".to_owned(),
                vec!["PATCH", "GET", "DELETE"],
            ),
        ]));
        assert_eq!(table.for_path("/health/live"), vec!["GET"]);
        assert_eq!(
            table.for_path("/api/v1/things/42"),
            vec!["DELETE", "GET", "PATCH"]
        );
        assert!(table.for_path("/api/v1/things").is_empty());
    }
}
