//! The two indexes conduct and mobbing are counted from, [`Conducts`] (per sender) and
//! [`Targets`] (per person targeted, with their contacts), each one ordered set shared by
//! everyone, and the sums their readers count in revisions.

use std::collections::{BTreeMap, BTreeSet};

use hashbrown::HashMap;

use crate::store::{MsgIx, UserIx};

/// A sender's entry for one labelled message, as last synced.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Entry {
    pub(super) start: i64,
    pub(super) live: bool,
    /// The message's measure: label events plus how early the entry starts.
    pub(super) measure: u64,
}

/// A sender's or a person's sum (see the module docs) and how many messages in state they have
/// entries for.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Sum {
    pub(super) sum: u64,
    pub(super) messages: u32,
}

/// The per-sender index of repeated conduct.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(in crate::engine) struct Conducts {
    pub(super) entries: HashMap<(UserIx, MsgIx), Entry>,
    /// (sender, message), to list a sender's messages.
    pub(super) by_sender: BTreeSet<(UserIx, MsgIx)>,
    /// (sender, start) of the entries that count, with how many start then.
    pub(super) live: BTreeMap<(UserIx, i64), u32>,
    /// (sender, start) of evicted messages that counted.
    pub(super) past: BTreeMap<(UserIx, i64), u32>,
    pub(super) sums: HashMap<UserIx, Sum>,
}

impl Conducts {
    /// How many labelled messages in state `user` is a subject of.
    pub(in crate::engine) fn len(&self, user: UserIx) -> usize {
        self.sums.get(&user).map_or(0, |s| s.messages as usize)
    }
    /// Those messages, in handle order.
    pub(in crate::engine) fn messages(&self, user: UserIx) -> Vec<MsgIx> {
        self.by_sender
            .range((user, MsgIx::MIN)..=(user, MsgIx::MAX))
            .map(|&(_, m)| m)
            .collect()
    }
    /// Every sender the index names, for the retention sweep: those with a sum (entries or
    /// history) and, so that an account is never freed while a key still names it, every key.
    pub(in crate::engine) fn senders(&self) -> impl Iterator<Item = UserIx> + '_ {
        self.sums
            .keys()
            .copied()
            .chain(self.entries.keys().map(|&(u, _)| u))
            .chain(self.live.keys().chain(self.past.keys()).map(|&(u, _)| u))
    }
    /// Whether every sender passes `user` and every message `msg` (a restored snapshot's check).
    /// `subject(m, u)` says whether `u` is a subject of labelled message `m`.
    pub(in crate::engine) fn names_only(
        &self,
        msg: impl Fn(MsgIx) -> bool,
        user: impl Fn(UserIx) -> bool,
        subject: impl Fn(MsgIx, UserIx) -> bool,
    ) -> bool {
        self.entries.len() == self.by_sender.len()
            && self
                .entries
                .keys()
                .all(|&(u, m)| user(u) && msg(m) && subject(m, u) && self.by_sender.contains(&(u, m)))
            && counts_agree(self.by_sender.iter().map(|&(u, _)| u), &self.sums)
            && self.live == self.derived_live()
            && self.live.values().chain(self.past.values()).all(|&n| n > 0)
            && self.live.keys().chain(self.past.keys()).all(|&(u, _)| user(u))
            && self.sums.keys().all(|&u| user(u))
    }
    /// `live` as the entries say it: each entry that counts, at its sender and start. The
    /// index's updates keep the two equal; a restored snapshot where they differ would make
    /// them drift apart (an entry leaving `live` takes away what another put there), so it is
    /// refused.
    pub(super) fn derived_live(&self) -> BTreeMap<(UserIx, i64), u32> {
        let mut live = BTreeMap::new();
        for (&(u, _), e) in &self.entries {
            if e.live {
                add(&mut live, (u, e.start));
            }
        }
        live
    }
    /// Whether every time it holds passes `ok` (a restored snapshot's check).
    pub(in crate::engine) fn times_within(&self, ok: impl Fn(i64) -> bool) -> bool {
        self.entries.values().all(|e| ok(e.start)) && self.live.keys().chain(self.past.keys()).all(|&(_, t)| ok(t))
    }
    /// Forgets a sender's sum once they have neither entries nor history: no flag reads it then.
    pub(super) fn tidy(&mut self, user: UserIx) {
        if self.len(user) == 0 && self.past.range((user, i64::MIN)..=(user, i64::MAX)).next().is_none() {
            self.sums.remove(&user);
        }
    }
}

/// A message's entry in a target's index, as last synced.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Member {
    /// `(time posted, sender)` when the message targets the person now and counts.
    pub(super) counted: Option<(i64, UserIx)>,
    pub(super) measure: u64,
}

