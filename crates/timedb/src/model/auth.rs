//! Principals and API keys as the store sees them: users (email unique per tenant, a
//! role, active or not), the scopes a key carries, and key records. The secret itself is
//! never part of any type here: the store holds only a key id and an HMAC of the key.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::truncate;
use super::{ModelError, TenantId, Timestamp};

/// A user's email: trimmed, lower-cased, `local@domain`, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, text: &str) -> Result<Self, ModelError> {
        let e = text.trim().to_lowercase();
        let bad = || ModelError::new(field, format!("'{}' is not an email address", truncate(text)));
        if e.is_empty() || e.chars().count() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        match e.split_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@') => Ok(Self(e)),
            _ => Err(bad()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_stored(text: String) -> Self {
        Self(text)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a key may do. `read`: GET data; `write`: upload, correct, create series;
/// `admin`: users and keys of the own tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub const NONE: Scopes = Scopes(0);
    pub const READ: Scopes = Scopes(1);
    pub const WRITE: Scopes = Scopes(2);
    pub const ADMIN: Scopes = Scopes(4);
    pub const ALL: Scopes = Scopes(7);

    const NAMES: [(Scopes, &'static str); 3] = [(Self::READ, "read"), (Self::WRITE, "write"), (Self::ADMIN, "admin")];

    /// Parse names (`read`, `write`, `admin`), comma- or space-separated across items.
    pub fn parse<S: AsRef<str>>(field: &str, items: &[S]) -> Result<Self, ModelError> {
        let mut out = Scopes::NONE;
        for item in items {
            for name in item.as_ref().split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()) {
                let lower = name.to_ascii_lowercase();
                match Self::NAMES.iter().find(|(_, n)| *n == lower) {
                    Some((s, _)) => out = out.union(*s),
                    None => {
                        return Err(ModelError::new(
                            field,
                            format!("'{}' is not a scope (expected read, write, admin)", truncate(name)),
                        ));
                    }
                }
            }
        }
        if out == Scopes::NONE {
            return Err(ModelError::new(field, "at least one scope is required"));
        }
        Ok(out)
    }

    pub fn union(self, other: Scopes) -> Scopes {
        Scopes(self.0 | other.0)
    }

    pub fn intersect(self, other: Scopes) -> Scopes {
        Scopes(self.0 & other.0)
    }

    pub fn contains(self, other: Scopes) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES.iter().filter(|(s, _)| self.contains(*s)).map(|(_, n)| *n).collect()
    }

    /// `read,write` — the stored form.
    pub fn to_text(self) -> String {
        self.names().join(",")
    }

    pub fn from_stored(text: &str) -> Self {
        Self::parse("scopes", &[text]).unwrap_or(Scopes::NONE)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A user's role; a key's scopes are always within its user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Writer,
    Admin,
}

impl Role {
    pub fn parse(field: &str, text: &str) -> Result<Self, ModelError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "reader" => Ok(Role::Reader),
            "writer" => Ok(Role::Writer),
            "admin" => Ok(Role::Admin),
            _ => Err(ModelError::new(
                field,
                format!("'{}' is not a role (expected reader, writer, admin)", truncate(text)),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    pub fn scopes(self) -> Scopes {
        match self {
            Role::Reader => Scopes::READ,
            Role::Writer => Scopes::READ.union(Scopes::WRITE),
            Role::Admin => Scopes::ALL,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The public, 8-character base62 id of a key (shown in listings and logs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    pub const LEN: usize = 8;

    pub fn parse(field: &str, text: &str) -> Result<Self, ModelError> {
        let t = text.trim();
        if t.len() == Self::LEN && t.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(t.to_owned()))
        } else {
            Err(ModelError::new(field, format!("'{}' is not a key id (8 letters or digits)", truncate(t))))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_stored(text: String) -> Self {
        Self(text)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The window of a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    Second,
    Minute,
    Hour,
    Day,
}

impl Window {
    pub fn seconds(self) -> u64 {
        match self {
            Window::Second => 1,
            Window::Minute => 60,
            Window::Hour => 3600,
            Window::Day => 86_400,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }
}

/// A per-key request limit, e.g. `100/minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Window,
}

impl RateLimit {
    /// `100/minute`, `10/s`, `5000/hour`, `1e5` is not accepted.
    pub fn parse(field: &str, text: &str) -> Result<Self, ModelError> {
        let bad = || {
            ModelError::new(
                field,
                format!(
                    "'{}' is not a rate limit (expected e.g. 100/minute; windows: second, minute, hour, day)",
                    truncate(text)
                ),
            )
        };
        let (n, w) = text.trim().split_once('/').ok_or_else(bad)?;
        let requests: u32 = n.trim().parse().map_err(|_| bad())?;
        if requests == 0 {
            return Err(ModelError::new(field, "a rate limit must allow at least one request"));
        }
        let per = match w.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => Window::Second,
            "m" | "min" | "minute" => Window::Minute,
            "h" | "hr" | "hour" => Window::Hour,
            "d" | "day" => Window::Day,
            _ => return Err(bad()),
        };
        Ok(Self { requests, per })
    }

    pub fn to_text(self) -> String {
        format!("{}/{}", self.requests, self.per.name())
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A stored user.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub user_id: Uuid,
    pub tenant: TenantId,
    pub email: Email,
    pub role: Role,
    pub is_active: bool,
    pub created_at: Timestamp,
}

/// A key to store: its id and HMAC, never the key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct NewKey {
    pub key_id: KeyId,
    pub hash: [u8; 32],
    pub note: Option<String>,
    pub scopes: Scopes,
    pub expires_at: Option<Timestamp>,
    pub rate_limit: Option<RateLimit>,
}

/// Whether a key works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        }
    }
}

/// A stored key as listings show it (no hash).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub tenant: TenantId,
    pub key_id: KeyId,
    pub user_id: Uuid,
    pub email: Email,
    pub note: Option<String>,
    pub scopes: Scopes,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub rate_limit: Option<RateLimit>,
    pub last_used_at: Option<Timestamp>,
    pub use_count: i64,
    pub created_at: Timestamp,
    pub created_by: Option<String>,
}

impl KeyRecord {
    pub fn status(&self, now: Timestamp) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }
}

/// What verification needs to know about a presented key id: its record, its HMAC, and
/// its user's current state.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyLookup {
    pub record: KeyRecord,
    pub hash: [u8; 32],
    pub user_active: bool,
    pub user_role: Role,
}

/// Uses of one key since the last flush.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageDelta {
    pub tenant: TenantId,
    pub key_id: KeyId,
    pub count: i64,
    pub last_used_at: Timestamp,
}

/// Whose users an operator command addresses: one tenant, or (CLI only) all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantScope {
    One(TenantId),
    All,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(Email::parse("e", " Alice@Tenant-A.com ").unwrap().as_str(), "alice@tenant-a.com");
        for bad in ["", "alice", "@x", "a@", "a b@c", "a@b@c", "a\0@b"] {
            assert!(Email::parse("e", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_parse_and_nest() {
        let rw = Scopes::parse("s", &["read,write"]).unwrap();
        assert_eq!(rw, Scopes::parse("s", &["write", "READ"]).unwrap());
        assert_eq!(rw.to_text(), "read,write");
        assert!(Role::Writer.scopes().contains(rw));
        assert!(!Role::Reader.scopes().contains(rw));
        assert!(Scopes::parse("s", &["read:metadata"]).is_err());
        assert!(Scopes::parse("s", &[""]).is_err());
        assert_eq!(Scopes::from_stored(&Scopes::ALL.to_text()), Scopes::ALL);
    }

    #[test]
    fn rate_limits_parse() {
        assert_eq!(RateLimit::parse("r", "100/minute").unwrap(), RateLimit { requests: 100, per: Window::Minute });
        assert_eq!(RateLimit::parse("r", " 5 / s ").unwrap().to_text(), "5/second");
        for bad in ["100", "0/minute", "x/minute", "10/week", "-1/s"] {
            assert!(RateLimit::parse("r", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_ids_are_eight_alphanumerics() {
        assert!(KeyId::parse("k", "AbCd1234").is_ok());
        assert!(KeyId::parse("k", "AbCd123").is_err());
        assert!(KeyId::parse("k", "AbCd12_4").is_err());
    }
}
