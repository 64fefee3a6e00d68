//! Users, API keys, the audit log and the auth change counter on SQLite.
//!
//! Keys are found by key id alone (a presented key does not name its tenant), through a
//! unique index on `api_keys(key_id)`; every other call is scoped by the tenant. Each
//! change that can take access away bumps `auth_generation` in `timedb_meta` in the same
//! transaction, which is what running servers poll to drop their key caches.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use uuid::Uuid;

use super::{backend, tenant_tid, uuid_from};
use crate::model::time::{from_micros, now, to_micros};
use crate::model::{
    Email, KeyId, KeyLookup, KeyRecord, NewKey, RateLimit, Role, Scopes, TenantId, TenantScope, UsageDelta, User,
};
use crate::store::StoreError;

fn begin(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)
}

fn meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM timedb_meta WHERE key = ?1")
        .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
        .map_err(backend)
}

fn set_meta(tx: &Transaction<'_>, key: &str, value: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO timedb_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map_err(backend)?;
    Ok(())
}

/// Bump the change counter that tells running servers to drop cached keys.
pub(super) fn bump_generation(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO timedb_meta (key, value) VALUES ('auth_generation', '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
        [],
    )
    .map_err(backend)?;
    Ok(())
}

pub(super) fn generation(conn: &Connection) -> Result<i64, StoreError> {
    Ok(meta(conn, "auth_generation")?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

pub(super) fn database_pepper(conn: &mut Connection, candidate: [u8; 32]) -> Result<Vec<u8>, StoreError> {
    let tx = begin(conn)?;
    let hex = match meta(&tx, "key_pepper")? {
        Some(hex) => hex,
        None => {
            let hex: String = candidate.iter().map(|b| format!("{b:02x}")).collect();
            set_meta(&tx, "key_pepper", &hex)?;
            hex
        }
    };
    tx.commit().map_err(backend)?;
    decode_hex(&hex).ok_or_else(|| StoreError::Backend("the stored key pepper is unreadable".into()))
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len()).step_by(2).map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

pub(super) fn claim_pepper_fingerprint(conn: &mut Connection, fingerprint: &str) -> Result<Option<String>, StoreError> {
    let tx = begin(conn)?;
    let existing = meta(&tx, "pepper_fingerprint")?;
    let out = match existing {
        Some(f) if f != fingerprint => Some(f),
        Some(_) => None,
        None => {
            set_meta(&tx, "pepper_fingerprint", fingerprint)?;
            None
        }
    };
    tx.commit().map_err(backend)?;
    Ok(out)
}

fn audit(tx: &Transaction<'_>, tid: i64, actor: Option<&str>, action: &str, subject: &str) -> Result<(), StoreError> {
    let event_id: i64 = tx
        .prepare_cached("UPDATE timedb_counters SET value = value + 1 WHERE name = 'audit' RETURNING value")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .map_err(backend)?
        .unwrap_or(0);
    tx.execute(
        "INSERT INTO audit_log (tid, event_id, at, actor, action, subject) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![tid, event_id, to_micros(now()), actor, action, subject],
    )
    .map_err(backend)?;
    Ok(())
}

fn tenant_of(conn: &Connection, tid: i64) -> Result<TenantId, StoreError> {
    conn.prepare_cached("SELECT tenant_id FROM tenants WHERE tid = ?1")
        .and_then(|mut s| s.query_row(params![tid], |r| Ok(TenantId::from_bytes(uuid_from(r, 0)?))))
        .map_err(backend)
}

fn tid_or_create(tx: &Transaction<'_>, tenant: TenantId) -> Result<i64, StoreError> {
    if let Some(tid) = tenant_tid(tx, tenant)? {
        return Ok(tid);
    }
    let tid: i64 = tx
        .prepare_cached("UPDATE timedb_counters SET value = value + 1 WHERE name = 'tenant' RETURNING value")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(backend)?;
    tx.execute(
        "INSERT INTO tenants (tenant_id, tid, created_at) VALUES (?1, ?2, ?3)",
        params![&tenant.as_bytes()[..], tid, to_micros(now())],
    )
    .map_err(backend)?;
    Ok(tid)
}

const USER_COLUMNS: &str = "u.tid, u.user_id, u.email, u.role, u.is_active, u.created_at";

fn user_from_row(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<User, StoreError> {
    let tid: i64 = r.get(0).map_err(backend)?;
    Ok(User {
        tenant: tenant_of(conn, tid)?,
        user_id: Uuid::from_bytes(uuid_from(r, 1).map_err(backend)?),
        email: Email::from_stored(r.get(2).map_err(backend)?),
        role: Role::parse("role", &r.get::<_, String>(3).map_err(backend)?)?,
        is_active: r.get::<_, i64>(4).map_err(backend)? != 0,
        created_at: from_micros(r.get(5).map_err(backend)?).unwrap_or_default(),
    })
}

pub(super) fn find_users(
    conn: &Connection,
    scope: TenantScope,
    email: Option<&Email>,
    include_inactive: bool,
) -> Result<Vec<User>, StoreError> {
    let tid = match scope {
        TenantScope::One(t) => match tenant_tid(conn, t)? {
            Some(tid) => Some(tid),
            None => return Ok(Vec::new()),
        },
        TenantScope::All => None,
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users u
             WHERE (?1 IS NULL OR u.tid = ?1) AND (?2 IS NULL OR u.email = ?2) AND (?3 OR u.is_active = 1)
             ORDER BY u.tid, u.email"
        ))
        .map_err(backend)?;
    let mut rows = stmt.query(params![tid, email.map(Email::as_str), include_inactive]).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        out.push(user_from_row(conn, r)?);
    }
    Ok(out)
}

fn user_in(tx: &Transaction<'_>, tid: i64, email: &Email) -> Result<Option<User>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.tid = ?1 AND u.email = ?2"))
        .map_err(backend)?;
    let mut rows = stmt.query(params![tid, email.as_str()]).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(r) => Ok(Some(user_from_row(tx, r)?)),
        None => Ok(None),
    }
}

