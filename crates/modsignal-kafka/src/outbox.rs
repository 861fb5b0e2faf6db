//! The outbox: every record the worker writes (flags, dead letters, routed events, watermark
//! marks) is queued here, produced, and followed to the broker's acknowledgement. A failed
//! delivery is sent again with backoff for as long as it takes; each acknowledgement is handed
//! to the offset tracker, which commits an input offset only once everything its records
//! wrote is acknowledged. When librdkafka's queue is full, [`Outbox::send`] waits for
//! deliveries: that is the worker's back-pressure.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use modsignal_core::{Flag, RejectCode};
use modsignal_metrics::Metrics;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::commit::Tracker;
use crate::config::WorkerConfig;
use crate::error::{Halt, WorkerError};
use crate::router::HEADER_WATERMARK;
use crate::shutdown::{Stop, Throttle, lock};
use crate::stage::{MarkTo, Written};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Flag,
    /// With its reason code, counted when the broker acknowledges it.
    DeadLetter(RejectCode),
    /// A canonical event for this partition of the repartition topic (the router stage).
    Routed(i32),
    /// An input partition's newest event time, for the watermark topic.
    Watermark,
}

/// A record waiting to be produced.
struct Outgoing {
    kind: Kind,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Option<OwnedHeaders>,
    /// For a flag: the timestamp (ms since the epoch) of the input record it is timed from,
    /// for the event-to-flag latency; `None` for flags not caused by a record (a quiet
    /// partition finished, the drain at shutdown).
    origin_ms: Option<i64>,
}

/// A delivery report: `None` if the producer went away first. A failure keeps the record, to
/// send it again.
pub(crate) struct Done {
    seq: u64,
    kind: Kind,
    attempt: u32,
    origin_ms: Option<i64>,
    result: Option<Result<(), Box<(KafkaError, OwnedMessage)>>>,
}

fn report(result: OwnedDeliveryResult) -> Result<(), Box<(KafkaError, OwnedMessage)>> {
    result.map(|_| ()).map_err(Box::new)
}

type InFlight = Pin<Box<dyn Future<Output = Done> + Send>>;

/// The topics the outbox writes.
struct Topics {
    output: String,
    dead_letters: String,
    watermarks: Option<String>,
    repartition: Option<String>,
}

/// Records queued, in flight and acknowledged. See the module documentation.
pub(crate) struct Outbox {
    producer: FutureProducer,
    topics: Arc<Topics>,
    queue: Vec<Outgoing>,
    inflight: FuturesUnordered<InFlight>,
    /// Acknowledged sequence numbers not yet handed to the tracker.
    acked: Vec<u64>,
    tracker: Arc<Mutex<Tracker>>,
    metrics: Metrics,
    log_resend: Throttle,
    /// Flag records the broker acknowledged.
    pub flags: u64,
    /// Records produced again after a failed delivery.
    pub resent: u64,
    /// A send was given up at shutdown: the states hold changes that were never produced, so
    /// no further checkpoint may be taken.
    pub abandoned: bool,
}

impl Outbox {
    pub(crate) fn new(
        producer: FutureProducer,
        config: &WorkerConfig,
        repartition: Option<&str>,
        tracker: Arc<Mutex<Tracker>>,
        metrics: Metrics,
    ) -> Outbox {
        Outbox {
            producer,
            topics: Arc::new(Topics {
                output: config.output_topic.clone(),
                dead_letters: config.dead_letter_topic.clone(),
                watermarks: config.watermark_topic.clone(),
                repartition: repartition.map(str::to_owned),
            }),
            queue: Vec::new(),
            inflight: FuturesUnordered::new(),
            acked: Vec::new(),
            tracker,
            metrics,
            log_resend: Throttle::new(Duration::from_secs(10)),
            flags: 0,
            resent: 0,
            abandoned: false,
        }
    }

    /// The producer, for the changelog's uploads.
    pub(crate) fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// The reason of a fatal error the producer hit, if it did.
    pub(crate) fn fatal_error(&self) -> Option<String> {
        self.producer.client().fatal_error().map(|(_, r)| r)
    }

    /// Whether records are in flight.
    pub(crate) fn in_flight(&self) -> bool {
        !self.inflight.is_empty()
    }

