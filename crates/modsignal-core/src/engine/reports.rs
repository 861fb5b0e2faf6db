//! Reports on a message and its reshares, per resharer, capped per list: [`Reports`].

use std::collections::BTreeMap;

use crate::store::UserIx;

/// Reports on a message and on its reshares. Reports sent to a reshare's id are kept apart, by
/// resharer, and count on that resharer's flag only. Each list holds at most
/// `limits.reporters_per_message` reporters; beyond that, it only says that more came.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Reports {
    /// Reports on the message itself.
    pub(super) message: Reporters,
    /// Reports on each resharer's reshares, by the resharer's handle (a map, so that reports
    /// on many reshares of one message cost a logarithm each, not a shift of a list).
    pub(super) resharers: BTreeMap<UserIx, Reporters>,
}

/// One list of reports: the distinct reporters, whether the person targeted reported, and
/// whether more reporters came than are counted.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Reporters {
    /// Handles of the reporters, sorted. They are counted, never written.
    pub(super) users: Vec<UserIx>,
    pub(super) by_target: bool,
    pub(super) capped: bool,
    /// When the person targeted first reported it (the earliest such report).
    pub(super) by_target_at: Option<i64>,
}

impl Reports {
    pub(super) fn get(&self, scope: UserIx) -> Option<&Reporters> {
        if scope == UserIx::NONE {
            return Some(&self.message);
        }
        self.resharers.get(&scope)
    }

    /// The list of reports for `scope`: the message's (`NONE`) or a resharer's.
    pub(super) fn list(&mut self, scope: UserIx) -> &mut Reporters {
        if scope == UserIx::NONE {
            return &mut self.message;
        }
        self.resharers.entry(scope).or_default()
    }

    /// Whether the list for `scope` holds as many reporters as it may.
    pub(super) fn full(&self, scope: UserIx, cap: u32) -> bool {
        self.get(scope).is_some_and(|l| l.users.len() >= cap as usize)
    }

    /// Adds a report to the list for `scope`: `reporter`, or `None` for a reporter that is not
    /// counted because the list is full. Returns whether anything changed.
    pub(super) fn add(&mut self, scope: UserIx, reporter: Option<UserIx>, by_target: Option<i64>, cap: u32) -> bool {
        let list = self.list(scope);
        let full = list.users.len() >= cap as usize;
        let mut changed = false;
        match reporter.map(|u| (u, list.users.binary_search(&u))) {
            Some((_, Ok(_))) => {}
            Some((u, Err(pos))) if !full => {
                list.users.insert(pos, u);
                changed = true;
            }
            _ => {
                changed = !list.capped;
                list.capped = true;
            }
        }
        if let Some(at) = by_target {
            if !list.by_target {
                list.by_target = true;
                changed = true;
            }
            if list.by_target_at.is_none_or(|t| at < t) {
                list.by_target_at = Some(at);
                changed = true;
            }
        }
        changed
    }

    /// Adds every report of `from`, as sent to `scope`.
    pub(super) fn merge(&mut self, scope: UserIx, from: &Reporters, cap: u32) {
        for &u in &from.users {
            self.add(scope, Some(u), None, cap);
        }
        if from.capped {
            self.add(scope, None, None, cap);
        }
        let to = self.list(scope);
        to.by_target |= from.by_target;
        to.by_target_at = match (to.by_target_at, from.by_target_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// What one subject's flag reads: for the author (`NONE`) the message's reports; for a
    /// resharer, the distinct reporters of the message and of their reshares.
    pub(super) fn counts(&self, scope: UserIx) -> ReportCounts {
        let m = &self.message;
        let own = if scope == UserIx::NONE { None } else { self.get(scope) };
        let Some(own) = own else {
            return ReportCounts {
                distinct: m.users.len() as u64,
                measure: m.users.len() as u64,
                by_target: m.by_target,
                capped: m.capped,
            };
        };
        // Which reporters a full list kept depends on the order they came in, so past a cap
        // the count is the larger list, a lower bound that does not.
        let distinct = if m.capped || own.capped {
            m.users.len().max(own.users.len())
        } else {
            m.users.len() + own.users.iter().filter(|u| m.users.binary_search(u).is_err()).count()
        };
        ReportCounts {
            distinct: distinct as u64,
            measure: (m.users.len() + own.users.len()) as u64,
            by_target: m.by_target || own.by_target,
            capped: m.capped || own.capped,
        }
    }

    /// Every reporter and resharer handle held.
    pub(super) fn handles(&self) -> impl Iterator<Item = UserIx> + '_ {
        let resharers = self
            .resharers
            .iter()
            .flat_map(|(u, l)| std::iter::once(*u).chain(l.users.iter().copied()));
        self.message.users.iter().copied().chain(resharers)
    }
}

/// What a subject's flag reads of the reports ([`Reports::counts`]): the distinct reporters
/// counted, the revision's measure of them (which grows with either list), whether the person
/// targeted reported, whether more came than are counted.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ReportCounts {
    pub(super) distinct: u64,
    pub(super) measure: u64,
    pub(super) by_target: bool,
    pub(super) capped: bool,
}
