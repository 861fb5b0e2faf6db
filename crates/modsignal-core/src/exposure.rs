//! Exposure: when a subject was up, when it came down, and why.
//!
//! A subject's visibility depends on several *sources* of removals: its own deletes,
//! restrictions and restores; for a reshare, those of the original too; and the status of the
//! accounts involved. Each source is a list of changes in event time. The functions here sweep
//! those lists in a fixed order (time, then the kind of change), so the result depends only on
//! which changes exist, never on the order they arrived in.

use crate::event::{AccountStatus, RemovedBy, Scope};
use crate::model::{Removal, RemovalKind};

/// One change to visibility, as stored per message, reshare or account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) enum What {
    Delete(RemovedBy),
    Restrict(RemovedBy, ScopeOrd),
    Account(StatusOrd),
    Restore(RemovedBy),
}

/// `Scope` and `AccountStatus` with an order, so that changes sort deterministically.
pub(crate) type ScopeOrd = u8;
pub(crate) type StatusOrd = u8;

pub(crate) fn scope_ord(s: Scope) -> ScopeOrd {
    s as u8
}
pub(crate) fn scope_of(o: ScopeOrd) -> Scope {
    match o {
        0 => Scope::Withheld,
        1 => Scope::FollowersOnly,
        2 => Scope::AgeGated,
        _ => Scope::Limited,
    }
}
pub(crate) fn status_ord(s: AccountStatus) -> StatusOrd {
    s as u8
}
pub(crate) fn status_of(o: StatusOrd) -> AccountStatus {
    match o {
        0 => AccountStatus::Active,
        1 => AccountStatus::Suspended,
        2 => AccountStatus::Deactivated,
        3 => AccountStatus::Deleted,
        4 => AccountStatus::Takendown,
        _ => AccountStatus::Protected,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) struct Change {
    pub at: i64,
    pub what: What,
}

/// Inserts a change into a sorted list unless it is already there; returns whether it was new.
pub(crate) fn insert_change(list: &mut Vec<Change>, c: Change) -> bool {
    match list.binary_search(&c) {
        Ok(_) => false,
        Err(pos) => {
            list.insert(pos, c);
            true
        }
    }
}

/// The part a source plays for the subject, which decides how its removals are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Own,
    Original,
    OwnAccount,
    OriginalAccount,
}

/// A restriction that leaves the subject visible to some (followers only, age-gated,
/// limited): not a removal, but action the model credits in part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limited {
    pub since: i64,
    pub by: RemovedBy,
    pub scope: Scope,
}

#[derive(Default, Clone, Copy)]
struct SourceState {
    permanent: Option<RemovedBy>,
    taken_down: Option<RemovedBy>,
    restricted: Option<RemovedBy>,
    /// The first partial restriction in force (time, who, scope): a later one of another
    /// scope does not replace it, so the result depends only on the set of changes.
    limited: Option<(i64, RemovedBy, ScopeOrd)>,
    account: Option<RemovedBy>,
    /// Since when the account has been protected (its messages visible to its followers
    /// only): kept apart from `limited`, since restoring one message does not lift it.
    protected: Option<(i64, RemovedBy, ScopeOrd)>,
}

