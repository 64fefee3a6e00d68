//! Reads: which versions of which values a query returns (SPEC §2 "Reads").
//!
//! - flat: per (series, valid_time, valid_time_end), the current version from the run
//!   with the latest known_time (ties: latest inserted_at);
//! - overlapping: every run's current version, side by side;
//! - all_versions: superseded versions too, oldest first within one value.

use std::sync::Arc;

use super::{Labels, ModelError, RunId, SeriesFilter, SeriesId, SeriesKey, Tags, Timestamp, Unit, ValueId};

/// How revisions from different runs are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    #[default]
    Flat,
    Overlapping,
}

impl ReadMode {
    pub fn parse(field: &str, text: &str) -> Result<Self, ModelError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "flat" => Ok(Self::Flat),
            "overlapping" => Ok(Self::Overlapping),
            _ => Err(ModelError::new(
                field,
                format!("'{}' is not a read mode (expected 'flat' or 'overlapping')", super::ids::truncate(text)),
            )),
        }
    }
}

/// Which series a read covers. Empty keys and ids mean every series of the tenant.
pub type SeriesSelector = SeriesFilter;

/// A read of values, valid by construction (windows are ordered).
#[derive(Debug, Clone, Default)]
pub struct ValueQuery {
    pub mode: ReadMode,
    pub all_versions: bool,
    /// Inclusive.
    pub start_valid: Option<Timestamp>,
    /// Exclusive.
    pub end_valid: Option<Timestamp>,
    /// Inclusive.
    pub start_known: Option<Timestamp>,
    /// Exclusive: "as of" — only runs known before this instant are seen.
    pub end_known: Option<Timestamp>,
    pub series: SeriesSelector,
}

impl ValueQuery {
    /// Check the windows; the fields are already individually valid.
    pub fn validated(self) -> Result<Self, ModelError> {
        if let (Some(s), Some(e)) = (self.start_valid, self.end_valid)
            && e < s
        {
            return Err(ModelError::new("end_valid", "must not be before start_valid"));
        }
        if let (Some(s), Some(e)) = (self.start_known, self.end_known)
            && e < s
        {
            return Err(ModelError::new("end_known", "must not be before start_known"));
        }
        Ok(self)
    }

    pub fn with_keys(mut self, keys: Vec<SeriesKey>) -> Self {
        self.series.keys = keys;
        self
    }

    pub fn with_ids(mut self, ids: Vec<SeriesId>) -> Self {
        self.series.ids = ids;
        self
    }

    pub fn with_labels(mut self, labels: Labels) -> Self {
        self.series.labels = Some(labels);
        self
    }
}

/// The series columns repeated on every row, shared rather than copied per row.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesInfo {
    pub series_id: SeriesId,
    pub key: SeriesKey,
    pub unit: Unit,
}

/// One row of a read. Every field is filled; the HTTP layer chooses which to show.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueRecord {
    pub series: Arc<SeriesInfo>,
    pub valid_time: Timestamp,
    pub valid_time_end: Option<Timestamp>,
    pub value: Option<f64>,
    pub run_id: RunId,
    pub known_time: Timestamp,
    pub value_id: ValueId,
    pub annotation: Option<String>,
    pub tags: Option<Tags>,
    pub changed_by: Option<String>,
    pub change_time: Timestamp,
    pub is_current: bool,
}
