//! Data-driven scenarios: each `scenarios/NAME.jsonl` is a list of events; its final flags are
//! rendered and compared with the snapshot `scenarios/NAME.flags` (refresh a snapshot with
//! `UPDATE_EXPECT=1 cargo test -p modsignal-tests -- scenarios::`, then read the diff).
//!
//! Every scenario is also replayed reversed, shuffled and with every event sent twice: the
//! final flags must not change (promise 5), and revisions must only grow as written.
//!
//! The snapshots show every resharer's flag in full, with its factors: they are rendered
//! without resharer cohorts (`emission.resharer_cohort = false`). What the default policy
//! writes instead (the flags that matter on their own, and a cohort listing every resharer) is
//! checked against them in `cohorts_say_what_every_resharers_flag_says`, and two scenarios'
//! cohorts have snapshots of their own (`scenarios/NAME.cohorts`).

use std::path::Path;

use modsignal_core::Policy;
use modsignal_tests::{
    assert_replay_gives, cohorts_say_what_flags_say, final_cohorts, final_flags, render, render_cohorts,
    revisions_grow, run_engine, run_lines,
};

/// The policy the snapshots are rendered under: the default, with every resharer's flag
/// written in full rather than listed in a cohort.
fn every_flag() -> Policy {
    let mut policy = Policy::default();
    policy.emission.resharer_cohort = false;
    policy
}

fn lines(name: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// A deterministic shuffle (xorshift), so a failure is reproducible without a seed file.
fn shuffled(v: &[String], seed: u64) -> Vec<String> {
    let mut v = v.to_vec();
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn check(name: &str) -> String {
    let policy = every_flag();
    let events = lines(name);
    let (flags, errors) = run_lines(&policy, &events);
    assert!(errors.is_empty(), "{name}: {errors:?}");
    revisions_grow(&flags).unwrap_or_else(|e| panic!("{name}: {e}"));
    let expected = render(&final_flags(&flags));
    assert!(!expected.is_empty(), "{name} produced no flags");

    let mut variants: Vec<(String, Vec<String>)> = vec![("reversed".into(), events.iter().rev().cloned().collect())];
    for seed in 1..=8 {
        variants.push((format!("shuffle {seed}"), shuffled(&events, seed)));
    }
    variants.push((
        "every event twice".into(),
        events.iter().flat_map(|e| [e.clone(), e.clone()]).collect(),
    ));
    variants.push((
        "replayed after itself".into(),
        events.iter().chain(events.iter()).cloned().collect(),
    ));
    for (what, v) in variants {
        assert_replay_gives(&policy, &v, &expected, &format!("{name} {what}"));
    }
    expected
}

macro_rules! scenario {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let got = check(stringify!($name));
            expect_test::expect_file![concat!("../scenarios/", stringify!($name), ".flags")].assert_eq(&got);
        }
    )*};
}

scenario!(
    threat_swift_platform_removal,
    offence_swift_author_delete,
    offence_viral_hate,
    original_removal_takes_reshares_down,
    restrict_restore_delete,
    accounts,
    out_of_order,
    negated_labels,
    mobbing_and_repeat,
    direct_message_court_order,
    fuzz_findings,
    restriction_graded,
    direct_messages_and_the_victim,
    pile_on,
    course_of_conduct,
    per_resharer_context,
    reshared_after_removal,
    course_by_replies_and_quotes,
);

/// Every scenario's name and every flag it writes under the default policy.
fn every_scenario() -> impl Iterator<Item = (String, Vec<modsignal_core::Flag>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    std::fs::read_dir(&dir).unwrap().filter_map(|entry| {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            return None;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let (flags, _) = run_lines(&every_flag(), &lines(&name));
        Some((name, flags))
    })
}

