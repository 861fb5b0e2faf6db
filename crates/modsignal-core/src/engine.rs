//! The engine: applies events to state and emits flags when an evaluation changes materially.
//!
//! Every update is a join on a lattice (a sum over a set of distinct ids, a maximum, a
//! last-writer-wins register ordered by event time, a sorted set of removal changes), so that
//! the state after a set of events does not depend on the order they came in or on how often
//! each came. Flags are computed from that state and the watermark only, and a flag's revision
//! is a sum of monotone measures of that state, so it grows with every change and the same
//! state always carries the same revision.
//!
//! The people this engine watches write its input, so the work one event causes and the
//! memory one key holds are bounded whatever the input:
//!
//! - ids are kept and compared whole ([`crate::store`]);
//! - an event stamped too far ahead of its reference time is rejected as `future`, and event
//!   time is the newest time seen in at least two events, so one record never moves it;
//! - a reshare updates the reach of at most `limits.chain_levels` reshares above it, a
//!   placeholder that turns out to be a reshare hands its reshares over in constant time, and
//!   repeated conduct and virtual mobbing are counted from per-sender and per-target indexes;
//! - the evaluation of a labelled message's subjects is paid for by a work credit that its own
//!   events earn ([`hot`]): what the credit does not cover waits for the streaming worker's
//!   flush, an exposure timer or the end of input, and is never dropped;
//! - a flag is written again for a change that is not news at most once per
//!   `emission.min_interval_secs` of event time;
//! - per-key lists are capped (`[limits]`), and input beyond a cap is rejected with its reason.
//!
//! The child modules split the engine along its seams: `ingest` applies each kind of event,
//! `hot` keeps labelled messages' per-resharer state, `conduct` the per-sender and per-target
//! indexes, `emit` evaluates subjects and decides what is written, `retention` drops what has
//! been quiet for the retention horizon, `snapshot` saves and restores the whole state, `clock`
//! keeps event time and combines the sources of an input, and `reports` holds the reports on
//! each message.

use std::collections::{BTreeMap, BTreeSet};

use hashbrown::HashMap;

use crate::cohort::Cohort;
use crate::event::{Category, Event, RemovedBy};
use crate::exposure::Change;
use crate::flag::Flag;
use crate::model::RemovalKind;
use crate::policy::Policy;
use crate::reject::RejectCode;
use crate::store::{HotIx, Id, IdSet, MsgIx, NONE, Store, UserIx, Users};
use crate::time::Ts;

mod clock;
mod conduct;
mod emit;
mod hot;
mod ingest;
mod reports;
mod retention;
pub mod snapshot;
mod via;

pub use clock::{EventClock, EventTimes, InputTime, SourceMark, combined_event_time};
pub use emit::{Material, RevisionParts, revision, signature};

use conduct::{Conducts, Targets};
use emit::Pass;
use hot::Hot;
use reports::Reports;

/// Why an event could not be applied. The event is set aside; nothing else is affected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    #[error("id `{0}` is used both for a post and for a reshare")]
    KindConflict(String),
    #[error("reshare `{0}` reshares itself")]
    SelfReshare(String),
    /// The event is stamped further ahead of its reference time than the policy allows; it is
    /// not applied, so it cannot move event time.
    #[error(
        "stamped {at}, more than {limit_secs}s after the {basis} {reference} (stream.{setting}); \
         if the stream really jumps ahead, raise stream.{setting}"
    )]
    Future {
        at: Ts,
        reference: Ts,
        basis: &'static str,
        setting: &'static str,
        limit_secs: u64,
    },
    /// A per-key bound of the policy's `[limits]` would be exceeded.
    #[error("`{id}` already holds {limit} {what} (limits.{setting})")]
    Limit {
        id: String,
        what: &'static str,
        setting: &'static str,
        limit: u32,
    },
}

impl ApplyError {
    /// The bounded reason code used in reject files, dead-letter headers and metrics.
    pub fn code(&self) -> RejectCode {
        match self {
            ApplyError::KindConflict(_) => RejectCode::KindConflict,
            ApplyError::SelfReshare(_) => RejectCode::SelfReshare,
            ApplyError::Future { .. } => RejectCode::Future,
            ApplyError::Limit { .. } => RejectCode::Limit,
        }
    }
}

