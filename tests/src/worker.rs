//! The Kafka worker run inside a test, against a [`Broker`](crate::broker::Broker): the topic
//! names and the short-timer configuration the tests share, simulated input, the logs, a handle
//! on a worker running in the background, and a reader of the flags it wrote.
//!
//! Both Kafka test files (`tests/kafka.rs` and `tests/kafka_failures.rs`) used to carry their own
//! copies of these, which had started to drift apart: the failure tests had learnt to name each
//! worker in its log lines and to check a status that was already there before waiting for the
//! next one. One copy keeps every test on the same, better-behaved harness.

use std::collections::BTreeMap;
use std::time::Duration;

use modsignal_core::Policy;
use modsignal_kafka::{Hooks, WorkerConfig, WorkerError, WorkerStatus, WorkerSummary, run_with};
use modsignal_metrics::Metrics;
use modsignal_sim::{SimConfig, Simulator};
use rdkafka::message::Message;
use tokio::sync::{oneshot, watch};
use tracing::Instrument;

use crate::broker::Broker;

/// The input topic of [`config`].
pub const INPUT: &str = "events";
/// The output topic of [`config`], where the flags go.
pub const OUTPUT: &str = "flags";
/// The dead-letter topic of [`config`].
pub const DEAD: &str = "dead-letters";
/// The changelog topic the snapshot tests add to [`config`]; it is not set by default, because
/// most tests are about replay, not snapshots.
pub const CHANGELOG: &str = "changelog";

/// Sends the logs of in-process workers and librdkafka to the test's captured output, so that
/// they are shown when a test fails; `MODSIGNAL_LOG` filters them (default `info`). Every test
/// calls it: whichever comes first in the test process installs the subscriber.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MODSIGNAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Simulated traffic at 10 events per second of event time, one world per seed: a flag revision
/// every dozen events or so, with duplicates and bounded reordering.
pub fn simulated(events: u64, seed: u64) -> Vec<String> {
    Simulator::new(SimConfig {
        events,
        seed,
        events_per_sec: 10.0,
        ..SimConfig::default()
    })
    .map(|e| e.to_json())
    .collect()
}

/// An in-process worker's configuration on [`INPUT`], [`OUTPUT`] and [`DEAD`] in the broker
/// handle's namespace, in its group `group`: short timers, so that tests settle quickly. A
/// test that sets more topics names them with [`Broker::topic`].
pub fn config(broker: &Broker, group: &str) -> WorkerConfig {
    let mut c = WorkerConfig::new(broker.addr(), vec![broker.topic(INPUT)], Policy::default());
    c.group_id = broker.group(group);
    c.output_topic = broker.topic(OUTPUT);
    c.dead_letter_topic = broker.topic(DEAD);
    c.flush_interval = Duration::from_millis(200);
    // Long enough that a pause in fetching never looks like the end of the input.
    c.idle_after = Duration::from_secs(3);
    c.shutdown_timeout = Duration::from_secs(20);
    c
}

/// A worker running in the background, in this process. Tests wait on its published status
/// rather than on the clock, and stop it as the binary does on SIGTERM.
pub struct Running {
    /// Names the worker on each of its log lines and in failure messages, so that the logs of
    /// several instances in one test can be told apart.
    pub name: &'static str,
    /// The newest status the worker published (at every flush tick).
    pub status: watch::Receiver<WorkerStatus>,
    task: tokio::task::JoinHandle<Result<WorkerSummary, WorkerError>>,
    stop: oneshot::Sender<()>,
    /// How long any one wait for a status may take before the test fails: each test file keeps
    /// its own, as the time its runs need differs.
    timeout: Duration,
}

impl Running {
    /// Starts a worker that counts what it does in a registry of its own.
    pub fn start(name: &'static str, config: WorkerConfig, timeout: Duration) -> Running {
        Running::start_with(name, config, timeout, None)
    }

    /// Starts a worker that counts what it does in `metrics`, for tests that read them.
    pub fn start_with_metrics(
        name: &'static str,
        config: WorkerConfig,
        timeout: Duration,
        metrics: Metrics,
    ) -> Running {
        Running::start_with(name, config, timeout, Some(metrics))
    }

