//! Users, API keys, the audit log and the auth change counter on PostgreSQL.
//!
//! The same rules as the SQLite backend, made safe for many connections from many
//! processes at once. Keys are found by key id alone (a presented key does not name its
//! tenant) through the unique index `api_keys_by_key_id`; every other call is scoped by
//! the tenant. Each change that can take access away bumps `auth_generation` in
//! `timedb_meta` in the same transaction, with one atomic upsert, so no bump is lost when
//! processes change keys at once; running servers poll it to drop their key caches.
//!
//! Concurrency: get-or-create (tenant, user, key, pepper) inserts with
//! `ON CONFLICT DO NOTHING` and reads back what won, so a race yields one row and the
//! loser sees it. Changes to a user or its keys first lock the user's row, so two
//! regenerations (or a regeneration and a deactivation) queue rather than interleave;
//! a single key is locked (`FOR UPDATE`) before it is revoked, so concurrent revocations
//! are idempotent. Keys are locked in key-id order everywhere (usage flushes,
//! regeneration), so those never deadlock each other.

use std::collections::BTreeMap;

use deadpool_postgres::{GenericClient, Object, Transaction};
use tokio_postgres::Row;
use uuid::Uuid;

use super::write::tenant_tid_or_create;
use super::{backend, is_retryable, tenant_tid};
use crate::model::time::{from_micros, now, to_micros};
use crate::model::{
    Email, KeyId, KeyLookup, KeyRecord, NewKey, RateLimit, Role, Scopes, TenantId, TenantScope, Timestamp, UsageDelta,
    User,
};
use crate::store::StoreError;

/// `timedb_meta` keys (the SQLite backend's names).
const GENERATION: &str = "auth_generation";
const PEPPER: &str = "key_pepper";
const FINGERPRINT: &str = "pepper_fingerprint";

/// Times a usage flush is run again after PostgreSQL aborted it to break a deadlock.
const MAX_ATTEMPTS: usize = 5;

async fn meta(client: &impl GenericClient, key: &str) -> Result<Option<String>, StoreError> {
    let stmt = client.prepare_cached("SELECT value FROM timedb_meta WHERE key = $1").await.map_err(backend)?;
    Ok(client.query_opt(&stmt, &[&key]).await.map_err(backend)?.map(|r| r.get(0)))
}

/// Store `value` under `key` unless a value is there already; return the stored one.
/// Race-safe across processes: the insert of a losing process does nothing (after
/// waiting for the winner to commit), and the read that follows sees the winner's row.
async fn meta_first(client: &Object, key: &str, value: &str) -> Result<String, StoreError> {
    let insert = client
        .prepare_cached("INSERT INTO timedb_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .await
        .map_err(backend)?;
    client.execute(&insert, &[&key, &value]).await.map_err(backend)?;
    meta(client, key).await?.ok_or_else(|| StoreError::Backend(format!("timedb_meta lost '{key}' while setting it")))
}

/// Bump the change counter that tells running servers to drop cached keys. One
/// statement, so concurrent bumps from several processes each count.
pub(super) async fn bump_generation(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO timedb_meta (key, value) VALUES ('auth_generation', '1')
             ON CONFLICT (key) DO UPDATE SET value = (timedb_meta.value::bigint + 1)::text",
        )
        .await
        .map_err(backend)?;
    tx.execute(&stmt, &[]).await.map_err(backend)?;
    Ok(())
}

