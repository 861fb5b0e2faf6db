//! Streams for the tests of event time across input partitions: a simulated stream spanning
//! weeks, split into partitions by account as a platform keys it, and flags compared by what a
//! reviewer reads.

use std::collections::BTreeMap;

use modsignal_core::{Cohort, Event, Flag, Policy, decode};
use modsignal_sim::{SimConfig, Simulator};

use crate::{final_cohorts, final_flags, run_engine};

/// A simulated stream of `events` canonical lines over about `days` of event time.
pub fn stream(events: u64, days: f64, seed: u64) -> Vec<String> {
    Simulator::new(SimConfig {
        events,
        seed,
        events_per_sec: events as f64 / (days * 86_400.0),
        ..SimConfig::default()
    })
    .map(|e| e.to_json())
    .collect()
}

/// The account an event would be keyed by on a platform stream: whoever acted (for a removal,
/// a label or impressions, which name no account, the message's id stands in).
pub fn account(ev: &Event<'_>) -> String {
    use modsignal_core::EventKind::{Account, Delete, Impressions, Label, Post, Report, Reshare, Restore, Restrict};
    match &ev.kind {
        Post { author, .. } | Reshare { author, .. } => author.id.to_string(),
        Account { user, .. } => user.to_string(),
        Report { reporter, .. } => reporter.to_string(),
        Delete { id, .. } | Restrict { id, .. } | Restore { id, .. } | Label { id, .. } | Impressions { id, .. } => {
            id.to_string()
        }
    }
}

/// Splits `lines` into partitions by account, partition `p` taking `share[p]` of the accounts'
/// hash space (a share of zero leaves it empty). Returns each line's key and partition.
pub fn partitions(lines: &[String], share: &[f64]) -> Vec<Vec<(String, String)>> {
    let mut parts = vec![Vec::new(); share.len()];
    let total: f64 = share.iter().sum();
    for line in lines {
        let ev = decode(line.as_bytes()).expect("simulated lines decode");
        let key = account(&ev);
        // `DefaultHasher::new` has fixed keys: the same split on every run.
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&key, &mut hasher);
        let h = std::hash::Hasher::finish(&hasher) as f64 / u64::MAX as f64 * total;
        let mut acc = 0.0;
        let p = share
            .iter()
            .position(|s| {
                acc += s;
                h < acc
            })
            .unwrap_or(share.len() - 1);
        parts[p].push((key, line.clone()));
    }
    parts
}

/// A record's JSON without its revision. The revision orders one flag's versions as one engine
/// writes them; it also counts changes to the sender's other labelled messages as they became
/// known, so two read orders can number the same final flag differently. Everything a reviewer
/// reads must be the same. A resharer cohort page's revision is the sum of its members', so it
/// goes too, with each member's.
pub fn content(json: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(json).expect("a flag is JSON");
    v["revision"] = serde_json::Value::Null;
    if let Some(members) = v.get_mut("members").and_then(serde_json::Value::as_array_mut) {
        for m in members {
            m["revision"] = serde_json::Value::Null;
        }
    }
    v.to_string()
}

/// What differs between two sets of final records (flags by `flag_id`, resharer cohort pages
/// by `cohort_id/page`, as JSON) by [`content`]: a line per record missing, extra or different,
/// empty when they agree.
///
/// A resharer's flag written on one side only is no difference when that side's cohort lists
/// the resharer with the flag's numbers: whether a resharer's flag mattered on its own for a
/// moment (and was written then) can depend on the order events were read in, and its newest
/// revision says what the cohort says (the cohorts themselves must agree).
pub fn content_difference(expected: &BTreeMap<String, String>, got: &BTreeMap<String, String>) -> Vec<String> {
    let mut differ = Vec::new();
    for (id, f) in expected {
        match got.get(id) {
            None if listed_in_cohort(expected, f) => {}
            None => differ.push(format!("missing {id}")),
            Some(g) if content(g) != content(f) => {
                differ.push(format!("differs {id}:\n  expected {f}\n  got      {g}"));
            }
            _ => {}
        }
    }
    differ.extend(
        got.iter()
            .filter(|(id, g)| !expected.contains_key(*id) && !listed_in_cohort(got, g))
            .map(|(id, _)| format!("extra {id}")),
    );
    differ
}

/// Whether `json` is a resharer's flag that a cohort page among `records` lists with the same
/// numbers.
fn listed_in_cohort(records: &BTreeMap<String, String>, json: &str) -> bool {
    let Ok(f) = serde_json::from_str::<Flag>(json) else {
        return false;
    };
    f.subject == modsignal_core::Subject::Resharer
        && records.iter().filter(|(key, _)| key.contains('/')).any(|(_, page)| {
            let page: Cohort = serde_json::from_str(page).expect("a cohort page");
            page.members.iter().any(|m| m.says_what(&f))
        })
}

/// Final flags as JSON by `flag_id`.
pub fn as_json(flags: &BTreeMap<String, Flag>) -> BTreeMap<String, String> {
    flags.iter().map(|(id, f)| (id.clone(), f.to_json())).collect()
}

/// Final resharer cohort pages as JSON by `cohort_id/page`.
pub fn cohorts_as_json(cohorts: &[Cohort]) -> BTreeMap<String, String> {
    final_cohorts(cohorts)
        .into_iter()
        .map(|(key, c)| (key, c.to_json()))
        .collect()
}

/// File mode's final flags for `lines`, as JSON by `flag_id`, and its resharer cohort pages, by
/// `cohort_id/page`.
///
/// # Panics
/// When a line is refused, or there are too few flags for a comparison to say anything.
pub fn file_mode_flags(lines: &[String]) -> BTreeMap<String, String> {
    let (mut engine, flags, errors) = run_engine(&Policy::default(), lines);
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    let mut cohorts = Vec::new();
    engine.take_cohorts(&mut cohorts);
    let mut expected = as_json(&final_flags(&flags));
    expected.extend(cohorts_as_json(&cohorts));
    assert!(
        expected.len() > 100,
        "too few flags to say anything: {}",
        expected.len()
    );
    expected
}

/// Asserts that `got` reads as `expected` by [`content`], naming `what` and the first
/// differences.
pub fn assert_same_content(expected: &BTreeMap<String, String>, got: &BTreeMap<String, String>, what: &str) {
    let differ = content_difference(expected, got);
    assert!(
        differ.is_empty(),
        "{what}: {} of {} flags differ from file mode; first:\n{}",
        differ.len(),
        expected.len(),
        differ[..differ.len().min(3)].join("\n")
    );
}