    fn start_with(name: &'static str, config: WorkerConfig, timeout: Duration, metrics: Option<Metrics>) -> Running {
        let (status_tx, status) = watch::channel(WorkerStatus::default());
        let (stop, stop_rx) = oneshot::channel::<()>();
        let hooks = Hooks {
            status: Some(status_tx),
            metrics,
        };
        // The span names the worker on each of its log lines.
        let task = tokio::spawn(
            run_with(
                config,
                async {
                    let _ = stop_rx.await;
                },
                hooks,
            )
            .instrument(tracing::info_span!("worker", name)),
        );
        Running {
            name,
            status,
            task,
            stop,
            timeout,
        }
    }

    /// Waits until the worker's status satisfies `ready` (`what` says what that is, for the
    /// failure message). A status already there counts: it is checked before waiting for the
    /// next one, so that a worker that got there before the call is not waited on for a tick.
    ///
    /// # Panics
    /// When the worker stops by itself first, or does not get there within its timeout; the
    /// message carries its last status and the end of the broker's log.
    pub async fn wait_for(&mut self, broker: &Broker, what: &str, ready: impl Fn(&WorkerStatus) -> bool) {
        let reached = async {
            loop {
                if ready(&self.status.borrow_and_update()) {
                    return true;
                }
                if self.status.changed().await.is_err() {
                    return false;
                }
            }
        };
        match tokio::time::timeout(self.timeout, reached).await {
            Ok(true) => {}
            Ok(false) => panic!("worker {} stopped by itself: {:?}", self.name, (&mut self.task).await),
            Err(elapsed) => panic!(
                "worker {} did not get to {what} ({elapsed}) within {:?}; last status: {:?}\n--- broker log ---\n{}",
                self.name,
                self.timeout,
                *self.status.borrow(),
                broker.log_tail()
            ),
        }
    }

    /// Waits until the worker has committed `end` on partition 0 of [`INPUT`] and settled
    /// (quiet, finished, everything acknowledged and committed).
    pub async fn settle(&mut self, broker: &Broker, end: i64) {
        let key = (broker.topic(INPUT), 0);
        self.wait_for(broker, &format!("commit offset {end} and settle"), |s| {
            s.settled && s.committed.get(&key) == Some(&end)
        })
        .await;
    }

    /// Signals shutdown and returns the worker's summary.
    ///
    /// # Panics
    /// When the worker does not stop within a minute, panics, or ends with an error.
    pub async fn stop(self) -> WorkerSummary {
        self.stop.send(()).expect("the worker is running");
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the worker shuts down within a minute")
            .expect("the worker task does not panic")
            .expect("the worker ends without error")
    }

    /// Signals shutdown and waits at most `bound` for the worker to end, whatever its result:
    /// for stops whose promise is an end in bounded time rather than a clean one.
    ///
    /// # Panics
    /// When the worker is still running after `bound`, or panics.
    pub async fn stop_within(self, bound: Duration) -> Result<WorkerSummary, WorkerError> {
        self.stop.send(()).expect("the worker is running");
        tokio::time::timeout(bound, self.task)
            .await
            .unwrap_or_else(|_| panic!("worker {} did not stop within {bound:?}", self.name))
            .expect("the worker task does not panic")
    }

