//! The PostgreSQL backend, for deployments where several API processes share one
//! database (SPEC §3, §9).
//!
//! It keeps the SQLite backend's layout and behaviour (same tables, compact integer ids
//! behind the UUIDs of the API, `vte = vt` for instants, same ordering and no-op rules),
//! so the one conformance suite holds for both. What differs is how concurrency is made
//! safe: SQLite has one writer at a time, while here many connections from many
//! processes write at once, so ids come from sequences, get-or-create relies on unique
//! constraints (`ON CONFLICT DO NOTHING`, then read back), and corrections lock the row
//! they supersede. Connections come from a deadpool pool built once from the DSN; every
//! call borrows one, so no request pays for a connection handshake.

mod auth;
mod read;
mod schema;
mod write;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;

use super::dsn::redact;
use super::{SchemaReport, SchemaStatus, Store, StoreError, ValueStream};
use crate::model::{
    Email, KeyId, KeyLookup, KeyRecord, ModelError, NewKey, NewRun, Role, Run, RunFilter, RunId, RunReceipt, Series,
    SeriesFilter, SeriesId, SeriesSpec, TenantId, TenantScope, UpdateReport, UsageDelta, User, ValueQuery, ValueUpdate,
};

/// Connections per process. A streaming read holds one for as long as its client reads,
/// so the pool is sized for a few slow readers plus the short calls beside them; N
/// replicas open up to N × this many, well inside PostgreSQL's default of 100.
const POOL_SIZE: usize = 16;
/// How long a call waits for a free connection before reporting the store as busy.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Session settings for connections whose DSN sets no `options`.
const SESSION_OPTIONS: &str = "-c work_mem=64MB";
/// Used when the DSN sets no `connect_timeout`: an unreachable server should be
/// reported in seconds, not after the operating system's TCP timeout of minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A timedb database on a PostgreSQL server.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// `user@host:port/dbname`, for error messages (never the password).
    target: Target,
}

#[derive(Clone)]
struct Target {
    user: String,
    server: String,
    dbname: String,
}

impl Target {
    fn of(config: &tokio_postgres::Config) -> Self {
        let ports = config.get_ports();
        let port_of = |i: usize| ports.get(i).or_else(|| ports.first()).copied().unwrap_or(5432);
        let servers: Vec<String> = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{}", port_of(i)),
                Host::Tcp(name) => format!("{name}:{}", port_of(i)),
                #[cfg(unix)]
                Host::Unix(dir) => format!("{} (port {})", dir.display(), port_of(i)),
            })
            .collect();
        let user = config.get_user().unwrap_or("(no user)").to_owned();
        Self {
            dbname: config.get_dbname().unwrap_or(&user).to_owned(),
            user,
            server: if servers.is_empty() { "(no host)".to_owned() } else { servers.join(",") },
        }
    }
}

impl PostgresStore {
    /// Build the pool for a `postgresql://` URL. No connection is made yet: a server
    /// that is down at start-up is reported by the first call (`ping`, `schema_status`),
    /// and the process recovers by itself once the server is back.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            let cause = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
            ModelError::new("dsn", format!("'{}' is not a valid PostgreSQL DSN{cause}", redact(url)))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("timedb");
        }
        if config.get_options().is_none() {
            // A large read sorts (its ORDER BY, valid time across series, is no index's
            // order): give the sort memory rather than temporary files. Set per session at
            // connect, so small reads pay no extra round trip; a DSN's own `options` wins.
            config.options(SESSION_OPTIONS);
        }
        let target = Target::of(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A closed connection is detected without a round trip; a broken one
                // fails its next query, which the caller sees as `Unavailable`.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot build the connection pool: {e}")))?;
        Ok(Self { pool, target })
    }

    /// A pooled connection, with connection failures put in words an operator can act on.
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| self.connect_error(e))
    }

    fn connect_error(&self, e: PoolError) -> StoreError {
        let Target { user, server, dbname } = &self.target;
        let unreachable = |why: String| {
            StoreError::Unavailable(format!("the PostgreSQL server at {server} is not reachable ({why})"))
        };
        match e {
            PoolError::Backend(e) => {
                if let Some(db) = e.as_db_error() {
                    let code = db.code();
                    return if *code == SqlState::INVALID_PASSWORD
                        || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                    {
                        StoreError::Unavailable(format!(
                            "authentication failed for user '{user}' at {server} ({})",
                            db.message()
                        ))
                    } else if *code == SqlState::INVALID_CATALOG_NAME {
                        StoreError::Unavailable(format!("database '{dbname}' does not exist on {server}"))
                    } else {
                        StoreError::Unavailable(format!(
                            "the PostgreSQL server at {server} refused the connection: {}",
                            db.message()
                        ))
                    };
                }
                let text = describe(&e);
                if text.contains("password missing") {
                    StoreError::Unavailable(format!(
                        "authentication failed for user '{user}' at {server} (the server asks for a password and the DSN has none)"
                    ))
                } else if text.contains("authentication") {
                    StoreError::Unavailable(format!("authentication failed for user '{user}' at {server} ({text})"))
                } else {
                    unreachable(text)
                }
            }
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => StoreError::Unavailable(format!(
                "all {POOL_SIZE} connections to {server} stayed busy for {} s",
                WAIT_TIMEOUT.as_secs()
            )),
            PoolError::Timeout(_) => unreachable("no answer in time".into()),
            other => StoreError::Backend(format!("connection pool: {other}")),
        }
    }
}

