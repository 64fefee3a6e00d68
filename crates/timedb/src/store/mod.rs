//! Storage: the [`Store`] trait every backend implements, and the backends themselves.
//!
//! Every data call takes the caller's [`TenantId`]: a store call cannot be written
//! without saying whose data it touches, so tenant isolation is checked by the compiler
//! rather than by review. Schema calls (create, drop, status) are operator actions and
//! take no tenant. Backends live in their own modules (`sqlite` today; PostgreSQL is a
//! sibling) and are chosen at run time from a [`Dsn`].

mod dsn;
pub mod postgres;
pub mod sqlite;
mod stream;

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{
    Email, KeyId, KeyLookup, KeyRecord, ModelError, NewKey, NewRun, Role, Run, RunFilter, RunId, RunReceipt, Series,
    SeriesFilter, SeriesId, SeriesSpec, TenantId, TenantScope, UpdateReport, UsageDelta, User, ValueQuery, ValueUpdate,
};

pub use dsn::{Dsn, redact};
pub use stream::ValueStream;

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

/// Errors of the storage layer; the HTTP edge maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed thing does not exist *for this tenant* (another tenant's id is
    /// indistinguishable from an unknown one).
    #[error("{0} not found")]
    NotFound(String),
    /// A definition clashes with what is stored (same series key, different unit).
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but inconsistent with stored data.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    #[error("the database has no timedb schema; run `timedb create tables` first")]
    SchemaMissing,
    #[error("the database schema is version {found}, newer than this timedb supports ({supported}); upgrade timedb")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error(
        "the database schema is version {found}, older than this timedb ({supported}); run `timedb create tables` to upgrade it"
    )]
    SchemaTooOld { found: i64, supported: i64 },
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Backend(String),
}

/// What a database holds of timedb's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    /// `None` when no timedb schema exists.
    pub version: Option<i64>,
    /// Whether the users/keys tables exist (auth is on iff they do).
    pub has_users: bool,
}

/// What `create tables` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaReport {
    /// Tables that did not exist before.
    pub created: Vec<String>,
    pub version: i64,
}

