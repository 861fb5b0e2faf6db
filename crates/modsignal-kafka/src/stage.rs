//! The two stages a worker can run: the engine (canonical events in, flags out) and the router
//! (any input format in, canonical events out to the repartition topic, see [`crate::router`]).
//! The consumer group, offsets, acknowledgements, snapshots and rebalances are the same for
//! both; only what is done with a record and what a partition's state is differ, and those are
//! [`PartState`]'s interface: [`PartState::apply`] for a record (live and in a replay, one
//! path), [`PartState::on_tick`] at every flush, [`PartState::snapshot`] and
//! [`Stage::restore`]. The worker never asks which stage a partition runs.

use std::collections::BTreeMap;

use modsignal_core::{Cohort, Engine, EventTimes, Flag, InputTime, Outcome, SnapshotError, Ts};
use modsignal_formats::Format;
use rdkafka::message::Message;

use crate::commit::Tp;
use crate::config::WorkerConfig;
use crate::dead_letter::Reject;
use crate::record::{apply_record, record_ms, watermark_of};
use crate::router::{Outcome as RouteOutcome, Routed, Router, RouterSnapshotError, encode_mark};
use crate::watermarks::Marks;

/// Why a partition's saved state could not be restored: the caller tries the next snapshot,
/// or rebuilds the state by replay.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RestoreError {
    #[error("cannot read the snapshot: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Engine(#[from] SnapshotError),
    #[error(transparent)]
    Router(#[from] RouterSnapshotError),
}

/// Which stage a worker runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Stage {
    Engine,
    Router {
        /// The format of each input topic; topics not named are canonical.
        formats: BTreeMap<String, Format>,
        /// The repartition topic and its partition count (known once the brokers answer).
        topic: String,
        partitions: i32,
    },
}

impl Stage {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Stage::Engine => "engine",
            Stage::Router { .. } => "router",
        }
    }

    fn format_of(formats: &BTreeMap<String, Format>, tp: &Tp) -> Format {
        formats.get(&*tp.topic).copied().unwrap_or_default()
    }

    /// Whether this stage runs engines (and so has engine metrics to publish).
    pub(crate) fn is_engine(&self) -> bool {
        matches!(self, Stage::Engine)
    }

    /// The repartition topic this stage writes, if it routes.
    pub(crate) fn repartition_topic(&self) -> Option<&str> {
        match self {
            Stage::Router { topic, .. } => Some(topic),
            Stage::Engine => None,
        }
    }

    /// Sets the repartition topic's partition count, once the brokers told it.
    pub(crate) fn set_repartition_partitions(&mut self, n: i32) {
        if let Stage::Router { partitions, .. } = self {
            *partitions = n;
        }
    }

    /// The state of a partition nothing was restored for.
    pub(crate) fn fresh(&self, config: &WorkerConfig, tp: &Tp) -> PartState {
        match self {
            Stage::Engine => PartState::Engine(EnginePart::new(Engine::new(config.policy.clone()))),
            Stage::Router {
                formats, partitions, ..
            } => PartState::Router(Router::new(
                Self::format_of(formats, tp),
                *partitions,
                &config.policy.stream,
            )),
        }
    }

    /// A partition's state from a snapshot [`PartState::snapshot`] wrote.
    pub(crate) fn restore(&self, config: &WorkerConfig, tp: &Tp, bytes: &[u8]) -> Result<PartState, RestoreError> {
        Ok(match self {
            Stage::Engine => PartState::Engine(EnginePart::new(Engine::restore(config.policy.clone(), bytes)?)),
            Stage::Router {
                formats, partitions, ..
            } => PartState::Router(Router::restore(
                Self::format_of(formats, tp),
                *partitions,
                &config.policy.stream,
                bytes,
            )?),
        })
    }
}