impl SourceState {
    fn apply(&mut self, c: Change) {
        match c.what {
            What::Delete(by) if by.reversible() => self.taken_down = self.taken_down.or(Some(by)),
            What::Delete(by) => self.permanent = self.permanent.or(Some(by)),
            // Only `withheld` blocks access for everyone. The other scopes leave the message
            // visible to some (its author's followers, adults, those who search for it): the
            // guidelines ask for action that is swift *and effective* (para 39), so they are
            // not a removal, and the subject stays up.
            What::Restrict(by, s) if scope_of(s) == Scope::Withheld => {
                self.restricted = self.restricted.or(Some(by));
            }
            What::Restrict(by, s) => self.limited = self.limited.or(Some((c.at, by, s))),
            What::Restore(_) => {
                self.taken_down = None;
                self.restricted = None;
                self.limited = None;
            }
            What::Account(s) => {
                let status = status_of(s);
                self.account = match status {
                    AccountStatus::Active | AccountStatus::Protected => None,
                    AccountStatus::Suspended | AccountStatus::Takendown => Some(RemovedBy::Platform),
                    AccountStatus::Deactivated | AccountStatus::Deleted => Some(RemovedBy::Author),
                };
                // A protected account's messages stay visible to its followers: the author's
                // followers-only restriction of every one of them, from the first time it was
                // protected without a break.
                self.protected = match status {
                    AccountStatus::Protected => {
                        self.protected
                            .or(Some((c.at, RemovedBy::Author, scope_ord(Scope::FollowersOnly))))
                    }
                    _ => None,
                };
            }
        }
    }
    fn cause(&self, role: Role) -> Option<Removal> {
        let (by, own_kind) = if let Some(by) = self.permanent.or(self.taken_down) {
            (by, RemovalKind::Deleted)
        } else if let Some(by) = self.restricted {
            (by, RemovalKind::Blocked)
        } else if let Some(by) = self.account {
            (by, RemovalKind::Account)
        } else {
            return None;
        };
        let kind = match role {
            Role::Own | Role::OwnAccount => own_kind,
            Role::Original | Role::OriginalAccount => RemovalKind::WithOriginal,
        };
        Some(Removal { by, kind })
    }
}

/// One way a subject is visible: a post, or one reshare, with the sources that can take it down.
pub(crate) struct Channel<'a> {
    pub start: i64,
    pub sources: Vec<(Role, &'a [Change])>,
}

/// An interval during which a channel was up, and why it ended (if it did before the horizon).
#[derive(Clone, Copy, Debug)]
struct Up {
    from: i64,
    to: i64,
    ended_by: Option<Removal>,
}

struct ChannelVis {
    ups: Vec<Up>,
    /// Set when down at the horizon: since when, and why.
    down: Option<(i64, Removal)>,
    /// First removal at or after the start, even if later reversed.
    first_down: Option<(i64, Removal)>,
    /// Set when up at the horizon under a partial restriction.
    limited: Option<Limited>,
}

fn sweep(ch: &Channel<'_>, horizon: i64) -> ChannelVis {
    let mut events: Vec<(Change, usize)> = Vec::new();
    for (i, (_, list)) in ch.sources.iter().enumerate() {
        events.extend(list.iter().map(|c| (*c, i)));
    }
    events.sort_unstable();
    let mut states = vec![SourceState::default(); ch.sources.len()];
    let cause = |states: &[SourceState]| -> Option<Removal> {
        states.iter().zip(&ch.sources).find_map(|(s, (role, _))| s.cause(*role))
    };
    let mut i = 0;
    while i < events.len() && events[i].0.at <= ch.start {
        states[events[i].1].apply(events[i].0);
        i += 1;
    }
    let mut ups = Vec::new();
    let mut down = cause(&states).map(|c| {
        let since = events[..i]
            .iter()
            .rev()
            .find(|(e, _)| !matches!(e.what, What::Restore(_)))
            .map_or(ch.start, |(e, _)| e.at);
        (since, c)
    });
    let mut first_down = down;
    let mut from = ch.start;
    for &(ev, src) in &events[i..] {
        if ev.at > horizon {
            break;
        }
        states[src].apply(ev);
        let now = cause(&states);
        match (down.is_some(), now) {
            (false, Some(c)) => {
                ups.push(Up {
                    from,
                    to: ev.at,
                    ended_by: Some(c),
                });
                down = Some((ev.at, c));
                first_down = first_down.or(down);
            }
            (true, None) => {
                down = None;
                from = ev.at;
            }
            (true, Some(c)) => down = down.map(|(since, _)| (since, c)),
            (false, None) => {}
        }
    }
    if down.is_none() {
        ups.push(Up {
            from,
            to: horizon.max(from),
            ended_by: None,
        });
    }
    // Up at the horizon but partly restricted by one of its sources (its own, or its
    // original's, which limits every reshare of it): the first source's restriction, and
    // never from before the channel started.
    let limited = if down.is_none() {
        states
            .iter()
            .find_map(|s| s.limited.or(s.protected))
            .map(|(at, by, scope)| Limited {
                since: at.max(ch.start),
                by,
                scope: scope_of(scope),
            })
    } else {
        None
    };
    ChannelVis {
        ups,
        down,
        first_down,
        limited,
    }
}

