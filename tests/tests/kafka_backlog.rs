//! Event time across input partitions, through the Kafka worker on a real broker (Apache Kafka, on
//! loopback ports): a platform stream keyed by account, spanning weeks, all produced before the
//! worker starts (a backlog, as after an outage or a first deployment), routed through the
//! repartition topic. Once the worker settles, the newest revision of every flag on the output
//! topic reads as file mode's for the same events, and no event was late.
//!
//! The repartition topic has one partition here. With several, each engine partition holds the
//! messages routed to it, and what spans messages in different partitions is not counted as in
//! file mode: a sender's repeated conduct and the mobbing of one person across messages held by
//! other partitions, and a reshare whose `of` names a reshare read by another input partition
//! (the simulator writes half its deep reshares so). That is a limit of routing by message,
//! stated in the README's Kafka section, not of event time, which these tests are about: the
//! same backlogs through four repartition partitions lose no flag to lateness (no event is
//! late) but differ in those counts.

use std::collections::BTreeMap;
use std::time::Duration;

use modsignal_kafka::WorkerConfig;
use modsignal_metrics::Metrics;
use modsignal_tests::backlog::{assert_same_content, file_mode_flags, partitions, stream};
use modsignal_tests::broker::Broker;
use modsignal_tests::worker::{CHANGELOG, DEAD, INPUT, OUTPUT, Running, config, init_logs, newest_output};

const REPARTITION: &str = "routed";
/// The longest a worker may take to read a backlog and settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

async fn broker_with_topics(input_partitions: i32) -> Broker {
    init_logs();
    let broker = Broker::shared();
    broker.create_topic(INPUT, input_partitions, &[]).await;
    broker.create_topic(OUTPUT, 3, &[]).await;
    broker.create_topic(DEAD, 1, &[]).await;
    broker.create_topic(REPARTITION, 1, &[]).await;
    broker
        .create_topic(CHANGELOG, 4, &[("cleanup.policy", "compact")])
        .await;
    broker
}

/// A routed worker as the issue that asked for this ran it: snapshots every two seconds to the
/// changelog.
fn routed(broker: &Broker, group: &str) -> WorkerConfig {
    let mut c = config(broker, group);
    c.repartition_topic = Some(broker.topic(REPARTITION));
    c.changelog_topic = Some(broker.topic(CHANGELOG));
    c.snapshot_interval = Duration::from_secs(2);
    c
}

/// Produces each partition's records to its partition of the input topic, in order; returns
/// each partition's end offset.
async fn produce(broker: &Broker, parts: &[Vec<(String, String)>]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for (p, records) in parts.iter().enumerate() {
        let lines: Vec<&str> = records.iter().map(|(_, l)| l.as_str()).collect();
        let offsets = broker.produce_lines_to(INPUT, p as i32, &lines).await;
        ends.insert(p as i32, offsets.last().map_or(0, |o| o + 1));
    }
    ends
}

/// Waits until the worker has read every input partition to `ends` (committed it) and settled.
async fn settle(broker: &Broker, worker: &mut Running, ends: &BTreeMap<i32, i64>) {
    worker
        .wait_for(broker, "read every input partition and settle", |s| {
            s.settled
                && ends
                    .iter()
                    .all(|(&p, &end)| end == 0 || s.committed.get(&(broker.topic(INPUT), p)) == Some(&end))
        })
        .await;
}

/// The newest flags on the output topic against file mode's, by what a reviewer reads.
async fn assert_file_mode_flags(broker: &Broker, expected: &BTreeMap<String, String>, what: &str) {
    assert_same_content(expected, &newest_output(broker).await, what);
}

