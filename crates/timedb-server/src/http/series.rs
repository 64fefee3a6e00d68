//! Series endpoints: `POST /series`, `GET /series`, `GET /series/{id}` and the upstream
//! `GET /list_timeseries`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use timedb::model::time::format_timestamp;
use timedb::model::{Labels, Series, SeriesFilter, SeriesId, SeriesKey, SeriesSpec, Unit, parse_description};
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{JsonBody, PathText, QueryPairs};

/// Declare a series.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSeriesRequest {
    /// The series key (trimmed, 1–256 characters, unique per tenant).
    name: String,
    description: Option<String>,
    /// Default `dimensionless`.
    unit: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    /// With auth off: the tenant to create the series in.
    tenant_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreateSeriesResponse {
    series_id: String,
    message: String,
}

/// A stored series.
#[derive(Serialize, ToSchema)]
pub struct SeriesBody {
    series_id: String,
    series_key: String,
    description: Option<String>,
    unit: String,
    labels: BTreeMap<String, String>,
    created_at: String,
}

impl From<Series> for SeriesBody {
    fn from(s: Series) -> Self {
        Self {
            series_id: s.series_id.to_string(),
            series_key: s.key.as_str().to_owned(),
            description: s.description,
            unit: s.unit.as_str().to_owned(),
            labels: s.labels.0,
            created_at: format_timestamp(s.created_at),
        }
    }
}

/// Create a series (or find the identical one).
///
/// 201 when created, 200 when a series with this key and the same definition exists,
/// 409 when it exists with a different unit, description or labels.
#[utoipa::path(
    post,
    path = "/series",
    tag = "series",
    request_body = CreateSeriesRequest,
    responses(
        (status = 201, description = "Created", body = CreateSeriesResponse),
        (status = 200, description = "Already exists with this definition", body = CreateSeriesResponse),
        (status = 409, description = "Exists with a different definition", body = ErrorBody),
        (status = 422, description = "An invalid field", body = ErrorBody),
    )
)]
pub async fn create_series(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateSeriesRequest>,
) -> ApiResult<(StatusCode, axum::Json<CreateSeriesResponse>)> {
    let tenant = caller.tenant_for(req.tenant_id.as_deref())?;
    let spec = SeriesSpec {
        key: SeriesKey::parse("name", &req.name)?,
        description: parse_description("description", req.description.as_deref())?,
        unit: req.unit.as_deref().map(|u| Unit::parse("unit", Some(u))).transpose()?,
        labels: req.labels.map(|l| Labels::parse("labels", l)).transpose()?,
    };
    let (series, created) = state.store.upsert_series(tenant, spec).await?;
    let (status, message) = if created {
        (StatusCode::CREATED, "Series created successfully")
    } else {
        (StatusCode::OK, "Series already exists")
    };
    Ok((status, axum::Json(CreateSeriesResponse { series_id: series.series_id.to_string(), message: message.into() })))
}

fn parse_filter(q: &QueryPairs) -> ApiResult<(SeriesFilter, Option<String>)> {
    q.check_known(&["series_key", "series_id", "labels", "tenant_id", "api_key"])?;
    let mut filter = SeriesFilter {
        keys: q.many("series_key").into_iter().map(|k| SeriesKey::parse("series_key", k)).collect::<Result<_, _>>()?,
        ids: q.many("series_id").into_iter().map(|k| SeriesId::parse("series_id", k)).collect::<Result<_, _>>()?,
        labels: None,
    };
    if let Some(text) = q.one("labels")? {
        let raw = serde_json::from_str(text)
            .map_err(|_| ApiError::invalid("labels", "must be a JSON object of strings, e.g. {\"site\":\"north\"}"))?;
        filter.labels = Some(Labels::parse("labels", raw)?);
    }
    Ok((filter, q.one("tenant_id")?.map(str::to_owned)))
}

/// List series, ordered by key.
#[utoipa::path(
    get,
    path = "/series",
    tag = "series",
    params(
        ("series_key" = Option<Vec<String>>, Query, description = "Only these keys (repeatable)"),
        ("series_id" = Option<Vec<String>>, Query, description = "Only these ids (repeatable)"),
        ("labels" = Option<String>, Query, description = "Only series carrying these labels (JSON object)"),
    ),
    responses((status = 200, description = "The series", body = Vec<SeriesBody>))
)]
pub async fn list_series(
    State(state): State<AppState>,
    caller: Caller,
    q: QueryPairs,
) -> ApiResult<axum::Json<Vec<SeriesBody>>> {
    let (filter, tenant) = parse_filter(&q)?;
    let tenant = caller.tenant_for(tenant.as_deref())?;
    let series = state.store.list_series(tenant, filter).await?;
    Ok(axum::Json(series.into_iter().map(Into::into).collect()))
}

/// One series.
#[utoipa::path(
    get,
    path = "/series/{series_id}",
    tag = "series",
    params(("series_id" = String, Path, description = "The series id (UUID)")),
    responses(
        (status = 200, description = "The series", body = SeriesBody),
        (status = 404, description = "No such series", body = ErrorBody),
    )
)]
pub async fn get_series(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
    q: QueryPairs,
) -> ApiResult<axum::Json<SeriesBody>> {
    q.check_known(&["tenant_id", "api_key"])?;
    let tenant = caller.tenant_for(q.one("tenant_id")?)?;
    let id = SeriesId::parse("series_id", &id)?;
    Ok(axum::Json(state.store.get_series(tenant, id).await?.into()))
}

/// Key, description and unit of one series (upstream shape).
#[derive(Serialize, ToSchema)]
pub struct TimeseriesInfo {
    series_key: String,
    description: Option<String>,
    unit: String,
}

/// All series of the caller's tenant as `{series_id: {series_key, description, unit}}`.
#[utoipa::path(
    get,
    path = "/list_timeseries",
    tag = "series",
    responses((status = 200, description = "Series by id", body = BTreeMap<String, TimeseriesInfo>))
)]
pub async fn list_timeseries(
    State(state): State<AppState>,
    caller: Caller,
    q: QueryPairs,
) -> ApiResult<axum::Json<BTreeMap<String, TimeseriesInfo>>> {
    let (filter, tenant) = parse_filter(&q)?;
    let tenant = caller.tenant_for(tenant.as_deref())?;
    let series = state.store.list_series(tenant, filter).await?;
    Ok(axum::Json(
        series
            .into_iter()
            .map(|s| {
                (
                    s.series_id.to_string(),
                    TimeseriesInfo {
                        series_key: s.key.as_str().to_owned(),
                        description: s.description,
                        unit: s.unit.as_str().to_owned(),
                    },
                )
            })
            .collect(),
    ))
}