/// The per-person index of virtual mobbing.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(in crate::engine) struct Targets {
    pub(super) members: HashMap<(UserIx, MsgIx), Member>,
    /// (person, message), to list the messages aimed at a person.
    pub(super) by_person: BTreeSet<(UserIx, MsgIx)>,
    /// (person, time posted, sender) of the messages that count, with how many.
    pub(super) live: BTreeMap<(UserIx, i64, UserIx), u32>,
    pub(super) past: BTreeMap<(UserIx, i64, UserIx), u32>,
    /// `live` and `past` together keyed (person, sender, time posted), so that one sender's
    /// labelled messages at a person over the course window are a walk over their own, however
    /// many others target the person. Derived: rebuilt on restore, not in the snapshot.
    #[serde(skip)]
    pub(super) by_sender: BTreeMap<(UserIx, UserIx, i64), u32>,
    /// (person, sender, time posted) of every post in state that mentions the person first
    /// (or is sent to them directly), labelled or not, with how many: the contacts a course of
    /// conduct counts, keyed per person and sender so that counting one sender's course visits
    /// only their contacts. Evicted posts leave theirs in `contacts_past`, like `past`.
    pub(super) contacts: BTreeMap<(UserIx, UserIx, i64), u32>,
    pub(in crate::engine) contacts_past: BTreeMap<(UserIx, UserIx, i64), u32>,
    /// (person, sender): when the person first reported a post of the sender's that mentions
    /// them first. Contacts after it went on after the person asked the platform for help.
    pub(super) reported: BTreeMap<(UserIx, UserIx), i64>,
    /// (person, sender): when the platform (or a legal order) first took down a post of the
    /// sender's that mentions them first. Contacts after it went on despite the removal.
    pub(super) removed: BTreeMap<(UserIx, UserIx), i64>,
    /// (person, sender): a sum that grows whenever that sender's course toward that person can
    /// change (a contact, a first report or removal, history forgotten). The revision of the
    /// sender's flags reads only their own, so a contact between two other accounts moves
    /// nothing of theirs (and the Kafka worker, whose engine partitions each see part of a
    /// person's contacts, writes the same revisions as file mode).
    pub(super) courses: BTreeMap<(UserIx, UserIx), u64>,
    pub(super) sums: HashMap<UserIx, Sum>,
}

