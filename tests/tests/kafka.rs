//! The Kafka worker against a real broker (Apache Kafka, started by each test on loopback ports):
//! end to end, a restart that rebuilds state by replay, and dead letters. Each compares the
//! newest revision of every flag on the output topic with what file mode writes for the same
//! events.

use std::collections::BTreeMap;
use std::time::Duration;

use modsignal_core::Policy;
use modsignal_kafka::dead_letter::{
    HEADER_CODE, HEADER_REASON, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC, HEADER_TRUNCATED,
};
use modsignal_kafka::{WorkerConfig, WorkerStatus, WorkerSummary};
use modsignal_metrics::Metrics;
use modsignal_tests::broker::{Broker, header};
use modsignal_tests::worker::{
    CHANGELOG, DEAD, INPUT, OUTPUT, Running, assert_repeats_identical, cohort_records, config, difference,
    flag_records, init_logs, newest, simulated,
};
use modsignal_tests::{final_cohorts, final_flags, run_engine, run_lines};
use rdkafka::message::{Message, OwnedMessage};

/// The longest a worker may take to read its input and settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(40);

async fn broker_with_topics() -> Broker {
    init_logs();
    let broker = Broker::shared();
    // Records up to 4 MB, so that the dead-letter test can send one larger than the worker's
    // limit (1 MiB), which Kafka's default (1 MiB) would refuse before the worker sees it.
    broker.create_topic(INPUT, 1, &[("max.message.bytes", "4000000")]).await;
    broker.create_topic(OUTPUT, 3, &[]).await;
    broker.create_topic(DEAD, 1, &[]).await;
    broker
}

/// Runs a worker until it has committed `end` and settled, then stops it.
async fn run_until_settled(broker: &Broker, name: &'static str, config: WorkerConfig, end: i64) -> WorkerSummary {
    let mut worker = Running::start(name, config, SETTLE_TIMEOUT);
    worker.settle(broker, end).await;
    worker.stop().await
}

/// The newest revision of each flag on the output topic, as JSON text, by `flag_id`, and how
/// many flag records the topic holds.
async fn newest_flags(broker: &Broker) -> (BTreeMap<String, String>, usize) {
    let records = flag_records(broker).await;
    (newest(&records), records.len())
}

/// The final flags of file mode on the same lines, as JSON text, by `flag_id`.
fn file_mode<S: AsRef<str>>(lines: &[S]) -> (BTreeMap<String, String>, Vec<String>) {
    let (flags, errors) = run_lines(&Policy::default(), lines);
    let finals = final_flags(&flags)
        .into_iter()
        .map(|(id, f)| (id, f.to_json()))
        .collect();
    (finals, errors)
}

/// File mode's final resharer cohort pages on the same lines, as JSON text, by `cohort_id/page`.
fn file_mode_cohorts<S: AsRef<str>>(lines: &[S]) -> BTreeMap<String, String> {
    let (mut engine, _, _) = run_engine(&Policy::default(), lines);
    let mut cohorts = Vec::new();
    engine.take_cohorts(&mut cohorts);
    final_cohorts(&cohorts)
        .into_iter()
        .map(|(key, c)| (key, c.to_json()))
        .collect()
}

fn assert_same_flags(expected: &BTreeMap<String, String>, got: &BTreeMap<String, String>) {
    let diff = difference(expected, got);
    assert!(diff.is_empty(), "flags differ from file mode: {diff}");
}

#[tokio::test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn end_to_end_the_newest_flags_equal_file_mode() {
    let broker = broker_with_topics().await;
    let lines = simulated(30_000, 11);
    let (expected, errors) = file_mode(&lines);
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    assert!(
        expected.len() > 100,
        "too few flags to say anything: {}",
        expected.len()
    );
    broker.produce_lines(INPUT, &lines).await;

    let summary = run_until_settled(&broker, "w", config(&broker, "e2e"), lines.len() as i64).await;
    assert_eq!(summary.records, lines.len() as u64);
    assert_eq!(summary.events, lines.len() as u64);
    assert!(summary.dead_letters.is_empty(), "{:?}", summary.dead_letters);
    assert_eq!(summary.replayed_records, 0, "nothing was committed before");
    assert_eq!(summary.finishes, 1, "one quiet spell, at the end: {summary:?}");
    assert_eq!(summary.unacknowledged, 0);
    let (newest, count) = newest_flags(&broker).await;
    assert_eq!(
        count as u64, summary.flags,
        "every flag acknowledged is on the topic, once"
    );
    assert_same_flags(&expected, &newest);
    // The resharer cohorts share the output topic, keyed by cohort and page: the newest page
    // of each is file mode's.
    let cohorts = file_mode_cohorts(&lines);
    assert!(
        !cohorts.is_empty(),
        "the traffic has resharers whose flags do not matter alone"
    );
    let diff = difference(
        &cohorts,
        &modsignal_tests::worker::newest(&cohort_records(&broker).await),
    );
    assert!(diff.is_empty(), "cohorts differ from file mode: {diff}");
    assert!(broker.read_all(DEAD).await.is_empty());
}

