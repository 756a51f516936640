//! `JsonBody<T>`: the JSON request body for every operation, with errors that name fields.
//!
//! poem-openapi's own `Json<T>` reports a bad body as one string without saying which field
//! is wrong. `JsonBody` documents itself exactly like `Json<T>`, parses through the same
//! `ParseFromJSON`, and when that fails validates the body against the operation's own
//! generated schema to list every offending field as a JSON pointer:
//! `{"field": "/items/0/quantity", "message": "0 is less than the minimum of 1"}`.

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

impl<T: ParseFromJSON> ParsePayload for JsonBody<T> {
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
        match T::parse_from_json(Some(value.clone())) {
            Ok(parsed) => Ok(Self(parsed)),
            Err(err) => {
                let mut errors = field_errors::<T>(&value);
                if errors.is_empty() {
                    // A rule the schema cannot express; poem-openapi's message is all we have.
                    errors.push(FieldError::new("", err.into_message()));
                }
                Err(ApiError::Validation(errors).into())
            }
        }
    }
}

impl<'a, T: ParseFromJSON> ApiExtractor<'a> for JsonBody<T> {
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

/// Validates `value` against `T`'s generated schema and lists what is wrong, field by field.
/// Runs only on the error path, so compiling the validator per call costs nothing for valid
/// requests.
fn field_errors<T: Type>(value: &Value) -> Vec<FieldError> {
    let mut registry = Registry::new();
    T::register(&mut registry);
    let root = match serde_json::to_value(T::schema_ref()) {
        Ok(Value::Object(mut root)) => {
            let schemas = serde_json::to_value(&registry.schemas).unwrap_or_default();
            root.insert(
                "components".into(),
                serde_json::json!({ "schemas": schemas }),
            );
            Value::Object(root)
        }
        _ => return Vec::new(),
    };
    let Ok(validator) = jsonschema::validator_for(&root) else {
        return Vec::new();
    };
    validator
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
        .collect()
}
