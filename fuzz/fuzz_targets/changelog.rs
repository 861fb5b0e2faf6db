//! What the Kafka worker reads back from its own topics: changelog records assembled into
//! snapshots (`modsignal_kafka::state::find_snapshots`), router snapshots (the router's
//! `restore`) and the event times and idleness of watermark marks. Checks:
//! - nothing panics, and nothing read sizes an allocation (a manifest claiming a huge snapshot,
//!   or a chunk key numbered in the billions, is refused or left alone);
//! - a snapshot written to the changelog (`state::snapshot_records`) is found again exactly,
//!   whatever other records the changelog holds, as long as none of them overwrote one of its
//!   keys; and a snapshot found is never above the offset asked for;
//! - a router restored from bytes that pass its checks snapshots to bytes that restore again
//!   to the same snapshot; and a watermark mark read back is what it says.
//!
//! The input is structured (`arbitrary`): changelog records, each a key of the partition's
//! slots or another key, with a value that is raw bytes, a manifest, or a real chunk edited;
//! bytes for a router snapshot, tried as they are, resealed in a frame that passes, and as
//! edits of a real router snapshot; and text for a watermark.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use modsignal_core::frame;
use modsignal_core::policy::Stream;
use modsignal_formats::Format;
use modsignal_fuzz::SCENARIOS;
use modsignal_kafka::commit::Tp;
use modsignal_kafka::fuzzing::{encode_watermark_mark, router_after, router_restore, watermark_mark};
use modsignal_kafka::state::{Snapshot, find_snapshots, snapshot_records};

const ROUTER_MAGIC: &[u8; 8] = b"modroute";
/// The Kafka router's snapshot format (`crates/modsignal-kafka/src/router.rs`).
const ROUTER_FORMAT: u32 = 2;
/// The repartition topic's partition count the routers are built with.
const PARTITIONS: i32 = 4;

#[derive(Arbitrary, Debug)]
enum Key {
    /// The manifest of slot `a` (false) or `b`.
    Manifest(bool),
    /// A chunk of a slot, among the first few.
    Chunk(bool, u8),
    /// A chunk of a slot, numbered anywhere.
    FarChunk(bool, u32),
    /// A key of another input partition's snapshots.
    OtherPartition(u8),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Value {
    Raw(Vec<u8>),
    /// A manifest with these fields, the checksum of the reference snapshot or another.
    Manifest {
        offset: i64,
        chunks: u32,
        bytes: u64,
        checksum: Option<u64>,
    },
    /// Chunk `i` of the reference snapshot with one byte changed at `at` (none when out of
    /// range).
    EditedChunk {
        i: u8,
        at: u16,
        to: u8,
    },
    /// A tombstone.
    Tombstone,
}

#[derive(Arbitrary, Debug)]
struct Record {
    key: Key,
    value: Value,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Records that come before the reference snapshot's (older values of its keys, which
    /// compaction would have dropped) and after it (which overwrite it).
    before: Vec<Record>,
    after: Vec<Record>,
    reference_slot: bool,
    /// Whether the reference snapshot is the one of three chunks.
    big: bool,
    max_offset: i64,
    router: Vec<u8>,
    /// Edits of a real router snapshot: (position, new byte).
    router_edits: Vec<(u16, u8)>,
    watermark: String,
}

fn tp() -> Tp {
    Tp::new("events", 3)
}

fn slot_char(b: bool) -> char {
    if b { 'b' } else { 'a' }
}

/// The reference snapshots: one of a single chunk, and one of three, so that chunks can go
/// missing, come twice or mix (it costs a megabyte copied per run, so most runs use the small).
fn reference(big: bool) -> &'static Snapshot {
    static REFERENCES: OnceLock<[Snapshot; 2]> = OnceLock::new();
    let make = |offset: i64, len: u32| Snapshot {
        offset,
        bytes: (0..len)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect(),
    };
    &REFERENCES.get_or_init(|| [make(1234, 300), make(1234, 2 * 512 * 1024 + 99)])[usize::from(big)]
}

fn key(k: &Key) -> String {
    let t = tp();
    match k {
        Key::Manifest(s) => format!("{}/{}/{}/m", t.topic, t.partition, slot_char(*s)),
        Key::Chunk(s, i) => format!("{}/{}/{}/c/{}", t.topic, t.partition, slot_char(*s), i % 5),
        Key::FarChunk(s, i) => format!("{}/{}/{}/c/{i}", t.topic, t.partition, slot_char(*s)),
        Key::OtherPartition(p) => format!("{}/{}/a/c/0", t.topic, u32::from(*p) + 4),
        Key::Raw(k) => k.clone(),
    }
}