#[tokio::test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn a_worker_that_goes_quiet_twice_still_ends_with_the_file_mode_flags() {
    let broker = broker_with_topics().await;
    let lines = simulated(12_000, 31);
    let (expected, errors) = file_mode(&lines);
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    let half = lines.len() / 2;

    let mut worker = Running::start("w", config(&broker, "bursts"), SETTLE_TIMEOUT);
    broker.produce_lines(INPUT, &lines[..half]).await;
    worker.settle(&broker, half as i64).await;
    let (first_half, _) = file_mode(&lines[..half]);
    assert_same_flags(&first_half, &newest_flags(&broker).await.0);

    broker.produce_lines(INPUT, &lines[half..]).await;
    worker.settle(&broker, lines.len() as i64).await;
    let summary = worker.stop().await;
    assert_eq!(summary.records, lines.len() as u64);
    assert_eq!(summary.finishes, 2, "one finish per quiet spell: {summary:?}");
    assert_same_flags(&expected, &newest_flags(&broker).await.0);
}

#[tokio::test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn a_partition_handed_over_to_a_running_member_ends_with_the_file_mode_flags() {
    let broker = broker_with_topics().await;
    let lines = simulated(30_000, 41);
    let (expected, errors) = file_mode(&lines);
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    let cut = lines.len() * 2 / 3;
    broker.produce_lines(INPUT, &lines[..cut]).await;

    let mut first = Running::start("first", config(&broker, "handover"), SETTLE_TIMEOUT);
    first
        .wait_for(&broker, "read 3000 records", |s| s.records >= 3_000)
        .await;
    let mut second = Running::start("second", config(&broker, "handover"), SETTLE_TIMEOUT);
    // The second worker is a member, holding nothing, when the first leaves: the partition
    // reaches it through a rebalance while it runs, wherever the first one had got to.
    second.wait_for(&broker, "join the group", |s| s.joined).await;
    let first = first.stop().await;
    broker.produce_lines(INPUT, &lines[cut..]).await;
    second.settle(&broker, lines.len() as i64).await;
    let second = second.stop().await;

    assert!(first.records >= 3_000);
    assert_eq!(
        second.replayed_records, first.records,
        "the second worker replays exactly what the first committed"
    );
    assert_eq!(first.records + second.records, lines.len() as u64, "and reads the rest");
    assert_same_flags(&expected, &newest_flags(&broker).await.0);
}

#[tokio::test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn a_restarted_worker_rebuilds_its_state_by_replay() {
    let broker = broker_with_topics().await;
    let lines = simulated(20_000, 23);
    let (expected, errors) = file_mode(&lines);
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    let half = lines.len() / 2;

    broker.produce_lines(INPUT, &lines[..half]).await;
    let first = run_until_settled(&broker, "first", config(&broker, "restart"), half as i64).await;
    assert_eq!(first.records, half as u64);
    // What the first worker wrote is the final state of the first half only.
    let (first_half, _) = file_mode(&lines[..half]);
    assert_same_flags(&first_half, &newest_flags(&broker).await.0);

    broker.produce_lines(INPUT, &lines[half..]).await;
    let second = run_until_settled(&broker, "second", config(&broker, "restart"), lines.len() as i64).await;
    assert_eq!(
        (second.replayed_records, second.replayed_events),
        (half as u64, half as u64),
        "the second worker replays the first half"
    );
    assert_eq!(
        second.records,
        (lines.len() - half) as u64,
        "and reads only the second half"
    );
    assert!(second.replay_events_per_sec().is_some());
    assert_same_flags(&expected, &newest_flags(&broker).await.0);

    // A third worker has nothing new to read: it only replays, and whatever it writes again
    // is identical to what is already there under the same flag_id and revision.
    let third = run_until_settled(&broker, "third", config(&broker, "restart"), lines.len() as i64).await;
    assert_eq!((third.records, third.replayed_events), (0, lines.len() as u64));
    assert_repeats_identical(&flag_records(&broker).await);
    assert_same_flags(&expected, &newest_flags(&broker).await.0);
}

