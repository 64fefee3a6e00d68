//! `GET /values` (streamed reads in JSON, CSV or Arrow IPC) and `PUT /values`
//! (corrections).

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::de::{Deserialize, Deserializer};
use serde::{Deserialize as DeriveDeserialize, Serialize};
use timedb::model::time::{format_timestamp, parse_timestamp};
use timedb::model::{
    Labels, Patch, ReadMode, RunId, SeriesId, SeriesKey, Tags, UpdateOutcome, ValueAddress, ValueId, ValueQuery,
    ValueUpdate, canonical_annotation,
};
use utoipa::ToSchema;

use super::AppState;
use super::bulk::ARROW_STREAM;
use super::caller::Caller;
use super::encode::{Columns, Format, encode};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{JsonBody, QueryPairs};

const READ_PARAMS: &[&str] = &[
    "start_valid",
    "end_valid",
    "start_known",
    "end_known",
    "mode",
    "all_versions",
    "series_key",
    "series_id",
    "labels",
    "format",
    "tenant_id",
    "api_key",
];

/// One row of a read (fields after `value` appear only in the modes that say so).
#[derive(Serialize, ToSchema)]
pub struct ValueRowDoc {
    valid_time: String,
    valid_time_end: Option<String>,
    series_id: String,
    series_key: String,
    series_unit: String,
    value: Option<f64>,
    /// Overlapping mode and `all_versions` only.
    known_time: Option<String>,
    /// Overlapping mode and `all_versions` only.
    run_id: Option<String>,
    /// `all_versions` only.
    value_id: Option<i64>,
    /// `all_versions` only.
    annotation: Option<String>,
    /// `all_versions` only.
    tags: Option<Vec<String>>,
    /// `all_versions` only.
    changed_by: Option<String>,
    /// `all_versions` only.
    change_time: Option<String>,
    /// `all_versions` only.
    is_current: Option<bool>,
}

/// The JSON body of a read.
#[derive(Serialize, ToSchema)]
pub struct ValuesResponse {
    count: u64,
    data: Vec<ValueRowDoc>,
}

fn parse_bool(field: &str, text: &str) -> Result<bool, ApiError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err(ApiError::invalid(field, format!("'{text}' is not a boolean (expected true or false)"))),
    }
}

/// Parse the read's query string into a query, the tenant it names and the format.
fn parse_read(q: &QueryPairs, headers: &HeaderMap) -> ApiResult<(ValueQuery, Option<String>, Format)> {
    q.check_known(READ_PARAMS)?;
    let ts = |name: &str| -> ApiResult<_> { Ok(q.one(name)?.map(|t| parse_timestamp(name, t)).transpose()?) };
    let mut query = ValueQuery {
        mode: q.one("mode")?.map(|m| ReadMode::parse("mode", m)).transpose()?.unwrap_or_default(),
        all_versions: q.one("all_versions")?.map(|b| parse_bool("all_versions", b)).transpose()?.unwrap_or(false),
        start_valid: ts("start_valid")?,
        end_valid: ts("end_valid")?,
        start_known: ts("start_known")?,
        end_known: ts("end_known")?,
        ..ValueQuery::default()
    };
    query.series.keys =
        q.many("series_key").into_iter().map(|k| SeriesKey::parse("series_key", k)).collect::<Result<_, _>>()?;
    query.series.ids =
        q.many("series_id").into_iter().map(|k| SeriesId::parse("series_id", k)).collect::<Result<_, _>>()?;
    if let Some(text) = q.one("labels")? {
        let raw = serde_json::from_str(text)
            .map_err(|_| ApiError::invalid("labels", "must be a JSON object of strings, e.g. {\"site\":\"north\"}"))?;
        query.series.labels = Some(Labels::parse("labels", raw)?);
    }
    let format = match q.one("format")?.map(|f| f.trim().to_ascii_lowercase()) {
        Some(f) if f == "json" => Format::Json,
        Some(f) if f == "csv" => Format::Csv,
        Some(f) if f == "arrow" => Format::Arrow,
        Some(f) => {
            return Err(ApiError::invalid("format", format!("'{f}' is not a format (expected json, csv or arrow)")));
        }
        None => {
            // JSON wins whenever the client accepts it, so `Accept: */*` stays JSON.
            let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
            if accept.contains("application/json") {
                Format::Json
            } else if accept.contains(ARROW_STREAM) {
                Format::Arrow
            } else if accept.contains("text/csv") {
                Format::Csv
            } else {
                Format::Json
            }
        }
    };
    Ok((query.validated()?, q.one("tenant_id")?.map(str::to_owned), format))
}

