//! Configuration: flags, then environment variables, then an optional TOML file, then
//! built-in defaults — the first that sets a value wins.
//!
//! Every setting has one environment variable (`TIMEDB_…`), which is what clap reads for
//! the flag. The file (`--config FILE` or `TIMEDB_CONFIG`) is applied by setting the
//! variables it names that the environment does not already set, once, before anything
//! else runs; so the file cannot override the environment and the flags override both,
//! with one mechanism. `timedb config show` prints the effective settings, secrets masked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// A setting: its key in the TOML file, its variable, whether it is a secret, and its
/// built-in default (for `config show`).
struct Setting {
    key: &'static str,
    var: &'static str,
    secret: bool,
    default: &'static str,
}

const SETTINGS: &[Setting] = &[
    Setting { key: "dsn", var: "TIMEDB_DSN", secret: false, default: "sqlite://./timedb.sqlite3" },
    Setting { key: "host", var: "TIMEDB_HOST", secret: false, default: "127.0.0.1" },
    Setting { key: "port", var: "TIMEDB_PORT", secret: false, default: "8000" },
    Setting { key: "max_body_mb", var: "TIMEDB_MAX_BODY_MB", secret: false, default: "64" },
    Setting { key: "allow_anonymous", var: "TIMEDB_ALLOW_ANONYMOUS", secret: false, default: "false" },
    Setting { key: "no_query_key", var: "TIMEDB_NO_QUERY_KEY", secret: false, default: "false" },
    Setting { key: "default_rate_limit", var: "TIMEDB_DEFAULT_RATE_LIMIT", secret: false, default: "(none)" },
    Setting { key: "trust_forwarded_for", var: "TIMEDB_TRUST_FORWARDED_FOR", secret: false, default: "false" },
    Setting { key: "failed_auth_limit", var: "TIMEDB_FAILED_AUTH_LIMIT", secret: false, default: "60/minute" },
    Setting { key: "secret", var: "TIMEDB_SECRET", secret: true, default: "(the database's own pepper)" },
    Setting { key: "key_prefix", var: "TIMEDB_KEY_PREFIX", secret: false, default: "tdb" },
    Setting { key: "key_environment", var: "TIMEDB_KEY_ENVIRONMENT", secret: false, default: "(none)" },
    Setting { key: "log", var: "TIMEDB_LOG", secret: false, default: "info" },
    Setting { key: "log_format", var: "TIMEDB_LOG_FORMAT", secret: false, default: "text" },
];

/// Where each setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Environment,
    File,
    Default,
}

/// What [`load`] did: the file used, and the variables it set.
#[derive(Debug, Default)]
pub struct Loaded {
    pub file: Option<PathBuf>,
    pub from_file: Vec<&'static str>,
}

/// The config file named by `--config FILE` / `--config=FILE` in `args`, else by
/// `TIMEDB_CONFIG`.
pub fn config_path(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os("TIMEDB_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Parse a config file into (variable, value) pairs; unknown keys and wrong types are errors.
pub fn parse_file(path: &Path) -> anyhow::Result<Vec<(&'static str, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("config file {} is not valid TOML", path.display()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let Some(setting) = SETTINGS.iter().find(|s| s.key == key) else {
            let known: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
            bail!("config file {}: unknown setting '{key}' (known: {})", path.display(), known.join(", "));
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!(
                "config file {}: '{key}' must be a string, number or boolean, not {}",
                path.display(),
                other.type_str()
            ),
        };
        out.push((setting.var, text));
    }
    Ok(out)
}

/// Apply the config file (if any) to the environment, for variables not already set.
///
/// # Safety
/// Must run before any other thread exists (it calls `std::env::set_var`): first thing in
/// `main`, before the async runtime starts.
pub unsafe fn load(args: &[String]) -> anyhow::Result<Loaded> {
    let Some(path) = config_path(args) else { return Ok(Loaded::default()) };
    let mut loaded = Loaded { file: Some(path.clone()), from_file: Vec::new() };
    for (var, value) in parse_file(&path)? {
        if std::env::var_os(var).is_none() {
            // SAFETY: the caller guarantees no other thread runs yet.
            unsafe { std::env::set_var(var, value) };
            loaded.from_file.push(var);
        }
    }
    Ok(loaded)
}

/// The effective settings: key → (value, source), secrets masked.
pub fn effective(loaded: &Loaded) -> BTreeMap<&'static str, (String, Source)> {
    SETTINGS
        .iter()
        .map(|s| {
            let entry = match std::env::var(s.var).ok().filter(|v| !v.is_empty()) {
                Some(v) => {
                    let shown = if s.secret {
                        "***".to_owned()
                    } else if s.var == "TIMEDB_DSN" {
                        timedb::store::redact(&v)
                    } else {
                        v
                    };
                    let source = if loaded.from_file.contains(&s.var) { Source::File } else { Source::Environment };
                    (shown, source)
                }
                None => (s.default.to_owned(), Source::Default),
            };
            (s.key, entry)
        })
        .collect()
}

/// Print `config show`.
pub fn show(loaded: &Loaded, json: bool) -> anyhow::Result<()> {
    let settings = effective(loaded);
    if json {
        let map: serde_json::Map<String, serde_json::Value> = settings
            .iter()
            .map(|(k, (v, src))| (k.to_string(), serde_json::json!({"value": v, "source": source_name(*src)})))
            .collect();
        println!("{}", serde_json::to_string_pretty(&map)?);
        return Ok(());
    }
    match &loaded.file {
        Some(f) => println!("Config file: {}", f.display()),
        None => println!("Config file: (none; --config FILE or TIMEDB_CONFIG)"),
    }
    println!("{:<20} {:<40} Source", "Setting", "Value");
    for (key, (value, source)) in &settings {
        let var = SETTINGS.iter().find(|s| s.key == *key).map_or("", |s| s.var);
        println!("{key:<20} {value:<40} {} ({var})", source_name(*source));
    }
    Ok(())
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::Environment => "environment",
        Source::File => "file",
        Source::Default => "default",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_flag_is_found_in_either_form() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(config_path(&args(&["timedb", "--config", "a.toml", "api"])), Some("a.toml".into()));
        assert_eq!(config_path(&args(&["timedb", "api", "--config=b.toml"])), Some("b.toml".into()));
    }

    #[test]
    fn files_map_to_variables_and_refuse_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timedb.toml");
        std::fs::write(&path, "port = 9000\nno_query_key = true\nsecret = \"s3cret\"\n").unwrap();
        let mut got = parse_file(&path).unwrap();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("TIMEDB_NO_QUERY_KEY", "true".to_owned()),
                ("TIMEDB_PORT", "9000".to_owned()),
                ("TIMEDB_SECRET", "s3cret".to_owned())
            ]
        );
        std::fs::write(&path, "prot = 9000\n").unwrap();
        let err = parse_file(&path).unwrap_err().to_string();
        assert!(err.contains("unknown setting 'prot'"), "{err}");
        std::fs::write(&path, "port = [1]\n").unwrap();
        assert!(parse_file(&path).is_err());
    }
}
