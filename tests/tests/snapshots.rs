//! Engine snapshots: an engine restored from a snapshot taken at any point, then fed the rest of
//! the input, writes exactly what an engine that never stopped writes from that point on, and
//! ends in the same state. Damaged snapshots and snapshots of another policy are refused.

use modsignal_core::{Engine, Event, Flag, Policy, SnapshotError, decode};
use modsignal_sim::{SimConfig, Simulator};
use proptest::prelude::*;

fn events(n: u64, seed: u64, per_sec: f64) -> Vec<Event<'static>> {
    Simulator::new(SimConfig {
        events: n,
        seed,
        events_per_sec: per_sec,
        ..SimConfig::default()
    })
    .map(|e| {
        decode(e.to_json().as_bytes())
            .expect("simulated events decode")
            .into_owned()
    })
    .collect()
}

/// Flags as JSON, sorted: the order of flags written by one call may follow hash-table order,
/// which differs between two engines; what they say may not.
fn sorted(flags: &[Flag]) -> Vec<String> {
    let mut v: Vec<String> = flags.iter().map(Flag::to_json).collect();
    v.sort();
    v
}

/// Applies `evs`, flushing every `flush_every` events as the Kafka worker does on its timer;
/// returns what each step wrote, and what applying each event reported (late, duplicate,
/// first removal), which the metrics count.
fn feed(engine: &mut Engine, evs: &[Event<'static>], flush_every: usize) -> Vec<Vec<String>> {
    let mut steps = Vec::new();
    let mut out = Vec::new();
    let mut outcomes = Vec::new();
    for (i, ev) in evs.iter().enumerate() {
        outcomes.push(format!("{:?}", engine.apply(ev, &mut out)));
        if (i + 1) % flush_every == 0 {
            engine.flush(&mut out);
            steps.push(sorted(&out));
            out.clear();
        }
    }
    engine.finish(&mut out);
    steps.push(sorted(&out));
    steps.push(outcomes);
    steps
}

/// Runs `evs` straight through, and again with a snapshot and restore after `cut` events;
/// asserts both write the same flags from the cut on and end in the same state.
fn check_cut(policy: &Policy, evs: &[Event<'static>], cut: usize, flush_every: usize) {
    let (head, tail) = evs.split_at(cut);
    let mut straight = Engine::new(policy.clone());
    let mut resumed = Engine::new(policy.clone());
    let mut out = Vec::new();
    for ev in head {
        let _ = straight.apply(ev, &mut out);
        let _ = resumed.apply(ev, &mut out);
    }
    let bytes = resumed.snapshot();
    drop(resumed);
    let mut resumed = Engine::restore(policy.clone(), &bytes).expect("a fresh snapshot restores");
    assert_eq!(resumed.stats(), straight.stats(), "restored state at the cut");

    let a = feed(&mut straight, tail, flush_every);
    let b = feed(&mut resumed, tail, flush_every);
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "step {i} after a cut at {cut} wrote different flags");
    }
    assert_eq!(resumed.stats(), straight.stats(), "final state");
    // A snapshot of the restored engine restores too, to the same state.
    let again = Engine::restore(policy.clone(), &resumed.snapshot()).expect("restores");
    assert_eq!(again.stats(), straight.stats());
}

#[test]
fn a_restored_engine_continues_exactly_as_one_that_never_stopped() {
    let evs = events(20_000, 21, 10.0);
    for cut in [0, 1, 777, 5_000, 12_345, 19_999, 20_000] {
        check_cut(&Policy::default(), &evs, cut, 250);
    }
}

#[test]
fn history_of_evicted_messages_survives_a_snapshot() {
    // Retention of an hour over about eight hours of traffic: messages leave state, and what
    // they leave for repeated conduct and mobbing must come through the snapshot too.
    let mut policy = Policy::default();
    policy.stream.retention_secs = 3600;
    let evs = events(60_000, 7, 2.0);
    let mut probe = Engine::new(policy.clone());
    let mut out = Vec::new();
    for ev in &evs[..40_000] {
        let _ = probe.apply(ev, &mut out);
    }
    assert!(probe.stats().evicted > 0, "the cut must come after evictions");
    check_cut(&policy, &evs, 40_000, 500);
}

#[test]
fn damaged_or_foreign_snapshots_are_refused() {
    let evs = events(3_000, 3, 10.0);
    let mut engine = Engine::new(Policy::default());
    let mut out = Vec::new();
    for ev in &evs {
        let _ = engine.apply(ev, &mut out);
    }
    let bytes = engine.snapshot();
    let restore = |b: &[u8]| Engine::restore(Policy::default(), b).map(|_| ());
    assert_eq!(restore(&bytes), Ok(()));
    assert_eq!(restore(b""), Err(SnapshotError::NotASnapshot));
    assert_eq!(restore(b"{\"type\":\"post\"}"), Err(SnapshotError::NotASnapshot));
    assert!(matches!(
        restore(&bytes[..bytes.len() / 2]),
        Err(SnapshotError::Damaged(_))
    ));
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    assert!(matches!(restore(&flipped), Err(SnapshotError::Damaged(_))));
    let mut format = bytes.clone();
    format[8] = 99;
    assert_eq!(restore(&format), Err(SnapshotError::Format { found: 99 }));

    let mut other = Policy::default();
    other.stream.lateness_secs += 1;
    assert_eq!(Engine::restore(other, &bytes).map(|_| ()), Err(SnapshotError::Policy));
}

/// Cases `any_cut_resumes_exactly` once failed on, kept so they are tried on every run: seed
/// 958 has an `account` event saying a labelled message's sender is a minor (which changed the
/// flag under the same revision), seed 131 a post arriving after its reshare and label.
#[test]
fn cases_the_property_test_found() {
    for (seed, cut, flush_every) in [(958, 0, 1), (131, 0, 1)] {
        check_cut(&Policy::default(), &events(4_000, seed, 10.0), cut, flush_every);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any seed, any cut, any flush rhythm.
    #[test]
    fn any_cut_resumes_exactly(seed in 0u64..1_000, cut in 0usize..4_000, flush_every in 1usize..400) {
        let evs = events(4_000, seed, 10.0);
        check_cut(&Policy::default(), &evs, cut, flush_every);
    }
}
