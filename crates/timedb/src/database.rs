//! The embedded API: timedb as a library, on a local store, with no server in between.
//!
//! [`Database`] offers the operations of the HTTP API — upload a run, read flat,
//! overlapping or as of an instant, correct values, create and list series and runs —
//! for Rust programs that want the store in-process (a batch job, a backtest, a test
//! fixture). It is a thin facade over [`store::open`](crate::store::open) and the
//! [`Store`] trait: it opens (and on first use creates) the schema, remembers whose data
//! it works on (one [`TenantId`], the default tenant unless [`Database::for_tenant`] says
//! otherwise) and turns friendly inputs ([`RunBuilder`]) into the model's checked types.
//!
//! Opening a database is operator-level access, like the `timedb` CLI: API keys, scopes
//! and rate limits belong to the HTTP edge and do not apply here. A file written through
//! this API can later be served by `timedb api` (run `timedb create tables --with-users`
//! first to turn authentication on for it; see `docs/authentication.md`).
//!
//! ```
//! use timedb::Database;
//! use timedb::database::RunBuilder;
//! use timedb::model::{Timestamp, ValueQuery};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let db = Database::open(&format!("sqlite://{}", dir.path().join("demo.sqlite3").display())).await?;
//!
//! // Monday's forecast, then Tuesday's revision of the same hours.
//! let at = |t: &str| t.parse::<Timestamp>();
//! for (issued, mw) in [("2025-01-06T18:00:00Z", 10.0), ("2025-01-07T18:00:00Z", 12.0)] {
//!     let run = RunBuilder::new()
//!         .known_time(at(issued)?)
//!         .series("wind_power", "MW")
//!         .value("wind_power", at("2025-01-08T12:00:00Z")?, mw)
//!         .value("wind_power", at("2025-01-08T13:00:00Z")?, mw + 1.0);
//!     db.upload(run).await?;
//! }
//!
//! // Flat: the latest known value per hour.
//! let latest = db.read(ValueQuery::default()).await?;
//! assert_eq!(latest.iter().map(|r| r.value).collect::<Vec<_>>(), [Some(12.0), Some(13.0)]);
//!
//! // As of Tuesday noon, only Monday's forecast was known.
//! let as_of = ValueQuery { end_known: Some(at("2025-01-07T12:00:00Z")?), ..ValueQuery::default() };
//! assert_eq!(db.read(as_of).await?[0].value, Some(10.0));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use crate::model::time::{self, from_micros, max_timestamp, min_timestamp, to_micros};
use crate::model::{
    ModelError, NewRun, RowInput, Run, RunFilter, RunId, RunReceipt, Series, SeriesFilter, SeriesId, SeriesKey,
    SeriesSpec, TenantId, Timestamp, Unit, UpdateReport, ValueQuery, ValueRecord, ValueUpdate, WorkflowId,
};
use crate::store::{self, Dsn, Store, StoreError, ValueStream};

/// A timedb database opened in-process, working on one tenant's data.
///
/// Cheap to clone (the store is shared); [`Database::for_tenant`] and
/// [`Database::acting_as`] return views of the same store. Every method is one store
/// call, so each is atomic on its own: a run is written whole or not at all, a batch of
/// updates applies entirely or not at all.
#[derive(Clone)]
pub struct Database {
    store: Arc<dyn Store>,
    dsn: Option<Dsn>,
    tenant: TenantId,
    /// Recorded as a run's `created_by` and an update's `changed_by`.
    actor: Option<String>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The DSN's Display hides a password; the store itself has nothing to show.
        f.debug_struct("Database")
            .field("backend", &self.store.backend())
            .field("dsn", &self.dsn.as_ref().map(ToString::to_string))
            .field("tenant", &self.tenant)
            .field("actor", &self.actor)
            .finish()
    }
}

