//! The route table: the OpenAPI service, the document, Swagger UI, probes, and the middleware
//! stack in its order.

use std::{collections::HashMap, sync::Arc};

use poem::{Endpoint, EndpointExt as _, IntoEndpoint, Route, middleware::Cors};
use poem_openapi::{OpenApi, OpenApiService};

use super::AppState;
use crate::{
    auth::TokenKeys,
    config::HttpSettings,
    features,
    health::HealthApi,
    middleware::{
        AllowedMethods, BodyLimit, Problems, ReadableHeaders, RequestContext, SecurityHeaders,
        Timeout,
    },
};

/// Everything mounted in the OpenAPI document: the probes and every registered feature.
pub type ServiceApi = (HealthApi, features::Api);

pub fn api(state: &AppState) -> ServiceApi {
    (
        HealthApi {
            probe: state.probe.clone(),
        },
        features::api(state),
    )
}

/// The OpenAPI service with the document's metadata.
pub fn api_service<T: OpenApi>(api: T) -> OpenApiService<T, ()> {
    OpenApiService::new(api, "Keel", env!("CARGO_PKG_VERSION"))
        .description(
            "Keel's HTTP API. Errors are RFC 9457 `application/problem+json` documents; every \
             response carries an `x-request-id` to quote when reporting a problem.",
        )
        .license(poem_openapi::LicenseObject::new("MIT OR Apache-2.0"))
}

/// The OpenAPI document as `keel openapi` prints it and `/openapi.json` serves it. A document
/// depends only on the API's types, so it is built without any state: no settings, no keys,
/// no database.
pub fn openapi_json() -> Result<String, serde_json::Error> {
    let spec = api_service(crate::openapi::DocumentOnly::<ServiceApi>::default()).spec();
    crate::openapi::document(&spec)
}

/// The whole route table wrapped in the middleware stack. Generic over the API so tests can
/// mount their own operations behind exactly the production stack.
///
/// The token keys reach every handler and the bearer-token checker one way, as request data
/// installed here: a route table without them cannot be built.
pub fn build_routes<T: OpenApi + 'static>(
    http: &HttpSettings,
    keys: Arc<TokenKeys>,
    service: OpenApiService<T, ()>,
) -> impl Endpoint + use<T> {
    let spec = service.spec();
    let document: Arc<str> = crate::openapi::document(&spec).unwrap_or(spec).into();
    let allowed_methods = Arc::new(allowed_methods(&document));
    let header_parameters = header_parameters(&document);
    let routes = Route::new()
        .at(
            "/openapi.json",
            poem::get(poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json; charset=utf-8")
                    .body(document.to_string())
            })),
        )
        .nest("/docs", service.swagger_ui())
        .nest("/", service);

    let cors = (!http.cors.allowed_origins.is_empty()).then(|| {
        Cors::new()
            .allow_origins(http.cors.allowed_origins.iter().map(String::as_str))
            .allow_credentials(false)
            .expose_header(crate::middleware::REQUEST_ID_HEADER)
            .max_age(i32::try_from(http.cors.max_age.as_secs()).unwrap_or(i32::MAX))
    });

    routes
        .data(keys)
        .with(ReadableHeaders(header_parameters))
        .with(BodyLimit(http.body_limit_bytes))
        .with(Timeout(http.request_timeout))
        .with(Problems { allowed_methods })
        .with_if(cors.is_some(), cors.unwrap_or_default())
        .with_if(
            http.security_headers,
            SecurityHeaders {
                hsts_max_age: Some(http.hsts_max_age).filter(|age| !age.is_zero()),
            },
        )
        .with(RequestContext {
            trust_request_id: http.trust_request_id,
        })
        .into_endpoint()
}

/// Every header parameter any operation of the document declares, as it spells it.
fn header_parameters(spec: &str) -> Arc<[(poem::http::HeaderName, String)]> {
    let document: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
    let mut names: Vec<(poem::http::HeaderName, String)> = document
        .get("paths")
        .and_then(|paths| paths.as_object())
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(|operations| operations.as_object())
        .flat_map(|operations| operations.values())
        .filter_map(|operation| operation.get("parameters")?.as_array())
        .flatten()
        .filter(|parameter| parameter["in"] == "header")
        .filter_map(|parameter| {
            let declared = parameter["name"].as_str()?;
            let name = poem::http::HeaderName::try_from(declared).ok()?;
            Some((name, declared.to_owned()))
        })
        .collect();
    names.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    names.dedup_by(|a, b| a.0 == b.0);
    names.into()
}

