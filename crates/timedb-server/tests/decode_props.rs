//! Random input for every decoder of untrusted text, on every run of the suite: the
//! bounded, CI-sized counterpart of the `cargo fuzz` targets in `fuzz/` (docs/fuzzing.md).
//!
//! The models and encoders are the fuzz targets' own (`fuzz/src/uploads.rs`,
//! `fuzz/src/key_model.rs`, included by path), so both suites hold the code to the same
//! rules:
//! - key parsing agrees with an independent model of the key format, and accepted keys
//!   re-serialise exactly;
//! - an accepted timestamp formats and re-parses to the same instant;
//! - an upload body of any kind (JSON, CSV, Arrow IPC; random, structured, or valid and
//!   then damaged) gets a 200 receipt or a 4xx `{"detail","code"}`, never a 5xx, and an
//!   accepted body wrote exactly the rows it holds;
//! - the same rows as JSON, CSV and Arrow get the same answer, the one the model predicts.
//!
//! Each property runs 128 cases per store (`PROPTEST_CASES` overrides), through the real
//! server on loopback.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};
use timedb::model::time::{format_timestamp, max_timestamp, min_timestamp, parse_timestamp};
use timedb::testing::Backend;

mod common;

#[allow(dead_code)]
#[path = "../../../fuzz/src/uploads.rs"]
mod uploads;

#[allow(dead_code)]
#[path = "../../../fuzz/src/key_model.rs"]
mod key_model;

use common::{TestApp, spawn_app};
use uploads::{Answer, BULK_QUERY, Expected, Row, Spelling, Upload};

const ARROW: &str = "application/vnd.apache.arrow.stream";

/// A server for one property: its own runtime (the properties are synchronous) and a
/// fresh store. Field order matters: the app is dropped while the runtime still runs.
struct Harness {
    app: TestApp,
    runtime: tokio::runtime::Runtime,
}

impl Harness {
    fn new(backend: Backend) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let app = runtime.block_on(spawn_app(backend));
        Self { app, runtime }
    }

    /// POST a body; the answer, checked against the contract every answer keeps.
    fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let (status, body) = self.runtime.block_on(self.app.send_raw(Method::POST, path, Some(content_type), body));
        let answer = Answer { status: status.as_u16(), body };
        answer.check();
        answer
    }

    /// Run `property` over `strategy`, panicking with the smallest failing input.
    fn run<S: Strategy>(&self, strategy: S, property: impl Fn(&Self, S::Value)) {
        let config =
            if std::env::var_os("PROPTEST_CASES").is_some() { Config::default() } else { Config::with_cases(128) };
        let mut runner = TestRunner::new(Config { failure_persistence: None, ..config });
        let outcome = runner.run(&strategy, |input| {
            property(self, input);
            Ok(())
        });
        if let Err(e) = outcome {
            panic!("{e}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Strategies

fn row() -> impl Strategy<Value = Row> {
    let end = prop_oneof![6 => Just(None), 1 => Just(Some(0u8)), 6 => (1u8..).prop_map(Some)];
    let value = prop_oneof![1 => Just(None), 8 => any::<f64>().prop_map(Some)];
    // A narrow range of seconds, so duplicates happen.
    (any::<u8>(), 0u16..90, end, value).prop_map(|(key, second, end, value)| Row { key, second, end, value })
}

fn upload() -> impl Strategy<Value = Upload> {
    let spelling = (any::<i16>(), any::<bool>(), any::<bool>(), any::<u8>(), any::<bool>(), any::<u8>()).prop_map(
        |(offset_minutes, zulu, space, unit, zone, key_type)| Spelling {
            offset_minutes,
            zulu,
            space,
            unit,
            zone,
            key_type,
        },
    );
    (prop::collection::vec(row(), 1..40), spelling, 1u8..16).prop_map(|(rows, spelling, batch)| Upload {
        rows,
        spelling,
        batch,
    })
}

/// Text cells and JSON strings a client might send, good and bad.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("a".to_owned()),
        Just(" padded ".to_owned()),
        Just("2025-01-01T00:00:00Z".to_owned()),
        Just("2025-01-01 01:00:00 01:00".to_owned()),
        Just("0000-12-31T23:59:59Z".to_owned()),
        Just("10000-01-01T00:00:00Z".to_owned()),
        Just("soon".to_owned()),
        Just("1.5".to_owned()),
        Just("NaN".to_owned()),
        Just("-inf".to_owned()),
        Just("1e400".to_owned()),
        Just("[\"estimated\"]".to_owned()),
        Just("[1, 2]".to_owned()),
        Just("00000000-0000-4000-8000-000000000000".to_owned()),
        Just("nul\u{0}byte".to_owned()),
        Just("ünï ☃".to_owned()),
        Just("x".repeat(300)),
        "\\PC{0,12}",
    ]
}

/// Field names of the upload body, so random JSON often has the right shape.
fn field() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "workflow_id",
        "run_start_time",
        "run_finish_time",
        "known_time",
        "run_params",
        "value_rows",
        "series_descriptions",
        "tenant_id",
        "valid_time",
        "valid_time_end",
        "value_key",
        "value",
        "series_id",
        "annotation",
        "tags",
        "description",
        "unit",
        "labels",
        "surprise",
    ])
    .prop_map(str::to_owned)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(field(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON body: random bytes, random JSON, or a valid upload with one field replaced.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        (upload(), any::<bool>(), field(), json_value()).prop_map(|(u, in_row, name, replacement)| {
            let mut body: Value = serde_json::from_slice(&u.json()).unwrap();
            let target = if in_row { &mut body["value_rows"][0] } else { &mut body };
            target[name.as_str()] = replacement;
            serde_json::to_vec(&body).unwrap()
        }),
    ]
}

