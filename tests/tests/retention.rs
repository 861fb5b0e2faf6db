//! The retention horizon: on a stream many horizons long, quiet messages leave state, memory
//! stays bounded, and nothing reads a freed slot (the debug build checks every index).

use modsignal_core::{Engine, Policy, decode};
use modsignal_sim::{SimConfig, Simulator};

#[test]
fn state_stays_bounded_over_many_retention_horizons() {
    let mut policy = Policy::default();
    policy.stream.retention_secs = 3600;
    // 150,000 events at 5 per second of event time: about eight hours, eight horizons.
    let sim = Simulator::new(SimConfig {
        events: 150_000,
        seed: 11,
        events_per_sec: 5.0,
        ..SimConfig::default()
    });
    let mut engine = Engine::new(policy);
    let mut out = Vec::new();
    let mut posts = 0u64;
    let mut peak = 0usize;
    for ev in sim {
        // Round-trip through the wire format, as every real input does.
        let json = ev.to_json();
        let ev = decode(json.as_bytes()).expect("simulated events decode");
        posts += u64::from(matches!(ev.kind, modsignal_core::EventKind::Post { .. }));
        let _ = engine.apply(&ev, &mut out);
        peak = peak.max(engine.stats().messages);
        out.clear();
    }
    engine.finish(&mut out);
    let stats = engine.stats();
    assert!(stats.evicted > posts / 2, "{stats:?} after {posts} posts");
    assert!(
        (peak as u64) < posts / 2,
        "peak {peak} messages in state for {posts} posts"
    );
}
