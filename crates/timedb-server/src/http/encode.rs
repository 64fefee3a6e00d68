//! Streaming encoders for value reads: rows are written batch by batch as the store
//! produces them, so a response of any size costs the server a few batches of memory.
//! JSON and CSV are written here; Arrow IPC in [`super::arrow_encode`].
//!
//! JSON keeps the upstream shape `{"count": n, "data": [...]}` with the keys in the
//! other order — `"data"` first, `"count"` last — because the count is only known once
//! the last row has been read. JSON parsers do not care about key order.

use std::io::Write;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use timedb::model::time::write_timestamp;
use timedb::model::{ReadMode, ValueRecord};
use timedb::store::ValueStream;

/// Which columns a read shows.
#[derive(Debug, Clone, Copy)]
pub struct Columns {
    /// `known_time` and `run_id` (overlapping mode, and history).
    pub run: bool,
    /// `value_id`, annotation, tags, changed_by, change_time, is_current.
    pub audit: bool,
}

impl Columns {
    pub fn for_read(mode: ReadMode, all_versions: bool) -> Self {
        Self { run: mode == ReadMode::Overlapping || all_versions, audit: all_versions }
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut names = vec!["valid_time", "valid_time_end", "series_id", "series_key", "series_unit", "value"];
        if self.run {
            names.extend(["known_time", "run_id"]);
        }
        if self.audit {
            names.extend(["value_id", "annotation", "tags", "changed_by", "change_time", "is_current"]);
        }
        names
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    /// An Arrow IPC stream (`application/vnd.apache.arrow.stream`).
    Arrow,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => super::bulk::ARROW_STREAM,
        }
    }
}

fn json_str(buf: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *buf, s).expect("writing to a Vec cannot fail");
}

fn json_f64(buf: &mut Vec<u8>, v: Option<f64>) {
    match v {
        Some(v) => serde_json::to_writer(&mut *buf, &v).expect("writing to a Vec cannot fail"),
        None => buf.extend_from_slice(b"null"),
    }
}

fn json_ts(buf: &mut Vec<u8>, ts: Option<timedb::model::Timestamp>) {
    match ts {
        Some(ts) => {
            buf.push(b'"');
            write_timestamp(buf, ts);
            buf.push(b'"');
        }
        None => buf.extend_from_slice(b"null"),
    }
}

fn json_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

fn write_json_row(buf: &mut Vec<u8>, r: &ValueRecord, cols: Columns) {
    buf.extend_from_slice(b"{\"valid_time\":");
    json_ts(buf, Some(r.valid_time));
    buf.extend_from_slice(b",\"valid_time_end\":");
    json_ts(buf, r.valid_time_end);
    let _ = write!(buf, ",\"series_id\":\"{}\",\"series_key\":", r.series.series_id);
    json_str(buf, r.series.key.as_str());
    buf.extend_from_slice(b",\"series_unit\":");
    json_str(buf, r.series.unit.as_str());
    buf.extend_from_slice(b",\"value\":");
    json_f64(buf, r.value);
    if cols.run {
        buf.extend_from_slice(b",\"known_time\":");
        json_ts(buf, Some(r.known_time));
        let _ = write!(buf, ",\"run_id\":\"{}\"", r.run_id);
    }
    if cols.audit {
        let _ = write!(buf, ",\"value_id\":{},\"annotation\":", r.value_id);
        json_opt_str(buf, r.annotation.as_deref());
        buf.extend_from_slice(b",\"tags\":");
        match &r.tags {
            Some(t) => serde_json::to_writer(&mut *buf, t.as_slice()).expect("Vec write"),
            None => buf.extend_from_slice(b"null"),
        }
        buf.extend_from_slice(b",\"changed_by\":");
        json_opt_str(buf, r.changed_by.as_deref());
        buf.extend_from_slice(b",\"change_time\":");
        json_ts(buf, Some(r.change_time));
        let _ = write!(buf, ",\"is_current\":{}", r.is_current);
    }
    buf.push(b'}');
}