/// Reads the route templates and their methods back out of the generated document, so the
/// `Allow` header of a 405 can never disagree with the spec.
fn allowed_methods(spec: &str) -> AllowedMethods {
    const METHODS: &[(&str, &str)] = &[
        ("get", "GET"),
        ("put", "PUT"),
        ("post", "POST"),
        ("delete", "DELETE"),
        ("patch", "PATCH"),
        ("head", "HEAD"),
        ("options", "OPTIONS"),
    ];
    let mut table: HashMap<String, Vec<&'static str>> = HashMap::from([
        ("/openapi.json".to_owned(), vec!["GET"]),
        ("/docs".to_owned(), vec!["GET"]),
    ]);
    let document: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
    if let Some(paths) = document.get("paths").and_then(|p| p.as_object()) {
        for (path, operations) in paths {
            let methods = METHODS
                .iter()
                .filter(|(key, _)| operations.get(key).is_some())
                .map(|(_, method)| *method)
                .collect();
            table.insert(path.clone(), methods);
        }
    }
    AllowedMethods::new(table)
}

/// The production middleware stack and error mapping, driven in-process with an API that has
/// the kinds of operation later features add: a JSON body, query parameters, a panicking bug.
#[cfg(test)]
mod tests {
    use poem::{
        http::{HeaderValue, StatusCode},
        test::TestClient,
    };
    use poem_openapi::{Object, param::Query, payload::PlainText};
    use serde_json::{Value, json};

    use super::*;
    use crate::config::Settings;
    use crate::{
        auth::{BearerAuth, Role},
        error::ApiError,
        json::JsonBody,
    };

    #[derive(Debug, Object)]
    struct NewThing {
        name: crate::text::Text<crate::text::Line<10>>,
        #[oai(validator(minimum(value = "1")))]
        quantity: i32,
    }

    struct ThingsApi;

    #[OpenApi(prefix_path = "/api/v1")]
    impl ThingsApi {
        #[oai(path = "/things", method = "post")]
        async fn create(&self, body: JsonBody<NewThing>) -> Result<PlainText<String>, ApiError> {
            Ok(PlainText(format!("{} x{}", body.0.name, body.0.quantity)))
        }

        #[oai(path = "/things", method = "get")]
        async fn list(
            &self,
            #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<u32>,
        ) -> Result<PlainText<String>, ApiError> {
            Ok(PlainText(limit.0.to_string()))
        }

        #[oai(path = "/tagged", method = "get")]
        async fn tagged(
            &self,
            #[oai(name = "X-Thing-Tag")] tag: poem_openapi::param::Header<Option<String>>,
        ) -> Result<PlainText<String>, ApiError> {
            Ok(PlainText(tag.0.unwrap_or_else(|| "untagged".to_owned())))
        }

        #[oai(path = "/boom", method = "get")]
        async fn boom(&self) -> Result<PlainText<String>, ApiError> {
            panic!("secret internal detail")
        }

        #[oai(path = "/admin-only", method = "get")]
        async fn admin_only(&self, auth: BearerAuth) -> Result<PlainText<String>, ApiError> {
            auth.require_role(Role::Admin)?;
            Ok(PlainText("welcome".to_owned()))
        }
    }

    fn settings() -> Settings {
        Settings::load_from([("APP_CONFIG_DIR".to_owned(), "/nonexistent".to_owned())])
            .expect("defaults")
    }

    fn keys() -> Arc<TokenKeys> {
        static KEYS: std::sync::LazyLock<Arc<TokenKeys>> = std::sync::LazyLock::new(|| {
            let settings = settings();
            Arc::new(TokenKeys::from_settings(&settings.auth, settings.environment).expect("keys"))
        });
        KEYS.clone()
    }

    fn client() -> TestClient<impl Endpoint> {
        TestClient::new(build_routes(
            &settings().http,
            keys(),
            api_service(ThingsApi),
        ))
    }

    async fn problem(response: poem::test::TestResponse, status: StatusCode) -> Value {
        response.assert_status(status);
        response.assert_content_type("application/problem+json");
        let body = response.0.into_body().into_string().await.expect("body");
        serde_json::from_str(&body).expect("problem JSON")
    }

    #[tokio::test]
    async fn valid_json_reaches_the_handler() {
        let response = client()
            .post("/api/v1/things")
            .body_json(&json!({"name": "bolt", "quantity": 3}))
            .send()
            .await;
        response.assert_status_is_ok();
        response.assert_text("bolt x3").await;
    }

    async fn with_header(name: &str, value: &[u8]) -> poem::test::TestResponse {
        let value = HeaderValue::from_bytes(value).expect("a field value");
        client()
            .get("/api/v1/tagged")
            .header(name, value)
            .send()
            .await
    }

