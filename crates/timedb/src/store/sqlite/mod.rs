//! The embedded SQLite backend (the default store).
//!
//! rusqlite is synchronous, so every call runs on Tokio's blocking pool, never on the
//! async executor. One writer connection sits behind a `std::sync::Mutex` (SQLite allows
//! one writer at a time anyway, and the lock is only ever held inside blocking tasks, so
//! a Tokio mutex would buy nothing); reads take a connection from a bounded pool and, in
//! WAL mode, run concurrently with the writer. Cross-process writers (the CLI while a
//! server runs) wait on SQLite's busy timeout.
//!
//! Rows are keyed by compact integers (tenant `tid`, series `sid`, run `rid`) while the
//! API speaks UUIDs; value versions live in a `WITHOUT ROWID` table clustered on
//! `(tid, sid, vt, vte, rid, version)`, so one series' values over a time window are one
//! contiguous range. An instant without an end is stored with `vte = vt` (an interval's
//! end is always after its start, so the two never collide).

mod auth;
mod read;
mod schema;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{SchemaReport, SchemaStatus, Store, StoreError, ValueStream};
use crate::model::{
    Email, KeyId, KeyLookup, KeyRecord, NewKey, NewRun, Role, Run, RunFilter, RunId, RunReceipt, Series, SeriesFilter,
    SeriesId, SeriesSpec, TenantId, TenantScope, UpdateReport, UsageDelta, User, ValueQuery, ValueUpdate,
};

/// Most reader connections open at once: twice the cores, and at least 8. Opening a
/// connection (file open, WAL setup, an empty statement cache) costs more than a small
/// read, so readers are kept and reused; past the bound a read waits for one to come back
/// instead of opening another that would compete for the same cores.
fn max_readers() -> usize {
    std::thread::available_parallelism().map_or(8, |n| (n.get() * 2).max(8))
}

/// How long a read waits for a pooled reader before opening a one-off connection.
const OVERFLOW_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

/// Prepared statements cached per connection: the value read alone has up to 128 shapes.
const STATEMENT_CACHE: usize = 160;

/// A timedb database in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Readers>,
    /// Signalled whenever a reader is returned or a slot frees up. A `std` condvar, not a
    /// Tokio one: readers are only ever taken inside blocking tasks, so the wait parks a
    /// blocking-pool thread, never an executor thread.
    reader_returned: Condvar,
    max_readers: usize,
}

/// The reader pool: idle connections, and how many exist in all (idle or in use).
#[derive(Default)]
pub(crate) struct Readers {
    idle: Vec<Connection>,
    open: usize,
}

/// Process-wide SQLite settings, applied once before the first connection: no memory
/// statistics (they take a global mutex on every allocation, which serialises readers).
fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config is called before any connection of this process is
        // opened by this crate; if SQLite was already initialised it returns
        // SQLITE_MISUSE and changes nothing, which is harmless.
        unsafe {
            rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int);
        }
    });
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    configure_sqlite();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Keep each cached statement's plan: the bundled SQLite (STAT4) otherwise re-prepares a
    // statement whenever a parameter is bound, which was a third of a small read's CPU.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(backend)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = FILE;
         PRAGMA cache_size = -32000;",
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot use {}: {e}", path.display())))?;
    Ok(conn)
}

/// Map a SQLite error: a missing table means a missing schema.
pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    let text = e.to_string();
    if text.contains("no such table") { StoreError::SchemaMissing } else { StoreError::Backend(text) }
}

impl SqliteStore {
    /// Open (or create) the database file. The schema is not touched.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let writer = open_connection(&path)?;
            let inner = Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Readers::default()),
                reader_returned: Condvar::new(),
                max_readers: max_readers(),
            };
            Ok(Self { inner: Arc::new(inner) })
        })
        .await
        .map_err(|e| StoreError::Backend(format!("worker failed: {e}")))?
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Run `f` with the writer connection on the blocking pool.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // A panic in an earlier holder leaves the connection itself usable (every
            // transaction is rolled back when its guard drops), so poisoning is ignored.
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("worker failed: {e}")))?
    }

    /// Run `f` with a pooled reader connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.with_reader(f))
            .await
            .map_err(|e| StoreError::Backend(format!("worker failed: {e}")))?
    }
}