fn value(v: &Value, big: bool, chunks: &[(String, Vec<u8>)]) -> Option<Vec<u8>> {
    match v {
        Value::Raw(b) => Some(b.clone()),
        Value::Manifest {
            offset,
            chunks,
            bytes,
            checksum,
        } => {
            let sum = checksum.unwrap_or_else(|| xxhash_rust::xxh3::xxh3_64(&reference(big).bytes));
            Some(
                format!(r#"{{"offset":{offset},"chunks":{chunks},"bytes":{bytes},"checksum":"{sum:016x}"}}"#)
                    .into_bytes(),
            )
        }
        Value::EditedChunk { i, at, to } => {
            let (_, chunk) = &chunks[usize::from(*i) % chunks.len()];
            let mut chunk = chunk.clone();
            if let Some(b) = chunk.get_mut(usize::from(*at)) {
                *b = *to;
            }
            Some(chunk)
        }
        Value::Tombstone => None,
    }
}

fn apply(latest: &mut HashMap<String, Vec<u8>>, k: String, v: Option<Vec<u8>>) {
    match v {
        Some(v) => latest.insert(k, v),
        None => latest.remove(&k),
    };
}

fn stream() -> Stream {
    Stream::default()
}

/// A router snapshot after reading every scenario's events, as canonical records.
fn router_reference() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let lines: Vec<&[u8]> = SCENARIOS
            .iter()
            .flat_map(|(_, text)| text.lines())
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::as_bytes)
            .collect();
        router_after(Format::Canonical, PARTITIONS, &stream(), &lines)
    })
}

fn check_router(bytes: &[u8]) {
    if let Ok(again) = router_restore(Format::Canonical, PARTITIONS, &stream(), bytes) {
        let twice = router_restore(Format::Canonical, PARTITIONS, &stream(), &again)
            .unwrap_or_else(|e| panic!("a restored router's snapshot does not restore: {e}"));
        assert_eq!(twice, again, "a restored router's snapshot changes when restored again");
    }
}

fn seal_router(body: &[u8]) -> Vec<u8> {
    frame::seal(ROUTER_MAGIC, ROUTER_FORMAT, &[], body.len(), |mut out| {
        out.extend_from_slice(body);
        out
    })
}

fuzz_target!(|input: Input| {
    // The changelog.
    let big = input.big;
    let snap = reference(big);
    let (chunks, (manifest_key, manifest)) = snapshot_records(&tp(), u8::from(input.reference_slot), 1, snap);
    let mut latest: HashMap<String, Vec<u8>> = HashMap::new();
    for r in &input.before {
        apply(&mut latest, key(&r.key), value(&r.value, big, &chunks));
    }
    for (k, v) in chunks.iter().chain([&(manifest_key, manifest)]) {
        latest.insert(k.clone(), v.clone());
    }
    let mut touched = false;
    let reference_keys: Vec<String> = latest
        .keys()
        .filter(|k| k.starts_with(&format!("events/3/{}/", slot_char(input.reference_slot))))
        .cloned()
        .collect();
    for r in &input.after {
        let k = key(&r.key);
        touched |= reference_keys.contains(&k);
        apply(&mut latest, k, value(&r.value, big, &chunks));
    }
    let found = find_snapshots(&latest, &tp(), input.max_offset);
    assert!(
        found.snapshots.iter().all(|s| s.offset <= input.max_offset),
        "a snapshot above the offset asked for"
    );
    assert!(
        found.slots.chunks.iter().all(|&n| n <= 1 << 20),
        "a slot's chunk count taken from a key no worker writes: {:?}",
        found.slots.chunks
    );
    if !touched && snap.offset <= input.max_offset {
        assert!(
            found.snapshots.contains(snap),
            "a snapshot written whole to the changelog is not found again"
        );
    }

    // The router.
    check_router(&input.router);
    check_router(&seal_router(&input.router));
    let reference = router_reference();
    if !input.router_edits.is_empty() {
        // Edit the body and reseal, so that the edits reach the decoder past the checksum.
        let mut body = reference[12..reference.len() - 8].to_vec();
        for &(at, to) in &input.router_edits {
            if body.is_empty() {
                break;
            }
            let i = usize::from(at) % body.len();
            body[i] = to;
        }
        check_router(&seal_router(&body));
    }

    // Watermark marks: what reads back is what is written again.
    if let Some((times, idle)) = watermark_mark(&input.watermark) {
        assert_eq!(
            watermark_mark(&encode_watermark_mark(times, idle)),
            Some((times, idle)),
            "a watermark mark reads back differently"
        );
    }
});
