//! An independent model of the API key format of SPEC §5, to hold `KeyFormat::parse` to:
//! `<prefix>_<env?>_<id8><secret32>_<crc6>`, prefix and environment 1-16 lower-case
//! letters or digits, the checksum CRC32 of everything before it in six base62 digits.
//! Written from the spec, not from the parser, and shared by the `key_parse` fuzz target
//! and the proptest suite.

use timedb_server::auth::KeyFormat;
use timedb_server::auth::key::{KeyError, MAX_KEY_LEN, SECRET_LEN};

pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Characters of public key id before the secret.
pub const ID_LEN: usize = 8;

/// The checksum as the spec defines it: CRC32, big-endian in base62, six digits.
pub fn checksum(body: &str) -> String {
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut digits = [0u8; 6];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(digits.to_vec()).unwrap()
}

fn segment(s: &str) -> bool {
    (1..=16).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// What parsing `text` under `format` must give.
pub fn expected(format: &KeyFormat, text: &str) -> Result<(), KeyError> {
    if text.len() > MAX_KEY_LEN {
        return Err(KeyError::TooLong);
    }
    let parts: Vec<&str> = text.split('_').collect();
    let (prefix, env, token, crc) = match parts.as_slice() {
        [p, t, c] => (*p, None, *t, *c),
        [p, e, t, c] => (*p, Some(*e), *t, *c),
        _ => return Err(KeyError::Malformed),
    };
    let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    if !segment(prefix)
        || env.is_some_and(|e| !segment(e))
        || token.len() != ID_LEN + SECRET_LEN
        || !alnum(token)
        || crc.len() != 6
        || !alnum(crc)
    {
        return Err(KeyError::Malformed);
    }
    if checksum(&text[..text.len() - 7]) != crc {
        return Err(KeyError::BadChecksum);
    }
    if prefix != format.prefix || env != format.environment.as_deref() {
        return Err(KeyError::WrongEnvironment);
    }
    Ok(())
}

/// Parse `text` and check the parser against the model and the round-trip rules: the
/// same outcome as [`expected`]; an accepted key re-serialises to exactly `text`, keeps
/// its key id and environment, parses again to the same key, never shows its secret in
/// `Debug`/`Display`, and is refused once any one character of it changes.
pub fn check(format: &KeyFormat, text: &str) {
    let parsed = format.parse(text);
    assert_eq!(parsed.as_ref().map(|_| ()).map_err(|e| *e), expected(format, text), "{text:?} under {format:?}");
    let Ok(key) = parsed else { return };
    assert_eq!(key.reveal(), text);
    let token = text.rsplit('_').nth(1).unwrap();
    assert_eq!(key.key_id().as_str(), &token[..ID_LEN]);
    assert_eq!(key.environment(), format.environment.as_deref());
    assert_eq!(format.parse(key.reveal()).as_ref(), Ok(&key));
    let secret = &token[ID_LEN..];
    assert!(!format!("{key:?} {key}").contains(secret), "a secret in Debug/Display");
    // CRC32 catches every single-byte change of the body; a changed checksum no longer
    // matches it; a changed separator breaks the shape.
    for (i, c) in text.char_indices() {
        let other = if c == 'a' { 'b' } else { 'a' };
        let changed = format!("{}{other}{}", &text[..i], &text[i + c.len_utf8()..]);
        assert!(format.parse(&changed).is_err(), "{changed:?} (one character off an accepted key) accepted");
    }
}

/// A well-shaped key for `prefix`/`env` whose id and secret are `token` (mapped onto
/// base62), with the right checksum, or with `crc` instead when given.
pub fn shaped_key(prefix: &str, env: Option<&str>, token: &[u8], crc: Option<&[u8]>) -> String {
    let pick = |bytes: &[u8], i: usize| BASE62[usize::from(bytes.get(i).copied().unwrap_or(0)) % 62] as char;
    let token: String = (0..ID_LEN + SECRET_LEN).map(|i| pick(token, i)).collect();
    let body = match env {
        Some(e) => format!("{prefix}_{e}_{token}"),
        None => format!("{prefix}_{token}"),
    };
    let crc = match crc {
        Some(c) => (0..6).map(|i| pick(c, i)).collect(),
        None => checksum(&body),
    };
    format!("{body}_{crc}")
}

/// The key formats both suites parse under: the default, and two with environments.
pub fn formats() -> [KeyFormat; 3] {
    [KeyFormat::default(), KeyFormat::new("tdb", Some("live")).unwrap(), KeyFormat::new("acme9", Some("test")).unwrap()]
}
