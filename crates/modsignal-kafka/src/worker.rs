//! The worker loop: records in, flags and dead letters out, offsets committed behind the
//! broker's acknowledgements, and each partition's state rebuilt when it is assigned.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use modsignal_core::{Engine, EventTimes, Flag, InputTime, RejectCode};
use modsignal_metrics::Metrics;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::commit::{Tp, Tracker};
use crate::config::WorkerConfig;
use crate::dead_letter::{DeadLetter, cut_value};
use crate::error::{Halt, WorkerError};
use crate::follow::follow_topic;
use crate::record::{apply_record, record_ms, watermark_of};
use crate::replay::replay;
use crate::retry;
use crate::router::{HEADER_WATERMARK, Outcome as RouteOutcome, Routed, decode_mark, encode_mark};
use crate::shutdown::{Stop, Throttle};
use crate::stage::{PartState, RestoreError, Stage};
use crate::state::{self, Slots, Snapshot, Source};

/// What a run did, returned when it ends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerSummary {
    /// Records read from the input topics (replays not included).
    pub records: u64,
    /// Events applied.
    pub events: u64,
    /// Events older than their partition's watermark: applied all the same.
    pub late: u64,
    /// Events dropped as repeats of an `event_id`.
    pub duplicates: u64,
    /// Records sent to the dead-letter topic, by reason code.
    pub dead_letters: BTreeMap<RejectCode, u64>,
    /// Flag records the broker acknowledged.
    pub flags: u64,
    /// Records produced again after a failed delivery.
    pub resent: u64,
    /// Times a quiet partition's engine was finished.
    pub finishes: u64,
    pub partitions_assigned: u64,
    pub partitions_revoked: u64,
    /// Records and events read to rebuild the state of assigned partitions, and the time it took.
    pub replayed_records: u64,
    pub replayed_events: u64,
    pub replay_time: Duration,
    /// Partition states restored from a snapshot (local or changelog), the messages and
    /// reshares they held, and the time spent reading and restoring them (replay excluded).
    pub snapshots_restored: u64,
    pub restored_keys: u64,
    pub restore_time: Duration,
    /// Snapshots taken (each written locally and/or to the changelog).
    pub snapshots_written: u64,
    /// With routing, what the router stage did (its `events` are the events it routed).
    pub router: Option<Box<WorkerSummary>>,
    /// Records still unacknowledged when the shutdown timeout ran out: their input offsets were
    /// not committed, so they are processed again after a restart.
    pub unacknowledged: u64,
    pub elapsed: Duration,
}

impl WorkerSummary {
    /// Replay speed in events per second, if anything was replayed.
    pub fn replay_events_per_sec(&self) -> Option<f64> {
        let secs = self.replay_time.as_secs_f64();
        (self.replayed_events > 0 && secs > 0.0).then(|| self.replayed_events as f64 / secs)
    }

    /// A one-line account of the run, for the log.
    pub fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let dead: u64 = self.dead_letters.values().sum();
        let mut line = format!(
            "modsignal-kafka: {} records, {} events ({} late, {} duplicates), {} dead letters, {} flags acknowledged in {:.1}s ({:.0} records/s); {} partitions assigned, {} revoked; {} resent",
            self.records,
            self.events,
            self.late,
            self.duplicates,
            dead,
            self.flags,
            secs,
            self.records as f64 / secs,
            self.partitions_assigned,
            self.partitions_revoked,
            self.resent
        );
        if let Some(rate) = self.replay_events_per_sec() {
            line.push_str(&format!(
                "; replayed {} events in {:.2}s ({rate:.0} events/s)",
                self.replayed_events,
                self.replay_time.as_secs_f64()
            ));
        }
        if self.unacknowledged > 0 {
            line.push_str(&format!("; {} records unacknowledged at shutdown", self.unacknowledged));
        }
        line
    }
}

/// The worker's state as seen from outside, published on every flush tick: for readiness
/// probes, and for tests that wait for the worker to catch up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerStatus {
    /// Whether the group has given this instance its share of the partitions at least once,
    /// an empty share included: before that it is not a member, whatever else it says.
    pub joined: bool,
    /// Input partitions this instance holds, state rebuilt.
    pub assigned: Vec<(String, i32)>,
    /// Input partitions assigned whose state is still being restored: while there are any,
    /// the instance is not ready.
    pub restoring: usize,
    /// Offsets the broker confirmed as committed, per input partition.
    pub committed: BTreeMap<(String, i32), i64>,
    pub records: u64,
    pub dead_letters: u64,
    /// Flag and dead-letter records sent and not yet acknowledged.
    pub unacknowledged: usize,
    /// The instance has joined its group, every held partition is quiet and finished,
    /// everything sent is acknowledged and every offset read is committed: the output topic
    /// says all there is to say.
    pub settled: bool,
}

/// Runs the worker until `shutdown` completes, then drains and leaves the group. See the crate
/// documentation for what it guarantees.
pub async fn run<F>(config: WorkerConfig, shutdown: F) -> Result<WorkerSummary, WorkerError>
where
    F: Future<Output = ()>,
{
    run_with(config, shutdown, Hooks::default()).await
}

/// What a caller can watch a running worker through.
#[derive(Debug, Default)]
pub struct Hooks {
    /// Receives a [`WorkerStatus`] at every flush tick.
    pub status: Option<watch::Sender<WorkerStatus>>,
    /// Where the worker counts what it does (see [`modsignal_metrics`]); a private registry
    /// when `None`.
    pub metrics: Option<Metrics>,
}

/// [`run`], publishing a [`WorkerStatus`] on `status` at every flush tick.
pub async fn run_with_status<F>(
    config: WorkerConfig,
    shutdown: F,
    status: watch::Sender<WorkerStatus>,
) -> Result<WorkerSummary, WorkerError>
where
    F: Future<Output = ()>,
{
    run_with(
        config,
        shutdown,
        Hooks {
            status: Some(status),
            metrics: None,
        },
    )
    .await
}

