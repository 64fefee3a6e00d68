//! `timedb-bench all`: issue 5's harness. One run measures the release `timedb api`
//! server, as a process of its own per database, on each store, and prints one table:
//!
//! - ingest: `POST /upload` with JSON, CSV and Arrow IPC bodies, at N/10 and N values
//!   over S series, each beside the store's raw-insert reference ([`crate::raw`]);
//! - reads: `GET /values` flat and overlapping over the N values, in each format,
//!   streamed and counted, with the server's peak RSS during the read;
//! - small reads: `GET /values` on an empty window from C connections for T seconds,
//!   on a database with authentication on (first run: the server made its admin key)
//!   and on one with it off (`timedb create tables`, no users tables).
//!
//! A format the server does not take yet is a row saying so (`unsupported (HTTP 415)`),
//! not a failed run. Anything else that goes wrong fails its row, and the run exits
//! non-zero after printing the table.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

use crate::bodies::{Dataset, Format, RowCounter, upload_path};
use crate::load;
use crate::process::{Cluster, PeakRss, ServerProcess, create_tables, locate_timedb};
use crate::raw;
use crate::report::{self, Table};
use crate::target::{PG_DSN_VAR, PgDatabase};

/// An empty window: nothing is ever stored there.
const EMPTY_READ: &str = "/values?start_valid=2000-01-01T00:00:00Z&end_valid=2000-01-01T01:00:00Z";

#[derive(clap::Args)]
pub struct AllArgs {
    /// Values of the large ingest and of every read; the small ingest is a tenth of it.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(10..))]
    values: u64,
    /// Series the values are spread over (round robin, hourly valid times).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    series: u64,
    /// Seconds of each small-read load run (auth on, auth off).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Concurrent connections of the small-read load.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    connections: u64,
    /// Admin DSN of a PostgreSQL server to measure too (databases `timedb_bench_<uuid>`
    /// are created there and dropped at the end). Without it, a throwaway cluster is
    /// started with scripts/pg-cluster.sh when PostgreSQL 15's server binaries are
    /// installed, and PostgreSQL is skipped, saying so, when they are not.
    #[arg(long, env = PG_DSN_VAR)]
    pg: Option<String>,
    /// Measure SQLite only.
    #[arg(long)]
    no_pg: bool,
    /// The `timedb` binary to start [default: the one next to this executable].
    #[arg(long, env = "TIMEDB_BIN")]
    timedb: Option<PathBuf>,
}

/// What became of one measurement.
enum Outcome {
    Done(Measured),
    /// The server does not take this format yet; the text says how it answered.
    Unsupported(String),
    Failed(String),
}

#[derive(Default)]
struct Measured {
    /// Values or requests.
    count: u64,
    seconds: f64,
    /// `values/s` or `requests/s`.
    unit: &'static str,
    bytes: Option<u64>,
    /// Server RSS before, and at its peak during, the measurement.
    rss: Option<(Option<u64>, Option<u64>)>,
    /// Ours ÷ raw (ingest), auth on ÷ auth off (small reads).
    ratio: Option<f64>,
    /// p50 and p99 in µs.
    latency: Option<(f64, f64)>,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.count as f64 / self.seconds
    }
}

struct Row {
    store: &'static str,
    measurement: String,
    format: &'static str,
    outcome: Outcome,
}

impl Row {
    fn done(&self) -> Option<&Measured> {
        match &self.outcome {
            Outcome::Done(m) => Some(m),
            _ => None,
        }
    }
}

const HEADERS: &[&str] = &[
    "store",
    "measurement",
    "format",
    "count",
    "seconds",
    "per second",
    "MB",
    "server RSS MB: peak (before)",
    "ratio",
    "p50 ms",
    "p99 ms",
];