impl Database {
    /// Open the database a DSN names: `sqlite:///abs/path.db`, `sqlite://relative.db` or
    /// `postgresql://user:password@host/db`.
    ///
    /// An empty database gets the core schema (without the users tables, which only a
    /// server needs). An existing one must have the schema version this build supports:
    /// an older schema is an error telling you to run `timedb create tables`, which
    /// upgrades it in place; this call never migrates data behind your back.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let dsn = format!("sqlite://{}", dir.path().join("data.sqlite3").display());
    /// let db = timedb::Database::open(&dsn).await?;
    /// assert_eq!(db.backend(), "sqlite");
    /// assert!(timedb::Database::open("mysql://nope").await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(dsn: &str) -> Result<Self, StoreError> {
        Self::open_dsn(&Dsn::parse(dsn)?).await
    }

    /// Open `./timedb.sqlite3` in the working directory, the file `timedb api` uses when
    /// no DSN is configured.
    pub async fn open_default() -> Result<Self, StoreError> {
        Self::open_dsn(&Dsn::default_sqlite()).await
    }

    /// [`Database::open`] for an already parsed [`Dsn`].
    pub async fn open_dsn(dsn: &Dsn) -> Result<Self, StoreError> {
        let store = store::open(dsn).await?;
        if store.schema_status().await?.version.is_none() {
            // Idempotent: two processes racing to initialise the same database both succeed.
            store.create_schema(false).await?;
        }
        store::check_version(store.schema_status().await?)?;
        Ok(Self { dsn: Some(dsn.clone()), ..Self::from_store(store) })
    }

    /// Wrap a store you opened yourself. Its schema is taken as ready (see
    /// [`store::check_version`]).
    pub fn from_store(store: Arc<dyn Store>) -> Self {
        Self { store, dsn: None, tenant: TenantId::DEFAULT, actor: None }
    }

    /// The same database, working on `tenant`'s data instead. Tenants are isolated in the
    /// store: nothing one tenant wrote is visible through another tenant's view.
    pub fn for_tenant(&self, tenant: TenantId) -> Self {
        Self { tenant, ..self.clone() }
    }

    /// The same database, recording `who` as the author of runs (`created_by`) and
    /// corrections (`changed_by`).
    pub fn acting_as(&self, who: impl Into<String>) -> Self {
        Self { actor: Some(who.into()), ..self.clone() }
    }

    /// The tenant this view works on.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// `"sqlite"` or `"postgresql"`.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// The underlying store, for operations this facade does not cover (users and keys).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    // ---- runs ---------------------------------------------------------------------------

    /// Write a run and all its values, atomically; series are created by key on first
    /// use (one key, one series). Takes a [`RunBuilder`] or a model [`NewRun`].
    ///
    /// ```
    /// # use timedb::{Database, database::{RunBuilder, ValueRow}, model::Timestamp};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let db = Database::open(&format!("sqlite://{}", dir.path().join("d.sqlite3").display())).await?;
    /// let t = |s: &str| s.parse::<Timestamp>();
    /// let receipt = db
    ///     .upload(
    ///         RunBuilder::new()
    ///             .workflow_id("day-ahead")
    ///             .known_time(t("2025-01-01T06:00:00Z")?)
    ///             .value("price", t("2025-01-02T00:00:00Z")?, 41.5)
    ///             .value("price", t("2025-01-02T01:00:00Z")?, None) // a stored missing value
    ///             .row(ValueRow::new("load", t("2025-01-02T00:00:00Z")?, 800.0).annotation("estimated")),
    ///     )
    ///     .await?;
    /// assert_eq!(receipt.values_written, 3);
    /// assert_eq!(receipt.series_ids.len(), 2);
    ///
    /// // Two rows for the same series and time are refused, and nothing is written.
    /// let twice = RunBuilder::new()
    ///     .value("price", t("2025-01-02T00:00:00Z")?, 1.0)
    ///     .value("price", t("2025-01-02T00:00:00Z")?, 2.0);
    /// assert!(db.upload(twice).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn upload(&self, run: impl IntoNewRun) -> Result<RunReceipt, StoreError> {
        let run = run.into_new_run()?;
        self.store.insert_run(self.tenant, run, self.actor.clone()).await
    }

    /// Runs, newest `known_time` first. A `limit` of 0 means no limit.
    pub async fn list_runs(&self, mut filter: RunFilter) -> Result<Vec<Run>, StoreError> {
        if filter.limit == 0 {
            filter.limit = i64::MAX as usize;
        }
        self.store.list_runs(self.tenant, filter).await
    }

    /// One run; another tenant's run is [`StoreError::NotFound`], like an unknown one.
    pub async fn get_run(&self, id: RunId) -> Result<Run, StoreError> {
        self.store.get_run(self.tenant, id).await
    }

    // ---- values -------------------------------------------------------------------------

    /// Every row of a read, in memory. Rows come ordered by (valid_time, series_key) in
    /// flat mode and by (known_time, valid_time, series_key) in overlapping mode; see
    /// [`ValueQuery`] for the filters and [`Database::read_stream`] for large reads.
    ///
    /// ```
    /// # use timedb::{Database, database::RunBuilder, model::{ReadMode, SeriesKey, Timestamp, ValueQuery}};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let db = Database::open(&format!("sqlite://{}", dir.path().join("d.sqlite3").display())).await?;
    /// # let t = |s: &str| s.parse::<Timestamp>();
    /// # for (k, v) in [("2025-01-01T00:00:00Z", 1.0), ("2025-01-01T06:00:00Z", 2.0)] {
    /// #     db.upload(RunBuilder::new().known_time(t(k)?).value("wind", t("2025-01-02T00:00:00Z")?, v)).await?;
    /// # }
    /// // Every forecast revision side by side, for one series.
    /// let query = ValueQuery { mode: ReadMode::Overlapping, ..ValueQuery::default() }
    ///     .with_keys(vec![SeriesKey::parse("series_key", "wind")?]);
    /// let revisions = db.read(query).await?;
    /// let seen: Vec<_> = revisions.iter().map(|r| (r.known_time, r.value)).collect();
    /// assert_eq!(seen, [(t("2025-01-01T00:00:00Z")?, Some(1.0)), (t("2025-01-01T06:00:00Z")?, Some(2.0))]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read(&self, query: ValueQuery) -> Result<Vec<ValueRecord>, StoreError> {
        self.read_stream(query).await?.collect_all().await
    }

    /// The rows of a read in batches, as the store produces them; memory stays flat
    /// however large the result. Dropping the stream stops the read.
    ///
    /// ```
    /// # use timedb::{Database, database::RunBuilder, model::{Timestamp, ValueQuery}};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let db = Database::open(&format!("sqlite://{}", dir.path().join("d.sqlite3").display())).await?;
    /// # let start: Timestamp = "2025-01-01T00:00:00Z".parse()?;
    /// # let run = (0..5000).fold(RunBuilder::new(), |r, h| r.value("load", start + chrono::Duration::hours(h), h as f64));
    /// # db.upload(run).await?;
    /// let mut stream = db.read_stream(ValueQuery::default()).await?;
    /// let mut total = 0.0;
    /// while let Some(batch) = stream.next_batch().await {
    ///     total += batch?.iter().filter_map(|r| r.value).sum::<f64>();
    /// }
    /// assert_eq!(total, (0..5000).sum::<i32>() as f64);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read_stream(&self, query: ValueQuery) -> Result<ValueStream, StoreError> {
        self.store.read_values(self.tenant, query.validated()?).await
    }

    /// Apply corrections atomically: each writes a new version of its value and retires
    /// the old one; all of them apply, or none (the first failure is returned). A
    /// correction that changes nothing is reported under `skipped_no_ops` and writes
    /// nothing. Read with `all_versions: true` to see the history.
    ///
    /// ```
    /// # use timedb::{Database, database::RunBuilder, model::*};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let db = Database::open(&format!("sqlite://{}", dir.path().join("d.sqlite3").display())).await?;
    /// # let at: Timestamp = "2025-01-01T00:00:00Z".parse()?;
    /// # db.upload(RunBuilder::new().value("meter", at, 99.0)).await?;
    /// let db = db.acting_as("analyst@example.com");
    /// let wrong = &db.read(ValueQuery::default()).await?[0];
    /// let fix = ValueUpdate::new(
    ///     "updates[0]",
    ///     ValueAddress::Id(wrong.value_id),
    ///     Patch::Set(9.9),
    ///     Patch::Set("meter misread".to_owned()),
    ///     Patch::Unchanged,
    /// )?;
    /// let report = db.update([fix]).await?;
    /// assert_eq!(report.updated[0].changed_by.as_deref(), Some("analyst@example.com"));
    ///
    /// let history = db.read(ValueQuery { all_versions: true, ..ValueQuery::default() }).await?;
    /// let versions: Vec<_> = history.iter().map(|r| (r.value, r.is_current)).collect();
    /// assert_eq!(versions, [(Some(99.0), false), (Some(9.9), true)]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update(&self, updates: impl IntoIterator<Item = ValueUpdate>) -> Result<UpdateReport, StoreError> {
        self.store.update_values(self.tenant, updates.into_iter().collect(), self.actor.clone()).await
    }

    // ---- series -------------------------------------------------------------------------

    /// Get-or-create a series by key; `true` when it was created. Giving a unit,
    /// description or labels that differ from the stored series is a
    /// [`StoreError::Conflict`].
    ///
    /// ```
    /// # use timedb::{Database, model::*};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let db = Database::open(&format!("sqlite://{}", dir.path().join("d.sqlite3").display())).await?;
    /// let spec = SeriesSpec {
    ///     unit: Some(Unit::parse("unit", Some("MW"))?),
    ///     description: Some("Farm A, metered".to_owned()),
    ///     ..SeriesSpec::key_only(SeriesKey::parse("name", "farm_a.power")?)
    /// };
    /// let (series, created) = db.create_series(spec.clone()).await?;
    /// assert!(created);
    /// assert_eq!(db.create_series(spec).await?, (series.clone(), false));
    /// assert_eq!(db.get_series(series.series_id).await?.unit.as_str(), "MW");
    /// assert_eq!(db.list_series(SeriesFilter::default()).await?.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_series(&self, spec: SeriesSpec) -> Result<(Series, bool), StoreError> {
        self.store.upsert_series(self.tenant, spec).await
    }

    /// The tenant's series (all of them for `SeriesFilter::default()`).
    pub async fn list_series(&self, filter: SeriesFilter) -> Result<Vec<Series>, StoreError> {
        self.store.list_series(self.tenant, filter).await
    }

    /// One series; another tenant's series is [`StoreError::NotFound`], like an unknown one.
    pub async fn get_series(&self, id: SeriesId) -> Result<Series, StoreError> {
        self.store.get_series(self.tenant, id).await
    }
}

