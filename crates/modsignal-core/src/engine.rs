//! The engine: applies events to state and emits flags when an evaluation changes materially.
//!
//! Every update is a join on a lattice (a sum over a set of distinct ids, a maximum, a
//! last-writer-wins register ordered by event time, a sorted set of removal changes), so that
//! the state after a set of events does not depend on the order they came in or on how often
//! each came. Flags are computed from that state and the watermark only, and a flag's revision
//! is a sum of monotone measures of that state, so it grows with every change and the same
//! state always carries the same revision.

use std::collections::BTreeSet;

use hashbrown::{HashMap, HashSet};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::event::{Audience, Category, Event, EventKind, FactorLabel, LabelCode, RemovedBy};
use crate::exposure::{Change, Channel, Role, Visibility, What, insert_change, scope_ord, status_ord};
use crate::flag::{Exposure, FLAG_SCHEMA, Flag, Reach, Subject, flag_id};
use crate::model::{Facts, RemovalKind, Targeting, evaluate, evaluate_with};
use crate::policy::Policy;
use crate::store::{BIT_DEAD, BIT_REPLY, Entity, NONE, Reshare, Store, Users, key_of};
use crate::time::Ts;

pub mod snapshot;

/// Why an event could not be applied. The event is set aside; nothing else is affected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    #[error("id `{0}` is used both for a post and for a reshare")]
    KindConflict(String),
    #[error("reshare `{0}` reshares itself")]
    SelfReshare(String),
}

