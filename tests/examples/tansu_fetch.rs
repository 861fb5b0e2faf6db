//! Why the test broker keeps its data in SQLite: tansu 0.6.0's memory storage answers a fetch
//! from an offset inside a record batch with the wrong batches, so a consumer resuming from a
//! committed offset (a worker after a crash or a rebalance) loses records or reads nothing.
//!
//! `cargo run -p modsignal-tests --example tansu_fetch -- memory` (or `sqlite`) produces 5,000
//! records in batches, then reads them from several starting offsets and prints what arrives.
//! With memory storage, reading from offset 1 starts at 3,971 and misses 884 records, and from
//! offset 4,500 nothing comes; with SQLite every read is whole and in order.

use std::time::Duration;

use modsignal_tests::backlog::stream;
use modsignal_tests::broker::{Broker, Storage};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

#[tokio::main]
async fn main() {
    let storage = match std::env::args().nth(1).as_deref() {
        Some("memory") => Storage::Memory,
        _ => Storage::Sqlite,
    };
    let broker = Broker::start_with(storage);
    broker.create_topic("t", 1, &[]).await;
    let lines = stream(5_000, 21.0, 13);
    let offsets = broker.produce_lines_to("t", 0, &lines).await;
    println!("{storage:?}: produced {} records", offsets.len());
    for start in [0i64, 1, 100, 1647, 2000, 3286, 3962, 4500] {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.addr())
            .set("group.id", format!("probe-{start}"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("t", 0, Offset::Offset(start)).expect("offset");
        consumer.assign(&tpl).expect("assign");
        let (mut n, mut first, mut last, mut gaps) = (0, None, -1i64, 0);
        loop {
            match consumer.poll(Duration::from_secs(5)) {
                Some(Ok(m)) => {
                    n += 1;
                    first.get_or_insert(m.offset());
                    gaps += usize::from(last >= 0 && m.offset() != last + 1);
                    last = m.offset();
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => break,
                Some(Err(e)) => panic!("{e}"),
            }
        }
        let expected = offsets.len() as i64 - start;
        println!("from {start}: {n} of {expected} records, first {first:?}, last {last}, {gaps} jumps");
    }
}
