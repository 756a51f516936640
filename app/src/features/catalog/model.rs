//! Product types: what the API accepts and returns, and the rules a product always obeys.

use std::{str::FromStr, sync::LazyLock};

use poem_openapi::{
    Object,
    registry::MetaSchema,
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON},
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::text::{Line, Plain, Text, TextRule};

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

/// Unique stock-keeping unit: 1 to 64 letters, digits, `.`, `_`, `-`.
pub struct SkuRule;

impl TextRule for SkuRule {
    const MIN_LENGTH: usize = 1;
    const MAX_LENGTH: usize = 64;
    const PATTERN: &'static str = "^[A-Za-z0-9._-]+$";
    const PATTERN_MESSAGE: &'static str = "may hold only letters, digits, '.', '_' and '-'";
}

pub type Sku = Text<SkuRule>;
pub type ProductName = Text<Line<200>>;
pub type Description = Text<Plain<0, 5000>>;

/// An ISO 4217 currency code, e.g. `EUR`; the schema lists every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Every code, in alphabetical order: each three-letter code that ISO 4217 assigns.
    fn all() -> &'static [Value] {
        static CODES: LazyLock<Vec<Value>> = LazyLock::new(|| {
            let letters = || b'A'..=b'Z';
            letters()
                .flat_map(|a| letters().flat_map(move |b| letters().map(move |c| [a, b, c])))
                .filter_map(|code| {
                    let code = std::str::from_utf8(&code).ok()?;
                    iso_currency::Currency::from_code(code).map(|_| Value::from(code))
                })
                .collect()
        });
        &CODES
    }
}

impl FromStr for Currency {
    type Err = &'static str;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        iso_currency::Currency::from_code(code)
            .map(Self)
            .ok_or("is not an ISO 4217 currency code")
    }
}

crate::text::scalar_type!(
    Currency,
    "string(ISO 4217)",
    MetaSchema {
        enum_items: Currency::all().to_vec(),
        ..MetaSchema::new("string")
    }
);

impl ParseFromJSON for Currency {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(code)) => code.parse().map_err(ParseError::custom),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for Currency {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.code()))
    }
}

#[derive(Debug, Object)]
pub struct NewProduct {
    pub sku: Sku,
    pub name: ProductName,
    #[oai(default)]
    pub description: Description,
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000000000")))]
    pub price_cents: i64,
    pub currency: Currency,
    #[oai(validator(minimum(value = "0"), maximum(value = "1000000000")))]
    pub stock: i32,
}

/// A partial update: only the fields present change.
#[derive(Debug, Object)]
pub struct ProductPatch {
    pub sku: Option<Sku>,
    pub name: Option<ProductName>,
    pub description: Option<Description>,
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000000000")))]
    pub price_cents: Option<i64>,
    pub currency: Option<Currency>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_iso_4217_codes() {
        assert_eq!("EUR".parse::<Currency>().map(Currency::code), Ok("EUR"));
        assert!("ABC".parse::<Currency>().is_err());
        assert!("eur".parse::<Currency>().is_err());
        let codes = Currency::all();
        assert!(codes.len() > 150, "{} codes", codes.len());
        assert!(codes.contains(&Value::from("JPY")));
    }

    #[test]
    fn skus_are_plain_identifiers() {
        assert!(Sku::parse("BOLT-M8_steel.2").is_ok());
        assert!(Sku::parse("bolt m8").is_err());
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse("x".repeat(65)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn skus_agree_with_their_schema(value in "[A-Za-z0-9._ /-]{0,70}") {
            crate::text::tests::schema_and_check_agree::<SkuRule>(&value);
        }
    }
}
