//! The rows `timedb-bench all` writes, in each wire format, and the counting of rows in
//! each format's read answer (docs/benchmarks.md; formats: the bulk-formats contract).
//!
//! Value `j` of a data set of N over S series belongs to series `s{j % S}` at hour
//! `j / S` from 2020-01-01, with the value `(j % 100000) / 8` (a few exactly
//! representable decimals of varying length). Every run is known at 2025-01-01.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Context;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, TimeZone, Utc};

/// The run's `known_time` and `run_start_time`.
pub const KNOWN_TIME: &str = "2025-01-01T00:00:00Z";
/// Rows per record batch of an Arrow upload body.
const ARROW_BATCH_ROWS: usize = 65_536;

/// A wire format of `POST /upload` and `GET /values`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Arrow,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Json, Format::Csv, Format::Arrow];

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Csv => "CSV",
            Format::Arrow => "Arrow IPC",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv",
            Format::Arrow => "application/vnd.apache.arrow.stream",
        }
    }

    /// The `format=` value of a read.
    pub fn query(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Arrow => "arrow",
        }
    }
}

/// N values over S series.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    pub values: usize,
    pub series: usize,
}

impl Dataset {
    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap()
    }

    pub fn series_index(&self, j: usize) -> usize {
        j % self.series
    }

    /// Valid time of value `j`, in microseconds since the epoch.
    pub fn valid_micros(&self, j: usize) -> i64 {
        Self::start().timestamp_micros() + (j / self.series) as i64 * 3_600_000_000
    }

    fn valid_text(&self, j: usize) -> String {
        (Self::start() + chrono::Duration::hours((j / self.series) as i64)).format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    pub fn value(j: usize) -> f64 {
        (j % 100_000) as f64 / 8.0
    }

    /// The upstream-shaped JSON body, writing to `tenant` (auth off) when given.
    pub fn json_body(&self, tenant: Option<&str>) -> Vec<u8> {
        let mut body = String::with_capacity(self.values * 70 + 200);
        write!(body, r#"{{"workflow_id":"timedb-bench","run_start_time":"{KNOWN_TIME}","known_time":"{KNOWN_TIME}","#)
            .unwrap();
        if let Some(tenant) = tenant {
            write!(body, r#""tenant_id":"{tenant}","#).unwrap();
        }
        body.push_str(r#""value_rows":["#);
        for j in 0..self.values {
            if j > 0 {
                body.push(',');
            }
            write!(
                body,
                r#"{{"valid_time":"{}","value_key":"s{}","value":{}}}"#,
                self.valid_text(j),
                self.series_index(j),
                Self::value(j)
            )
            .unwrap();
        }
        body.push_str("]}");
        body.into_bytes()
    }

    /// A `text/csv` body: header, then one `value_key,valid_time,value` line per value.
    pub fn csv_body(&self) -> Vec<u8> {
        let mut body = String::with_capacity(self.values * 36 + 32);
        body.push_str("value_key,valid_time,value\n");
        for j in 0..self.values {
            writeln!(body, "s{},{},{}", self.series_index(j), self.valid_text(j), Self::value(j)).unwrap();
        }
        body.into_bytes()
    }

    /// An Arrow IPC stream body: `value_key` Utf8, `valid_time` Timestamp(µs, UTC),
    /// `value` Float64, in batches of 65,536 rows.
    pub fn arrow_body(&self) -> anyhow::Result<Vec<u8>> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("value_key", DataType::Utf8, false),
            Field::new("valid_time", DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), false),
            Field::new("value", DataType::Float64, true),
        ]));
        let keys: Vec<String> = (0..self.series).map(|s| format!("s{s}")).collect();
        let mut writer = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &schema)?;
        let mut start = 0;
        while start < self.values {
            let rows = start..(start + ARROW_BATCH_ROWS).min(self.values);
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from_iter_values(rows.clone().map(|j| &keys[self.series_index(j)]))),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(rows.clone().map(|j| self.valid_micros(j)))
                        .with_timezone("+00:00"),
                ),
                Arc::new(Float64Array::from_iter_values(rows.clone().map(Self::value))),
            ];
            writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
            start = rows.end;
        }
        writer.finish()?;
        Ok(writer.into_inner()?)
    }

    /// The body of an upload in `format`.
    pub fn body(&self, format: Format, tenant: &str) -> anyhow::Result<Vec<u8>> {
        Ok(match format {
            Format::Json => self.json_body(Some(tenant)),
            Format::Csv => self.csv_body(),
            Format::Arrow => self.arrow_body()?,
        })
    }
}

