//! The queue of scheduled events: a two-level timing wheel in front of a small heap.
//!
//! A binary heap of millions of entries costs a cache miss per level on every push and pop,
//! which made it the bottleneck of long runs. Here a task goes into a one-second bucket if it
//! is due within about two hours, or into a bucket of 4,096 seconds if later; the buckets of
//! each second are poured into a small heap only when event time reaches that second, and the
//! far buckets are spread over the near ones as their block comes within reach. Each task is
//! moved at most three times, always into memory that is being touched anyway.

use std::collections::BinaryHeap;

/// Seconds per block; the near wheel holds the current block and the next.
const NEAR: i64 = 4096;
const NEAR_SLOTS: usize = 2 * NEAR as usize;
/// Blocks in the far wheel: the horizon is about 24 days, beyond every capped delay chain.
const FAR_SLOTS: usize = 512;

/// Anything with an event time.
pub(crate) trait Timed: Ord {
    fn at(&self) -> i64;
}

pub(crate) struct Queue<T> {
    /// Tasks due in seconds up to `cursor`, in order (the heap is reversed by `T: Ord`).
    now: BinaryHeap<T>,
    near: Vec<Vec<T>>,
    far: Vec<Vec<T>>,
    /// The last second whose bucket was poured into `now`.
    cursor: i64,
    len: usize,
}

impl<T: Timed> Queue<T> {
    pub fn new(start_ms: i64) -> Self {
        Queue {
            now: BinaryHeap::new(),
            near: (0..NEAR_SLOTS).map(|_| Vec::new()).collect(),
            far: (0..FAR_SLOTS).map(|_| Vec::new()).collect(),
            cursor: start_ms.div_euclid(1000) - 1,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Queues a task; returns it back if it lies beyond the horizon.
    pub fn push(&mut self, t: T) -> Result<(), T> {
        let sec = t.at().div_euclid(1000);
        let (block, current) = (sec.div_euclid(NEAR), self.cursor.div_euclid(NEAR));
        if sec <= self.cursor {
            self.now.push(t);
        } else if block <= current + 1 {
            self.near[sec.rem_euclid(NEAR_SLOTS as i64) as usize].push(t);
        } else if block <= current + FAR_SLOTS as i64 {
            self.far[block.rem_euclid(FAR_SLOTS as i64) as usize].push(t);
        } else {
            return Err(t);
        }
        self.len += 1;
        Ok(())
    }

    /// The time of the earliest task if it is due at or before `limit`.
    pub fn next_due(&mut self, limit: i64) -> Option<i64> {
        let limit_sec = limit.div_euclid(1000);
        loop {
            // Everything outside `now` lies in a later second than everything in it.
            if let Some(t) = self.now.peek() {
                return (t.at() <= limit).then(|| t.at());
            }
            if self.cursor >= limit_sec {
                return None;
            }
            if self.len == 0 {
                // Nothing is queued anywhere, so no bucket needs visiting on the way.
                self.cursor = limit_sec;
                return None;
            }
            self.cursor += 1;
            if self.cursor.rem_euclid(NEAR) == 0 {
                // A new block: the one after it comes within the near wheel's reach. Its
                // slots are those of the block just left, which are empty.
                let next = self.cursor.div_euclid(NEAR) + 1;
                let far = std::mem::take(&mut self.far[next.rem_euclid(FAR_SLOTS as i64) as usize]);
                for t in far {
                    let sec = t.at().div_euclid(1000);
                    self.near[sec.rem_euclid(NEAR_SLOTS as i64) as usize].push(t);
                }
            }
            // Taken, not drained: a drained bucket would keep its capacity until its second
            // comes round again, and the idle capacity of eight thousand buckets was four
            // times the memory of the tasks themselves.
            let slot = self.cursor.rem_euclid(NEAR_SLOTS as i64) as usize;
            self.now.extend(std::mem::take(&mut self.near[slot]));
        }
    }

    /// Removes the earliest task; call after [`Queue::next_due`] found one.
    pub fn pop(&mut self) -> Option<T> {
        let t = self.now.pop();
        if t.is_some() {
            self.len -= 1;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[derive(Debug, PartialEq, Eq)]
    struct T(i64, u32);
    impl Timed for T {
        fn at(&self) -> i64 {
            self.0
        }
    }
    impl PartialOrd for T {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for T {
        fn cmp(&self, o: &Self) -> Ordering {
            o.0.cmp(&self.0)
        }
    }

    #[test]
    fn pops_in_time_order_across_both_wheels() {
        let start = 1_767_571_200_000;
        let mut q = Queue::new(start);
        // A deterministic scatter of delays from milliseconds to three weeks.
        let mut x: u64 = 1;
        let mut want = Vec::new();
        for i in 0..20_000u32 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let d = ((x >> 33) % 1_800_000_000) as i64 >> (x % 20);
            want.push(start + d);
            q.push(T(start + d, i)).unwrap();
        }
        want.sort_unstable();
        let mut got = Vec::new();
        let mut now = start;
        while got.len() < want.len() {
            now += 1000;
            while let Some(at) = q.next_due(now) {
                assert!(at <= now);
                got.push(q.pop().unwrap().0);
                // Pushing at the current time while draining is allowed.
                if got.len() % 1000 == 0 {
                    q.push(T(at, 0)).unwrap();
                    want.push(at);
                    want.sort_unstable();
                }
            }
        }
        assert_eq!(got, want);
        assert_eq!(q.len(), 0);
        assert!(q.push(T(now + 30 * 86_400_000, 0)).is_err());
    }
}
