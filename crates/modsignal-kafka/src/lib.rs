//! modsignal's Kafka worker: canonical events from input topics, flags to an output topic,
//! bad records to a dead-letter topic.
//!
//! This crate is an adapter around the pure core ([`modsignal_core`]), which knows nothing of
//! Kafka: here are the consumer group, the producer, offsets and the state of each partition.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use modsignal_kafka::{KafkaSection, run};
//!
//! // The binary reads the config file and hands each crate its deserialised section.
//! let section = KafkaSection {
//!     brokers: Some("localhost:9092".into()),
//!     input_topics: Some(vec!["events".into()]),
//!     ..KafkaSection::default()
//! };
//! let config = section.into_config(modsignal_core::Policy::default())?;
//! let summary = run(config, async { /* resolves on SIGTERM */ }).await?;
//! eprintln!("{}", summary.line());
//! # Ok(()) }
//! ```
//!
//! # What the worker does
//!
//! - It joins the consumer group ([`WorkerConfig::group_id`], cooperative-sticky assignment
//!   by default) and keeps one [`modsignal_core::Engine`] per assigned input partition.
//! - With [`WorkerConfig::repartition_topic`] set, a second stage in the same process (its own
//!   consumer group, `GROUP.router`) reads the input topics in their platform formats and
//!   re-keys every event by the message whose state it changes, through that topic, as Kafka
//!   Streams does; the engines then read the repartition topic. See `router.rs`.
//! - Each record is decoded ([`modsignal_core::decode`]) and applied. Flags go to the output
//!   topic keyed by `flag_id`, the value being [`modsignal_core::Flag::to_json`]. The producer
//!   is idempotent unless `enable.idempotence` is set to `false` in the properties.
//! - A record that cannot be decoded or applied, or is longer than
//!   [`WorkerConfig::max_record_bytes`], goes to the dead-letter topic: the value is the
//!   original record (cut to [`WorkerConfig::dead_letter_max_bytes`], with the header
//!   `modsignal.truncated` giving the original length), with headers `modsignal.reason`,
//!   `modsignal.code`, `modsignal.source.topic`, `modsignal.source.partition` and
//!   `modsignal.source.offset` (see [`dead_letter`]). It is counted and processing continues.
//! - Every [`WorkerConfig::flush_interval`] each engine is flushed ([`modsignal_core::Engine::flush`]):
//!   a change too small to be written at once is written then, never dropped. A partition
//!   quiet for [`WorkerConfig::idle_after`] is finished ([`modsignal_core::Engine::finish`]), so
//!   the newest revision of every flag equals what file mode writes for the same events.
//! - An input offset is committed only after every flag and dead letter produced for the
//!   records before it was acknowledged by the broker, and only at a flush (see [`commit`]):
//!   output is at least once. A flag written again is identical (same `flag_id` and
//!   `revision`), so consumers keep the highest revision per `flag_id`.
//! - When a partition is assigned, its state is rebuilt before any of its records is
//!   processed: from the newest usable snapshot (see [`state`]), in the local
//!   [`WorkerConfig::state_dir`] or else the compacted [`WorkerConfig::changelog_topic`], and
//!   then the records from the snapshot's offset up to the committed offset are replayed into
//!   it; without a snapshot, the partition is replayed from its beginning into a fresh engine.
//!   The flags a replay writes are dropped (they were produced before). Restore and replay
//!   speeds are logged. When a partition is revoked, its offsets are committed and its state
//!   dropped.
//! - Every [`WorkerConfig::snapshot_interval`] each held partition that moved is snapshotted
//!   right after a checkpoint (to the state directory, and in the background to the changelog),
//!   and once more at shutdown when everything is committed, so that a restart replays nothing.
//! - When the `shutdown` future completes, the worker stops reading, flushes, waits up to
//!   [`WorkerConfig::shutdown_timeout`] for acknowledgements, commits and leaves the group;
//!   the commit and the leaving wait at most [`LEAVE_TIMEOUT`] each, so a stop against a
//!   broker that is gone still ends in bounded time.
//! - [`run_with_status`] also publishes a [`WorkerStatus`] at every flush: the partitions
//!   held, the offsets committed, and whether the worker has settled (everything read is
//!   processed, acknowledged and committed, and every partition is quiet and finished), for
//!   readiness probes and tests.
//! - [`run_with`] also counts what the worker does in a [`modsignal_metrics::Metrics`]
//!   ([`Hooks`]): events by type, rejects and dead letters by reason, flags by category, time
//!   to removal, state sizes, restores, consumer lag (from librdkafka's statistics, every
//!   `statistics.interval.ms`, 1 s unless the properties say otherwise) and the event-to-flag
//!   latency: from an input record's timestamp to the acknowledgement of a flag it caused.
//! - Broker outages are logged and survived: librdkafka reconnects and retries, and a record
//!   whose delivery still fails is sent again with back-off while its input offset stays
//!   uncommitted. Only permanent errors (a missing or forbidden topic, a record the broker
//!   refuses as too large) and librdkafka's fatal errors stop the worker, with a
//!   [`WorkerError`].
//!
//! # Limits of this version
//!
//! - Without [`WorkerConfig::repartition_topic`], events are assumed to be keyed by the message
//!   they concern, so that every event about a message reaches the partition, and the engine,
//!   that holds it. Platform streams (keyed by account) need the repartition topic (see
//!   `router.rs`).
//! - Without a state directory or changelog, the state of a partition is rebuilt by replaying
//!   it from its beginning, so input topics must keep their records and the rebuild takes time
//!   in proportion to the partition's history. With snapshots, input topics must keep at least
//!   the records since the older of the two snapshots kept (a few snapshot intervals; keep a
//!   day or more for safety). A rebuild longer than `max.poll.interval.ms` (default 5 minutes)
//!   makes the consumer leave the group.
//! - The changelog holds whole-state snapshots in chunks, not Kafka Streams' per-key changes:
//!   each snapshot rewrites the partition's state (about 40 bytes per message or reshare).
//! - Without a repartition topic or a [`WorkerConfig::watermark_topic`], a partition's
//!   watermark follows its own events only: a quiet partition is finished (its watermark moves
//!   to its newest event time) but does not follow the event time of the other partitions.
//!   With either, each engine follows the slowest input partition still being read
//!   ([`modsignal_core::Engine::expect_sources`]): the router's watermark marks, or what every
//!   partition publishes to the watermark topic, say how far each input partition has come and
//!   whether it is read to its end (its offset at the high watermark librdkafka's statistics
//!   report). Input partitions more than [`WorkerConfig::max_event_time_lead`] ahead of the
//!   slowest one an instance reads are paused until it catches up. A partition whose reader is
//!   not running holds event time back until its new owner reads it: there is no wall-clock
//!   idle timeout.
//! - With several repartition partitions, a sender's repeated conduct and the mobbing of one
//!   person are counted over the messages each engine partition holds, not over all.
//! - Transactions are not used: output is at least once, never exactly once.
//!
//! # Running against Kafka
//!
//! The topics must exist before the worker starts: [`topics`] says what each must be and
//! creates what is missing (`modsignal topics`). At start-up the worker checks that every topic
//! it writes exists and that none has a setting that breaks a guarantee (a changelog that is
//! not compacted, a compacted dead-letter topic), and stops with every problem named if one
//! does. Settings for a managed cluster go in the properties, passed to librdkafka as they
//! are:
//!
//! ```toml
//! [kafka]
//! brokers = "b-1.example:9096,b-2.example:9096"
//! input_topics = ["events"]
//!
//! [kafka.properties]
//! "security.protocol" = "SASL_SSL"
//! "sasl.mechanism" = "SCRAM-SHA-512"
//! "sasl.username" = "modsignal"
//! "sasl.password" = "…"
//! ```
//!
//! librdkafka is built from its bundled source with TLS (OpenSSL), SASL PLAIN and SCRAM, and
//! gzip, lz4, snappy and zstd compression; GSSAPI (Kerberos) is not built in.

