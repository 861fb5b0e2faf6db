//! Helpers shared by modsignal's integration tests: run events through the engine, keep the
//! final revision of each flag, and render flags in a compact form a reviewer can read.
//! [`broker`] starts a real Apache Kafka broker for the Kafka worker's tests,
//! [`worker`] runs that worker inside a test against it, and [`binary`] builds the real
//! `modsignal` binary for tests that run it as a process.

use std::collections::BTreeMap;
use std::fmt::Write;

use modsignal_core::{Engine, Flag, Policy, decode};

/// A directory for one suite's files under Cargo's target directory (pass
/// `env!("CARGO_TARGET_TMPDIR")` as `base`), emptied the first time a process asks for it, so
/// that test files never pile up in the system's temporary directory and each run starts
/// clean.
pub fn scratch_dir(base: &str, name: &str) -> std::path::PathBuf {
    static CLEARED: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    let dir = std::path::Path::new(base).join(name);
    let mut cleared = CLEARED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !cleared.contains(&dir) {
        let _ = std::fs::remove_dir_all(&dir);
        cleared.push(dir.clone());
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

pub mod backlog;
pub mod binary;
use modsignal_core::cohort::COHORT_SCHEMA;

pub mod broker;
pub mod worker;

/// Runs canonical JSON lines through a fresh engine and returns every flag written, the
/// end-of-input flush included. Lines that do not decode or apply are returned as errors.
pub fn run_lines<S: AsRef<str>>(policy: &Policy, lines: &[S]) -> (Vec<Flag>, Vec<String>) {
    let (_, out, errors) = run_engine(policy, lines);
    (out, errors)
}

/// [`run_lines`], also returning the engine, to be taken further (moved to a later event time,
/// say).
pub fn run_engine<S: AsRef<str>>(policy: &Policy, lines: &[S]) -> (Engine, Vec<Flag>, Vec<String>) {
    let mut engine = Engine::new(policy.clone());
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for line in lines {
        let line = line.as_ref().trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match decode(line.as_bytes()) {
            Ok(ev) => {
                if let Err(e) = engine.apply(&ev, &mut out) {
                    errors.push(format!("{e}: {line}"));
                }
            }
            Err(e) => errors.push(format!("{e}: {line}")),
        }
    }
    engine.finish(&mut out);
    (engine, out, errors)
}

/// The newest revision of each flag, as a consumer that keeps the latest per `flag_id` sees it.
pub fn final_flags(flags: &[Flag]) -> BTreeMap<String, Flag> {
    let mut m: BTreeMap<String, Flag> = BTreeMap::new();
    for f in flags {
        match m.get(&f.flag_id) {
            Some(prev) if prev.revision > f.revision => {}
            _ => {
                m.insert(f.flag_id.clone(), f.clone());
            }
        }
    }
    m
}

/// The newest revision of each resharer cohort page, by `cohort_id/page`.
pub fn final_cohorts(cohorts: &[modsignal_core::Cohort]) -> BTreeMap<String, modsignal_core::Cohort> {
    let mut m: BTreeMap<String, modsignal_core::Cohort> = BTreeMap::new();
    for c in cohorts {
        match m.get(&c.key()) {
            Some(prev) if prev.revision > c.revision => {}
            _ => {
                m.insert(c.key(), c.clone());
            }
        }
    }
    m
}

/// Checks every flag's revisions only grow in the order written.
pub fn revisions_grow(flags: &[Flag]) -> Result<(), String> {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for f in flags {
        if let Some(&prev) = last.get(f.flag_id.as_str())
            && f.revision <= prev
        {
            return Err(format!(
                "flag {} went from revision {prev} to {}",
                f.flag_id, f.revision
            ));
        }
        last.insert(&f.flag_id, f.revision);
    }
    Ok(())
}

/// A compact, reviewable rendering of final flags, ordered by message, subject and account.
pub fn render(flags: &BTreeMap<String, Flag>) -> String {
    let mut v: Vec<&Flag> = flags.values().collect();
    v.sort_by(|a, b| {
        (&a.message_id, a.subject, &a.account, a.category).cmp(&(&b.message_id, b.subject, &b.account, b.category))
    });
    let mut s = String::new();
    for f in v {
        let _ = writeln!(
            s,
            "{} {} {} {} {} raised={} score={:.4} rev={} at={}",
            f.message_id,
            f.subject.as_str(),
            f.account,
            f.category.as_str(),
            f.track.as_str(),
            f.raised,
            f.score,
            f.revision,
            f.at
        );
        let r = &f.reach;
        let _ = writeln!(
            s,
            "  reach audience={} reshares={} quotes={} replies={} impressions={} depth={}",
            r.audience,
            r.reshares,
            r.quotes,
            r.replies,
            r.impressions.map_or("-".to_string(), |n| n.to_string()),
            r.depth
        );
        let e = &f.exposure;
        let _ = writeln!(
            s,
            "  exposure posted={} removed={} by={} how={} up={}s still_up={}",
            e.posted_at,
            e.removed_at.map_or("-".to_string(), |t| t.to_string()),
            e.removed_by.map_or("-", |b| b.as_str()),
            e.removal.map_or("-", |k| k.as_str()),
            e.seconds_up,
            e.still_up
        );
        if let Some(r) = &e.restricted {
            let scope = serde_json::to_value(r.scope).expect("a scope serialises");
            let _ = writeln!(
                s,
                "  restricted at={} by={} scope={}",
                r.at,
                r.by.as_str(),
                scope.as_str().unwrap_or("?")
            );
        }
        for fa in &f.factors {
            let sign = match fa.effect {
                modsignal_core::model::Effect::For => '+',
                modsignal_core::model::Effect::Against => '-',
                modsignal_core::model::Effect::Neutral => '=',
            };
            let _ = writeln!(s, "  {sign} {} {:.4}: {}", fa.code, fa.weight, fa.evidence);
        }
    }
    s
}

/// Parses flags written as JSON lines back into values, for tests of the command line. The
/// resharer cohort pages written beside them are left out ([`parse_cohort_lines`]).
pub fn parse_flag_lines(text: &str) -> Vec<serde_json::Value> {
    output_lines(text).filter(|v| v["schema"] != COHORT_SCHEMA).collect()
}

/// Parses the resharer cohort pages among the JSON lines of a run's output.
///
/// # Panics
/// When a cohort line does not read as a cohort page.
pub fn parse_cohort_lines(text: &str) -> Vec<modsignal_core::Cohort> {
    output_lines(text)
        .filter(|v| v["schema"] == COHORT_SCHEMA)
        .map(|v| serde_json::from_value(v).expect("a cohort page"))
        .collect()
}

fn output_lines(text: &str) -> impl Iterator<Item = serde_json::Value> + '_ {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("flag lines are JSON"))
}

/// A compact, reviewable rendering of final resharer cohort pages, in key order: each page's
/// summary, then one line per member with the numbers of their flag.
pub fn render_cohorts(cohorts: &BTreeMap<String, modsignal_core::Cohort>) -> String {
    let mut v: Vec<&modsignal_core::Cohort> = cohorts.values().collect();
    v.sort_by(|a, b| (&a.message_id, a.category, a.page).cmp(&(&b.message_id, b.category, b.page)));
    let mut s = String::new();
    for c in v {
        let m = &c.summary;
        let _ = writeln!(
            s,
            "{} cohort {} page {}/{} rev={} at={}: resharers={} raised={} still_up={} audience={} up min={}s median={}s p90={}s max={}s",
            c.message_id,
            c.category.as_str(),
            c.page + 1,
            c.pages,
            c.revision,
            c.at,
            m.resharers,
            m.raised,
            m.still_up,
            m.audience,
            m.seconds_up.min,
            m.seconds_up.median,
            m.seconds_up.p90,
            m.seconds_up.max
        );
        for m in &c.members {
            let (r, e) = (&m.reach, &m.exposure);
            let _ = writeln!(
                s,
                "  {} raised={} score={:.4} rev={} audience={} reshares={} depth={} posted={} up={}s still_up={} removed={} by={}",
                m.account,
                m.raised,
                m.score,
                m.revision,
                r.audience,
                r.reshares,
                r.depth,
                e.posted_at,
                e.seconds_up,
                e.still_up,
                e.removed_at.map_or("-".to_string(), |t| t.to_string()),
                e.removed_by.map_or("-", |b| b.as_str())
            );
        }
    }
    s
}

/// Checks that a run with resharer cohorts (`with`, its flags and cohort pages) says what a run
/// without them (`without`, every resharer's flag written) says: every flag of the latter is
/// either written by the former with the same newest revision, or a resharer's flag listed in
/// its cohort with the same numbers; every resharer is listed once, and no flag is written by
/// the former alone. Returns how many flags were listed only in a cohort.
///
/// # Errors
/// The first thing that differs.
pub fn cohorts_say_what_flags_say(
    without: &BTreeMap<String, Flag>,
    with: &BTreeMap<String, Flag>,
    cohorts: &BTreeMap<String, modsignal_core::Cohort>,
) -> Result<usize, String> {
    let mut members: BTreeMap<&str, &modsignal_core::cohort::Member> = BTreeMap::new();
    for m in cohorts.values().flat_map(|c| &c.members) {
        if members.insert(&m.flag_id, m).is_some() {
            return Err(format!("{} is listed twice", m.flag_id));
        }
    }
    let mut merged = 0;
    for (id, f) in without {
        if f.subject == modsignal_core::Subject::Resharer {
            let m = members
                .remove(id.as_str())
                .ok_or_else(|| format!("{id} is in no cohort"))?;
            if !m.says_what(f) {
                return Err(format!("{id}: the cohort lists {m:?}, the flag says {f:?}"));
            }
        }
        match with.get(id) {
            Some(w) if w == f => {}
            Some(w) => return Err(format!("{id}: {w:?} with cohorts, {f:?} without")),
            None if f.subject == modsignal_core::Subject::Resharer && !f.raised => merged += 1,
            None => return Err(format!("{id} is not written with cohorts: {f:?}")),
        }
    }
    if let Some(id) = with.keys().find(|id| !without.contains_key(*id)) {
        return Err(format!("{id} is written only with cohorts"));
    }
    if let Some(id) = members.keys().next() {
        return Err(format!("{id} is listed but has no flag without cohorts"));
    }
    Ok(merged)
}

/// Runs `lines` and checks the run is clean, its revisions only grow, and its final flags render
/// as `expected`; on a difference, panics with the first differing lines, labelled `what`.
pub fn assert_replay_gives<S: AsRef<str>>(policy: &Policy, lines: &[S], expected: &str, what: &str) {
    let (flags, errors) = run_lines(policy, lines);
    assert!(errors.is_empty(), "{what}: {errors:?}");
    revisions_grow(&flags).unwrap_or_else(|e| panic!("{what}: {e}"));
    let got = render(&final_flags(&flags));
    if got != expected {
        let diff: Vec<String> = expected
            .lines()
            .zip(got.lines())
            .filter(|(a, b)| a != b)
            .take(6)
            .map(|(a, b)| format!("  expected: {a}\n  {what}: {b}"))
            .collect();
        panic!("final flags changed when {what}:\n{}", diff.join("\n"));
    }
}
