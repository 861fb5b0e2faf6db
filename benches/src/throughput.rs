//! End-to-end throughput on one core: canonical JSON bytes in, flag JSON out.
//!
//! Generates simulated traffic once, then times decode alone, and decode + apply + flag
//! serialisation, over the whole buffer several times, and prints the best run of each (the
//! least disturbed by other work on a shared machine) with the machine's CPU model.
//!
//! `cargo run --release -p modsignal-benches --bin throughput -- [EVENTS] [RATE] [RUNS] [PHASE]`
//!
//! `PHASE` (`decode`, `apply` or `e2e`) runs only that part, so that a profiler such as
//! `perf record` sees one phase at a time; by default all three run.

use std::time::Instant;

use modsignal_core::{Engine, Policy, decode};

fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let rate: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000.0);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let phase = args.next().unwrap_or_default();
    let runs_phase = |p: &str| phase.is_empty() || phase == p;
    let buf = modsignal_benches::simulated_lines_at(events, 1, rate);
    let lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!(
        "{events} events, {:.0} bytes each on average, {rate} events per second of event time; {cpu}",
        buf.len() as f64 / events as f64
    );

    let owned: Vec<_> = lines
        .iter()
        .filter(|_| runs_phase("apply"))
        .filter_map(|l| decode(l).ok().map(|e| e.into_owned()))
        .collect();
    let mut best_apply = f64::MAX;
    let mut best_decode = f64::MAX;
    let mut best_e2e = f64::MAX;
    let mut flags = 0;
    let mut finish_share = 0.0;
    for _ in 0..runs {
        if runs_phase("decode") {
            let t = Instant::now();
            for l in &lines {
                std::hint::black_box(decode(l).ok());
            }
            best_decode = best_decode.min(t.elapsed().as_secs_f64());
        }

        if runs_phase("apply") {
            let mut engine = Engine::new(Policy::default());
            let mut out = Vec::new();
            let t = Instant::now();
            for ev in &owned {
                let _ = engine.apply(ev, &mut out);
                out.clear();
            }
            best_apply = best_apply.min(t.elapsed().as_secs_f64());
        }
        if !runs_phase("e2e") {
            continue;
        }

        let mut engine = Engine::new(Policy::default());
        let mut out = Vec::new();
        let mut sink: Vec<u8> = Vec::with_capacity(64 << 20);
        let t = Instant::now();
        flags = 0;
        for l in &lines {
            if let Ok(ev) = decode(l) {
                let _ = engine.apply(&ev, &mut out);
            }
            for f in out.drain(..) {
                serde_json::to_writer(&mut sink, &f).expect("flags serialise");
                sink.push(b'\n');
                flags += 1;
            }
        }
        let before_finish = t.elapsed().as_secs_f64();
        engine.finish(&mut out);
        finish_share = 1.0 - before_finish / t.elapsed().as_secs_f64().max(1e-9);
        for f in out.drain(..) {
            serde_json::to_writer(&mut sink, &f).expect("flags serialise");
            sink.push(b'\n');
            flags += 1;
        }
        best_e2e = best_e2e.min(t.elapsed().as_secs_f64());
        std::hint::black_box(sink);
    }
    if runs_phase("decode") {
        println!("decode only:            {:>10.0} events/s", events as f64 / best_decode);
    }
    if runs_phase("apply") {
        println!("apply only (decoded):   {:>10.0} events/s", events as f64 / best_apply);
    }
    if runs_phase("e2e") {
        println!(
            "end of input flush:     {:>10.1}% of the last end-to-end run",
            finish_share * 100.0
        );
        println!(
            "bytes to flag JSON:     {:>10.0} events/s ({flags} flag revisions written)",
            events as f64 / best_e2e
        );
    }
}
