//! Routing: platform streams are keyed by account, but the engine needs every event about a
//! message in the partition that holds the message. The router reads the input topics (in any
//! [`Format`]), turns each record into canonical events, and sends each event to the partition
//! of the repartition topic that owns the message whose state it changes, as Kafka Streams
//! does with a repartition topic:
//!
//! | event | partitions |
//! |---|---|
//! | `post` | its own id's, and those of the message it replies to and the one it quotes (their reply and quote counts live there) |
//! | `reshare` | its original's: `of`, or what `of` reshares when `of` is a reshare the router has seen |
//! | `delete`, `restrict`, `restore`, `label`, `report`, `impressions` | the message's; for a reshare's id, its original's |
//! | `account` | every partition: an account's status and followers matter wherever its messages are |
//!
//! A message id's partition is its xxh3-64 hash modulo the repartition topic's partition
//! count; the record key is that hash in hex, so no id is needed to read the key.
//!
//! The router keeps, per input partition, which original each reshare it has seen stands for
//! (a repost's delete names only the repost), by the reshare's whole id, for the retention
//! horizon of the policy after the reshare, and the [`Reader`]'s stream clock. Both are
//! snapshotted and restored like an engine (see [`crate::state`]).
//!
//! The router also tells every partition of the repartition topic how far event time has come
//! in each input partition it reads, with *watermark marks*: records with no value, keyed by
//! the input partition (`topic/partition`, a *source*), whose header [`HEADER_WATERMARK`] gives
//! the newest time seen in two of its events (never counting an event stamped further after its
//! record's timestamp than the policy's `stream.max_skew_secs`, which the engine rejects as
//! `future`, so that one record cannot move event time) and whether the partition is *idle*:
//! read to its end. A mark is sent at each flush interval when either changed. Each engine
//! partition follows the slowest source that is not idle
//! ([`modsignal_core::Engine::expect_sources`]), so a backlog read faster in one partition
//! than another makes no event late, and once every source is idle it moves to the event time
//! of the whole input and is finished, as file mode is at the end of its input.
//!
//! A reshare of a reshare read by another input partition (another account's reshare, in a
//! stream keyed by account) is routed by the id in `of`, which is not its original's
//! partition unless `of` names the original. Jetstream, Mastodon and Twitter always name the
//! original; canonical producers should too when routing is on.

use std::collections::HashMap;

use compact_str::CompactString;
use modsignal_core::frame::{self, FrameError};
use modsignal_core::policy::Stream;
use modsignal_core::{Event, EventClock, EventKind, EventTimes, Ts};
use modsignal_formats::{Format, Read, Reader, StreamClock};

use crate::dead_letter::Reject;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

/// One canonical event on its way to the repartition topic.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Routed {
    pub partition: i32,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// What one record gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Outcome {
    /// This many events, sent to this many partitions in all, of which `late` were behind the
    /// input partition's own event time by more than the lateness bound.
    Routed { events: usize, records: usize, late: usize },
    /// Nothing, for this reason ([`modsignal_formats::Skip::code`]).
    Skipped(&'static str),
}

const MAGIC: &[u8; 8] = b"modroute";

/// The header of a watermark mark: the input partition's two newest event times, and `:idle`
/// when it is read to its end (see [`encode_mark`]); the mark's key names the input partition.
pub const HEADER_WATERMARK: &str = "modsignal.watermark";

/// What a source says in a mark: its two newest event times (as [`encode_times`] writes
/// them), followed by `:idle` when it is read to its end.
pub(crate) fn encode_mark(times: EventTimes, idle: bool) -> String {
    let mut s = encode_times(times);
    if idle {
        s.push_str(":idle");
    }
    s
}

/// The inverse of [`encode_mark`]. A mark without the suffix is of a source still being read;
/// marks written before marks said so were sent only when their source went quiet, and read
/// as idle when their key has the old `watermark:` prefix (see `record::watermark_of`).
pub(crate) fn decode_mark(s: &str) -> Option<(EventTimes, bool)> {
    match s.strip_suffix(":idle") {
        Some(times) => Some((decode_times(times)?, true)),
        None => Some((decode_times(s)?, false)),
    }
}

