//! Black-box tests of the bulk wire formats: CSV and Arrow IPC upload bodies, and
//! `format=arrow` reads, each compared with the JSON form of the same data, on every
//! backend.

mod common;

use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringDictionaryBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{
    ArrayRef, Float32Array, RecordBatch, StringArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray,
};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use timedb::model::time::{format_timestamp, from_micros};
use timedb::testing::Backend;

use common::{TestApp, assert_error, spawn_app};

const ARROW: &str = "application/vnd.apache.arrow.stream";

/// POST a body of `content_type` to `path` (query string included).
async fn post(app: &TestApp, path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> (StatusCode, Value) {
    app.send_raw(Method::POST, path, Some(content_type), body.into()).await
}

/// An Arrow IPC stream holding `batches`.
fn ipc(batches: &[RecordBatch]) -> Vec<u8> {
    let mut w = StreamWriter::try_new(Vec::new(), &batches[0].schema()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    w.into_inner().unwrap()
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, a)| a).collect()).unwrap()
}

/// GET a read as Arrow: the response's content type and its record batches.
async fn read_arrow(app: &TestApp, query: &str, accept: Option<&str>) -> (String, Vec<RecordBatch>) {
    let mut req = app.request(Method::GET, &format!("/values?{query}"));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    let bytes = r.bytes().await.unwrap();
    let reader = StreamReader::try_new(&bytes[..], None).unwrap();
    let batches = reader.collect::<Result<Vec<_>, _>>().unwrap();
    (ct, batches)
}

/// Arrow rows in the JSON read's shape: timestamps as the server writes them, `tags`
/// parsed from its JSON text.
fn arrow_as_json(batches: &[RecordBatch]) -> Vec<Value> {
    let mut rows = Vec::new();
    for b in batches {
        let schema = b.schema();
        for i in 0..b.num_rows() {
            let mut row = serde_json::Map::new();
            for (f, col) in schema.fields().iter().zip(b.columns()) {
                let v = if col.is_null(i) {
                    Value::Null
                } else {
                    match f.data_type() {
                        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if &**tz == "+00:00" => {
                            let us = col.as_primitive::<TimestampMicrosecondType>().value(i);
                            json!(format_timestamp(from_micros(us).unwrap()))
                        }
                        DataType::Utf8 if f.name() == "tags" => {
                            serde_json::from_str(col.as_string::<i32>().value(i)).unwrap()
                        }
                        DataType::Utf8 => json!(col.as_string::<i32>().value(i)),
                        DataType::Float64 => json!(col.as_primitive::<Float64Type>().value(i)),
                        DataType::Int64 => json!(col.as_primitive::<Int64Type>().value(i)),
                        DataType::Boolean => json!(col.as_boolean().value(i)),
                        other => panic!("unexpected column type {other} for {}", f.name()),
                    }
                };
                row.insert(f.name().clone(), v);
            }
            rows.push(Value::Object(row));
        }
    }
    rows
}

/// A read's rows without the fields a store assigns (ids, change times), for comparing
/// the same data written two ways.
fn without_ids(rows: Vec<Value>) -> Vec<Value> {
    rows.into_iter()
        .map(|mut r| {
            let o = r.as_object_mut().unwrap();
            for k in ["series_id", "run_id", "value_id", "change_time"] {
                o.remove(k);
            }
            r
        })
        .collect()
}

/// A CSV body exercising quoting, CRLF, an interval, a null, annotation and tags.
const CSV_BODY: &str = "series_key,valid_time,value,valid_time_end,annotation,tags\r\n\
    wind,2025-01-02T00:00:00Z,1.5,,,\r\n\
    \"a,b \"\"quoted\"\"\",2025-01-02 01:00:00,,,\"two\nlines\",\"[\"\"estimated\"\"]\"\r\n\
    wind,2025-01-02T01:00:00+01:00,-2,2025-01-02T06:00:00Z,,\r\n";

