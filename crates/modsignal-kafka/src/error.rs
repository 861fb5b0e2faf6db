//! The worker's errors: what stops it for good ([`WorkerError`]), and how an inner step ended
//! early ([`Halt`]). At the bottom of the crate: every other module may use them.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::ConfigError;

/// Why the worker stopped before its shutdown signal.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot create the Kafka {client}: {source}")]
    Client { client: &'static str, source: KafkaError },
    #[error("cannot subscribe to {topics:?}: {source}")]
    Subscribe { topics: Vec<String>, source: KafkaError },
    #[error(
        "topic `{0}` does not exist: create it before starting the worker (`modsignal topics` creates every topic the configuration names)"
    )]
    MissingTopic(String),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Topics(Vec<crate::topics::Problem>),
    #[error("cannot produce to `{topic}`: {source} (a permanent error, so the worker stops rather than skip records)")]
    Produce { topic: String, source: KafkaError },
    #[error("the Kafka client hit a fatal error ({code}): {reason}")]
    Fatal { code: RDKafkaErrorCode, reason: String },
    #[error("cannot replay {partition} to rebuild its state: {source}")]
    Replay { partition: String, source: KafkaError },
    #[error(
        "the transactional producer failed ({0}); processing_guarantee = \"exactly_once\" needs brokers with transactions (Apache Kafka 0.11 or later, with EOS v2 from 2.5)"
    )]
    Transactions(KafkaError),
    #[error("a transactional call did not return within {0:?}; the producer is replaced")]
    TransactionStuck(std::time::Duration),
    #[error("cannot read {partition} again from its committed offset after an aborted transaction: {reason}")]
    Seek { partition: String, reason: String },
    #[error("a blocking Kafka call failed to run: {0}")]
    Blocking(String),
}

/// How an inner step ended early: the shutdown signal (or the drain deadline), or an error.
pub(crate) enum Halt {
    Stop,
    Failed(WorkerError),
}

impl From<WorkerError> for Halt {
    fn from(e: WorkerError) -> Self {
        Halt::Failed(e)
    }
}