/// What [`Database::upload`] accepts: a [`RunBuilder`], or a [`NewRun`] you assembled
/// with the model's constructors.
pub trait IntoNewRun {
    fn into_new_run(self) -> Result<NewRun, ModelError>;
}

impl IntoNewRun for NewRun {
    fn into_new_run(self) -> Result<NewRun, ModelError> {
        Ok(self)
    }
}

impl IntoNewRun for RunBuilder {
    fn into_new_run(self) -> Result<NewRun, ModelError> {
        self.build()
    }
}

/// One value of a [`RunBuilder`], with the optional fields a plain
/// [`RunBuilder::value`] leaves out.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueRow {
    pub series_key: String,
    pub valid_time: Timestamp,
    /// The end of the interval the value covers (after `valid_time`).
    pub valid_time_end: Option<Timestamp>,
    /// `None` stores a missing value (distinct from no row at all).
    pub value: Option<f64>,
    pub annotation: Option<String>,
    pub tags: Vec<String>,
}

impl ValueRow {
    pub fn new(series_key: impl Into<String>, valid_time: Timestamp, value: impl Into<Option<f64>>) -> Self {
        Self {
            series_key: series_key.into(),
            valid_time,
            valid_time_end: None,
            value: value.into(),
            annotation: None,
            tags: Vec::new(),
        }
    }

