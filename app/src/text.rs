//! String newtypes that parse once. A [`TextRule`] is the single definition of what a field
//! accepts: the published schema (`minLength`, `maxLength`, `pattern`) and the server's own
//! check are both made from it, so a client generated from the document, or a schema-driven
//! fuzzer, sends only what the server accepts, and a handler holding a [`Text`] never re-checks.
//!
//! Patterns are written with explicit character ranges, never `\s`, `\w` or `\d`: those mean
//! different things in ECMA-262 (the document's dialect), Python (schemathesis) and Rust.

use std::{
    collections::HashMap,
    fmt,
    marker::PhantomData,
    sync::{LazyLock, RwLock},
};

use poem_openapi::{
    registry::MetaSchema,
    types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON},
};
use regex::Regex;
use serde_json::Value;

/// What one kind of string accepts.
pub trait TextRule: Send + Sync + 'static {
    /// In characters (Unicode scalar values), as JSON Schema counts them.
    const MIN_LENGTH: usize;
    const MAX_LENGTH: usize;
    /// Anchored, in the subset of regex syntax that ECMA-262, Python and Rust read alike.
    const PATTERN: &'static str;
    /// Said in a problem document's field error when the pattern does not match.
    const PATTERN_MESSAGE: &'static str;

    /// Applied once the value passed, to give it its one stored spelling (trimming, say). Must
    /// keep a valid value valid.
    fn normalize(value: String) -> String {
        value
    }
}

/// A string that passed `R`. Only [`Text::parse`] (and the poem-openapi parsers, which call it)
/// makes one.
pub struct Text<R>(String, PhantomData<fn() -> R>);

impl<R: TextRule> Text<R> {
    pub fn parse(value: impl Into<String>) -> Result<Self, TextError> {
        let value = value.into();
        let length = value.chars().count();
        if length < R::MIN_LENGTH {
            return Err(TextError::TooShort(R::MIN_LENGTH));
        }
        if length > R::MAX_LENGTH {
            return Err(TextError::TooLong(R::MAX_LENGTH));
        }
        if !matches(R::PATTERN, &value) {
            return Err(TextError::Pattern(R::PATTERN_MESSAGE));
        }
        Ok(Self(R::normalize(value), PhantomData))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }

    pub fn schema() -> MetaSchema {
        MetaSchema {
            min_length: (R::MIN_LENGTH > 0).then_some(R::MIN_LENGTH),
            max_length: Some(R::MAX_LENGTH),
            pattern: Some(R::PATTERN.to_owned()),
            ..MetaSchema::new("string")
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must be at least {0} characters long")]
    TooShort(usize),
    #[error("must be at most {0} characters long")]
    TooLong(usize),
    #[error("{0}")]
    Pattern(&'static str),
}

/// Each pattern is compiled once, on first use. A pattern that does not compile is a bug in a
/// rule, caught by the rule's unit tests; at run time it refuses every value.
fn matches(pattern: &'static str, value: &str) -> bool {
    static COMPILED: LazyLock<RwLock<HashMap<&'static str, Option<Regex>>>> =
        LazyLock::new(Default::default);
    if let Some(found) = COMPILED
        .read()
        .ok()
        .and_then(|map| map.get(pattern).cloned())
    {
        return found.is_some_and(|regex| regex.is_match(value));
    }
    let compiled = Regex::new(pattern).ok();
    let result = compiled.as_ref().is_some_and(|regex| regex.is_match(value));
    if let Ok(mut map) = COMPILED.write() {
        map.insert(pattern, compiled);
    }
    result
}

impl<R> Clone for Text<R> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), PhantomData)
    }
}

impl<R> PartialEq for Text<R> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<R> Eq for Text<R> {}

impl<R> fmt::Debug for Text<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<R> fmt::Display for Text<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<R> AsRef<str> for Text<R> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

scalar_type!([R: TextRule] Text<R>, "string", Self::schema());

impl<R: TextRule> ParseFromJSON for Text<R> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Self::parse(text).map_err(ParseError::custom),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<R: TextRule> ParseFromParameter for Text<R> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Self::parse(value).map_err(ParseError::custom)
    }
}

