//! The verifier: presented key → [`Principal`], or the reason it is refused.
//!
//! Fast path: parse and checksum (no I/O), then the cache keyed by key id, then a
//! constant-time HMAC comparison. A miss costs one indexed lookup. The cache holds what
//! the database said about a key (revoked? user active? expiry?) and is dropped whole
//! whenever the database's auth change counter moves; a background task polls the
//! counter every [`POLL_INTERVAL`], so a revocation, deactivation or regeneration made by
//! any process is seen by every server well within a second. Expiry needs no
//! invalidation: it is checked against the clock on every request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use timedb::model::time::now;
use timedb::model::{Email, KeyId, KeyLookup, RateLimit, Role, Scopes, Timestamp, Window};
use timedb::{Store, TenantId};
use uuid::Uuid;

use super::key::{KeyFormat, KeyHasher};
use super::ratelimit::{Decision, Limiter};
use super::usage::Usage;

/// How often the change counter is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often usage counts are written.
pub const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(2);
/// Most cached keys; past this the cache starts afresh.
const MAX_CACHED: usize = 100_000;

/// Settings of authentication.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub format: KeyFormat,
    /// Accept `?api_key=` (on by default, like Tiled; off for stricter deployments).
    pub allow_query_key: bool,
    /// Limit for keys that have none of their own.
    pub default_rate_limit: Option<RateLimit>,
    /// Failed authentications allowed per client address.
    pub failed_auth_limit: RateLimit,
    /// Behind a reverse proxy on the same host: for connections from a loopback address,
    /// the client address is the last `X-Forwarded-For` entry (the one the proxy added).
    pub trust_forwarded_for: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            format: KeyFormat::default(),
            allow_query_key: true,
            default_rate_limit: None,
            failed_auth_limit: RateLimit { requests: 60, per: Window::Minute },
            trust_forwarded_for: false,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub tenant: TenantId,
    pub user_id: Uuid,
    pub email: Email,
    pub role: Role,
    pub key_id: KeyId,
    /// The key's scopes within the user's current role.
    pub scopes: Scopes,
    pub expires_at: Option<Timestamp>,
    pub rate_limit: Option<RateLimit>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthFailure {
    Missing,
    Invalid,
    Inactive,
    Expired(Timestamp),
    Revoked,
    InsufficientScope { needed: Scopes, have: Scopes },
    RateLimited(Decision),
    TooManyFailures(Decision),
    Store(String),
}

pub struct Verifier {
    store: Arc<dyn Store>,
    pub config: AuthConfig,
    /// `TIMEDB_SECRET`, when set; else the database's own pepper is used.
    secret: Option<String>,
    /// Resolved when auth is (or becomes) on.
    hasher: OnceLock<KeyHasher>,
    enabled: AtomicBool,
    generation: AtomicI64,
    cache: RwLock<HashMap<KeyId, Arc<KeyLookup>>>,
    limiter: Limiter<KeyId>,
    failures: Limiter<IpAddr>,
    usage: Usage,
}

impl Verifier {
    /// A verifier over `store`, whose users tables decide whether auth is on. `secret`
    /// is `TIMEDB_SECRET`; a secret that does not match the database's keys is refused.
    pub async fn new(store: Arc<dyn Store>, config: AuthConfig, secret: Option<String>) -> anyhow::Result<Arc<Self>> {
        let status = store.schema_status().await?;
        let generation = if status.has_users { store.auth_generation().await? } else { 0 };
        let hasher = OnceLock::new();
        if status.has_users {
            let _ = hasher.set(super::resolve_hasher(store.as_ref(), secret.as_deref()).await?);
        }
        Ok(Arc::new(Self {
            store,
            config,
            secret,
            hasher,
            enabled: AtomicBool::new(status.has_users),
            generation: AtomicI64::new(generation),
            cache: RwLock::new(HashMap::new()),
            limiter: Limiter::new(MAX_CACHED),
            failures: Limiter::new(MAX_CACHED),
            usage: Usage::default(),
        }))
    }

    /// Whether requests must carry a key (the users tables exist).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The key hasher, once auth is on.
    pub fn hasher(&self) -> Option<&KeyHasher> {
        self.hasher.get()
    }

    /// Look at the change counter (and whether auth tables exist); drop the cache when it
    /// moved. Returns whether anything changed.
    ///
    /// Auth switches on when the users tables appear (`create tables --with-users` run
    /// while serving) and never switches off in a running process: tables that vanish
    /// make requests fail, never turn a protected server into an open one.
    pub async fn refresh(&self) -> anyhow::Result<bool> {
        let status = self.store.schema_status().await?;
        if !status.has_users {
            if self.enabled() {
                tracing::error!(
                    "the users tables are gone; keys are refused until they are back or the server restarts"
                );
                self.cache.write().unwrap_or_else(|p| p.into_inner()).clear();
            }
            return Ok(false);
        }
        if self.hasher.get().is_none() {
            let hasher = super::resolve_hasher(self.store.as_ref(), self.secret.as_deref()).await?;
            let _ = self.hasher.set(hasher);
        }
        let generation = self.store.auth_generation().await?;
        if !self.enabled.swap(true, Ordering::Relaxed) {
            tracing::warn!("authentication is now ON: the users tables were created");
        }
        if self.generation.swap(generation, Ordering::Relaxed) != generation {
            self.cache.write().unwrap_or_else(|p| p.into_inner()).clear();
            return Ok(true);
        }
        Ok(false)
    }