/// Two event times ([`modsignal_core::EventClock::times`]) as text: `newest:second` in ms
/// since the epoch, each empty when unknown.
pub(crate) fn encode_times((a, b): EventTimes) -> String {
    let t = |x: Option<Ts>| x.map_or(String::new(), |t| t.0.to_string());
    format!("{}:{}", t(a), t(b))
}

/// The inverse of [`encode_times`]; a plain number (a mark written before marks carried two
/// times) reads as a newest time alone.
pub(crate) fn decode_times(s: &str) -> Option<EventTimes> {
    let t = |x: &str| -> Option<Option<Ts>> {
        if x.is_empty() {
            Some(None)
        } else {
            x.parse().ok().map(|v| Some(Ts(v)))
        }
    };
    match s.split_once(':') {
        Some((a, b)) => Some((t(a)?, t(b)?)),
        None => Some((t(s)?, None)),
    }
}
/// Format 2 keeps reshare ids whole and both times of each clock; format 1 (hashes of ids, one
/// time) is refused, and the partition is rebuilt by replaying its input.
const FORMAT: u32 = 2;

/// The router of one input partition.
pub(crate) struct Router {
    reader: Reader,
    /// Reshare id → (the routing hash of its original's id, event time of the reshare in ms).
    /// The id is kept whole: two reshare ids with one hash must not share an original.
    reshares: HashMap<CompactString, (u64, i64)>,
    /// Event time of the partition, as the engine keeps it: one record cannot move it.
    clock: EventClock,
    next_sweep: i64,
    retention_ms: i64,
    max_skew_ms: i64,
    lateness_ms: i64,
    partitions: i32,
    events: Vec<Event<'static>>,
    /// The last watermark mark sent: times and idleness.
    marked: Option<(EventTimes, bool)>,
}

type Times = (Option<i64>, Option<i64>);

fn times(c: StreamClock) -> Times {
    (c.newest().map(|t| t.0), c.runner_up().map(|t| t.0))
}

fn stream_clock((a, b): Times) -> StreamClock {
    StreamClock::from_times(a.map(Ts), b.map(Ts))
}

#[derive(Serialize, Deserialize)]
struct Saved {
    reader_clock: Times,
    sse_event: Option<String>,
    reshares: Vec<(String, u64, i64)>,
    clock: EventClock,
    next_sweep: i64,
}

impl Router {
    pub(crate) fn new(format: Format, partitions: i32, stream: &Stream) -> Router {
        Router {
            reader: Reader::new(format),
            reshares: HashMap::new(),
            clock: EventClock::default(),
            next_sweep: i64::MIN,
            retention_ms: (stream.retention_secs as i64).saturating_mul(1000),
            max_skew_ms: (stream.max_skew_secs as i64).saturating_mul(1000),
            lateness_ms: (stream.lateness_secs as i64).saturating_mul(1000),
            partitions: partitions.max(1),
            events: Vec::new(),
            marked: None,
        }
    }

    /// Event time as this router knows it: the newest time seen in two events.
    fn now(&self) -> i64 {
        self.clock.times().1.map_or(i64::MIN, |t| t.0)
    }

    /// A watermark mark for every partition of the repartition topic, if the input partition's
    /// event time or idleness (`idle`: read to its end) changed since the last mark sent.
    pub(crate) fn mark(&mut self, idle: bool) -> Option<(EventTimes, bool, Vec<i32>)> {
        let mark = (self.clock.times(), idle);
        if self.marked == Some(mark) {
            return None;
        }
        self.marked = Some(mark);
        Some((mark.0, idle, (0..self.partitions).collect()))
    }

    /// Event time of the input partition, in ms since the epoch: the newest time seen in two
    /// events, or the one seen; `None` before any.
    pub(crate) fn event_time(&self) -> Option<i64> {
        let (a, b) = self.clock.times();
        b.or(a).map(|t| t.0)
    }

    /// Reshares remembered.
    pub(crate) fn len(&self) -> usize {
        self.reshares.len()
    }

