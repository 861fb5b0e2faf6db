//! The worker against librdkafka's mock cluster, in process and without a JVM, so that the
//! crate's own tests cover cooperative rebalancing: members join and leave a cooperative group
//! mid-run, partitions move one by one (an incremental rebalance revokes only what changes
//! owner), and the newest flags must equal what file mode writes for the same events. The
//! integration tests (`tests/`) do the same against Apache Kafka.

use std::collections::BTreeMap;
use std::time::Duration;

use modsignal_core::{Engine, Policy, decode};
use modsignal_sim::{SimConfig, Simulator};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{oneshot, watch};

use crate::{WorkerConfig, WorkerStatus, WorkerSummary, run_with_status};

const INPUT: &str = "events";
const OUTPUT: &str = "flags";
const DEAD: &str = "dead-letters";
const PARTITIONS: i32 = 4;
/// How long any one wait may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(90);

/// Each partition's own simulated traffic (ids never meet), as canonical JSON lines.
fn input() -> Vec<Vec<String>> {
    (0..PARTITIONS as u64)
        .map(|p| {
            Simulator::new(SimConfig {
                events: 1_500,
                seed: 4_200 + p,
                // Slow traffic: hours of event time, so messages are labelled, reshared and
                // taken down within the run.
                events_per_sec: 10.0,
                ..SimConfig::default()
            })
            .map(|e| e.to_json())
            .collect()
        })
        .collect()
}

/// File mode over each partition's events: the newest revision of every flag, by `flag_id`.
fn expected(input: &[Vec<String>]) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for lines in input {
        let mut engine = Engine::new(Policy::default());
        let mut out = Vec::new();
        for line in lines {
            let ev = decode(line.as_bytes()).expect("simulated events decode");
            engine.apply(&ev, &mut out).expect("simulated events apply");
        }
        engine.finish(&mut out);
        for f in out {
            all.insert(f.flag_id.clone(), f.to_json());
        }
    }
    all
}

async fn produce(bootstrap: &str, input: &[Vec<String>], from: f64, to: f64) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("a producer");
    // Sent all at once and then awaited, in order within each partition.
    let mut deliveries = Vec::new();
    for (p, lines) in input.iter().enumerate() {
        let (a, b) = ((lines.len() as f64 * from) as usize, (lines.len() as f64 * to) as usize);
        for line in &lines[a..b] {
            let record = FutureRecord::<[u8], [u8]>::to(INPUT)
                .partition(p as i32)
                .payload(line.as_bytes());
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e).expect("queued"));
        }
    }
    for d in deliveries {
        d.await.expect("delivered").expect("the mock cluster takes the record");
    }
}

