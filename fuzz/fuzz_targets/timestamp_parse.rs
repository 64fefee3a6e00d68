//! Timestamp parsing (`timedb::model::time::parse_timestamp`), the one place every
//! client spelling of an instant is accepted or refused.
//!
//! Invariants: an accepted timestamp is in the supported range and whole microseconds;
//! it formats and re-parses to the same instant (through both formatters, which agree
//! byte for byte) and survives surrounding whitespace; a refusal names the field and
//! quotes at most 64 characters of the input. And the other way round: any instant in
//! range, written at any offset in any of the spellings clients use, parses back to
//! itself.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use chrono::{FixedOffset, SecondsFormat, Timelike};
use libfuzzer_sys::fuzz_target;
use timedb::model::time::{
    format_timestamp, from_micros, max_timestamp, min_timestamp, parse_timestamp, to_micros, write_timestamp,
};

fn check_text(text: &str) {
    match parse_timestamp("t", text) {
        Ok(ts) => {
            assert!(ts >= min_timestamp() && ts <= max_timestamp(), "{text:?} → {ts} out of range");
            assert_eq!(ts.nanosecond() % 1_000, 0, "{text:?} → {ts} keeps sub-microsecond digits");
            assert_eq!(from_micros(to_micros(ts)), Some(ts));
            let formatted = format_timestamp(ts);
            let mut written = Vec::new();
            write_timestamp(&mut written, ts);
            assert_eq!(String::from_utf8(written).unwrap(), formatted);
            assert_eq!(parse_timestamp("t", &formatted).ok(), Some(ts), "{text:?} → {formatted:?} does not re-parse");
            assert_eq!(parse_timestamp("t", &format!(" {text}\t")).ok(), Some(ts), "{text:?} padded");
        }
        Err(e) => {
            assert_eq!(e.field, "t");
            // The message quotes at most 64 characters of the input (plus its own words).
            assert!(e.message.chars().count() <= 64 + 160, "an over-long message: {}", e.message);
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Instant {
    micros: i64,
    offset_minutes: i16,
    /// 0: RFC 3339, 1: `Z`, 2: space for `T`, 3: the offset's `+` lost to URL decoding,
    /// 4: no offset (UTC).
    spelling: u8,
    digits: u8,
}

fn check_instant(i: Instant) {
    let lo = to_micros(min_timestamp());
    let hi = to_micros(max_timestamp());
    let micros = lo + i.micros.rem_euclid(hi - lo + 1);
    let ts = from_micros(micros).unwrap();
    let offset_minutes = i32::from(i.offset_minutes % 1440);
    let spelling = i.spelling % 5;
    let offset = match spelling {
        1 | 4 => FixedOffset::east_opt(0).unwrap(),
        3 => FixedOffset::east_opt(offset_minutes.abs() * 60).unwrap(),
        _ => FixedOffset::east_opt(offset_minutes * 60).unwrap(),
    };
    let local = ts.with_timezone(&offset);
    // An offset can push the local time outside years 1-9999, which RFC 3339 cannot write.
    if !(1..=9999).contains(&chrono::Datelike::year(&local)) {
        return;
    }
    let format = match i.digits % 3 {
        0 => SecondsFormat::AutoSi,
        1 => SecondsFormat::Micros,
        _ => SecondsFormat::Nanos,
    };
    let mut text = local.to_rfc3339_opts(format, spelling == 1);
    match spelling {
        2 => text.replace_range(10..11, " "),
        3 => {
            let at = text.len() - 6;
            text.replace_range(at..at + 1, " ");
        }
        4 => text.truncate(text.len() - 6),
        _ => {}
    }
    assert_eq!(parse_timestamp("t", &text).ok(), Some(ts), "{text:?} should be {}", format_timestamp(ts));
    check_text(&text);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            check_text(text);
        }
    } else if let Ok(instant) = Instant::arbitrary(&mut Unstructured::new(rest)) {
        check_instant(instant);
    }
});
