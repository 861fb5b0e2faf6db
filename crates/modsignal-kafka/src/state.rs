//! Keeping a partition's state safe between owners: snapshots of its engine
//! ([`modsignal_core::Engine::snapshot`]) with the input offset they reflect, written to a local
//! directory and to a compacted changelog topic.
//!
//! A snapshot at offset `S` holds the state after every record before `S` was applied and the
//! flags for them were sent. It may be restored only when `S` is at most the committed offset
//! `C` (every flag for the records before `C` was acknowledged); the records from `S` to `C` are
//! then replayed, their flags dropped, and processing resumes at `C`. A snapshot ahead of the
//! committed offset (taken before a crash, whose flags were never acknowledged) would skip flags
//! that must still be written, so it is never used; that is why two snapshots are kept. Flags a
//! flush or a finish writes without reading a record (a quiet partition's last revisions) are
//! covered by no checkpoint, so the worker takes no snapshot while any wait for
//! acknowledgement: the next owner of a partition restored from an older state writes them
//! again.
//!
//! # The changelog topic
//!
//! Each snapshot is written in chunks under keys of its input partition and one of two slots,
//! which alternate so that a snapshot cut short by a crash never spoils the previous one:
//!
//! - `{topic}/{partition}/{slot}/c/{i}`: chunk `i`, the value being the snapshot's checksum
//!   (8 bytes, little-endian xxh3-64 of the whole snapshot) and then up to [`CHUNK_BYTES`] bytes;
//! - `{topic}/{partition}/{slot}/m`: the manifest, written after every chunk was acknowledged:
//!   `{"offset":S,"chunks":n,"bytes":len,"checksum":"…","seq":k}`. `seq` counts the
//!   partition's snapshots, so that of two at one offset (with exactly-once, a quiet partition
//!   is snapshotted again when its finish writes flags) the later is restored; a manifest
//!   without it reads as 0.
//!
//! Compaction keeps the newest value of each key, so the topic holds at most two snapshots per
//! partition. Chunks left over from a larger earlier snapshot in the same slot are deleted with
//! tombstones when the worker knows of them. An input partition `p` is written to changelog
//! partition `p mod n`, `n` being the changelog's partition count.
//!
//! With exactly-once, several producers write one changelog partition (the router's and the
//! engine's owners, the owners of partitions `p` and `p + n`, an instance killed mid-transaction),
//! so a restore first waits until the transactions open on it have ended: a `read_committed`
//! reader stops at the oldest open one and would miss what others committed after it.
//!
//! This is a snapshot changelog, not Kafka Streams' per-key one: every snapshot rewrites the
//! whole partition state (about 110 bytes per message or reshare with short ids), so the snapshot interval
//! trades broker traffic against how much input a restore replays.

use std::collections::HashMap;
use std::fs;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::commit::Tp;
use crate::config::WorkerConfig;
use crate::error::{Halt, WorkerError};
use crate::read_to_end::{Next, ReadToEnd};
use crate::retry;
use crate::shutdown::{Stop, Throttle};

/// The largest chunk of a snapshot in one changelog record: well under Kafka's default largest
/// message (1 MB), with room for the key.
pub const CHUNK_BYTES: usize = 512 * 1024;

/// The most chunks one snapshot is written in (512 GiB): a chunk key numbered beyond it is not
/// the worker's, and is left alone.
const MAX_CHUNKS: u32 = 1 << 20;

/// The snapshots kept per partition in the local directory.
const LOCAL_KEEP: usize = 2;

/// A snapshot of one partition's engine and the input offset it reflects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub offset: i64,
    pub bytes: Vec<u8>,
}

/// Where a restored state came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Local,
    Changelog,
}

impl Source {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Changelog => "changelog",
        }
    }
}

/// The snapshot files of one partition: `{dir}/{topic}-{partition}/{offset:020}.snap`.
fn partition_dir(dir: &Path, tp: &Tp) -> PathBuf {
    // Kafka topic names are ASCII letters, digits, `.`, `_` and `-`: safe in a file name.
    dir.join(format!("{}-{}", tp.topic, tp.partition))
}

