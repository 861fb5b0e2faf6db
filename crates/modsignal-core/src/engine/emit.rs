//! Evaluating subjects and deciding what is written.
//!
//! A subject's flag is written when its material state (its [`signature`]) changed: at once
//! for news (a new flag, raised or lowered, the subject coming down or back up), and for other
//! changes (score, reach, time up) at most once per `emission.min_interval_secs` of event time.
//! What is held back is written by an event-time timer, by the streaming worker's flush or at
//! the end of input, so the newest revision of every flag is exact once the input is quiet.
//!
//! A flag's [`revision`] is a sum of monotone measures of everything that goes into it, so it
//! grows with every change and the same state always carries the same revision: a consumer that
//! keeps the highest revision per flag keeps the newest, however often a flag was written again
//! (after a crash, a rebalance, a replay).

use std::borrow::Cow;

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use super::hot::{CohortMark, Slot};
use super::{Engine, Subjects, Who};
use crate::cohort::{Member, Roll};
use crate::event::{Audience, Category, FactorLabel, LabelCode, Track};
use crate::exposure::{Change, Channel, Role, Visibility};
use crate::flag::{Exposure, FLAG_SCHEMA, Flag, Reach, Restricted, Subject, flag_id};
use crate::model::{
    Evaluation, Facts, PileOn, Removal, RepostAfterRemoval, Restriction, Targeting, evaluate, evaluate_with,
};
use crate::policy::Policy;
use crate::store::{BIT_REPLY, BIT_TO_QUOTED, BIT_TO_REPLIED, HotIx, MsgIx, NONE, ReshareIx, UserIx};
use crate::time::Ts;

/// The measures a flag's revision adds up. Each only grows as the state it measures grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RevisionParts {
    /// Distinct label events on the message.
    pub label_events: u64,
    /// Distinct reporters counted, whether the target reported, whether more came.
    pub reports: u64,
    pub reported_by_target: bool,
    pub reports_capped: bool,
    pub reshares: u64,
    pub quotes: u64,
    pub replies: u64,
    pub depth: u64,
    pub audience: u64,
    /// The subject's own follower count, which only grows: a followers-only restriction's
    /// credit reads it, and a direct message's audience (its recipients) does not include it
    /// (an engine fuzz finding, `fuzz/regressions/engine/dm-followers-only-credit`).
    pub followers: u64,
    pub impressions: u64,
    /// The subject's reshares of the message (1 for the author's post).
    pub channels: u64,
    /// For each channel of the subject's exposure (its post, or each of its reshares), how far
    /// its start lies before the latest time accepted, in milliseconds: a channel that starts
    /// earlier than it first did can change which removal reached the subject first without
    /// changing its up time. Less than 2^43 per channel.
    pub channel_starts: u64,
    /// Removal and account changes on every source of the subject's exposure.
    pub changes: u64,
    /// Whether the post has been seen (it can arrive after its reshares and labels).
    pub known: bool,
    /// Milliseconds from the subject's start to the time the flag is measured to.
    pub time_term: u64,
    /// Milliseconds the subject was up (over all its channels) by then: a channel that starts
    /// earlier than it first did can lengthen it without moving the subject's start.
    pub up_millis: u64,
    /// For a resharer, how far each of their reshares lies before the latest time accepted
    /// (reshare times only move earlier): whether one came after a removal reads them all.
    pub reshare_times: u64,
    /// The versions of the indexes the flag's counts of repeated conduct and mobbing read.
    pub conduct_version: u64,
    pub mobbing_version: u64,
    /// For the author's flag, the version of their course of conduct toward the people the
    /// message targets.
    pub course_version: u64,
    /// For the author's flag, how early every resharer's start is, summed: the pile-on's
    /// burst reads the starts.
    pub resharer_starts: u64,
    /// What was said of the sender's age (see `User::minor_term`).
    pub minor_term: u64,
    /// For a resharer, how far the post's time lies before the latest time accepted, once the
    /// post is known: a repeat of the post can only move its time earlier, and that can make a
    /// reshare one made after the removal (an engine fuzz finding,
    /// `fuzz/regressions/engine/post-moved-earlier-after-reshare`, where the flag was not
    /// written again and kept saying otherwise). The author's flag counts it as its channel's
    /// start.
    pub posted: u64,
}

/// A flag's revision: one plus the sum of its measures. A removal change can bring a subject
/// down earlier and so shrink the time term and the up time (in milliseconds) by at most the
/// span of times the decoder accepts each (2000 to 2200, less than 2^43 ms); weighting each
/// change by 2^44 keeps the sum growing. The sum saturates rather than wrapping, so it never
/// goes backwards.
pub fn revision(p: &RevisionParts) -> u64 {
    [
        p.label_events,
        p.reports,
        u64::from(p.reported_by_target),
        u64::from(p.reports_capped),
        p.reshares,
        p.quotes,
        p.replies,
        p.depth,
        p.audience,
        p.followers,
        p.impressions,
        p.channels,
        p.channel_starts,
        p.changes.saturating_mul(1 << 44),
        u64::from(p.known),
        p.time_term,
        p.up_millis,
        p.reshare_times,
        p.conduct_version,
        p.mobbing_version,
        p.course_version,
        p.resharer_starts,
        p.minor_term,
        p.posted,
    ]
    .into_iter()
    .fold(1u64, u64::saturating_add)
}