    /// Whether the worker has ended (by itself, unless it was stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Ends the worker as a crash would: its task is aborted, with no drain, no final commit or
    /// snapshot, and no goodbye to the group.
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Every flag record on [`OUTPUT`], in the order of each partition, as (`flag_id`, revision, JSON
/// text). Resharer cohort pages, which share the topic, are left out (see [`cohort_records`]).
///
/// # Panics
/// When a record is neither a flag keyed by its `flag_id` nor a cohort page keyed by its cohort
/// and page.
pub async fn flag_records(broker: &Broker) -> Vec<(String, u64, String)> {
    flag_records_from(broker, OUTPUT).await
}

/// [`flag_records`] of any output topic.
pub async fn flag_records_from(broker: &Broker, topic: &str) -> Vec<(String, u64, String)> {
    output_records(broker, topic).await.0
}

/// Every resharer cohort page on [`OUTPUT`], as (`cohort_id/page`, revision, JSON text).
pub async fn cohort_records(broker: &Broker) -> Vec<(String, u64, String)> {
    output_records(broker, OUTPUT).await.1
}

/// The newest revision of each flag and of each resharer cohort page on [`OUTPUT`], as JSON
/// text by `flag_id` and by `cohort_id/page`, after checking that a record written more than
/// once under one revision was identical each time.
pub async fn newest_output(broker: &Broker) -> BTreeMap<String, String> {
    let (flags, cohorts) = output_records(broker, OUTPUT).await;
    assert_repeats_identical(&flags);
    assert_repeats_identical(&cohorts);
    let mut all = newest(&flags);
    all.extend(newest(&cohorts));
    all
}

/// The flags and the cohort pages of an output topic, each checked to be keyed as it should.
async fn output_records(broker: &Broker, topic: &str) -> (Vec<(String, u64, String)>, Vec<(String, u64, String)>) {
    let (mut flags, mut cohorts) = (Vec::new(), Vec::new());
    for m in broker.read_all(topic).await {
        let key = String::from_utf8(m.key().expect("flags are keyed").to_vec()).unwrap();
        let text = String::from_utf8(m.payload().expect("flags have a value").to_vec()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).expect("flags are JSON");
        let rev = v["revision"].as_u64().expect("revision");
        if v["schema"] == "modsignal.cohort/1" {
            let page: modsignal_core::Cohort = serde_json::from_str(&text).expect("a cohort page");
            assert_eq!(page.key(), key, "a cohort page is keyed by its cohort and page");
            cohorts.push((key, rev, text));
            continue;
        }
        assert_eq!(
            v["flag_id"].as_str(),
            Some(key.as_str()),
            "a flag is keyed by its flag_id"
        );
        flags.push((key, rev, text));
    }
    (flags, cohorts)
}

/// The newest revision of each flag among `records`, as JSON text by `flag_id`: what a consumer
/// that keeps the highest revision sees.
pub fn newest(records: &[(String, u64, String)]) -> BTreeMap<String, String> {
    let mut newest: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
    for (id, rev, text) in records {
        match newest.get(id.as_str()) {
            Some((r, _)) if r >= rev => {}
            _ => {
                newest.insert(id, (*rev, text));
            }
        }
    }
    newest
        .into_iter()
        .map(|(k, (_, t))| (k.to_owned(), t.to_owned()))
        .collect()
}

/// Checks that a flag written more than once under one revision was identical each time, which
/// is what lets consumers drop the repeats that restarts and rebalances produce.
///
/// # Panics
/// With the flag, its revision and both contents, when two differ.
pub fn assert_repeats_identical(records: &[(String, u64, String)]) {
    let mut seen: BTreeMap<(&str, u64), &str> = BTreeMap::new();
    for (id, rev, text) in records {
        if let Some(before) = seen.insert((id, *rev), text) {
            assert_eq!(
                before, text,
                "flag {id} revision {rev} was written twice with different content"
            );
        }
    }
}

/// What differs between the flags file mode expects and those on the topic (both JSON text by
/// `flag_id`), for a failure message; empty when they are equal.
pub fn difference(expected: &BTreeMap<String, String>, got: &BTreeMap<String, String>) -> String {
    let missing: Vec<&String> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    let differ: Vec<String> = expected
        .iter()
        .filter_map(|(k, e)| {
            got.get(k)
                .filter(|g| *g != e)
                .map(|g| format!("  file:  {e}\n  kafka: {g}"))
        })
        .collect();
    if missing.is_empty() && extra.is_empty() && differ.is_empty() {
        return String::new();
    }
    format!(
        "{} flags expected, {} on the topic; {} missing {:?}, {} extra {:?}, {} differ:\n{}",
        expected.len(),
        got.len(),
        missing.len(),
        &missing[..missing.len().min(3)],
        extra.len(),
        &extra[..extra.len().min(3)],
        differ.len(),
        differ[..differ.len().min(2)].join("\n")
    )
}
