//! Series: one quantity of one tenant (e.g. `wind_power_farm_a`), identified by a
//! per-tenant unique key. Uploads get-or-create series by key, so a key never maps to
//! two series.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ids::truncate;
use super::{ModelError, SeriesId, Timestamp};

/// Longest series key, in characters.
pub const MAX_SERIES_KEY_CHARS: usize = 256;

/// A series key: trimmed, non-empty, at most 256 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SeriesKey(String);

impl SeriesKey {
    pub fn parse(field: &str, text: &str) -> Result<Self, ModelError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ModelError::new(field, "must not be empty"));
        }
        let chars = trimmed.chars().count();
        if chars > MAX_SERIES_KEY_CHARS {
            return Err(ModelError::new(
                field,
                format!("is {chars} characters long; the limit is {MAX_SERIES_KEY_CHARS}"),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ModelError::new(field, "must not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For stores reading back a key they wrote (already valid).
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }
}

impl std::fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A unit of measurement; non-empty, `dimensionless` when not given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Unit(String);

impl Unit {
    pub const DEFAULT: &'static str = "dimensionless";

    /// `None` or blank → the default unit.
    pub fn parse(field: &str, text: Option<&str>) -> Result<Self, ModelError> {
        match text.map(str::trim) {
            None | Some("") => Ok(Self(Self::DEFAULT.to_owned())),
            Some(t) if t.chars().count() > 64 => Err(ModelError::new(field, "must be at most 64 characters")),
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

/// String → string labels, kept sorted so equal label sets compare and store equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Labels(pub BTreeMap<String, String>);

impl Labels {
    /// Trimmed keys and values; keys non-empty; at most 64 labels.
    pub fn parse(field: &str, raw: BTreeMap<String, String>) -> Result<Self, ModelError> {
        if raw.len() > 64 {
            return Err(ModelError::new(field, "at most 64 labels are allowed"));
        }
        let mut out = BTreeMap::new();
        for (k, v) in raw {
            let key = k.trim();
            if key.is_empty() {
                return Err(ModelError::new(field, "label names must not be empty"));
            }
            if key.chars().count() > 256 || v.chars().count() > 1024 {
                return Err(ModelError::new(
                    field,
                    format!("label '{}' is too long (names ≤ 256, values ≤ 1024 characters)", truncate(key)),
                ));
            }
            if key.chars().chain(v.chars()).any(|c| c == '\0') {
                return Err(ModelError::new(field, "labels must not contain NUL characters"));
            }
            out.insert(key.to_owned(), v.trim().to_owned());
        }
        Ok(Self(out))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).expect("a string map always serialises")
    }

    pub fn from_json(text: &str) -> Self {
        Self(serde_json::from_str(text).unwrap_or_default())
    }

    /// True when every label of `wanted` is present here with the same value.
    pub fn contains(&self, wanted: &Labels) -> bool {
        wanted.0.iter().all(|(k, v)| self.0.get(k) == Some(v))
    }
}

/// What a client asks for when it creates (or re-declares) a series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSpec {
    pub key: SeriesKey,
    pub description: Option<String>,
    /// `None` when the client did not say: an existing series keeps its unit, a new one
    /// gets `dimensionless`. `Some` must match an existing series' unit (else conflict).
    pub unit: Option<Unit>,
    pub labels: Option<Labels>,
}

impl SeriesSpec {
    /// A spec that names only the key (series created implicitly by an upload).
    pub fn key_only(key: SeriesKey) -> Self {
        Self { key, description: None, unit: None, labels: None }
    }
}

/// Normalise a free-text description: trimmed, blank → none, ≤ 4096 characters.
pub fn parse_description(field: &str, text: Option<&str>) -> Result<Option<String>, ModelError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.chars().count() > 4096 => Err(ModelError::new(field, "must be at most 4096 characters")),
        Some(t) if t.contains('\0') => Err(ModelError::new(field, "must not contain NUL characters")),
        Some(t) => Ok(Some(t.to_owned())),
    }
}

/// A stored series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub series_id: SeriesId,
    pub key: SeriesKey,
    pub description: Option<String>,
    pub unit: Unit,
    pub labels: Labels,
    pub created_at: Timestamp,
}

/// Which series a listing returns.
#[derive(Debug, Clone, Default)]
pub struct SeriesFilter {
    pub keys: Vec<SeriesKey>,
    pub ids: Vec<SeriesId>,
    pub labels: Option<Labels>,
}

impl SeriesFilter {
    pub fn matches(&self, series: &Series) -> bool {
        (self.keys.is_empty() && self.ids.is_empty()
            || self.keys.contains(&series.key)
            || self.ids.contains(&series.series_id))
            && self.labels.as_ref().is_none_or(|l| series.labels.contains(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_key_is_trimmed_and_bounded() {
        assert_eq!(SeriesKey::parse("k", "  wind ").unwrap().as_str(), "wind");
        assert!(SeriesKey::parse("k", "   ").is_err());
        assert!(SeriesKey::parse("k", &"x".repeat(256)).is_ok());
        let err = SeriesKey::parse("value_key", &"x".repeat(300)).unwrap_err();
        assert_eq!(err.field, "value_key");
        assert!(SeriesKey::parse("k", "a\0b").is_err());
        assert_eq!(SeriesKey::parse("k", "Ünïcödé ✓").unwrap().as_str(), "Ünïcödé ✓");
    }

    #[test]
    fn unit_defaults_to_dimensionless() {
        assert_eq!(Unit::parse("u", None).unwrap().as_str(), "dimensionless");
        assert_eq!(Unit::parse("u", Some("  ")).unwrap().as_str(), "dimensionless");
        assert_eq!(Unit::parse("u", Some(" MW ")).unwrap().as_str(), "MW");
    }

    #[test]
    fn labels_match_by_containment() {
        let have =
            Labels::parse("l", [("site".into(), "north".into()), ("kind".into(), "wind".into())].into()).unwrap();
        let want = Labels::parse("l", [("site".into(), " north ".into())].into()).unwrap();
        assert!(have.contains(&want));
        assert!(!want.contains(&have));
        assert!(Labels::parse("l", [(" ".into(), "x".into())].into()).is_err());
    }
}
