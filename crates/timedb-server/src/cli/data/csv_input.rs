//! CSV files as `timedb upload` finds them, turned into the long CSV the server takes
//! (`value_key,valid_time,value[,…]`, one row per value) before anything is sent.
//!
//! Two shapes need work on the client:
//! - a long CSV whose key column has another name (`--series-key-column sensor`): only the
//!   header is rewritten, the rows are sent untouched;
//! - a *wide* CSV, as `DataFrame.to_csv()` writes a frame indexed by time: a `valid_time`
//!   column (and optionally `valid_time_end`) plus one column per series, one row per
//!   instant. Each non-empty cell becomes one long row. The conversion happens here rather
//!   than on the server so the HTTP API keeps one CSV shape, and so errors can name the
//!   line and column of the file the user actually has.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use anyhow::{Context, bail};
use timedb::model::SeriesKey;
use timedb::model::time::{format_timestamp, parse_timestamp, to_micros};

/// Columns that mark a CSV as long (one row per value).
const KEY_COLUMNS: [&str; 2] = ["value_key", "series_key"];

/// Which shape a CSV body has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Long,
    Wide,
}

/// The body's shape: wide when asked (`--wide`), or when the header has a `valid_time`
/// column but neither a key column nor a `value` column (and no key column was named).
/// Anything else is sent as long, and the server names what is missing.
pub fn detect(body: &[u8], wide: bool, series_key_column: Option<&str>) -> anyhow::Result<Shape> {
    if wide {
        if series_key_column.is_some() {
            bail!("--series-key-column applies to long CSV only; a wide CSV names its series in the header");
        }
        return Ok(Shape::Wide);
    }
    if series_key_column.is_some() {
        return Ok(Shape::Long);
    }
    let columns = header(body)?;
    let has = |name: &str| columns.iter().any(|c| c == name);
    Ok(if has("valid_time") && !has("value") && !KEY_COLUMNS.iter().any(|k| has(k)) {
        Shape::Wide
    } else {
        Shape::Long
    })
}

/// The trimmed column names of the header line (a leading byte-order mark dropped).
fn header(body: &[u8]) -> anyhow::Result<Vec<String>> {
    let end = header_end(body);
    let line = std::str::from_utf8(&body[..end]).context("the CSV header is not UTF-8")?;
    let line = line.trim_start_matches('\u{feff}').trim_end_matches(['\r', '\n']);
    Ok(split_header(line))
}

