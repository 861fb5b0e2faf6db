//! Event time across input partitions, in the core: an engine that reads several partitions
//! (sources) at uneven speeds, as the Kafka worker reads a backlog, and follows the slowest of
//! them ([`Engine::expect_sources`]) writes the flags file mode writes for the same events, and
//! no event is late. Each case splits a simulated stream spanning weeks into partitions, as a
//! platform keys it by account, and interleaves them in its own way.

use modsignal_core::{Cohort, Engine, EventClock, Flag, InputTime, Policy, decode};
use modsignal_tests::backlog::{as_json, assert_same_content, cohorts_as_json, file_mode_flags, partitions, stream};
use modsignal_tests::final_flags;

/// Reads the partitions in the order `schedule` gives (a partition and how many of its records
/// to read next), sending each partition's mark after every step as the router does, and its
/// idle mark once it is read to its end; then finishes. Returns every flag, how many events
/// were late, and what the engine said of its input's event time before finishing.
fn run_sources(
    parts: &[Vec<(String, String)>],
    schedule: &[(usize, usize)],
) -> (Vec<Flag>, Vec<Cohort>, u64, InputTime) {
    let mut engine = Engine::new(Policy::default());
    let mut out = Vec::new();
    let names: Vec<String> = (0..parts.len()).map(|p| format!("input/{p}")).collect();
    engine.expect_sources(names.clone(), &mut out);
    let mut clocks = vec![EventClock::default(); parts.len()];
    let mut read = vec![0usize; parts.len()];
    let mut late = 0;
    let mut step = |engine: &mut Engine, out: &mut Vec<Flag>, p: usize, n: usize| {
        let end = read[p].saturating_add(n).min(parts[p].len());
        for (_, line) in &parts[p][read[p]..end] {
            let ev = decode(line.as_bytes()).unwrap();
            clocks[p].observe_event(ev.at, &ev.kind);
            let outcome = engine.apply(&ev, out).unwrap();
            late += u64::from(outcome.late);
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
    let mut cohorts = Vec::new();
    engine.take_cohorts(&mut cohorts);
    (out, cohorts, late, input_time)
}

fn check(
    lines: &[String],
    share: &[f64],
    schedule: impl Fn(&[Vec<(String, String)>]) -> Vec<(usize, usize)>,
    what: &str,
) {
    let expected = file_mode_flags(lines);
    let parts = partitions(lines, share);
    let (flags, cohorts, late, input_time) = run_sources(&parts, &schedule(&parts));
    let mut got = as_json(&final_flags(&flags));
    got.extend(cohorts_as_json(&cohorts));
    assert_same_content(&expected, &got, what);
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

/// What a handover is to the core: the old owner reads the partitions in batches, flushing and
/// finishing (as a quiet spell does) at points of its own and snapshotting on the way, until it
/// is killed; the new owner restores the snapshot and reads the same records again with other
/// flush points, then on to the end. A consumer that keeps the highest revision per flag, over
/// everything both wrote, must end with exactly what the new owner wrote last (a newer version
/// of a flag is never numbered below an older one, whoever wrote either), and that must read as
/// file mode's flags for the same events.
#[test]
fn a_new_owner_with_other_flush_points_never_numbers_a_newer_flag_below_the_old_owners() {
    use std::collections::BTreeMap;

    use modsignal_core::{Event, EventTimes};
    use rand::{RngExt, SeedableRng};

    enum Item<'a> {
        Event(Event<'a>),
        Mark(String, EventTimes, bool),
    }
    fn feed(e: &mut Engine, item: &Item<'_>, out: &mut Vec<Flag>) {
        match item {
            Item::Event(ev) => {
                e.apply(ev, out).unwrap();
            }
            Item::Mark(source, times, idle) => e.source_mark(source, *times, *idle, out),
        }
    }
    let lines = stream(20_000, 21.0, 13);
    let parts = partitions(&lines, &[1.0; 4]);
    let names: Vec<String> = (0..parts.len()).map(|p| format!("input/{p}")).collect();
    let policy = Policy::default();
    let expected = file_mode_flags(&lines);
    // Seed 23 has the old owner finish (as a quiet spell would) while a source is still being
    // read; `MODSIGNAL_SEEDS=N` tries the first N seeds instead.
    let seeds: Vec<u64> = match std::env::var("MODSIGNAL_SEEDS").ok().and_then(|s| s.parse().ok()) {
        Some(n) => (0..n).collect(),
        None => vec![0, 1, 2, 3, 23],
    };
    for seed in seeds {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // The records as the router hands them on: batches of each partition, each followed by
        // that partition's mark.
        let mut items = Vec::new();
        let mut clocks = vec![EventClock::default(); parts.len()];
        let mut read = vec![0usize; parts.len()];
        while read.iter().zip(&parts).any(|(r, p)| *r < p.len()) {
            let p = rng.random_range(0..parts.len());
            let end = (read[p] + rng.random_range(1..400)).min(parts[p].len());
            for (_, line) in &parts[p][read[p]..end] {
                let ev = decode(line.as_bytes()).unwrap();
                clocks[p].observe_event(ev.at, &ev.kind);
                items.push(Item::Event(ev));
            }
            read[p] = end;
            items.push(Item::Mark(names[p].clone(), clocks[p].times(), end == parts[p].len()));
        }
        let snapshot_at = rng.random_range(0..items.len());
        let killed_at = rng.random_range(snapshot_at..items.len());

        let mut old = Engine::new(policy.clone());
        old.expect_sources(names.clone(), &mut Vec::new());
        let mut written = Vec::new();
        let mut snapshot = None;
        let mut next_flush = rng.random_range(1..2_000);
        for (i, item) in items.iter().enumerate().take(killed_at) {
            if i == snapshot_at {
                snapshot = Some(old.snapshot());
            }
            feed(&mut old, item, &mut written);
            if i == next_flush {
                if rng.random_range(0..4) == 0 {
                    old.finish(&mut written);
                } else {
                    old.flush(&mut written);
                }
                next_flush += rng.random_range(1..2_000);
            }
        }
        let snapshot = snapshot.unwrap_or_else(|| old.snapshot());

        let mut new = Engine::restore(policy.clone(), &snapshot).unwrap();
        new.expect_sources(names.clone(), &mut Vec::new());
        let mut rewritten = Vec::new();
        let mut next_flush = snapshot_at + rng.random_range(1..2_000);
        for (i, item) in items.iter().enumerate().skip(snapshot_at) {
            feed(&mut new, item, &mut rewritten);
            if i == next_flush {
                new.flush(&mut rewritten);
                next_flush += rng.random_range(1..2_000);
            }
        }
        new.finish(&mut rewritten);

        let newest: BTreeMap<&str, &Flag> = rewritten.iter().map(|f| (f.flag_id.as_str(), f)).collect();
        // What a consumer keeping the highest revision ends with. Ties go to the first written,
        // so a revision written again with other content shows as wrong.
        let mut cohorts = Vec::new();
        old.take_cohorts(&mut cohorts);
        new.take_cohorts(&mut cohorts);
        let records: Vec<(String, u64, String)> = written
            .iter()
            .chain(&rewritten)
            .map(|f| (f.flag_id.clone(), f.revision, f.to_json()))
            .chain(cohorts.iter().map(|c| (c.key(), c.revision, c.to_json())))
            .collect();
        let kept = modsignal_tests::worker::newest(&records);
        // And what it ends with reads as file mode's flags: neither owner's flush or finish
        // points, nor the handover, change what a reviewer reads.
        assert_same_content(
            &expected,
            &kept,
            &format!("seed {seed}, snapshot before item {snapshot_at}, killed at {killed_at}"),
        );
        let wrong: Vec<String> = newest
            .iter()
            .filter(|(id, f)| kept[**id] != f.to_json())
            .map(|(id, f)| format!("{id}: kept {}\n  newest {}", kept[*id], f.to_json()))
            .collect();
        assert!(
            wrong.is_empty(),
            "seed {seed}, snapshot before item {snapshot_at}, killed at {killed_at}: {} of {} flags kept an older version:\n{}",
            wrong.len(),
            newest.len(),
            wrong[..wrong.len().min(3)].join("\n")
        );
    }
}