/// Where the first worker of a snapshot test keeps its snapshots.
enum Store {
    Local(std::path::PathBuf),
    Changelog,
}

/// A worker writes snapshots, then dies without draining (its task is aborted, as a crash
/// would end it); the next owner restores the snapshot and reads only what follows.
async fn restore_from(store: Store) {
    let broker = broker_with_topics().await;
    broker
        .create_topic(CHANGELOG, 2, &[("cleanup.policy", "compact")])
        .await;
    let lines = simulated(20_000, 29);
    let (expected, errors) = file_mode(&lines);
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    let half = lines.len() / 2;
    let with_store = |group: &str| {
        let mut c = config(&broker, group);
        c.snapshot_interval = Duration::from_millis(300);
        match &store {
            Store::Local(dir) => c.state_dir = Some(dir.clone()),
            Store::Changelog => c.changelog_topic = Some(broker.topic(CHANGELOG)),
        }
        c
    };

    broker.produce_lines(INPUT, &lines[..half]).await;
    let mut first = Running::start("first", with_store("snap"), SETTLE_TIMEOUT);
    first.settle(&broker, half as i64).await;
    // Wait for a snapshot at the committed offset, then kill the worker: no drain, no final
    // snapshot, nothing but what the periodic snapshot left.
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    loop {
        let there = match &store {
            Store::Local(dir) => dir.join(format!("{}-0/{half:020}.snap", broker.topic(INPUT))).is_file(),
            Store::Changelog => broker.read_all(CHANGELOG).await.iter().any(|m| {
                // The slots alternate: the snapshot may be in either.
                m.key().is_some_and(|k| {
                    [
                        format!("{}/0/a/m", broker.topic(INPUT)),
                        format!("{}/0/b/m", broker.topic(INPUT)),
                    ]
                    .iter()
                    .any(|x| x.as_bytes() == k)
                }) && m
                    .payload()
                    .is_some_and(|v| String::from_utf8_lossy(v).contains(&format!("\"offset\":{half},")))
            }),
        };
        if there {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no snapshot at offset {half}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.crash().await;

    broker.produce_lines(INPUT, &lines[half..]).await;
    let second = run_until_settled(&broker, "second", with_store("snap"), lines.len() as i64).await;
    assert_eq!(second.snapshots_restored, 1, "{second:?}");
    assert!(second.restored_keys > 1_000, "{second:?}");
    assert_eq!(
        second.replayed_records, 0,
        "the snapshot is at the committed offset: {second:?}"
    );
    assert_eq!(second.records, (lines.len() - half) as u64);
    assert_same_flags(&expected, &newest_flags(&broker).await.0);
}

#[tokio::test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn a_restarted_worker_restores_its_local_snapshot_and_reads_only_the_rest() {
    let dir = std::env::temp_dir().join(format!("modsignal-snapshots-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    restore_from(Store::Local(dir.clone())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn a_new_owner_restores_the_changelog_snapshot_and_reads_only_the_rest() {
    restore_from(Store::Changelog).await;
}

#[tokio::test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn bad_records_go_to_the_dead_letter_topic_with_their_reasons() {
    let broker = broker_with_topics().await;
    let good = simulated(3_000, 5);
    let oversized = format!(
        r#"{{"type":"post","at":"2026-01-05T00:00:00Z","id":"big","author":{{"id":"u-big"}},"audience":"public","pad":"{}"}}"#,
        "x".repeat(1_500_000)
    );
    // (record, expected code); `None` is a record with no value.
    let bad: Vec<(Option<String>, &str)> = vec![
        (Some("{not json".into()), "invalid_json"),
        (
            Some(r#"{"type":"post","at":"2026-01-05T00:00:00Z","id":"no-author","audience":"public"}"#.into()),
            "missing_field",
        ),
        (
            Some(
                r#"{"type":"post","at":"3026-01-05T10:00:00Z","id":"far","author":{"id":"u1"},"audience":"public"}"#
                    .into(),
            ),
            "invalid_field",
        ),
        (Some(oversized.clone()), "too_large"),
        (
            Some(
                r#"{"type":"reshare","at":"2026-01-05T00:00:05Z","id":"dl-post","of":"other","author":{"id":"u2"}}"#
                    .into(),
            ),
            "kind_conflict",
        ),
        (None, "invalid_json"),
    ];
    let own_post =
        r#"{"type":"post","at":"2026-01-05T00:00:00Z","id":"dl-post","author":{"id":"u3"},"audience":"public"}"#;

    // Good and bad records interleaved; the post the conflicting reshare reuses comes first.
    let mut records: Vec<Option<String>> = vec![Some(own_post.to_owned())];
    let step = good.len() / bad.len();
    for (i, chunk) in good.chunks(step).enumerate() {
        records.extend(chunk.iter().cloned().map(Some));
        if let Some((r, _)) = bad.get(i) {
            records.push(r.clone());
        }
    }
    let values: Vec<Option<&[u8]>> = records.iter().map(|r| r.as_deref().map(str::as_bytes)).collect();
    let offsets = broker.produce(INPUT, &values).await;

    let lines: Vec<&str> = records.iter().filter_map(|r| r.as_deref()).collect();
    let (expected, errors) = file_mode(&lines);
    assert_eq!(
        errors.len(),
        bad.len() - 1,
        "file mode refuses the same records: {errors:?}"
    );

    let metrics = Metrics::new();
    let mut worker = Running::start_with_metrics("w", config(&broker, "dead"), SETTLE_TIMEOUT, metrics.clone());
    worker.settle(&broker, records.len() as i64).await;
    let summary = worker.stop().await;
    let mut want_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, code) in &bad {
        *want_counts.entry(code).or_default() += 1;
    }
    let got_counts: BTreeMap<&str, u64> = summary.dead_letters.iter().map(|(c, &n)| (c.as_str(), n)).collect();
    assert_eq!(got_counts, want_counts);
    assert_eq!(summary.records, records.len() as u64);

    // The metrics count the same things as the summary.
    let text = metrics.render();
    assert_eq!(metric_sum(&text, "modsignal_events_total"), summary.events as f64);
    assert_eq!(metric_sum(&text, "modsignal_flags_emitted_total"), summary.flags as f64);
    for (code, n) in &want_counts {
        let series = format!("{{reason=\"{code}\"}}");
        assert_eq!(
            metric_sum(&text, &format!("modsignal_dead_letters_total{series}")),
            *n as f64
        );
        assert_eq!(
            metric_sum(&text, &format!("modsignal_events_rejected_total{series}")),
            *n as f64
        );
    }
    assert!(metric_sum(&text, "modsignal_event_to_flag_latency_seconds_count") > 0.0);
    assert_eq!(metric_sum(&text, "modsignal_state_restores_total"), 1.0);
    assert_eq!(metric_sum(&text, "modsignal_state_restores_in_progress"), 0.0);
    assert_eq!(metric_sum(&text, "modsignal_partitions_assigned"), 1.0);
    assert!(metric_sum(&text, "modsignal_state_messages") > 0.0);

    let letters: Vec<OwnedMessage> = broker.read_all(DEAD).await;
    assert_eq!(letters.len(), bad.len());
    for ((record, code), letter) in bad.iter().zip(&letters) {
        let i = records.iter().position(|r| r == record).expect("produced");
        assert_eq!(header(letter, HEADER_CODE).as_deref(), Some(*code));
        assert!(!header(letter, HEADER_REASON).unwrap_or_default().is_empty());
        assert_eq!(header(letter, HEADER_SOURCE_TOPIC), Some(broker.topic(INPUT)));
        assert_eq!(header(letter, HEADER_SOURCE_PARTITION).as_deref(), Some("0"));
        assert_eq!(header(letter, HEADER_SOURCE_OFFSET), Some(offsets[i].to_string()));
        let original = record.as_deref().unwrap_or("").as_bytes();
        let value = letter.payload().unwrap_or(&[]);
        if original.len() > value.len() {
            assert_eq!(header(letter, HEADER_TRUNCATED), Some(original.len().to_string()));
            assert!(original.starts_with(value) && !value.is_empty());
        } else {
            assert_eq!(value, original);
            assert_eq!(header(letter, HEADER_TRUNCATED), None);
        }
    }
    let reason = header(&letters[2], HEADER_REASON).unwrap();
    assert!(reason.contains("`at`"), "the reason names the field: {reason}");

    assert_same_flags(&expected, &newest_flags(&broker).await.0);
}

/// The sum of every series of `name` (a bare metric name, or one with its labels) in a
/// Prometheus text exposition.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = if name.ends_with('}') {
                rest.strip_prefix(' ')?
            } else if let Some(labels) = rest.strip_prefix('{') {
                labels.split_once("} ")?.1
            } else {
                rest.strip_prefix(' ')?
            };
            value.parse::<f64>().ok()
        })
        .sum()
}

