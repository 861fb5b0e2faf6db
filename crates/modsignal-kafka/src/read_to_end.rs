//! Reading partitions to their end: the consumer that rebuilds a partition's state from the
//! input ([`crate::replay`]) and the one that reads a partition of the changelog
//! ([`crate::state`]).
//!
//! It assigns itself the partitions it reads (from the replay settings,
//! [`WorkerConfig::replay_config`]), so it joins no group and commits nothing, and it is told
//! when it reaches the end of each partition, which is how its callers know they have read
//! everything there was.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::WorkerConfig;
use crate::worker::Throttle;

/// A consumer of some partitions of one topic, read from given offsets to their end.
pub(crate) struct ReadToEnd {
    consumer: StreamConsumer,
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
        let consumer: StreamConsumer = config.replay_config().create()?;
        let mut tpl = TopicPartitionList::new();
        let mut assigned = Vec::new();
        for (partition, offset) in partitions {
            tpl.add_partition_offset(topic, partition, offset)?;
            assigned.push(partition);
        }
        consumer.assign(&tpl)?;
        Ok(ReadToEnd {
            consumer,
            client,
            topic: topic.to_owned(),
            open: assigned.clone(),
            partitions: assigned,
            ended: false,
            log_errors: Throttle::new(Duration::from_secs(10)),
        })
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