    /// Make the value cover `[valid_time, end)`.
    pub fn until(mut self, end: Timestamp) -> Self {
        self.valid_time_end = Some(end);
        self
    }

    pub fn annotation(mut self, text: impl Into<String>) -> Self {
        self.annotation = Some(text.into());
        self
    }

    /// Tags are canonicalised on upload: trimmed, lower-cased, de-duplicated, sorted.
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }
}

/// A series declared on a builder before it is parsed.
#[derive(Debug, Clone, PartialEq)]
enum Declared {
    Unit { key: String, unit: String },
    Spec(SeriesSpec),
}

/// A run to upload, assembled from plain strings and timestamps; everything is checked
/// once, by [`RunBuilder::build`] (which [`Database::upload`] calls), with errors naming
/// the field the way the HTTP API does (`value_rows[3].valid_time_end: …`).
///
/// Defaults match the HTTP API: workflow `api-workflow`, `run_start_time` now, and
/// `known_time` the insert time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunBuilder {
    workflow_id: Option<String>,
    run_start_time: Option<Timestamp>,
    run_finish_time: Option<Timestamp>,
    known_time: Option<Timestamp>,
    run_params: Option<Map<String, Json>>,
    declared: Vec<Declared>,
    rows: Vec<ValueRow>,
}

