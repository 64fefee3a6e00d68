//! A real `timedb api` server process, as an operator starts it, and its memory.
//!
//! `timedb-bench all` measures the server as it is deployed: the release `timedb` binary
//! next to the benchmark's own executable, started with `timedb api --dsn D --port 0`.
//! Its stdout says where it listens (`serving http://ADDR`) and, on a first run, the
//! admin key (`API Key: …`). Being a process of its own, its memory can be read from
//! `/proc/PID/status` without counting the load generator's.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to drain and exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Find the `timedb` binary: `explicit` (from `--timedb` or `TIMEDB_BIN`), else the one
/// next to this executable (`target/release/timedb` beside `target/release/timedb-bench`).
pub fn locate_timedb(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path,
        None => {
            let exe = std::env::current_exe().context("finding this executable")?;
            exe.with_file_name(format!("timedb{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if !path.is_file() {
        bail!(
            "no timedb binary at {}: build it first (`cargo build --release -p timedb-server --bin timedb`), \
             or name one with --timedb PATH",
            path.display()
        );
    }
    Ok(path)
}

/// Run `timedb create tables --dsn D` (the schema without users tables: auth off).
pub async fn create_tables(bin: &Path, dsn: &str) -> anyhow::Result<()> {
    let output = Command::new(bin)
        .args(["create", "tables", "--dsn", dsn])
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {} create tables", bin.display()))?;
    if !output.status.success() {
        bail!(
            "`timedb create tables` failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A running `timedb api` process; killed if dropped without [`ServerProcess::stop`].
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    /// `http://ADDR`.
    pub base: String,
    /// The first-run admin key, when the server created the database's first user.
    pub key: Option<String>,
    log: PathBuf,
}

impl ServerProcess {
    /// Start `timedb api --dsn DSN --port 0 --max-body-mb 1024`; its stderr (logs) goes
    /// to `log`.
    pub async fn start(bin: &Path, dsn: &str, log: PathBuf) -> anyhow::Result<Self> {
        let stderr = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(bin)
            .args(["api", "--dsn", dsn, "--port", "0", "--max-body-mb", "1024"])
            // Settings that would change what is measured.
            .env_remove("TIMEDB_DEFAULT_RATE_LIMIT")
            .env_remove("TIMEDB_NO_QUERY_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} api", bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let mut key = None;
        let started = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(k) = line.trim().strip_prefix("API Key: ") {
                    key = Some(k.trim().to_owned());
                }
                if let Some((_, rest)) = line.split_once("serving http://") {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    return anyhow::Ok(Some(format!("http://{addr}")));
                }
            }
            Ok(None)
        })
        .await;
        let base = match started {
            Ok(Ok(Some(base))) => base,
            Ok(Ok(None)) => bail!("the server exited before serving: {}", log_tail(&log)),
            Ok(Err(e)) => bail!("reading the server's output: {e}"),
            Err(_) => bail!("the server did not start serving within {START_TIMEOUT:?}: {}", log_tail(&log)),
        };
        // Keep reading stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, pid, base, key, log })
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Stop as an operator would (SIGTERM: drain, flush, exit); kill after a timeout.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().await;
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!("the server exited with {status}: {}", log_tail(&self.log));
                }
            }
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("the server did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed it");
            }
        }
        Ok(())
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// A `/proc/PID/status` field in bytes (`VmRSS`, `VmHWM`); `None` off Linux.
fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..].trim_start_matches(':').trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// The peak resident set of a process over a span of time: `VmHWM` after resetting it
/// (`/proc/PID/clear_refs` ← 5) where the kernel allows, and in any case the highest
/// `VmRSS` seen by sampling every 10 ms; the larger of the two.
pub struct PeakRss {
    pid: u32,
    before: Option<u64>,
    hwm_reset: bool,
    running: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    pub fn start(pid: u32) -> Self {
        let before = status_bytes(pid, "VmRSS");
        let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let running = Arc::new(AtomicBool::new(true));
        let peak = Arc::new(AtomicU64::new(before.unwrap_or(0)));
        let (flag, max) = (running.clone(), peak.clone());
        // A thread, not a task: the sampling must not wait behind the load generator.
        let thread = std::thread::spawn(move || {
            while flag.load(Ordering::Relaxed) {
                if let Some(rss) = status_bytes(pid, "VmRSS") {
                    max.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Self { pid, before, hwm_reset, running, peak, thread: Some(thread) }
    }

    /// (RSS before, peak during), in bytes; `None` where `/proc` cannot tell.
    pub fn stop(mut self) -> (Option<u64>, Option<u64>) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let sampled = self.peak.load(Ordering::Relaxed);
        let hwm = if self.hwm_reset { status_bytes(self.pid, "VmHWM") } else { None };
        let peak = Some(sampled.max(hwm.unwrap_or(0))).filter(|&p| p > 0);
        (self.before, peak)
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}

/// A throwaway PostgreSQL cluster from `scripts/pg-cluster.sh`, stopped on drop.
pub struct Cluster {
    script: PathBuf,
    dir: tempfile::TempDir,
    pub dsn: String,
}

impl Cluster {
    /// Start one, or say why not (the caller then skips PostgreSQL). Never installs
    /// anything: without the server binaries it declines, naming what is missing.
    pub fn start() -> Result<Self, String> {
        let script = find_script().ok_or_else(|| {
            "no --pg DSN, and scripts/pg-cluster.sh was not found (run from the repository, or pass --pg)".to_owned()
        })?;
        let pg_bin = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
        if !Path::new(&pg_bin).join("initdb").is_file() {
            return Err(format!(
                "no --pg DSN, and no PostgreSQL server binaries at {pg_bin} to start a throwaway cluster \
                 (install Debian's postgresql package, or pass --pg DSN)"
            ));
        }
        let dir = tempfile::Builder::new().prefix("timedb-bench-pg-").tempdir().map_err(|e| e.to_string())?;
        let output = std::process::Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir.path().join("pg"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        let dsn = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let cluster = Self { script, dir, dsn };
        if !output.status.success() || !cluster.dsn.starts_with("postgres") {
            return Err(format!(
                "{} start failed ({}): {}",
                cluster.script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(cluster)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
    }
}

/// `scripts/pg-cluster.sh` under the working directory, or in the repository this
/// executable was built in (`target/<profile>/timedb-bench` → `../../scripts`).
fn find_script() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("scripts/pg-cluster.sh")];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).take(4).map(|dir| dir.join("scripts/pg-cluster.sh")));
    }
    candidates.into_iter().find(|p| p.is_file())
}
