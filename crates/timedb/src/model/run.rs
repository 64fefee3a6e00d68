//! Runs: one batch of values written together (a forecast issue, a measurement import),
//! with the instant the values became known. A run is written atomically.
//!
//! [`NewRun`] is assembled row by row through [`NewRun::push`], which canonicalises every
//! row and rejects the second of two rows for the same (series, valid_time,
//! valid_time_end) — a client error the client must see, never a silent drop.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde_json::{Map, Value as Json};

use super::ids::truncate;
use super::time::{format_timestamp, to_micros};
use super::{ModelError, RunId, SeriesId, SeriesKey, SeriesSpec, Timestamp};

/// Longest annotation, in characters.
pub const MAX_ANNOTATION_CHARS: usize = 4096;
/// Most tags on one value, and longest tag.
pub const MAX_TAGS: usize = 64;
pub const MAX_TAG_CHARS: usize = 128;

/// The workflow that produced a run; `api-workflow` when not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowId(String);

impl WorkflowId {
    pub const DEFAULT: &'static str = "api-workflow";

    pub fn parse(field: &str, text: Option<&str>) -> Result<Self, ModelError> {
        match text.map(str::trim) {
            None | Some("") => Ok(Self(Self::DEFAULT.to_owned())),
            Some(t) if t.chars().count() > 256 => Err(ModelError::new(field, "must be at most 256 characters")),
            Some(t) if t.chars().any(char::is_control) => {
                Err(ModelError::new(field, "must not contain control characters"))
            }
            Some(t) => Ok(Self(t.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_stored(text: String) -> Self {
        Self(text)
    }
}

/// Canonical annotation: trimmed; empty or whitespace-only means none.
pub fn canonical_annotation(field: &str, text: Option<&str>) -> Result<Option<String>, ModelError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.chars().count() > MAX_ANNOTATION_CHARS => {
            Err(ModelError::new(field, format!("must be at most {MAX_ANNOTATION_CHARS} characters")))
        }
        Some(t) if t.contains('\0') => Err(ModelError::new(field, "must not contain NUL characters")),
        Some(t) => Ok(Some(t.to_owned())),
    }
}

/// A canonical, non-empty tag set: trimmed, lower-cased, de-duplicated, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tags(Vec<String>);

impl Tags {
    /// Canonicalise; an empty set (after dropping blank tags) is `None`.
    pub fn parse<S: AsRef<str>>(field: &str, raw: &[S]) -> Result<Option<Self>, ModelError> {
        let mut tags: Vec<String> = Vec::with_capacity(raw.len());
        for tag in raw {
            let tag = tag.as_ref().trim();
            if tag.is_empty() {
                continue;
            }
            if tag.chars().count() > MAX_TAG_CHARS {
                return Err(ModelError::new(field, format!("tags must be at most {MAX_TAG_CHARS} characters")));
            }
            if tag.chars().any(char::is_control) {
                return Err(ModelError::new(field, "tags must not contain control characters"));
            }
            tags.push(tag.to_lowercase());
        }
        tags.sort_unstable();
        tags.dedup();
        if tags.len() > MAX_TAGS {
            return Err(ModelError::new(field, format!("at most {MAX_TAGS} tags are allowed")));
        }
        Ok(if tags.is_empty() { None } else { Some(Self(tags)) })
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).expect("strings always serialise")
    }

    /// Read back what [`Tags::to_json`] stored.
    pub fn from_json(text: &str) -> Option<Self> {
        let tags: Vec<String> = serde_json::from_str(text).ok()?;
        if tags.is_empty() { None } else { Some(Self(tags)) }
    }
}

/// One value of a new run, pointing at its series by index into [`NewRun::series`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewValue {
    pub series: usize,
    pub valid_time: Timestamp,
    pub valid_time_end: Option<Timestamp>,
    pub value: Option<f64>,
    pub annotation: Option<String>,
    pub tags: Option<Tags>,
}

/// A series named by an upload: by key, and optionally pinned to an existing id.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRef {
    pub spec: SeriesSpec,
    pub id: Option<SeriesId>,
}

/// A run to be written, with its values; valid by construction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub workflow_id: WorkflowId,
    pub run_start_time: Timestamp,
    pub run_finish_time: Option<Timestamp>,
    /// `None`: the store uses the insert time.
    pub known_time: Option<Timestamp>,
    pub run_params: Option<Map<String, Json>>,
    pub series: Vec<SeriesRef>,
    pub values: Vec<NewValue>,
    series_index: HashMap<SeriesKey, usize>,
    seen: HashMap<(usize, i64, Option<i64>), usize>,
}

