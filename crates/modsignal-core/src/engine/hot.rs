//! Labelled ("hot") messages: labels, per-resharer state, reach sums, and the work credit that
//! pays for evaluating them.
//!
//! Most messages are never labelled and cost only their compact record. A labelled message
//! gets a [`Hot`] entry: its labels, its resharers (with each one's start), the reach sums
//! below each reshare that has reshares of its own, and one [`Slot`] per flag written.
//!
//! Reach sums are kept incrementally: a new reshare adds itself to at most
//! `limits.chain_levels` reshares above it. A change of structure (a placeholder's reshares
//! joining, a `via` resolved late) instead marks the message *restructured*, and its sums are
//! rebuilt from its reshare list before it is next evaluated.
//!
//! Every evaluation and rebuild is paid for from the message's *credit*, which each event about
//! the message (and each timer that fires for it) earns. What the credit does not cover stays
//! marked and waits: for the message's next events, for an exposure timer, for the streaming
//! worker's flush, for the end of input. So a message reshared a million times, or a chain of
//! reshares a million deep, costs a bounded amount of work per event, and every flag is still
//! exact once the input is quiet.

use hashbrown::HashMap;

use super::conduct::earliness;
use super::{Engine, Who};
use crate::event::{Category, LabelCode};
use crate::flag::Subject;
use crate::store::{HotIx, Id, MsgIx, ReshareIx, UserIx};

/// Credit one event earns its message: enough to evaluate a few hundred ordinary subjects.
pub(super) const CREDIT_PER_EVENT: i64 = 1024;
/// The most credit a message can hold, so that a quiet message cannot save up for a burst.
const CREDIT_CAP: i64 = 64 * CREDIT_PER_EVENT;

/// One label event as kept: everything that distinguishes it from another, compared whole.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct LabelEntry {
    pub source: Id,
    pub code: LabelCode,
    pub at: i64,
    pub confidence: f64,
    pub negate: bool,
    /// The handle of the person the label names as targeted, or `NONE`.
    pub target: UserIx,
    /// Whom the label is about: `NONE` for the message itself (a label sent to the message's
    /// id), or the handle of the resharer whose reshare's id it was sent to. A label on one
    /// reshare is context for that resharer's flag only (a reviewer marking a journalist's
    /// reshare `tolerable` says nothing of the author or of other resharers), so it never
    /// reaches another subject's flag, the conduct index or the target index.
    pub scope: UserIx,
}

impl LabelEntry {
    /// The order in which two assertions from one source about one code supersede each other:
    /// the later one wins, and at equal times a retraction wins, then the higher confidence.
    pub fn rank(&self) -> (i64, bool, u64) {
        (self.at, self.negate, self.confidence.to_bits())
    }
    fn key(&self) -> (UserIx, &str, LabelCode, i64, u64, bool, UserIx) {
        (
            self.scope,
            &self.source,
            self.code,
            self.at,
            self.confidence.to_bits(),
            self.negate,
            self.target,
        )
    }
}

impl PartialEq for LabelEntry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for LabelEntry {}
impl PartialOrd for LabelEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for LabelEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// Reach below one reshare: the reshares made through it (within `limits.chain_levels`), the
/// followers of their accounts, and how far the longest of them is below it.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Agg {
    pub count: u32,
    pub depth_below: u32,
    pub followers: u64,
}

/// One resharer of a hot message: their first reshare and their start (their earliest
/// reshare's time). Further reshares by the same account are in [`Hot::extra`].
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Resharer {
    pub first: ReshareIx,
    pub start: i64,
}

/// What was last written for one flag.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Slot {
    pub rev: u64,
    /// What decides a streaming re-emission: the material state.
    pub sig: u64,
    /// The event time the flag was written at.
    pub written_at: i64,
    pub raised: bool,
    pub still_up: bool,
    /// A hash of everything the flag said, kept in debug builds to check that an unchanged
    /// revision always means an unchanged flag.
    pub content: u64,
}

/// What was last written of one cohort (see [`crate::cohort`]): its revision, and how many
/// pages it had, fewer than which it never has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct CohortMark {
    pub rev: u64,
    pub pages: u32,
}