pub(super) async fn generation(client: &Object) -> Result<i64, StoreError> {
    Ok(meta(client, GENERATION).await?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

pub(super) async fn database_pepper(client: &Object, candidate: [u8; 32]) -> Result<Vec<u8>, StoreError> {
    let hex: String = candidate.iter().map(|b| format!("{b:02x}")).collect();
    let stored = meta_first(client, PEPPER, &hex).await?;
    decode_hex(&stored).ok_or_else(|| StoreError::Backend("the stored key pepper is unreadable".into()))
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len()).step_by(2).map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

pub(super) async fn claim_pepper_fingerprint(client: &Object, fingerprint: &str) -> Result<Option<String>, StoreError> {
    let stored = meta_first(client, FINGERPRINT, fingerprint).await?;
    Ok((stored != fingerprint).then_some(stored))
}

async fn audit(
    tx: &Transaction<'_>,
    tid: i64,
    actor: Option<&str>,
    action: &str,
    subject: &str,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO audit_log (tid, event_id, at, actor, action, subject)
             VALUES ($1, nextval('timedb_audit_seq'), $2, $3, $4, $5)",
        )
        .await
        .map_err(backend)?;
    tx.execute(&stmt, &[&tid, &to_micros(now()), &actor, &action, &subject]).await.map_err(backend)?;
    Ok(())
}

const USER_COLUMNS: &str = "t.tenant_id, u.user_id, u.email, u.role, u.is_active, u.created_at";

fn user_from_row(r: &Row) -> Result<User, StoreError> {
    Ok(User {
        tenant: TenantId(r.try_get(0).map_err(backend)?),
        user_id: r.try_get(1).map_err(backend)?,
        email: Email::from_stored(r.try_get(2).map_err(backend)?),
        role: Role::parse("role", r.try_get(3).map_err(backend)?)?,
        is_active: r.try_get(4).map_err(backend)?,
        created_at: from_micros(r.try_get(5).map_err(backend)?).unwrap_or_default(),
    })
}

/// The internal id a scope names: `Some(None)` for all tenants, `None` for a tenant
/// that has never written anything (so nothing can match).
async fn scope_tid(client: &impl GenericClient, scope: TenantScope) -> Result<Option<Option<i64>>, StoreError> {
    Ok(match scope {
        TenantScope::One(t) => tenant_tid(client, t).await?.map(Some),
        TenantScope::All => Some(None),
    })
}

pub(super) async fn find_users(
    client: &Object,
    scope: TenantScope,
    email: Option<&Email>,
    include_inactive: bool,
) -> Result<Vec<User>, StoreError> {
    let Some(tid) = scope_tid(client, scope).await? else {
        return Ok(Vec::new());
    };
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN tenants t ON t.tid = u.tid
             WHERE ($1::bigint IS NULL OR u.tid = $1) AND ($2::text IS NULL OR u.email = $2)
               AND ($3::boolean OR u.is_active)
             ORDER BY u.tid, u.email COLLATE \"C\""
        ))
        .await
        .map_err(backend)?;
    let rows = client.query(&stmt, &[&tid, &email.map(Email::as_str), &include_inactive]).await.map_err(backend)?;
    rows.iter().map(user_from_row).collect()
}

/// A user of a tenant, its row locked until the transaction ends, so changes to one
/// user and its keys happen one after another.
async fn lock_user(tx: &Transaction<'_>, tid: i64, email: &Email) -> Result<Option<User>, StoreError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN tenants t ON t.tid = u.tid
             WHERE u.tid = $1 AND u.email = $2
             FOR UPDATE OF u"
        ))
        .await
        .map_err(backend)?;
    tx.query_opt(&stmt, &[&tid, &email.as_str()]).await.map_err(backend)?.as_ref().map(user_from_row).transpose()
}

async fn require_user(tx: &Transaction<'_>, tenant: TenantId, email: &Email) -> Result<(i64, User), StoreError> {
    let not_found = || StoreError::NotFound(format!("user {email}"));
    let tid = tenant_tid(tx, tenant).await?.ok_or_else(not_found)?;
    Ok((tid, lock_user(tx, tid, email).await?.ok_or_else(not_found)?))
}

async fn insert_key(
    tx: &Transaction<'_>,
    tid: i64,
    user: &User,
    key: &NewKey,
    actor: Option<&str>,
) -> Result<KeyRecord, StoreError> {
    let created_at = now();
    // Key ids are random; a clash (with any tenant's key: verification finds keys by id
    // alone) is reported rather than overwriting or aborting on a constraint error.
    let stmt = tx
        .prepare_cached(
            "INSERT INTO api_keys (tid, key_id, user_id, key_hash, note, scopes, expires_at, revoked_at, rate_limit,
                                   last_used_at, use_count, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, NULL, 0, $9, $10)
             ON CONFLICT DO NOTHING
             RETURNING key_id",
        )
        .await
        .map_err(backend)?;
    let inserted = tx
        .query_opt(
            &stmt,
            &[
                &tid,
                &key.key_id.as_str(),
                &user.user_id,
                &&key.hash[..],
                &key.note,
                &key.scopes.to_text(),
                &key.expires_at.map(to_micros),
                &key.rate_limit.map(RateLimit::to_text),
                &to_micros(created_at),
                &actor,
            ],
        )
        .await
        .map_err(backend)?;
    if inserted.is_none() {
        return Err(StoreError::Conflict("a key with this id exists; try again".into()));
    }
    audit(tx, tid, actor, "key.create", &format!("{} key {}", user.email, key.key_id)).await?;
    Ok(KeyRecord {
        tenant: user.tenant,
        key_id: key.key_id.clone(),
        user_id: user.user_id,
        email: user.email.clone(),
        note: key.note.clone(),
        scopes: key.scopes,
        expires_at: key.expires_at,
        revoked_at: None,
        rate_limit: key.rate_limit,
        last_used_at: None,
        use_count: 0,
        created_at,
        created_by: actor.map(str::to_owned),
    })
}