/// Every provision a flag or factor cites, in every scenario, is one of the citations listed
/// in the policy file's `[provisions]` table (issue 11: "every provision string checked by a
/// test against a table in the policy file").
#[test]
fn every_provision_cited_is_in_the_policy_table() {
    let policy = Policy::default();
    let table: std::collections::BTreeSet<&str> = policy.provisions.values().map(String::as_str).collect();
    let mut cited = std::collections::BTreeSet::new();
    for (name, flags) in every_scenario() {
        for f in &flags {
            for p in std::iter::once(&f.provision).chain(f.factors.iter().map(|x| &x.provision)) {
                assert!(
                    table.contains(p.as_ref()),
                    "{name}: `{p}` is not in config/policy.toml's [provisions]"
                );
                cited.insert(p.to_string());
            }
        }
    }
    // The scenarios between them cite most of the table, so this test reads real output.
    assert!(
        cited.len() * 4 >= table.len() * 3,
        "only {} of {} citations seen",
        cited.len(),
        table.len()
    );
}

/// Every factor code written in any scenario has a plain name in the dashboard, so a liaison
/// officer never reads a bare code.
#[test]
fn every_factor_has_a_plain_name_in_the_dashboard() {
    let app = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/modsignal-api/src/dashboard/app.js"),
    )
    .unwrap();
    for (name, flags) in every_scenario() {
        for f in &flags {
            for x in &f.factors {
                assert!(
                    app.contains(&format!("    {}: \"", x.code)),
                    "{name}: factor `{}` has no plain name in the dashboard's FACTORS",
                    x.code
                );
            }
        }
    }
}

#[test]
fn out_of_order_equals_time_order() {
    assert_eq!(check("out_of_order"), check("out_of_order_sorted"));
}

/// Every flag any scenario writes reads back as itself: the API's store and every test read
/// `modsignal_core::Flag` from the JSON the engine writes, with no mirror type between.
#[test]
fn every_flag_reads_back_as_itself() {
    let mut read = 0;
    for (name, flags) in every_scenario() {
        for f in &flags {
            let back: modsignal_core::Flag = serde_json::from_str(&f.to_json()).unwrap();
            assert_eq!(&back, f, "{name}");
            read += 1;
        }
    }
    assert!(read > 100, "{read}");
}

/// The default policy's cohorts and flags, for `events`: its final flags and final cohort pages.
fn with_cohorts(
    events: &[String],
) -> (
    std::collections::BTreeMap<String, modsignal_core::Flag>,
    std::collections::BTreeMap<String, modsignal_core::Cohort>,
) {
    let (mut engine, flags, errors) = run_engine(&Policy::default(), events);
    assert!(errors.is_empty(), "{errors:?}");
    revisions_grow(&flags).unwrap();
    let mut cohorts = Vec::new();
    engine.take_cohorts(&mut cohorts);
    (final_flags(&flags), final_cohorts(&cohorts))
}

/// In every scenario, and every order of its events, the default policy (resharers whose flags
/// do not matter on their own listed in their message's cohort) says what the snapshots say:
/// each flag written the same, or a resharer's listed with the same numbers; and the cohorts
/// do not depend on the order the events came in.
#[test]
fn cohorts_say_what_every_resharers_flag_says() {
    let mut merged = 0;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let events = lines(&name);
        let (flags, _) = run_lines(&every_flag(), &events);
        let without = final_flags(&flags);
        let (with, cohorts) = with_cohorts(&events);
        merged += cohorts_say_what_flags_say(&without, &with, &cohorts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = render_cohorts(&cohorts);
        for (what, v) in [
            ("reversed", events.iter().rev().cloned().collect::<Vec<_>>()),
            ("shuffled", shuffled(&events, 3)),
            ("twice", events.iter().flat_map(|e| [e.clone(), e.clone()]).collect()),
        ] {
            let (flags, cohorts) = with_cohorts(&v);
            assert_eq!(render_cohorts(&cohorts), expected, "{name} {what}");
            cohorts_say_what_flags_say(&without, &flags, &cohorts).unwrap_or_else(|e| panic!("{name} {what}: {e}"));
        }
    }
    assert!(merged > 10, "only {merged} flags were listed only in a cohort");
}

macro_rules! cohort_snapshot {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn cohorts() {
                let (_, cohorts) = super::with_cohorts(&super::lines(stringify!($name)));
                let got = modsignal_tests::render_cohorts(&cohorts);
                assert!(!got.is_empty(), "no cohort");
                expect_test::expect_file![concat!("../scenarios/", stringify!($name), ".cohorts")].assert_eq(&got);
            }
        }
    )*};
}

cohort_snapshot!(offence_viral_hate, pile_on);
