//! The request and response bodies of the timedb API as plain Rust types.
//!
//! Timestamps are `chrono::DateTime<Utc>` and ids are `Uuid`s, so a caller never formats
//! RFC 3339 by hand. Field names follow the wire (and the upstream Python API), so the
//! HTTP reference in `docs/http-api.md` describes these types too.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A UTC timestamp.
pub type Timestamp = DateTime<Utc>;

// ---- uploads ---------------------------------------------------------------------------

/// One value of an upload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueRow {
    /// The instant (or interval start) the value is about.
    pub valid_time: Timestamp,
    /// The series key; the series is created on first use.
    pub value_key: String,
    /// `None` stores a missing value (null is a legitimate stored value).
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_time_end: Option<Timestamp>,
    /// Pin the row to an existing series (its key must equal `value_key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

impl ValueRow {
    /// A row with just a key, a time and a value.
    pub fn new(value_key: impl Into<String>, valid_time: Timestamp, value: Option<f64>) -> Self {
        Self {
            valid_time,
            value_key: value_key.into(),
            value,
            valid_time_end: None,
            series_id: None,
            annotation: None,
            tags: None,
        }
    }
}

/// Metadata for a series an upload may create.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SeriesDefinition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A run with its values (`POST /upload`, JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upload {
    /// Default `api-workflow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    pub run_start_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_finish_time: Option<Timestamp>,
    /// When the values became known (forecast issue time); default: insert time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_params: Option<serde_json::Map<String, serde_json::Value>>,
    pub value_rows: Vec<ValueRow>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub series_descriptions: BTreeMap<String, SeriesDefinition>,
}

impl Upload {
    /// A run starting now with these rows; set the other fields directly.
    pub fn new(value_rows: Vec<ValueRow>) -> Self {
        Self {
            workflow_id: None,
            run_start_time: Utc::now(),
            run_finish_time: None,
            known_time: None,
            run_params: None,
            value_rows,
            series_descriptions: BTreeMap::new(),
        }
    }

    /// The same upload, known at `known_time`.
    pub fn known_at(mut self, known_time: Timestamp) -> Self {
        self.known_time = Some(known_time);
        self
    }
}

/// The run fields of a bulk (CSV or Arrow) upload, sent in the query string.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    pub workflow_id: Option<String>,
    /// Default: now.
    pub run_start_time: Option<Timestamp>,
    pub run_finish_time: Option<Timestamp>,
    /// Default: the run start time.
    pub known_time: Option<Timestamp>,
}

/// The body format of a bulk upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkFormat {
    /// Long CSV with a header: `value_key` (or `series_key`), `valid_time`, `value`, …
    Csv,
    /// An Arrow IPC stream.
    Arrow,
}

impl BulkFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            BulkFormat::Csv => "text/csv",
            BulkFormat::Arrow => ARROW_STREAM,
        }
    }
}

/// The media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// What the server says about a created run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UploadReceipt {
    pub run_id: Uuid,
    pub message: String,
    /// The series id of every value key in the upload.
    pub series_ids: BTreeMap<String, Uuid>,
    #[serde(default)]
    pub values_written: Option<u64>,
    #[serde(default)]
    pub known_time: Option<Timestamp>,
}

// ---- reads ---------------------------------------------------------------------------

/// Flat (latest known value per key) or overlapping (every run side by side).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadMode {
    #[default]
    Flat,
    Overlapping,
}

impl ReadMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::Flat => "flat",
            ReadMode::Overlapping => "overlapping",
        }
    }
}

/// The encoding of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFormat {
    Json,
    Csv,
    Arrow,
}

impl ReadFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadFormat::Json => "json",
            ReadFormat::Csv => "csv",
            ReadFormat::Arrow => "arrow",
        }
    }
}

/// The filters of `GET /values`. `Default` reads everything, flat.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadQuery {
    /// Inclusive lower bound on valid_time.
    pub start_valid: Option<Timestamp>,
    /// Exclusive upper bound on valid_time.
    pub end_valid: Option<Timestamp>,
    /// Inclusive lower bound on the run's known_time.
    pub start_known: Option<Timestamp>,
    /// Exclusive upper bound on known_time: read "as of" this instant.
    pub end_known: Option<Timestamp>,
    pub mode: ReadMode,
    /// Include superseded versions (audit history).
    pub all_versions: bool,
    pub series_keys: Vec<String>,
    pub series_ids: Vec<Uuid>,
    /// Only series carrying all of these labels.
    pub labels: BTreeMap<String, String>,
}