pub(super) async fn create_user(
    client: &mut Object,
    tenant: TenantId,
    email: Email,
    role: Role,
    first_key: NewKey,
    actor: Option<String>,
) -> Result<(User, KeyRecord), StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    let tid = tenant_tid_or_create(&tx, tenant).await?;
    let user = User { user_id: Uuid::new_v4(), tenant, email, role, is_active: true, created_at: now() };
    // Two processes creating the same email: the second waits for the first and then
    // inserts nothing, which is the conflict.
    let stmt = tx
        .prepare_cached(
            "INSERT INTO users (tid, user_id, email, role, is_active, created_at) VALUES ($1, $2, $3, $4, true, $5)
             ON CONFLICT (tid, email) DO NOTHING
             RETURNING user_id",
        )
        .await
        .map_err(backend)?;
    let inserted = tx
        .query_opt(&stmt, &[&tid, &user.user_id, &user.email.as_str(), &role.as_str(), &to_micros(user.created_at)])
        .await
        .map_err(backend)?;
    if inserted.is_none() {
        return Err(StoreError::Conflict(format!(
            "a user with email {} already exists in tenant {tenant}",
            user.email
        )));
    }
    audit(&tx, tid, actor.as_deref(), "user.create", &format!("{} ({role})", user.email)).await?;
    let key = insert_key(&tx, tid, &user, &first_key, actor.as_deref()).await?;
    tx.commit().await.map_err(backend)?;
    Ok((user, key))
}

pub(super) async fn set_user_active(
    client: &mut Object,
    tenant: TenantId,
    email: &Email,
    active: bool,
    actor: Option<String>,
) -> Result<User, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    let (tid, mut user) = require_user(&tx, tenant, email).await?;
    let stmt =
        tx.prepare_cached("UPDATE users SET is_active = $3 WHERE tid = $1 AND user_id = $2").await.map_err(backend)?;
    tx.execute(&stmt, &[&tid, &user.user_id, &active]).await.map_err(backend)?;
    audit(&tx, tid, actor.as_deref(), if active { "user.activate" } else { "user.deactivate" }, email.as_str()).await?;
    bump_generation(&tx).await?;
    tx.commit().await.map_err(backend)?;
    user.is_active = active;
    Ok(user)
}

pub(super) async fn create_key(
    client: &mut Object,
    tenant: TenantId,
    email: &Email,
    key: NewKey,
    actor: Option<String>,
) -> Result<KeyRecord, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    let (tid, user) = require_user(&tx, tenant, email).await?;
    let record = insert_key(&tx, tid, &user, &key, actor.as_deref()).await?;
    tx.commit().await.map_err(backend)?;
    Ok(record)
}

pub(super) async fn regenerate_key(
    client: &mut Object,
    tenant: TenantId,
    email: &Email,
    key: NewKey,
    actor: Option<String>,
) -> Result<KeyRecord, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    // The user's row lock makes a concurrent regeneration wait, and then revoke the key
    // this one issues, instead of both issuing a live key.
    let (tid, user) = require_user(&tx, tenant, email).await?;
    let lock = tx
        .prepare_cached(
            "SELECT key_id FROM api_keys WHERE tid = $1 AND user_id = $2 AND revoked_at IS NULL
             ORDER BY key_id COLLATE \"C\" FOR UPDATE",
        )
        .await
        .map_err(backend)?;
    tx.query(&lock, &[&tid, &user.user_id]).await.map_err(backend)?;
    let revoke = tx
        .prepare_cached("UPDATE api_keys SET revoked_at = $3 WHERE tid = $1 AND user_id = $2 AND revoked_at IS NULL")
        .await
        .map_err(backend)?;
    tx.execute(&revoke, &[&tid, &user.user_id, &to_micros(now())]).await.map_err(backend)?;
    audit(&tx, tid, actor.as_deref(), "user.regenerate_key", email.as_str()).await?;
    let record = insert_key(&tx, tid, &user, &key, actor.as_deref()).await?;
    bump_generation(&tx).await?;
    tx.commit().await.map_err(backend)?;
    Ok(record)
}

