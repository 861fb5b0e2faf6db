//! Prints the first events of a stream as JSON lines.
//!
//! `cargo run -p modsignal-sim --example sample -- [events] [events_per_sec] [seed]`

use modsignal_sim::{SimConfig, Simulator};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut cfg = SimConfig {
        events: 20,
        ..SimConfig::default()
    };
    if let Some(n) = args.next() {
        cfg.events = n.parse().expect("events");
    }
    if let Some(r) = args.next() {
        cfg.events_per_sec = r.parse().expect("events per second");
    }
    if let Some(s) = args.next() {
        cfg.seed = s.parse().expect("seed");
    }
    for ev in Simulator::new(cfg) {
        println!("{}", ev.to_json());
    }
}
