//! Issue 10's figures: a platform stream keyed by account over eight input partitions, routed
//! through the repartition topic, read by one worker instance as a backlog (everything produced
//! before it starts) and live (the worker first, then the same stream produced as fast as the
//! producer goes). For each it prints how many of file mode's final flags the output topic's
//! newest revisions read as (everything but the revision number), how many events the engines
//! counted late, and the events per second from the worker's start (backlog) or the first
//! record produced (live) to the moment it settled. Numbers are printed, never asserted. Run it
//! in release mode:
//!
//! ```sh
//! cargo run --release -p modsignal-tests --example routed_backlog -- [EVENTS] [DAYS] [REPARTITION_PARTITIONS]
//! ```
//!
//! EVENTS (default 200,000) simulated events spread over DAYS (default 60) of event time;
//! `REPARTITION_PARTITIONS` (default 1) partitions of the repartition topic. With more than one,
//! what spans messages held by different engine partitions (repeated conduct, mobbing, reshares
//! of reshares read by another router) is not counted as in file mode, and the equal count
//! shows it (see the README's Kafka section).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use modsignal_core::Policy;
use modsignal_kafka::{WorkerConfig, WorkerStatus};
use modsignal_tests::backlog::{as_json, content_difference, partitions, stream};
use modsignal_tests::broker::Broker;
use modsignal_tests::worker::{Running, flag_records_from, newest};
use modsignal_tests::{final_flags, run_lines};

const INPUT_PARTITIONS: usize = 8;
/// The longest any wait may take: the machine may be slow and busy.
const LONG: Duration = Duration::from_secs(3600);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(200_000, |a| a.parse().expect("EVENTS is a number"));
    let days: f64 = args.next().map_or(60.0, |a| a.parse().expect("DAYS is a number"));
    let repartition: i32 = args
        .next()
        .map_or(1, |a| a.parse().expect("REPARTITION_PARTITIONS is a number"));

    let lines = stream(events, days, 21);
    let started = Instant::now();
    let (flags, errors) = run_lines(&Policy::default(), &lines);
    let file_secs = started.elapsed().as_secs_f64();
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    let expected = as_json(&final_flags(&flags));
    println!(
        "file mode: {} events, {} final flags, in {file_secs:.2}s ({:.0} events/s)",
        lines.len(),
        expected.len(),
        lines.len() as f64 / file_secs
    );
    let parts = partitions(&lines, &[1.0; INPUT_PARTITIONS]);

    let broker = Broker::start();
    broker.create_topic("dead-letters", 1, &[]).await;
    for (name, backlog) in [("backlog", true), ("live", false)] {
        let (input, output, routed, group) = (
            format!("events-{name}"),
            format!("flags-{name}"),
            format!("routed-{name}"),
            format!("group-{name}"),
        );
        broker.create_topic(&input, INPUT_PARTITIONS as i32, &[]).await;
        broker.create_topic(&output, 3, &[]).await;
        broker.create_topic(&routed, repartition, &[]).await;
        let mut config = WorkerConfig::new(broker.addr(), vec![input.clone()], Policy::default());
        config.group_id = group;
        config.output_topic = output.clone();
        config.dead_letter_topic = "dead-letters".into();
        config.repartition_topic = Some(routed);
        config.flush_interval = Duration::from_millis(200);
        config.idle_after = Duration::from_secs(3);

        let produce = async {
            let mut ends = BTreeMap::new();
            let sends = parts.iter().enumerate().map(|(p, records)| {
                let lines: Vec<&str> = records.iter().map(|(_, l)| l.as_str()).collect();
                let broker = &broker;
                let input = &input;
                async move { (p as i32, broker.produce_lines_to(input, p as i32, &lines).await) }
            });
            for (p, offsets) in futures_util::future::join_all(sends).await {
                ends.insert(p, offsets.last().map_or(0, |o| o + 1));
            }
            ends
        };
        let (ends, mut worker, from) = if backlog {
            let ends = produce.await;
            let from = Instant::now();
            (ends, Running::start("load", config, LONG), from)
        } else {
            let mut worker = Running::start("load", config, LONG);
            worker
                .wait_for(&broker, "hold its partitions", |s| s.assigned.len() > INPUT_PARTITIONS)
                .await;
            let from = Instant::now();
            (produce.await, worker, from)
        };
        let input_ends = ends.clone();
        worker
            .wait_for(&broker, "read everything and settle", move |s: &WorkerStatus| {
                s.settled
                    && input_ends
                        .iter()
                        .all(|(&p, &end)| end == 0 || s.committed.get(&(input.clone(), p)) == Some(&end))
            })
            .await;
        let secs = from.elapsed().as_secs_f64();
        let summary = worker.stop().await;
        let records = flag_records_from(&broker, &output).await;
        let differ = content_difference(&expected, &newest(&records));
        println!(
            "{name}: {} events over {INPUT_PARTITIONS} input partitions and {repartition} repartition partition(s) in {secs:.2}s: {:.0} events/s; {} of {} final flags equal file mode's; {} events late; {} flag records",
            lines.len(),
            lines.len() as f64 / secs,
            expected.len() - differ.len(),
            expected.len(),
            summary.late,
            records.len()
        );
        for d in differ.iter().take(3) {
            println!("  {d}");
        }
    }
}
