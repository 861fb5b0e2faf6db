//! Shared inputs for modsignal's benchmarks: simulated traffic as canonical JSON lines.

use modsignal_sim::{SimConfig, Simulator};

/// `events` simulated events as one buffer of JSON lines, as a file or a Kafka batch holds them.
pub fn simulated_lines(events: u64, seed: u64) -> Vec<u8> {
    simulated_lines_at(events, seed, SimConfig::default().events_per_sec)
}

/// As [`simulated_lines`], at `rate` events per second of event time: a low rate spreads the
/// events over hours, so more of them are labels, removals and flags.
pub fn simulated_lines_at(events: u64, seed: u64, rate: f64) -> Vec<u8> {
    let mut buf = Vec::with_capacity(events as usize * 160);
    for ev in Simulator::new(SimConfig {
        events,
        seed,
        events_per_sec: rate,
        ..SimConfig::default()
    }) {
        serde_json::to_writer(&mut buf, &ev.to_raw()).expect("events serialise");
        buf.push(b'\n');
    }
    buf
}

/// The CPU the figures were measured on, as Linux names it.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "an unknown CPU".to_owned())
}