/// [`run`], with the status and metrics of `hooks`.
pub async fn run_with<F>(config: WorkerConfig, shutdown: F, hooks: Hooks) -> Result<WorkerSummary, WorkerError>
where
    F: Future<Output = ()>,
{
    let metrics = hooks.metrics.unwrap_or_default();
    let Some(repartition) = config.repartition_topic.clone() else {
        let status = hooks.status.map(|tx| StatusSink::new(tx, 1).remove(0));
        // With a watermark topic, each partition's engine follows the event time of every
        // partition of the input; without, its own.
        let sources = config.watermark_topic.is_some().then(|| config.input_topics.clone());
        return run_inner(config, shutdown, status, metrics, Stage::Engine, sources).await;
    };
    config.validate()?;
    // Two stages in one process, each its own consumer group: the router reads the inputs
    // and writes the repartition topic, the engine reads that. They stop together: on the
    // shutdown signal, or when either stops by itself.
    let mut router_config = config.clone();
    router_config.group_id = format!("{}.router", config.group_id);
    let stage = Stage::Router {
        formats: config.input_formats.clone(),
        topic: repartition.clone(),
        partitions: 1,
    };
    let mut engine_config = config;
    // The engines follow the event time of the router's input partitions, told by its marks.
    let sources = Some(std::mem::replace(&mut engine_config.input_topics, vec![repartition]));
    engine_config.repartition_topic = None;
    engine_config.input_formats.clear();
    let (mut sinks, status) = match hooks.status {
        Some(tx) => {
            let mut sinks = StatusSink::new(tx, 2);
            let engine = sinks.pop();
            (sinks, engine)
        }
        None => (Vec::new(), None),
    };
    let stop = CancellationToken::new();
    let router_metrics = metrics.clone();
    let router = async {
        let r = run_inner(
            router_config,
            stop.cancelled(),
            sinks.pop(),
            router_metrics,
            stage,
            None,
        )
        .await;
        stop.cancel();
        r
    };
    let engine = async {
        let r = run_inner(engine_config, stop.cancelled(), status, metrics, Stage::Engine, sources).await;
        stop.cancel();
        r
    };
    let signal = async {
        tokio::select! {
            _ = shutdown => {}
            _ = stop.cancelled() => {}
        }
        stop.cancel();
    };
    let ((router, engine), ()) = futures_util::future::join(futures_util::future::join(router, engine), signal).await;
    let router = router?;
    tracing::info!("router: {}", router.line());
    let mut summary = engine?;
    summary.router = Some(Box::new(router));
    Ok(summary)
}

/// Where a stage publishes its [`WorkerStatus`]: with two stages, each fills its slot and the
/// caller sees both merged once both have spoken.
struct StatusSink {
    tx: Arc<watch::Sender<WorkerStatus>>,
    slots: Arc<Mutex<Vec<Option<WorkerStatus>>>>,
    index: usize,
}

impl StatusSink {
    fn new(tx: watch::Sender<WorkerStatus>, n: usize) -> Vec<StatusSink> {
        let tx = Arc::new(tx);
        let slots = Arc::new(Mutex::new(vec![None; n]));
        (0..n)
            .map(|index| StatusSink {
                tx: tx.clone(),
                slots: slots.clone(),
                index,
            })
            .collect()
    }

    fn publish(&self, status: WorkerStatus) {
        let mut slots = lock(&self.slots);
        slots[self.index] = Some(status);
        if slots.iter().all(Option::is_some) {
            let mut merged = WorkerStatus {
                joined: true,
                settled: true,
                ..WorkerStatus::default()
            };
            for s in slots.iter().flatten() {
                merged.assigned.extend(s.assigned.iter().cloned());
                merged.restoring += s.restoring;
                merged
                    .committed
                    .extend(s.committed.iter().map(|(k, v)| (k.clone(), *v)));
                merged.records += s.records;
                merged.dead_letters += s.dead_letters;
                merged.unacknowledged += s.unacknowledged;
                merged.joined &= s.joined;
                merged.settled &= s.settled;
            }
            self.tx.send_replace(merged);
        }
    }
}

/// A rebalance, as the consumer's callbacks saw it; the worker's loop acts on it.
enum Change {
    Assigned(Vec<Tp>),
    Revoked(Vec<Tp>),
}

/// Every input partition's mark (event times, idle) as the watermark topic tells it, with a
/// version that grows at each change, so each engine takes in only what is new.
#[derive(Default)]
struct GroupMarks {
    marks: Mutex<BTreeMap<String, (EventTimes, bool)>>,
    version: AtomicU64,
}

impl GroupMarks {
    fn update(&self, source: String, mark: (EventTimes, bool)) {
        let mut marks = lock(&self.marks);
        if marks.get(&source) != Some(&mark) {
            marks.insert(source, mark);
            self.version.fetch_add(1, Ordering::Release);
        }
    }
}

/// State shared between the worker's loop and the consumer's callbacks. The callbacks run
/// inside the consumer's poll, on the loop's own thread, so the locks are never contended; they
/// are never held across a call into the consumer, whose callbacks take them too.
struct Shared {
    tracker: Mutex<Tracker>,
    changes: Mutex<Vec<Change>>,
    /// Each assigned partition's end as librdkafka's statistics last reported it: its high
    /// watermark, the offset a consumer that has read everything stands at.
    ends: Mutex<std::collections::HashMap<Tp, i64>>,
    /// Whether the group has assigned this instance its share at least once.
    joined: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these structures half-updated in a way that
    // matters more than stopping would: keep going with what is there.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct WorkerContext {
    shared: Arc<Shared>,
    metrics: Metrics,
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
                } else {
                    // The last chance to commit these partitions: once unassigned, another
                    // member owns them.
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
    tps.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",")
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
async fn commit(shared: &Arc<Shared>, consumer: &Arc<StreamConsumer<WorkerContext>>) -> Result<(), WorkerError> {
    let due = lock(&shared.tracker).take_due(None);
    if due.is_empty() {
        return Ok(());
    }
    let (c, shared) = (consumer.clone(), shared.clone());
    tokio::task::spawn_blocking(move || commit_offsets(&*c, &shared, due))
        .await
        .map_err(|e| WorkerError::Blocking(e.to_string()))
}

