//! Timestamps: RFC 3339 in, UTC RFC 3339 out, microsecond precision.
//!
//! Clients (Python's `isoformat()`, pandas, curl users) send many spellings of one
//! instant; this module is the single place that accepts them. A timestamp without an
//! offset is UTC. A `+` in an unencoded query string arrives as a space, so
//! `2025-01-01T00:00:00 01:00` is read as `+01:00` rather than rejected. Sub-microsecond
//! digits are truncated, because both stores keep microseconds.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};

use super::ModelError;
use super::ids::truncate;

/// An instant, always UTC, always whole microseconds.
pub type Timestamp = DateTime<Utc>;

/// Earliest accepted instant: 0001-01-01T00:00:00Z (RFC 3339 has four-digit years).
pub fn min_timestamp() -> Timestamp {
    Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap()
}

/// Latest accepted instant: 9999-12-31T23:59:59.999999Z.
pub fn max_timestamp() -> Timestamp {
    from_micros(253_402_300_799_999_999).unwrap()
}

/// Parse a client timestamp, naming `field` in the error.
pub fn parse_timestamp(field: &str, text: &str) -> Result<Timestamp, ModelError> {
    let trimmed = text.trim();
    parse_inner(trimmed)
        .map(truncate_to_micros)
        .ok_or_else(|| {
            ModelError::new(
                field,
                format!(
                    "'{}' is not a valid timestamp (expected RFC 3339, e.g. 2025-01-01T00:00:00Z; no offset means UTC)",
                    truncate(text)
                ),
            )
        })
        .and_then(|ts| {
            if ts < min_timestamp() || ts > max_timestamp() {
                Err(ModelError::new(
                    field,
                    format!("'{}' is outside the supported range (years 0001 to 9999)", truncate(text)),
                ))
            } else {
                Ok(ts)
            }
        })
}

fn parse_inner(text: &str) -> Option<DateTime<Utc>> {
    if text.is_empty() || !text.is_ascii() {
        return None;
    }
    if let Ok(ts) = DateTime::parse_from_rfc3339(text) {
        return Some(ts.with_timezone(&Utc));
    }
    // A space instead of `T` between date and time (pandas' `str(Timestamp)`).
    let normalised = normalise(text);
    if let Ok(ts) = DateTime::parse_from_rfc3339(&normalised) {
        return Some(ts.with_timezone(&Utc));
    }
    // No offset at all: UTC.
    if let Ok(naive) = NaiveDateTime::parse_from_str(&normalised, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(Utc.from_utc_datetime(&naive));
    }
    // A bare date: midnight UTC.
    NaiveDate::parse_from_str(&normalised, "%Y-%m-%d")
        .ok()
        .map(|d| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap()))
}

/// `2025-01-01 00:00:00+01:00` → `2025-01-01T00:00:00+01:00`, and an offset whose `+`
/// was decoded to a space (`…00:00 01:00`) gets its `+` back.
fn normalise(text: &str) -> String {
    let mut out = text.to_owned();
    if out.len() > 10 && out.as_bytes()[10] == b' ' {
        out.replace_range(10..11, "T");
    }
    // `…THH:MM` with no seconds (ISO 8601 allows it): add `:00` before any offset.
    let b = out.as_bytes();
    if b.len() >= 16 && b[10] == b'T' && b[13] == b':' && (b.len() == 16 || !matches!(b[16], b':' | b'0'..=b'9')) {
        out.insert_str(16, ":00");
    }
    // Offset position: a space followed by `HH:MM` at the end.
    let bytes = out.as_bytes();
    if bytes.len() >= 6 {
        let tail = &out[out.len() - 6..];
        let tb = tail.as_bytes();
        if tb[0] == b' '
            && tb[1].is_ascii_digit()
            && tb[2].is_ascii_digit()
            && tb[3] == b':'
            && tb[4].is_ascii_digit()
            && tb[5].is_ascii_digit()
        {
            let at = out.len() - 6;
            out.replace_range(at..at + 1, "+");
        }
    }
    out
}

fn truncate_to_micros(ts: DateTime<Utc>) -> DateTime<Utc> {
    from_micros(ts.timestamp_micros()).unwrap_or(ts)
}

/// Microseconds since the Unix epoch (the stores' representation).
pub fn to_micros(ts: Timestamp) -> i64 {
    ts.timestamp_micros()
}

/// The inverse of [`to_micros`]; `None` only for values no parsed timestamp produces.
pub fn from_micros(micros: i64) -> Option<Timestamp> {
    DateTime::from_timestamp_micros(micros)
}

