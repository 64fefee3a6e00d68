//! Identifier newtypes. External ids are UUIDs (tenants, series, runs) or integers
//! (value versions); wrapping them keeps a series id from being passed where a run id
//! belongs, and keeps the tenant a distinct type that every store call must be given.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ModelError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id (UUID v4).
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            /// Parse the hyphenated (or simple) text form, naming `field` on failure.
            pub fn parse(field: &str, text: &str) -> Result<Self, ModelError> {
                Uuid::parse_str(text.trim()).map(Self).map_err(|_| {
                    ModelError::new(field, format!("'{}' is not a valid {} (expected a UUID)", truncate(text), $what))
                })
            }

            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(stringify!($name), s)
            }
        }
    };
}

uuid_id!(
    /// The owner of all data. Single-tenant installs use [`TenantId::DEFAULT`].
    TenantId,
    "tenant id"
);
uuid_id!(
    /// A series (one measured or forecast quantity), unique per tenant by key.
    SeriesId,
    "series id"
);
uuid_id!(
    /// A run: one batch of values written together with one known_time.
    RunId,
    "run id"
);

impl TenantId {
    /// The tenant of single-tenant installs and of all data when auth is off.
    pub const DEFAULT: TenantId = TenantId(Uuid::nil());
}

/// Identifies one stored version of a value. Integers, allocated in increasing order, so
/// a later version of the same value always has a larger id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ValueId(pub i64);

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Cut long client input before echoing it in an error message.
pub(crate) fn truncate(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}…")
    }
}
