//! The real platforms' streams in, AT Protocol labels out: pure adapters around modsignal's
//! canonical contract.
//!
//! modsignal's core reads one contract, the canonical events of version 1
//! ([`modsignal_core::event`]). The networks it watches speak their own: Bluesky's Jetstream,
//! Mastodon's streaming API (WebSocket frames or server-sent events) and Twitter/X's v1.1
//! statuses, stream notices and v2 compliance events. This crate turns each of those records
//! into zero, one or several canonical events, and turns flags into AT Protocol labels
//! (`com.atproto.label.defs#label`) for those who consume them that way.
//!
//! - [`Reader`] reads one record (one line, or one frame) in a chosen [`Format`] and appends the
//!   canonical events it stands for. It is stateful because Mastodon's server-sent events pair
//!   an `event:` line with the `data:` line after it, and because a few records carry no time of
//!   their own (see [`Reader`]).
//! - [`Read`] says what a record gave: events, or nothing, with a bounded [`Skip`] reason code
//!   for counting (likes, follows, identity changes and rate-limit notices are not errors).
//! - [`FormatError`] says what was wrong with a record that could not be read, so that an
//!   entry in a reject file can be acted on.
//! - [`label`] converts flags into labels: [`label::to_label`] is the pure conversion and
//!   [`label::LabelWriter`] remembers which labels are asserted, to retract them.
//!
//! Message text is never read: the wire shapes here name only the fields modsignal needs, so
//! serde skips the text without copying it, and no canonical event has a field to carry it.
//! Nothing here performs I/O or reads a clock.

use std::fmt;
use std::str::FromStr;

use modsignal_core::event::MAX_RECORD_BYTES;
use modsignal_core::{DecodeError, Event, Ts};

mod common;
pub mod jetstream;
pub mod label;
pub mod mastodon;
pub mod twitter;

pub use label::{Label, LabelError, LabelWriter, to_label};

/// How input records are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// modsignal's own contract, version 1.
    #[default]
    Canonical,
    /// Bluesky Jetstream JSON, one event per record.
    Jetstream,
    /// Mastodon's streaming API: WebSocket frames, or the lines of server-sent events.
    Mastodon,
    /// Twitter/X: v1.1 statuses and stream notices, and v2 compliance events.
    Twitter,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Canonical, Format::Jetstream, Format::Mastodon, Format::Twitter];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Canonical => "canonical",
            Format::Jetstream => "jetstream",
            Format::Mastodon => "mastodon",
            Format::Twitter => "twitter",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown format `{s}`: expected canonical, jetstream, mastodon or twitter"))
    }
}

/// What one record gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// This many canonical events were appended (one or more).
    Events(usize),
    /// Nothing, for this reason.
    Skipped(Skip),
}

/// Why a record gave no event. The set is closed so that counting by [`Skip::code`] stays
/// bounded whatever the input holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// An empty line (in server-sent events, the end of an event).
    Blank,
    /// A server-sent-events comment, such as Mastodon's `:thump` heartbeat.
    Heartbeat,
    /// A server-sent-events `event:` line, waiting for its `data:` line.
    SseEvent,
    /// Another server-sent-events field (`id:`, `retry:`).
    SseField,
    /// A Jetstream commit to a collection modsignal does not read (likes, follows, blocks,
    /// profiles, …).
    OtherCollection,
    /// A Jetstream `identity` event (a handle change).
    Identity,
    /// A Jetstream `account` event whose status says nothing about removal (`desynchronized`,
    /// `throttled`, or inactive with no status).
    AccountStatus,
    /// A platform event kind modsignal does not read (Mastodon notifications, Jetstream kinds
    /// added later, …).
    OtherEvent,
    /// A Twitter `limit` notice: the stream dropped statuses it does not name.
    Limit,
    /// A Twitter `user_withheld` notice or compliance event (see [`twitter`] for why).
    UserWithheld,
    /// Another Twitter v1.1 stream notice (`scrub_geo`, `disconnect`, `warning`, …).
    OtherNotice,
    /// Another Twitter v2 compliance event (`tweet_edit`, `profile_update`, `scrub_geo`, …).
    OtherCompliance,
}

impl Skip {
    /// A short, bounded reason code for summaries and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Skip::Blank => "blank",
            Skip::Heartbeat => "heartbeat",
            Skip::SseEvent => "sse_event",
            Skip::SseField => "sse_field",
            Skip::OtherCollection => "other_collection",
            Skip::Identity => "identity",
            Skip::AccountStatus => "account_status",
            Skip::OtherEvent => "other_event",
            Skip::Limit => "limit",
            Skip::UserWithheld => "user_withheld",
            Skip::OtherNotice => "other_notice",
            Skip::OtherCompliance => "other_compliance",
        }
    }

    /// Whether the skip is only framing (blank lines and the `event:` half of a server-sent
    /// event), which a summary leaves out because it is not a record that was passed over.
    pub fn is_framing(self) -> bool {
        matches!(self, Skip::Blank | Skip::SseEvent)
    }
}

/// Why a record could not be read. Every variant names what was wrong, so that a reject file
/// tells an operator where to look.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The record is well-formed but is none of the shapes the format has: usually the wrong
    /// `--format`.
    #[error("not a {format} record: {what}")]
    Unrecognised { format: Format, what: String },
    #[error("record of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// A canonical record that did not decode.
    #[error(transparent)]
    Canonical(#[from] DecodeError),
}

