//! The data commands as users run them: `timedb upload`, `read`, `series list`, `whoami`
//! and `completions` as processes, against a `timedb api` process on a fresh SQLite file.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use chrono::{DateTime, Utc};

mod common;

use common::process::{BIN, Server};

/// A running `timedb api` on an empty SQLite database of its own, with its first-run
/// admin key; dropping it ends the process.
struct Api {
    url: String,
    key: String,
    _server: Server,
}

fn start_api() -> Api {
    let server = Server::start_in(None, &[], &[]);
    let key = server.first_run_key().expect("the first run prints the admin key before it serves");
    Api { url: server.url.clone(), key, _server: server }
}

impl Api {
    /// Run a data command with this server's URL and `key` in the environment, as a
    /// user with `TIMEDB_URL`/`TIMEDB_API_KEY` exported would. The working directory has
    /// no database and `TIMEDB_DSN` is garbage: data commands must not need one.
    fn run_as(&self, key: Option<&str>, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(dir)
            .env("TIMEDB_URL", &self.url)
            .env("TIMEDB_DSN", "not-a-database://")
            .env_remove("TIMEDB_API_KEY")
            .stdin(Stdio::null());
        if let Some(key) = key {
            cmd.env("TIMEDB_API_KEY", key);
        }
        cmd.output().unwrap()
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.run_as(Some(&self.key), dir, args)
    }
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One value: (series_key, valid_time) and the value's bits (`None`: null).
type Row = ((String, DateTime<Utc>), Option<u64>);

/// The rows of a CSV with a header.
fn parse_rows(text: &str, key_col: &str) -> Vec<Row> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name} in {header:?}"));
    let (k, t, v) = (col(key_col), col("valid_time"), col("value"));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let time = DateTime::parse_from_rfc3339(f[t]).unwrap().with_timezone(&Utc);
            let value = (!f[v].is_empty()).then(|| f[v].parse::<f64>().unwrap().to_bits());
            ((f[k].to_owned(), time), value)
        })
        .collect()
}

/// ~20,000 rows over 4 series with awkward values: fractions, tiny, huge, negative, null.
fn sample_csv() -> String {
    let mut csv = String::from("sensor,valid_time,value\n");
    let start = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
    for h in 0..5_000i64 {
        let time = (start + chrono::Duration::hours(h)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for (s, key) in ["north.wind", "south.wind", "price", "load"].iter().enumerate() {
            let x = h as f64 + s as f64 / 7.0;
            let value = match (h + s as i64) % 11 {
                0 if h % 97 == 0 => String::new(),
                1 => format!("{}", x * 1e-9),
                2 => format!("{}", -x * 1e12),
                3 => format!("{}", 0.1 + 0.2 * x),
                _ => format!("{}", x.sin() * 100.0),
            };
            csv.push_str(&format!("{key},{time},{value}\n"));
        }
    }
    csv
}

#[test]
fn upload_then_read_round_trips_exactly() {
    let api = start_api();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let csv = sample_csv();
    std::fs::write(d.join("in.csv"), &csv).unwrap();

    let out = ok(api.run(
        d,
        &[
            "upload",
            "in.csv",
            "--series-key-column",
            "sensor",
            "--known-time",
            "2023-12-31T12:00:00Z",
            "--workflow-id",
            "cli-test",
        ],
    ));
    assert!(out.contains("Uploaded 20000 values in 4 series"), "{out}");

    ok(api.run(d, &["read", "--format", "csv", "-o", "out.csv"]));
    assert!(!d.join("out.csv.part").exists(), "the partial file is renamed into place");
    let sent = parse_rows(&csv, "sensor");
    let got = parse_rows(&std::fs::read_to_string(d.join("out.csv")).unwrap(), "series_key");
    assert_eq!(got.len(), 20_000);
    let by_key = |rows: &[Row]| rows.iter().cloned().collect::<BTreeMap<_, _>>();
    assert!(by_key(&got) == by_key(&sent), "every value comes back bit for bit");
    let order: Vec<_> = got.iter().map(|((k, t), _)| (*t, k.clone())).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "flat rows come ordered by (valid_time, series_key)");

    // Filters as flags: one series, a window, as of after the upload.
    let out = ok(api.run(
        d,
        &[
            "read",
            "--series-key",
            "price",
            "--start-valid",
            "2024-01-01T10:00:00Z",
            "--end-valid",
            "2024-01-01T13:00:00Z",
            "--end-known",
            "2024-01-01",
            "--format",
            "json",
        ],
    ));
    let body: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["count"], 3, "{body}");
    // As of before the run was known: nothing.
    let out = ok(api.run(d, &["read", "--end-known", "2023-12-31T11:00:00Z", "--format", "csv"]));
    assert_eq!(out.lines().count(), 1, "header only: {out}");
    // Overlapping mode shows known_time; the table is for humans.
    let out =
        ok(api
            .run(d, &["read", "--series-key", "load", "--end-valid", "2024-01-01T02:00:00Z", "--mode", "overlapping"]));
    assert!(out.contains("known_time") && out.contains("2023-12-31T12:00:00Z") && out.contains("(2 rows)"), "{out}");

    // Arrow to a file is an IPC stream (continuation marker first).
    ok(api.run(d, &["read", "--series-key", "load", "--format", "arrow", "-o", "out.arrow"]));
    assert_eq!(std::fs::read(d.join("out.arrow")).unwrap()[..4], [0xff; 4]);
}

