//! Snapshots: an engine's whole state as bytes, and an engine back from them.
//!
//! The adapters keep a partition's state safe this way: they write a snapshot with the input
//! offset it reflects (to local disk, to a compacted changelog topic), and a new owner of the
//! partition restores it and applies only the records after that offset, instead of replaying
//! the partition from its beginning. Because every update is idempotent and commutative, an
//! engine restored from a snapshot and fed the rest of the input reaches exactly the state,
//! revisions included, of an engine that never stopped.
//!
//! The format is [postcard](https://docs.rs/postcard) of a private mirror of the engine's
//! fields in a [`crate::frame`] with a format version and, as its header, a fingerprint of the
//! policy: a snapshot
//! taken under other weights or horizons would not match what the policy in force computes, so
//! it is refused and the caller falls back to a replay. Hash indexes are not written; they are
//! rebuilt on restore. The policy itself is not written: it comes from configuration.

use std::collections::{BTreeMap, BTreeSet};

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use super::{Conducts, Engine, EventClock, Hot, Reports, Targets};
use crate::exposure::Change;
use crate::frame::{self, FrameError};
use crate::policy::Policy;
use crate::store::{HotIx, Id, IdSet, Message, MsgIx, Reshare, ReshareIx, Slab, Store, User, UserIx, Users};

/// Bumped whenever the engine's state changes shape; older snapshots are then refused, and the
/// caller rebuilds the state by replaying its input. Format 2 keeps ids whole (format 1 kept
/// hashes of them and 32-bit offsets of account ids); format 3 keeps whether each source of
/// event time is idle, and the event time the sources allowed; format 4 keeps each direct
/// message's number of recipients; format 5 keeps labels and reports sent to a reshare apart,
/// by resharer, and the contacts (posts mentioning a person) that courses of conduct count;
/// format 6 keeps the resharer cohorts written for each labelled message.
pub const SNAPSHOT_FORMAT: u32 = 6;

/// The first bytes of every snapshot. The frame's checksum covers the body, so a torn or
/// damaged snapshot is refused rather than restored wrong.
pub(super) const MAGIC: &[u8; 8] = b"modsnap\0";

/// Why a snapshot could not be restored. The caller rebuilds the state another way.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a modsignal snapshot")]
    NotASnapshot,
    #[error("snapshot format {found}; this build reads format {SNAPSHOT_FORMAT}")]
    Format { found: u32 },
    #[error("the snapshot was taken under another policy")]
    Policy,
    #[error("the snapshot is damaged: {0}")]
    Damaged(String),
}

impl From<FrameError> for SnapshotError {
    fn from(e: FrameError) -> SnapshotError {
        match e {
            FrameError::NotAFrame => SnapshotError::NotASnapshot,
            FrameError::Format { found, .. } => SnapshotError::Format { found },
            FrameError::Checksum => SnapshotError::Damaged("checksum mismatch".into()),
        }
    }
}

/// A fingerprint of everything in a policy, so that a snapshot is restored only under the
/// policy it was taken with.
pub fn policy_fingerprint(policy: &Policy) -> u64 {
    let text = serde_json::to_string(policy).expect("a policy serializes");
    xxh3_64(text.as_bytes())
}

/// The engine's fields, borrowed, in the order [`Owned`] reads them back.
#[derive(Serialize)]
struct Borrowed<'a> {
    msgs: &'a Slab<Message>,
    rss: &'a Slab<Reshare>,
    users: &'a Slab<User>,
    user_lasts: Vec<u32>,
    removals: &'a HashMap<Id, Vec<Change>>,
    accounts: &'a HashMap<UserIx, Vec<Change>>,
    reports: &'a HashMap<MsgIx, Reports>,
    hot: &'a [Hot],
    conduct: &'a Conducts,
    targets: &'a Targets,
    via: &'a super::via::Waiting,
    timers: &'a BTreeSet<(i64, MsgIx, super::Who)>,
    queue: &'a [HotIx],
    stale: &'a [HotIx],
    deferred_users: &'a [UserIx],
    deferred_targets: &'a [UserIx],
    deferred_growth: &'a [UserIx],
    deferred_sync: &'a [MsgIx],
    clock: &'a EventClock,
    marks: &'a BTreeMap<String, super::SourceMark>,
    source_time: Option<i64>,
    wm_floor: i64,
    next_sweep: i64,
    hot_free: &'a [HotIx],
    evicted: u64,
    seen_ids: &'a [IdSet; 2],
    seen_since: i64,
    work: u64,
}

