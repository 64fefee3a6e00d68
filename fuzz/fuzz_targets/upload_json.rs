//! `POST /upload` with a JSON body: the `UploadRequest` extractor and its conversion to a
//! `NewRun` (upload.rs), then the store.
//!
//! Invariants: every answer is a 200 receipt or a 4xx `{"detail","code"}`, never a 5xx
//! (`Answer::check`); an accepted body is a JSON object whose `value_rows` has exactly
//! `values_written` entries and whose trimmed `value_key`s are exactly the receipt's
//! `series_ids` keys.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use timedb_fuzz::app;

fuzz_target!(|data: &[u8]| {
    let answer = app().post("/upload", "application/json", data.to_vec());
    let Some(written) = answer.values_written() else { return };
    let body: Value = serde_json::from_slice(data).expect("an accepted body is JSON");
    let rows = body["value_rows"].as_array().expect("an accepted body has value_rows");
    assert_eq!(rows.len() as u64, written, "values_written differs from the rows sent");
    let keys: BTreeSet<String> = rows.iter().map(|r| r["value_key"].as_str().unwrap().trim().to_owned()).collect();
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), answer.series_keys());
});