fn cells(row: &Row) -> Vec<String> {
    let mut cells = vec![row.store.to_owned(), row.measurement.clone(), row.format.to_owned()];
    match &row.outcome {
        Outcome::Done(m) => {
            let mb = |b: Option<u64>| b.map(report::megabytes).unwrap_or_else(report::none);
            let ms = |us: f64| format!("{:.2}", us / 1e3);
            cells.extend([
                report::count(m.count as f64),
                report::seconds(m.seconds),
                format!("{} {}", report::count(m.per_second()), m.unit),
                mb(m.bytes),
                match m.rss {
                    Some((before, Some(peak))) => format!("{} ({})", mb(Some(peak)), mb(before)),
                    _ => report::none(),
                },
                m.ratio.map(report::ratio).unwrap_or_else(report::none),
                m.latency.map(|(p50, _)| ms(p50)).unwrap_or_else(report::none),
                m.latency.map(|(_, p99)| ms(p99)).unwrap_or_else(report::none),
            ]);
        }
        Outcome::Unsupported(text) | Outcome::Failed(text) => {
            cells.extend([report::none(), report::none(), text.clone()]);
            cells.extend((0..5).map(|_| report::none()));
        }
    }
    cells
}

/// Where a store's databases are made.
enum StoreKind {
    /// Files in this directory.
    Sqlite(PathBuf),
    /// Databases on the server this admin DSN names.
    Postgres(String),
}

impl StoreKind {
    fn name(&self) -> &'static str {
        match self {
            StoreKind::Sqlite(_) => "sqlite",
            StoreKind::Postgres(_) => "postgresql",
        }
    }

    /// A fresh, empty database: its DSN, and what removes it when dropped.
    async fn fresh(&self, name: &str) -> anyhow::Result<(String, Option<PgDatabase>)> {
        match self {
            StoreKind::Sqlite(dir) => Ok((format!("sqlite://{}", dir.join(format!("{name}.sqlite3")).display()), None)),
            StoreKind::Postgres(admin) => {
                let db = PgDatabase::create(admin).await?;
                Ok((db.dsn.clone(), Some(db)))
            }
        }
    }
}

/// What every measurement of the run shares.
struct Run {
    bin: PathBuf,
    dir: PathBuf,
    client: reqwest::Client,
    large: Dataset,
    small: Dataset,
    seconds: u64,
    connections: usize,
}

pub async fn run(args: AllArgs) -> anyhow::Result<()> {
    let bin = locate_timedb(args.timedb.clone())?;
    let dir = tempfile::Builder::new().prefix("timedb-bench-").tempdir()?;
    let series = args.series as usize;
    let run = Run {
        bin,
        dir: dir.path().to_owned(),
        client: reqwest::Client::new(),
        large: Dataset { values: args.values as usize, series },
        small: Dataset { values: (args.values / 10) as usize, series },
        seconds: args.seconds,
        connections: args.connections as usize,
    };

    let mut stores = vec![StoreKind::Sqlite(run.dir.clone())];
    let mut cluster = None;
    let pg_line = if args.no_pg {
        "PostgreSQL: skipped (--no-pg)".to_owned()
    } else if let Some(dsn) = args.pg.clone().filter(|d| !d.trim().is_empty()) {
        stores.push(StoreKind::Postgres(dsn));
        "PostgreSQL: the server --pg names".to_owned()
    } else {
        eprintln!("timedb-bench all: starting a throwaway PostgreSQL cluster (scripts/pg-cluster.sh)…");
        match Cluster::start() {
            Ok(c) => {
                stores.push(StoreKind::Postgres(c.dsn.clone()));
                cluster = Some(c);
                "PostgreSQL: a throwaway cluster from scripts/pg-cluster.sh (fsync=off), stopped at the end".to_owned()
            }
            Err(why) => format!("PostgreSQL: SKIPPED, {why}"),
        }
    };
    eprintln!("timedb-bench all: {pg_line}");

    let mut rows = Vec::new();
    for store in &stores {
        eprintln!("timedb-bench all: {}…", store.name());
        if let Err(e) = measure_store(&run, store, &mut rows).await {
            rows.push(Row {
                store: store.name(),
                measurement: "(the run on this store)".into(),
                format: "-",
                outcome: Outcome::Failed(format!("failed: {}", one_line(&format!("{e:#}")))),
            });
        }
    }
    drop(cluster);

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let build = if cfg!(debug_assertions) { "DEBUG build (not representative)" } else { "release build" };
    println!(
        "timedb-bench all: {build}, {cores} cores; server: {} (a `timedb api` process per database); \
         load generator: this process",
        run.bin.display()
    );
    println!("{pg_line}\n");
    let mut table = Table::new(HEADERS);
    for row in &rows {
        table.row(cells(row));
    }
    print!("{}", table.render());
    println!();
    for note in notes(&run) {
        println!("- {note}");
    }
    for line in targets(&rows) {
        println!("- {line}");
    }
    let failed = rows.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).count();
    drop(dir);
    anyhow::ensure!(failed == 0, "{failed} measurement(s) failed; see the table");
    Ok(())
}