/// The material state of one flag, beside its evaluation: what [`signature`] hashes.
#[derive(Clone, Copy, Debug)]
pub struct Material<'a> {
    /// The strongest live label's confidence for the flag's category.
    pub confidence: Option<f64>,
    /// How many exposure stages the subject has reached.
    pub stage: u64,
    pub exposure: &'a Exposure,
    pub removal: Option<Removal>,
    pub reach: &'a Reach,
    pub start: i64,
    /// Whether the flag is raised or could be raised by its score moving: a category-4 flag
    /// within `emission.score_margin` below the threshold. Only then do its score, exposure
    /// stage and factors count as material ([`watched`]).
    pub watched: bool,
}

/// Whether a flag of `category` with evaluation `quick` is watched ([`Material::watched`]).
pub fn watched(policy: &Policy, category: Category, quick: &Evaluation) -> bool {
    quick.raised
        || (category.track() == Track::HighThreshold
            && quick.score >= policy.labels.high_threshold - policy.emission.score_margin)
}

/// What decides whether a changed flag is worth writing before the end of input: whether it is
/// raised, the label's confidence, its removal, each reach figure's milestone (a power of
/// `emission.reach_milestone_base`), its cascade depth and its start; and, for a watched flag
/// only ([`watched`]), its score in steps of `emission.score_step`, the exposure stage reached
/// and which factors it has. A flag far below its threshold does not move for its time up
/// ticking over: on viral cascades that was most of what was written (issue 15).
pub fn signature(policy: &Policy, quick: &Evaluation, m: &Material<'_>) -> u64 {
    let Material {
        confidence,
        stage,
        exposure,
        removal,
        reach,
        start,
        watched,
    } = *m;
    let base = policy.emission.reach_milestone_base;
    let milestone = |x: u64| ((x as f64).ln_1p() / base.ln()).floor() as u64;
    let parts = [
        u64::from(quick.raised),
        if watched {
            (quick.score / policy.emission.score_step).floor() as u64
        } else {
            u64::MAX
        },
        confidence.map_or(u64::MAX, |c| (c * 100.0).round() as u64),
        if watched { stage } else { u64::MAX },
        exposure.removed_at.map_or(0, |t| t.0 as u64),
        u64::from(exposure.still_up),
        removal.map_or(0, |r| 1 + r.kind as u64 * 8 + r.by as u64),
        milestone(reach.audience),
        milestone(reach.reshares),
        milestone(reach.impressions.unwrap_or(0)),
        milestone(reach.quotes + reach.replies),
        u64::from(reach.depth),
        start as u64,
    ];
    let mut hasher = Xxh3::new();
    for x in parts {
        hasher.update(&x.to_le_bytes());
    }
    for f in quick.factors.iter().filter(|_| watched) {
        hasher.update(f.code.as_bytes());
        hasher.update(&[f.effect as u8]);
    }
    hasher.digest()
}

/// How a [`Engine::drain`] evaluates and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pass {
    /// As events and timers come: each message's work paid from its credit, flags written as
    /// the emission rules say.
    Paid,
    /// The streaming worker's flush: the work held back for lack of credit is done, flags
    /// written as the emission rules say.
    Flush,
    /// The input is quiet: everything is evaluated, and every flag whose revision moved is
    /// written, so that the newest revision of each is exact.
    Settle,
}