/// Writes a snapshot file atomically (a temporary file, synced, then renamed), then deletes
/// all but the newest [`LOCAL_KEEP`].
pub(crate) fn write_local(dir: &Path, tp: &Tp, snap: &Snapshot) -> std::io::Result<()> {
    let pdir = partition_dir(dir, tp);
    fs::create_dir_all(&pdir)?;
    let path = pdir.join(format!("{:020}.snap", snap.offset));
    let tmp = pdir.join(format!("{:020}.snap.tmp", snap.offset));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&snap.bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    if let Ok(d) = fs::File::open(&pdir) {
        // The rename is durable only once the directory is synced.
        let _ = d.sync_all();
    }
    let mut all = local_offsets(&pdir);
    all.sort_unstable_by(|a, b| b.cmp(a));
    for old in all.into_iter().skip(LOCAL_KEEP) {
        let _ = fs::remove_file(pdir.join(format!("{old:020}.snap")));
    }
    Ok(())
}

fn local_offsets(pdir: &Path) -> Vec<i64> {
    let Ok(entries) = fs::read_dir(pdir) else {
        return Vec::new();
    };
    entries
        .filter_map(std::result::Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".snap")?.parse::<i64>().ok()
        })
        .collect()
}

/// The local snapshots of `tp` at offsets up to `max_offset`, newest first, read lazily.
pub(crate) fn local_candidates(dir: &Path, tp: &Tp, max_offset: i64) -> Vec<(i64, PathBuf)> {
    let pdir = partition_dir(dir, tp);
    let mut v: Vec<(i64, PathBuf)> = local_offsets(&pdir)
        .into_iter()
        .filter(|&o| o <= max_offset)
        .map(|o| (o, pdir.join(format!("{o:020}.snap"))))
        .collect();
    v.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
    v
}

/// A changelog manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Manifest {
    offset: i64,
    chunks: u32,
    bytes: u64,
    /// xxh3-64 of the snapshot, in hex.
    checksum: String,
    /// The snapshot's number among its partition's, growing.
    #[serde(default)]
    seq: u64,
}

fn key_prefix(tp: &Tp) -> String {
    format!("{}/{}/", tp.topic, tp.partition)
}

fn manifest_key(tp: &Tp, slot: u8) -> String {
    format!("{}{}/m", key_prefix(tp), slot_name(slot))
}

fn chunk_key(tp: &Tp, slot: u8, i: u32) -> String {
    format!("{}{}/c/{i}", key_prefix(tp), slot_name(slot))
}

fn slot_name(slot: u8) -> char {
    if slot == 0 { 'a' } else { 'b' }
}

/// What a partition's changelog slots hold, as far as this worker knows: the chunk count of
/// each slot, so a smaller snapshot can delete the chunks a larger one left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slots {
    pub chunks: [u32; 2],
    /// The slot the next snapshot goes to.
    pub next: u8,
    /// The number of the newest snapshot written (see the manifest's `seq`).
    pub seq: u64,
}

/// A changelog record: its key and value.
pub type Record = (String, Vec<u8>);

/// The changelog records of `snap` in `slot`, numbered `seq`: each chunk's, and the
/// manifest's, which is written only after every chunk is acknowledged.
pub fn snapshot_records(tp: &Tp, slot: u8, seq: u64, snap: &Snapshot) -> (Vec<Record>, Record) {
    let sum = xxh3_64(&snap.bytes);
    let chunks: Vec<Record> = snap
        .bytes
        .chunks(CHUNK_BYTES)
        .enumerate()
        .map(|(i, chunk)| {
            let mut value = Vec::with_capacity(8 + chunk.len());
            value.extend_from_slice(&sum.to_le_bytes());
            value.extend_from_slice(chunk);
            (chunk_key(tp, slot, i as u32), value)
        })
        .collect();
    let manifest = Manifest {
        offset: snap.offset,
        chunks: chunks.len() as u32,
        bytes: snap.bytes.len() as u64,
        checksum: format!("{sum:016x}"),
        seq,
    };
    let value = serde_json::to_vec(&manifest).expect("a manifest serializes");
    (chunks, (manifest_key(tp, slot), value))
}

