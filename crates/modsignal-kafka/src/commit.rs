//! Which input offsets may be committed: an offset is committed only once every flag and dead
//! letter produced for the records before it has been acknowledged by the broker, and only at
//! a point where the partition's engine had written every change it held (a checkpoint, taken
//! right after a flush). That is what makes a restart from the committed offset lose nothing:
//! the flags up to it are on the output topic, and a replay rebuilds the state behind them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// An input partition: topic and partition number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tp {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl Tp {
    pub fn new(topic: &str, partition: i32) -> Tp {
        Tp {
            topic: Arc::from(topic),
            partition,
        }
    }
}

impl std::fmt::Display for Tp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// Produced records, numbered in the order they were sent, and which of them the broker has
/// acknowledged. `frontier` is the first number not yet acknowledged: everything before it is.
#[derive(Debug, Default)]
pub struct AckWindow {
    base: u64,
    acked: VecDeque<bool>,
}

impl AckWindow {
    /// Numbers the next produced record.
    pub fn issue(&mut self) -> u64 {
        self.acked.push_back(false);
        self.base + self.acked.len() as u64 - 1
    }

    /// The number the next record will get.
    pub fn next(&self) -> u64 {
        self.base + self.acked.len() as u64
    }

    /// Records an acknowledgement; returns whether the frontier moved.
    pub fn ack(&mut self, seq: u64) -> bool {
        let Some(i) = seq.checked_sub(self.base) else {
            return false;
        };
        match self.acked.get_mut(i as usize) {
            Some(a) => *a = true,
            None => return false,
        }
        let before = self.base;
        while self.acked.front() == Some(&true) {
            self.acked.pop_front();
            self.base += 1;
        }
        self.base != before
    }

    /// Counts every record numbered so far as resolved, as if acknowledged: for records whose
    /// delivery no longer matters (the transaction that held them is gone, and everything after
    /// the last commit is done again).
    pub fn resolve_all(&mut self) {
        self.base = self.next();
        self.acked.clear();
    }

    /// Every record numbered below this was acknowledged.
    pub fn frontier(&self) -> u64 {
        self.base
    }

    /// Records sent and not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.acked.iter().filter(|a| !**a).count()
    }
}

#[derive(Debug, Default)]
struct Partition {
    /// (first record number not covered, next offset to read): once every record numbered
    /// below the first is acknowledged, the offset may be committed.
    checkpoints: VecDeque<(u64, i64)>,
    /// The newest offset whose checkpoint is fully acknowledged.
    committable: Option<i64>,
    /// The newest offset sent in a commit request, not yet known to have failed.
    requested: Option<i64>,
    /// The newest offset the broker confirmed.
    committed: Option<i64>,
}

/// Checkpoints and commits of every assigned partition. Shared between the worker's loop and
/// the rebalance callback, which commits a revoked partition's offsets before it goes.
#[derive(Debug, Default)]
pub struct Tracker {
    window: AckWindow,
    parts: HashMap<Tp, Partition>,
}

impl Tracker {
    pub fn issue(&mut self) -> u64 {
        self.window.issue()
    }

    /// Records acknowledgements; checkpoints they complete become committable.
    pub fn ack(&mut self, seqs: impl IntoIterator<Item = u64>) {
        let mut moved = false;
        for s in seqs {
            moved |= self.window.ack(s);
        }
        if moved {
            self.settle();
        }
    }

    /// The number the next produced record will get.
    pub fn next_seq(&self) -> u64 {
        self.window.next()
    }

    /// See [`AckWindow::resolve_all`].
    pub fn resolve_all(&mut self) {
        self.window.resolve_all();
        self.settle();
    }

    /// Marks that everything before `next_offset` in `tp` is reflected in what has been sent
    /// so far.
    pub fn checkpoint(&mut self, tp: &Tp, next_offset: i64) {
        let mark = self.window.next();
        let p = self.parts.entry(tp.clone()).or_default();
        if p.checkpoints.back().is_some_and(|&(_, o)| o >= next_offset) || p.committable >= Some(next_offset) {
            return;
        }
        p.checkpoints.push_back((mark, next_offset));
        self.settle();
    }

    fn settle(&mut self) {
        let frontier = self.window.frontier();
        for p in self.parts.values_mut() {
            while let Some(&(mark, offset)) = p.checkpoints.front() {
                if mark > frontier {
                    break;
                }
                p.committable = Some(offset);
                p.checkpoints.pop_front();
            }
        }
    }

    /// Offsets to commit now: committable and newer than any request in flight. They are
    /// marked requested; [`Tracker::commit_failed`] makes them due again.
    pub fn take_due(&mut self, only: Option<&[Tp]>) -> Vec<(Tp, i64)> {
        let mut due: Vec<(Tp, i64)> = Vec::new();
        for (tp, p) in &mut self.parts {
            if only.is_some_and(|o| !o.contains(tp)) {
                continue;
            }
            if let Some(c) = p.committable
                && Some(c) > p.requested
                && Some(c) > p.committed
            {
                p.requested = Some(c);
                due.push((tp.clone(), c));
            }
        }
        due.sort();
        due
    }

    /// A partition was assigned with `offset` committed in the group (by an earlier owner or
    /// an earlier run): that offset counts as committed, and nothing at or before it is
    /// committed again.
    pub fn assigned(&mut self, tp: &Tp, offset: i64) {
        let p = self.parts.entry(tp.clone()).or_default();
        if offset > 0 && Some(offset) > p.committed {
            p.committed = Some(offset);
            p.requested = p.requested.max(p.committed);
            p.committable = p.committable.max(p.committed);
        }
    }