#[derive(Deserialize)]
struct Owned {
    msgs: Slab<Message>,
    rss: Slab<Reshare>,
    users: Slab<User>,
    user_lasts: Vec<u32>,
    removals: HashMap<Id, Vec<Change>>,
    accounts: HashMap<UserIx, Vec<Change>>,
    reports: HashMap<MsgIx, Reports>,
    hot: Vec<Hot>,
    conduct: Conducts,
    targets: Targets,
    via: super::via::Waiting,
    timers: BTreeSet<(i64, MsgIx, super::Who)>,
    queue: Vec<HotIx>,
    stale: Vec<HotIx>,
    deferred_users: Vec<UserIx>,
    deferred_targets: Vec<UserIx>,
    deferred_growth: Vec<UserIx>,
    deferred_sync: Vec<MsgIx>,
    clock: EventClock,
    marks: BTreeMap<String, super::SourceMark>,
    source_time: Option<i64>,
    wm_floor: i64,
    next_sweep: i64,
    hot_free: Vec<HotIx>,
    evicted: u64,
    seen_ids: [IdSet; 2],
    seen_since: i64,
    work: u64,
}

impl Engine {
    /// The whole state as bytes, for [`Engine::restore`]. Reads the state only: taking a
    /// snapshot changes nothing, and two engines in the same state write snapshots that
    /// restore to the same state.
    pub fn snapshot(&self) -> Vec<u8> {
        let body = Borrowed {
            msgs: &self.store.msgs,
            rss: &self.store.rss,
            users: self.users.slab(),
            user_lasts: self.users.lasts(),
            removals: &self.removals,
            accounts: &self.accounts,
            reports: &self.reports,
            hot: &self.hot,
            conduct: &self.conduct,
            targets: &self.targets,
            via: &self.via,
            timers: &self.timers,
            queue: &self.queue,
            stale: &self.stale,
            deferred_users: &self.deferred_users,
            deferred_targets: &self.deferred_targets,
            deferred_growth: &self.deferred_growth,
            deferred_sync: &self.deferred_sync,
            clock: &self.clock,
            marks: &self.marks,
            source_time: self.source_time,
            wm_floor: self.wm_floor,
            next_sweep: self.next_sweep,
            hot_free: &self.hot_free,
            evicted: self.evicted,
            seen_ids: &self.seen_ids,
            seen_since: self.seen_since,
            work: self.work,
        };
        let fingerprint = policy_fingerprint(&self.policy).to_le_bytes();
        let capacity = 36 + self.store.msgs.slots() as usize * 64;
        frame::seal(MAGIC, SNAPSHOT_FORMAT, &fingerprint, capacity, |out| {
            postcard::to_extend(&body, out).expect("serializing to a Vec cannot fail")
        })
    }

    /// An engine in the state `bytes` were taken from, running `policy`, which must be the
    /// policy the snapshot was taken under. The frame is checked before the policy, so a
    /// snapshot that is both damaged and of another policy is refused as damaged.
    pub fn restore(policy: Policy, bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let (fingerprint, body) = frame::open::<8>(MAGIC, SNAPSHOT_FORMAT, bytes)?;
        if u64::from_le_bytes(*fingerprint) != policy_fingerprint(&policy) {
            return Err(SnapshotError::Policy);
        }
        let o: Owned = postcard::from_bytes(body).map_err(|e| SnapshotError::Damaged(e.to_string()))?;
        let damaged = |what: &str| SnapshotError::Damaged(what.to_owned());
        let store = Store::from_slabs(o.msgs, o.rss).ok_or_else(|| damaged("two records share an id"))?;
        let users = Users::from_slab(o.users, &o.user_lasts).ok_or_else(|| damaged("account ids"))?;
        let mut engine = Engine::new(policy);
        engine.store = store;
        engine.users = users;
        engine.removals = o.removals;
        engine.accounts = o.accounts;
        engine.reports = o.reports;
        engine.hot = o.hot;
        engine.conduct = o.conduct;
        engine.targets = o.targets;
        engine.targets.rebuild_by_sender();
        engine.via = o.via;
        engine.timers = o.timers;
        engine.queue = o.queue;
        engine.stale = o.stale;
        engine.deferred_users = o.deferred_users;
        engine.deferred_targets = o.deferred_targets;
        engine.deferred_growth = o.deferred_growth;
        engine.deferred_sync = o.deferred_sync;
        engine.clock = o.clock;
        engine.marks = o.marks;
        engine.source_time = o.source_time;
        engine.wm_floor = o.wm_floor;
        engine.next_sweep = o.next_sweep;
        engine.hot_free = o.hot_free;
        engine.evicted = o.evicted;
        engine.seen_ids = o.seen_ids;
        engine.seen_since = o.seen_since;
        engine.work = o.work;
        engine.check_references().map_err(SnapshotError::Damaged)?;
        Ok(engine)
    }