/// One raw row as the edge parsed it, before grouping.
pub struct RowInput<'a> {
    pub key: SeriesKey,
    pub series_id: Option<SeriesId>,
    pub valid_time: Timestamp,
    pub valid_time_end: Option<Timestamp>,
    pub value: Option<f64>,
    pub annotation: Option<&'a str>,
    pub tags: Option<&'a [String]>,
}

impl NewRun {
    pub fn new(
        workflow_id: WorkflowId,
        run_start_time: Timestamp,
        run_finish_time: Option<Timestamp>,
        known_time: Option<Timestamp>,
        run_params: Option<Map<String, Json>>,
    ) -> Result<Self, ModelError> {
        if let Some(finish) = run_finish_time
            && finish < run_start_time
        {
            return Err(ModelError::new("run_finish_time", "must not be before run_start_time"));
        }
        Ok(Self {
            workflow_id,
            run_start_time,
            run_finish_time,
            known_time,
            run_params,
            series: Vec::new(),
            values: Vec::new(),
            series_index: HashMap::new(),
            seen: HashMap::new(),
        })
    }

    /// Attach extra series metadata (description, unit, labels) for a key that rows use
    /// or will use. Called before or after the rows; the last declaration wins.
    pub fn declare_series(&mut self, spec: SeriesSpec) {
        let index = self.series_slot(&spec.key);
        let id = self.series[index].id;
        self.series[index] = SeriesRef { spec, id };
    }

    fn series_slot(&mut self, key: &SeriesKey) -> usize {
        match self.series_index.get(key) {
            Some(&i) => i,
            None => {
                let i = self.series.len();
                self.series.push(SeriesRef { spec: SeriesSpec::key_only(key.clone()), id: None });
                self.series_index.insert(key.clone(), i);
                i
            }
        }
    }

    /// Add row number `row` (0-based, used in error messages as `value_rows[row]`).
    pub fn push(&mut self, row: usize, input: RowInput<'_>) -> Result<(), ModelError> {
        let field = |name: &str| format!("value_rows[{row}].{name}");
        if let Some(end) = input.valid_time_end
            && end <= input.valid_time
        {
            return Err(ModelError::new(field("valid_time_end"), "must be after valid_time"));
        }
        if let Some(v) = input.value
            && !v.is_finite()
        {
            return Err(ModelError::new(field("value"), "must be a finite number or null"));
        }
        let annotation = canonical_annotation(&field("annotation"), input.annotation)?;
        let tags = match input.tags {
            Some(raw) => Tags::parse(&field("tags"), raw)?,
            None => None,
        };
        let series = self.series_slot(&input.key);
        if let Some(id) = input.series_id {
            match self.series[series].id {
                Some(existing) if existing != id => {
                    return Err(ModelError::new(
                        field("series_id"),
                        format!(
                            "series '{}' is given two different series ids in one upload",
                            truncate(input.key.as_str())
                        ),
                    ));
                }
                _ => self.series[series].id = Some(id),
            }
        }
        let identity = (series, to_micros(input.valid_time), input.valid_time_end.map(to_micros));
        match self.seen.entry(identity) {
            Entry::Occupied(first) => {
                return Err(ModelError::new(
                    format!("value_rows[{row}]"),
                    format!(
                        "duplicates value_rows[{}]: series '{}' at valid_time {}{} appears twice in one upload",
                        first.get(),
                        truncate(input.key.as_str()),
                        format_timestamp(input.valid_time),
                        input.valid_time_end.map(|e| format!(" to {}", format_timestamp(e))).unwrap_or_default()
                    ),
                )
                .with_code("DUPLICATE_ROW"));
            }
            Entry::Vacant(slot) => {
                slot.insert(row);
            }
        }
        self.values.push(NewValue {
            series,
            valid_time: input.valid_time,
            valid_time_end: input.valid_time_end,
            value: input.value,
            annotation,
            tags,
        });
        Ok(())
    }

    /// Release the duplicate-detection index once all rows are in.
    pub fn finish(mut self) -> Self {
        self.seen = HashMap::new();
        self
    }
}

/// A stored run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub run_id: RunId,
    pub workflow_id: WorkflowId,
    pub run_start_time: Timestamp,
    pub run_finish_time: Option<Timestamp>,
    pub known_time: Timestamp,
    pub run_params: Option<Map<String, Json>>,
    pub inserted_at: Timestamp,
    pub created_by: Option<String>,
    pub value_count: i64,
}

