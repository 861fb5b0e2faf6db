//! A load run of the Kafka worker against Apache Kafka on loopback ports: events per second through
//! the broker with one and with two worker instances, how fast a restarted worker rebuilds its
//! state by replay, and the event-to-flag latency under a steady load. Numbers are printed,
//! never asserted. Run it in release mode:
//!
//! ```sh
//! cargo run --release -p modsignal-tests --example kafka_load -- \
//!     [EVENTS] [EVENTS_PER_SEC_OF_EVENT_TIME] [LOAD_RATES] [LOAD_SECS] [FETCH_WAIT_MS]
//! ```
//!
//! - **Backlog, one instance**: EVENTS (default 200,000) simulated events on one partition,
//!   produced before the worker starts; it reads them all and settles. The rate is the records
//!   read from the moment its partition is ready to the last commit (which comes after every
//!   flag for them is acknowledged). Before it, a bare librdkafka consumer with the worker's own
//!   consumer settings reads the same partition and does nothing with the records: the
//!   worker's rate is also printed as a share of that floor, measured in the same run. A second
//!   worker in the same group then rebuilds the partition's state by replay. Last, a worker with
//!   `processing_guarantee = "exactly_once"` (in a group of its own, with a changelog topic)
//!   reads the same backlog: its rate is printed against the at-least-once worker's and the
//!   bare consumer's.
//! - **Live, one and two instances**: the workers start first, on empty topics with as many
//!   partitions as workers, and each holds one partition; then EVENTS events (one simulated
//!   world per partition, split evenly) are produced as fast as the producer goes, one producer
//!   per partition. The rate is EVENTS over the time from the first record produced to the
//!   last commit.
//! - **Latency under load**: one worker, one partition, events produced at each of `LOAD_RATES`
//!   (events per second of wall time, comma-separated, default `2000,8000`) for `LOAD_SECS`
//!   (default 20) seconds. Every 200th event is followed by a probe: a post by an account of
//!   its own (so that probes are not repeated conduct, which would re-evaluate every earlier
//!   probe) and a `credible_threat` label on it, which makes the worker write a raised flag at
//!   once. The
//!   latency of a probe is the wall time from handing its label record to the producer client
//!   to a consumer of the output topic receiving the flag: it includes both clients' batching
//!   (`linger.ms`, 5 ms), the broker twice, the worker's fetch and processing, and the
//!   consumer's fetch (`fetch.wait.max.ms` 10 ms). `FETCH_WAIT_MS`, if given, sets the worker's
//!   own `fetch.wait.max.ms` (librdkafka's default is 500 ms). The first rate is run once more
//!   with exactly-once, whose flags a `read_committed` consumer sees only once their
//!   transaction commits, at the worker's next flush. Everything runs on one machine and one
//!   clock.
//!
//! The worker instances run in this process, on a runtime of two threads like the binary's;
//! the broker, the producers and the consumers share the same cores.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use modsignal_core::Policy;
use modsignal_kafka::{Guarantee, WorkerConfig, WorkerStatus};
use modsignal_sim::{SimConfig, Simulator};
use modsignal_tests::broker::Broker;
use modsignal_tests::worker::Running;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// The longest any wait of a load run may take: the machine may be slow and busy.
const LONG: Duration = Duration::from_secs(1800);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(200_000, |a| a.parse().expect("EVENTS is a number"));
    let rate: f64 = args
        .next()
        .map_or(2_000.0, |a| a.parse().expect("EVENTS_PER_SEC is a number"));
    let load_rates: Vec<u64> = args.next().map_or(vec![2_000, 8_000], |a| {
        a.split(',')
            .map(|r| r.trim().parse().expect("LOAD_RATES are numbers"))
            .collect()
    });
    let load_secs: u64 = args.next().map_or(20, |a| a.parse().expect("LOAD_SECS is a number"));
    let fetch_wait: Option<String> = args.next();

    let broker = Broker::start();
    broker.create_topic("dead-letters", 1, &[]).await;
    backlog(&broker, events, rate).await;
    live(&broker, 1, events, rate).await;
    live(&broker, 2, events, rate).await;
    for &r in &load_rates {
        latency(&broker, r, load_secs, fetch_wait.as_deref(), Guarantee::AtLeastOnce).await;
    }
    latency(
        &broker,
        load_rates[0],
        load_secs,
        fetch_wait.as_deref(),
        Guarantee::ExactlyOnce,
    )
    .await;
}