    /// Checks that every handle the state holds points at a live record of its table, so that
    /// a damaged snapshot that still parses is refused rather than panicking later (and, after
    /// every retention sweep in debug builds, that nothing refers to a forgotten record).
    pub(super) fn check_references(&self) -> Result<(), String> {
        let free_msgs = self.store.msgs.free_bits();
        let free_rss = self.store.rss.free_bits();
        let free_users = self.users.free_bits();
        let msg = |ix: MsgIx| ix == MsgIx::NONE || free_msgs.get(ix.usize()) == Some(&false);
        let rs = |ix: ReshareIx| ix == ReshareIx::NONE || free_rss.get(ix.usize()) == Some(&false);
        let user = |ix: UserIx| ix == UserIx::NONE || free_users.get(ix.usize()) == Some(&false);
        // A message's hot slot is its own: the slot names the message back.
        let hot = |ix: HotIx, m: MsgIx| ix == HotIx::NONE || self.hot.get(ix.usize()).is_some_and(|x| x.msg == m);
        for ix in self.store.msgs.handles() {
            let m = self.store.msgs.get(ix);
            if free_msgs[ix.usize()] {
                // A free slot is as `Store::free_message` leaves it: dead and labelled by no
                // hot slot, so that a timer still naming it (a timer is not taken off when its
                // message goes) passes it by.
                if m.bits & crate::store::BIT_DEAD == 0 || m.hot != HotIx::NONE {
                    return Err(format!("free message slot {} is not empty", ix.0));
                }
                continue;
            }
            let ok = if m.forwards() {
                rs(m.forwarded_to()) && m.forwarded_to() != ReshareIx::NONE
            } else {
                user(m.author()) && user(m.mention) && rs(m.tail) && hot(m.hot, ix)
            };
            if !ok {
                return Err(format!("message `{}` points outside the state", self.store.msg_id(ix)));
            }
        }
        for ix in self.store.rss.handles() {
            if free_rss[ix.usize()] {
                continue;
            }
            let r = self.store.rss.get(ix);
            if !(msg(r.original)
                && r.original != MsgIx::NONE
                && rs(r.parent)
                && user(r.author)
                && rs(r.next)
                && r.next != ReshareIx::NONE)
            {
                return Err(format!("reshare `{}` points outside the state", self.store.rs_id(ix)));
            }
        }
        let live_msg = |ix: MsgIx| ix != MsgIx::NONE && msg(ix);
        let live_rs = |ix: ReshareIx| ix != ReshareIx::NONE && rs(ix);
        let subject = |w: super::Who| match w.get() {
            super::Subjects::Author => true,
            super::Subjects::Account(u) => user(u),
            super::Subjects::All => false,
        };
        for (h, x) in self.hot.iter().enumerate().filter(|(_, x)| x.msg != MsgIx::NONE) {
            let ok = live_msg(x.msg)
                && self.store.msgs.get(x.msg).hot == HotIx(h as u32)
                && x.resharers.iter().all(|(&u, r)| user(u) && live_rs(r.first))
                && x.extra.iter().all(|(&u, v)| user(u) && v.iter().all(|&r| live_rs(r)))
                && x.agg.keys().all(|&r| live_rs(r))
                && x.slots.keys().all(|&(u, _, _)| user(u))
                && x.labels
                    .iter()
                    .chain(&x.label_events)
                    .all(|l| user(l.target) && user(l.scope))
                && x.targets_ever
                    .iter()
                    .chain(&x.targets_now)
                    .all(|&u| user(u) && u != UserIx::NONE)
                && x.dirty.iter().all(|&u| subject(u));
            if !ok {
                return Err(format!(
                    "a labelled message (slot {}) points outside the state",
                    x.msg.0
                ));
            }
        }
        for (&m, r) in &self.reports {
            let sorted = std::iter::once(&r.message)
                .chain(r.resharers.values())
                .all(|l| l.users.windows(2).all(|w| w[0] < w[1]));
            if !live_msg(m) || !sorted || r.handles().any(|u| !user(u) || u == UserIx::NONE) {
                return Err("reports point outside the state".into());
            }
        }
        let person = |u: UserIx| user(u) && u != UserIx::NONE;
        // Index entries agree with the messages they name, so that evicting a message takes
        // every entry of it away.
        let hot_of = |m: MsgIx| {
            let h = self.store.msgs.get(m).hot;
            (h != HotIx::NONE && h.usize() < self.hot.len()).then(|| &self.hot[h.usize()])
        };
        let is_subject = |m: MsgIx, u: UserIx| {
            let msg = self.store.msgs.get(m);
            hot_of(m).is_some_and(|x| (msg.author() == u && msg.known()) || x.resharers.contains_key(&u))
        };
        let targeted = |m: MsgIx, t: UserIx| hot_of(m).is_some_and(|x| x.targets_ever.contains(&t));
        let conduct_ok = self.conduct.names_only(live_msg, person, is_subject);
        let targets_ok = self.targets.names_only(live_msg, person, targeted);
        if !conduct_ok {
            return Err("the conduct index names a message or account not in state".into());
        }
        if !targets_ok {
            return Err("the targets index names a message or account not in state".into());
        }
        if self.accounts.keys().any(|&u| !user(u) || u == UserIx::NONE) {
            return Err("an account change names an account not in state".into());
        }
        // A cohort written has at least one page and at most one per resharer (a page holds
        // one member at least when written, and a cohort never has fewer pages than before),
        // so a damaged count cannot make the next settle write billions of empty pages (an
        // out-of-memory finding of the frame fuzz target).
        let cohorts_ok = self.hot.iter().filter(|x| x.msg != MsgIx::NONE).all(|x| {
            let most = u32::try_from(x.resharers.len().max(1)).unwrap_or(u32::MAX);
            x.cohorts.iter().all(|(_, k)| (1..=most).contains(&k.pages))
        });
        if !cohorts_ok {
            return Err("a resharer cohort has more pages than resharers".into());
        }
        // Every listed reshare is pending on the id of its list, under its own time, so that
        // placing or dropping it takes it off the list.
        let waiting_ok = self.via.consistent(live_rs, |r| self.store.rss.get(r).at);
        let slots = MsgIx(self.store.msgs.slots());
        let hots = HotIx(self.hot.len() as u32);
        // A free hot slot is listed once and holds no message: `heat` hands it out as it is.
        let mut listed = vec![false; self.hot.len()];
        let hot_free_ok = self.hot_free.iter().all(|&h| {
            self.hot.get(h.usize()).is_some_and(|x| x.msg == MsgIx::NONE)
                && !std::mem::replace(&mut listed[h.usize()], true)
        });
        let lists_ok = hot_free_ok
            && self.timers.iter().all(|&(_, m, u)| m < slots && subject(u))
            && self.queue.iter().chain(&self.stale).all(|&h| h < hots)
            && self.deferred_sync.iter().all(|&m| m < slots)
            && self
                .deferred_users
                .iter()
                .chain(&self.deferred_targets)
                .chain(&self.deferred_growth)
                .all(|&u| user(u) && u != UserIx::NONE);
        if !waiting_ok || !lists_ok {
            return Err("a pending list points outside the state".into());
        }
        self.check_times()?;
        self.check_confidences()?;
        self.check_lists()
    }

