//! The retention horizon: what has been quiet for `stream.retention_secs` of event time is
//! written one last time and dropped, so memory stays bounded on an endless stream.
//!
//! A sweep runs each time the watermark has moved an eighth of the horizon. It visits the
//! whole state (a scan of compact records, cheap next to the events that moved the watermark):
//! quiet messages go with their reshares and forwarding records, removals of ids never seen go,
//! history older than every window goes, and then every account that nothing in state refers to
//! any more and that has been quiet as long goes too, its handle free for reuse.

use super::{Engine, Pass, Who};
use crate::flag::Flag;
use crate::store::{BIT_DEAD, BIT_FORWARD, BIT_SEEN, HotIx, MsgIx, UserIx};

impl Engine {
    pub(super) fn retention_ms(&self) -> i64 {
        self.policy.stream.retention_secs as i64 * 1000
    }

    pub(super) fn maybe_sweep(&mut self, out: &mut Vec<Flag>) {
        let Some(wm) = self.watermark() else { return };
        if self.next_sweep == i64::MIN {
            self.next_sweep = wm.0 + self.retention_ms();
        } else if wm.0 >= self.next_sweep {
            self.evict(wm.0 - self.retention_ms(), out);
            self.next_sweep = wm.0 + self.retention_ms() / 8;
        }
    }

    /// Messages (and reshares) whose sums are stale because of a deferred follower-count
    /// change are rebuilt, and deferred related messages are marked: before flags are written
    /// as final.
    pub(super) fn release_all_deferred(&mut self) {
        let mut sync = std::mem::take(&mut self.deferred_sync);
        sync.sort_unstable();
        sync.dedup();
        for m in sync {
            self.sync_subjects(m);
        }
        let mut growth = std::mem::take(&mut self.deferred_growth);
        growth.sort_unstable();
        growth.dedup();
        for u in growth {
            for m in self.conduct.messages(u) {
                self.restructure(m);
            }
        }
        self.release_deferred();
    }

    /// Drops every message with no activity since `horizon`, with its reshares, after writing
    /// the last state of its flags. Events about it that arrive later start afresh.
    fn evict(&mut self, horizon: i64, out: &mut Vec<Flag>) {
        // Work held back is done first under the emission rules, as flushes do it, so that
        // what is settled reads a state with every pending rebuild and sync done.
        self.do_held_work(out);
        let victims: Vec<MsgIx> = self
            .store
            .msgs
            .handles()
            .filter(|&m| {
                let msg = self.store.msgs.get(m);
                msg.bits & (BIT_DEAD | BIT_FORWARD) == 0 && msg.last_at < horizon
            })
            .collect();
        // Only the messages about to be forgotten are settled (every moved revision written),
        // never the messages they are related to.
        for &m in &victims {
            self.mark(m, Who::ALL);
        }
        self.drain(out, Pass::Settle);
        for &m in &victims {
            self.drop_message(m);
        }
        // Removals of ids never seen (a delete of a post from before the stream began) go too.
        let store = &self.store;
        self.removals
            .retain(|id, list| store.find(id).is_some() || list.last().is_some_and(|c| c.at >= horizon));
        let window = self
            .policy
            .conduct
            .repeat_window_secs
            .max(self.policy.conduct.mobbing_window_secs)
            .max(self.policy.conduct.course_window_secs) as i64
            * 1000;
        self.prune_history(horizon.saturating_sub(window));
        self.sweep_users(horizon);
        self.evicted += victims.len() as u64;
        #[cfg(debug_assertions)]
        if let Err(e) = self.check_references() {
            panic!("state after a retention sweep: {e}");
        }
    }

    fn drop_message(&mut self, m: MsgIx) {
        let msg = self.store.msgs.get(m);
        if msg.known() {
            let (mention, author, at) = (msg.mention, msg.author(), msg.posted_at);
            self.contact_evicted(mention, author, at);
        }
        let list = self.store.reshares_of(m);
        self.work = self.work.saturating_add(list.len() as u64);
        let mut forwards = Vec::new();
        for &r in &list {
            let f = self.store.rss.get(r).original;
            if f != m {
                let fm = self.store.msgs.get_mut(f);
                if fm.bits & BIT_SEEN == 0 {
                    fm.bits |= BIT_SEEN;
                    forwards.push(f);
                }
            }
            self.removals.remove(self.store.rs_id(r));
            self.via.done(r, self.store.rss.get(r).at, false);
            self.store.free_reshare(r);
        }
        for f in forwards {
            self.store.free_message(f);
        }
        let h = self.store.msgs.get(m).hot;
        if h != HotIx::NONE {
            self.cool(h, m, true);
        }
        self.reports.remove(&m);
        self.removals.remove(self.store.msg_id(m));
        self.store.free_message(m);
    }

    /// Forgets every account that nothing in state refers to and that has been quiet since
    /// `horizon`: its id, its status history, its age statement.
    fn sweep_users(&mut self, horizon: i64) {
        let n = self.users.slots() as usize;
        let mut keep = vec![false; n];
        let mut hold = |u: UserIx| {
            if u.usize() < n {
                keep[u.usize()] = true;
            }
        };
        let free_msgs = self.store.msgs.free_bits();
        for m in self.store.msgs.handles() {
            let msg = self.store.msgs.get(m);
            if free_msgs[m.usize()] || msg.forwards() {
                continue;
            }
            hold(msg.author());
            hold(msg.mention);
        }
        let free_rss = self.store.rss.free_bits();
        for r in self.store.rss.handles() {
            if !free_rss[r.usize()] {
                hold(self.store.rss.get(r).author);
            }
        }
        for hot in self.hot.iter().filter(|h| h.msg != MsgIx::NONE) {
            hot.resharers.keys().for_each(|&u| hold(u));
            hot.slots.keys().for_each(|&(u, _, _)| hold(u));
            hot.labels.iter().chain(&hot.label_events).for_each(|l| {
                hold(l.target);
                hold(l.scope);
            });
            hot.targets_ever.iter().for_each(|&u| hold(u));
            hot.dirty.iter().filter_map(|w| w.handle()).for_each(&mut hold);
        }
        for r in self.reports.values() {
            r.handles().for_each(&mut hold);
        }
        for &(_, _, w) in &self.timers {
            if let Some(u) = w.handle() {
                hold(u);
            }
        }
        self.conduct.senders().for_each(&mut hold);
        self.targets.people().for_each(&mut hold);
        self.deferred_users.iter().for_each(|&u| hold(u));
        self.deferred_targets.iter().for_each(|&u| hold(u));
        self.deferred_growth.iter().for_each(|&u| hold(u));
        let free = self.users.free_bits();
        for u in self.users.slab().handles() {
            if !free[u.usize()] && !keep[u.usize()] && self.users.quiet_since(u, horizon) {
                self.accounts.remove(&u);
                self.users.release(u);
            }
        }
        self.work = self.work.saturating_add(n as u64);
    }
}
