//! `timedb-bench verifier`: what API keys cost.
//!
//! In-process, on a fresh database with the users tables: N users with one key each are
//! created through the store (as the CLI does), then `Verifier::verify` is called
//! directly — on cache hits (after a warm-up, the same keys over and over) and on cache
//! misses (the cache is cleared, then every key is verified once: one indexed lookup
//! each) — from one task and from 16 concurrent tasks.
//!
//! Over HTTP: 64 closed-loop clients send `GET /values` for an empty window to a server
//! with authentication on (presenting a key) and to one with authentication off (a
//! database without users tables), so the difference is what authentication adds to the
//! cheapest data request. Both callers' tenants hold the same small run (outside the
//! window), so both reads do the same store work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{TimeZone, Utc};
use timedb::model::{Email, NewRun, Role, RowInput, SeriesKey, WorkflowId};
use timedb::{Store, TenantId};
use timedb_server::auth::{AuthConfig, Verifier, mint};
use timedb_server::http::HttpConfig;

use crate::load::{self, Latencies};
use crate::report::{self, Table};
use crate::target::{Backend, Database, PG_DSN_VAR, Server};

/// Concurrent tasks of the concurrent verification rows.
const TASKS: usize = 16;
/// Concurrent HTTP clients.
const CLIENTS: usize = 64;
/// An empty window: nothing is ever stored there.
const EMPTY_READ: &str = "/values?start_valid=2000-01-01T00:00:00Z&end_valid=2000-01-01T01:00:00Z";

#[derive(clap::Args)]
pub struct VerifierArgs {
    /// Users (one key each) to create.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
    /// Verifications per cache-hit measurement.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    iterations: u64,
    /// Verifications per cache-miss measurement (each is a database lookup); default:
    /// `--iterations`, at most 20,000.
    #[arg(long)]
    miss_iterations: Option<u64>,
    /// Duration of each HTTP load run, in seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Admin DSN of a PostgreSQL server to measure too; databases `timedb_bench_<uuid>`
    /// are created there and dropped at the end.
    #[arg(long, env = PG_DSN_VAR)]
    pg: Option<String>,
}

const HEADERS: &[&str] =
    &["store", "measurement", "tasks", "operations", "seconds", "ops/s", "µs/op", "p50 µs", "p99 µs"];

/// One row of the table.
struct Row {
    measurement: String,
    tasks: usize,
    ops: u64,
    seconds: f64,
    /// Per-operation latencies, where each was timed.
    latencies: Option<Latencies>,
}

impl Row {
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    fn cells(&self, store: &str) -> Vec<String> {
        let pct = |p| self.latencies.as_ref().map(|l| report::micros(l.percentile_us(p))).unwrap_or_else(report::none);
        vec![
            store.to_owned(),
            self.measurement.clone(),
            self.tasks.to_string(),
            report::count(self.ops as f64),
            report::seconds(self.seconds),
            report::count(self.per_second()),
            report::micros(self.seconds * 1e6 / self.ops as f64),
            pct(50.0),
            pct(99.0),
        ]
    }
}

pub async fn run(args: VerifierArgs) -> anyhow::Result<()> {
    let mut table = Table::new(HEADERS);
    let mut notes = vec![format!(
        "µs/op is wall time ÷ operations (the inverse of ops/s); p50/p99 are per-operation latencies where each \
         operation was timed (cache hits are not, as timing them would cost a measurable share of them)"
    )];
    for backend in Backend::selected(args.pg.clone()) {
        eprintln!("timedb-bench verifier: {}…", backend.name());
        let rows = measure_backend(&backend, &args).await.with_context(|| format!("measuring {}", backend.name()))?;
        for row in &rows {
            table.row(row.cells(backend.name()));
        }
        let find = |m: &str| rows.iter().find(|r| r.measurement.starts_with(m));
        if let (Some(on), Some(off)) = (find("GET /values, auth on"), find("GET /values, auth off")) {
            let (on_p99, off_p99) = match (&on.latencies, &off.latencies) {
                (Some(a), Some(b)) => (a.percentile_us(99.0), b.percentile_us(99.0)),
                _ => (0.0, 0.0),
            };
            notes.push(format!(
                "{}: auth on serves {:.1}% {} requests/s than auth off; p99 {} µs vs {} µs",
                backend.name(),
                (1.0 - on.per_second() / off.per_second()).abs() * 100.0,
                if on.per_second() <= off.per_second() { "fewer" } else { "more" },
                report::micros(on_p99),
                report::micros(off_p99),
            ));
        }
    }
    crate::store::print_header("verifier");
    print!("{}", table.render());
    println!();
    for note in notes {
        println!("- {note}");
    }
    Ok(())
}

