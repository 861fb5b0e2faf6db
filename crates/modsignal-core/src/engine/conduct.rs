//! Repeated conduct and virtual mobbing, counted from indexes kept as messages change.
//!
//! [`Conducts`] holds, per sender, the labelled messages they are a subject of (as author or
//! resharer) with their start and whether they count as conduct (a live category label), and
//! the starts of those that count, in event-time order; [`Targets`] holds, per person targeted,
//! the labelled messages that ever targeted them and, for those that target them now and count,
//! their time and sender. Evicted messages leave their entries behind as history, pruned once
//! older than every window. Both are flat: one ordered set keyed by (sender, start), or
//! (person, time, sender), shared by everyone, so a resharer seen once costs one entry in each,
//! not a map of their own.
//!
//! [`Targets`] also holds the *contacts* that courses of conduct count: every post in state
//! that mentions a person first (or is sent to them directly), labelled or not, keyed by
//! (person, sender, time), so that one sender's course is a walk over their own contacts; and
//! per (person, sender) the first time the person reported one of those posts and the first
//! time the platform took one down, so that a course can say how much of it came after.
//!
//! A count is a walk over one window of one sender's or person's entries, stopped at
//! [`COUNT_CAP`] (or [`PRIOR_CAP`]) and at [`SCAN_LIMIT`] entries, so its cost is bounded
//! whatever one sender or one target holds (a count stopped short says "at least").
//!
//! Each sender and person also has a *sum*, which the flags that read their counts count in
//! their revision. It is the sum over their entries of a measure of each entry's message that
//! only grows as the message's state grows (its label events, and how early it starts), so it
//! is a function of the state, whatever order the events came in, and it grows whenever a count
//! can change. An entry is what was last synced from its message: syncing every subject of a
//! message with many of them waits for the flush, and until then the counts and the sum both
//! read the old entry, so a flag's revision always matches what the flag says.

use std::collections::BTreeMap;

use super::{Engine, Who};
use crate::event::{AccountStatus, Scope};
use crate::exposure::{What, scope_of, status_of};
use crate::store::{HotIx, MsgIx, UserIx};
use crate::time::MAX_TS;

mod index;

pub(super) use index::{Conducts, Targets};
use index::{Entry, Member, add, resum, sub, sub_n};

/// Counts of distinct senders are exact up to this, and "at least" above.
pub(super) const COUNT_CAP: u32 = 1000;
/// Counts of earlier messages are exact up to this (the model counts at most
/// `conduct.repeat_cap` of them), and "at least" above.
const PRIOR_CAP: u32 = 100;
/// The most index entries one count visits.
const SCAN_LIMIT: u32 = 4096;

/// How early an instant is, as a number that grows as the instant moves earlier.
pub(super) fn earliness(at: i64) -> u64 {
    MAX_TS.0.saturating_sub(at).max(0) as u64
}

/// The times from which a sender's conduct entry counted, before and after it changed (`None`:
/// it did not count): the flags that count it are those starting within the repeat window after
/// either.
#[derive(Clone, Copy, Debug)]
pub(super) struct Moved([Option<i64>; 2]);

/// A count from a walk over an index: the count, whether it stopped short, and how many
/// entries it visited.
#[derive(Clone, Copy)]
pub(super) struct Count {
    pub n: u32,
    pub at_least: bool,
    pub visited: u32,
    /// For a course of conduct: how many of its messages came after the platform first
    /// suspended (or took down) the sender's account.
    pub after_sanction: u32,
    /// For a course of conduct: how many of its messages came after the person first reported
    /// one of them.
    pub after_report: u32,
    /// For a course of conduct: how many of its messages came after the platform first took
    /// one of them down.
    pub after_removal: u32,
}

