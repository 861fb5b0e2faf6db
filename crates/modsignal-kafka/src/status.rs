//! What a run reports: its [`WorkerSummary`] when it ends, its [`WorkerStatus`] while it runs
//! (merged across the two stages of a routed run by [`StatusSink`]), and the [`Hooks`] a caller
//! watches it through. At the bottom of the crate, with the errors.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modsignal_core::RejectCode;
use modsignal_metrics::Metrics;
use tokio::sync::watch;

use crate::shutdown::lock;

/// What a run did, returned when it ends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerSummary {
    /// Records read from the input topics (replays not included).
    pub records: u64,
    /// Events applied.
    pub events: u64,
    /// Events older than their partition's watermark: applied all the same.
    pub late: u64,
    /// Events dropped as repeats of an `event_id`.
    pub duplicates: u64,
    /// Records sent to the dead-letter topic, by reason code.
    pub dead_letters: BTreeMap<RejectCode, u64>,
    /// Flag records the broker acknowledged.
    pub flags: u64,
    /// Records produced again after a failed delivery.
    pub resent: u64,
    /// Times a quiet partition's engine was finished.
    pub finishes: u64,
    pub partitions_assigned: u64,
    pub partitions_revoked: u64,
    /// Records and events read to rebuild the state of assigned partitions, and the time it took.
    pub replayed_records: u64,
    pub replayed_events: u64,
    pub replay_time: Duration,
    /// Partition states restored from a snapshot (local or changelog), the messages and
    /// reshares they held, and the time spent reading and restoring them (replay excluded).
    pub snapshots_restored: u64,
    pub restored_keys: u64,
    pub restore_time: Duration,
    /// Snapshots taken (each written locally and/or to the changelog).
    pub snapshots_written: u64,
    /// With routing, what the router stage did (its `events` are the events it routed).
    pub router: Option<Box<WorkerSummary>>,
    /// Records still unacknowledged when the shutdown timeout ran out: their input offsets were
    /// not committed, so they are processed again after a restart.
    pub unacknowledged: u64,
    pub elapsed: Duration,
}

impl WorkerSummary {
    /// Replay speed in events per second, if anything was replayed.
    pub fn replay_events_per_sec(&self) -> Option<f64> {
        let secs = self.replay_time.as_secs_f64();
        (self.replayed_events > 0 && secs > 0.0).then(|| self.replayed_events as f64 / secs)
    }

    /// A one-line account of the run, for the log.
    pub fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let dead: u64 = self.dead_letters.values().sum();
        let mut line = format!(
            "modsignal-kafka: {} records, {} events ({} late, {} duplicates), {} dead letters, {} flags acknowledged in {:.1}s ({:.0} records/s); {} partitions assigned, {} revoked; {} resent",
            self.records,
            self.events,
            self.late,
            self.duplicates,
            dead,
            self.flags,
            secs,
            self.records as f64 / secs,
            self.partitions_assigned,
            self.partitions_revoked,
            self.resent
        );
        if let Some(rate) = self.replay_events_per_sec() {
            let _ = write!(
                line,
                "; replayed {} events in {:.2}s ({rate:.0} events/s)",
                self.replayed_events,
                self.replay_time.as_secs_f64()
            );
        }
        if self.unacknowledged > 0 {
            let _ = write!(line, "; {} records unacknowledged at shutdown", self.unacknowledged);
        }
        line
    }
}

/// The worker's state as seen from outside, published on every flush tick: for readiness
/// probes, and for tests that wait for the worker to catch up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerStatus {
    /// Whether the group has given this instance its share of the partitions at least once,
    /// an empty share included: before that it is not a member, whatever else it says.
    pub joined: bool,
    /// Input partitions this instance holds, state rebuilt.
    pub assigned: Vec<(String, i32)>,
    /// Input partitions assigned whose state is still being restored: while there are any,
    /// the instance is not ready.
    pub restoring: usize,
    /// Offsets the broker confirmed as committed, per input partition.
    pub committed: BTreeMap<(String, i32), i64>,
    pub records: u64,
    pub dead_letters: u64,
    /// Flag and dead-letter records sent and not yet acknowledged.
    pub unacknowledged: usize,
    /// The instance has joined its group, every held partition is quiet and finished,
    /// everything sent is acknowledged and every offset read is committed: the output topic
    /// says all there is to say.
    pub settled: bool,
}

/// What a caller can watch a running worker through.
#[derive(Debug, Default)]
pub struct Hooks {
    /// Receives a [`WorkerStatus`] at every flush tick.
    pub status: Option<watch::Sender<WorkerStatus>>,
    /// Where the worker counts what it does (see [`modsignal_metrics`]); a private registry
    /// when `None`.
    pub metrics: Option<Metrics>,
}

/// Where a stage publishes its [`WorkerStatus`]: with two stages, each fills its slot and the
/// caller sees both merged once both have spoken.
pub(crate) struct StatusSink {
    tx: Arc<watch::Sender<WorkerStatus>>,
    slots: Arc<Mutex<Vec<Option<WorkerStatus>>>>,
    index: usize,
}

impl StatusSink {
    pub(crate) fn new(tx: watch::Sender<WorkerStatus>, n: usize) -> Vec<StatusSink> {
        let tx = Arc::new(tx);
        let slots = Arc::new(Mutex::new(vec![None; n]));
        (0..n)
            .map(|index| StatusSink {
                tx: tx.clone(),
                slots: slots.clone(),
                index,
            })
            .collect()
    }

    pub(crate) fn publish(&self, status: WorkerStatus) {
        let mut slots = lock(&self.slots);
        slots[self.index] = Some(status);
        if slots.iter().all(Option::is_some) {
            let mut merged = WorkerStatus {
                joined: true,
                settled: true,
                ..WorkerStatus::default()
            };
            for s in slots.iter().flatten() {
                merged.assigned.extend(s.assigned.iter().cloned());
                merged.restoring += s.restoring;
                merged
                    .committed
                    .extend(s.committed.iter().map(|(k, v)| (k.clone(), *v)));
                merged.records += s.records;
                merged.dead_letters += s.dead_letters;
                merged.unacknowledged += s.unacknowledged;
                merged.joined &= s.joined;
                merged.settled &= s.settled;
            }
            self.tx.send_replace(merged);
        }
    }
}
