//! The OpenAPI document: served, printed by `keel openapi`, committed — and all the same.

use std::collections::BTreeSet;

use keel_tests::{Keel, KeelOutput, assert_json, spawn_app};
use serde_json::Value;

async fn served_spec() -> Value {
    let app = spawn_app().await;
    assert_json(app.get("/openapi.json").await, 200).await
}

#[tokio::test]
async fn served_document_is_openapi_3_and_self_consistent() {
    let spec = served_spec().await;
    assert!(
        spec["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3."),
        "{}",
        spec["openapi"]
    );
    assert!(spec["info"]["title"].is_string());

    let schemas: BTreeSet<String> = spec["components"]["schemas"]
        .as_object()
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default();
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/health/live") && paths.contains_key("/health/ready"));
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                !responses.is_empty(),
                "{method} {path} documents no response"
            );
            assert!(
                responses.keys().any(|code| code.starts_with('2')),
                "{method} {path} documents no success"
            );
        }
    }
    // Links chain operations, and every link names an operation that exists.
    let operation_ids: BTreeSet<String> = paths
        .values()
        .flat_map(|ops| ops.as_object().into_iter().flat_map(|o| o.values()))
        .filter_map(|op| op["operationId"].as_str().map(str::to_owned))
        .collect();
    let mut links = 0;
    for operations in paths.values() {
        for operation in operations.as_object().expect("operations").values() {
            for response in operation["responses"]
                .as_object()
                .expect("responses")
                .values()
            {
                for link in response["links"]
                    .as_object()
                    .into_iter()
                    .flat_map(|l| l.values())
                {
                    let target = link["operationId"].as_str().expect("operationId");
                    assert!(
                        operation_ids.contains(target),
                        "link to unknown operation {target}"
                    );
                    links += 1;
                }
            }
        }
    }
    // Accounts and auth have none; a new webhook links to its deliveries, rotating its secret
    // and its deletion.
    let expected_links = 3;
    // example-domain:begin
    // The example's: create product -> get/patch/delete, place order -> get/cancel/fulfil.
    assert_eq!(
        spec["paths"]["/api/v1/products"]["post"]["responses"]["201"]["links"]["UpdateProduct"]["parameters"]
            ["If-Match"],
        "$response.header.ETag"
    );
    let expected_links = expected_links + 6;
    // example-domain:end
    assert_eq!(links, expected_links);

    // Every reference points at a schema that exists.
    let text = spec.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(schemas.contains(name), "dangling $ref to {name}");
    }
}

/// PostgreSQL cannot store U+0000, and the server refuses it; a client learns that only from
/// the schema. So every string a request body carries states its characters: a pattern (which
/// excludes NUL), a closed list, or a format such as `uuid`.
#[tokio::test]
async fn every_string_in_a_request_body_states_its_characters() {
    let spec = served_spec().await;
    let mut pending: Vec<(String, Value)> = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema")
            {
                pending.push((format!("{method} {path}"), schema.clone()));
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut loose = Vec::new();
    while let Some((at, schema)) = pending.pop() {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/components/schemas/");
            if seen.insert(name.to_owned()) {
                pending.push((name.to_owned(), spec["components"]["schemas"][name].clone()));
            }
            continue;
        }
        if schema["type"] == "string"
            && schema["pattern"].is_null()
            && schema["enum"].is_null()
            && schema["format"].is_null()
        {
            loose.push(at.clone());
        }
        for nested in ["items", "additionalProperties"] {
            if schema[nested].is_object() {
                pending.push((format!("{at}/{nested}"), schema[nested].clone()));
            }
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            for part in schema[key].as_array().into_iter().flatten() {
                pending.push((at.clone(), part.clone()));
            }
        }
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            pending.push((format!("{at}.{name}"), property.clone()));
        }
    }
    assert!(!seen.is_empty(), "no request bodies found");
    assert!(
        loose.is_empty(),
        "strings with no pattern, enum or format: {loose:?}"
    );
}

#[tokio::test]
async fn keel_openapi_prints_the_served_document() {
    let served = served_spec().await;
    // No database settings at all: the command must not need one.
    let KeelOutput {
        code,
        stdout,
        stderr,
    } = Keel::command(["openapi"]).run();
    assert_eq!(code, Some(0), "{stderr}");
    let printed: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(printed, served);
}

#[tokio::test]
async fn committed_openapi_json_is_current() {
    let served = served_spec().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
    let committed = std::fs::read_to_string(&path).expect("openapi.json at the repository root");
    let committed: Value = serde_json::from_str(&committed).expect("valid JSON");
    assert!(
        committed == served,
        "openapi.json is stale: run `make openapi` and commit it"
    );
}

#[tokio::test]
async fn docs_serve_swagger_ui_with_a_csp_it_can_run_under() {
    let app = spawn_app().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.contains("script-src 'unsafe-inline'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let html = response.text().await.expect("html");
    assert!(html.contains("SwaggerUIBundle"), "not Swagger UI");
}
