//! modsignal's Prometheus metrics: one [`Metrics`] value, cheap to clone, that the file runner,
//! the Kafka worker and the HTTP server share, and that renders the Prometheus text format for
//! `/metrics`.
//!
//! The core stays free of Prometheus: it reports what happened ([`modsignal_core::Outcome`],
//! [`modsignal_core::Flag`], [`modsignal_core::StateStats`]) and the adapters hand that to the
//! methods here.
//!
//! Naming follows Prometheus' rules: every name starts with `modsignal_`, counters end in
//! `_total`, times are in `_seconds`, and no label carries a user id, a message id or any other
//! unbounded value. Label values come from closed sets (event types, reason codes, categories,
//! removal kinds) or from the deployment's configuration (topic names, partition numbers).
//! Every series of a closed set is created at zero when [`Metrics::new`] runs, so that
//! dashboards and alerts see a series from the first scrape rather than a gap.
//!
//! The HTTP server's (`modsignal_http_*`, `modsignal_api_*`) are in [`http`], registered by
//! the server in the same registry.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `modsignal_events_total` | counter | `type` | events applied, by event type |
//! | `modsignal_events_rejected_total` | counter | `reason` | records that could not be decoded or applied |
//! | `modsignal_events_late_total` | counter | `stage` | events older than the watermark, by stage: `engine` (applied all the same) or `router` (behind its input partition's own event time by more than the lateness bound, routed all the same) |
//! | `modsignal_events_duplicate_total` | counter | | repeats of an `event_id` (changed nothing) |
//! | `modsignal_dead_letters_total` | counter | `reason` | records the dead-letter topic acknowledged |
//! | `modsignal_flags_emitted_total` | counter | `category`, `track`, `raised` | flag revisions written |
//! | `modsignal_cohort_pages_emitted_total` | counter | `category` | resharer cohort pages written (`modsignal.cohort/1`) |
//! | `modsignal_time_to_removal_seconds` | histogram | `removal` | event time from post to first removal |
//! | `modsignal_reach_at_removal_accounts` | histogram | | audience of a labelled message when it came down |
//! | `modsignal_state_messages` | gauge | | messages held in state |
//! | `modsignal_state_reshares` | gauge | | reshares held in state |
//! | `modsignal_state_labelled_messages` | gauge | | labelled messages held in state |
//! | `modsignal_state_accounts` | gauge | | accounts held in state |
//! | `modsignal_state_evicted_messages_total` | counter | | messages dropped after the retention horizon |
//! | `modsignal_state_restores_total` | counter | | partition states rebuilt after an assignment |
//! | `modsignal_state_restore_duration_seconds` | histogram | | how long one rebuild took |
//! | `modsignal_state_restored_events_total` | counter | | events read to rebuild state |
//! | `modsignal_state_restores_in_progress` | gauge | | partitions being rebuilt now |
//! | `modsignal_state_snapshots_total` | counter | `store`, `result` | snapshots written to the state directory (`local`) or the changelog topic (`changelog`), `ok` or `failed` |
//! | `modsignal_routed_events_total` | counter | | events the router sent to the repartition topic |
//! | `modsignal_records_skipped_total` | counter | `reason` | platform records that stand for no event (heartbeats, likes, limit notices, …) |
//! | `modsignal_partitions_assigned` | gauge | | input partitions held, state ready |
//! | `modsignal_consumer_lag_records` | gauge | `topic`, `partition` | records behind the partition's end |
//! | `modsignal_input_event_time_lag_seconds` | gauge | `topic`, `partition` | event time by which an input partition is behind the newest one, as the engines follow them (routing, or a watermark topic) |
//! | `modsignal_partitions_paused` | gauge | `stage` | input partitions paused because their event time ran ahead of the slowest |
//! | `modsignal_event_to_flag_latency_seconds` | histogram | | wall time from an input record's timestamp to its flag's acknowledgement |
//! | `modsignal_watermark_timestamp_seconds` | gauge | | the lowest event-time watermark of the partitions held |
//! | `modsignal_output_unacknowledged_records` | gauge | | records produced and not yet acknowledged |
//! | `modsignal_output_resent_total` | counter | | records sent again after a failed delivery |
//! | `modsignal_output_transactions_total` | counter | `result` | with exactly-once, transactions `committed` or `aborted` |
//! | `modsignal_output_producers_renewed_total` | counter | | with exactly-once, transactional producers replaced after a fatal error |
//! | `modsignal_http_requests_total` | counter | `route`, `code` | requests answered, by route template and status code |
//! | `modsignal_http_request_duration_seconds` | histogram | `route` | time to answer |
//! | `modsignal_api_ready` | gauge | | 1 when the store is ready (`/readyz` answers 200) |
//! | `modsignal_api_flags` | gauge | | flags in the API's store |
//! | `modsignal_api_raised_flags` | gauge | | flags with a raised revision |
//! | `modsignal_api_flag_revisions` | gauge | | revisions kept |
//! | `modsignal_api_flags_ingested_total` | counter | | flag revisions stored |
//! | `modsignal_api_flags_duplicate_total` | counter | | flag revisions received again (nothing changed) |
//! | `modsignal_api_flags_rejected_total` | counter | | flags refused as not following the contract |
//! | `modsignal_api_revisions_thinned_total` | counter | | revisions dropped to keep each flag's history within its cap |
//! | `process_*` | | | CPU, memory, open files (Linux) |

