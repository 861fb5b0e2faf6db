//! Measures generation speed and prints the make-up of the stream.
//!
//! `cargo run --release -p modsignal-sim --example throughput -- [events] [events_per_sec]`

use std::collections::BTreeMap;
use std::time::Instant;

use modsignal_sim::{SimConfig, Simulator};

fn main() {
    let mut args = std::env::args().skip(1);
    let events = args.next().map_or(10_000_000, |a| a.parse().expect("events"));
    let mut cfg = SimConfig {
        events,
        ..SimConfig::default()
    };
    if let Some(r) = args.next() {
        cfg.events_per_sec = r.parse().expect("events per second");
    }
    let start = cfg.start_ms;

    // Generation alone, as the engine sees it.
    let t = Instant::now();
    let mut sim = Simulator::new(cfg.clone());
    let mut types: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut last_at, mut max_pending) = (start, 0);
    let mut n = 0u64;
    while let Some(ev) = sim.next() {
        *types.entry(ev.kind.type_name()).or_default() += 1;
        last_at = last_at.max(ev.at.0);
        n += 1;
        if n.is_multiple_of(65_536) {
            max_pending = max_pending.max(sim.pending());
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!("{n} events in {secs:.2} s: {:.0} events/s", n as f64 / secs);
    println!(
        "event time covered: {:.1} min; most pending: {max_pending}; dropped: {}",
        (last_at - start) as f64 / 60_000.0,
        sim.dropped()
    );
    for (k, v) in &types {
        println!("  {k:<12} {v:>10} {:>6.2}%", 100.0 * *v as f64 / n as f64);
    }

    // Generation and serialisation, as `modsignal run` writing JSON lines would see it.
    let sample = events.min(1_000_000);
    let t = Instant::now();
    let bytes: usize = Simulator::new(SimConfig { events: sample, ..cfg })
        .map(|e| e.to_json().len() + 1)
        .sum();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "with to_json: {:.0} events/s, {:.0} bytes per event",
        sample as f64 / secs,
        bytes as f64 / sample as f64
    );
}