impl Engine {
    /// Evaluates the queued subjects. In a [`Pass::Paid`], each message's work is paid from its
    /// credit; what the credit does not cover stays marked and waits on the stale list.
    pub(super) fn drain(&mut self, out: &mut Vec<Flag>, pass: Pass) {
        let force = pass != Pass::Paid;
        while let Some(h) = self.queue.pop() {
            let hot = &mut self.hot[h.usize()];
            hot.queued = false;
            if hot.msg == MsgIx::NONE {
                continue;
            }
            if hot.restructured {
                let cost = self.rebuild_cost(h);
                if !force && self.hot[h.usize()].credit < cost {
                    self.hold(h);
                    continue;
                }
                self.rebuild(h);
                self.hot[h.usize()].credit -= cost;
                self.hot[h.usize()].queued = false;
                if let Some(pos) = self.queue.iter().rposition(|&x| x == h) {
                    self.queue.remove(pos);
                }
            }
            let hot = &mut self.hot[h.usize()];
            let dirty_all = std::mem::take(&mut hot.dirty_all);
            let mut users = std::mem::take(&mut hot.dirty);
            let m = hot.msg;
            let msg = self.store.msgs.get(m);
            let known = msg.known();
            let author = msg.author();
            // An author who reshared their own post is a resharer too: whether the post or the
            // reshare came first, both flags exist.
            let mut subjects: Vec<Who> = if dirty_all {
                let mut all: Vec<UserIx> = hot.resharers.keys().copied().collect();
                all.sort_unstable();
                // Go on from where the last partial pass stopped.
                let split = all.partition_point(|&u| u < hot.cursor);
                all.rotate_left(split);
                let mut all: Vec<Who> = all.into_iter().map(Who::account).collect();
                if known {
                    all.insert(0, Who::AUTHOR);
                }
                all
            } else {
                users.sort_unstable();
                users.dedup();
                let mut v = Vec::with_capacity(users.len());
                for w in users {
                    match w.get() {
                        Subjects::Account(u) => {
                            if hot.resharers.contains_key(&u) {
                                v.push(w);
                            }
                            // The author's account stands for the author's flag too.
                            if known && u == author {
                                v.push(Who::AUTHOR);
                            }
                        }
                        Subjects::Author if known => v.push(Who::AUTHOR),
                        // `mark` never lists every subject one by one.
                        Subjects::Author | Subjects::All => {}
                    }
                }
                v.sort_unstable();
                v
            };
            subjects.dedup();
            for i in 0..subjects.len() {
                if !force && self.hot[h.usize()].credit <= 0 {
                    let hot = &mut self.hot[h.usize()];
                    hot.dirty.extend_from_slice(&subjects[i..]);
                    if dirty_all && let Some(u) = subjects[i..].iter().find_map(|w| w.handle()) {
                        hot.cursor = u;
                    }
                    self.hold(h);
                    break;
                }
                let (user, subject) = match subjects[i].get() {
                    Subjects::Author => (author, Subject::Author),
                    Subjects::Account(u) => (u, Subject::Resharer),
                    // Never a subject of its own: `drain` lists the subjects one by one.
                    Subjects::All => continue,
                };
                let cost = self.evaluate_subject(h, user, subject, out, pass == Pass::Settle);
                self.hot[h.usize()].credit -= cost as i64;
                self.work = self.work.saturating_add(cost);
            }
            if pass == Pass::Settle {
                self.write_cohorts(h, dirty_all);
            }
        }
    }

    /// Writes the cohorts of hot message `h` whose revision moved, from the members its settle
    /// pass listed. Only a pass over every subject (`all`) lists every member; any other leaves
    /// the cohorts as they were, for the next pass over all of them.
    fn write_cohorts(&mut self, h: HotIx, all: bool) {
        let mut roll = std::mem::take(&mut self.cohort_roll);
        if all {
            let m = self.hot[h.usize()].msg;
            let audience = self.hot[h.usize()].resharer_audience;
            // Stable: within a category, members stay in the order they were evaluated.
            roll.sort_by_key(|(c, _, _)| *c);
            let mut listed = roll.drain(..).peekable();
            while let Some((category, member, at)) = listed.next() {
                let mut members = vec![(member, at)];
                while let Some((_, member, at)) = listed.next_if(|(c, _, _)| *c == category) {
                    members.push((member, at));
                }
                self.work = self.work.saturating_add(members.len() as u64);
                let mark = self.hot[h.usize()]
                    .cohorts
                    .iter()
                    .find(|(c, _)| *c == category)
                    .map(|(_, k)| *k);
                let roll = Roll {
                    message_id: self.store.msg_id(m),
                    category,
                    audience,
                    members,
                    min_pages: mark.map_or(0, |k| k.pages),
                };
                let rev = roll.revision();
                if mark.is_some_and(|k| k.rev == rev) {
                    continue;
                }
                let pages = roll.pages();
                let written = CohortMark {
                    rev,
                    pages: u32::try_from(pages.len()).unwrap_or(u32::MAX),
                };
                let marks = &mut self.hot[h.usize()].cohorts;
                match marks.iter_mut().find(|(c, _)| *c == category) {
                    Some((_, k)) => *k = written,
                    None => marks.push((category, written)),
                }
                self.cohorts_out.extend(pages);
            }
        }
        roll.clear();
        self.cohort_roll = roll;
    }

    /// Puts hot message `h` on the stale list: something of it waits for the flush.
    pub(super) fn hold(&mut self, h: HotIx) {
        let hot = &mut self.hot[h.usize()];
        if !hot.stale {
            hot.stale = true;
            self.stale.push(h);
        }
    }

