//! Structured uploads and their three encodings (a JSON body, a CSV body and an Arrow
//! IPC stream holding the same rows), and the contract every answer to an upload keeps. Shared by the fuzz targets (which build uploads from
//! the fuzzer's bytes) and by `crates/timedb-server/tests/decode_props.rs` (which builds
//! them with proptest and includes this file by path), so both hold the decoders to one
//! model. It depends only on crates the server itself uses.
//!
//! Every row is valid on its own except for two mistakes the fuzzer may choose, an
//! interval that ends where it starts and a repeated (series, valid time, end); so what
//! the server must answer is known in advance ([`Upload::expected`]) and the three
//! formats can be held to the same answer.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, LargeStringArray, RecordBatch, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde_json::{Value, json};

/// Series keys the rows choose from: plain, padded (the server trims), non-ASCII, and
/// ones CSV must quote.
const KEYS: &[&str] = &["a", "wind_power", " padded ", "padded", "ünï ☃", "comma,key", "quote\"key", "b"];

/// The path and query string of every CSV and Arrow upload of these rows (JSON bodies
/// carry the same run fields).
pub const BULK_QUERY: &str = "/upload?run_start_time=2025-01-01T00:00:00Z&workflow_id=fuzz";

/// 2025-01-01T00:00:00Z in seconds since the epoch.
const BASE: i64 = 1_735_689_600;

#[derive(Debug, Clone)]
pub struct Row {
    /// Index into the keys rows choose from.
    pub key: u8,
    /// Seconds after 2025-01-01T00:00:00Z.
    pub second: u16,
    /// `Some(0)`: an interval that ends where it starts (refused); else seconds after
    /// `valid_time`.
    pub end: Option<u8>,
    pub value: Option<f64>,
}

/// How timestamps are spelled in the text formats and typed in the Arrow one.
#[derive(Debug, Clone, Copy)]
pub struct Spelling {
    /// Minutes east of UTC for the text offset (taken modulo a day).
    pub offset_minutes: i16,
    /// `Z` instead of `+00:00` when the offset is zero.
    pub zulu: bool,
    /// A space instead of `T` between date and time.
    pub space: bool,
    /// Arrow timestamp unit: seconds, milli-, micro- or nanoseconds (modulo 4).
    pub unit: u8,
    /// Arrow timestamps with a time zone (`+05:30`) or none.
    pub zone: bool,
    /// Arrow key column: `Utf8`, `LargeUtf8` or `Dictionary<Int32, Utf8>` (modulo 3).
    pub key_type: u8,
}

#[derive(Debug, Clone)]
pub struct Upload {
    pub rows: Vec<Row>,
    pub spelling: Spelling,
    /// Rows per Arrow record batch (at least one).
    pub batch: u8,
}

/// The answer an upload must get.
#[derive(Debug, PartialEq, Eq)]
pub enum Expected {
    /// 200, writing this many values over these (trimmed, sorted) keys.
    Written { values: u64, keys: Vec<String> },
    /// 422 with this code, naming this 0-based row.
    Refused { code: &'static str, row: usize },
}

impl Row {
    fn key(&self) -> &'static str {
        KEYS[self.key as usize % KEYS.len()]
    }

    fn valid_time(&self) -> i64 {
        BASE + i64::from(self.second)
    }

    fn valid_time_end(&self) -> Option<i64> {
        self.end.map(|e| self.valid_time() + i64::from(e))
    }

    /// A finite value or null: JSON has no NaN, so a non-finite value would not be the
    /// same row in every format.
    fn value(&self) -> Option<f64> {
        self.value.filter(|v| v.is_finite())
    }
}

impl Upload {
    /// What `NewRun::push` must decide, row by row, in order.
    pub fn expected(&self) -> Expected {
        let mut seen = HashSet::new();
        for (i, row) in self.rows.iter().enumerate() {
            if row.end == Some(0) {
                return Expected::Refused { code: "INVALID_FIELD", row: i };
            }
            if !seen.insert((row.key().trim(), row.valid_time(), row.valid_time_end())) {
                return Expected::Refused { code: "DUPLICATE_ROW", row: i };
            }
        }
        let mut keys: Vec<String> = self.rows.iter().map(|r| r.key().trim().to_owned()).collect();
        keys.sort();
        keys.dedup();
        Expected::Written { values: self.rows.len() as u64, keys }
    }

    fn text_time(&self, seconds: i64) -> String {
        let s = self.spelling;
        let offset = FixedOffset::east_opt(i32::from(s.offset_minutes % 1440) * 60).unwrap();
        let ts = DateTime::<Utc>::from_timestamp(seconds, 0).unwrap().with_timezone(&offset);
        let mut text = ts.to_rfc3339_opts(SecondsFormat::AutoSi, s.zulu);
        if s.space {
            text.replace_range(10..11, " ");
        }
        text
    }