impl FormatError {
    /// A short, bounded reason code for reject files and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            FormatError::Json(_) => "invalid_json",
            FormatError::Missing(_) => "missing_field",
            FormatError::Invalid { .. } => "invalid_field",
            FormatError::Unrecognised { .. } => "unrecognised_record",
            FormatError::TooLarge(_) => "too_large",
            FormatError::Canonical(e) => e.code(),
        }
    }
}

/// Reads records of one [`Format`] into canonical events.
///
/// Besides the pairing of server-sent events, a reader keeps a *stream clock*: the latest event
/// time of the events it has produced. A few records carry no time of their own (a Mastodon
/// `delete`, a Twitter `delete` or `status_withheld` without `timestamp_ms`); they are stamped
/// with the stream clock, since they can only have happened after what came before them. That
/// makes their time depend on the order of the stream, which is the best the stream allows.
///
/// Their time is never derived from their id, although both networks' ids are snowflakes that
/// encode a creation time: the people this pipeline watches write its input, and an id such as
/// 18446744073709551615 would date a delete to 2150 and move event time for everyone
/// downstream. A record without a time of its own that comes before any record set the clock is
/// a [`FormatError`] naming the field, set aside and reported rather than guessed.
#[derive(Debug, Default)]
pub struct Reader {
    format: Format,
    clock: Option<Ts>,
    /// The event name of a server-sent event whose `data:` line has not come yet.
    sse_event: Option<String>,
}

impl Reader {
    pub fn new(format: Format) -> Self {
        Reader {
            format,
            clock: None,
            sse_event: None,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The latest event time produced so far.
    pub fn clock(&self) -> Option<Ts> {
        self.clock
    }

    /// The event name of a server-sent event still waiting for its `data:` line.
    pub fn pending_sse_event(&self) -> Option<&str> {
        self.sse_event.as_deref()
    }

    /// A reader that continues from the state another one had ([`Reader::clock`] and
    /// [`Reader::pending_sse_event`]): how a restored Kafka partition keeps stamping the
    /// records that carry no time exactly as before.
    pub fn resume(format: Format, clock: Option<Ts>, sse_event: Option<String>) -> Self {
        Reader {
            format,
            clock,
            sse_event,
        }
    }

    /// Reads one record and appends the canonical events it stands for to `out`. On error,
    /// `out` is left as it was: a record gives all its events or none.
    pub fn read(&mut self, record: &[u8], out: &mut Vec<Event<'static>>) -> Result<Read, FormatError> {
        let start = out.len();
        let res = self.read_inner(record, out);
        match res {
            Ok(Read::Events(_)) => {
                let n = out.len() - start;
                debug_assert!(n > 0, "an adapter said `Events` without appending one");
                if n == 0 {
                    // Adapters say `Events` only after appending; were one not to, the record
                    // is reported as passed over rather than as a count of zero events.
                    return Ok(Read::Skipped(Skip::OtherEvent));
                }
                let latest = out[start..].iter().map(|e| e.at).max();
                self.clock = self.clock.max(latest);
                Ok(Read::Events(n))
            }
            Ok(skip) => Ok(skip),
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    fn read_inner(&mut self, record: &[u8], out: &mut Vec<Event<'static>>) -> Result<Read, FormatError> {
        if record.len() > MAX_RECORD_BYTES {
            return Err(FormatError::TooLarge(record.len()));
        }
        let text = std::str::from_utf8(record).map_err(|e| FormatError::Json(format!("not UTF-8: {e}")))?;
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        if text.is_empty() {
            // In server-sent events a blank line ends the event, so a pending `event:` line
            // does not carry over to a later, unrelated `data:` line.
            self.sse_event = None;
            return Ok(Read::Skipped(Skip::Blank));
        }
        match self.format {
            Format::Canonical => {
                let ev = modsignal_core::decode(text.as_bytes())?;
                out.push(ev.into_owned());
                Ok(Read::Events(1))
            }
            Format::Jetstream => jetstream::read(text, out),
            Format::Mastodon => mastodon::read(text, &mut self.sse_event, self.clock, out),
            Format::Twitter => twitter::read(text, self.clock, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
        }
        assert!("kafka".parse::<Format>().is_err());
    }

    #[test]
    fn canonical_records_decode_and_errors_keep_their_codes() {
        let mut r = Reader::new(Format::Canonical);
        let mut out = Vec::new();
        let got = r.read(br#"{"type":"delete","at":1732206400000,"id":"m1"}"#, &mut out);
        assert_eq!(got, Ok(Read::Events(1)));
        assert_eq!(r.clock(), Some(Ts(1_732_206_400_000)));
        let err = r.read(br#"{"type":"post","at":1732206400000}"#, &mut out).unwrap_err();
        assert_eq!(err.code(), "missing_field");
        assert_eq!(out.len(), 1);
        assert_eq!(r.read(b"  \r", &mut out), Ok(Read::Skipped(Skip::Blank)));
    }

    #[test]
    fn oversized_and_non_utf8_records_are_errors() {
        let mut out = Vec::new();
        for f in Format::ALL {
            let mut r = Reader::new(f);
            let big = vec![b' '; MAX_RECORD_BYTES + 1];
            assert_eq!(r.read(&big, &mut out).unwrap_err().code(), "too_large", "{f}");
            assert_eq!(
                r.read(b"{\"a\":\"\xff\"}", &mut out).unwrap_err().code(),
                "invalid_json",
                "{f}"
            );
        }
        assert!(out.is_empty());
    }
}
