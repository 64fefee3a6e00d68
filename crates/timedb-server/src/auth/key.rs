//! API key format, generation and hashing (SPEC §5).
//!
//! `<prefix>_<env?>_<id8><secret32>_<crc6>`: a prefix (default `tdb`) and optional
//! environment (`live`/`test`) make leaked keys recognisable to secret scanners; the
//! 8-character key id is public (listings, logs); 32 base62 characters of secret carry
//! 190 bits from the OS CSPRNG; a 6-character base62 CRC32 of everything before it lets a
//! mistyped or forged key be refused without touching the database.
//!
//! The store keeps only HMAC-SHA256(pepper, key). The HMAC key schedule is computed once
//! per pepper and cloned per verification, which keeps a verification to about a
//! microsecond.

use std::fmt;

use hmac::{KeyInit, Mac};
use timedb::model::KeyId;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Characters of secret after the key id.
pub const SECRET_LEN: usize = 32;
/// Longest string even looked at as a key.
pub const MAX_KEY_LEN: usize = 128;

/// A plaintext API key. Its `Debug` and `Display` never show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    text: String,
    key_id: KeyId,
    environment: Option<String>,
}

impl ApiKey {
    /// The whole key, for showing once to its owner.
    pub fn reveal(&self) -> &str {
        &self.text
    }

    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    pub fn environment(&self) -> Option<&str> {
        self.environment.as_deref()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}…)", self.key_id)
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {}", self.key_id)
    }
}

/// How keys look on this deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFormat {
    pub prefix: String,
    /// `Some("live")`/`Some("test")` to add an environment segment to new keys and to
    /// refuse keys made for another environment.
    pub environment: Option<String>,
}

impl Default for KeyFormat {
    fn default() -> Self {
        Self { prefix: "tdb".into(), environment: None }
    }
}

/// Why a presented string is not a usable key (all map to `INVALID_KEY`). The messages
/// never quote the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("too long to be a key")]
    TooLong,
    #[error("not shaped like a key (prefix_[environment_]id+secret_checksum)")]
    Malformed,
    #[error("its checksum does not match (mistyped or truncated?)")]
    BadChecksum,
    #[error("it was made for another key prefix or environment")]
    WrongEnvironment,
}

fn crc6(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes()) as u64;
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

/// Uniform base62 characters from the OS CSPRNG (rejection sampling: no modulo bias).
fn random_base62(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf).expect("the OS random number generator is available");
        for &b in &buf {
            if b < 248 && out.len() < n {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    out
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl KeyFormat {
    /// Check prefix and environment once, at configuration time.
    pub fn new(prefix: &str, environment: Option<&str>) -> Result<Self, String> {
        if !valid_segment(prefix) {
            return Err(format!("key prefix '{prefix}' must be 1-16 lower-case letters or digits"));
        }
        if let Some(env) = environment
            && !valid_segment(env)
        {
            return Err(format!("key environment '{env}' must be 1-16 lower-case letters or digits"));
        }
        Ok(Self { prefix: prefix.to_owned(), environment: environment.map(str::to_owned) })
    }

    /// A new random key.
    pub fn generate(&self) -> ApiKey {
        let id = random_base62(KeyId::LEN);
        let secret = random_base62(SECRET_LEN);
        let body = match &self.environment {
            Some(env) => format!("{}_{env}_{id}{secret}", self.prefix),
            None => format!("{}_{id}{secret}", self.prefix),
        };
        let text = format!("{body}_{}", crc6(&body));
        ApiKey {
            text,
            key_id: KeyId::parse("key_id", &id).expect("generated ids are valid"),
            environment: self.environment.clone(),
        }
    }

    /// The key id a text names: a bare key id, or a whole key (whose shape, checksum and
    /// environment are checked first, and whose secret is then forgotten).
    pub fn key_id_of(&self, text: &str) -> Result<KeyId, KeyError> {
        let t = text.trim();
        if let Ok(id) = KeyId::parse("key", t) {
            return Ok(id);
        }
        self.parse(t).map(|k| k.key_id().clone())
    }

    /// Parse a presented key without any database access: length cap first, then shape,
    /// then checksum, then environment.
    pub fn parse(&self, text: &str) -> Result<ApiKey, KeyError> {
        if text.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong);
        }
        let (body, crc) = text.rsplit_once('_').ok_or(KeyError::Malformed)?;
        if crc.len() != 6 || !crc.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(KeyError::Malformed);
        }
        let mut parts = body.split('_');
        let prefix = parts.next().ok_or(KeyError::Malformed)?;
        let (env, token) = match (parts.next(), parts.next(), parts.next()) {
            (Some(token), None, None) => (None, token),
            (Some(env), Some(token), None) => (Some(env), token),
            _ => return Err(KeyError::Malformed),
        };
        if !valid_segment(prefix)
            || env.is_some_and(|e| !valid_segment(e))
            || token.len() != KeyId::LEN + SECRET_LEN
            || !token.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(KeyError::Malformed);
        }
        if crc6(body) != crc {
            return Err(KeyError::BadChecksum);
        }
        if prefix != self.prefix || env != self.environment.as_deref() {
            return Err(KeyError::WrongEnvironment);
        }
        Ok(ApiKey {
            text: text.to_owned(),
            key_id: KeyId::parse("key_id", &token[..KeyId::LEN]).map_err(|_| KeyError::Malformed)?,
            environment: env.map(str::to_owned),
        })
    }
}