fn notes(run: &Run) -> Vec<String> {
    vec![
        format!(
            "ingest: one run per upload, {} or {} values over {} series (hourly valid times), each into a tenant \
             of its own on one auth-off database; reads: a fresh server process on that database reads the {} values \
             of its JSON upload (flat, then overlapping), streamed and counted as they arrive",
            report::count(run.small.values as f64),
            report::count(run.large.values as f64),
            run.large.series,
            report::count(run.large.values as f64),
        ),
        "raw: the same rows into an equivalent `value_versions` table (same columns, primary key and indexes) in a \
         database of its own: SQLite one prepared INSERT per row in one transaction (rusqlite), PostgreSQL one binary \
         COPY in one transaction (tokio-postgres)"
            .into(),
        format!(
            "small reads: `GET {EMPTY_READ}` from {} closed-loop keep-alive connections for {} s each; auth on: a \
             first-run database, the server's admin key in X-API-Key; auth off: a database made by `timedb create \
             tables`; both tenants hold the same 24-value run outside the window",
            run.connections, run.seconds
        ),
        "ratio: ingest rows, ours ÷ raw (values/s); the auth-on row, auth on ÷ auth off (requests/s). MB: the \
         request or response body (10^6 bytes). Server RSS: VmHWM (reset before each measurement) and VmRSS \
         sampled every 10 ms, of the server process alone"
            .into(),
    ]
}