/// The most telling words of an error: tokio-postgres keeps the useful part (such as
/// "Connection refused") in its innermost cause, behind a generic "error connecting".
fn describe(e: &tokio_postgres::Error) -> String {
    let mut innermost: &dyn std::error::Error = e;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    innermost.to_string()
}

/// Map an error of a query: a missing table means a missing schema.
pub(crate) fn backend(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNDEFINED_TABLE {
            return StoreError::SchemaMissing;
        }
        if *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::CRASH_SHUTDOWN
        {
            return StoreError::Unavailable(format!(
                "the PostgreSQL server is shutting down or restarting ({})",
                db.message()
            ));
        }
        return StoreError::Backend(db.message().to_owned());
    }
    if e.is_closed() {
        return StoreError::Unavailable("the connection to the PostgreSQL server was lost".into());
    }
    StoreError::Backend(describe(&e))
}

/// Whether a failed transaction may simply be run again: PostgreSQL broke a deadlock
/// or a serialisation conflict by aborting this side, and nothing of it was kept.
fn is_retryable(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

/// The internal id of a tenant, if it has ever written anything.
pub(crate) async fn tenant_tid(client: &impl GenericClient, tenant: TenantId) -> Result<Option<i64>, StoreError> {
    let stmt = client.prepare_cached("SELECT tid FROM tenants WHERE tenant_id = $1").await.map_err(backend)?;
    let row = client.query_opt(&stmt, &[&tenant.0]).await.map_err(backend)?;
    Ok(row.map(|r| r.get(0)))
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgresql"
    }

    fn schema_ddl(&self, with_users: bool) -> Vec<String> {
        schema::ddl(with_users)
    }

    async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        schema::status(&self.client().await?).await
    }

    async fn create_schema(&self, with_users: bool) -> Result<SchemaReport, StoreError> {
        schema::create(&mut self.client().await?, with_users).await
    }

    async fn drop_schema(&self) -> Result<Vec<String>, StoreError> {
        let dropped = schema::drop_all(&mut self.client().await?).await?;
        // Statements prepared against the dropped tables must not be reused.
        self.pool.manager().statement_caches.clear();
        Ok(dropped)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.simple_query("SELECT 1").await.map_err(backend)?;
        Ok(())
    }

    async fn upsert_series(&self, tenant: TenantId, spec: SeriesSpec) -> Result<(Series, bool), StoreError> {
        write::upsert_series(&mut self.client().await?, tenant, spec).await
    }

    async fn list_series(&self, tenant: TenantId, filter: SeriesFilter) -> Result<Vec<Series>, StoreError> {
        read::list_series(&self.client().await?, tenant, &filter).await
    }

    async fn get_series(&self, tenant: TenantId, id: SeriesId) -> Result<Series, StoreError> {
        read::get_series(&self.client().await?, tenant, id).await
    }

    async fn insert_run(
        &self,
        tenant: TenantId,
        run: NewRun,
        created_by: Option<String>,
    ) -> Result<RunReceipt, StoreError> {
        write::insert_run(&mut self.client().await?, tenant, run, created_by).await
    }

    async fn list_runs(&self, tenant: TenantId, filter: RunFilter) -> Result<Vec<Run>, StoreError> {
        read::list_runs(&self.client().await?, tenant, &filter).await
    }

    async fn get_run(&self, tenant: TenantId, id: RunId) -> Result<Run, StoreError> {
        read::get_run(&self.client().await?, tenant, id).await
    }

    async fn read_values(&self, tenant: TenantId, query: ValueQuery) -> Result<ValueStream, StoreError> {
        let client = self.client().await?;
        let (tx, stream) = ValueStream::channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        // The reader owns its connection for as long as the client reads. It resolves
        // the series and binds the query first and says so through `ready`, so a
        // missing schema is an error status, not a broken stream.
        tokio::spawn(read::stream_values(client, tenant, query, ready_tx, tx));
        ready_rx.await.map_err(|_| StoreError::Backend("read worker stopped before starting".into()))??;
        Ok(stream)
    }

    async fn update_values(
        &self,
        tenant: TenantId,
        updates: Vec<ValueUpdate>,
        changed_by: Option<String>,
    ) -> Result<UpdateReport, StoreError> {
        write::update_values(&mut self.client().await?, tenant, &updates, changed_by).await
    }

    async fn auth_generation(&self) -> Result<i64, StoreError> {
        auth::generation(&self.client().await?).await
    }

    async fn database_pepper(&self, candidate: [u8; 32]) -> Result<Vec<u8>, StoreError> {
        auth::database_pepper(&self.client().await?, candidate).await
    }

    async fn claim_pepper_fingerprint(&self, fingerprint: &str) -> Result<Option<String>, StoreError> {
        auth::claim_pepper_fingerprint(&self.client().await?, fingerprint).await
    }

    async fn lookup_key(&self, key_id: &KeyId) -> Result<Option<KeyLookup>, StoreError> {
        auth::lookup_key(&self.client().await?, key_id).await
    }

    async fn record_usage(&self, deltas: Vec<UsageDelta>) -> Result<(), StoreError> {
        auth::record_usage(&mut self.client().await?, deltas).await
    }

    async fn find_users(
        &self,
        scope: TenantScope,
        email: Option<Email>,
        include_inactive: bool,
    ) -> Result<Vec<User>, StoreError> {
        auth::find_users(&self.client().await?, scope, email.as_ref(), include_inactive).await
    }

    async fn create_user(
        &self,
        tenant: TenantId,
        email: Email,
        role: Role,
        first_key: NewKey,
        actor: Option<String>,
    ) -> Result<(User, KeyRecord), StoreError> {
        auth::create_user(&mut self.client().await?, tenant, email, role, first_key, actor).await
    }

    async fn set_user_active(
        &self,
        tenant: TenantId,
        email: Email,
        active: bool,
        actor: Option<String>,
    ) -> Result<User, StoreError> {
        auth::set_user_active(&mut self.client().await?, tenant, &email, active, actor).await
    }

    async fn create_key(
        &self,
        tenant: TenantId,
        email: Email,
        key: NewKey,
        actor: Option<String>,
    ) -> Result<KeyRecord, StoreError> {
        auth::create_key(&mut self.client().await?, tenant, &email, key, actor).await
    }

    async fn regenerate_key(
        &self,
        tenant: TenantId,
        email: Email,
        key: NewKey,
        actor: Option<String>,
    ) -> Result<KeyRecord, StoreError> {
        auth::regenerate_key(&mut self.client().await?, tenant, &email, key, actor).await
    }

    async fn list_keys(
        &self,
        scope: TenantScope,
        email: Option<Email>,
        include_revoked: bool,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        auth::list_keys(&self.client().await?, scope, email.as_ref(), include_revoked).await
    }

    async fn revoke_key(
        &self,
        tenant: TenantId,
        key_id: KeyId,
        actor: Option<String>,
    ) -> Result<KeyRecord, StoreError> {
        auth::revoke_key(&mut self.client().await?, tenant, &key_id, actor).await
    }

    async fn delete_key(&self, tenant: TenantId, key_id: KeyId, actor: Option<String>) -> Result<(), StoreError> {
        auth::delete_key(&mut self.client().await?, tenant, &key_id, actor).await
    }
}
