//! The real `timedb` binary in tests: a clean command line and a served `timedb api`
//! process that never outlives its test.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_timedb");

/// Variables that would change what a spawned `timedb` does; tests set what they need.
const AMBIENT: &[&str] = &[
    "TIMEDB_DSN",
    "DATABASE_URL",
    "TIMEDB_SECRET",
    "TIMEDB_KEY_PREFIX",
    "TIMEDB_KEY_ENVIRONMENT",
    "TIMEDB_LOG",
    "RUST_LOG",
    "TIMEDB_NO_QUERY_KEY",
    "TIMEDB_DEFAULT_RATE_LIMIT",
    "TIMEDB_FAILED_AUTH_LIMIT",
];

pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    for var in AMBIENT {
        cmd.env_remove(var);
    }
    cmd.current_dir(std::env::temp_dir()).stdin(Stdio::null());
    cmd
}

/// The notebook's `re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', s)`.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A running `timedb api --port 0`, its stdout and stderr in files of its own. Dropping it
/// ends the process.
pub struct Server {
    pub child: Child,
    pub url: String,
    stdout: PathBuf,
    stderr: PathBuf,
    _logs: tempfile::TempDir,
}

impl Server {
    /// Start `timedb api --dsn DSN --port 0` with `envs` and wait until it serves.
    pub fn start(dsn: &str, envs: &[(&str, &str)]) -> Server {
        Server::start_in(None, &["--dsn", dsn], envs)
    }

    /// Start `timedb api --port 0 ARGS…` with `envs` in `dir` (by default a temporary
    /// directory of the server's own, where the embedded default database then lives) and
    /// wait until it serves.
    pub fn start_in(dir: Option<&Path>, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let logs = tempfile::tempdir().unwrap();
        let stdout = logs.path().join("stdout.log");
        let stderr = logs.path().join("stderr.log");
        let mut cmd = command();
        cmd.args(["api", "--port", "0"])
            .args(args)
            .current_dir(dir.unwrap_or(logs.path()))
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut server = Server { child, url: String::new(), stdout, stderr, _logs: logs };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = server.stdout();
            if let Some(line) = out.lines().find(|l| l.contains("serving http://")) {
                let rest = line.split_once("serving ").unwrap().1;
                server.url = rest.split_whitespace().next().unwrap().to_owned();
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("timedb api exited ({status}) before serving:\n{}{}", out, server.stderr());
            }
            assert!(Instant::now() < deadline, "timedb api did not print its address:\n{out}{}", server.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stdout(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.stdout).unwrap_or_default())
    }

    pub fn stderr(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.stderr).unwrap_or_default())
    }

    /// Everything the server wrote so far: stdout, then stderr.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout(), self.stderr())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// The key a first run printed (`API Key: <key>`), if it printed one.
    pub fn first_run_key(&self) -> Option<String> {
        let out = self.stdout();
        let rest = out.split_once("API Key:")?.1;
        rest.split_whitespace().next().map(str::to_owned)
    }

    /// SIGKILL: the process gets no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill").args([signal, &self.child.id().to_string()]).status();
    }

    /// SIGTERM and wait (at most `limit`) for the exit.
    pub fn stop_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        self.signal("-TERM");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Graceful stop: SIGTERM must end the server cleanly (usage counters flushed).
    pub fn terminate(&mut self) {
        let status = self.stop_within(Duration::from_secs(30)).expect("server did not stop after SIGTERM");
        assert!(status.success(), "SIGTERM ends the server cleanly: {status}\n{}", self.stderr());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.stop_within(Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