    /// Evaluates one subject of a hot message for every category it is labelled with, writes
    /// the flags that changed as the rules above say, and returns the work it took.
    fn evaluate_subject(&mut self, h: HotIx, user: UserIx, subject: Subject, out: &mut Vec<Flag>, settle: bool) -> u64 {
        let policy = &self.policy;
        let hot = &self.hot[h.usize()];
        let m = hot.msg;
        let msg = self.store.msgs.get(m);
        let scope = if subject == Subject::Resharer {
            user
        } else {
            UserIx::NONE
        };
        let mut categories: Vec<Category> = self
            .labels_for(h, scope)
            .into_iter()
            .filter_map(|l| match l.code {
                LabelCode::Category(c) => Some(c),
                LabelCode::Factor(_) => None,
            })
            .collect();
        categories.sort_unstable();
        categories.dedup();
        if categories.is_empty() {
            return 1;
        }
        let mut cost = 1 + categories.len() as u64;

        // Exposure channels: the post itself, or each of the user's reshares. Reshares with no
        // removal of their own share every other source, so together they are up exactly when
        // the earliest of them is: one channel stands for all of them.
        let empty: &[Change] = &[];
        let removals_of = |id: &str| self.removals.get(id).map_or(empty, |v| v.as_slice());
        let msg_id = self.store.msg_id(m);
        let account_of = |u: UserIx| self.accounts.get(&u).map_or(empty, |v| v.as_slice());
        let mut channels = Vec::new();
        let mut reshares_of_user: Vec<ReshareIx> = Vec::new();
        let mut reshared_after_removal: Option<(i64, RepostAfterRemoval)> = None;
        let mut reshare_times = 0u64;
        match subject {
            Subject::Author => channels.push(Channel {
                start: msg.posted_at,
                sources: vec![
                    (Role::Own, removals_of(msg_id)),
                    (Role::OwnAccount, account_of(msg.author())),
                ],
            }),
            Subject::Resharer => {
                reshares_of_user.extend(hot.reshares_by(user));
                let mut plain: Option<i64> = None;
                let original = removals_of(msg_id);
                let original_account = if msg.author() == UserIx::NONE {
                    empty
                } else {
                    account_of(msg.author())
                };
                for &r in &reshares_of_user {
                    let rs = self.store.rss.get(r);
                    let own = removals_of(self.store.rs_id(r));
                    if own.is_empty() {
                        plain = Some(plain.map_or(rs.at, |p| p.min(rs.at)));
                        continue;
                    }
                    channels.push(Channel {
                        start: rs.at,
                        sources: vec![
                            (Role::Own, own),
                            (Role::OwnAccount, account_of(user)),
                            (Role::Original, original),
                            (Role::OriginalAccount, original_account),
                        ],
                    });
                }
                // Reshares made while the message was down for everyone: the earliest of them
                // (by time, so that arrival order does not matter).
                if msg.known() && (!original.is_empty() || !original_account.is_empty()) {
                    for &r in &reshares_of_user {
                        let at = self.store.rss.get(r).at;
                        if at <= msg.posted_at || reshared_after_removal.is_some_and(|(x, _)| x <= at) {
                            continue;
                        }
                        let message = Channel {
                            start: msg.posted_at,
                            sources: vec![(Role::Own, original), (Role::OwnAccount, original_account)],
                        };
                        if let Some((since, removal)) = Visibility::compute(&[message], at).down
                            && since < at
                        {
                            let after_secs = Ts(at).secs_since(Ts(since));
                            reshared_after_removal = Some((at, RepostAfterRemoval { after_secs, removal }));
                        }
                    }
                    cost += reshares_of_user.len() as u64;
                }
                // Every reshare's time, not only the earliest: a repeat can move a later one
                // earlier, which can change whether it came after a removal.
                reshare_times = reshares_of_user
                    .iter()
                    .map(|&r| (crate::time::MAX_TS.0 - self.store.rss.get(r).at).max(0) as u64)
                    .fold(0u64, u64::saturating_add);
                if let Some(start) = plain {
                    channels.push(Channel {
                        start,
                        sources: vec![
                            (Role::Own, empty),
                            (Role::OwnAccount, account_of(user)),
                            (Role::Original, original),
                            (Role::OriginalAccount, original_account),
                        ],
                    });
                }
                cost += reshares_of_user.len() as u64;
            }
        }
        if channels.is_empty() {
            return cost;
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
        cost += changes * channels.len() as u64;
        // Sources shared by several channels were counted once per channel above: the
        // revision counts each change once.
        let changes = match subject {
            Subject::Author => changes,
            Subject::Resharer => {
                let shared = account_of(user).len()
                    + removals_of(msg_id).len()
                    + if msg.author() == UserIx::NONE {
                        0
                    } else {
                        account_of(msg.author()).len()
                    };
                changes - (shared * (channels.len() - 1)) as u64
            }
        };
        // A subject is measured up to event time, but never past the retention horizon after its
        // message's last activity: a message quiet that long is written a last time and
        // forgotten at the next retention sweep, and when that sweep runs depends on how the
        // input was read. Capping here makes its final flag the same however the input arrives
        // (file mode, or a Kafka backlog read partition by partition).
        let quiet_until = msg.last_at.saturating_add(self.retention_ms());
        let horizon = self.wm().min(quiet_until).max(last_event);
        let vis = Visibility::compute(&channels, horizon);
        let stage_end = vis.down.map_or(horizon, |(since, _)| since.max(start));
        let stages = &policy.exposure.stages_secs;
        let stage = stages.iter().filter(|&&s| start + s as i64 * 1000 <= stage_end).count() as u64;
        // A subject still up is measured to the horizon (event time now); one that is down is
        // measured to its removal, and nothing about it moves until another change arrives.
        let as_of = match vis.down {
            None => horizon,
            Some((since, _)) => last_event.max(since),
        };
        let up_millis = vis.up_millis(as_of).max(0) as u64;
        let channel_starts = channels
            .iter()
            .map(|c| (crate::time::MAX_TS.0 - c.start).max(0) as u64)
            .fold(0u64, u64::saturating_add);
        let seconds_up = up_millis / 1000;
        let removal = vis.down.map(|(_, r)| r);
        let time_term = (as_of - start).max(0) as u64;
        let who = if subject == Subject::Author {
            Who::AUTHOR
        } else {
            Who::account(user)
        };
        // The next exposure stage, while the subject is up: evaluated again then, if time up
        // can still make one of its flags watched (below).
        let next_stage = if vis.down.is_none() {
            stages
                .iter()
                .find(|&&s| start + s as i64 * 1000 > stage_end)
                .map(|&next| start + next as i64 * 1000)
        } else {
            None
        };
        let mut stage_matters = false;
        let hot = &self.hot[h.usize()];
        let msg = self.store.msgs.get(m);

        // Reach.
        let followers = u64::from(self.users.get(user).followers);
        let distinct_resharers = hot.resharers.len() as u64;
        let (burst, starts) = (hot.burst, hot.starts);
        let reach = match subject {
            Subject::Author => Reach {
                // A direct message reaches its recipients, not the sender's followers (at least
                // one, where the input names none).
                audience: if msg.audience() == Audience::Direct {
                    u64::from(msg.recipients.max(1))
                } else {
                    followers
                } + hot.resharer_audience,
                reshares: u64::from(msg.reshares),
                quotes: u64::from(msg.quotes),
                replies: u64::from(msg.replies),
                impressions: (msg.impressions != NONE).then_some(u64::from(msg.impressions)),
                depth: hot.depth,
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
                for r in &reshares_of_user {
                    if let Some(a) = hot.agg.get(r) {
                        reach.audience += a.followers;
                        reach.reshares += u64::from(a.count);
                        reach.depth = reach.depth.max(a.depth_below);
                    }
                }
                reach
            }
        };

        // Message-level factors: the strongest live label per category and per factor.
        let mut category_conf: [Option<f64>; 4] = [None; 4];
        let mut factor_confs = [0.0f64; FactorLabel::ALL.len()];
        let mut label_targeted = false;
        // Whether every person a live label names is someone other than the one recipient of a
        // direct message: then the victim is not in its audience (para 39(c)). With several
        // recipients only the first is known, so the victim may be among them.
        let direct = msg.audience() == Audience::Direct;
        let mut target_outside_audience = direct && msg.recipients == 1 && msg.mention != UserIx::NONE;
        for l in self.labels_for(h, scope).into_iter().filter(|l| !l.negate) {
            label_targeted |= l.target != UserIx::NONE;
            target_outside_audience &= l.target == UserIx::NONE || l.target != msg.mention;
            match l.code {
                LabelCode::Category(c) => {
                    let slot = &mut category_conf[c.index()];
                    *slot = Some(slot.map_or(l.confidence, |a: f64| a.max(l.confidence)));
                }
                // Remorse is the sender's own: a resharer's comes from their reshare only.
                LabelCode::Factor(FactorLabel::Remorse) if scope != UserIx::NONE && l.scope == UserIx::NONE => {}
                LabelCode::Factor(f) => {
                    let slot = &mut factor_confs[f as usize];
                    *slot = slot.max(l.confidence);
                }
            }
        }
        let factor_conf = |f: FactorLabel| factor_confs[f as usize];
        let message_reports = self.reports.get(&m);
        let reports = message_reports.map(|r| r.counts(scope)).unwrap_or_default();
        // Whether a resharer's flag is material before it is watched: what makes it matter on
        // its own, beside the message (`emission.resharer_audience`).
        let resharer_material = subject == Subject::Resharer
            && (reach.audience >= policy.emission.resharer_audience
                || reshared_after_removal.is_some()
                || hot.labels.iter().any(|l| l.scope == scope)
                || message_reports.and_then(|r| r.get(scope)).is_some());
        let (n_reports, by_target, reports_capped) = (reports.distinct, reports.by_target, reports.capped);
        let target_outside_audience = target_outside_audience && label_targeted;
        let targeted = if label_targeted {
            Some(Targeting::Label)
        } else if direct && msg.mention != UserIx::NONE {
            Some(Targeting::Direct)
        } else if msg.mention != UserIx::NONE && msg.bits & BIT_TO_QUOTED != 0 {
            Some(Targeting::Quote)
        } else if msg.mention != UserIx::NONE && msg.bits & BIT_TO_REPLIED == 0 {
            Some(Targeting::Mention)
        } else if msg.bits & BIT_REPLY != 0 {
            Some(Targeting::Reply)
        } else {
            None
        };
        let prior = self.prior(user, start);
        let (mob, course) = self.mobbing(m, subject == Subject::Author);
        cost += u64::from(prior.visited + mob.visited);
        let account = self.users.get(user);
        let parts = RevisionParts {
            label_events: hot.label_events.len() as u64,
            reports: reports.measure,
            reported_by_target: by_target,
            reports_capped,
            reshares: reach.reshares,
            quotes: reach.quotes,
            replies: reach.replies,
            depth: u64::from(reach.depth),
            audience: reach.audience,
            followers,
            // Given as zero differs from not given: each is its own state.
            impressions: reach.impressions.map_or(0, |n| n.saturating_add(1)),
            channels: match subject {
                Subject::Author => 1,
                Subject::Resharer => reshares_of_user.len() as u64,
            },
            channel_starts,
            changes,
            known: msg.known(),
            time_term,
            up_millis,
            reshare_times,
            conduct_version: self.conduct_version(user),
            mobbing_version: self.mobbing_version(m),
            course_version: if subject == Subject::Author {
                self.course_version(m)
            } else {
                0
            },
            resharer_starts: if subject == Subject::Author { starts } else { 0 },
            // Whether the subject is a minor is state of the account, not of the message: an
            // `account` event that changes it changes the flag, so it moves the revision too.
            minor_term: account.minor_term(),
            posted: if subject == Subject::Resharer && msg.known() {
                (crate::time::MAX_TS.0 - msg.posted_at).max(0) as u64
            } else {
                0
            },
        };
        let rev = revision(&parts);
        let exposure = Exposure {
            posted_at: Ts(start),
            removed_at: vis.first_removal.map(|(t, _)| Ts(t)),
            removed_by: vis.first_removal.map(|(_, r)| r.by),
            removal: vis.first_removal.map(|(_, r)| r.kind),
            seconds_up,
            still_up: removal.is_none(),
            restricted: vis.limited.map(|l| Restricted {
                at: Ts(l.since),
                by: l.by,
                scope: l.scope,
            }),
        };
        let interval = policy.emission.min_interval_secs as i64 * 1000;
        for category in categories {
            let confidence = category_conf[category.index()];
            let facts = Facts {
                category,
                confidence,
                resharer: subject == Subject::Resharer,
                seconds_up,
                removal,
                removed_after_secs: vis.down.map_or(0, |(since, _)| Ts(since).secs_since(Ts(start))),
                reshared_after_removal: reshared_after_removal.map(|(_, a)| a),
                restriction: vis.limited.map(|l| Restriction {
                    by: l.by,
                    scope: l.scope,
                    after_secs: Ts(l.since).secs_since(Ts(start)),
                    followers,
                }),
                audience_kind: msg.audience(),
                audience: reach.audience,
                reshares: reach.reshares,
                impressions: reach.impressions,
                quotes: reach.quotes,
                replies: reach.replies,
                depth: reach.depth,
                targeted,
                target_outside_audience,
                reports: n_reports as u32,
                reports_at_least: reports_capped,
                reported_by_target: by_target,
                hate: factor_conf(FactorLabel::Hate),
                encouragement: factor_conf(FactorLabel::Encouragement),
                significant_impact: factor_conf(FactorLabel::SignificantImpact),
                remorse: factor_conf(FactorLabel::Remorse),
                tolerable: factor_conf(FactorLabel::Tolerable),
                minor: account.minor,
                prior: prior.n,
                prior_at_least: prior.at_least,
                mob_senders: mob.n,
                mob_at_least: mob.at_least,
                course: course.n,
                course_at_least: course.at_least,
                course_after_sanction: course.after_sanction,
                course_after_report: course.after_report,
                course_after_removal: course.after_removal,
                pile_on: match subject {
                    Subject::Author => PileOn {
                        resharers: distinct_resharers,
                        quotes: reach.quotes,
                        replies: reach.replies,
                        burst: u64::from(burst),
                    },
                    Subject::Resharer => PileOn::default(),
                },
            };
            // Score without evidence first: most evaluations change nothing material and are
            // not written, and formatting evidence costs more than the arithmetic.
            let quick = evaluate_with(policy, &facts, false);
            let material = Material {
                confidence,
                stage,
                exposure: &exposure,
                removal,
                reach: &reach,
                start,
                watched: watched(policy, category, &quick),
            };
            let sig = signature(policy, &quick, &material);
            // Time up alone changes only the exposure factor of a subject still up, and its
            // weight only grows with it (every weight is non-negative): a flag not watched
            // when up for good is never watched by time alone, and its stages are not material
            // (`signature`). Not evaluating it again at each stage halves the evaluations on a
            // viral cascade; what else changes it marks it for evaluation anyway.
            if next_stage.is_some() && !stage_matters {
                stage_matters = material.watched || {
                    let longest = Facts {
                        seconds_up: policy.exposure.slow_secs.max(stages.last().copied().unwrap_or(0)),
                        ..facts.clone()
                    };
                    watched(policy, category, &evaluate_with(policy, &longest, false))
                };
            }
            let key = (user, subject, category);
            let prev = self.hot[h.usize()].slots.get(&key).copied();
            let watched = material.watched;
            let cohort = policy.emission.resharer_cohort && subject == Subject::Resharer;
            if settle && cohort {
                // Every resharer is listed in the message's cohort when the input is quiet,
                // whether their flag is written or not (see `crate::cohort`).
                let account = self.users.name(user);
                self.cohort_roll.push((
                    category,
                    Member {
                        flag_id: flag_id(self.store.msg_id(m), subject, account, category),
                        account: account.to_owned(),
                        revision: rev,
                        score: quick.score,
                        raised: quick.raised,
                        reach: reach.clone(),
                        exposure: exposure.clone(),
                    },
                    Ts(as_of),
                ));
            }
            let emit = match prev {
                // The author's new flag is written at once. A resharer's, with cohorts, only
                // once it is raised or matters on its own (`emission.resharer_audience`): a
                // resharer near the threshold but not over it is in the cohort with their
                // score (on the viral shape at 640,000 events, repeated conduct put 78,000
                // resharers there, two or three revisions each). Without cohorts, a resharer's
                // flag near the threshold is written at once too, and one that is not material
                // when the input is quiet.
                None => match subject {
                    Subject::Author => true,
                    Subject::Resharer if cohort => quick.raised || resharer_material,
                    Subject::Resharer => settle || watched || resharer_material,
                },
                // When the input is quiet (the end of input, a partition gone quiet, a message
                // about to be forgotten) every flag whose revision moved is written: the
                // revision measures the whole state, so an unchanged revision means an
                // unchanged flag.
                Some(p) if settle => p.sig != sig || p.rev != rev,
                Some(p) if p.sig == sig => false,
                // News is written at once; other material changes once the interval is over.
                Some(p) => {
                    p.raised != quick.raised || p.still_up != exposure.still_up || horizon - p.written_at >= interval
                }
            };
            if !emit {
                // Not written now, but not lost: a material change is written by a timer at the
                // end of the interval, and any other change once the input is quiet, when
                // every labelled message is settled. A flush does not write it: on a viral
                // cascade, the streaming worker's flush every 100 ms rewrote every resharer's
                // flag for its time up ticking over, 94 revisions per input event (issue 15).
                if let Some(p) = prev
                    && p.sig != sig
                {
                    self.timers.insert((p.written_at.saturating_add(interval), m, who));
                }
                continue;
            }
            let eval = evaluate(policy, &facts);
            let account = self.users.name(user);
            let flag = Flag {
                schema: Cow::Borrowed(FLAG_SCHEMA),
                flag_id: flag_id(self.store.msg_id(m), subject, account, category),
                revision: rev,
                message_id: self.store.msg_id(m).to_owned(),
                subject,
                account: account.to_owned(),
                category,
                track: category.track(),
                score: eval.score,
                raised: eval.raised,
                reach: reach.clone(),
                exposure: exposure.clone(),
                factors: eval.factors,
                provision: Cow::Borrowed(category.provision()),
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
                !self.revisions_trusted || prev.is_none_or(|p| p.rev < rev || (p.rev == rev && p.content == content)),
                "revision did not grow: {prev:?} -> {rev} {}",
                flag.to_json()
            );
            let written = Slot {
                rev,
                sig,
                written_at: horizon,
                raised: flag.raised,
                still_up: flag.exposure.still_up,
                content,
            };
            self.hot[h.usize()].slots.insert(key, written);
            out.push(flag);
        }
        if stage_matters && let Some(at) = next_stage {
            self.timers.insert((at, m, who));
        }
        cost
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::Effect;

    /// Parts with every measure given, in declaration order (the flags as 0 or 1).
    fn parts(v: &[u64; 24]) -> RevisionParts {
        RevisionParts {
            label_events: v[0],
            reports: v[1],
            reported_by_target: v[2] % 2 == 1,
            reports_capped: v[3] % 2 == 1,
            reshares: v[4],
            quotes: v[5],
            replies: v[6],
            depth: v[7],
            audience: v[8],
            followers: v[9],
            impressions: v[10],
            channels: v[11],
            channel_starts: v[12],
            changes: v[13],
            known: v[14] % 2 == 1,
            time_term: v[15],
            up_millis: v[16],
            reshare_times: v[17],
            conduct_version: v[18],
            mobbing_version: v[19],
            course_version: v[20],
            resharer_starts: v[21],
            minor_term: v[22],
            posted: v[23],
        }
    }

    /// Measures of a realistic size: the sum of 24 of them never saturates.
    fn measures() -> impl Strategy<Value = [u64; 24]> {
        prop::array::uniform24(0u64..1 << 40).prop_map(|mut v| {
            v[13] %= 1 << 10;
            v
        })
    }

    proptest! {
        /// Any one measure growing makes the revision grow: a consumer keeping the highest
        /// revision keeps the newer state.
        #[test]
        fn any_measure_growing_grows_the_revision(v in measures(), i in 0usize..24, by in 1u64..1 << 20) {
            let mut w = v;
            if matches!(i, 2 | 3 | 14) {
                // A flag can only turn on.
                prop_assume!(v[i] % 2 == 0);
                w[i] = v[i] + 1;
            } else {
                w[i] = v[i] + by;
            }
            prop_assert!(revision(&parts(&w)) > revision(&parts(&v)));
        }

        /// One more removal change outweighs the largest shrink of the time term and the up
        /// time it can cause (each less than 2^43 ms, the span of times the decoder accepts).
        #[test]
        fn a_removal_change_outweighs_what_it_shrinks(v in measures(), shrink in 0u64..1 << 43, other in 0u64..1 << 43) {
            let mut before = v;
            before[15] = before[15].max(shrink);
            before[16] = before[16].max(other);
            let mut after = before;
            after[13] += 1;
            after[15] -= shrink;
            after[16] -= other;
            prop_assert!(revision(&parts(&after)) > revision(&parts(&before)));
        }
    }

    #[test]
    fn the_revision_saturates_rather_than_wrapping() {
        let most = parts(&[u64::MAX; 24]);
        assert_eq!(revision(&most), u64::MAX);
        assert_eq!(revision(&RevisionParts::default()), 1);
    }

    fn evaluation(score: f64, raised: bool, codes: &[&'static str]) -> Evaluation {
        Evaluation {
            score,
            raised,
            factors: codes
                .iter()
                .map(|&code| crate::model::Factor {
                    code: code.into(),
                    effect: Effect::For,
                    weight: 1.0,
                    evidence: String::new(),
                    provision: "".into(),
                })
                .collect(),
        }
    }

    fn exposure(removed_at: Option<i64>) -> Exposure {
        Exposure {
            posted_at: Ts(0),
            removed_at: removed_at.map(Ts),
            removed_by: None,
            removal: None,
            seconds_up: 0,
            still_up: removed_at.is_none(),
            restricted: None,
        }
    }

    fn reach(audience: u64) -> Reach {
        Reach {
            audience,
            reshares: 0,
            quotes: 0,
            replies: 0,
            impressions: None,
            depth: 0,
        }
    }

    /// What changes the signature (worth writing at once) and what does not.
    #[test]
    fn the_signature_moves_on_news_only() {
        let policy = Policy::default();
        let (up, down) = (exposure(None), exposure(Some(60_000)));
        let (small, near, wide) = (reach(150), reach(160), reach(5_000));
        let material = |exposure, reach, stage, watched| Material {
            confidence: Some(0.9),
            stage,
            exposure,
            removal: None,
            reach,
            start: 0,
            watched,
        };
        let sig = |e: &Evaluation, m: &Material<'_>| signature(&policy, e, m);
        let base = evaluation(0.41, false, &["category", "reach"]);
        let m = material(&up, &small, 1, true);
        let same = sig(&base, &m);
        assert_eq!(
            sig(&evaluation(0.41, false, &["category", "reach"]), &m),
            same,
            "a function"
        );
        // Within one score step (0.05): the same; across it, or raised, or another factor: not.
        assert_eq!(sig(&evaluation(0.42, false, &["category", "reach"]), &m), same);
        assert_ne!(sig(&evaluation(0.46, false, &["category", "reach"]), &m), same);
        assert_ne!(sig(&evaluation(0.41, true, &["category", "reach"]), &m), same);
        assert_ne!(
            sig(&evaluation(0.41, false, &["category", "reach", "targeted"]), &m),
            same
        );
        assert_ne!(sig(&base, &material(&up, &small, 2, true)), same, "a stage crossed");
        // Reach within one milestone (a power of 10): the same; across one, and a removal: not.
        assert_eq!(sig(&base, &material(&up, &near, 1, true)), same);
        assert_ne!(sig(&base, &material(&up, &wide, 1, true)), same);
        assert_ne!(sig(&base, &material(&down, &small, 1, true)), same);

        // A flag nobody watches (not raised, far below its threshold) moves only on news: its
        // score, its stage and its factors may change without a write.
        let quiet = sig(&base, &material(&up, &small, 1, false));
        let unwatched = |e: &Evaluation, stage| sig(e, &material(&up, &small, stage, false));
        assert_eq!(unwatched(&evaluation(0.46, false, &["category", "reach"]), 1), quiet);
        assert_eq!(unwatched(&base, 3), quiet);
        assert_eq!(
            unwatched(&evaluation(0.41, false, &["category", "reach", "targeted"]), 1),
            quiet
        );
        assert_ne!(
            unwatched(&evaluation(0.41, true, &["category", "reach"]), 1),
            quiet,
            "raised"
        );
        assert_ne!(sig(&base, &material(&up, &wide, 1, false)), quiet, "a reach milestone");
        assert_ne!(sig(&base, &material(&down, &small, 1, false)), quiet, "coming down");
    }

    /// Category 4 is watched within the margin below its threshold; categories 1 to 3, which
    /// their label raises, only when raised.
    #[test]
    fn a_flag_is_watched_when_raised_or_near_its_threshold() {
        let policy = Policy::default();
        let t = policy.labels.high_threshold;
        let margin = policy.emission.score_margin;
        let comms = Category::CommunicationsOffence;
        assert!(watched(&policy, comms, &evaluation(t - margin, false, &[])));
        assert!(!watched(&policy, comms, &evaluation(t - margin - 0.01, false, &[])));
        assert!(watched(&policy, comms, &evaluation(0.1, true, &[])));
        assert!(!watched(
            &policy,
            Category::CredibleThreat,
            &evaluation(0.99, false, &[])
        ));
        assert!(watched(&policy, Category::CredibleThreat, &evaluation(0.1, true, &[])));
    }
}
