//! The SQLite schema: its DDL, its version row, creation and removal.
//!
//! `create tables` is idempotent (`IF NOT EXISTS` everywhere) and records the version in
//! `timedb_meta`. Every table that holds tenant data leads its keys with the tenant.

use rusqlite::{Connection, OptionalExtension, params};

use super::backend;
use crate::store::{SCHEMA_VERSION, SchemaReport, SchemaStatus, StoreError};

/// Core tables, in creation order (dropped in reverse).
const CORE_TABLES: &[(&str, &str)] = &[
    (
        "timedb_meta",
        "CREATE TABLE IF NOT EXISTS timedb_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID",
    ),
    (
        "timedb_counters",
        "CREATE TABLE IF NOT EXISTS timedb_counters (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID",
    ),
    (
        "tenants",
        "CREATE TABLE IF NOT EXISTS tenants (
            tenant_id BLOB PRIMARY KEY,
            tid INTEGER NOT NULL UNIQUE,
            created_at INTEGER NOT NULL
        ) WITHOUT ROWID",
    ),
    (
        "series",
        "CREATE TABLE IF NOT EXISTS series (
            tid INTEGER NOT NULL,
            sid INTEGER NOT NULL,
            series_id BLOB NOT NULL,
            series_key TEXT NOT NULL,
            description TEXT,
            unit TEXT NOT NULL,
            labels TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (tid, sid)
        ) WITHOUT ROWID",
    ),
    (
        "runs",
        "CREATE TABLE IF NOT EXISTS runs (
            tid INTEGER NOT NULL,
            rid INTEGER NOT NULL,
            run_id BLOB NOT NULL,
            workflow_id TEXT NOT NULL,
            run_start_time INTEGER NOT NULL,
            run_finish_time INTEGER,
            known_time INTEGER NOT NULL,
            run_params TEXT,
            inserted_at INTEGER NOT NULL,
            created_by TEXT,
            value_count INTEGER NOT NULL,
            PRIMARY KEY (tid, rid)
        ) WITHOUT ROWID",
    ),
    (
        "value_versions",
        "CREATE TABLE IF NOT EXISTS value_versions (
            tid INTEGER NOT NULL,
            sid INTEGER NOT NULL,
            vt INTEGER NOT NULL,
            vte INTEGER NOT NULL,
            rid INTEGER NOT NULL,
            version INTEGER NOT NULL,
            value_id INTEGER NOT NULL,
            value REAL,
            annotation TEXT,
            tags TEXT,
            changed_by TEXT,
            change_time INTEGER NOT NULL,
            is_current INTEGER NOT NULL,
            PRIMARY KEY (tid, sid, vt, vte, rid, version)
        ) WITHOUT ROWID",
    ),
];

const CORE_INDEXES: &[&str] = &[
    "CREATE UNIQUE INDEX IF NOT EXISTS series_by_key ON series (tid, series_key)",
    "CREATE UNIQUE INDEX IF NOT EXISTS series_by_id ON series (tid, series_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS runs_by_id ON runs (tid, run_id)",
    "CREATE INDEX IF NOT EXISTS runs_by_known ON runs (tid, known_time)",
    "CREATE UNIQUE INDEX IF NOT EXISTS value_versions_by_id ON value_versions (tid, value_id)",
];

/// Auth tables (created by `--with-users`). Their behaviour belongs to the auth layer.
const USER_TABLES: &[(&str, &str)] = &[
    (
        "users",
        "CREATE TABLE IF NOT EXISTS users (
            tid INTEGER NOT NULL,
            user_id BLOB NOT NULL,
            email TEXT NOT NULL,
            role TEXT NOT NULL,
            is_active INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (tid, user_id)
        ) WITHOUT ROWID",
    ),
    (
        "api_keys",
        "CREATE TABLE IF NOT EXISTS api_keys (
            tid INTEGER NOT NULL,
            key_id TEXT NOT NULL,
            user_id BLOB NOT NULL,
            key_hash BLOB NOT NULL,
            note TEXT,
            scopes TEXT NOT NULL,
            expires_at INTEGER,
            revoked_at INTEGER,
            rate_limit TEXT,
            last_used_at INTEGER,
            use_count INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            created_by TEXT,
            PRIMARY KEY (tid, key_id)
        ) WITHOUT ROWID",
    ),
    (
        "audit_log",
        "CREATE TABLE IF NOT EXISTS audit_log (
            tid INTEGER NOT NULL,
            event_id INTEGER NOT NULL,
            at INTEGER NOT NULL,
            actor TEXT,
            action TEXT NOT NULL,
            subject TEXT,
            detail TEXT,
            PRIMARY KEY (tid, event_id)
        ) WITHOUT ROWID",
    ),
];

