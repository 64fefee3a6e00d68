//! Test support (feature `testing`): a fresh, empty store per test, on either backend.
//!
//! Every test in the workspace gets its store from [`fresh`], so setup is written once.
//! SQLite stores live in a temporary directory removed on drop. PostgreSQL stores get a
//! database of their own on the server named by `TIMEDB_TEST_PG_DSN` (which
//! `scripts/test` starts when it is unset).

use std::sync::Arc;

use tokio_postgres::NoTls;

use crate::Store;
use crate::store::{Dsn, open};

/// The admin DSN of the PostgreSQL server tests create their databases on.
const PG_DSN_VAR: &str = "TIMEDB_TEST_PG_DSN";

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store for one test, with its schema created. Dropping it removes its data.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// The DSN of this test's database (for spawning CLI processes against it).
    pub dsn: Dsn,
    /// The DSN as text, ready for `--dsn`.
    pub dsn_text: String,
    _guard: Guard,
}

enum Guard {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Database(#[allow(dead_code)] PgDatabase),
}

/// A test's own PostgreSQL database, dropped (best effort) with the test.
struct PgDatabase {
    admin_dsn: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop is synchronous and usually runs on the test's runtime, which cannot block
        // on a future; a thread with its own small runtime can. `WITH (FORCE)` ends the
        // store's pooled connections, which may still be open. A failure only leaves a
        // database behind on a throwaway cluster, so it is ignored.
        let admin_dsn = self.admin_dsn.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(10), async {
                    let (client, connection) = tokio_postgres::connect(&admin_dsn, NoTls).await.ok()?;
                    tokio::spawn(connection);
                    client.batch_execute(&sql).await.ok()
                })
                .await
                .ok()
                .flatten()
            })
        })
        .join();
    }
}

/// Create a uniquely named database on the server `TIMEDB_TEST_PG_DSN` names.
async fn create_pg_database() -> (String, PgDatabase) {
    let admin_dsn = std::env::var(PG_DSN_VAR).unwrap_or_else(|_| {
        panic!(
            "{PG_DSN_VAR} is not set: run the tests with `scripts/test`, which starts a throwaway PostgreSQL \
             cluster, or set {PG_DSN_VAR} to the DSN of a server where you may CREATE DATABASE \
             (`scripts/pg-cluster.sh start DIR` starts one and prints its DSN)"
        )
    });
    let (client, connection) = tokio_postgres::connect(&admin_dsn, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {PG_DSN_VAR}={}: {e}", Dsn::Postgres(admin_dsn.clone())));
    let connection = tokio::spawn(connection);
    let name = format!("timedb_test_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create database {name} on {}: {e}", Dsn::Postgres(admin_dsn.clone())));
    drop(client);
    let _ = connection.await;
    (with_database(&admin_dsn, &name), PgDatabase { admin_dsn, name })
}

/// The same URL naming another database: `postgresql://u@h:5432/postgres?x=y` →
/// `postgresql://u@h:5432/NAME?x=y`.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgresql", url));
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let authority = path.split('/').next().unwrap_or_default();
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

/// A fresh store with the core schema (`with_users = false`).
pub async fn fresh(backend: Backend) -> TestStore {
    fresh_with(backend, false).await
}

/// A fresh, empty database; the schema is created when `create_schema` is true.
pub async fn fresh_database(backend: Backend) -> TestStore {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("test.sqlite3");
            let dsn_text = format!("sqlite://{}", path.display());
            let dsn = Dsn::parse(&dsn_text).expect("valid sqlite dsn");
            let store = open(&dsn).await.expect("open sqlite store");
            TestStore { store, dsn, dsn_text, _guard: Guard::Dir(dir) }
        }
        Backend::Postgres => {
            let (dsn_text, database) = create_pg_database().await;
            let dsn = Dsn::parse(&dsn_text).expect("valid postgresql dsn");
            let store = open(&dsn).await.expect("open postgresql store");
            TestStore { store, dsn, dsn_text, _guard: Guard::Database(database) }
        }
    }
}

/// A fresh store whose schema is created, with or without the users tables.
pub async fn fresh_with(backend: Backend, with_users: bool) -> TestStore {
    let test = fresh_database(backend).await;
    test.store.create_schema(with_users).await.expect("create schema");
    test
}
