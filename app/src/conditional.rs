//! Conditional requests (RFC 9110 §13): `If-Match` for updates that must not be lost, and
//! weak `If-None-Match` comparison for cached reads.

use poem::{Request, RequestBody, Result};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaParamIn, MetaSchema, MetaSchemaRef, Registry},
};

use crate::error::ApiError;

/// The `If-Match` header of an update, which the operation requires (RFC 6585): the schema
/// marks it required, and a request without it is answered 428 Precondition Required rather
/// than poem-openapi's generic 400, so a client learns what to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfMatch(String);

impl IfMatch {
    pub fn new(header: impl Into<String>) -> Self {
        Self(header.into())
    }

    /// `*` (any current version) or the one entity tag the client last saw; `None` when the
    /// header is anything else, which no current version can match.
    pub fn tag(&self) -> Option<Tag<'_>> {
        let header = self.0.trim();
        if header == "*" {
            return Some(Tag::Any);
        }
        header
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .filter(|opaque| !opaque.contains('"'))
            .map(Tag::Strong)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag<'a> {
    Any,
    /// The opaque part of a strong entity tag, without its quotes.
    Strong(&'a str),
}

impl<'a> ApiExtractor<'a> for IfMatch {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::Parameter];
    const PARAM_IS_REQUIRED: bool = true;

    type ParamType = String;
    type ParamRawType = String;

    fn register(_registry: &mut Registry) {}

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Header)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(MetaSchemaRef::Inline(Box::new(MetaSchema {
            pattern: Some(crate::middleware::HEADER_VALUE_PATTERN.to_owned()),
            ..MetaSchema::new("string")
        })))
    }

    fn param_raw_type(&self) -> Option<&String> {
        Some(&self.0)
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        param_opts: ExtractParamOptions<String>,
    ) -> Result<Self> {
        let header = request
            .headers()
            .get(param_opts.name)
            .ok_or(ApiError::PreconditionRequired)?;
        // A header that is not visible ASCII can name none of our tags.
        let value = header.to_str().map_err(|_| ApiError::PreconditionFailed)?;
        Ok(Self(value.to_owned()))
    }
}

/// Weak comparison, as RFC 9110 prescribes for `If-None-Match`.
pub fn none_match_hits(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_names_one_strong_tag_or_any() {
        let tag = |header: &str| IfMatch::new(header).tag().map(|tag| format!("{tag:?}"));
        assert_eq!(tag(" \"7\" ").as_deref(), Some("Strong(\"7\")"));
        assert_eq!(tag("*").as_deref(), Some("Any"));
        assert_eq!(tag("7"), None);
        assert_eq!(tag("W/\"7\""), None);
        assert_eq!(tag("\"7\", \"8\""), None);
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(none_match_hits("\"3\"", "\"3\""));
        assert!(none_match_hits("W/\"3\", \"4\"", "\"3\""));
        assert!(none_match_hits("*", "\"3\""));
        assert!(!none_match_hits("\"2\"", "\"3\""));
    }

    proptest::proptest! {
        #[test]
        fn any_if_match_is_answered(header in "\\PC{0,30}") {
            if let Some(Tag::Strong(opaque)) = IfMatch::new(header.clone()).tag() {
                proptest::prop_assert!(!opaque.contains('"'));
                let quoted = format!("\"{opaque}\"");
                proptest::prop_assert_eq!(header.trim(), quoted);
            }
        }

        #[test]
        fn our_own_tags_always_match(version in 0i32.., noise in "[ ,W/\"0-9]{0,20}") {
            let etag = format!("\"{version}\"");
            let if_match = IfMatch::new(etag.clone());
            proptest::prop_assert_eq!(if_match.tag(), Some(Tag::Strong(&etag[1..etag.len() - 1])));
            let header = format!("{noise}, {etag}");
            proptest::prop_assert!(none_match_hits(&header, &etag));
            proptest::prop_assert!(none_match_hits("*", &etag));
        }
    }
}
