//! Upload bodies that are not JSON: CSV (`text/csv`) and Arrow IPC streams
//! (`application/vnd.apache.arrow.stream`), for clients with many rows and no wish to
//! spell each one as a JSON object (the wire contract is docs/http-api.md, "Bulk
//! formats").
//!
//! Both decoders feed the same [`NewRun::push`] the JSON upload uses, one row at a time
//! straight from the parser, so validation, duplicate detection and the store path are
//! the JSON upload's; only the names in error messages differ. A JSON row is
//! `value_rows[17]`; a CSV row is named by the line it starts on (`line 18`, the header
//! being line 1) because that is what an editor shows, and an Arrow row by its 0-based
//! position in the stream (`row 17`). The run's own fields come from the query string.
//!
//! Decoding is synchronous CPU work over the whole body (which the body limit already
//! bounds), so the handler runs it on the blocking pool.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch};
use arrow_schema::{DataType, Schema, TimeUnit};
use axum::http::StatusCode;
use timedb::model::time::{from_micros, max_timestamp, min_timestamp, now, parse_timestamp};
use timedb::model::{ModelError, NewRun, RowInput, SeriesId, SeriesKey, Timestamp, WorkflowId};

use super::error::{ApiError, ApiResult};
use super::extract::QueryPairs;

/// The media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
/// The media type of a CSV body.
pub const CSV: &str = "text/csv";

/// Query parameters a bulk upload accepts (`api_key` is the authentication layer's).
const RUN_PARAMS: &[&str] = &["run_start_time", "known_time", "run_finish_time", "workflow_id", "tenant_id", "api_key"];

/// The run of a bulk upload as its query string describes it, and the tenant it names.
pub fn run_from_query(q: &QueryPairs) -> ApiResult<(NewRun, Option<String>)> {
    q.check_known(RUN_PARAMS)?;
    let ts = |name: &str| -> ApiResult<Option<Timestamp>> {
        Ok(q.one(name)?.map(|t| parse_timestamp(name, t)).transpose()?)
    };
    let start = ts("run_start_time")?.unwrap_or_else(now);
    // Unlike JSON (where it defaults to the insert time), a bulk upload's known_time
    // defaults to its run_start_time: the query string is the whole run description, and
    // "known when the run started" is what a forecast file means.
    let known = ts("known_time")?.unwrap_or(start);
    let run = NewRun::new(
        WorkflowId::parse("workflow_id", q.one("workflow_id")?)?,
        start,
        ts("run_finish_time")?,
        Some(known),
        None,
    )?;
    Ok((run, q.one("tenant_id")?.map(str::to_owned)))
}