    /// Each header parameter of the real API states the rule `ReadableHeaders` enforces.
    #[test]
    fn every_declared_header_of_the_api_publishes_the_header_value_pattern() {
        let document: Value =
            serde_json::from_str(&openapi_json().expect("the document")).expect("JSON");
        let headers: Vec<(String, Value)> = document["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, operations)| {
                operations
                    .as_object()
                    .expect("operations")
                    .iter()
                    .map(move |(method, operation)| (path, method, operation))
            })
            .flat_map(|(path, method, operation)| {
                let parameters = operation["parameters"].as_array().cloned();
                parameters
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|p| p["in"] == "header")
                    .map(move |p| {
                        (
                            format!("{method} {path} {}", p["name"]),
                            p["schema"].clone(),
                        )
                    })
            })
            .collect();
        for (parameter, schema) in &headers {
            assert_eq!(
                schema["pattern"],
                crate::middleware::HEADER_VALUE_PATTERN,
                "{parameter}"
            );
        }
        // example-domain:begin
        for name in ["If-Match", "If-None-Match", "Idempotency-Key"] {
            assert!(
                headers
                    .iter()
                    .any(|(parameter, _)| parameter.contains(name)),
                "{name} is not among {headers:?}"
            );
        }
        // example-domain:end
    }

    #[tokio::test]
    async fn a_declared_header_that_is_not_ascii_is_refused_by_name_not_ignored() {
        with_header("x-thing-tag", b"plain")
            .await
            .assert_text("plain")
            .await;
        // poem-openapi alone would read this as no header at all: "untagged".
        let refused = with_header("x-thing-tag", "caf\u{e9}".as_bytes()).await;
        let body = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["errors"][0]["field"], "X-Thing-Tag", "{body}");
        // Headers no operation declares are none of this middleware's business.
        with_header("x-other", b"\xff")
            .await
            .assert_text("untagged")
            .await;
    }

    #[tokio::test]
    async fn malformed_json_is_400() {
        let response = client()
            .post("/api/v1/things")
            .content_type("application/json")
            .body("{\"name\": ")
            .send()
            .await;
        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("not valid JSON"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn wrong_content_type_is_415() {
        let response = client()
            .post("/api/v1/things")
            .content_type("text/plain")
            .body("name=bolt")
            .send()
            .await;
        problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }

    #[tokio::test]
    async fn missing_and_mistyped_fields_are_named() {
        let response = client()
            .post("/api/v1/things")
            .body_json(&json!({"quantity": "three"}))
            .send()
            .await;
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .expect("errors array")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&"/name"), "{body}");
        assert!(fields.contains(&"/quantity"), "{body}");
    }

    #[tokio::test]
    async fn constraint_violations_are_named_without_echoing_the_value() {
        let response = client()
            .post("/api/v1/things")
            .body_json(&json!({"name": "far-too-long-a-name", "quantity": 0}))
            .send()
            .await;
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let text = body.to_string();
        assert!(
            text.contains("/name") && text.contains("/quantity"),
            "{body}"
        );
        assert!(
            !text.contains("far-too-long-a-name"),
            "value echoed: {body}"
        );
    }

    #[tokio::test]
    async fn nul_characters_are_refused_before_they_reach_the_database() {
        let response = client()
            .post("/api/v1/things")
            .body_json(&json!({"name": "a\u{0}b", "quantity": 1}))
            .send()
            .await;
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["errors"][0]["field"], "/name", "{body}");
    }

    #[tokio::test]
    async fn bad_query_parameters_are_named() {
        for query in ["limit=abc", "limit=1000", ""] {
            let response = client().get(format!("/api/v1/things?{query}")).send().await;
            let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(body["errors"][0]["field"], "limit", "{query}: {body}");
        }
    }

    #[tokio::test]
    async fn panics_become_500_problems_without_details() {
        let response = client().get("/api/v1/boom").send().await;
        let body = problem(response, StatusCode::INTERNAL_SERVER_ERROR).await;
        assert!(!body.to_string().contains("secret"), "{body}");
    }

    #[tokio::test]
    async fn admin_operations_are_403_for_members_and_open_to_admins() {
        let token = |role| {
            keys()
                .issue(uuid::Uuid::new_v4(), role, uuid::Uuid::new_v4())
                .expect("token")
        };
        let member = client()
            .get("/api/v1/admin-only")
            .header("authorization", format!("Bearer {}", token(Role::Member)))
            .send()
            .await;
        problem(member, StatusCode::FORBIDDEN).await;

        let admin = client()
            .get("/api/v1/admin-only")
            .header("authorization", format!("Bearer {}", token(Role::Admin)))
            .send()
            .await;
        admin.assert_status_is_ok();
    }

    #[tokio::test]
    async fn method_not_allowed_lists_the_allowed_methods() {
        let response = client().delete("/api/v1/things").send().await;
        response.assert_header("allow", "GET, POST");
        problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    }
}
