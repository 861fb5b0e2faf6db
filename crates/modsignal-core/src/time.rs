//! Event time. The core never reads a clock: every instant it knows came in an event.

use std::fmt;

/// An instant in event time: milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub i64);

/// The earliest event time accepted (2000-01-01T00:00:00Z). Earlier stamps are absurd for a
/// social network and are almost always a unit error (seconds sent as milliseconds).
pub const MIN_TS: Ts = Ts(946_684_800_000);
/// The latest event time accepted (2200-01-01T00:00:00Z). Later stamps are usually microseconds
/// sent as milliseconds.
pub const MAX_TS: Ts = Ts(7_258_118_400_000);

impl Ts {
    pub const fn from_secs(s: i64) -> Ts {
        Ts(s * 1000)
    }
    pub fn millis(self) -> i64 {
        self.0
    }
    /// Whole seconds from `earlier` to `self`, never negative: a removal stamped before its
    /// post (clock skew between systems) counts as zero seconds up, not as a negative time.
    pub fn secs_since(self, earlier: Ts) -> u64 {
        (self.0.saturating_sub(earlier.0).max(0) / 1000) as u64
    }
    #[must_use]
    pub fn plus_secs(self, s: u64) -> Ts {
        Ts(self.0.saturating_add((s as i64).saturating_mul(1000)))
    }
    /// Parses an RFC 3339 string such as `2024-11-21T16:09:27.095Z`.
    pub fn parse_rfc3339(s: &str) -> Option<Ts> {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| Ts(d.timestamp_millis()))
    }
    pub fn in_range(self) -> bool {
        (MIN_TS..=MAX_TS).contains(&self)
    }
}

impl Ts {
    /// RFC 3339 in UTC with milliseconds for the four-digit years chrono writes without a
    /// sign, digit by digit: every flag writes three of these, and this is several times faster
    /// than interpreting a format string each time. `None` for other years.
    pub(crate) fn rfc3339_digits(self) -> Option<[u8; 24]> {
        use chrono::{Datelike, Timelike};
        let d = chrono::DateTime::from_timestamp_millis(self.0)?;
        if !(0..=9999).contains(&d.year()) {
            return None;
        }
        let mut buf = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for i in (at..at + width).rev() {
                buf[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, d.year() as u32);
        put(5, 2, d.month());
        put(8, 2, d.day());
        put(11, 2, d.hour());
        put(14, 2, d.minute());
        put(17, 2, d.second());
        put(20, 3, d.timestamp_subsec_millis());
        Some(buf)
    }
}

impl fmt::Display for Ts {
    /// RFC 3339 in UTC with milliseconds, the form every flag uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(buf) = self.rfc3339_digits() {
            return f.write_str(std::str::from_utf8(&buf).expect("ASCII digits"));
        }
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(d) => write!(f, "{}", d.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
            None => write!(f, "{}ms", self.0),
        }
    }
}

impl serde::Serialize for Ts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Reads what [`Ts`] writes (RFC 3339), for readers of flags: the API's store, the tests.
impl<'de> serde::Deserialize<'de> for Ts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ts::parse_rfc3339(&s).ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

/// A duration in words as a reviewer reads it: `14m 05s`, `3h 02m`, `2d 04h`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let t = Ts::parse_rfc3339("2024-11-21T16:09:27.095Z").unwrap();
        assert_eq!(t.to_string(), "2024-11-21T16:09:27.095Z");
        assert_eq!(Ts::parse_rfc3339("2024-11-21T17:09:27.095+01:00"), Some(t));
        assert_eq!(Ts::parse_rfc3339("yesterday"), None);
    }

    /// The hand-written digits give exactly what chrono's format gives, at the edges of the
    /// years written without a sign and anywhere in between.
    #[test]
    fn display_matches_chrono_format() {
        let chrono = |ms: i64| match chrono::DateTime::from_timestamp_millis(ms) {
            Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            None => format!("{ms}ms"),
        };
        let year_0 = -62_167_219_200_000i64;
        let year_10000 = 253_402_300_800_000i64;
        let mut cases = vec![
            0,
            1,
            -1,
            999,
            1000,
            MIN_TS.0,
            MAX_TS.0,
            i64::MIN,
            i64::MAX,
            1_732_205_367_095,
        ];
        for edge in [year_0, year_10000] {
            cases.extend((-3..=3).map(|d| edge + d));
        }
        for t in cases {
            assert_eq!(Ts(t).to_string(), chrono(t), "{t}");
        }
        proptest::proptest!(|(t in year_0 - 10_000_000_000..year_10000 + 10_000_000_000)| {
            proptest::prop_assert_eq!(Ts(t).to_string(), chrono(t));
        });
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(845), "14m 05s");
        assert_eq!(human_duration(3600 * 3 + 120), "3h 02m");
        assert_eq!(human_duration(86_400 * 2 + 3600 * 4 + 5), "2d 04h");
    }

    #[test]
    fn seconds_up_is_never_negative() {
        assert_eq!(Ts(1000).secs_since(Ts(5000)), 0);
        assert_eq!(Ts(65_999).secs_since(Ts(0)), 65);
    }
}
