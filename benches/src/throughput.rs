//! End-to-end throughput on one core: canonical JSON bytes in, flag JSON out.
//!
//! Generates simulated traffic once, then times decode alone, apply alone, and decode + apply +
//! flag serialisation (in runs of lines decoded then applied, as the file pipeline reads them),
//! over the whole buffer several times, and prints the best run of each (the
//! least disturbed by other work on a shared machine) with the machine's CPU model.
//!
//! `cargo run --release -p modsignal-benches --bin throughput -- [EVENTS] [RATE] [RUNS] [PHASE]`
//!
//! `PHASE` (`decode`, `apply` or `e2e`) runs only that part, so that a profiler such as
//! `perf record` sees one phase at a time; by default all three run.
//!
//! Each figure is given twice: per second of wall time, and per second the thread was on a CPU
//! (from `/proc/thread-self/schedstat`, on Linux). On a shared machine the second leaves out
//! the time other work held the core, so it is the steadier one to compare changes with.

use std::time::Instant;

/// Wall time and on-CPU time of this thread, from one start.
struct Clock {
    wall: Instant,
    cpu: Option<u64>,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: on_cpu_ns(),
        }
    }
    /// Seconds since the start: wall time, and on-CPU time (wall time where unknown).
    fn elapsed(&self) -> (f64, f64) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = match (self.cpu, on_cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e9,
            _ => wall,
        };
        (wall, cpu)
    }
}

/// Nanoseconds this thread has run on a CPU, where the kernel says.
fn on_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// The best (smallest) times seen, wall and on-CPU, each on its own.
#[derive(Clone, Copy)]
struct Best(f64, f64);

impl Best {
    fn new() -> Best {
        Best(f64::MAX, f64::MAX)
    }
    fn add(&mut self, (wall, cpu): (f64, f64)) {
        self.0 = self.0.min(wall);
        self.1 = self.1.min(cpu);
    }
    fn rates(self, events: u64) -> String {
        format!(
            "{:>10.0} events/s ({:.0} per CPU-second)",
            events as f64 / self.0,
            events as f64 / self.1
        )
    }
}

use modsignal_core::{Engine, Policy, decode};

/// Lines decoded together before they are applied, as `modsignal run` reads a file.
const BATCH_LINES: usize = 64;

fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let rate: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000.0);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let phase = args.next().unwrap_or_default();
    let runs_phase = |p: &str| phase.is_empty() || phase == p;
    let buf = modsignal_benches::simulated_lines_at(events, 1, rate);
    let lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let cpu = modsignal_benches::cpu_model();
    println!(
        "{events} events, {:.0} bytes each on average, {rate} events per second of event time; {cpu}",
        buf.len() as f64 / events as f64
    );

    let owned: Vec<_> = lines
        .iter()
        .filter(|_| runs_phase("apply"))
        .filter_map(|l| decode(l).ok().map(modsignal_core::Event::into_owned))
        .collect();
    let mut best_apply = Best::new();
    let mut best_decode = Best::new();
    let mut best_e2e = Best::new();
    let mut flags = 0;
    let mut finish_share = 0.0;
    for _ in 0..runs {
        if runs_phase("decode") {
            let t = Clock::start();
            for l in &lines {
                std::hint::black_box(decode(l).ok());
            }
            best_decode.add(t.elapsed());
        }

        if runs_phase("apply") {
            let mut engine = Engine::new(Policy::default());
            let mut out = Vec::new();
            let t = Clock::start();
            for ev in &owned {
                let _ = engine.apply(ev, &mut out);
                out.clear();
            }
            best_apply.add(t.elapsed());
        }
        if !runs_phase("e2e") {
            continue;
        }

        let mut engine = Engine::new(Policy::default());
        let mut out = Vec::new();
        let mut sink: Vec<u8> = Vec::with_capacity(64 << 20);
        let t = Clock::start();
        flags = 0;
        // As the file pipeline does: a run of lines decoded, then applied in order.
        let mut batch = Vec::with_capacity(BATCH_LINES);
        for run in lines.chunks(BATCH_LINES) {
            batch.clear();
            batch.extend(run.iter().filter_map(|l| decode(l).ok()));
            for ev in &batch {
                let _ = engine.apply(ev, &mut out);
                for f in out.drain(..) {
                    serde_json::to_writer(&mut sink, &f).expect("flags serialise");
                    sink.push(b'\n');
                    flags += 1;
                }
            }
        }
        let before_finish = t.elapsed().1;
        engine.finish(&mut out);
        finish_share = 1.0 - before_finish / t.elapsed().1.max(1e-9);
        for f in out.drain(..) {
            serde_json::to_writer(&mut sink, &f).expect("flags serialise");
            sink.push(b'\n');
            flags += 1;
        }
        best_e2e.add(t.elapsed());
        std::hint::black_box(sink);
    }
    if runs_phase("decode") {
        println!("decode only:            {}", best_decode.rates(events));
    }
    if runs_phase("apply") {
        println!("apply only (decoded):   {}", best_apply.rates(events));
    }
    if runs_phase("e2e") {
        println!(
            "end of input flush:     {:>10.1}% of the last end-to-end run",
            finish_share * 100.0
        );
        println!(
            "bytes to flag JSON:     {}, {flags} flag revisions written",
            best_e2e.rates(events)
        );
    }
}