    /// The JSON body (`POST /upload`, `application/json`).
    pub fn json(&self) -> Vec<u8> {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut row =
                    json!({"value_key": r.key(), "valid_time": self.text_time(r.valid_time()), "value": r.value()});
                if let Some(end) = r.valid_time_end() {
                    row["valid_time_end"] = json!(self.text_time(end));
                }
                row
            })
            .collect();
        let body = json!({
            "workflow_id": "fuzz",
            "run_start_time": "2025-01-01T00:00:00Z",
            "known_time": "2025-01-01T00:00:00Z",
            "value_rows": rows,
        });
        serde_json::to_vec(&body).unwrap()
    }

    /// The CSV body (`text/csv`), with the run's fields in the query string.
    pub fn csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["value_key", "valid_time", "valid_time_end", "value"]).unwrap();
        for r in &self.rows {
            let end = r.valid_time_end().map(|e| self.text_time(e)).unwrap_or_default();
            let value = r.value().map(|v| v.to_string()).unwrap_or_default();
            w.write_record([r.key(), &self.text_time(r.valid_time()), &end, &value]).unwrap();
        }
        w.into_inner().unwrap()
    }

    /// The Arrow IPC stream (`application/vnd.apache.arrow.stream`).
    pub fn arrow(&self) -> Vec<u8> {
        let s = self.spelling;
        let unit = match s.unit % 4 {
            0 => TimeUnit::Second,
            1 => TimeUnit::Millisecond,
            2 => TimeUnit::Microsecond,
            _ => TimeUnit::Nanosecond,
        };
        let zone: Option<Arc<str>> = s.zone.then(|| "+05:30".into());
        let key_type = match s.key_type % 3 {
            0 => DataType::Utf8,
            1 => DataType::LargeUtf8,
            _ => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        };
        let time_type = DataType::Timestamp(unit, zone.clone());
        let schema = Arc::new(Schema::new(vec![
            Field::new("value_key", key_type.clone(), false),
            Field::new("valid_time", time_type.clone(), false),
            Field::new("valid_time_end", time_type, true),
            Field::new("value", DataType::Float64, true),
        ]));
        let times = |secs: Vec<Option<i64>>| -> ArrayRef {
            let scale = match unit {
                TimeUnit::Second => 1,
                TimeUnit::Millisecond => 1_000,
                TimeUnit::Microsecond => 1_000_000,
                TimeUnit::Nanosecond => 1_000_000_000,
            };
            let v: Vec<Option<i64>> = secs.into_iter().map(|s| s.map(|s| s * scale)).collect();
            match unit {
                TimeUnit::Second => Arc::new(TimestampSecondArray::from(v).with_timezone_opt(zone.clone())),
                TimeUnit::Millisecond => Arc::new(TimestampMillisecondArray::from(v).with_timezone_opt(zone.clone())),
                TimeUnit::Microsecond => Arc::new(TimestampMicrosecondArray::from(v).with_timezone_opt(zone.clone())),
                TimeUnit::Nanosecond => Arc::new(TimestampNanosecondArray::from(v).with_timezone_opt(zone.clone())),
            }
        };
        let mut out = Vec::new();
        let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).unwrap();
        for chunk in self.rows.chunks(usize::from(self.batch.max(1))) {
            let keys: ArrayRef = match key_type {
                DataType::Utf8 => {
                    let mut b = StringBuilder::new();
                    chunk.iter().for_each(|r| b.append_value(r.key()));
                    Arc::new(b.finish())
                }
                DataType::LargeUtf8 => Arc::new(LargeStringArray::from_iter_values(chunk.iter().map(Row::key))),
                _ => {
                    let mut b = StringDictionaryBuilder::<Int32Type>::new();
                    chunk.iter().for_each(|r| {
                        b.append_value(r.key());
                    });
                    Arc::new(b.finish())
                }
            };
            let mut values = Float64Builder::new();
            chunk.iter().for_each(|r| values.append_option(r.value()));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    keys,
                    times(chunk.iter().map(|r| Some(r.valid_time())).collect()),
                    times(chunk.iter().map(Row::valid_time_end).collect()),
                    Arc::new(values.finish()),
                ],
            )
            .unwrap();
            writer.write(&batch).unwrap();
        }
        writer.finish().unwrap();
        drop(writer);
        out
    }
}

/// A status and the JSON it came with.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// What every answer to any upload must be: a 200 with a receipt, or a 4xx with
    /// `{"detail","code"}`. Never a 5xx (SPEC §8: a client's mistake is never our error).
    pub fn check(&self) {
        let Answer { status, body } = self;
        match status {
            200 => {
                assert!(body["run_id"].as_str().is_some_and(|s| s.len() == 36), "receipt without run_id: {body}");
                assert!(body["values_written"].as_u64().is_some(), "receipt without values_written: {body}");
                assert!(body["series_ids"].is_object(), "receipt without series_ids: {body}");
                let known = body["known_time"].as_str().expect("receipt without known_time");
                timedb::model::time::parse_timestamp("known_time", known).expect("known_time re-parses");
            }
            400..=499 => {
                let detail = body["detail"].as_str().unwrap_or_else(|| panic!("{status} without detail: {body}"));
                let code = body["code"].as_str().unwrap_or_else(|| panic!("{status} without code: {body}"));
                assert!(!detail.is_empty(), "{status} with an empty detail: {body}");
                assert!(
                    !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                    "{status} with code {code:?}"
                );
            }
            _ => panic!("upload answered {status}: {body}"),
        }
    }

    pub fn values_written(&self) -> Option<u64> {
        (self.status == 200).then(|| self.body["values_written"].as_u64().unwrap())
    }

    /// The value keys of a 200's `series_ids`, sorted.
    pub fn series_keys(&self) -> Vec<String> {
        self.body["series_ids"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or("")
    }
}