    /// Checks that every label's confidence is in 0..=1, as the decoder accepts it: the model
    /// takes its logarithm, so a confidence of infinity would print a factor of infinite weight
    /// (found by the `frame` fuzz target).
    fn check_confidences(&self) -> Result<(), String> {
        let ok = self.hot.iter().filter(|x| x.msg != MsgIx::NONE).all(|x| {
            x.labels
                .iter()
                .chain(&x.label_events)
                .all(|l| (0.0..=1.0).contains(&l.confidence))
        });
        if !ok {
            return Err("a label confidence outside 0..1".into());
        }
        Ok(())
    }

    /// Checks that the reshares form one circular list per message, each reshare in exactly
    /// one, and that every forwarding record leads to a message: the walks over them then end.
    fn check_lists(&self) -> Result<(), String> {
        let free_msgs = self.store.msgs.free_bits();
        let free_rss = self.store.rss.free_bits();
        let mut seen = vec![false; self.store.rss.slots() as usize];
        for m in self.store.msgs.handles() {
            let msg = self.store.msgs.get(m);
            if free_msgs[m.usize()] || msg.forwards() || msg.tail == ReshareIx::NONE {
                continue;
            }
            let tail = msg.tail;
            let mut cur = tail;
            loop {
                cur = self.store.rss.get(cur).next;
                if free_rss[cur.usize()] || std::mem::replace(&mut seen[cur.usize()], true) {
                    return Err(format!(
                        "the reshares of message `{}` do not form a list",
                        self.store.msg_id(m)
                    ));
                }
                if cur == tail {
                    break;
                }
            }
        }
        if self
            .store
            .rss
            .handles()
            .any(|r| !free_rss[r.usize()] && !seen[r.usize()])
        {
            return Err("a reshare in no message's list".into());
        }
        for m in self.store.msgs.handles() {
            if free_msgs[m.usize()] || !self.store.msgs.get(m).forwards() {
                continue;
            }
            let mut cur = m;
            let mut steps = 0;
            while !free_msgs[cur.usize()] && self.store.msgs.get(cur).forwards() {
                cur = self.store.rss.get(self.store.msgs.get(cur).forwarded_to()).original;
                steps += 1;
                if steps > self.store.msgs.slots() {
                    return Err("forwarding records in a loop".into());
                }
            }
            if free_msgs[cur.usize()] {
                return Err("a forwarding record leads to a freed message".into());
            }
        }
        Ok(())
    }

