//! A load run of the Kafka worker against tansu on a loopback port: how many events per second
//! go through the broker and the worker, and how fast a restarted worker rebuilds its state.
//! Numbers are printed, never asserted.
//!
//! ```sh
//! cargo run --release -p modsignal-tests --example kafka_load -- [EVENTS] [EVENTS_PER_SEC_OF_EVENT_TIME]
//! ```
//!
//! One input partition, one worker: the worker reads everything, settles, stops; then a second
//! worker in the same group replays the partition up to the committed offset.

use std::time::{Duration, Instant};

use modsignal_core::Policy;
use modsignal_kafka::{WorkerConfig, WorkerStatus, WorkerSummary, run_with_status};
use modsignal_sim::{SimConfig, Simulator};
use modsignal_tests::broker::Broker;
use tokio::sync::{oneshot, watch};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(200_000, |a| a.parse().expect("EVENTS is a number"));
    let rate: f64 = args
        .next()
        .map_or(2_000.0, |a| a.parse().expect("EVENTS_PER_SEC is a number"));

    let broker = Broker::start();
    broker.create_topic("events", 1, &[]).await;
    broker.create_topic("flags", 3, &[]).await;
    broker.create_topic("dead-letters", 1, &[]).await;

    let lines: Vec<String> = Simulator::new(SimConfig {
        events,
        seed: 3,
        events_per_sec: rate,
        ..SimConfig::default()
    })
    .map(|e| e.to_json())
    .collect();
    let started = Instant::now();
    broker.produce_lines("events", &lines).await;
    let produce = started.elapsed();
    println!(
        "produced {} events ({rate} events/s of event time) in {:.2}s: {:.0} events/s",
        lines.len(),
        produce.as_secs_f64(),
        lines.len() as f64 / produce.as_secs_f64()
    );

    let end = lines.len() as i64;
    let (first, through) = run(&broker, end).await;
    println!(
        "worker: {} events in {:.2}s from assignment to the last acknowledgement: {:.0} events/s through the broker; {} flag revisions",
        first.events,
        through.as_secs_f64(),
        first.events as f64 / through.as_secs_f64(),
        first.flags
    );
    let (second, _) = run(&broker, end).await;
    println!(
        "restart: replayed {} events in {:.2}s: {:.0} events/s",
        second.replayed_events,
        second.replay_time.as_secs_f64(),
        second.replay_events_per_sec().unwrap_or(0.0)
    );
}

/// Runs a worker until it has committed `end` and settled; returns its summary and the time
/// from its partition being ready to every record read being processed and its flags
/// acknowledged (zero for a worker that only replays).
async fn run(broker: &Broker, end: i64) -> (WorkerSummary, Duration) {
    let mut config = WorkerConfig::new(broker.addr(), vec!["events".into()], Policy::default());
    config.group_id = "load".into();
    config.output_topic = "flags".into();
    config.dead_letter_topic = "dead-letters".into();
    config.flush_interval = Duration::from_millis(100);
    config.idle_after = Duration::from_secs(2);
    let (status_tx, mut status) = watch::channel(WorkerStatus::default());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let worker = run_with_status(
        config,
        async {
            let _ = stop_rx.await;
        },
        status_tx,
    );
    tokio::pin!(worker);
    let (mut ready, mut done) = (None, None);
    let key = ("events".to_owned(), 0);
    let deadline = tokio::time::sleep(Duration::from_secs(1800));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            r = &mut worker => panic!("the worker stopped by itself: {r:?}"),
            _ = &mut deadline => panic!("the worker did not settle in 30 minutes: {:?}", *status.borrow()),
            changed = status.changed() => {
                changed.expect("status sender alive");
                let s = status.borrow_and_update().clone();
                if ready.is_none() && !s.assigned.is_empty() {
                    ready = Some(Instant::now());
                }
                if done.is_none() && s.records as i64 == end && s.unacknowledged == 0 {
                    done = Some(Instant::now());
                }
                if s.settled && s.committed.get(&key) == Some(&end) {
                    break;
                }
            }
        }
    }
    stop_tx.send(()).expect("worker running");
    let summary = worker.await.expect("the worker ends without error");
    let through = match (ready, done) {
        (Some(r), Some(d)) => d.duration_since(r),
        _ => Duration::ZERO,
    };
    (summary, through)
}
