//! Run listings: `GET /runs` and `GET /runs/{id}`.

use axum::extract::State;
use serde::Serialize;
use timedb::model::time::{format_timestamp, parse_timestamp};
use timedb::model::{Run, RunFilter, RunId, WorkflowId};
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{PathText, QueryPairs};

/// Default and largest page of `GET /runs`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

/// A stored run.
#[derive(Serialize, ToSchema)]
pub struct RunBody {
    run_id: String,
    workflow_id: String,
    run_start_time: String,
    run_finish_time: Option<String>,
    known_time: String,
    #[schema(value_type = Option<Object>)]
    run_params: Option<serde_json::Map<String, serde_json::Value>>,
    inserted_at: String,
    created_by: Option<String>,
    /// Values the run wrote.
    value_count: i64,
}

impl From<Run> for RunBody {
    fn from(r: Run) -> Self {
        Self {
            run_id: r.run_id.to_string(),
            workflow_id: r.workflow_id.as_str().to_owned(),
            run_start_time: format_timestamp(r.run_start_time),
            run_finish_time: r.run_finish_time.map(format_timestamp),
            known_time: format_timestamp(r.known_time),
            run_params: r.run_params,
            inserted_at: format_timestamp(r.inserted_at),
            created_by: r.created_by,
            value_count: r.value_count,
        }
    }
}

/// List runs, newest known_time first.
#[utoipa::path(
    get,
    path = "/runs",
    tag = "runs",
    params(
        ("workflow_id" = Option<String>, Query, description = "Only runs of this workflow"),
        ("start_known" = Option<String>, Query, description = "Inclusive lower bound on known_time"),
        ("end_known" = Option<String>, Query, description = "Exclusive upper bound on known_time"),
        ("limit" = Option<usize>, Query, description = "At most this many runs (default 100, max 10000)"),
    ),
    responses(
        (status = 200, description = "The runs", body = Vec<RunBody>),
        (status = 422, description = "An invalid parameter", body = ErrorBody),
    )
)]
pub async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    q: QueryPairs,
) -> ApiResult<axum::Json<Vec<RunBody>>> {
    q.check_known(&["workflow_id", "start_known", "end_known", "limit", "tenant_id", "api_key"])?;
    let tenant = caller.tenant_for(q.one("tenant_id")?)?;
    let limit = match q.one("limit")? {
        None => DEFAULT_LIMIT,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(ApiError::invalid("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))),
        },
    };
    let filter = RunFilter {
        workflow_id: q.one("workflow_id")?.map(|w| WorkflowId::parse("workflow_id", Some(w))).transpose()?,
        start_known: q.one("start_known")?.map(|t| parse_timestamp("start_known", t)).transpose()?,
        end_known: q.one("end_known")?.map(|t| parse_timestamp("end_known", t)).transpose()?,
        limit,
    };
    let runs = state.store.list_runs(tenant, filter).await?;
    Ok(axum::Json(runs.into_iter().map(Into::into).collect()))
}

/// One run.
#[utoipa::path(
    get,
    path = "/runs/{run_id}",
    tag = "runs",
    params(("run_id" = String, Path, description = "The run id (UUID)")),
    responses(
        (status = 200, description = "The run", body = RunBody),
        (status = 404, description = "No such run", body = ErrorBody),
    )
)]
pub async fn get_run(
    State(state): State<AppState>,
    caller: Caller,
    PathText(id): PathText,
    q: QueryPairs,
) -> ApiResult<axum::Json<RunBody>> {
    q.check_known(&["tenant_id", "api_key"])?;
    let tenant = caller.tenant_for(q.one("tenant_id")?)?;
    let id = RunId::parse("run_id", &id)?;
    Ok(axum::Json(state.store.get_run(tenant, id).await?.into()))
}
