//! Pieces every adapter uses: ids that come as strings or numbers, time stamps, and JSON
//! errors turned into [`FormatError`]s.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use modsignal_core::Ts;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, de::DeserializeOwned};

use crate::FormatError;

/// An id as platforms write it: a JSON string or an integer, always kept as a string.
///
/// A float is refused: an id above 2^53 written by a JavaScript producer as a number has lost
/// its low digits, and a float is the only form in which that can show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Id(pub String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an id as a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Id, E> {
                Ok(Id(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Id, E> {
                Err(E::custom(format_args!(
                    "id {v} is a float: its digits may be lost, send the string form"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Id {
    /// The id as a canonical string, refusing an empty one.
    pub(crate) fn non_empty(self, field: &'static str) -> Result<Cow<'static, str>, FormatError> {
        if self.0.is_empty() {
            return Err(FormatError::Invalid {
                field,
                reason: "must not be empty".into(),
            });
        }
        Ok(Cow::Owned(self.0))
    }
}

/// The first id present, preferring the string form (`id_str`) a platform sends beside the
/// number, then requiring one.
pub(crate) fn pick_id(
    preferred: Option<Id>,
    fallback: Option<Id>,
    field: &'static str,
) -> Result<Cow<'static, str>, FormatError> {
    match preferred.filter(|i| !i.0.is_empty()).or(fallback) {
        Some(id) => id.non_empty(field),
        None => Err(FormatError::Missing(field)),
    }
}

/// A non-empty owned string, or the error naming the field.
pub(crate) fn need_str(v: Option<String>, field: &'static str) -> Result<Cow<'static, str>, FormatError> {
    match v {
        None => Err(FormatError::Missing(field)),
        Some(s) if s.is_empty() => Err(FormatError::Invalid {
            field,
            reason: "must not be empty".into(),
        }),
        Some(s) => Ok(Cow::Owned(s)),
    }
}

/// Parses JSON text into a wire shape; a type error names where it was.
pub(crate) fn parse<T: DeserializeOwned>(text: &str) -> Result<T, FormatError> {
    serde_json::from_str(text).map_err(|e| FormatError::Json(e.to_string()))
}

/// Parses JSON text nested inside a field (a double-encoded payload), naming the field.
pub(crate) fn parse_nested<T: DeserializeOwned>(text: &str, field: &'static str) -> Result<T, FormatError> {
    serde_json::from_str(text).map_err(|e| FormatError::Invalid {
        field,
        reason: format!("invalid JSON: {e}"),
    })
}

/// Milliseconds since the epoch as event time, refusing stamps outside the core's range.
pub(crate) fn ts_ms(ms: i64, field: &'static str) -> Result<Ts, FormatError> {
    let t = Ts(ms);
    if t.in_range() {
        Ok(t)
    } else {
        Err(FormatError::Invalid {
            field,
            reason: format!("{ms} ms is outside 2000-01-01..2200-01-01"),
        })
    }
}

/// An RFC 3339 time stamp as event time.
pub(crate) fn ts_rfc3339(s: Option<&str>, field: &'static str) -> Result<Ts, FormatError> {
    let s = s.ok_or(FormatError::Missing(field))?;
    match Ts::parse_rfc3339(s) {
        Some(t) => ts_ms(t.0, field),
        None => Err(FormatError::Invalid {
            field,
            reason: format!("`{}` is not RFC 3339", s.chars().take(64).collect::<String>()),
        }),
    }
}

/// The stream clock as an adapter sees it while reading one record: the time to give the record
/// if it carries none of its own, and whether it was given.
///
/// The [`crate::Reader`] needs to know: a record stamped with the clock's own time tells the
/// clock nothing, and were it counted as a second record at that time it would make a lone
/// first record's time look confirmed.
#[derive(Debug)]
pub(crate) struct Untimed {
    clock: Option<Ts>,
    stamped: bool,
}

impl Untimed {
    pub(crate) fn new(clock: Option<Ts>) -> Self {
        Untimed { clock, stamped: false }
    }

    /// The time of a record that carries none of its own: the stream clock (see
    /// [`crate::Reader`]).
    ///
    /// It is never derived from the record's id, although Twitter's and Mastodon's snowflake
    /// ids encode a creation time: whoever writes the stream can write any id, and an id of
    /// 18446744073709551615 would date the record to the 22nd century and drag event time
    /// forward for everyone downstream. Without a clock the record cannot be placed, so it is
    /// an error naming `field`, set aside and reported rather than guessed.
    pub(crate) fn stamp(&mut self, field: &'static str) -> Result<Ts, FormatError> {
        let t = self.clock.ok_or_else(|| FormatError::Invalid {
            field,
            reason: "the record carries no time and no earlier record set the stream clock".into(),
        })?;
        self.stamped = true;
        Ok(t)
    }

    /// Whether the record took the stream clock's time.
    pub(crate) fn stamped(&self) -> bool {
        self.stamped
    }
}

/// Ids with repeats left out, each kept where it first came: the engine reads the first
/// mention of a post as the person it is addressed to, so the order is kept.
///
/// Time is linear in the number of ids. A post's mentions are written by its author, tens of
/// thousands in one record: searching the ids kept so far for each new one took 17 s over five
/// such records. The set of ids seen uses the standard library's randomly keyed hasher, so that
/// ids chosen to collide cannot make it quadratic again.
pub(crate) fn first_seen(ids: impl IntoIterator<Item = String>) -> Vec<Cow<'static, str>> {
    let ids: Vec<String> = ids.into_iter().collect();
    if ids.len() < 2 {
        return ids.into_iter().map(Cow::Owned).collect();
    }
    let mut seen: HashSet<&str> = HashSet::with_capacity(ids.len());
    let keep: Vec<bool> = ids.iter().map(|id| seen.insert(id.as_str())).collect();
    drop(seen);
    ids.into_iter()
        .zip(keep)
        .filter_map(|(id, first)| first.then_some(Cow::Owned(id)))
        .collect()
}

/// A follower count as platforms report it: negative means hidden (some servers send -1),
/// and counts beyond the core's `u32` saturate.
pub(crate) fn followers(n: Option<i64>) -> Option<u32> {
    n.filter(|&n| n >= 0).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_as_strings_or_integers_never_floats() {
        let ids: Vec<Id> = serde_json::from_str(r#"["12", 229197184271278081, -3]"#).unwrap();
        let got: Vec<&str> = ids.iter().map(|i| i.0.as_str()).collect();
        assert_eq!(got, ["12", "229197184271278081", "-3"]);
        let err = serde_json::from_str::<Id>("2.291971842712781e17").unwrap_err();
        assert!(err.to_string().contains("float"), "{err}");
        assert!(serde_json::from_str::<Id>("true").is_err());
    }

    #[test]
    fn the_string_form_wins_and_an_id_is_required() {
        let s = |v: &str| Some(Id(v.to_owned()));
        assert_eq!(pick_id(s("7"), s("8"), "id").unwrap(), "7");
        assert_eq!(pick_id(s(""), s("8"), "id").unwrap(), "8");
        assert_eq!(pick_id(None, None, "id").unwrap_err(), FormatError::Missing("id"));
        assert_eq!(pick_id(None, s(""), "id").unwrap_err().code(), "invalid_field");
    }

    #[test]
    fn untimed_records_take_the_stream_clock_or_are_refused() {
        let t = Ts(1_700_000_000_000);
        let mut clock = Untimed::new(Some(t));
        assert!(!clock.stamped());
        assert_eq!(clock.stamp("at"), Ok(t));
        assert!(clock.stamped());
        let mut none = Untimed::new(None);
        let err = none.stamp("delete.timestamp_ms").unwrap_err();
        assert!(!none.stamped());
        assert_eq!(err.code(), "invalid_field");
        assert_eq!(
            err.to_string(),
            "field `delete.timestamp_ms`: the record carries no time and no earlier record set the stream clock"
        );
    }

    #[test]
    fn repeated_ids_are_left_out_in_first_seen_order() {
        let ids = |v: &[&str]| v.iter().map(std::string::ToString::to_string).collect::<Vec<_>>();
        let cases: [(&[&str], &[&str]); 4] = [
            (&[], &[]),
            (&["a"], &["a"]),
            (&["c", "a", "c", "b", "a", "c"], &["c", "a", "b"]),
            (&["x", "x", "x"], &["x"]),
        ];
        for (input, want) in cases {
            assert_eq!(first_seen(ids(input)), want.to_vec(), "{input:?}");
        }
    }

    #[test]
    fn follower_counts_saturate_and_hidden_ones_are_unknown() {
        assert_eq!(followers(Some(-1)), None);
        assert_eq!(followers(Some(12)), Some(12));
        assert_eq!(followers(Some(1 << 40)), Some(u32::MAX));
        assert_eq!(followers(None), None);
    }
}