/// Rename a [`NewRun::push`] error from JSON's `value_rows[N]` to `{unit} N`, both in
/// the field and in a duplicate's "duplicates value_rows[M]". The bulk decoders pass the
/// number they want shown (a line number, a stream row) as `push`'s row index.
fn relabel(e: ModelError, unit: &str) -> ModelError {
    fn rename(text: &str, unit: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("value_rows[") {
            out.push_str(&rest[..at]);
            let after = &rest[at + "value_rows[".len()..];
            match after.find(']') {
                Some(close) if after[..close].bytes().all(|b| b.is_ascii_digit()) => {
                    out.push_str(unit);
                    out.push(' ');
                    out.push_str(&after[..close]);
                    rest = &after[close + 1..];
                    // `value_rows[3].valid_time` becomes `line 3: valid_time`.
                    if let Some(tail) = rest.strip_prefix('.') {
                        out.push_str(": ");
                        rest = tail;
                    }
                }
                _ => {
                    out.push_str("value_rows[");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
    ModelError { field: rename(&e.field, unit), message: rename(&e.message, unit), code: e.code }
}

/// The field name for a column of row `n`: `line 18: valid_time`.
fn at(unit: &str, n: u64, column: &str) -> String {
    format!("{unit} {n}: {column}")
}

fn too_many_rows(max: usize) -> ApiError {
    ApiError::invalid("body", format!("at most {max} rows per upload"))
}

// ---------------------------------------------------------------------------------------
// CSV

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum CsvColumn {
    Key,
    ValidTime,
    Value,
    ValidTimeEnd,
    SeriesId,
    Annotation,
    Tags,
}

const CSV_COLUMNS: &[(&str, CsvColumn)] = &[
    ("value_key", CsvColumn::Key),
    ("series_key", CsvColumn::Key),
    ("valid_time", CsvColumn::ValidTime),
    ("value", CsvColumn::Value),
    ("valid_time_end", CsvColumn::ValidTimeEnd),
    ("series_id", CsvColumn::SeriesId),
    ("annotation", CsvColumn::Annotation),
    ("tags", CsvColumn::Tags),
];

fn malformed_csv(detail: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("MALFORMED_CSV", format!("the request body is not valid CSV: {detail}"))
}

fn csv_error(e: csv::Error) -> ApiError {
    let line = e.position().map(|p| p.line());
    let what = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "is not UTF-8".to_owned(),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("has {len} fields where the header has {expected_len}")
        }
        _ => e.to_string(),
    };
    match line {
        Some(n) => malformed_csv(format!("line {n} {what}")),
        None => malformed_csv(what),
    }
}

/// Where each known column sits in the header.
struct CsvHeader {
    key: usize,
    valid_time: usize,
    value: usize,
    valid_time_end: Option<usize>,
    series_id: Option<usize>,
    annotation: Option<usize>,
    tags: Option<usize>,
}

fn csv_header(header: &csv::StringRecord) -> ApiResult<CsvHeader> {
    let mut found: HashMap<CsvColumn, (usize, &str)> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().trim_start_matches('\u{feff}');
        let Some(&(_, column)) = CSV_COLUMNS.iter().find(|(n, _)| *n == name) else {
            let expected: Vec<&str> = CSV_COLUMNS.iter().map(|(n, _)| *n).collect();
            return Err(ApiError::invalid(
                "line 1",
                format!("unknown column '{name}'; expected some of: {}", expected.join(", ")),
            )
            .with_code("UNKNOWN_COLUMN"));
        };
        if let Some((_, first)) = found.insert(column, (i, name)) {
            return Err(ApiError::invalid("line 1", format!("column '{name}' repeats column '{first}'")));
        }
    }
    let need = |column: CsvColumn, name: &str| {
        found
            .get(&column)
            .map(|&(i, _)| i)
            .ok_or_else(|| ApiError::invalid("line 1", format!("missing column '{name}'")))
    };
    Ok(CsvHeader {
        key: need(CsvColumn::Key, "value_key")?,
        valid_time: need(CsvColumn::ValidTime, "valid_time")?,
        value: need(CsvColumn::Value, "value")?,
        valid_time_end: found.get(&CsvColumn::ValidTimeEnd).map(|&(i, _)| i),
        series_id: found.get(&CsvColumn::SeriesId).map(|&(i, _)| i),
        annotation: found.get(&CsvColumn::Annotation).map(|&(i, _)| i),
        tags: found.get(&CsvColumn::Tags).map(|&(i, _)| i),
    })
}

/// Decode a CSV body into `run`, row by row.
pub fn push_csv(run: &mut NewRun, body: &[u8], max_rows: usize) -> ApiResult<()> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(body);
    let header = reader.headers().map_err(csv_error)?.clone();
    if header.is_empty() || (header.len() == 1 && header[0].trim().is_empty()) {
        return Err(malformed_csv("the body is empty; send a header row, then one row per value"));
    }
    let h = csv_header(&header)?;
    let mut record = csv::StringRecord::new();
    let mut rows = 0usize;
    while reader.read_record(&mut record).map_err(csv_error)? {
        let line = record.position().map_or(0, |p| p.line());
        rows += 1;
        if rows > max_rows {
            return Err(too_many_rows(max_rows));
        }
        push_csv_row(run, &h, &record, line).map_err(|e| ApiError::from(relabel(e, "line")))?;
    }
    Ok(())
}

fn push_csv_row(run: &mut NewRun, h: &CsvHeader, record: &csv::StringRecord, line: u64) -> Result<(), ModelError> {
    let f = |column: &str| at("line", line, column);
    let cell = |i: usize| record.get(i).unwrap_or("").trim();
    // An empty optional cell is an absent field.
    let optional = |i: Option<usize>| i.map(cell).filter(|s| !s.is_empty());
    let value = match cell(h.value) {
        "" => None,
        text => {
            Some(text.parse::<f64>().map_err(|_| ModelError::new(f("value"), format!("'{text}' is not a number")))?)
        }
    };
    let tags = optional(h.tags)
        .map(|t| {
            serde_json::from_str::<Vec<String>>(t)
                .map_err(|_| ModelError::new(f("tags"), "must be a JSON array of strings, e.g. [\"estimated\"]"))
        })
        .transpose()?;
    let input = RowInput {
        key: SeriesKey::parse(&f("value_key"), record.get(h.key).unwrap_or(""))?,
        series_id: optional(h.series_id).map(|s| SeriesId::parse(&f("series_id"), s)).transpose()?,
        valid_time: parse_timestamp(&f("valid_time"), cell(h.valid_time))?,
        valid_time_end: optional(h.valid_time_end).map(|t| parse_timestamp(&f("valid_time_end"), t)).transpose()?,
        value,
        annotation: optional(h.annotation),
        tags: tags.as_deref(),
    };
    run.push(line as usize, input)
}

