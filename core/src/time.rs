//! Timestamps, durations and the gate's clock.
//!
//! Timestamps are microseconds since the Unix epoch in UTC, stored as integers
//! in both databases (one schema shape, exact comparisons) and shown as RFC 3339.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

/// An instant in UTC with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `micros` microseconds after 1970-01-01T00:00:00Z.
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 timestamp such as `2026-03-01T12:00:00Z` or
    /// `2026-03-01T14:00:00.5+02:00`.
    pub fn parse_rfc3339(text: &str) -> Result<Self, String> {
        parse_rfc3339(text).ok_or_else(|| {
            format!("\"{text}\" is not an RFC 3339 timestamp (e.g. 2026-03-01T12:00:00Z)")
        })
    }
}

/// Moves an instant forward (saturating at the end of time).
impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, duration: Duration) -> Timestamp {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC; the fraction is shown only when it is not zero.
    /// Instants beyond year 9999 (a saturated deadline) show as the last
    /// representable microsecond.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3339() {
            Some(text) => f.write_str(text.as_str()),
            None => self.civil_text(f),
        }
    }
}

/// An instant's RFC 3339 text, written without the formatting machinery:
/// every result carries several, and `write!` of six padded numbers cost
/// about three thousand instructions each.
struct Rfc3339Text {
    bytes: [u8; 27],
    len: usize,
}

impl Rfc3339Text {
    fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// Writes `value` as decimal digits filling `digits` (zero-padded).
fn put_digits(digits: &mut [u8], mut value: u32) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl Timestamp {
    /// This instant as `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, or `None` for a year
    /// before 0000, which takes the formatting machinery's sign and padding.
    fn rfc3339(self) -> Option<Rfc3339Text> {
        let at = self.civil();
        let year = u32::try_from(at.year()).ok()?;
        let mut bytes = *b"0000-00-00T00:00:00.000000Z";
        put_digits(&mut bytes[0..4], year);
        put_digits(&mut bytes[5..7], u32::from(u8::from(at.month())));
        put_digits(&mut bytes[8..10], u32::from(at.day()));
        put_digits(&mut bytes[11..13], u32::from(at.hour()));
        put_digits(&mut bytes[14..16], u32::from(at.minute()));
        put_digits(&mut bytes[17..19], u32::from(at.second()));
        let micros = at.microsecond();
        let len = if micros == 0 {
            bytes[19] = b'Z';
            20
        } else {
            put_digits(&mut bytes[20..26], micros);
            27
        };
        Some(Rfc3339Text { bytes, len })
    }

    /// The same text through `write!`, for any year the civil range holds.
    fn civil_text(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.civil();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )?;
        let micros = at.microsecond();
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        f.write_str("Z")
    }
}

impl Timestamp {
    /// The civil date and time of this instant in UTC, clamped to the range
    /// RFC 3339 can write (years 0000 to 9999).
    fn civil(self) -> OffsetDateTime {
        let nanos = i128::from(self.0) * 1_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if self.0 < 0 {
            PrimitiveDateTime::MIN.assume_utc()
        } else {
            PrimitiveDateTime::MAX
                .assume_utc()
                .replace_nanosecond(999_999_000)
                .unwrap_or(PrimitiveDateTime::MAX.assume_utc())
        })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339() {
            // One string, not a Display adapter that escapes piece by piece.
            Some(text) => serializer.serialize_str(text.as_str()),
            None => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    // Microsecond precision: further digits are dropped, as the stores keep
    // integer microseconds.
    let micros = at.unix_timestamp_nanos().div_euclid(1_000);
    i64::try_from(micros).ok().map(Timestamp)
}

/// Parses a registry duration: whole seconds as an integer, or a string of
/// number+unit parts such as `"250ms"`, `"90s"`, `"10m"`, `"1h30m"`, `"1d"`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("\"{text}\" is not a duration (use e.g. \"90s\", \"10m\", \"1h30m\", \"250ms\")")
    };
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits_end].parse().map_err(|_| bad())?;
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_end] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            "d" => Duration::from_secs(number.saturating_mul(86_400)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(part);
        rest = &rest[unit_end..];
    }
    Ok(total)
}