/// What applying one event did, for the caller's counters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Outcome {
    /// Older than the watermark: applied all the same.
    pub late: bool,
    /// Dropped as a repeat of an `event_id` already seen within the lateness bound.
    pub duplicate: bool,
    /// A message or reshare seen for the first time came down with this event.
    pub removal: Option<RemovalSeen>,
}

/// A first removal, as [`Outcome::removal`] reports it for the adapters' metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemovalSeen {
    /// [`RemovalKind::Deleted`] or [`RemovalKind::Blocked`].
    pub kind: RemovalKind,
    pub by: RemovedBy,
    /// From the post (or reshare) to this removal, in event time.
    pub seconds_up: u64,
    /// The audience of a labelled message (its author's followers and every resharer's) as
    /// last measured, when the removed id is such a message; `None` for reshares and for
    /// messages nobody labelled, whose audience is not tracked.
    pub audience: Option<u64>,
}

/// Counters of what is in state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateStats {
    pub messages: usize,
    pub reshares: usize,
    pub labelled: usize,
    pub users: usize,
    /// Messages dropped from state after the retention horizon, since the start.
    pub evicted: u64,
    pub watermark: Option<Ts>,
    /// Units of work done since the start: evaluations and the steps they took, walks up
    /// reshare chains, rebuilds. A deterministic measure of cost, for tests that check that
    /// work per event stays bounded whatever the input.
    pub work: u64,
}

/// Who in a message is to be evaluated, as the dirty lists and the timers hold it: every
/// subject, the author, or the subjects who are one account (a resharer's, or the author's).
///
/// Four bytes, as an account handle is, so that a timer stays 16 bytes: the two highest values,
/// which no handle reaches (the account slab would need four billion accounts first), stand for
/// every subject and for the author. Code reads it only through [`Who::get`] and
/// [`Who::handle`], never as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct Who(u32);

/// What a [`Who`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Subjects {
    All,
    Author,
    /// The subjects whose account has this handle.
    Account(UserIx),
}

impl Who {
    pub(crate) const ALL: Who = Who(NONE);
    pub(crate) const AUTHOR: Who = Who(NONE - 1);

    /// The subjects whose account has handle `u`.
    pub(crate) fn account(u: UserIx) -> Who {
        debug_assert!(u.0 < NONE - 1, "account handle {u:?} collides with a reserved value");
        Who(u.0)
    }

    pub(crate) fn get(self) -> Subjects {
        match self {
            Who::ALL => Subjects::All,
            Who::AUTHOR => Subjects::Author,
            Who(u) => Subjects::Account(UserIx(u)),
        }
    }

    /// The account handle, for [`Subjects::Account`].
    pub(crate) fn handle(self) -> Option<UserIx> {
        match self.get() {
            Subjects::Account(u) => Some(u),
            Subjects::All | Subjects::Author => None,
        }
    }
}