/// One record of a platform stream: its key (the account, or the message for side inputs)
/// and its value.
type Keyed = (String, String);

/// Splits simulated canonical events the way real inputs arrive: what Bluesky's Jetstream
/// carries (posts, reposts, deletes by their author), keyed by the author's DID, and a
/// canonical side input of everything else (labels, reports, impressions, platform takedowns
/// and restrictions, account changes and follower counts), keyed by message or account.
fn as_platform_streams(events: &[modsignal_core::Event<'static>]) -> (Vec<Keyed>, Vec<Keyed>) {
    use modsignal_core::EventKind;
    use modsignal_core::event::RemovedBy;
    use serde_json::json;
    let did_of = |uri: &str| uri.trim_start_matches("at://").split('/').next().unwrap().to_owned();
    let rkey_of = |uri: &str| uri.rsplit('/').next().unwrap().to_owned();
    let collection_of = |uri: &str| uri.trim_start_matches("at://").split('/').nth(1).unwrap().to_owned();
    // A reshare of a reshare becomes, as on Bluesky, a repost of the original via the reshare.
    let mut reshared: BTreeMap<String, String> = BTreeMap::new();
    for e in events {
        if let EventKind::Reshare { id, of, .. } = &e.kind {
            reshared.insert(id.to_string(), of.to_string());
        }
    }
    let original = |mut id: String| {
        while let Some(of) = reshared.get(&id) {
            id = of.clone();
        }
        id
    };
    let (mut stream, mut side) = (Vec::new(), Vec::new());
    for e in events {
        let time_us = e.at.0 * 1000;
        let commit = |uri: &str, operation: &str, record: Option<serde_json::Value>| {
            let mut c = json!({"operation": operation, "collection": collection_of(uri), "rkey": rkey_of(uri)});
            if let Some(r) = record {
                c["record"] = r;
            }
            let v = json!({"did": did_of(uri), "time_us": time_us, "kind": "commit", "commit": c});
            (did_of(uri), v.to_string())
        };
        let followers = |author: &modsignal_core::event::Author<'_>| {
            author.followers.map(|f| {
                let v = json!({"type": "account", "at": e.at.0, "user": author.id, "followers": f});
                (author.id.to_string(), v.to_string())
            })
        };
        match &e.kind {
            EventKind::Post {
                id,
                author,
                reply_to,
                quote_of,
                mentions,
                ..
            } => {
                let mut record = json!({"text": "not read"});
                if let Some(r) = reply_to {
                    record["reply"] = json!({"parent": {"uri": r}, "root": {"uri": r}});
                }
                if let Some(q) = quote_of {
                    record["embed"] = json!({"$type": "app.bsky.embed.record", "record": {"uri": q}});
                }
                if !mentions.is_empty() {
                    let features: Vec<_> = mentions
                        .iter()
                        .map(|m| json!({"$type": "app.bsky.richtext.facet#mention", "did": m}))
                        .collect();
                    record["facets"] = json!([{ "features": features }]);
                }
                stream.push(commit(id, "create", Some(record)));
                side.extend(followers(author));
            }
            EventKind::Reshare { id, of, author, via } => {
                let subject = original(of.to_string());
                let via = if subject == *of {
                    via.as_ref().map(std::string::ToString::to_string)
                } else {
                    Some(of.to_string())
                };
                let mut record = json!({"subject": {"uri": subject}});
                if let Some(v) = via {
                    record["via"] = json!({"uri": v});
                }
                stream.push(commit(id, "create", Some(record)));
                side.extend(followers(author));
            }
            EventKind::Delete {
                id,
                by: RemovedBy::Author,
            } => stream.push(commit(id, "delete", None)),
            EventKind::Account { user, .. } => side.push((user.to_string(), e.to_json())),
            EventKind::Delete { id, .. }
            | EventKind::Restrict { id, .. }
            | EventKind::Restore { id, .. }
            | EventKind::Label { id, .. }
            | EventKind::Report { id, .. }
            | EventKind::Impressions { id, .. } => side.push((original(id.to_string()), e.to_json())),
        }
    }
    (stream, side)
}