// ---------------------------------------------------------------------------------------
// Arrow

fn malformed_arrow(detail: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("MALFORMED_ARROW", format!("the request body is not a valid Arrow IPC stream: {detail}"))
}

fn wrong_type(column: &str, expected: &str, got: &DataType) -> ApiError {
    ApiError::invalid(column, format!("must be {expected}, not {got}")).with_code("WRONG_COLUMN_TYPE")
}

const KEY_TYPES: &str = "Utf8, LargeUtf8 or Dictionary<Int32, Utf8>";
const TIME_TYPES: &str = "a Timestamp (any unit, any time zone)";
const VALUE_TYPES: &str = "Float64, Float32 or Int64";

/// Where each column sits in the stream's schema (checked once, before any row).
struct ArrowLayout {
    key: usize,
    valid_time: usize,
    value: usize,
    valid_time_end: Option<usize>,
    series_id: Option<usize>,
}

fn arrow_layout(schema: &Schema) -> ApiResult<ArrowLayout> {
    let mut cols: HashMap<&str, usize> = HashMap::new();
    for (i, field) in schema.fields().iter().enumerate() {
        let name = field.name().as_str();
        let name = if name == "series_key" { "value_key" } else { name };
        let ty = field.data_type();
        match name {
            "value_key" => {
                let ok = match ty {
                    DataType::Utf8 | DataType::LargeUtf8 => true,
                    DataType::Dictionary(k, v) => **k == DataType::Int32 && **v == DataType::Utf8,
                    _ => false,
                };
                if !ok {
                    return Err(wrong_type(field.name(), KEY_TYPES, ty));
                }
            }
            "valid_time" | "valid_time_end" => {
                if !matches!(ty, DataType::Timestamp(..)) {
                    return Err(wrong_type(name, TIME_TYPES, ty));
                }
            }
            "value" => {
                if !matches!(ty, DataType::Float64 | DataType::Float32 | DataType::Int64) {
                    return Err(wrong_type(name, VALUE_TYPES, ty));
                }
            }
            "series_id" => {
                if !matches!(ty, DataType::Utf8 | DataType::LargeUtf8) {
                    return Err(wrong_type(name, "Utf8", ty));
                }
            }
            _ => {
                return Err(ApiError::invalid(
                    field.name(),
                    "unknown column; expected value_key, valid_time, value, valid_time_end, series_id",
                )
                .with_code("UNKNOWN_COLUMN"));
            }
        }
        if cols.insert(name, i).is_some() {
            return Err(ApiError::invalid(field.name(), "the column is given twice"));
        }
    }
    let need =
        |name: &str| cols.get(name).copied().ok_or_else(|| ApiError::invalid(name, "missing column; it is required"));
    Ok(ArrowLayout {
        key: need("value_key")?,
        valid_time: need("valid_time")?,
        value: need("value")?,
        valid_time_end: cols.get("valid_time_end").copied(),
        series_id: cols.get("series_id").copied(),
    })
}

/// A string column of any accepted layout, read row by row.
enum Strings<'a> {
    Utf8(&'a arrow_array::StringArray),
    Large(&'a arrow_array::LargeStringArray),
    Dict(&'a DictionaryArray<Int32Type>, &'a arrow_array::StringArray),
}

impl<'a> Strings<'a> {
    fn of(col: &'a ArrayRef) -> Self {
        match col.data_type() {
            DataType::Utf8 => Strings::Utf8(col.as_string::<i32>()),
            DataType::LargeUtf8 => Strings::Large(col.as_string::<i64>()),
            _ => {
                let dict = col.as_dictionary::<Int32Type>();
                Strings::Dict(dict, dict.values().as_string::<i32>())
            }
        }
    }

    fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Strings::Utf8(a) => a.is_valid(i).then(|| a.value(i)),
            Strings::Large(a) => a.is_valid(i).then(|| a.value(i)),
            Strings::Dict(d, values) => {
                if !d.is_valid(i) {
                    return None;
                }
                let k = d.keys().value(i);
                usize::try_from(k).ok().filter(|&k| values.is_valid(k)).map(|k| values.value(k))
            }
        }
    }
}

