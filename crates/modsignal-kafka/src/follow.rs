//! Following a whole topic from the beginning of every partition: the output topic, for a query
//! API that answers about every message whichever instance owns it, and the watermark topic,
//! for the event time of the whole input.
//!
//! The follower assigns itself every partition of the topic (it joins no group and commits
//! nothing), so each instance reads all of it. It reports once when it has reached the end of
//! every partition as they were when it started reading, so the caller can say when it is
//! ready.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::WorkerConfig;
use crate::worker::{Throttle, WorkerError};

/// Reads the output topic of `config` until `shutdown` completes, handing every record's value
/// to `on_flag`, and calling `on_caught_up` once every partition has been read to its end.
/// Broker outages are retried; only a client that cannot be created, or an output topic that
/// does not exist, is an error.
pub async fn follow_output<F, G, H>(
    config: &WorkerConfig,
    on_flag: F,
    on_caught_up: G,
    shutdown: H,
) -> Result<(), WorkerError>
where
    F: FnMut(&[u8]),
    G: FnMut(),
    H: Future<Output = ()>,
{
    follow_topic(
        config,
        &config.output_topic,
        "output follower",
        on_flag,
        on_caught_up,
        shutdown,
    )
    .await
}

/// Reads every partition of `topic` from its beginning until `shutdown` completes, handing
/// every record's value to `on_record`; `client` names the follower in errors and logs.
pub(crate) async fn follow_topic<F, G, H>(
    config: &WorkerConfig,
    topic: &str,
    client: &'static str,
    mut on_record: F,
    mut on_caught_up: G,
    shutdown: H,
) -> Result<(), WorkerError>
where
    F: FnMut(&[u8]),
    G: FnMut(),
    H: Future<Output = ()>,
{
    let consumer: StreamConsumer = config
        .replay_config()
        .create()
        .map_err(|source| WorkerError::Client { client, source })?;
    let consumer = Arc::new(consumer);
    let mut shutdown = std::pin::pin!(shutdown);
    // The partition count, waiting for the brokers as long as it takes.
    let mut backoff = Duration::from_millis(200);
    let partitions = loop {
        let (c, t) = (consumer.clone(), topic.to_owned());
        let metadata = tokio::task::spawn_blocking(move || {
            c.fetch_metadata(Some(&t), Duration::from_secs(10)).map(|m| {
                m.topics()
                    .first()
                    .filter(|t| t.error().is_none())
                    .map(|t| t.partitions().len())
            })
        })
        .await
        .map_err(|e| WorkerError::Blocking(e.to_string()))?;
        match metadata {
            Ok(Some(n)) if n > 0 => break n as i32,
            Ok(_) => return Err(WorkerError::MissingTopic(topic.to_owned())),
            Err(e) => {
                tracing::warn!(client, error = %e, retry_in = ?backoff, "cannot reach the brokers yet");
                tokio::select! {
                    _ = &mut shutdown => return Ok(()),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };
    let mut tpl = TopicPartitionList::with_capacity(partitions as usize);
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|source| WorkerError::Client { client, source })?;
    }
    consumer
        .assign(&tpl)
        .map_err(|source| WorkerError::Client { client, source })?;
    let mut at_end = vec![false; partitions as usize];
    let mut caught_up = false;
    let mut records = 0u64;
    let mut log_errors = Throttle::new(Duration::from_secs(10));
    let mut stream = consumer.stream();
    tracing::info!(topic, partitions, client, "following a topic from its beginning");
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut shutdown => return Ok(()),
            m = stream.next() => m,
        };
        match next {
            Some(Ok(m)) => {
                records += 1;
                if let Some(v) = m.payload() {
                    on_record(v);
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                if let Some(end) = at_end.get_mut(p as usize) {
                    *end = true;
                }
                if !caught_up && at_end.iter().all(|e| *e) {
                    caught_up = true;
                    tracing::info!(topic, records, client, "topic read to its end");
                    on_caught_up();
                }
            }
            Some(Err(e)) => {
                if let Some(held_back) = log_errors.allow() {
                    tracing::warn!(topic, client, error = %e, held_back, "follower error; librdkafka keeps retrying");
                }
            }
            None => return Ok(()),
        }
    }
}