async fn measure_store(run: &Run, store: &StoreKind, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let name = store.name();
    let mut push = |measurement: String, format: &'static str, outcome: Outcome| {
        rows.push(Row { store: name, measurement, format, outcome });
    };

    // The raw references, with no server running; their rows follow each size's uploads.
    let mut raw_rows = Vec::new();
    let raw_db = match store {
        StoreKind::Postgres(admin) => Some(PgDatabase::create(admin).await?),
        StoreKind::Sqlite(_) => None,
    };
    for dataset in [run.small, run.large] {
        eprintln!("timedb-bench all: {name}: raw insert of {} values…", dataset.values);
        let (label, seconds) = match (&raw_db, store) {
            (Some(db), _) => ("raw insert: binary COPY, 1 transaction", raw::postgres(&db.dsn, dataset).await),
            (None, StoreKind::Sqlite(dir)) => {
                let dir = dir.clone();
                let seconds = tokio::task::spawn_blocking(move || raw::sqlite(&dir, dataset)).await?;
                ("raw insert: prepared INSERT, 1 transaction", seconds)
            }
            (None, StoreKind::Postgres(_)) => unreachable!("a PostgreSQL store has its raw database"),
        };
        let outcome = match seconds {
            Ok(seconds) => Outcome::Done(Measured {
                count: dataset.values as u64,
                seconds,
                unit: "values/s",
                ..Default::default()
            }),
            Err(e) => Outcome::Failed(format!("failed: {}", one_line(&format!("{e:#}")))),
        };
        raw_rows.push((dataset.values, format!("{label}, {} values", report::count(dataset.values as f64)), outcome));
    }
    drop(raw_db);
    let raw_rates: Vec<(usize, f64)> = raw_rows
        .iter()
        .filter_map(|(values, _, outcome)| match outcome {
            Outcome::Done(m) => Some((*values, m.per_second())),
            _ => None,
        })
        .collect();
    let raw_rate = |values: usize| raw_rates.iter().find(|(v, _)| *v == values).map(|(_, r)| *r);
    let mut raw_rows = raw_rows.into_iter();

    // Ingest, on a database made as an operator makes one without authentication.
    let (data_dsn, _data_db) = store.fresh("data").await?;
    create_tables(&run.bin, &data_dsn).await?;
    let server = ServerProcess::start(&run.bin, &data_dsn, run.dir.join(format!("{name}-ingest.log"))).await?;
    let mut read_tenant = None;
    for dataset in [run.small, run.large] {
        for format in Format::ALL {
            eprintln!("timedb-bench all: {name}: POST /upload, {} values, {}…", dataset.values, format.name());
            let tenant = uuid::Uuid::new_v4().to_string();
            let body = dataset.body(format, &tenant)?;
            let mut outcome = upload(run, &server, format, &tenant, body, dataset.values).await;
            if let Outcome::Done(m) = &mut outcome {
                m.ratio = raw_rate(dataset.values).map(|raw| m.per_second() / raw);
                if dataset.values == run.large.values && format == Format::Json {
                    read_tenant = Some(tenant);
                }
            }
            push(format!("POST /upload, {} values", report::count(dataset.values as f64)), format.name(), outcome);
        }
        if let Some((_, label, outcome)) = raw_rows.next() {
            push(label, "-", outcome);
        }
    }
    server.stop().await?;

    // Reads, by a fresh server process: its memory is the read's, not the uploads' leftovers.
    let server = ServerProcess::start(&run.bin, &data_dsn, run.dir.join(format!("{name}-read.log"))).await?;
    for mode in ["flat", "overlapping"] {
        for format in Format::ALL {
            let outcome = match &read_tenant {
                Some(tenant) => {
                    eprintln!("timedb-bench all: {name}: GET /values {mode}, {}…", format.name());
                    read(run, &server, mode, format, tenant, run.large.values as u64).await
                }
                None => Outcome::Failed("skipped: the JSON upload these values come from failed".into()),
            };
            push(format!("GET /values {mode}, streamed"), format.name(), outcome);
        }
    }
    server.stop().await?;

    // Small reads with authentication off, then on.
    eprintln!("timedb-bench all: {name}: small reads, auth off…");
    let (off_dsn, _off_db) = store.fresh("auth-off").await?;
    create_tables(&run.bin, &off_dsn).await?;
    let server = ServerProcess::start(&run.bin, &off_dsn, run.dir.join(format!("{name}-auth-off.log"))).await?;
    anyhow::ensure!(server.key.is_none(), "a database made by `timedb create tables` got an admin key");
    let off = small_reads(run, &server).await;
    server.stop().await?;

    eprintln!("timedb-bench all: {name}: small reads, auth on…");
    let (on_dsn, _on_db) = store.fresh("auth-on").await?;
    let server = ServerProcess::start(&run.bin, &on_dsn, run.dir.join(format!("{name}-auth-on.log"))).await?;
    anyhow::ensure!(server.key.is_some(), "the first run printed no `API Key:` line");
    let mut on = small_reads(run, &server).await;
    server.stop().await?;

    if let (Outcome::Done(on), Outcome::Done(off)) = (&mut on, &off) {
        on.ratio = Some(on.per_second() / off.per_second());
    }
    let label = format!("GET /values empty window, {} conn.", run.connections);
    push(format!("{label}, auth on"), "JSON", on);
    push(format!("{label}, auth off"), "JSON", off);
    Ok(())
}

/// One upload, timed from the first byte sent to the answer read.
async fn upload(
    run: &Run,
    server: &ServerProcess,
    format: Format,
    tenant: &str,
    body: Vec<u8>,
    values: usize,
) -> Outcome {
    let bytes = body.len() as u64;
    let url = server.url(&upload_path(format, tenant));
    let rss = PeakRss::start(server.pid);
    let started = Instant::now();
    let sent = async {
        let response = run.client.post(&url).header(CONTENT_TYPE, format.content_type()).body(body).send().await?;
        let status = response.status();
        anyhow::Ok((status, response.text().await?))
    }
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let rss = rss.stop();
    let (status, answer) = match sent {
        Ok(answered) => answered,
        Err(e) => {
            // A server that refuses a body may answer before reading it all and close the
            // connection under the client: ask again with a tiny body to see why.
            let probe =
                run.client.post(&url).header(CONTENT_TYPE, format.content_type()).body(tiny_body(format)).send();
            return match probe.await {
                Ok(r) if r.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE => unsupported(r.status()),
                _ => Outcome::Failed(format!("failed: {}", one_line(&format!("{e:#}")))),
            };
        }
    };
    if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return unsupported(status);
    }
    if !status.is_success() {
        return Outcome::Failed(format!("failed: HTTP {}: {}", status.as_u16(), one_line(&answer)));
    }
    let written = serde_json::from_str::<serde_json::Value>(&answer).ok().and_then(|a| a["values_written"].as_u64());
    if written != Some(values as u64) {
        return Outcome::Failed(format!("failed: wrote {written:?} values, expected {values}"));
    }
    Outcome::Done(Measured {
        count: values as u64,
        seconds,
        unit: "values/s",
        bytes: Some(bytes),
        rss: Some(rss),
        ..Default::default()
    })
}

