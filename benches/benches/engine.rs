//! Criterion benchmarks of the engine on canonical JSON: decoding alone, applying decoded events
//! alone, the model's evaluation alone, and the whole path from bytes to flag JSON on one core.
//!
//! Run with `cargo bench -p modsignal-benches`. Numbers depend on the machine; report them with
//! the machine named, or as ratios.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use modsignal_core::event::{Audience, Category};
use modsignal_core::model::{Facts, PileOn, Targeting, evaluate};
use modsignal_core::{Engine, Policy, decode};

const EVENTS: u64 = 200_000;

fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

fn end_to_end(c: &mut Criterion) {
    let buf = modsignal_benches::simulated_lines(EVENTS, 1);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(10);
    g.bench_function("decode", |b| {
        b.iter(|| {
            for l in lines(&buf) {
                black_box(decode(l).expect("simulated events decode"));
            }
        });
    });
    let events: Vec<_> = lines(&buf).map(|l| decode(l).expect("decodes").into_owned()).collect();
    g.bench_function("apply", |b| {
        b.iter_batched(
            || Engine::new(Policy::default()),
            |mut engine| {
                let mut out = Vec::new();
                for ev in &events {
                    let _ = engine.apply(ev, &mut out);
                    out.clear();
                }
                engine
            },
            BatchSize::LargeInput,
        );
    });
    g.bench_function("bytes_to_flags", |b| {
        b.iter_batched(
            || (Engine::new(Policy::default()), Vec::with_capacity(1 << 20)),
            |(mut engine, mut sink)| {
                let mut out = Vec::new();
                // As the file pipeline does: a run of lines decoded, then applied in order.
                let mut batch = Vec::with_capacity(64);
                let mut lines = lines(&buf).peekable();
                while lines.peek().is_some() {
                    batch.clear();
                    batch.extend(lines.by_ref().take(64).filter_map(|l| decode(l).ok()));
                    for ev in &batch {
                        let _ = engine.apply(ev, &mut out);
                        for f in out.drain(..) {
                            serde_json::to_writer(&mut sink, &f).expect("flags serialise");
                            sink.push(b'\n');
                        }
                    }
                }
                engine.finish(&mut out);
                (engine, sink)
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn model(c: &mut Criterion) {
    let policy = Policy::default();
    let facts = Facts {
        category: Category::CommunicationsOffence,
        confidence: Some(0.9),
        resharer: false,
        seconds_up: 5_000,
        removal: None,
        removed_after_secs: 0,
        restriction: None,
        reshared_after_removal: None,
        audience_kind: Audience::Public,
        audience: 12_000,
        reshares: 40,
        impressions: Some(100_000),
        quotes: 3,
        replies: 10,
        depth: 3,
        targeted: Some(Targeting::Mention),
        target_outside_audience: false,
        pile_on: PileOn::default(),
        course: 0,
        course_at_least: false,
        course_after_sanction: 0,
        course_after_report: 0,
        course_after_removal: 0,
        reports: 2,
        reports_at_least: false,
        reported_by_target: true,
        hate: 0.8,
        encouragement: 0.0,
        significant_impact: 0.0,
        remorse: 0.0,
        tolerable: 0.0,
        minor: false,
        prior: 1,
        prior_at_least: false,
        mob_senders: 1,
        mob_at_least: false,
    };
    c.bench_function("model/evaluate", |b| {
        b.iter(|| black_box(evaluate(&policy, black_box(&facts))));
    });
}

criterion_group!(benches, end_to_end, model);
criterion_main!(benches);
