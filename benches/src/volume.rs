//! Flag volume on viral cascades (issue 15): how many flag revisions and how many bytes of
//! output modsignal writes per input event, and how fast, against a parse-only floor measured
//! on the same input in the same run.
//!
//! `cargo run --release -p modsignal-benches --bin volume -- [EVENTS] [SEED] [FLUSH_EVERY]`
//!
//! The input is `modsignal simulate --viral` (every post labelled, heavy-tailed reshare cascades
//! with chains five deep, half of the posts taken down midway), 200,000 events by default, held
//! in memory as canonical JSON lines, as a file in the page cache is. modsignal reads it through
//! the file pipeline that `modsignal run -i FILE -o FILE` uses (decode, engine, flag JSON), into
//! a writer that counts the bytes and lines instead of keeping them: on this shape the output is
//! tens of times the input, more than a disk here holds for long runs. The floor is
//! `serde_json` into the canonical shape's borrowed structs (`RawEvent`), nothing else. Both run
//! on one thread; the floor's figure is its best of three runs.
//!
//! It then counts what the streaming worker would write on the same events: the engine applied
//! to them directly, flushed every `FLUSH_EVERY` events (200 by default: the worker flushes
//! every 100 ms, and at 2,000 events/s that is 200 events), and finished at the end, as a
//! partition that goes quiet is. A flush writes what was held back; the emission rules decide
//! whether it is written, so the counts show whether a flush writes more than file mode does.

use std::io::{self, Write};
use std::time::Instant;

use modsignal::files::{Pipeline, Rejects};
use modsignal_core::event::RawEvent;
use modsignal_core::{Engine, Policy};
use modsignal_sim::{ViralConfig, viral};

/// A writer that keeps nothing and counts what it is given.
#[derive(Default)]
struct Counting {
    bytes: u64,
    lines: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes += buf.len() as u64;
        self.lines += memchr::memchr_iter(b'\n', buf).count() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `Counting` shared with the pipeline, which owns its writer.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Counting>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("not poisoned").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(200_000, |a| a.parse().expect("EVENTS is a number"));
    let seed: u64 = args.next().map_or(1, |a| a.parse().expect("SEED is a number"));
    let flush_every: usize = args.next().map_or(200, |a| a.parse().expect("FLUSH_EVERY is a number"));
    let generated = viral(&ViralConfig {
        events,
        seed,
        ..ViralConfig::default()
    });
    let mut input = Vec::with_capacity(events as usize * 280);
    for ev in &generated {
        serde_json::to_writer(&mut input, &ev.to_raw()).expect("events serialise");
        input.push(b'\n');
    }
    let lines = input.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() as u64;

    let mut floor = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let mut parsed = 0u64;
        for line in input.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let raw: RawEvent<'_> = serde_json::from_slice(line).expect("the simulator writes valid events");
            parsed += u64::from(raw.kind.is_some());
            std::hint::black_box(&raw);
        }
        assert_eq!(parsed, lines);
        floor = floor.min(started.elapsed().as_secs_f64());
    }

    let out = Shared::default();
    let rejects = std::env::temp_dir().join(format!("modsignal-volume-rejects-{}.jsonl", std::process::id()));
    let started = Instant::now();
    let mut pipeline = Pipeline::new(
        Policy::default(),
        io::BufWriter::with_capacity(1 << 20, out.clone()),
        Rejects::new(rejects).expect("a reject file can be made in the temporary directory"),
    );
    pipeline.feed_reader(&input[..], None).expect("the input is read");
    let (summary, _) = pipeline.finish().expect("the run finishes");
    let secs = started.elapsed().as_secs_f64();
    let counted = out.0.lock().expect("not poisoned");
    assert_eq!(
        counted.lines,
        summary.flags + summary.cohort_pages,
        "one line per flag revision and per resharer cohort page"
    );
    let records = counted.lines;

    let per_event = |x: u64| x as f64 / events as f64;
    println!(
        "viral shape: {events} events (seed {seed}), {:.0} bytes of input per event, on {}",
        per_event(input.len() as u64),
        modsignal_benches::cpu_model()
    );
    println!(
        "records: {records} ({:.3} per event): {} flag revisions ({:.3} per event), {} raised, and {} resharer cohort pages; \
         output {:.1} MB ({:.0} bytes per event, {:.0} per record)",
        per_event(records),
        summary.flags,
        per_event(summary.flags),
        summary.raised,
        summary.cohort_pages,
        counted.bytes as f64 / 1e6,
        per_event(counted.bytes),
        counted.bytes as f64 / records.max(1) as f64
    );
    println!(
        "modsignal: {:.0} events/s ({secs:.2} s); parse-only floor: {:.0} events/s ({floor:.3} s); ratio {:.4}",
        events as f64 / secs,
        events as f64 / floor,
        floor / secs
    );

    drop(counted);

    // As the streaming worker writes: flushed every `flush_every` events, finished at the end.
    let mut engine = Engine::new(Policy::default());
    let (mut revisions, mut pages, mut bytes, mut raised) = (0u64, 0u64, 0u64, 0u64);
    let (mut out, mut cohorts) = (Vec::new(), Vec::new());
    let mut count = |engine: &mut Engine, out: &mut Vec<modsignal_core::Flag>| {
        for flag in out.drain(..) {
            revisions += 1;
            raised += u64::from(flag.raised);
            bytes += flag.to_json().len() as u64 + 1;
        }
        engine.take_cohorts(&mut cohorts);
        for page in cohorts.drain(..) {
            pages += 1;
            bytes += page.to_json().len() as u64 + 1;
        }
    };
    for chunk in generated.chunks(flush_every.max(1)) {
        for ev in chunk {
            // The simulator's events are valid; a rejection would be counted by the worker.
            let _ = engine.apply(ev, &mut out);
        }
        engine.flush(&mut out);
        count(&mut engine, &mut out);
    }
    engine.finish(&mut out);
    count(&mut engine, &mut out);
    println!(
        "streaming, flushed every {flush_every} events: {revisions} revisions ({:.2} per event), {raised} raised, \
         {pages} resharer cohort pages; output {:.1} MB ({:.0} bytes per event); {:.1} units of engine work per event",
        per_event(revisions),
        bytes as f64 / 1e6,
        per_event(bytes),
        per_event(engine.stats().work)
    );
}