fn insert_key(
    tx: &Transaction<'_>,
    tid: i64,
    user: &User,
    key: &NewKey,
    actor: Option<&str>,
) -> Result<KeyRecord, StoreError> {
    let created_at = now();
    tx.execute(
        "INSERT INTO api_keys (tid, key_id, user_id, key_hash, note, scopes, expires_at, revoked_at, rate_limit,
                               last_used_at, use_count, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, NULL, 0, ?9, ?10)",
        params![
            tid,
            key.key_id.as_str(),
            &user.user_id.as_bytes()[..],
            &key.hash[..],
            key.note,
            key.scopes.to_text(),
            key.expires_at.map(to_micros),
            key.rate_limit.map(RateLimit::to_text),
            to_micros(created_at),
            actor,
        ],
    )
    .map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => {
            StoreError::Conflict("a key with this id exists; try again".into())
        }
        _ => backend(e),
    })?;
    audit(tx, tid, actor, "key.create", &format!("{} key {}", user.email, key.key_id))?;
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

pub(super) fn create_user(
    conn: &mut Connection,
    tenant: TenantId,
    email: Email,
    role: Role,
    first_key: NewKey,
    actor: Option<String>,
) -> Result<(User, KeyRecord), StoreError> {
    let tx = begin(conn)?;
    let tid = tid_or_create(&tx, tenant)?;
    if user_in(&tx, tid, &email)?.is_some() {
        return Err(StoreError::Conflict(format!("a user with email {email} already exists in tenant {tenant}")));
    }
    let user = User { user_id: Uuid::new_v4(), tenant, email, role, is_active: true, created_at: now() };
    tx.execute(
        "INSERT INTO users (tid, user_id, email, role, is_active, created_at) VALUES (?1, ?2, ?3, ?4, 1, ?5)",
        params![tid, &user.user_id.as_bytes()[..], user.email.as_str(), role.as_str(), to_micros(user.created_at)],
    )
    .map_err(backend)?;
    audit(&tx, tid, actor.as_deref(), "user.create", &format!("{} ({role})", user.email))?;
    let key = insert_key(&tx, tid, &user, &first_key, actor.as_deref())?;
    tx.commit().map_err(backend)?;
    Ok((user, key))
}