/// How long stopping may wait on the broker beyond [`WorkerConfig::shutdown_timeout`]: once for
/// the final commit and once for leaving the group. Together they stay under the binary's own
/// grace period, after which it exits whatever the worker is doing.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
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
struct Done {
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

/// One held input partition.
struct Part {
    tp: Tp,
    state: PartState,
    /// The next offset to process: every record before it has been applied.
    next_offset: i64,
    /// `next_offset` at the last checkpoint.
    checkpointed: i64,
    last_record: Instant,
    /// The timestamp of the newest record applied (ms since the epoch), which flags written
    /// at a flush are timed from.
    last_record_ms: Option<i64>,
    /// Finished (or flushed) since its last record.
    quiet: bool,
    /// The offset of the newest snapshot taken or restored, and when it was taken.
    snap_offset: i64,
    snap_at: Instant,
    slots: Slots,
    /// A changelog upload in flight: the slot it writes and its task.
    upload: Option<(u8, JoinHandle<Result<u32, KafkaError>>)>,
    /// The mark (event times, idle) last sent for this partition: to the watermark topic by an
    /// engine partition, to the repartition topic by a router partition.
    published: Option<(EventTimes, bool)>,
    /// The version of the watermark topic's marks this partition's engine last took in.
    marks_seen: u64,
    /// Paused because its event time ran too far ahead of the slowest input partition.
    paused: bool,
    /// The watermark at which its engine was last finished.
    finished_at: Option<modsignal_core::Ts>,
    /// Flags written since the last checkpoint by a flush or finish that read no record
    /// (held-back changes, exposure timers, a quiet partition's end). A checkpoint covers what
    /// was sent before it, and no checkpoint covers these: a snapshot taken now would say they
    /// were written, and a new owner restoring it would never write them if they were lost
    /// with this instance. So no snapshot is taken while this is set, unless everything sent
    /// has been acknowledged.
    uncovered: bool,
}

struct Worker<'c> {
    config: &'c WorkerConfig,
    stage: Stage,
    shared: Arc<Shared>,
    producer: FutureProducer,
    inflight: FuturesUnordered<InFlight>,
    parts: Vec<Part>,
    /// Assigned partitions whose state is not rebuilt yet.
    pending: Vec<Tp>,
    flags: Vec<Flag>,
    routed: Vec<Routed>,
    outgoing: Vec<Outgoing>,
    acked: Vec<u64>,
    summary: WorkerSummary,
    status: Option<StatusSink>,
    metrics: Metrics,
    /// The changelog topic's partition count, when there is one.
    changelog_partitions: Option<i32>,
    /// Every input partition's mark, as the watermark topic tells it. Present when the engine
    /// stage reads the input directly and has a watermark topic.
    group_marks: Option<Arc<GroupMarks>>,
    /// The input partitions whose event time this stage's engines follow (`topic/partition`):
    /// with routing, the router's inputs; with a watermark topic, the input's partitions.
    /// `None` when each engine follows its own events.
    sources: Option<Vec<String>>,
    /// The input topics whose partitions are the sources, when there are sources.
    source_topics: Option<Vec<String>>,
    /// A send was given up at shutdown: the engines hold changes that were never produced, so
    /// no further checkpoint may be taken.
    abandoned: bool,
    log_dead: Throttle,
    log_consume: Throttle,
    log_resend: Throttle,
    log_stray: Throttle,
    last_report: Instant,
}

async fn run_inner<F>(
    config: WorkerConfig,
    shutdown: F,
    status: Option<StatusSink>,
    metrics: Metrics,
    stage: Stage,
    source_topics: Option<Vec<String>>,
) -> Result<WorkerSummary, WorkerError>
where
    F: Future<Output = ()>,
{
    config.validate()?;
    let started = Instant::now();
    let shared = Arc::new(Shared {
        tracker: Mutex::new(Tracker::default()),
        changes: Mutex::new(Vec::new()),
        ends: Mutex::new(Default::default()),
        joined: Default::default(),
    });
    let consumer: StreamConsumer<WorkerContext> = config
        .consumer_config()
        .create_with_context(WorkerContext {
            shared: shared.clone(),
            metrics: metrics.clone(),
        })
        .map_err(|source| WorkerError::Client {
            client: "consumer",
            source,
        })?;
    let consumer = Arc::new(consumer);
    let producer: FutureProducer = config
        .producer_config()
        .create()
        .map_err(|source| WorkerError::Client {
            client: "producer",
            source,
        })?;
    let signal = std::pin::pin!(shutdown);
    let mut stop = Stop::new(signal);
    tracing::info!(
        stage = stage.name(),
        brokers = %config.brokers,
        group = %config.group_id,
        inputs = ?config.input_topics,
        output = %config.output_topic,
        dead_letters = %config.dead_letter_topic,
        "starting the Kafka worker"
    );
    // The engine stage learns every input partition's event time from the watermark topic, read
    // whole by a follower of its own for as long as the worker runs.
    let watermarks = match (&stage, &config.watermark_topic) {
        (Stage::Engine, Some(topic)) => {
            let marks = Arc::new(GroupMarks::default());
            let (seen, config, topic) = (marks.clone(), config.clone(), topic.clone());
            let task = tokio::spawn(async move {
                let on_record = move |value: &[u8]| {
                    let Some((source, mark)) = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.split_once('='))
                        .and_then(|(s, t)| Some((s.to_owned(), decode_mark(t)?)))
                    else {
                        return;
                    };
                    seen.update(source, mark);
                };
                let followed = follow_topic(
                    &config,
                    &topic,
                    "watermark follower",
                    on_record,
                    || {},
                    std::future::pending(),
                )
                .await;
                if let Err(e) = followed {
                    tracing::error!(error = %e, "cannot follow the watermark topic; engines hold event time where the other partitions last said");
                }
            });
            Some((marks, task))
        }
        _ => None,
    };
    let mut worker = Worker {
        config: &config,
        stage,
        shared,
        producer,
        inflight: FuturesUnordered::new(),
        parts: Vec::new(),
        pending: Vec::new(),
        flags: Vec::new(),
        routed: Vec::new(),
        outgoing: Vec::new(),
        acked: Vec::new(),
        summary: WorkerSummary::default(),
        status,
        metrics,
        changelog_partitions: None,
        group_marks: watermarks.as_ref().map(|(marks, _)| marks.clone()),
        sources: None,
        source_topics,
        abandoned: false,
        log_dead: Throttle::new(Duration::from_secs(10)),
        log_consume: Throttle::new(Duration::from_secs(10)),
        log_resend: Throttle::new(Duration::from_secs(10)),
        log_stray: Throttle::new(Duration::from_secs(10)),
        last_report: Instant::now(),
    };
    let repartition = match &worker.stage {
        Stage::Router { topic, .. } => Some(topic.clone()),
        Stage::Engine => None,
    };
    let result = match check_topics(&consumer, &config, repartition.as_ref(), &mut stop).await {
        Ok((changelog_partitions, repartition_partitions, topics)) => {
            worker.changelog_partitions = changelog_partitions;
            if let Some(source_topics) = &worker.source_topics {
                // Each partition of the source topics is a source; a topic that does not exist
                // yet has none (its records, once it is created, are not waited for).
                let sources: Vec<String> = source_topics
                    .iter()
                    .flat_map(|t| {
                        let n = topics.iter().find(|(name, _)| name == t).map_or(0, |(_, n)| *n);
                        (0..n).map(move |p| format!("{t}/{p}"))
                    })
                    .collect();
                tracing::info!(
                    sources = sources.len(),
                    "engines follow the event time of every input partition"
                );
                worker.sources = Some(sources);
            }
            if let Stage::Router { partitions, .. } = &mut worker.stage {
                *partitions = repartition_partitions.unwrap_or(1);
            }
            let topics: Vec<&str> = config.input_topics.iter().map(String::as_str).collect();
            match consumer.subscribe(&topics) {
                Ok(()) => worker.run_loop(&consumer, &mut stop).await,
                Err(source) => Err(Halt::Failed(WorkerError::Subscribe {
                    topics: config.input_topics.clone(),
                    source,
                })),
            }
        }
        Err(h) => Err(h),
    };
    let result = match result {
        Ok(()) | Err(Halt::Stop) => {
            stop.start_drain(config.shutdown_timeout);
            worker.drain(&consumer, &mut stop).await;
            Ok(())
        }
        Err(Halt::Failed(e)) => Err(e),
    };
    // Closing the consumer leaves the group, after the revocation callback committed what was
    // acknowledged. It blocks on the broker, so it runs off the async thread, and for a bounded
    // time: against a broker that is gone, librdkafka can wait a minute or more, longer than an
    // orchestrator waits for a stopping process. What it did not commit is processed again by
    // the partition's next owner, and the group reassigns the partitions once the session ends.
    let close = tokio::task::spawn_blocking(move || drop(consumer));
    match tokio::time::timeout(LEAVE_TIMEOUT, close).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "closing the consumer failed"),
        Err(_) => tracing::warn!(
            timeout = ?LEAVE_TIMEOUT,
            "the consumer did not leave the group in time (is the broker reachable?); it goes on closing in the background"
        ),
    }
    if let Some((_, task)) = watermarks {
        task.abort();
    }
    worker.summary.elapsed = started.elapsed();
    let summary = worker.summary.clone();
    drop(worker);
    result?;
    tracing::info!("{}", summary.line());
    Ok(summary)
}

