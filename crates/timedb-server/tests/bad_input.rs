//! The bad-input suite (SPEC §8): for every endpoint, requests a careless or hostile
//! client sends — malformed and mistyped JSON, missing and extra fields, naive and
//! out-of-range timestamps, non-finite numbers, megabyte strings, bad UUIDs, unknown enum
//! values, wrong content types, oversized and stalled bodies, unicode and NUL bytes, bad
//! keys in every header form — each answered with its documented status and a
//! `{"detail","code"}` body, never a 5xx, on every store.
//!
//! The cases are one table ([`tables`]); each test runs a part of it against a live
//! server and then checks `/healthz` still answers. The same table, rendered as markdown,
//! is the one in `docs/errors.md`: [`docs_table_is_in_sync`] fails when they differ
//! (`TIMEDB_BLESS=1` rewrites the doc), and `--nocapture` prints it.

mod common;

use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use timedb::TenantId;
use timedb::model::Role;
use timedb::testing::Backend;
use timedb_server::http::HttpConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{TestApp, spawn_app, spawn_app_with, spawn_auth_app};

const JSON: Option<&str> = Some("application/json");
const CSV: Option<&str> = Some("text/csv");
const ARROW: Option<&str> = Some("application/vnd.apache.arrow.stream");

/// One megabyte of text, for every free-text field.
fn mb() -> String {
    "x".repeat(1024 * 1024)
}

/// Which key a case presents (auth-on tables only).
#[derive(Clone)]
enum KeyUse {
    /// The table's default key (an admin's).
    Admin,
    Reader,
    Writer,
    /// No key at all.
    Absent,
    /// Exactly this header, and nothing else.
    Header(&'static str, Vec<u8>),
}

/// How the body is sent.
#[derive(Clone, Copy, PartialEq)]
enum Framing {
    /// With a `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked`, so only the streaming limit can stop it.
    Chunked,
}

#[derive(Clone)]
struct Case {
    /// What the input is, for the table.
    what: String,
    method: Method,
    /// Path and query; `{series}`, `{run}`, `{value_id}` are replaced by seeded ids.
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    framing: Framing,
    key: KeyUse,
    status: u16,
    /// The expected `code`; empty for a success.
    code: &'static str,
}

fn case(what: impl Into<String>, method: Method, path: impl Into<String>) -> Case {
    Case {
        what: what.into(),
        method,
        path: path.into(),
        content_type: None,
        body: Vec::new(),
        framing: Framing::Length,
        key: KeyUse::Admin,
        status: 0,
        code: "",
    }
}

fn get(what: impl Into<String>, path: impl Into<String>) -> Case {
    case(what, Method::GET, path)
}

fn post(what: impl Into<String>, path: impl Into<String>) -> Case {
    case(what, Method::POST, path)
}

fn put(what: impl Into<String>, path: impl Into<String>) -> Case {
    case(what, Method::PUT, path)
}

impl Case {
    fn json(self, v: Value) -> Self {
        self.raw(JSON, serde_json::to_vec(&v).unwrap())
    }

    fn raw(mut self, content_type: Option<&'static str>, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = content_type;
        self.body = body.into();
        self
    }

    fn chunked(mut self) -> Self {
        self.framing = Framing::Chunked;
        self
    }

    fn key(mut self, key: KeyUse) -> Self {
        self.key = key;
        self
    }

    fn is(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }

    fn ok(self, status: u16) -> Self {
        self.is(status, "")
    }
}

/// A minimal valid upload with one row, changed by `f`.
fn upload_with(f: impl FnOnce(&mut Value)) -> Value {
    let mut v = json!({
        "run_start_time": "2025-01-01T00:00:00Z",
        "value_rows": [{"value_key": "k", "valid_time": "2025-01-02T00:00:00Z", "value": 1.0}],
    });
    f(&mut v);
    v
}

/// An upload whose one row has `field` set to `value`.
fn row_with(field: &str, value: Value) -> Value {
    upload_with(|v| v["value_rows"][0][field] = value)
}

/// A one-row upload with `valid_time` = `t`, which must answer `status`/`code`.
fn at_time(what: &str, t: &str, status: u16, code: &'static str) -> Case {
    post(format!("valid_time {what} `{t}`"), "/upload").json(row_with("valid_time", json!(t))).is(status, code)
}

/// A CSV body: a header line and the given rows.
fn csv(rows: &[&str]) -> Vec<u8> {
    let mut s = String::from("value_key,valid_time,value\n");
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s.into_bytes()
}

/// The named parts of the table.
struct Tables {
    /// Against a server with authentication off.
    open: Vec<Case>,
    /// Against a server with authentication on (admin key unless a case says otherwise).
    auth: Vec<Case>,
    /// Against a server with a 1 KiB body limit.
    limits: Vec<Case>,
}

fn tables() -> Tables {
    Tables { open: open_cases(), auth: auth_cases(), limits: limit_cases() }
}

const UNKNOWN_UUID: &str = "00000000-0000-4000-8000-000000000001";

fn open_cases() -> Vec<Case> {
    let mut c = vec![
        // ---- POST /upload: JSON syntax and shape
        post("`{` (truncated JSON)", "/upload").raw(JSON, "{").is(400, "MALFORMED_JSON"),
        post("empty body", "/upload").raw(JSON, "").is(400, "MALFORMED_JSON"),
        post("a valid upload followed by garbage", "/upload")
            .raw(JSON, [serde_json::to_vec(&upload_with(|_| ())).unwrap(), b" x".to_vec()].concat())
            .is(400, "MALFORMED_JSON"),
        post("invalid UTF-8 inside a string", "/upload")
            .raw(JSON, b"{\"run_start_time\": \"\xff\"}".to_vec())
            .is(400, "MALFORMED_JSON"),
        post("`NaN` as a value", "/upload")
            .raw(
                JSON,
                r#"{"run_start_time":"2025-01-01","value_rows":[{"value_key":"k","valid_time":"2025-01-02","value":NaN}]}"#,
            )
            .is(400, "MALFORMED_JSON"),
        post("`Infinity` as a value", "/upload")
            .raw(
                JSON,
                r#"{"run_start_time":"2025-01-01","value_rows":[{"value_key":"k","valid_time":"2025-01-02","value":-Infinity}]}"#,
            )
            .is(400, "MALFORMED_JSON"),
        post("`1e400` (overflows a double)", "/upload")
            .raw(
                JSON,
                r#"{"run_start_time":"2025-01-01","value_rows":[{"value_key":"k","valid_time":"2025-01-02","value":1e400}]}"#,
            )
            .is(400, "MALFORMED_JSON"),
        post("a JSON array instead of an object", "/upload").json(json!([])).is(422, "INVALID_FIELD"),
        post("`null` body", "/upload").raw(JSON, "null").is(422, "INVALID_FIELD"),
        post("missing `run_start_time`", "/upload")
            .json(upload_with(|v| {
                v.as_object_mut().unwrap().remove("run_start_time");
            }))
            .is(422, "INVALID_FIELD"),
        post("missing `value_rows`", "/upload").json(json!({"run_start_time": "2025-01-01"})).is(422, "INVALID_FIELD"),
        post("a row without `value`", "/upload")
            .json(upload_with(|v| {
                v["value_rows"][0].as_object_mut().unwrap().remove("value");
            }))
            .is(422, "INVALID_FIELD"),
        post("an unknown top-level field", "/upload").json(upload_with(|v| v["bogus"] = json!(1))).is(422, "INVALID_FIELD"),
        post("an unknown row field", "/upload").json(row_with("bogus", json!(1))).is(422, "INVALID_FIELD"),
        post("a field given twice", "/upload")
            .raw(JSON, r#"{"run_start_time":"2025-01-01","run_start_time":"2025-01-02","value_rows":[]}"#)
            .is(422, "INVALID_FIELD"),
        post("`value` as a string", "/upload").json(row_with("value", json!("1.5"))).is(422, "INVALID_FIELD"),
        post("`value` as a boolean", "/upload").json(row_with("value", json!(true))).is(422, "INVALID_FIELD"),
        post("`value_rows` as an object", "/upload")
            .json(upload_with(|v| v["value_rows"] = json!({"a": 1})))
            .is(422, "INVALID_FIELD"),
        post("`valid_time` as a number", "/upload").json(row_with("valid_time", json!(1_735_689_600))).is(422, "INVALID_FIELD"),
        post("`tags` as a string", "/upload").json(row_with("tags", json!("raw"))).is(422, "INVALID_FIELD"),
        post("`run_params` as a list", "/upload").json(upload_with(|v| v["run_params"] = json!([1]))).is(422, "INVALID_FIELD"),
        post("`value: null` (a stored missing value)", "/upload").json(row_with("value", Value::Null)).ok(200),
        post("an empty `value_rows` (a run without values)", "/upload")
            .json(upload_with(|v| v["value_rows"] = json!([])))
            .ok(200),
        // ---- timestamps
        at_time("naive (no offset: UTC)", "2025-01-02T00:00:00", 200, ""),
        at_time("a bare date", "2025-01-03", 200, ""),
        at_time("with a space and an offset", "2025-01-04 00:00:00+01:00", 200, ""),
        at_time("far past", "0001-01-01T00:00:00Z", 200, ""),
        at_time("far future", "9999-12-31T23:59:59Z", 200, ""),
        at_time("year 0", "0000-06-01T00:00:00Z", 422, "INVALID_FIELD"),
        at_time("year 10000", "10000-01-01T00:00:00Z", 422, "INVALID_FIELD"),
        at_time("year -5000", "-5000-01-01T00:00:00Z", 422, "INVALID_FIELD"),
        at_time("past 9999 once the offset is applied", "9999-12-31T23:59:59-01:00", 422, "INVALID_FIELD"),
        at_time("not a time", "soon", 422, "INVALID_FIELD"),
        at_time("month 13", "2025-13-01T00:00:00Z", 422, "INVALID_FIELD"),
        at_time("30 February", "2025-02-30", 422, "INVALID_FIELD"),
        at_time("offset +25:00", "2025-01-01T00:00:00+25:00", 422, "INVALID_FIELD"),
        at_time("full-width digits", "２０２５-01-01", 422, "INVALID_FIELD"),
        at_time("empty", "", 422, "INVALID_FIELD"),
        post("`valid_time_end` before `valid_time`", "/upload")
            .json(row_with("valid_time_end", json!("2025-01-01T00:00:00Z")))
            .is(422, "INVALID_FIELD"),
        post("`run_finish_time` before `run_start_time`", "/upload")
            .json(upload_with(|v| v["run_finish_time"] = json!("2024-01-01")))
            .is(422, "INVALID_FIELD"),
        post("`known_time` year 10000", "/upload")
            .json(upload_with(|v| v["known_time"] = json!("10000-01-01T00:00:00Z")))
            .is(422, "INVALID_FIELD"),
        // ---- duplicates
        post("two rows for one series and valid time", "/upload")
            .json(json!({"run_start_time": "2025-01-01", "value_rows": [
                {"value_key": "d", "valid_time": "2025-01-02T00:00:00Z", "value": 1},
                {"value_key": "d", "valid_time": "2025-01-02T00:00:00Z", "value": 2}]}))
            .is(422, "DUPLICATE_ROW"),
        post("the same instant spelled two ways", "/upload")
            .json(json!({"run_start_time": "2025-01-01", "value_rows": [
                {"value_key": "d", "valid_time": "2025-01-02T01:00:00+01:00", "value": 1},
                {"value_key": "d", "valid_time": "2025-01-02T00:00:00", "value": 2}]}))
            .is(422, "DUPLICATE_ROW"),
        // ---- strings: size, unicode, NUL
        post("1 MB `value_key`", "/upload").json(row_with("value_key", json!(mb()))).is(422, "INVALID_FIELD"),
        post("1 MB `annotation`", "/upload").json(row_with("annotation", json!(mb()))).is(422, "INVALID_FIELD"),
        post("1 MB tag", "/upload").json(row_with("tags", json!([mb()]))).is(422, "INVALID_FIELD"),
        post("1 MB `workflow_id`", "/upload").json(upload_with(|v| v["workflow_id"] = json!(mb()))).is(422, "INVALID_FIELD"),
        post("1 MB series description", "/upload")
            .json(upload_with(|v| v["series_descriptions"] = json!({"k": mb()})))
            .is(422, "INVALID_FIELD"),
        post("1 MB label value in `series_descriptions`", "/upload")
            .json(upload_with(|v| v["series_descriptions"] = json!({"k": {"labels": {"site": mb()}}})))
            .is(422, "INVALID_FIELD"),
        post("blank `value_key`", "/upload").json(row_with("value_key", json!("   "))).is(422, "INVALID_FIELD"),
        post("NUL in `value_key`", "/upload").json(row_with("value_key", json!("a\u{0}b"))).is(422, "INVALID_FIELD"),
        post("NUL in `annotation`", "/upload").json(row_with("annotation", json!("a\u{0}b"))).is(422, "INVALID_FIELD"),
        post("NUL in a tag", "/upload").json(row_with("tags", json!(["a\u{0}b"]))).is(422, "INVALID_FIELD"),
        post("NUL in a label name", "/upload")
            .json(upload_with(|v| v["series_descriptions"] = json!({"k": {"labels": {"a\u{0}": "b"}}})))
            .is(422, "INVALID_FIELD"),
        post("unicode `value_key` `風力/🌬️`", "/upload").json(row_with("value_key", json!("風力/🌬️"))).ok(200),
        post("right-to-left override in `value_key`", "/upload").json(row_with("value_key", json!("a\u{202e}b"))).ok(200),
        post("unicode annotation and labels", "/upload")
            .json(upload_with(|v| {
                v["value_rows"][0]["annotation"] = json!("vérifié ✓");
                v["value_rows"][0]["value_key"] = json!("k-unicode");
                v["series_descriptions"] = json!({"k-unicode": {"labels": {"région": "Île-de-France"}}});
            }))
            .ok(200),
        // ---- UUIDs and tenants
        post("row `series_id` not a UUID", "/upload").json(row_with("series_id", json!("nope"))).is(422, "INVALID_FIELD"),
        post("row `series_id` of no series", "/upload").json(row_with("series_id", json!(UNKNOWN_UUID))).is(404, "NOT_FOUND"),
        post("row `series_id` of another key's series", "/upload")
            .raw(JSON, r#"{"run_start_time":"2025-01-01","value_rows":[{"value_key":"other","valid_time":"2025-01-02","value":1,"series_id":"{series}"}]}"#)
            .is(422, "INVALID_FIELD"),
        post("`tenant_id` not a UUID", "/upload").json(upload_with(|v| v["tenant_id"] = json!("acme"))).is(422, "INVALID_FIELD"),
        // ---- content types
        post("`text/plain` body", "/upload").raw(Some("text/plain"), "hello").is(415, "UNSUPPORTED_MEDIA_TYPE"),
        post("`application/xml` body", "/upload").raw(Some("application/xml"), "<run/>").is(415, "UNSUPPORTED_MEDIA_TYPE"),
        post("`multipart/form-data` body", "/upload")
            .raw(Some("multipart/form-data; boundary=x"), "--x--")
            .is(415, "UNSUPPORTED_MEDIA_TYPE"),
        post("no content type (read as JSON)", "/upload")
            .raw(None, serde_json::to_vec(&upload_with(|_| ())).unwrap())
            .ok(200),
        post("`application/json; charset=utf-8`", "/upload")
            .raw(Some("application/json; charset=utf-8"), serde_json::to_vec(&upload_with(|_| ())).unwrap())
            .ok(200),
        // ---- POST /upload with CSV and Arrow bodies
        post("CSV: empty body", "/upload").raw(CSV, "").is(400, "MALFORMED_CSV"),
        post("CSV: a row with too many fields", "/upload").raw(CSV, csv(&["k,2025-01-02,1,extra"])).is(400, "MALFORMED_CSV"),
        post("CSV: invalid UTF-8", "/upload").raw(CSV, csv(&["k\u{0},2025-01-02,1"]).into_iter().map(|b| if b == 0 { 0xff } else { b }).collect::<Vec<_>>()).is(400, "MALFORMED_CSV"),
        post("CSV: unknown column", "/upload").raw(CSV, "value_key,valid_time,value,colour\n").is(422, "UNKNOWN_COLUMN"),
        post("CSV: missing `value` column", "/upload").raw(CSV, "value_key,valid_time\nk,2025-01-02\n").is(422, "INVALID_FIELD"),
        post("CSV: value `NaN`", "/upload").raw(CSV, csv(&["k,2025-01-02,NaN"])).is(422, "INVALID_FIELD"),
        post("CSV: value `inf`", "/upload").raw(CSV, csv(&["k,2025-01-02,inf"])).is(422, "INVALID_FIELD"),
        post("CSV: value `-Infinity`", "/upload").raw(CSV, csv(&["k,2025-01-02,-Infinity"])).is(422, "INVALID_FIELD"),
        post("CSV: value `1e400`", "/upload").raw(CSV, csv(&["k,2025-01-02,1e400"])).is(422, "INVALID_FIELD"),
        post("CSV: value `ten`", "/upload").raw(CSV, csv(&["k,2025-01-02,ten"])).is(422, "INVALID_FIELD"),
        post("CSV: empty value cell (null)", "/upload").raw(CSV, csv(&["k,2025-01-05,"])).ok(200),
        post("CSV: naive timestamp (UTC)", "/upload").raw(CSV, csv(&["k,2025-01-06T00:00:00,1"])).ok(200),
        post("CSV: year 10000", "/upload").raw(CSV, csv(&["k,10000-01-01T00:00:00Z,1"])).is(422, "INVALID_FIELD"),
        post("CSV: duplicate rows", "/upload").raw(CSV, csv(&["k,2025-01-02,1", "k,2025-01-02,2"])).is(422, "DUPLICATE_ROW"),
        post("CSV: NUL in a key", "/upload").raw(CSV, csv(&["a\u{0}b,2025-01-02,1"])).is(422, "INVALID_FIELD"),
        post("CSV: unicode key", "/upload").raw(CSV, csv(&["ветер,2025-01-02,1"])).ok(200),
        post("CSV: tags not a JSON array", "/upload")
            .raw(CSV, "value_key,valid_time,value,tags\nk,2025-01-02,1,raw\n")
            .is(422, "INVALID_FIELD"),
        post("CSV: unknown query parameter", "/upload?colour=red").raw(CSV, csv(&["k,2025-01-02,1"])).is(422, "UNKNOWN_PARAMETER"),
        post("CSV: `known_time=soon` in the query", "/upload?known_time=soon")
            .raw(CSV, csv(&["k,2025-01-02,1"]))
            .is(422, "INVALID_FIELD"),
        post("CSV: `tenant_id` not a UUID in the query", "/upload?tenant_id=acme")
            .raw(CSV, csv(&["k,2025-01-02,1"]))
            .is(422, "INVALID_FIELD"),
        post("Arrow: a body that is not an IPC stream", "/upload").raw(ARROW, "not arrow").is(400, "MALFORMED_ARROW"),
        post("Arrow: empty body", "/upload").raw(ARROW, "").is(400, "MALFORMED_ARROW"),
        // ---- POST /runs (the same handler)
        post("`{`", "/runs").raw(JSON, "{").is(400, "MALFORMED_JSON"),
        post("missing `run_start_time`", "/runs").json(json!({"value_rows": []})).is(422, "INVALID_FIELD"),
        post("`text/plain` body", "/runs").raw(Some("text/plain"), "x").is(415, "UNSUPPORTED_MEDIA_TYPE"),
        // ---- GET /values
        get("`mode=sideways`", "/values?mode=sideways").is(422, "INVALID_FIELD"),
        get("`all_versions=maybe`", "/values?all_versions=maybe").is(422, "INVALID_FIELD"),
        get("`format=xml`", "/values?format=xml").is(422, "INVALID_FIELD"),
        get("unknown parameter", "/values?strat_valid=2025-01-01").is(422, "UNKNOWN_PARAMETER"),
        get("unknown parameter with a NUL in its name", "/values?a%00=1").is(422, "UNKNOWN_PARAMETER"),
        get("`start_valid=soon`", "/values?start_valid=soon").is(422, "INVALID_FIELD"),
        get("`end_known` year 10000", "/values?end_known=10000-01-01T00:00:00Z").is(422, "INVALID_FIELD"),
        get("`start_valid` year -5000", "/values?start_valid=-5000-01-01").is(422, "INVALID_FIELD"),
        get("naive `start_valid` (UTC)", "/values?start_valid=2025-01-01T00:00:00").ok(200),
        get("far-past to far-future window", "/values?start_valid=0001-01-01&end_valid=9999-12-31T23:59:59Z").ok(200),
        get("`start_valid` given twice", "/values?start_valid=2025-01-01&start_valid=2025-01-02").is(422, "INVALID_FIELD"),
        get("`end_valid` before `start_valid`", "/values?start_valid=2025-02-01&end_valid=2025-01-01").is(422, "INVALID_FIELD"),
        get("`series_id` not a UUID", "/values?series_id=nope").is(422, "INVALID_FIELD"),
        get("`series_key` with a NUL", "/values?series_key=a%00b").is(422, "INVALID_FIELD"),
        get("`series_key` unicode", "/values?series_key=%E9%A2%A8%E5%8A%9B").ok(200),
        get("`series_key` of invalid UTF-8 (read as U+FFFD)", "/values?series_key=%FF").ok(200),
        get("32 kB `series_key`", format!("/values?series_key={}", "k".repeat(32 * 1024))).is(422, "INVALID_FIELD"),
        get("`labels` not JSON", "/values?labels=site").is(422, "INVALID_FIELD"),
        get("`labels` with a number value", "/values?labels=%7B%22a%22%3A1%7D").is(422, "INVALID_FIELD"),
        get("`labels` with a NUL", "/values?labels=%7B%22a%22%3A%22%5Cu0000%22%7D").is(422, "INVALID_FIELD"),
        get("`tenant_id` not a UUID", "/values?tenant_id=acme").is(422, "INVALID_FIELD"),
        get("malformed percent-encoding `%zz`", "/values?series_key=%zz").ok(200),
        // ---- PUT /values
        put("`{`", "/values").raw(JSON, "{").is(400, "MALFORMED_JSON"),
        put("`NaN` as a value", "/values").raw(JSON, r#"{"updates":[{"value_id":1,"value":NaN}]}"#).is(400, "MALFORMED_JSON"),
        put("missing `updates`", "/values").json(json!({})).is(422, "INVALID_FIELD"),
        put("empty `updates`", "/values").json(json!({"updates": []})).is(422, "INVALID_FIELD"),
        put("unknown field in an update", "/values").json(json!({"updates": [{"value_id": 1, "colour": 1}]})).is(422, "INVALID_FIELD"),
        put("`value_id` as a string", "/values").json(json!({"updates": [{"value_id": "1", "value": 2}]})).is(422, "INVALID_FIELD"),
        put("`value_id` as a fraction", "/values").json(json!({"updates": [{"value_id": 1.5, "value": 2}]})).is(422, "INVALID_FIELD"),
        put("`value_id` past i64", "/values").raw(JSON, r#"{"updates":[{"value_id":99999999999999999999,"value":2}]}"#).is(422, "INVALID_FIELD"),
        put("an update naming no field", "/values").json(json!({"updates": [{"value_id": "{value_id}"}]})).is(422, "INVALID_FIELD"),
        put("an update with no address", "/values").json(json!({"updates": [{"value": 2}]})).is(422, "INVALID_FIELD"),
        put("`value_id` and a key address both", "/values")
            .json(json!({"updates": [{"value_id": 1, "run_id": UNKNOWN_UUID, "series_id": UNKNOWN_UUID, "valid_time": "2025-01-02", "value": 2}]}))
            .is(422, "INVALID_FIELD"),
        put("`value_id` of no value", "/values").json(json!({"updates": [{"value_id": 999_999_999, "value": 2}]})).is(404, "NOT_FOUND"),
        put("negative `value_id`", "/values").json(json!({"updates": [{"value_id": -1, "value": 2}]})).is(404, "NOT_FOUND"),
        put("`run_id` not a UUID", "/values")
            .json(json!({"updates": [{"run_id": "nope", "series_id": UNKNOWN_UUID, "valid_time": "2025-01-02", "value": 2}]}))
            .is(422, "INVALID_FIELD"),
        put("key address year 10000", "/values")
            .json(json!({"updates": [{"run_id": UNKNOWN_UUID, "series_id": UNKNOWN_UUID, "valid_time": "10000-01-01T00:00:00Z", "value": 2}]}))
            .is(422, "INVALID_FIELD"),
        put("key address of no value", "/values")
            .json(json!({"updates": [{"run_id": UNKNOWN_UUID, "series_id": UNKNOWN_UUID, "valid_time": "2025-01-02", "value": 2}]}))
            .is(404, "NOT_FOUND"),
        put("1 MB `annotation`", "/values").json(json!({"updates": [{"value_id": 1, "annotation": mb()}]})).is(422, "INVALID_FIELD"),
        put("NUL in `annotation`", "/values").json(json!({"updates": [{"value_id": 1, "annotation": "a\u{0}"}]})).is(422, "INVALID_FIELD"),
        put("NUL in a tag", "/values").json(json!({"updates": [{"value_id": 1, "tags": ["a\u{0}"]}]})).is(422, "INVALID_FIELD"),
        put("unicode annotation", "/values").json(json!({"updates": [{"value_id": "{value_id}", "annotation": "geprüft ✓"}]})).ok(200),
        put("`text/csv` body", "/values").raw(CSV, "value_id,value\n1,2\n").is(415, "UNSUPPORTED_MEDIA_TYPE"),
        case("`DELETE /values`", Method::DELETE, "/values").is(405, "METHOD_NOT_ALLOWED"),
        // ---- POST /series
        post("`{`", "/series").raw(JSON, "{").is(400, "MALFORMED_JSON"),
        post("missing `name`", "/series").json(json!({"unit": "MW"})).is(422, "INVALID_FIELD"),
        post("`name` as a number", "/series").json(json!({"name": 7})).is(422, "INVALID_FIELD"),
        post("unknown field", "/series").json(json!({"name": "s", "colour": "red"})).is(422, "INVALID_FIELD"),
        post("`labels` as a list", "/series").json(json!({"name": "s", "labels": ["a"]})).is(422, "INVALID_FIELD"),
        post("label value a number", "/series").json(json!({"name": "s", "labels": {"a": 1}})).is(422, "INVALID_FIELD"),
        post("1 MB `name`", "/series").json(json!({"name": mb()})).is(422, "INVALID_FIELD"),
        post("1 MB `description`", "/series").json(json!({"name": "s", "description": mb()})).is(422, "INVALID_FIELD"),
        post("1 MB `unit`", "/series").json(json!({"name": "s", "unit": mb()})).is(422, "INVALID_FIELD"),
        post("1 MB label value", "/series").json(json!({"name": "s", "labels": {"a": mb()}})).is(422, "INVALID_FIELD"),
        post("1 MB label name", "/series").json(json!({"name": "s", "labels": {mb(): "a"}})).is(422, "INVALID_FIELD"),
        post("65 labels", "/series")
            .json(json!({"name": "s", "labels": (0..65).map(|i| (format!("l{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}))
            .is(422, "INVALID_FIELD"),
        post("NUL in `name`", "/series").json(json!({"name": "a\u{0}"})).is(422, "INVALID_FIELD"),
        post("NUL in a label value", "/series").json(json!({"name": "s", "labels": {"a": "\u{0}"}})).is(422, "INVALID_FIELD"),
        post("NUL in `description`", "/series").json(json!({"name": "s", "description": "\u{0}"})).is(422, "INVALID_FIELD"),
        post("unicode name, unit and labels", "/series")
            .json(json!({"name": "température", "unit": "°C", "labels": {"ville": "Zürich 🇨🇭"}}))
            .ok(201),
        post("the same again (identical: found)", "/series")
            .json(json!({"name": "température", "unit": "°C", "labels": {"ville": "Zürich 🇨🇭"}}))
            .ok(200),
        post("the same key with another unit", "/series").json(json!({"name": "température", "unit": "K"})).is(409, "CONFLICT"),
        post("`tenant_id` not a UUID", "/series").json(json!({"name": "s", "tenant_id": "acme"})).is(422, "INVALID_FIELD"),
        post("`application/x-www-form-urlencoded`", "/series")
            .raw(Some("application/x-www-form-urlencoded"), "name=s")
            .is(415, "UNSUPPORTED_MEDIA_TYPE"),
        case("`PATCH /series`", Method::PATCH, "/series").is(405, "METHOD_NOT_ALLOWED"),
        // ---- GET /series, /series/{id}, /list_timeseries
        get("`series_id` not a UUID", "/series?series_id=nope").is(422, "INVALID_FIELD"),
        get("unknown parameter", "/series?name=s").is(422, "UNKNOWN_PARAMETER"),
        get("`labels` not JSON", "/series?labels=%7B").is(422, "INVALID_FIELD"),
        get("path id not a UUID", "/series/not-a-uuid").is(422, "INVALID_FIELD"),
        get("path id of no series", format!("/series/{UNKNOWN_UUID}")).is(404, "NOT_FOUND"),
        get("path id with a NUL", "/series/%00").is(422, "INVALID_FIELD"),
        get("path id of invalid UTF-8", "/series/%FF").is(422, "INVALID_FIELD"),
        get("path id unicode", "/series/%E9%A2%A8").is(422, "INVALID_FIELD"),
        get("a seeded series (control)", "/series/{series}").ok(200),
        get("unknown parameter", "/list_timeseries?x=1").is(422, "UNKNOWN_PARAMETER"),
        get("`series_key` with a NUL", "/list_timeseries?series_key=%00").is(422, "INVALID_FIELD"),
        // ---- GET /runs, /runs/{id}
        get("`limit=0`", "/runs?limit=0").is(422, "INVALID_FIELD"),
        get("`limit=abc`", "/runs?limit=abc").is(422, "INVALID_FIELD"),
        get("`limit` past u64", "/runs?limit=99999999999999999999999").is(422, "INVALID_FIELD"),
        get("`start_known` year 10000", "/runs?start_known=10000-01-01").is(422, "INVALID_FIELD"),
        get("32 kB `workflow_id`", format!("/runs?workflow_id={}", "w".repeat(32 * 1024))).is(422, "INVALID_FIELD"),
        get("path id not a UUID", "/runs/xyz").is(422, "INVALID_FIELD"),
        get("path id of no run", format!("/runs/{UNKNOWN_UUID}")).is(404, "NOT_FOUND"),
        get("a seeded run (control)", "/runs/{run}").ok(200),
        // ---- endpoints that need authentication, on a server without it
        get("`/whoami` with authentication off", "/whoami").is(404, "AUTH_DISABLED"),
        post("`POST /api-keys` with authentication off", "/api-keys").json(json!({})).is(404, "AUTH_DISABLED"),
        post("`POST /users` with authentication off", "/users").json(json!({"email": "a@b.c"})).is(404, "AUTH_DISABLED"),
        // ---- unknown endpoints
        get("unknown path", "/nope").is(404, "NOT_FOUND"),
        get("unknown path with a NUL", "/n%00pe").is(404, "NOT_FOUND"),
        get("unknown path with unicode", "/%E9%A2%A8").is(404, "NOT_FOUND"),
    ];
    for ep in ["/upload", "/series", "/values"] {
        let method = if ep == "/values" { Method::PUT } else { Method::POST };
        c.push(case("body `\"just a string\"`", method, ep).raw(JSON, "\"just a string\"").is(422, "INVALID_FIELD"));
    }
    c
}

/// Keys that are not keys, presented in each way a key can be.
fn bad_keys() -> Vec<Case> {
    let on = |what: &str, header: &'static str, value: &[u8], code: &'static str| {
        get(format!("{what} (`{header}`)"), "/values").key(KeyUse::Header(header, value.to_vec())).is(401, code)
    };
    let ten_kb = format!("tdb_{}", "a".repeat(10 * 1024));
    vec![
        get("no key", "/values").key(KeyUse::Absent).is(401, "MISSING_KEY"),
        on("garbage key", "x-api-key", b"garbage", "INVALID_KEY"),
        on("empty key", "x-api-key", b"", "INVALID_KEY"),
        on("10 kB key", "x-api-key", ten_kb.as_bytes(), "INVALID_KEY"),
        on("non-ASCII bytes", "x-api-key", b"tdb_\xff\xfe", "INVALID_KEY"),
        on("UTF-8 key `ключ`", "x-api-key", "ключ".as_bytes(), "INVALID_KEY"),
        on("garbage bearer token", "authorization", b"Bearer garbage", "INVALID_KEY"),
        on("empty bearer token", "authorization", b"Bearer ", "INVALID_KEY"),
        on("10 kB bearer token", "authorization", format!("Bearer {ten_kb}").as_bytes(), "INVALID_KEY"),
        on("garbage `Apikey` token", "authorization", b"Apikey garbage", "INVALID_KEY"),
        on("`Basic` credentials", "authorization", b"Basic dXNlcjpwYXNz", "MISSING_KEY"),
        get("garbage `?api_key=`", "/values?api_key=garbage").key(KeyUse::Absent).is(401, "INVALID_KEY"),
        get("NUL `?api_key=`", "/values?api_key=%00").key(KeyUse::Absent).is(401, "INVALID_KEY"),
        get("10 kB `?api_key=`", format!("/values?api_key={ten_kb}")).key(KeyUse::Absent).is(401, "INVALID_KEY"),
    ]
}

fn auth_cases() -> Vec<Case> {
    let mut c = bad_keys();
    c.extend(vec![
        // ---- scopes and tenants
        post("a `read` key uploading", "/upload")
            .key(KeyUse::Reader)
            .json(upload_with(|_| ()))
            .is(403, "INSUFFICIENT_SCOPE"),
        get("a `write` key listing users", "/users").key(KeyUse::Writer).is(403, "INSUFFICIENT_SCOPE"),
        post("body `tenant_id` of another tenant", "/upload")
            .json(upload_with(|v| v["tenant_id"] = json!(UNKNOWN_UUID)))
            .is(403, "TENANT_MISMATCH"),
        get("query `tenant_id` of another tenant", format!("/values?tenant_id={UNKNOWN_UUID}"))
            .is(403, "TENANT_MISMATCH"),
        post("`changed_by` claimed in the body is ignored (control)", "/upload")
            .json(row_with("value", json!(2.5)))
            .ok(200),
        // ---- POST /api-keys
        post("`{`", "/api-keys").raw(JSON, "{").is(400, "MALFORMED_JSON"),
        post("unknown scope `root`", "/api-keys").json(json!({"scopes": ["root"]})).is(422, "INVALID_FIELD"),
        post("`scopes` as a string", "/api-keys").json(json!({"scopes": "read"})).is(422, "INVALID_FIELD"),
        post("`expires_in: -1`", "/api-keys").json(json!({"expires_in": -1})).is(422, "INVALID_FIELD"),
        post("`expires_in: 0`", "/api-keys").json(json!({"expires_in": 0})).is(422, "INVALID_FIELD"),
        post("`expires_in` of a century", "/api-keys")
            .json(json!({"expires_in": 3_153_600_000u64}))
            .is(422, "INVALID_FIELD"),
        post("`rate_limit: fast`", "/api-keys").json(json!({"rate_limit": "fast"})).is(422, "INVALID_FIELD"),
        post("1 MB `note`", "/api-keys").json(json!({"note": mb()})).is(422, "INVALID_FIELD"),
        post("NUL in `note`", "/api-keys").json(json!({"note": "a\u{0}"})).is(422, "INVALID_FIELD"),
        post("1 MB `email`", "/api-keys").json(json!({"email": mb()})).is(422, "INVALID_FIELD"),
        post("`email` of no user", "/api-keys").json(json!({"email": "nobody@example.com"})).is(404, "NOT_FOUND"),
        post("unknown field", "/api-keys").json(json!({"owner": "me"})).is(422, "INVALID_FIELD"),
        post("unicode `note`", "/api-keys").json(json!({"note": "clé de test ✓", "scopes": ["read"]})).ok(201),
        get("`email` with a NUL", "/api-keys?email=a%00%40b.c").is(422, "INVALID_FIELD"),
        get("unknown parameter", "/api-keys?all=1").is(422, "UNKNOWN_PARAMETER"),
        case("key id of no key", Method::DELETE, "/api-keys/ABCDEFGH").is(404, "NOT_FOUND"),
        case("neither key id nor key", Method::DELETE, "/api-keys/x").is(422, "INVALID_FIELD"),
        case("a NUL", Method::DELETE, "/api-keys/%00").is(422, "INVALID_FIELD"),
        case("a 10 kB path segment", Method::DELETE, format!("/api-keys/{}", "k".repeat(10 * 1024)))
            .is(422, "INVALID_FIELD"),
        // ---- /users
        post("`{`", "/users").raw(JSON, "{").is(400, "MALFORMED_JSON"),
        post("missing `email`", "/users").json(json!({"role": "reader"})).is(422, "INVALID_FIELD"),
        post("unknown role `superuser`", "/users")
            .json(json!({"email": "r@example.com", "role": "superuser"}))
            .is(422, "INVALID_FIELD"),
        post("`role` as a number", "/users")
            .json(json!({"email": "r@example.com", "role": 1}))
            .is(422, "INVALID_FIELD"),
        post("email without `@`", "/users").json(json!({"email": "nobody"})).is(422, "INVALID_FIELD"),
        post("1 MB email", "/users").json(json!({"email": format!("{}@example.com", mb())})).is(422, "INVALID_FIELD"),
        post("NUL in the email", "/users").json(json!({"email": "a\u{0}b@example.com"})).is(422, "INVALID_FIELD"),
        post("unicode email `josé@exämple.com`", "/users").json(json!({"email": "josé@exämple.com"})).ok(201),
        post("the same email again", "/users").json(json!({"email": "josé@exämple.com"})).is(409, "CONFLICT"),
        post("`text/plain` body", "/users").raw(Some("text/plain"), "a@b.c").is(415, "UNSUPPORTED_MEDIA_TYPE"),
        get("unknown parameter", "/users?role=admin").is(422, "UNKNOWN_PARAMETER"),
        post("deactivate: not an email", "/users/nobody/deactivate").is(422, "INVALID_FIELD"),
        post("deactivate: NUL in the email", "/users/a%00%40b.c/deactivate").is(422, "INVALID_FIELD"),
        post("activate: no such user", "/users/ghost%40example.com/activate").is(404, "NOT_FOUND"),
        post("regenerate-key: no such user", "/users/ghost%40example.com/regenerate-key").is(404, "NOT_FOUND"),
        post("regenerate-key: invalid UTF-8", "/users/%FF/regenerate-key").is(422, "INVALID_FIELD"),
    ]);
    c
}

fn limit_cases() -> Vec<Case> {
    let big_json = || {
        let rows: Vec<Value> = (0..100)
            .map(|i| json!({"value_key": "k", "valid_time": format!("2025-01-01T00:{:02}:00Z", i % 60), "value": i}))
            .collect();
        serde_json::to_vec(&json!({"run_start_time": "2025-01-01", "value_rows": rows})).unwrap()
    };
    let big_csv = || {
        csv(&(0..100)
            .map(|i| format!("k,2025-01-01T00:{:02}:00Z,{i}", i % 60))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>())
    };
    vec![
        post("2 kB JSON upload over a 1 KiB limit", "/upload").raw(JSON, big_json()).is(413, "BODY_TOO_LARGE"),
        post("the same, chunked (no length)", "/upload").raw(JSON, big_json()).chunked().is(413, "BODY_TOO_LARGE"),
        post("2 kB CSV upload", "/upload").raw(CSV, big_csv()).is(413, "BODY_TOO_LARGE"),
        post("2 kB CSV upload, chunked", "/upload").raw(CSV, big_csv()).chunked().is(413, "BODY_TOO_LARGE"),
        post("2 kB series description", "/series")
            .json(json!({"name": "s", "description": "d".repeat(2048)}))
            .is(413, "BODY_TOO_LARGE"),
        put("2 kB corrections", "/values")
            .json(json!({"updates": [{"value_id": 1, "annotation": "a".repeat(2048)}]}))
            .is(413, "BODY_TOO_LARGE"),
        post("a body under the limit (control)", "/upload").json(upload_with(|_| ())).ok(200),
    ]
}

/// What the server answered to one case, when it was not what the table says.
async fn run_case(app: &TestApp, case: &Case, seeds: &[(&str, String)], auth: Option<&AuthKeys>) -> Option<String> {
    let fill = |text: &str| seeds.iter().fold(text.to_owned(), |t, (name, v)| t.replace(name, v));
    let path = fill(&case.path);
    // `"{value_id}"` stands for a number, so its quotes go too.
    let body = match std::str::from_utf8(&case.body) {
        Ok(text) if text.contains("{") => fill(&text.replace("\"{value_id}\"", "{value_id}")).into_bytes(),
        _ => case.body.clone(),
    };
    let mut req = app.client.request(case.method.clone(), app.url(&path));
    if let Some(keys) = auth {
        req = match &case.key {
            KeyUse::Admin => req.header("x-api-key", &keys.admin),
            KeyUse::Reader => req.header("x-api-key", &keys.reader),
            KeyUse::Writer => req.header("x-api-key", &keys.writer),
            KeyUse::Absent => req,
            KeyUse::Header(name, value) => req.header(*name, HeaderValue::from_bytes(value).unwrap()),
        };
    }
    if let Some(ct) = case.content_type {
        req = req.header("content-type", ct);
    }
    req = match case.framing {
        Framing::Length => req.body(body),
        Framing::Chunked => req.body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            body.chunks(512).map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c))).collect::<Vec<_>>(),
        ))),
    };
    let response = match req.send().await {
        Ok(r) => r,
        Err(e) => return Some(format!("no answer: {}", e.without_url())),
    };
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = response.text().await.unwrap_or_default();
    let shown = if text.len() > 300 { format!("{}…", &text[..300]) } else { text.clone() };
    if status.as_u16() != case.status {
        return Some(format!("got {status} {shown}"));
    }
    if case.code.is_empty() {
        return None;
    }
    if !content_type.starts_with("application/json") {
        return Some(format!("content type {content_type:?}, body {shown}"));
    }
    let Ok(Value::Object(body)) = serde_json::from_str::<Value>(&text) else {
        return Some(format!("not a JSON object: {shown}"));
    };
    let detail_ok = body.get("detail").and_then(Value::as_str).is_some_and(|d| !d.is_empty());
    if body.len() != 2 || !detail_ok || body.get("code") != Some(&json!(case.code)) {
        return Some(format!("body {shown}"));
    }
    // A detail may name a field, but must not echo a megabyte back.
    if text.len() > 4096 {
        return Some(format!("a {} byte error body", text.len()));
    }
    None
}

struct AuthKeys {
    admin: String,
    reader: String,
    writer: String,
}

/// Seed one run (and so one series and one value) for the `{…}` placeholders.
async fn seed(app: &TestApp) -> Vec<(&'static str, String)> {
    let receipt = app.upload("2024-06-01T00:00:00Z", &[("seeded", "2024-06-02T00:00:00Z", 1.0)]).await;
    let value_id = app.values("all_versions=true&series_key=seeded").await[0]["value_id"].to_string();
    vec![
        ("{series}", receipt["series_ids"]["seeded"].as_str().unwrap().to_owned()),
        ("{run}", receipt["run_id"].as_str().unwrap().to_owned()),
        ("{value_id}", value_id),
    ]
}

/// Run `cases` in order; fail listing every case the server answered differently, then
/// check the server is still up.
async fn run_table(app: &TestApp, cases: &[Case], auth: Option<&AuthKeys>) {
    let seeds = seed(app).await;
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        if let Some(why) = run_case(app, case, &seeds, auth).await {
            failures.push(format!(
                "#{i} {} {} — {}: expected {} {}, {why}",
                case.method,
                case.path.chars().take(80).collect::<String>(),
                case.what,
                case.status,
                case.code
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "the server survived the table");
}

/// The table as markdown, one row per case, as docs/errors.md holds it.
fn markdown(t: &Tables) -> String {
    let mut out = String::new();
    let mut n = 0;
    let parts: [(&str, &[Case]); 3] = [
        ("authentication off", &t.open),
        ("authentication on, an admin key unless the input says otherwise", &t.auth),
        ("a server started with a 1 KiB body limit", &t.limits),
    ];
    for (title, cases) in parts {
        out.push_str(&format!("\n### {title}\n\n| # | request | input | status | code |\n|---|---|---|---|---|\n"));
        for c in cases {
            n += 1;
            let path: String = c.path.chars().take(48).collect();
            let path = if c.path.chars().count() > 48 { format!("{path}…") } else { path };
            let ct = match (c.content_type, c.method.clone()) {
                (Some(ct), _) if ct != "application/json" => format!(" ({})", ct.split(';').next().unwrap()),
                _ => String::new(),
            };
            let code = if c.code.is_empty() { "—" } else { c.code };
            out.push_str(&format!(
                "| {n} | `{} {path}`{ct} | {} | {} | {code} |\n",
                c.method,
                c.what.replace('|', "\\|"),
                c.status
            ));
        }
    }
    let mut dist = std::collections::BTreeMap::<u16, usize>::new();
    for c in t.open.iter().chain(&t.auth).chain(&t.limits) {
        *dist.entry(c.status).or_default() += 1;
    }
    let dist: Vec<String> = dist.iter().map(|(s, k)| format!("{s}: {k}")).collect();
    format!("{n} table cases per store ({}).\n{out}", dist.join(", "))
}

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md");
const BEGIN: &str = "<!-- bad_input table: generated by crates/timedb-server/tests/bad_input.rs -->\n";
const END: &str = "<!-- end of bad_input table -->";

/// docs/errors.md holds exactly this table; `TIMEDB_BLESS=1` rewrites it there.
#[test]
fn docs_table_is_in_sync() {
    let table = markdown(&tables());
    println!("{table}");
    let doc = std::fs::read_to_string(DOC).expect("docs/errors.md");
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else { panic!("docs/errors.md lacks the table markers") };
    let current = &doc[b + BEGIN.len()..e];
    if current.trim() != table.trim() {
        if std::env::var_os("TIMEDB_BLESS").is_some() {
            let fresh = format!("{}{BEGIN}{}\n{}", &doc[..b], table.trim(), &doc[e..]);
            std::fs::write(DOC, fresh).unwrap();
        } else {
            panic!("docs/errors.md is out of date with the bad_input table; rerun with TIMEDB_BLESS=1");
        }
    }
}

mod cases {
    use super::*;

    pub async fn auth_off_table(b: Backend) {
        let app = spawn_app(b).await;
        run_table(&app, &tables().open, None).await;
    }

    pub async fn auth_on_table(b: Backend) {
        let app = spawn_auth_app(b).await;
        let t = TenantId::DEFAULT;
        let keys = AuthKeys {
            admin: app.add_user(t, "admin@example.com", Role::Admin).await,
            reader: app.add_user(t, "reader@example.com", Role::Reader).await,
            writer: app.add_user(t, "writer@example.com", Role::Writer).await,
        };
        app.use_key(Some(&keys.admin));
        run_table(&app, &tables().auth, Some(&keys)).await;
    }

    pub async fn body_limit_table(b: Backend) {
        let app = spawn_app_with(b, HttpConfig { body_limit: 1024, ..HttpConfig::default() }).await;
        run_table(&app, &tables().limits, None).await;
        // Nothing of the refused uploads was written: only the seed and the control.
        assert_eq!(app.values("").await.len(), 2);
    }

    /// 100 000 rows with one bad row in each position that matters: refused, the row
    /// named, nothing written — checked by reading.
    pub async fn big_upload_with_one_bad_row_writes_nothing(b: Backend) {
        const N: usize = 100_000;
        let app = spawn_app(b).await;
        // Ten series, one row a minute each: all distinct.
        let time = |i: usize| {
            let t = chrono::DateTime::from_timestamp(1_735_689_600 + (i / 10) as i64 * 60, 0).unwrap();
            timedb::model::time::format_timestamp(t)
        };
        let rows = |bad: usize, how: &dyn Fn(&mut Value)| {
            let mut rows: Vec<Value> = (0..N)
                .map(|i| json!({"value_key": format!("k{}", i % 10), "valid_time": time(i), "value": i}))
                .collect();
            how(&mut rows[bad]);
            json!({"run_start_time": "2025-01-01", "value_rows": rows})
        };
        let bad_time = rows(73_456, &|r| r["valid_time"] = json!("soon"));
        let (s, body) = app.post_json("/upload", &bad_time).await;
        assert_eq!((s.as_u16(), body["code"].as_str()), (422, Some("INVALID_FIELD")), "{body}");
        assert!(body["detail"].as_str().unwrap().contains("value_rows[73456].valid_time"), "{body}");
        let duplicate = rows(N - 1, &|r| {
            r["value_key"] = json!("k0");
            r["valid_time"] = json!("2025-01-01T00:00:00Z");
        });
        let (s, body) = app.post_json("/upload", &duplicate).await;
        assert_eq!((s.as_u16(), body["code"].as_str()), (422, Some("DUPLICATE_ROW")), "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("value_rows[99999]") && detail.contains("value_rows[0]"), "{body}");
        // A row that only the store can refuse (a series id it does not hold): the store
        // has begun writing by then, so this checks the transaction rolls back.
        let unknown_series = rows(N - 1, &|r| r["series_id"] = json!(UNKNOWN_UUID));
        let (s, body) = app.post_json("/upload", &unknown_series).await;
        assert_eq!((s.as_u16(), body["code"].as_str()), (404, Some("NOT_FOUND")), "{body}");
        // CSV: the bad row is named by its line.
        let mut text = String::from("value_key,valid_time,value\n");
        for i in 0..N {
            let t = if i == 50_000 { "2025-02-30".to_owned() } else { time(i) };
            text.push_str(&format!("k{},{t},{i}\n", i % 10));
        }
        let (s, body) = app.send_raw(Method::POST, "/upload", Some("text/csv"), text.into_bytes()).await;
        assert_eq!((s.as_u16(), body["code"].as_str()), (422, Some("INVALID_FIELD")), "{body}");
        assert!(body["detail"].as_str().unwrap().starts_with("line 50002: valid_time"), "{body}");
        // Nothing was written by any of them.
        assert!(app.values("all_versions=true").await.is_empty());
        let (_, runs) = app.get_json("/runs").await;
        assert_eq!(runs, json!([]));
        let (_, series) = app.get_json("/series").await;
        assert_eq!(series, json!([]));
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    }

    /// A client that sends the headers and part of the body, then stalls, gets 408 and a
    /// closed connection once the body read timeout passes.
    pub async fn slow_loris_body_times_out(b: Backend) {
        let timeout = Duration::from_millis(500);
        let app = spawn_app_with(b, HttpConfig { body_read_timeout: timeout, ..HttpConfig::default() }).await;
        for (method, path, ct) in [
            ("POST", "/upload", "application/json"),
            ("POST", "/upload", "text/csv"),
            ("POST", "/series", "application/json"),
            ("PUT", "/values", "application/json"),
        ] {
            let addr = app.base.trim_start_matches("http://");
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {ct}\r\ncontent-length: 100000\r\n\r\n{{\"run_start"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let started = tokio::time::Instant::now();
            let mut answer = Vec::new();
            let closed = loop {
                let mut chunk = [0u8; 4096];
                match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
                    Ok(Ok(0)) => break true,
                    Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
                    Ok(Err(_)) => break true,
                    Err(_) => break false,
                }
            };
            let elapsed = started.elapsed();
            let answer = String::from_utf8_lossy(&answer);
            assert!(closed, "{method} {path}: the connection stayed open; got {answer}");
            assert!(answer.starts_with("HTTP/1.1 408"), "{method} {path}: {answer}");
            assert!(elapsed >= timeout && elapsed < timeout * 10, "{method} {path}: answered after {elapsed:?}");
            let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
            assert_eq!(body["code"], "BODY_TIMEOUT", "{body}");
        }
        // A body that keeps coming, however slowly, is read to the end.
        let addr = app.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body = r#"{"name": "slow"}"#;
        let head = format!(
            "POST /series HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        for piece in body.as_bytes().chunks(6) {
            tokio::time::sleep(timeout / 3).await;
            stream.write_all(piece).await.unwrap();
        }
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer)).await.unwrap().unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        assert_eq!(app.values("").await.len(), 0);
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    }
}

per_backend!(cases;
    auth_off_table,
    auth_on_table,
    body_limit_table,
    big_upload_with_one_bad_row_writes_nothing,
    slow_loris_body_times_out,
);