/// Where in the changelog a snapshot of one input partition goes.
pub(crate) struct Place {
    pub topic: String,
    /// The changelog partition.
    pub partition: i32,
    pub slot: u8,
    /// The snapshot's number (the manifest's `seq`).
    pub seq: u64,
    /// The chunks the slot held before, whose extra ones are deleted.
    pub leftover: u32,
}

/// Writes `snap` of `tp` to the changelog at `place`: every chunk, then (once they are all
/// acknowledged) the manifest, then tombstones for the slot's leftover chunks. Returns the
/// chunk count written.
pub(crate) async fn upload(producer: FutureProducer, place: Place, tp: Tp, snap: Snapshot) -> Result<u32, KafkaError> {
    let Place {
        topic,
        partition,
        slot,
        seq,
        leftover,
    } = place;
    let (chunks, (manifest_key, manifest)) = snapshot_records(&tp, slot, seq, &snap);
    let n = chunks.len() as u32;
    let mut sends = Vec::with_capacity(chunks.len());
    for (key, value) in chunks {
        let producer = producer.clone();
        let topic = topic.clone();
        sends.push(async move {
            let record = FutureRecord::<str, [u8]>::to(&topic)
                .partition(partition)
                .key(&key)
                .payload(&value);
            producer.send(record, Timeout::Never).await.map_err(|(e, _)| e)
        });
    }
    for r in futures_util::future::join_all(sends).await {
        r?;
    }
    let record = FutureRecord::<str, [u8]>::to(&topic)
        .partition(partition)
        .key(&manifest_key)
        .payload(&manifest);
    producer.send(record, Timeout::Never).await.map_err(|(e, _)| e)?;
    for i in n..leftover {
        let key = chunk_key(&tp, slot, i);
        let record = FutureRecord::<str, [u8]>::to(&topic).partition(partition).key(&key);
        producer.send(record, Timeout::Never).await.map_err(|(e, _)| e)?;
    }
    Ok(n)
}

/// What the changelog held for one input partition.
#[derive(Debug)]
pub struct Found {
    /// Snapshots whose chunks are all there and whose checksum matches, newest first.
    pub snapshots: Vec<Snapshot>,
    pub slots: Slots,
}

/// Reads changelog partition `partition` from its beginning to its end and assembles the
/// complete snapshots of `tp` at offsets up to `max_offset`.
pub(crate) async fn read_changelog<F: Future<Output = ()>>(
    config: &WorkerConfig,
    topic: &str,
    partition: i32,
    tp: &Tp,
    max_offset: i64,
    stop: &mut Stop<'_, F>,
) -> Result<Found, Halt> {
    let failed = |source: KafkaError| {
        Halt::Failed(WorkerError::Replay {
            partition: format!("{topic}/{partition} (changelog of {tp})"),
            source,
        })
    };
    let mut reader =
        ReadToEnd::start(config, "changelog consumer", topic, [(partition, Offset::Beginning)]).map_err(failed)?;
    if config.exactly_once() {
        await_stable(config, topic, partition, &reader, stop).await?;
    }
    let prefix = key_prefix(tp);
    let mut latest: HashMap<String, Vec<u8>> = HashMap::new();
    let mut records = 0u64;
    let started = Instant::now();
    // The newest value of each key of `tp`'s snapshots, up to the partition's end.
    while let Next::Record(m) = reader.next_or_stop(stop).await? {
        records += 1;
        let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            continue;
        };
        if !key.starts_with(&prefix) {
            continue;
        }
        match m.payload() {
            Some(v) => latest.insert(key.to_owned(), v.to_vec()),
            None => latest.remove(key),
        };
    }
    tracing::debug!(partition = %tp, records, seconds = started.elapsed().as_secs_f64(), "changelog read");
    Ok(find_snapshots(&latest, tp, max_offset))
}

