//! The outbox: every record the worker writes (flags, dead letters, routed events, watermark
//! marks) is queued here, produced, and followed to the broker's acknowledgement. A failed
//! delivery is sent again with backoff for as long as it takes; each acknowledgement is handed
//! to the offset tracker, which commits an input offset only once everything its records
//! wrote is acknowledged. When librdkafka's queue is full, [`Outbox::send`] waits for
//! deliveries: that is the worker's back-pressure.
//!
//! With exactly-once ([`crate::config::Guarantee::ExactlyOnce`]) the producer is
//! transactional: records are held in the queue until the worker's flush, which sends them in a
//! transaction it commits with the input offsets ([`Outbox::commit_transaction`]). A failed
//! delivery is then not sent again: the transaction it belonged to is aborted, and the worker
//! rebuilds its partitions from what was committed.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use modsignal_core::{Flag, RejectCode};
use modsignal_metrics::Metrics;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::commit::{Tp, Tracker};
use crate::config::WorkerConfig;
use crate::error::{Halt, WorkerError};
use crate::router::HEADER_WATERMARK;
use crate::shutdown::{Stop, Throttle, lock};
use crate::stage::{MarkTo, Written};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Flag,
    /// A resharer cohort page, for the output topic beside the flags.
    Cohort,
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
    /// The input partition whose record wrote it, while it waits in the queue: a revoked
    /// partition's queued records are dropped with its state.
    from: Option<Tp>,
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
    /// With exactly-once: the producer is transactional.
    transactional: bool,
    /// A transaction is open.
    txn_open: bool,
    /// A record of the open transaction failed: it cannot commit.
    txn_failed: bool,
    /// The number of the open transaction's first record: a failure reported for an earlier
    /// one is of a transaction already aborted.
    txn_first_seq: u64,
    log_txn: Throttle,
}