/// UTC RFC 3339 with a `+00:00` offset (readable by Python's `fromisoformat` on every
/// version) and fractional seconds only when present.
pub fn format_timestamp(ts: Timestamp) -> String {
    ts.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// Write [`format_timestamp`] into a buffer without allocating a `String` per row.
pub fn write_timestamp(buf: &mut Vec<u8>, ts: Timestamp) {
    use chrono::{Datelike, Timelike};
    let year = ts.year();
    if !(0..=9999).contains(&year) || ts.timestamp_subsec_nanos() >= 1_000_000_000 {
        // Outside four-digit years, and for a leap second, chrono's own formatting is used.
        buf.extend_from_slice(format_timestamp(ts).as_bytes());
        return;
    }
    fn digits(buf: &mut Vec<u8>, n: u32, width: usize) {
        let mut tmp = [b'0'; 6];
        let mut n = n;
        for slot in tmp[..width].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        buf.extend_from_slice(&tmp[..width]);
    }
    digits(buf, year as u32, 4);
    buf.push(b'-');
    digits(buf, ts.month(), 2);
    buf.push(b'-');
    digits(buf, ts.day(), 2);
    buf.push(b'T');
    digits(buf, ts.hour(), 2);
    buf.push(b':');
    digits(buf, ts.minute(), 2);
    buf.push(b':');
    digits(buf, ts.second(), 2);
    // The same digits as `SecondsFormat::AutoSi`: none, milliseconds or microseconds.
    match ts.timestamp_subsec_micros() {
        0 => {}
        us if us % 1000 == 0 => {
            buf.push(b'.');
            digits(buf, us / 1000, 3);
        }
        us => {
            buf.push(b'.');
            digits(buf, us, 6);
        }
    }
    buf.extend_from_slice(b"+00:00");
}

/// Now, truncated to microseconds like every stored instant.
pub fn now() -> Timestamp {
    truncate_to_micros(Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Timestamp {
        parse_timestamp("t", s).unwrap()
    }

    #[test]
    fn accepts_the_spellings_clients_send() {
        let want = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        for s in [
            "2025-01-01T00:00:00Z",
            "2025-01-01T00:00:00+00:00",
            "2025-01-01T01:00:00+01:00",
            "2025-01-01 01:00:00+01:00",
            "2025-01-01T01:00:00 01:00",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00",
            "2025-01-01T00:00Z",
            "2025-01-01T01:00+01:00",
            "2025-01-01",
            "2024-12-31T19:00:00-05:00",
            " 2025-01-01T00:00:00z ",
        ] {
            assert_eq!(p(s), want, "{s}");
        }
    }

    #[test]
    fn rejects_garbage_and_out_of_range() {
        for s in [
            "",
            "yesterday",
            "2025-13-01T00:00:00Z",
            "2025-01-01T25:00:00Z",
            "1e9",
            "2025-01-01T00:00:00+25:00",
            "２０２５-01-01",
        ] {
            assert!(parse_timestamp("t", s).is_err(), "{s}");
        }
        let err = parse_timestamp("start_valid", "nope").unwrap_err();
        assert_eq!(err.field, "start_valid");
    }

    #[test]
    fn truncates_to_microseconds_and_formats_utc() {
        let ts = p("2025-01-01T00:00:00.123456789+02:00");
        assert_eq!(format_timestamp(ts), "2024-12-31T22:00:00.123456+00:00");
        assert_eq!(format_timestamp(p("2025-06-01T12:00:00Z")), "2025-06-01T12:00:00+00:00");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(micros in to_micros(min_timestamp())..=to_micros(max_timestamp())) {
            let ts = from_micros(micros).unwrap();
            let text = format_timestamp(ts);
            prop_assert_eq!(p(&text), ts);
            let mut buf = Vec::new();
            write_timestamp(&mut buf, ts);
            prop_assert_eq!(String::from_utf8(buf).unwrap(), text);
        }

        #[test]
        fn any_offset_names_the_same_instant(micros in 0i64..4_000_000_000_000_000, offset_min in -1439i32..=1439) {
            let ts = from_micros(micros).unwrap();
            let tz = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
            let text = ts.with_timezone(&tz).to_rfc3339();
            prop_assert_eq!(p(&text), ts);
        }

        #[test]
        fn never_panics_on_arbitrary_text(s in ".{0,40}") {
            let _ = parse_timestamp("t", &s);
        }
    }
}
