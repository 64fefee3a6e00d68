//! The benchmark binary runs end to end with tiny sizes and prints its table. Nothing
//! here looks at timings (SPEC §7: performance is measured by the benchmark, never by
//! timed tests). PostgreSQL is measured too when `TIMEDB_BENCH_PG_DSN` is set.

use std::process::Command;

fn bench(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_timedb-bench")).args(args).output().expect("run timedb-bench");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "timedb-bench {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The markdown table rows (header and separator excluded) whose first cell is `store`.
fn rows<'a>(stdout: &'a str, store: &str) -> Vec<&'a str> {
    stdout.lines().filter(|l| l.starts_with(&format!("| {store} "))).collect()
}

#[test]
fn store_prints_upload_and_read_rows() {
    let out = bench(&["store", "--values", "200", "--series", "2"]);
    assert!(out.lines().any(|l| l.starts_with("| store ") && l.contains("values/s")), "{out}");
    let sqlite = rows(&out, "sqlite");
    for op in ["POST /upload", "Store::insert_run", "GET /values", "Store::read_values"] {
        assert!(sqlite.iter().any(|r| r.contains(op) && r.contains("| 200 ")), "no sqlite row for {op}:\n{out}");
    }
}

#[test]
fn verifier_prints_verification_and_http_rows() {
    let out = bench(&["verifier", "--keys", "3", "--iterations", "100", "--seconds", "1"]);
    assert!(out.lines().any(|l| l.starts_with("| store ") && l.contains("ops/s")), "{out}");
    let sqlite = rows(&out, "sqlite");
    for m in ["cache hit", "cache miss", "auth on", "auth off"] {
        assert!(sqlite.iter().any(|r| r.contains(m)), "no sqlite row for {m}:\n{out}");
    }
}
