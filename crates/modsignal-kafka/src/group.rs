//! The consumer group's side of the worker: what the consumer's callbacks share with the loop
//! ([`Shared`]: the offset tracker, the rebalances seen, each partition's end), the callbacks
//! themselves ([`WorkerContext`]), and offsets read and committed. Offsets are committed only
//! where the tracker says every record before them is reflected in acknowledged output.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modsignal_metrics::Metrics;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

use crate::commit::{Tp, Tracker};
use crate::error::{Halt, WorkerError};
use crate::retry;
use crate::shutdown::{Stop, lock};

/// A rebalance, as the consumer's callbacks saw it; the worker's loop acts on it.
pub(crate) enum Change {
    Assigned(Vec<Tp>),
    Revoked(Vec<Tp>),
}

/// State shared between the worker's loop and the consumer's callbacks. The callbacks run
/// inside the consumer's poll, on the loop's own thread, so the locks are never contended; they
/// are never held across a call into the consumer, whose callbacks take them too.
pub(crate) struct Shared {
    pub tracker: Arc<Mutex<Tracker>>,
    pub changes: Mutex<Vec<Change>>,
    /// Each assigned partition's end as librdkafka's statistics last reported it: its high
    /// watermark, the offset a consumer that has read everything stands at.
    pub ends: Mutex<HashMap<Tp, i64>>,
    /// Whether the group has assigned this instance its share at least once.
    pub joined: AtomicBool,
}

impl Shared {
    pub(crate) fn new() -> Arc<Shared> {
        Arc::new(Shared {
            tracker: Arc::new(Mutex::new(Tracker::default())),
            changes: Mutex::new(Vec::new()),
            ends: Mutex::new(HashMap::new()),
            joined: AtomicBool::new(false),
        })
    }

    /// Whether a partition is read to its end, as far as librdkafka's statistics last said (every
    /// `statistics.interval.ms`): its next offset has reached the partition's high watermark. Not
    /// read to its end until the statistics first know that. A record produced since the
    /// statistics were taken is live traffic, read at once.
    pub(crate) fn caught_up(&self, tp: &Tp, next_offset: i64) -> bool {
        lock(&self.ends).get(tp).is_some_and(|&end| next_offset >= end)
    }
}

pub(crate) struct WorkerContext {
    pub shared: Arc<Shared>,
    pub metrics: Metrics,
    /// Offsets are committed in the output's transactions, never by the consumer.
    pub exactly_once: bool,
}