pub mod http;

use std::fmt;
use std::sync::Arc;

use modsignal_core::event::{Category, RemovedBy};
use modsignal_core::model::RemovalKind;
use modsignal_core::{Flag, Outcome, RejectCode, StateStats};
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// The event types of the version-1 contract, the values of the `type` label.
pub const EVENT_TYPES: [&str; 9] = [
    "post",
    "reshare",
    "delete",
    "restrict",
    "restore",
    "label",
    "report",
    "impressions",
    "account",
];

/// The values of the `removal` label of `modsignal_time_to_removal_seconds`: a delete by whom,
/// or a block (a restriction, whoever imposed it).
pub const REMOVALS: [&str; 5] = ["author", "platform", "legal", "unknown", "blocked"];

/// Minutes to weeks: the guidance cares whether a message came down swiftly (minutes to hours)
/// and the retention horizon is a week.
const REMOVAL_BUCKETS: [f64; 14] = [
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0, 172800.0, 345600.0, 604800.0,
    1209600.0,
];
/// Audiences span from a handful of followers to a celebrity's tens of millions.
const REACH_BUCKETS: [f64; 8] = [10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];
const RESTORE_BUCKETS: [f64; 13] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Milliseconds (a flag written with its record) to minutes (a debounced flag, a broker outage).
const LATENCY_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Every metric modsignal exports, registered in one [`Registry`]. Clones share the metrics.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    events: IntCounterVec,
    /// The children of `events` and `flags` for every bounded label value, resolved once: they
    /// are counted for every event and flag, and resolving a label set hashes it and takes a
    /// lock each time.
    events_by_type: [IntCounter; EVENT_TYPES.len()],
    flags_by: [[IntCounter; 2]; Category::ALL.len()],
    /// Resharer cohort pages written, per category, resolved once.
    cohort_pages_by: [IntCounter; Category::ALL.len()],
    rejected: IntCounterVec,
    late: IntCounterVec,
    /// The `engine` child of `late`, resolved once: it is counted per event.
    late_engine: IntCounter,
    duplicates: IntCounter,
    dead_letters: IntCounterVec,
    time_to_removal: HistogramVec,
    reach_at_removal: Histogram,
    state_messages: IntGauge,
    state_reshares: IntGauge,
    state_labelled: IntGauge,
    state_accounts: IntGauge,
    evicted: IntCounter,
    restores: IntCounter,
    restore_duration: Histogram,
    restored_events: IntCounter,
    restoring: IntGauge,
    snapshots: IntCounterVec,
    routed: IntCounter,
    skipped: IntCounterVec,
    partitions: IntGauge,
    lag: IntGaugeVec,
    source_lag: GaugeVec,
    paused: IntGaugeVec,
    latency: Histogram,
    watermark: Gauge,
    unacknowledged: IntGauge,
    resent: IntCounter,
    transactions: IntCounterVec,
    producers_renewed: IntCounter,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Registers a collector built by `make`; the names are fixed here, so a failure is a bug.
