//! `GET /reports/sales`: revenue and order count per day (UTC), and the best-selling products.

use poem_openapi::{
    Object, OpenApi, Tags,
    param::Query,
    payload::Json,
    registry::MetaSchema,
    types::{ParseError, ParseFromParameter, ParseResult},
};
use sqlx::PgPool;
use time::{Date, Duration, OffsetDateTime, Time};
use uuid::Uuid;

use crate::{
    auth::BearerAuth,
    error::{ApiError, FieldError},
};

/// Most days one report may cover, `from` and `to` included: a leap year.
const MAX_DAYS: i64 = 366;

#[derive(Tags)]
enum ReportTags {
    /// Figures for admins.
    Reports,
}

#[derive(Debug, Object)]
pub struct DailySales {
    /// The UTC day.
    pub date: Date,
    pub currency: String,
    /// Orders placed that day and not cancelled.
    pub orders: i64,
    pub revenue_cents: i64,
}

#[derive(Debug, Object)]
pub struct ProductSales {
    /// Absent for products deleted since.
    #[oai(skip_serializing_if_is_none)]
    pub product_id: Option<Uuid>,
    pub sku: String,
    pub name: String,
    pub units: i64,
    pub revenue_cents: i64,
}

#[derive(Debug, Object)]
pub struct SalesReport {
    pub from: Date,
    pub to: Date,
    /// One entry per day and currency with sales, oldest first.
    pub days: Vec<DailySales>,
    /// The ten products with the most units sold in the range.
    pub top_products: Vec<ProductSales>,
}

/// A day in a query, `YYYY-MM-DD`. poem-openapi's `Date` publishes only `format: date`, which
/// JSON Schema treats as a hint: the pattern makes an empty or free-form value invalid in the
/// document too, not just on the server.
#[derive(Debug, Clone, Copy)]
pub struct Day(Date);

crate::text::scalar_type!(
    Day,
    "string(date)",
    MetaSchema {
        pattern: Some("^[0-9]{4}-[0-9]{2}-[0-9]{2}$".to_owned()),
        ..MetaSchema::new_with_format("string", "date")
    }
);

impl ParseFromParameter for Day {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Date::parse_from_parameter(value)
            .map(Self)
            .map_err(ParseError::propagate)
    }
}

pub struct ReportsApi {
    pub db: PgPool,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ReportTags::Reports")]
impl ReportsApi {
    /// Sales between two dates, inclusive, by UTC day; cancelled orders excluded (admin).
    #[oai(path = "/reports/sales", method = "get")]
    async fn sales(
        &self,
        auth: BearerAuth,
        from: Query<Day>,
        to: Query<Day>,
    ) -> Result<Json<SalesReport>, ApiError> {
        auth.require_admin(&self.db).await?;
        let (from, to) = (from.0.0, to.0.0);
        let days = (to - from).whole_days();
        if !(0..MAX_DAYS).contains(&days) {
            return Err(ApiError::Validation(vec![FieldError::new(
                "to",
                format!(
                    "must be on or after from, and the range at most {MAX_DAYS} days long \
                         (from and to included)"
                ),
            )]));
        }
        let start = OffsetDateTime::new_utc(from, Time::MIDNIGHT);
        let end = OffsetDateTime::new_utc(to, Time::MIDNIGHT) + Duration::days(1);

        let days = sqlx::query_as!(
            DailySales,
            r#"SELECT (created_at AT TIME ZONE 'UTC')::date AS "date!",
                      currency AS "currency!",
                      count(*) AS "orders!",
                      sum(total_cents)::bigint AS "revenue_cents!"
               FROM sales
               WHERE created_at >= $1 AND created_at < $2
               GROUP BY 1, 2
               ORDER BY 1, 2"#,
            start,
            end,
        )
        .fetch_all(&self.db)
        .await?;

        let top_products = sqlx::query_as!(
            ProductSales,
            r#"SELECT product_id,
                      sku AS "sku!",
                      max(name) AS "name!",
                      sum(quantity)::bigint AS "units!",
                      sum(revenue_cents)::bigint AS "revenue_cents!"
               FROM sale_lines
               WHERE created_at >= $1 AND created_at < $2
               GROUP BY product_id, sku
               ORDER BY 4 DESC, sku
               LIMIT 10"#,
            start,
            end,
        )
        .fetch_all(&self.db)
        .await?;

        Ok(Json(SalesReport {
            from,
            to,
            days,
            top_products,
        }))
    }
}
