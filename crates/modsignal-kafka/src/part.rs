//! One held input partition ([`Part`]): its state, the offsets it has read and checkpointed,
//! how quiet it is, and its snapshots, written to the state directory at once and to the
//! changelog in the background.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use futures_util::FutureExt;
use modsignal_metrics::Metrics;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use tokio::task::JoinHandle;

use crate::commit::Tp;
use crate::config::WorkerConfig;
use crate::shutdown::Stop;
use crate::stage::PartState;
use crate::state::{self, Slots, Snapshot};

/// One held input partition.
pub(crate) struct Part {
    pub tp: Tp,
    pub state: PartState,
    /// The next offset to process: every record before it has been applied.
    pub next_offset: i64,
    /// `next_offset` at the last checkpoint.
    pub checkpointed: i64,
    pub last_record: Instant,
    /// The timestamp of the newest record applied (ms since the epoch), which flags written
    /// at a flush are timed from.
    pub last_record_ms: Option<i64>,
    /// Finished (or flushed) since its last record.
    pub quiet: bool,
    /// The offset of the newest snapshot taken or restored, and when it was taken.
    pub snap_offset: i64,
    pub snap_at: Instant,
    pub slots: Slots,
    /// A changelog upload in flight: the slot it writes and its task.
    pub upload: Option<(u8, JoinHandle<Result<u32, KafkaError>>)>,
    /// Paused because its event time ran too far ahead of the slowest input partition.
    pub paused: bool,
    /// Flags written since the last checkpoint by a flush or finish that read no record
    /// (held-back changes, exposure timers, a quiet partition's end). A checkpoint covers what
    /// was sent before it, and no checkpoint covers these: a snapshot taken now would say they
    /// were written, and a new owner restoring it would never write them if they were lost
    /// with this instance. So no snapshot is taken while this is set, unless everything sent
    /// has been acknowledged.
    pub uncovered: bool,
    /// With exactly-once: the state wrote flags since its last snapshot. The transaction that
    /// commits them holds a snapshot taken after them. Which revisions an engine writes depends
    /// on when it was flushed and finished, not only on the records it read, so a next owner
    /// that replayed the input from an older snapshot would write some of them again, and
    /// (had it flushed the replay and dropped what that wrote) miss others.
    pub wrote_flags: bool,
}

impl Part {
    /// Takes in a changelog upload that finished, counting it.
    pub(crate) fn poll_upload(&mut self, metrics: &Metrics) {
        let Some((slot, h)) = self.upload.take() else { return };
        if !h.is_finished() {
            self.upload = Some((slot, h));
            return;
        }
        self.upload_done(slot, h.now_or_never(), metrics);
    }

    /// Waits for a changelog upload in flight, until `stop`: false if it did not finish.
    pub(crate) async fn wait_for_upload<F: Future<Output = ()>>(
        &mut self,
        stop: &mut Stop<'_, F>,
        metrics: &Metrics,
    ) -> bool {
        let Some((slot, h)) = self.upload.take() else {
            return true;
        };
        let done = tokio::select! {
            biased;
            () = stop.wait() => {
                tracing::warn!(partition = %self.tp, "shutdown timeout reached while writing a snapshot to the changelog");
                return false;
            }
            r = h => r,
        };
        self.upload_done(slot, Some(done), metrics);
        true
    }

    fn upload_done(
        &mut self,
        slot: u8,
        done: Option<Result<Result<u32, KafkaError>, tokio::task::JoinError>>,
        metrics: &Metrics,
    ) {
        match done {
            Some(Ok(Ok(n))) => {
                self.slots.chunks[slot as usize] = n;
                metrics.snapshot("changelog", true);
            }
            Some(Ok(Err(error))) => {
                metrics.snapshot("changelog", false);
                tracing::warn!(partition = %self.tp, %error, "writing a snapshot to the changelog failed; the next one retries");
            }
            _ => metrics.snapshot("changelog", false),
        }
    }

    /// Whether a snapshot is due: the interval passed (or `force`), the partition moved since
    /// its last snapshot, its state reflects exactly the records before its checkpoint, and no
    /// flag that no checkpoint covers awaits acknowledgement. With exactly-once, also whenever
    /// the state wrote flags since its last snapshot.
    pub(crate) fn snapshot_due(&self, force: bool, config: &WorkerConfig, all_acknowledged: bool) -> bool {
        if self.checkpointed != self.next_offset {
            return false;
        }
        if config.exactly_once() && self.wrote_flags {
            return true;
        }
        (force || self.snap_at.elapsed() >= config.snapshot_interval)
            && self.checkpointed > self.snap_offset
            && (!self.uncovered || all_acknowledged)
    }

    /// Snapshots the state at its checkpoint: written to the state directory at once, and to
    /// the changelog (of `changelog_partitions`) by the task returned, if there is a changelog.
    /// The caller runs the task in the background, or (with exactly-once, in the open
    /// transaction) waits for it.
    pub(crate) fn take_snapshot(
        &mut self,
        config: &WorkerConfig,
        producer: &FutureProducer,
        changelog_partitions: Option<i32>,
        metrics: &Metrics,
    ) -> Option<Upload> {
        let snap = Snapshot {
            offset: self.checkpointed,
            bytes: self.state.snapshot(),
        };
        if let Some(dir) = &config.state_dir {
            match state::write_local(dir, &self.tp, &snap) {
                Ok(()) => metrics.snapshot("local", true),
                Err(error) => {
                    metrics.snapshot("local", false);
                    tracing::warn!(partition = %self.tp, dir = %dir.display(), %error, "writing a local snapshot failed");
                }
            }
        }
        self.snap_offset = self.checkpointed;
        self.snap_at = Instant::now();
        self.wrote_flags = false;
        let (Some(topic), Some(n)) = (&config.changelog_topic, changelog_partitions) else {
            return None;
        };
        let slot = self.slots.next;
        self.slots.next = 1 - slot;
        self.slots.seq += 1;
        let place = state::Place {
            topic: topic.clone(),
            partition: self.tp.partition % n,
            slot,
            seq: self.slots.seq,
            leftover: self.slots.chunks[slot as usize],
        };
        let task = state::upload(producer.clone(), place, self.tp.clone(), snap);
        Some(Upload {
            slot,
            task: Box::pin(task),
        })
    }

    /// Runs `upload` in the background; [`Part::poll_upload`] takes its result in.
    pub(crate) fn spawn_upload(&mut self, upload: Upload) {
        self.upload = Some((upload.slot, tokio::spawn(upload.task)));
    }

    /// Runs `upload` to its end, counting it.
    pub(crate) async fn await_upload(&mut self, upload: Upload, metrics: &Metrics) -> Result<(), KafkaError> {
        let result = upload.task.await;
        let failed = result.as_ref().err().cloned();
        self.upload_done(upload.slot, Some(Ok(result)), metrics);
        failed.map_or(Ok(()), Err)
    }
}

/// A snapshot's changelog records, being written to one slot.
pub(crate) struct Upload {
    slot: u8,
    task: Pin<Box<dyn Future<Output = Result<u32, KafkaError>> + Send>>,
}