/// Which runs a listing returns (newest known_time first).
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub workflow_id: Option<WorkflowId>,
    pub start_known: Option<Timestamp>,
    pub end_known: Option<Timestamp>,
    pub limit: usize,
}

/// What a successful run write reports back.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReceipt {
    pub run_id: RunId,
    pub known_time: Timestamp,
    /// Each series the run wrote to, in first-use order.
    pub series_ids: Vec<(SeriesKey, SeriesId)>,
    pub values_written: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::parse_timestamp;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        parse_timestamp("t", s).unwrap()
    }

    fn run() -> NewRun {
        NewRun::new(WorkflowId::parse("w", None).unwrap(), ts("2025-01-01"), None, None, None).unwrap()
    }

    fn row(key: &str, at: &str) -> RowInput<'static> {
        RowInput {
            key: SeriesKey::parse("k", key).unwrap(),
            series_id: None,
            valid_time: ts(at),
            valid_time_end: None,
            value: Some(1.0),
            annotation: None,
            tags: None,
        }
    }

    #[test]
    fn duplicate_rows_name_the_first() {
        let mut r = run();
        r.push(0, row("a", "2025-01-01T00:00:00Z")).unwrap();
        r.push(1, row("b", "2025-01-01T00:00:00Z")).unwrap();
        let err = r.push(2, row(" a", "2025-01-01T00:00:00+00:00")).unwrap_err();
        assert_eq!(err.field, "value_rows[2]");
        assert!(err.message.contains("value_rows[0]"), "{}", err.message);
        assert_eq!(r.series.len(), 2);
    }

    #[test]
    fn interval_end_must_follow_start() {
        let mut r = run();
        let mut bad = row("a", "2025-01-01T01:00:00Z");
        bad.valid_time_end = Some(ts("2025-01-01T01:00:00Z"));
        assert_eq!(r.push(0, bad).unwrap_err().field, "value_rows[0].valid_time_end");
        let mut nan = row("a", "2025-01-01T01:00:00Z");
        nan.value = Some(f64::NAN);
        assert!(r.push(1, nan).is_err());
    }

    #[test]
    fn annotation_is_canonical() {
        assert_eq!(canonical_annotation("a", Some("  checked ")).unwrap().as_deref(), Some("checked"));
        assert_eq!(canonical_annotation("a", Some(" \t\n")).unwrap(), None);
        assert_eq!(canonical_annotation("a", None).unwrap(), None);
        assert!(canonical_annotation("a", Some(&"x".repeat(MAX_ANNOTATION_CHARS + 1))).is_err());
    }

    proptest! {
        #[test]
        fn tags_are_canonical_whatever_the_input(raw in proptest::collection::vec("[ a-zA-Z0-9_-]{0,12}", 0..10)) {
            let parsed = Tags::parse("tags", &raw).unwrap();
            match &parsed {
                None => prop_assert!(raw.iter().all(|t| t.trim().is_empty())),
                Some(tags) => {
                    let t = tags.as_slice();
                    prop_assert!(!t.is_empty());
                    prop_assert!(t.windows(2).all(|w| w[0] < w[1]), "sorted and unique: {:?}", t);
                    prop_assert!(t.iter().all(|s| s == &s.trim().to_lowercase() && !s.is_empty()));
                    for r in &raw {
                        if !r.trim().is_empty() {
                            prop_assert!(t.contains(&r.trim().to_lowercase()));
                        }
                    }
                }
            }
            // Canonicalising twice changes nothing, and order of input does not matter.
            let again = parsed.as_ref().map(|t| Tags::parse("tags", t.as_slice()).unwrap().unwrap());
            prop_assert_eq!(&again, &parsed);
            let mut reversed = raw.clone();
            reversed.reverse();
            prop_assert_eq!(Tags::parse("tags", &reversed).unwrap(), parsed.clone());
            if let Some(t) = parsed {
                prop_assert_eq!(Tags::from_json(&t.to_json()), Some(t));
            }
        }

        #[test]
        fn annotation_canonicalisation_is_idempotent(s in "\\PC{0,30}") {
            let once = canonical_annotation("a", Some(&s)).unwrap();
            let twice = canonical_annotation("a", once.as_deref()).unwrap();
            prop_assert_eq!(&once, &twice);
            if let Some(a) = once {
                prop_assert_eq!(a.trim(), a.as_str());
                prop_assert!(!a.is_empty());
            }
        }
    }
}
