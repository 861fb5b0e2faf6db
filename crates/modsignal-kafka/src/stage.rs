//! The two stages a worker can run: the engine (canonical events in, flags out) and the router
//! (any input format in, canonical events out to the repartition topic, see [`crate::router`]).
//! The consumer group, offsets, acknowledgements, snapshots and rebalances are the same for
//! both; only what is done with a record and what a partition's state is differ.

use std::collections::BTreeMap;

use modsignal_core::{Engine, Flag, SnapshotError};
use modsignal_formats::Format;

use crate::commit::Tp;
use crate::config::WorkerConfig;
use crate::record::apply_record;
use crate::router::{Router, RouterSnapshotError};

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

/// The state of one held partition.
// One per held partition, so the size of the smaller variant does not matter, and boxing the
// engine would put a pointer chase on the path of every record.
#[allow(clippy::large_enum_variant)]
pub(crate) enum PartState {
    Engine(Engine),
    Router(Router),
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

    /// The state of a partition nothing was restored for.
    pub(crate) fn fresh(&self, config: &WorkerConfig, tp: &Tp) -> PartState {
        match self {
            Stage::Engine => PartState::Engine(Engine::new(config.policy.clone())),
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
            Stage::Engine => PartState::Engine(Engine::restore(config.policy.clone(), bytes)?),
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

impl PartState {
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        match self {
            PartState::Engine(e) => e.snapshot(),
            PartState::Router(r) => r.snapshot(),
        }
    }

    /// Applies a record again to rebuild the state, writing nothing; whether it gave events.
    /// `watermark` is the record's watermark mark (its source, times and idleness), if it is one;
    /// `received_ms` its timestamp.
    pub(crate) fn replay(
        &mut self,
        payload: &[u8],
        watermark: Option<(String, modsignal_core::EventTimes, bool)>,
        received_ms: Option<i64>,
        max_record_bytes: usize,
        discard: &mut Vec<Flag>,
    ) -> bool {
        match self {
            PartState::Engine(e) if watermark.is_some() => {
                let (source, times, idle) = watermark.expect("checked");
                e.source_mark(&source, times, idle, discard);
                discard.clear();
                false
            }
            PartState::Engine(e) => {
                let ok = apply_record(e, payload, received_ms, max_record_bytes, discard).is_ok();
                discard.clear();
                ok
            }
            PartState::Router(r) => {
                let mut routed = Vec::new();
                r.route(payload, received_ms, &mut routed).is_ok()
            }
        }
    }

    /// What the state holds, for logs: messages and reshares of an engine, reshares a router
    /// remembers.
    pub(crate) fn keys(&self) -> u64 {
        match self {
            PartState::Engine(e) => {
                let s = e.stats();
                (s.messages + s.reshares) as u64
            }
            PartState::Router(r) => r.len() as u64,
        }
    }

    pub(crate) fn engine(&self) -> Option<&Engine> {
        match self {
            PartState::Engine(e) => Some(e),
            PartState::Router(_) => None,
        }
    }
}
