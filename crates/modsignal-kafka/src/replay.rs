//! Rebuilding a partition's state: its records from a snapshot's offset (or from the beginning)
//! up to the committed offset are applied to the snapshot's state (or a fresh one) and what
//! this writes is dropped, since it was produced before that offset was committed. Applying
//! events is idempotent and does not depend on their order, so this rebuilds the state the
//! previous owner had.

use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;

use crate::commit::Tp;
use crate::config::WorkerConfig;
use crate::error::{Halt, WorkerError};
use crate::read_to_end::{Next, ReadToEnd};
use crate::shutdown::Stop;
use crate::stage::{Input, PartState, Written};

/// A rebuilt partition.
pub(crate) struct Replayed {
    pub state: PartState,
    pub records: u64,
    pub events: u64,
    pub elapsed: Duration,
}

/// Replays `tp` into `state` from offset `from` (0: the partition's first record) to `end`
/// (exclusive).
pub(crate) async fn replay<F: Future<Output = ()>>(
    config: &WorkerConfig,
    tp: &Tp,
    state: PartState,
    from: i64,
    end: i64,
    stop: &mut Stop<'_, F>,
) -> Result<Replayed, Halt> {
    let started = Instant::now();
    let mut r = Replayed {
        state,
        records: 0,
        events: 0,
        elapsed: Duration::ZERO,
    };
    if end <= from {
        return Ok(r);
    }
    let failed = |source: KafkaError| {
        Halt::Failed(WorkerError::Replay {
            partition: tp.to_string(),
            source,
        })
    };
    let start = if from <= 0 {
        Offset::Beginning
    } else {
        Offset::Offset(from)
    };
    let mut reader = ReadToEnd::start(config, "replay consumer", &tp.topic, [(tp.partition, start)]).map_err(failed)?;
    let mut discard = Written::default();
    let mut last = -1;
    let mut last_progress = Instant::now();
    tracing::info!(partition = %tp, from_offset = from, up_to_offset = end, "rebuilding state by replay");
    loop {
        match reader.next_or_stop(stop).await? {
            Next::Record(m) => {
                let offset = m.offset();
                if offset >= end {
                    break;
                }
                if offset < from {
                    continue;
                }
                last = offset;
                r.records += 1;
                // The live path's own step. Records that were dead-lettered when first read fail
                // the same way here and are skipped: they are already on the dead-letter topic.
                if let Ok(applied) = r.state.apply(Input::of(&m), config.max_record_bytes, &mut discard) {
                    r.events += applied.events();
                }
                discard.clear();
                if offset + 1 >= end {
                    break;
                }
                if last_progress.elapsed() >= Duration::from_secs(10) {
                    last_progress = Instant::now();
                    tracing::info!(partition = %tp, offset, up_to_offset = end, "replay in progress");
                }
            }
            Next::AtEnd => {
                // The partition ends before the committed offset: the records in between are
                // gone (compaction, transaction markers, retention), so there is nothing more.
                tracing::debug!(partition = %tp, last, end, "replay reached the end of the partition");
                break;
            }
        }
    }
    r.elapsed = started.elapsed();
    Ok(r)
}