/// A CSV field, quoted when it holds a separator, quote or line break.
fn csv_field(buf: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        buf.push(b'"');
        buf.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        buf.push(b'"');
    } else {
        buf.extend_from_slice(s.as_bytes());
    }
}

fn write_csv_row(buf: &mut Vec<u8>, r: &ValueRecord, cols: Columns) {
    write_timestamp(buf, r.valid_time);
    buf.push(b',');
    if let Some(end) = r.valid_time_end {
        write_timestamp(buf, end);
    }
    let _ = write!(buf, ",{},", r.series.series_id);
    csv_field(buf, r.series.key.as_str());
    buf.push(b',');
    csv_field(buf, r.series.unit.as_str());
    buf.push(b',');
    if let Some(v) = r.value {
        let _ = write!(buf, "{v}");
    }
    if cols.run {
        buf.push(b',');
        write_timestamp(buf, r.known_time);
        let _ = write!(buf, ",{}", r.run_id);
    }
    if cols.audit {
        let _ = write!(buf, ",{},", r.value_id);
        csv_field(buf, r.annotation.as_deref().unwrap_or(""));
        buf.push(b',');
        if let Some(t) = &r.tags {
            csv_field(buf, &serde_json::to_string(t.as_slice()).expect("strings serialise"));
        }
        buf.push(b',');
        csv_field(buf, r.changed_by.as_deref().unwrap_or(""));
        buf.push(b',');
        write_timestamp(buf, r.change_time);
        let _ = write!(buf, ",{}", r.is_current);
    }
    buf.push(b'\n');
}

enum Phase {
    Start,
    Rows,
    Done,
}

struct EncodeState {
    rows: ValueStream,
    format: Format,
    cols: Columns,
    count: u64,
    phase: Phase,
}

/// Encode a value stream as a response body stream. A store error after the first
/// byte ends the body with an error, which aborts the connection: the client sees a
/// truncated response, never a well-formed partial one.
pub fn encode(rows: ValueStream, format: Format, cols: Columns) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    match format {
        Format::Arrow => super::arrow_encode::encode(rows, cols).boxed(),
        Format::Json | Format::Csv => encode_text(rows, format, cols).boxed(),
    }
}

fn encode_text(rows: ValueStream, format: Format, cols: Columns) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let state = EncodeState { rows, format, cols, count: 0, phase: Phase::Start };
    futures_util::stream::unfold(state, |mut st| async move {
        match st.phase {
            Phase::Start => {
                st.phase = Phase::Rows;
                let head = match st.format {
                    Format::Json => b"{\"data\":[".to_vec(),
                    Format::Csv | Format::Arrow => {
                        let mut h = st.cols.names().join(",").into_bytes();
                        h.push(b'\n');
                        h
                    }
                };
                Some((Ok(Bytes::from(head)), st))
            }
            Phase::Rows => match st.rows.next_batch().await {
                Some(Ok(batch)) => {
                    crate::metrics::global().values_read(batch.len());
                    let mut buf = Vec::with_capacity(batch.len() * 160);
                    for r in &batch {
                        match st.format {
                            Format::Json => {
                                if st.count > 0 {
                                    buf.push(b',');
                                }
                                write_json_row(&mut buf, r, st.cols);
                            }
                            Format::Csv | Format::Arrow => write_csv_row(&mut buf, r, st.cols),
                        }
                        st.count += 1;
                    }
                    Some((Ok(Bytes::from(buf)), st))
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "value read failed mid-stream");
                    st.phase = Phase::Done;
                    Some((Err(std::io::Error::other(e.to_string())), st))
                }
                None => {
                    st.phase = Phase::Done;
                    let tail = match st.format {
                        Format::Json => format!("],\"count\":{}}}", st.count).into_bytes(),
                        Format::Csv | Format::Arrow => Vec::new(),
                    };
                    Some((Ok(Bytes::from(tail)), st))
                }
            },
            Phase::Done => None,
        }
    })
}
