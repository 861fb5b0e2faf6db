//! What a tick tells the outside and how it paces the input: the metrics and progress line,
//! the status that readiness probes and tests read, and pausing input partitions that run ahead
//! in event time.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use modsignal_core::Engine;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{Consumer, StreamConsumer};

use super::Worker;
use crate::group::WorkerContext;
use crate::shutdown::lock;
use crate::status::WorkerStatus;

impl Worker<'_> {
    /// Step 8 of [`Worker::tick`]: the input partitions' event-time lag, the engines' state,
    /// the partitions held, and a progress line every 30 s.
    pub(super) fn publish_metrics(&mut self) {
        if self.stage.is_engine() && self.sources.is_some() {
            // How far behind the newest input partition each one is, as the engines heard it.
            // A partition read to its end holds nothing back: its lag is zero.
            let mut times: BTreeMap<&str, (i64, bool)> = BTreeMap::new();
            for engine in self.parts.iter().filter_map(|p| p.state.engine()) {
                for (source, mark) in engine.source_marks() {
                    if let Some(t) = mark.second.or(mark.newest) {
                        let slot = times.entry(source.as_str()).or_insert((t, mark.idle));
                        *slot = (slot.0.max(t), mark.idle);
                    }
                }
            }
            if let Some(newest) = times.values().map(|&(t, _)| t).max() {
                for (source, &(t, idle)) in &times {
                    let lag = if idle { 0.0 } else { (newest - t) as f64 / 1000.0 };
                    self.metrics.source_lag(source, lag);
                }
            }
        }
        if self.stage.is_engine() {
            self.metrics
                .state(self.parts.iter().filter_map(|p| p.state.engine()).map(Engine::stats));
        }
        self.metrics.partitions_assigned(self.parts.len());
        self.metrics.unacknowledged(lock(&self.shared.tracker).unacknowledged());
        if self.last_report.elapsed() >= Duration::from_secs(30) {
            self.last_report = Instant::now();
            tracing::info!(
                records = self.summary.records,
                events = self.summary.events,
                flags = self.outbox.flags,
                dead_letters = self.summary.dead_letters.values().sum::<u64>(),
                partitions = self.parts.len(),
                unacknowledged = lock(&self.shared.tracker).unacknowledged(),
                "progress"
            );
        }
    }

    /// Pauses each input partition whose event time has run more than
    /// [`WorkerConfig::max_event_time_lead`] ahead of the slowest partition still being read,
    /// and resumes it once that one catches up, as Kafka Streams reads the partition with the
    /// oldest record first: a backlog is then read roughly in event-time order, so the engines
    /// hold about the state live traffic needs, not the whole backlog of the fastest partition.
    /// Routers compare the input partitions this worker reads; engines reading the input
    /// directly, the event time of the input partitions they follow. The partition that holds
    /// event time back is never paused.
    pub(super) fn pace(&mut self, consumer: &StreamConsumer<WorkerContext>) {
        let lead = i64::try_from(self.config.max_event_time_lead.as_millis()).unwrap_or(i64::MAX);
        let slowest_router = self
            .parts
            .iter()
            .filter(|p| !self.shared.caught_up(&p.tp, p.next_offset))
            .filter_map(|p| p.state.router_time())
            .min();
        let follows_group = self.group_marks.is_some();
        let mut pause = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        for part in &mut self.parts {
            let ahead = part.state.runs_ahead(slowest_router, lead, follows_group);
            if ahead != part.paused {
                part.paused = ahead;
                let list = if ahead { &mut pause } else { &mut resume };
                let _ = list.add_partition(&part.tp.topic, part.tp.partition);
            }
        }
        for (list, what) in [(pause, "pause"), (resume, "resume")] {
            if list.count() == 0 {
                continue;
            }
            let result = if what == "pause" {
                consumer.pause(&list)
            } else {
                consumer.resume(&list)
            };
            match result {
                Ok(()) => tracing::debug!(
                    partitions = list.count(),
                    "{what}d input partitions to read in event-time order"
                ),
                Err(e) => tracing::warn!(error = %e, "cannot {what} input partitions"),
            }
        }
        self.metrics
            .partitions_paused(self.stage.name(), self.parts.iter().filter(|p| p.paused).count());
    }

    /// Publishes the worker's state to the status sink, for readiness probes and tests.
    pub(super) fn publish_status(&self) {
        let Some(tx) = &self.status else { return };
        let tracker = lock(&self.shared.tracker);
        let unacknowledged = tracker.unacknowledged();
        let version = self.group_marks.as_ref().map(|g| g.version());
        let joined = self.shared.joined.load(Ordering::Acquire);
        let settled = joined
            && self.pending.is_empty()
            && unacknowledged == 0
            && self.parts.iter().all(|p| {
                p.quiet
                    && p.checkpointed == p.next_offset
                    && tracker.is_committed(&p.tp)
                    && version.is_none_or(|v| p.state.marks_current(v))
            });
        let status = WorkerStatus {
            joined,
            restoring: self.pending.len(),
            assigned: self
                .parts
                .iter()
                .map(|p| (p.tp.topic.to_string(), p.tp.partition))
                .collect(),
            committed: tracker
                .committed()
                .map(|(tp, o)| ((tp.topic.to_string(), tp.partition), o))
                .collect(),
            records: self.summary.records,
            dead_letters: self.summary.dead_letters.values().sum(),
            unacknowledged,
            settled,
        };
        drop(tracker);
        tx.publish(status);
    }
}