/// Formats a duration the way the registry accepts it back (`"10m"`, `"1h30m"`).
pub(crate) fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// Where the gate reads "now" from.
///
/// Production uses [`Clock::System`]. [`Clock::Manual`] is a clock that only moves
/// when told to; the conformance vectors and the demo use it to show stale
/// takeover without waiting out a lease.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The real time. On PostgreSQL that is the database server's clock,
    /// read inside the statement that uses it, so every host sharing the
    /// database judges leases by the same clock; on SQLite (one host) it is
    /// the process's wall clock.
    #[default]
    System,
    /// A clock that stands still until [`Clock::advance`] moves it.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock standing at `start`.
    pub fn manual(start: Timestamp) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(start.as_micros())))
    }

    /// The current instant.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => {
                let micros = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
                    .unwrap_or(0);
                Timestamp(micros)
            }
            Clock::Manual(micros) => Timestamp(micros.load(Ordering::SeqCst)),
        }
    }

    /// The instant a manual clock stands at; `None` for the system clock,
    /// whose "now" a PostgreSQL store takes from the server instead.
    pub fn fixed(&self) -> Option<Timestamp> {
        match self {
            Clock::System => None,
            Clock::Manual(micros) => Some(Timestamp(micros.load(Ordering::SeqCst))),
        }
    }

    /// Moves a manual clock forward; returns `false` for the system clock,
    /// which cannot be moved.
    pub fn advance(&self, by: Duration) -> bool {
        match self {
            Clock::System => false,
            Clock::Manual(micros) => {
                let step = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
                micros.fetch_add(step, Ordering::SeqCst);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_normalises_offsets() {
        let t = Timestamp::parse_rfc3339("2026-03-01T14:00:00.5+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-03-01T12:00:00.500000Z");
        let z = Timestamp::parse_rfc3339("1970-01-01T00:00:00Z").unwrap();
        assert_eq!(z.as_micros(), 0);
        let leap = Timestamp::parse_rfc3339("2024-02-29T23:59:59Z").unwrap();
        assert_eq!(leap.to_string(), "2024-02-29T23:59:59Z");
        let old = Timestamp::from_micros(-1);
        assert_eq!(old.to_string(), "1969-12-31T23:59:59.999999Z");
        // A saturated deadline still prints, as the last writable instant.
        assert_eq!(
            Timestamp::from_micros(i64::MAX).to_string(),
            "9999-12-31T23:59:59.999999Z"
        );
        let nanos = Timestamp::parse_rfc3339("2026-03-01T12:00:00.123456789Z").unwrap();
        assert_eq!(nanos.to_string(), "2026-03-01T12:00:00.123456Z");
    }

    /// The direct writer gives exactly what the formatting machinery gives,
    /// at the edges of every field and of the range, and across it.
    #[test]
    fn rfc3339_text_matches_the_formatted_text() {
        struct Formatted(Timestamp);
        impl fmt::Display for Formatted {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.civil_text(f)
            }
        }
        let mut samples = vec![
            0,
            1,
            -1,
            999_999,
            1_000_000,
            -62_167_219_200_000_000, // 0000-01-01T00:00:00Z
            -62_167_219_200_000_001,
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999Z
            253_402_300_800_000_000,
            i64::MAX,
            i64::MIN,
            951_782_400_000_000, // 2000-02-29
            1_772_366_400_000_000,
        ];
        // A spread over the whole range, with varied fractions.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push((x % 320_000_000_000_000_000) as i64 - 63_000_000_000_000_000);
        }
        for micros in samples {
            let at = Timestamp::from_micros(micros);
            let expected = Formatted(at).to_string();
            assert_eq!(at.to_string(), expected, "{micros}");
            assert_eq!(
                serde_json::to_string(&at).unwrap(),
                format!("\"{expected}\""),
                "{micros}"
            );
        }
        assert!(Timestamp::from_micros(i64::MIN).rfc3339().is_none());
    }

    #[test]
    fn rfc3339_rejects_malformed_text() {
        for bad in [
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0200",
            "２026-01-01T00:00:00Z",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("10 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual(Timestamp::from_micros(10));
        assert_eq!(clock.now().as_micros(), 10);
        assert!(clock.advance(Duration::from_micros(5)));
        assert_eq!(clock.now().as_micros(), 15);
        assert!(!Clock::System.advance(Duration::from_secs(1)));
    }
}