/// Read values.
///
/// Flat mode (default) gives, per series and valid time, the current value from the run
/// known latest; overlapping gives every run's value with its `known_time`;
/// `all_versions=true` adds superseded versions (audit history). `end_known` reads as of
/// a past instant. Rows are ordered by (valid_time, series_key) in flat mode and by
/// (known_time, valid_time, series_key) in overlapping mode. The body is streamed.
#[utoipa::path(
    get,
    path = "/values",
    tag = "values",
    params(
        ("start_valid" = Option<String>, Query, description = "Inclusive lower bound on valid_time (RFC 3339; no offset = UTC)"),
        ("end_valid" = Option<String>, Query, description = "Exclusive upper bound on valid_time"),
        ("start_known" = Option<String>, Query, description = "Inclusive lower bound on the run's known_time"),
        ("end_known" = Option<String>, Query, description = "Exclusive upper bound on known_time: read as of this instant"),
        ("mode" = Option<String>, Query, description = "flat (default) or overlapping"),
        ("all_versions" = Option<bool>, Query, description = "Include superseded versions"),
        ("series_key" = Option<Vec<String>>, Query, description = "Only these series keys (repeatable)"),
        ("series_id" = Option<Vec<String>>, Query, description = "Only these series ids (repeatable)"),
        ("labels" = Option<String>, Query, description = "Only series carrying these labels, as a JSON object"),
        ("format" = Option<String>, Query, description = "json (default), csv or arrow (an Arrow IPC stream); `Accept: text/csv` or `Accept: application/vnd.apache.arrow.stream` also selects one"),
        ("tenant_id" = Option<String>, Query, description = "With auth off: the tenant to read (default tenant otherwise)"),
    ),
    responses(
        (status = 200, description = "The rows", content(
            (ValuesResponse = "application/json"),
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.apache.arrow.stream"),
        )),
        (status = 422, description = "An invalid parameter, named in `detail`", body = ErrorBody),
    )
)]
pub async fn get_values(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    q: QueryPairs,
) -> ApiResult<Response> {
    let (query, tenant, format) = parse_read(&q, &headers)?;
    let tenant = caller.tenant_for(tenant.as_deref())?;
    let cols = Columns::for_read(query.mode, query.all_versions);
    let rows = state.store.read_values(tenant, query).await?;
    let mut response = Body::from_stream(encode(rows, format, cols)).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    Ok(response)
}

/// A tri-state JSON field: absent (unchanged), `null` (clear) or a value (set).
#[derive(Debug, Default)]
pub enum Tri<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Tri<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Tri::Null,
            Some(v) => Tri::Value(v),
        })
    }
}

/// One correction: address a value by `value_id`, or by run_id + series_id +
/// valid_time (+ valid_time_end). Each of value, annotation and tags is left unchanged
/// when absent, cleared when `null`, set otherwise.
#[derive(DeriveDeserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateItem {
    value_id: Option<i64>,
    run_id: Option<String>,
    series_id: Option<String>,
    valid_time: Option<String>,
    valid_time_end: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    value: Tri<f64>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    annotation: Tri<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    tags: Tri<Vec<String>>,
}

/// A batch of corrections, applied atomically.
#[derive(DeriveDeserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    updates: Vec<UpdateItem>,
    /// With auth off: the tenant whose values are corrected.
    tenant_id: Option<String>,
    /// With auth off: who made the corrections (ignored when authenticated).
    changed_by: Option<String>,
}

/// The state of one corrected value.
#[derive(Serialize, ToSchema)]
pub struct UpdatedValue {
    value_id: i64,
    previous_value_id: i64,
    run_id: String,
    series_id: String,
    series_key: String,
    valid_time: String,
    valid_time_end: Option<String>,
    value: Option<f64>,
    annotation: Option<String>,
    tags: Option<Vec<String>>,
    changed_by: Option<String>,
    change_time: String,
}

