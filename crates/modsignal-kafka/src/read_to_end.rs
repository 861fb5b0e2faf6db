//! Reading partitions to their end: the consumer that rebuilds a partition's state from the
//! input ([`crate::replay`]), the one that reads a partition of the changelog ([`crate::state`])
//! and the followers of whole topics ([`crate::follow_output`]).
//!
//! It assigns itself the partitions it reads (from the replay settings,
//! [`WorkerConfig::replay_config`]), so it joins no group and commits nothing, and it is told
//! when it reaches the end of each partition, which is how its callers know they have read
//! everything there was.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::WorkerConfig;
use crate::error::Halt;
use crate::shutdown::{Stop, Throttle};

/// A consumer of some partitions of one topic, read from given offsets to their end.
pub(crate) struct ReadToEnd {
    consumer: Arc<StreamConsumer>,
    /// The consumer's name in log lines, such as `replay consumer`.
    client: &'static str,
    topic: String,
    /// The assigned partitions.
    partitions: Vec<i32>,
    /// The assigned partitions not yet read to their end.
    open: Vec<i32>,
    /// Whether [`Next::AtEnd`] was returned.
    ended: bool,
    log_errors: Throttle,
}

/// What a [`ReadToEnd`] read next.
pub(crate) enum Next<'a> {
    Record(BorrowedMessage<'a>),
    /// Every assigned partition has been read to its end, as it was when the reader got there.
    /// Returned once; records written later are still read.
    AtEnd,
}

impl ReadToEnd {
    /// A consumer of `partitions` of `topic`, each read from its offset. `client` names it in
    /// log lines.
    pub(crate) fn start(
        config: &WorkerConfig,
        client: &'static str,
        topic: &str,
        partitions: impl IntoIterator<Item = (i32, Offset)>,
    ) -> KafkaResult<ReadToEnd> {
        let mut reader = ReadToEnd::new(config, client, topic)?;
        reader.assign(partitions)?;
        Ok(reader)
    }

    /// A consumer of `topic` with no partition assigned yet, so that its client can first ask
    /// the brokers how many there are ([`ReadToEnd::consumer`]); [`ReadToEnd::assign`] then
    /// gives it its partitions.
    pub(crate) fn new(config: &WorkerConfig, client: &'static str, topic: &str) -> KafkaResult<ReadToEnd> {
        let consumer: StreamConsumer = config.replay_config().create()?;
        Ok(ReadToEnd {
            consumer: Arc::new(consumer),
            client,
            topic: topic.to_owned(),
            partitions: Vec::new(),
            open: Vec::new(),
            ended: false,
            log_errors: Throttle::new(Duration::from_secs(10)),
        })
    }

    /// The client, shared so that its blocking metadata requests can run on another thread.
    pub(crate) fn consumer(&self) -> &Arc<StreamConsumer> {
        &self.consumer
    }

    /// Reads `partitions` of the topic, each from its offset, in place of any assigned before.
    pub(crate) fn assign(&mut self, partitions: impl IntoIterator<Item = (i32, Offset)>) -> KafkaResult<()> {
        let mut tpl = TopicPartitionList::new();
        let mut assigned = Vec::new();
        for (partition, offset) in partitions {
            tpl.add_partition_offset(&self.topic, partition, offset)?;
            assigned.push(partition);
        }
        self.consumer.assign(&tpl)?;
        self.open.clone_from(&assigned);
        self.partitions = assigned;
        self.ended = false;
        Ok(())
    }

    /// [`ReadToEnd::next`], unless `stop` fires first.
    pub(crate) async fn next_or_stop<F: Future<Output = ()>>(
        &mut self,
        stop: &mut Stop<'_, F>,
    ) -> Result<Next<'_>, Halt> {
        tokio::select! {
            biased;
            () = stop.wait() => Err(Halt::Stop),
            next = self.next() => Ok(next),
        }
    }

    /// The next record, or word that every partition has been read to its end. Consumer
    /// errors are logged (at most one line every 10 s) and waited out, since librdkafka keeps
    /// retrying. Cancellation safe: no record is lost when the future is dropped.
    pub(crate) async fn next(&mut self) -> Next<'_> {
        loop {
            match self.consumer.recv().await {
                Ok(m) => return Next::Record(m),
                Err(KafkaError::PartitionEOF(p)) => {
                    self.open.retain(|&o| o != p);
                    if self.open.is_empty() && !self.ended {
                        self.ended = true;
                        return Next::AtEnd;
                    }
                }
                Err(e) => {
                    if let Some(held_back) = self.log_errors.allow() {
                        tracing::warn!(
                            topic = %self.topic,
                            partitions = ?self.partitions,
                            error = %e,
                            held_back,
                            "{} error; librdkafka keeps retrying",
                            self.client
                        );
                    }
                }
            }
        }
    }
}