fn reg<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, made: prometheus::Result<T>) -> T {
    let metric = made.expect("metric options are valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

fn hist(name: &str, help: &str, buckets: &[f64]) -> HistogramOpts {
    HistogramOpts::new(name, help).buckets(buckets.to_vec())
}

impl Metrics {
    /// A fresh registry with every modsignal metric and, on Linux, the process collector.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let events = reg(
            &r,
            IntCounterVec::new(
                Opts::new("modsignal_events_total", "Events applied, by event type."),
                &["type"],
            ),
        );
        let rejected = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "modsignal_events_rejected_total",
                    "Records that could not be decoded or applied, by reason; set aside, never applied.",
                ),
                &["reason"],
            ),
        );
        let late = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "modsignal_events_late_total",
                    "Events older than the event-time watermark, by stage: the engine applies them all the same, the router routes them all the same.",
                ),
                &["stage"],
            ),
        );
        let late_engine = late.with_label_values(&["engine"]);
        late.with_label_values(&["router"]);
        let duplicates = reg(
            &r,
            IntCounter::new(
                "modsignal_events_duplicate_total",
                "Events dropped as repeats of an event_id already applied.",
            ),
        );
        let dead_letters = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "modsignal_dead_letters_total",
                    "Records the dead-letter topic acknowledged, by reason.",
                ),
                &["reason"],
            ),
        );
        let flags = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "modsignal_flags_emitted_total",
                    "Flag revisions written, by category, track and whether the flag is raised.",
                ),
                &["category", "track", "raised"],
            ),
        );
        let cohort_pages = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "modsignal_cohort_pages_emitted_total",
                    "Resharer cohort pages written (modsignal.cohort/1), by category.",
                ),
                &["category"],
            ),
        );
        let time_to_removal = reg(
            &r,
            HistogramVec::new(
                hist(
                    "modsignal_time_to_removal_seconds",
                    "Event time from a message's (or reshare's) posting to its first removal, by who removed it (a delete) or `blocked` (access restricted).",
                    &REMOVAL_BUCKETS,
                ),
                &["removal"],
            ),
        );
        let reach_at_removal = reg(
            &r,
            Histogram::with_opts(hist(
                "modsignal_reach_at_removal_accounts",
                "Audience (author's and resharers' followers) of a labelled message at its first removal.",
                &REACH_BUCKETS,
            )),
        );
        let state_messages = reg(&r, IntGauge::new("modsignal_state_messages", "Messages held in state."));
        let state_reshares = reg(&r, IntGauge::new("modsignal_state_reshares", "Reshares held in state."));
        let state_labelled = reg(
            &r,
            IntGauge::new(
                "modsignal_state_labelled_messages",
                "Labelled messages held in state (those with flags).",
            ),
        );
        let state_accounts = reg(&r, IntGauge::new("modsignal_state_accounts", "Accounts held in state."));
        let evicted = reg(
            &r,
            IntCounter::new(
                "modsignal_state_evicted_messages_total",
                "Messages dropped from state after the retention horizon.",
            ),
        );
        let restores = reg(
            &r,
            IntCounter::new(
                "modsignal_state_restores_total",
                "Partition states rebuilt after an assignment.",
            ),
        );
        let restore_duration = reg(
            &r,
            Histogram::with_opts(hist(
                "modsignal_state_restore_duration_seconds",
                "How long rebuilding one partition's state took.",
                &RESTORE_BUCKETS,
            )),
        );
        let restored_events = reg(
            &r,
            IntCounter::new(
                "modsignal_state_restored_events_total",
                "Events read to rebuild partition states.",
            ),
        );
        let restoring = reg(
            &r,
            IntGauge::new(
                "modsignal_state_restores_in_progress",
                "Assigned partitions whose state is being rebuilt (not processed yet).",
            ),
        );
        let snapshots = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "modsignal_state_snapshots_total",
                    "Snapshots of a partition's state written, by store (local directory or changelog topic) and result.",
                ),
                &["store", "result"],
            ),
        );
        let routed = reg(
            &r,
            IntCounter::new(
                "modsignal_routed_events_total",
                "Events the router sent to the repartition topic (an account event counts once, however many partitions it goes to).",
            ),
        );
        let skipped = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "modsignal_records_skipped_total",
                    "Platform records that stand for no event, by reason (heartbeats, other collections, limit notices, ...).",
                ),
                &["reason"],
            ),
        );
        let partitions = reg(
            &r,
            IntGauge::new(
                "modsignal_partitions_assigned",
                "Input partitions this instance holds with their state ready.",
            ),
        );
        let lag = reg(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "modsignal_consumer_lag_records",
                    "Records between the consumer's position and the end of the partition, as librdkafka last measured.",
                ),
                &["topic", "partition"],
            ),
        );
        let latency = reg(
            &r,
            Histogram::with_opts(hist(
                "modsignal_event_to_flag_latency_seconds",
                "Wall time from an input record's timestamp to the broker's acknowledgement of a flag it caused (flags of a debounced flush are timed from their partition's newest record).",
                &LATENCY_BUCKETS,
            )),
        );
        let watermark = reg(
            &r,
            Gauge::new(
                "modsignal_watermark_timestamp_seconds",
                "The lowest event-time watermark of the partitions held, in seconds since the epoch.",
            ),
        );
        let source_lag = reg(
            &r,
            GaugeVec::new(
                Opts::new(
                    "modsignal_input_event_time_lag_seconds",
                    "Event time by which an input partition is behind the newest input partition, as the engines follow them.",
                ),
                &["topic", "partition"],
            ),
        );
        let paused = reg(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "modsignal_partitions_paused",
                    "Input partitions paused because their event time ran ahead of the slowest one, by stage.",
                ),
                &["stage"],
            ),
        );
        for stage in ["engine", "router"] {
            paused.with_label_values(&[stage]);
        }
        let unacknowledged = reg(
            &r,
            IntGauge::new(
                "modsignal_output_unacknowledged_records",
                "Flag and dead-letter records produced and not yet acknowledged by the broker.",
            ),
        );
        let resent = reg(
            &r,
            IntCounter::new(
                "modsignal_output_resent_total",
                "Records produced again after a failed delivery.",
            ),
        );
        let transactions = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "modsignal_output_transactions_total",
                    "With exactly-once, transactions of output and input offsets, by result (committed or aborted).",
                ),
                &["result"],
            ),
        );
        for result in ["committed", "aborted"] {
            transactions.with_label_values(&[result]);
        }
        let producers_renewed = reg(
            &r,
            IntCounter::new(
                "modsignal_output_producers_renewed_total",
                "With exactly-once, transactional producers replaced after a fatal error (the partitions are then rebuilt from what was committed).",
            ),
        );
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("the process collector is registered once");

        let events_by_type = EVENT_TYPES.map(|t| events.with_label_values(&[t]));
        // The `reason` label's values are the closed list of reject codes, every one of them
        // registered up front.
        for code in RejectCode::ALL {
            rejected.with_label_values(&[code.as_str()]);
            dead_letters.with_label_values(&[code.as_str()]);
        }
        let flags_by = Category::ALL.map(|c| {
            ["false", "true"].map(|raised| flags.with_label_values(&[c.as_str(), c.track().as_str(), raised]))
        });
        let cohort_pages_by = Category::ALL.map(|c| cohort_pages.with_label_values(&[c.as_str()]));
        for store in ["local", "changelog"] {
            for result in ["ok", "failed"] {
                snapshots.with_label_values(&[store, result]);
            }
        }
        for removal in REMOVALS {
            time_to_removal.with_label_values(&[removal]);
        }
        Metrics {
            inner: Arc::new(Inner {
                registry: r,
                events,
                events_by_type,
                flags_by,
                cohort_pages_by,
                rejected,
                late,
                late_engine,
                duplicates,
                dead_letters,
                time_to_removal,
                reach_at_removal,
                state_messages,
                state_reshares,
                state_labelled,
                state_accounts,
                evicted,
                restores,
                restore_duration,
                restored_events,
                restoring,
                snapshots,
                routed,
                skipped,
                partitions,
                lag,
                source_lag,
                paused,
                latency,
                watermark,
                unacknowledged,
                resent,
                transactions,
                producers_renewed,
            }),
        }
    }

    /// The registry, to serve or to add an adapter's own metrics to.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.inner.registry.gather(), &mut buf)
            .expect("writing to a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }

    /// One event applied: its type (see [`modsignal_core::EventKind::type_name`]) and what the
    /// engine reported.
    pub fn applied(&self, type_name: &'static str, outcome: &Outcome) {
        let i = &self.inner;
        match EVENT_TYPES.iter().position(|&t| t == type_name) {
            Some(ix) => i.events_by_type[ix].inc(),
            None => i.events.with_label_values(&[type_name]).inc(),
        }
        if outcome.late {
            i.late_engine.inc();
        }
        if outcome.duplicate {
            i.duplicates.inc();
        }
        if let Some(r) = outcome.removal {
            let label = match (r.kind, r.by) {
                (RemovalKind::Blocked, _) => "blocked",
                (_, by) => by_label(by),
            };
            i.time_to_removal
                .with_label_values(&[label])
                .observe(r.seconds_up as f64);
            if let Some(a) = r.audience {
                i.reach_at_removal.observe(a as f64);
            }
        }
    }

    /// A record set aside, by its reason code.
    pub fn rejected(&self, code: RejectCode) {
        self.inner.rejected.with_label_values(&[code.as_str()]).inc();
    }

    /// A dead letter acknowledged by the broker.
    pub fn dead_letter(&self, code: RejectCode) {
        self.inner.dead_letters.with_label_values(&[code.as_str()]).inc();
    }

    /// A flag revision written.
    pub fn flag(&self, flag: &Flag) {
        self.flag_written(flag.category, flag.raised);
    }

    /// A flag revision written, by its category and whether it is raised.
    pub fn flag_written(&self, category: Category, raised: bool) {
        self.inner.flags_by[category.index()][usize::from(raised)].inc();
    }

    /// A resharer cohort page written, by its category.
    pub fn cohort_page(&self, category: Category) {
        self.inner.cohort_pages_by[category.index()].inc();
    }

    /// What the engines hold now, summed over the partitions held.
    pub fn state(&self, stats: impl IntoIterator<Item = StateStats>) {
        let (mut messages, mut reshares, mut labelled, mut accounts, mut evicted) = (0, 0, 0, 0, 0u64);
        let mut watermark: Option<i64> = None;
        for s in stats {
            messages += s.messages;
            reshares += s.reshares;
            labelled += s.labelled;
            accounts += s.users;
            evicted += s.evicted;
            if let Some(w) = s.watermark {
                watermark = Some(watermark.map_or(w.0, |m: i64| m.min(w.0)));
            }
        }
        let i = &self.inner;
        i.state_messages.set(messages as i64);
        i.state_reshares.set(reshares as i64);
        i.state_labelled.set(labelled as i64);
        i.state_accounts.set(accounts as i64);
        // Engines report evictions since they were created; the counter follows the total
        // and never goes down (an engine dropped with its partition keeps what it counted).
        let seen = i.evicted.get();
        if evicted > seen {
            i.evicted.inc_by(evicted - seen);
        }
        if let Some(w) = watermark {
            i.watermark.set(w as f64 / 1000.0);
        }
    }

    /// A partition's state is being rebuilt.
    pub fn restore_started(&self) {
        self.inner.restoring.inc();
    }

    /// A partition's state was rebuilt (or the rebuild was given up, with `events` read so far).
    pub fn restore_finished(&self, seconds: f64, events: u64) {
        let i = &self.inner;
        i.restoring.dec();
        i.restores.inc();
        i.restore_duration.observe(seconds);
        i.restored_events.inc_by(events);
    }

    /// A snapshot written to `store` (`local` or `changelog`), or not.
    pub fn snapshot(&self, store: &'static str, ok: bool) {
        self.inner
            .snapshots
            .with_label_values(&[store, if ok { "ok" } else { "failed" }])
            .inc();
    }

    /// Events the router sent on.
    pub fn routed(&self, events: usize) {
        self.inner.routed.inc_by(events as u64);
    }

    /// A platform record that stands for no event, by its reason code.
    pub fn skipped(&self, reason: &'static str) {
        self.inner.skipped.with_label_values(&[reason]).inc();
    }

    /// Input partitions held with their state ready.
    pub fn partitions_assigned(&self, n: usize) {
        self.inner.partitions.set(n as i64);
    }

    /// The consumer lag of one partition, as librdkafka's statistics report it.
    pub fn consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.inner
            .lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
    }

    /// Events the router read behind its input partition's own event time by more than the
    /// lateness bound.
    pub fn router_late(&self, n: u64) {
        if n > 0 {
            self.inner.late.with_label_values(&["router"]).inc_by(n);
        }
    }

    /// How far behind the newest input partition one input partition's event time is, in
    /// seconds; `source` is `topic/partition`.
    pub fn source_lag(&self, source: &str, seconds: f64) {
        let (topic, partition) = source.rsplit_once('/').unwrap_or((source, ""));
        self.inner
            .source_lag
            .with_label_values(&[topic, partition])
            .set(seconds.max(0.0));
    }

    /// Input partitions of a stage paused to read in event-time order.
    pub fn partitions_paused(&self, stage: &str, n: usize) {
        self.inner.paused.with_label_values(&[stage]).set(n as i64);
    }

    /// A partition no longer held: its lag series goes, so a stale value does not linger.
    pub fn forget_partition(&self, topic: &str, partition: i32) {
        let _ = self.inner.lag.remove_label_values(&[topic, &partition.to_string()]);
    }

    /// One flag acknowledged `seconds` after the input record that caused it.
    pub fn event_to_flag(&self, seconds: f64) {
        self.inner.latency.observe(seconds.max(0.0));
    }

    pub fn unacknowledged(&self, n: usize) {
        self.inner.unacknowledged.set(n as i64);
    }

    pub fn resent(&self) {
        self.inner.resent.inc();
    }

    /// A transactional producer replaced after a fatal error.
    pub fn producer_renewed(&self) {
        self.inner.producers_renewed.inc();
    }

    /// A transaction committed, or aborted.
    pub fn transaction(&self, committed: bool) {
        self.inner
            .transactions
            .with_label_values(&[if committed { "committed" } else { "aborted" }])
            .inc();
    }
}