    /// Reads one record, received at `received_ms` (its timestamp), and appends what goes to
    /// the repartition topic. A record that cannot be read is an error, with its reason and
    /// code, and appends nothing.
    pub(crate) fn route(
        &mut self,
        payload: &[u8],
        received_ms: Option<i64>,
        out: &mut Vec<Routed>,
    ) -> Result<Outcome, Reject> {
        self.events.clear();
        match self.reader.read(payload, &mut self.events) {
            Err(e) => Err(Reject::Format(e)),
            Ok(Read::Skipped(skip)) => Ok(Outcome::Skipped(skip.code())),
            Ok(Read::Events(n)) => {
                let before = out.len();
                let events = std::mem::take(&mut self.events);
                let mut late = 0;
                for ev in &events {
                    let now = self.now();
                    late += usize::from(now != i64::MIN && ev.at.0 < now.saturating_sub(self.lateness_ms));
                    // An event from the future is routed (the engine sets it aside as `future`)
                    // but does not count as this partition's event time.
                    if received_ms.is_none_or(|r| ev.at.0 <= r.saturating_add(self.max_skew_ms)) {
                        self.clock.observe_event(ev.at, &ev.kind);
                    }
                    self.route_event(ev, out);
                }
                self.events = events;
                self.sweep();
                Ok(Outcome::Routed {
                    events: n,
                    records: out.len() - before,
                    late,
                })
            }
        }
    }

    fn partition_of(&self, hash: u64) -> i32 {
        (hash % self.partitions as u64) as i32
    }

    /// The message an id's state lives with: the original, for a reshare the router knows.
    fn home(&self, id: &str) -> u64 {
        self.reshares
            .get(id)
            .map_or_else(|| xxh3_64(id.as_bytes()), |&(original, _)| original)
    }

    fn route_event(&mut self, ev: &Event<'_>, out: &mut Vec<Routed>) {
        let mut homes: [Option<u64>; 3] = [None; 3];
        match &ev.kind {
            EventKind::Post {
                id, reply_to, quote_of, ..
            } => {
                homes[0] = Some(xxh3_64(id.as_bytes()));
                homes[1] = reply_to.as_deref().map(|r| self.home(r));
                homes[2] = quote_of.as_deref().map(|q| self.home(q));
            }
            EventKind::Reshare { id, of, .. } => {
                let original = self.home(of);
                self.reshares.insert(CompactString::new(id), (original, ev.at.0));
                homes[0] = Some(original);
            }
            EventKind::Delete { id, .. }
            | EventKind::Restrict { id, .. }
            | EventKind::Restore { id, .. }
            | EventKind::Label { id, .. }
            | EventKind::Report { id, .. }
            | EventKind::Impressions { id, .. } => homes[0] = Some(self.home(id)),
            EventKind::Account { user, .. } => {
                let value = ev.to_json().into_bytes();
                let key = format!("{:016x}", xxh3_64(user.as_bytes())).into_bytes();
                for partition in 0..self.partitions {
                    out.push(Routed {
                        partition,
                        key: key.clone(),
                        value: value.clone(),
                    });
                }
                return;
            }
        }
        let value = ev.to_json().into_bytes();
        let mut sent: [i32; 3] = [-1; 3];
        for (i, h) in homes.into_iter().enumerate() {
            let Some(h) = h else { continue };
            let partition = self.partition_of(h);
            if sent.contains(&partition) {
                continue;
            }
            sent[i] = partition;
            out.push(Routed {
                partition,
                key: format!("{h:016x}").into_bytes(),
                value: value.clone(),
            });
        }
    }

    /// Forgets reshares older than the retention horizon: the engine has evicted their
    /// messages by then, so a late delete of one has nothing left to change.
    fn sweep(&mut self) {
        let now = self.now();
        if now < self.next_sweep || now == i64::MIN {
            return;
        }
        let horizon = now.saturating_sub(self.retention_ms);
        self.reshares.retain(|_, &mut (_, at)| at >= horizon);
        self.next_sweep = now.saturating_add((self.retention_ms / 8).max(1));
    }

