//! Rebuilding an assigned partition: its newest usable snapshot at or before the committed
//! offset is restored (from the state directory, else the changelog), and the records between
//! that snapshot and the committed offset are replayed (see [`crate::replay`]). The partition
//! then reads on from the committed offset with the state its previous owner had.

use std::future::Future;
use std::time::Instant;

use modsignal_metrics::Metrics;

use crate::commit::Tp;
use crate::config::WorkerConfig;
use crate::error::Halt;
use crate::part::Part;
use crate::replay::replay;
use crate::shutdown::Stop;
use crate::stage::{PartState, RestoreError, Stage};
use crate::state::{self, Slots, Source};
use crate::status::WorkerSummary;

/// What a rebuild reads from: the worker's settings, its stage, the changelog's partition
/// count, and the input partitions whose event time the engines follow.
pub(crate) struct Rebuild<'a> {
    pub config: &'a WorkerConfig,
    pub stage: &'a Stage,
    pub changelog_partitions: Option<i32>,
    pub sources: Option<&'a [String]>,
    pub metrics: &'a Metrics,
}

impl Rebuild<'_> {
    /// Rebuilds `tp` up to `end`, its committed offset, counting what it did in `summary`.
    pub(crate) async fn part<F: Future<Output = ()>>(
        &self,
        tp: Tp,
        end: i64,
        summary: &mut WorkerSummary,
        stop: &mut Stop<'_, F>,
    ) -> Result<Part, Halt> {
        let config = self.config;
        self.metrics.restore_started();
        let started = Instant::now();
        let rebuilt = async {
            let (mut state, from, source, slots) =
                restore_snapshot(config, self.stage, self.changelog_partitions, &tp, end, stop).await?;
            if let Some(sources) = self.sources {
                // Before the replay, so that it follows event time as the run it repeats did.
                state.expect_sources(sources);
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
            summary.snapshots_restored += 1;
            summary.restored_keys += keys;
            summary.restore_time += loaded;
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
        summary.partitions_assigned += 1;
        summary.replayed_records += replayed.records;
        summary.replayed_events += replayed.events;
        summary.replay_time += replayed.elapsed;
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
        Ok(Part {
            tp,
            state: replayed.state,
            next_offset: end,
            checkpointed: end,
            last_record: Instant::now(),
            last_record_ms: None,
            // A rebuilt engine was never finished: finish it once the partition is quiet. An
            // empty one has nothing to finish.
            quiet: replayed.records == 0 && source.is_none(),
            snap_offset: if source.is_some() { from } else { 0 },
            // A long replay is worth a snapshot at the first tick; otherwise wait an interval.
            snap_at: if replayed.records > 0 {
                Instant::now()
                    .checked_sub(config.snapshot_interval)
                    .unwrap_or_else(Instant::now)
            } else {
                Instant::now()
            },
            slots,
            upload: None,
            paused: false,
            uncovered: false,
            wrote_flags: false,
        })
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
                    tracing::warn!(partition = %tp, path = %path.display(), %error, "local snapshot not usable: skipped");
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
                tracing::warn!(partition = %tp, offset = snap.offset, %error, "changelog snapshot not usable: skipped");
            }
        }
    }
    Ok((stage.fresh(config, tp), 0, None, found.slots))
}
