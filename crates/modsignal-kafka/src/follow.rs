//! Following a whole topic from the beginning of every partition: the output topic, for a query
//! API that answers about every message whichever instance owns it, and the watermark topic,
//! for the event time of the whole input.
//!
//! The follower assigns itself every partition of the topic (it joins no group and commits
//! nothing), so each instance reads all of it. It reports once when it has reached the end of
//! every partition as they were when it started reading, so the caller can say when it is
//! ready.

use std::future::Future;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;

use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::read_to_end::{Next, ReadToEnd};
use crate::retry;

/// Reads the output topic of `config` until `shutdown` completes, handing every record's value
/// to `on_flag`, and calling `on_caught_up` once every partition has been read to its end.
/// Broker outages are retried; only a client that cannot be created, or an output topic that
/// does not exist, is an error.
pub async fn follow_output(
    config: &WorkerConfig,
    on_flag: impl FnMut(&[u8]),
    on_caught_up: impl FnMut(),
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
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
    let mut reader = ReadToEnd::new(config, client, topic).map_err(|source| WorkerError::Client { client, source })?;
    let mut shutdown = std::pin::pin!(shutdown);
    // The partition count, waiting for the brokers as long as it takes.
    let (c, t) = (reader.consumer().clone(), topic.to_owned());
    let metadata = retry::until_ok(
        &format!("{client}: cannot reach the brokers yet"),
        move || {
            c.fetch_metadata(Some(&t), Duration::from_secs(10)).map(|m| {
                m.topics()
                    .first()
                    .filter(|t| t.error().is_none())
                    .map(|t| t.partitions().len())
            })
        },
        shutdown.as_mut(),
    )
    .await?;
    let partitions = match metadata {
        None => return Ok(()),
        Some(Some(n)) if n > 0 => n as i32,
        Some(_) => return Err(WorkerError::MissingTopic(topic.to_owned())),
    };
    reader
        .assign((0..partitions).map(|p| (p, Offset::Beginning)))
        .map_err(|source| WorkerError::Client { client, source })?;
    let mut records = 0u64;
    tracing::info!(topic, partitions, client, "following a topic from its beginning");
    loop {
        let next = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            next = reader.next() => next,
        };
        match next {
            Next::Record(m) => {
                records += 1;
                if let Some(v) = m.payload() {
                    on_record(v);
                }
            }
            Next::AtEnd => {
                tracing::info!(topic, records, client, "topic read to its end");
                on_caught_up();
            }
        }
    }
}