/// The path and query of an upload: JSON carries the run's fields in its body, the bulk
/// formats in the query string.
pub fn upload_path(format: Format, tenant: &str) -> String {
    match format {
        Format::Json => "/upload".to_owned(),
        Format::Csv | Format::Arrow => format!(
            "/upload?workflow_id=timedb-bench&run_start_time={KNOWN_TIME}&known_time={KNOWN_TIME}&tenant_id={tenant}"
        ),
    }
}

/// Counts the rows of a read answer as its chunks arrive, without keeping the body.
pub enum RowCounter {
    /// Keeps the last bytes, which end with `"count":N}`.
    Json { tail: Vec<u8> },
    /// Counts lines; the first is the header.
    Csv { lines: u64 },
    /// Decodes record batches and adds up their rows.
    Arrow { decoder: arrow_ipc::reader::StreamDecoder, rows: u64 },
}

impl RowCounter {
    pub fn new(format: Format) -> Self {
        match format {
            Format::Json => RowCounter::Json { tail: Vec::new() },
            Format::Csv => RowCounter::Csv { lines: 0 },
            Format::Arrow => RowCounter::Arrow { decoder: arrow_ipc::reader::StreamDecoder::new(), rows: 0 },
        }
    }

    pub fn feed(&mut self, chunk: bytes::Bytes) -> anyhow::Result<()> {
        match self {
            RowCounter::Json { tail } => {
                tail.extend_from_slice(&chunk[chunk.len().saturating_sub(64)..]);
                tail.drain(..tail.len().saturating_sub(64));
            }
            RowCounter::Csv { lines } => *lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64,
            RowCounter::Arrow { decoder, rows } => {
                let mut buffer = arrow_buffer::Buffer::from(chunk);
                while !buffer.is_empty() {
                    match decoder.decode(&mut buffer).context("decoding the Arrow IPC stream")? {
                        Some(batch) => *rows += batch.num_rows() as u64,
                        None => break,
                    }
                }
            }
        }
        Ok(())
    }

    /// The rows the whole answer held.
    pub fn finish(self) -> anyhow::Result<u64> {
        match self {
            RowCounter::Json { tail } => {
                let tail = String::from_utf8_lossy(&tail);
                tail.rsplit_once("\"count\":")
                    .and_then(|(_, n)| n.trim().trim_end_matches('}').trim().parse::<u64>().ok())
                    .with_context(|| format!("no \"count\" at the end of the JSON answer (it ends {tail:?})"))
            }
            RowCounter::Csv { lines } => Ok(lines.saturating_sub(1)),
            RowCounter::Arrow { mut decoder, rows } => {
                decoder.finish().context("the Arrow IPC stream ended early")?;
                Ok(rows)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(format: Format, body: Vec<u8>, chunk: usize) -> u64 {
        let mut counter = RowCounter::new(format);
        for part in body.chunks(chunk) {
            counter.feed(bytes::Bytes::copy_from_slice(part)).unwrap();
        }
        counter.finish().unwrap()
    }

    #[test]
    fn bodies_hold_every_value() {
        let d = Dataset { values: 70_000, series: 3 };
        let json = String::from_utf8(d.json_body(Some("t"))).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["value_rows"].as_array().unwrap().len(), 70_000);
        assert_eq!(parsed["value_rows"][4]["valid_time"], "2020-01-01T01:00:00Z");
        assert_eq!(parsed["value_rows"][4]["value_key"], "s1");
        assert_eq!(parsed["tenant_id"], "t");
        // An Arrow upload body decodes as a stream; CSV has a header and a line per value.
        assert_eq!(count(Format::Arrow, d.arrow_body().unwrap(), 1000), 70_000);
        assert_eq!(count(Format::Csv, d.csv_body(), 777), 70_000);
        let csv = String::from_utf8(d.csv_body()).unwrap();
        assert_eq!(csv.lines().nth(5), Some("s1,2020-01-01T01:00:00Z,0.5"));
    }

    #[test]
    fn json_count_is_read_from_the_tail() {
        let body = br#"{"data":[{"a":1}],"count":12345}"#.to_vec();
        assert_eq!(count(Format::Json, body, 5), 12345);
    }

    #[test]
    fn valid_times_agree_between_formats() {
        let d = Dataset { values: 100, series: 10 };
        assert_eq!(d.valid_micros(15), Utc.with_ymd_and_hms(2020, 1, 1, 1, 0, 0).unwrap().timestamp_micros());
        assert_eq!(d.valid_text(15), "2020-01-01T01:00:00Z");
    }
}