#[test]
fn whoami_series_list_errors_and_completions() {
    let api = start_api();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    std::fs::write(d.join("a.csv"), "value_key,valid_time,value\ntemp,2025-01-01T00:00:00Z,1\n").unwrap();
    ok(api.run(d, &["upload", "a.csv"]));
    // From standard input, as an Arrow-less pipe: `-`.
    let mut child = Command::new(BIN)
        .args(["upload", "-", "--url", &api.url, "--api-key", &api.key])
        .current_dir(d)
        .env_remove("TIMEDB_API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"series_key,valid_time,value\nhumidity,2025-01-01T00:00:00Z,50\n").unwrap();
    }
    ok(child.wait_with_output().unwrap());

    let me: serde_json::Value = serde_json::from_str(&ok(api.run(d, &["whoami", "--json"]))).unwrap();
    assert_eq!((me["email"].as_str(), me["role"].as_str()), (Some("admin@localhost"), Some("admin")));
    assert!(ok(api.run(d, &["whoami"])).contains("admin@localhost"));

    let series: serde_json::Value = serde_json::from_str(&ok(api.run(d, &["series", "list", "--json"]))).unwrap();
    let keys: Vec<_> = series.as_array().unwrap().iter().map(|s| s["series_key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["humidity", "temp"]);
    let table = ok(api.run(d, &["series", "list"]));
    assert!(table.contains("Series (2)") && table.contains("temp") && table.contains("dimensionless"), "{table}");

    // Failures: non-zero exit and one line saying why.
    let one_line_error = |out: Output, needle: &str| {
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("error: {needle}")), "{err}");
    };
    one_line_error(api.run_as(Some("tdb_not_a_real_key"), d, &["whoami"]), "401 INVALID_KEY:");
    one_line_error(api.run_as(None, d, &["series", "list"]), "401 MISSING_KEY: API key required");
    one_line_error(api.run(d, &["upload", "missing.csv"]), "cannot read missing.csv");
    std::fs::write(d.join("bad.csv"), "value_key,valid_time,value\ntemp,not-a-time,1\n").unwrap();
    one_line_error(api.run(d, &["upload", "bad.csv"]), "422 ");
    std::fs::write(d.join("named.csv"), "name,valid_time,value\ntemp,2025-01-01T00:00:00Z,1\n").unwrap();
    one_line_error(
        api.run(d, &["upload", "named.csv", "--series-key-column", "sensor"]),
        "the CSV header has no column",
    );
    one_line_error(api.run(d, &["whoami", "--url", "http://127.0.0.1:1"]), "cannot reach the timedb server");

    let bash = ok(api.run(d, &["completions", "bash"]));
    assert!(bash.contains("_timedb") && bash.contains("upload"), "a bash completion script");
}

#[test]
fn wide_csv_uploads_one_series_per_column() {
    let api = start_api();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    // As `df.rename_axis("valid_time").to_csv()` writes it: empty cells are missing values
    // of a frame, `null` asks for a stored null.
    std::fs::write(
        d.join("wide.csv"),
        "valid_time,wind,\"solar, roof\",price\n\
         2025-01-01T00:00:00Z,1.5,0.1,40\n\
         2025-01-01T01:00:00Z,,0.30000000000000004,null\n\
         2025-01-01 02:00:00,-2e-9,,41.25\n",
    )
    .unwrap();
    let out = ok(api.run(d, &["upload", "wide.csv", "--known-time", "2024-12-31T12:00:00Z"]));
    assert!(out.contains("Uploaded 7 values in 3 series"), "auto-detected as wide: {out}");

    // Read back with a real CSV reader: a key with a comma comes back quoted.
    let read = ok(api.run(d, &["read", "--format", "csv"]));
    let mut reader = csv::Reader::from_reader(read.as_bytes());
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let got: Vec<(String, String, Option<u64>)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let value = (!r[col("value")].is_empty()).then(|| r[col("value")].parse::<f64>().unwrap().to_bits());
            (r[col("series_key")].to_owned(), r[col("valid_time")].to_owned(), value)
        })
        .collect();
    let row =
        |k: &str, h: u32, v: Option<f64>| (k.to_owned(), format!("2025-01-01T0{h}:00:00+00:00"), v.map(f64::to_bits));
    let expected = vec![
        row("price", 0, Some(40.0)),
        row("solar, roof", 0, Some(0.1)),
        row("wind", 0, Some(1.5)),
        row("price", 1, None),
        row("solar, roof", 1, Some(0.1 + 0.2)),
        row("price", 2, Some(41.25)),
        row("wind", 2, Some(-2e-9)),
    ];
    assert_eq!(got, expected, "every cell but the empty ones, bit for bit, in (valid_time, key) order");

    // `--wide` forces the shape: here `value` is a series, not the long form's value column.
    std::fs::write(d.join("forced.csv"), "valid_time,value,wind\n2025-02-01T00:00:00Z,1,2\n").unwrap();
    ok(api.run(d, &["upload", "forced.csv", "--wide"]));
    let series: serde_json::Value = serde_json::from_str(&ok(api.run(d, &["series", "list", "--json"]))).unwrap();
    let keys: Vec<_> = series.as_array().unwrap().iter().map(|s| s["series_key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["price", "solar, roof", "value", "wind"]);

    // Mistakes are named in the file's own terms, on one line, and nothing is uploaded.
    std::fs::write(d.join("bad.csv"), "valid_time,wind\n2025-03-01T00:00:00Z,1\n2025-03-01T01:00:00Z,n/a\n").unwrap();
    let out = api.run(d, &["upload", "bad.csv"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.trim_end(),
        "error: line 3, column 'wind': 'n/a' is not a finite number (leave the cell empty for no value)"
    );
    let after = ok(api.run(d, &["read", "--start-valid", "2025-03-01", "--format", "csv"]));
    assert_eq!(after.lines().count(), 1, "header only: {after}");
}