/// The newest revision of every flag on the output topic, read to its end. Also checks that a
/// flag written twice under one revision was the same both times.
fn newest_flags(bootstrap: &str) -> BTreeMap<String, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("a consumer");
    let metadata = consumer
        .fetch_metadata(Some(OUTPUT), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    let mut open: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(rdkafka::metadata::MetadataPartition::id)
        .collect();
    for &p in &open {
        tpl.add_partition_offset(OUTPUT, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut newest: BTreeMap<String, (u64, String)> = BTreeMap::new();
    while !open.is_empty() {
        match consumer.poll(TIMEOUT).expect("the output topic answers") {
            Ok(m) => {
                let json = std::str::from_utf8(m.payload().expect("a flag")).unwrap().to_owned();
                let flag: serde_json::Value = serde_json::from_str(&json).unwrap();
                // Resharer cohort pages share the topic; the flags are compared here.
                let Some(id) = flag["flag_id"].as_str().map(str::to_owned) else {
                    continue;
                };
                let rev = flag["revision"].as_u64().unwrap();
                match newest.get(&id) {
                    Some((r, j)) if *r == rev => assert_eq!(j, &json, "one revision, two flags"),
                    Some((r, _)) if *r > rev => {}
                    _ => {
                        newest.insert(id, (rev, json));
                    }
                }
            }
            Err(KafkaError::PartitionEOF(p)) => open.retain(|&o| o != p),
            Err(e) => panic!("reading the output: {e}"),
        }
    }
    newest.into_iter().map(|(id, (_, json))| (id, json)).collect()
}

struct Member {
    name: &'static str,
    status: watch::Receiver<WorkerStatus>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<WorkerSummary, crate::WorkerError>>,
}

impl Member {
    fn start(name: &'static str, bootstrap: &str) -> Member {
        let mut config = WorkerConfig::new(bootstrap, vec![INPUT.into()], Policy::default());
        config.group_id = "cooperative".into();
        config.output_topic = OUTPUT.into();
        config.dead_letter_topic = DEAD.into();
        config.flush_interval = Duration::from_millis(100);
        config.idle_after = Duration::from_millis(500);
        // The mock cluster waits for every member to rejoin a rebalance, and for a member that
        // went silent, a session: short ones keep the test short.
        config.properties.insert("session.timeout.ms".into(), "6000".into());
        config.properties.insert("heartbeat.interval.ms".into(), "500".into());
        assert_eq!(
            config.consumer_config().get("partition.assignment.strategy"),
            Some("cooperative-sticky"),
            "the default assignment is what this test is about"
        );
        let (tx, status) = watch::channel(WorkerStatus::default());
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(run_with_status(
            config,
            async {
                let _ = stop_rx.await;
            },
            tx,
        ));
        Member {
            name,
            status,
            stop,
            task,
        }
    }

    async fn wait_for(&mut self, what: &str, ready: impl Fn(&WorkerStatus) -> bool) {
        let reached = async {
            loop {
                if ready(&self.status.borrow_and_update()) {
                    return;
                }
                assert!(
                    self.status.changed().await.is_ok(),
                    "{} stopped by itself: {:?}",
                    self.name,
                    (&mut self.task).await
                );
            }
        };
        assert!(
            tokio::time::timeout(TIMEOUT, reached).await.is_ok(),
            "{} did not {what}: {:?}",
            self.name,
            *self.status.borrow()
        );
    }

    async fn stop(self) -> WorkerSummary {
        self.stop.send(()).expect("running");
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("stops in time")
            .expect("does not panic")
            .expect("ends without error")
    }
}

#[test]
fn cooperative_rebalances_move_partitions_and_change_no_flag() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mock = MockCluster::new(1).expect("a mock cluster");
        mock.create_topic(INPUT, PARTITIONS, 1).expect("input topic");
        mock.create_topic(OUTPUT, 2, 1).expect("output topic");
        mock.create_topic(DEAD, 1, 1).expect("dead-letter topic");
        let bootstrap = mock.bootstrap_servers();
        let input = input();
        let expected = expected(&input);
        assert!(expected.len() > 20, "too few flags to say anything");

        produce(&bootstrap, &input, 0.0, 0.3).await;
        let mut a = Member::start("a", &bootstrap);
        let mut b = Member::start("b", &bootstrap);
        for m in [&mut a, &mut b] {
            m.wait_for("hold a partition", |s| !s.assigned.is_empty()).await;
        }
        // A third member joins and the second leaves while the rest of the input arrives:
        // partitions change owner in the middle of their records, one rebalance at a time.
        produce(&bootstrap, &input, 0.3, 0.6).await;
        let mut c = Member::start("c", &bootstrap);
        c.wait_for("take a partition over", |s| !s.assigned.is_empty()).await;
        produce(&bootstrap, &input, 0.6, 0.8).await;
        let left = b.stop().await;
        produce(&bootstrap, &input, 0.8, 1.0).await;

        let ends: BTreeMap<(String, i32), i64> = input
            .iter()
            .enumerate()
            .map(|(p, lines)| ((INPUT.to_owned(), p as i32), lines.len() as i64))
            .collect();
        // The group settles once the rebalance after the leave is over: every partition held by
        // one of the two, read and committed to its end, and both quiet.
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let (sa, sc) = (a.status.borrow().clone(), c.status.borrow().clone());
            let mut held: Vec<&(String, i32)> = sa.assigned.iter().chain(&sc.assigned).collect();
            held.sort();
            let done = |s: &WorkerStatus| s.settled && s.assigned.iter().all(|tp| s.committed.get(tp) == ends.get(tp));
            if held.len() == ends.len() && held.iter().copied().eq(ends.keys()) && done(&sa) && done(&sc) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the group did not settle with every partition held once: {sa:?} {sc:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let got = newest_flags(&bootstrap);
        let (a, c) = (a.stop().await, c.stop().await);
        assert_eq!(
            got.len(),
            expected.len(),
            "flags: {} expected, {} written",
            expected.len(),
            got.len()
        );
        for (id, json) in &expected {
            assert_eq!(got.get(id), Some(json), "flag {id}");
        }
        assert!(left.records > 0, "the member that left had work: {left:?}");
        assert!(
            c.replayed_records > 0,
            "the member that joined took over partitions read before: {c:?}"
        );
        assert!(a.records > 0, "{a:?}");
    });
    runtime.shutdown_background();
}
