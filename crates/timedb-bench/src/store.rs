//! `timedb-bench store`: ingest and streamed reads over HTTP, beside the same rows
//! written and read through the store API alone.
//!
//! Per backend, on a fresh database without users tables (authentication off):
//! one `POST /upload` JSON body of N values spread over S series (hourly valid times,
//! keys `s0…`), then `GET /values?mode=flat` over all of them, streamed and counted
//! byte by byte as a client would receive it. The baseline writes the same rows with
//! `Store::insert_run` into a second tenant of the same database and reads them back
//! with `Store::read_values`, so the "HTTP / store" column shows what HTTP, JSON and
//! request validation cost on top of the store.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{TimeZone, Utc};
use timedb::model::time::format_timestamp;
use timedb::model::{NewRun, RowInput, SeriesKey, Timestamp, ValueQuery, WorkflowId};
use timedb::{Store, TenantId};
use timedb_server::http::{DEFAULT_BODY_LIMIT, HttpConfig};

use crate::report::{self, Table};
use crate::target::{Backend, Database, PG_DSN_VAR, Server};

#[derive(clap::Args)]
pub struct StoreArgs {
    /// Values to upload and read back.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    values: u64,
    /// Series the values are spread over (round robin, hourly valid times).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    series: u64,
    /// Admin DSN of a PostgreSQL server to measure too; a database `timedb_bench_<uuid>`
    /// is created there and dropped at the end.
    #[arg(long, env = PG_DSN_VAR)]
    pg: Option<String>,
}

/// The rows every measurement writes: value `j` belongs to series `j % S` at hour `j / S`.
struct Rows {
    values: usize,
    series: usize,
}

impl Rows {
    /// When the run became known (the same for the HTTP and the store run).
    fn known_time() -> Timestamp {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
    }

    fn valid_time(&self, j: usize) -> Timestamp {
        Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::hours((j / self.series) as i64)
    }

    fn key(&self, j: usize) -> String {
        format!("s{}", j % self.series)
    }

    /// Values with a few decimals, exactly representable, of varying length.
    fn value(j: usize) -> f64 {
        (j % 100_000) as f64 / 8.0
    }

    /// The `POST /upload` body, in the upstream shape.
    fn upload_body(&self) -> Vec<u8> {
        let known = format_timestamp(Self::known_time());
        let mut body = String::with_capacity(self.values * 80 + 200);
        write!(
            body,
            r#"{{"workflow_id":"timedb-bench","run_start_time":"{known}","known_time":"{known}","value_rows":["#
        )
        .unwrap();
        for j in 0..self.values {
            if j > 0 {
                body.push(',');
            }
            write!(
                body,
                r#"{{"valid_time":"{}","value_key":"{}","value":{}}}"#,
                format_timestamp(self.valid_time(j)),
                self.key(j),
                Self::value(j)
            )
            .unwrap();
        }
        body.push_str("]}");
        body.into_bytes()
    }

    /// The same rows as a run for the store API.
    fn new_run(&self) -> anyhow::Result<NewRun> {
        let known = Self::known_time();
        let workflow = WorkflowId::parse("workflow_id", Some("timedb-bench"))?;
        let mut run = NewRun::new(workflow, known, None, Some(known), None)?;
        let keys: Vec<SeriesKey> =
            (0..self.series).map(|s| SeriesKey::parse("value_key", &self.key(s))).collect::<Result<_, _>>()?;
        for j in 0..self.values {
            run.push(
                j,
                RowInput {
                    key: keys[j % self.series].clone(),
                    series_id: None,
                    valid_time: self.valid_time(j),
                    valid_time_end: None,
                    value: Some(Self::value(j)),
                    annotation: None,
                    tags: None,
                },
            )?;
        }
        Ok(run.finish())
    }
}

/// One measured operation.
struct Measured {
    values: u64,
    seconds: f64,
    bytes: Option<u64>,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.values as f64 / self.seconds
    }
}