fn require_user(tx: &Transaction<'_>, tenant: TenantId, email: &Email) -> Result<(i64, User), StoreError> {
    let not_found = || StoreError::NotFound(format!("user {email}"));
    let tid = tenant_tid(tx, tenant)?.ok_or_else(not_found)?;
    Ok((tid, user_in(tx, tid, email)?.ok_or_else(not_found)?))
}

pub(super) fn set_user_active(
    conn: &mut Connection,
    tenant: TenantId,
    email: &Email,
    active: bool,
    actor: Option<String>,
) -> Result<User, StoreError> {
    let tx = begin(conn)?;
    let (tid, mut user) = require_user(&tx, tenant, email)?;
    tx.execute(
        "UPDATE users SET is_active = ?3 WHERE tid = ?1 AND user_id = ?2",
        params![tid, &user.user_id.as_bytes()[..], active],
    )
    .map_err(backend)?;
    audit(&tx, tid, actor.as_deref(), if active { "user.activate" } else { "user.deactivate" }, email.as_str())?;
    bump_generation(&tx)?;
    tx.commit().map_err(backend)?;
    user.is_active = active;
    Ok(user)
}

pub(super) fn create_key(
    conn: &mut Connection,
    tenant: TenantId,
    email: &Email,
    key: NewKey,
    actor: Option<String>,
) -> Result<KeyRecord, StoreError> {
    let tx = begin(conn)?;
    let (tid, user) = require_user(&tx, tenant, email)?;
    let record = insert_key(&tx, tid, &user, &key, actor.as_deref())?;
    tx.commit().map_err(backend)?;
    Ok(record)
}

pub(super) fn regenerate_key(
    conn: &mut Connection,
    tenant: TenantId,
    email: &Email,
    key: NewKey,
    actor: Option<String>,
) -> Result<KeyRecord, StoreError> {
    let tx = begin(conn)?;
    let (tid, user) = require_user(&tx, tenant, email)?;
    tx.execute(
        "UPDATE api_keys SET revoked_at = ?3 WHERE tid = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        params![tid, &user.user_id.as_bytes()[..], to_micros(now())],
    )
    .map_err(backend)?;
    audit(&tx, tid, actor.as_deref(), "user.regenerate_key", email.as_str())?;
    let record = insert_key(&tx, tid, &user, &key, actor.as_deref())?;
    bump_generation(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(record)
}

const KEY_COLUMNS: &str = "k.tid, k.key_id, k.user_id, u.email, k.note, k.scopes, k.expires_at, k.revoked_at, \
                           k.rate_limit, k.last_used_at, k.use_count, k.created_at, k.created_by, k.key_hash, \
                           u.is_active, u.role";

fn key_from_row(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<KeyLookup, StoreError> {
    let ts = |i: usize| -> Result<Option<_>, StoreError> {
        Ok(r.get::<_, Option<i64>>(i).map_err(backend)?.and_then(from_micros))
    };
    let hash: Vec<u8> = r.get(13).map_err(backend)?;
    Ok(KeyLookup {
        record: KeyRecord {
            tenant: tenant_of(conn, r.get(0).map_err(backend)?)?,
            key_id: KeyId::from_stored(r.get(1).map_err(backend)?),
            user_id: Uuid::from_bytes(uuid_from(r, 2).map_err(backend)?),
            email: Email::from_stored(r.get(3).map_err(backend)?),
            note: r.get(4).map_err(backend)?,
            scopes: Scopes::from_stored(&r.get::<_, String>(5).map_err(backend)?),
            expires_at: ts(6)?,
            revoked_at: ts(7)?,
            rate_limit: r.get::<_, Option<String>>(8).map_err(backend)?.and_then(|t| RateLimit::parse("r", &t).ok()),
            last_used_at: ts(9)?,
            use_count: r.get(10).map_err(backend)?,
            created_at: ts(11)?.unwrap_or_default(),
            created_by: r.get(12).map_err(backend)?,
        },
        hash: hash.try_into().map_err(|_| StoreError::Backend("stored key hash is not 32 bytes".into()))?,
        user_active: r.get::<_, i64>(14).map_err(backend)? != 0,
        user_role: Role::parse("role", &r.get::<_, String>(15).map_err(backend)?)?,
    })
}

pub(super) fn lookup_key(conn: &Connection, key_id: &KeyId) -> Result<Option<KeyLookup>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN users u ON u.tid = k.tid AND u.user_id = k.user_id
             WHERE k.key_id = ?1"
        ))
        .map_err(backend)?;
    let mut rows = stmt.query(params![key_id.as_str()]).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(r) => Ok(Some(key_from_row(conn, r)?)),
        None => Ok(None),
    }
}