fn simulated(events: u64, seed: u64, rate: f64) -> Vec<String> {
    Simulator::new(SimConfig {
        events,
        seed,
        events_per_sec: rate,
        ..SimConfig::default()
    })
    .map(|e| e.to_json())
    .collect()
}

fn config(broker: &Broker, input: &str, output: &str, group: &str) -> WorkerConfig {
    let mut config = WorkerConfig::new(broker.addr(), vec![input.into()], Policy::default());
    config.group_id = group.into();
    config.output_topic = output.into();
    config.dead_letter_topic = "dead-letters".into();
    config.flush_interval = Duration::from_millis(100);
    config.idle_after = Duration::from_secs(2);
    config
}

/// Waits until every worker's status satisfies `ready`, checking at each status change.
async fn wait_all(workers: &mut [&mut Running], ready: impl Fn(&[WorkerStatus]) -> bool) {
    let deadline = Instant::now() + LONG;
    loop {
        let statuses: Vec<WorkerStatus> = workers.iter().map(|w| w.status.borrow().clone()).collect();
        if ready(&statuses) {
            return;
        }
        assert!(Instant::now() < deadline, "no progress in 30 minutes: {statuses:?}");
        for w in workers.iter_mut() {
            assert!(!w.is_finished(), "worker {} stopped by itself", w.name);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn backlog(broker: &Broker, events: u64, rate: f64) {
    broker.create_topic("events1", 1, &[]).await;
    broker.create_topic("flags1", 3, &[]).await;
    let lines = simulated(events, 3, rate);
    let started = Instant::now();
    broker.produce_lines("events1", &lines).await;
    let produce = started.elapsed();
    println!(
        "produced {} events ({rate} events/s of event time) in {:.2}s: {:.0} events/s",
        lines.len(),
        produce.as_secs_f64(),
        lines.len() as f64 / produce.as_secs_f64()
    );
    let end = lines.len() as i64;
    let bare = bare_consumer(broker, "events1", end).await;

    let (first, through) = read_backlog(config(broker, "events1", "flags1", "load1"), end).await;
    let worker_rate = first.records as f64 / through.as_secs_f64();
    println!(
        "backlog, one instance: {} records in {:.2}s from assignment to the last commit: {worker_rate:.0} events/s through the broker; {} flag revisions; {:.2} of the bare consumer's rate",
        first.records,
        through.as_secs_f64(),
        first.flags,
        worker_rate / bare
    );

    let mut worker = Running::start("load", config(broker, "events1", "flags1", "load1"), LONG);
    wait_all(&mut [&mut worker], |s| s[0].settled && !s[0].assigned.is_empty()).await;
    let second = worker.stop().await;
    println!(
        "restart: replayed {} events in {:.2}s: {:.0} events/s",
        second.replayed_events,
        second.replay_time.as_secs_f64(),
        second.replay_events_per_sec().unwrap_or(0.0)
    );

    broker.create_topic("flags1eos", 3, &[]).await;
    broker
        .create_topic("changelog1eos", 1, &[("cleanup.policy", "compact")])
        .await;
    let mut eos = config(broker, "events1", "flags1eos", "load1eos");
    eos.processing_guarantee = Guarantee::ExactlyOnce;
    eos.changelog_topic = Some("changelog1eos".into());
    let (third, through) = read_backlog(eos, end).await;
    let eos_rate = third.records as f64 / through.as_secs_f64();
    println!(
        "backlog, one instance, exactly once: {} records in {:.2}s: {eos_rate:.0} events/s through the broker; {} flag revisions; {:.2} of at-least-once, {:.2} of the bare consumer's rate",
        third.records,
        through.as_secs_f64(),
        third.flags,
        eos_rate / worker_rate,
        eos_rate / bare
    );
}

/// Runs one worker with `config` over a backlog of `end` records on one partition until it
/// settles; returns its summary and the time from its partition's assignment to the last
/// commit.
async fn read_backlog(config: WorkerConfig, end: i64) -> (modsignal_kafka::WorkerSummary, Duration) {
    let mut worker = Running::start("load", config, LONG);
    wait_all(&mut [&mut worker], |s| !s[0].assigned.is_empty()).await;
    let ready = Instant::now();
    wait_all(&mut [&mut worker], |s| committed(s) >= end).await;
    let through = ready.elapsed();
    wait_all(&mut [&mut worker], |s| s[0].settled).await;
    (worker.stop().await, through)
}

/// Reads partition 0 of `topic` up to `end` with a bare librdkafka consumer, with the worker's
/// own consumer settings and nothing done with each record but counting its bytes: the floor
/// the worker's rate through the broker is measured against, in the same run on the same
/// records. Returns its records per second.
async fn bare_consumer(broker: &Broker, topic: &str, end: i64) -> f64 {
    let consumer: StreamConsumer = config(broker, topic, "unused", "bare")
        .consumer_config()
        .create()
        .expect("bare consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let started = Instant::now();
    let (mut next, mut bytes) = (0i64, 0usize);
    let mut stream = consumer.stream();
    while next < end {
        let m = stream
            .next()
            .await
            .expect("the stream does not end")
            .expect("the bare consumer reads");
        bytes += m.payload().map_or(0, <[u8]>::len);
        next = m.offset() + 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = end as f64 / elapsed;
    println!(
        "bare librdkafka consumer, same partition: {end} records ({:.1} MB) in {elapsed:.2}s: {rate:.0} records/s",
        bytes as f64 / 1e6
    );
    rate
}

/// The offsets committed by a group of workers, summed over their partitions.
fn committed(statuses: &[WorkerStatus]) -> i64 {
    statuses.iter().flat_map(|s| s.committed.values()).sum()
}

async fn live(broker: &Broker, instances: usize, events: u64, rate: f64) {
    let (input, output, group) = (
        format!("events-live-{instances}"),
        format!("flags-live-{instances}"),
        format!("live-{instances}"),
    );
    broker.create_topic(&input, instances as i32, &[]).await;
    broker.create_topic(&output, 3, &[]).await;
    let mut workers: Vec<Running> = (0..instances)
        .map(|_| Running::start("load", config(broker, &input, &output, &group), LONG))
        .collect();
    // Each instance holds one partition: the group has balanced before any record comes.
    wait_all(&mut workers.iter_mut().collect::<Vec<_>>(), |s| {
        s.iter().all(|s| s.assigned.len() == 1)
    })
    .await;
    let per_partition = events / instances as u64;
    let worlds: Vec<Vec<String>> = (0..instances)
        .map(|p| simulated(per_partition, 40 + p as u64, rate))
        .collect();
    let end = (per_partition * instances as u64) as i64;

    let started = Instant::now();
    let producers = worlds
        .iter()
        .enumerate()
        .map(|(p, lines)| broker.produce_lines_to(&input, p as i32, lines));
    futures_util::future::join_all(producers).await;
    let produced = started.elapsed();
    wait_all(&mut workers.iter_mut().collect::<Vec<_>>(), |s| {
        committed(s) >= end && s.iter().all(|s| s.unacknowledged == 0)
    })
    .await;
    let through = started.elapsed();
    wait_all(&mut workers.iter_mut().collect::<Vec<_>>(), |s| {
        s.iter().all(|s| s.settled)
    })
    .await;
    let mut flags = 0;
    let mut replayed = 0;
    for w in workers {
        let summary = w.stop().await;
        flags += summary.flags;
        replayed += summary.replayed_records;
    }
    println!(
        "live, {instances} instance(s), {instances} partition(s): {end} events produced in {:.2}s and read, processed and committed {:.2}s after the first: {:.0} events/s through the broker; {flags} flag revisions; {replayed} records replayed",
        produced.as_secs_f64(),
        through.as_secs_f64(),
        end as f64 / through.as_secs_f64()
    );
}

async fn latency(broker: &Broker, rate: u64, secs: u64, fetch_wait: Option<&str>, guarantee: Guarantee) {
    let (input, output, group) = (
        format!("events-lat-{rate}-{guarantee}"),
        format!("flags-lat-{rate}-{guarantee}"),
        format!("lat-{rate}-{guarantee}"),
    );
    broker.create_topic(&input, 1, &[]).await;
    broker.create_topic(&output, 1, &[]).await;
    let mut worker_config = config(broker, &input, &output, &group);
    if guarantee == Guarantee::ExactlyOnce {
        let changelog = format!("changelog-lat-{rate}");
        broker
            .create_topic(&changelog, 1, &[("cleanup.policy", "compact")])
            .await;
        worker_config.processing_guarantee = guarantee;
        worker_config.changelog_topic = Some(changelog);
    }
    if let Some(ms) = fetch_wait {
        worker_config
            .properties
            .insert("fetch.wait.max.ms".into(), ms.to_owned());
    }
    let mut worker = Running::start("load", worker_config, LONG);
    wait_all(&mut [&mut worker], |s| !s[0].assigned.is_empty()).await;

    // The consumer that sees the flags, positioned at the end of the (empty) output topic.
    let consumer: StreamConsumer = broker
        .client_config()
        .set("group.id", "latency-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        // What a consumer of exactly-once output uses: a flag is seen once its transaction commits.
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&output, 0, Offset::Beginning).expect("tpl");
    consumer.assign(&tpl).expect("assign");

    let probe_every = 200;
    let total = rate * secs;
    let probes = (total / probe_every) as usize;
    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; probes]));
    let lines = simulated(total, 5, 2_000.0);
    let producer_task = {
        let sent = sent.clone();
        let producer: FutureProducer = broker.client_config().set("linger.ms", "5").create().expect("producer");
        let input = input.clone();
        tokio::spawn(async move {
            // Records go out every 10 ms, a hundredth of a second's worth at a time.
            let per_tick = (rate / 100).max(1) as usize;
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut deliveries = futures_util::stream::FuturesUnordered::new();
            let mut probe = 0;
            for (i, chunk) in lines.chunks(per_tick).enumerate() {
                tick.tick().await;
                for (j, line) in chunk.iter().enumerate() {
                    send(&producer, &input, line.as_bytes(), &mut deliveries).await;
                    if (i * per_tick + j + 1).is_multiple_of(probe_every as usize) && probe < probes {
                        let at = serde_json::from_str::<serde_json::Value>(line).expect("JSON")["at"].clone();
                        let post = format!(
                            r#"{{"type":"post","at":{at},"id":"probe-{probe}","author":{{"id":"probe-author-{probe}","followers":1000}},"audience":"public"}}"#
                        );
                        let label = format!(
                            r#"{{"type":"label","at":{at},"id":"probe-{probe}","category":"credible_threat","confidence":0.99,"source":"classifier-v3"}}"#
                        );
                        send(&producer, &input, post.as_bytes(), &mut deliveries).await;
                        sent.lock().unwrap()[probe] = Some(Instant::now());
                        send(&producer, &input, label.as_bytes(), &mut deliveries).await;
                        probe += 1;
                    }
                }
                // Acknowledgements are collected as they come, to keep the queue short.
                while let Some(Some(d)) = futures_util::FutureExt::now_or_never(deliveries.next()) {
                    d.expect("producer alive").expect("delivered");
                }
            }
            while let Some(d) = deliveries.next().await {
                d.expect("producer alive").expect("delivered");
            }
        })
    };

    let mut histogram = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds");
    let mut seen = vec![false; probes];
    let mut stream = consumer.stream();
    let deadline = Instant::now() + Duration::from_secs(secs + 120);
    while histogram.len() < probes as u64 && Instant::now() < deadline {
        let m = match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => panic!("reading flags: {e}"),
            Ok(None) => break,
            Err(_) => continue,
        };
        let received = Instant::now();
        let Some(payload) = m.payload() else { continue };
        if !payload.windows(7).any(|w| w == b"\"probe-") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(payload).expect("flags are JSON");
        let Some(n) = v["message_id"]
            .as_str()
            .and_then(|id| id.strip_prefix("probe-"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        // The first flag of a probe is the one its label caused.
        if n < probes && !seen[n] {
            seen[n] = true;
            if let Some(at) = sent.lock().unwrap()[n] {
                let micros = received.duration_since(at).as_micros() as u64;
                histogram.record(micros.max(1)).expect("in bounds");
            }
        }
    }
    producer_task.await.expect("the producer does not panic");
    let summary = worker.stop().await;
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "latency at {rate} events/s for {secs}s, {guarantee}, worker fetch.wait.max.ms {} ({} events read, {} flag revisions): {} of {probes} probes seen; event to flag p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
        fetch_wait.unwrap_or("500 (default)"),
        summary.records,
        summary.flags,
        histogram.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        histogram.max() as f64 / 1000.0
    );
}

/// Hands a record to the producer, waiting for room when its queue is full.
async fn send(
    producer: &FutureProducer,
    topic: &str,
    value: &[u8],
    deliveries: &mut futures_util::stream::FuturesUnordered<rdkafka::producer::DeliveryFuture>,
) {
    let mut record = FutureRecord::<[u8], [u8]>::to(topic).partition(0).payload(value);
    loop {
        match producer.send_result(record) {
            Ok(f) => {
                deliveries.push(f);
                return;
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                if let Some(d) = deliveries.next().await {
                    d.expect("producer alive").expect("delivered");
                }
            }
            Err((e, _)) => panic!("cannot produce: {e}"),
        }
    }
}