/// The state of one held partition.
// One per held partition, so the size of the smaller variant does not matter, and boxing the
// engine would put a pointer chase on the path of every record.
#[allow(clippy::large_enum_variant)]
pub(crate) enum PartState {
    Engine(EnginePart),
    Router(Router),
}

/// An engine partition: its engine, and what it last told and heard of the other input
/// partitions' event time.
pub(crate) struct EnginePart {
    engine: Engine,
    /// The mark (event times, idle) last sent to the watermark topic for this partition.
    published: Option<(EventTimes, bool)>,
    /// The version of the watermark topic's marks this engine last took in.
    marks_seen: u64,
    /// The watermark at which the engine was last finished.
    finished_at: Option<Ts>,
}

impl EnginePart {
    fn new(engine: Engine) -> EnginePart {
        EnginePart {
            engine,
            published: None,
            marks_seen: 0,
            finished_at: None,
        }
    }
}

/// One input record, as a stage reads it live and in a replay alike.
pub(crate) struct Input<'a> {
    pub payload: &'a [u8],
    /// The watermark mark it carries, if it is one: its source, times and idleness.
    pub mark: Option<(String, EventTimes, bool)>,
    /// Its timestamp: when it was produced or appended (ms since the epoch).
    pub received_ms: Option<i64>,
}

impl<'a> Input<'a> {
    pub(crate) fn of<M: Message>(m: &'a M) -> Input<'a> {
        Input {
            payload: m.payload().unwrap_or(&[]),
            mark: watermark_of(m),
            received_ms: record_ms(m),
        }
    }
}

/// What a partition's state wrote, for the worker to send.
#[derive(Default)]
pub(crate) struct Written {
    pub flags: Vec<Flag>,
    /// Resharer cohort pages, written beside the flags when the input is quiet.
    pub cohorts: Vec<Cohort>,
    /// Canonical events for the repartition topic.
    pub routed: Vec<Routed>,
    /// Watermark marks, for the repartition or the watermark topic.
    pub marks: Vec<Mark>,
}

impl Written {
    /// Whether it holds records for the output topic: flags or cohort pages.
    pub(crate) fn wrote_output(&self) -> bool {
        !(self.flags.is_empty() && self.cohorts.is_empty())
    }

    pub(crate) fn clear(&mut self) {
        self.flags.clear();
        self.cohorts.clear();
        self.routed.clear();
        self.marks.clear();
    }
}

/// A watermark mark (see [`crate::router`]): how far event time has come in the input
/// partition `source` (`topic/partition`), and whether it is read to its end.
pub(crate) struct Mark {
    pub source: String,
    /// As [`encode_mark`] writes it.
    pub value: String,
    pub to: MarkTo,
}

pub(crate) enum MarkTo {
    /// From a router, to each of these partitions of the repartition topic, as a header.
    Repartition(Vec<i32>),
    /// From an engine, to the watermark topic, as the record's value.
    WatermarkTopic,
}

/// What applying a record did.
pub(crate) enum Applied {
    /// A watermark mark from the router: not an event, but it moved event time on.
    Mark,
    /// An engine applied an event of this type (a metrics label).
    Event { type_name: &'static str, outcome: Outcome },
    /// A router sent this many events on, `late` of them behind its partition's event time.
    Routed { events: usize, late: usize },
    /// A router skipped the record, for this reason.
    Skipped(&'static str),
}

impl Applied {
    /// The events it counts for in the worker's summary.
    pub(crate) fn events(&self) -> u64 {
        match self {
            Applied::Event { .. } => 1,
            Applied::Routed { events, .. } => *events as u64,
            Applied::Mark | Applied::Skipped(_) => 0,
        }
    }
}

/// What [`PartState::on_tick`] is told about its partition.
pub(crate) struct Tick<'a> {
    /// `topic/partition`: the source its marks name.
    pub source: &'a str,
    /// Whether the partition is read to its end.
    pub read_to_end: bool,
    /// Finished (or flushed) since its last record.
    pub quiet: bool,
    /// Not quiet, and no record for the worker's `idle_after`.
    pub quiet_for_long: bool,
    /// Every input partition's mark as the watermark topic tells it, with its version.
    pub group: Option<&'a Marks>,
}

/// What a tick did.
pub(crate) struct Ticked {
    /// Whether the partition is quiet now.
    pub quiet: bool,
    /// Whether its engine was finished (the flags written are then not caused by a record).
    pub finished: bool,
}

impl PartState {
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        match self {
            PartState::Engine(e) => e.engine.snapshot(),
            PartState::Router(r) => r.snapshot(),
        }
    }