/// A reader taken from the pool; dropping it (also by a panic in the read) gives the
/// connection back and wakes one waiter.
struct PooledReader<'a> {
    inner: &'a Inner,
    conn: Option<Connection>,
    /// Opened past the bound because every pooled reader stayed busy; closed, not kept.
    overflow: bool,
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        if self.overflow {
            return;
        }
        if let Some(conn) = self.conn.take() {
            self.inner.lock_readers().idle.push(conn);
            self.inner.reader_returned.notify_one();
        }
    }
}

impl Inner {
    /// The pool state. Poisoning is ignored: the lock guards a list and a count, which
    /// every holder leaves consistent.
    fn lock_readers(&self) -> MutexGuard<'_, Readers> {
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take an idle reader, open one while under the bound, or wait for one to return.
    /// A wait longer than [`OVERFLOW_AFTER`] (every reader held, e.g. by streams to slow
    /// clients) opens a one-off connection instead, so a key lookup or a small read is
    /// never stuck behind someone else's download.
    fn take_reader(&self) -> Result<PooledReader<'_>, StoreError> {
        let deadline = std::time::Instant::now() + OVERFLOW_AFTER;
        let mut readers = self.lock_readers();
        loop {
            if let Some(conn) = readers.idle.pop() {
                return Ok(PooledReader { inner: self, conn: Some(conn), overflow: false });
            }
            if readers.open < self.max_readers {
                readers.open += 1;
                drop(readers); // opening takes a while; others may take idle readers meanwhile
                return match open_connection(&self.path) {
                    Ok(conn) => Ok(PooledReader { inner: self, conn: Some(conn), overflow: false }),
                    Err(e) => {
                        self.lock_readers().open -= 1;
                        self.reader_returned.notify_one();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                drop(readers);
                return Ok(PooledReader { inner: self, conn: Some(open_connection(&self.path)?), overflow: true });
            }
            readers = self.reader_returned.wait_timeout(readers, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    pub(crate) fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let reader = self.take_reader()?;
        f(reader.conn.as_ref().expect("a pooled reader holds its connection until dropped"))
    }

    /// Close the idle readers, freeing their slots. Readers in use at the time come back
    /// to the pool as before; SQLite re-prepares their cached statements on the schema
    /// change.
    fn close_idle_readers(&self) {
        let mut readers = self.lock_readers();
        let closed = readers.idle.len();
        readers.idle.clear();
        readers.open -= closed;
        drop(readers);
        self.reader_returned.notify_all();
    }
}

/// The internal id of a tenant, if it has ever written anything.
pub(crate) fn tenant_tid(conn: &Connection, tenant: TenantId) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT tid FROM tenants WHERE tenant_id = ?1")
        .and_then(|mut s| s.query_row(params![&tenant.as_bytes()[..]], |r| r.get(0)).optional())
        .map_err(backend)
}

pub(crate) fn uuid_from(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<[u8; 16]> {
    let blob = row.get_ref(idx)?.as_blob()?;
    blob.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Blob, "uuid must be 16 bytes".into())
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn schema_ddl(&self, with_users: bool) -> Vec<String> {
        schema::ddl(with_users)
    }

    async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        self.read(schema::status).await
    }

    async fn create_schema(&self, with_users: bool) -> Result<SchemaReport, StoreError> {
        self.write(move |c| schema::create(c, with_users)).await
    }

    async fn drop_schema(&self) -> Result<Vec<String>, StoreError> {
        let dropped = self.write(schema::drop_all).await?;
        // Pooled readers may cache statements over dropped tables; start afresh.
        self.inner.close_idle_readers();
        Ok(dropped)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(backend)).await
    }

    async fn upsert_series(&self, tenant: TenantId, spec: SeriesSpec) -> Result<(Series, bool), StoreError> {
        self.write(move |c| write::upsert_series(c, tenant, spec)).await
    }

    async fn list_series(&self, tenant: TenantId, filter: SeriesFilter) -> Result<Vec<Series>, StoreError> {
        self.read(move |c| read::list_series(c, tenant, &filter)).await
    }

    async fn get_series(&self, tenant: TenantId, id: SeriesId) -> Result<Series, StoreError> {
        self.read(move |c| read::get_series(c, tenant, id)).await
    }

    async fn insert_run(
        &self,
        tenant: TenantId,
        run: NewRun,
        created_by: Option<String>,
    ) -> Result<RunReceipt, StoreError> {
        self.write(move |c| write::insert_run(c, tenant, run, created_by)).await
    }

