//! Which database a command uses (SPEC §6): `--dsn`, else `TIMEDB_DSN`, else
//! `DATABASE_URL`, else those names in `./.env`, else the embedded default
//! `./timedb.sqlite3`.

use std::path::Path;

use anyhow::Context;
use timedb::store::Dsn;

/// Resolve the DSN from the flag, the environment and `.env` in the working directory.
pub fn resolve(flag: Option<&str>) -> anyhow::Result<Dsn> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let text = flag
        .map(str::to_owned)
        .or_else(|| env("TIMEDB_DSN"))
        .or_else(|| env("DATABASE_URL"))
        .or_else(|| dotenv_value(Path::new(".env")));
    match text {
        Some(t) => Dsn::parse(&t).map_err(|e| anyhow::anyhow!(e.message)).context("invalid DSN"),
        None => Ok(Dsn::default_sqlite()),
    }
}

/// `TIMEDB_DSN` (preferred) or `DATABASE_URL` from a dotenv file, if it has either.
fn dotenv_value(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut found: [Option<String>; 2] = [None, None];
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'').to_owned();
        match key.trim() {
            "TIMEDB_DSN" if !value.is_empty() => found[0] = Some(value),
            "DATABASE_URL" if !value.is_empty() => found[1] = Some(value),
            _ => {}
        }
    }
    let [timedb, database] = found;
    timedb.or(database)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_prefers_timedb_dsn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "# comment\nDATABASE_URL=sqlite://b.db\nexport TIMEDB_DSN=\"sqlite://a.db\"\n").unwrap();
        assert_eq!(dotenv_value(&path).as_deref(), Some("sqlite://a.db"));
        std::fs::write(&path, "DATABASE_URL='sqlite://b.db'\n").unwrap();
        assert_eq!(dotenv_value(&path).as_deref(), Some("sqlite://b.db"));
        std::fs::write(&path, "OTHER=1\n").unwrap();
        assert_eq!(dotenv_value(&path), None);
    }
}