fn by_label(by: RemovedBy) -> &'static str {
    match by {
        RemovedBy::Author => "author",
        RemovedBy::Platform => "platform",
        RemovedBy::Legal => "legal",
        RemovedBy::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {

    /// Every reason a decoder or the engine can give is pre-registered, so the metric's label
    /// set is closed and a dashboard sees zeros rather than missing series.
    #[test]
    fn every_reject_code_is_registered_up_front() {
        let text = Metrics::new().render();
        for code in modsignal_core::RejectCode::ALL {
            for metric in ["modsignal_events_rejected_total", "modsignal_dead_letters_total"] {
                let series = format!("{metric}{{reason=\"{code}\"}} 0");
                assert!(text.contains(&series), "{series}");
            }
        }
    }

    use super::*;
    use modsignal_core::{Engine, Policy, decode};

    /// Feeds the engine and the metrics the way the adapters do.
    fn run(lines: &[&str]) -> Metrics {
        let m = Metrics::new();
        let mut engine = Engine::new(Policy::default());
        let mut out = Vec::new();
        for line in lines {
            match decode(line.as_bytes()) {
                Ok(ev) => match engine.apply(&ev, &mut out) {
                    Ok(o) => m.applied(ev.kind.type_name(), &o),
                    Err(e) => m.rejected(e.code()),
                },
                Err(e) => m.rejected(e.code()),
            }
        }
        engine.finish(&mut out);
        for f in &out {
            m.flag(f);
        }
        m.state([engine.stats()]);
        m
    }

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn each_flag_is_counted_under_its_own_category_track_and_raised() {
        let m = Metrics::new();
        m.flag_written(Category::CommunicationsOffence, false);
        m.flag_written(Category::CommunicationsOffence, false);
        m.flag_written(Category::CourtOrderBreach, true);
        let text = m.render();
        let series = |c: Category, raised: bool| {
            format!(
                r#"modsignal_flags_emitted_total{{category="{}",raised="{raised}",track="{}"}}"#,
                c.as_str(),
                c.track().as_str()
            )
        };
        for c in Category::ALL {
            for raised in [false, true] {
                let expected = match (c, raised) {
                    (Category::CommunicationsOffence, false) => 2.0,
                    (Category::CourtOrderBreach, true) => 1.0,
                    _ => 0.0,
                };
                assert_eq!(value(&text, &series(c, raised)), expected, "{c:?} raised={raised}");
            }
        }
    }

    #[test]
    fn events_flags_removals_and_state_are_counted() {
        let m = run(&[
            r#"{"type":"post","at":"2026-01-01T00:00:00Z","id":"m","author":{"id":"a","followers":1000}}"#,
            r#"{"type":"reshare","at":"2026-01-01T00:01:00Z","id":"r","of":"m","author":{"id":"b","followers":500}}"#,
            r#"{"type":"label","at":"2026-01-01T00:02:00Z","id":"m","category":"credible_threat","source":"c"}"#,
            r#"{"type":"delete","at":"2026-01-01T01:00:00Z","id":"m","by":"platform"}"#,
            // A second event at 01:00: event time is the newest time seen in two events.
            r#"{"type":"impressions","at":"2026-01-01T01:00:00Z","id":"m","count":10}"#,
            r#"{"type":"post","at":"2026-01-01T00:00:00Z","id":"m","author":{"id":"a","followers":1000}}"#,
            r#"{"type":"nonsense","at":"2026-01-01T00:00:00Z"}"#,
            "{not json",
        ]);
        let text = m.render();
        assert_eq!(value(&text, r#"modsignal_events_total{type="post"}"#), 2.0);
        assert_eq!(value(&text, r#"modsignal_events_total{type="delete"}"#), 1.0);
        assert_eq!(value(&text, r#"modsignal_events_total{type="account"}"#), 0.0);
        assert_eq!(
            value(&text, r#"modsignal_events_rejected_total{reason="unknown_type"}"#),
            1.0
        );
        assert_eq!(
            value(&text, r#"modsignal_events_rejected_total{reason="invalid_json"}"#),
            1.0
        );
        assert_eq!(
            value(&text, r#"modsignal_events_late_total{stage="engine"}"#),
            1.0,
            "the repeated post is late"
        );
        assert_eq!(
            value(&text, r#"modsignal_time_to_removal_seconds_count{removal="platform"}"#),
            1.0
        );
        assert_eq!(
            value(&text, r#"modsignal_time_to_removal_seconds_sum{removal="platform"}"#),
            3600.0
        );
        assert_eq!(
            value(
                &text,
                r#"modsignal_time_to_removal_seconds_bucket{removal="platform",le="1800"}"#
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                r#"modsignal_time_to_removal_seconds_bucket{removal="platform",le="3600"}"#
            ),
            1.0
        );
        assert_eq!(value(&text, "modsignal_reach_at_removal_accounts_sum"), 1500.0);
        assert!(
            value(
                &text,
                r#"modsignal_flags_emitted_total{category="credible_threat",raised="true",track="robust"}"#
            ) >= 1.0
        );
        assert_eq!(value(&text, "modsignal_state_messages"), 1.0);
        assert_eq!(value(&text, "modsignal_state_reshares"), 1.0);
        assert_eq!(value(&text, "modsignal_state_labelled_messages"), 1.0);
        assert_eq!(value(&text, "modsignal_watermark_timestamp_seconds"), 1_767_229_200.0);
    }

    #[test]
    fn names_follow_the_prometheus_rules_and_labels_carry_no_ids() {
        let m = run(&[
            r#"{"type":"post","at":"2026-01-01T00:00:00Z","id":"secret-message","author":{"id":"secret-user"}}"#,
        ]);
        m.consumer_lag("events", 3, 12);
        m.event_to_flag(0.2);
        let text = m.render();
        assert!(!text.contains("secret"), "an id reached a label:\n{text}");
        #[cfg(target_os = "linux")]
        assert!(
            text.contains("process_resident_memory_bytes "),
            "the process collector runs"
        );
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut parts = line.split_whitespace().skip(2);
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(
                name.starts_with("modsignal_") || name.starts_with("process_"),
                "{name} lacks the modsignal_ prefix"
            );
            assert_eq!(kind == "counter", name.ends_with("_total"), "{name} is a {kind}");
            assert!(
                !name.contains("millis") && !name.contains("_ms"),
                "{name} is not in base units"
            );
        }
        assert_eq!(
            value(&text, r#"modsignal_consumer_lag_records{partition="3",topic="events"}"#),
            12.0
        );
        m.forget_partition("events", 3);
        assert!(!m.render().contains("modsignal_consumer_lag_records{"));
    }

    #[test]
    fn restores_are_timed_and_the_gauge_returns_to_zero() {
        let m = Metrics::new();
        m.restore_started();
        m.restore_started();
        assert_eq!(value(&m.render(), "modsignal_state_restores_in_progress"), 2.0);
        m.restore_finished(0.5, 100);
        m.restore_finished(1.5, 50);
        let text = m.render();
        assert_eq!(value(&text, "modsignal_state_restores_in_progress"), 0.0);
        assert_eq!(value(&text, "modsignal_state_restores_total"), 2.0);
        assert_eq!(value(&text, "modsignal_state_restored_events_total"), 150.0);
        assert_eq!(value(&text, "modsignal_state_restore_duration_seconds_sum"), 2.0);
    }
}
