//! Data source names: which backend, and where. `sqlite:///abs/path.db` (absolute),
//! `sqlite://relative.db` (relative to the working directory), `postgresql://…` or
//! `postgres://…`.

use std::fmt;
use std::path::PathBuf;

use crate::model::ModelError;

/// The default embedded database, relative to the working directory.
pub const DEFAULT_SQLITE_PATH: &str = "./timedb.sqlite3";

#[derive(Clone, PartialEq, Eq)]
pub enum Dsn {
    Sqlite(PathBuf),
    /// The full URL, passed to the PostgreSQL driver as is.
    Postgres(String),
}

impl Dsn {
    pub fn default_sqlite() -> Self {
        Dsn::Sqlite(PathBuf::from(DEFAULT_SQLITE_PATH))
    }

    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("sqlite://") {
            // `sqlite:///abs` leaves `/abs`; `sqlite://rel.db` leaves `rel.db`.
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(ModelError::new(
                    "dsn",
                    "a sqlite:// DSN needs a file path, e.g. sqlite:///var/lib/timedb.sqlite3",
                ));
            }
            return Ok(Dsn::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgresql://") || text.starts_with("postgres://") {
            return Ok(Dsn::Postgres(text.to_owned()));
        }
        Err(ModelError::new(
            "dsn",
            format!(
                "'{}' is not a supported DSN (expected sqlite:///path, sqlite://relative/path or postgresql://…)",
                redact(text)
            ),
        ))
    }
}

/// Hide a password in a URL before showing it (`postgresql://u:***@host/db`).
pub fn redact(text: &str) -> String {
    if let Some((scheme, rest)) = text.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    text.to_owned()
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dsn::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Dsn::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(Dsn::parse("sqlite:///abs/path.db").unwrap(), Dsn::Sqlite("/abs/path.db".into()));
        assert_eq!(Dsn::parse("sqlite://relative.db").unwrap(), Dsn::Sqlite("relative.db".into()));
        assert!(matches!(Dsn::parse("postgres://u:p@h/db").unwrap(), Dsn::Postgres(_)));
        assert!(Dsn::parse("mysql://x").is_err());
        assert!(Dsn::parse("sqlite://").is_err());
    }

    #[test]
    fn passwords_never_show() {
        let dsn = Dsn::parse("postgresql://user:secret@host:5432/db").unwrap();
        assert_eq!(dsn.to_string(), "postgresql://user:***@host:5432/db");
        assert!(!Dsn::parse("mysql://user:secret@h").unwrap_err().message.contains("secret"));
    }
}