/// Produces keyed records; librdkafka's default partitioner puts equal keys in one partition.
/// Returns the end offset of every partition written.
async fn produce_keyed(broker: &Broker, topic: &str, records: &[Keyed]) -> BTreeMap<(String, i32), i64> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = broker.client_config().create().expect("producer");
    let topic = &broker.topic(topic);
    let mut ends = BTreeMap::new();
    for chunk in records.chunks(1000) {
        let sends = chunk.iter().map(|(key, value)| {
            producer.send(
                FutureRecord::to(topic).key(key.as_str()).payload(value.as_str()),
                Duration::from_secs(30),
            )
        });
        for r in futures_util::future::join_all(sends).await {
            let d = r.map_err(|(e, _)| e).expect("produced");
            let (partition, offset) = (d.partition, d.offset);
            let end = ends.entry((topic.to_owned(), partition)).or_insert(0);
            *end = (*end).max(offset + 1);
        }
    }
    ends
}

#[tokio::test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn platform_streams_keyed_by_account_are_routed_to_their_messages() {
    use modsignal_formats::{Format, Reader};
    let broker = broker_with_topics().await;
    broker.create_topic("jetstream", 3, &[]).await;
    broker.create_topic("side", 2, &[]).await;
    broker.create_topic("routed", 4, &[]).await;
    let events: Vec<_> = simulated(12_000, 31)
        .iter()
        .map(|l| modsignal_core::decode(l.as_bytes()).unwrap().into_owned())
        .collect();
    let (mut stream, side) = as_platform_streams(&events);
    // Simulated hours are too few for reposters to change their minds: some of the reposts of
    // labelled posts are deleted by their authors a minute later, as Jetstream shows it (the
    // delete names the repost only).
    let labelled: std::collections::BTreeSet<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            modsignal_core::EventKind::Label { id, .. } => Some(id.to_string()),
            _ => None,
        })
        .collect();
    let mut undone = 0;
    for e in &events {
        if let modsignal_core::EventKind::Reshare { id, of, .. } = &e.kind
            && labelled.contains(of.as_ref())
            && undone < 40
        {
            undone += 1;
            let did = id.trim_start_matches("at://").split('/').next().unwrap();
            let rkey = id.rsplit('/').next().unwrap();
            let record = serde_json::json!({
                "did": did,
                "time_us": (e.at.0 + 60_000) * 1000,
                "kind": "commit",
                "commit": {"operation": "delete", "collection": "app.bsky.feed.repost", "rkey": rkey},
            });
            stream.push((did.to_owned(), record.to_string()));
        }
    }

    // What file mode makes of the same records: the Jetstream records read as Jetstream,
    // the side input as canonical events; the engine does not care about their order.
    let mut reader = Reader::new(Format::Jetstream);
    let mut canonical = Vec::new();
    for (_, record) in &stream {
        reader
            .read(record.as_bytes(), &mut canonical)
            .expect("the converted stream reads");
    }
    let mut lines: Vec<String> = canonical.iter().map(modsignal_core::Event::to_json).collect();
    lines.extend(side.iter().map(|(_, v)| v.clone()));
    let (expected, errors) = file_mode(&lines);
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    assert!(expected.len() > 50, "too few flags to say anything: {}", expected.len());
    // The case routing exists for: a repost deleted by its author, named only by the repost's
    // id, must still reach the partition of the post it reshared.
    let reposts_deleted = expected
        .values()
        .map(|f| serde_json::from_str::<serde_json::Value>(f).unwrap())
        .filter(|f| f["subject"] == "resharer" && f["exposure"]["removal"] == "deleted")
        .count();
    eprintln!("{reposts_deleted} resharer flags of deleted reposts");
    assert!(reposts_deleted > 0, "no resharer flag of a deleted repost to check");

    let mut ends = produce_keyed(&broker, "jetstream", &stream).await;
    ends.extend(produce_keyed(&broker, "side", &side).await);
    let routed_config = || {
        let mut c = config(&broker, "routing");
        c.input_topics = vec![broker.topic("jetstream"), broker.topic("side")];
        c.input_formats.insert(broker.topic("jetstream"), Format::Jetstream);
        c.repartition_topic = Some(broker.topic("routed"));
        c
    };
    // Two instances: each runs a router and an engine stage, sharing the partitions of both.
    let workers = [
        Running::start("a", routed_config(), SETTLE_TIMEOUT),
        Running::start("b", routed_config(), SETTLE_TIMEOUT),
    ];
    // Done when both inputs are committed to their ends and then every partition of the
    // repartition topic is owned by one of the two and committed to its end too: an input
    // commit only says that its records were routed, not that an engine has read them.
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT * 2;
    let mut routed_ends: Option<BTreeMap<(String, i32), i64>> = None;
    loop {
        let statuses: Vec<WorkerStatus> = workers.iter().map(|w| w.status.borrow().clone()).collect();
        let committed: BTreeMap<(String, i32), i64> = statuses.iter().flat_map(|s| s.committed.clone()).collect();
        let inputs_done = ends.iter().all(|(tp, end)| committed.get(tp) == Some(end));
        if inputs_done && routed_ends.is_none() {
            // Input is committed only once what it routed is acknowledged: the repartition
            // topic holds every routed event from here on (the routers still append their
            // watermarks to it, so its ends keep moving).
            let mut by_partition = BTreeMap::new();
            for m in broker.read_all("routed").await {
                let end = by_partition.entry((broker.topic("routed"), m.partition())).or_insert(0);
                *end = (*end).max(m.offset() + 1);
            }
            routed_ends = Some(by_partition);
        }
        if let Some(routed_ends) = &routed_ends {
            let assigned: std::collections::BTreeSet<_> = statuses.iter().flat_map(|s| s.assigned.clone()).collect();
            let routed_done = (0..4).all(|p| assigned.contains(&(broker.topic("routed"), p)))
                && routed_ends
                    .iter()
                    .all(|(tp, end)| committed.get(tp).is_some_and(|c| c >= end));
            if routed_done && statuses.iter().all(|s| s.settled) {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workers did not settle; ends {ends:?}; repartition ends {routed_ends:?}; statuses {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let [a, b] = workers;
    let (a, b) = (a.stop().await, b.stop().await);
    let routed: u64 = [&a, &b]
        .iter()
        .map(|s| s.router.as_ref().expect("a router ran").events)
        .sum();
    // At least once: a partition that changed hands mid-run is routed again from its last
    // commit, which the engine takes as repeats.
    assert!(
        routed as usize >= lines.len(),
        "every event was routed: {routed} of {}",
        lines.len()
    );
    assert_same_flags(&expected, &newest_flags(&broker).await.0);
}

/// `modsignal topics` against the real binary: on an empty cluster it creates every topic the
/// configuration names, each with the settings its role needs; run again it changes nothing;
/// on a cluster whose topics are set wrong it names each problem and exits with status 1, and
/// the worker refuses to start on the same topics with the same words.
#[tokio::test]
#[cfg_attr(
    not(feature = "kafka"),
    ignore = "starts Apache Kafka: scripts/test, or --features modsignal-tests/kafka"
)]
async fn the_topics_command_creates_what_is_missing_and_names_what_is_wrong() {
    use modsignal_kafka::topics;
    use modsignal_tests::binary::modsignal_command;
    init_logs();
    let broker = Broker::shared();
    let names = ["events", "flags", "dead", "changelog", "routed", "marks"].map(|t| broker.topic(t));
    let args = |names: &[String; 6]| -> Vec<String> {
        let mut a = vec!["--brokers".to_owned(), broker.addr()];
        for (option, name) in [
            "--input-topic",
            "--output-topic",
            "--dead-letter-topic",
            "--changelog-topic",
            "--repartition-topic",
            "--watermark-topic",
        ]
        .iter()
        .zip(names)
        {
            a.push((*option).to_owned());
            a.push(name.clone());
        }
        a
    };
    let topics_command = |names: &[String; 6], extra: &[&str]| {
        let out = modsignal_command()
            .arg("topics")
            .args(args(names))
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run modsignal topics");
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cluster = |names: [String; 6]| {
        let config = config(&broker, "topics");
        async move {
            let admin = topics::admin(&config).expect("admin client");
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            topics::describe(&admin, &names, topics::ADMIN_TIMEOUT)
                .await
                .expect("describe")
        }
    };
    let policy = |c: &BTreeMap<String, topics::Existing>, t: &str| {
        let e = &c[t];
        (e.partitions, e.settings["cleanup.policy"].clone())
    };

    // An empty cluster: every topic is created.
    let (status, stdout, stderr) = topics_command(&names, &["--partitions", "3"]);
    assert!(status.success(), "{status}: {stdout}{stderr}");
    assert_eq!(stdout.matches(": created,").count(), 6, "{stdout}");
    let created = cluster(names.clone()).await;
    let [events, flags, dead, changelog, routed, marks] = &names;
    assert_eq!(policy(&created, events), (3, "delete".into()));
    assert_eq!(policy(&created, flags), (3, "compact".into()));
    assert_eq!(policy(&created, dead), (3, "delete".into()));
    assert_eq!(created[dead].settings["retention.ms"], "2592000000");
    assert_eq!(created[events].settings["retention.ms"], "-1");
    assert_eq!(created[routed].settings["retention.ms"], "-1");
    assert_eq!(policy(&created, changelog), (3, "compact".into()));
    assert_eq!(policy(&created, routed), (3, "delete".into()));
    assert_eq!(policy(&created, marks), (1, "compact".into()));

    // Again: nothing to do, nothing changed.
    let (status, stdout, stderr) = topics_command(&names, &["--partitions", "5"]);
    assert!(status.success(), "{status}: {stdout}{stderr}");
    assert_eq!(stdout.matches(": exists,").count(), 6, "{stdout}");
    assert!(!stdout.contains("created") && !stdout.contains("error"), "{stdout}");
    assert_eq!(cluster(names.clone()).await, created);
    let (status, stdout, _) = topics_command(&names, &["--check"]);
    assert!(status.success(), "{stdout}");

    // Topics set wrong: a changelog that deletes, a compacted dead-letter topic.
    let wrong =
        ["events", "flags", "dead", "changelog", "routed", "marks"].map(|t| broker.topic(&format!("wrong-{t}")));
    let short = |t: &str| format!("wrong-{t}");
    broker.create_topic(&short("events"), 2, &[]).await;
    broker
        .create_topic(&short("dead"), 1, &[("cleanup.policy", "compact")])
        .await;
    broker
        .create_topic(&short("changelog"), 2, &[("cleanup.policy", "delete")])
        .await;
    let (status, stdout, stderr) = topics_command(&wrong, &["--check"]);
    eprintln!("modsignal topics --check on wrong topics:\n{stdout}{stderr}");
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("output topic `{}`: missing", wrong[1])),
        "{stdout}"
    );
    let changelog_error = format!(
        "error: changelog topic `{}` must be compacted and only compacted (cleanup.policy=delete, wanted compact)",
        wrong[3]
    );
    let dead_error = format!("error: dead-letter topic `{}` is compacted", wrong[2]);
    assert!(stdout.contains(&changelog_error), "{stdout}");
    assert!(stdout.contains(&dead_error), "{stdout}");
    assert!(stderr.contains("would break a guarantee"), "{stderr}");
    // Without --check the missing ones are created, the wrong ones left as they are, and the
    // status is still 1.
    let (status, stdout, _) = topics_command(&wrong, &[]);
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.matches(": created,").count(), 3, "{stdout}");
    let after = cluster(wrong.clone()).await;
    assert_eq!(policy(&after, &wrong[3]), (2, "delete".into()));
    // The worker checks the same at start-up and refuses to read.
    let out = modsignal_command()
        .arg("run")
        .args(args(&wrong))
        .args(["--group", &broker.group("wrong")])
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run modsignal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&changelog_error) && stderr.contains(&dead_error),
        "{stderr}"
    );
}