    /// Checks that every time the state holds is unset or within two centuries of the times
    /// the decoder accepts, so that no arithmetic on times (sums of times and spans of up to a
    /// century, in milliseconds) can overflow after a restore.
    fn check_times(&self) -> Result<(), String> {
        const SPAN: i64 = 200 * 366 * 86_400_000;
        let ok = |t: i64| t == i64::MIN || (crate::time::MIN_TS.0 - SPAN..=crate::time::MAX_TS.0 + SPAN).contains(&t);
        let free_msgs = self.store.msgs.free_bits();
        let free_rss = self.store.rss.free_bits();
        let free_users = self.users.free_bits();
        let msgs = self
            .store
            .msgs
            .handles()
            .filter(|&m| !free_msgs[m.usize()])
            .all(|m| ok(self.store.msgs.get(m).posted_at) && ok(self.store.msgs.get(m).last_at));
        let rss = self
            .store
            .rss
            .handles()
            .filter(|&r| !free_rss[r.usize()])
            .all(|r| ok(self.store.rss.get(r).at));
        let users = self
            .users
            .slab()
            .handles()
            .filter(|&u| !free_users[u.usize()])
            .all(|u| ok(self.users.get(u).minor_at));
        let changes = self
            .removals
            .values()
            .chain(self.accounts.values())
            .flatten()
            .all(|c| ok(c.at));
        let hot = self.hot.iter().filter(|x| x.msg != MsgIx::NONE).all(|x| {
            x.labels.iter().chain(&x.label_events).all(|l| ok(l.at))
                && x.resharers.values().all(|r| ok(r.start))
                && x.slots.values().all(|s| ok(s.written_at))
        });
        let clock = {
            let (a, b) = self.clock.times();
            a.is_none_or(|t| ok(t.0)) && b.is_none_or(|t| ok(t.0))
        };
        let marks = self
            .marks
            .values()
            .all(|m| m.newest.is_none_or(ok) && m.second.is_none_or(ok))
            && self.source_time.is_none_or(ok);
        let scalars = [self.wm_floor, self.next_sweep, self.seen_since].into_iter().all(ok);
        let timers = self.timers.iter().all(|&(t, _, _)| ok(t));
        let indexes = self.conduct.times_within(ok) && self.targets.times_within(ok);
        if !(msgs && rss && users && changes && hot && clock && marks && scalars && timers && indexes) {
            return Err("a time outside what the state can hold".into());
        }
        Ok(())
    }
}