pub mod commit;
pub mod config;
pub mod dead_letter;
mod error;
mod follow;
mod group;
#[cfg(test)]
mod mock_tests;
mod outbox;
mod part;
mod read_to_end;
mod rebuild;
mod record;
mod replay;
mod retry;
mod router;
mod shutdown;
mod stage;
mod startup;
pub mod state;
mod status;
pub mod topics;
mod watermarks;
mod worker;

pub use config::{ConfigError, Guarantee, KafkaSection, WorkerConfig};
pub use router::RouterSnapshotError;

/// What the worker reads back from its own topics, decoded as the worker decodes it, for the
/// fuzz targets in `fuzz/` (the changelog's records are in [`state`]). Not an interface to
/// build on.
#[doc(hidden)]
pub mod fuzzing {
    use modsignal_core::policy::Stream;
    use modsignal_formats::Format;

    /// Restores a router of `partitions` repartition partitions from `bytes`, as the worker
    /// does for an input partition, and returns the restored router's own snapshot.
    pub fn router_restore(
        format: Format,
        partitions: i32,
        stream: &Stream,
        bytes: &[u8],
    ) -> Result<Vec<u8>, crate::router::RouterSnapshotError> {
        crate::router::Router::restore(format, partitions, stream, bytes).map(|r| r.snapshot())
    }

    /// A router's snapshot after it read `records` (lines of `format`) from a fresh start.
    pub fn router_after(format: Format, partitions: i32, stream: &Stream, records: &[&[u8]]) -> Vec<u8> {
        let mut router = crate::router::Router::new(format, partitions, stream);
        let mut routed = Vec::new();
        for record in records {
            let _ = router.route(record, None, &mut routed);
        }
        router.snapshot()
    }

    /// The two event times and the idleness a watermark mark or watermark record carries, as
    /// the worker reads them.
    pub fn watermark_mark(text: &str) -> Option<(modsignal_core::EventTimes, bool)> {
        crate::router::decode_mark(text)
    }

    /// A watermark mark as the worker writes it.
    pub fn encode_watermark_mark(times: modsignal_core::EventTimes, idle: bool) -> String {
        crate::router::encode_mark(times, idle)
    }
}
pub use error::WorkerError;
pub use follow::follow_output;
pub use status::{Hooks, WorkerStatus, WorkerSummary};
pub use worker::{LEAVE_TIMEOUT, run, run_with, run_with_status};