impl ApplyError {
    pub fn code(&self) -> &'static str {
        match self {
            ApplyError::KindConflict(_) => "kind_conflict",
            ApplyError::SelfReshare(_) => "self_reshare",
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

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct LabelEntry {
    source: String,
    code: LabelCode,
    at: i64,
    confidence: f64,
    negate: bool,
    /// Hash of the person the label names as targeted, or `NO_PERSON`.
    target: u64,
}

impl LabelEntry {
    /// The order in which two assertions from one source about one code supersede each other:
    /// the later one wins, and at equal times a retraction wins, then the higher confidence.
    fn rank(&self) -> (i64, bool, u64) {
        (self.at, self.negate, self.confidence.to_bits())
    }
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Agg {
    count: u32,
    followers: u64,
    depth_below: u32,
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Slot {
    rev: u64,
    /// What decides a streaming re-emission: the material state.
    sig: u64,
    /// A hash of everything the flag said, kept in debug builds to check that an unchanged
    /// revision always means an unchanged flag.
    content: u64,
}

/// Per labelled message: everything the model needs beyond the compact record.
#[derive(serde::Serialize, serde::Deserialize)]
struct Hot {
    msg: u32,
    id: String,
    labels: Vec<LabelEntry>,
    label_events: Vec<u64>,
    resharers: HashMap<u32, Vec<u32>>,
    agg: HashMap<u32, Agg>,
    resharer_audience: u64,
    /// Every person this message was ever seen targeting (append-only).
    targets_ever: Vec<u64>,
    slots: HashMap<(u32, Subject, Category), Slot>,
    dirty_all: bool,
    dirty_users: Vec<u32>,
    queued: bool,
    /// Some flag changed without a material change and has not been written since.
    stale: bool,
}

impl Hot {
    fn empty() -> Hot {
        Hot {
            msg: NONE,
            id: String::new(),
            labels: Vec::new(),
            label_events: Vec::new(),
            resharers: HashMap::new(),
            agg: HashMap::new(),
            resharer_audience: 0,
            targets_ever: Vec::new(),
            slots: HashMap::new(),
            dirty_all: false,
            dirty_users: Vec::new(),
            queued: false,
            stale: false,
        }
    }
}

/// History an evicted labelled message leaves for one sender or one person targeted.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Past {
    entries: Vec<PastEntry>,
    /// Label events of entries pruned as too old.
    gone: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PastEntry {
    /// When the sender posted or reshared it.
    at: i64,
    author: u32,
    live: bool,
    label_events: u64,
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct ReportRec {
    user: u64,
    by_target: bool,
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
}

pub struct Engine {
    policy: Policy,
    store: Store,
    users: Users,
    removals: HashMap<u64, Vec<Change>>,
    accounts: HashMap<u32, Vec<Change>>,
    reports: HashMap<u32, Vec<ReportRec>>,
    hot: Vec<Hot>,
    conduct: HashMap<u32, Vec<u32>>,
    targets: HashMap<u64, Vec<u32>>,
    waiting_via: HashMap<u64, Vec<u32>>,
    pending_via: HashMap<u32, u64>,
    timers: BTreeSet<(i64, u32, u32)>,
    queue: Vec<u32>,
    /// Hot messages with a flag whose last change was not written (see `flush`).
    stale: Vec<u32>,
    max_at: i64,
    /// A floor under the watermark, raised by `finish` and `advance_to` (end of input, idle).
    wm_floor: i64,
    /// Watermark at which the next retention sweep runs.
    next_sweep: i64,
    /// Hot slots free for reuse.
    hot_free: Vec<u32>,
    /// What evicted labelled messages leave behind for repeated conduct (per sender) and
    /// virtual mobbing (per person targeted): their history outlives their state.
    past_conduct: HashMap<u32, Past>,
    past_targets: HashMap<u64, Past>,
    evicted: u64,
    seen_ids: [HashSet<u64>; 2],
    seen_since: i64,
}

/// Marks every subject of a message for evaluation.
const ALL: u32 = NONE;
/// Stands for the author in the queue of subjects to evaluate.
const AUTHOR: u32 = NONE - 1;
/// No person: the hash that stands for "no target". A real id hashing to zero (odds 2^-64)
/// would lose its targeting.
const NO_PERSON: u64 = 0;

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
            conduct: HashMap::new(),
            targets: HashMap::new(),
            waiting_via: HashMap::new(),
            pending_via: HashMap::new(),
            timers: BTreeSet::new(),
            queue: Vec::new(),
            stale: Vec::new(),
            max_at: i64::MIN,
            wm_floor: i64::MIN,
            next_sweep: i64::MIN,
            hot_free: Vec::new(),
            past_conduct: HashMap::new(),
            past_targets: HashMap::new(),
            evicted: 0,
            seen_ids: [HashSet::new(), HashSet::new()],
            seen_since: i64::MIN,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn lateness_ms(&self) -> i64 {
        self.policy.stream.lateness_secs as i64 * 1000
    }

    /// The watermark: the newest event time seen, less the lateness bound.
    pub fn watermark(&self) -> Option<Ts> {
        (self.max_at != i64::MIN).then(|| Ts((self.max_at - self.lateness_ms()).max(self.wm_floor)))
    }

    /// The newest event time applied (what [`Engine::finish`] moves the watermark to), if any
    /// event was: what a worker tells the other partitions of its input about event time.
    pub fn newest_event(&self) -> Option<Ts> {
        (self.max_at != i64::MIN).then_some(Ts(self.max_at))
    }

    /// The watermark as a number, `i64::MIN` before the first event.
    fn wm(&self) -> i64 {
        self.watermark().map_or(i64::MIN, |w| w.0)
    }

    pub fn stats(&self) -> StateStats {
        StateStats {
            messages: self.store.msgs.live(),
            reshares: self.store.rss.live(),
            labelled: self.hot.iter().filter(|h| h.msg != NONE).count(),
            users: self.users.len(),
            evicted: self.evicted,
            watermark: self.watermark(),
        }
    }

    /// Applies one event and appends the flags whose evaluation changed materially.
    pub fn apply(&mut self, ev: &Event<'_>, out: &mut Vec<Flag>) -> Result<Outcome, ApplyError> {
        let at = ev.at.0;
        let mut outcome = Outcome {
            late: self.watermark().is_some_and(|w| ev.at < w),
            ..Outcome::default()
        };
        if let Some(eid) = &ev.event_id
            && !self.first_sighting(key_of(eid), at)
        {
            outcome.duplicate = true;
            return Ok(outcome);
        }
        match &ev.kind {
            EventKind::Post {
                id,
                author,
                audience,
                reply_to,
                quote_of,
                mentions,
            } => {
                let user = self.user(&author.id, author.followers, author.minor, at);
                // Targets are kept as id hashes: they are never written, so they need no interned name,
                // and skipping the account table here saves a cache miss on most posts.
                let mention = mentions.first().map_or(NO_PERSON, |m| key_of(m));
                self.post(
                    id,
                    at,
                    user,
                    *audience,
                    reply_to.as_deref(),
                    quote_of.as_deref(),
                    mention,
                )?;
            }
            EventKind::Reshare { id, of, author, via } => {
                let user = self.user(&author.id, author.followers, author.minor, at);
                self.reshare(id, of, via.as_deref(), at, user)?;
            }
            EventKind::Delete { id, by } => {
                outcome.removal = self.removal(
                    id,
                    Change {
                        at,
                        what: What::Delete(*by),
                    },
                )
            }
            EventKind::Restrict { id, by, scope } => {
                outcome.removal = self.removal(
                    id,
                    Change {
                        at,
                        what: What::Restrict(*by, scope_ord(*scope)),
                    },
                )
            }
            EventKind::Restore { id, by } => {
                self.removal(
                    id,
                    Change {
                        at,
                        what: What::Restore(*by),
                    },
                );
            }
            EventKind::Label {
                id,
                code,
                confidence,
                source,
                target,
                negate,
            } => {
                let target = target.as_deref().map_or(NO_PERSON, key_of);
                let entry = LabelEntry {
                    source: source.to_string(),
                    code: *code,
                    at,
                    confidence: *confidence,
                    negate: *negate,
                    target,
                };
                self.label(id, entry);
            }
            EventKind::Report {
                id,
                reporter,
                by_target,
            } => {
                // Reporters are only counted: their ids are kept as hashes, never stored.
                let user = key_of(reporter);
                self.report(id, at, user, *by_target);
            }
            EventKind::Impressions { id, count } => {
                let m = self.resolve_message(id);
                let msg = self.store.msgs.get_mut(m);
                let count = (*count).min(u64::from(NONE - 1)) as u32;
                if msg.impressions == NONE || msg.impressions < count {
                    msg.impressions = count;
                }
                msg.touch(at);
                self.mark(m, AUTHOR);
            }
            EventKind::Account {
                user,
                status,
                minor,
                followers,
            } => {
                let u = self.user(user, *followers, *minor, at);
                if let Some(s) = status {
                    let list = self.accounts.entry(u).or_default();
                    if insert_change(
                        list,
                        Change {
                            at,
                            what: What::Account(status_ord(*s)),
                        },
                    ) {
                        self.mark_user(u);
                    }
                }
            }
        }
        self.advance(at);
        self.drain(out, false);
        self.maybe_sweep(out);
        Ok(outcome)
    }

    /// Moves the watermark to `at` (if that is later) without an event, and writes what the
    /// exposure timers say has changed: for a worker whose input is idle but whose clock
    /// (event time elsewhere) has moved on.
    pub fn advance_to(&mut self, at: Ts, out: &mut Vec<Flag>) {
        self.wm_floor = self.wm_floor.max(at.0);
        self.fire_timers();
        self.drain(out, false);
    }

    /// Writes every flag whose state changed since it was last written but not materially
    /// (one more reshare, a few more seconds up). A streaming worker calls this on a timer, so
    /// that such changes are delayed, never dropped; file mode needs only [`Engine::finish`].
    pub fn flush(&mut self, out: &mut Vec<Flag>) {
        for h in std::mem::take(&mut self.stale) {
            let hot = &mut self.hot[h as usize];
            hot.stale = false;
            if hot.msg != NONE {
                hot.dirty_all = true;
                if !hot.queued {
                    hot.queued = true;
                    self.queue.push(h);
                }
            }
        }
        self.drain(out, true);
    }

    /// End of input: the watermark moves to the newest event time, every labelled message is
    /// evaluated, and every flag whose state differs from what was last written is written, in
    /// `flag_id` order.
    pub fn finish(&mut self, out: &mut Vec<Flag>) {
        // The watermark moves to the newest event time and stays there: calling this again,
        // with or without events in between, never moves it past an event.
        self.wm_floor = self.wm_floor.max(self.max_at);
        self.fire_timers();
        for h in 0..self.hot.len() {
            if self.hot[h].msg != NONE {
                self.hot[h].dirty_all = true;
                if !self.hot[h].queued {
                    self.hot[h].queued = true;
                    self.queue.push(h as u32);
                }
            }
        }
        let start = out.len();
        self.drain(out, true);
        out[start..].sort_by(|a, b| a.flag_id.cmp(&b.flag_id));
    }

    fn retention_ms(&self) -> i64 {
        self.policy.stream.retention_secs as i64 * 1000
    }

    /// Runs a retention sweep each time the watermark has moved an eighth of the retention
    /// horizon: a scan of the compact records, cheap next to the events that moved it.
    fn maybe_sweep(&mut self, out: &mut Vec<Flag>) {
        let Some(wm) = self.watermark() else { return };
        if self.next_sweep == i64::MIN {
            self.next_sweep = wm.0 + self.retention_ms();
        } else if wm.0 >= self.next_sweep {
            self.evict(wm.0 - self.retention_ms(), out);
            self.next_sweep = wm.0 + self.retention_ms() / 8;
        }
    }

    /// Drops every message with no activity since `horizon`, with its reshares, after writing
    /// the last state of its flags. Events about it that arrive later start afresh.
    fn evict(&mut self, horizon: i64, out: &mut Vec<Flag>) {
        let victims: Vec<u32> = (0..self.store.msgs.slots())
            .filter(|&m| {
                let msg = self.store.msgs.get(m);
                msg.bits & BIT_DEAD == 0 && msg.last_at < horizon
            })
            .collect();
        for &m in &victims {
            let h = self.store.msgs.get(m).hot;
            if h != NONE {
                let hot = &mut self.hot[h as usize];
                hot.dirty_all = true;
                if !hot.queued {
                    hot.queued = true;
                    self.queue.push(h);
                }
            }
        }
        self.drain(out, true);
        for &m in &victims {
            self.drop_message(m);
        }
        // Removals of ids never seen (a delete of a post from before the stream began) go too.
        let store = &self.store;
        self.removals
            .retain(|key, list| store.find(*key).is_some() || list.last().is_some_and(|c| c.at >= horizon));
        self.prune_history(horizon);
        self.evicted += victims.len() as u64;
    }

    fn drop_message(&mut self, m: u32) {
        let msg = self.store.msgs.get(m).clone();
        let mut cur = msg.first_reshare;
        while cur != NONE {
            let rs = self.store.rss.get(cur).clone();
            self.store.remove_key(rs.key);
            self.removals.remove(&rs.key);
            if let Some(vk) = self.pending_via.remove(&cur)
                && let Some(waiting) = self.waiting_via.get_mut(&vk)
            {
                waiting.retain(|&w| w != cur);
                if waiting.is_empty() {
                    self.waiting_via.remove(&vk);
                }
            }
            self.store.rss.release(cur);
            cur = rs.next;
        }
        if msg.hot != NONE {
            self.cool(msg.hot, m, true);
        }
        self.reports.remove(&m);
        self.removals.remove(&msg.key);
        self.store.remove_key(msg.key);
        self.store.msgs.get_mut(m).bits |= BIT_DEAD;
        self.store.msgs.release(m);
    }

    /// Unlinks a hot message from the conduct and target indexes and frees its slot. When the
    /// message is evicted (`remember`), what conduct and mobbing need of it is kept as history.
    fn cool(&mut self, h: u32, m: u32, remember: bool) {
        if remember {
            self.remember(h, m);
        }
        let hot = &mut self.hot[h as usize];
        let mut users: Vec<u32> = hot.resharers.keys().copied().collect();
        users.push(self.store.msgs.get(m).author);
        let targets = std::mem::take(&mut hot.targets_ever);
        *hot = Hot::empty();
        self.hot_free.push(h);
        for u in users {
            if let Some(list) = self.conduct.get_mut(&u) {
                list.retain(|&x| x != m);
                if list.is_empty() {
                    self.conduct.remove(&u);
                }
            }
        }
        for t in targets {
            if let Some(list) = self.targets.get_mut(&t) {
                list.retain(|&x| x != m);
                if list.is_empty() {
                    self.targets.remove(&t);
                }
            }
        }
    }

    fn remember(&mut self, h: u32, m: u32) {
        let live = self.is_live(m);
        let label_events = self.label_events_of(m);
        let msg = self.store.msgs.get(m);
        let (author, posted, known) = (msg.author, msg.posted_at, msg.known());
        let mut subjects: Vec<u32> = self.hot[h as usize].resharers.keys().copied().collect();
        if known {
            subjects.push(author);
        }
        for u in subjects {
            if let Some(at) = self.subject_start(m, u) {
                let e = PastEntry {
                    at,
                    author: u,
                    live,
                    label_events,
                };
                self.past_conduct.entry(u).or_default().entries.push(e);
            }
        }
        let now = self.targets_of(m);
        for t in self.hot[h as usize].targets_ever.clone() {
            let live = live && known && now.contains(&t);
            let e = PastEntry {
                at: posted,
                author,
                live,
                label_events,
            };
            self.past_targets.entry(t).or_default().entries.push(e);
        }
    }

    /// Forgets history too old to count for any message still in state, keeping its label
    /// events as a total so that revisions never shrink.
    fn prune_history(&mut self, horizon: i64) {
        let window = self
            .policy
            .conduct
            .repeat_window_secs
            .max(self.policy.conduct.mobbing_window_secs) as i64
            * 1000;
        let cut = horizon.saturating_sub(window);
        for past in self.past_conduct.values_mut().chain(self.past_targets.values_mut()) {
            past.entries.retain(|e| {
                let keep = e.at >= cut;
                if !keep {
                    past.gone += e.label_events;
                }
                keep
            });
        }
    }

    fn first_sighting(&mut self, key: u64, at: i64) -> bool {
        if self.seen_ids.iter().any(|s| s.contains(&key)) {
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
        self.seen_ids[0].insert(key);
        true
    }

    fn advance(&mut self, at: i64) {
        if at <= self.max_at {
            return;
        }
        self.max_at = at;
        self.fire_timers();
    }

    /// Queues the subjects whose next exposure stage the watermark has passed.
    fn fire_timers(&mut self) {
        let wm = self.wm();
        while let Some(&(t, m, u)) = self.timers.first() {
            if t > wm {
                break;
            }
            self.timers.pop_first();
            let msg = self.store.msgs.get(m);
            if msg.bits & BIT_DEAD == 0 && msg.hot != NONE {
                self.mark(m, u);
            }
        }
    }

    fn user(&mut self, id: &str, followers: Option<u32>, minor: Option<bool>, at: i64) -> u32 {
        let (u, mut grew) = self.users.intern_with_followers(id, followers);
        if let Some(m) = minor {
            let (minor, minor_at) = self.users.minor_mut(u);
            if (at, m) > (*minor_at, *minor) {
                // Even a statement that repeats the current value moves the revision (see
                // `User::minor_term`), so the subject's flags are evaluated again.
                grew = true;
                *minor = m;
                *minor_at = at;
            }
        }
        if grew && self.conduct.contains_key(&u) {
            // A subject of labelled messages changed: their reach sums are rebuilt.
            for m in self.conduct[&u].clone() {
                let h = self.store.msgs.get(m).hot;
                if h != NONE {
                    self.rebuild(h);
                }
            }
        }
        u
    }

    /// The message an id refers to: a reshare's id refers to its original. Creates a
    /// placeholder for an id not seen yet.
    fn resolve_message(&mut self, id: &str) -> u32 {
        match self.store.message_or_placeholder(key_of(id)) {
            Entity::Message(m) => m,
            Entity::Reshare(r) => self.store.rss.get(r).original,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn post(
        &mut self,
        id: &str,
        at: i64,
        author: u32,
        audience: Audience,
        reply_to: Option<&str>,
        quote_of: Option<&str>,
        mention: u64,
    ) -> Result<(), ApplyError> {
        let key = key_of(id);
        let m = match self.store.message_or_placeholder(key) {
            Entity::Message(m) => m,
            Entity::Reshare(_) => return Err(ApplyError::KindConflict(id.to_owned())),
        };
        let msg = self.store.msgs.get_mut(m);
        if msg.known() {
            // A repeat of the post: only the earliest posting time can change.
            if at < msg.posted_at {
                msg.posted_at = at;
                self.mark(m, ALL);
                self.mark_related(m);
            }
            return Ok(());
        }
        msg.posted_at = at;
        msg.touch(at);
        msg.author = author;
        msg.mention = mention;
        msg.set_audience(audience);
        let is_hot = msg.hot != NONE;
        if let Some(parent) = reply_to {
            let p = self.resolve_message(parent);
            if p != m {
                let pm = self.store.msgs.get_mut(p);
                pm.replies += 1;
                pm.touch(at);
                self.store.msgs.get_mut(m).bits |= BIT_REPLY;
                self.mark(p, AUTHOR);
            }
        }
        if let Some(q) = quote_of {
            let p = self.resolve_message(q);
            if p != m {
                let pm = self.store.msgs.get_mut(p);
                pm.quotes += 1;
                pm.touch(at);
                self.mark(p, AUTHOR);
            }
        }
        if is_hot {
            self.register_conduct(author, m);
            if mention != NO_PERSON {
                self.register_target(mention, m);
            }
            let h = self.store.msgs.get(m).hot;
            self.rebuild(h);
            self.mark_related(m);
        }
        Ok(())
    }

    fn reshare(&mut self, id: &str, of: &str, via: Option<&str>, at: i64, user: u32) -> Result<(), ApplyError> {
        let key = key_of(id);
        if id == of {
            return Err(ApplyError::SelfReshare(id.to_owned()));
        }
        let existing = self.store.find(key);
        let placeholder = match existing {
            Some(Entity::Reshare(r)) => {
                let rs = self.store.rss.get_mut(r);
                if at < rs.at {
                    rs.at = at;
                    let o = rs.original;
                    self.mark(o, ALL);
                }
                return Ok(());
            }
            Some(Entity::Message(m)) if self.store.msgs.get(m).known() => {
                return Err(ApplyError::KindConflict(id.to_owned()));
            }
            Some(Entity::Message(m)) => Some(m),
            None => None,
        };
        let (original, of_parent) = match self.store.message_or_placeholder(key_of(of)) {
            Entity::Reshare(p) => (self.store.rss.get(p).original, p),
            Entity::Message(m) => (m, NONE),
        };
        if placeholder == Some(original) {
            return Err(ApplyError::SelfReshare(id.to_owned()));
        }
        // `via` names the reshare the user saw it through; it refines a direct reshare's
        // parent. If it cannot be resolved yet (not seen, or seen under a placeholder that has
        // not met its own original), the reshare stays direct until a restructuring of its
        // message resolves it.
        let mut parent = of_parent;
        let mut pending = None;
        if let (Some(v), NONE) = (via, of_parent) {
            let vk = key_of(v);
            match self.store.find(vk) {
                Some(Entity::Reshare(p)) if self.store.rss.get(p).original == original => parent = p,
                Some(Entity::Message(_)) => {}
                _ => pending = Some(vk),
            }
        }
        let depth = if parent == NONE {
            1
        } else {
            self.store.rss.get(parent).depth + 1
        };
        let rec = Reshare {
            key,
            at,
            original,
            parent,
            author: user,
            next: NONE,
            depth,
        };
        let r = match placeholder {
            Some(m) => self.convert_placeholder(m, rec),
            None => self.store.insert_reshare(rec),
        };
        if let Some(vk) = pending {
            self.pending_via.insert(r, vk);
            self.waiting_via.entry(vk).or_default().push(r);
        }
        // Linked only now: converting a placeholder has just moved other reshares to the head.
        let o = self.store.msgs.get_mut(original);
        self.store.rss.get_mut(r).next = o.first_reshare;
        o.first_reshare = r;
        o.reshares += 1;
        o.depth = o.depth.max(depth.min(u16::MAX as u32) as u16);
        o.touch(at);
        let mut restructured = placeholder.is_some();
        if let Some(waiting) = self.waiting_via.remove(&key) {
            let mut originals: Vec<u32> = waiting.iter().map(|&w| self.store.rss.get(w).original).collect();
            originals.sort_unstable();
            originals.dedup();
            for o in originals {
                if o == original {
                    restructured = true;
                } else {
                    self.redepth(o);
                }
            }
        }
        if restructured {
            self.redepth(original);
        }
        let h = self.store.msgs.get(original).hot;
        if h != NONE {
            if restructured {
                self.rebuild(h);
            } else {
                self.add_to_hot(h, r);
            }
        }
        Ok(())
    }

    /// An id first seen as a message (something referred to it) arrives as a reshare: the
    /// reshares, replies, quotes, labels and reports gathered under it move to its original.
    fn convert_placeholder(&mut self, m: u32, rec: Reshare) -> u32 {
        let original = rec.original;
        let depth = rec.depth;
        let old = self.store.msgs.get(m).clone();
        let r = self.store.replace_placeholder(old.key, m, rec);
        let mut cur = old.first_reshare;
        while cur != NONE {
            let rs = self.store.rss.get_mut(cur);
            let next = rs.next;
            rs.original = original;
            if rs.parent == NONE {
                rs.parent = r;
            }
            rs.depth += depth;
            let head = self.store.msgs.get(original).first_reshare;
            self.store.rss.get_mut(cur).next = head;
            self.store.msgs.get_mut(original).first_reshare = cur;
            cur = next;
        }
        let o = self.store.msgs.get_mut(original);
        o.reshares += old.reshares;
        o.quotes += old.quotes;
        o.replies += old.replies;
        if old.impressions != NONE && (o.impressions == NONE || o.impressions < old.impressions) {
            o.impressions = old.impressions;
        }
        o.touch(old.last_at);
        if let Some(reports) = self.reports.remove(&m) {
            for rep in reports {
                self.add_report(original, rep);
            }
        }
        if old.hot != NONE {
            let labels = std::mem::take(&mut self.hot[old.hot as usize].labels);
            let events = std::mem::take(&mut self.hot[old.hot as usize].label_events);
            let id = std::mem::take(&mut self.hot[old.hot as usize].id);
            let targets = self.hot[old.hot as usize].targets_ever.clone();
            self.cool(old.hot, m, false);
            let h = self.heat(original, &id);
            // The original stands in for the placeholder wherever it was counted, so sums of
            // label events over those lists never shrink.
            for t in targets {
                self.register_target(t, original);
            }
            for e in events {
                if let Err(pos) = self.hot[h as usize].label_events.binary_search(&e) {
                    self.hot[h as usize].label_events.insert(pos, e);
                }
            }
            for l in labels {
                self.merge_label(h, l);
            }
        }
        r
    }

    /// Resolves pending `via` links and recomputes the depth of every reshare of a message
    /// from the parent links.
    fn redepth(&mut self, original: u32) {
        let mut list = Vec::new();
        let mut cur = self.store.msgs.get(original).first_reshare;
        while cur != NONE {
            list.push(cur);
            cur = self.store.rss.get(cur).next;
        }
        for &r in &list {
            let Some(&vk) = self.pending_via.get(&r) else { continue };
            let Some(Entity::Reshare(v)) = self.store.find(vk) else {
                continue;
            };
            if self.store.rss.get(v).original != original || self.store.rss.get(r).parent != NONE {
                continue;
            }
            // Never close a cycle: the via must not descend from this reshare.
            let mut p = v;
            let mut cycle = false;
            while p != NONE {
                if p == r {
                    cycle = true;
                    break;
                }
                p = self.store.rss.get(p).parent;
            }
            self.pending_via.remove(&r);
            if !cycle {
                self.store.rss.get_mut(r).parent = v;
            }
        }
        let mut max = 0;
        for &r in &list {
            let mut d = 1;
            let mut p = self.store.rss.get(r).parent;
            while p != NONE && d < 100_000 {
                d += 1;
                p = self.store.rss.get(p).parent;
            }
            self.store.rss.get_mut(r).depth = d;
            max = max.max(d);
        }
        self.store.msgs.get_mut(original).depth = max.min(u16::MAX as u32) as u16;
    }

    fn removal(&mut self, id: &str, change: Change) -> Option<RemovalSeen> {
        let key = key_of(id);
        let list = self.removals.entry(key).or_default();
        let first = list.is_empty();
        if !insert_change(list, change) {
            return None;
        }
        let (m, start, own) = match self.store.find(key) {
            Some(Entity::Message(m)) => (m, self.store.msgs.get(m).posted_at, true),
            Some(Entity::Reshare(r)) => {
                let rs = self.store.rss.get(r);
                (rs.original, rs.at, false)
            }
            None => return None,
        };
        let msg = self.store.msgs.get_mut(m);
        msg.touch(change.at);
        let (hot, author) = (msg.hot, msg.author);
        self.mark(m, ALL);
        let (kind, by) = match change.what {
            What::Delete(by) => (RemovalKind::Deleted, by),
            What::Restrict(by, _) => (RemovalKind::Blocked, by),
            _ => return None,
        };
        if !first || start == i64::MIN {
            return None;
        }
        let audience = (own && hot != NONE && author != NONE)
            .then(|| u64::from(self.users.get(author).followers) + self.hot[hot as usize].resharer_audience);
        Some(RemovalSeen {
            kind,
            by,
            seconds_up: Ts(change.at).secs_since(Ts(start)),
            audience,
        })
    }

    fn label(&mut self, id: &str, entry: LabelEntry) {
        let m = self.resolve_message(id);
        let h = self.heat(m, id);
        let mut hasher_input = Vec::with_capacity(entry.source.len() + 40);
        hasher_input.extend_from_slice(entry.source.as_bytes());
        hasher_input.push(0);
        hasher_input.extend_from_slice(format!("{:?}", entry.code).as_bytes());
        hasher_input.extend_from_slice(&entry.at.to_le_bytes());
        hasher_input.extend_from_slice(&entry.confidence.to_bits().to_le_bytes());
        hasher_input.push(entry.negate as u8);
        hasher_input.extend_from_slice(&entry.target.to_le_bytes());
        let ev = xxh3_64(&hasher_input);
        let hot = &mut self.hot[h as usize];
        match hot.label_events.binary_search(&ev) {
            Ok(_) => return,
            Err(pos) => hot.label_events.insert(pos, ev),
        }
        self.store.msgs.get_mut(m).touch(entry.at);
        if entry.target != NO_PERSON {
            self.register_target(entry.target, m);
        }
        self.merge_label(h, entry);
        self.mark(m, ALL);
        self.mark_related(m);
    }

    fn merge_label(&mut self, h: u32, entry: LabelEntry) {
        let hot = &mut self.hot[h as usize];
        match hot
            .labels
            .iter_mut()
            .find(|l| l.source == entry.source && l.code == entry.code)
        {
            Some(l) if entry.rank() > l.rank() => *l = entry,
            Some(_) => {}
            None => hot.labels.push(entry),
        }
    }

    fn report(&mut self, id: &str, at: i64, user: u64, by_target: bool) {
        let m = self.resolve_message(id);
        if self.add_report(m, ReportRec { user, by_target }) {
            self.store.msgs.get_mut(m).touch(at);
            self.mark(m, ALL);
        }
    }

    fn add_report(&mut self, m: u32, rep: ReportRec) -> bool {
        let list = self.reports.entry(m).or_default();
        match list.iter_mut().find(|r| r.user == rep.user) {
            Some(r) if rep.by_target && !r.by_target => {
                r.by_target = true;
                true
            }
            Some(_) => false,
            None => {
                list.push(rep);
                true
            }
        }
    }

    /// Makes a message hot (labelled), building its per-resharer state.
    fn heat(&mut self, m: u32, id: &str) -> u32 {
        let h = self.store.msgs.get(m).hot;
        if h != NONE {
            return h;
        }
        let fresh = Hot {
            msg: m,
            id: id.to_owned(),
            dirty_all: true,
            ..Hot::empty()
        };
        let h = match self.hot_free.pop() {
            Some(h) => {
                self.hot[h as usize] = fresh;
                h
            }
            None => {
                self.hot.push(fresh);
                self.hot.len() as u32 - 1
            }
        };
        self.store.msgs.get_mut(m).hot = h;
        let msg = self.store.msgs.get(m);
        let (author, mention, known) = (msg.author, msg.mention, msg.known());
        if known {
            self.register_conduct(author, m);
            if mention != NO_PERSON {
                self.register_target(mention, m);
            }
        }
        self.rebuild(h);
        h
    }

    fn register_conduct(&mut self, user: u32, m: u32) {
        let list = self.conduct.entry(user).or_default();
        if !list.contains(&m) {
            list.push(m);
        }
    }

    fn register_target(&mut self, user: u64, m: u32) {
        let list = self.targets.entry(user).or_default();
        if !list.contains(&m) {
            list.push(m);
        }
        let h = self.store.msgs.get(m).hot;
        if h != NONE && !self.hot[h as usize].targets_ever.contains(&user) {
            self.hot[h as usize].targets_ever.push(user);
        }
    }

    fn label_events_of(&self, m: u32) -> u64 {
        let h = self.store.msgs.get(m).hot;
        if h == NONE {
            0
        } else {
            self.hot[h as usize].label_events.len() as u64
        }
    }

    /// Recomputes a hot message's resharers, subtree sums and audience from its reshare list.
    fn rebuild(&mut self, h: u32) {
        let m = self.hot[h as usize].msg;
        let mut list = Vec::new();
        let mut cur = self.store.msgs.get(m).first_reshare;
        while cur != NONE {
            list.push(cur);
            cur = self.store.rss.get(cur).next;
        }
        let hot = &mut self.hot[h as usize];
        hot.resharers.clear();
        hot.agg.clear();
        hot.resharer_audience = 0;
        for &r in &list {
            Self::hot_add(&self.store, &self.users, hot, r);
        }
        for &r in &list {
            let u = self.store.rss.get(r).author;
            let l = self.conduct.entry(u).or_default();
            if !l.contains(&m) {
                l.push(m);
            }
        }
        self.mark(m, ALL);
    }

    fn hot_add(store: &Store, users: &Users, hot: &mut Hot, r: u32) {
        let rs = store.rss.get(r);
        let author = store.msgs.get(hot.msg).author;
        let subs = hot.resharers.entry(rs.author).or_default();
        if subs.is_empty() && rs.author != author {
            hot.resharer_audience += u64::from(users.get(rs.author).followers);
        }
        subs.push(r);
        let followers = u64::from(users.get(rs.author).followers);
        let mut p = rs.parent;
        while p != NONE {
            let ps = store.rss.get(p);
            let a = hot.agg.entry(p).or_default();
            a.count += 1;
            if ps.author != rs.author {
                a.followers += followers;
            }
            a.depth_below = a.depth_below.max(rs.depth.saturating_sub(ps.depth));
            p = ps.parent;
        }
    }

    fn add_to_hot(&mut self, h: u32, r: u32) {
        let m = self.hot[h as usize].msg;
        Self::hot_add(&self.store, &self.users, &mut self.hot[h as usize], r);
        let user = self.store.rss.get(r).author;
        self.register_conduct(user, m);
        // The new resharer, the author and every resharer up the chain changed.
        self.mark(m, AUTHOR);
        self.mark(m, user);
        let mut p = self.store.rss.get(r).parent;
        while p != NONE {
            let (author, parent) = (self.store.rss.get(p).author, self.store.rss.get(p).parent);
            self.mark(m, author);
            p = parent;
        }
    }

    /// Queues a subject of a message for evaluation (`NONE` for every subject).
    fn mark(&mut self, m: u32, subject: u32) {
        let h = self.store.msgs.get(m).hot;
        if h == NONE {
            return;
        }
        let hot = &mut self.hot[h as usize];
        if subject == ALL {
            hot.dirty_all = true;
        } else if !hot.dirty_all && !hot.dirty_users.contains(&subject) {
            hot.dirty_users.push(subject);
        }
        if !hot.queued {
            hot.queued = true;
            self.queue.push(h);
        }
    }

    fn mark_user(&mut self, u: u32) {
        if let Some(list) = self.conduct.get(&u) {
            for m in list.clone() {
                self.mark(m, ALL);
            }
        }
    }

    /// A message's labels or time changed: messages that count it as earlier conduct by the
    /// same sender, or as another sender at the same target, are evaluated again.
    fn mark_related(&mut self, m: u32) {
        let h = self.store.msgs.get(m).hot;
        if h == NONE {
            return;
        }
        let mut users: Vec<u32> = self.hot[h as usize].resharers.keys().copied().collect();
        users.push(self.store.msgs.get(m).author);
        for u in users {
            self.mark_user(u);
        }
        for t in self.targets_of(m) {
            if let Some(list) = self.targets.get(&t) {
                for other in list.clone() {
                    self.mark(other, ALL);
                }
            }
        }
    }

    fn live_labels(&self, h: u32) -> impl Iterator<Item = &LabelEntry> {
        self.hot[h as usize].labels.iter().filter(|l| !l.negate)
    }

    /// Whether a message counts as conduct: a live category label at or above the floor.
    fn is_live(&self, m: u32) -> bool {
        let h = self.store.msgs.get(m).hot;
        h != NONE
            && self
                .live_labels(h)
                .any(|l| matches!(l.code, LabelCode::Category(_)) && l.confidence >= self.policy.labels.min_confidence)
    }

    fn targets_of(&self, m: u32) -> Vec<u64> {
        let msg = self.store.msgs.get(m);
        let mut t: Vec<u64> = Vec::new();
        if msg.hot != NONE {
            t.extend(self.live_labels(msg.hot).map(|l| l.target).filter(|&u| u != NO_PERSON));
        }
        if msg.mention != NO_PERSON {
            t.push(msg.mention);
        }
        t.sort_unstable();
        t.dedup();
        t
    }

    /// When a subject started: the post, or the user's earliest reshare of the message.
    fn subject_start(&self, m: u32, user: u32) -> Option<i64> {
        let msg = self.store.msgs.get(m);
        if msg.author == user && msg.known() {
            return Some(msg.posted_at);
        }
        let h = msg.hot;
        if h == NONE {
            return None;
        }
        self.hot[h as usize]
            .resharers
            .get(&user)?
            .iter()
            .map(|&r| self.store.rss.get(r).at)
            .min()
    }

    /// Earlier labelled messages by `user` in the repeat window, and the label events behind
    /// them (a monotone measure for the revision).
    fn prior(&self, m: u32, user: u32, start: i64) -> (u32, u64) {
        let window = self.policy.conduct.repeat_window_secs as i64 * 1000;
        let (mut n, mut events) = (0, 0);
        for &other in self.conduct.get(&user).map_or(&[][..], |v| v.as_slice()) {
            if other == m {
                continue;
            }
            let Some(t) = self.subject_start(other, user) else {
                events += self.label_events_of(other);
                continue;
            };
            // Every label event of the sender's other labelled messages counts towards the
            // revision, in the window or not, so that the measure only grows.
            events += self.label_events_of(other);
            if t < start && t >= start - window && self.is_live(other) {
                n += 1;
            }
        }
        if let Some(past) = self.past_conduct.get(&user) {
            events += past.gone;
            for e in &past.entries {
                events += e.label_events;
                if e.live && e.at < start && e.at >= start - window {
                    n += 1;
                }
            }
        }
        (n, events)
    }

    /// Distinct senders of live labelled messages at the same target within the mobbing
    /// window, and the label events behind them.
    fn mobbing(&self, m: u32) -> (u32, u64) {
        let msg = self.store.msgs.get(m);
        // The revision counts the label events of every message ever seen at any person this
        // message ever targeted, so that the measure only grows when targets are retracted.
        let mut events = 0;
        if msg.hot != NONE {
            for t in &self.hot[msg.hot as usize].targets_ever {
                for &other in self.targets.get(t).map_or(&[][..], |v| v.as_slice()) {
                    events += self.label_events_of(other);
                }
                if let Some(past) = self.past_targets.get(t) {
                    events += past.gone + past.entries.iter().map(|e| e.label_events).sum::<u64>();
                }
            }
        }
        if !msg.known() {
            return (0, events);
        }
        let window = self.policy.conduct.mobbing_window_secs as i64 * 1000;
        let mut best = 0;
        for t in self.targets_of(m) {
            let mut senders: Vec<u32> = Vec::new();
            for &other in self.targets.get(&t).map_or(&[][..], |v| v.as_slice()) {
                let om = self.store.msgs.get(other);
                if !om.known() || (om.posted_at - msg.posted_at).abs() > window || !self.targets_of(other).contains(&t)
                {
                    continue;
                }
                if self.is_live(other) && !senders.contains(&om.author) {
                    senders.push(om.author);
                }
            }
            for e in self.past_targets.get(&t).map_or(&[][..], |p| p.entries.as_slice()) {
                if e.live && (e.at - msg.posted_at).abs() <= window && !senders.contains(&e.author) {
                    senders.push(e.author);
                }
            }
            best = best.max(senders.len() as u32);
        }
        (best, events)
    }

    fn drain(&mut self, out: &mut Vec<Flag>, all: bool) {
        while let Some(h) = self.queue.pop() {
            let hot = &mut self.hot[h as usize];
            hot.queued = false;
            let dirty_all = std::mem::take(&mut hot.dirty_all);
            let users = std::mem::take(&mut hot.dirty_users);
            if hot.msg == NONE {
                continue;
            }
            let m = hot.msg;
            let msg = self.store.msgs.get(m);
            let mut subjects: Vec<(u32, Subject)> = Vec::new();
            if dirty_all {
                if msg.known() {
                    subjects.push((msg.author, Subject::Author));
                }
                let mut rs: Vec<u32> = hot
                    .resharers
                    .keys()
                    .copied()
                    .filter(|&u| u != msg.author || !msg.known())
                    .collect();
                rs.sort_unstable();
                subjects.extend(rs.into_iter().map(|u| (u, Subject::Resharer)));
            } else {
                for u in users {
                    if u == AUTHOR || (u == msg.author && msg.known()) {
                        if msg.known() {
                            subjects.push((msg.author, Subject::Author));
                        }
                    } else if hot.resharers.contains_key(&u) {
                        subjects.push((u, Subject::Resharer));
                    }
                }
                subjects.sort_unstable();
                subjects.dedup();
            }
            for (u, s) in subjects {
                self.evaluate_subject(h, u, s, out, all);
            }
        }
    }

    fn evaluate_subject(&mut self, h: u32, user: u32, subject: Subject, out: &mut Vec<Flag>, all: bool) {
        let policy = &self.policy;
        let hot = &self.hot[h as usize];
        let m = hot.msg;
        let msg = self.store.msgs.get(m);
        let mut categories: Vec<Category> = hot
            .labels
            .iter()
            .filter_map(|l| match l.code {
                LabelCode::Category(c) => Some(c),
                _ => None,
            })
            .collect();
        categories.sort_unstable();
        categories.dedup();
        if categories.is_empty() {
            return;
        }

        // Exposure channels: the post itself, or each of the user's reshares.
        let empty: &[Change] = &[];
        let removals_of = |key: u64| self.removals.get(&key).map_or(empty, |v| v.as_slice());
        let account_of = |u: u32| self.accounts.get(&u).map_or(empty, |v| v.as_slice());
        let mut channels = Vec::new();
        let mut reshares_of_user: &[u32] = &[];
        match subject {
            Subject::Author => channels.push(Channel {
                start: msg.posted_at,
                sources: vec![
                    (Role::Own, removals_of(msg.key)),
                    (Role::OwnAccount, account_of(msg.author)),
                ],
            }),
            Subject::Resharer => {
                reshares_of_user = hot.resharers.get(&user).map_or(&[][..], |v| v.as_slice());
                for &r in reshares_of_user {
                    let rs = self.store.rss.get(r);
                    let mut sources = vec![
                        (Role::Own, removals_of(rs.key)),
                        (Role::OwnAccount, account_of(user)),
                        (Role::Original, removals_of(msg.key)),
                    ];
                    if msg.author != NONE {
                        sources.push((Role::OriginalAccount, account_of(msg.author)));
                    }
                    channels.push(Channel { start: rs.at, sources });
                }
            }
        }
        if channels.is_empty() {
            return;
        }
        let start = channels.iter().map(|c| c.start).min().expect("non-empty");
        let mut last_event = msg.last_at.max(start);
        let mut changes = 0u64;
        for c in &channels {
            for (_, list) in &c.sources {
                changes += list.len() as u64;
                if let Some(l) = list.last() {
                    last_event = last_event.max(l.at);
                }
            }
        }
        let horizon = self.wm().max(last_event);
        let vis = Visibility::compute(&channels, horizon);
        let stage_end = vis.down.map_or(horizon, |(since, _)| since.max(start));
        let stages = &policy.exposure.stages_secs;
        let reached: Vec<u64> = stages
            .iter()
            .copied()
            .filter(|&s| start + s as i64 * 1000 <= stage_end)
            .collect();
        let stage = reached.len() as u64;
        // A subject still up is measured to the horizon (event time now); one that is down is
        // measured to its removal, and nothing about it moves until another change arrives.
        let as_of = match vis.down {
            None => horizon,
            Some((since, _)) => last_event.max(since),
        };
        let seconds_up = (vis.up_millis(as_of) / 1000) as u64;
        let removal = vis.down.map(|(_, r)| r);
        let time_term = (as_of - start).max(0) as u64;
        if vis.down.is_none()
            && let Some(&next) = stages.iter().filter(|&&s| start + s as i64 * 1000 > stage_end).min()
        {
            let who = if subject == Subject::Author { AUTHOR } else { user };
            self.timers.insert((start + next as i64 * 1000, m, who));
        }
        let hot = &self.hot[h as usize];
        let msg = self.store.msgs.get(m);

        // Reach.
        let followers = u64::from(self.users.get(user).followers);
        let reach = match subject {
            Subject::Author => Reach {
                audience: followers + hot.resharer_audience,
                reshares: u64::from(msg.reshares),
                quotes: u64::from(msg.quotes),
                replies: u64::from(msg.replies),
                impressions: (msg.impressions != NONE).then_some(u64::from(msg.impressions)),
                depth: u32::from(msg.depth),
            },
            Subject::Resharer => {
                let mut reach = Reach {
                    audience: followers,
                    reshares: 0,
                    quotes: 0,
                    replies: 0,
                    impressions: None,
                    depth: 0,
                };
                for r in reshares_of_user {
                    if let Some(a) = hot.agg.get(r) {
                        reach.audience += a.followers;
                        reach.reshares += u64::from(a.count);
                        reach.depth = reach.depth.max(a.depth_below);
                    }
                }
                reach
            }
        };

        // Message-level factors.
        // The strongest live label per category and per factor, read once.
        let mut category_conf: [Option<f64>; 4] = [None; 4];
        let mut factor_confs = [0.0f64; FactorLabel::ALL.len()];
        let mut label_targeted = false;
        for l in self.live_labels(h) {
            label_targeted |= l.target != NO_PERSON;
            match l.code {
                LabelCode::Category(c) => {
                    let slot = &mut category_conf[c.index()];
                    *slot = Some(slot.map_or(l.confidence, |a: f64| a.max(l.confidence)));
                }
                LabelCode::Factor(f) => {
                    let slot = &mut factor_confs[f as usize];
                    *slot = slot.max(l.confidence);
                }
            }
        }
        let factor_conf = |f: FactorLabel| factor_confs[f as usize];
        let reports = self.reports.get(&m).map_or(&[][..], |v| v.as_slice());
        let by_target = reports.iter().filter(|r| r.by_target).count() as u64;
        let targeted = if label_targeted {
            Some(Targeting::Label)
        } else if msg.mention != NO_PERSON {
            Some(Targeting::Mention)
        } else if msg.bits & BIT_REPLY != 0 {
            Some(Targeting::Reply)
        } else {
            None
        };
        let (prior, prior_events) = self.prior(m, user, start);
        let (mob, mob_events) = self.mobbing(m);
        let minor = self.users.get(user).minor;
        // Whether the subject is a minor is state of the account, not of the message: an
        // `account` event that changes it changes the flag, so it must move the revision too.
        let minor_term = self.users.get(user).minor_term();
        let rev_base = 1
            + hot.label_events.len() as u64
            + reports.len() as u64
            + by_target
            + reach.reshares
            + reach.quotes
            + reach.replies
            + u64::from(reach.depth)
            + reach.audience
            + reach.impressions.unwrap_or(0)
            + channels.len() as u64
            // A removal change can bring a subject down earlier and so shrink the time term (in
            // milliseconds), by less than 2^42 ms (139 years); weighting each change by 2^42
            // keeps the sum growing.
            + (changes << 42)
            // The post itself can arrive after its reshares and labels, and brings what the
            // placeholder lacked (a reply, mentions, the audience kind): that is a change too.
            // Only resharers' flags exist before it, and their time term does not shrink with
            // it unless the author's account changes come into play, which `changes` counts.
            + u64::from(msg.known())
            + time_term
            + prior_events
            + mob_events
            + minor_term;
        let exposure = Exposure {
            posted_at: Ts(start),
            removed_at: vis.first_removal.map(|(t, _)| Ts(t)),
            removed_by: vis.first_removal.map(|(_, r)| r.by),
            removal: vis.first_removal.map(|(_, r)| r.kind),
            seconds_up,
            still_up: removal.is_none(),
        };
        let base = policy.emission.reach_milestone_base;
        let milestone = |x: u64| ((x as f64).ln_1p() / base.ln()).floor() as u64;
        for category in categories {
            let confidence = category_conf[category.index()];
            let facts = Facts {
                category,
                confidence,
                resharer: subject == Subject::Resharer,
                seconds_up,
                removal,
                removed_after_secs: vis.down.map_or(0, |(since, _)| Ts(since).secs_since(Ts(start))),
                audience_kind: msg.audience(),
                audience: reach.audience,
                reshares: reach.reshares,
                impressions: reach.impressions,
                quotes: reach.quotes,
                replies: reach.replies,
                depth: reach.depth,
                targeted,
                reports: reports.len() as u32,
                reported_by_target: by_target > 0,
                hate: factor_conf(FactorLabel::Hate),
                encouragement: factor_conf(FactorLabel::Encouragement),
                significant_impact: factor_conf(FactorLabel::SignificantImpact),
                remorse: factor_conf(FactorLabel::Remorse),
                tolerable: factor_conf(FactorLabel::Tolerable),
                minor,
                prior,
                mob_senders: mob,
            };
            // Score without evidence first: most evaluations change nothing material and are
            // not written, and formatting evidence costs more than the arithmetic.
            let quick = evaluate_with(policy, &facts, false);
            let sig_in = [
                quick.raised as u64,
                (quick.score / policy.emission.score_step).floor() as u64,
                confidence.map_or(u64::MAX, |c| (c * 100.0).round() as u64),
                stage,
                exposure.removed_at.map_or(0, |t| t.0 as u64),
                exposure.still_up as u64,
                removal.map_or(0, |r| 1 + r.kind as u64 * 8 + r.by as u64),
                milestone(reach.audience),
                milestone(reach.reshares),
                milestone(reach.impressions.unwrap_or(0)),
                milestone(reach.quotes + reach.replies),
                u64::from(reach.depth),
                start as u64,
            ];
            let mut hasher = Xxh3::new();
            for x in sig_in {
                hasher.update(&x.to_le_bytes());
            }
            for f in &quick.factors {
                hasher.update(f.code.as_bytes());
                hasher.update(&[f.effect as u8]);
            }
            let sig = hasher.digest();
            let key = (user, subject, category);
            let prev = self.hot[h as usize].slots.get(&key).copied();
            // At the end of input every flag whose revision moved is written: the revision
            // measures the whole state, so an unchanged revision means an unchanged flag.
            let emit = match prev {
                None => true,
                Some(p) => p.sig != sig || (all && p.rev != rev_base),
            };
            if !emit {
                // Not material now, but not lost: `flush` writes it within the debounce delay.
                if prev.is_some_and(|p| p.rev != rev_base) && !self.hot[h as usize].stale {
                    self.hot[h as usize].stale = true;
                    self.stale.push(h);
                }
                continue;
            }
            let eval = evaluate(policy, &facts);
            let hot = &mut self.hot[h as usize];
            let flag = Flag {
                schema: FLAG_SCHEMA,
                flag_id: flag_id(&hot.id, subject, self.users.name(user), category),
                revision: rev_base,
                message_id: hot.id.clone(),
                subject,
                account: self.users.name(user).to_owned(),
                category,
                track: category.track(),
                score: eval.score,
                raised: eval.raised,
                reach: reach.clone(),
                exposure: exposure.clone(),
                factors: eval.factors,
                provision: category.provision(),
                at: Ts(as_of),
            };
            // In debug builds (the tests), check the revision's promise on every write: a
            // changed flag has a higher revision.
            let content = if cfg!(debug_assertions) {
                xxh3_64(flag.to_json().as_bytes())
            } else {
                0
            };
            debug_assert!(
                prev.is_none_or(|p| p.rev < rev_base || (p.rev == rev_base && p.content == content)),
                "revision did not grow: {prev:?} -> {rev_base} {}",
                flag.to_json()
            );
            hot.slots.insert(
                key,
                Slot {
                    rev: rev_base,
                    sig,
                    content,
                },
            );
            out.push(flag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode;

    fn apply(e: &mut Engine, line: &str, out: &mut Vec<Flag>) {
        e.apply(&decode(line.as_bytes()).unwrap(), out).unwrap();
    }

    /// An engine holding message `m` by account `a` (50 followers), posted and labelled a
    /// credible threat a second later, and what that wrote.
    fn threat_by_a() -> (Engine, Vec<Flag>) {
        let mut e = Engine::new(Policy::default());
        let mut out = Vec::new();
        apply(
            &mut e,
            r#"{"type":"post","at":1767607200000,"id":"m","author":{"id":"a","followers":50}}"#,
            &mut out,
        );
        apply(
            &mut e,
            r#"{"type":"label","at":1767607201000,"id":"m","category":"credible_threat","source":"c"}"#,
            &mut out,
        );
        (e, out)
    }

    #[test]
    fn a_first_removal_is_reported_once_with_its_kind_time_and_audience() {
        let mut e = Engine::new(Policy::default());
        let mut out = Vec::new();
        let ev = |line: &str| decode(line.as_bytes()).unwrap().into_owned();
        let run = |e: &mut Engine, out: &mut Vec<Flag>, line: &str| e.apply(&ev(line), out).unwrap().removal;
        run(
            &mut e,
            &mut out,
            r#"{"type":"post","at":1767225600000,"id":"m","author":{"id":"a","followers":100}}"#,
        );
        run(
            &mut e,
            &mut out,
            r#"{"type":"reshare","at":1767225601000,"id":"r","of":"m","author":{"id":"b","followers":50}}"#,
        );
        run(
            &mut e,
            &mut out,
            r#"{"type":"label","at":1767225602000,"id":"m","category":"credible_threat","source":"c"}"#,
        );
        let seen = run(
            &mut e,
            &mut out,
            r#"{"type":"restrict","at":1767225662000,"id":"m","by":"platform","scope":"withheld"}"#,
        );
        assert_eq!(
            seen,
            Some(RemovalSeen {
                kind: RemovalKind::Blocked,
                by: RemovedBy::Platform,
                seconds_up: 62,
                audience: Some(150),
            })
        );
        // A second removal of the same message, and a repeat, are not first removals.
        assert_eq!(
            run(
                &mut e,
                &mut out,
                r#"{"type":"delete","at":1767225690000,"id":"m","by":"author"}"#
            ),
            None
        );
        assert_eq!(
            run(
                &mut e,
                &mut out,
                r#"{"type":"restrict","at":1767225662000,"id":"m","by":"platform","scope":"withheld"}"#
            ),
            None
        );
        // A reshare's own removal has no tracked audience.
        let seen = run(
            &mut e,
            &mut out,
            r#"{"type":"delete","at":1767225604000,"id":"r","by":"author"}"#,
        );
        assert_eq!(
            seen,
            Some(RemovalSeen {
                kind: RemovalKind::Deleted,
                by: RemovedBy::Author,
                seconds_up: 3,
                audience: None,
            })
        );
        // A delete of an id not seen yet comes before its post: no time up to report.
        assert_eq!(
            run(
                &mut e,
                &mut out,
                r#"{"type":"delete","at":1767225604000,"id":"x","by":"author"}"#
            ),
            None
        );
    }

    #[test]
    fn quiet_messages_are_written_once_more_then_dropped() {
        let mut e = Engine::new(Policy::default());
        let mut out = Vec::new();
        let t0 = 1_767_607_200_000i64;
        apply(
            &mut e,
            &format!(r#"{{"type":"post","at":{t0},"id":"m","author":{{"id":"a"}},"mentions":["v"]}}"#),
            &mut out,
        );
        apply(
            &mut e,
            &format!(
                r#"{{"type":"reshare","at":{},"id":"r","of":"m","author":{{"id":"b"}}}}"#,
                t0 + 1
            ),
            &mut out,
        );
        apply(
            &mut e,
            &format!(
                r#"{{"type":"label","at":{},"id":"m","category":"targeted_harassment","source":"c","target":"v"}}"#,
                t0 + 2
            ),
            &mut out,
        );
        apply(
            &mut e,
            &format!(r#"{{"type":"delete","at":{},"id":"gone","by":"author"}}"#, t0 + 3),
            &mut out,
        );
        assert_eq!((e.stats().messages, e.stats().reshares, e.stats().labelled), (1, 1, 1));
        out.clear();
        // Activity elsewhere moves the watermark past the retention horizon and a sweep.
        let day = 86_400_000i64;
        for d in 1..=9 {
            apply(
                &mut e,
                &format!(
                    r#"{{"type":"post","at":{},"id":"x{d}","author":{{"id":"z"}}}}"#,
                    t0 + d * day
                ),
                &mut out,
            );
        }
        let stats = e.stats();
        assert_eq!(stats.labelled, 0);
        assert!(stats.evicted >= 1 && stats.reshares == 0, "{stats:?}");
        assert!(e.removals.is_empty(), "removals of ids never seen go too");
        assert!(e.conduct.is_empty() && e.targets.is_empty(), "indexes are unlinked");
        // Its two flags (author, resharer) were written as exposure stages passed, the last time
        // with all of its exposure, and never again.
        let ids: std::collections::BTreeSet<&str> = out
            .iter()
            .filter(|f| f.message_id == "m")
            .map(|f| f.flag_id.as_str())
            .collect();
        assert_eq!(ids.len(), 2);
        let last = out.iter().rev().find(|f| f.message_id == "m").expect("written");
        assert!(last.exposure.seconds_up >= 7 * 86_400, "{}", last.exposure.seconds_up);
        out.clear();
        apply(
            &mut e,
            &format!(
                r#"{{"type":"post","at":{},"id":"y","author":{{"id":"z"}}}}"#,
                t0 + 9 * day + 1
            ),
            &mut out,
        );
        assert!(out.iter().all(|f| f.message_id != "m"));
        // A late event about it starts afresh instead of touching freed slots.
        apply(
            &mut e,
            &format!(
                r#"{{"type":"label","at":{},"id":"m","category":"credible_threat","source":"c"}}"#,
                t0 + 9 * day
            ),
            &mut out,
        );
        assert_eq!(e.stats().labelled, 1);
    }

    #[test]
    fn finish_moves_the_watermark_to_the_newest_event_and_no_further() {
        let mut e = Engine::new(Policy::default());
        let mut out = Vec::new();
        apply(
            &mut e,
            r#"{"type":"post","at":1767607200000,"id":"m","author":{"id":"a"}}"#,
            &mut out,
        );
        apply(
            &mut e,
            r#"{"type":"label","at":1767607260000,"id":"m","category":"credible_threat","source":"c"}"#,
            &mut out,
        );
        e.finish(&mut out);
        assert_eq!(e.watermark(), Some(Ts(1767607260000)));
        let written = out.len();
        e.finish(&mut out);
        e.finish(&mut out);
        assert_eq!(e.watermark(), Some(Ts(1767607260000)));
        assert_eq!(out.len(), written, "finishing again changes nothing");
        let last = out.last().expect("a flag");
        assert_eq!(last.exposure.seconds_up, 60);
    }

    #[test]
    fn small_changes_wait_for_flush_and_are_not_lost() {
        let (mut e, mut out) = threat_by_a();
        assert_eq!(out.len(), 1, "the new flag is written at once");
        out.clear();
        // Reshares by accounts with no followers: below every reach milestone after the first.
        for i in 2..6 {
            let line = format!(
                r#"{{"type":"reshare","at":{},"id":"r{i}","of":"m","author":{{"id":"u{i}"}}}}"#,
                1767607201000i64 + i
            );
            apply(&mut e, &line, &mut out);
        }
        let authors: Vec<&Flag> = out.iter().filter(|f| f.subject == Subject::Author).collect();
        assert!(
            authors.iter().all(|f| f.reach.reshares < 4),
            "small changes are not written at once"
        );
        out.clear();
        e.flush(&mut out);
        let author = out
            .iter()
            .find(|f| f.subject == Subject::Author)
            .expect("flush writes the author's flag");
        assert_eq!(author.reach.reshares, 4);
        out.clear();
        e.flush(&mut out);
        assert!(out.is_empty(), "nothing changed since the last flush");
    }

    /// Found by `any_cut_resumes_exactly`: an `account` event saying the sender is a minor
    /// changed the flag (a factor against) under the same revision, so a consumer keeping the
    /// newest revision could keep the wrong one.
    #[test]
    fn what_an_account_event_says_of_age_moves_the_revision() {
        let (mut e, mut out) = threat_by_a();
        let revision = |out: &[Flag]| out.last().expect("a flag is written").revision;
        let mut last = revision(&out);
        let has_minor = |out: &[Flag]| out.last().unwrap().factors.iter().any(|f| f.code == "minor");
        assert!(!has_minor(&out));
        // Said to be a minor, then said not to be, then the same said again with the same time:
        // each statement is evaluated again, and each change of the flag has a higher revision.
        for (line, minor) in [
            (r#"{"type":"account","at":1767607202000,"user":"a","minor":true}"#, true),
            (
                r#"{"type":"account","at":1767607203000,"user":"a","minor":false}"#,
                false,
            ),
            (r#"{"type":"account","at":1767607203000,"user":"a","minor":true}"#, true),
        ] {
            out.clear();
            apply(&mut e, line, &mut out);
            e.flush(&mut out);
            assert_eq!(has_minor(&out), minor, "after {line}");
            assert!(revision(&out) > last, "after {line}");
            last = revision(&out);
        }
        // An older statement changes nothing.
        out.clear();
        apply(
            &mut e,
            r#"{"type":"account","at":1767607202500,"user":"a","minor":false}"#,
            &mut out,
        );
        e.flush(&mut out);
        assert!(out.is_empty());
    }
}