/// Per labelled message: everything the model needs beyond the compact record.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Hot {
    pub msg: MsgIx,
    /// The newest assertion per (scope, source, code).
    pub labels: Vec<LabelEntry>,
    /// Every distinct label event, sorted: their number counts in the revision.
    pub label_events: Vec<LabelEntry>,
    /// Whether the message counts as conduct (a live category label at or above the floor).
    pub live: bool,
    pub resharers: HashMap<UserIx, Resharer>,
    pub extra: HashMap<UserIx, Vec<ReshareIx>>,
    pub agg: HashMap<ReshareIx, Agg>,
    /// The deepest chain of reshares, counted up to `limits.chain_levels` + 1.
    pub depth: u32,
    pub resharer_audience: u64,
    /// Resharers (the author aside) whose start is within `conduct.pile_on_burst_secs` of the
    /// posting, once the post is known: a pile-on's burst.
    pub burst: u32,
    /// How early every resharer's start is, summed: it grows with every resharer and every
    /// start that moves earlier, so the author's revision moves whenever the burst can.
    pub starts: u64,
    /// Every person this message was ever seen targeting (only grows).
    pub targets_ever: Vec<UserIx>,
    /// The people it targets now, as registered in the target index.
    pub targets_now: Vec<UserIx>,
    pub slots: HashMap<(UserIx, Subject, Category), Slot>,
    /// The resharer cohorts written, per category.
    pub cohorts: Vec<(Category, CohortMark)>,
    pub dirty_all: bool,
    pub dirty: Vec<Who>,
    pub queued: bool,
    /// On the engine's stale list: work was held back for lack of credit, and the next flush
    /// does it.
    pub stale: bool,
    /// The reach sums must be rebuilt before the next evaluation.
    pub restructured: bool,
    pub credit: i64,
    /// Where the last partial pass over every subject stopped, so the next one goes on from
    /// there instead of starting over.
    pub cursor: UserIx,
}

impl Hot {
    pub(super) fn empty() -> Hot {
        Hot {
            msg: MsgIx::NONE,
            labels: Vec::new(),
            label_events: Vec::new(),
            live: false,
            resharers: HashMap::new(),
            extra: HashMap::new(),
            agg: HashMap::new(),
            depth: 0,
            resharer_audience: 0,
            burst: 0,
            starts: 0,
            targets_ever: Vec::new(),
            targets_now: Vec::new(),
            slots: HashMap::new(),
            cohorts: Vec::new(),
            dirty_all: false,
            dirty: Vec::new(),
            queued: false,
            stale: false,
            restructured: false,
            credit: 0,
            cursor: UserIx::MIN,
        }
    }

    /// Every reshare of the message by `user`.
    pub(super) fn reshares_by(&self, user: UserIx) -> impl Iterator<Item = ReshareIx> + '_ {
        let first = self.resharers.get(&user).map(|r| r.first);
        first
            .into_iter()
            .chain(self.extra.get(&user).into_iter().flatten().copied())
    }
}

impl Engine {
    /// An event about message `m` earns it credit, if it is labelled.
    pub(super) fn earn(&mut self, m: MsgIx) {
        let h = self.store.msgs.get(m).hot;
        if h != HotIx::NONE {
            let hot = &mut self.hot[h.usize()];
            hot.credit = (hot.credit + CREDIT_PER_EVENT).min(CREDIT_CAP);
        }
    }

    /// Makes a message hot (labelled). Its reach sums are built before its first evaluation.
    pub(super) fn heat(&mut self, m: MsgIx) -> HotIx {
        let h = self.store.msgs.get(m).hot;
        if h != HotIx::NONE {
            return h;
        }
        let fresh = Hot {
            msg: m,
            restructured: true,
            ..Hot::empty()
        };
        let h = if let Some(h) = self.hot_free.pop() {
            self.hot[h.usize()] = fresh;
            h
        } else {
            self.hot.push(fresh);
            HotIx(self.hot.len() as u32 - 1)
        };
        self.store.msgs.get_mut(m).hot = h;
        self.mark(m, Who::ALL);
        h
    }

    /// The structure of message `m`'s reshares changed: its sums are rebuilt before it is
    /// next evaluated.
    pub(super) fn restructure(&mut self, m: MsgIx) {
        let h = self.store.msgs.get(m).hot;
        if h != HotIx::NONE {
            self.hot[h.usize()].restructured = true;
            self.mark(m, Who::ALL);
        }
    }

    /// What rebuilding a hot message's sums costs: each reshare walks up its chain.
    pub(super) fn rebuild_cost(&self, h: HotIx) -> i64 {
        let m = self.hot[h.usize()].msg;
        i64::from(self.store.msgs.get(m).reshares) * (i64::from(self.policy.limits.chain_levels) + 1)
    }

