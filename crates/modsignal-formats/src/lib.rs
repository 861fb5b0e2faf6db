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
//!   their own and take the time of a [`StreamClock`] (see [`Reader`]).
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
use modsignal_core::{DecodeError, Event, RejectCode, Ts};

use crate::common::Untimed;

mod common;
pub mod jetstream;
pub mod label;
pub mod mastodon;
pub mod twitter;

pub use label::{Label, LabelError, LabelWriter, labeler_declaration, to_label};

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
    /// The bounded reason code for reject files, dead-letter headers and metrics.
    pub fn code(&self) -> RejectCode {
        match self {
            FormatError::Json(_) => RejectCode::InvalidJson,
            FormatError::Missing(_) => RejectCode::MissingField,
            FormatError::Invalid { .. } => RejectCode::InvalidField,
            FormatError::Unrecognised { .. } => RejectCode::UnrecognisedRecord,
            FormatError::TooLarge(_) => RejectCode::TooLarge,
            FormatError::Canonical(e) => e.code(),
        }
    }
}

/// A [`Reader`]'s stream clock: the newest time that at least two records have reached, for
/// the records that carry no time of their own.
///
/// It keeps the two newest record times seen (a record's time is the newest of its events'
/// times; two records may carry the same time) and reads the older of the two. The people this
/// pipeline watches write its input: a clock that followed the newest time seen would let one
/// record dated far in the future (a status from a hostile Mastodon server claiming 2199) date
/// every later untimed record to 2199, and with it move event time for everyone downstream.
/// This clock never reads a time that only one record has reached, so one record, however far
/// ahead, cannot move it past what another record has reached.
///
/// Before two records have carried a time, the clock reads the one seen. A lone first record is
/// accepted because there is nothing yet to weigh it against, and refusing it would only set
/// aside every untimed record until a second one came. The second record may set the clock
/// back; from then on it never goes back.
///
/// It bounds what one record can do, not what the writer of many can: two records dated in the
/// future do move it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StreamClock {
    /// The newest record time seen.
    newest: Option<Ts>,
    /// The newest time seen in a record other than the one that carried `newest`: never after
    /// it, and `None` until a second record carried a time.
    runner_up: Option<Ts>,
}

impl StreamClock {
    /// A clock that has seen no record.
    pub const fn new() -> Self {
        StreamClock {
            newest: None,
            runner_up: None,
        }
    }

    /// The clock after records at these times, in any order: how a saved clock
    /// ([`StreamClock::newest`], [`StreamClock::runner_up`]) is restored.
    pub fn from_times(a: Option<Ts>, b: Option<Ts>) -> Self {
        let mut c = StreamClock::new();
        for t in [a, b].into_iter().flatten() {
            c.observe(t);
        }
        c
    }

    /// A clock that reads `t` as if two records had reached it, so that no single record can
    /// move it: how a reader resumes from a saved [`Reader::clock`] alone.
    pub const fn established(t: Option<Ts>) -> Self {
        StreamClock {
            newest: t,
            runner_up: t,
        }
    }

    /// The time the clock reads: the newest time that at least two records have reached, or,
    /// before a second record carried a time, the first one's.
    pub fn now(&self) -> Option<Ts> {
        self.runner_up.or(self.newest)
    }

    /// The newest record time seen.
    pub fn newest(&self) -> Option<Ts> {
        self.newest
    }

    /// The newest time seen in another record than the newest one, once two records carried a
    /// time.
    pub fn runner_up(&self) -> Option<Ts> {
        self.runner_up
    }

    /// Counts one record at time `t`. Constant time: the clock keeps two times, not a history.
    pub fn observe(&mut self, t: Ts) {
        match self.newest {
            Some(n) if t < n => self.runner_up = self.runner_up.max(Some(t)),
            previous => {
                self.runner_up = previous;
                self.newest = Some(t);
            }
        }
    }
}

/// A saved clock time alone (what [`Reader::clock`] gives) is taken as established: see
/// [`StreamClock::established`].
impl From<Option<Ts>> for StreamClock {
    fn from(t: Option<Ts>) -> Self {
        StreamClock::established(t)
    }
}