/// HMAC-SHA256 under the deployment's pepper, with the key schedule computed once.
#[derive(Clone)]
pub struct KeyHasher {
    mac: HmacSha256,
}

impl KeyHasher {
    pub fn new(pepper: &[u8]) -> Self {
        Self { mac: HmacSha256::new_from_slice(pepper).expect("HMAC accepts any key length") }
    }

    pub fn hash(&self, key: &ApiKey) -> [u8; 32] {
        self.hash_bytes(key.reveal().as_bytes())
    }

    pub fn hash_bytes(&self, bytes: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    /// Constant-time comparison of `key`'s HMAC with a stored one.
    pub fn matches(&self, key: &ApiKey, stored: &[u8; 32]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(key.reveal().as_bytes());
        mac.verify_slice(stored).is_ok()
    }

    /// A value that identifies the pepper without revealing it, stored with the schema so
    /// a server started with another secret notices before refusing every key.
    pub fn fingerprint(&self) -> String {
        self.hash_bytes(b"timedb pepper fingerprint v1").iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

/// A fresh random pepper for a database that has none.
pub fn random_pepper() -> [u8; 32] {
    let mut p = [0u8; 32];
    getrandom::fill(&mut p).expect("the OS random number generator is available");
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_parse_back() {
        let f = KeyFormat::default();
        let k = f.generate();
        assert!(k.reveal().starts_with("tdb_"));
        assert_eq!(k.reveal().len(), 4 + 40 + 7);
        assert_eq!(f.parse(k.reveal()).unwrap(), k);
        let live = KeyFormat::new("tdb", Some("live")).unwrap();
        let lk = live.generate();
        assert!(lk.reveal().starts_with("tdb_live_"));
        assert_eq!(live.parse(lk.reveal()).unwrap().key_id(), lk.key_id());
    }

    #[test]
    fn environments_do_not_mix() {
        let live = KeyFormat::new("tdb", Some("live")).unwrap();
        let test = KeyFormat::new("tdb", Some("test")).unwrap();
        assert_eq!(live.parse(test.generate().reveal()), Err(KeyError::WrongEnvironment));
        assert_eq!(KeyFormat::default().parse(live.generate().reveal()), Err(KeyError::WrongEnvironment));
    }

    #[test]
    fn damaged_keys_are_refused_before_any_lookup() {
        let f = KeyFormat::default();
        let k = f.generate().reveal().to_owned();
        // Change one secret character: the checksum catches it.
        let mut bad = k.clone().into_bytes();
        bad[10] = if bad[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(f.parse(std::str::from_utf8(&bad).unwrap()), Err(KeyError::BadChecksum));
        assert_eq!(f.parse("invalid-key-12345"), Err(KeyError::Malformed));
        assert_eq!(f.parse(""), Err(KeyError::Malformed));
        assert_eq!(f.parse(&"a".repeat(1000)), Err(KeyError::TooLong));
        assert_eq!(f.parse(&k[..k.len() - 1]), Err(KeyError::Malformed));
    }

    #[test]
    fn secrets_are_long_and_never_printed() {
        let k = KeyFormat::default().generate();
        let secret = &k.reveal()[4 + 8..4 + 40];
        assert_eq!(secret.len(), SECRET_LEN);
        assert!((SECRET_LEN as f64) * 62f64.log2() >= 190.0);
        assert!(!format!("{k:?} {k}").contains(secret));
    }

    #[test]
    fn hashing_is_keyed_and_verifiable() {
        let k = KeyFormat::default().generate();
        let a = KeyHasher::new(b"pepper-a");
        let b = KeyHasher::new(b"pepper-b");
        let stored = a.hash(&k);
        assert!(a.matches(&k, &stored));
        assert!(!b.matches(&k, &stored));
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,80}") {
            let _ = KeyFormat::default().parse(&s);
        }

        #[test]
        fn any_single_character_change_is_caught(pos in 0usize..51, c in proptest::char::range('0', 'z')) {
            let f = KeyFormat::default();
            let k = f.generate().reveal().to_owned();
            let mut chars: Vec<char> = k.chars().collect();
            prop_assume!(chars[pos] != c);
            chars[pos] = c;
            let changed: String = chars.into_iter().collect();
            prop_assert!(f.parse(&changed).is_err());
        }
    }
}