/// A storage backend. Implementations are cheap to share (`Arc<dyn Store>`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgresql"`, for logs and `/healthz`.
    fn backend(&self) -> &'static str;

    /// The statements `create tables` runs, for `--dry-run`.
    fn schema_ddl(&self, with_users: bool) -> Vec<String>;

    async fn schema_status(&self) -> Result<SchemaStatus, StoreError>;
    /// Create missing tables (idempotent); `with_users` adds the auth tables.
    async fn create_schema(&self, with_users: bool) -> Result<SchemaReport, StoreError>;
    /// Drop every timedb table; returns the tables dropped.
    async fn drop_schema(&self) -> Result<Vec<String>, StoreError>;
    /// Cheap round trip proving the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Get-or-create a series by key. `true` when it was created. A given unit,
    /// description or labels that differ from the stored series is a conflict.
    async fn upsert_series(&self, tenant: TenantId, spec: SeriesSpec) -> Result<(Series, bool), StoreError>;
    async fn list_series(&self, tenant: TenantId, filter: SeriesFilter) -> Result<Vec<Series>, StoreError>;
    async fn get_series(&self, tenant: TenantId, id: SeriesId) -> Result<Series, StoreError>;

    /// Write a run and all its values atomically.
    async fn insert_run(
        &self,
        tenant: TenantId,
        run: NewRun,
        created_by: Option<String>,
    ) -> Result<RunReceipt, StoreError>;
    async fn list_runs(&self, tenant: TenantId, filter: RunFilter) -> Result<Vec<Run>, StoreError>;
    async fn get_run(&self, tenant: TenantId, id: RunId) -> Result<Run, StoreError>;

    /// Stream the rows of a read in the order SPEC §2 defines.
    async fn read_values(&self, tenant: TenantId, query: ValueQuery) -> Result<ValueStream, StoreError>;

    /// Apply corrections atomically: all of them, or none (the first failure is returned).
    async fn update_values(
        &self,
        tenant: TenantId,
        updates: Vec<ValueUpdate>,
        changed_by: Option<String>,
    ) -> Result<UpdateReport, StoreError>;

    // --- Users, keys and the audit log (the auth tables of `--with-users`). ---
    //
    // Operator and admin calls name the tenant (or, for the CLI's listings,
    // `TenantScope::All`); only `lookup_key` does not, because a presented key names no
    // tenant: the tenant is what the key *resolves to*. Every change that can take access
    // away (revoke, delete, deactivate, regenerate) bumps the auth generation in the same
    // transaction, so running servers drop their cached keys within one poll.

    /// A counter bumped by every change that can take access away.
    async fn auth_generation(&self) -> Result<i64, StoreError>;
    /// The database's key pepper: stored on first use (from `candidate`), then fixed.
    async fn database_pepper(&self, candidate: [u8; 32]) -> Result<Vec<u8>, StoreError>;
    /// Record the fingerprint of the pepper keys are hashed with; `Some(stored)` when a
    /// different one was recorded first (the server's secret changed since).
    async fn claim_pepper_fingerprint(&self, fingerprint: &str) -> Result<Option<String>, StoreError>;
    /// A key by its public id, with its user's state, for verification.
    async fn lookup_key(&self, key_id: &KeyId) -> Result<Option<KeyLookup>, StoreError>;
    /// Add counted uses to keys (best effort: unknown keys are skipped).
    async fn record_usage(&self, deltas: Vec<UsageDelta>) -> Result<(), StoreError>;

    async fn find_users(
        &self,
        scope: TenantScope,
        email: Option<Email>,
        include_inactive: bool,
    ) -> Result<Vec<User>, StoreError>;
    /// Create a user with its first key, atomically; an existing email is a conflict.
    async fn create_user(
        &self,
        tenant: TenantId,
        email: Email,
        role: Role,
        first_key: NewKey,
        actor: Option<String>,
    ) -> Result<(User, KeyRecord), StoreError>;
    async fn set_user_active(
        &self,
        tenant: TenantId,
        email: Email,
        active: bool,
        actor: Option<String>,
    ) -> Result<User, StoreError>;
    /// Add a key to an existing user.
    async fn create_key(
        &self,
        tenant: TenantId,
        email: Email,
        key: NewKey,
        actor: Option<String>,
    ) -> Result<KeyRecord, StoreError>;
    /// Revoke every live key of a user and give them `key`, atomically.
    async fn regenerate_key(
        &self,
        tenant: TenantId,
        email: Email,
        key: NewKey,
        actor: Option<String>,
    ) -> Result<KeyRecord, StoreError>;
    async fn list_keys(
        &self,
        scope: TenantScope,
        email: Option<Email>,
        include_revoked: bool,
    ) -> Result<Vec<KeyRecord>, StoreError>;
    /// Revoke a key (idempotent: revoking a revoked key returns it unchanged).
    async fn revoke_key(&self, tenant: TenantId, key_id: KeyId, actor: Option<String>)
    -> Result<KeyRecord, StoreError>;
    /// Remove a key for good (its audit entries stay).
    async fn delete_key(&self, tenant: TenantId, key_id: KeyId, actor: Option<String>) -> Result<(), StoreError>;
}

/// Open the store a DSN names. The schema is not created or checked here.
pub async fn open(dsn: &Dsn) -> Result<Arc<dyn Store>, StoreError> {
    match dsn {
        Dsn::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(path).await?)),
        Dsn::Postgres(url) => Ok(Arc::new(postgres::PostgresStore::open(url)?)),
    }
}

/// Check that a store's schema is one this build can serve.
pub fn check_version(status: SchemaStatus) -> Result<(), StoreError> {
    match status.version {
        None => Err(StoreError::SchemaMissing),
        Some(v) if v > SCHEMA_VERSION => Err(StoreError::SchemaTooNew { found: v, supported: SCHEMA_VERSION }),
        Some(v) if v < SCHEMA_VERSION => Err(StoreError::SchemaTooOld { found: v, supported: SCHEMA_VERSION }),
        Some(_) => Ok(()),
    }
}
