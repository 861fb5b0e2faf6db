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

/// Parses flags written as JSON lines back into values, for tests of the command line.
pub fn parse_flag_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("flag lines are JSON"))
        .collect()
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
