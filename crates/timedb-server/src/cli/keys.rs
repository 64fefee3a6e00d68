//! What every key-minting command shares: the key format (`TIMEDB_KEY_PREFIX`,
//! `TIMEDB_KEY_ENVIRONMENT`), the pepper (`TIMEDB_SECRET`, else the database's own), and
//! the check that the database has the users tables.

use anyhow::{Context, bail};
use timedb::Store;

use crate::auth::{KeyFormat, KeyHasher, resolve_hasher};

/// The key format configured in the environment.
pub fn key_format() -> anyhow::Result<KeyFormat> {
    let prefix = std::env::var("TIMEDB_KEY_PREFIX").ok().filter(|v| !v.is_empty());
    let env = std::env::var("TIMEDB_KEY_ENVIRONMENT").ok().filter(|v| !v.is_empty());
    KeyFormat::new(prefix.as_deref().unwrap_or("tdb"), env.as_deref())
        .map_err(anyhow::Error::msg)
        .context("invalid TIMEDB_KEY_PREFIX / TIMEDB_KEY_ENVIRONMENT")
}

/// The hasher for this database, refusing a mismatched secret.
pub async fn hasher(store: &dyn Store) -> anyhow::Result<KeyHasher> {
    let secret = std::env::var("TIMEDB_SECRET").ok();
    resolve_hasher(store, secret.as_deref()).await
}

/// Fail clearly when the database has no users tables.
pub async fn require_users_tables(store: &dyn Store) -> anyhow::Result<()> {
    let status = store.schema_status().await?;
    if status.version.is_none() || !status.has_users {
        bail!("this database has no users tables; run `timedb create tables --with-users` first");
    }
    Ok(())
}

/// Parse `600`, `30s`, `10m`, `12h`, `3d` into seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = num.parse().with_context(|| format!("'{text}' is not a duration (e.g. 600, 10m, 12h, 3d)"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("'{text}' is not a duration (e.g. 600, 10m, 12h, 3d)"),
    };
    let secs = n.checked_mul(mult).filter(|s| *s > 0).with_context(|| format!("'{text}' is not a usable duration"))?;
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("600").unwrap(), 600);
        assert_eq!(parse_duration("10m").unwrap(), 600);
        assert_eq!(parse_duration("12h").unwrap(), 43_200);
        assert_eq!(parse_duration("3d").unwrap(), 259_200);
        for bad in ["", "0", "10w", "m", "-5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