impl RunBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn workflow_id(mut self, id: impl Into<String>) -> Self {
        self.workflow_id = Some(id.into());
        self
    }

    pub fn run_start_time(mut self, at: Timestamp) -> Self {
        self.run_start_time = Some(at);
        self
    }

    pub fn run_finish_time(mut self, at: Timestamp) -> Self {
        self.run_finish_time = Some(at);
        self
    }

    /// When the values became known (a forecast's issue time): as-of reads
    /// (`end_known`) see this run only from this instant on.
    pub fn known_time(mut self, at: Timestamp) -> Self {
        self.known_time = Some(at);
        self
    }

    /// Free-form parameters stored with the run.
    pub fn run_params(mut self, params: Map<String, Json>) -> Self {
        self.run_params = Some(params);
        self
    }

    /// Give a series the run writes to its unit (checked against an existing series:
    /// a different unit is a conflict).
    pub fn series(mut self, key: impl Into<String>, unit: impl Into<String>) -> Self {
        self.declared.push(Declared::Unit { key: key.into(), unit: unit.into() });
        self
    }

    /// Declare a series with its full definition (unit, description, labels).
    pub fn series_spec(mut self, spec: SeriesSpec) -> Self {
        self.declared.push(Declared::Spec(spec));
        self
    }

    /// Add the value of `series_key` at the instant `valid_time` (`None`: a stored
    /// missing value).
    pub fn value(self, series_key: impl Into<String>, valid_time: Timestamp, value: impl Into<Option<f64>>) -> Self {
        self.row(ValueRow::new(series_key, valid_time, value))
    }

    /// Add a value covering the interval `[start, end)`.
    pub fn interval(
        self,
        series_key: impl Into<String>,
        start: Timestamp,
        end: Timestamp,
        value: impl Into<Option<f64>>,
    ) -> Self {
        self.row(ValueRow::new(series_key, start, value).until(end))
    }

    pub fn row(mut self, row: ValueRow) -> Self {
        self.rows.push(row);
        self
    }

    pub fn rows(mut self, rows: impl IntoIterator<Item = ValueRow>) -> Self {
        self.rows.extend(rows);
        self
    }

    /// Check everything and produce the model's [`NewRun`].
    pub fn build(self) -> Result<NewRun, ModelError> {
        let run_start_time = match self.run_start_time {
            Some(t) => stored("run_start_time", t)?,
            None => time::now(),
        };
        let optional = |field: &str, t: Option<Timestamp>| t.map(|t| stored(field, t)).transpose();
        let mut run = NewRun::new(
            WorkflowId::parse("workflow_id", self.workflow_id.as_deref())?,
            run_start_time,
            optional("run_finish_time", self.run_finish_time)?,
            optional("known_time", self.known_time)?,
            self.run_params,
        )?;
        for (i, row) in self.rows.iter().enumerate() {
            let f = |name: &str| format!("value_rows[{i}].{name}");
            run.push(
                i,
                RowInput {
                    key: SeriesKey::parse(&f("value_key"), &row.series_key)?,
                    series_id: None,
                    valid_time: stored(&f("valid_time"), row.valid_time)?,
                    valid_time_end: optional(&f("valid_time_end"), row.valid_time_end)?,
                    value: row.value,
                    annotation: row.annotation.as_deref(),
                    tags: (!row.tags.is_empty()).then_some(row.tags.as_slice()),
                },
            )?;
        }
        for (i, declared) in self.declared.into_iter().enumerate() {
            let spec = match declared {
                Declared::Spec(spec) => spec,
                Declared::Unit { key, unit } => SeriesSpec {
                    unit: Some(Unit::parse(&format!("series[{i}].unit"), Some(&unit))?),
                    ..SeriesSpec::key_only(SeriesKey::parse(&format!("series[{i}].key"), &key)?)
                },
            };
            run.declare_series(spec);
        }
        Ok(run.finish())
    }
}

/// An instant as the stores keep it: whole microseconds, years 0001 to 9999.
fn stored(field: &str, at: Timestamp) -> Result<Timestamp, ModelError> {
    if at < min_timestamp() || at > max_timestamp() {
        return Err(ModelError::new(field, "is outside the supported range (years 0001 to 9999)"));
    }
    Ok(from_micros(to_micros(at)).unwrap_or(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn builder_errors_name_the_field() {
        let err = RunBuilder::new()
            .value("a", t("2025-01-01T00:00:00Z"), 1.0)
            .interval("a", t("2025-01-01T01:00:00Z"), t("2025-01-01T01:00:00Z"), 1.0)
            .build()
            .unwrap_err();
        assert_eq!(err.field, "value_rows[1].valid_time_end");
        let err = RunBuilder::new().value(" ", t("2025-01-01T00:00:00Z"), 1.0).build().unwrap_err();
        assert_eq!(err.field, "value_rows[0].value_key");
        let err = RunBuilder::new().series("a", "\u{7}").build().unwrap_err();
        assert_eq!(err.field, "series[0].unit");
    }

    #[test]
    fn builder_truncates_to_microseconds_and_declares_units() {
        let run = RunBuilder::new()
            .known_time(t("2025-01-01T00:00:00.123456789Z"))
            .value("a", t("2025-01-01T00:00:00.000000999Z"), None)
            .series("a", " MW ")
            .build()
            .unwrap();
        assert_eq!(run.known_time, Some(t("2025-01-01T00:00:00.123456Z")));
        assert_eq!(run.values[0].valid_time, t("2025-01-01T00:00:00Z"));
        assert_eq!(run.values[0].value, None);
        assert_eq!(run.series[0].spec.unit.as_ref().map(Unit::as_str), Some("MW"));
        assert_eq!(run.workflow_id.as_str(), WorkflowId::DEFAULT);
    }
}
