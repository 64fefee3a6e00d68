//! The PostgreSQL schema: its DDL, its version row, creation and removal.
//!
//! The tables mean what the SQLite ones mean, column for column, with PostgreSQL's
//! natural types (`uuid`, `boolean`, `double precision`); instants stay `bigint`
//! microseconds so both backends convert them with the same code, and series keys sort
//! bytewise (`COLLATE "C"`, SQLite's order) whatever the database's locale. Internal ids come
//! from sequences, because several API processes may allocate them at once. Every
//! primary key, unique constraint and index leads with the tenant (`tid`), so the
//! tables can be distributed by tenant on Citus without redesign. The one exception is
//! `api_keys_by_key_id`: a presented key names no tenant, so verification finds it by
//! key id alone (on Citus, `api_keys` would be a reference table, not distributed).
//!
//! `create tables` is idempotent (`IF NOT EXISTS` everywhere) and runs as one
//! transaction under an advisory lock, so two processes creating the schema at once
//! neither collide nor see a half-made schema.

use deadpool_postgres::{GenericClient, Object};

use super::backend;
use crate::store::{SCHEMA_VERSION, SchemaReport, SchemaStatus, StoreError};

/// Serialises `create tables` and `drop tables` across processes ("timedb" + 1).
const SCHEMA_LOCK: i64 = 0x7469_6d65_6462_0001;

/// Id sequences, created before the tables whose defaults use them.
/// `timedb_audit_seq` numbers audit events (`audit_log.event_id`).
const SEQUENCES: &[&str] =
    &["timedb_tenant_seq", "timedb_series_seq", "timedb_run_seq", "timedb_value_seq", "timedb_audit_seq"];

/// Core tables, in creation order (dropped in reverse).
const CORE_TABLES: &[(&str, &str)] = &[
    (
        "timedb_meta",
        "CREATE TABLE IF NOT EXISTS timedb_meta (
            key text PRIMARY KEY,
            value text NOT NULL
        )",
    ),
    (
        "tenants",
        "CREATE TABLE IF NOT EXISTS tenants (
            tenant_id uuid PRIMARY KEY,
            tid bigint NOT NULL DEFAULT nextval('timedb_tenant_seq') CONSTRAINT tenants_by_tid UNIQUE,
            created_at bigint NOT NULL
        )",
    ),
    (
        "series",
        "CREATE TABLE IF NOT EXISTS series (
            tid bigint NOT NULL,
            sid bigint NOT NULL DEFAULT nextval('timedb_series_seq'),
            series_id uuid NOT NULL,
            series_key text COLLATE \"C\" NOT NULL,
            description text,
            unit text NOT NULL,
            labels text NOT NULL,
            created_at bigint NOT NULL,
            PRIMARY KEY (tid, sid),
            CONSTRAINT series_by_key UNIQUE (tid, series_key),
            CONSTRAINT series_by_id UNIQUE (tid, series_id)
        )",
    ),
    (
        "runs",
        "CREATE TABLE IF NOT EXISTS runs (
            tid bigint NOT NULL,
            rid bigint NOT NULL DEFAULT nextval('timedb_run_seq'),
            run_id uuid NOT NULL,
            workflow_id text NOT NULL,
            run_start_time bigint NOT NULL,
            run_finish_time bigint,
            known_time bigint NOT NULL,
            run_params text,
            inserted_at bigint NOT NULL,
            created_by text,
            value_count bigint NOT NULL,
            PRIMARY KEY (tid, rid),
            CONSTRAINT runs_by_id UNIQUE (tid, run_id)
        )",
    ),
    (
        "value_versions",
        "CREATE TABLE IF NOT EXISTS value_versions (
            tid bigint NOT NULL,
            sid bigint NOT NULL,
            vt bigint NOT NULL,
            vte bigint NOT NULL,
            rid bigint NOT NULL,
            version bigint NOT NULL,
            value_id bigint NOT NULL DEFAULT nextval('timedb_value_seq'),
            value double precision,
            annotation text,
            tags text,
            changed_by text,
            change_time bigint NOT NULL,
            is_current boolean NOT NULL,
            PRIMARY KEY (tid, sid, vt, vte, rid, version),
            CONSTRAINT value_versions_by_id UNIQUE (tid, value_id)
        )",
    ),
];

const CORE_INDEXES: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS runs_by_known ON runs (tid, known_time)",
    // The database itself refuses a second current version of one value, whatever
    // any writer process gets wrong.
    "CREATE UNIQUE INDEX IF NOT EXISTS value_versions_one_current ON value_versions (tid, sid, vt, vte, rid)
     WHERE is_current",
];

