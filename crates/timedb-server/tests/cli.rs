//! The `timedb` binary as users run it: schema commands, DSN resolution and `timedb api`.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::process::{Server, command};

/// Run `timedb` in `dir` with a clean environment plus `envs`.
fn timedb(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = command();
    cmd.args(args).current_dir(dir);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Run a `timedb api` that is expected to refuse to start; kill it if it serves instead.
fn timedb_bounded(dir: &Path, args: &[&str]) -> Output {
    let mut child =
        command().args(args).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn tables(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn create_tables_is_idempotent_and_dry_run_shows_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let dry = timedb(dir.path(), &["create", "tables", "--with-users", "--dry-run"], &[]);
    assert!(dry.status.success(), "{}", text(&dry));
    let out = text(&dry);
    assert!(out.contains("CREATE TABLE IF NOT EXISTS value_versions"), "{out}");
    assert!(out.contains("CREATE TABLE IF NOT EXISTS users"), "{out}");

    let first = timedb(dir.path(), &["create", "tables", "-y"], &[]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("Schema created successfully"));
    let db = dir.path().join("timedb.sqlite3");
    assert!(tables(&db).contains(&"value_versions".to_owned()));
    assert!(!tables(&db).contains(&"users".to_owned()));
    let again = timedb(dir.path(), &["create", "tables", "--with-users"], &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("Users table created"));
    assert!(tables(&db).contains(&"api_keys".to_owned()));
}

#[test]
fn delete_tables_asks_unless_told_yes() {
    let dir = tempfile::tempdir().unwrap();
    assert!(timedb(dir.path(), &["create", "tables", "--with-users"], &[]).status.success());
    let db = dir.path().join("timedb.sqlite3");
    let refused = timedb(dir.path(), &["delete", "tables"], &[]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("-y"), "{}", text(&refused));
    assert!(tables(&db).contains(&"series".to_owned()), "nothing deleted without confirmation");
    let deleted = timedb(dir.path(), &["delete", "tables", "-y"], &[]);
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert!(text(&deleted).contains("All timedb tables deleted"));
    assert_eq!(tables(&db), Vec::<String>::new());
}

#[test]
fn the_dsn_comes_from_flag_env_dotenv_or_default() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let abs = d.join("abs.db");
    assert!(timedb(d, &["create", "tables", "--dsn", &format!("sqlite://{}", abs.display())], &[]).status.success());
    assert!(abs.exists());
    assert!(timedb(d, &["create", "tables"], &[("TIMEDB_DSN", "sqlite://env.db")]).status.success());
    assert!(d.join("env.db").exists());
    assert!(timedb(d, &["create", "tables"], &[("DATABASE_URL", "sqlite://url.db")]).status.success());
    assert!(d.join("url.db").exists());
    std::fs::write(d.join(".env"), "TIMEDB_DSN=sqlite://dotenv.db\n").unwrap();
    assert!(timedb(d, &["create", "tables"], &[]).status.success());
    assert!(d.join("dotenv.db").exists());
    // The flag wins over everything.
    assert!(
        timedb(d, &["create", "tables", "-d", "sqlite://flag.db"], &[("TIMEDB_DSN", "sqlite://env2.db")])
            .status
            .success()
    );
    assert!(d.join("flag.db").exists() && !d.join("env2.db").exists());
    std::fs::remove_file(d.join(".env")).unwrap();
    assert!(timedb(d, &["create", "tables"], &[]).status.success());
    assert!(d.join("timedb.sqlite3").exists());

    let bad = timedb(d, &["create", "tables", "--dsn", "mysql://user:hunter2@host/db"], &[]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("not a supported DSN"), "{}", text(&bad));
    assert!(!text(&bad).contains("hunter2"), "a password must never be echoed");
}

/// A GET with an optional `X-API-Key`; the status and the body as JSON.
async fn get(client: &reqwest::Client, url: &str, key: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = client.get(url);
    if let Some(key) = key {
        req = req.header("X-API-Key", key);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

#[test]
fn api_serves_a_fresh_database_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut api = Server::start_in(Some(dir.path()), &[], &[]);
    let url = api.url.clone();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(dir.path().join("timedb.sqlite3").exists(), "the embedded default lives in the working directory");
    // First run: the schema is created with auth and the admin's key is printed once.
    let key = api.first_run_key().unwrap_or_else(|| panic!("no `API Key:` line on first run:\n{}", api.output()));
    let out = api.output();
    assert!(out.contains("admin@localhost"), "{out}");
    assert!(
        out.lines().any(|l| l.contains("curl") && l.contains(&key) && l.contains(&url)),
        "a ready-to-paste curl line: {out}"
    );
    assert!(out.contains("auth: on"), "{out}");
    assert!(tables(&dir.path().join("timedb.sqlite3")).contains(&"users".to_owned()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let (status, root) = get(&client, &format!("{url}/"), None).await;
        assert_eq!(status, 200, "GET / stays public: {root}");
        assert_eq!(root["name"], "TimeDB API");

        let (status, body) = get(&client, &format!("{url}/values"), None).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["code"], "MISSING_KEY", "{body}");
        assert_eq!(body["detail"], "API key required. Please provide X-API-Key header.");

        let (status, me) = get(&client, &format!("{url}/whoami"), Some(&key)).await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["email"], "admin@localhost");
        assert_eq!(me["tenant_id"], "00000000-0000-0000-0000-000000000000");

        let up = client
            .post(format!("{url}/upload"))
            .header("X-API-Key", &key)
            .json(&serde_json::json!({"run_start_time": "2025-01-01", "value_rows": [{"value_key": "k", "valid_time": "2025-01-02", "value": 1}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(up.status(), 200);
    });
    // SIGTERM ends the server cleanly (asserted by `terminate`).
    api.terminate();

    // Restarted on the same file: no new admin, no key printed; the old key and the data are there.
    let api = Server::start_in(Some(dir.path()), &[], &[]);
    assert_eq!(api.first_run_key(), None, "a key is printed only on first run:\n{}", api.output());
    rt.block_on(async {
        let client = reqwest::Client::new();
        let (status, body) = get(&client, &format!("{}/values", api.url), Some(&key)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["count"], 1);
        let (status, _) = get(&client, &format!("{}/values", api.url), None).await;
        assert_eq!(status, 401);
    });
}

#[test]
fn api_serves_a_database_without_users_with_auth_off() {
    let dir = tempfile::tempdir().unwrap();
    let created = timedb(dir.path(), &["create", "tables", "-y"], &[]);
    assert!(created.status.success(), "{}", text(&created));
    let api = Server::start_in(Some(dir.path()), &[], &[]);
    assert_eq!(api.first_run_key(), None, "no admin key without users tables:\n{}", api.output());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let (status, body) = get(&client, &format!("{}/values", api.url), None).await;
        assert_eq!(status, 200, "auth off: no key needed: {body}");
        assert_eq!(body["count"], 0);
    });
    let out = api.output();
    assert!(out.contains("auth: OFF"), "the serving line says auth is off: {out}");
    assert!(out.contains("authentication is OFF"), "a loud warning is logged: {out}");
    let tables = tables(&dir.path().join("timedb.sqlite3"));
    assert!(!tables.contains(&"users".to_owned()), "auth is not turned on behind the operator's back: {tables:?}");
}

#[test]
fn api_refuses_anonymous_service_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    // Auth off (no users tables): serving on a non-loopback address must be refused.
    let created = timedb(dir.path(), &["create", "tables", "-y"], &[]);
    assert!(created.status.success(), "{}", text(&created));
    let out = timedb_bounded(dir.path(), &["api", "--host", "0.0.0.0", "--port", "0"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--allow-anonymous"), "{}", text(&out));
    assert!(!text(&out).contains("serving http://"), "{}", text(&out));
}

#[test]
fn api_refuses_a_schema_newer_than_itself() {
    let dir = tempfile::tempdir().unwrap();
    assert!(timedb(dir.path(), &["create", "tables"], &[]).status.success());
    let conn = rusqlite::Connection::open(dir.path().join("timedb.sqlite3")).unwrap();
    conn.execute("UPDATE timedb_meta SET value = '99' WHERE key = 'schema_version'", []).unwrap();
    drop(conn);
    let out = timedb_bounded(dir.path(), &["api", "--port", "0"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("newer than this timedb"), "{}", text(&out));
}

#[test]
fn config_files_apply_below_the_environment_and_show_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("timedb.toml");
    std::fs::write(
        &file,
        "port = 9001\nsecret = \"pepper-s3cret\"\ndsn = \"postgresql://u:hunter2@db.example/timedb\"\nlog_format = \"json\"\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let out = timedb(dir.path(), &["config", "show", "--json", "--config", config], &[("TIMEDB_PORT", "9002")]);
    assert!(out.status.success(), "{}", text(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["port"]["value"], "9002", "the environment wins over the file: {shown}");
    assert_eq!(shown["port"]["source"], "environment");
    assert_eq!(shown["secret"]["value"], "***");
    assert_eq!(shown["secret"]["source"], "file");
    assert_eq!(shown["log_format"]["value"], "json");
    assert_eq!(shown["host"]["source"], "default");
    let all = text(&out);
    assert!(!all.contains("pepper-s3cret") && !all.contains("hunter2"), "a secret was shown: {all}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "prot = 1\n").unwrap();
    let out = timedb(dir.path(), &["config", "show", "--config", bad.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("unknown setting 'prot'"), "{}", text(&out));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    assert!(timedb(dir.path(), &["create", "tables"], &[]).status.success());
    let out = timedb_bounded(dir.path(), &["--log-format", "json", "api", "--host", "0.0.0.0", "--port", "0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().find(|l| l.contains("authentication is OFF")).unwrap_or_else(|| panic!("{stderr}"));
    let obj: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(obj["level"], "WARN");
}

/// The README's first command is `cargo run --release -- api`: at the workspace root that
/// works only while the default members hold exactly one binary, `timedb`.
#[test]
fn the_readme_run_command_names_one_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let first = readme.split("```sh\n").nth(1).and_then(|b| b.lines().next()).unwrap();
    assert!(first.starts_with("cargo run --release -- api"), "{first}");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("default-members = [\"crates/timedb-server\"]"), "default-members changed");
    let server = std::fs::read_to_string(root.join("crates/timedb-server/Cargo.toml")).unwrap();
    assert_eq!(server.matches("[[bin]]").count(), 1, "timedb-server must build exactly one binary");
    assert!(!root.join("crates/timedb-server/src/bin").exists(), "extra binaries would make `cargo run` ambiguous");
}
