//! `POST /upload` with an Arrow IPC stream body (bulk.rs: `push_arrow`).
//!
//! Half the inputs are raw bytes; the other half are valid streams built from structured
//! rows and then damaged at positions the input chooses, which reaches the schema, batch
//! and row checks that random bytes never do.
//!
//! Invariants: every answer is a 200 receipt or a 4xx `{"detail","code"}`, never a 5xx
//! (`Answer::check`), whatever the bytes; an accepted stream holds exactly
//! `values_written` rows (read back with arrow-rs' own reader).

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use timedb_fuzz::{BULK_QUERY, app, arbitrary_upload};

fn body(data: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = data.split_first()?;
    if mode % 2 == 0 {
        return Some(rest.to_vec());
    }
    let mut u = Unstructured::new(rest);
    let upload = arbitrary_upload(&mut u).ok()?;
    let mut bytes = upload.arrow();
    let edits: Vec<(u16, u8)> = Arbitrary::arbitrary(&mut u).ok()?;
    for (at, byte) in edits {
        if !bytes.is_empty() {
            let i = usize::from(at) % bytes.len();
            bytes[i] = byte;
        }
    }
    Some(bytes)
}

fuzz_target!(|data: &[u8]| {
    let Some(body) = body(data) else { return };
    let answer = app().post(BULK_QUERY, "application/vnd.apache.arrow.stream", body.clone());
    let Some(written) = answer.values_written() else { return };
    let reader = arrow_ipc::reader::StreamReader::try_new(body.as_slice(), None).expect("an accepted stream opens");
    let rows: usize = reader.map(|b| b.expect("an accepted stream's batches read").num_rows()).sum();
    assert_eq!(rows as u64, written, "values_written differs from the rows in the stream");
});