pub(super) fn list_keys(
    conn: &Connection,
    scope: TenantScope,
    email: Option<&Email>,
    include_revoked: bool,
) -> Result<Vec<KeyRecord>, StoreError> {
    let tid = match scope {
        TenantScope::One(t) => match tenant_tid(conn, t)? {
            Some(tid) => Some(tid),
            None => return Ok(Vec::new()),
        },
        TenantScope::All => None,
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN users u ON u.tid = k.tid AND u.user_id = k.user_id
             WHERE (?1 IS NULL OR k.tid = ?1) AND (?2 IS NULL OR u.email = ?2) AND (?3 OR k.revoked_at IS NULL)
             ORDER BY k.tid, u.email, k.created_at, k.key_id"
        ))
        .map_err(backend)?;
    let mut rows = stmt.query(params![tid, email.map(Email::as_str), include_revoked]).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        out.push(key_from_row(conn, r)?.record);
    }
    Ok(out)
}

fn key_in(tx: &Transaction<'_>, tenant: TenantId, key_id: &KeyId) -> Result<(i64, KeyRecord), StoreError> {
    let not_found = || StoreError::NotFound(format!("key {key_id}"));
    let tid = tenant_tid(tx, tenant)?.ok_or_else(not_found)?;
    match lookup_key(tx, key_id)? {
        Some(found) if found.record.tenant == tenant => Ok((tid, found.record)),
        _ => Err(not_found()),
    }
}

pub(super) fn revoke_key(
    conn: &mut Connection,
    tenant: TenantId,
    key_id: &KeyId,
    actor: Option<String>,
) -> Result<KeyRecord, StoreError> {
    let tx = begin(conn)?;
    let (tid, mut record) = key_in(&tx, tenant, key_id)?;
    if record.revoked_at.is_none() {
        let at = now();
        tx.execute(
            "UPDATE api_keys SET revoked_at = ?3 WHERE tid = ?1 AND key_id = ?2",
            params![tid, key_id.as_str(), to_micros(at)],
        )
        .map_err(backend)?;
        record.revoked_at = Some(at);
        audit(&tx, tid, actor.as_deref(), "key.revoke", &format!("{} key {key_id}", record.email))?;
        bump_generation(&tx)?;
    }
    tx.commit().map_err(backend)?;
    Ok(record)
}

pub(super) fn delete_key(
    conn: &mut Connection,
    tenant: TenantId,
    key_id: &KeyId,
    actor: Option<String>,
) -> Result<(), StoreError> {
    let tx = begin(conn)?;
    let (tid, record) = key_in(&tx, tenant, key_id)?;
    tx.execute("DELETE FROM api_keys WHERE tid = ?1 AND key_id = ?2", params![tid, key_id.as_str()])
        .map_err(backend)?;
    audit(&tx, tid, actor.as_deref(), "key.delete", &format!("{} key {key_id}", record.email))?;
    bump_generation(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(())
}

pub(super) fn record_usage(conn: &mut Connection, deltas: Vec<UsageDelta>) -> Result<(), StoreError> {
    let tx = begin(conn)?;
    {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE api_keys SET use_count = use_count + ?3,
                        last_used_at = MAX(COALESCE(last_used_at, 0), ?4)
                 WHERE tid = (SELECT tid FROM tenants WHERE tenant_id = ?1) AND key_id = ?2",
            )
            .map_err(backend)?;
        for d in &deltas {
            stmt.execute(params![&d.tenant.as_bytes()[..], d.key_id.as_str(), d.count, to_micros(d.last_used_at)])
                .map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)
}