    /// Recomputes a hot message's resharers, reach sums, depth and audience from its reshare
    /// list, resolving what forwarding records and late `via`s left open, and registers its
    /// resharers' conduct.
    pub(super) fn rebuild(&mut self, h: HotIx) {
        let m = self.hot[h.usize()].msg;
        let list = self.store.reshares_of(m);
        self.work = self.work.saturating_add(list.len() as u64);
        for &r in &list {
            self.original_of(r);
        }
        for &r in &list {
            if let Some(v) = self.via.via_of(r).cloned()
                && let Some(crate::store::Entity::Reshare(v)) = self.store.find(&v)
            {
                self.resolve_via(r, v);
            }
        }
        let hot = &mut self.hot[h.usize()];
        hot.resharers.clear();
        hot.extra.clear();
        hot.agg.clear();
        hot.depth = 0;
        hot.resharer_audience = 0;
        hot.burst = 0;
        hot.starts = 0;
        hot.restructured = false;
        for &r in &list {
            self.hot_add(h, r);
        }
        let mut users: Vec<UserIx> = self.hot[h.usize()].resharers.keys().copied().collect();
        users.sort_unstable();
        let msg = self.store.msgs.get(m);
        if msg.known() && msg.author() != UserIx::NONE {
            users.push(msg.author());
        }
        let changed: Vec<_> = users
            .into_iter()
            .filter_map(|u| self.sync_subject(m, u).map(|moved| (u, moved)))
            .collect();
        if changed.len() <= super::RELATED_AT_ONCE {
            for (u, moved) in changed {
                self.mark_conduct(u, m, moved);
            }
        } else {
            self.deferred_users.extend(changed.into_iter().map(|(u, _)| u));
        }
        self.mark(m, Who::ALL);
    }

    /// Adds reshare `r` to its hot message's resharers and to the sums of at most
    /// `limits.chain_levels` reshares above it; returns the accounts whose reach changed.
    fn hot_add(&mut self, h: HotIx, r: ReshareIx) -> Vec<UserIx> {
        let levels = self.policy.limits.chain_levels;
        let rs = self.store.rss.get(r);
        let (user, at) = (rs.author, rs.at);
        let m = self.hot[h.usize()].msg;
        let author = self.store.msgs.get(m).author();
        let followers = u64::from(self.users.get(user).followers);
        let mut changed = vec![user];
        // The ancestors first: `parent_of` reads the store, the sums are the hot entry's.
        let mut chain = Vec::new();
        let mut p = self.parent_of(r);
        while p != ReshareIx::NONE && chain.len() < levels as usize {
            chain.push(p);
            p = self.parent_of(p);
        }
        self.work = self.work.saturating_add(1 + chain.len() as u64);
        let burst_end = self.burst_end(m);
        let hot = &mut self.hot[h.usize()];
        match hot.resharers.get_mut(&user) {
            None => {
                hot.resharers.insert(user, Resharer { first: r, start: at });
                if user != author {
                    hot.resharer_audience += followers;
                }
                hot.starts = hot.starts.saturating_add(earliness(at));
                if user != author && at <= burst_end {
                    hot.burst += 1;
                }
            }
            Some(first) => {
                let before = first.start;
                first.start = first.start.min(at);
                let after = first.start;
                hot.extra.entry(user).or_default().push(r);
                hot.starts = hot.starts.saturating_add(earliness(after) - earliness(before));
                if user != author && before > burst_end && after <= burst_end {
                    hot.burst += 1;
                }
            }
        }
        for (i, &p) in chain.iter().enumerate() {
            let ps = self.store.rss.get(p);
            let a = hot.agg.entry(p).or_default();
            a.count += 1;
            if ps.author != user {
                a.followers += followers;
            }
            a.depth_below = a.depth_below.max(i as u32 + 1);
            changed.push(ps.author);
        }
        // A chain longer than the walk reads as `chain_levels + 1` deep.
        hot.depth = hot.depth.max(chain.len() as u32 + 1);
        changed
    }

    /// A new reshare of a hot message: the sums, its resharer's conduct and the flags whose
    /// reach changed.
    pub(super) fn add_to_hot(&mut self, h: HotIx, r: ReshareIx) {
        if self.hot[h.usize()].restructured {
            // The rebuild will count it.
            let m = self.hot[h.usize()].msg;
            self.mark(m, Who::ALL);
            return;
        }
        let m = self.hot[h.usize()].msg;
        let user = self.store.rss.get(r).author;
        let changed = self.hot_add(h, r);
        if let Some(moved) = self.sync_subject(m, user) {
            self.mark_conduct(user, m, moved);
        }
        self.mark(m, Who::AUTHOR);
        for u in changed {
            self.mark(m, Who::account(u));
        }
    }

