//! The Kafka worker through failures, against a real broker (Apache Kafka, started by each test
//! on loopback ports): the real `modsignal` binary killed with SIGKILL at random points and
//! restarted; instances joining and leaving a consumer group mid-run; the broker itself
//! restarted mid-run, and on a three-broker cluster the partitions' leaders killed one after
//! another. Each of these compares the newest revision of every flag on the output
//! topic with what file mode writes for the same events. Two more check how the binary ends:
//! on SIGTERM, on a second signal, past its shutdown deadline, and on an error.
//!
//! Input partitions carry independent simulated traffic (one seed each, whose ids never meet),
//! because the worker keeps one engine per partition and expects events keyed by the message
//! they concern: file mode run over each partition's events gives the expected flags, each
//! partition finished at its own newest event time, or at the newest of all partitions where
//! the workers share event time through a watermark topic (which one more test checks alone).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use modsignal_core::Policy;
use modsignal_kafka::{Guarantee, WorkerStatus};
use modsignal_tests::binary::{modsignal_binary, modsignal_command};
use modsignal_tests::broker::Broker;
use modsignal_tests::worker::{
    CHANGELOG, DEAD, INPUT, OUTPUT, Running, assert_repeats_identical, config, difference, flag_records, init_logs,
    newest, simulated,
};
use modsignal_tests::{final_flags, run_engine};
use rand::{RngExt, SeedableRng};
use tokio::sync::watch;

/// The consumer session timeout of every worker process: a member killed without leaving holds
/// its partitions this long. Short, so that restarts are quick.
const SESSION_TIMEOUT: Duration = Duration::from_secs(3);

/// The topic through which the workers share event time.
const WATERMARKS: &str = "watermarks";

/// The longest a run may take to reach the expected flags once its input is all there, and an
/// in-process worker a status it is waited for.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs a test on a runtime of two threads, like the binary's, and shuts the runtime down
/// without waiting for blocking calls still running: after a failure, a Kafka client may be
/// closing against a broker that is gone, and waiting for it would hang the whole test run.
fn isolated(test: impl std::future::Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(test)));
    runtime.shutdown_background();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// The input of one test: the events of each partition.
struct Input {
    partitions: Vec<Vec<String>>,
}

impl Input {
    fn new(partitions: usize, events: u64, seed: u64) -> Input {
        Input::with_sizes(&vec![events; partitions], seed)
    }

    /// Partitions of `sizes[p]` events each: a short one goes quiet at an earlier event time.
    fn with_sizes(sizes: &[u64], seed: u64) -> Input {
        Input {
            partitions: sizes
                .iter()
                .zip(0u64..)
                .map(|(&events, p)| simulated(events, seed * 100 + p))
                .collect(),
        }
    }

    /// The final flags file mode writes for each partition's events, as JSON text by `flag_id`:
    /// each partition finished at its own newest event time, or, with `shared_time` (a worker
    /// with a watermark topic), at the newest event time of all partitions.
    fn expected(&self, shared_time: bool) -> BTreeMap<String, String> {
        let mut runs: Vec<_> = self
            .partitions
            .iter()
            .map(|lines| {
                let (engine, flags, errors) = run_engine(&Policy::default(), lines);
                assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
                (engine, flags)
            })
            .collect();
        let newest = runs.iter().filter_map(|(e, _)| e.newest_event()).max();
        if let (true, Some(newest)) = (shared_time, newest) {
            for (engine, flags) in &mut runs {
                engine.advance_to(newest, flags);
                engine.finish(flags);
            }
        }
        let mut all = BTreeMap::new();
        for (_, flags) in &runs {
            for (id, f) in final_flags(flags) {
                assert!(
                    all.insert(id, f.to_json()).is_none(),
                    "the partitions' simulated worlds share a flag"
                );
            }
        }
        assert!(all.len() > 100, "too few flags to say anything: {}", all.len());
        all
    }

    /// The end offset of each partition once everything is produced.
    fn ends(&self) -> BTreeMap<i32, i64> {
        self.partitions
            .iter()
            .enumerate()
            .map(|(p, lines)| (p as i32, lines.len() as i64))
            .collect()
    }

    fn total(&self) -> i64 {
        self.partitions.iter().map(|p| p.len() as i64).sum()
    }

    /// Produces the records of `range` (a share of each partition, from 0.0 to 1.0).
    async fn produce(&self, broker: &Broker, from: f64, to: f64) {
        for (p, lines) in self.partitions.iter().enumerate() {
            let (a, b) = ((lines.len() as f64 * from) as usize, (lines.len() as f64 * to) as usize);
            broker.produce_lines_to(INPUT, p as i32, &lines[a..b]).await;
        }
    }
}

async fn create_topics(broker: &Broker, input_partitions: i32) {
    broker.create_topic(INPUT, input_partitions, &[]).await;
    broker.create_topic(OUTPUT, 3, &[]).await;
    broker.create_topic(DEAD, 1, &[]).await;
    broker
        .create_topic(CHANGELOG, input_partitions, &[("cleanup.policy", "compact")])
        .await;
    broker
        .create_topic(WATERMARKS, 1, &[("cleanup.policy", "compact")])
        .await;
}