/// The same rows as a JSON upload.
fn json_twin() -> Value {
    json!({
        "run_start_time": "2025-01-01T00:00:00Z",
        "known_time": "2025-01-01T06:00:00Z",
        "workflow_id": "bulk",
        "value_rows": [
            {"value_key": "wind", "valid_time": "2025-01-02T00:00:00Z", "value": 1.5},
            {"value_key": "a,b \"quoted\"", "valid_time": "2025-01-02T01:00:00Z", "value": null,
             "annotation": "two\nlines", "tags": ["estimated"]},
            {"value_key": "wind", "valid_time": "2025-01-02T00:00:00Z", "value": -2.0,
             "valid_time_end": "2025-01-02T06:00:00Z"},
        ]
    })
}

const RUN_QUERY: &str = "run_start_time=2025-01-01T00:00:00Z&known_time=2025-01-01T06:00:00Z&workflow_id=bulk";

/// Two overlapping runs and one correction (with annotation and tags), so flat,
/// overlapping and all_versions reads all differ.
async fn history(app: &TestApp) {
    app.upload(
        "2025-01-01T00:00:00Z",
        &[("wind", "2025-01-02T00:00:00Z", 1.0), ("solar", "2025-01-02T00:00:00Z", 2.0)],
    )
    .await;
    let second = app
        .upload("2025-01-01T06:00:00Z", &[("wind", "2025-01-02T00:00:00Z", 3.0), ("wind", "2025-01-02T01:00:00Z", 4.0)])
        .await;
    let (status, body) = app
        .put_json(
            "/values",
            &json!({"updates": [{
                "run_id": second["run_id"], "series_id": second["series_ids"]["wind"],
                "valid_time": "2025-01-02T01:00:00Z", "value": 4.5, "annotation": "checked", "tags": ["manual"]
            }], "changed_by": "tester"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

mod cases {
    use super::*;

    pub async fn csv_upload_round_trips(b: Backend) {
        let app = spawn_app(b).await;
        let (status, body) = post(&app, &format!("/upload?{RUN_QUERY}"), "text/csv; charset=utf-8", CSV_BODY).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "Run created successfully");
        assert_eq!(body["values_written"], 3);
        assert_eq!(body["known_time"], "2025-01-01T06:00:00+00:00");
        assert!(body["series_ids"]["wind"].is_string() && body["series_ids"]["a,b \"quoted\""].is_string());
        let run = app.get_json(&format!("/runs/{}", body["run_id"].as_str().unwrap())).await.1;
        assert_eq!(run["workflow_id"], "bulk", "{run}");

        // The same rows uploaded as JSON to another store read back identically.
        let twin = spawn_app(b).await;
        let (status, body) = twin.post_json("/upload", &json_twin()).await;
        assert_eq!(status, 200, "{body}");
        let q = "mode=overlapping&all_versions=true";
        let got = without_ids(app.values(q).await);
        assert_eq!(got, without_ids(twin.values(q).await));
        assert_eq!(got.len(), 3);
        let quoted = got.iter().find(|r| r["series_key"] == "a,b \"quoted\"").unwrap();
        assert_eq!(quoted["valid_time"], "2025-01-02T01:00:00+00:00");
        assert_eq!(quoted["annotation"], "two\nlines");
        assert_eq!(quoted["tags"], json!(["estimated"]));
        assert_eq!(quoted["value"], Value::Null);
        assert!(got.iter().any(|r| r["valid_time_end"] == "2025-01-02T06:00:00+00:00" && r["value"] == json!(-2.0)));

        // POST /runs takes the same body.
        let (status, body) = post(&app, "/runs?known_time=2025-01-03T00:00:00Z", "text/csv", CSV_BODY).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["known_time"], "2025-01-03T00:00:00+00:00");
    }

    pub async fn csv_errors_name_the_line_and_write_nothing(b: Backend) {
        let app = spawn_app(b).await;
        let up = |body: &'static str| {
            let app = &app;
            async move { post(app, "/upload", "text/csv", body).await }
        };
        assert_error(up("value_key,valid_time\nx,2025-01-01\n").await, 422, "INVALID_FIELD", "missing column 'value'");
        assert_error(
            up("value_key,valid_time,value,colour\nx,2025-01-01,1,red\n").await,
            422,
            "UNKNOWN_COLUMN",
            "unknown column 'colour'",
        );
        // A quoted line break makes line numbers differ from record numbers: the bad row
        // starts on line 4.
        assert_error(
            up("value_key,valid_time,value,annotation\nx,2025-01-01,1,\"a\nb\"\nx,yesterday,2,\n").await,
            422,
            "INVALID_FIELD",
            "line 4: valid_time: 'yesterday' is not a valid timestamp",
        );
        assert_error(
            up("value_key,valid_time,value\nx,2025-01-01,1\ny,2025-01-01,2\nx,2025-01-01T00:00:00Z,3\n").await,
            422,
            "DUPLICATE_ROW",
            "line 4: duplicates line 2",
        );
        assert_error(up("value_key,valid_time,value\nx,2025-01-01,abc\n").await, 422, "INVALID_FIELD", "line 2: value");
        assert_error(
            up("value_key,valid_time,value,tags\nx,2025-01-01,1,estimated\n").await,
            422,
            "INVALID_FIELD",
            "line 2: tags",
        );
        assert_error(up("value_key,valid_time,value\nx,2025-01-01\n").await, 400, "MALFORMED_CSV", "line 2");
        assert_error(up("").await, 400, "MALFORMED_CSV", "empty");
        assert_error(
            post(&app, "/upload?colour=red", "text/csv", "value_key,valid_time,value\nx,2025-01-01,1\n").await,
            422,
            "UNKNOWN_PARAMETER",
            "colour",
        );
        // Nothing was written by any of them.
        assert!(app.values("all_versions=true").await.is_empty());
        assert_eq!(app.get_json("/runs").await.1.as_array().map_or(0, Vec::len), 0);
    }

    pub async fn arrow_upload_round_trips(b: Backend) {
        let app = spawn_app(b).await;
        // Dictionary keys, millisecond times in a non-UTC zone, nullable Float64.
        let mut keys = StringDictionaryBuilder::<Int32Type>::new();
        let mut values = Float64Builder::new();
        for (k, v) in [("wind", Some(1.5)), ("solar", None)] {
            keys.append_value(k);
            values.append_option(v);
        }
        let first = batch(vec![
            ("value_key", Arc::new(keys.finish()) as ArrayRef),
            (
                "valid_time",
                Arc::new(
                    TimestampMillisecondArray::from(vec![1_735_776_000_000, 1_735_779_600_123])
                        .with_timezone("Europe/Oslo"),
                ),
            ),
            ("value", Arc::new(values.finish())),
        ]);
        let mut keys = StringDictionaryBuilder::<Int32Type>::new();
        keys.append_value("wind");
        let second = batch(vec![
            ("value_key", Arc::new(keys.finish()) as ArrayRef),
            (
                "valid_time",
                Arc::new(TimestampMillisecondArray::from(vec![1_735_779_600_000]).with_timezone("Europe/Oslo")),
            ),
            ("value", Arc::new(Float64Builder::new().finish_with(&[Some(7.0)]))),
        ]);
        let (status, body) = post(&app, &format!("/upload?{RUN_QUERY}"), ARROW, ipc(&[first, second])).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["values_written"], 3);
        let rows = app.values("").await;
        let got: Vec<(String, String, Value)> = rows
            .iter()
            .map(|r| {
                (
                    r["valid_time"].as_str().unwrap().to_owned(),
                    r["series_key"].as_str().unwrap().to_owned(),
                    r["value"].clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("2025-01-02T00:00:00+00:00".to_owned(), "wind".to_owned(), json!(1.5)),
                ("2025-01-02T01:00:00+00:00".to_owned(), "wind".to_owned(), json!(7.0)),
                ("2025-01-02T01:00:00.123+00:00".to_owned(), "solar".to_owned(), Value::Null),
            ]
        );
        assert!(rows.iter().all(|r| r["known_time"].is_null()), "flat reads show no known_time");

        // Other accepted types: Utf8 keys, second / nanosecond times, Float32 values,
        // an interval end and a pinned series_id.
        let wind_id = body["series_ids"]["wind"].as_str().unwrap().to_owned();
        let third = batch(vec![
            ("value_key", Arc::new(StringArray::from(vec!["wind"])) as ArrayRef),
            ("valid_time", Arc::new(TimestampSecondArray::from(vec![1_735_862_400]))),
            ("valid_time_end", Arc::new(TimestampNanosecondArray::from(vec![1_735_866_000_000_001_999]))),
            ("value", Arc::new(Float32Array::from(vec![0.5]))),
            ("series_id", Arc::new(StringArray::from(vec![wind_id.as_str()]))),
        ]);
        let (status, body) = post(&app, "/upload", ARROW, ipc(&[third])).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["series_ids"]["wind"], json!(wind_id));
        let rows = app.values("start_valid=2025-01-03T00:00:00Z").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["valid_time_end"], "2025-01-03T01:00:00.000001+00:00");
        assert_eq!(rows[0]["value"], json!(0.5));
    }

    pub async fn arrow_errors_name_the_column_and_write_nothing(b: Backend) {
        let app = spawn_app(b).await;
        let keys = || Arc::new(StringArray::from(vec!["x", "x"])) as ArrayRef;
        let times = || Arc::new(TimestampSecondArray::from(vec![0, 3600])) as ArrayRef;
        let wrong_value = batch(vec![
            ("value_key", keys()),
            ("valid_time", times()),
            ("value", Arc::new(StringArray::from(vec!["1", "2"]))),
        ]);
        assert_error(
            post(&app, "/upload", ARROW, ipc(&[wrong_value])).await,
            422,
            "WRONG_COLUMN_TYPE",
            "value: must be",
        );
        let wrong_time = batch(vec![
            ("value_key", keys()),
            ("valid_time", Arc::new(arrow_array::Int64Array::from(vec![0, 1]))),
            ("value", Arc::new(Float32Array::from(vec![1.0, 2.0]))),
        ]);
        assert_error(post(&app, "/upload", ARROW, ipc(&[wrong_time])).await, 422, "WRONG_COLUMN_TYPE", "valid_time");
        let missing = batch(vec![("value_key", keys()), ("valid_time", times())]);
        assert_error(
            post(&app, "/upload", ARROW, ipc(&[missing])).await,
            422,
            "INVALID_FIELD",
            "value: missing column",
        );
        let null_time = batch(vec![
            ("value_key", keys()),
            ("valid_time", Arc::new(TimestampSecondArray::from(vec![Some(0), None]))),
            ("value", Arc::new(Float32Array::from(vec![1.0, 2.0]))),
        ]);
        assert_error(post(&app, "/upload", ARROW, ipc(&[null_time])).await, 422, "INVALID_FIELD", "row 1: valid_time");
        let dup = batch(vec![
            ("value_key", keys()),
            ("valid_time", Arc::new(TimestampSecondArray::from(vec![0, 0]))),
            ("value", Arc::new(Float32Array::from(vec![1.0, 2.0]))),
        ]);
        assert_error(post(&app, "/upload", ARROW, ipc(&[dup])).await, 422, "DUPLICATE_ROW", "row 1: duplicates row 0");
        assert_error(post(&app, "/upload", ARROW, b"not arrow".to_vec()).await, 400, "MALFORMED_ARROW", "Arrow");
        assert!(app.values("all_versions=true").await.is_empty());
    }

    pub async fn arrow_reads_equal_json_reads(b: Backend) {
        let app = spawn_app(b).await;
        history(&app).await;
        for (query, extra) in [
            ("", vec![]),
            ("mode=overlapping", vec!["known_time", "run_id"]),
            (
                "all_versions=true",
                vec![
                    "known_time",
                    "run_id",
                    "value_id",
                    "annotation",
                    "tags",
                    "changed_by",
                    "change_time",
                    "is_current",
                ],
            ),
        ] {
            let json_rows = app.values(query).await;
            let (ct, batches) = read_arrow(&app, &format!("{query}&format=arrow"), None).await;
            assert_eq!(ct, ARROW);
            let names: Vec<String> = batches[0].schema().fields().iter().map(|f| f.name().clone()).collect();
            let mut want = vec!["valid_time", "valid_time_end", "series_id", "series_key", "series_unit", "value"];
            want.extend(extra);
            assert_eq!(names, want, "{query}");
            assert_eq!(
                batches[0].schema().field(0).data_type(),
                &DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
            );
            assert_eq!(arrow_as_json(&batches), json_rows, "{query}");
        }
        // The history read really has a superseded version, a tag and an author.
        let all = app.values("all_versions=true").await;
        assert!(all.iter().any(|r| r["is_current"] == false));
        assert!(all.iter().any(|r| r["tags"] == json!(["manual"]) && r["changed_by"] == "tester"));

        // An empty read is a schema and no batches.
        let (_, batches) = read_arrow(&app, "format=arrow&series_key=nothing", None).await;
        assert!(batches.is_empty());
    }

    pub async fn arrow_reads_come_in_batches_of_8192(b: Backend) {
        let app = spawn_app(b).await;
        let n = 10_000i64;
        let rows = batch(vec![
            ("value_key", Arc::new(StringArray::from(vec!["big"; n as usize])) as ArrayRef),
            (
                "valid_time",
                Arc::new(TimestampSecondArray::from((0..n).map(|i| 1_735_689_600 + i * 60).collect::<Vec<_>>())),
            ),
            ("value", Arc::new(Float64Builder::new().finish_with(&(0..n).map(|i| Some(i as f64)).collect::<Vec<_>>()))),
        ]);
        let (status, body) = post(&app, "/upload", ARROW, ipc(&[rows])).await;
        assert_eq!(status, 200, "{body}");
        let (_, batches) = read_arrow(&app, "format=arrow", None).await;
        assert_eq!(batches.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), vec![8192, 1808]);
        let values = batches[1].column(5).as_primitive::<Float64Type>();
        assert_eq!(values.value(1807), (n - 1) as f64);
    }

    pub async fn accept_header_selects_arrow(b: Backend) {
        let app = spawn_app(b).await;
        history(&app).await;
        let (ct, batches) = read_arrow(&app, "mode=overlapping", Some(ARROW)).await;
        assert_eq!(ct, ARROW);
        assert_eq!(arrow_as_json(&batches), app.values("mode=overlapping").await);
        // JSON wins when the client accepts both.
        let r = app
            .request(Method::GET, "/values")
            .header("accept", format!("application/json, {ARROW}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_error(app.get_json("/values?format=parquet").await, 422, "INVALID_FIELD", "json, csv or arrow");
    }

    pub async fn other_upload_types_get_415(b: Backend) {
        let app = spawn_app(b).await;
        for path in ["/upload", "/runs"] {
            let got = post(&app, path, "application/xml", "<run/>").await;
            assert_error(got, 415, "UNSUPPORTED_MEDIA_TYPE", "'application/xml'");
        }
        let (_, body) = post(&app, "/upload", "application/xml", "<run/>").await;
        let detail = body["detail"].as_str().unwrap();
        for accepted in ["application/json", "text/csv", ARROW] {
            assert!(detail.contains(accepted), "{detail}");
        }
        // The OpenAPI document lists the three body types, and the Arrow read.
        let doc = app.get_json("/openapi.json").await.1;
        for path in ["/upload", "/runs"] {
            let content = &doc["paths"][path]["post"]["requestBody"]["content"];
            for accepted in ["application/json", "text/csv", ARROW] {
                assert!(content[accepted].is_object(), "{path}: {content}");
            }
        }
        assert!(doc["paths"]["/values"]["get"]["responses"]["200"]["content"][ARROW].is_object());
        // JSON (and a missing content type) still work.
        let (status, body) = app.send_raw(Method::POST, "/upload", None, json_twin().to_string().into_bytes()).await;
        assert_eq!(status, 200, "{body}");
    }
}

/// `Float64Builder` filled from a slice, for compact batch literals.
trait FinishWith {
    fn finish_with(self, values: &[Option<f64>]) -> arrow_array::Float64Array;
}

impl FinishWith for Float64Builder {
    fn finish_with(mut self, values: &[Option<f64>]) -> arrow_array::Float64Array {
        for v in values {
            self.append_option(*v);
        }
        self.finish()
    }
}

per_backend!(cases;
    csv_upload_round_trips,
    csv_errors_name_the_line_and_write_nothing,
    arrow_upload_round_trips,
    arrow_errors_name_the_column_and_write_nothing,
    arrow_reads_equal_json_reads,
    arrow_reads_come_in_batches_of_8192,
    accept_header_selects_arrow,
    other_upload_types_get_415,
);