    /// Recomputes a resharer's start from their reshares (after one of them moved earlier).
    pub(super) fn refresh_resharer_start(&mut self, h: HotIx, user: UserIx) {
        let hot = &self.hot[h.usize()];
        let m = hot.msg;
        let start = hot.reshares_by(user).map(|r| self.store.rss.get(r).at).min();
        let (burst_end, author) = (self.burst_end(m), self.store.msgs.get(m).author());
        let hot = &mut self.hot[h.usize()];
        if let (Some(start), Some(rs)) = (start, hot.resharers.get_mut(&user)) {
            let before = rs.start;
            rs.start = start;
            // Starts only move earlier.
            hot.starts = hot
                .starts
                .saturating_add(earliness(start).saturating_sub(earliness(before)));
            if user != author && before > burst_end && start <= burst_end {
                hot.burst += 1;
            }
        }
    }

    /// The end of message `m`'s pile-on burst: `conduct.pile_on_burst_secs` after its posting,
    /// or before every time while the post is not known.
    pub(super) fn burst_end(&self, m: MsgIx) -> i64 {
        let msg = self.store.msgs.get(m);
        if !msg.known() {
            return i64::MIN;
        }
        msg.posted_at
            .saturating_add(self.policy.conduct.pile_on_burst_secs as i64 * 1000)
    }

    /// The post of a hot message arrived after its reshares: its author is known now. The
    /// author's own reshares, if any, no longer count in the resharers' audience.
    pub(super) fn author_known(&mut self, m: MsgIx) {
        let h = self.store.msgs.get(m).hot;
        let author = self.store.msgs.get(m).author();
        if h == HotIx::NONE || author == UserIx::NONE {
            return;
        }
        let followers = u64::from(self.users.get(author).followers);
        let hot = &mut self.hot[h.usize()];
        if !hot.restructured && hot.resharers.contains_key(&author) {
            hot.resharer_audience -= followers;
        }
    }

    /// Account `u`'s follower count grew by `delta`: the reach sums of the labelled messages it
    /// reshared grow with it. With many such messages, they are rebuilt at the next flush.
    pub(super) fn followers_grew(&mut self, u: UserIx, delta: u64) {
        if self.conduct.len(u) > super::RELATED_AT_ONCE {
            self.deferred_growth.push(u);
            return;
        }
        let levels = self.policy.limits.chain_levels as usize;
        for m in self.conduct.messages(u) {
            let h = self.store.msgs.get(m).hot;
            if h == HotIx::NONE || self.hot[h.usize()].restructured {
                continue;
            }
            let author = self.store.msgs.get(m).author();
            let reshares: Vec<ReshareIx> = self.hot[h.usize()].reshares_by(u).collect();
            if reshares.is_empty() {
                continue;
            }
            if u != author {
                self.hot[h.usize()].resharer_audience += delta;
            }
            for r in reshares {
                let mut p = self.parent_of(r);
                let mut steps = 0;
                while p != ReshareIx::NONE && steps < levels {
                    if self.store.rss.get(p).author != u {
                        let hot = &mut self.hot[h.usize()];
                        hot.agg.entry(p).or_default().followers += delta;
                    }
                    p = self.parent_of(p);
                    steps += 1;
                }
                self.work = self.work.saturating_add(1 + steps as u64);
            }
        }
    }

    pub(super) fn merge_label(&mut self, h: HotIx, entry: super::hot::LabelEntry) {
        // Two assertions of one rank that name different people are told apart by the
        // person's id, never by the handle it happens to have: handles depend on arrival order.
        let users = &self.users;
        let target = |u: UserIx| if u == UserIx::NONE { "" } else { users.name(u) };
        let hot = &mut self.hot[h.usize()];
        match hot
            .labels
            .iter_mut()
            .find(|l| l.scope == entry.scope && l.source == entry.source && l.code == entry.code)
        {
            Some(l) if (entry.rank(), target(entry.target)) > (l.rank(), target(l.target)) => *l = entry,
            Some(_) => {}
            None => hot.labels.push(entry),
        }
    }

