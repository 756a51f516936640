//! Opaque keyset cursors and page sizes, shared by every paginated list.
//!
//! A cursor is the id of the last row of a page, base64url-encoded: opaque to clients (they
//! only pass back `next_cursor`), stable under inserts, and an index seek for the database.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use poem_openapi::{
    registry::MetaSchema,
    types::{ParseError, ParseFromParameter, ParseResult, ToJSON},
};
use serde_json::Value;
use uuid::Uuid;

use crate::text::scalar_type;

/// `limit`: how many rows a page holds, 1 to 100, 20 when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    const DEFAULT: u32 = 20;
    const MAX: u32 = 100;

    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch(self) -> i64 {
        i64::from(self.0) + 1
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

scalar_type!(
    Limit,
    "integer(limit)",
    MetaSchema {
        minimum: Some(1.0),
        maximum: Some(f64::from(Limit::MAX)),
        ..MetaSchema::new_with_format("integer", "uint32")
    }
);

impl ParseFromParameter for Limit {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        value
            .parse()
            .ok()
            .filter(|limit| (1..=Self::MAX).contains(limit))
            .map(Self)
            .ok_or_else(|| {
                ParseError::custom(format!("must be a whole number from 1 to {}", Self::MAX))
            })
    }
}

impl ToJSON for Limit {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0))
    }
}

/// `cursor`: the `next_cursor` of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(Uuid);

impl Cursor {
    /// The id of the last row already seen.
    pub fn after(self) -> Uuid {
        self.0
    }
}

scalar_type!(
    Cursor,
    "string(cursor)",
    MetaSchema {
        // 16 bytes, base64url without padding. Opaque: a string of this shape is a cursor
        // only if this API returned it.
        pattern: Some("^[A-Za-z0-9_-]{22}$".to_owned()),
        ..MetaSchema::new("string")
    }
);

impl ParseFromParameter for Cursor {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        URL_SAFE_NO_PAD
            .decode(value)
            .ok()
            .and_then(|bytes| Uuid::from_slice(&bytes).ok())
            .map(Self)
            .ok_or_else(|| {
                ParseError::custom(
                    "is not a cursor from this API; use next_cursor of the previous page",
                )
            })
    }
}

pub fn encode(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// Given up to `limit.fetch()` rows, keeps `limit` and returns the cursor of the next page, if
/// any.
pub fn split<T>(rows: &mut Vec<T>, limit: Limit, id: impl Fn(&T) -> Uuid) -> Option<String> {
    let limit = limit.0 as usize;
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| encode(id(last)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = Uuid::now_v7();
        let cursor = Cursor::parse_from_parameter(&encode(id)).expect("valid");
        assert_eq!(cursor.after(), id);
        assert!(Cursor::parse_from_parameter("not-a-cursor").is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(
            Limit::parse_from_parameter("100").map(Limit::fetch).ok(),
            Some(101)
        );
        for bad in ["0", "101", "-1", "abc", ""] {
            assert!(Limit::parse_from_parameter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn split_keeps_the_limit_and_points_past_it() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let mut rows = ids.clone();
        assert_eq!(split(&mut rows, Limit(2), |id| *id), Some(encode(ids[1])));
        assert_eq!(rows.len(), 2);
        let mut short = ids[..2].to_vec();
        assert_eq!(split(&mut short, Limit(2), |id| *id), None);
    }

    proptest::proptest! {
        /// Whatever a client sends as `cursor`, parsing answers (never panics), and only what
        /// the schema's pattern allows can be a cursor.
        #[test]
        fn any_cursor_text_is_answered(value in "\\PC{0,40}") {
            let pattern = regex::Regex::new("^[A-Za-z0-9_-]{22}$").expect("pattern");
            if Cursor::parse_from_parameter(&value).is_ok() {
                proptest::prop_assert!(pattern.is_match(&value));
            }
        }

        #[test]
        fn every_id_round_trips(bytes in proptest::array::uniform16(0u8..)) {
            let id = Uuid::from_bytes(bytes);
            let cursor = Cursor::parse_from_parameter(&encode(id)).expect("our own cursor");
            proptest::prop_assert_eq!(cursor.after(), id);
        }

        #[test]
        fn any_limit_text_is_answered(value in "\\PC{0,8}") {
            if let Ok(limit) = Limit::parse_from_parameter(&value) {
                proptest::prop_assert!((2..=101).contains(&limit.fetch()));
            }
        }
    }
}