/// A timestamp column as microseconds since the epoch (sub-microsecond digits are
/// dropped, as a parsed text timestamp's are). An Arrow timestamp counts from the UTC
/// epoch whatever its time zone, so the zone needs no conversion.
fn micros_at(col: &ArrayRef, i: usize) -> Option<Option<i64>> {
    if col.is_null(i) {
        return Some(None);
    }
    let DataType::Timestamp(unit, _) = col.data_type() else { return None };
    let micros = match unit {
        TimeUnit::Second => col.as_primitive::<TimestampSecondType>().value(i).checked_mul(1_000_000),
        TimeUnit::Millisecond => col.as_primitive::<TimestampMillisecondType>().value(i).checked_mul(1_000),
        TimeUnit::Microsecond => Some(col.as_primitive::<TimestampMicrosecondType>().value(i)),
        TimeUnit::Nanosecond => Some(col.as_primitive::<TimestampNanosecondType>().value(i).div_euclid(1_000)),
    };
    micros.map(Some)
}

fn timestamp_at(col: &ArrayRef, i: usize, field: &str) -> Result<Option<Timestamp>, ModelError> {
    let out_of_range = || ModelError::new(field, "is outside the supported range (years 0001 to 9999)");
    match micros_at(col, i) {
        None => Err(out_of_range()),
        Some(None) => Ok(None),
        Some(Some(us)) => {
            let ts = from_micros(us).ok_or_else(out_of_range)?;
            if ts < min_timestamp() || ts > max_timestamp() { Err(out_of_range()) } else { Ok(Some(ts)) }
        }
    }
}

fn value_at(col: &ArrayRef, i: usize) -> Option<f64> {
    if col.is_null(i) {
        return None;
    }
    Some(match col.data_type() {
        DataType::Float64 => col.as_primitive::<Float64Type>().value(i),
        DataType::Float32 => f64::from(col.as_primitive::<Float32Type>().value(i)),
        _ => col.as_primitive::<Int64Type>().value(i) as f64,
    })
}

fn push_arrow_batch(
    run: &mut NewRun,
    l: &ArrowLayout,
    batch: &RecordBatch,
    first_row: usize,
) -> Result<(), ModelError> {
    let keys = Strings::of(batch.column(l.key));
    let ids = l.series_id.map(|i| Strings::of(batch.column(i)));
    let vt = batch.column(l.valid_time);
    let vte = l.valid_time_end.map(|i| batch.column(i));
    let values = batch.column(l.value);
    for i in 0..batch.num_rows() {
        let row = first_row + i;
        let f = |column: &str| at("row", row as u64, column);
        let key = keys.get(i).ok_or_else(|| ModelError::new(f("value_key"), "must not be null"))?;
        let input = RowInput {
            key: SeriesKey::parse(&f("value_key"), key)?,
            series_id: ids
                .as_ref()
                .and_then(|ids| ids.get(i))
                .filter(|s| !s.is_empty())
                .map(|s| SeriesId::parse(&f("series_id"), s))
                .transpose()?,
            valid_time: timestamp_at(vt, i, &f("valid_time"))?
                .ok_or_else(|| ModelError::new(f("valid_time"), "must not be null"))?,
            valid_time_end: vte.map(|c| timestamp_at(c, i, &f("valid_time_end"))).transpose()?.flatten(),
            value: value_at(values, i),
            annotation: None,
            tags: None,
        };
        run.push(row, input)?;
    }
    Ok(())
}