impl Engine {
    /// When a sender started on a message: the earlier of their post and their earliest
    /// reshare of it (an author may reshare their own post). It only moves earlier as events
    /// arrive, whatever their order.
    pub(super) fn subject_start(&self, m: MsgIx, user: UserIx) -> Option<i64> {
        match self.flag_starts(m, user) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When `user`'s flags on message `m` start: as its author (the posting, once known) and
    /// as a resharer (their earliest reshare).
    fn flag_starts(&self, m: MsgIx, user: UserIx) -> (Option<i64>, Option<i64>) {
        let msg = self.store.msgs.get(m);
        let posted = (msg.author() == user && msg.known()).then_some(msg.posted_at);
        let h = msg.hot;
        let reshared = (h != HotIx::NONE)
            .then(|| self.hot[h.usize()].resharers.get(&user).map(|r| r.start))
            .flatten();
        (posted, reshared)
    }

    /// Distinct label events of a hot message.
    fn label_measure(&self, m: MsgIx) -> u64 {
        let h = self.store.msgs.get(m).hot;
        if h == HotIx::NONE {
            0
        } else {
            self.hot[h.usize()].label_events.len() as u64
        }
    }

    /// Brings user `u`'s conduct entry for hot message `m` in line with the message. Returns
    /// whether what the counts read (whether it counts, and from when) changed.
    pub(super) fn sync_subject(&mut self, m: MsgIx, u: UserIx) -> Option<Moved> {
        let h = self.store.msgs.get(m).hot;
        let want = if h == HotIx::NONE {
            None
        } else {
            self.subject_start(m, u).map(|start| Entry {
                start,
                live: self.hot[h.usize()].live,
                measure: self.label_measure(m) + earliness(start),
            })
        };
        let want = want?;
        let c = &mut self.conduct;
        let have = c.entries.insert((u, m), want);
        if have == Some(want) {
            return None;
        }
        if let Some(Entry { start, live: true, .. }) = have {
            sub(&mut c.live, (u, start));
        }
        if want.live {
            add(&mut c.live, (u, want.start));
        }
        let sum = c.sums.entry(u).or_default();
        resum(&mut sum.sum, have.map_or(0, |e| e.measure), want.measure);
        if have.is_none() {
            sum.messages += 1;
            c.by_sender.insert((u, m));
        }
        // Only an entry that counts, or stops counting, or counts from another time, changes
        // another message's count.
        let counted = |e: &Entry| e.live.then_some(e.start);
        let moved = [have.as_ref().and_then(counted), counted(&want)];
        (moved[0] != moved[1]).then_some(Moved(moved))
    }

    /// Marks user `u`'s flags that count a conduct entry that moved (`moved`), in every labelled
    /// message they are a subject of but `except`, as [`Engine::mark_user`] marks all of them.
    /// A flag counts the entries of the repeat window before its own start
    /// (`conduct.repeat_window_secs`, see `prior`), so only flags starting after an entry that
    /// moved, within the window, can count differently; on a viral cascade in time order a new
    /// reshare is after every flag of its sender, and marking them all evaluated each again for
    /// nothing. The revision of a flag not marked still moves with the sender's conduct
    /// (`conduct_version`), whenever it is next evaluated.
    pub(super) fn mark_conduct(&mut self, u: UserIx, except: MsgIx, Moved(moved): Moved) {
        if self.conduct.len(u) > super::RELATED_AT_ONCE {
            self.deferred_users.push(u);
            return;
        }
        let window = self.policy.conduct.repeat_window_secs as i64 * 1000;
        let counts = |start: i64| {
            moved
                .iter()
                .flatten()
                .any(|&t| t < start && start <= t.saturating_add(window))
        };
        for m in self.conduct.messages(u) {
            if m == except {
                continue;
            }
            let (posted, reshared) = self.flag_starts(m, u);
            if posted.into_iter().chain(reshared).any(counts) {
                self.mark(m, Who::account(u));
            }
        }
    }

    /// Removes user `u`'s entry for message `m`, keeping its start as history when the
    /// message is evicted and counted. The sum keeps the entry's measure, and grows by one
    /// when a count changes (the entry counted and is not kept).
    pub(super) fn unregister_subject(&mut self, m: MsgIx, u: UserIx, remember: bool) {
        let c = &mut self.conduct;
        let Some(e) = c.entries.remove(&(u, m)) else { return };
        c.by_sender.remove(&(u, m));
        let sum = c.sums.entry(u).or_default();
        sum.messages -= 1;
        if e.live {
            sub(&mut c.live, (u, e.start));
            if remember {
                add(&mut c.past, (u, e.start));
            } else {
                sum.sum = sum.sum.saturating_add(1);
            }
        }
        c.tidy(u);
    }

    /// The people message `m` targets now: the targets of its live labels (those about the
    /// message, not about one reshare) and the first person it mentions.
    pub(super) fn targets_of(&self, m: MsgIx) -> Vec<UserIx> {
        let msg = self.store.msgs.get(m);
        let mut t: Vec<UserIx> = Vec::new();
        if msg.hot != HotIx::NONE {
            t.extend(
                self.hot[msg.hot.usize()]
                    .labels
                    .iter()
                    .filter(|l| l.scope == UserIx::NONE && !l.negate && l.target != UserIx::NONE)
                    .map(|l| l.target),
            );
        }
        if msg.mention != UserIx::NONE {
            t.push(msg.mention);
        }
        t.sort_unstable();
        t.dedup();
        t
    }

    /// Brings hot message `m`'s entries in every index in line with it after its labels or
    /// its post changed: whether it counts as conduct, its subjects' entries, the people it
    /// targets. Senders and people whose counts can change have their other messages evaluated
    /// again. A message with many subjects has them synced at the next flush.
    pub(super) fn sync_indexes(&mut self, m: MsgIx) {
        let h = self.store.msgs.get(m).hot;
        if h == HotIx::NONE {
            return;
        }
        self.hot[h.usize()].live = self.compute_live(h);
        if self.hot[h.usize()].resharers.len() > super::RELATED_AT_ONCE {
            let msg = self.store.msgs.get(m);
            if msg.known() && msg.author() != UserIx::NONE {
                let author = msg.author();
                if let Some(moved) = self.sync_subject(m, author) {
                    self.mark_conduct(author, m, moved);
                }
            }
            self.deferred_sync.push(m);
        } else {
            self.sync_subjects(m);
        }
        self.sync_targets(m);
    }

    /// Syncs every subject's conduct entry for hot message `m`.
    pub(super) fn sync_subjects(&mut self, m: MsgIx) {
        let h = self.store.msgs.get(m).hot;
        if h == HotIx::NONE || self.hot[h.usize()].restructured {
            // A rebuild registers the subjects it finds.
            return;
        }
        let mut subjects: Vec<UserIx> = self.hot[h.usize()].resharers.keys().copied().collect();
        subjects.sort_unstable();
        let msg = self.store.msgs.get(m);
        if msg.known() && msg.author() != UserIx::NONE {
            subjects.push(msg.author());
        }
        self.work = self.work.saturating_add(subjects.len() as u64);
        for u in subjects {
            if let Some(moved) = self.sync_subject(m, u) {
                self.mark_conduct(u, m, moved);
            }
        }
    }

    /// Syncs message `m`'s entries in the index of everyone it ever targeted: a message stays
    /// a member for as long as it is in state, so that the sums its revision reads are there.
    ///
    /// A placeholder (an id whose post has not come) is a member that measures nothing: it
    /// counts for nobody, and it may turn out to be a reshare, whose labels speak of one
    /// resharer and never target anyone in the index. Had it measured its labels, the sums it
    /// moved would stay moved when it left (sums never shrink), so the revisions of other
    /// messages aimed at the same person would depend on whether its labels came before the
    /// reshare (an engine fuzz finding, `fuzz/regressions/engine/placeholder-label-target`).
    /// It is still a member, so that the sums its own resharers' revisions read stay there.
    fn sync_targets(&mut self, m: MsgIx) {
        let h = self.store.msgs.get(m).hot;
        let now = self.targets_of(m);
        let msg = self.store.msgs.get(m);
        let live = self.hot[h.usize()].live;
        let counted = (live && msg.known() && msg.author() != UserIx::NONE).then_some((msg.posted_at, msg.author()));
        let measure = if msg.known() {
            self.label_measure(m) + 1 + earliness(msg.posted_at)
        } else {
            0
        };
        let hot = &mut self.hot[h.usize()];
        hot.targets_now.clone_from(&now);
        for &t in &now {
            if !hot.targets_ever.contains(&t) {
                hot.targets_ever.push(t);
            }
        }
        for t in hot.targets_ever.clone() {
            let want = Member {
                counted: if now.binary_search(&t).is_ok() { counted } else { None },
                measure,
            };
            let x = &mut self.targets;
            let have = x.members.insert((t, m), want);
            if have == Some(want) {
                continue;
            }
            if let Some(Member {
                counted: Some((at, s)), ..
            }) = have
            {
                sub(&mut x.live, (t, at, s));
                sub(&mut x.by_sender, (t, s, at));
            }
            if let Some((at, s)) = want.counted {
                add(&mut x.live, (t, at, s));
                add(&mut x.by_sender, (t, s, at));
            }
            let sum = x.sums.entry(t).or_default();
            resum(&mut sum.sum, have.map_or(0, |e| e.measure), want.measure);
            if have.is_none() {
                sum.messages += 1;
                x.by_person.insert((t, m));
            }
            if have.is_none_or(|e| e.counted != want.counted) {
                self.mark_target(t);
            }
        }
    }

    /// Removes message `m` from person `t`'s index, keeping its entry as history when the
    /// message is evicted.
    pub(super) fn unregister_target(&mut self, m: MsgIx, t: UserIx, remember: bool) {
        let x = &mut self.targets;
        let Some(member) = x.members.remove(&(t, m)) else {
            return;
        };
        x.by_person.remove(&(t, m));
        let sum = x.sums.entry(t).or_default();
        sum.messages -= 1;
        if let Some((at, s)) = member.counted {
            sub(&mut x.live, (t, at, s));
            // History keeps a counted message counted: only forgetting it changes a count.
            if remember {
                add(&mut x.past, (t, at, s));
            } else {
                sub(&mut x.by_sender, (t, s, at));
                sum.sum = sum.sum.saturating_add(1);
            }
        }
        x.tidy(t);
    }

    /// Earlier messages counted as conduct by `user` that started within the repeat window
    /// before `start`.
    pub(super) fn prior(&self, user: UserIx, start: i64) -> Count {
        let window = self.policy.conduct.repeat_window_secs as i64 * 1000;
        let mut count = Count {
            n: 0,
            at_least: false,
            visited: 0,
            after_sanction: 0,
            after_report: 0,
            after_removal: 0,
        };
        let from = start.saturating_sub(window);
        if start == i64::MIN {
            return count;
        }
        for map in [&self.conduct.live, &self.conduct.past] {
            for (_, &k) in map.range((user, from)..(user, start)) {
                count.visited += 1;
                count.n = count.n.saturating_add(k);
                if count.n >= PRIOR_CAP || count.visited >= SCAN_LIMIT {
                    count.at_least = true;
                    count.n = count.n.min(PRIOR_CAP);
                    return count;
                }
            }
        }
        count
    }

    /// Distinct senders of messages counted as conduct aimed at any person message `m` targets,
    /// posted within the mobbing window either side of it: the largest such count. With
    /// `course`, also the course of conduct of `m`'s author toward one person (PHA 1997 s.7(3),
    /// "on at least two occasions"): their messages counted as conduct aimed at a person `m`
    /// targets, within the same window (`m` included), the largest such count. Both come from
    /// one walk over the index, whose cost is counted once; [`Engine::mobbing_version`] covers
    /// both in the revision.
    pub(super) fn mobbing(&self, m: MsgIx, course: bool) -> (Count, Count) {
        let zero = Count {
            n: 0,
            at_least: false,
            visited: 0,
            after_sanction: 0,
            after_report: 0,
            after_removal: 0,
        };
        let (mut best, mut best_course) = (zero, zero);
        let msg = self.store.msgs.get(m);
        if !msg.known() || msg.hot == HotIx::NONE {
            return (best, best_course);
        }
        let (posted, author) = (msg.posted_at, if course { msg.author() } else { UserIx::NONE });
        // Mobbing counts everyone's labelled messages at the person within its window; a course
        // counts the author's own within the course window, walking only theirs (`by_sender`
        // and `contacts` are keyed by person and sender).
        let mob_window = self.policy.conduct.mobbing_window_secs as i64 * 1000;
        let course_window = if course {
            self.policy.conduct.course_window_secs as i64 * 1000
        } else {
            0
        };
        let (from, to) = (posted.saturating_sub(mob_window), posted.saturating_add(mob_window));
        let (course_from, course_to) = (
            posted.saturating_sub(course_window),
            posted.saturating_add(course_window),
        );
        // When the platform first suspended or took down the author's account: a course that
        // went on after it went on despite the platform's action.
        let sanction = if course {
            self.accounts.get(&author).and_then(|list| {
                list.iter()
                    .find(|c| {
                        matches!(
                            c.what,
                            What::Account(s) if matches!(
                                status_of(s),
                                AccountStatus::Suspended | AccountStatus::Takendown
                            )
                        )
                    })
                    .map(|c| c.at)
            })
        } else {
            None
        };
        let after = |at: i64| sanction.is_some_and(|x| at > x);
        let mut visited = 0;
        for &t in &self.hot[msg.hot.usize()].targets_now {
            let reported = if course {
                self.targets.reported.get(&(t, author)).copied()
            } else {
                None
            };
            let after_report = |at: i64| reported.is_some_and(|x| at > x);
            let removed = if course {
                self.targets.removed.get(&(t, author)).copied()
            } else {
                None
            };
            let after_removal = |at: i64| removed.is_some_and(|x| at > x);
            // How many of the author's messages came after each action on the course.
            let tally = |c: &mut [u32; 3], at: i64, k: u32| {
                for (n, acted) in c.iter_mut().zip([after(at), after_report(at), after_removal(at)]) {
                    if acted {
                        *n = n.saturating_add(k);
                    }
                }
            };
            let mut senders: Vec<UserIx> = Vec::new();
            let mut own = 0u32;
            let mut own_after = [0u32; 3];
            let mut at_least = false;
            'scan: for map in [&self.targets.live, &self.targets.past] {
                for (&(_, _, s), _) in map.range((t, from, UserIx::MIN)..=(t, to, UserIx::MAX)) {
                    visited += 1;
                    if let Err(pos) = senders.binary_search(&s) {
                        senders.insert(pos, s);
                    }
                    if senders.len() as u32 >= COUNT_CAP || visited >= SCAN_LIMIT {
                        at_least = true;
                        break 'scan;
                    }
                }
            }
            // The author's own labelled messages at the person over the course window: a walk
            // over theirs alone, with a budget of its own, so that a crowd at the person (which
            // may stop the mobbing count short) never hides the author's course.
            let mut course_at_least = false;
            let mut walked = 0u32;
            if course {
                for (&(_, _, at), &k) in self
                    .targets
                    .by_sender
                    .range((t, author, course_from)..=(t, author, course_to))
                {
                    walked += 1;
                    own = own.saturating_add(k);
                    tally(&mut own_after, at, k);
                    if own >= COUNT_CAP || walked >= SCAN_LIMIT {
                        course_at_least = true;
                        break;
                    }
                }
            }
            // Contacts from the author at the same person, labelled or not: the course is
            // the larger of the two counts (every labelled message addressed to the person is
            // also a contact, so neither counts one message twice).
            if course && !course_at_least {
                let mut contacts = 0u32;
                let mut contacts_after = [0u32; 3];
                'contacts: for map in [&self.targets.contacts, &self.targets.contacts_past] {
                    for (&(_, _, at), &k) in map.range((t, author, course_from)..=(t, author, course_to)) {
                        walked += 1;
                        contacts = contacts.saturating_add(k);
                        tally(&mut contacts_after, at, k);
                        if contacts >= COUNT_CAP || walked >= SCAN_LIMIT {
                            course_at_least = true;
                            break 'contacts;
                        }
                    }
                }
                own = own.max(contacts);
                for (o, c) in own_after.iter_mut().zip(contacts_after) {
                    *o = (*o).max(c);
                }
            }
            let n = senders.len() as u32;
            if n > best.n || (n == best.n && at_least) {
                best.n = n;
                best.at_least = at_least;
            }
            // The person with the longest course, a count that stopped short first, then the
            // most of it after a sanction: an order that does not depend on the walk's.
            let key = |c: &Count| {
                (
                    c.n,
                    c.at_least && c.n > 0,
                    c.after_sanction,
                    c.after_report,
                    c.after_removal,
                )
            };
            visited += walked;
            let this = Count {
                n: own,
                at_least: course_at_least,
                visited: 0,
                after_sanction: own_after[0],
                after_report: own_after[1],
                after_removal: own_after[2],
            };
            if key(&this) > key(&best_course) {
                best_course = this;
            }
            if visited >= SCAN_LIMIT {
                break;
            }
        }
        best.visited = visited;
        (best, best_course)
    }

    /// A measure for the revision of message `m`'s flags that grows whenever a count of
    /// mobbing could change: the sums of everyone it ever targeted.
    pub(super) fn mobbing_version(&self, m: MsgIx) -> u64 {
        let h = self.store.msgs.get(m).hot;
        if h == HotIx::NONE {
            return 0;
        }
        self.hot[h.usize()]
            .targets_ever
            .iter()
            .map(|t| self.targets.sums.get(t).map_or(0, |x| x.sum))
            .fold(0, u64::saturating_add)
    }

    /// A measure for the revision of the author's flag of message `m` that grows whenever its
    /// course of conduct could change: the author's course sums toward everyone it ever
    /// targeted.
    pub(super) fn course_version(&self, m: MsgIx) -> u64 {
        let msg = self.store.msgs.get(m);
        if msg.hot == HotIx::NONE || msg.author() == UserIx::NONE {
            return 0;
        }
        self.hot[msg.hot.usize()]
            .targets_ever
            .iter()
            .map(|&t| self.targets.courses.get(&(t, msg.author())).copied().unwrap_or(0))
            .fold(0, u64::saturating_add)
    }

    /// A measure for the revision that grows whenever `user`'s count of repeated conduct could
    /// change.
    pub(super) fn conduct_version(&self, user: UserIx) -> u64 {
        self.conduct.sums.get(&user).map_or(0, |c| c.sum)
    }

    /// Forgets history older than `cut`. A forgotten entry can change a count, so the sums
    /// grow by what was forgotten.
    pub(super) fn prune_history(&mut self, cut: i64) {
        let c = &mut self.conduct;
        let mut gone: Vec<(UserIx, i64, u32)> = Vec::new();
        c.past.retain(|&(u, start), &mut n| {
            let keep = start >= cut;
            if !keep {
                gone.push((u, start, n));
            }
            keep
        });
        for &(u, _, n) in &gone {
            let sum = c.sums.entry(u).or_default();
            sum.sum = sum.sum.saturating_add(u64::from(n));
        }
        for (u, _, _) in gone {
            c.tidy(u);
        }
        let x = &mut self.targets;
        let mut gone: Vec<(UserIx, u32)> = Vec::new();
        let by_sender = &mut x.by_sender;
        x.past.retain(|&(t, at, s), &mut n| {
            let keep = at >= cut;
            if !keep {
                gone.push((t, n));
                sub_n(by_sender, (t, s, at), n);
            }
            keep
        });
        for &(t, n) in &gone {
            let sum = x.sums.entry(t).or_default();
            sum.sum = sum.sum.saturating_add(u64::from(n));
        }
        // Contacts, and first reports and removals, older than every window go with the
        // history; each one forgotten moves its sender's course sum.
        let mut courses: Vec<(UserIx, UserIx, u32)> = Vec::new();
        x.contacts_past.retain(|&(t, s, at), &mut n| {
            let keep = at >= cut;
            if !keep {
                courses.push((t, s, n));
            }
            keep
        });
        for map in [&mut x.reported, &mut x.removed] {
            map.retain(|&(t, s), &mut at| {
                let keep = at >= cut;
                if !keep {
                    courses.push((t, s, 1));
                }
                keep
            });
        }
        for &(t, s, n) in &courses {
            x.bump_course(t, s, u64::from(n));
        }
        for t in gone
            .into_iter()
            .map(|(t, _)| t)
            .chain(courses.into_iter().map(|(t, _, _)| t))
        {
            x.tidy(t);
        }
    }

    /// A post by `sender` addressed to `person` (sent to them directly, mentioning them first,
    /// or answering a message of theirs) came into state at
    /// `at`, or (with `from`) moved there from an earlier sighting's time. Every flag that reads
    /// the person's sum is evaluated again, since a course it counts may have grown.
    pub(super) fn contact(&mut self, person: UserIx, sender: UserIx, at: i64, from: Option<i64>) {
        if person == UserIx::NONE || sender == UserIx::NONE {
            return;
        }
        let x = &mut self.targets;
        // The sum grows by a measure of the contact (one, and how early it is), so that it is a
        // function of the contacts in state whatever order their sightings came in: a post
        // first seen late and then early measures the same as one seen early only.
        let grow = match from {
            Some(old) => {
                sub(&mut x.contacts, (person, sender, old));
                earliness(at).saturating_sub(earliness(old))
            }
            None => 1 + earliness(at),
        };
        add(&mut x.contacts, (person, sender, at));
        x.bump_course(person, sender, grow);
        self.mark_target(person);
    }

    /// Post `m` is known and may carry a report from the person it mentions first: that
    /// person's first report of the sender (the earliest over their posts mentioning them) may
    /// move earlier. Then every flag aimed at the person is evaluated again.
    pub(super) fn target_reported(&mut self, m: MsgIx) {
        let at = self.reports.get(&m).and_then(|r| r.message.by_target_at);
        self.first_action(m, at, |x| &mut x.reported);
    }

    /// Post `m` is known and may have been taken down by the platform or a legal order (a
    /// delete, or withholding, by either): the sender's first such removal of a post aimed at
    /// the person it mentions first may move earlier.
    pub(super) fn target_removed(&mut self, m: MsgIx) {
        let at = self.removals.get(self.store.msg_id(m)).and_then(|list| {
            list.iter()
                .find(|c| match c.what {
                    What::Delete(by) => by.reversible(),
                    What::Restrict(by, scope) => by.reversible() && scope_of(scope) == Scope::Withheld,
                    _ => false,
                })
                .map(|c| c.at)
        });
        self.first_action(m, at, |x| &mut x.removed);
    }

    /// Moves the (person, sender) entry of `map` to `at` if that is earlier, for known post
    /// `m`: its first mention and its author.
    fn first_action(
        &mut self,
        m: MsgIx,
        at: Option<i64>,
        map: fn(&mut Targets) -> &mut BTreeMap<(UserIx, UserIx), i64>,
    ) {
        let msg = self.store.msgs.get(m);
        if !msg.known() || msg.mention == UserIx::NONE || msg.author() == UserIx::NONE {
            return;
        }
        let (t, s) = (msg.mention, msg.author());
        let Some(at) = at else { return };
        let slot = map(&mut self.targets).entry((t, s)).or_insert(i64::MAX);
        if at >= *slot {
            return;
        }
        // As for contacts: the sum measures the first time, whatever order it was learnt in.
        let grow = if *slot == i64::MAX {
            1 + earliness(at)
        } else {
            earliness(at).saturating_sub(earliness(*slot))
        };
        *slot = at;
        self.targets.bump_course(t, s, grow);
        self.mark_target(t);
    }

    /// An evicted post's contact stays as history, so the courses that count it do not change
    /// with the moment the retention sweep ran.
    pub(super) fn contact_evicted(&mut self, person: UserIx, sender: UserIx, at: i64) {
        if person == UserIx::NONE || sender == UserIx::NONE {
            return;
        }
        let x = &mut self.targets;
        sub(&mut x.contacts, (person, sender, at));
        add(&mut x.contacts_past, (person, sender, at));
    }
}
