//! Why a record was set aside: one closed list of reason codes for every decoder, the engine,
//! the reject file, dead-letter headers and metrics.
//!
//! A metric's `reason` label is pre-registered from [`RejectCode::ALL`], so a dashboard sees a
//! zero for every reason rather than a series that appears on the first bad record, and no
//! code can reach a label without being in the list: the compiler sees to that.

use std::fmt;

/// The bounded reason code of a rejected record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectCode {
    /// Not JSON, or not valid UTF-8.
    InvalidJson,
    /// A field the record's kind needs is absent.
    MissingField,
    /// A canonical `type` modsignal does not know.
    UnknownType,
    /// A field is there but its value cannot be used.
    InvalidField,
    /// The record is longer than the configured limit.
    TooLarge,
    /// Well-formed, but none of the shapes a platform format has (usually the wrong format).
    UnrecognisedRecord,
    /// An id already known as another kind (a post id given again as a reshare).
    KindConflict,
    /// A reshare whose chain closes on itself.
    SelfReshare,
    /// Stamped further ahead of its reference time than the policy allows.
    Future,
    /// A per-key bound of the policy's `[limits]` would be exceeded.
    Limit,
}

impl RejectCode {
    /// Every code, in the order metrics register them.
    pub const ALL: [RejectCode; 10] = [
        RejectCode::InvalidJson,
        RejectCode::MissingField,
        RejectCode::UnknownType,
        RejectCode::InvalidField,
        RejectCode::TooLarge,
        RejectCode::UnrecognisedRecord,
        RejectCode::KindConflict,
        RejectCode::SelfReshare,
        RejectCode::Future,
        RejectCode::Limit,
    ];

    /// The code as written in reject files, dead-letter headers and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectCode::InvalidJson => "invalid_json",
            RejectCode::MissingField => "missing_field",
            RejectCode::UnknownType => "unknown_type",
            RejectCode::InvalidField => "invalid_field",
            RejectCode::TooLarge => "too_large",
            RejectCode::UnrecognisedRecord => "unrecognised_record",
            RejectCode::KindConflict => "kind_conflict",
            RejectCode::SelfReshare => "self_reshare",
            RejectCode::Future => "future",
            RejectCode::Limit => "limit",
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for RejectCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case_words() {
        let mut seen = std::collections::BTreeSet::new();
        for c in RejectCode::ALL {
            let s = c.as_str();
            assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{s}");
            assert!(seen.insert(s), "{s} twice");
            assert_eq!(c.to_string(), s);
        }
    }
}