/// Walk the stream's framing (`[0xFFFFFFFF] <i32 metadata length> <metadata> <body>`,
/// repeated) and refuse any message that declares more metadata or body bytes than the
/// request holds, or a buffer outside its message's body. arrow-ipc's reader trusts
/// these numbers: it allocates a message's declared lengths before reading them (a
/// damaged header of a few bytes asks for gigabytes and aborts the process) and slices
/// buffers without a bounds check (a panic). Found by the property tests of
/// tests/decode_props.rs; see docs/fuzzing.md.
fn check_arrow_framing(mut rest: &[u8]) -> ApiResult<()> {
    let short = || malformed_arrow("a message declares more bytes than the body holds");
    let next_i32 = |rest: &mut &[u8]| -> ApiResult<i32> {
        let (head, tail) = rest.split_first_chunk::<4>().ok_or_else(short)?;
        *rest = tail;
        Ok(i32::from_le_bytes(*head))
    };
    while !rest.is_empty() {
        let mut len = next_i32(&mut rest)?;
        if len == -1 {
            len = next_i32(&mut rest)?;
        }
        if len == 0 {
            return Ok(()); // end-of-stream marker
        }
        let len = usize::try_from(len).ok().filter(|&n| n <= rest.len()).ok_or_else(short)?;
        let (metadata, tail) = rest.split_at(len);
        let message = arrow_ipc::root_as_message(metadata).map_err(malformed_arrow)?;
        let body = usize::try_from(message.bodyLength()).ok().filter(|&n| n <= tail.len()).ok_or_else(short)?;
        let batch = message.header_as_record_batch().or_else(|| message.header_as_dictionary_batch()?.data());
        for buffer in batch.and_then(|b| b.buffers()).iter().flatten() {
            let end = u64::try_from(buffer.offset()).ok().zip(u64::try_from(buffer.length()).ok());
            if end.is_none_or(|(offset, length)| offset.saturating_add(length) > body as u64) {
                return Err(malformed_arrow("a buffer lies outside its message's body"));
            }
        }
        rest = &tail[body..];
    }
    Ok(())
}

/// Decode an Arrow IPC stream body into `run`, batch by batch.
pub fn push_arrow(run: &mut NewRun, body: &[u8], max_rows: usize) -> ApiResult<()> {
    check_arrow_framing(body)?;
    // arrow-ipc (59) still panics on some inconsistent metadata instead of returning an
    // error (a validity bitmap shorter than its column, …). Such a body is the client's
    // mistake, not ours: 400, not 500. `run` is discarded on error, so a half-pushed run
    // is never seen.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| push_arrow_checked(run, body, max_rows)))
        .unwrap_or_else(|_| Err(malformed_arrow("its metadata is inconsistent")))
}

fn push_arrow_checked(run: &mut NewRun, body: &[u8], max_rows: usize) -> ApiResult<()> {
    let reader = arrow_ipc::reader::StreamReader::try_new(body, None).map_err(malformed_arrow)?;
    let layout = arrow_layout(&reader.schema())?;
    let mut rows = 0usize;
    for batch in reader {
        let batch = batch.map_err(malformed_arrow)?;
        if rows + batch.num_rows() > max_rows {
            return Err(too_many_rows(max_rows));
        }
        push_arrow_batch(run, &layout, &batch, rows).map_err(|e| ApiError::from(relabel(e, "row")))?;
        rows += batch.num_rows();
    }
    Ok(())
}

/// The body formats a bulk upload understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkFormat {
    Csv,
    Arrow,
}

impl BulkFormat {
    /// The format of a request media type (lower-cased, without parameters).
    pub fn of_media(media: &str) -> Option<Self> {
        match media {
            CSV => Some(BulkFormat::Csv),
            ARROW_STREAM => Some(BulkFormat::Arrow),
            _ => None,
        }
    }
}

/// Decode a whole bulk body into `run` on the blocking pool.
pub async fn decode(format: BulkFormat, mut run: NewRun, body: bytes::Bytes, max_rows: usize) -> ApiResult<NewRun> {
    tokio::task::spawn_blocking(move || {
        match format {
            BulkFormat::Csv => push_csv(&mut run, &body, max_rows)?,
            BulkFormat::Arrow => push_arrow(&mut run, &body, max_rows)?,
        }
        Ok(run.finish())
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error; it has been logged"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relabel_renames_rows_in_field_and_message() {
        let e = ModelError::new("value_rows[7].valid_time_end", "must be after valid_time");
        let r = relabel(e, "line");
        assert_eq!(r.field, "line 7: valid_time_end");
        let e = ModelError::new("value_rows[9]", "duplicates value_rows[3]: series 'a' appears twice")
            .with_code("DUPLICATE_ROW");
        let r = relabel(e, "row");
        assert_eq!(r.field, "row 9");
        assert_eq!(r.message, "duplicates row 3: series 'a' appears twice");
        assert_eq!(r.code, "DUPLICATE_ROW");
    }
}