impl From<UpdateOutcome> for UpdatedValue {
    fn from(o: UpdateOutcome) -> Self {
        Self {
            value_id: o.value_id.0,
            previous_value_id: o.previous_value_id.0,
            run_id: o.run_id.to_string(),
            series_id: o.series_id.to_string(),
            series_key: o.series_key.as_str().to_owned(),
            valid_time: format_timestamp(o.valid_time),
            valid_time_end: o.valid_time_end.map(format_timestamp),
            value: o.value,
            annotation: o.annotation,
            tags: o.tags.map(|t| t.as_slice().to_vec()),
            changed_by: o.changed_by,
            change_time: format_timestamp(o.change_time),
        }
    }
}

/// What a batch of corrections did.
#[derive(Serialize, ToSchema)]
pub struct UpdateResponse {
    /// New versions written.
    updated: Vec<UpdatedValue>,
    /// Updates that changed nothing after canonicalisation; nothing was written for them.
    skipped_no_ops: Vec<UpdatedValue>,
}

/// Most updates in one request.
const MAX_UPDATES: usize = 100_000;

fn parse_update(i: usize, item: UpdateItem) -> ApiResult<ValueUpdate> {
    let field = format!("updates[{i}]");
    let f = |name: &str| format!("{field}.{name}");
    let address = match (item.value_id, &item.run_id, &item.series_id, &item.valid_time) {
        (Some(id), None, None, None) if item.valid_time_end.is_none() => ValueAddress::Id(ValueId(id)),
        (None, Some(run), Some(series), Some(vt)) => ValueAddress::Key {
            run_id: RunId::parse(&f("run_id"), run)?,
            series_id: SeriesId::parse(&f("series_id"), series)?,
            valid_time: parse_timestamp(&f("valid_time"), vt)?,
            valid_time_end: item
                .valid_time_end
                .as_deref()
                .map(|t| parse_timestamp(&f("valid_time_end"), t))
                .transpose()?,
        },
        (Some(_), ..) => {
            return Err(ApiError::invalid(
                &field,
                "give either value_id, or run_id + series_id + valid_time, not both",
            ));
        }
        _ => {
            return Err(ApiError::invalid(
                &field,
                "address a value by value_id, or by run_id + series_id + valid_time (+ valid_time_end)",
            ));
        }
    };
    let value = match item.value {
        Tri::Absent => Patch::Unchanged,
        Tri::Null => Patch::Clear,
        Tri::Value(v) => Patch::Set(v),
    };
    let annotation = match item.annotation {
        Tri::Absent => Patch::Unchanged,
        Tri::Null => Patch::Clear,
        Tri::Value(a) => Patch::from_canonical(canonical_annotation(&f("annotation"), Some(&a))?),
    };
    let tags = match item.tags {
        Tri::Absent => Patch::Unchanged,
        Tri::Null => Patch::Clear,
        Tri::Value(t) => Patch::from_canonical(Tags::parse(&f("tags"), &t)?),
    };
    Ok(ValueUpdate::new(&field, address, value, annotation, tags)?)
}

/// Correct values.
///
/// Each update writes a new current version and marks the old one not current, all in
/// one transaction; an update that changes nothing is reported in `skipped_no_ops` and
/// writes nothing. If any update fails (e.g. an unknown value), none is applied.
#[utoipa::path(
    put,
    path = "/values",
    tag = "values",
    request_body = UpdateRequest,
    responses(
        (status = 200, description = "Applied", body = UpdateResponse),
        (status = 404, description = "An addressed value does not exist", body = ErrorBody),
        (status = 422, description = "An invalid update, named in `detail`", body = ErrorBody),
    )
)]
pub async fn put_values(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<UpdateRequest>,
) -> ApiResult<axum::Json<UpdateResponse>> {
    let tenant = caller.tenant_for(req.tenant_id.as_deref())?;
    if req.updates.is_empty() {
        return Err(ApiError::invalid("updates", "must contain at least one update"));
    }
    if req.updates.len() > MAX_UPDATES {
        return Err(ApiError::invalid("updates", format!("at most {MAX_UPDATES} updates per request")));
    }
    let updates =
        req.updates.into_iter().enumerate().map(|(i, item)| parse_update(i, item)).collect::<ApiResult<Vec<_>>>()?;
    let report = state.store.update_values(tenant, updates, caller.author(req.changed_by)).await?;
    Ok(axum::Json(UpdateResponse {
        updated: report.updated.into_iter().map(Into::into).collect(),
        skipped_no_ops: report.skipped_no_ops.into_iter().map(Into::into).collect(),
    }))
}
