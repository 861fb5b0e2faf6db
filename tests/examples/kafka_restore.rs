//! How fast a new owner takes a partition over from a snapshot in the changelog topic, against
//! Apache Kafka on loopback ports. Numbers are printed, never asserted.
//!
//! ```sh
//! cargo run --release -p modsignal-tests --example kafka_restore -- [EVENTS] [EVENTS_PER_SEC_OF_EVENT_TIME]
//! ```
//!
//! A worker with a changelog topic reads `EVENTS` simulated events from one partition, settles
//! and stops (its last snapshot, at the committed offset, goes to the changelog); a second
//! worker in the same group then restores the partition from the changelog, and two more do
//! the same with a local snapshot directory. Printed: the
//! snapshot's size, the restore (reading the changelog, checking and rebuilding the state) in
//! keys per second, a key being a message or a reshare in state, and, for comparison, a third
//! worker without snapshots that replays the partition from its beginning.

use std::time::{Duration, Instant};

use modsignal_core::Policy;
use modsignal_kafka::{WorkerConfig, WorkerSummary};
use modsignal_sim::{SimConfig, Simulator};
use modsignal_tests::broker::Broker;
use modsignal_tests::worker::Running;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(500_000, |a| a.parse().expect("EVENTS is a number"));
    let rate: f64 = args
        .next()
        .map_or(2_000.0, |a| a.parse().expect("EVENTS_PER_SEC is a number"));

    let broker = Broker::start();
    for (topic, settings) in [
        ("events", &[][..]),
        ("flags", &[][..]),
        ("dead-letters", &[][..]),
        ("changelog", &[("cleanup.policy", "compact")][..]),
    ] {
        broker.create_topic(topic, 1, settings).await;
    }
    let lines: Vec<String> = Simulator::new(SimConfig {
        events,
        seed: 5,
        events_per_sec: rate,
        ..SimConfig::default()
    })
    .map(|e| e.to_json())
    .collect();
    broker.produce_lines("events", &lines).await;
    let end = lines.len() as i64;

    let dir = std::env::temp_dir().join(format!("modsignal-restore-{}", std::process::id()));
    let config = |group: &str, changelog: bool| {
        let mut c = WorkerConfig::new(broker.addr(), vec!["events".into()], Policy::default());
        c.group_id = group.into();
        c.output_topic = "flags".into();
        c.dead_letter_topic = "dead-letters".into();
        c.flush_interval = Duration::from_millis(200);
        c.idle_after = Duration::from_secs(2);
        c.snapshot_interval = Duration::from_secs(3600);
        if changelog {
            c.changelog_topic = Some("changelog".into());
        }
        c
    };

    let first = run_until_settled(&broker, config("restore", true), end).await;
    println!(
        "first worker: {} events in {:.1}s; {} snapshot(s) written",
        first.events,
        first.elapsed.as_secs_f64(),
        first.snapshots_written
    );
    let changelog_bytes: usize = broker
        .read_all("changelog")
        .await
        .iter()
        .map(|m| rdkafka::message::Message::payload(m).map_or(0, <[u8]>::len))
        .sum();

    let second = run_until_settled(&broker, config("restore", true), end).await;
    let secs = second.restore_time.as_secs_f64();
    println!(
        "restore from the changelog: {} keys ({:.1} MiB of changelog records) in {secs:.2}s: {:.0} keys/s; replayed {} records after the snapshot",
        second.restored_keys,
        changelog_bytes as f64 / 1048576.0,
        second.restored_keys as f64 / secs.max(1e-9),
        second.replayed_records
    );

    // The same with a local snapshot directory instead of the changelog.
    let mut local = config("local", false);
    local.state_dir = Some(dir.clone());
    let _ = run_until_settled(&broker, local.clone(), end).await;
    let fourth = run_until_settled(&broker, local, end).await;
    let secs = fourth.restore_time.as_secs_f64();
    println!(
        "restore from a local snapshot: {} keys in {secs:.2}s: {:.0} keys/s",
        fourth.restored_keys,
        fourth.restored_keys as f64 / secs.max(1e-9)
    );
    let _ = std::fs::remove_dir_all(&dir);

    // The same partition rebuilt without a snapshot, by replaying it from its beginning: a
    // group of its own that has committed `end` first.
    let _ = run_until_settled(&broker, config("replay", false), end).await;
    let started = Instant::now();
    let third = run_until_settled(&broker, config("replay", false), end).await;
    println!(
        "replay from the beginning: {} events in {:.2}s ({:.0} events/s); whole restart {:.2}s",
        third.replayed_events,
        third.replay_time.as_secs_f64(),
        third.replay_events_per_sec().unwrap_or(0.0),
        started.elapsed().as_secs_f64()
    );
}

/// Runs a worker until it has committed `end` and settled, and returns its summary.
async fn run_until_settled(broker: &Broker, config: WorkerConfig, end: i64) -> WorkerSummary {
    let mut worker = Running::start("restore", config, Duration::from_secs(1800));
    worker.settle(broker, end).await;
    worker.stop().await
}