/// A wide CSV as long CSV: `value_key,valid_time,value[,valid_time_end]`, one row per
/// non-empty cell, series in header order within each instant. Returns the body and the
/// number of values.
///
/// An empty cell (or `NaN`, pandas' missing value) is no value at all; the text `null`
/// stores a missing value explicitly, as an empty `value` does in long CSV. Numbers are
/// passed on as written, so they arrive bit for bit.
pub fn wide_to_long(body: &[u8]) -> anyhow::Result<(Vec<u8>, usize)> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(body);
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(&e))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
        .collect();
    let position = |name: &str| names.iter().position(|c| c == name);
    let Some(time_column) = position("valid_time") else {
        bail!(
            "a wide CSV needs a valid_time column, then one column per series (columns: {}); \
             in pandas, name the index: df.rename_axis(\"valid_time\").to_csv(…)",
            names.join(", ")
        );
    };
    let end_column = position("valid_time_end");
    let mut series: Vec<(usize, SeriesKey)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if i == time_column || Some(i) == end_column {
            continue;
        }
        let key = SeriesKey::parse("", name).map_err(|e| {
            anyhow::anyhow!(
                "line 1, column {}: a series name {} (the header names one series per column)",
                i + 1,
                e.message
            )
        })?;
        if let Some((first, _)) = series.iter().find(|(_, k)| *k == key) {
            bail!("line 1: series '{key}' has two columns ({} and {})", first + 1, i + 1);
        }
        series.push((i, key));
    }
    if series.is_empty() {
        bail!("the wide CSV has no series columns: add one column per series after valid_time");
    }

    let mut out = csv::Writer::from_writer(Vec::with_capacity(body.len() * 2));
    let mut head = vec!["value_key", "valid_time", "value"];
    if end_column.is_some() {
        head.push("valid_time_end");
    }
    out.write_record(&head)?;
    let mut seen: HashMap<(i64, Option<i64>), u64> = HashMap::new();
    let mut values = 0usize;
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(|e| csv_error(&e))? {
        let line = record.position().map_or(0, |p| p.line());
        let cell = |i: usize| record.get(i).unwrap_or("").trim();
        let at = |column: &str, text: &str| {
            parse_timestamp(column, text).map_err(|e| anyhow::anyhow!("line {line}, column {column}: {}", e.message))
        };
        let valid_time = at("valid_time", cell(time_column))?;
        let valid_time_end = match end_column.map(cell) {
            None | Some("") => None,
            Some(text) => Some(at("valid_time_end", text)?),
        };
        // Two lines for one instant would become duplicate rows the server refuses,
        // under line numbers of the long body; say it here, in the file's own terms.
        match seen.entry((to_micros(valid_time), valid_time_end.map(to_micros))) {
            Entry::Occupied(first) => {
                bail!("line {line}: valid_time {} repeats line {}", format_timestamp(valid_time), first.get())
            }
            Entry::Vacant(slot) => {
                slot.insert(line);
            }
        }
        let time_text = format_timestamp(valid_time);
        let end_text = valid_time_end.map(format_timestamp).unwrap_or_default();
        for (i, key) in &series {
            let text = cell(*i);
            let value = match text {
                "" => continue,
                "null" | "NULL" => "",
                _ => match text.parse::<f64>() {
                    Ok(v) if v.is_nan() => continue,
                    Ok(v) if v.is_finite() => text,
                    _ => bail!(
                        "line {line}, column '{key}': '{text}' is not a finite number (leave the cell empty for no value)"
                    ),
                },
            };
            if end_column.is_some() {
                out.write_record([key.as_str(), &time_text, value, &end_text])?;
            } else {
                out.write_record([key.as_str(), &time_text, value])?;
            }
            values += 1;
        }
    }
    let body = out.into_inner().map_err(|e| anyhow::anyhow!("cannot build the upload: {}", e.error()))?;
    Ok((body, values))
}

fn csv_error(e: &csv::Error) -> anyhow::Error {
    let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => anyhow::anyhow!("{line}the CSV is not UTF-8"),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            anyhow::anyhow!("{line}{len} fields where the header has {expected_len}")
        }
        _ => anyhow::anyhow!("{line}the CSV is malformed: {e}"),
    }
}

/// The CSV `body` with its header column `from` renamed to `to`; the rows are untouched.
pub fn rename_column(body: Vec<u8>, from: &str, to: &str) -> anyhow::Result<Vec<u8>> {
    let end = header_end(&body);
    let mut fields = header(&body)?;
    if fields.iter().any(|f| f == to) {
        bail!("the CSV already has a {to} column; drop --series-key-column");
    }
    let Some(field) = fields.iter_mut().find(|f| f.as_str() == from) else {
        bail!("the CSV header has no column {from:?} (columns: {})", fields.join(", "));
    };
    *field = to.to_owned();
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| if f.contains([',', '"', '\n', '\r']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f.clone() })
        .collect();
    let mut out = Vec::with_capacity(body.len() + to.len());
    out.extend_from_slice(quoted.join(",").as_bytes());
    out.extend_from_slice(b"\n");
    out.extend_from_slice(&body[end..]);
    Ok(out)
}

/// The length of the header line, its line break included (a quoted field may hold one).
fn header_end(body: &[u8]) -> usize {
    let mut quoted = false;
    for (i, &b) in body.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => return i + 1,
            _ => {}
        }
    }
    body.len()
}

