//! The benchmark binary runs end to end with tiny sizes and prints its table. Nothing
//! here looks at timings (SPEC §7: performance is measured by the benchmark, never by
//! timed tests). PostgreSQL is measured too by `store` and `verifier` when
//! `TIMEDB_BENCH_PG_DSN` is set; `all` runs on SQLite only.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bench_with(args: &[&str], envs: &[(&str, &Path)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_timedb-bench"));
    command.args(args);
    for (k, v) in envs {
        command.env(k, v);
    }
    let output = command.output().expect("run timedb-bench");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "timedb-bench {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn bench(args: &[&str]) -> String {
    bench_with(args, &[])
}

/// The markdown table rows (header and separator excluded) whose first cell is `store`.
fn rows<'a>(stdout: &'a str, store: &str) -> Vec<&'a str> {
    stdout.lines().filter(|l| l.starts_with(&format!("| {store} "))).collect()
}

/// The `timedb` server binary `all` starts: `TIMEDB_BIN`, else the one beside the
/// benchmark binary (`target/<profile>/timedb`). A workspace test run (`cargo nextest run
/// --workspace`, `cargo test --workspace`) has built it already, since timedb-server has
/// integration tests; a run of this package alone may not have, and then it is built
/// here — in a target directory of its own, because the outer cargo may still hold the
/// lock on this one.
fn timedb_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TIMEDB_BIN") {
        return PathBuf::from(path);
    }
    let bench = Path::new(env!("CARGO_BIN_EXE_timedb-bench"));
    let beside = bench.with_file_name(format!("timedb{}", std::env::consts::EXE_SUFFIX));
    if beside.is_file() {
        return beside;
    }
    let profile_dir = bench.parent().expect("target/<profile>");
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let target_dir = profile_dir.parent().expect("target").join("timedb-bench-smoke");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "timedb-server", "--bin", "timedb"]).env("CARGO_TARGET_DIR", &target_dir);
    if release {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build -p timedb-server --bin timedb failed");
    target_dir.join(if release { "release" } else { "debug" }).join(format!("timedb{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn all_prints_one_table_on_sqlite() {
    let timedb = timedb_binary();
    let out = bench_with(&["all", "--values", "2000", "--seconds", "1", "--no-pg"], &[("TIMEDB_BIN", &timedb)]);
    assert!(out.lines().any(|l| l.starts_with("| store ") && l.contains("per second")), "{out}");
    assert!(out.contains("PostgreSQL: skipped (--no-pg)"), "{out}");
    let sqlite = rows(&out, "sqlite");
    for m in [
        "raw insert",
        "POST /upload, 200 values",
        "POST /upload, 2,000 values",
        "GET /values flat",
        "GET /values overlapping",
        "auth on",
        "auth off",
    ] {
        assert!(sqlite.iter().any(|r| r.contains(m)), "no sqlite row for {m}:\n{out}");
    }
    for format in ["JSON", "CSV", "Arrow IPC"] {
        assert!(
            sqlite.iter().any(|r| r.contains("POST /upload, 2,000 values") && r.contains(&format!("| {format} "))),
            "no {format} upload row:\n{out}"
        );
    }
    assert!(rows(&out, "postgresql").is_empty(), "--no-pg measured PostgreSQL:\n{out}");
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