    /// The broker confirmed a commit.
    pub fn commit_succeeded(&mut self, tp: &Tp, offset: i64) {
        if let Some(p) = self.parts.get_mut(tp)
            && Some(offset) > p.committed
        {
            p.committed = Some(offset);
        }
    }

    /// A commit failed: its offsets are due again at the next commit.
    pub fn commit_failed(&mut self, tp: &Tp) {
        if let Some(p) = self.parts.get_mut(tp) {
            p.requested = p.committed;
        }
    }

    /// The partition was revoked: nothing more is committed for it.
    pub fn forget(&mut self, tp: &Tp) {
        self.parts.remove(tp);
    }

    /// Offsets the broker confirmed, per partition.
    pub fn committed(&self) -> impl Iterator<Item = (&Tp, i64)> {
        self.parts.iter().filter_map(|(tp, p)| p.committed.map(|c| (tp, c)))
    }

    /// Whether everything checkpointed in `tp` is committed and confirmed.
    pub fn is_committed(&self, tp: &Tp) -> bool {
        self.parts
            .get(tp)
            .is_none_or(|p| p.checkpoints.is_empty() && p.committable <= p.committed)
    }

    pub fn unacknowledged(&self) -> usize {
        self.window.unacknowledged()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontier_moves_only_over_a_contiguous_run_of_acknowledgements() {
        let mut w = AckWindow::default();
        let s: Vec<u64> = (0..4).map(|_| w.issue()).collect();
        assert_eq!(s, [0, 1, 2, 3]);
        assert!(!w.ack(2));
        assert_eq!(w.frontier(), 0);
        assert!(w.ack(0));
        assert_eq!(w.frontier(), 1);
        assert!(w.ack(1));
        assert_eq!(w.frontier(), 3, "2 was acknowledged earlier");
        assert!(!w.ack(1), "a repeat changes nothing");
        assert!(!w.ack(99), "an unknown number changes nothing");
        assert_eq!(w.unacknowledged(), 1);
        assert!(w.ack(3));
        assert_eq!((w.frontier(), w.next(), w.unacknowledged()), (4, 4, 0));
    }

    #[test]
    fn an_offset_is_committable_only_once_everything_sent_before_its_checkpoint_is_acknowledged() {
        let a = Tp::new("events", 0);
        let b = Tp::new("events", 1);
        let mut t = Tracker::default();
        let f1 = t.issue();
        let f2 = t.issue();
        t.checkpoint(&a, 10);
        let f3 = t.issue();
        t.checkpoint(&b, 7);
        t.checkpoint(&a, 12);
        assert!(t.take_due(None).is_empty(), "nothing acknowledged yet");
        t.ack([f2]);
        assert!(t.take_due(None).is_empty(), "f1 is still in flight");
        t.ack([f1]);
        assert_eq!(t.take_due(None), [(a.clone(), 10)]);
        assert!(t.take_due(None).is_empty(), "already requested");
        t.ack([f3]);
        assert_eq!(t.take_due(None), [(a.clone(), 12), (b.clone(), 7)]);
        t.commit_succeeded(&a, 12);
        t.commit_failed(&b);
        assert!(t.is_committed(&a));
        assert!(!t.is_committed(&b));
        assert_eq!(
            t.take_due(Some(std::slice::from_ref(&b))),
            [(b.clone(), 7)],
            "a failed commit is due again"
        );
        t.commit_succeeded(&b, 7);
        let mut committed: Vec<(Tp, i64)> = t.committed().map(|(tp, o)| (tp.clone(), o)).collect();
        committed.sort();
        assert_eq!(committed, [(a, 12), (b, 7)]);
    }

    #[test]
    fn a_checkpoint_with_nothing_in_flight_is_committable_at_once() {
        let a = Tp::new("events", 0);
        let mut t = Tracker::default();
        t.checkpoint(&a, 5);
        assert_eq!(t.take_due(None), [(a.clone(), 5)]);
        t.checkpoint(&a, 5);
        assert!(
            t.take_due(None).is_empty(),
            "an unchanged offset is not committed twice"
        );
    }

    #[test]
    fn the_offset_committed_at_assignment_counts_as_committed() {
        let a = Tp::new("events", 0);
        let mut t = Tracker::default();
        t.assigned(&a, 40);
        assert_eq!(t.committed().map(|(_, o)| o).collect::<Vec<_>>(), [40]);
        assert!(t.is_committed(&a));
        t.checkpoint(&a, 40);
        assert!(t.take_due(None).is_empty(), "nothing new to commit");
        t.checkpoint(&a, 45);
        assert_eq!(t.take_due(None), [(a.clone(), 45)]);
        let b = Tp::new("events", 1);
        t.assigned(&b, 0);
        assert!(
            t.is_committed(&b),
            "a partition with nothing committed has nothing to wait for"
        );
        assert_eq!(t.committed().count(), 1);
    }

    #[test]
    fn a_revoked_partition_is_never_committed_again() {
        let a = Tp::new("events", 0);
        let mut t = Tracker::default();
        let f = t.issue();
        t.checkpoint(&a, 3);
        t.forget(&a);
        t.ack([f]);
        assert!(t.take_due(None).is_empty());
        assert!(t.is_committed(&a));
    }
}