/// Runs one backlog: the stream split by `share` over the input partitions, every record
/// produced before the worker starts.
async fn backlog(lines: &[String], share: &[f64], group: &str) {
    let broker = broker_with_topics(share.len() as i32).await;
    let expected = file_mode_flags(lines);
    let parts = partitions(lines, share);
    let ends = produce(&broker, &parts).await;
    let metrics = Metrics::new();
    let mut worker = Running::start_with_metrics("w", routed(&broker, group), SETTLE_TIMEOUT, metrics.clone());
    settle(&broker, &mut worker, &ends).await;
    let summary = worker.stop().await;
    assert_file_mode_flags(&broker, &expected, group).await;
    assert_eq!(summary.late, 0, "{group}: no event is late in a backlog: {summary:?}");
    assert!(broker.read_all(DEAD).await.is_empty());
    let text = metrics.render();
    assert!(
        text.contains(&format!(
            "modsignal_input_event_time_lag_seconds{{partition=\"0\",topic=\"{}\"}} 0",
            broker.topic(INPUT)
        )),
        "once settled, no input partition is behind: {}",
        text.lines()
            .filter(|l| l.starts_with("modsignal_input_event_time_lag_seconds"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn a_backlog_over_four_partitions_gives_the_file_mode_flags() {
    let lines = stream(20_000, 21.0, 3);
    backlog(&lines, &[1.0; 4], "backlog-even").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn a_backlog_with_one_big_one_empty_and_one_stopped_partition_gives_the_file_mode_flags() {
    // One partition holds 80% of the accounts, one none, and the accounts of the last stop
    // writing halfway through the weeks the stream spans.
    let all = stream(20_000, 21.0, 5);
    let at = |l: &str| modsignal_core::decode(l.as_bytes()).unwrap().at.0;
    let (first, last) = (at(&all[0]), at(&all[all.len() - 1]));
    let half = first + (last - first) / 2;
    let share = [16.0, 0.0, 2.0, 2.0];
    let stopped: std::collections::BTreeSet<String> = partitions(&all, &share)[3]
        .iter()
        .filter(|(_, l)| at(l) > half)
        .map(|(_, l)| l.clone())
        .collect();
    let lines: Vec<String> = all.into_iter().filter(|l| !stopped.contains(l)).collect();
    backlog(&lines, &share, "backlog-uneven").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn live_traffic_after_a_backlog_moves_event_time_on_and_gives_the_file_mode_flags() {
    // The first two weeks are a backlog; the third arrives while the worker runs, a day of
    // event time at a time, as live traffic after an outage would.
    let share = [1.0; 4];
    let broker = broker_with_topics(share.len() as i32).await;
    let lines = stream(20_000, 21.0, 7);
    let expected = file_mode_flags(&lines);
    let at = |l: &str| modsignal_core::decode(l.as_bytes()).unwrap().at.0;
    let first = at(&lines[0]);
    let day = 86_400_000;
    let batch = |from: i64, to: i64| -> Vec<String> {
        lines
            .iter()
            .filter(|l| (from..to).contains(&(at(l) - first)))
            .cloned()
            .collect()
    };
    let group = "backlog-then-live";
    let mut ends = produce(&broker, &partitions(&batch(i64::MIN, 14 * day), &share)).await;
    let mut worker = Running::start("w", routed(&broker, group), SETTLE_TIMEOUT);
    settle(&broker, &mut worker, &ends).await;
    for d in 14..22 {
        let more = produce_more(&broker, &partitions(&batch(d * day, (d + 1) * day), &share)).await;
        for (p, end) in more {
            ends.insert(p, end.max(ends[&p]));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    settle(&broker, &mut worker, &ends).await;
    let summary = worker.stop().await;
    assert_file_mode_flags(&broker, &expected, group).await;
    assert_eq!(summary.late, 0, "no event is late: {summary:?}");
}

/// [`produce`] for records that follow earlier ones: returns the new end of each partition
/// written to.
async fn produce_more(broker: &Broker, parts: &[Vec<(String, String)>]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for (p, records) in parts.iter().enumerate() {
        if records.is_empty() {
            continue;
        }
        let lines: Vec<&str> = records.iter().map(|(_, l)| l.as_str()).collect();
        let offsets = broker.produce_lines_to(INPUT, p as i32, &lines).await;
        ends.insert(p as i32, offsets.last().map_or(0, |o| o + 1));
    }
    ends
}