impl Targets {
    /// Builds `by_sender` from `live` and `past` (after a restore).
    pub(in crate::engine) fn rebuild_by_sender(&mut self) {
        self.by_sender = self.derived_by_sender();
    }
    pub(super) fn derived_by_sender(&self) -> BTreeMap<(UserIx, UserIx, i64), u32> {
        let mut by_sender: BTreeMap<(UserIx, UserIx, i64), u32> = BTreeMap::new();
        for (&(t, at, s), &n) in self.live.iter().chain(&self.past) {
            let e = by_sender.entry((t, s, at)).or_default();
            *e = e.saturating_add(n);
        }
        by_sender
    }
    /// `live` as the members say it: each message that targets its person now and counts, at
    /// its time and sender. Kept equal by every update; a restored snapshot where they differ
    /// is refused (a member leaving would take from `live` what it never added, and `by_sender`
    /// would drift from `live` and `past`: a fuzz finding, `fuzz/regressions/frame/`).
    pub(super) fn derived_live(&self) -> BTreeMap<(UserIx, i64, UserIx), u32> {
        let mut live = BTreeMap::new();
        for (&(t, _), member) in &self.members {
            if let Some((at, s)) = member.counted {
                add(&mut live, (t, at, s));
            }
        }
        live
    }
    pub(in crate::engine) fn len(&self, person: UserIx) -> usize {
        self.sums.get(&person).map_or(0, |s| s.messages as usize)
    }
    pub(in crate::engine) fn messages(&self, person: UserIx) -> Vec<MsgIx> {
        self.by_person
            .range((person, MsgIx::MIN)..=(person, MsgIx::MAX))
            .map(|&(_, m)| m)
            .collect()
    }
    /// Every person and every sender the index names, for the retention sweep.
    pub(in crate::engine) fn people(&self) -> impl Iterator<Item = UserIx> + '_ {
        self.sums
            .keys()
            .copied()
            .chain(self.members.keys().map(|&(t, _)| t))
            .chain(self.live.keys().chain(self.past.keys()).flat_map(|&(t, _, s)| [t, s]))
            .chain(
                self.contacts
                    .keys()
                    .chain(self.contacts_past.keys())
                    .flat_map(|&(t, s, _)| [t, s]),
            )
            .chain(
                self.reported
                    .keys()
                    .chain(self.removed.keys())
                    .chain(self.courses.keys())
                    .flat_map(|&(t, s)| [t, s]),
            )
    }
    /// `targeted(m, t)` says whether labelled message `m` was ever seen targeting `t`.
    pub(in crate::engine) fn names_only(
        &self,
        msg: impl Fn(MsgIx) -> bool,
        user: impl Fn(UserIx) -> bool,
        targeted: impl Fn(MsgIx, UserIx) -> bool,
    ) -> bool {
        self.members.len() == self.by_person.len()
            && self
                .members
                .keys()
                .all(|&(t, m)| user(t) && msg(m) && targeted(m, t) && self.by_person.contains(&(t, m)))
            && counts_agree(self.by_person.iter().map(|&(t, _)| t), &self.sums)
            && self.live == self.derived_live()
            && self
                .live
                .values()
                .chain(self.past.values())
                .chain(self.contacts.values())
                .chain(self.contacts_past.values())
                .all(|&n| n > 0)
            && self.people().all(|u| user(u) && u != UserIx::NONE)
            && self.by_sender == self.derived_by_sender()
    }
    /// Whether every time it holds passes `ok` (a restored snapshot's check).
    pub(in crate::engine) fn times_within(&self, ok: impl Fn(i64) -> bool) -> bool {
        self.members.values().all(|m| m.counted.is_none_or(|(t, _)| ok(t)))
            && self.live.keys().chain(self.past.keys()).all(|&(_, t, _)| ok(t))
            && self
                .contacts
                .keys()
                .chain(self.contacts_past.keys())
                .all(|&(_, _, t)| ok(t))
            && self.reported.values().chain(self.removed.values()).all(|&t| ok(t))
    }
    /// Forgets a person's sum once no message, contact or history names them.
    pub(super) fn tidy(&mut self, person: UserIx) {
        let past = (person, i64::MIN, UserIx::MIN)..=(person, i64::MAX, UserIx::MAX);
        let contacts = (person, UserIx::MIN, i64::MIN)..=(person, UserIx::MAX, i64::MAX);
        let history = self.past.range(past).next().is_some()
            || [&self.contacts, &self.contacts_past]
                .iter()
                .any(|map| map.range(contacts.clone()).next().is_some())
            || [&self.reported, &self.removed].iter().any(|map| {
                map.range((person, UserIx::MIN)..=(person, UserIx::MAX))
                    .next()
                    .is_some()
            });
        if self.len(person) == 0 && !history {
            self.sums.remove(&person);
            // No flag reads a course toward the person any more: no message in state targets
            // them (each one is a member), and no history is left.
            let gone: Vec<(UserIx, UserIx)> = self
                .courses
                .range((person, UserIx::MIN)..=(person, UserIx::MAX))
                .map(|(&k, _)| k)
                .collect();
            for k in gone {
                self.courses.remove(&k);
            }
        }
    }

    /// Grows the course sum of (person, sender) by `n`.
    pub(super) fn bump_course(&mut self, person: UserIx, sender: UserIx, n: u64) {
        let sum = self.courses.entry((person, sender)).or_default();
        *sum = sum.saturating_add(n);
    }
}

/// Whether each key's count of messages in `sums` is the number of times it comes in `keys`
/// (sorted), a restored snapshot's check: the counts are taken from as entries go.
pub(super) fn counts_agree(keys: impl Iterator<Item = UserIx>, sums: &HashMap<UserIx, Sum>) -> bool {
    let mut counted: HashMap<UserIx, u32> = HashMap::new();
    for k in keys {
        *counted.entry(k).or_default() += 1;
    }
    sums.iter()
        .all(|(k, s)| counted.get(k).copied().unwrap_or(0) == s.messages)
        && counted.keys().all(|k| sums.contains_key(k))
}

pub(super) fn add<K: Ord>(map: &mut BTreeMap<K, u32>, k: K) {
    *map.entry(k).or_default() += 1;
}

/// Takes one from a count, dropping the key at zero. A count of zero is never kept, but a
/// restored snapshot could hold one: it goes rather than wrapping.
pub(super) fn sub<K: Ord>(map: &mut BTreeMap<K, u32>, k: K) {
    sub_n(map, k, 1);
}

/// Takes `n` from a count, dropping the key at zero or below.
pub(super) fn sub_n<K: Ord>(map: &mut BTreeMap<K, u32>, k: K, n: u32) {
    if let std::collections::btree_map::Entry::Occupied(mut e) = map.entry(k) {
        if *e.get() <= n {
            e.remove();
        } else {
            *e.get_mut() -= n;
        }
    }
}

/// Replaces `old` by `new` in a sum that must never shrink: a measure only grows as its
/// message's state grows, but when two entries merge (a placeholder's into its original's) the
/// merged one can measure less than the two did, and then the sum grows by one instead.
pub(super) fn resum(sum: &mut u64, old: u64, new: u64) {
    *sum = if new >= old {
        sum.saturating_add(new - old)
    } else {
        sum.saturating_add(1)
    };
}