/// Waits until the brokers answer, then checks that the output and dead-letter topics exist:
/// producing to a missing topic would stall the worker later with a less clear error.
/// Returns the partition counts of the changelog topic and of `repartition`, where they are
/// given, and of every topic there is.
async fn check_topics<F: Future<Output = ()>>(
    consumer: &Arc<StreamConsumer<WorkerContext>>,
    config: &WorkerConfig,
    repartition: Option<&String>,
    stop: &mut Stop<'_, F>,
) -> Result<(Option<i32>, Option<i32>, Vec<(String, i32)>), Halt> {
    let c = consumer.clone();
    let topics = retry::until_ok(
        "cannot reach the brokers yet",
        move || {
            c.fetch_metadata(None, Duration::from_secs(10)).map(|m| {
                m.topics()
                    .iter()
                    .filter(|t| t.error().is_none())
                    .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
                    .collect::<Vec<(String, i32)>>()
            })
        },
        stop.wait(),
    )
    .await?
    .ok_or(Halt::Stop)?;
    let partitions = |name: &String| topics.iter().find(|(t, _)| t == name).map(|(_, n)| *n);
    for t in [&config.output_topic, &config.dead_letter_topic]
        .into_iter()
        .chain(config.changelog_topic.as_ref())
        .chain(config.watermark_topic.as_ref())
        .chain(repartition)
    {
        if partitions(t).is_none() {
            return Err(WorkerError::MissingTopic(t.clone()).into());
        }
    }
    for t in &config.input_topics {
        if partitions(t).is_none() {
            tracing::warn!(topic = %t, "input topic does not exist yet; it is consumed once created");
        }
    }
    check_topic_settings(config, &topics).await?;
    let count = |t: Option<&String>| t.and_then(partitions).filter(|&n| n > 0);
    let (changelog, repartition) = (count(config.changelog_topic.as_ref()), count(repartition));
    Ok((changelog, repartition, topics))
}

/// Checks the settings of the topics the configuration names (`topics::check`): a setting that
/// breaks a guarantee stops the worker before it reads anything, and one that deserves a look is
/// logged. Settings that cannot be read (an ACL without `DescribeConfigs`) are logged and the
/// worker goes on, as it did before it checked them.
async fn check_topic_settings(config: &WorkerConfig, topics: &[(String, i32)]) -> Result<(), Halt> {
    use crate::topics;
    let counts: BTreeMap<String, i32> = topics.iter().cloned().collect();
    let layout = topics::Layout {
        partitions: 1,
        replication: None,
    };
    let wanted = topics::wanted(config, &layout, &counts);
    let names: Vec<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
    let existing = match topics::admin(config) {
        // Short: a broker answers at once, and one that cannot (librdkafka's mock cluster, a
        // proxy without the API) should not hold the start for long.
        Ok(admin) => topics::describe(&admin, &names, Duration::from_secs(3)).await,
        Err(e) => Err(e),
    };
    let existing = match existing {
        Ok(existing) => existing,
        Err(error) => {
            tracing::warn!(%error, "cannot read the topics' settings to check them; going on");
            return Ok(());
        }
    };
    let (errors, warnings): (Vec<_>, Vec<_>) = topics::check(config, &wanted, &existing)
        .into_iter()
        .partition(|p| p.severity == topics::Severity::Error);
    for w in &warnings {
        tracing::warn!(topic = %w.topic, "{w}");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(WorkerError::Topics(errors).into())
    }
}

enum Wake<M> {
    Stop,
    Delivery(Done),
    Tick,
    Record(M),
}

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

impl<'c> Worker<'c> {
    async fn run_loop<F: Future<Output = ()>>(
        &mut self,
        consumer: &Arc<StreamConsumer<WorkerContext>>,
        stop: &mut Stop<'_, F>,
    ) -> Result<(), Halt> {
        let mut stream = consumer.stream();
        let mut tick = tokio::time::interval(self.config.flush_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            // Deliveries first, so acknowledgements (and the memory they hold) never wait
            // behind a burst of records; the stop signal before everything.
            let wake = tokio::select! {
                biased;
                _ = stop.wait() => Wake::Stop,
                Some(d) = self.inflight.next(), if !self.inflight.is_empty() => Wake::Delivery(d),
                _ = tick.tick() => Wake::Tick,
                m = stream.next() => Wake::Record(m),
            };
            match wake {
                Wake::Stop => return Ok(()),
                Wake::Delivery(d) => {
                    self.on_delivery(d)?;
                    self.drain_ready_deliveries()?;
                }
                Wake::Tick => self.tick(consumer, stop).await?,
                Wake::Record(Some(Ok(m))) => {
                    // A rebalance seen while this record was fetched is acted on first: a
                    // newly assigned partition's state must be rebuilt before its records.
                    self.take_revocations();
                    if !self.pending.is_empty() {
                        self.rebuild_pending(consumer, stop).await?;
                    }
                    self.take_record(&m);
                    drop(m);
                    self.send_outgoing(stop).await?;
                }
                Wake::Record(Some(Err(e))) => self.on_consume_error(e)?,
                Wake::Record(None) => return Ok(()),
            }
        }
    }

    /// Acts on revocations (dropping the partitions' state) and queues assignments.
    fn take_revocations(&mut self) {
        let changes = std::mem::take(&mut *lock(&self.shared.changes));
        for change in changes {
            match change {
                Change::Revoked(tps) => {
                    let mut tracker = lock(&self.shared.tracker);
                    for tp in &tps {
                        tracker.forget(tp);
                    }
                    drop(tracker);
                    let mut ends = lock(&self.shared.ends);
                    for tp in &tps {
                        ends.remove(tp);
                    }
                    drop(ends);
                    self.pending.retain(|p| !tps.contains(p));
                    let before = self.parts.len();
                    self.parts.retain(|p| !tps.contains(&p.tp));
                    self.summary.partitions_revoked += (before - self.parts.len()) as u64;
                }
                Change::Assigned(tps) => {
                    for tp in tps {
                        if !self.pending.contains(&tp) && !self.parts.iter().any(|p| p.tp == tp) {
                            self.pending.push(tp);
                        }
                    }
                }
            }
        }
    }

