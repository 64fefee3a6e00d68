//! What a measurement runs against: a fresh database per backend, and the real server
//! serving it on 127.0.0.1 port 0.
//!
//! A SQLite database is a file in a temporary directory; a PostgreSQL one is a database
//! `timedb_bench_<uuid>` created on the server the admin DSN names. Both are removed when
//! the [`Database`] is dropped — also when a measurement fails half-way — so a run never
//! leaves data behind.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use timedb::Store;
use timedb::store::{Dsn, open};
use timedb_server::auth::{AuthConfig, Verifier};
use timedb_server::http::{HttpConfig, serve};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

/// The environment variable `--pg` falls back to.
pub const PG_DSN_VAR: &str = "TIMEDB_BENCH_PG_DSN";

/// A storage backend to measure.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The admin DSN of a server where the benchmark may `CREATE DATABASE`.
    Postgres(String),
}

impl Backend {
    /// SQLite always; PostgreSQL too when an admin DSN is given.
    pub fn selected(pg: Option<String>) -> Vec<Backend> {
        let mut all = vec![Backend::Sqlite];
        all.extend(pg.filter(|d| !d.trim().is_empty()).map(Backend::Postgres));
        all
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgresql",
        }
    }
}

/// A fresh database with timedb's schema, removed on drop.
pub struct Database {
    // Declared before `_place` so the store (and its pooled connections) goes first.
    pub store: Arc<dyn Store>,
    _place: Place,
}

enum Place {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] PgDatabase),
}

impl Database {
    /// Create a database on `backend` with the core schema, plus the users tables
    /// (authentication on) when `with_users`.
    pub async fn create(backend: &Backend, with_users: bool) -> anyhow::Result<Self> {
        let (dsn, place) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new().prefix("timedb-bench-").tempdir()?;
                let dsn = Dsn::Sqlite(dir.path().join("bench.sqlite3"));
                (dsn, Place::Dir(dir))
            }
            Backend::Postgres(admin) => {
                let db = PgDatabase::create(admin).await?;
                (Dsn::Postgres(db.dsn.clone()), Place::Postgres(db))
            }
        };
        let store = open(&dsn).await.with_context(|| format!("opening the {} store", backend.name()))?;
        store.create_schema(with_users).await.context("creating the schema")?;
        Ok(Self { store, _place: place })
    }
}

/// A database of the benchmark's own on a PostgreSQL server, dropped on drop.
pub struct PgDatabase {
    admin_dsn: String,
    name: String,
    /// The DSN of the new database.
    pub dsn: String,
}

impl PgDatabase {
    /// `CREATE DATABASE timedb_bench_<uuid>` on the server `admin_dsn` names.
    pub async fn create(admin_dsn: &str) -> anyhow::Result<Self> {
        let (client, connection) = tokio_postgres::connect(admin_dsn, NoTls)
            .await
            .with_context(|| format!("connecting to {}", timedb::store::Dsn::Postgres(admin_dsn.to_owned())))?;
        let connection = tokio::spawn(connection);
        let name = format!("timedb_bench_{}", uuid::Uuid::new_v4().simple());
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.with_context(|| format!("creating {name}"))?;
        drop(client);
        let _ = connection.await;
        let dsn = with_database(admin_dsn, &name);
        Ok(Self { admin_dsn: admin_dsn.to_owned(), name, dsn })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop cannot await, and blocking the runtime's own thread on a future would
        // deadlock; a thread with a small runtime of its own can. `WITH (FORCE)` ends the
        // store's pooled connections, which may still be open.
        let admin_dsn = self.admin_dsn.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&admin_dsn, NoTls).await.map_err(|e| e.to_string())?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("timedb-bench: could not drop database {}: {e}", self.name);
        }
    }
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

/// The real server, in this process, on 127.0.0.1 port 0.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Serve `store` as `timedb api` does: a verifier with the default settings, its
    /// background polling and usage flushing, and `config` for the HTTP layer.
    pub async fn start(store: Arc<dyn Store>, config: HttpConfig) -> anyhow::Result<Self> {
        let verifier = Verifier::new(store.clone(), AuthConfig::default(), None).await?;
        verifier.spawn_background();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = oneshot::channel::<()>();
        let v = verifier.clone();
        let task = tokio::spawn(async move {
            serve(listener, store, v, &config, async {
                let _ = rx.await;
            })
            .await
        });
        Ok(Self { base, shutdown: Some(tx), task: Some(task) })
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    /// Shut down gracefully (in-flight requests finish, usage is flushed).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(joined) => joined?.context("the server failed")?,
                Err(_) => anyhow::bail!("the server did not shut down within 10 s"),
            }
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_replaces_the_path_only() {
        assert_eq!(with_database("postgresql://u@h:5432/postgres", "x"), "postgresql://u@h:5432/x");
        assert_eq!(
            with_database("postgres://u:p@h/postgres?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgresql://u@h:1", "x"), "postgresql://u@h:1/x");
    }
}