    /// Applies one record, writing what it gives to `out`. Live records and a replay take
    /// this one path, so a replay rebuilds exactly the state the live records built; a record
    /// that was dead-lettered when first read fails the same way again.
    pub(crate) fn apply(
        &mut self,
        input: Input<'_>,
        max_record_bytes: usize,
        out: &mut Written,
    ) -> Result<Applied, Reject> {
        match self {
            PartState::Engine(e) => {
                let applied = match input.mark {
                    Some((source, times, idle)) => {
                        e.engine.source_mark(&source, times, idle, &mut out.flags);
                        Ok(Applied::Mark)
                    }
                    None => apply_record(
                        &mut e.engine,
                        input.payload,
                        input.received_ms,
                        max_record_bytes,
                        &mut out.flags,
                    )
                    .map(|(type_name, outcome)| Applied::Event { type_name, outcome }),
                };
                // A retention sweep or a source gone quiet can write cohorts.
                e.engine.take_cohorts(&mut out.cohorts);
                applied
            }
            PartState::Router(r) => r
                .route(input.payload, input.received_ms, &mut out.routed)
                .map(|o| match o {
                    RouteOutcome::Routed { events, late, .. } => Applied::Routed { events, late },
                    RouteOutcome::Skipped(code) => Applied::Skipped(code),
                }),
        }
    }

    /// At every flush: a router marks how far event time has come in its input partition for
    /// every engine partition; an engine tells the watermark topic the same of its own and
    /// takes in the others' (`tick.group`), then is finished if the partition went quiet and
    /// no input partition it follows is still being read, or flushed otherwise.
    pub(crate) fn on_tick(&mut self, tick: &Tick<'_>, out: &mut Written) -> Ticked {
        let e = match self {
            PartState::Engine(e) => e,
            PartState::Router(router) => {
                // A router holds nothing back.
                if let Some((times, idle, partitions)) = router.mark(tick.read_to_end) {
                    let value = encode_mark(times, idle);
                    tracing::debug!(partition = tick.source, mark = %value, "watermark mark sent");
                    out.marks.push(Mark {
                        source: tick.source.to_owned(),
                        value,
                        to: MarkTo::Repartition(partitions),
                    });
                }
                return Ticked {
                    quiet: tick.quiet || tick.quiet_for_long,
                    finished: false,
                };
            }
        };
        if let Some(Marks { version, marks }) = tick.group {
            // Tell the other partitions how far this one's event time has come and whether it
            // is read to its end, and take in what they say: each engine follows the slowest
            // partition still being read, and once all are read to their end, the event time
            // of the whole input, as file mode does at its end.
            let mark = (e.engine.event_times(), tick.read_to_end);
            if e.published != Some(mark) {
                e.published = Some(mark);
                out.marks.push(Mark {
                    source: tick.source.to_owned(),
                    value: encode_mark(mark.0, mark.1),
                    to: MarkTo::WatermarkTopic,
                });
            }
            e.engine.source_mark(tick.source, mark.0, mark.1, &mut out.flags);
            if e.marks_seen != *version {
                e.marks_seen = *version;
                for (other, &(times, idle)) in marks.iter().filter(|(other, _)| *other != tick.source) {
                    e.engine.source_mark(other, times, idle, &mut out.flags);
                }
            }
        }
        // A partition is finished once it has been quiet for `idle_after` and no input
        // partition it follows is still being read (a backlog elsewhere would make its finish
        // premature); finished again when event time moved on while it was quiet.
        let input_read = matches!(e.engine.input_time(), InputTime::Own | InputTime::Idle(_));
        let moved = tick.quiet && e.engine.watermark() > e.finished_at;
        if (tick.quiet_for_long && input_read) || moved {
            // The watermark moves to the newest event time and every flag is brought up to
            // date; finishing is idempotent, so a later quiet spell finishes again.
            let before = out.flags.len();
            e.engine.finish(&mut out.flags);
            e.finished_at = e.engine.watermark();
            tracing::debug!(
                partition = tick.source,
                flags = out.flags.len() - before,
                watermark = ?e.finished_at,
                input_time = ?e.engine.input_time(),
                "partition quiet: finished"
            );
            e.engine.take_cohorts(&mut out.cohorts);
            Ticked {
                quiet: true,
                finished: true,
            }
        } else {
            e.engine.flush(&mut out.flags);
            e.engine.take_cohorts(&mut out.cohorts);
            Ticked {
                quiet: tick.quiet,
                finished: false,
            }
        }
    }