/// The fields of a CSV header line (RFC 4180 quoting).
fn split_header(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("never empty");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => field.push(c),
        }
    }
    fields.into_iter().map(|f| f.trim().to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renaming_the_key_column_touches_only_the_header() {
        let csv = b"\"sensor\",valid_time,value\r\na,2025-01-01T00:00:00Z,1\n".to_vec();
        let out = rename_column(csv, "sensor", "value_key").unwrap();
        assert_eq!(out, b"value_key,valid_time,value\na,2025-01-01T00:00:00Z,1\n");
        let err = rename_column(b"a,b\n1,2\n".to_vec(), "sensor", "value_key").unwrap_err();
        assert!(err.to_string().contains("no column \"sensor\""), "{err}");
    }

    #[test]
    fn the_shape_is_detected_from_the_header() {
        let shape = |csv: &str| detect(csv.as_bytes(), false, None).unwrap();
        assert_eq!(shape("valid_time,wind,solar\n"), Shape::Wide);
        assert_eq!(shape("\u{feff}valid_time,\"wind, north\"\n"), Shape::Wide);
        assert_eq!(shape("value_key,valid_time,value\n"), Shape::Long);
        assert_eq!(shape("series_key,valid_time,value\n"), Shape::Long);
        // A long CSV missing its key column stays long: the server names the missing column.
        assert_eq!(shape("valid_time,value\n"), Shape::Long);
        assert_eq!(shape("time,wind\n"), Shape::Long);
        assert_eq!(detect(b"sensor,valid_time,value\n", false, Some("sensor")).unwrap(), Shape::Long);
        assert_eq!(detect(b"time,wind\n", true, None).unwrap(), Shape::Wide);
        assert!(detect(b"time,wind\n", true, Some("x")).is_err());
    }

    #[test]
    fn wide_rows_become_one_long_row_per_cell() {
        let wide = "valid_time,wind,\"solar, roof\"\n\
                    2025-01-01T00:00:00Z,1.5,0.1\n\
                    2025-01-01 01:00,,2e-3\n\
                    2025-01-01T03:00:00+01:00,NaN,null\n";
        let (long, n) = wide_to_long(wide.as_bytes()).unwrap();
        assert_eq!(n, 4);
        assert_eq!(
            String::from_utf8(long).unwrap(),
            "value_key,valid_time,value\n\
             wind,2025-01-01T00:00:00+00:00,1.5\n\
             \"solar, roof\",2025-01-01T00:00:00+00:00,0.1\n\
             \"solar, roof\",2025-01-01T01:00:00+00:00,2e-3\n\
             \"solar, roof\",2025-01-01T02:00:00+00:00,\n"
        );
        let (long, _) = wide_to_long(b"valid_time,valid_time_end,load\n2025-01-01,2025-01-02,7\n").unwrap();
        assert_eq!(
            String::from_utf8(long).unwrap(),
            "value_key,valid_time,value,valid_time_end\nload,2025-01-01T00:00:00+00:00,7,2025-01-02T00:00:00+00:00\n"
        );
    }

    #[test]
    fn wide_errors_name_the_line_and_column() {
        let err = |csv: &str| wide_to_long(csv.as_bytes()).unwrap_err().to_string();
        assert!(err("time,wind\n").contains("needs a valid_time column"));
        assert!(err("valid_time\n").contains("no series columns"));
        assert!(err("valid_time,wind,wind\n").contains("two columns (2 and 3)"));
        assert!(err("valid_time,,wind\n").starts_with("line 1, column 2:"), "{}", err("valid_time,,wind\n"));
        let e = err("valid_time,wind\n2025-01-01,1\n2025-01-02,abc\n");
        assert!(e.starts_with("line 3, column 'wind': 'abc' is not a finite number"), "{e}");
        assert!(err("valid_time,wind\nyesterday,1\n").starts_with("line 2, column valid_time:"));
        let e = err("valid_time,wind\n2025-01-01,1\n2025-01-01T00:00:00Z,2\n");
        assert!(e.contains("line 3: valid_time 2025-01-01T00:00:00+00:00 repeats line 2"), "{e}");
        assert!(err("valid_time,wind\n2025-01-01,1,2\n").starts_with("line 2: 3 fields"));
    }
}