fn tiny_body(format: Format) -> Vec<u8> {
    let one = Dataset { values: 1, series: 1 };
    match format {
        Format::Json => one.json_body(None),
        Format::Csv => one.csv_body(),
        Format::Arrow => one.arrow_body().unwrap_or_default(),
    }
}

fn unsupported(status: StatusCode) -> Outcome {
    Outcome::Unsupported(format!("unsupported (HTTP {})", status.as_u16()))
}

/// One whole read, streamed: chunks are counted as they arrive and dropped.
async fn read(run: &Run, server: &ServerProcess, mode: &str, format: Format, tenant: &str, expected: u64) -> Outcome {
    let url = server.url(&format!("/values?mode={mode}&format={}&tenant_id={tenant}", format.query()));
    let rss = PeakRss::start(server.pid);
    let started = Instant::now();
    let result = async {
        let mut response = run.client.get(&url).header(reqwest::header::ACCEPT, format.content_type()).send().await?;
        let status = response.status();
        let content_type =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            // A format the server does not know yet: 415, or 422 naming `format`.
            let refused_format = status == StatusCode::UNSUPPORTED_MEDIA_TYPE
                || (status == StatusCode::UNPROCESSABLE_ENTITY && text.contains("format"));
            return anyhow::Ok(if refused_format {
                unsupported(status)
            } else {
                Outcome::Failed(format!("failed: HTTP {}: {}", status.as_u16(), one_line(&text)))
            });
        }
        if !content_type.starts_with(format.content_type()) {
            return Ok(Outcome::Unsupported(format!("unsupported (answered {content_type})")));
        }
        let mut counter = RowCounter::new(format);
        let mut bytes = 0u64;
        while let Some(chunk) = response.chunk().await? {
            bytes += chunk.len() as u64;
            counter.feed(chunk)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let count = counter.finish()?;
        if count != expected {
            return Ok(Outcome::Failed(format!("failed: {count} rows, expected {expected}")));
        }
        Ok(Outcome::Done(Measured { count, seconds, unit: "values/s", bytes: Some(bytes), ..Default::default() }))
    }
    .await;
    let rss = rss.stop();
    match result {
        Ok(Outcome::Done(mut m)) => {
            m.rss = Some(rss);
            Outcome::Done(m)
        }
        Ok(other) => other,
        Err(e) => Outcome::Failed(format!("failed: {}", one_line(&format!("{e:#}")))),
    }
}

/// Seed the caller's tenant with a small run outside the empty window, then load it.
async fn small_reads(run: &Run, server: &ServerProcess) -> Outcome {
    let measured = async {
        let seed = Dataset { values: 24, series: 1 };
        let mut request = run.client.post(server.url("/upload")).header(CONTENT_TYPE, "application/json");
        if let Some(key) = &server.key {
            request = request.header("x-api-key", key);
        }
        let response = request.body(seed.json_body(None)).send().await?;
        let status = response.status();
        let answer = response.text().await?;
        anyhow::ensure!(status.is_success(), "seeding: POST /upload answered {status}: {}", one_line(&answer));

        let rss = PeakRss::start(server.pid);
        let result = load::hammer(
            &server.url(EMPTY_READ),
            server.key.as_deref(),
            run.connections,
            Duration::from_secs(run.seconds),
        )
        .await
        .with_context(|| format!("server log: {}", server.log_tail()))?;
        let rss = rss.stop();
        anyhow::Ok(Measured {
            count: result.requests,
            seconds: result.seconds,
            unit: "requests/s",
            rss: Some(rss),
            latency: Some((result.latencies.percentile_us(50.0), result.latencies.percentile_us(99.0))),
            ..Default::default()
        })
    }
    .await;
    match measured {
        Ok(m) => Outcome::Done(m),
        Err(e) => Outcome::Failed(format!("failed: {}", one_line(&format!("{e:#}")))),
    }
}

