//! The three upload formats against each other and against a model: the same rows sent
//! as JSON, CSV and an Arrow IPC stream must get the same answer, and that answer is the
//! one `Upload::expected` predicts (200 with every row written over the right series, or
//! 422 `INVALID_FIELD`/`DUPLICATE_ROW` naming the first bad row, in each format's own
//! words: `value_rows[3]`, `line 5`, `row 3`). Also: the three receipts map each key to
//! the same series id (one key, one series).

#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use timedb_fuzz::uploads::Expected;
use timedb_fuzz::{BULK_QUERY, app, arbitrary_upload};

fuzz_target!(|data: &[u8]| {
    let Ok(upload) = arbitrary_upload(&mut Unstructured::new(data)) else { return };
    if upload.rows.is_empty() {
        return;
    }
    let app = app();
    let answers = [
        ("json", app.post("/upload", "application/json", upload.json())),
        ("csv", app.post(BULK_QUERY, "text/csv", upload.csv())),
        ("arrow", app.post(BULK_QUERY, "application/vnd.apache.arrow.stream", upload.arrow())),
    ];
    match upload.expected() {
        Expected::Written { values, keys } => {
            for (format, a) in &answers {
                assert_eq!(a.values_written(), Some(values), "{format}: {a:?} for {upload:?}");
                assert_eq!(a.series_keys(), keys, "{format}");
            }
            assert_eq!(answers[0].1.body["series_ids"], answers[1].1.body["series_ids"]);
            assert_eq!(answers[0].1.body["series_ids"], answers[2].1.body["series_ids"]);
        }
        Expected::Refused { code, row } => {
            for ((format, a), name) in
                answers.iter().zip([format!("value_rows[{row}]"), format!("line {}:", row + 2), format!("row {row}:")])
            {
                assert_eq!((a.status, a.code()), (422, code), "{format}: {a:?} for {upload:?}");
                assert!(a.detail().starts_with(&name), "{format}: {:?} should name {name}", a.detail());
            }
        }
    }
});