    /// The router's state as bytes, for [`Router::restore`].
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        let mut reshares: Vec<(String, u64, i64)> = self
            .reshares
            .iter()
            .map(|(r, &(o, at))| (r.to_string(), o, at))
            .collect();
        reshares.sort_unstable();
        let saved = Saved {
            reader_clock: times(self.reader.stream_clock()),
            sse_event: self.reader.pending_sse_event().map(str::to_owned),
            reshares,
            clock: self.clock.clone(),
            next_sweep: self.next_sweep,
        };
        frame::seal(MAGIC, FORMAT, &[], 40 + self.reshares.len() * 64, |out| {
            postcard::to_extend(&saved, out).expect("serializing to a Vec cannot fail")
        })
    }

    /// A router in the state `bytes` were taken from.
    pub(crate) fn restore(
        format: Format,
        partitions: i32,
        stream: &Stream,
        bytes: &[u8],
    ) -> Result<Router, RouterSnapshotError> {
        let (_, body) = frame::open::<0>(MAGIC, FORMAT, bytes).map_err(|e| match e {
            FrameError::NotAFrame => RouterSnapshotError::NotASnapshot,
            FrameError::Format { found, expected } => RouterSnapshotError::Format { found, expected },
            FrameError::Checksum => RouterSnapshotError::Damaged("checksum mismatch".to_owned()),
        })?;
        let saved: Saved = postcard::from_bytes(body).map_err(|e| RouterSnapshotError::Damaged(e.to_string()))?;
        let mut r = Router::new(format, partitions, stream);
        r.reader = Reader::resume(format, stream_clock(saved.reader_clock), saved.sse_event);
        r.reshares = saved
            .reshares
            .into_iter()
            .map(|(rs, o, at)| (CompactString::from(rs), (o, at)))
            .collect();
        r.clock = saved.clock;
        r.next_sweep = saved.next_sweep;
        Ok(r)
    }
}

