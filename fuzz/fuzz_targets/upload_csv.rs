//! `POST /upload` with a CSV body (bulk.rs: `push_csv`).
//!
//! Invariants: every answer is a 200 receipt or a 4xx `{"detail","code"}`, never a 5xx
//! (`Answer::check`); an accepted body has exactly `values_written` records after its
//! header, and their trimmed keys are exactly the receipt's `series_ids` keys; a refused
//! row is named by a line that exists in the body.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use timedb_fuzz::{BULK_QUERY, app};

/// The header the input may ask for, so the fuzzer starts past the header checks.
const HEADER: &[u8] = b"value_key,valid_time,value,valid_time_end,annotation,tags,series_id\n";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let body = if mode % 2 == 0 { rest.to_vec() } else { [HEADER, rest].concat() };
    let answer = app().post(BULK_QUERY, "text/csv", body.clone());
    let lines = body.iter().filter(|&&b| b == b'\n').count() + 1;
    if let Some(at) = answer.detail().strip_prefix("line ") {
        let n: usize = at.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
        assert!((1..=lines).contains(&n), "line {n} named in a body of {lines} lines: {}", answer.detail());
    }
    let Some(written) = answer.values_written() else { return };
    let mut reader = csv::Reader::from_reader(body.as_slice());
    let header = reader.headers().unwrap().clone();
    let key_at = header
        .iter()
        .position(|h| matches!(h.trim().trim_start_matches('\u{feff}'), "value_key" | "series_key"))
        .expect("an accepted body has a key column");
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("an accepted body is valid CSV")).collect();
    assert_eq!(records.len() as u64, written, "values_written differs from the records sent");
    let keys: BTreeSet<String> = records.iter().map(|r| r[key_at].trim().to_owned()).collect();
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), answer.series_keys());
});
