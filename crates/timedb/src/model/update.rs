//! Human-in-the-loop corrections: an update writes a new version of one value and
//! retires the old one, atomically. Each field is tri-state ([`Patch`]).

use super::{ModelError, RunId, SeriesId, SeriesKey, Tags, Timestamp, ValueId};

/// A field of an update: leave it, clear it, or set it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Patch<T> {
    #[default]
    Unchanged,
    Clear,
    Set(T),
}

impl<T: Clone> Patch<T> {
    /// The field's value after the patch is applied to `current`.
    pub fn apply(&self, current: &Option<T>) -> Option<T> {
        match self {
            Patch::Unchanged => current.clone(),
            Patch::Clear => None,
            Patch::Set(v) => Some(v.clone()),
        }
    }

    pub fn is_unchanged(&self) -> bool {
        matches!(self, Patch::Unchanged)
    }

    /// `Set(None)` from canonicalisation (a blank annotation) is a clear.
    pub fn from_canonical(value: Option<T>) -> Self {
        match value {
            Some(v) => Patch::Set(v),
            None => Patch::Clear,
        }
    }
}

/// Which value an update addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueAddress {
    /// Any version's id; the update applies on top of that value's current version,
    /// so concurrent corrections of one value all land in its history.
    Id(ValueId),
    Key {
        run_id: RunId,
        series_id: SeriesId,
        valid_time: Timestamp,
        valid_time_end: Option<Timestamp>,
    },
}

/// One correction, with at least one field changed (checked by [`ValueUpdate::new`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueUpdate {
    pub address: ValueAddress,
    pub value: Patch<f64>,
    pub annotation: Patch<String>,
    pub tags: Patch<Tags>,
}

impl ValueUpdate {
    pub fn new(
        field: &str,
        address: ValueAddress,
        value: Patch<f64>,
        annotation: Patch<String>,
        tags: Patch<Tags>,
    ) -> Result<Self, ModelError> {
        if value.is_unchanged() && annotation.is_unchanged() && tags.is_unchanged() {
            return Err(ModelError::new(
                field,
                "names no field to change (give at least one of value, annotation, tags)",
            ));
        }
        if let Patch::Set(v) = value
            && !v.is_finite()
        {
            return Err(ModelError::new(format!("{field}.value"), "must be a finite number or null"));
        }
        Ok(Self { address, value, annotation, tags })
    }
}

/// The state of one value after an update, or as found when the update was a no-op.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The version now current.
    pub value_id: ValueId,
    /// The version it replaced (equal to `value_id` for a skipped no-op).
    pub previous_value_id: ValueId,
    pub run_id: RunId,
    pub series_id: SeriesId,
    pub series_key: SeriesKey,
    pub valid_time: Timestamp,
    pub valid_time_end: Option<Timestamp>,
    pub value: Option<f64>,
    pub annotation: Option<String>,
    pub tags: Option<Tags>,
    pub changed_by: Option<String>,
    pub change_time: Timestamp,
}

/// What a batch of updates did: written versions, and no-ops that wrote nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateReport {
    pub updated: Vec<UpdateOutcome>,
    pub skipped_no_ops: Vec<UpdateOutcome>,
}