/// The exposure of one subject over all its channels.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Visibility {
    /// Up intervals, merged across channels, up to the horizon.
    ups: Vec<(i64, i64)>,
    pub first_removal: Option<(i64, Removal)>,
    /// Set when every channel is down at the horizon.
    pub down: Option<(i64, Removal)>,
    /// Set when the subject is up at the horizon and every channel still up is partly
    /// restricted: since when all of them have been (the latest of their restrictions).
    pub limited: Option<Limited>,
    pub start: i64,
}

/// Which of two removals at one instant a flag reports: the lower rank (by kind, then by who).
/// Channels come in the order the subject's reshares were stored, which follows arrival order;
/// a tie broken by channel order would make the final flag depend on the order events came in
/// (an engine fuzz finding, `fuzz/regressions/engine/resharer-removal-kind-on-a-tie`).
fn rank(r: Option<Removal>) -> (u8, u8) {
    r.map_or((u8::MAX, u8::MAX), |r| (r.kind as u8, r.by as u8))
}

impl Visibility {
    pub(crate) fn compute(channels: &[Channel<'_>], horizon: i64) -> Visibility {
        let vis: Vec<ChannelVis> = channels.iter().map(|c| sweep(c, horizon)).collect();
        let start = channels.iter().map(|c| c.start).min().unwrap_or(horizon);
        let mut ups: Vec<Up> = vis.iter().flat_map(|v| v.ups.iter().copied()).collect();
        ups.sort_by_key(|u| (u.from, u.to, rank(u.ended_by)));
        let mut merged: Vec<Up> = Vec::new();
        for u in ups {
            match merged.last_mut() {
                Some(last) if u.from <= last.to => {
                    // A span that ends later decides how the merged span ended; of two that
                    // end at one instant, the removal of lower rank does, whatever their order.
                    if u.to > last.to || (u.to == last.to && rank(u.ended_by) < rank(last.ended_by)) {
                        last.to = u.to;
                        last.ended_by = u.ended_by;
                    }
                }
                _ => merged.push(u),
            }
        }
        let all_down = vis.iter().all(|v| v.down.is_some());
        let down = if all_down {
            // Since when every channel has been down: the latest of their down times (of two at
            // one instant, the removal of lower rank).
            vis.iter()
                .filter_map(|v| v.down)
                .max_by_key(|&(since, r)| (since, std::cmp::Reverse(rank(Some(r)))))
        } else {
            None
        };
        let first_removal = match merged.first() {
            Some(u) if u.ended_by.is_some() => Some((u.to, u.ended_by.expect("checked"))),
            Some(_) => None,
            None => vis
                .iter()
                .filter_map(|v| v.first_down)
                .min_by_key(|&(at, r)| (at, rank(Some(r)))),
        };
        let limited = if all_down {
            None
        } else {
            let up: Vec<Option<Limited>> = vis.iter().filter(|v| v.down.is_none()).map(|v| v.limited).collect();
            if up.iter().all(Option::is_some) {
                // Of two at one instant, the lower in a fixed order of scope and who, whatever
                // the order of the channels.
                up.into_iter()
                    .flatten()
                    .max_by_key(|l| (l.since, std::cmp::Reverse((l.scope as u8, l.by as u8))))
            } else {
                None
            }
        };
        Visibility {
            ups: merged.iter().map(|u| (u.from, u.to)).collect(),
            first_removal,
            down,
            limited,
            start,
        }
    }

    /// Milliseconds up within `[start, as_of]`.
    pub(crate) fn up_millis(&self, as_of: i64) -> i64 {
        self.ups.iter().map(|&(f, t)| (t.min(as_of) - f).max(0)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(at: i64, what: What) -> Change {
        Change { at, what }
    }

    #[test]
    fn a_platform_takedown_reversed_then_an_author_delete() {
        let own = vec![
            c(10_000, What::Delete(RemovedBy::Platform)),
            c(20_000, What::Restore(RemovedBy::Platform)),
            c(50_000, What::Delete(RemovedBy::Author)),
        ];
        let ch = Channel {
            start: 0,
            sources: vec![(Role::Own, &own)],
        };
        let v = Visibility::compute(&[ch], 100_000);
        assert_eq!(v.up_millis(100_000), 40_000);
        assert_eq!(
            v.first_removal,
            Some((
                10_000,
                Removal {
                    by: RemovedBy::Platform,
                    kind: RemovalKind::Deleted
                }
            ))
        );
        assert_eq!(
            v.down,
            Some((
                50_000,
                Removal {
                    by: RemovedBy::Author,
                    kind: RemovalKind::Deleted
                }
            ))
        );
    }

    #[test]
    fn a_reshare_goes_down_with_its_original() {
        let own: Vec<Change> = vec![];
        let orig = vec![c(30_000, What::Delete(RemovedBy::Author))];
        let ch = Channel {
            start: 5_000,
            sources: vec![(Role::Own, &own), (Role::Original, &orig)],
        };
        let v = Visibility::compute(&[ch], 100_000);
        assert_eq!(v.up_millis(100_000), 25_000);
        assert_eq!(v.down.unwrap().1.kind, RemovalKind::WithOriginal);
    }

    #[test]
    fn a_delete_before_the_post_means_never_up() {
        let own = vec![c(1_000, What::Delete(RemovedBy::Author))];
        let ch = Channel {
            start: 5_000,
            sources: vec![(Role::Own, &own)],
        };
        let v = Visibility::compute(&[ch], 100_000);
        assert_eq!(v.up_millis(100_000), 0);
        assert_eq!(v.down.unwrap().0, 1_000);
        assert_eq!(v.first_removal.unwrap().0, 1_000);
    }

    /// A protected account's messages stay up, restricted to followers by their author, until
    /// the account is active again; a message restored by the platform stays protected, and a
    /// suspension still takes them down.
    #[test]
    fn a_protected_account_restricts_its_messages_without_taking_them_down() {
        let status = |at, s| c(at, What::Account(status_ord(s)));
        let account = vec![
            status(10_000, AccountStatus::Protected),
            status(20_000, AccountStatus::Protected),
        ];
        let own = vec![
            c(30_000, What::Restrict(RemovedBy::Platform, scope_ord(Scope::Withheld))),
            c(40_000, What::Restore(RemovedBy::Platform)),
        ];
        let ch = || Channel {
            start: 0,
            sources: vec![(Role::Own, &own), (Role::OwnAccount, &account)],
        };
        let v = Visibility::compute(&[ch()], 100_000);
        assert!(v.down.is_none());
        let limited = v.limited.expect("restricted");
        assert_eq!(
            (limited.since, limited.by, limited.scope),
            (10_000, RemovedBy::Author, Scope::FollowersOnly)
        );
        assert_eq!(v.up_millis(100_000), 90_000);

        let mut lifted = account.clone();
        lifted.push(status(50_000, AccountStatus::Active));
        let v = Visibility::compute(
            &[Channel {
                start: 0,
                sources: vec![(Role::OwnAccount, &lifted)],
            }],
            100_000,
        );
        assert!(v.down.is_none() && v.limited.is_none());

        let mut suspended = account.clone();
        suspended.push(status(50_000, AccountStatus::Suspended));
        let v = Visibility::compute(
            &[Channel {
                start: 0,
                sources: vec![(Role::OwnAccount, &suspended)],
            }],
            100_000,
        );
        assert_eq!(v.down.map(|(at, r)| (at, r.kind)), Some((50_000, RemovalKind::Account)));
    }

    #[test]
    fn channels_union() {
        let a = vec![c(10_000, What::Delete(RemovedBy::Author))];
        let b: Vec<Change> = vec![c(40_000, What::Account(status_ord(AccountStatus::Suspended)))];
        let v = Visibility::compute(
            &[
                Channel {
                    start: 0,
                    sources: vec![(Role::Own, &a)],
                },
                Channel {
                    start: 5_000,
                    sources: vec![(Role::OwnAccount, &b)],
                },
            ],
            100_000,
        );
        assert_eq!(v.up_millis(100_000), 40_000);
        assert_eq!(
            v.down.unwrap().1,
            Removal {
                by: RemovedBy::Platform,
                kind: RemovalKind::Account
            }
        );
        assert_eq!(v.first_removal.unwrap().0, 40_000);
    }

    /// Only `withheld` blocks access for everyone. Age-gating leaves the message up, reported
    /// as a partial restriction, until a restore lifts it; a later withholding takes it down.
    #[test]
    fn a_partial_restriction_leaves_the_subject_up() {
        let own = [
            c(10_000, What::Restrict(RemovedBy::Platform, scope_ord(Scope::AgeGated))),
            c(
                20_000,
                What::Restrict(RemovedBy::Legal, scope_ord(Scope::FollowersOnly)),
            ),
            c(30_000, What::Restore(RemovedBy::Platform)),
            c(40_000, What::Restrict(RemovedBy::Author, scope_ord(Scope::Limited))),
        ];
        let ch = || Channel {
            start: 0,
            sources: vec![(Role::Own, &own[..])],
        };
        let at = |horizon| Visibility::compute(&[ch()], horizon);
        let v = at(25_000);
        assert_eq!((v.down, v.first_removal), (None, None));
        assert_eq!(v.up_millis(25_000), 25_000);
        // The first partial restriction in force is the one reported.
        assert_eq!(
            v.limited,
            Some(Limited {
                since: 10_000,
                by: RemovedBy::Platform,
                scope: Scope::AgeGated
            })
        );
        assert_eq!(at(35_000).limited, None, "lifted by the restore");
        assert_eq!(
            at(50_000).limited.map(|l| (l.since, l.scope)),
            Some((40_000, Scope::Limited))
        );
        let withheld = [c(60_000, What::Restrict(RemovedBy::Legal, scope_ord(Scope::Withheld)))];
        let both = Channel {
            start: 0,
            sources: vec![(Role::Own, &own[..]), (Role::Original, &withheld[..])],
        };
        let v = Visibility::compute(&[both], 100_000);
        assert_eq!(
            v.down.map(|(at, r)| (at, r.kind)),
            Some((60_000, RemovalKind::WithOriginal))
        );
        assert_eq!(v.limited, None, "down for everyone, not restricted");
    }

    /// Two channels that come down at one instant, one by its own deletion and one with its
    /// original: the removal reported is the same in either channel order.
    #[test]
    fn a_tie_of_channels_is_broken_the_same_whatever_their_order() {
        let own = vec![c(30_000, What::Delete(RemovedBy::Author))];
        let original = vec![c(30_000, What::Delete(RemovedBy::Author))];
        let none: Vec<Change> = Vec::new();
        let a = || Channel {
            start: 10_000,
            sources: vec![(Role::Own, &own), (Role::Original, &none)],
        };
        let b = || Channel {
            start: 10_000,
            sources: vec![(Role::Own, &none), (Role::Original, &original)],
        };
        let one = Visibility::compute(&[a(), b()], 100_000);
        let other = Visibility::compute(&[b(), a()], 100_000);
        assert_eq!(one.first_removal, other.first_removal);
        assert_eq!(one.down, other.down);
        assert_eq!(
            one.first_removal.unwrap().1.kind,
            RemovalKind::Deleted,
            "the lower rank: its own deletion"
        );
    }
}