/// A CSV body: a header of known (and unknown) columns, then rows of any width.
fn csv_body() -> impl Strategy<Value = Vec<u8>> {
    let header = prop::collection::vec(
        prop::sample::select(vec![
            "value_key",
            "series_key",
            "valid_time",
            "value",
            "valid_time_end",
            "series_id",
            "annotation",
            "tags",
            "extra",
        ]),
        0..6,
    );
    let required = any::<bool>();
    let rows = prop::collection::vec(prop::collection::vec(text(), 0..6), 0..12);
    (required, header, rows, any::<bool>()).prop_map(|(required, mut header, rows, crlf)| {
        if required {
            header.splice(0..0, ["value_key", "valid_time", "value"]);
        }
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
            .from_writer(Vec::new());
        w.write_record(&header).unwrap();
        for r in rows {
            w.write_record(&r).unwrap();
        }
        w.into_inner().unwrap()
    })
}

/// An Arrow body: random bytes, or a valid stream with some bytes overwritten.
fn arrow_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        (upload(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)).prop_map(|(u, edits)| {
            let mut bytes = u.arrow();
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            bytes
        }),
    ]
}

// ---------------------------------------------------------------------------------------
// Properties

mod props {
    use super::*;

    pub fn json_uploads_never_fail_the_server(backend: Backend) {
        let h = Harness::new(backend);
        h.run(json_body(), |h, body| {
            let answer = h.post("/upload", "application/json", body.clone());
            if let Some(written) = answer.values_written() {
                let body: Value = serde_json::from_slice(&body).unwrap();
                let rows = body["value_rows"].as_array().unwrap();
                assert_eq!(rows.len() as u64, written);
                let keys: BTreeSet<String> =
                    rows.iter().map(|r| r["value_key"].as_str().unwrap().trim().to_owned()).collect();
                assert_eq!(keys.into_iter().collect::<Vec<_>>(), answer.series_keys());
            }
        });
    }

    pub fn csv_uploads_never_fail_the_server(backend: Backend) {
        let h = Harness::new(backend);
        h.run(csv_body(), |h, body| {
            let answer = h.post(BULK_QUERY, "text/csv", body.clone());
            if let Some(written) = answer.values_written() {
                let records = csv::Reader::from_reader(body.as_slice()).records().count();
                assert_eq!(records as u64, written);
            }
        });
    }