impl ReadQuery {
    /// The query-string pairs of this read.
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        let ts = |t: &Timestamp| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        for (name, t) in [
            ("start_valid", &self.start_valid),
            ("end_valid", &self.end_valid),
            ("start_known", &self.start_known),
            ("end_known", &self.end_known),
        ] {
            if let Some(t) = t {
                pairs.push((name, ts(t)));
            }
        }
        if self.mode != ReadMode::Flat {
            pairs.push(("mode", self.mode.as_str().to_owned()));
        }
        if self.all_versions {
            pairs.push(("all_versions", "true".to_owned()));
        }
        pairs.extend(self.series_keys.iter().map(|k| ("series_key", k.clone())));
        pairs.extend(self.series_ids.iter().map(|k| ("series_id", k.to_string())));
        if !self.labels.is_empty() {
            pairs.push(("labels", serde_json::to_string(&self.labels).expect("a map of strings serialises")));
        }
        pairs
    }
}

/// One row of a read. Fields after `value` are present only in the modes that say so.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ValueRecord {
    pub valid_time: Timestamp,
    pub valid_time_end: Option<Timestamp>,
    pub series_id: Uuid,
    pub series_key: String,
    pub series_unit: String,
    pub value: Option<f64>,
    /// Overlapping mode and `all_versions` only.
    #[serde(default)]
    pub known_time: Option<Timestamp>,
    /// Overlapping mode and `all_versions` only.
    #[serde(default)]
    pub run_id: Option<Uuid>,
    /// `all_versions` only.
    #[serde(default)]
    pub value_id: Option<i64>,
    #[serde(default)]
    pub annotation: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub changed_by: Option<String>,
    #[serde(default)]
    pub change_time: Option<Timestamp>,
    #[serde(default)]
    pub is_current: Option<bool>,
}

#[derive(Deserialize)]
pub(crate) struct ValuesBody {
    pub data: Vec<ValueRecord>,
}

// ---- corrections -----------------------------------------------------------------------

/// A tri-state field of a correction: leave it, clear it (null), or set it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Unchanged,
    Clear,
    Set(T),
}

/// Which stored value a correction addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueAddress {
    /// A version's `value_id` (from an `all_versions` read).
    Id(i64),
    /// The value of a run for a series and valid time.
    Key { run_id: Uuid, series_id: Uuid, valid_time: Timestamp, valid_time_end: Option<Timestamp> },
}

/// One correction (`PUT /values`).
#[derive(Debug, Clone, PartialEq)]
pub struct Correction {
    pub address: ValueAddress,
    pub value: Patch<f64>,
    pub annotation: Patch<String>,
    pub tags: Patch<Vec<String>>,
}

impl Correction {
    /// A correction of the addressed value that changes nothing yet.
    pub fn of(address: ValueAddress) -> Self {
        Self { address, value: Patch::Unchanged, annotation: Patch::Unchanged, tags: Patch::Unchanged }
    }

    pub fn value(mut self, value: Option<f64>) -> Self {
        self.value = value.map_or(Patch::Clear, Patch::Set);
        self
    }

    pub fn annotation(mut self, annotation: Option<&str>) -> Self {
        self.annotation = annotation.map_or(Patch::Clear, |a| Patch::Set(a.to_owned()));
        self
    }

    pub fn tags(mut self, tags: Option<Vec<String>>) -> Self {
        self.tags = tags.map_or(Patch::Clear, Patch::Set);
        self
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::{Value, json};
        let mut m = serde_json::Map::new();
        match &self.address {
            ValueAddress::Id(id) => {
                m.insert("value_id".into(), json!(id));
            }
            ValueAddress::Key { run_id, series_id, valid_time, valid_time_end } => {
                m.insert("run_id".into(), json!(run_id));
                m.insert("series_id".into(), json!(series_id));
                m.insert("valid_time".into(), json!(valid_time));
                if let Some(end) = valid_time_end {
                    m.insert("valid_time_end".into(), json!(end));
                }
            }
        }
        fn put<T: Serialize>(m: &mut serde_json::Map<String, Value>, name: &str, p: &Patch<T>) {
            match p {
                Patch::Unchanged => {}
                Patch::Clear => {
                    m.insert(name.into(), Value::Null);
                }
                Patch::Set(v) => {
                    m.insert(name.into(), json!(v));
                }
            }
        }
        put(&mut m, "value", &self.value);
        put(&mut m, "annotation", &self.annotation);
        put(&mut m, "tags", &self.tags);
        Value::Object(m)
    }
}