    /// The next delivery report; pending for ever when nothing is in flight.
    pub(crate) async fn delivery(&mut self) -> Done {
        match self.inflight.next().await {
            Some(d) => d,
            None => std::future::pending().await,
        }
    }

    /// Queues flags as records keyed by `flag_id`, counting them, each timed from `origin_ms`.
    pub(crate) fn queue_flags(&mut self, flags: &mut Vec<Flag>, origin_ms: Option<i64>) {
        for f in flags.drain(..) {
            self.metrics.flag(&f);
            let value = f.to_json().into_bytes();
            self.queue.push(Outgoing {
                kind: Kind::Flag,
                key: Some(f.flag_id.into_bytes()),
                value,
                headers: None,
                origin_ms,
            });
        }
    }

    /// Queues everything a partition's state wrote: its marks, its flags (timed from
    /// `origin_ms`) and its routed events.
    pub(crate) fn queue_written(&mut self, written: &mut Written, origin_ms: Option<i64>) {
        for mark in written.marks.drain(..) {
            match mark.to {
                MarkTo::Repartition(partitions) => {
                    for p in partitions {
                        self.queue.push(Outgoing {
                            kind: Kind::Routed(p),
                            key: Some(mark.source.clone().into_bytes()),
                            value: Vec::new(),
                            headers: Some(OwnedHeaders::new().insert(Header {
                                key: HEADER_WATERMARK,
                                value: Some(mark.value.as_bytes()),
                            })),
                            origin_ms: None,
                        });
                    }
                }
                MarkTo::WatermarkTopic => self.queue.push(Outgoing {
                    kind: Kind::Watermark,
                    value: format!("{}={}", mark.source, mark.value).into_bytes(),
                    key: Some(mark.source.into_bytes()),
                    headers: None,
                    origin_ms: None,
                }),
            }
        }
        self.queue_flags(&mut written.flags, origin_ms);
        for r in written.routed.drain(..) {
            self.queue.push(Outgoing {
                kind: Kind::Routed(r.partition),
                key: Some(r.key),
                value: r.value,
                headers: None,
                origin_ms: None,
            });
        }
    }

    /// Queues a dead letter for the record keyed `key`, counted under `code` once acknowledged.
    pub(crate) fn queue_dead_letter(
        &mut self,
        code: RejectCode,
        key: Option<&[u8]>,
        headers: OwnedHeaders,
        value: Vec<u8>,
    ) {
        self.queue.push(Outgoing {
            kind: Kind::DeadLetter(code),
            key: key.map(<[u8]>::to_vec),
            headers: Some(headers),
            value,
            origin_ms: None,
        });
    }