/// Why a transaction did not commit.
pub(crate) enum TxnError {
    /// It was aborted, for this reason: what it held is gone, and the worker rebuilds its
    /// partitions from what was committed before it.
    Aborted(String),
    /// The producer cannot go on (fenced by another instance with its id, or a fatal error).
    Fatal(WorkerError),
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
            transactional: config.exactly_once(),
            txn_open: false,
            txn_failed: false,
            txn_first_seq: 0,
            log_txn: Throttle::new(Duration::from_secs(10)),
        }
    }

    /// Whether records wait in the queue for the flush's transaction (exactly-once) rather
    /// than being sent at once.
    pub(crate) fn transactional(&self) -> bool {
        self.transactional
    }

    /// Records queued and not sent yet.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Drops the queued records of revoked partitions: their next owner writes them again.
    pub(crate) fn forget(&mut self, tps: &[Tp]) {
        self.queue.retain(|o| o.from.as_ref().is_none_or(|f| !tps.contains(f)));
    }

    /// Drops every queued record (the transaction they were for was aborted).
    pub(crate) fn forget_all(&mut self) {
        self.queue.clear();
    }

    /// Readies the transactional producer (fencing an earlier producer with its id, which
    /// never happens with the random ids the worker gives), trying again while the brokers
    /// cannot answer. A broker without transactions is a fatal error.
    pub(crate) async fn init_transactions<F: Future<Output = ()>>(
        &mut self,
        stop: &mut Stop<'_, F>,
    ) -> Result<(), Halt> {
        if !self.transactional {
            return Ok(());
        }
        loop {
            let producer = self.producer.clone();
            let result = tokio::task::spawn_blocking(move || producer.init_transactions(Duration::from_secs(30)))
                .await
                .map_err(|e| WorkerError::Blocking(e.to_string()))?;
            match result {
                Ok(()) => return Ok(()),
                Err(e) if txn_error(&e).is_some_and(rdkafka::error::RDKafkaError::is_retriable) => {
                    tracing::warn!(error = %e, "cannot ready the transactional producer yet");
                    tokio::select! {
                        biased;
                        () = stop.wait() => return Err(Halt::Stop),
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                Err(source) => {
                    return Err(WorkerError::Transactions(source).into());
                }
            }
        }
    }

    /// Commits the open transaction (opening one if none is, so that offsets alone commit)
    /// with the group's `offsets`: the next offset of each input partition, every record before
    /// which is reflected in what the transaction holds. On an error that needs it, the
    /// transaction is aborted.
    pub(crate) async fn commit_transaction(
        &mut self,
        offsets: TopicPartitionList,
        group: ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<(), TxnError> {
        if !self.txn_open {
            self.begin().map_err(TxnError::Fatal)?;
        }
        let producer = self.producer.clone();
        let failed = self.txn_failed;
        let call = tokio::task::spawn_blocking(move || {
            if failed {
                return Err(None);
            }
            if offsets.count() > 0 {
                producer
                    .send_offsets_to_transaction(&offsets, &group, timeout)
                    .map_err(Some)?;
            }
            // A retriable error (a timeout) leaves the commit to be called again, once: the
            // broker aborts a transaction open longer than its timeout anyway.
            let mut tries = 0;
            loop {
                match producer.commit_transaction(timeout) {
                    Ok(()) => return Ok(()),
                    Err(e) if tries < 1 && txn_error(&e).is_some_and(rdkafka::error::RDKafkaError::is_retriable) => {
                        tracing::warn!(error = %e, "the transaction's commit did not finish; trying again");
                        tries += 1;
                    }
                    Err(e) => return Err(Some(e)),
                }
            }
        });
        let result = bounded(call, 3 * timeout).await?;
        match result {
            Ok(()) => {
                self.txn_open = false;
                self.metrics.transaction(true);
                Ok(())
            }
            Err(error) => {
                if let Some(fatal) = error.as_ref().and_then(|e| self.fatal(e)) {
                    return Err(TxnError::Fatal(fatal));
                }
                self.abort(timeout).await?;
                Err(TxnError::Aborted(error.map_or_else(
                    || "a record of the transaction was not delivered".to_owned(),
                    |e| e.to_string(),
                )))
            }
        }
    }

    /// Aborts the open transaction: its records are never read by a `read_committed` consumer.
    pub(crate) async fn abort(&mut self, timeout: Duration) -> Result<(), TxnError> {
        if !self.txn_open {
            return Ok(());
        }
        let producer = self.producer.clone();
        // A retriable error (a timeout against a broker that is down) leaves the abort to be
        // called again.
        let call = tokio::task::spawn_blocking(move || {
            let mut tries = 0;
            loop {
                match producer.abort_transaction(timeout) {
                    Err(e) if tries < 1 && txn_error(&e).is_some_and(rdkafka::error::RDKafkaError::is_retriable) => {
                        tracing::warn!(error = %e, "the transaction's abort did not finish; trying again");
                        tries += 1;
                    }
                    other => return other,
                }
            }
        });
        let result = bounded(call, 2 * timeout).await?;
        self.metrics.transaction(false);
        match result {
            Ok(()) => {
                self.txn_open = false;
                self.txn_failed = false;
                Ok(())
            }
            Err(error) => Err(TxnError::Fatal(
                self.fatal(&error).unwrap_or(WorkerError::Transactions(error)),
            )),
        }
    }

    /// The error to stop with, if `error` leaves the producer unusable.
    fn fatal(&self, error: &KafkaError) -> Option<WorkerError> {
        if let Some((code, reason)) = self.producer.client().fatal_error() {
            return Some(WorkerError::Fatal { code, reason });
        }
        txn_error(error)
            .is_some_and(rdkafka::error::RDKafkaError::is_fatal)
            .then(|| WorkerError::Transactions(error.clone()))
    }

    /// Replaces a transactional producer that hit a fatal error with a new one, under an id of
    /// its own, and readies it. librdkafka cannot go on with a producer in that state, and
    /// some are not the instance's fault: a transaction coordinator that moved mid-commit can
    /// answer the retried commit with `INVALID_TXN_STATE`, which librdkafka treats as fatal.
    /// What the old producer held is dropped; the caller rebuilds its partitions from what was
    /// committed (whichever way the last commit went, the offsets committed say).
    pub(crate) async fn renew<F: Future<Output = ()>>(
        &mut self,
        config: &WorkerConfig,
        stop: &mut Stop<'_, F>,
    ) -> Result<(), Halt> {
        let old = std::mem::replace(&mut self.producer, create_producer(config)?);
        // Destroying a producer waits on librdkafka: off the async thread, and not for long.
        let closing = tokio::task::spawn_blocking(move || drop(old));
        if tokio::time::timeout(Duration::from_secs(10), closing).await.is_err() {
            tracing::warn!("the failed producer did not close in time; it goes on closing in the background");
        }
        // Its deliveries no longer matter: the transaction they were in is gone.
        self.inflight = FuturesUnordered::new();
        self.acked.clear();
        self.queue.clear();
        lock(&self.tracker).resolve_all();
        self.txn_open = false;
        self.txn_failed = false;
        self.metrics.producer_renewed();
        self.init_transactions(stop).await
    }

    /// Whether a transaction is open.
    pub(crate) fn txn_open(&self) -> bool {
        self.txn_open
    }

    /// Opens a transaction unless one is open, for records the outbox does not send itself
    /// (changelog snapshots).
    pub(crate) fn begin_if_closed(&mut self) -> Result<(), WorkerError> {
        if self.txn_open { Ok(()) } else { self.begin() }
    }

    /// Marks the open transaction as unable to commit (a record of it the outbox did not send
    /// failed): the next commit aborts it.
    pub(crate) fn fail_transaction(&mut self) {
        self.txn_failed = true;
    }

    fn begin(&mut self) -> Result<(), WorkerError> {
        self.producer.begin_transaction().map_err(WorkerError::Transactions)?;
        self.txn_open = true;
        self.txn_failed = false;
        self.txn_first_seq = lock(&self.tracker).next_seq();
        Ok(())
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

    /// Queues flags as records keyed by `flag_id`, counting them, each timed from `origin_ms`;
    /// `from` is the input partition whose record wrote them, if one did.
    pub(crate) fn queue_flags(&mut self, flags: &mut Vec<Flag>, origin_ms: Option<i64>, from: Option<&Tp>) {
        for f in flags.drain(..) {
            self.metrics.flag(&f);
            let value = f.to_json().into_bytes();
            self.queue.push(Outgoing {
                kind: Kind::Flag,
                key: Some(f.flag_id.into_bytes()),
                value,
                headers: None,
                origin_ms,
                from: from.cloned(),
            });
        }
    }

    /// Queues everything a partition's state wrote: its marks, its flags (timed from
    /// `origin_ms`) and its routed events; `from` as for [`Outbox::queue_flags`].
    pub(crate) fn queue_written(&mut self, written: &mut Written, origin_ms: Option<i64>, from: Option<&Tp>) {
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
                            from: from.cloned(),
                        });
                    }
                }
                MarkTo::WatermarkTopic => self.queue.push(Outgoing {
                    kind: Kind::Watermark,
                    value: format!("{}={}", mark.source, mark.value).into_bytes(),
                    key: Some(mark.source.into_bytes()),
                    headers: None,
                    origin_ms: None,
                    from: from.cloned(),
                }),
            }
        }
        self.queue_flags(&mut written.flags, origin_ms, from);
        // Cohort pages are keyed by cohort and page, so that compaction keeps each page's
        // newest revision (see `modsignal_core::cohort`).
        for c in written.cohorts.drain(..) {
            self.metrics.cohort_page(c.category);
            let mut value = Vec::with_capacity(1024);
            c.write_json(&mut value);
            self.queue.push(Outgoing {
                kind: Kind::Cohort,
                key: Some(c.key().into_bytes()),
                value,
                headers: None,
                origin_ms: None,
                from: from.cloned(),
            });
        }
        for r in written.routed.drain(..) {
            self.queue.push(Outgoing {
                kind: Kind::Routed(r.partition),
                key: Some(r.key),
                value: r.value,
                headers: None,
                origin_ms: None,
                from: from.cloned(),
            });
        }
    }

    /// Queues a dead letter for the record of `from` keyed `key`, counted under `code` once
    /// acknowledged.
    pub(crate) fn queue_dead_letter(
        &mut self,
        code: RejectCode,
        key: Option<&[u8]>,
        headers: OwnedHeaders,
        value: Vec<u8>,
        from: &Tp,
    ) {
        self.queue.push(Outgoing {
            kind: Kind::DeadLetter(code),
            key: key.map(<[u8]>::to_vec),
            headers: Some(headers),
            value,
            origin_ms: None,
            from: Some(from.clone()),
        });
    }

    /// Produces everything queued. When librdkafka's queue is full it waits for deliveries,
    /// which is the worker's back-pressure: no record is read while flags cannot be sent.
    pub(crate) async fn send<F: Future<Output = ()>>(&mut self, stop: &mut Stop<'_, F>) -> Result<(), Halt> {
        let items = std::mem::take(&mut self.queue);
        if self.transactional && !self.txn_open && !items.is_empty() {
            self.begin()?;
        }
        // Its own handle: waiting for room below takes the outbox whole.
        let topics = self.topics.clone();
        for o in items {
            let (topic, partition) = match (o.kind, &topics.repartition) {
                (Kind::Flag | Kind::Cohort, _) => (topics.output.as_str(), None),
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
            () = stop.wait() => {
                self.abandoned = true;
                Err(Halt::Stop)
            }
            Some(d) = self.inflight.next(), if !self.inflight.is_empty() => {
                self.on_delivery(d)?;
                self.drain_ready()?;
                Ok(())
            }
            () = tokio::time::sleep(Duration::from_millis(50)) => Ok(()),
        }
    }

    pub(crate) fn on_delivery(&mut self, d: Done) -> Result<(), WorkerError> {
        match d.result {
            Some(Ok(())) => {
                match d.kind {
                    Kind::Flag => {
                        self.flags += 1;
                        if let Some(origin) = d.origin_ms {
                            self.metrics.event_to_flag((now_ms() - origin) as f64 / 1000.0);
                        }
                    }
                    Kind::DeadLetter(code) => self.metrics.dead_letter(code),
                    Kind::Cohort | Kind::Routed(_) | Kind::Watermark => {}
                }
                self.acked.push(d.seq);
            }
            Some(Err(failed)) => {
                let (error, message) = *failed;
                if is_permanent(&error) {
                    return Err(WorkerError::Produce {
                        topic: message.topic().to_owned(),
                        source: error,
                    });
                }
                if !self.transactional
                    && let Some((code, reason)) = self.producer.client().fatal_error()
                {
                    return Err(WorkerError::Fatal { code, reason });
                }
                if self.transactional {
                    // The record's transaction cannot commit: it is aborted at the flush and
                    // everything after the last commit is done again, so the record is not sent
                    // again here. A record purged by an abort, or reported late for a
                    // transaction already aborted, is not a new failure.
                    let purged = matches!(
                        error.rdkafka_error_code(),
                        Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)
                    );
                    if !purged && d.seq >= self.txn_first_seq {
                        self.txn_failed = true;
                        if let Some(held_back) = self.log_txn.allow() {
                            tracing::warn!(%error, topic = message.topic(), held_back, "delivery failed; the transaction will be aborted");
                        }
                    }
                    self.acked.push(d.seq);
                    return Ok(());
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
            // A transactional producer replaced after a fatal error: its records' transaction
            // is gone, and their input is read again.
            None if self.transactional => self.acked.push(d.seq),
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

/// The worker's producer ([`WorkerConfig::worker_producer_config`]): transactional with
/// exactly-once.
pub(crate) fn create_producer(config: &WorkerConfig) -> Result<FutureProducer, WorkerError> {
    config
        .worker_producer_config()
        .create()
        .map_err(|source| WorkerError::Client {
            client: "producer",
            source,
        })
}

/// Waits for a blocking transactional call, for at most `limit`. librdkafka does not always
/// keep a call's own timeout: `send_offsets_to_transaction` can wait for ever on a group
/// coordinator that went down (librdkafka issues 5456 and 5511). Past the limit the producer
/// counts as failed (the caller replaces it); the call goes on on its blocking thread, with its
/// own handle on the old producer, until librdkafka lets it go.
async fn bounded<T>(call: tokio::task::JoinHandle<T>, limit: Duration) -> Result<T, TxnError> {
    match tokio::time::timeout(limit, call).await {
        Ok(joined) => joined.map_err(|e| TxnError::Fatal(WorkerError::Blocking(e.to_string()))),
        Err(_) => Err(TxnError::Fatal(WorkerError::TransactionStuck(limit))),
    }
}

/// The transaction error inside `e`, if it is one.
fn txn_error(e: &KafkaError) -> Option<&rdkafka::error::RDKafkaError> {
    match e {
        KafkaError::Transaction(t) => Some(t),
        _ => None,
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
