//! Product types: what the API accepts and returns, and the rules a product always obeys.

use poem_openapi::Object;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};

#[derive(Debug, Clone, Object)]
pub struct Product {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    /// Price in the currency's minor unit (cents for USD and EUR).
    pub price_cents: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    pub stock: i32,
    /// Increases with every change; the `ETag` is derived from it.
    pub version: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Product {
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

#[derive(Debug, Object)]
pub struct NewProduct {
    /// Unique stock-keeping unit: letters, digits, `.`, `_`, `-`.
    #[oai(validator(pattern = "^[A-Za-z0-9._-]{1,64}$"))]
    pub sku: String,
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    #[oai(default, validator(max_length = 5000))]
    pub description: String,
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000000000")))]
    pub price_cents: i64,
    #[oai(validator(pattern = "^[A-Z]{3}$"))]
    pub currency: String,
    #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))]
    pub stock: i32,
}

/// A partial update: only the fields present change.
#[derive(Debug, Object)]
pub struct ProductPatch {
    #[oai(validator(pattern = "^[A-Za-z0-9._-]{1,64}$"))]
    pub sku: Option<String>,
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: Option<String>,
    #[oai(validator(max_length = 5000))]
    pub description: Option<String>,
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000000000")))]
    pub price_cents: Option<i64>,
    #[oai(validator(pattern = "^[A-Z]{3}$"))]
    pub currency: Option<String>,
    #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))]
    pub stock: Option<i32>,
}

#[derive(Debug, Object)]
pub struct ProductPage {
    pub items: Vec<Product>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// The rules the schema cannot express: a real ISO 4217 code, a name that is not blank.
pub fn check_fields(name: Option<&str>, currency: Option<&str>) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if name.is_some_and(|name| name.trim().is_empty()) {
        errors.push(FieldError::new("/name", "must not be blank"));
    }
    if let Some(code) = currency
        && iso_currency::Currency::from_code(code).is_none()
    {
        errors.push(FieldError::new(
            "/currency",
            "is not an ISO 4217 currency code",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_must_exist() {
        assert!(check_fields(Some("Bolt"), Some("EUR")).is_ok());
        assert!(check_fields(Some("Bolt"), Some("ABC")).is_err());
        assert!(check_fields(Some("  "), None).is_err());
    }
}
