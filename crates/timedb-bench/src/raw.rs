//! The store's limit: the rows of an upload written by the most direct insert there is,
//! into a table equivalent to timedb's `value_versions` (the same columns, primary key
//! and indexes) in a database of its own, with nothing else around it.
//!
//! - SQLite: one transaction, one prepared `INSERT` executed per row (rusqlite), with the
//!   store's pragmas (WAL, `synchronous = NORMAL`).
//! - PostgreSQL: one transaction, one binary `COPY … FROM STDIN (FORMAT binary)`
//!   (tokio-postgres), `value_id` given rather than drawn from a sequence.
//!
//! The clock runs from `BEGIN` to the end of `COMMIT`; the table is made fresh, and
//! empty, for each measurement, as a new tenant's region of timedb's table is.

use std::path::Path;
use std::pin::pin;
use std::time::Instant;

use anyhow::Context;
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::bodies::Dataset;

/// The instant every raw row records as its change time (2025-01-01, in µs).
const CHANGE_TIME: i64 = 1_735_689_600_000_000;

/// Seconds to insert `dataset` into a fresh SQLite table in `dir`.
pub fn sqlite(dir: &Path, dataset: Dataset) -> anyhow::Result<f64> {
    let path = dir.join(format!("raw-{}.sqlite3", dataset.values));
    let _ = std::fs::remove_file(&path);
    let mut conn = rusqlite::Connection::open(&path).context("opening the raw SQLite database")?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = FILE;
         PRAGMA cache_size = -32000;
         CREATE TABLE value_versions (
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
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX value_versions_by_id ON value_versions (tid, value_id);",
    )?;
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO value_versions (tid, sid, vt, vte, rid, version, value_id, value, annotation, tags,
                                         changed_by, change_time, is_current)
             VALUES (1, ?1, ?2, ?3, 1, 0, ?4, ?5, NULL, NULL, NULL, ?6, 1)",
        )?;
        for j in 0..dataset.values {
            let vt = dataset.valid_micros(j);
            insert.execute(rusqlite::params![
                dataset.series_index(j) as i64 + 1,
                vt,
                vt,
                j as i64 + 1,
                Some(Dataset::value(j)),
                CHANGE_TIME
            ])?;
        }
    }
    tx.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(seconds)
}

/// Seconds to insert `dataset` into a fresh PostgreSQL table of the database `dsn`.
pub async fn postgres(dsn: &str, dataset: Dataset) -> anyhow::Result<f64> {
    let (mut client, connection) = tokio_postgres::connect(dsn, NoTls).await.context("connecting for the raw COPY")?;
    let connection = tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE IF EXISTS raw_value_versions;
             CREATE TABLE raw_value_versions (
                tid bigint NOT NULL,
                sid bigint NOT NULL,
                vt bigint NOT NULL,
                vte bigint NOT NULL,
                rid bigint NOT NULL,
                version bigint NOT NULL,
                value_id bigint NOT NULL,
                value double precision,
                annotation text,
                tags text,
                changed_by text,
                change_time bigint NOT NULL,
                is_current boolean NOT NULL,
                PRIMARY KEY (tid, sid, vt, vte, rid, version),
                CONSTRAINT raw_value_versions_by_id UNIQUE (tid, value_id)
             );
             CREATE UNIQUE INDEX raw_value_versions_one_current ON raw_value_versions (tid, sid, vt, vte, rid)
                WHERE is_current;",
        )
        .await?;
    let started = Instant::now();
    let tx = client.transaction().await?;
    let sink = tx
        .copy_in(
            "COPY raw_value_versions (tid, sid, vt, vte, rid, version, value_id, value, annotation, tags,
                                      changed_by, change_time, is_current)
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    let types = [
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::FLOAT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::BOOL,
    ];
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    let (tid, rid, version, none, is_current) = (1i64, 1i64, 0i64, None::<&str>, true);
    for j in 0..dataset.values {
        let vt = dataset.valid_micros(j);
        let (sid, value_id, value) = (dataset.series_index(j) as i64 + 1, j as i64 + 1, Some(Dataset::value(j)));
        writer
            .as_mut()
            .write(&[
                &tid,
                &sid,
                &vt,
                &vt,
                &rid,
                &version,
                &value_id,
                &value,
                &none,
                &none,
                &none,
                &CHANGE_TIME,
                &is_current,
            ])
            .await?;
    }
    let written = writer.finish().await?;
    tx.commit().await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(written == dataset.values as u64, "COPY wrote {written} rows, expected {}", dataset.values);
    client.batch_execute("DROP TABLE raw_value_versions").await?;
    drop(client);
    let _ = connection.await;
    Ok(seconds)
}