/// With exactly-once, waits until the transactions open on changelog partition `partition`
/// when it is called have ended, so that `reader` (a `read_committed` consumer) then reads
/// every snapshot committed before the call.
///
/// A `read_committed` reader stops at the partition's last stable offset: the first record of
/// the oldest transaction still open. Several producers write one changelog partition (the
/// router's and the engine's owners with routing, the owners of partitions `p` and `p + n`,
/// and any instance killed mid-transaction), so a snapshot another writer committed after a
/// killed instance's transaction began lies beyond that offset until the broker aborts the
/// transaction (after `transaction.timeout.ms`). Restoring without it would restore an older
/// snapshot, whose replay writes revisions already written. So the restore first learns the
/// partition's high watermark (as a `read_uncommitted` client sees it) and waits until the
/// last stable offset reaches it; transactions begun later do not matter, since the committed
/// offset the restore works to was committed before the call.
async fn await_stable<F: Future<Output = ()>>(
    config: &WorkerConfig,
    topic: &str,
    partition: i32,
    reader: &ReadToEnd,
    stop: &mut Stop<'_, F>,
) -> Result<(), Halt> {
    let mut uncommitted = config.replay_config();
    uncommitted.set("isolation.level", "read_uncommitted");
    let probe: Arc<BaseConsumer> = Arc::new(uncommitted.create().map_err(|source| {
        Halt::Failed(WorkerError::Replay {
            partition: format!("{topic}/{partition} (changelog)"),
            source,
        })
    })?);
    let high = high_watermark(
        probe,
        topic,
        partition,
        "cannot read the changelog's high watermark yet",
        stop,
    )
    .await?;
    let started = Instant::now();
    let mut warn = Throttle::new(Duration::from_secs(30));
    loop {
        let stable = high_watermark(
            reader.consumer().clone(),
            topic,
            partition,
            "cannot read the changelog's last stable offset yet",
            stop,
        )
        .await?;
        if stable >= high {
            if started.elapsed() >= Duration::from_millis(100) {
                tracing::info!(
                    topic,
                    partition,
                    waited_seconds = started.elapsed().as_secs_f64(),
                    "the changelog's open transactions ended; restoring"
                );
            }
            return Ok(());
        }
        // The broker aborts a transaction some time after its timeout (it looks for expired
        // ones every 10 s by default), so only a wait well past that is worth a warning.
        if started.elapsed() > config.transaction_timeout() + Duration::from_secs(30)
            && let Some(held_back) = warn.allow()
        {
            tracing::warn!(
                topic,
                partition,
                last_stable_offset = stable,
                high_watermark = high,
                waited_seconds = started.elapsed().as_secs_f64(),
                held_back,
                "a transaction on the changelog is still open long past transaction.timeout.ms; the restore waits for the broker to end it (kafka-transactions.sh find-hanging lists hanging ones)"
            );
        }
        tokio::select! {
            biased;
            () = stop.wait() => return Err(Halt::Stop),
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// The high watermark of `topic`'s `partition` as `client`'s isolation level sees it: the last
/// stable offset for a `read_committed` client. Tried again until it answers (logging `what`).
async fn high_watermark<C, F>(
    client: Arc<C>,
    topic: &str,
    partition: i32,
    what: &str,
    stop: &mut Stop<'_, F>,
) -> Result<i64, Halt>
where
    C: Consumer + Send + Sync + 'static,
    F: Future<Output = ()>,
{
    let topic = topic.to_owned();
    retry::until_ok(
        what,
        move || {
            client
                .fetch_watermarks(&topic, partition, Duration::from_secs(10))
                .map(|(_, high)| high)
        },
        stop.wait(),
    )
    .await
    .map_err(Halt::Failed)?
    .ok_or(Halt::Stop)
}

/// The complete snapshots of `tp` at offsets up to `max_offset` among `latest`, the newest
/// value of each changelog key (as compaction leaves them), and what its slots hold. A
/// manifest that does not parse, a chunk missing or of another snapshot, or a checksum that
/// does not match leaves that slot's snapshot out, with a warning: the worker then restores an
/// older one or replays its input. Nothing read is trusted to size an allocation.
pub fn find_snapshots<S: std::hash::BuildHasher>(
    latest: &HashMap<String, Vec<u8>, S>,
    tp: &Tp,
    max_offset: i64,
) -> Found {
    let mut found = Found {
        snapshots: Vec::new(),
        slots: Slots::default(),
    };
    let mut newest: Option<((i64, u64), u8)> = None;
    let mut order: Vec<(i64, u64)> = Vec::new();
    for slot in [0u8, 1] {
        let Some(m) = latest
            .get(&manifest_key(tp, slot))
            .and_then(|v| serde_json::from_slice::<Manifest>(v).ok())
        else {
            continue;
        };
        // The chunk keys the slot holds, so the next snapshot there deletes the extra: up to
        // the highest one present, whatever the manifest says (a damaged manifest must not make
        // the worker send billions of tombstones).
        let chunk_prefix = format!("{}{}/c/", key_prefix(tp), slot_name(slot));
        found.slots.chunks[slot as usize] = latest
            .keys()
            .filter_map(|k| k.strip_prefix(&chunk_prefix)?.parse::<u32>().ok())
            .filter(|&i| i < MAX_CHUNKS)
            .map(|i| i + 1)
            .max()
            .unwrap_or(0);
        found.slots.seq = found.slots.seq.max(m.seq);
        if newest.is_none_or(|(o, _)| (m.offset, m.seq) > o) {
            newest = Some(((m.offset, m.seq), slot));
        }
        if m.offset > max_offset {
            continue;
        }
        match assemble(latest, tp, slot, &m) {
            Some(bytes) => {
                order.push((m.offset, m.seq));
                found.snapshots.push(Snapshot {
                    offset: m.offset,
                    bytes,
                });
            }
            None => {
                tracing::warn!(partition = %tp, slot = %slot_name(slot), offset = m.offset, "changelog snapshot incomplete or damaged: skipped");
            }
        }
    }
    // The next snapshot overwrites the older slot.
    found.slots.next = newest.map_or(0, |(_, s)| 1 - s);
    // Newest first: by offset, then by number.
    if order.len() == 2 && order[0] < order[1] {
        found.snapshots.swap(0, 1);
    }
    found
}

/// The snapshot slot `slot` holds, if every chunk the manifest counts is there and of this
/// snapshot. The buffer is sized from the chunks found, never from the manifest's `bytes`: a
/// damaged manifest must not make the worker allocate what it says.
fn assemble<S: std::hash::BuildHasher>(
    latest: &HashMap<String, Vec<u8>, S>,
    tp: &Tp,
    slot: u8,
    m: &Manifest,
) -> Option<Vec<u8>> {
    let sum = u64::from_str_radix(&m.checksum, 16).ok()?;
    let mut parts = Vec::new();
    let mut len = 0u64;
    for i in 0..m.chunks {
        let v = latest.get(&chunk_key(tp, slot, i))?;
        let (head, data) = v.split_first_chunk::<8>()?;
        if u64::from_le_bytes(*head) != sum {
            return None;
        }
        len += data.len() as u64;
        parts.push(data);
    }
    if len != m.bytes {
        return None;
    }
    let bytes = parts.concat();
    (xxh3_64(&bytes) == sum).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> Tp {
        Tp::new("events", 3)
    }

    #[test]
    fn local_snapshots_keep_the_newest_two_and_filter_by_offset() {
        let dir = std::env::temp_dir().join(format!("modsignal-state-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for offset in [10, 40, 25, 70] {
            let snap = Snapshot {
                offset,
                bytes: vec![offset as u8; 3],
            };
            write_local(&dir, &tp(), &snap).unwrap();
        }
        let all = local_candidates(&dir, &tp(), i64::MAX);
        assert_eq!(all.iter().map(|c| c.0).collect::<Vec<_>>(), vec![70, 40]);
        let upto = local_candidates(&dir, &tp(), 69);
        assert_eq!(upto.iter().map(|c| c.0).collect::<Vec<_>>(), vec![40]);
        assert_eq!(fs::read(&upto[0].1).unwrap(), vec![40u8; 3]);
        assert!(local_candidates(&dir, &Tp::new("events", 4), i64::MAX).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn chunks_assemble_only_when_complete_and_matching() {
        let bytes: Vec<u8> = (0..(CHUNK_BYTES * 2 + 17)).map(|i| (i % 251) as u8).collect();
        let sum = xxh3_64(&bytes);
        let mut latest = HashMap::new();
        for (i, c) in bytes.chunks(CHUNK_BYTES).enumerate() {
            let mut v = sum.to_le_bytes().to_vec();
            v.extend_from_slice(c);
            latest.insert(chunk_key(&tp(), 1, i as u32), v);
        }
        let m = Manifest {
            offset: 5,
            chunks: 3,
            bytes: bytes.len() as u64,
            checksum: format!("{sum:016x}"),
            seq: 0,
        };
        assert_eq!(assemble(&latest, &tp(), 1, &m).as_deref(), Some(bytes.as_slice()));
        // A chunk of another snapshot in the slot (a later write cut short) spoils it.
        let mut mixed = latest.clone();
        mixed.get_mut(&chunk_key(&tp(), 1, 1)).unwrap()[0] ^= 1;
        assert_eq!(assemble(&mixed, &tp(), 1, &m), None);
        let mut missing = latest.clone();
        missing.remove(&chunk_key(&tp(), 1, 2));
        assert_eq!(assemble(&missing, &tp(), 1, &m), None);
        assert_eq!(assemble(&latest, &tp(), 0, &m), None, "the other slot holds nothing");
    }

    #[test]
    fn snapshots_are_found_from_the_records_written_for_them() {
        let old = Snapshot {
            offset: 7,
            bytes: vec![1; CHUNK_BYTES + 5],
        };
        let new = Snapshot {
            offset: 9,
            bytes: vec![2; 10],
        };
        let mut latest = HashMap::new();
        for (slot, snap) in [(0, &old), (1, &new)] {
            let (chunks, manifest) = snapshot_records(&tp(), slot, u64::from(slot) + 1, snap);
            latest.extend(chunks);
            latest.extend([manifest]);
        }
        let found = find_snapshots(&latest, &tp(), i64::MAX);
        assert_eq!(found.snapshots, vec![new.clone(), old.clone()]);
        assert_eq!(
            found.slots,
            Slots {
                chunks: [2, 1],
                next: 0,
                seq: 2,
            }
        );
        let found = find_snapshots(&latest, &tp(), 8);
        assert_eq!(found.snapshots, vec![old]);
        assert!(
            find_snapshots(&latest, &Tp::new("events", 4), i64::MAX)
                .snapshots
                .is_empty()
        );
    }

    #[test]
    fn of_two_snapshots_at_one_offset_the_later_numbered_is_newest() {
        let mut latest = HashMap::new();
        for (slot, seq, byte) in [(1u8, 4u64, 1u8), (0, 5, 2)] {
            let snap = Snapshot {
                offset: 9,
                bytes: vec![byte; 4],
            };
            let (chunks, manifest) = snapshot_records(&tp(), slot, seq, &snap);
            latest.extend(chunks);
            latest.extend([manifest]);
        }
        let found = find_snapshots(&latest, &tp(), i64::MAX);
        assert_eq!(found.snapshots[0].bytes, vec![2; 4], "slot a, numbered 5, is the later");
        assert_eq!((found.slots.next, found.slots.seq), (1, 5));
    }

    #[test]
    fn a_damaged_manifest_sizes_nothing() {
        let snap = Snapshot {
            offset: 3,
            bytes: vec![5; 100],
        };
        let (chunks, (key, _)) = snapshot_records(&tp(), 0, 1, &snap);
        let mut latest: HashMap<String, Vec<u8>> = chunks.into_iter().collect();
        let sum = xxh3_64(&snap.bytes);
        let huge =
            format!(r#"{{"offset":3,"chunks":4294967295,"bytes":18446744073709551615,"checksum":"{sum:016x}"}}"#);
        latest.insert(key, huge.into_bytes());
        // A chunk key no worker writes.
        latest.insert(chunk_key(&tp(), 0, u32::MAX), sum.to_le_bytes().to_vec());
        let found = find_snapshots(&latest, &tp(), i64::MAX);
        assert!(found.snapshots.is_empty());
        assert_eq!(
            found.slots.chunks,
            [1, 0],
            "tombstones only for the chunk keys a worker writes"
        );
    }
}
