//! Opaque keyset cursors, shared by every paginated list.
//!
//! A cursor is the id of the last row of a page, base64url-encoded: opaque to clients (they
//! only pass back `next_cursor`), stable under inserts, and an index seek for the database.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};

pub const DEFAULT_LIMIT: u32 = 20;

pub fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

pub fn encode(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// Decodes the `cursor` query parameter; a malformed one is a 422 naming it.
pub fn decode(cursor: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    cursor
        .map(|cursor| {
            URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|bytes| Uuid::from_slice(&bytes).ok())
                .ok_or_else(|| {
                    ApiError::Validation(vec![FieldError::new(
                        "cursor",
                        "is not a cursor from this API; use next_cursor of the previous page",
                    )])
                })
        })
        .transpose()
}

/// Given up to `limit + 1` rows, keeps `limit` and returns the cursor of the next page, if any.
pub fn split<T>(rows: &mut Vec<T>, limit: u32, id: impl Fn(&T) -> Uuid) -> Option<String> {
    let limit = limit as usize;
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
        assert_eq!(decode(Some(&encode(id))).expect("valid"), Some(id));
        assert_eq!(decode(None).expect("absent"), None);
        assert!(decode(Some("not-a-cursor")).is_err());
    }

    #[test]
    fn split_keeps_the_limit_and_points_past_it() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let mut rows = ids.clone();
        assert_eq!(split(&mut rows, 2, |id| *id), Some(encode(ids[1])));
        assert_eq!(rows.len(), 2);
        let mut short = ids[..2].to_vec();
        assert_eq!(split(&mut short, 2, |id| *id), None);
    }
}
