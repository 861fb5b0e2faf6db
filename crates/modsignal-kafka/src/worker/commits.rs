//! What a flush commits, beside the offsets: the partitions' snapshots (in the background, or
//! with exactly-once in the flush's transaction), the transaction itself, and, after a
//! transaction is aborted, every held partition rebuilt from what was committed and read again
//! from there.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::{LEAVE_TIMEOUT, Worker};
use crate::commit::Tp;
use crate::error::{Halt, WorkerError};
use crate::group::WorkerContext;
use crate::outbox::TxnError;
use crate::shutdown::{Stop, lock};

impl Worker<'_> {
    /// After an aborted transaction: every held partition's state reflects records whose
    /// output is gone, so each is rebuilt from what was committed and read again from there.
    pub(super) fn rewind_all(&mut self) {
        self.outbox.forget_all();
        let mut tracker = lock(&self.shared.tracker);
        for part in self.parts.drain(..) {
            tracker.forget(&part.tp);
            self.pending.push(part.tp.clone());
            self.rewound.push(part.tp);
        }
    }

    /// Snapshots every held partition that moved since its last snapshot, when the snapshot
    /// interval has passed (or `force`): written to the state directory at once, and to the
    /// changelog in the background. Called right after a checkpoint, so that a partition's
    /// state reflects exactly the records before its checkpointed offset.
    ///
    /// With exactly-once the changelog records go into the open transaction, so this waits for
    /// them: the transaction then commits each snapshot with the offset it reflects. A snapshot
    /// that cannot be written fails the transaction.
    pub(super) async fn take_snapshots(&mut self, force: bool) -> Result<(), WorkerError> {
        let config = self.config;
        if self.outbox.abandoned || (config.state_dir.is_none() && config.changelog_topic.is_none()) {
            return Ok(());
        }
        let transactional = self.outbox.transactional();
        // With exactly-once, everything sent is in the transaction that commits the snapshot.
        let all_acknowledged = transactional || lock(&self.shared.tracker).unacknowledged() == 0;
        for part in &mut self.parts {
            part.poll_upload(&self.metrics);
            if part.upload.is_some() || !part.snapshot_due(force, config, all_acknowledged) {
                continue;
            }
            self.summary.snapshots_written += 1;
            let upload = part.take_snapshot(config, self.outbox.producer(), self.changelog_partitions, &self.metrics);
            match upload {
                Some(u) if transactional => {
                    self.outbox.begin_if_closed()?;
                    if let Err(error) = part.await_upload(u, &self.metrics).await {
                        tracing::warn!(partition = %part.tp, %error, "writing a snapshot in the transaction failed; it is aborted");
                        self.outbox.fail_transaction();
                    }
                }
                Some(u) => part.spawn_upload(u),
                None => {}
            }
        }
        Ok(())
    }

    /// Commits the open transaction with every held partition's checkpointed offset (see
    /// [`crate::outbox::Outbox::commit_transaction`]); after an abort, every partition is
    /// rebuilt from what was committed. `Ok(Err(error))` when the producer cannot go on: the
    /// caller replaces it.
    pub(super) async fn commit_transaction(
        &mut self,
        consumer: &Arc<StreamConsumer<WorkerContext>>,
        timeout: Duration,
    ) -> Result<Result<(), WorkerError>, Halt> {
        let mut offsets = TopicPartitionList::new();
        {
            let tracker = lock(&self.shared.tracker);
            for part in self.parts.iter().filter(|p| !tracker.is_committed(&p.tp)) {
                let _ =
                    offsets.add_partition_offset(&part.tp.topic, part.tp.partition, Offset::Offset(part.checkpointed));
            }
        }
        if offsets.count() == 0 && !self.outbox.txn_open() {
            return Ok(Ok(()));
        }
        let Some(group) = consumer.group_metadata() else {
            return Err(WorkerError::Fatal {
                code: RDKafkaErrorCode::State,
                reason: "the consumer has no group metadata to commit offsets with in a transaction".into(),
            }
            .into());
        };
        match self.outbox.commit_transaction(offsets, group, timeout).await {
            Ok(()) => {
                self.outbox.drain_ready()?;
                let mut tracker = lock(&self.shared.tracker);
                for (tp, offset) in tracker.take_due(None) {
                    tracker.commit_succeeded(&tp, offset);
                }
                Ok(Ok(()))
            }
            Err(TxnError::Aborted(reason)) => {
                tracing::warn!(
                    %reason,
                    partitions = self.parts.len(),
                    "transaction aborted; the partitions are rebuilt from what was committed"
                );
                self.rewind_all();
                Ok(Ok(()))
            }
            Err(TxnError::Fatal(e)) => Ok(Err(e)),
        }
    }

    /// The drain's last transaction, bounded like the final commit.
    pub(super) async fn drain_transaction<F: Future<Output = ()>>(
        &mut self,
        consumer: &Arc<StreamConsumer<WorkerContext>>,
        stop: &mut Stop<'_, F>,
    ) {
        let result = tokio::select! {
            biased;
            () = stop.wait() => Err(Halt::Stop),
            r = async {
                self.take_snapshots(false).await?;
                self.commit_transaction(consumer, LEAVE_TIMEOUT).await
            } => r,
        };
        match result {
            Ok(Ok(())) if self.pending.is_empty() => {}
            Ok(Ok(())) => {
                tracing::warn!("the last transaction was aborted; its input is processed again after a restart");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the last transaction failed; its input is processed again after a restart");
            }
            Err(Halt::Stop) => tracing::warn!(
                "shutdown timeout reached in the last transaction; its input is processed again after a restart"
            ),
            Err(Halt::Failed(e)) => {
                tracing::warn!(error = %e, "the last transaction failed; its input is processed again after a restart");
            }
        }
    }

    /// Waits (until the drain's deadline) for changelog uploads in flight.
    pub(super) async fn wait_for_uploads<F: Future<Output = ()>>(&mut self, stop: &mut Stop<'_, F>) {
        for part in &mut self.parts {
            if !part.wait_for_upload(stop, &self.metrics).await {
                return;
            }
        }
    }
}

/// Moves the consumer's position in `tp` back to `offset`, after the records from there were
/// read by a state an aborted transaction undid, and resumes it if it was paused (its rebuilt
/// state starts unpaused). Records librdkafka fetched before the seek are dropped by it.
pub(super) async fn rewind(consumer: &Arc<StreamConsumer<WorkerContext>>, tp: &Tp, offset: i64) -> Result<(), Halt> {
    let mut tpl = TopicPartitionList::new();
    let _ = tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(offset));
    if let Err(error) = consumer.resume(&tpl) {
        tracing::warn!(partition = %tp, %error, "cannot resume a partition read again");
    }
    let c = consumer.clone();
    let result = tokio::task::spawn_blocking(move || c.seek_partitions(tpl, Duration::from_secs(10)))
        .await
        .map_err(|e| WorkerError::Blocking(e.to_string()))?;
    let failed = result.map_err(|e| e.to_string()).and_then(|t| {
        match t
            .elements()
            .first()
            .map(rdkafka::topic_partition_list::TopicPartitionListElem::error)
        {
            Some(Err(e)) => Err(e.to_string()),
            _ => Ok(()),
        }
    });
    if let Err(reason) = failed {
        // Its records after `offset` would be skipped: stop rather than lose them. The next
        // owner starts from the committed offset.
        return Err(WorkerError::Seek {
            partition: tp.to_string(),
            reason,
        }
        .into());
    }
    Ok(())
}