const KEY_COLUMNS: &str = "t.tenant_id, k.key_id, k.user_id, u.email, k.note, k.scopes, k.expires_at, k.revoked_at, \
                           k.rate_limit, k.last_used_at, k.use_count, k.created_at, k.created_by, k.key_hash, \
                           u.is_active, u.role";

const KEY_FROM: &str = "api_keys k JOIN users u ON u.tid = k.tid AND u.user_id = k.user_id \
                        JOIN tenants t ON t.tid = k.tid";

fn key_from_row(r: &Row) -> Result<KeyLookup, StoreError> {
    let ts = |i: usize| -> Result<Option<Timestamp>, StoreError> {
        Ok(r.try_get::<_, Option<i64>>(i).map_err(backend)?.and_then(from_micros))
    };
    let hash: Vec<u8> = r.try_get(13).map_err(backend)?;
    Ok(KeyLookup {
        record: KeyRecord {
            tenant: TenantId(r.try_get(0).map_err(backend)?),
            key_id: KeyId::from_stored(r.try_get(1).map_err(backend)?),
            user_id: r.try_get(2).map_err(backend)?,
            email: Email::from_stored(r.try_get(3).map_err(backend)?),
            note: r.try_get(4).map_err(backend)?,
            scopes: Scopes::from_stored(r.try_get(5).map_err(backend)?),
            expires_at: ts(6)?,
            revoked_at: ts(7)?,
            rate_limit: r.try_get::<_, Option<&str>>(8).map_err(backend)?.and_then(|t| RateLimit::parse("r", t).ok()),
            last_used_at: ts(9)?,
            use_count: r.try_get(10).map_err(backend)?,
            created_at: ts(11)?.unwrap_or_default(),
            created_by: r.try_get(12).map_err(backend)?,
        },
        hash: hash.try_into().map_err(|_| StoreError::Backend("stored key hash is not 32 bytes".into()))?,
        user_active: r.try_get(14).map_err(backend)?,
        user_role: Role::parse("role", r.try_get(15).map_err(backend)?)?,
    })
}

pub(super) async fn lookup_key(client: &Object, key_id: &KeyId) -> Result<Option<KeyLookup>, StoreError> {
    let stmt = client
        .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM {KEY_FROM} WHERE k.key_id = $1"))
        .await
        .map_err(backend)?;
    client.query_opt(&stmt, &[&key_id.as_str()]).await.map_err(backend)?.as_ref().map(key_from_row).transpose()
}

pub(super) async fn list_keys(
    client: &Object,
    scope: TenantScope,
    email: Option<&Email>,
    include_revoked: bool,
) -> Result<Vec<KeyRecord>, StoreError> {
    let Some(tid) = scope_tid(client, scope).await? else {
        return Ok(Vec::new());
    };
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM {KEY_FROM}
             WHERE ($1::bigint IS NULL OR k.tid = $1) AND ($2::text IS NULL OR u.email = $2)
               AND ($3::boolean OR k.revoked_at IS NULL)
             ORDER BY k.tid, u.email COLLATE \"C\", k.created_at, k.key_id COLLATE \"C\""
        ))
        .await
        .map_err(backend)?;
    let rows = client.query(&stmt, &[&tid, &email.map(Email::as_str), &include_revoked]).await.map_err(backend)?;
    rows.iter().map(|r| key_from_row(r).map(|k| k.record)).collect()
}

/// A key of this tenant, its row locked until the transaction ends; another tenant's
/// key is indistinguishable from an unknown one.
async fn lock_key(tx: &Transaction<'_>, tenant: TenantId, key_id: &KeyId) -> Result<(i64, KeyRecord), StoreError> {
    let not_found = || StoreError::NotFound(format!("key {key_id}"));
    let tid = tenant_tid(tx, tenant).await?.ok_or_else(not_found)?;
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM {KEY_FROM} WHERE k.tid = $1 AND k.key_id = $2 FOR UPDATE OF k"
        ))
        .await
        .map_err(backend)?;
    let row = tx.query_opt(&stmt, &[&tid, &key_id.as_str()]).await.map_err(backend)?.ok_or_else(not_found)?;
    Ok((tid, key_from_row(&row)?.record))
}

