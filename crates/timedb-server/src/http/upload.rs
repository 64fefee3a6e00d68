//! `POST /upload` and `POST /runs`: write one run with its values, atomically, creating
//! series by key as needed. A JSON body has the upstream shape; CSV and Arrow bodies
//! (decoded in [`super::bulk`]) carry only rows, with the run's fields in the query string.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use timedb::model::time::{format_timestamp, parse_timestamp};
use timedb::model::{Labels, NewRun, RowInput, SeriesId, SeriesKey, SeriesSpec, Unit, WorkflowId, parse_description};
use utoipa::ToSchema;

use super::AppState;
use super::bulk::{self, BulkFormat};
use super::caller::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{JsonBody, QueryPairs, media_type, read_body};

/// `value` must be present, and may be `null` (a stored missing value).
fn required_nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<f64>::deserialize(d)
}

/// One value of an upload.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRow {
    /// The instant (or interval start) the value is about.
    valid_time: String,
    /// The series key; the series is created on first use.
    value_key: String,
    /// The value; `null` stores a missing value.
    #[serde(deserialize_with = "required_nullable")]
    value: Option<f64>,
    /// End of the interval, after `valid_time`.
    valid_time_end: Option<String>,
    /// Pin the row to an existing series (its key must equal `value_key`).
    series_id: Option<String>,
    annotation: Option<String>,
    tags: Option<Vec<String>>,
}

/// Metadata for a series an upload creates: a description, or the full definition.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SeriesDescription {
    Text(String),
    Full(SeriesDefinition),
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesDefinition {
    description: Option<String>,
    unit: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

/// A run with its values.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// Default `api-workflow`.
    workflow_id: Option<String>,
    run_start_time: String,
    run_finish_time: Option<String>,
    /// When the values became known (forecast issue time); default: now.
    known_time: Option<String>,
    /// Free-form run parameters (a JSON object).
    #[schema(value_type = Option<Object>)]
    run_params: Option<serde_json::Value>,
    value_rows: Vec<UploadRow>,
    /// Per value_key: a description, or `{description, unit, labels}`.
    series_descriptions: Option<BTreeMap<String, SeriesDescription>>,
    /// With auth off: the tenant to write to.
    tenant_id: Option<String>,
}

/// The created run.
#[derive(Serialize, ToSchema)]
pub struct UploadResponse {
    run_id: String,
    message: String,
    /// The series id of every value_key in the upload.
    series_ids: BTreeMap<String, String>,
    values_written: usize,
    known_time: String,
}

/// Most rows in one upload.
const MAX_ROWS: usize = 10_000_000;

/// The upload body types, for the 415 answer.
const ACCEPTED: &str = "application/json, text/csv or application/vnd.apache.arrow.stream";

/// Query parameters of a bulk (CSV or Arrow) upload.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the handler reads the query by hand
pub struct BulkRunParams {
    /// CSV and Arrow bodies only: the run's start (default: now).
    run_start_time: Option<String>,
    /// CSV and Arrow bodies only: when the values became known (default: run_start_time).
    known_time: Option<String>,
    /// CSV and Arrow bodies only.
    run_finish_time: Option<String>,
    /// CSV and Arrow bodies only (default `api-workflow`).
    workflow_id: Option<String>,
    /// CSV and Arrow bodies only, with auth off: the tenant to write to.
    tenant_id: Option<String>,
}

fn build_run(req: UploadRequest) -> ApiResult<NewRun> {
    let ts = |name: &str, t: Option<&str>| -> ApiResult<_> { Ok(t.map(|t| parse_timestamp(name, t)).transpose()?) };
    let run_params = match req.run_params {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Object(map)) => Some(map),
        Some(_) => return Err(ApiError::invalid("run_params", "must be a JSON object or null")),
    };
    if req.value_rows.len() > MAX_ROWS {
        return Err(ApiError::invalid("value_rows", format!("at most {MAX_ROWS} rows per upload")));
    }
    let mut run = NewRun::new(
        WorkflowId::parse("workflow_id", req.workflow_id.as_deref())?,
        parse_timestamp("run_start_time", &req.run_start_time)?,
        ts("run_finish_time", req.run_finish_time.as_deref())?,
        ts("known_time", req.known_time.as_deref())?,
        run_params,
    )?;
    for (i, row) in req.value_rows.iter().enumerate() {
        let f = |name: &str| format!("value_rows[{i}].{name}");
        run.push(
            i,
            RowInput {
                key: SeriesKey::parse(&f("value_key"), &row.value_key)?,
                series_id: row.series_id.as_deref().map(|s| SeriesId::parse(&f("series_id"), s)).transpose()?,
                valid_time: parse_timestamp(&f("valid_time"), &row.valid_time)?,
                valid_time_end: row
                    .valid_time_end
                    .as_deref()
                    .map(|t| parse_timestamp(&f("valid_time_end"), t))
                    .transpose()?,
                value: row.value,
                annotation: row.annotation.as_deref(),
                tags: row.tags.as_deref(),
            },
        )?;
    }
    for (key, desc) in req.series_descriptions.unwrap_or_default() {
        let f = |name: &str| format!("series_descriptions.{key}{name}");
        let key = SeriesKey::parse(&f(""), &key)?;
        let spec = match desc {
            SeriesDescription::Text(text) => {
                SeriesSpec { description: parse_description(&f(""), Some(&text))?, ..SeriesSpec::key_only(key) }
            }
            SeriesDescription::Full(def) => SeriesSpec {
                description: parse_description(&f(".description"), def.description.as_deref())?,
                unit: def.unit.as_deref().map(|u| Unit::parse(&f(".unit"), Some(u))).transpose()?,
                labels: def.labels.map(|l| Labels::parse(&f(".labels"), l)).transpose()?,
                key,
            },
        };
        run.declare_series(spec);
    }
    Ok(run.finish())
}