/// Auth tables (created by `--with-users`). Their behaviour belongs to the auth layer.
const USER_TABLES: &[(&str, &str)] = &[
    (
        "users",
        "CREATE TABLE IF NOT EXISTS users (
            tid bigint NOT NULL,
            user_id uuid NOT NULL,
            email text NOT NULL,
            role text NOT NULL,
            is_active boolean NOT NULL,
            created_at bigint NOT NULL,
            PRIMARY KEY (tid, user_id),
            CONSTRAINT users_by_email UNIQUE (tid, email)
        )",
    ),
    (
        "api_keys",
        "CREATE TABLE IF NOT EXISTS api_keys (
            tid bigint NOT NULL,
            key_id text NOT NULL,
            user_id uuid NOT NULL,
            key_hash bytea NOT NULL,
            note text,
            scopes text NOT NULL,
            expires_at bigint,
            revoked_at bigint,
            rate_limit text,
            last_used_at bigint,
            use_count bigint NOT NULL DEFAULT 0,
            created_at bigint NOT NULL,
            created_by text,
            PRIMARY KEY (tid, key_id)
        )",
    ),
    (
        "audit_log",
        "CREATE TABLE IF NOT EXISTS audit_log (
            tid bigint NOT NULL,
            event_id bigint NOT NULL,
            at bigint NOT NULL,
            actor text,
            action text NOT NULL,
            subject text,
            detail text,
            PRIMARY KEY (tid, event_id)
        )",
    ),
];

const USER_INDEXES: &[&str] = &[
    // A presented key names no tenant, so verification finds it by key id alone.
    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_by_key_id ON api_keys (key_id)",
    "CREATE INDEX IF NOT EXISTS api_keys_by_user ON api_keys (tid, user_id)",
];

pub(super) fn ddl(with_users: bool) -> Vec<String> {
    let mut out: Vec<String> = SEQUENCES.iter().map(|s| format!("CREATE SEQUENCE IF NOT EXISTS {s}")).collect();
    out.extend(CORE_TABLES.iter().map(|(_, sql)| sql.to_string()));
    out.extend(CORE_INDEXES.iter().map(|s| s.to_string()));
    if with_users {
        out.extend(USER_TABLES.iter().map(|(_, sql)| sql.to_string()));
        out.extend(USER_INDEXES.iter().map(|s| s.to_string()));
    }
    out
}

async fn table_exists(client: &impl GenericClient, name: &str) -> Result<bool, StoreError> {
    // `to_regclass` resolves the name through the search path, as the DDL does.
    let row = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&name]).await.map_err(backend)?;
    Ok(row.get(0))
}

pub(super) async fn status(client: &impl GenericClient) -> Result<SchemaStatus, StoreError> {
    let version = if table_exists(client, "timedb_meta").await? {
        client
            .query_opt("SELECT value FROM timedb_meta WHERE key = 'schema_version'", &[])
            .await
            .map_err(backend)?
            .map(|r| r.get::<_, String>(0))
            .map(|v| v.parse::<i64>().map_err(|_| StoreError::Backend(format!("unreadable schema_version '{v}'"))))
            .transpose()?
    } else {
        None
    };
    Ok(SchemaStatus { version, has_users: table_exists(client, "users").await? })
}

pub(super) async fn create(client: &mut Object, with_users: bool) -> Result<SchemaReport, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]).await.map_err(backend)?;
    // Checked under the lock: another process may have upgraded the schema meanwhile.
    let before = status(&tx).await?;
    if let Some(v) = before.version
        && v > SCHEMA_VERSION
    {
        return Err(StoreError::SchemaTooNew { found: v, supported: SCHEMA_VERSION });
    }
    for name in SEQUENCES {
        tx.batch_execute(&format!("CREATE SEQUENCE IF NOT EXISTS {name}")).await.map_err(backend)?;
    }
    let mut created = Vec::new();
    let user_tables: &[(&str, &str)] = if with_users { USER_TABLES } else { &[] };
    for (name, sql) in CORE_TABLES.iter().chain(user_tables) {
        if !table_exists(&tx, name).await? {
            created.push(name.to_string());
        }
        tx.batch_execute(sql).await.map_err(backend)?;
    }
    let user_indexes: &[&str] = if with_users { USER_INDEXES } else { &[] };
    for sql in CORE_INDEXES.iter().chain(user_indexes) {
        tx.batch_execute(sql).await.map_err(backend)?;
    }
    if with_users && !before.has_users {
        // Servers running with auth off notice the new tables through the counter.
        super::auth::bump_generation(&tx).await?;
    }
    tx.execute(
        "INSERT INTO timedb_meta (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&SCHEMA_VERSION.to_string()],
    )
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(SchemaReport { created, version: SCHEMA_VERSION })
}

pub(super) async fn drop_all(client: &mut Object) -> Result<Vec<String>, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]).await.map_err(backend)?;
    let mut dropped = Vec::new();
    for (name, _) in USER_TABLES.iter().rev().chain(CORE_TABLES.iter().rev()) {
        if table_exists(&tx, name).await? {
            tx.batch_execute(&format!("DROP TABLE {name}")).await.map_err(backend)?;
            dropped.push(name.to_string());
        }
    }
    for name in SEQUENCES {
        tx.batch_execute(&format!("DROP SEQUENCE IF EXISTS {name}")).await.map_err(backend)?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(dropped)
}