    async fn list_runs(&self, tenant: TenantId, filter: RunFilter) -> Result<Vec<Run>, StoreError> {
        self.read(move |c| read::list_runs(c, tenant, &filter)).await
    }

    async fn get_run(&self, tenant: TenantId, id: RunId) -> Result<Run, StoreError> {
        self.read(move |c| read::get_run(c, tenant, id)).await
    }

    async fn read_values(&self, tenant: TenantId, query: ValueQuery) -> Result<ValueStream, StoreError> {
        let (tx, stream) = ValueStream::channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let inner = self.inner.clone();
        // The worker resolves the series and prepares the statement first and says so
        // through `ready`, so a missing schema is an error status, not a broken stream.
        tokio::task::spawn_blocking(move || {
            let _ = inner.with_reader(|c| read::stream_values(c, tenant, &query, ready_tx, &tx));
        });
        ready_rx.await.map_err(|_| StoreError::Backend("read worker stopped before starting".into()))??;
        Ok(stream)
    }

    async fn update_values(
        &self,
        tenant: TenantId,
        updates: Vec<ValueUpdate>,
        changed_by: Option<String>,
    ) -> Result<UpdateReport, StoreError> {
        self.write(move |c| write::update_values(c, tenant, updates, changed_by)).await
    }

    async fn auth_generation(&self) -> Result<i64, StoreError> {
        self.read(auth::generation).await
    }

    async fn database_pepper(&self, candidate: [u8; 32]) -> Result<Vec<u8>, StoreError> {
        self.write(move |c| auth::database_pepper(c, candidate)).await
    }

    async fn claim_pepper_fingerprint(&self, fingerprint: &str) -> Result<Option<String>, StoreError> {
        let fingerprint = fingerprint.to_owned();
        self.write(move |c| auth::claim_pepper_fingerprint(c, &fingerprint)).await
    }

    async fn lookup_key(&self, key_id: &KeyId) -> Result<Option<KeyLookup>, StoreError> {
        let key_id = key_id.clone();
        self.read(move |c| auth::lookup_key(c, &key_id)).await
    }

    async fn record_usage(&self, deltas: Vec<UsageDelta>) -> Result<(), StoreError> {
        self.write(move |c| auth::record_usage(c, deltas)).await
    }

    async fn find_users(
        &self,
        scope: TenantScope,
        email: Option<Email>,
        include_inactive: bool,
    ) -> Result<Vec<User>, StoreError> {
        self.read(move |c| auth::find_users(c, scope, email.as_ref(), include_inactive)).await
    }

    async fn create_user(
        &self,
        tenant: TenantId,
        email: Email,
        role: Role,
        first_key: NewKey,
        actor: Option<String>,
    ) -> Result<(User, KeyRecord), StoreError> {
        self.write(move |c| auth::create_user(c, tenant, email, role, first_key, actor)).await
    }

    async fn set_user_active(
        &self,
        tenant: TenantId,
        email: Email,
        active: bool,
        actor: Option<String>,
    ) -> Result<User, StoreError> {
        self.write(move |c| auth::set_user_active(c, tenant, &email, active, actor)).await
    }

    async fn create_key(
        &self,
        tenant: TenantId,
        email: Email,
        key: NewKey,
        actor: Option<String>,
    ) -> Result<KeyRecord, StoreError> {
        self.write(move |c| auth::create_key(c, tenant, &email, key, actor)).await
    }

    async fn regenerate_key(
        &self,
        tenant: TenantId,
        email: Email,
        key: NewKey,
        actor: Option<String>,
    ) -> Result<KeyRecord, StoreError> {
        self.write(move |c| auth::regenerate_key(c, tenant, &email, key, actor)).await
    }

    async fn list_keys(
        &self,
        scope: TenantScope,
        email: Option<Email>,
        include_revoked: bool,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        self.read(move |c| auth::list_keys(c, scope, email.as_ref(), include_revoked)).await
    }

    async fn revoke_key(
        &self,
        tenant: TenantId,
        key_id: KeyId,
        actor: Option<String>,
    ) -> Result<KeyRecord, StoreError> {
        self.write(move |c| auth::revoke_key(c, tenant, &key_id, actor)).await
    }

    async fn delete_key(&self, tenant: TenantId, key_id: KeyId, actor: Option<String>) -> Result<(), StoreError> {
        self.write(move |c| auth::delete_key(c, tenant, &key_id, actor)).await
    }
}
