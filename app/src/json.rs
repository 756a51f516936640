//! `JsonBody<T>`: the JSON request body for every operation, with errors that name fields.
//!
//! poem-openapi's own `Json<T>` reports a bad body as one string without saying which field
//! is wrong, and quietly accepts numbers and booleans where the schema says string. `JsonBody`
//! documents itself exactly like `Json<T>`, but first validates the body against that same
//! generated schema, so the published schema is exactly what the server accepts, and every
//! offending field is listed as a JSON pointer:
//! `{"field": "/items/0/quantity", "message": "0 is less than the minimum of 1"}`.

use std::{
    any::TypeId,
    collections::HashMap,
    sync::{Arc, LazyLock, RwLock},
};

use jsonschema::Validator;
use poem::{Request, RequestBody, Result};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    payload::{ParsePayload, Payload},
    registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry},
    types::{ParseFromJSON, Type},
};
use serde_json::Value;

use crate::error::{ApiError, FieldError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        content_type.parse::<mime::Mime>().is_ok_and(|mime| {
            mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        })
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON + 'static> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> Result<Self> {
        let bytes = body
            .take()?
            .into_vec()
            .await
            .map_err(|err| ApiError::BadRequest(format!("Could not read the body: {err}")))?;
        if bytes.is_empty() {
            return Err(
                ApiError::BadRequest("The request body is empty; JSON expected.".into()).into(),
            );
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|err| ApiError::BadRequest(format!("The body is not valid JSON: {err}.")))?;
        // Strings that PostgreSQL could not store (U+0000) are refused here too: every string
        // a body carries is a `text::Text`, whose pattern excludes them.
        let errors = field_errors::<T>(&value)?;
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors).into());
        }
        T::parse_from_json(Some(value))
            .map(Self)
            // A rule the schema cannot express; poem-openapi's message is all we have.
            .map_err(|err| {
                ApiError::Validation(vec![FieldError::new("", err.into_message())]).into()
            })
    }
}

impl<'a, T: ParseFromJSON + 'static> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: <Self as Payload>::CONTENT_TYPE,
                schema: <Self as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> Result<Self> {
        let content_type = request.content_type();
        match content_type {
            Some(content_type) if <Self as Payload>::check_content_type(content_type) => {}
            Some(content_type) => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "Expected application/json, got {content_type}."
                ))
                .into());
            }
            None => {
                return Err(ApiError::UnsupportedMediaType(
                    "The request has no Content-Type; expected application/json.".into(),
                )
                .into());
            }
        }
        <Self as ParsePayload>::from_request(request, body).await
    }
}

/// Compiled once per body type, on first use.
static VALIDATORS: LazyLock<RwLock<HashMap<TypeId, Arc<Validator>>>> =
    LazyLock::new(Default::default);

/// `T`'s generated schema, compiled. An error is a bug in a body type's schema: the request is
/// refused (500) rather than parsed without the schema's rules.
fn validator<T: Type + 'static>() -> Result<Arc<Validator>, String> {
    let id = TypeId::of::<T>();
    if let Some(found) = VALIDATORS.read().ok().and_then(|map| map.get(&id).cloned()) {
        return Ok(found);
    }
    let mut registry = Registry::new();
    T::register(&mut registry);
    let root = serde_json::to_value(T::schema_ref()).map_err(|err| err.to_string())?;
    let schemas = serde_json::to_value(&registry.schemas).map_err(|err| err.to_string())?;
    let compiled = Arc::new(compile(root, schemas)?);
    if let Ok(mut map) = VALIDATORS.write() {
        map.insert(id, compiled.clone());
    }
    Ok(compiled)
}

/// Compiles a body schema (possibly a `$ref` into `schemas`) with the component schemas it
/// refers to, as the OpenAPI document holds them.
pub(crate) fn compile(schema: Value, schemas: Value) -> Result<Validator, String> {
    let Value::Object(mut root) = schema else {
        return Err(format!("a body schema is not an object: {schema}"));
    };
    root.insert(
        "components".into(),
        serde_json::json!({ "schemas": schemas }),
    );
    jsonschema::validator_for(&Value::Object(root)).map_err(|err| err.to_string())
}

/// Validates `value` against `T`'s generated schema and lists what is wrong, field by field.
fn field_errors<T: Type + 'static>(value: &Value) -> Result<Vec<FieldError>, ApiError> {
    let validator = validator::<T>().map_err(|err| {
        ApiError::Internal(anyhow::anyhow!(
            "the request schema of {} does not compile: {err}",
            std::any::type_name::<T>()
        ))
    })?;
    Ok(validator
        .iter_errors(value)
        .map(|error| {
            let mut field = error.instance_path().to_string();
            if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
                field.push('/');
                field.push_str(property.as_str().unwrap_or_default());
            }
            // masked(): the message must not echo the submitted value (it may be a password).
            FieldError::new(field, error.masked().to_string())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use poem_openapi::Object;
    use proptest::prelude::*;

    use super::*;
    use crate::text::{Line, Plain, Text};

    #[derive(Debug, Object)]
    struct Sample {
        name: Text<Line<8>>,
        #[oai(default)]
        note: Text<Plain<0, 16>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "9")))]
        count: i32,
        tags: Option<Vec<Text<Line<4>>>>,
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-20i64..20).prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[ a\\u{0}\\t\\u{85}é]{0,10}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("name".to_owned()),
                        Just("note".to_owned()),
                        Just("count".to_owned()),
                        Just("tags".to_owned()),
                        "[a-z\\u{0}/~]{0,4}",
                    ],
                    inner,
                    0..5
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// Every request body of the API, as the document publishes it, compiles to a validator:
    /// a feature whose body schema did not would answer 500 on every request.
    #[test]
    fn every_request_body_schema_of_the_api_compiles() {
        let document: Value =
            serde_json::from_str(&crate::server::openapi_json().expect("the document"))
                .expect("JSON");
        let schemas = document["components"]["schemas"].clone();
        let mut bodies = 0;
        for (path, operations) in document["paths"].as_object().expect("paths") {
            for (method, operation) in operations.as_object().expect("operations") {
                let Some(content) = operation["requestBody"]["content"].as_object() else {
                    continue;
                };
                for (media_type, body) in content {
                    compile(body["schema"].clone(), schemas.clone())
                        .unwrap_or_else(|err| panic!("{method} {path} ({media_type}): {err}"));
                    bodies += 1;
                }
            }
        }
        assert!(bodies > 0, "the document has no request bodies to check");
    }

    #[test]
    fn a_schema_that_does_not_compile_is_an_error_not_an_empty_list() {
        assert!(compile(Value::Bool(true), Value::Null).is_err());
        let broken = serde_json::json!({"type": "object", "properties": {"n": {"type": 12}}});
        assert!(compile(broken, serde_json::json!({})).is_err());
    }

    proptest! {
        /// Any JSON at all is answered, and whatever the generated schema accepts, the type
        /// parses: the document is exactly what the server takes.
        #[test]
        fn the_schema_accepts_exactly_what_parses(value in json()) {
            let errors = field_errors::<Sample>(&value).expect("Sample's schema compiles");
            let parsed = Sample::parse_from_json(Some(value.clone()));
            if errors.is_empty() {
                prop_assert!(parsed.is_ok(), "{value}: {:?}", parsed.err().map(|e| e.into_message()));
            }
            if parsed.is_ok() {
                prop_assert!(errors.is_empty(), "{value}: {errors:?}");
            }
        }
    }
}