/// The state of one corrected value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UpdatedValue {
    pub value_id: i64,
    pub previous_value_id: i64,
    pub run_id: Uuid,
    pub series_id: Uuid,
    pub series_key: String,
    pub valid_time: Timestamp,
    pub valid_time_end: Option<Timestamp>,
    pub value: Option<f64>,
    pub annotation: Option<String>,
    pub tags: Option<Vec<String>>,
    pub changed_by: Option<String>,
    pub change_time: Timestamp,
}

/// What a batch of corrections did.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UpdateReport {
    /// New versions written.
    pub updated: Vec<UpdatedValue>,
    /// Corrections that changed nothing; nothing was written for them.
    pub skipped_no_ops: Vec<UpdatedValue>,
}

// ---- series and runs -------------------------------------------------------------------

/// A series to create (`POST /series`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewSeries {
    /// The series key.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default `dimensionless`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// The answer to `POST /series`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SeriesCreated {
    pub series_id: Uuid,
    pub message: String,
    /// False when a series with this key and definition already existed.
    #[serde(skip)]
    pub created: bool,
}

/// A series.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Series {
    pub series_id: Uuid,
    pub series_key: String,
    pub description: Option<String>,
    pub unit: String,
    pub labels: BTreeMap<String, String>,
    pub created_at: Timestamp,
}

/// Filters of `GET /series`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesFilter {
    pub series_keys: Vec<String>,
    pub series_ids: Vec<Uuid>,
    pub labels: BTreeMap<String, String>,
}

impl SeriesFilter {
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs: Vec<(&'static str, String)> =
            self.series_keys.iter().map(|k| ("series_key", k.clone())).collect();
        pairs.extend(self.series_ids.iter().map(|k| ("series_id", k.to_string())));
        if !self.labels.is_empty() {
            pairs.push(("labels", serde_json::to_string(&self.labels).expect("a map of strings serialises")));
        }
        pairs
    }
}

/// One entry of `GET /list_timeseries` (keyed by series id).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TimeseriesInfo {
    pub series_key: String,
    pub description: Option<String>,
    pub unit: String,
}

/// A run (one batch/workflow execution).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Run {
    pub run_id: Uuid,
    pub workflow_id: String,
    pub run_start_time: Timestamp,
    pub run_finish_time: Option<Timestamp>,
    pub known_time: Timestamp,
    pub run_params: Option<serde_json::Map<String, serde_json::Value>>,
    pub inserted_at: Timestamp,
    pub created_by: Option<String>,
    pub value_count: i64,
}

/// Filters of `GET /runs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub workflow_id: Option<String>,
    pub start_known: Option<Timestamp>,
    pub end_known: Option<Timestamp>,
    /// Default 100 (server side), at most 10,000.
    pub limit: Option<usize>,
}

// ---- identity, keys and users ----------------------------------------------------------

/// The caller's identity (`GET /whoami`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub role: String,
    pub key_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<Timestamp>,
}

/// A key to create (`POST /api-keys`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewKey {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Default: the caller's key's scopes; can only narrow them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Lifetime in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// e.g. `100/minute` (windows: second, minute, hour, day).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// Another user of the tenant (needs the `admin` scope).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub key_id: String,
    pub email: String,
    pub tenant_id: Uuid,
    pub note: Option<String>,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub use_count: i64,
    pub rate_limit: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
}

/// A freshly created key: the only time the server shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CreatedKey {
    pub key: String,
    #[serde(flatten)]
    pub info: KeyInfo,
}

/// A user of the caller's tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub role: String,
    pub is_active: bool,
    pub created_at: Timestamp,
}

/// A user with a freshly issued key (create, regenerate-key).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserWithKey {
    #[serde(flatten)]
    pub user: User,
    pub api_key: String,
    pub key_id: String,
}

/// A user to create (`POST /users`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewUser {
    pub email: String,
    /// `reader`, `writer` (default) or `admin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Health {
    pub status: String,
}
