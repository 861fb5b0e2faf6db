//! Event time across input partitions, in the core: an engine that reads several partitions
//! (sources) at uneven speeds, as the Kafka worker reads a backlog, and follows the slowest of
//! them ([`Engine::expect_sources`]) writes the flags file mode writes for the same events, and
//! no event is late. Each case splits a simulated stream spanning weeks into partitions, as a
//! platform keys it by account, and interleaves them in its own way.

use std::collections::BTreeMap;

use modsignal_core::{Engine, Event, EventClock, Flag, InputTime, Policy, decode};
use modsignal_sim::{SimConfig, Simulator};
use modsignal_tests::{final_flags, run_lines};

/// A stream of `events` over about `days` of event time.
fn stream(events: u64, days: f64, seed: u64) -> Vec<String> {
    Simulator::new(SimConfig {
        events,
        seed,
        events_per_sec: events as f64 / (days * 86_400.0),
        ..SimConfig::default()
    })
    .map(|e| e.to_json())
    .collect()
}

/// The account an event would be keyed by on a platform stream: its author, or whoever acted.
fn account(ev: &Event<'_>) -> String {
    use modsignal_core::EventKind::*;
    match &ev.kind {
        Post { author, .. } | Reshare { author, .. } => author.id.to_string(),
        Account { user, .. } => user.to_string(),
        Report { reporter, .. } => reporter.to_string(),
        Delete { id, .. }
        | Restrict { id, .. }
        | Restore { id, .. }
        | Label { id, .. }
        | Impressions { id, .. } => id.to_string(),
    }
}

/// Splits `lines` into partitions by account, with `share[p]` of the accounts' hash space each.
fn partitions(lines: &[String], share: &[f64]) -> Vec<Vec<String>> {
    let mut parts = vec![Vec::new(); share.len()];
    let total: f64 = share.iter().sum();
    for line in lines {
        let ev = decode(line.as_bytes()).unwrap();
        // `DefaultHasher::new` has fixed keys: the same split on every run.
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&account(&ev), &mut hasher);
        let h = std::hash::Hasher::finish(&hasher) as f64 / u64::MAX as f64 * total;
        let mut acc = 0.0;
        let p = share
            .iter()
            .position(|s| {
                acc += s;
                h < acc
            })
            .unwrap_or(share.len() - 1);
        parts[p].push(line.clone());
    }
    parts
}

/// Reads the partitions in the order `schedule` gives (a partition and how many of its records
/// to read next), sending each partition's mark after every step as the router does, and its
/// idle mark once it is read to its end; then finishes. Returns every flag, how many events
/// were late, and what the engine said of its input's event time before finishing.
fn run_sources(parts: &[Vec<String>], schedule: &[(usize, usize)]) -> (Vec<Flag>, u64, InputTime) {
    let mut engine = Engine::new(Policy::default());
    let mut out = Vec::new();
    let names: Vec<String> = (0..parts.len()).map(|p| format!("input/{p}")).collect();
    engine.expect_sources(names.clone(), &mut out);
    let mut clocks = vec![EventClock::default(); parts.len()];
    let mut read = vec![0usize; parts.len()];
    let mut late = 0;
    let mut step = |engine: &mut Engine, out: &mut Vec<Flag>, p: usize, n: usize| {
        let end = read[p].saturating_add(n).min(parts[p].len());
        for line in &parts[p][read[p]..end] {
            let ev = decode(line.as_bytes()).unwrap();
            clocks[p].observe_event(ev.at, &ev.kind);
            let outcome = engine.apply(&ev, out).unwrap();
            late += outcome.late as u64;
        }
        read[p] = end;
        engine.source_mark(&names[p], clocks[p].times(), end == parts[p].len(), out);
    };
    for &(p, n) in schedule {
        step(&mut engine, &mut out, p, n);
    }
    for p in 0..parts.len() {
        step(&mut engine, &mut out, p, usize::MAX);
    }
    let input_time = engine.input_time();
    engine.finish(&mut out);
    (out, late, input_time)
}

/// A flag as JSON without its revision. The revision orders one flag's versions as one engine
/// writes them; it also counts changes to the sender's other labelled messages as they became
/// known, so two read orders can number the same final flag differently. Everything a reviewer
/// reads must be the same.
fn content(f: &Flag) -> String {
    let mut f = f.clone();
    f.revision = 0;
    f.to_json()
}

fn assert_same(expected: &BTreeMap<String, Flag>, got: &BTreeMap<String, Flag>, what: &str) {
    let mut differ = Vec::new();
    for (id, f) in expected {
        match got.get(id) {
            None => differ.push(format!("missing {id}")),
            Some(g) if content(g) != content(f) => {
                differ.push(format!("differs {id}:\n  file    {}\n  sources {}", f.to_json(), g.to_json()))
            }
            _ => {}
        }
    }
    differ.extend(got.keys().filter(|id| !expected.contains_key(*id)).map(|id| format!("extra {id}")));
    assert!(
        differ.is_empty(),
        "{what}: {} of {} flags differ from file mode; first:\n{}",
        differ.len(),
        expected.len(),
        differ[..differ.len().min(3)].join("\n")
    );
}

fn check(lines: &[String], share: &[f64], schedule: impl Fn(&[Vec<String>]) -> Vec<(usize, usize)>, what: &str) {
    let (flags, errors) = run_lines(&Policy::default(), lines);
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    let expected = final_flags(&flags);
    assert!(expected.len() > 100, "too few flags to say anything: {}", expected.len());
    let parts = partitions(lines, share);
    let (flags, late, input_time) = run_sources(&parts, &schedule(&parts));
    assert_same(&expected, &final_flags(&flags), what);
    assert_eq!(late, 0, "{what}: events were late");
    assert!(
        matches!(input_time, InputTime::Idle(Some(_))),
        "{what}: every source is idle at the end, so event time is the whole input's: {input_time:?}"
    );
}

#[test]
fn a_backlog_read_one_partition_after_another_gives_the_file_mode_flags() {
    let lines = stream(20_000, 21.0, 3);
    check(
        &lines,
        &[1.0; 4],
        |parts| (0..parts.len()).map(|p| (p, parts[p].len())).collect(),
        "one after another",
    );
}

#[test]
fn a_backlog_read_at_uneven_speeds_gives_the_file_mode_flags() {
    let lines = stream(20_000, 21.0, 5);
    // One partition holds 80% of the accounts, one none; each step reads a different amount.
    check(
        &lines,
        &[16.0, 2.0, 0.0, 2.0],
        |parts| {
            let mut schedule = Vec::new();
            let mut left: Vec<usize> = parts.iter().map(Vec::len).collect();
            let speeds = [977, 13, 500, 61];
            while left.iter().any(|&n| n > 0) {
                for p in 0..parts.len() {
                    let n = speeds[p].min(left[p]);
                    left[p] -= n;
                    schedule.push((p, n));
                }
            }
            schedule
        },
        "uneven speeds",
    );
}