    pub fn arrow_uploads_never_fail_the_server(backend: Backend) {
        let h = Harness::new(backend);
        h.run(arrow_body(), |h, body| {
            let answer = h.post(BULK_QUERY, ARROW, body.clone());
            if let Some(written) = answer.values_written() {
                let reader = arrow_ipc::reader::StreamReader::try_new(body.as_slice(), None).unwrap();
                let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
                assert_eq!(rows as u64, written);
            }
        });
    }

    pub fn the_three_formats_agree_with_the_model(backend: Backend) {
        let h = Harness::new(backend);
        h.run(upload(), |h, upload| {
            let answers = [
                ("json", h.post("/upload", "application/json", upload.json())),
                ("csv", h.post(BULK_QUERY, "text/csv", upload.csv())),
                ("arrow", h.post(BULK_QUERY, ARROW, upload.arrow())),
            ];
            match upload.expected() {
                Expected::Written { values, keys } => {
                    for (format, a) in &answers {
                        assert_eq!(a.values_written(), Some(values), "{format}: {a:?}");
                        assert_eq!(a.series_keys(), keys, "{format}");
                    }
                    assert_eq!(answers[0].1.body["series_ids"], answers[1].1.body["series_ids"]);
                    assert_eq!(answers[0].1.body["series_ids"], answers[2].1.body["series_ids"]);
                }
                Expected::Refused { code, row } => {
                    let names = [format!("value_rows[{row}]"), format!("line {}:", row + 2), format!("row {row}:")];
                    for ((format, a), name) in answers.iter().zip(names) {
                        assert_eq!((a.status, a.code()), (422, code), "{format}: {a:?}");
                        assert!(a.detail().starts_with(&name), "{format}: {:?} should name {name}", a.detail());
                    }
                }
            }
        });
    }
}

macro_rules! per_store {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $case() { super::props::$case(timedb::testing::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $case() { super::props::$case(timedb::testing::Backend::Postgres) } )*
        }
    };
}

per_store!(
    json_uploads_never_fail_the_server,
    csv_uploads_never_fail_the_server,
    arrow_uploads_never_fail_the_server,
    the_three_formats_agree_with_the_model,
);

// ---------------------------------------------------------------------------------------
// Parsers without a server

proptest! {
    #![proptest_config(Config { cases: 512, failure_persistence: None, ..Config::default() })]

    #[test]
    fn any_text_parses_as_a_key_exactly_when_the_model_says(format in 0usize..3, text in "\\PC{0,60}") {
        key_model::check(&key_model::formats()[format], &text);
    }

    #[test]
    fn well_shaped_keys_parse_exactly_when_the_model_says(
        format in 0usize..3,
        prefix in prop::sample::select(vec!["tdb", "acme9", "x"]),
        env in prop::sample::select(vec![None, Some("live"), Some("test"), Some("staging")]),
        token in prop::collection::vec(any::<u8>(), 40),
        crc in prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 6)),
    ) {
        let key = key_model::shaped_key(prefix, env, &token, crc.as_deref());
        key_model::check(&key_model::formats()[format], &key);
    }

    #[test]
    fn an_accepted_timestamp_formats_and_reparses_to_itself(
        text in "[ ]?[0-9]{4}-[01][0-9]-[0-3][0-9]([T ][0-2][0-9]:[0-5][0-9](:[0-6][0-9](\\.[0-9]{0,12})?)?)?([Zz]|[+ -][0-2][0-9]:[0-5][0-9])?[ ]?"
    ) {
        if let Ok(ts) = parse_timestamp("t", &text) {
            prop_assert!(ts >= min_timestamp() && ts <= max_timestamp());
            prop_assert_eq!(ts.timestamp_subsec_nanos() % 1_000, 0);
            prop_assert_eq!(parse_timestamp("t", &format_timestamp(ts)).ok(), Some(ts));
        }
    }
}