    /// Forget every cached key (benchmarks of the miss path; never needed for correctness).
    pub fn clear_cache(&self) {
        self.cache.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// This process just changed keys or users: see it now rather than at the next poll.
    pub async fn changed(&self) {
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "could not check for key changes");
        }
    }

    /// Poll for changes and flush usage until the process ends.
    pub fn spawn_background(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut poll = tokio::time::interval(POLL_INTERVAL);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                poll.tick().await;
                if let Err(e) = me.refresh().await {
                    tracing::warn!(error = %e, "could not check for key changes");
                }
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(USAGE_FLUSH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.usage.flush(me.store.as_ref()).await;
            }
        });
    }

    /// Write pending usage counts now (shutdown, tests).
    pub async fn flush_usage(&self) {
        self.usage.flush(self.store.as_ref()).await;
    }

    /// Refuse a client address that has failed too often, before looking at its key.
    pub fn check_client(&self, addr: Option<IpAddr>) -> Result<(), AuthFailure> {
        match addr.and_then(|a| self.failures.is_exhausted(&a, self.config.failed_auth_limit)) {
            Some(d) => Err(AuthFailure::TooManyFailures(d)),
            None => Ok(()),
        }
    }

    /// Count a failed authentication against a client address.
    pub fn record_failure(&self, addr: Option<IpAddr>) {
        if let Some(a) = addr {
            self.failures.check(&a, self.config.failed_auth_limit);
        }
    }

    async fn lookup(&self, key_id: &KeyId) -> Result<Option<Arc<KeyLookup>>, AuthFailure> {
        if let Some(hit) = self.cache.read().unwrap_or_else(|p| p.into_inner()).get(key_id) {
            crate::metrics::global().key_cache(true);
            return Ok(Some(hit.clone()));
        }
        crate::metrics::global().key_cache(false);
        let generation = self.generation.load(Ordering::Relaxed);
        let found = self.store.lookup_key(key_id).await.map_err(|e| AuthFailure::Store(e.to_string()))?;
        let Some(found) = found else { return Ok(None) };
        let found = Arc::new(found);
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        // Cache only if no change was seen while we looked: otherwise the entry could be stale.
        if self.generation.load(Ordering::Relaxed) == generation {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(key_id.clone(), found.clone());
        }
        Ok(Some(found))
    }

    /// Verify a presented key (scopes and rate limits are checked by [`Verifier::admit`]).
    pub async fn verify(&self, presented: &str) -> Result<Principal, AuthFailure> {
        let key = self.config.format.parse(presented.trim()).map_err(|_| AuthFailure::Invalid)?;
        let hasher = self.hasher.get().ok_or(AuthFailure::Invalid)?;
        let found = self.lookup(key.key_id()).await?.ok_or(AuthFailure::Invalid)?;
        if !hasher.matches(&key, &found.hash) {
            return Err(AuthFailure::Invalid);
        }
        let record = &found.record;
        if record.revoked_at.is_some() {
            return Err(AuthFailure::Revoked);
        }
        if !found.user_active {
            return Err(AuthFailure::Inactive);
        }
        if let Some(at) = record.expires_at
            && at <= now()
        {
            return Err(AuthFailure::Expired(at));
        }
        Ok(Principal {
            tenant: record.tenant,
            user_id: record.user_id,
            email: record.email.clone(),
            role: found.user_role,
            key_id: record.key_id.clone(),
            scopes: record.scopes.intersect(found.user_role.scopes()),
            expires_at: record.expires_at,
            rate_limit: record.rate_limit.or(self.config.default_rate_limit),
        })
    }

    /// Check scope and rate limit for one request and count it as a use. Denied
    /// requests are not counted.
    pub fn admit(&self, principal: &Principal, needed: Scopes) -> Result<Option<Decision>, AuthFailure> {
        if !principal.scopes.contains(needed) {
            return Err(AuthFailure::InsufficientScope { needed, have: principal.scopes });
        }
        let decision = match principal.rate_limit {
            Some(limit) => {
                let d = self.limiter.check(&principal.key_id, limit);
                if !d.allowed {
                    return Err(AuthFailure::RateLimited(d));
                }
                Some(d)
            }
            None => None,
        };
        self.usage.record(principal.tenant, &principal.key_id, now());
        Ok(decision)
    }
}