impl<R: TextRule> ToJSON for Text<R> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// poem-openapi's `Type` for a newtype over one value whose schema is `$schema` (a
/// `MetaSchema`): the part that every such type writes alike. The type still writes its own
/// `ParseFromJSON`/`ParseFromParameter` and `ToJSON`, where its rules are.
macro_rules! scalar_type {
    ([$($generics:tt)*] $ty:ty, $name:literal, $schema:expr) => {
        impl<$($generics)*> poem_openapi::types::Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
                poem_openapi::registry::MetaSchemaRef::Inline(Box::new($schema))
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }
    };
    ($ty:ty, $name:literal, $schema:expr) => {
        $crate::text::scalar_type!([] $ty, $name, $schema);
    };
}
pub(crate) use scalar_type;

/// Anything but U+0000, which PostgreSQL `text` cannot hold: passwords, tokens, descriptions.
pub struct Plain<const MIN: usize, const MAX: usize>;

impl<const MIN: usize, const MAX: usize> TextRule for Plain<MIN, MAX> {
    const MIN_LENGTH: usize = MIN;
    const MAX_LENGTH: usize = MAX;
    const PATTERN: &'static str = r"^[^\u0000]*$";
    const PATTERN_MESSAGE: &'static str = "must not contain NUL characters";
}

impl<const MAX: usize> Default for Text<Plain<0, MAX>> {
    fn default() -> Self {
        Self(String::new(), PhantomData)
    }
}

/// One line of visible text, such as a name: no control characters, not only spaces. Leading
/// and trailing spaces are dropped.
pub struct Line<const MAX: usize>;

/// C0 and C1 control characters, Rust's `char::is_control`.
macro_rules! controls {
    () => {
        r"\u0000-\u001f\u007f-\u009f"
    };
}

impl<const MAX: usize> TextRule for Line<MAX> {
    const MIN_LENGTH: usize = 1;
    const MAX_LENGTH: usize = MAX;
    const PATTERN: &'static str = concat!(
        "^[^",
        controls!(),
        "]*[^ ",
        controls!(),
        "][^",
        controls!(),
        "]*$"
    );
    const PATTERN_MESSAGE: &'static str =
        "must not be blank or contain control characters (one line of text)";

    fn normalize(value: String) -> String {
        let trimmed = value.trim_matches(' ');
        if trimmed.len() == value.len() {
            value
        } else {
            trimmed.to_owned()
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    type Name = Text<Line<10>>;

    #[test]
    fn lines_are_trimmed_and_must_show_something() {
        assert_eq!(Name::parse(" Ada ").expect("valid").as_str(), "Ada");
        assert_eq!(
            Name::parse("   "),
            Err(TextError::Pattern(Line::<10>::PATTERN_MESSAGE))
        );
        assert!(Name::parse("a\tb").is_err());
        assert!(Name::parse("a\u{85}b").is_err());
        assert_eq!(Name::parse(""), Err(TextError::TooShort(1)));
        assert_eq!(Name::parse("ééééééééééé"), Err(TextError::TooLong(10)));
        assert!(Name::parse("éééééééééé").is_ok());
    }

    #[test]
    fn plain_text_refuses_only_nul() {
        type Secret = Text<Plain<2, 8>>;
        assert!(Secret::parse("a\tb\u{85}").is_ok());
        assert!(Secret::parse("a\0b").is_err());
        assert_eq!(Secret::parse("a"), Err(TextError::TooShort(2)));
    }

    #[test]
    fn the_schema_states_the_rule() {
        let schema = Name::schema();
        assert_eq!((schema.min_length, schema.max_length), (Some(1), Some(10)));
        assert_eq!(schema.pattern.as_deref(), Some(Line::<10>::PATTERN));
        assert!(Regex::new(Line::<10>::PATTERN).is_ok());
    }

    /// The server's check and the published schema, as a JSON Schema validator reads it,
    /// agree on every string: what a client generated from the document sends is accepted, and
    /// what the document forbids is refused.
    pub(crate) fn schema_and_check_agree<R: TextRule>(value: &str) {
        let schema = serde_json::to_value(Text::<R>::schema()).expect("schema as JSON");
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let by_schema = validator.is_valid(&Value::String(value.to_owned()));
        let by_check = Text::<R>::parse(value).is_ok();
        assert_eq!(
            by_schema, by_check,
            "{value:?}: schema {by_schema}, check {by_check}"
        );
    }

    proptest::proptest! {
        #[test]
        fn lines_agree_with_their_schema(value in "[ a\t\n\u{0}\u{85}\u{a0}é\u{1F600}]{0,12}") {
            schema_and_check_agree::<Line<10>>(&value);
        }

        #[test]
        fn plain_text_agrees_with_its_schema(value in "\\PC{0,6}|[a\u{0}]{0,6}") {
            schema_and_check_agree::<Plain<2, 5>>(&value);
        }
    }
}
