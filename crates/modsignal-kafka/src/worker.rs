//! The worker loop: records in, flags and dead letters out, offsets committed behind the
//! broker's acknowledgements, and each partition's state rebuilt when it is assigned. The
//! loop is the top of the crate; what it drives sits below it: the stages' interface
//! ([`crate::stage`]), rebuilding ([`crate::rebuild`]), the outbox ([`crate::outbox`]), the
//! group and its commits ([`crate::group`]), and the watermark topic ([`crate::watermarks`]).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::StreamExt;
use modsignal_metrics::Metrics;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::commit::Tp;
use crate::config::WorkerConfig;
use crate::dead_letter::{DeadLetter, cut_value};
use crate::error::{Halt, WorkerError};
use crate::group::{self, Change, Shared, WorkerContext};
use crate::outbox::{Done, Outbox, create_producer};
use crate::part::Part;
use crate::rebuild::Rebuild;
use crate::shutdown::{Stop, Throttle, lock};
use crate::stage::{Applied, Input, Stage, Tick, Written};
use crate::startup::check_topics;
use crate::status::{Hooks, StatusSink, WorkerStatus, WorkerSummary};
use crate::watermarks::{self, GroupMarks};

mod commits;
mod observe;

use commits::rewind;

/// Runs the worker until `shutdown` completes, then drains and leaves the group. See the crate
/// documentation for what it guarantees.
pub async fn run<F>(config: WorkerConfig, shutdown: F) -> Result<WorkerSummary, WorkerError>
where
    F: Future<Output = ()>,
{
    run_with(config, shutdown, Hooks::default()).await
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
            () = shutdown => {}
            () = stop.cancelled() => {}
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

/// With exactly-once, the most records a transaction holds: past it, the worker flushes at once
/// rather than wait for the flush interval, so that memory stays bounded under a burst.
const MAX_QUEUED: usize = 50_000;

/// How long stopping may wait on the broker beyond [`WorkerConfig::shutdown_timeout`]: once for
/// the final commit and once for leaving the group. Together they stay under the binary's own
/// grace period, after which it exits whatever the worker is doing.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

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
    let shared = Shared::new();
    let consumer: StreamConsumer<WorkerContext> = config
        .consumer_config()
        .create_with_context(WorkerContext {
            shared: shared.clone(),
            metrics: metrics.clone(),
            exactly_once: config.exactly_once(),
        })
        .map_err(|source| WorkerError::Client {
            client: "consumer",
            source,
        })?;
    let consumer = Arc::new(consumer);
    let producer = create_producer(&config)?;
    let signal = std::pin::pin!(shutdown);
    let mut stop = Stop::new(signal);
    tracing::info!(
        stage = stage.name(),
        brokers = %config.brokers,
        group = %config.group_id,
        inputs = ?config.input_topics,
        output = %config.output_topic,
        dead_letters = %config.dead_letter_topic,
        guarantee = %config.processing_guarantee,
        "starting the Kafka worker"
    );
    // The engine stage learns every input partition's event time from the watermark topic, read
    // whole by a follower of its own for as long as the worker runs.
    let watermarks = match (stage.is_engine(), &config.watermark_topic) {
        (true, Some(topic)) => Some(watermarks::follow(&config, topic)),
        _ => None,
    };
    let mut worker = Worker {
        config: &config,
        outbox: Outbox::new(
            producer,
            &config,
            stage.repartition_topic(),
            shared.tracker.clone(),
            metrics.clone(),
        ),
        stage,
        shared,
        parts: Vec::new(),
        pending: Vec::new(),
        rewound: Vec::new(),
        written: Written::default(),
        summary: WorkerSummary::default(),
        status,
        metrics,
        changelog_partitions: None,
        group_marks: watermarks.as_ref().map(|(marks, _)| marks.clone()),
        sources: None,
        source_topics,
        log_dead: Throttle::new(Duration::from_secs(10)),
        log_consume: Throttle::new(Duration::from_secs(10)),
        log_stray: Throttle::new(Duration::from_secs(10)),
        last_report: Instant::now(),
    };
    let repartition = worker.stage.repartition_topic().map(str::to_owned);
    let result = match check_topics(&consumer, &config, repartition.as_deref(), &mut stop).await {
        Ok(counts) => {
            worker.changelog_partitions = counts.changelog;
            if let Some(source_topics) = &worker.source_topics {
                // Each partition of the source topics is a source; a topic that does not exist
                // yet has none (its records, once it is created, are not waited for).
                let sources: Vec<String> = source_topics
                    .iter()
                    .flat_map(|t| {
                        let n = counts.topics.iter().find(|(name, _)| name == t).map_or(0, |(_, n)| *n);
                        (0..n).map(move |p| format!("{t}/{p}"))
                    })
                    .collect();
                tracing::info!(
                    sources = sources.len(),
                    "engines follow the event time of every input partition"
                );
                worker.sources = Some(sources);
            }
            worker.stage.set_repartition_partitions(counts.repartition.unwrap_or(1));
            let topics: Vec<&str> = config.input_topics.iter().map(String::as_str).collect();
            match worker.outbox.init_transactions(&mut stop).await {
                Ok(()) => match consumer.subscribe(&topics) {
                    Ok(()) => worker.run_loop(&consumer, &mut stop).await,
                    Err(source) => Err(Halt::Failed(WorkerError::Subscribe {
                        topics: config.input_topics.clone(),
                        source,
                    })),
                },
                Err(h) => Err(h),
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
    worker.summary.flags = worker.outbox.flags;
    worker.summary.resent = worker.outbox.resent;
    let summary = worker.summary.clone();
    drop(worker);
    result?;
    tracing::info!("{}", summary.line());
    Ok(summary)
}

struct Worker<'c> {
    config: &'c WorkerConfig,
    stage: Stage,
    shared: Arc<Shared>,
    outbox: Outbox,
    parts: Vec<Part>,
    /// Assigned partitions whose state is not rebuilt yet.
    pending: Vec<Tp>,
    /// Pending partitions the consumer has read past: rebuilt because an aborted transaction
    /// undid what their state reflects, they are read again from their committed offset.
    rewound: Vec<Tp>,
    /// What the partitions' states write, on its way to the outbox.
    written: Written,
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
    log_dead: Throttle,
    log_consume: Throttle,
    log_stray: Throttle,
    last_report: Instant,
}

enum Wake<M> {
    Stop,
    Delivery(Done),
    Tick,
    Record(M),
}

impl Worker<'_> {
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
                () = stop.wait() => Wake::Stop,
                d = self.outbox.delivery(), if self.outbox.in_flight() => Wake::Delivery(d),
                _ = tick.tick() => Wake::Tick,
                m = stream.next() => Wake::Record(m),
            };
            match wake {
                Wake::Stop | Wake::Record(None) => return Ok(()),
                Wake::Delivery(d) => {
                    self.outbox.on_delivery(d)?;
                    self.outbox.drain_ready()?;
                }
                Wake::Tick => self.tick(consumer, stop).await?,
                Wake::Record(Some(Ok(m))) => {
                    // A rebalance seen while this record was fetched is acted on first: a
                    // newly assigned partition's state must be rebuilt before its records.
                    self.take_revocations();
                    let mut rewound = Vec::new();
                    if !self.pending.is_empty() {
                        rewound = self.rebuild_pending(consumer, stop).await?;
                    }
                    // A record of a partition just read again from its committed offset was
                    // fetched before the seek: its turn comes again.
                    if !rewound
                        .iter()
                        .any(|tp| tp.partition == m.partition() && &*tp.topic == m.topic())
                    {
                        self.take_record(&m);
                    }
                    drop(m);
                    if !self.outbox.transactional() {
                        self.outbox.send(stop).await?;
                    } else if self.outbox.queued() >= MAX_QUEUED {
                        // A transaction holds what a flush interval writes, and no more.
                        self.tick(consumer, stop).await?;
                    }
                }
                Wake::Record(Some(Err(e))) => self.on_consume_error(e)?,
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
                    self.rewound.retain(|p| !tps.contains(p));
                    self.outbox.forget(&tps);
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
    /// to its committed offset, where the group consumer starts reading it. Returns the
    /// partitions moved back to that offset (see [`Worker::rewind_all`]).
    async fn rebuild_pending<F: Future<Output = ()>>(
        &mut self,
        consumer: &Arc<StreamConsumer<WorkerContext>>,
        stop: &mut Stop<'_, F>,
    ) -> Result<Vec<Tp>, Halt> {
        // Say so at once: readiness probes must see that a restore is under way.
        self.publish_status();
        let committed = group::committed_offsets(&self.pending, consumer, stop).await?;
        let rebuild = Rebuild {
            config: self.config,
            stage: &self.stage,
            changelog_partitions: self.changelog_partitions,
            sources: self.sources.as_deref(),
            metrics: &self.metrics,
        };
        let mut rewound = Vec::new();
        for (tp, end) in committed {
            let part = rebuild.part(tp, end, &mut self.summary, stop).await?;
            self.pending.retain(|p| *p != part.tp);
            if let Some(i) = self.rewound.iter().position(|p| *p == part.tp) {
                self.rewound.swap_remove(i);
                rewind(consumer, &part.tp, end).await?;
                rewound.push(part.tp.clone());
            }
            lock(&self.shared.tracker).assigned(&part.tp, end);
            self.parts.push(part);
        }
        Ok(rewound)
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
        self.summary.records += 1;
        let input = Input::of(m);
        let (payload, origin_ms) = (input.payload, input.received_ms);
        match part.state.apply(input, self.config.max_record_bytes, &mut self.written) {
            Ok(Applied::Mark) => {
                // A watermark mark from the router: not an event, but it moves event time on.
                part.next_offset = offset + 1;
                part.wrote_flags |= self.written.wrote_output();
                self.outbox.queue_written(&mut self.written, None, Some(&part.tp));
                return;
            }
            Ok(applied) => {
                self.summary.events += applied.events();
                match applied {
                    Applied::Event { type_name, outcome } => {
                        self.summary.late += u64::from(outcome.late);
                        self.summary.duplicates += u64::from(outcome.duplicate);
                        self.metrics.applied(type_name, &outcome);
                    }
                    Applied::Routed { events, late } => {
                        self.metrics.routed(events);
                        self.metrics.router_late(late as u64);
                    }
                    Applied::Skipped(code) => self.metrics.skipped(code),
                    Applied::Mark => {}
                }
            }
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
                self.outbox.queue_dead_letter(
                    code,
                    m.key(),
                    letter.owned_headers(payload.len(), value.len()),
                    value.to_vec(),
                    &part.tp,
                );
            }
        }
        part.next_offset = offset + 1;
        part.last_record = Instant::now();
        part.last_record_ms = origin_ms.or(part.last_record_ms);
        part.quiet = false;
        part.wrote_flags |= self.written.wrote_output();
        self.outbox.queue_written(&mut self.written, origin_ms, Some(&part.tp));
    }

    fn on_consume_error(&mut self, e: KafkaError) -> Result<(), Halt> {
        if let KafkaError::MessageConsumptionFatal(code) = e {
            let reason = self.outbox.fatal_error().unwrap_or_else(|| e.to_string());
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
    ///
    /// With exactly-once, steps 6 and 7 swap and become one transaction: the snapshots are
    /// written into the transaction that holds everything sent since the last flush, which then
    /// commits with the checkpointed offsets.
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
        self.outbox.send(stop).await?;
        self.checkpoint();
        if self.outbox.transactional() {
            self.take_snapshots(false).await?;
            if let Err(error) = self
                .commit_transaction(consumer, self.config.transaction_timeout())
                .await?
            {
                tracing::warn!(
                    %error,
                    partitions = self.parts.len(),
                    "the transactional producer failed; it is replaced and the partitions are rebuilt from what was committed"
                );
                self.outbox.renew(self.config, stop).await?;
                self.rewind_all();
            }
        } else {
            self.outbox.drain_ready()?;
            group::commit(&self.shared, consumer).await?;
            self.take_snapshots(false).await?;
        }
        self.publish_status();
        self.publish_metrics();
        Ok(())
    }

    /// Step 2 of [`Worker::tick`]: every partition's state is ticked ([`PartState::on_tick`]:
    /// a quiet engine is finished, the others flushed, marks sent), and what it wrote queued.
    ///
    /// [`PartState::on_tick`]: crate::stage::PartState::on_tick
    fn flush_parts(&mut self) {
        let idle_after = self.config.idle_after;
        let now = Instant::now();
        let group = self.group_marks.as_ref().map(|g| g.read());
        for part in &mut self.parts {
            let source = part.tp.to_string();
            let tick = Tick {
                source: &source,
                read_to_end: self.shared.caught_up(&part.tp, part.next_offset),
                quiet: part.quiet,
                quiet_for_long: !part.quiet && now.duration_since(part.last_record) >= idle_after,
                group: group.as_ref(),
            };
            let ticked = part.state.on_tick(&tick, &mut self.written);
            if ticked.finished && !part.quiet {
                self.summary.finishes += 1;
            }
            part.quiet = ticked.quiet;
            part.uncovered |= self.written.wrote_output();
            part.wrote_flags |= self.written.wrote_output();
            // Flags a finish writes are not caused by a record; a flush's are timed from the
            // newest record applied. Sent in this flush, they belong to no queued record.
            let origin_ms = if ticked.finished { None } else { part.last_record_ms };
            self.outbox.queue_written(&mut self.written, origin_ms, None);
        }
    }

    /// Marks each partition's offset as reflected in everything sent so far. Called only right
    /// after its engine was flushed or finished and what that wrote was sent.
    fn checkpoint(&mut self) {
        if self.outbox.abandoned {
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

    /// The graceful end: flush every engine, send what that writes, wait (up to the shutdown
    /// timeout) for the broker's acknowledgements, and commit what they cover.
    async fn drain<F: Future<Output = ()>>(
        &mut self,
        consumer: &Arc<StreamConsumer<WorkerContext>>,
        stop: &mut Stop<'_, F>,
    ) {
        self.take_revocations();
        if !self.outbox.abandoned {
            for part in &mut self.parts {
                part.state.flush(&mut self.written);
                part.uncovered |= self.written.wrote_output();
                part.wrote_flags |= self.written.wrote_output();
                self.outbox.queue_written(&mut self.written, None, None);
            }
            match self.outbox.send(stop).await {
                Ok(()) => {
                    self.checkpoint();
                    if self.outbox.transactional() {
                        self.drain_transaction(consumer, stop).await;
                    }
                }
                Err(Halt::Stop) => self.outbox.abandoned = true,
                Err(Halt::Failed(e)) => {
                    self.outbox.abandoned = true;
                    tracing::warn!(error = %e, "cannot send the last flags; their offsets stay uncommitted");
                }
            }
        }
        while self.outbox.in_flight() {
            let d = tokio::select! {
                biased;
                () = stop.wait() => break,
                d = self.outbox.delivery() => d,
            };
            if let Err(e) = self.outbox.on_delivery(d).and_then(|()| self.outbox.drain_ready()) {
                tracing::warn!(error = %e, "stopping the drain");
                break;
            }
        }
        if let Err(e) = self.outbox.drain_ready() {
            tracing::warn!(error = %e, "stopping the drain");
        }
        // The final commit gets its own bound rather than what is left of the drain's: after a
        // long wait for acknowledgements it must still be tried, but never wait on the broker
        // for long. With exactly-once the consumer never commits: the transaction above did,
        // and a record acknowledged in a transaction that then aborted is not written, so its
        // offset must not be committed outside one.
        if !self.outbox.transactional() {
            match tokio::time::timeout(LEAVE_TIMEOUT, group::commit(&self.shared, consumer)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the final commit did not run"),
                Err(_) => tracing::warn!(timeout = ?LEAVE_TIMEOUT, "the final commit did not finish in time"),
            }
        }
        let unacknowledged = lock(&self.shared.tracker).unacknowledged();
        if unacknowledged == 0 && !self.outbox.transactional() {
            // Everything is committed: a snapshot now lets the next owner start without replay.
            // (With exactly-once the last transaction held one.)
            if let Err(e) = self.take_snapshots(true).await {
                tracing::warn!(error = %e, "cannot take the last snapshots");
            }
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

/// The worker's future can be spawned on a multi-threaded runtime when its shutdown signal can.
const _: () = {
    fn assert_send<T: Send>(_: &T) {}
    #[allow(dead_code)]
    fn run_is_send(config: WorkerConfig) {
        assert_send(&run(config, async {}));
    }
};
