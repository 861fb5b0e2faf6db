//! Reshares waiting to be placed under the reshare their `via` names.
//!
//! A `via` is followed only to an earlier reshare of the same original (see
//! `Engine::resolve_via`). A reshare whose `via` cannot be followed yet (the id not seen, or
//! seen only as a placeholder, or of another original so far, or not earlier) is *pending* on
//! that id. Each pending reshare is also *listed* under the id, keyed by its own time, until the
//! two turn out to be of different originals: then only a rebuild of the merged original (which
//! visits its reshares anyway) can place it. Keyed by time, the reshares a `via` reshare now
//! comes before are a range of its list, so a repeat that moves it earlier visits only those,
//! and dropping a reshare takes it off its list in logarithmic time: no event rescans a list.

use std::collections::BTreeSet;

use hashbrown::{HashMap, HashSet};
use serde::{Deserialize, Serialize};

use crate::store::{Id, ReshareIx};

#[derive(Default, Serialize, Deserialize)]
pub(super) struct Waiting {
    /// Pending reshare → the id its `via` names.
    pending: HashMap<ReshareIx, Id>,
    /// The id a `via` names → (time, reshare) of the pending reshares listed under it.
    listed: HashMap<Id, BTreeSet<(i64, ReshareIx)>>,
    /// Reshares whose parent is the reshare their `via` named (not one their `of` named), so
    /// that an `of` that turns out to name a reshare can take precedence.
    linked: HashSet<ReshareIx>,
}

impl Waiting {
    /// Reshare `w` (at `at`) waits for `via`.
    pub(super) fn wait(&mut self, w: ReshareIx, at: i64, via: &str) {
        self.pending.insert(w, Id::new(via));
        self.listed.entry(Id::new(via)).or_default().insert((at, w));
    }

    /// The id reshare `w` waits for, if any.
    pub(super) fn via_of(&self, w: ReshareIx) -> Option<&Id> {
        self.pending.get(&w)
    }

    /// Reshare `w` (at `at`) waits no more: it was placed under its `via` (`linked`), or under
    /// the reshare its `of` named, or it is dropped.
    pub(super) fn done(&mut self, w: ReshareIx, at: i64, linked: bool) {
        if let Some(via) = self.pending.remove(&w) {
            self.unlist(via.as_str(), w, at);
        }
        if linked {
            self.linked.insert(w);
        } else {
            self.linked.remove(&w);
        }
    }

    /// Whether reshare `w`'s parent is the reshare its `via` named.
    pub(super) fn is_linked(&self, w: ReshareIx) -> bool {
        self.linked.contains(&w)
    }

    /// Takes `w` off the list of `via`, leaving it pending: it is of another original.
    pub(super) fn unlist(&mut self, via: &str, w: ReshareIx, at: i64) {
        if let Some(list) = self.listed.get_mut(via) {
            list.remove(&(at, w));
            if list.is_empty() {
                self.listed.remove(via);
            }
        }
    }

    /// Lists pending reshare `w` (at `at`) under the id it waits for again: a rebuild found it
    /// of the same original as that reshare, but not after it.
    pub(super) fn relist(&mut self, w: ReshareIx, at: i64) {
        if let Some(via) = self.pending.get(&w) {
            self.listed.entry(via.clone()).or_default().insert((at, w));
        }
    }

    /// Pending reshare `w` moved from `old` to `new`: its key in its list moves too.
    pub(super) fn moved(&mut self, w: ReshareIx, old: i64, new: i64) {
        let Some(via) = self.pending.get(&w) else { return };
        if let Some(list) = self.listed.get_mut(via.as_str())
            && list.remove(&(old, w))
        {
            list.insert((new, w));
        }
    }

    /// The reshares listed under `via` at `at` or later: those a reshare at `at` may come
    /// before (at equal times the ids decide).
    pub(super) fn listed_from(&self, via: &str, at: i64) -> Vec<ReshareIx> {
        self.listed
            .get(via)
            .map(|list| list.range((at, ReshareIx::MIN)..).map(|&(_, w)| w).collect())
            .unwrap_or_default()
    }

    /// Whether every entry passes: pending reshares live (`live`), each listed reshare pending
    /// on the id of its list at the time it is keyed by (`at_of`), a restored snapshot's check.
    pub(super) fn consistent(&self, live: impl Fn(ReshareIx) -> bool, at_of: impl Fn(ReshareIx) -> i64) -> bool {
        self.pending.keys().all(|&w| live(w))
            && self.linked.iter().all(|&w| live(w) && !self.pending.contains_key(&w))
            && self.listed.iter().all(|(via, list)| {
                !list.is_empty()
                    && list
                        .iter()
                        .all(|&(t, w)| live(w) && self.pending.get(&w) == Some(via) && t == at_of(w))
            })
    }
}