    /// Rebuilds the state of newly assigned partitions by replaying each from its beginning up
    /// to its committed offset, where the group consumer starts reading it.
    async fn rebuild_pending<F: Future<Output = ()>>(
        &mut self,
        consumer: &Arc<StreamConsumer<WorkerContext>>,
        stop: &mut Stop<'_, F>,
    ) -> Result<(), Halt> {
        let pending = self.pending.clone();
        // Say so at once: readiness probes must see that a restore is under way.
        self.publish_status();
        let committed = Self::committed_offsets(&pending, consumer, stop).await?;
        for (tp, end) in committed {
            self.metrics.restore_started();
            let started = Instant::now();
            let (config, changelog_partitions, stage, sources) =
                (self.config, self.changelog_partitions, &self.stage, &self.sources);
            let rebuilt = async {
                let (mut state, from, source, slots) =
                    restore_snapshot(config, stage, changelog_partitions, &tp, end, stop).await?;
                if let (PartState::Engine(engine), Some(sources)) = (&mut state, sources) {
                    // Before the replay, so that it follows event time as the run it repeats did.
                    engine.expect_sources(sources.iter().cloned(), &mut Vec::new());
                }
                let loaded = started.elapsed();
                let replayed = replay(config, &tp, state, from, end, stop).await?;
                Ok::<_, Halt>((replayed, from, source, slots, loaded))
            }
            .await;
            let (replayed, from, source, slots, loaded) = match rebuilt {
                Ok(r) => r,
                Err(h) => {
                    self.metrics.restore_finished(started.elapsed().as_secs_f64(), 0);
                    return Err(h);
                }
            };
            self.metrics
                .restore_finished(started.elapsed().as_secs_f64(), replayed.events);
            if let Some(source) = source {
                let keys = replayed.state.keys();
                self.summary.snapshots_restored += 1;
                self.summary.restored_keys += keys;
                self.summary.restore_time += loaded;
                tracing::info!(
                    partition = %tp,
                    source = source.as_str(),
                    snapshot_offset = from,
                    keys,
                    seconds = format_args!("{:.3}", loaded.as_secs_f64()),
                    keys_per_sec = format_args!("{:.0}", keys as f64 / loaded.as_secs_f64().max(1e-9)),
                    "state restored from a snapshot"
                );
            }
            self.summary.partitions_assigned += 1;
            self.summary.replayed_records += replayed.records;
            self.summary.replayed_events += replayed.events;
            self.summary.replay_time += replayed.elapsed;
            let secs = replayed.elapsed.as_secs_f64();
            tracing::info!(
                partition = %tp,
                up_to_offset = end,
                records = replayed.records,
                events = replayed.events,
                seconds = format_args!("{secs:.3}"),
                events_per_sec = format_args!("{:.0}", replayed.events as f64 / secs.max(1e-9)),
                "state rebuilt by replay"
            );
            self.pending.retain(|p| *p != tp);
            lock(&self.shared.tracker).assigned(&tp, end);
            self.parts.push(Part {
                tp,
                state: replayed.state,
                next_offset: end,
                checkpointed: end,
                last_record: Instant::now(),
                last_record_ms: None,
                // A rebuilt engine was never finished: finish it once the partition is quiet.
                // An empty one has nothing to finish.
                quiet: replayed.records == 0 && source.is_none(),
                snap_offset: if source.is_some() { from } else { 0 },
                // A long replay is worth a snapshot at the first tick; otherwise wait an interval.
                snap_at: if replayed.records > 0 {
                    Instant::now()
                        .checked_sub(self.config.snapshot_interval)
                        .unwrap_or_else(Instant::now)
                } else {
                    Instant::now()
                },
                slots,
                upload: None,
                published: None,
                marks_seen: 0,
                paused: false,
                finished_at: None,
                uncovered: false,
            });
        }
        Ok(())
    }