pub(super) async fn revoke_key(
    client: &mut Object,
    tenant: TenantId,
    key_id: &KeyId,
    actor: Option<String>,
) -> Result<KeyRecord, StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    // Locked, so of two concurrent revocations the second sees the first's and changes
    // nothing.
    let (tid, mut record) = lock_key(&tx, tenant, key_id).await?;
    if record.revoked_at.is_none() {
        let at = now();
        let stmt = tx
            .prepare_cached("UPDATE api_keys SET revoked_at = $3 WHERE tid = $1 AND key_id = $2")
            .await
            .map_err(backend)?;
        tx.execute(&stmt, &[&tid, &key_id.as_str(), &to_micros(at)]).await.map_err(backend)?;
        record.revoked_at = Some(at);
        audit(&tx, tid, actor.as_deref(), "key.revoke", &format!("{} key {key_id}", record.email)).await?;
        bump_generation(&tx).await?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(record)
}

pub(super) async fn delete_key(
    client: &mut Object,
    tenant: TenantId,
    key_id: &KeyId,
    actor: Option<String>,
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    let not_found = || StoreError::NotFound(format!("key {key_id}"));
    let tid = tenant_tid(&tx, tenant).await?.ok_or_else(not_found)?;
    // One statement: of two concurrent deletions, the second deletes nothing and says so.
    let stmt = tx
        .prepare_cached(
            "DELETE FROM api_keys k USING users u
             WHERE u.tid = k.tid AND u.user_id = k.user_id AND k.tid = $1 AND k.key_id = $2
             RETURNING u.email",
        )
        .await
        .map_err(backend)?;
    let row = tx.query_opt(&stmt, &[&tid, &key_id.as_str()]).await.map_err(backend)?.ok_or_else(not_found)?;
    let email: String = row.try_get(0).map_err(backend)?;
    audit(&tx, tid, actor.as_deref(), "key.delete", &format!("{email} key {key_id}")).await?;
    bump_generation(&tx).await?;
    tx.commit().await.map_err(backend)?;
    Ok(())
}

/// Uses of one key, summed over the deltas that name it.
struct Usage {
    tenant: TenantId,
    count: i64,
    last_used_at: i64,
}

pub(super) async fn record_usage(client: &mut Object, deltas: Vec<UsageDelta>) -> Result<(), StoreError> {
    // One update per key, in key-id order: flushes from several processes (and
    // regenerations, which lock in the same order) then queue instead of deadlocking.
    let mut merged: BTreeMap<(String, Uuid), Usage> = BTreeMap::new();
    for d in deltas {
        let at = to_micros(d.last_used_at);
        let usage = merged.entry((d.key_id.as_str().to_owned(), d.tenant.0)).or_insert(Usage {
            tenant: d.tenant,
            count: 0,
            last_used_at: at,
        });
        usage.count += d.count;
        usage.last_used_at = usage.last_used_at.max(at);
    }
    if merged.is_empty() {
        return Ok(());
    }
    let mut attempt = 1;
    loop {
        match try_record_usage(client, &merged).await {
            Ok(()) => return Ok(()),
            Err(e) if is_retryable(&e) && attempt < MAX_ATTEMPTS => {
                tracing::debug!(attempt, error = %e, "usage flush aborted by the server; retrying");
                attempt += 1;
            }
            Err(e) => return Err(backend(e)),
        }
    }
}

async fn try_record_usage(
    client: &mut Object,
    merged: &BTreeMap<(String, Uuid), Usage>,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let stmt = tx
        .prepare_cached(
            "UPDATE api_keys SET use_count = use_count + $3,
                    last_used_at = GREATEST(COALESCE(last_used_at, 0), $4)
             WHERE tid = (SELECT tid FROM tenants WHERE tenant_id = $1) AND key_id = $2",
        )
        .await?;
    // Sent back to back (tokio-postgres pipelines queries polled together) and run in
    // the order sent; unknown keys update nothing.
    let updates = merged.iter().map(|((key_id, _), u)| {
        let stmt = &stmt;
        let tx = &tx;
        async move { tx.execute(stmt, &[&u.tenant.0, &key_id.as_str(), &u.count, &u.last_used_at]).await }
    });
    futures_util::future::try_join_all(updates).await?;
    tx.commit().await
}