/// Reads records of one [`Format`] into canonical events.
///
/// Besides the pairing of server-sent events, a reader keeps a [`StreamClock`] of the times of
/// the records it has read. A few records carry no time of their own (a Mastodon `delete`, a
/// Twitter `delete` or `status_withheld` without `timestamp_ms`); they are stamped with the
/// time the clock reads, since they can only have happened after what came before them. That
/// makes their time depend on the order of the stream, which is the best the stream allows. A
/// record so stamped is not counted by the clock: its time is the clock's own and confirms
/// nothing.
///
/// Their time is never derived from their id, although both networks' ids are snowflakes that
/// encode a creation time: the people this pipeline watches write its input, and an id such as
/// 18446744073709551615 would date a delete to 2150 and move event time for everyone
/// downstream. A record without a time of its own that comes before any record set the clock is
/// a [`FormatError`] naming the field, set aside and reported rather than guessed.
#[derive(Debug, Default)]
pub struct Reader {
    format: Format,
    clock: StreamClock,
    /// The event name of a server-sent event whose `data:` line has not come yet.
    sse_event: Option<String>,
}

impl Reader {
    pub fn new(format: Format) -> Self {
        Reader {
            format,
            clock: StreamClock::new(),
            sse_event: None,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The time the stream clock reads ([`StreamClock::now`]): the time a record without one of
    /// its own would be given now.
    pub fn clock(&self) -> Option<Ts> {
        self.clock.now()
    }

    /// The whole stream clock, both times it keeps: what a reader's state must save for
    /// [`Reader::resume`] to stamp exactly as this reader would.
    pub fn stream_clock(&self) -> StreamClock {
        self.clock
    }

    /// The event name of a server-sent event still waiting for its `data:` line.
    pub fn pending_sse_event(&self) -> Option<&str> {
        self.sse_event.as_deref()
    }

    /// A reader that continues from the state another one had ([`Reader::pending_sse_event`]
    /// and its clock): how a restored Kafka partition keeps stamping the records that carry no
    /// time.
    ///
    /// Given the other reader's [`Reader::stream_clock`], it stamps exactly as the other would
    /// have. Given only its [`Reader::clock`] (an `Option<Ts>`), the clock starts
    /// [established](StreamClock::established) at that time: it reads the same and no single
    /// record can move it, but until a second record passes it, it may read earlier than the
    /// other reader's would have, which also knew a newer time.
    pub fn resume(format: Format, clock: impl Into<StreamClock>, sse_event: Option<String>) -> Self {
        Reader {
            format,
            clock: clock.into(),
            sse_event,
        }
    }

    /// Reads one record and appends the canonical events it stands for to `out`. On error,
    /// `out` is left as it was: a record gives all its events or none.
    pub fn read(&mut self, record: &[u8], out: &mut Vec<Event<'static>>) -> Result<Read, FormatError> {
        let start = out.len();
        let mut untimed = Untimed::new(self.clock.now());
        let res = self.read_inner(record, &mut untimed, out);
        match res {
            Ok(Read::Events(_)) => {
                // What `decode` would refuse of the ids, the adapters refuse too: the engine
                // relies on the bound, and a record's events go in whole or not at all.
                if let Some(Err(e)) = out[start..].iter().map(Event::check_ids).find(Result::is_err) {
                    out.truncate(start);
                    return Err(match e {
                        DecodeError::Invalid { field, reason } => FormatError::Invalid { field, reason },
                        other => FormatError::Canonical(other),
                    });
                }
                let n = out.len() - start;
                debug_assert!(n > 0, "an adapter said `Events` without appending one");
                if n == 0 {
                    // Adapters say `Events` only after appending; were one not to, the record
                    // is reported as passed over rather than as a count of zero events.
                    return Ok(Read::Skipped(Skip::OtherEvent));
                }
                // One record counts once, at its newest event's time, however many events it
                // gave: a retweet whose embedded original claims a future time must not count
                // as two records that reached it.
                if !untimed.stamped()
                    && let Some(latest) = out[start..].iter().map(|e| e.at).max()
                {
                    self.clock.observe(latest);
                }
                Ok(Read::Events(n))
            }
            Ok(skip) => Ok(skip),
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    fn read_inner(
        &mut self,
        record: &[u8],
        untimed: &mut Untimed,
        out: &mut Vec<Event<'static>>,
    ) -> Result<Read, FormatError> {
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
            Format::Mastodon => mastodon::read(text, &mut self.sse_event, untimed, out),
            Format::Twitter => twitter::read(text, untimed, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modsignal_core::EventKind;

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
    fn the_stream_clock_reads_the_newest_time_two_records_reached() {
        // (record times in order, what the clock reads after each)
        let cases: [(&[i64], &[Option<i64>]); 6] = [
            (&[], &[]),
            // A lone first record is accepted; the second may set the clock back.
            (&[50, 10], &[Some(50), Some(10)]),
            (&[10, 20, 30], &[Some(10), Some(10), Some(20)]),
            // One record far ahead moves nothing; a second record reaching further does.
            (
                &[10, 20, 9_000, 30, 9_000],
                &[Some(10), Some(10), Some(20), Some(30), Some(9_000)],
            ),
            // Equal times count as two records.
            (&[7, 7], &[Some(7), Some(7)]),
            // Older records never set an established clock back.
            (&[10, 20, 5, 15], &[Some(10), Some(10), Some(10), Some(15)]),
        ];
        for (times, want) in cases {
            let mut c = StreamClock::new();
            assert_eq!(c.now(), None);
            let got: Vec<Option<i64>> = times
                .iter()
                .map(|&t| {
                    c.observe(Ts(t));
                    c.now().map(|t| t.0)
                })
                .collect();
            assert_eq!(got, want, "{times:?}");
            assert_eq!(StreamClock::from_times(c.runner_up(), c.newest()), c, "{times:?}");
        }
        assert_eq!(StreamClock::established(Some(Ts(4))).now(), Some(Ts(4)));
        assert_eq!(StreamClock::from(None), StreamClock::new());
    }

    const T0: i64 = 1_767_607_200_000; // 2026-01-05T10:00:00Z
    const T1: i64 = 1_767_607_260_000; // 2026-01-05T10:01:00Z
    const FUTURE: i64 = 7_226_582_400_000; // 2199-01-01T00:00:00Z

    fn rfc3339(ms: i64) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    }

    fn jetstream(ms: i64) -> String {
        let us = ms * 1000;
        format!(
            r#"{{"did":"did:plc:a","time_us":{us},"kind":"commit","commit":{{"operation":"delete","collection":"app.bsky.feed.post","rkey":"r{ms}"}}}}"#
        )
    }

    fn tweet(ms: i64) -> String {
        format!(
            r#"{{"created_at":"{}","id_str":"{ms}","user":{{"id_str":"2"}}}}"#,
            rfc3339(ms)
        )
    }

    fn status(ms: i64) -> String {
        let status = format!(
            r#"{{"id":"{ms}","created_at":"{}","account":{{"id":"2"}}}}"#,
            rfc3339(ms)
        );
        serde_json::json!({"stream": ["public"], "event": "update", "payload": status}).to_string()
    }

    const UNTIMED_TWEET_DELETE: &str = r#"{"delete":{"status":{"id_str":"18446744073709551615"}}}"#;
    const UNTIMED_TOOT_DELETE: &str = r#"{"stream":["public"],"event":"delete","payload":"18446744073709551615"}"#;

    #[test]
    fn one_record_dated_in_the_future_does_not_date_the_records_without_a_time() {
        // A retweet whose own time is now and whose embedded original claims 2199: one record,
        // counted once at its newest time.
        let retweet = format!(
            r#"{{"created_at":"{}","id_str":"3","user":{{"id_str":"4"}},"retweeted_status":{{"created_at":"{}","id_str":"5","user":{{"id_str":"6"}}}}}}"#,
            rfc3339(T1),
            rfc3339(FUTURE)
        );
        // (format, records, the last record's time or error code, the clock after them)
        type Case = (Format, Vec<String>, Result<i64, &'static str>, Option<i64>);
        let cases: [Case; 11] = [
            (
                Format::Jetstream,
                vec![jetstream(T0), jetstream(FUTURE)],
                Ok(FUTURE),
                Some(T0),
            ),
            (
                Format::Jetstream,
                vec![jetstream(T0), jetstream(FUTURE), jetstream(T1)],
                Ok(T1),
                Some(T1),
            ),
            // A lone first record is all there is to go by, and a second one corrects it.
            (Format::Jetstream, vec![jetstream(FUTURE)], Ok(FUTURE), Some(FUTURE)),
            (
                Format::Jetstream,
                vec![jetstream(FUTURE), jetstream(T0)],
                Ok(T0),
                Some(T0),
            ),
            (
                Format::Twitter,
                vec![tweet(T0), tweet(FUTURE), UNTIMED_TWEET_DELETE.into()],
                Ok(T0),
                Some(T0),
            ),
            (
                Format::Twitter,
                vec![tweet(T0), retweet, UNTIMED_TWEET_DELETE.into()],
                Ok(T0),
                Some(T0),
            ),
            // A record stamped with the clock confirms nothing: after a lone first record in the
            // future, the untimed delete takes its time, but the next record still corrects it.
            (
                Format::Twitter,
                vec![
                    tweet(FUTURE),
                    UNTIMED_TWEET_DELETE.into(),
                    tweet(T0),
                    UNTIMED_TWEET_DELETE.into(),
                ],
                Ok(T0),
                Some(T0),
            ),
            // Two records reaching a time do move the clock: it bounds one record, not many.
            (
                Format::Twitter,
                vec![tweet(T0), tweet(FUTURE), tweet(FUTURE), UNTIMED_TWEET_DELETE.into()],
                Ok(FUTURE),
                Some(FUTURE),
            ),
            (
                Format::Mastodon,
                vec![status(T0), status(FUTURE), UNTIMED_TOOT_DELETE.into()],
                Ok(T0),
                Some(T0),
            ),
            (
                Format::Mastodon,
                vec![UNTIMED_TOOT_DELETE.into()],
                Err("invalid_field"),
                None,
            ),
            (
                Format::Twitter,
                vec![UNTIMED_TWEET_DELETE.into()],
                Err("invalid_field"),
                None,
            ),
        ];
        for (format, records, want_last, want_clock) in cases {
            let mut r = Reader::new(format);
            let mut out = Vec::new();
            let mut last = None;
            for rec in &records {
                last = Some(r.read(rec.as_bytes(), &mut out));
            }
            let got = match last.unwrap() {
                Ok(Read::Events(_)) => Ok(out.last().unwrap().at.0),
                Ok(skip) => panic!("{format} {records:?}: skipped, {skip:?}"),
                Err(e) => Err(e.code().as_str()),
            };
            assert_eq!(got, want_last, "{format} {records:?}");
            assert_eq!(r.clock().map(|t| t.0), want_clock, "{format} {records:?}");
        }
    }

    #[test]
    fn a_resumed_reader_keeps_its_clock() {
        let mut out = Vec::new();
        let mut r = Reader::new(Format::Jetstream);
        for ms in [T0, FUTURE] {
            r.read(jetstream(ms).as_bytes(), &mut out).unwrap();
        }
        // From the whole stream clock, the resumed reader reads exactly as the first one.
        let mut exact = Reader::resume(Format::Jetstream, r.stream_clock(), None);
        // From the time the clock read alone (what older saved states hold), it reads the same
        // and is established there: one record ahead does not move it.
        let mut from_time = Reader::resume(Format::Jetstream, r.clock(), None);
        assert_eq!(from_time.clock(), Some(Ts(T0)));
        for reader in [&mut r, &mut exact, &mut from_time] {
            reader.read(jetstream(T1).as_bytes(), &mut out).unwrap();
        }
        assert_eq!(r.clock(), Some(Ts(T1)));
        assert_eq!(exact.stream_clock(), r.stream_clock());
        // It had forgotten the 2199 record, so it waits for a second record past T0.
        assert_eq!(from_time.clock(), Some(Ts(T0)));
        from_time.read(jetstream(T1).as_bytes(), &mut out).unwrap();
        assert_eq!(from_time.clock(), Some(Ts(T1)));
    }

    #[test]
    fn tens_of_thousands_of_mentions_keep_their_first_seen_order() {
        // Ids cycling through a prime modulus: each comes once or twice, and the order in
        // which they first come is not their sorted order.
        let ids = |n: u64, modulus: u64| -> Vec<u64> { (0..n).map(|i| (i * 7919) % modulus).collect() };
        let first_seen_by_hand = |ids: &[u64]| -> Vec<String> {
            let mut seen = std::collections::BTreeSet::new();
            ids.iter().filter(|i| seen.insert(**i)).map(u64::to_string).collect()
        };
        let tweet = |ids: &[u64]| {
            let list = |ids: &[u64]| {
                ids.iter()
                    .map(|i| format!(r#"{{"id":{i}}}"#))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            // The extended tweet's mentions repeat the first thousand: still one each.
            format!(
                r#"{{"created_at":"2026-01-05T10:00:00Z","id_str":"1","user":{{"id_str":"2"}},"entities":{{"user_mentions":[{}]}},"extended_tweet":{{"entities":{{"user_mentions":[{}]}}}}}}"#,
                list(ids),
                list(&ids[..1000])
            )
        };
        let toot = |ids: &[u64]| {
            let list = ids
                .iter()
                .map(|i| format!(r#"{{"id":"{i}"}}"#))
                .collect::<Vec<_>>()
                .join(",");
            format!(
                r#"data: {{"id":"1","created_at":"2026-01-05T10:00:00Z","account":{{"id":"2"}},"mentions":[{list}]}}"#
            )
        };
        let skeet = |ids: &[u64]| {
            let list = ids
                .iter()
                .map(|i| format!(r#"{{"$type":"app.bsky.richtext.facet#mention","did":"{i}"}}"#))
                .collect::<Vec<_>>()
                .join(",");
            format!(
                r#"{{"did":"did:plc:a","time_us":1767607200000000,"kind":"commit","commit":{{"operation":"create","collection":"app.bsky.feed.post","rkey":"r","record":{{"facets":[{{"features":[{list}]}}]}}}}}}"#
            )
        };
        // (format, records before the post, the post, its mention ids); a Jetstream mention
        // takes more bytes, so fewer fit in one record.
        type Case = (Format, Vec<String>, fn(&[u64]) -> String, Vec<u64>);
        let cases: [Case; 3] = [
            (Format::Twitter, vec![], tweet, ids(50_000, 25_013)),
            (
                Format::Mastodon,
                vec!["event: update".into()],
                toot,
                ids(50_000, 25_013),
            ),
            (Format::Jetstream, vec![], skeet, ids(15_000, 7_507)),
        ];
        for (format, before, post, ids) in cases {
            let record = post(&ids);
            assert!(record.len() <= MAX_RECORD_BYTES, "{format}: {} bytes", record.len());
            let mut r = Reader::new(format);
            let mut out = Vec::new();
            for line in &before {
                r.read(line.as_bytes(), &mut out).unwrap();
            }
            assert_eq!(r.read(record.as_bytes(), &mut out), Ok(Read::Events(1)), "{format}");
            let EventKind::Post { mentions, .. } = &out[0].kind else {
                panic!("{format}: not a post: {:?}", out[0]);
            };
            let want = first_seen_by_hand(&ids);
            assert!(want.len() < ids.len(), "{format}: the ids repeat");
            assert!(
                want.windows(2).any(|w| w[0] > w[1]),
                "{format}: first seen is not sorted"
            );
            assert_eq!(mentions.len(), want.len(), "{format}");
            assert!(mentions.iter().zip(&want).all(|(m, w)| m == w), "{format}");
        }
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
