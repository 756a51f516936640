//! `ApiError` and its RFC 9457 `application/problem+json` rendering: the one place status codes
//! are chosen.
//!
//! Handlers return `Result<_, ApiError>`. Everything else that can fail a request (poem's router,
//! poem-openapi's extractors, middleware) yields a `poem::Error`; [`ApiError::from_poem`] maps
//! those, so a client sees the same problem shape whatever rejected its request.

use std::time::Duration;

use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::{
    ApiResponse, Object,
    error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParsePathError,
        ParseRequestPayloadError,
    },
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::{ToJSON, Type},
};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// URI reference identifying the problem type; `about:blank` means "see the status code".
    #[oai(rename = "type")]
    pub problem_type: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    pub detail: String,
    /// The request's `x-request-id`, to quote when reporting a problem.
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
    /// One entry per invalid field or parameter (validation problems only).
    #[oai(default, skip_serializing_if_is_empty)]
    pub errors: Vec<FieldError>,
}

/// What is wrong with one field of the request.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct FieldError {
    /// The field: a JSON pointer into the body (`/email`) or a parameter name (`limit`).
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// Missing or invalid credentials. Answered with `WWW-Authenticate: Bearer`.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<&'static str> },
    #[error("request body too large")]
    PayloadTooLarge { limit: Option<usize> },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// `If-Match` named a version that is no longer current (or not one of ours).
    #[error("precondition failed")]
    PreconditionFailed,
    /// A conditional operation was attempted without `If-Match`.
    #[error("precondition required")]
    PreconditionRequired,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("too many requests; retry after {retry_after:?}")]
    TooManyRequests { retry_after: Duration },
    #[error("{0} unavailable")]
    Unavailable(&'static str),
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// Anything unexpected. Its text is logged, never sent: it may hold SQL or internal names.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem_type(&self) -> &'static str {
        match self {
            Self::Validation(_) => "urn:keel:problem:validation",
            Self::Unavailable(_) => "urn:keel:problem:dependency-unavailable",
            Self::Timeout(_) => "urn:keel:problem:timeout",
            _ => "about:blank",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::BadRequest(detail)
            | Self::Unauthorized(detail)
            | Self::Forbidden(detail)
            | Self::Conflict(detail) => detail.clone(),
            Self::TooManyRequests { retry_after } => format!(
                "Too many attempts; retry in {} s.",
                retry_after.as_secs_f64().ceil()
            ),
            Self::NotFound => "No resource matches this URL.".to_owned(),
            Self::PreconditionFailed => {
                "The resource changed since the ETag in If-Match; fetch it and retry.".to_owned()
            }
            Self::PreconditionRequired => {
                "This update needs If-Match with the resource's current ETag (not `*`, which \
                 would overwrite changes you have not seen)."
                    .to_owned()
            }
            Self::MethodNotAllowed { allow } => {
                format!("This URL accepts {}.", allow.join(", "))
            }
            Self::PayloadTooLarge { limit: Some(limit) } => {
                format!("The request body exceeds the limit of {limit} bytes.")
            }
            Self::PayloadTooLarge { limit: None } => "The request body is too large.".to_owned(),
            Self::UnsupportedMediaType(detail) => detail.clone(),
            Self::Validation(errors) if errors.len() == 1 => {
                "One field of the request is invalid.".to_owned()
            }
            Self::Validation(errors) => {
                format!("{} fields of the request are invalid.", errors.len())
            }
            Self::Unavailable(what) => {
                format!("The {what} is unavailable; retry shortly.")
            }
            Self::Timeout(after) => format!(
                "The request did not complete within {}.",
                humantime::format_duration(*after)
            ),
            Self::Internal(_) => "An unexpected error occurred.".to_owned(),
        }
    }

    pub fn to_problem(&self, request_id: Option<&str>) -> Problem {
        let status = self.status();
        Problem {
            problem_type: self.problem_type().to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            request_id: request_id.map(str::to_owned),
            errors: match self {
                Self::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// Renders the problem document, logging what the client is not told.
    pub fn into_response_with(self, request_id: Option<&str>) -> Response {
        match &self {
            Self::Internal(err) => tracing::error!(error = ?err, "request failed"),
            Self::Unavailable(_) | Self::Timeout(_) => {
                tracing::warn!(error = %self, "request failed")
            }
            _ => {}
        }
        let problem = self.to_problem(request_id);
        let body = problem.to_json_string();
        let mut response = Response::builder()
            .status(self.status())
            .content_type(PROBLEM_JSON)
            .body(body);
        if let Self::MethodNotAllowed { allow } = &self {
            response.headers_mut().insert(
                poem::http::header::ALLOW,
                poem::http::HeaderValue::from_str(&allow.join(", "))
                    .unwrap_or(poem::http::HeaderValue::from_static("GET")),
            );
        }
        let retry_after = match &self {
            Self::Unavailable(_) | Self::Timeout(_) => Some(1),
            Self::TooManyRequests { retry_after } => Some(retry_after.as_secs_f64().ceil() as u64),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                poem::http::HeaderValue::from(seconds.max(1)),
            );
        }
        if matches!(self, Self::Unauthorized(_)) {
            response.headers_mut().insert(
                poem::http::header::WWW_AUTHENTICATE,
                poem::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }

    /// Maps any error that reached the edge of the server to the problem a client should see.
    pub fn from_poem(err: poem::Error) -> Self {
        if err.is::<Self>() {
            return match err.downcast::<Self>() {
                Ok(api_error) => api_error,
                Err(err) => Self::Internal(anyhow::anyhow!("{err}")),
            };
        }
        if let Some(err) = err.downcast_ref::<ParseParamError>() {
            return Self::Validation(vec![FieldError::new(err.name, err.reason.clone())]);
        }
        if err.is::<ParsePathError>() {
            // A path segment of the wrong shape (say, not a UUID) names nothing that exists.
            return Self::NotFound;
        }
        if let Some(err) = err.downcast_ref::<ParseRequestPayloadError>() {
            return Self::BadRequest(err.reason.clone());
        }
        if let Some(err) = err.downcast_ref::<ContentTypeError>() {
            return Self::UnsupportedMediaType(err.to_string());
        }
        if err.is::<AuthorizationError>() {
            return Self::Unauthorized(
                "This operation needs an access token: Authorization: Bearer <token>.".into(),
            );
        }
        match err.status() {
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::UNAUTHORIZED => {
                Self::Unauthorized("Missing or invalid credentials.".into())
            }
            // poem's CORS rejections ("origin not allowed") are safe to show.
            StatusCode::FORBIDDEN => Self::Forbidden(err.to_string()),
            // The Allow list needs the route table; the problem middleware fills it in.
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed { allow: Vec::new() },
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge { limit: None },
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(err.to_string()),
            status if status.is_client_error() => Self::BadRequest(
                status
                    .canonical_reason()
                    .unwrap_or("The request is invalid.")
                    .to_owned(),
            ),
            _ => Self::Internal(anyhow::anyhow!("{err} (status {})", err.status())),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&err) {
            Self::Unavailable("database")
        } else {
            Self::Internal(err.into())
        }
    }
}

impl From<crate::auth::password::HashError> for ApiError {
    fn from(err: crate::auth::password::HashError) -> Self {
        match err {
            // Load, not a bug: the client may retry shortly.
            crate::auth::password::HashError::Busy => Self::TooManyRequests {
                retry_after: std::time::Duration::from_secs(1),
            },
            other => Self::Internal(other.into()),
        }
    }
}

impl From<ApiError> for poem::Error {
    fn from(err: ApiError) -> Self {
        let status = err.status();
        poem::Error::new(err, status)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_with(None)
    }
}

/// The problem responses operations can produce: from their own checks or from the server's
/// middleware (body limit, timeout, content type, database outage). Every operation declares
/// the whole set, so generated clients handle problem+json uniformly and contract tests never
/// meet an undocumented status; the descriptions say which kind of operation answers which.
const DOCUMENTED: &[(u16, &str)] = &[
    (400, "Malformed request"),
    (
        401,
        "Missing or invalid access token (operations that need one), or wrong credentials",
    ),
    (
        403,
        "Authenticated, but the role does not allow this operation",
    ),
    (404, "Not found"),
    (409, "Conflicts with existing state, e.g. a duplicate email"),
    (412, "If-Match names a version that is no longer current"),
    (413, "Request body too large"),
    (415, "Unsupported content type"),
    (422, "Invalid fields or parameters; `errors` names each one"),
    (428, "The update needs an If-Match header"),
    (429, "Too many failed attempts; see Retry-After"),
    (500, "Unexpected error"),
    (
        503,
        "A dependency is down or the request timed out; retry later",
    ),
];

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: DOCUMENTED
                .iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_JSON,
                        schema: Problem::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_errors_never_leak_their_text() {
        let err = ApiError::Internal(anyhow::anyhow!("relation \"users\" does not exist"));
        let body = err
            .into_response_with(Some("req-1"))
            .into_body()
            .into_string()
            .await
            .expect("body");
        assert!(!body.contains("users"), "{body}");
        assert!(body.contains("req-1"), "{body}");
    }

    #[test]
    fn validation_problems_list_fields() {
        let problem =
            ApiError::Validation(vec![FieldError::new("/email", "required")]).to_problem(None);
        assert_eq!(problem.status, 422);
        assert_eq!(problem.errors, vec![FieldError::new("/email", "required")]);
    }

    #[test]
    fn pool_timeouts_are_unavailable_not_internal() {
        let err = ApiError::from(sqlx::Error::PoolTimedOut);
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