/// Why a router snapshot could not be restored. The caller rebuilds the state another way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterSnapshotError {
    #[error("not a router snapshot")]
    NotASnapshot,
    #[error("router snapshot format {found}; this build reads format {expected}")]
    Format { found: u32, expected: u32 },
    #[error("router snapshot damaged: {0}")]
    Damaged(String),
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    /// The policy's stream settings with this retention horizon.
    fn stream(retention_secs: u64) -> Stream {
        Stream {
            retention_secs,
            ..modsignal_core::Policy::default().stream
        }
    }

    fn part(id: &str, n: i32) -> i32 {
        (xxh3_64(id.as_bytes()) % n as u64) as i32
    }

    fn route(r: &mut Router, line: &str) -> Vec<Routed> {
        let mut out = Vec::new();
        r.route(line.as_bytes(), None, &mut out).unwrap();
        out
    }

    fn partitions(routed: &[Routed]) -> Vec<i32> {
        routed.iter().map(|r| r.partition).collect()
    }

    #[test]
    fn events_go_to_the_partition_of_the_message_they_change() {
        let n = 16;
        let mut r = Router::new(Format::Canonical, n, &stream(604_800));
        let post = route(
            &mut r,
            r#"{"type":"post","at":"2026-01-01T00:00:00Z","id":"m1","author":{"id":"a"}}"#,
        );
        assert_eq!(partitions(&post), vec![part("m1", n)]);
        // The canonical event is what travels, whatever the input format.
        let v: serde_json::Value = serde_json::from_slice(&post[0].value).unwrap();
        assert_eq!(v["id"], "m1");

        let reshare = route(
            &mut r,
            r#"{"type":"reshare","at":"2026-01-01T00:01:00Z","id":"r1","of":"m1","author":{"id":"b"}}"#,
        );
        assert_eq!(partitions(&reshare), vec![part("m1", n)]);
        // A reshare of the reshare, and the reshare's delete, go with the original too.
        let again = route(
            &mut r,
            r#"{"type":"reshare","at":"2026-01-01T00:02:00Z","id":"r2","of":"r1","author":{"id":"c"}}"#,
        );
        assert_eq!(partitions(&again), vec![part("m1", n)]);
        for line in [
            r#"{"type":"delete","at":"2026-01-01T00:03:00Z","id":"r2","by":"author"}"#,
            r#"{"type":"label","at":"2026-01-01T00:03:00Z","id":"r1","category":"credible_threat","source":"c"}"#,
            r#"{"type":"impressions","at":"2026-01-01T00:03:00Z","id":"m1","count":5}"#,
        ] {
            assert_eq!(partitions(&route(&mut r, line)), vec![part("m1", n)], "{line}");
        }
        let account = route(
            &mut r,
            r#"{"type":"account","at":"2026-01-01T00:04:00Z","user":"a","status":"suspended"}"#,
        );
        assert_eq!(partitions(&account), (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn a_reply_and_a_quote_also_reach_the_messages_they_answer() {
        let n = 64;
        let mut r = Router::new(Format::Canonical, n, &stream(604_800));
        let routed = route(
            &mut r,
            r#"{"type":"post","at":"2026-01-01T00:00:00Z","id":"m2","author":{"id":"a"},"reply_to":"m1","quote_of":"m0"}"#,
        );
        let mut want = vec![part("m2", n), part("m1", n), part("m0", n)];
        want.dedup();
        assert_eq!(partitions(&routed), want);
        // One partition gets one copy, however many of the ids it owns.
        let mut one = Router::new(Format::Canonical, 1, &stream(604_800));
        let routed = route(
            &mut one,
            r#"{"type":"post","at":"2026-01-01T00:00:00Z","id":"m2","author":{"id":"a"},"reply_to":"m1"}"#,
        );
        assert_eq!(partitions(&routed), vec![0]);
    }

    #[test]
    fn jetstream_repost_deletes_follow_their_subject() {
        let n = 8;
        let mut r = Router::new(Format::Jetstream, n, &stream(604_800));
        let subject = "at://did:plc:aaa/app.bsky.feed.post/3lbhp";
        let repost = route(
            &mut r,
            r#"{"did":"did:plc:ddd","time_us":1732206400000000,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.repost","rkey":"3mbir","record":{"subject":{"uri":"at://did:plc:aaa/app.bsky.feed.post/3lbhp","cid":"bafy1"}}}}"#,
        );
        assert_eq!(partitions(&repost), vec![part(subject, n)]);
        let delete = route(
            &mut r,
            r#"{"did":"did:plc:ddd","time_us":1732206500000000,"kind":"commit","commit":{"operation":"delete","collection":"app.bsky.feed.repost","rkey":"3mbir"}}"#,
        );
        assert_eq!(partitions(&delete), vec![part(subject, n)]);
        let mut out = Vec::new();
        assert_eq!(
            r.route(
                br#"{"did":"did:plc:ddd","time_us":1,"kind":"identity"}"#,
                None,
                &mut out
            )
            .unwrap(),
            Outcome::Skipped("identity")
        );
        assert_eq!(r.route(b"{nope", None, &mut out).unwrap_err().code(), "invalid_json");
        assert!(out.is_empty());
    }

    #[test]
    fn a_restored_router_routes_as_before_and_forgets_old_reshares() {
        let n = 32;
        let mut r = Router::new(Format::Canonical, n, &stream(3600));
        route(
            &mut r,
            r#"{"type":"reshare","at":"2026-01-01T00:00:00Z","id":"r1","of":"m1","author":{"id":"b"}}"#,
        );
        let bytes = r.snapshot();
        let mut back = Router::restore(Format::Canonical, n, &stream(3600), &bytes).unwrap();
        assert_eq!(back.len(), 1);
        let del = r#"{"type":"delete","at":"2026-01-01T00:10:00Z","id":"r1","by":"author"}"#;
        assert_eq!(partitions(&route(&mut back, del)), vec![part("m1", n)]);
        let mut damaged = bytes.clone();
        damaged[14] ^= 1;
        assert!(Router::restore(Format::Canonical, n, &stream(3600), &damaged).is_err());
        // Two hours later (in two events: one alone does not move event time) the reshare is
        // past the horizon and forgotten.
        for id in ["m9", "m10"] {
            route(
                &mut back,
                &format!(r#"{{"type":"post","at":"2026-01-01T02:00:00Z","id":"{id}","author":{{"id":"z"}}}}"#),
            );
        }
        assert_eq!(back.len(), 0);
    }

    /// Two reshare ids with one xxh3-64 hash each keep their own original (a hash would have
    /// sent one's delete to the other's partition), and a record stamped far after its
    /// timestamp moves no watermark mark.
    #[test]
    fn reshares_are_kept_by_whole_id_and_the_future_moves_no_mark() {
        let n = 64;
        let (a, b) = (
            "at://did:plc:attacker0000000000000000/app.bsky.feed.post/glqat3y3mtepl",
            "at://did:plc:attacker0000000000000000/app.bsky.feed.post/c7b2ajjvotfd3",
        );
        assert_eq!(xxh3_64(a.as_bytes()), xxh3_64(b.as_bytes()));
        let mut r = Router::new(Format::Canonical, n, &stream(3600));
        for (id, of) in [(a, "m1"), (b, "m2")] {
            route(
                &mut r,
                &format!(
                    r#"{{"type":"reshare","at":"2026-01-01T00:00:00Z","id":"{id}","of":"{of}","author":{{"id":"x"}}}}"#
                ),
            );
        }
        let del = |id: &str| format!(r#"{{"type":"delete","at":"2026-01-01T00:01:00Z","id":"{id}","by":"author"}}"#);
        assert_eq!(partitions(&route(&mut r, &del(a))), vec![part("m1", n)]);
        assert_eq!(partitions(&route(&mut r, &del(b))), vec![part("m2", n)]);
        let mark = r.mark(false).expect("a mark").0;
        assert!(mark.1.is_some(), "two events: {mark:?}");
        let received = Ts::parse_rfc3339("2026-01-01T00:02:00Z").unwrap().0;
        let mut out = Vec::new();
        for id in ["f1", "f2"] {
            let future = format!(r#"{{"type":"post","at":"2199-01-01T00:00:00Z","id":"{id}","author":{{"id":"x"}}}}"#);
            r.route(future.as_bytes(), Some(received), &mut out).unwrap();
        }
        assert_eq!(out.len(), 2, "routed, for the engine to set aside");
        assert_eq!(r.mark(false), None, "event time still {mark:?}");
        assert_eq!(r.mark(true).map(|m| (m.0, m.1)), Some((mark, true)), "idle is news");
    }

    /// A format-1 snapshot (hashes of ids) is refused with its format named, so the partition
    /// is rebuilt by replay; format-2 snapshots restore and are written the same again.
    #[test]
    fn snapshots_keep_the_bytes_they_were_written_in() {
        const FORMAT_1: &str = "6d6f64726f757465010000000180a0d5edee660001d3cec5e0a3e4bfc1c0019da585aeded6eaf6f40180a0d5edee6680a0d5edee66a0978ceeee66ff05effb05feae7e";
        let old: Vec<u8> = (0..FORMAT_1.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&FORMAT_1[i..i + 2], 16).unwrap())
            .collect();
        let err = Router::restore(Format::Canonical, 4, &stream(3600), &old)
            .err()
            .expect("refused");
        assert_eq!(err, RouterSnapshotError::Format { found: 1, expected: 2 });
        assert_eq!(err.to_string(), "router snapshot format 1; this build reads format 2");
        const WRITTEN_BEFORE: &str = "6d6f64726f757465020000000180a0d5edee660000010272319da585aeded6eaf6f40180a0d5edee6680a0d5edee6601027231ffffffffffffffffff01ffffffffffffffffff01d6434f65a576a38f";
        let mut r = Router::new(Format::Canonical, 4, &stream(3600));
        route(
            &mut r,
            r#"{"type":"reshare","at":"2026-01-01T00:00:00Z","id":"r1","of":"m1","author":{"id":"b"}}"#,
        );
        let hex = |bytes: &[u8]| {
            bytes.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
        };
        assert_eq!(hex(&r.snapshot()), WRITTEN_BEFORE);
        let bytes: Vec<u8> = (0..WRITTEN_BEFORE.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&WRITTEN_BEFORE[i..i + 2], 16).unwrap())
            .collect();
        let back = Router::restore(Format::Canonical, 4, &stream(3600), &bytes).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back.snapshot(), bytes);
    }
}