    /// Writes every change an engine holds back, as the drain at shutdown does.
    pub(crate) fn flush(&mut self, out: &mut Written) {
        if let PartState::Engine(e) = self {
            e.engine.flush(&mut out.flags);
            e.engine.take_cohorts(&mut out.cohorts);
        }
    }

    /// Tells an engine the input partitions whose event time it follows, before anything is
    /// applied to it.
    pub(crate) fn expect_sources(&mut self, sources: &[String]) {
        if let PartState::Engine(e) = self {
            e.engine.expect_sources(sources.iter().cloned(), &mut Vec::new());
        }
    }

    /// A router's event time, for the worker to compare its routers' partitions by.
    pub(crate) fn router_time(&self) -> Option<i64> {
        match self {
            PartState::Router(r) => r.event_time(),
            PartState::Engine(_) => None,
        }
    }

    /// Whether this partition's event time ran more than `lead_ms` ahead of the slowest input
    /// partition still being read: for a router, `slowest_router` (its fellow routers'); for
    /// an engine reading the input directly (`follows_group`), the slowest its marks tell.
    pub(crate) fn runs_ahead(&self, slowest_router: Option<i64>, lead_ms: i64, follows_group: bool) -> bool {
        let (time, slowest) = match self {
            PartState::Router(r) => (r.event_time(), slowest_router),
            PartState::Engine(e) if follows_group => match e.engine.input_time() {
                InputTime::Slowest(t) => (e.engine.newest_event().map(|t| t.0), Some(t.0)),
                _ => (None, None),
            },
            PartState::Engine(_) => (None, None),
        };
        matches!((time, slowest), (Some(t), Some(s)) if t > s.saturating_add(lead_ms))
    }

    /// Whether an engine has taken in the marks of `version` and published its own newest
    /// times; a router has no marks to take in.
    pub(crate) fn marks_current(&self, version: u64) -> bool {
        match self {
            PartState::Engine(e) => e.marks_seen == version && Some(e.engine.event_times()) == e.published.map(|m| m.0),
            PartState::Router(_) => true,
        }
    }

    /// What the state holds, for logs: messages and reshares of an engine, reshares a router
    /// remembers.
    pub(crate) fn keys(&self) -> u64 {
        match self {
            PartState::Engine(e) => {
                let s = e.engine.stats();
                (s.messages + s.reshares) as u64
            }
            PartState::Router(r) => r.len() as u64,
        }
    }

    pub(crate) fn engine(&self) -> Option<&Engine> {
        match self {
            PartState::Engine(e) => Some(&e.engine),
            PartState::Router(_) => None,
        }
    }
}