/// Create a run with values.
///
/// Series are created on first use of their `value_key` (get-or-create: one key, one
/// series). Either the run and all its values are stored, or nothing is. Two rows for
/// the same series and valid time are refused (422 naming the duplicate).
///
/// The body is JSON (`application/json`, the run and its `value_rows`), CSV
/// (`text/csv`: a header row with `value_key`, `valid_time`, `value` and optionally
/// `valid_time_end`, `series_id`, `annotation`, `tags`) or an Arrow IPC stream
/// (`application/vnd.apache.arrow.stream`: columns `value_key`, `valid_time`, `value`,
/// optionally `valid_time_end`, `series_id`). For CSV and Arrow the run's fields come from
/// the query string; errors name the CSV line (`line 18: valid_time: ...`) or the Arrow
/// row (`row 17: ...`). Any other content type is refused with 415.
#[utoipa::path(
    post,
    path = "/upload",
    tag = "runs",
    params(BulkRunParams),
    request_body(
        description = "The run: JSON, CSV or an Arrow IPC stream",
        content(
            (UploadRequest = "application/json"),
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.apache.arrow.stream"),
        )
    ),
    responses(
        (status = 200, description = "The run was created", body = UploadResponse),
        (status = 400, description = "A body that does not parse as its content type", body = ErrorBody),
        (status = 404, description = "A row's series_id does not exist", body = ErrorBody),
        (status = 409, description = "A series definition conflicts with the stored one", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Not JSON, CSV or an Arrow IPC stream", body = ErrorBody),
        (status = 422, description = "An invalid field, named in `detail`", body = ErrorBody),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    q: QueryPairs,
    req: Request,
) -> ApiResult<axum::Json<UploadResponse>> {
    let media = media_type(req.headers());
    let (tenant, run) = match media.as_deref().map(|m| (m, BulkFormat::of_media(m))) {
        Some((_, Some(format))) => {
            let (run, tenant) = bulk::run_from_query(&q)?;
            let tenant = caller.tenant_for(tenant.as_deref())?;
            let body = read_body(req).await?;
            (tenant, bulk::decode(format, run, body, MAX_ROWS).await?)
        }
        Some((m, None)) if !is_json(m) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                format!("content type '{m}' is not accepted here; send {ACCEPTED}"),
            ));
        }
        _ => {
            let JsonBody(req) = JsonBody::<UploadRequest>::from_request(req, &state).await?;
            let tenant = caller.tenant_for(req.tenant_id.as_deref())?;
            (tenant, build_run(req)?)
        }
    };
    let receipt = state.store.insert_run(tenant, run, caller.author(None)).await?;
    crate::metrics::global().values_ingested(receipt.values_written);
    Ok(axum::Json(UploadResponse {
        run_id: receipt.run_id.to_string(),
        message: "Run created successfully".into(),
        series_ids: receipt.series_ids.into_iter().map(|(k, id)| (k.as_str().to_owned(), id.to_string())).collect(),
        values_written: receipt.values_written,
        known_time: format_timestamp(receipt.known_time),
    }))
}

/// The JSON media types `JsonBody` accepts.
fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// Create a run with values (same as `POST /upload`, in every body format).
#[utoipa::path(
    post,
    path = "/runs",
    tag = "runs",
    params(BulkRunParams),
    request_body(
        description = "The run: JSON, CSV or an Arrow IPC stream (as for POST /upload)",
        content(
            (UploadRequest = "application/json"),
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.apache.arrow.stream"),
        )
    ),
    responses(
        (status = 200, description = "The run was created", body = UploadResponse),
        (status = 415, description = "Not JSON, CSV or an Arrow IPC stream", body = ErrorBody),
        (status = 422, description = "An invalid field, named in `detail`", body = ErrorBody),
    )
)]
pub async fn create_run(
    state: State<AppState>,
    caller: Caller,
    q: QueryPairs,
    req: Request,
) -> ApiResult<axum::Json<UploadResponse>> {
    upload(state, caller, q, req).await
}