    /// Takes the labels of placeholder `p` (hot entry `h`) as it becomes a reshare, and frees
    /// its hot entry: the original will carry them.
    pub(super) fn take_labels(&mut self, h: HotIx, p: MsgIx) -> (Vec<LabelEntry>, Vec<LabelEntry>) {
        let hot = &mut self.hot[h.usize()];
        let labels = std::mem::take(&mut hot.labels);
        let events = std::mem::take(&mut hot.label_events);
        self.cool(h, p, false);
        (labels, events)
    }

    /// Gives message `m` the labels a placeholder carried, as the placeholder turns out to be a
    /// reshare by `resharer`. Labels sent to the placeholder's own id were sent to that reshare,
    /// so they become context of that resharer's flag, exactly as if they had come after the
    /// reshare; labels already scoped to a resharer of the placeholder keep their scope. Since
    /// no label given here applies to the message itself, none of them targets anyone in the
    /// target index.
    pub(super) fn give_labels(&mut self, m: MsgIx, resharer: UserIx, labels: Vec<LabelEntry>, events: Vec<LabelEntry>) {
        let scoped = |mut l: LabelEntry| {
            if l.scope == UserIx::NONE {
                l.scope = resharer;
            }
            l
        };
        let h = self.heat(m);
        let hot = &mut self.hot[h.usize()];
        for e in events.into_iter().map(scoped) {
            if let Err(pos) = hot.label_events.binary_search(&e) {
                hot.label_events.insert(pos, e);
            }
        }
        for l in labels {
            self.merge_label(h, scoped(l));
        }
        self.earn(m);
        self.subject_moved(m);
    }

    /// The labels that speak of one subject of hot message `h`: the message's own labels and,
    /// for a resharer (`scope`, or `NONE` for the author), the labels sent to their reshares.
    /// Where the same source said something of the same code of both, its newest assertion
    /// wins, as between two assertions about the message; at equal rank the one about the
    /// reshare wins, being the more specific.
    pub(super) fn labels_for(&self, h: HotIx, scope: UserIx) -> Vec<&LabelEntry> {
        let labels = &self.hot[h.usize()].labels;
        let mut v: Vec<&LabelEntry> = labels
            .iter()
            .filter(|l| l.scope == UserIx::NONE || (scope != UserIx::NONE && l.scope == scope))
            .collect();
        if scope != UserIx::NONE && v.iter().any(|l| l.scope == scope) {
            let users = &self.users;
            let target = |u: UserIx| if u == UserIx::NONE { "" } else { users.name(u) };
            v.sort_by(|a, b| {
                (&*a.source, a.code)
                    .cmp(&(&*b.source, b.code))
                    .then_with(|| (b.rank(), target(b.target)).cmp(&(a.rank(), target(a.target))))
                    .then_with(|| (a.scope == UserIx::NONE).cmp(&(b.scope == UserIx::NONE)))
            });
            v.dedup_by(|later, first| later.source == first.source && later.code == first.code);
        }
        v
    }

    /// Unlinks a hot message from the conduct and target indexes and frees its slot. When the
    /// message is evicted (`remember`), what conduct and mobbing need of it is kept as history.
    ///
    /// Each entry is brought up to date before it goes: a sum keeps what an entry measured when
    /// it went, and an entry still waiting for a deferred sync (one of many subjects) would
    /// measure less than it does once synced. Whether the sync ran first depends on when the
    /// worker flushed, which a new owner replaying the same records does at other moments; synced
    /// here, what the sums keep is the same either way.
    pub(super) fn cool(&mut self, h: HotIx, m: MsgIx, remember: bool) {
        let mut subjects: Vec<UserIx> = self.hot[h.usize()].resharers.keys().copied().collect();
        let author = self.store.msgs.get(m).author();
        if author != UserIx::NONE && self.store.msgs.get(m).known() {
            subjects.push(author);
        }
        subjects.sort_unstable();
        subjects.dedup();
        if !self.hot[h.usize()].restructured {
            for &u in &subjects {
                if let Some(moved) = self.sync_subject(m, u) {
                    self.mark_conduct(u, m, moved);
                }
            }
        }
        for u in subjects {
            self.unregister_subject(m, u, remember);
        }
        let targets = std::mem::take(&mut self.hot[h.usize()].targets_ever);
        for t in targets {
            self.unregister_target(m, t, remember);
        }
        self.hot[h.usize()] = Hot::empty();
        self.hot_free.push(h);
    }
}