/// Checks that a `read_committed` reader of the output topic sees each (`flag_id`,
/// `revision`) once: what exactly-once promises.
async fn assert_each_revision_once(broker: &Broker, context: impl Fn() -> String) {
    let records = flag_records(broker).await;
    let mut seen: BTreeMap<(&str, u64), usize> = BTreeMap::new();
    for (id, revision, _) in &records {
        *seen.entry((id.as_str(), *revision)).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} of {} revisions read more than once, such as {:?}:\n{}",
        twice.len(),
        seen.len(),
        &twice[..twice.len().min(5)],
        context()
    );
}

/// The newest revision of each flag on the output topic. Also checks that a flag written more
/// than once under one revision was identical each time: restarts and rebalances write repeats.
async fn newest_flags(broker: &Broker) -> BTreeMap<String, String> {
    let records = flag_records(broker).await;
    assert_repeats_identical(&records);
    newest(&records)
}

/// Waits until the newest flags on the output topic equal `expected` (the workers finish a
/// partition once it is quiet for `idle_after`, so the last revisions come a little after the
/// last record), then returns. Panics with the difference when they do not within
/// [`CONVERGE_TIMEOUT`], `context` saying what else to show.
async fn wait_for_flags(broker: &Broker, expected: &BTreeMap<String, String>, context: impl Fn() -> String) {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let diff = difference(expected, &newest_flags(broker).await);
        if diff.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the newest flags did not reach file mode's within {CONVERGE_TIMEOUT:?}: {diff}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until `group` has committed `ends` on the input topic; `context` says what else to
/// show if it does not.
async fn wait_for_commits(broker: &Broker, group: &str, ends: &BTreeMap<i32, i64>, context: impl Fn() -> String) {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let committed = broker.committed(group, INPUT).await;
        if &committed == ends {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {group} committed {committed:?}, not {ends:?}, within {CONVERGE_TIMEOUT:?}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `modsignal` binary running the Kafka worker as a child process, its log (stderr) kept
/// in a file across restarts.
struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl WorkerProcess {
    fn start(broker: &Broker, group: &str, log: PathBuf, extra: &[&str]) -> WorkerProcess {
        let mut cmd = modsignal_command();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the worker log");
        cmd.args(["run", "--brokers", &broker.addr(), "--input-topic", INPUT])
            .args(["--output-topic", OUTPUT, "--dead-letter-topic", DEAD, "--group", group])
            .args(["--flush-interval", "200ms", "--idle-after", "3s"])
            // A member killed without leaving holds its partitions until its session times
            // out: a short timeout keeps restarts quick.
            .args([
                "--kafka-property",
                &format!("session.timeout.ms={}", SESSION_TIMEOUT.as_millis()),
            ])
            .args(["--kafka-property", "heartbeat.interval.ms=500"])
            .args(extra)
            .stderr(log_file);
        let child = cmd.spawn().expect("start modsignal");
        WorkerProcess { child, log }
    }

    /// Waits until `group` has committed `ends` on the input topic, failing at once if the
    /// process exits.
    async fn wait_for_commits(&mut self, broker: &Broker, group: &str, ends: &BTreeMap<i32, i64>) {
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            let committed = broker.committed(group, INPUT).await;
            if &committed == ends {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("wait for the worker") {
                panic!("the worker exited by itself ({status}):\n{}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "group {group} committed {committed:?}, not {ends:?}, within {CONVERGE_TIMEOUT:?}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no drain, no commit, no goodbye to the group.
    fn kill_9(mut self) {
        self.child.kill().expect("kill the worker");
        self.child.wait().expect("reap the worker");
    }

    fn signal(&self, signal: i32) {
        // SAFETY: `kill` has no memory effects; the pid is our own child, not yet reaped.
        let r = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(r, 0, "kill({signal}) failed");
    }

    /// Waits up to `timeout` for the process to exit.
    async fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the worker") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then up to 30 s for the worker to drain and exit 0.
    async fn stop_cleanly(&mut self) {
        self.signal(libc::SIGTERM);
        let status = self.wait(Duration::from_secs(30)).await;
        assert!(
            status.is_some_and(|s| s.success()),
            "SIGTERM: the worker should drain and exit 0, got {status:?}:\n{}",
            self.log_tail()
        );
    }

    fn log_tail(&self) -> String {
        tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), 6000)
    }

    /// How many lines of the log (every instance's, appended) contain `text`.
    fn log_count(&self, text: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }

    /// Waits until `n` lines of the log contain `text`, failing at once if the process exits.
    async fn wait_for_log(&mut self, text: &str, n: usize) {
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        while self.log_count(text) < n {
            if let Some(status) = self.child.try_wait().expect("wait for the worker") {
                panic!("the worker exited by itself ({status}):\n{}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "the log did not say `{text}` {n} times within {CONVERGE_TIMEOUT:?}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn tail(text: &str, n: usize) -> String {
    let start = text.len().saturating_sub(n);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

fn temp_file(name: &str) -> PathBuf {
    let dir = modsignal_tests::scratch_dir(env!("CARGO_TARGET_TMPDIR"), "kafka-failures");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
fn kill_9_at_random_points_then_restart_ends_with_the_file_mode_flags() {
    isolated(kill_9_at_random_points(Guarantee::AtLeastOnce, "crash", 7));
}

/// The same kills with `processing_guarantee = "exactly_once"`: a `read_committed` consumer of
/// the output topic sees every flag revision exactly once, and the newest are file mode's.
#[test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
fn with_exactly_once_kill_9_at_random_points_writes_every_revision_once() {
    isolated(kill_9_at_random_points(Guarantee::ExactlyOnce, "crash-eos", 8));
}

/// A worker process killed with SIGKILL at random points, four times, then run to the end and
/// stopped with SIGTERM: the newest flags are file mode's, and with exactly-once each
/// (`flag_id`, `revision`) is on the output topic once.
async fn kill_9_at_random_points(guarantee: Guarantee, group: &str, seed: u64) {
    init_logs();
    // Built before the broker starts, so that a build does not eat into the test's timeouts.
    let binary = modsignal_binary();
    assert!(binary.is_file(), "{}", binary.display());
    let broker = Arc::new(Broker::start());
    create_topics(&broker, 2).await;
    let input = Arc::new(Input::new(2, 6_000, seed));
    let expected = input.expected(true);
    let ends = input.ends();
    let log = temp_file(&format!("{group}.log"));
    // As deployed: snapshots in the changelog, and (at least once) in the instance's own
    // directory, which survives its restarts; taken often, so that kills also land around
    // them. Exactly-once keeps snapshots in the changelog alone.
    let state_dir = temp_file(&format!("{group}-state"));
    let state = state_dir.to_str().unwrap();
    let mut args = vec![
        "--shutdown-timeout",
        "10s",
        "--changelog-topic",
        CHANGELOG,
        "--snapshot-interval",
        "500ms",
        "--watermark-topic",
        WATERMARKS,
    ];
    match guarantee {
        Guarantee::AtLeastOnce => args.extend(["--state-dir", state]),
        Guarantee::ExactlyOnce => args.extend(["--processing-guarantee", "exactly_once"]),
    }

    // The input arrives in steps while the worker runs, is killed and restarts, so that kills
    // land in live processing, in a replay or a catch-up after a restart, in startup, and after
    // a quiet spell; the last step comes once the kills are over, so that every kill comes in
    // the middle of the run.
    // Paced to outlast the kills on a slow machine; once they are over, the rest comes at once.
    let steps = 60;
    let (kills_over, mut kills_over_rx) = tokio::sync::watch::channel(false);
    // Records produced so far, and whether the producer is holding the last step back.
    let produced = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let (holding, holding_rx) = tokio::sync::watch::channel(false);
    let producer = {
        let (broker, input, produced) = (broker.clone(), input.clone(), produced.clone());
        tokio::spawn(async move {
            for step in 0..steps {
                if step == steps - 1 {
                    holding.send_replace(true);
                    let _ = kills_over_rx.wait_for(|over| *over).await;
                }
                let (from, to) = (
                    f64::from(step) / f64::from(steps),
                    f64::from(step + 1) / f64::from(steps),
                );
                input.produce(&broker, from, to).await;
                let total: usize = input.partitions.iter().map(|p| (p.len() as f64 * to) as usize).sum();
                produced.store(total as i64, std::sync::atomic::Ordering::Release);
                if !*kills_over_rx.borrow() {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
            }
        })
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b69_6c6c ^ seed);
    let kills = 4;
    let mut worker = WorkerProcess::start(&broker, group, log.clone(), &args);
    let mut replays = 0;
    for i in 0..kills {
        // Every other instance is killed once it has committed something of its own (it is
        // past its replay, processing live), a random moment later, between commits, with
        // flags in flight. The others are killed a random moment after they start: before they
        // join the group, while they replay, or just after.
        let live = i % 2 == 0;
        if live {
            let at_start: i64 = broker.committed(group, INPUT).await.values().sum();
            let deadline = Instant::now() + CONVERGE_TIMEOUT;
            loop {
                let committed: i64 = broker.committed(group, INPUT).await.values().sum();
                // Progress, or nothing left to make progress on until the kills are over (a
                // kill of an idle instance, then).
                let all_in = *holding_rx.borrow() && committed >= produced.load(std::sync::atomic::Ordering::Acquire);
                if committed > at_start || all_in {
                    break;
                }
                if let Some(status) = worker.child.try_wait().unwrap() {
                    panic!("the worker exited by itself ({status}):\n{}", worker.log_tail());
                }
                assert!(
                    Instant::now() < deadline,
                    "the group's commits did not move past {at_start}:\n{}",
                    worker.log_tail()
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        let pause = if live { 0..1_500 } else { 0..8_000 };
        tokio::time::sleep(Duration::from_millis(rng.random_range(pause))).await;
        let committed = broker.committed(group, INPUT).await;
        if committed.values().sum::<i64>() > 0 {
            replays += 1;
        }
        eprintln!("kill -9 number {} with {committed:?} committed", i + 1);
        worker.kill_9();
        worker = WorkerProcess::start(&broker, group, log.clone(), &args);
    }
    kills_over.send_replace(true);
    producer.await.expect("the producer does not panic");
    assert!(
        replays >= kills - 1,
        "only {replays} of {kills} restarts had anything to rebuild: the test did not test much"
    );

    // The last instance runs to the end undisturbed.
    worker.wait_for_commits(&broker, group, &ends).await;
    wait_for_flags(&broker, &expected, || worker.log_tail()).await;
    // Killed once more with everything read, committed and finished, and started again:
    // its partitions are rebuilt from the changelog and the input, and finished again once
    // quiet. Their first finish wrote flags no replay of the input writes (the partitions'
    // last exposure stages), which the second must not write again.
    let rebuilt_before = worker.log_count("state rebuilt by replay");
    worker.kill_9();
    let mut worker = WorkerProcess::start(&broker, group, log.clone(), &args);
    worker
        .wait_for_log("state rebuilt by replay", rebuilt_before + input.partitions.len())
        .await;
    // Quiet for `idle_after` (3 s), then finished, then a few flushes.
    tokio::time::sleep(Duration::from_secs(5)).await;
    worker.stop_cleanly().await;
    // Nothing written while stopping changed the result.
    assert_eq!(difference(&expected, &newest_flags(&broker).await), "");
    assert!(broker.read_all(DEAD).await.is_empty());
    match guarantee {
        Guarantee::AtLeastOnce => {
            // Snapshots were taken along the way (restarts restored from them and replayed
            // only the input after them, as the log says).
            let taken = std::fs::read_dir(&state_dir).map_or(0, std::iter::Iterator::count);
            assert!(taken > 0, "no snapshot in {}", state_dir.display());
        }
        Guarantee::ExactlyOnce => {
            assert_each_revision_once(&broker, || worker.log_tail()).await;
            assert!(
                !broker.read_all(CHANGELOG).await.is_empty(),
                "no snapshot in the changelog"
            );
        }
    }
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_dir_all(&state_dir);
}

#[test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
fn a_worker_that_cannot_go_on_exits_non_zero_with_the_error() {
    isolated(async {
        init_logs();
        let _ = modsignal_binary();
        let broker = Broker::start();
        broker.create_topic(INPUT, 1, &[]).await;
        broker.create_topic(DEAD, 1, &[]).await;
        let log = temp_file("error.log");
        // The output topic was never created: a permanent error, not an outage to wait out.
        let mut worker = WorkerProcess::start(&broker, "error", log.clone(), &[]);
        let status = worker.wait(Duration::from_secs(30)).await;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{text}");
        assert!(
            text.contains("topic `flags` does not exist"),
            "the error is printed:\n{text}"
        );
        let _ = std::fs::remove_file(&log);
    });
}

#[test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
fn sigterm_stops_within_the_shutdown_timeout_and_a_second_signal_at_once() {
    isolated(async {
        init_logs();
        let _ = modsignal_binary();
        let broker = Broker::start();
        create_topics(&broker, 1).await;
        let input = Input::new(1, 2_000, 19);
        input.produce(&broker, 0.0, 1.0).await;
        let log = temp_file("signals.log");

        // A worker that caught up, then a broker that stops answering. Its stop needs the broker
        // only for what is left to commit and for leaving the group, and waits at most
        // LEAVE_TIMEOUT (2 s) for each: with nothing left to do it may not wait at all (a clean
        // CI run once saw it end within 0.8 s). Either way it ends by itself, with status 0,
        // while the broker is still silent.
        let mut worker = WorkerProcess::start(&broker, "signals", log.clone(), &["--shutdown-timeout", "30s"]);
        worker.wait_for_commits(&broker, "signals", &input.ends()).await;
        broker.pause();
        let signalled = Instant::now();
        worker.signal(libc::SIGTERM);
        let status = worker.wait(Duration::from_secs(10)).await;
        let waited = signalled.elapsed();
        broker.resume();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "a caught-up worker stops cleanly against a silent broker:\n{}",
            worker.log_tail()
        );
        assert!(
            waited < Duration::from_secs(6),
            "its stop waited {waited:?} on a silent broker, more than twice LEAVE_TIMEOUT and a margin"
        );

        // A second signal ends a stop that is still waiting, at once. A worker that started
        // against the silent broker is stuck in its first metadata request (10 s) and cannot
        // finish its stop before its shutdown timeout (30 s), so it is surely still stopping
        // when the second signal comes.
        broker.pause();
        let mut worker = WorkerProcess::start(&broker, "signals", log.clone(), &["--shutdown-timeout", "30s"]);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        worker.signal(libc::SIGTERM);
        let stopping = worker.wait(Duration::from_millis(800)).await;
        assert!(
            stopping.is_none(),
            "the worker stopped ({stopping:?}) while stuck on a silent broker:\n{}",
            worker.log_tail()
        );
        let signalled = Instant::now();
        worker.signal(libc::SIGINT);
        let status = worker.wait(Duration::from_secs(5)).await;
        let waited = signalled.elapsed();
        broker.resume();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(128 + libc::SIGINT),
            "a second signal ends the worker at once:\n{}",
            worker.log_tail()
        );
        assert!(waited < Duration::from_secs(2), "the second signal took {waited:?}");

        // A stop that cannot finish ends the process all the same, shutdown_timeout and 5 s after
        // the signal, with status 1: here a worker that started against the hung broker is stuck
        // in its first metadata request (10 s) when it is told to stop.
        broker.pause();
        let mut worker = WorkerProcess::start(&broker, "signals", log.clone(), &["--shutdown-timeout", "1s"]);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let signalled = Instant::now();
        worker.signal(libc::SIGTERM);
        let status = worker.wait(Duration::from_secs(20)).await;
        let waited = signalled.elapsed();
        broker.resume();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(1),
            "a stop that overruns its timeout ends the worker with status 1:\n{}",
            worker.log_tail()
        );
        assert!(
            worker.log_tail().contains("did not stop in time"),
            "status 1 came from the stop's deadline, not an error:\n{}",
            worker.log_tail()
        );
        assert!(
            waited >= Duration::from_secs(6) && waited < Duration::from_secs(9),
            "the worker stopped {waited:?} after the signal, not shutdown_timeout and 5 s"
        );
        let _ = std::fs::remove_file(&log);
    });
}

/// Partitions that two in-process instances claimed at the same time in their published
/// statuses, sampled every 50 ms, for failure messages: a group coordinator that hands a
/// partition to a member while another still holds it breaks every consumer-group application.
/// A status is published once per flush, so an overlap shorter than that can be a stale status.
struct Overlaps {
    watched: Arc<std::sync::Mutex<Vec<Watched>>>,
    seen: Arc<std::sync::Mutex<BTreeMap<(String, i32), Claim>>>,
}

/// An instance's name and its status.
type Watched = (&'static str, watch::Receiver<WorkerStatus>);
/// Who claimed a partition together, and since when (from the start of the test).
type Claim = (String, Duration);

impl Overlaps {
    fn watch() -> Overlaps {
        let overlaps = Overlaps {
            watched: Arc::default(),
            seen: Arc::default(),
        };
        let (watched, seen) = (overlaps.watched.clone(), overlaps.seen.clone());
        let started = Instant::now();
        tokio::spawn(async move {
            // Ends with the test's runtime.
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let mut holders: BTreeMap<(String, i32), Vec<&str>> = BTreeMap::new();
                let watched = watched.lock().unwrap().clone();
                for (name, rx) in &watched {
                    for tp in &rx.borrow().assigned {
                        holders.entry(tp.clone()).or_default().push(name);
                    }
                }
                let mut seen = seen.lock().unwrap();
                for (tp, names) in holders.into_iter().filter(|(_, n)| n.len() > 1) {
                    let entry = seen.entry(tp).or_insert_with(|| (names.join("+"), started.elapsed()));
                    entry.0 = names.join("+");
                }
            }
        });
        overlaps
    }

    fn add(&self, worker: &Running) {
        self.watched.lock().unwrap().push((worker.name, worker.status.clone()));
    }

    fn report(&self) -> String {
        let seen = self.seen.lock().unwrap();
        if seen.is_empty() {
            return "no partition was claimed by two instances at once".into();
        }
        let lines: Vec<String> = seen
            .iter()
            .map(|((t, p), (names, at))| format!("{t}/{p} claimed by {names} from {at:.1?}"))
            .collect();
        format!("partitions claimed by two instances at once: {}", lines.join("; "))
    }
}

/// Produces `input` in `steps` steps, `pause` apart, in the background.
fn produce_in_steps(
    broker: &Arc<Broker>,
    input: &Arc<Input>,
    from: f64,
    to: f64,
    steps: u32,
    pause: Duration,
) -> tokio::task::JoinHandle<()> {
    let (broker, input) = (broker.clone(), input.clone());
    tokio::spawn(async move {
        for step in 0..steps {
            let a = from + (to - from) * f64::from(step) / f64::from(steps);
            let b = from + (to - from) * f64::from(step + 1) / f64::from(steps);
            input.produce(&broker, a, b).await;
            tokio::time::sleep(pause).await;
        }
    })
}

#[test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
fn three_instances_one_joining_one_leaving_mid_run_end_with_the_file_mode_flags() {
    isolated(async {
        init_logs();
        let broker = Arc::new(Broker::start());
        let partitions = 6;
        create_topics(&broker, partitions).await;
        let input = Arc::new(Input::new(partitions as usize, 2_000, 13));
        let expected = input.expected(true);
        let ends = input.ends();
        let group = "rebalance";
        // A partition that changes owner is restored from the changelog and the input after its
        // snapshot, or replayed from its beginning when no snapshot is there yet. The assignment
        // is the default, cooperative-sticky: a rebalance moves only what changes owner.
        let with_changelog = || {
            let mut c = config(&broker, group);
            c.changelog_topic = Some(CHANGELOG.into());
            c.snapshot_interval = Duration::from_millis(500);
            c.watermark_topic = Some(WATERMARKS.into());
            c
        };
        let overlaps = Overlaps::watch();

        input.produce(&broker, 0.0, 0.2).await;
        let mut a = Running::start("a", with_changelog(), CONVERGE_TIMEOUT);
        let mut b = Running::start("b", with_changelog(), CONVERGE_TIMEOUT);
        let mut c = Running::start("c", with_changelog(), CONVERGE_TIMEOUT);
        for w in [&a, &b, &c] {
            overlaps.add(w);
        }
        for w in [&mut a, &mut b, &mut c] {
            w.wait_for(&broker, "hold a partition", |s| !s.assigned.is_empty())
                .await;
        }
        // The rest of the input arrives over a few seconds, while a fourth instance joins and the
        // second leaves: partitions change owner in the middle of their records.
        let producer = produce_in_steps(&broker, &input, 0.2, 1.0, 16, Duration::from_millis(250));
        a.wait_for(&broker, "read some records", |s| s.records > 0).await;
        let mut d = Running::start("d", with_changelog(), CONVERGE_TIMEOUT);
        overlaps.add(&d);
        d.wait_for(&broker, "take partitions over", |s| !s.assigned.is_empty())
            .await;
        let b = b.stop().await;
        producer.await.expect("the producer does not panic");

        wait_for_commits(&broker, group, &ends, || overlaps.report()).await;
        for w in [&mut a, &mut c, &mut d] {
            w.wait_for(&broker, "settle", |s| s.settled).await;
        }
        let held: usize = [&a, &c, &d].iter().map(|w| w.status.borrow().assigned.len()).sum();
        assert_eq!(
            held, partitions as usize,
            "the three remaining instances hold every partition"
        );
        wait_for_flags(&broker, &expected, || overlaps.report()).await;
        let (a, c, d) = (a.stop().await, c.stop().await, d.stop().await);

        assert!(
            d.partitions_assigned > 0,
            "the instance that joined took partitions over: {d:?}"
        );
        assert!(b.records > 0, "the instance that left had work: {b:?}");
        let taken_over: u64 = [&a, &c, &d]
            .iter()
            .map(|s| s.replayed_records + s.snapshots_restored)
            .sum();
        assert!(
            taken_over > 0,
            "partitions changed owner with their state: {a:?} {c:?} {d:?}"
        );
        let read: u64 = [&a, &b, &c, &d].iter().map(|s| s.records).sum();
        assert!(
            read >= input.total() as u64,
            "every record was read at least once: {read}"
        );
        assert!(broker.read_all(DEAD).await.is_empty());
    });
}

/// Runs a worker with a changelog over two input partitions while `failure` strikes the brokers,
/// then checks that the worker read every record, committed every offset and ends with file
/// mode's flags. The worker has read a fifth of the input, whose first `before` share was
/// produced before it started, when `failure` runs; `failure` produces the rest.
async fn survives(
    mut broker: Broker,
    seed: u64,
    group: &str,
    guarantee: Guarantee,
    before: f64,
    failure: impl AsyncFnOnce(&mut Broker, &Input),
) {
    create_topics(&broker, 2).await;
    let input = Input::new(2, 5_000, seed);
    // Without a watermark topic: each partition is finished at its own newest event time.
    let expected = input.expected(false);
    let ends = input.ends();
    let total = input.total() as u64;
    // The default producer settings: idempotent (so `acks=all`), resuming by itself after a
    // broker comes back or a leader moves.
    let mut config = config(&broker, group);
    config.changelog_topic = Some(CHANGELOG.into());
    config.snapshot_interval = Duration::from_millis(500);
    config.processing_guarantee = guarantee;

    input.produce(&broker, 0.0, before).await;
    let mut worker = Running::start("w", config, CONVERGE_TIMEOUT);
    worker
        .wait_for(&broker, "read a fifth of the input", |s| s.records >= total / 5)
        .await;
    failure(&mut broker, &input).await;

    wait_for_commits(&broker, group, &ends, || broker.log_tail()).await;
    worker.wait_for(&broker, "settle", |s| s.settled).await;
    wait_for_flags(&broker, &expected, || broker.log_tail()).await;
    let summary = worker.stop().await;
    assert!(summary.records >= total, "every record was read: {summary:?}");
    assert!(broker.read_all(DEAD).await.is_empty());
    if guarantee == Guarantee::ExactlyOnce {
        assert_each_revision_once(&broker, || format!("{summary:?}")).await;
    }
}

#[test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
fn a_broker_restart_mid_run_is_survived_and_ends_with_the_file_mode_flags() {
    isolated(async {
        init_logs();
        // Mid-run: records read and not all committed, flags in flight, snapshots being written.
        // The broker is killed, stays down a moment, and comes back on the same port with the
        // same data; the rest of the input comes after.
        survives(
            Broker::start(),
            17,
            "outage",
            Guarantee::AtLeastOnce,
            0.6,
            async |broker, input| {
                broker.kill();
                tokio::time::sleep(Duration::from_secs(2)).await;
                broker.start_again();
                input.produce(broker, 0.6, 1.0).await;
            },
        )
        .await;
    });
}

/// Brokers failing one after another under a running worker, as a deployment that survives
/// the loss of a broker sees it: three brokers (each also a `KRaft` controller), every topic with
/// three replicas and `min.insync.replicas` 2, the worker's producer idempotent (so
/// `acks=all`). Mid-run, the leader of the input's, then of the output's, then of the
/// changelog's first partition is killed with SIGKILL and started again a few seconds later,
/// while the rest of the input arrives. The worker recovers by itself (librdkafka follows each
/// leader to its new broker), nothing is lost, and the newest flags read as file mode's.
#[test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
fn on_three_brokers_the_leaders_killed_one_after_another_lose_nothing() {
    isolated(leaders_killed(Guarantee::AtLeastOnce, "leaders", 19));
}

/// The same with exactly-once: transactions go on through the leaders' failures, and a
/// `read_committed` reader sees every flag revision once.
#[test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
fn with_exactly_once_on_three_brokers_the_leaders_killed_write_every_revision_once() {
    isolated(leaders_killed(Guarantee::ExactlyOnce, "leaders-eos", 20));
}

async fn leaders_killed(guarantee: Guarantee, group: &str, seed: u64) {
    init_logs();
    survives(
        Broker::cluster(3),
        seed,
        group,
        guarantee,
        0.4,
        async |broker, input| {
            let steps = [(INPUT, 0.4, 0.6), (OUTPUT, 0.6, 0.8), (CHANGELOG, 0.8, 1.0)];
            for (topic, from, to) in steps {
                let leader = broker
                    .leader(topic, 0)
                    .unwrap_or_else(|| panic!("{topic}/0 has a leader"));
                eprintln!("killing node {leader}, the leader of {topic}/0");
                broker.kill_node(leader);
                input.produce(broker, from, to).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
                broker.start_node_again(leader);
            }
        },
    )
    .await;
}

#[test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
fn with_a_watermark_topic_a_quiet_partition_follows_the_event_time_of_the_others() {
    isolated(async {
        init_logs();
        let broker = Broker::start();
        create_topics(&broker, 3).await;
        // Partition 0's traffic stops hours of event time before the others': its messages that
        // stay up cross further exposure stages only if its watermark follows theirs.
        let input = Input::with_sizes(&[400, 4_000, 4_000], 23);
        let expected = input.expected(true);
        let own_time = input.expected(false);
        let moved: Vec<&String> = expected.keys().filter(|id| expected[*id] != own_time[*id]).collect();
        assert!(
            !moved.is_empty(),
            "the test needs flags that the shared event time changes"
        );
        let group = "watermarks";
        let mut config = config(&broker, group);
        config.watermark_topic = Some(WATERMARKS.into());
        input.produce(&broker, 0.0, 1.0).await;
        let mut worker = Running::start("w", config, CONVERGE_TIMEOUT);
        wait_for_commits(&broker, group, &input.ends(), || broker.log_tail()).await;
        worker.wait_for(&broker, "settle", |s| s.settled).await;
        wait_for_flags(&broker, &expected, || {
            format!("{} flags move with the shared event time", moved.len())
        })
        .await;
        // Each partition published its two newest event times and whether it is read to its end
        // (`PARTITION=NEWEST:SECOND[:idle]`, in ms), keyed by partition; the last of each says
        // it was read to its end at its newest event.
        let published: BTreeMap<String, (Option<i64>, bool)> = broker
            .read_all(WATERMARKS)
            .await
            .iter()
            .map(|m| {
                use rdkafka::Message;
                let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
                let value = std::str::from_utf8(m.payload().unwrap()).unwrap();
                let (source, mark) = value.split_once('=').unwrap();
                assert_eq!(source, key);
                let (mark, idle) = match mark.strip_suffix(":idle") {
                    Some(times) => (times, true),
                    None => (mark, false),
                };
                let newest = mark.split_once(':').unwrap().0;
                (key, ((!newest.is_empty()).then(|| newest.parse().unwrap()), idle))
            })
            .collect();
        assert_eq!(
            published.keys().cloned().collect::<Vec<_>>(),
            (0..3).map(|p| format!("{INPUT}/{p}")).collect::<Vec<_>>()
        );
        for (partition, (newest, idle)) in &published {
            assert!(newest.is_some() && *idle, "{partition} last published {published:?}");
        }
        worker.stop().await;
    });
}

#[test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
fn stopping_while_the_broker_is_silent_ends_in_bounded_time() {
    isolated(async {
        init_logs();
        let broker = Broker::start();
        create_topics(&broker, 2).await;
        let input = Input::new(2, 2_000, 29);
        input.produce(&broker, 0.0, 1.0).await;
        let group = "gone";
        let mut config = config(&broker, group);
        config.shutdown_timeout = Duration::from_secs(2);
        let mut worker = Running::start("w", config, CONVERGE_TIMEOUT);
        worker.wait_for(&broker, "read some records", |s| s.records > 0).await;
        // The broker stops answering with the worker mid-run (its connections stay open, which
        // is worse than a refused one): the drain cannot be acknowledged, and the final commit
        // and the group leave get no answer. The stop waits for each only so long.
        broker.pause();
        let bound = Duration::from_secs(2) + 2 * modsignal_kafka::LEAVE_TIMEOUT + Duration::from_secs(5);
        let started = Instant::now();
        let stopped = worker.stop_within(bound).await;
        eprintln!("stopped in {:?} with the broker silent: {stopped:?}", started.elapsed());
        broker.resume();
    });
}

/// Issue 10's backlog through crashes: a stream keyed by account over four input partitions,
/// spanning weeks, all produced before the worker starts and routed through the repartition
/// topic (of one partition: see `kafka_backlog.rs` for why). The real binary is killed with
/// SIGKILL three times at random points of the backlog and restarted, then stopped, and a second
/// instance with a state directory of its own takes every partition over from the changelog; the
/// newest flags read as file mode's for the whole stream.
///
/// Each restart resumes the router's input partitions from committed offsets inside record
/// batches.
#[test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
fn a_routed_backlog_through_kill_9_and_a_rebalance_ends_with_the_file_mode_flags() {
    isolated(routed_backlog_through_kill_9(Guarantee::AtLeastOnce, "crash-routed"));
}

/// The same with exactly-once: both stages write in transactions (the router its routed events
/// and marks with its input offsets, the engine its flags with the repartition topic's
/// offsets), through the kills, the rebalance that hands the second instance partitions while
/// the first runs, and the first's leaving; every flag revision is read once.
#[test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
fn with_exactly_once_a_routed_backlog_through_kill_9_and_a_rebalance_writes_every_revision_once() {
    isolated(routed_backlog_through_kill_9(
        Guarantee::ExactlyOnce,
        "crash-routed-eos",
    ));
}

async fn routed_backlog_through_kill_9(guarantee: Guarantee, group: &str) {
    use modsignal_tests::backlog::{content_difference, file_mode_flags, partitions, stream};
    init_logs();
    let binary = modsignal_binary();
    assert!(binary.is_file(), "{}", binary.display());
    let broker = Broker::start();
    broker.create_topic(INPUT, 4, &[]).await;
    broker.create_topic(OUTPUT, 3, &[]).await;
    broker.create_topic(DEAD, 1, &[]).await;
    broker.create_topic("routed", 1, &[]).await;
    broker
        .create_topic(CHANGELOG, 4, &[("cleanup.policy", "compact")])
        .await;
    let lines = stream(20_000, 21.0, 13);
    let expected = file_mode_flags(&lines);
    let mut ends = BTreeMap::new();
    for (p, records) in partitions(&lines, &[1.0; 4]).iter().enumerate() {
        let lines: Vec<&str> = records.iter().map(|(_, l)| l.as_str()).collect();
        let offsets = broker.produce_lines_to(INPUT, p as i32, &lines).await;
        ends.insert(p as i32, offsets.last().map_or(0, |o| o + 1));
    }
    let router_group = format!("{group}.router");
    let log = temp_file(&format!("{group}.log"));
    let state_dir = temp_file(&format!("{group}-state"));
    let second_state = temp_file(&format!("{group}-state-2"));
    // Each instance's arguments: at least once, with a state directory of its own;
    // exactly once, with the changelog alone.
    let args_with = |state: &PathBuf| {
        let mut args = vec![
            "--repartition-topic".to_owned(),
            "routed".to_owned(),
            "--changelog-topic".to_owned(),
            CHANGELOG.to_owned(),
            "--snapshot-interval".to_owned(),
            "500ms".to_owned(),
            "--shutdown-timeout".to_owned(),
            "10s".to_owned(),
        ];
        match guarantee {
            Guarantee::AtLeastOnce => args.extend(["--state-dir".to_owned(), state.display().to_string()]),
            Guarantee::ExactlyOnce => args.extend(["--processing-guarantee".to_owned(), "exactly_once".to_owned()]),
        }
        args
    };
    let owned = args_with(&state_dir);
    let args: Vec<&str> = owned.iter().map(String::as_str).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6261_636b);
    let mut worker = WorkerProcess::start(&broker, group, log.clone(), &args);
    let total: i64 = ends.values().sum();
    for i in 0..3 {
        // Each kill lands a random moment after the router has committed more of the
        // backlog: mid-routing, with routed records, marks and flags in flight.
        let at_start: i64 = broker.committed(&router_group, INPUT).await.values().sum();
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            let committed: i64 = broker.committed(&router_group, INPUT).await.values().sum();
            if committed > at_start || committed >= total {
                break;
            }
            if let Some(status) = worker.child.try_wait().unwrap() {
                panic!("the worker exited by itself ({status}):\n{}", worker.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "no progress past {at_start}:\n{}",
                worker.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1_500))).await;
        let committed = broker.committed(&router_group, INPUT).await;
        eprintln!("kill -9 number {} with {committed:?} of {ends:?} routed", i + 1);
        worker.kill_9();
        worker = WorkerProcess::start(&broker, group, log.clone(), &args);
    }
    // A second instance, with a state directory of its own, joins both groups while the
    // first runs (a cooperative rebalance hands it some partitions, restored from the
    // changelog), and then the first stops (SIGTERM: it drains, commits and snapshots), so
    // the second takes every partition over.
    let second_log = temp_file(&format!("{group}-2.log"));
    let second_owned = args_with(&second_state);
    let second_args: Vec<&str> = second_owned.iter().map(String::as_str).collect();
    let mut second = WorkerProcess::start(&broker, group, second_log.clone(), &second_args);
    tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..4_000))).await;
    worker.stop_cleanly().await;
    second.wait_for_commits(&broker, &router_group, &ends).await;
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let differ = content_difference(&expected, &modsignal_tests::worker::newest_output(&broker).await);
        if differ.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} flags differ from file mode; first:\n{}\n--- log ---\n{}",
            differ.len(),
            expected.len(),
            differ[..differ.len().min(3)].join("\n"),
            second.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    second.stop_cleanly().await;
    assert!(broker.read_all(DEAD).await.is_empty());
    if guarantee == Guarantee::ExactlyOnce {
        assert_each_revision_once(&broker, || second.log_tail()).await;
    }
    for path in [&log, &second_log] {
        let _ = std::fs::remove_file(path);
    }
    let _ = std::fs::remove_dir_all(&state_dir);
    let _ = std::fs::remove_dir_all(&second_state);
}