pub async fn run(args: StoreArgs) -> anyhow::Result<()> {
    let rows = Rows { values: args.values as usize, series: args.series as usize };
    eprintln!("timedb-bench store: building a JSON body of {} values…", rows.values);
    let body = rows.upload_body();
    let mut table =
        Table::new(&["store", "operation", "values", "seconds", "values/s", "MB", "HTTP / store (values/s)"]);
    let mut notes = vec![format!(
        "{} values over {} series ({} hourly valid times each); upload body {} MB of JSON",
        report::count(rows.values as f64),
        rows.series,
        report::count(rows.values.div_ceil(rows.series) as f64),
        report::megabytes(body.len() as u64),
    )];
    for backend in Backend::selected(args.pg) {
        eprintln!("timedb-bench store: {}…", backend.name());
        measure_backend(&backend, &rows, &body, &mut table, &mut notes)
            .await
            .with_context(|| format!("measuring {}", backend.name()))?;
    }
    print_header("store");
    print!("{}", table.render());
    println!();
    for note in notes {
        println!("- {note}");
    }
    Ok(())
}

/// What the run is, before its table.
pub fn print_header(subcommand: &str) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let build = if cfg!(debug_assertions) { "DEBUG build (not representative)" } else { "release build" };
    println!("timedb-bench {subcommand}: {build}, {cores} cores, client and server in one process\n");
}

async fn measure_backend(
    backend: &Backend,
    rows: &Rows,
    body: &[u8],
    table: &mut Table,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let db = Database::create(backend, false).await?;
    // One upload of a million values is larger than the default 64 MiB body limit.
    let config = HttpConfig { body_limit: DEFAULT_BODY_LIMIT.max(body.len() + 1024), ..HttpConfig::default() };
    let server = Server::start(db.store.clone(), config).await?;
    let client = reqwest::Client::new();
    let name = backend.name().to_owned();

    let upload = http_upload(&client, &server, rows, body.to_vec()).await?;
    let rss = RssSampler::start();
    let read = http_read(&client, &server, rows).await?;
    let (rss_before, rss_peak) = rss.stop().await;
    server.stop().await?;

    let tenant = TenantId::random();
    let (store_write, build_seconds) = store_insert(db.store.as_ref(), tenant, rows).await?;
    let rss_store = RssSampler::start();
    let store_read = store_read(db.store.as_ref(), tenant, rows).await?;
    let (rss_store_before, rss_store_peak) = rss_store.stop().await;

    let mut add = |op: &str, m: &Measured, baseline: Option<&Measured>| {
        table.row(vec![
            name.clone(),
            op.to_owned(),
            report::count(m.values as f64),
            report::seconds(m.seconds),
            report::count(m.per_second()),
            m.bytes.map(report::megabytes).unwrap_or_else(report::none),
            baseline.map(|b| report::ratio(m.per_second() / b.per_second())).unwrap_or_else(report::none),
        ])
    };
    add("POST /upload (JSON)", &upload, Some(&store_write));
    add("Store::insert_run", &store_write, None);
    add("GET /values flat (JSON, streamed)", &read, Some(&store_read));
    add("Store::read_values flat", &store_read, None);
    notes.push(format!(
        "{name}: building the baseline's `NewRun` (row validation, duplicate check) took {} s; \
         it is part of POST /upload but not of the Store::insert_run row",
        report::seconds(build_seconds)
    ));
    if let (Some(before), Some(peak), Some(store_before), Some(store_peak)) =
        (rss_before, rss_peak, rss_store_before, rss_store_peak)
    {
        notes.push(format!(
            "{name}: process RSS (client + server + store): {} MB before the HTTP read, peak {} MB during it; \
             {} MB before the store read, peak {} MB during it",
            report::megabytes(before),
            report::megabytes(peak),
            report::megabytes(store_before),
            report::megabytes(store_peak),
        ));
    }
    Ok(())
}