const USER_INDEXES: &[&str] = &[
    "CREATE UNIQUE INDEX IF NOT EXISTS users_by_email ON users (tid, email)",
    // A presented key names no tenant, so verification finds it by key id alone.
    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_by_key_id ON api_keys (key_id)",
    "CREATE INDEX IF NOT EXISTS api_keys_by_user ON api_keys (tid, user_id)",
];

const COUNTERS: &[&str] = &["tenant", "series", "run", "value", "audit"];

pub(super) fn ddl(with_users: bool) -> Vec<String> {
    let mut out: Vec<String> = CORE_TABLES.iter().map(|(_, sql)| sql.to_string()).collect();
    out.extend(CORE_INDEXES.iter().map(|s| s.to_string()));
    if with_users {
        out.extend(USER_TABLES.iter().map(|(_, sql)| sql.to_string()));
        out.extend(USER_INDEXES.iter().map(|s| s.to_string()));
    }
    out
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    conn.query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", params![name], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(backend)
}

pub(super) fn status(conn: &Connection) -> Result<SchemaStatus, StoreError> {
    let version = if table_exists(conn, "timedb_meta")? {
        conn.query_row("SELECT value FROM timedb_meta WHERE key = 'schema_version'", [], |r| r.get::<_, String>(0))
            .optional()
            .map_err(backend)?
            .map(|v| v.parse::<i64>().map_err(|_| StoreError::Backend(format!("unreadable schema_version '{v}'"))))
            .transpose()?
    } else {
        None
    };
    Ok(SchemaStatus { version, has_users: table_exists(conn, "users")? })
}

pub(super) fn create(conn: &mut Connection, with_users: bool) -> Result<SchemaReport, StoreError> {
    let before = status(conn)?;
    if let Some(v) = before.version
        && v > SCHEMA_VERSION
    {
        return Err(StoreError::SchemaTooNew { found: v, supported: SCHEMA_VERSION });
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
    let mut created = Vec::new();
    let mut tables: Vec<&(&str, &str)> = CORE_TABLES.iter().collect();
    if with_users {
        tables.extend(USER_TABLES.iter());
    }
    for (name, sql) in tables {
        if !table_exists(&tx, name)? {
            created.push(name.to_string());
        }
        tx.execute_batch(sql).map_err(backend)?;
    }
    for sql in CORE_INDEXES.iter().chain(if with_users { USER_INDEXES } else { &[] }) {
        tx.execute_batch(sql).map_err(backend)?;
    }
    for name in COUNTERS {
        tx.execute("INSERT OR IGNORE INTO timedb_counters (name, value) VALUES (?1, 0)", params![name])
            .map_err(backend)?;
    }
    if with_users && !before.has_users {
        // Servers running with auth off notice the new tables through the counter.
        super::auth::bump_generation(&tx)?;
    }
    tx.execute(
        "INSERT INTO timedb_meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![SCHEMA_VERSION.to_string()],
    )
    .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(SchemaReport { created, version: SCHEMA_VERSION })
}

pub(super) fn drop_all(conn: &mut Connection) -> Result<Vec<String>, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
    let mut dropped = Vec::new();
    for (name, _) in USER_TABLES.iter().rev().chain(CORE_TABLES.iter().rev()) {
        if table_exists(&tx, name)? {
            tx.execute_batch(&format!("DROP TABLE {name}")).map_err(backend)?;
            dropped.push(name.to_string());
        }
    }
    tx.commit().map_err(backend)?;
    Ok(dropped)
}