pub struct Engine {
    policy: Policy,
    store: Store,
    users: Users,
    /// Removal changes per message or reshare id (also of ids not seen yet), sorted.
    removals: HashMap<Id, Vec<Change>>,
    /// Status changes per account, sorted.
    accounts: HashMap<UserIx, Vec<Change>>,
    reports: HashMap<MsgIx, Reports>,
    hot: Vec<Hot>,
    /// Per sender: the labelled messages they are a subject of, for repeated conduct.
    conduct: Conducts,
    /// Per person targeted: the labelled messages aimed at them, for virtual mobbing.
    targets: Targets,
    /// Reshares whose `via` cannot be followed yet, by the id it names.
    via: via::Waiting,
    /// Exposure stages and rate-limited writes due: (event time, message, subject).
    timers: BTreeSet<(i64, MsgIx, Who)>,
    queue: Vec<HotIx>,
    /// Hot messages with work held back for lack of credit: the next flush (or the end of
    /// input) does it.
    stale: Vec<HotIx>,
    /// Senders and people targeted whose other messages must be evaluated again, when there
    /// were too many to do at once: the next flush (or the end of input, or a retention sweep)
    /// does it.
    deferred_users: Vec<UserIx>,
    deferred_targets: Vec<UserIx>,
    /// Accounts whose follower count grew while they had reshared too many labelled messages
    /// to update at once: those messages' sums are rebuilt at the next flush.
    deferred_growth: Vec<UserIx>,
    /// Labelled messages with too many subjects to sync their conduct entries at once.
    deferred_sync: Vec<MsgIx>,
    clock: EventClock,
    /// What each source (an input partition feeding this engine) last said of its event time.
    marks: BTreeMap<String, SourceMark>,
    /// The sources declared by [`Engine::expect_sources`]; `None` when the engine follows its
    /// own events. Not in the snapshot: the adapter declares them again after a restore.
    sources: Option<BTreeSet<String>>,
    /// Event time as the sources allow it ([`InputTime::Slowest`]), when declared.
    source_time: Option<i64>,
    /// A floor under the watermark, raised by `finish` and `advance_to` (end of input, idle).
    wm_floor: i64,
    /// Watermark at which the next retention sweep runs.
    next_sweep: i64,
    /// Hot slots free for reuse.
    hot_free: Vec<HotIx>,
    evicted: u64,
    seen_ids: [IdSet; 2],
    seen_since: i64,
    work: u64,
    /// Whether the debug builds check revisions against what was written before (see
    /// [`Engine::distrust_revisions`]).
    revisions_trusted: bool,
    /// The members a settle pass lists for the message it is settling, by category; empty
    /// between messages.
    cohort_roll: Vec<(Category, crate::cohort::Member, Ts)>,
    /// Cohort pages written and not yet taken by the adapter ([`Engine::take_cohorts`]).
    cohorts_out: Vec<Cohort>,
}

/// Most related messages (a sender's other labelled messages, others aimed at the same person)
/// evaluated again at once after a change; a sender or target with more waits for the flush.
const RELATED_AT_ONCE: usize = 64;

