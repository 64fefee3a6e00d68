//! API key parsing (`KeyFormat::parse`, checksum included) against an independent model
//! of the key format (`timedb_fuzz::key_model`).
//!
//! Invariants (`key_model::check`): the parser and the model agree on every input
//! (accepted, or refused for the same reason); an accepted key re-serialises to exactly
//! the text presented, keeps its key id and environment, parses again to the same key,
//! never shows its secret in `Debug`/`Display`, and is refused once any one character of
//! it changes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use timedb_fuzz::key_model::{check, formats, shaped_key};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let formats = formats();
    let format = &formats[usize::from(mode % 3)];
    if mode & 0x80 == 0 {
        // Any text at all.
        if let Ok(text) = std::str::from_utf8(rest) {
            check(format, text);
        }
    } else {
        // A well-shaped key built from the input, its checksum right unless the input
        // says otherwise: reaches the checksum and environment checks that random text
        // almost never does.
        let env = match mode & 0x0c {
            0 => None,
            4 => Some("live"),
            8 => Some("test"),
            _ => Some("x"),
        };
        let prefix = if mode & 0x10 == 0 { "tdb" } else { "acme9" };
        let crc = (mode & 0x20 != 0).then(|| rest.get(40..).unwrap_or_default());
        check(format, &shaped_key(prefix, env, rest, crc));
    }
});