/// SPEC §7's targets (issue 5), against this run's rows: one line per target and store.
fn targets(rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    for store in ["sqlite", "postgresql"] {
        let of_store: Vec<&Row> = rows.iter().filter(|r| r.store == store).collect();
        if of_store.is_empty() {
            continue;
        }
        let find = |prefix: &str, format: &str| {
            of_store.iter().find(|r| r.measurement.starts_with(prefix) && r.format == format).and_then(|r| r.done())
        };
        let uploads: Vec<(&Row, &Measured)> = of_store
            .iter()
            .filter(|r| r.measurement.starts_with("POST /upload"))
            .filter_map(|r| r.done().map(|m| (*r, m)))
            .collect();
        let large = uploads.iter().map(|(_, m)| m.count).max().unwrap_or(0);
        let bulk_target = if store == "sqlite" { 1_000_000.0 } else { 300_000.0 };
        for format in Format::ALL {
            let target = if format == Format::Json { 300_000.0 } else { bulk_target };
            if let Some((_, m)) = uploads.iter().find(|(r, m)| r.format == format.name() && m.count == large) {
                out.push(format!(
                    "{store}: {} ingest ≥ {} values/s: {} at {} values, {}",
                    format.name(),
                    report::count(target),
                    report::count(m.per_second()),
                    report::count(m.count as f64),
                    verdict(m.per_second() >= target)
                ));
            }
        }
        let ratios: Vec<f64> = uploads.iter().filter_map(|(_, m)| m.ratio).collect();
        if !ratios.is_empty() {
            let worst = ratios.iter().cloned().fold(f64::INFINITY, f64::min);
            out.push(format!(
                "{store}: ingest ≥ 50% of the raw insert: worst {:.0}%, {}",
                worst * 100.0,
                verdict(worst >= 0.5)
            ));
        }
        for format in Format::ALL {
            if let Some(m) = find("GET /values flat", format.name()) {
                let peak = m.rss.and_then(|(_, p)| p);
                out.push(format!(
                    "{store}: flat read ({}) ≥ 1,000,000 values/s with server RSS ≤ 200 MB: {} values/s, peak {} MB, {}",
                    format.name(),
                    report::count(m.per_second()),
                    peak.map(report::megabytes).unwrap_or_else(report::none),
                    verdict(m.per_second() >= 1e6 && peak.is_some_and(|p| p <= 200_000_000))
                ));
            }
        }
        let on = of_store.iter().find(|r| r.measurement.ends_with("auth on")).and_then(|r| r.done());
        let off = of_store.iter().find(|r| r.measurement.ends_with("auth off")).and_then(|r| r.done());
        if let Some(on) = on {
            let p99 = on.latency.map_or(f64::INFINITY, |(_, p99)| p99);
            out.push(format!(
                "{store}: small authenticated reads ≥ 30,000 requests/s, p99 ≤ 5 ms: {} requests/s, p99 {:.2} ms, {}",
                report::count(on.per_second()),
                p99 / 1e3,
                verdict(on.per_second() >= 30_000.0 && p99 <= 5_000.0)
            ));
            if let Some(off) = off {
                let overhead = 1.0 - on.per_second() / off.per_second();
                out.push(format!(
                    "{store}: auth overhead ≤ 15%: {:+.1}% requests/s with auth on, {}",
                    -overhead * 100.0,
                    verdict(overhead <= 0.15)
                ));
            }
        }
    }
    out
}

/// An error or answer on one line, cut to a table cell's worth.
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = line.chars().take(160).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    cut
}