impl ClientContext for WorkerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "kafka client error; librdkafka keeps retrying");
    }

    /// librdkafka's statistics (every `statistics.interval.ms`) carry each assigned
    /// partition's consumer lag, measured against the broker's high watermark, and that end
    /// itself; -1 means not known yet and is skipped.
    fn stats(&self, statistics: Statistics) {
        let mut ends = lock(&self.shared.ends);
        for (topic, t) in &statistics.topics {
            for (&partition, p) in &t.partitions {
                if partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics.consumer_lag(topic, partition, p.consumer_lag);
                }
                // The high watermark, not the last stable offset (which some brokers leave at
                // zero) nor the consumer lag (which librdkafka measures against it): a consumer
                // that has not reached the high watermark is not read to its end. An open
                // transaction keeps a read-committed consumer below it, which holds event time
                // back rather than letting it run past records still to come.
                if partition >= 0 && p.hi_offset >= 0 {
                    ends.insert(Tp::new(topic, partition), p.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let tps = tps_of(tpl);
                if consumer.assignment_lost() {
                    tracing::warn!(
                        partitions = %list(&tps),
                        "assignment lost (session timed out); offsets not committed, the next owner reprocesses from the last commit"
                    );
                } else if !self.exactly_once {
                    // The last chance to commit these partitions: once unassigned, another
                    // member owns them. (With exactly-once there is nothing to commit here:
                    // every transaction commits within a flush, and this callback never runs
                    // during one, so what was read since is dropped and read again by the next
                    // owner.)
                    commit_due(consumer, &self.shared, Some(&tps));
                }
                tracing::info!(partitions = %list(&tps), "partitions revoked");
                for tp in &tps {
                    self.metrics.forget_partition(&tp.topic, tp.partition);
                }
                lock(&self.shared.changes).push(Change::Revoked(tps));
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed; the group coordinator retries"),
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.shared.joined.store(true, Ordering::Release);
            let tps = tps_of(tpl);
            tracing::info!(partitions = %list(&tps), "partitions assigned");
            lock(&self.shared.changes).push(Change::Assigned(tps));
        }
    }
}

fn tps_of(tpl: &TopicPartitionList) -> Vec<Tp> {
    tpl.elements()
        .iter()
        .map(|e| Tp::new(e.topic(), e.partition()))
        .collect()
}

fn list(tps: &[Tp]) -> String {
    tps.iter()
        .map(std::string::ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Commits the offsets that are due (of `only`, if given), synchronously: the broker's answer
/// is what marks them committed. (librdkafka reports asynchronous commits only through a
/// callback that the consumer's event queue does not deliver here, so their outcome would be
/// unknown.)
fn commit_due<C: ConsumerContext>(consumer: &impl Consumer<C>, shared: &Shared, only: Option<&[Tp]>) {
    let due = lock(&shared.tracker).take_due(only);
    commit_offsets(consumer, shared, due);
}

fn commit_offsets<C: ConsumerContext>(consumer: &impl Consumer<C>, shared: &Shared, due: Vec<(Tp, i64)>) {
    if due.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::with_capacity(due.len());
    for (tp, offset) in &due {
        if let Err(e) = tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset)) {
            tracing::warn!(partition = %tp, error = %e, "cannot build an offset commit");
        }
    }
    let result = consumer.commit(&tpl, CommitMode::Sync);
    let mut tracker = lock(&shared.tracker);
    match result {
        Ok(()) => {
            for (tp, offset) in &due {
                tracker.commit_succeeded(tp, *offset);
            }
            drop(tracker);
            tracing::debug!(offsets = ?due, "offsets committed");
        }
        Err(e) => {
            for (tp, _) in &due {
                tracker.commit_failed(tp);
            }
            drop(tracker);
            tracing::warn!(error = %e, "offset commit failed; retried at the next flush");
        }
    }
}

/// Commits what is due, off the async thread since a commit waits for the broker. The loop
/// waits for it, so no rebalance can come in between and commit a partition just revoked.
pub(crate) async fn commit(
    shared: &Arc<Shared>,
    consumer: &Arc<StreamConsumer<WorkerContext>>,
) -> Result<(), WorkerError> {
    let due = lock(&shared.tracker).take_due(None);
    if due.is_empty() {
        return Ok(());
    }
    let (c, shared) = (consumer.clone(), shared.clone());
    tokio::task::spawn_blocking(move || commit_offsets(&*c, &shared, due))
        .await
        .map_err(|e| WorkerError::Blocking(e.to_string()))
}

/// The committed offset of each pending partition (0 where none was committed: the group
/// consumer then starts at the beginning, and there is nothing to replay).
pub(crate) async fn committed_offsets<F: Future<Output = ()>>(
    pending: &[Tp],
    consumer: &Arc<StreamConsumer<WorkerContext>>,
    stop: &mut Stop<'_, F>,
) -> Result<Vec<(Tp, i64)>, Halt> {
    let (c, pending) = (consumer.clone(), pending.to_vec());
    let tpl = retry::until_ok(
        "cannot read committed offsets yet",
        move || {
            let mut tpl = TopicPartitionList::with_capacity(pending.len());
            for tp in &pending {
                tpl.add_partition(&tp.topic, tp.partition);
            }
            c.committed_offsets(tpl, Duration::from_secs(10))
        },
        stop.wait(),
    )
    .await?
    .ok_or(Halt::Stop)?;
    Ok(tpl
        .elements()
        .iter()
        .map(|e| {
            let end = match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            };
            (Tp::new(e.topic(), e.partition()), end)
        })
        .collect())
}