    /// The committed offset of each pending partition (0 where none was committed: the group
    /// consumer then starts at the beginning, and there is nothing to replay).
    async fn committed_offsets<F: Future<Output = ()>>(
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

    fn take_record<M: Message>(&mut self, m: &M) {
        let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
        let Some(part) = self
            .parts
            .iter_mut()
            .find(|p| p.tp.partition == partition && &*p.tp.topic == topic)
        else {
            // librdkafka drops records of partitions it unassigned; this guards against a
            // record that slips through: its new owner processes it.
            if let Some(held_back) = self.log_stray.allow() {
                tracing::warn!(
                    topic,
                    partition,
                    offset,
                    held_back,
                    "record from a partition this worker does not hold: skipped"
                );
            }
            return;
        };
        if offset < part.next_offset {
            // Already applied (during the replay): applying again would change nothing.
            return;
        }
        let payload = m.payload().unwrap_or(&[]);
        self.summary.records += 1;
        if let (Some((source, times, idle)), PartState::Engine(engine)) = (watermark_of(m), &mut part.state) {
            // A watermark mark from the router: not an event, but it moves event time on.
            engine.source_mark(&source, times, idle, &mut self.flags);
            part.next_offset = offset + 1;
            queue_flags(&mut self.flags, &mut self.outgoing, &self.metrics, None);
            return;
        }
        let origin_ms = record_ms(m);
        let result = match &mut part.state {
            PartState::Engine(engine) => apply_record(
                engine,
                payload,
                origin_ms,
                self.config.max_record_bytes,
                &mut self.flags,
            )
            .map(|(type_name, o)| {
                self.summary.events += 1;
                self.summary.late += o.late as u64;
                self.summary.duplicates += o.duplicate as u64;
                self.metrics.applied(type_name, &o);
            }),
            PartState::Router(router) => router.route(payload, origin_ms, &mut self.routed).map(|o| match o {
                RouteOutcome::Routed { events, late, .. } => {
                    self.summary.events += events as u64;
                    self.metrics.routed(events);
                    self.metrics.router_late(late as u64);
                }
                RouteOutcome::Skipped(code) => self.metrics.skipped(code),
            }),
        };
        match result {
            Ok(()) => {}
            Err(reject) => {
                let code = reject.code();
                self.metrics.rejected(code);
                *self.summary.dead_letters.entry(code).or_default() += 1;
                if let Some(held_back) = self.log_dead.allow() {
                    tracing::warn!(topic, partition, offset, %code, reason = %reject, held_back, "record sent to the dead-letter topic");
                }
                let letter = DeadLetter {
                    reason: reject.to_string(),
                    code,
                    topic,
                    partition,
                    offset,
                };
                let value = cut_value(payload, self.config.dead_letter_max_bytes);
                self.outgoing.push(Outgoing {
                    kind: Kind::DeadLetter(code),
                    key: m.key().map(<[u8]>::to_vec),
                    headers: Some(letter.owned_headers(payload.len(), value.len())),
                    value: value.to_vec(),
                    origin_ms: None,
                });
            }
        }
        part.next_offset = offset + 1;
        part.last_record = Instant::now();
        part.last_record_ms = origin_ms.or(part.last_record_ms);
        part.quiet = false;
        queue_flags(&mut self.flags, &mut self.outgoing, &self.metrics, origin_ms);
        for r in self.routed.drain(..) {
            self.outgoing.push(Outgoing {
                kind: Kind::Routed(r.partition),
                key: Some(r.key),
                value: r.value,
                headers: None,
                origin_ms: None,
            });
        }
    }

    /// Produces everything queued. When librdkafka's queue is full it waits for deliveries,
    /// which is the worker's back-pressure: no record is read while flags cannot be sent.
    async fn send_outgoing<F: Future<Output = ()>>(&mut self, stop: &mut Stop<'_, F>) -> Result<(), Halt> {
        let items = std::mem::take(&mut self.outgoing);
        let config = self.config;
        let repartition = match &self.stage {
            Stage::Router { topic, .. } => Some(topic.clone()),
            Stage::Engine => None,
        };
        for o in items {
            let (topic, partition) = match (o.kind, &repartition) {
                (Kind::Flag, _) => (config.output_topic.as_str(), None),
                (Kind::DeadLetter(_), _) => (config.dead_letter_topic.as_str(), None),
                (Kind::Routed(p), Some(topic)) => (topic.as_str(), Some(p)),
                (Kind::Routed(_), None) => unreachable!("only the router stage routes"),
                (Kind::Watermark, _) => (
                    config
                        .watermark_topic
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
                        let seq = lock(&self.shared.tracker).issue();
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
                self.drain_ready_deliveries()?;
                Ok(())
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => Ok(()),
        }
    }

    fn on_delivery(&mut self, d: Done) -> Result<(), WorkerError> {
        match d.result {
            Some(Ok(_)) => {
                match d.kind {
                    Kind::Flag => {
                        self.summary.flags += 1;
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
                self.summary.resent += 1;
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
    fn drain_ready_deliveries(&mut self) -> Result<(), WorkerError> {
        while let Some(Some(d)) = self.inflight.next().now_or_never() {
            self.on_delivery(d)?;
        }
        if !self.acked.is_empty() {
            lock(&self.shared.tracker).ack(self.acked.drain(..));
        }
        Ok(())
    }

    fn on_consume_error(&mut self, e: KafkaError) -> Result<(), Halt> {
        if let KafkaError::MessageConsumptionFatal(code) = e {
            let reason = self
                .producer
                .client()
                .fatal_error()
                .map_or_else(|| e.to_string(), |(_, r)| r);
            return Err(WorkerError::Fatal { code, reason }.into());
        }
        if let Some(held_back) = self.log_consume.allow() {
            tracing::warn!(error = %e, held_back, "consumer error; librdkafka keeps retrying");
        }
        Ok(())
    }

    /// Every flush interval, in this order, on which commit safety depends:
    ///
    /// 1. partitions revoked are let go, and partitions assigned are rebuilt;
    /// 2. every partition's state writes what it held back ([`Worker::flush_parts`]: a quiet
    ///    partition is finished, the others flushed, a router sends its watermark mark), so that
    ///    the checkpoint below covers every flag written so far;
    /// 3. input partitions running ahead are paused or resumed;
    /// 4. everything queued is sent;
    /// 5. a checkpoint is taken of each partition that moved: its next offset, with everything
    ///    sent for the records before it;
    /// 6. acknowledgements are taken in, and offsets whose checkpoints are wholly acknowledged
    ///    are committed;
    /// 7. snapshots are taken (never while flags no checkpoint covers await acknowledgement);
    /// 8. status and metrics are published.
    async fn tick<F: Future<Output = ()>>(
        &mut self,
        consumer: &Arc<StreamConsumer<WorkerContext>>,
        stop: &mut Stop<'_, F>,
    ) -> Result<(), Halt> {
        self.take_revocations();
        if !self.pending.is_empty() {
            self.rebuild_pending(consumer, stop).await?;
        }
        self.flush_parts();
        self.pace(consumer);
        self.send_outgoing(stop).await?;
        self.checkpoint();
        self.drain_ready_deliveries()?;
        commit(&self.shared, consumer).await?;
        self.take_snapshots(false);
        self.publish_status();
        self.publish_metrics();
        Ok(())
    }

    /// Step 2 of [`Worker::tick`]: finishes partitions that went quiet, flushes the others, and
    /// sends each router's watermark mark, queueing everything written.
    fn flush_parts(&mut self) {
        let idle_after = self.config.idle_after;
        let now = Instant::now();
        let group = self.group_marks.as_ref().map(|g| {
            let version = g.version.load(Ordering::Acquire);
            (version, lock(&g.marks).clone())
        });
        for part in &mut self.parts {
            let quiet_for_long = !part.quiet && now.duration_since(part.last_record) >= idle_after;
            let read_to_end = caught_up(&self.shared, &part.tp, part.next_offset);
            let engine = match &mut part.state {
                PartState::Engine(engine) => engine,
                PartState::Router(router) => {
                    // A router holds nothing back. It tells every engine partition how far event
                    // time has come in its input partition, and whether that is read to its end.
                    if quiet_for_long {
                        part.quiet = true;
                    }
                    if let Some((times, idle, partitions)) = router.mark(read_to_end) {
                        let value = encode_mark(times, idle);
                        tracing::debug!(partition = %part.tp, mark = %value, "watermark mark sent");
                        let source = part.tp.to_string();
                        for p in partitions {
                            self.outgoing.push(Outgoing {
                                kind: Kind::Routed(p),
                                key: Some(source.clone().into_bytes()),
                                value: Vec::new(),
                                headers: Some(OwnedHeaders::new().insert(Header {
                                    key: HEADER_WATERMARK,
                                    value: Some(value.as_bytes()),
                                })),
                                origin_ms: None,
                            });
                        }
                    }
                    continue;
                }
            };
            let written_before = self.flags.len();
            if let Some((version, marks)) = &group {
                // Tell the other partitions how far this one's event time has come and whether
                // it is read to its end, and take in what they say: each engine follows the
                // slowest partition still being read, and once all are read to their end, the
                // event time of the whole input, as file mode does at its end.
                let mark = (engine.event_times(), read_to_end);
                let source = part.tp.to_string();
                if part.published != Some(mark) {
                    part.published = Some(mark);
                    self.outgoing.push(Outgoing {
                        kind: Kind::Watermark,
                        key: Some(source.clone().into_bytes()),
                        value: format!("{source}={}", encode_mark(mark.0, mark.1)).into_bytes(),
                        headers: None,
                        origin_ms: None,
                    });
                }
                engine.source_mark(&source, mark.0, mark.1, &mut self.flags);
                if part.marks_seen != *version {
                    part.marks_seen = *version;
                    for (other, &(times, idle)) in marks.iter().filter(|(other, _)| **other != source) {
                        engine.source_mark(other, times, idle, &mut self.flags);
                    }
                }
            }
            // A partition is finished once it has been quiet for `idle_after` and no input
            // partition it follows is still being read (a backlog elsewhere would make its
            // finish premature); finished again when event time moved on while it was quiet.
            let input_read = matches!(engine.input_time(), InputTime::Own | InputTime::Idle(_));
            let moved = part.quiet && engine.watermark() > part.finished_at;
            let origin_ms = if (quiet_for_long && input_read) || moved {
                // The watermark moves to the newest event time and every flag is brought up
                // to date; finishing is idempotent, so a later quiet spell finishes again.
                let before = self.flags.len();
                engine.finish(&mut self.flags);
                part.finished_at = engine.watermark();
                if !part.quiet {
                    self.summary.finishes += 1;
                }
                tracing::debug!(
                    partition = %part.tp,
                    flags = self.flags.len() - before,
                    watermark = ?part.finished_at,
                    input_time = ?engine.input_time(),
                    "partition quiet: finished"
                );
                part.quiet = true;
                None
            } else {
                engine.flush(&mut self.flags);
                part.last_record_ms
            };
            part.uncovered |= self.flags.len() > written_before;
            queue_flags(&mut self.flags, &mut self.outgoing, &self.metrics, origin_ms);
        }
    }

    /// Step 8 of [`Worker::tick`]: the input partitions' event-time lag, the engines' state,
    /// the partitions held, and a progress line every 30 s.
    fn publish_metrics(&mut self) {
        if self.stage == Stage::Engine && self.sources.is_some() {
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
        if self.stage == Stage::Engine {
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
                flags = self.summary.flags,
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
    fn pace(&mut self, consumer: &StreamConsumer<WorkerContext>) {
        let lead = i64::try_from(self.config.max_event_time_lead.as_millis()).unwrap_or(i64::MAX);
        let slowest_router = self
            .parts
            .iter()
            .filter(|p| !caught_up(&self.shared, &p.tp, p.next_offset))
            .filter_map(|p| match &p.state {
                PartState::Router(r) => r.event_time(),
                PartState::Engine(_) => None,
            })
            .min();
        let mut pause = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        for part in &mut self.parts {
            let (time, slowest) = match &part.state {
                PartState::Router(r) => (r.event_time(), slowest_router),
                PartState::Engine(e) if self.group_marks.is_some() => match e.input_time() {
                    InputTime::Slowest(t) => (e.newest_event().map(|t| t.0), Some(t.0)),
                    _ => (None, None),
                },
                PartState::Engine(_) => (None, None),
            };
            let ahead = matches!((time, slowest), (Some(t), Some(s)) if t > s.saturating_add(lead));
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

    /// Marks each partition's offset as reflected in everything sent so far. Called only right
    /// after its engine was flushed or finished and what that wrote was sent.
    fn checkpoint(&mut self) {
        if self.abandoned {
            return;
        }
        let mut tracker = lock(&self.shared.tracker);
        for part in &mut self.parts {
            if part.next_offset > part.checkpointed {
                tracker.checkpoint(&part.tp, part.next_offset);
                part.checkpointed = part.next_offset;
                // Everything sent so far, the flushes' flags included, is covered now.
                part.uncovered = false;
            }
        }
    }

    fn publish_status(&self) {
        let Some(tx) = &self.status else { return };
        let tracker = lock(&self.shared.tracker);
        let unacknowledged = tracker.unacknowledged();
        let version = self.group_marks.as_ref().map(|g| g.version.load(Ordering::Acquire));
        let joined = self.shared.joined.load(Ordering::Acquire);
        let settled = joined
            && self.pending.is_empty()
            && unacknowledged == 0
            && self.parts.iter().all(|p| {
                p.quiet
                    && p.checkpointed == p.next_offset
                    && tracker.is_committed(&p.tp)
                    && version.is_none_or(|v| {
                        p.marks_seen == v
                            && p.state
                                .engine()
                                .is_none_or(|e| Some(e.event_times()) == p.published.map(|m| m.0))
                    })
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

    /// The graceful end: flush every engine, send what that writes, wait (up to the shutdown
    /// timeout) for the broker's acknowledgements, and commit what they cover.
    async fn drain<F: Future<Output = ()>>(
        &mut self,
        consumer: &Arc<StreamConsumer<WorkerContext>>,
        stop: &mut Stop<'_, F>,
    ) {
        self.take_revocations();
        if !self.abandoned {
            for part in &mut self.parts {
                if let PartState::Engine(engine) = &mut part.state {
                    let before = self.flags.len();
                    engine.flush(&mut self.flags);
                    part.uncovered |= self.flags.len() > before;
                }
            }
            queue_flags(&mut self.flags, &mut self.outgoing, &self.metrics, None);
            match self.send_outgoing(stop).await {
                Ok(()) => self.checkpoint(),
                Err(Halt::Stop) => self.abandoned = true,
                Err(Halt::Failed(e)) => {
                    self.abandoned = true;
                    tracing::warn!(error = %e, "cannot send the last flags; their offsets stay uncommitted");
                }
            }
        }
        while !self.inflight.is_empty() {
            let d = tokio::select! {
                biased;
                _ = stop.wait() => break,
                Some(d) = self.inflight.next() => d,
            };
            if let Err(e) = self.on_delivery(d).and_then(|()| self.drain_ready_deliveries()) {
                tracing::warn!(error = %e, "stopping the drain");
                break;
            }
        }
        if let Err(e) = self.drain_ready_deliveries() {
            tracing::warn!(error = %e, "stopping the drain");
        }
        // The final commit gets its own bound rather than what is left of the drain's: after a
        // long wait for acknowledgements it must still be tried, but never wait on the broker
        // for long.
        match tokio::time::timeout(LEAVE_TIMEOUT, commit(&self.shared, consumer)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the final commit did not run"),
            Err(_) => tracing::warn!(timeout = ?LEAVE_TIMEOUT, "the final commit did not finish in time"),
        }
        let unacknowledged = lock(&self.shared.tracker).unacknowledged();
        if unacknowledged == 0 {
            // Everything is committed: a snapshot now lets the next owner start without replay.
            self.take_snapshots(true);
        }
        self.wait_for_uploads(stop).await;
        self.summary.unacknowledged = unacknowledged as u64;
        if unacknowledged > 0 {
            tracing::warn!(
                unacknowledged,
                "shutdown timeout reached with records unacknowledged; their input is processed again after a restart"
            );
        }
        self.publish_status();
    }
}

/// The newest usable snapshot of `tp` at an offset up to `end` (the committed offset): from
/// the local directory, else from the changelog; else a fresh engine from offset 0. Also what
/// the changelog's slots hold. A snapshot that does not restore is logged and skipped.
async fn restore_snapshot<F: Future<Output = ()>>(
    config: &WorkerConfig,
    stage: &Stage,
    changelog_partitions: Option<i32>,
    tp: &Tp,
    end: i64,
    stop: &mut Stop<'_, F>,
) -> Result<(PartState, i64, Option<Source>, Slots), Halt> {
    if let Some(dir) = &config.state_dir {
        for (offset, path) in state::local_candidates(dir, tp, end) {
            let restored = std::fs::read(&path)
                .map_err(RestoreError::from)
                .and_then(|b| stage.restore(config, tp, &b));
            match restored {
                Ok(engine) => return Ok((engine, offset, Some(Source::Local), Slots::default())),
                Err(error) => {
                    tracing::warn!(partition = %tp, path = %path.display(), %error, "local snapshot not usable: skipped")
                }
            }
        }
    }
    let (Some(topic), Some(n)) = (&config.changelog_topic, changelog_partitions) else {
        return Ok((stage.fresh(config, tp), 0, None, Slots::default()));
    };
    let found = state::read_changelog(config, topic, tp.partition % n, tp, end, stop).await?;
    for snap in found.snapshots {
        match stage.restore(config, tp, &snap.bytes) {
            Ok(engine) => return Ok((engine, snap.offset, Some(Source::Changelog), found.slots)),
            Err(error) => {
                tracing::warn!(partition = %tp, offset = snap.offset, %error, "changelog snapshot not usable: skipped")
            }
        }
    }
    Ok((stage.fresh(config, tp), 0, None, found.slots))
}

impl Worker<'_> {
    /// Snapshots every held partition that moved since its last snapshot, when the snapshot
    /// interval has passed (or `force`): written to the state directory at once, and to the
    /// changelog in the background. Called right after a checkpoint, so that a partition's
    /// engine reflects exactly the records before its checkpointed offset.
    fn take_snapshots(&mut self, force: bool) {
        let config = self.config;
        if self.abandoned || (config.state_dir.is_none() && config.changelog_topic.is_none()) {
            return;
        }
        let all_acknowledged = lock(&self.shared.tracker).unacknowledged() == 0;
        for part in &mut self.parts {
            if let Some((slot, h)) = part.upload.take() {
                if !h.is_finished() {
                    part.upload = Some((slot, h));
                    continue;
                }
                match h.now_or_never() {
                    Some(Ok(Ok(n))) => {
                        part.slots.chunks[slot as usize] = n;
                        self.metrics.snapshot("changelog", true);
                    }
                    Some(Ok(Err(error))) => {
                        self.metrics.snapshot("changelog", false);
                        tracing::warn!(partition = %part.tp, %error, "writing a snapshot to the changelog failed; the next one retries");
                    }
                    _ => self.metrics.snapshot("changelog", false),
                }
            }
            let due = force || part.snap_at.elapsed() >= config.snapshot_interval;
            if !due
                || part.checkpointed <= part.snap_offset
                || part.checkpointed != part.next_offset
                || (part.uncovered && !all_acknowledged)
            {
                continue;
            }
            let snap = Snapshot {
                offset: part.checkpointed,
                bytes: part.state.snapshot(),
            };
            self.summary.snapshots_written += 1;
            if let Some(dir) = &config.state_dir {
                match state::write_local(dir, &part.tp, &snap) {
                    Ok(()) => self.metrics.snapshot("local", true),
                    Err(error) => {
                        self.metrics.snapshot("local", false);
                        tracing::warn!(partition = %part.tp, dir = %dir.display(), %error, "writing a local snapshot failed");
                    }
                }
            }
            if let (Some(topic), Some(n)) = (&config.changelog_topic, self.changelog_partitions) {
                let slot = part.slots.next;
                part.slots.next = 1 - slot;
                let task = state::upload(
                    self.producer.clone(),
                    topic.clone(),
                    part.tp.partition % n,
                    part.tp.clone(),
                    slot,
                    part.slots.chunks[slot as usize],
                    snap,
                );
                part.upload = Some((slot, tokio::spawn(task)));
            }
            part.snap_offset = part.checkpointed;
            part.snap_at = Instant::now();
        }
    }

    /// Waits (until the drain's deadline) for changelog uploads in flight.
    async fn wait_for_uploads<F: Future<Output = ()>>(&mut self, stop: &mut Stop<'_, F>) {
        for part in &mut self.parts {
            let Some((slot, h)) = part.upload.take() else { continue };
            let done = tokio::select! {
                biased;
                _ = stop.wait() => {
                    tracing::warn!(partition = %part.tp, "shutdown timeout reached while writing a snapshot to the changelog");
                    return;
                }
                r = h => r,
            };
            match done {
                Ok(Ok(n)) => {
                    part.slots.chunks[slot as usize] = n;
                    self.metrics.snapshot("changelog", true);
                }
                Ok(Err(error)) => {
                    self.metrics.snapshot("changelog", false);
                    tracing::warn!(partition = %part.tp, %error, "writing a snapshot to the changelog failed");
                }
                Err(_) => self.metrics.snapshot("changelog", false),
            }
        }
    }
}

/// Whether a partition is read to its end, as far as librdkafka's statistics last said (every
/// `statistics.interval.ms`): its next offset has reached the partition's high watermark. Not
/// read to its end until the statistics first know that. A record produced since the
/// statistics were taken is live traffic, read at once.
fn caught_up(shared: &Shared, tp: &Tp, next_offset: i64) -> bool {
    lock(&shared.ends).get(tp).is_some_and(|&end| next_offset >= end)
}

/// Turns flags into records keyed by `flag_id`, counting them, each timed from `origin_ms`.
fn queue_flags(flags: &mut Vec<Flag>, outgoing: &mut Vec<Outgoing>, metrics: &Metrics, origin_ms: Option<i64>) {
    for f in flags.drain(..) {
        metrics.flag(&f);
        let value = f.to_json().into_bytes();
        outgoing.push(Outgoing {
            kind: Kind::Flag,
            key: Some(f.flag_id.into_bytes()),
            value,
            headers: None,
            origin_ms,
        });
    }
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

/// The worker's future can be spawned on a multi-threaded runtime when its shutdown signal can.
const _: () = {
    fn assert_send<T: Send>(_: &T) {}
    #[allow(dead_code)]
    fn run_is_send(config: WorkerConfig) {
        assert_send(&run(config, async {}));
    }
};
