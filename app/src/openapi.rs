//! The OpenAPI document as served and printed: poem-openapi's, plus OpenAPI links.
//!
//! Links (OpenAPI 3.0, "Link Object") say which response field feeds which operation: the id
//! of a created product into `getProduct`, its ETag into `updateProduct`'s If-Match. Generated
//! clients and schemathesis' stateful phase follow them to chain calls. poem-openapi cannot
//! declare them, so features list theirs as data and this module adds them to the document.

use std::{collections::HashMap, marker::PhantomData};

use poem::{endpoint::BoxEndpoint, http::Method};
use poem_openapi::{OpenApi, registry::MetaApi, registry::Registry};
use serde_json::{Map, Value, json};

/// One link from an operation's response to another operation.
pub struct Link {
    /// The source operation and response: (path template, lower-case method, status).
    pub from: (&'static str, &'static str, &'static str),
    pub name: &'static str,
    pub operation_id: &'static str,
    /// Target parameter name -> runtime expression, e.g. `("id", "$response.body#/id")`.
    pub parameters: &'static [(&'static str, &'static str)],
}

impl Link {
    /// The most common link: the created resource's `id` into an operation on `/{id}`.
    pub const fn by_id(
        from: (&'static str, &'static str, &'static str),
        name: &'static str,
        operation_id: &'static str,
    ) -> Self {
        Self {
            from,
            name,
            operation_id,
            parameters: &[("id", "$response.body#/id")],
        }
    }
}

/// The operations of `T` for the document alone: the same paths, schemas and security as
/// `T`, without a value of `T` (whose handlers need a database, keys, a hasher) and without
/// routes. `keel openapi` prints the document from this.
pub struct DocumentOnly<T>(PhantomData<T>);

impl<T> Default for DocumentOnly<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T: OpenApi> OpenApi for DocumentOnly<T> {
    fn meta() -> Vec<MetaApi> {
        T::meta()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn add_routes(self, _: &mut HashMap<String, HashMap<Method, BoxEndpoint<'static>>>) {}
}

/// `spec` (poem-openapi's JSON) with the links added, pretty-printed. Links whose source
/// operation is not in `spec` are skipped (tests mount partial APIs); the OpenAPI tests check
/// that the full document carries every one.
pub fn document(spec: &str) -> Result<String, serde_json::Error> {
    let mut document: Value = serde_json::from_str(spec)?;
    for link in crate::features::links() {
        let (path, method, status) = link.from;
        let Some(response) = document
            .pointer_mut(&format!(
                "/paths/{}/{method}/responses/{status}",
                escape(path)
            ))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let parameters: Map<String, Value> = link
            .parameters
            .iter()
            .map(|(name, expression)| ((*name).to_owned(), json!(expression)))
            .collect();
        response
            .entry("links")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|links| {
                links.insert(
                    link.name.to_owned(),
                    json!({ "operationId": link.operation_id, "parameters": parameters }),
                )
            });
    }
    serde_json::to_string_pretty(&document)
}

/// JSON pointer escaping (RFC 6901) for a path template used as a key.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
