//! Catalog endpoints: anyone browses, admins manage.

use poem_openapi::{
    ApiResponse, OpenApi, Tags,
    param::{Header, Path, Query},
    payload::Json,
};
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    model::{NewProduct, Product, ProductPage, ProductPatch},
    repo::{self, Update},
};
use crate::{
    auth::BearerAuth,
    conditional::{IfMatch, Tag, none_match_hits},
    error::ApiError,
    json::JsonBody,
    openapi::Link,
    pagination::{self, Cursor, Limit},
};

#[derive(Tags)]
enum CatalogTags {
    /// Products: browse freely, manage as admin.
    Catalog,
}

/// Caches may keep a product but must revalidate it, which the ETag makes a cheap 304.
const CACHE_CONTROL: &str = "public, no-cache";

#[derive(ApiResponse)]
enum CreateProductResponse {
    /// The product was created.
    #[oai(status = 201)]
    Created(
        Json<Product>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Location")] String,
    ),
}

#[derive(ApiResponse)]
enum GetProductResponse {
    /// The product.
    #[oai(status = 200)]
    Ok(
        Json<Product>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
    /// Unchanged since the version named in `If-None-Match`.
    #[oai(status = 304)]
    NotModified(#[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
enum UpdateProductResponse {
    /// The updated product and its new ETag.
    #[oai(status = 200)]
    Ok(Json<Product>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
enum DeleteProductResponse {
    /// The product is gone.
    #[oai(status = 204)]
    NoContent,
}

/// What a created product feeds into (OpenAPI links): read, update with its ETag, delete.
pub const LINKS: &[Link] = &[
    Link::by_id(
        ("/api/v1/products", "post", "201"),
        "GetProduct",
        "getProduct",
    ),
    Link {
        from: ("/api/v1/products", "post", "201"),
        name: "UpdateProduct",
        operation_id: "updateProduct",
        parameters: &[
            ("id", "$response.body#/id"),
            ("If-Match", "$response.header.ETag"),
        ],
    },
    Link::by_id(
        ("/api/v1/products", "post", "201"),
        "DeleteProduct",
        "deleteProduct",
    ),
];

impl From<repo::ProductError> for ApiError {
    fn from(err: repo::ProductError) -> Self {
        match err {
            repo::ProductError::DuplicateSku => {
                Self::Conflict("A product with this sku already exists.".into())
            }
            repo::ProductError::Database(err) => err.into(),
        }
    }
}

pub struct CatalogApi {
    pub db: PgPool,
    pub cache: std::sync::Arc<super::cache::ProductCache>,
}

#[OpenApi(prefix_path = "/api/v1", tag = "CatalogTags::Catalog")]
impl CatalogApi {
    /// List products, newest first, optionally matching a search.
    ///
    /// `q` matches whole words and word prefixes of the sku, name and description
    /// (`steel bol` finds "Steel bolt M8"). Pages are stable while products are added.
    #[oai(path = "/products", method = "get", operation_id = "listProducts")]
    async fn list(
        &self,
        /// Page size, 1–100.
        #[oai(default)]
        limit: Query<Limit>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<Cursor>>,
        /// Search words.
        #[oai(validator(max_length = 200))]
        q: Query<Option<String>>,
    ) -> Result<Json<ProductPage>, ApiError> {
        let search = q.0.as_deref().and_then(prefix_query);
        let after = cursor.0.map(Cursor::after);
        let mut items = repo::page(&self.db, search.as_deref(), after, limit.0.fetch()).await?;
        let next_cursor = pagination::split(&mut items, limit.0, |product| product.id);
        Ok(Json(ProductPage { items, next_cursor }))
    }

    /// Create a product (admin).
    #[oai(path = "/products", method = "post", operation_id = "createProduct")]
    async fn create(
        &self,
        auth: BearerAuth,
        body: JsonBody<NewProduct>,
    ) -> Result<CreateProductResponse, ApiError> {
        auth.require_admin(&self.db).await?;
        let product = repo::insert(&self.db, &body.0).await?;
        let (etag, location) = (product.etag(), format!("/api/v1/products/{}", product.id));
        Ok(CreateProductResponse::Created(
            Json(product),
            etag,
            location,
        ))
    }

    /// One product, with an `ETag`; 304 when `If-None-Match` names the current one.
    #[oai(path = "/products/:id", method = "get", operation_id = "getProduct")]
    async fn get(
        &self,
        id: Path<Uuid>,
        #[oai(name = "If-None-Match", validator(pattern = r"^[\x20-\x7E]*$"))]
        if_none_match: Header<Option<String>>,
    ) -> Result<GetProductResponse, ApiError> {
        let product = self
            .cache
            .get(&self.db, id.0)
            .await?
            .ok_or(ApiError::NotFound)?;
        let etag = product.etag();
        if if_none_match
            .0
            .as_deref()
            .is_some_and(|header| none_match_hits(header, &etag))
        {
            return Ok(GetProductResponse::NotModified(etag));
        }
        Ok(GetProductResponse::Ok(
            Json(product),
            etag,
            CACHE_CONTROL.to_owned(),
        ))
    }

    /// Change some fields of a product (admin).
    ///
    /// Requires `If-Match` with the product's current `ETag`: 428 without it (or with `*`, which
    /// would overwrite changes the caller has not seen), 412 when someone else changed the
    /// product since, so no update is ever lost.
    #[oai(
        path = "/products/:id",
        method = "patch",
        operation_id = "updateProduct"
    )]
    async fn update(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// The product's current `ETag` (`*` is refused).
        #[oai(name = "If-Match")]
        if_match: IfMatch,
        body: JsonBody<ProductPatch>,
    ) -> Result<UpdateProductResponse, ApiError> {
        auth.require_admin(&self.db).await?;
        let expected = expected_version(&if_match)?;
        let updated = repo::update(&self.db, id.0, expected, &body.0).await?;
        self.cache.forget(id.0);
        match updated {
            Update::Updated(product) => {
                let etag = product.etag();
                Ok(UpdateProductResponse::Ok(Json(product), etag))
            }
            Update::Stale => Err(ApiError::PreconditionFailed),
            Update::NotFound => Err(ApiError::NotFound),
        }
    }

    /// Delete a product (admin).
    #[oai(
        path = "/products/:id",
        method = "delete",
        operation_id = "deleteProduct"
    )]
    async fn delete(
        &self,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<DeleteProductResponse, ApiError> {
        auth.require_admin(&self.db).await?;
        let deleted = repo::delete(&self.db, id.0).await?;
        self.cache.forget(id.0);
        if deleted {
            Ok(DeleteProductResponse::NoContent)
        } else {
            Err(ApiError::NotFound)
        }
    }
}

/// `steel bol` -> `steel:* & bol:*`. Only letters and digits reach `to_tsquery`, so user input
/// can never be tsquery syntax. No words left: no search.
fn prefix_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(8)
        .map(|word| format!("{}:*", word.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

/// The version one ETag of ours carries. `*` ("any current version") is what a lost update
/// looks like, so it is refused like a missing header; anything else no version can match.
fn expected_version(if_match: &IfMatch) -> Result<i32, ApiError> {
    match if_match.tag() {
        Some(Tag::Any) => Err(ApiError::PreconditionRequired),
        Some(Tag::Strong(version)) => version.parse().or(Err(ApiError::PreconditionFailed)),
        None => Err(ApiError::PreconditionFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_become_a_safe_prefix_query() {
        assert_eq!(
            prefix_query("Steel bol").as_deref(),
            Some("steel:* & bol:*")
        );
        assert_eq!(prefix_query("a&b|!c:*").as_deref(), Some("a:* & b:* & c:*"));
        assert_eq!(prefix_query(" !!! "), None);
    }

    #[test]
    fn if_match_names_a_version_of_ours() {
        let expected = |header: &str| expected_version(&IfMatch::new(header));
        assert_eq!(expected("\"7\"").ok(), Some(7));
        assert!(matches!(expected("*"), Err(ApiError::PreconditionRequired)));
        assert!(matches!(
            expected("\"seven\""),
            Err(ApiError::PreconditionFailed)
        ));
        assert!(matches!(expected("7"), Err(ApiError::PreconditionFailed)));
    }
}
