//! Saved state on arbitrary bytes: `frame::open` and `Engine::restore` never panic, and an
//! engine restored from bytes that pass every check runs on without panicking (the promise of
//! `check_references` in `engine/snapshot.rs`: a damaged snapshot that still parses is refused
//! rather than panicking later).
//!
//! The frame's checksum refuses almost every mutation of a real snapshot, which would leave the
//! snapshot's body unexplored, so each input is tried three ways:
//! 1. as it is, under the engine's and the router's magic (and when it opens, the frame is
//!    exactly what `seal` writes for its parts);
//! 2. as a snapshot whose frame is rebuilt around it: the body of the input (the input less the
//!    engine frame's 20-byte prefix and 8-byte checksum when it starts with the engine's magic,
//!    the whole input otherwise), sealed with the right format, policy fingerprint and
//!    checksum, so that mutations of the committed snapshot seeds reach the decoder of the body;
//! 3. as edits of a snapshot made here from a reviewed scenario (its first byte picks one, and
//!    each following 4-byte group overwrites, flips, inserts or removes one byte of the body),
//!    resealed: this keeps reaching the body after the engine's state changes shape and the
//!    committed seeds go stale.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use modsignal_core::{Engine, Event, Policy, SNAPSHOT_FORMAT, decode, frame, policy_fingerprint};
use modsignal_fuzz::{SCENARIOS, check_flag, scenario_events};

const ENGINE_MAGIC: &[u8; 8] = b"modsnap\0";
const ROUTER_MAGIC: &[u8; 8] = b"modroute";
/// The Kafka router's snapshot format (`crates/modsignal-kafka/src/router.rs`).
const ROUTER_FORMAT: u32 = 2;
/// Magic, format and the policy fingerprint.
const ENGINE_PREFIX: usize = 8 + 4 + 8;
const CHECKSUM: usize = 8;

/// Bodies of real snapshots: each scenario's engine halfway through and after `finish`.
fn bodies() -> &'static [Vec<u8>] {
    static BODIES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    BODIES.get_or_init(|| {
        let mut bodies = Vec::new();
        for (_, text) in SCENARIOS {
            let events = scenario_events(text);
            let mut engine = Engine::new(Policy::default());
            let mut out = Vec::new();
            for (i, ev) in events.iter().enumerate() {
                if i == events.len() / 2 {
                    bodies.push(body(&engine.snapshot()).to_vec());
                }
                let _ = engine.apply(ev, &mut out);
            }
            engine.finish(&mut out);
            bodies.push(body(&engine.snapshot()).to_vec());
        }
        bodies
    })
}

fn body(snapshot: &[u8]) -> &[u8] {
    &snapshot[ENGINE_PREFIX..snapshot.len() - CHECKSUM]
}

fn seal(body: &[u8]) -> Vec<u8> {
    let fingerprint = policy_fingerprint(&Policy::default()).to_le_bytes();
    frame::seal(ENGINE_MAGIC, SNAPSHOT_FORMAT, &fingerprint, body.len(), |mut out| {
        out.extend_from_slice(body);
        out
    })
}

/// Events that touch ids the scenarios use (so a restored engine's state is reached) and one
/// much later, which fires every exposure timer and a retention sweep.
fn probe() -> &'static [Event<'static>] {
    static PROBE: OnceLock<Vec<Event<'static>>> = OnceLock::new();
    PROBE.get_or_init(|| {
        [
            r#"{"type":"post","at":"2026-01-05T10:00:00Z","id":"m1","author":{"id":"u1","followers":120}}"#,
            r#"{"type":"reshare","at":"2026-01-05T10:05:00Z","id":"r1","of":"m1","author":{"id":"u2","followers":40}}"#,
            r#"{"type":"label","at":"2026-01-05T10:06:00Z","id":"m1","category":"credible_threat","confidence":0.9}"#,
            r#"{"type":"label","at":"2026-01-05T10:07:00Z","id":"mb1","factor":"hate"}"#,
            r#"{"type":"delete","at":"2026-01-05T10:08:00Z","id":"m8","by":"platform"}"#,
            r#"{"type":"account","at":"2026-01-05T10:09:00Z","user":"u70","status":"suspended"}"#,
            r#"{"type":"impressions","at":"2026-01-05T10:10:00Z","id":"r1","count":100}"#,
            r#"{"type":"delete","at":"2026-03-01T00:00:00Z","id":"zz","by":"author"}"#,
        ]
        .iter()
        .map(|l| decode(l.as_bytes()).expect("probe events decode").into_owned())
        .collect()
    })
}

/// Restores `bytes` and, when that succeeds, runs the engine on: probe events, a flush, a
/// snapshot that must restore again, and the end of input.
fn restore_and_run(bytes: &[u8]) {
    let Ok(mut engine) = Engine::restore(Policy::default(), bytes) else {
        return;
    };
    // A resealed edit of a snapshot can hold any revision for a flag: its revisions are not
    // the promise here (a checksum that holds is trusted; see engine/snapshot.rs), running on
    // without a panic is.
    engine.distrust_revisions();
    let mut out = Vec::new();
    let _ = engine.stats();
    let (first, rest) = probe().split_at(4);
    for ev in first {
        let _ = engine.apply(ev, &mut out);
    }
    engine.flush(&mut out);
    let mut engine = Engine::restore(Policy::default(), &engine.snapshot())
        .unwrap_or_else(|e| panic!("the snapshot of a restored engine does not restore: {e}"));
    engine.distrust_revisions();
    for ev in rest {
        let _ = engine.apply(ev, &mut out);
    }
    engine.finish(&mut out);
    out.iter().for_each(check_flag);
}

/// Opens `data` as a frame of one kind and checks that a frame that opens is exactly what
/// `seal` writes for its header and body: the layout of saved state is fixed by its parts.
fn open_and_reseal<const H: usize>(magic: &[u8; 8], format: u32, data: &[u8]) {
    if let Ok((header, body)) = frame::open::<H>(magic, format, data) {
        let again = frame::seal(magic, format, header, body.len(), |mut out| {
            out.extend_from_slice(body);
            out
        });
        assert_eq!(again, data, "an opened frame is not what seal writes for its parts");
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. The bytes as they are.
    open_and_reseal::<8>(ENGINE_MAGIC, SNAPSHOT_FORMAT, data);
    open_and_reseal::<0>(ROUTER_MAGIC, ROUTER_FORMAT, data);
    restore_and_run(data);

    // 2. The body of the input, in a frame that passes.
    let inner = match data.strip_prefix(ENGINE_MAGIC.as_slice()) {
        Some(_) if data.len() >= ENGINE_PREFIX + CHECKSUM => &data[ENGINE_PREFIX..data.len() - CHECKSUM],
        _ => data,
    };
    restore_and_run(&seal(inner));

    // 3. Edits of a real snapshot: each 4-byte group is a position, an operation and a byte.
    if let Some((&pick, edits)) = data.split_first() {
        let bodies = bodies();
        let mut body = bodies[pick as usize % bodies.len()].clone();
        for edit in edits.chunks_exact(4) {
            let at = u16::from_le_bytes([edit[0], edit[1]]) as usize % (body.len() + 1);
            match edit[2] % 4 {
                0 if at < body.len() => body[at] = edit[3],
                1 if at < body.len() => body[at] ^= edit[3],
                2 => body.insert(at, edit[3]),
                _ if at < body.len() => {
                    body.remove(at);
                }
                _ => {}
            }
        }
        restore_and_run(&seal(&body));
    }
});