    /// Produces everything queued. When librdkafka's queue is full it waits for deliveries,
    /// which is the worker's back-pressure: no record is read while flags cannot be sent.
    pub(crate) async fn send<F: Future<Output = ()>>(&mut self, stop: &mut Stop<'_, F>) -> Result<(), Halt> {
        let items = std::mem::take(&mut self.queue);
        // Its own handle: waiting for room below takes the outbox whole.
        let topics = self.topics.clone();
        for o in items {
            let (topic, partition) = match (o.kind, &topics.repartition) {
                (Kind::Flag, _) => (topics.output.as_str(), None),
                (Kind::DeadLetter(_), _) => (topics.dead_letters.as_str(), None),
                (Kind::Routed(p), Some(topic)) => (topic.as_str(), Some(p)),
                (Kind::Routed(_), None) => unreachable!("only the router stage routes"),
                (Kind::Watermark, _) => (
                    topics
                        .watermarks
                        .as_deref()
                        .expect("watermarks are sent only with a watermark topic"),
                    None,
                ),
            };
            let mut headers = o.headers;
            loop {
                let mut record = FutureRecord::<[u8], [u8]>::to(topic).payload(o.value.as_slice());
                if let Some(k) = &o.key {
                    record = record.key(k.as_slice());
                }
                if let Some(p) = partition {
                    record = record.partition(p);
                }
                if let Some(h) = headers.take() {
                    record = record.headers(h);
                }
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        let seq = lock(&self.tracker).issue();
                        let (kind, origin_ms) = (o.kind, o.origin_ms);
                        self.inflight.push(Box::pin(async move {
                            Done {
                                seq,
                                kind,
                                attempt: 0,
                                origin_ms,
                                result: delivery.await.ok().map(report),
                            }
                        }));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => {
                        headers = record.headers;
                        self.wait_for_room(stop).await?;
                    }
                    Err((source, _)) => {
                        return Err(WorkerError::Produce {
                            topic: topic.to_owned(),
                            source,
                        }
                        .into());
                    }
                }
            }
        }
        Ok(())
    }

    async fn wait_for_room<F: Future<Output = ()>>(&mut self, stop: &mut Stop<'_, F>) -> Result<(), Halt> {
        tokio::select! {
            biased;
            _ = stop.wait() => {
                self.abandoned = true;
                Err(Halt::Stop)
            }
            Some(d) = self.inflight.next(), if !self.inflight.is_empty() => {
                self.on_delivery(d)?;
                self.drain_ready()?;
                Ok(())
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => Ok(()),
        }
    }

    pub(crate) fn on_delivery(&mut self, d: Done) -> Result<(), WorkerError> {
        match d.result {
            Some(Ok(_)) => {
                match d.kind {
                    Kind::Flag => {
                        self.flags += 1;
                        if let Some(origin) = d.origin_ms {
                            self.metrics.event_to_flag((now_ms() - origin) as f64 / 1000.0);
                        }
                    }
                    Kind::DeadLetter(code) => self.metrics.dead_letter(code),
                    Kind::Routed(_) | Kind::Watermark => {}
                }
                self.acked.push(d.seq);
            }
            Some(Err(failed)) => {
                let (error, message) = *failed;
                if let Some((code, reason)) = self.producer.client().fatal_error() {
                    return Err(WorkerError::Fatal { code, reason });
                }
                if is_permanent(&error) {
                    return Err(WorkerError::Produce {
                        topic: message.topic().to_owned(),
                        source: error,
                    });
                }
                // librdkafka already retried for `message.timeout.ms`: the broker is down or
                // unreachable. Send again, backing off, and keep the input offset uncommitted
                // until it is through.
                self.resent += 1;
                self.metrics.resent();
                let backoff = Duration::from_millis(100 << d.attempt.min(7)).min(Duration::from_secs(10));
                let producer = self.producer.clone();
                if let Some(held_back) = self.log_resend.allow() {
                    tracing::warn!(%error, topic = message.topic(), retry_in = ?backoff, held_back, "delivery failed; sending again");
                }
                let (seq, kind, attempt, origin_ms) = (d.seq, d.kind, d.attempt + 1, d.origin_ms);
                self.inflight.push(Box::pin(async move {
                    Done {
                        seq,
                        kind,
                        attempt,
                        origin_ms,
                        result: Some(report(resend(producer, message, backoff).await)),
                    }
                }));
            }
            None => {
                return Err(WorkerError::Fatal {
                    code: RDKafkaErrorCode::Fail,
                    reason: "the producer went away with records in flight".into(),
                });
            }
        }
        Ok(())
    }

    /// Takes every delivery report already in, then moves the commit frontier once.
    pub(crate) fn drain_ready(&mut self) -> Result<(), WorkerError> {
        while let Some(Some(d)) = self.inflight.next().now_or_never() {
            self.on_delivery(d)?;
        }
        if !self.acked.is_empty() {
            lock(&self.tracker).ack(self.acked.drain(..));
        }
        Ok(())
    }
}

/// Whether a delivery failed for a reason sending again cannot mend.
fn is_permanent(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::MessageSizeTooLarge
                | C::InvalidMessageSize
                | C::MessageBatchTooLarge
                | C::InvalidRecord
                | C::InvalidRequiredAcks
                | C::TopicAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::UnknownTopic
        )
    )
}

/// The wall clock in ms since the epoch, for the event-to-flag latency (record timestamps are
/// wall-clock times too).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sends a record again after `backoff`, waiting as long as librdkafka's queue is full.
async fn resend(producer: FutureProducer, message: OwnedMessage, backoff: Duration) -> OwnedDeliveryResult {
    tokio::time::sleep(backoff).await;
    let mut record = FutureRecord::<[u8], [u8]>::to(message.topic()).payload(message.payload().unwrap_or(&[]));
    if let Some(k) = message.key() {
        record = record.key(k);
    }
    if let Some(h) = message.headers() {
        record = record.headers(h.clone());
    }
    producer.send(record, Timeout::Never).await
}