async fn measure_backend(backend: &Backend, args: &VerifierArgs) -> anyhow::Result<Vec<Row>> {
    let db = Database::create(backend, true).await?;
    let verifier = Verifier::new(db.store.clone(), AuthConfig::default(), None).await?;
    let mut rows = Vec::new();

    // The keys' tenant holds a little data (outside the window read below), as the
    // anonymous server's default tenant does: the two reads then do the same work.
    let tenant = TenantId::random();
    seed(db.store.as_ref(), tenant).await?;
    let started = Instant::now();
    let keys = Arc::new(create_keys(&db, &verifier, tenant, args.keys as usize).await?);
    rows.push(Row {
        measurement: "create user + key (Store::create_user)".into(),
        tasks: 1,
        ops: keys.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
        latencies: None,
    });

    // Warm-up: every key once, so what follows are cache hits.
    for key in keys.iter() {
        verifier.verify(key).await.map_err(|e| anyhow::anyhow!("a fresh key was refused: {e:?}"))?;
    }
    rows.push(verify_hits(&verifier, &keys, 1, args.iterations).await?);
    rows.push(verify_hits(&verifier, &keys, TASKS, args.iterations).await?);
    let misses = args.miss_iterations.unwrap_or(args.iterations.min(20_000)).max(1);
    rows.push(verify_misses(&verifier, &keys, 1, misses).await?);
    rows.push(verify_misses(&verifier, &keys, TASKS, misses).await?);

    let duration = Duration::from_secs(args.seconds);
    let on = Server::start(db.store.clone(), HttpConfig::default()).await?;
    let result = load::hammer(&on.url(EMPTY_READ), Some(&keys[0]), CLIENTS, duration).await?;
    on.stop().await?;
    rows.push(http_row("GET /values, auth on (X-API-Key), empty window", result));

    let anonymous = Database::create(backend, false).await?;
    seed(anonymous.store.as_ref(), TenantId::DEFAULT).await?;
    let off = Server::start(anonymous.store.clone(), HttpConfig::default()).await?;
    let result = load::hammer(&off.url(EMPTY_READ), None, CLIENTS, duration).await?;
    off.stop().await?;
    rows.push(http_row("GET /values, auth off, empty window", result));
    Ok(rows)
}

/// `n` reader users of one tenant, one key each, made as `timedb users create` makes them.
async fn create_keys(db: &Database, verifier: &Verifier, tenant: TenantId, n: usize) -> anyhow::Result<Vec<String>> {
    let hasher = verifier.hasher().context("authentication is off on a database with users tables")?;
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let (key, stored) = mint(&verifier.config.format, hasher, Role::Reader.scopes(), None, None, None);
        let email = Email::parse("email", &format!("bench{i}@example.com"))?;
        db.store.create_user(tenant, email, Role::Reader, stored, Some("timedb-bench".into())).await?;
        keys.push(key.reveal().to_owned());
    }
    Ok(keys)
}

/// One run of a day of hourly values in 2024 for `tenant`, far from the empty window.
async fn seed(store: &dyn Store, tenant: TenantId) -> anyhow::Result<()> {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let mut run = NewRun::new(WorkflowId::parse("workflow_id", Some("timedb-bench"))?, start, None, Some(start), None)?;
    let key = SeriesKey::parse("value_key", "s0")?;
    for h in 0..24 {
        let valid_time = start + chrono::Duration::hours(h);
        let row = RowInput {
            key: key.clone(),
            series_id: None,
            valid_time,
            valid_time_end: None,
            value: Some(h as f64),
            annotation: None,
            tags: None,
        };
        run.push(h as usize, row)?;
    }
    store.insert_run(tenant, run.finish(), None).await?;
    Ok(())
}

/// `iterations` cache-hit verifications spread over `tasks` tasks, cycling through the keys.
async fn verify_hits(
    verifier: &Arc<Verifier>,
    keys: &Arc<Vec<String>>,
    tasks: usize,
    iterations: u64,
) -> anyhow::Result<Row> {
    let per_task = iterations.div_ceil(tasks as u64) as usize;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (verifier, keys) = (verifier.clone(), keys.clone());
            tokio::spawn(async move {
                for i in 0..per_task {
                    let key = &keys[(t + i * tasks) % keys.len()];
                    if let Err(e) = verifier.verify(key).await {
                        bail!("a valid key was refused: {e:?}");
                    }
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.await??;
    }
    Ok(Row {
        measurement: "Verifier::verify, cache hit".into(),
        tasks,
        ops: (per_task * tasks) as u64,
        seconds: started.elapsed().as_secs_f64(),
        latencies: None,
    })
}

/// At least `target` cache-miss verifications: rounds of clearing the cache and then
/// verifying every key once, the keys split between `tasks` tasks so no task can hit an
/// entry another task's lookup just cached.
async fn verify_misses(
    verifier: &Arc<Verifier>,
    keys: &Arc<Vec<String>>,
    tasks: usize,
    target: u64,
) -> anyhow::Result<Row> {
    let mut latencies = Vec::with_capacity(target as usize + keys.len());
    let started = Instant::now();
    while (latencies.len() as u64) < target {
        verifier.clear_cache();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let (verifier, keys) = (verifier.clone(), keys.clone());
                tokio::spawn(async move {
                    let mut timed = Vec::new();
                    for key in keys.iter().skip(t).step_by(tasks) {
                        let sent = Instant::now();
                        if let Err(e) = verifier.verify(key).await {
                            bail!("a valid key was refused: {e:?}");
                        }
                        timed.push(sent.elapsed().as_nanos() as u64);
                    }
                    Ok(timed)
                })
            })
            .collect();
        for h in handles {
            latencies.extend(h.await??);
        }
    }
    Ok(Row {
        measurement: "Verifier::verify, cache miss".into(),
        tasks,
        ops: latencies.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
        latencies: Some(Latencies::new(latencies)),
    })
}

fn http_row(measurement: &str, result: load::LoadResult) -> Row {
    Row {
        measurement: measurement.into(),
        tasks: CLIENTS,
        ops: result.requests,
        seconds: result.seconds,
        latencies: Some(result.latencies),
    }
}