/// (a) One JSON upload, from the first byte sent to the answer read.
async fn http_upload(
    client: &reqwest::Client,
    server: &Server,
    rows: &Rows,
    body: Vec<u8>,
) -> anyhow::Result<Measured> {
    let bytes = body.len() as u64;
    let started = Instant::now();
    let response = client
        .post(server.url("/upload"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let answer = response.text().await?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.is_success() {
        bail!("POST /upload answered {status}: {}", truncate(&answer));
    }
    let answer: serde_json::Value = serde_json::from_str(&answer).context("POST /upload answer")?;
    let written = answer["values_written"].as_u64();
    if written != Some(rows.values as u64) {
        bail!("POST /upload wrote {written:?} values, expected {}", rows.values);
    }
    Ok(Measured { values: rows.values as u64, seconds, bytes: Some(bytes) })
}

/// (b) The whole flat read, streamed: bytes are counted as they arrive and dropped.
async fn http_read(client: &reqwest::Client, server: &Server, rows: &Rows) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut response = client.get(server.url("/values?mode=flat")).send().await?;
    let status = response.status();
    let mut bytes = 0u64;
    // The JSON body ends with `"count":N}`: keep its last bytes to check the count.
    let mut tail: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
        tail.extend_from_slice(&chunk[chunk.len().saturating_sub(64)..]);
        tail.drain(..tail.len().saturating_sub(64));
    }
    let seconds = started.elapsed().as_secs_f64();
    let tail = String::from_utf8_lossy(&tail);
    if !status.is_success() {
        bail!("GET /values answered {status}: {}", truncate(&tail));
    }
    let count =
        tail.rsplit_once("\"count\":").and_then(|(_, n)| n.trim().trim_end_matches('}').trim().parse::<u64>().ok());
    if count != Some(rows.values as u64) {
        bail!("GET /values returned count {count:?}, expected {} (body ends {tail:?})", rows.values);
    }
    Ok(Measured { values: rows.values as u64, seconds, bytes: Some(bytes) })
}

/// (c) The same rows through the store API: no HTTP, no JSON, no request parsing.
/// Also returns how long building the run took (not part of the measurement).
async fn store_insert(store: &dyn Store, tenant: TenantId, rows: &Rows) -> anyhow::Result<(Measured, f64)> {
    let started = Instant::now();
    let run = rows.new_run()?;
    let build_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let receipt = store.insert_run(tenant, run, None).await?;
    let seconds = started.elapsed().as_secs_f64();
    if receipt.values_written != rows.values {
        bail!("Store::insert_run wrote {} values, expected {}", receipt.values_written, rows.values);
    }
    Ok((Measured { values: rows.values as u64, seconds, bytes: None }, build_seconds))
}

async fn store_read(store: &dyn Store, tenant: TenantId, rows: &Rows) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut stream = store.read_values(tenant, ValueQuery::default()).await?;
    let mut count = 0u64;
    while let Some(batch) = stream.next_batch().await {
        count += batch?.len() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    if count != rows.values as u64 {
        bail!("Store::read_values returned {count} rows, expected {}", rows.values);
    }
    Ok(Measured { values: count, seconds, bytes: None })
}

fn truncate(text: &str) -> String {
    text.chars().take(300).collect()
}

/// Samples this process's resident set size while a read runs (Linux `/proc`; elsewhere
/// it reports nothing).
struct RssSampler {
    before: Option<u64>,
    running: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Option<u64>>,
}

impl RssSampler {
    fn start() -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let task = tokio::spawn(async move {
            let mut peak = None;
            while flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_bytes());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        });
        Self { before: rss_bytes(), running, task }
    }

    /// RSS before the read, and the peak seen while it ran.
    async fn stop(self) -> (Option<u64>, Option<u64>) {
        self.running.store(false, Ordering::Relaxed);
        let peak = self.task.await.ok().flatten();
        (self.before, peak)
    }
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}