impl Engine {
    pub fn new(policy: Policy) -> Engine {
        Engine {
            policy,
            store: Store::new(),
            users: Users::new(),
            removals: HashMap::new(),
            accounts: HashMap::new(),
            reports: HashMap::new(),
            hot: Vec::new(),
            conduct: Conducts::default(),
            targets: Targets::default(),
            via: via::Waiting::default(),
            timers: BTreeSet::new(),
            queue: Vec::new(),
            stale: Vec::new(),
            deferred_users: Vec::new(),
            deferred_targets: Vec::new(),
            deferred_growth: Vec::new(),
            deferred_sync: Vec::new(),
            clock: EventClock::default(),
            marks: BTreeMap::new(),
            sources: None,
            source_time: None,
            wm_floor: i64::MIN,
            next_sweep: i64::MIN,
            hot_free: Vec::new(),
            evicted: 0,
            seen_ids: [IdSet::new(), IdSet::new()],
            seen_since: i64::MIN,
            work: 0,
            revisions_trusted: true,
            cohort_roll: Vec::new(),
            cohorts_out: Vec::new(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Stops the debug builds' check that a flag written again carries a higher revision, for
    /// a fuzzer that restores snapshots it forged: their recorded revisions can be anything, and
    /// a snapshot is trusted once its checksum holds (see [`Engine::restore`]).
    #[doc(hidden)]
    pub fn distrust_revisions(&mut self) {
        self.revisions_trusted = false;
    }

    fn lateness_ms(&self) -> i64 {
        self.policy.stream.lateness_secs as i64 * 1000
    }

    /// The watermark: event time less the lateness bound. Event time is the newest time seen
    /// in two events, or, with sources declared ([`Engine::expect_sources`]), the event time of
    /// the slowest source that is not idle, so that a partition read ahead of the others never
    /// makes their events late.
    pub fn watermark(&self) -> Option<Ts> {
        let time = match self.sources {
            None => self.clock.time(),
            Some(_) => self.source_time,
        };
        time.map(|t| Ts((t - self.lateness_ms()).max(self.wm_floor)))
            .or((self.wm_floor != i64::MIN).then_some(Ts(self.wm_floor)))
    }

    /// Event time (the newest time seen in at least two events; before two, the one seen), if
    /// any event was applied: what a worker tells the other partitions of its input about
    /// event time, and what [`Engine::finish`] moves the watermark to.
    pub fn newest_event(&self) -> Option<Ts> {
        self.clock
            .time()
            .or((self.clock.newest != i64::MIN).then_some(self.clock.newest))
            .map(Ts)
    }

    /// The watermark as a number, `i64::MIN` before the first event.
    fn wm(&self) -> i64 {
        self.watermark().map_or(i64::MIN, |w| w.0)
    }

    pub fn stats(&self) -> StateStats {
        StateStats {
            messages: self.store.msgs.live() - self.forwarding(),
            reshares: self.store.rss.live(),
            labelled: self.hot.iter().filter(|h| h.msg != MsgIx::NONE).count(),
            users: self.users.len(),
            evicted: self.evicted,
            watermark: self.watermark(),
            work: self.work,
        }
    }

    /// Forwarding records still in the message slab (not messages of their own).
    fn forwarding(&self) -> usize {
        let free = self.store.msgs.free_bits();
        self.store
            .msgs
            .handles()
            .filter(|&m| !free[m.usize()] && self.store.msgs.get(m).forwards())
            .count()
    }

    /// Applies one event and appends the flags whose evaluation changed materially. An event
    /// stamped more than `stream.max_jump_secs` after event time is rejected as `future`.
    pub fn apply(&mut self, ev: &Event<'_>, out: &mut Vec<Flag>) -> Result<Outcome, ApplyError> {
        self.apply_at(ev, None, out)
    }

    /// [`Engine::apply`] for an event an adapter received at `ingest` (a Kafka record's
    /// timestamp, or the reader's clock): an event stamped more than `stream.max_skew_secs`
    /// after it is rejected as `future`. The core reads no clock; the adapter vouches for this
    /// time.
    pub fn apply_at(&mut self, ev: &Event<'_>, ingest: Option<Ts>, out: &mut Vec<Flag>) -> Result<Outcome, ApplyError> {
        let at = ev.at.0;
        self.check_time(ev.at, ingest)?;
        let mut outcome = Outcome {
            late: self.watermark().is_some_and(|w| ev.at < w),
            ..Outcome::default()
        };
        if let Some(eid) = &ev.event_id
            && !self.first_sighting(eid, at)
        {
            outcome.duplicate = true;
            return Ok(outcome);
        }
        let ingested = self.ingest(&ev.kind, at);
        // An event refused for what it says (an id used for both a post and a reshare, a chain
        // of reshares that closes on itself, a bound of the policy) is still an event of the
        // stream, stamped within what the time rule accepts: it moves event time as any other.
        // Of two events that contradict each other, whichever comes second is refused, so if
        // refused events moved no time, the watermark, and with it every flag's time, would
        // depend on the order they came in.
        self.advance(at, &ev.kind);
        self.drain(out, Pass::Paid);
        self.maybe_sweep(out);
        outcome.removal = ingested?;
        Ok(outcome)
    }

    /// Whether an event stamped `at`, received at `ingest` (if known), would be accepted by
    /// the rule for time from the future; [`Engine::apply_at`] applies this rule first.
    pub fn check_time(&self, at: Ts, ingest: Option<Ts>) -> Result<(), ApplyError> {
        let at = at.0;
        let s = &self.policy.stream;
        let (reference, limit_secs, basis, setting) = match (ingest, self.clock.time()) {
            (Some(t), _) => (t.0, s.max_skew_secs, "time it was received", "max_skew_secs"),
            (None, Some(t)) => (t, s.max_jump_secs, "event time of the stream so far", "max_jump_secs"),
            (None, None) => return Ok(()),
        };
        if at > reference.saturating_add(limit_secs as i64 * 1000) {
            return Err(ApplyError::Future {
                at: Ts(at),
                reference: Ts(reference),
                basis,
                setting,
                limit_secs,
            });
        }
        Ok(())
    }

    /// The two newest event times of this engine's input ([`EventClock::times`]): what a
    /// partition publishes for the others to combine with [`combined_event_time`].
    pub fn event_times(&self) -> EventTimes {
        self.clock.times()
    }

    /// Declares the sources of this engine's input: the input partitions whose events reach it
    /// (through the router, or shared through a watermark topic). From then on event time is
    /// not what the engine's own events say but what the sources allow ([`Engine::input_time`]):
    /// the event time of the slowest source that is not idle, as Flink's and Kafka Streams'
    /// stream time are the minimum over their inputs. A source that said nothing yet holds
    /// event time where it is; once every source is idle, the watermark moves to the event time
    /// of the whole input, as at the end of a file. Declaring again replaces the set; sources
    /// that sent marks without being declared count as well.
    pub fn expect_sources(&mut self, names: impl IntoIterator<Item = String>, out: &mut Vec<Flag>) {
        self.sources = Some(names.into_iter().collect());
        self.follow_sources(out);
    }

    /// A mark from `source`: its two newest event times, and whether it is idle. Event time
    /// moves as [`Engine::input_time`] then says, and what the exposure timers say has changed
    /// is written. Without declared sources, marks are kept and, once every source that sent
    /// one is idle, move the watermark to their combined event time.
    pub fn source_mark(&mut self, source: &str, times: EventTimes, idle: bool, out: &mut Vec<Flag>) {
        let mark = SourceMark::new(times, idle);
        match self.marks.get_mut(source) {
            Some(m) if *m == mark => return,
            Some(m) => *m = mark,
            None => {
                self.marks.insert(source.to_owned(), mark);
            }
        }
        self.follow_sources(out);
    }

    /// How far the sources let event time go.
    pub fn input_time(&self) -> InputTime {
        let Some(expected) = &self.sources else {
            return InputTime::Own;
        };
        let mut slowest: Option<i64> = None;
        let mut all_idle = true;
        for name in expected {
            if !self.marks.contains_key(name) {
                return InputTime::Held;
            }
        }
        for mark in self.marks.values().filter(|m| !m.idle) {
            all_idle = false;
            let Some(t) = mark.second.or(mark.newest) else {
                return InputTime::Held;
            };
            slowest = Some(slowest.map_or(t, |s| s.min(t)));
        }
        match slowest {
            Some(t) => InputTime::Slowest(Ts(t)),
            None if all_idle => InputTime::Idle(combined_event_time(self.marks.values().map(SourceMark::times))),
            None => InputTime::Held,
        }
    }

    /// The marks of every source, by name.
    pub fn source_marks(&self) -> &BTreeMap<String, SourceMark> {
        &self.marks
    }

    /// Moves event time as the sources say.
    fn follow_sources(&mut self, out: &mut Vec<Flag>) {
        match self.input_time() {
            InputTime::Own => {
                // Marks without declared sources: the router's marks before sources were
                // declared, or a test. Once all are idle, the input is quiet everywhere.
                if !self.marks.is_empty()
                    && self.marks.values().all(|m| m.idle)
                    && let Some(at) = combined_event_time(self.marks.values().map(SourceMark::times))
                {
                    self.advance_to(at, out);
                }
            }
            InputTime::Held => {}
            InputTime::Slowest(t) => {
                if self.source_time.is_none_or(|s| t.0 > s) {
                    self.source_time = Some(t.0);
                    self.fire_timers();
                    self.drain(out, Pass::Paid);
                    self.maybe_sweep(out);
                }
            }
            InputTime::Idle(at) => {
                if let Some(at) = at {
                    self.source_time = Some(self.source_time.map_or(at.0, |s| s.max(at.0)));
                    self.advance_to(at, out);
                }
            }
        }
    }

    /// Moves the watermark to `at` (if that is later) without an event, and writes what the
    /// exposure timers say has changed: for a worker whose input is idle but whose clock
    /// (event time elsewhere) has moved on.
    pub fn advance_to(&mut self, at: Ts, out: &mut Vec<Flag>) {
        self.wm_floor = self.wm_floor.max(at.0);
        self.fire_timers();
        self.drain(out, Pass::Paid);
    }

    /// Does the work held back (evaluations beyond a message's credit, related messages of a
    /// busy sender or target, rebuilds of reach sums) and writes what the emission rules say
    /// of it. A streaming worker calls this on a timer, so that such work is delayed, never
    /// dropped; file mode needs only [`Engine::finish`]. It does not write changes the rules
    /// hold back (a material change within `emission.min_interval_secs`, which its timer
    /// writes; a change that is not material, which [`Engine::finish`] writes once the input
    /// is quiet).
    pub fn flush(&mut self, out: &mut Vec<Flag>) {
        self.release_all_deferred();
        for h in std::mem::take(&mut self.stale) {
            let hot = &mut self.hot[h.usize()];
            hot.stale = false;
            // Its dirty list (and its restructured mark) says what is left to do.
            if hot.msg != MsgIx::NONE && !hot.queued {
                hot.queued = true;
                self.queue.push(h);
            }
        }
        self.drain(out, Pass::Flush);
    }

    /// End of input: the watermark moves to event time, every labelled message is evaluated,
    /// and every flag whose state differs from what was last written is written, in `flag_id`
    /// order. With sources declared ([`Engine::expect_sources`]) and one of them still being
    /// read, the input has not ended: the watermark stays where the slowest source holds it
    /// and only the evaluation and writing are done.
    pub fn finish(&mut self, out: &mut Vec<Flag>) {
        // The watermark moves to event time and stays there: calling this again, with or
        // without events in between, never moves it past an event. Not while a declared source
        // is behind: its events, older than this engine's newest, would all be late, and
        // what the watermark evicts or closes meanwhile would differ from file mode.
        if matches!(self.input_time(), InputTime::Own | InputTime::Idle(_))
            && let Some(t) = self.newest_event()
        {
            self.wm_floor = self.wm_floor.max(t.0);
        }
        self.fire_timers();
        let start = out.len();
        // Every rebuild and sync held back is done before anything is settled, so that no flag
        // is settled while work elsewhere could still change what it reads.
        self.do_held_work(out);
        for h in 0..self.hot.len() {
            let hot = &mut self.hot[h];
            hot.stale = false;
            if hot.msg != MsgIx::NONE {
                hot.dirty_all = true;
                if !hot.queued {
                    hot.queued = true;
                    self.queue.push(HotIx(h as u32));
                }
            }
        }
        let cohorts = self.cohorts_out.len();
        self.drain(out, Pass::Settle);
        out[start..].sort_by(|a, b| a.flag_id.cmp(&b.flag_id));
        self.cohorts_out[cohorts..].sort_by(|a, b| (&a.cohort_id, a.page).cmp(&(&b.cohort_id, b.page)));
    }

    /// Moves the resharer cohort pages written since the last call to `out` (see
    /// [`crate::cohort`]). Cohorts are written only when the input is quiet: by
    /// [`Engine::finish`], by a source going idle, and by a retention sweep settling a message
    /// before it goes; an adapter takes them after each call that writes flags, and before it
    /// takes a snapshot, which does not hold them.
    #[inline]
    pub fn take_cohorts(&mut self, out: &mut Vec<Cohort>) {
        // Called after every event by file mode: nearly always with nothing to move.
        if !self.cohorts_out.is_empty() {
            out.append(&mut self.cohorts_out);
        }
    }

    /// Flushes until no work is held back: a rebuild done by one flush can defer work (related
    /// messages to mark, another rebuild) to the next. A settled flag reads its sender's
    /// conduct from the indexes, and a message whose rebuild waits has not registered its
    /// resharers there yet: settling before it would write a count short (found comparing
    /// viral runs, a resharer's repeated conduct read 1 for 2). Each flush does what the one
    /// before deferred, and deferred work does not defer more of its kind for ever; the cap
    /// only bounds the loop against a mistake.
    fn do_held_work(&mut self, out: &mut Vec<Flag>) {
        for _ in 0..8 {
            self.flush(out);
            if !self.holds_work() {
                break;
            }
        }
    }

    /// Whether any work waits for a flush: a rebuild or evaluation held for lack of credit, or
    /// senders, targets, follower growth or conduct syncs deferred for being too many at once.
    fn holds_work(&self) -> bool {
        !(self.stale.is_empty()
            && self.deferred_users.is_empty()
            && self.deferred_targets.is_empty()
            && self.deferred_growth.is_empty()
            && self.deferred_sync.is_empty())
    }

    /// Marks the hot messages of deferred senders and targets for evaluation.
    fn release_deferred(&mut self) {
        let mut users = std::mem::take(&mut self.deferred_users);
        users.sort_unstable();
        users.dedup();
        for u in users {
            for m in self.conduct.messages(u) {
                self.mark(m, Who::account(u));
            }
        }
        let mut targets = std::mem::take(&mut self.deferred_targets);
        targets.sort_unstable();
        targets.dedup();
        for t in targets {
            for m in self.targets.messages(t) {
                self.mark(m, Who::ALL);
            }
        }
    }

    fn first_sighting(&mut self, id: &str, at: i64) -> bool {
        if self.seen_ids.iter().any(|s| s.contains(id)) {
            return false;
        }
        // Two generations, each spanning at least the lateness bound, so a repeat within the
        // bound is always caught and memory stays proportional to the event rate.
        let wm = self.watermark().map_or(at, |w| w.0);
        if self.seen_since == i64::MIN {
            self.seen_since = wm;
        } else if wm - self.seen_since > self.lateness_ms() {
            self.seen_ids.swap(0, 1);
            self.seen_ids[0].clear();
            self.seen_since = wm;
        }
        self.seen_ids[0].insert(id);
        true
    }

    fn advance(&mut self, at: i64, kind: &crate::event::EventKind<'_>) {
        if self.clock.observe_event(Ts(at), kind) {
            self.fire_timers();
        }
    }

    /// Queues the subjects whose next exposure stage (or held-back write) the watermark has
    /// passed. Each timer brings the credit one evaluation needs.
    fn fire_timers(&mut self) {
        let wm = self.wm();
        while let Some(&(t, m, u)) = self.timers.first() {
            if t > wm {
                break;
            }
            self.timers.pop_first();
            let msg = self.store.msgs.get(m);
            if msg.bits & crate::store::BIT_DEAD == 0 && !msg.forwards() && msg.hot != HotIx::NONE {
                self.earn(m);
                self.mark(m, u);
            }
        }
    }

    /// Queues a subject of a message for evaluation ([`Who::ALL`] for every subject).
    fn mark(&mut self, m: MsgIx, subject: Who) {
        let h = self.store.msgs.get(m).hot;
        if h == HotIx::NONE {
            return;
        }
        let hot = &mut self.hot[h.usize()];
        if subject == Who::ALL {
            hot.dirty_all = true;
            hot.dirty.clear();
        } else if !hot.dirty_all {
            // Repeats are removed when the queue is drained, after every event.
            hot.dirty.push(subject);
        }
        if !hot.queued {
            hot.queued = true;
            self.queue.push(h);
        }
    }

    /// Marks user `u`'s subjects (their flags, as author or resharer) in every labelled
    /// message they are a subject of, but `except` (the message whose change this follows,
    /// which its caller marks itself): at once when there are few, otherwise at the next flush
    /// (or the end of input, or a retention sweep). What changed is the user's own conduct,
    /// which only their own flags read: marking every subject of those messages made each
    /// reshare on a viral cascade evaluate hundreds of other resharers' flags.
    fn mark_user(&mut self, u: UserIx, except: MsgIx) {
        if self.conduct.len(u) > RELATED_AT_ONCE {
            self.deferred_users.push(u);
            return;
        }
        for m in self.conduct.messages(u) {
            if m != except {
                self.mark(m, Who::account(u));
            }
        }
    }

    /// Marks every labelled message aimed at person `t`, as [`Engine::mark_user`] does.
    fn mark_target(&mut self, t: UserIx) {
        if self.targets.len(t) > RELATED_AT_ONCE {
            self.deferred_targets.push(t);
            return;
        }
        for m in self.targets.messages(t) {
            self.mark(m, Who::ALL);
        }
    }
}

#[cfg(test)]
mod tests;
