//! The JSON Schemas of the contracts (`crates/modsignal-core/schemas/`) against the code: the
//! event schema accepts exactly what the decoder accepts (over a corpus of good and bad
//! records), and matches every scenario, every simulated event, every event written back by
//! `Event::to_json` and every canonical event the platform adapters produce from their
//! samples; the flag schema matches every flag `modsignal run` writes.
//!
//! Validation is offline: the schemas reference nothing outside themselves, and the validator
//! is built without its network features.

use std::path::{Path, PathBuf};

use jsonschema::Validator;
use modsignal::cli::main_with_args;
use modsignal_core::decode;
use modsignal_formats::{Format, Read, Reader};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn schema_value(name: &str) -> Value {
    let path = root().join("crates/modsignal-core/schemas").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(name: &str) -> Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema_value(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn event_schema() -> Validator {
    validator("event.v1.schema.json")
}

fn cohort_schema() -> Validator {
    validator("cohort.v1.schema.json")
}

fn flag_schema() -> Validator {
    validator("flag.v1.schema.json")
}

/// Every error of `json` against `v`, with where it was.
fn errors(v: &Validator, json: &str) -> Vec<String> {
    match serde_json::from_str::<Value>(json) {
        Ok(value) => v
            .iter_errors(&value)
            .map(|e| format!("{} at `{}`", e, e.instance_path()))
            .collect(),
        Err(e) => vec![format!("not JSON: {e}")],
    }
}

fn assert_valid(v: &Validator, json: &str, what: &str) {
    let errs = errors(v, json);
    assert!(errs.is_empty(), "{what}: {json}\n  {}", errs.join("\n  "));
}

fn tmp(name: &str) -> PathBuf {
    let dir = modsignal_tests::scratch_dir(env!("CARGO_TARGET_TMPDIR"), "schemas");
    dir.join(name)
}

fn run(args: &[&str]) {
    main_with_args(std::iter::once("modsignal").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
}

/// The event lines of every scenario, without comments and blank lines.
fn scenario_lines() -> Vec<(String, String)> {
    let dir = root().join("tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "scenarios not found in {}", dir.display());
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            if !line.trim().is_empty() && !line.starts_with('#') {
                out.push((name.clone(), line.to_owned()));
            }
        }
    }
    out
}

#[test]
fn the_schemas_are_valid_draft_2020_12_schemas() {
    for name in ["event.v1.schema.json", "flag.v1.schema.json", "cohort.v1.schema.json"] {
        let schema = schema_value(name);
        assert!(jsonschema::meta::is_valid(&schema), "{name}");
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
    }
}

#[test]
fn every_scenario_event_and_its_canonical_form_match_the_event_schema() {
    let v = event_schema();
    let lines = scenario_lines();
    for (file, line) in &lines {
        assert_valid(&v, line, file);
        let ev = decode(line.as_bytes()).unwrap_or_else(|e| panic!("{file}: {e}: {line}"));
        assert_valid(&v, &ev.to_json(), &format!("{file}, written back"));
    }
    assert!(lines.len() > 50);
}

/// Records on both sides of every rule of the decoder. Outside this corpus are the few
/// differences the schema's `$comment` names (numbers written with a fraction or an exponent,
/// repeated keys, offsets that move a stamp across the range's ends).
const CORPUS: &[(bool, &str)] = &[
    (
        true,
        r#"{"type":"post","at":"2024-11-21T16:09:27.095Z","id":"m1","author":{"id":"u1","followers":120,"minor":false},"audience":"followers","reply_to":"m0","quote_of":"m9","mentions":["u2"],"extra":{"ignored":true}}"#,
    ),
    (
        true,
        r#"{"type":"post","at":1732206400000,"id":"m","author":{"id":"u"}}"#,
    ),
    (
        true,
        r#"{"type":"post","at":1732206400000,"id":"m","author":{"id":"u","followers":null,"minor":null},"audience":null,"reply_to":null,"quote_of":null,"mentions":null,"event_id":null}"#,
    ),
    (
        true,
        r#"{"type":"post","at":1732206400000,"id":"m","author":{"id":"u"},"mentions":[]}"#,
    ),
    (
        true,
        r#"{"type":"post","at":946684800000,"id":"m","author":{"id":"u","followers":4294967295}}"#,
    ),
    (
        true,
        r#"{"type":"post","at":"2024-11-21T17:09:27.095+01:00","id":"m","author":{"id":"u"}}"#,
    ),
    (
        true,
        r#"{"type":"reshare","at":1732206400000,"id":"r1","of":"m1","author":{"id":"u3"},"via":"r0"}"#,
    ),
    (true, r#"{"type":"delete","at":1732206400000,"id":"m1"}"#),
    (
        true,
        r#"{"type":"delete","at":1732206400000,"id":"m1","by":"unknown","event_id":"e1"}"#,
    ),
    (
        true,
        r#"{"type":"delete","at":1732206400000,"id":"m1","author":{"id":""},"confidence":7}"#,
    ),
    (
        true,
        r#"{"type":"restrict","at":1732206400000,"id":"m1","by":"legal","scope":"withheld"}"#,
    ),
    (
        true,
        r#"{"type":"restore","at":1732206400000,"id":"m1","by":"platform"}"#,
    ),
    (
        true,
        r#"{"type":"label","at":1732206400000,"id":"m1","category":"credible_threat","confidence":0}"#,
    ),
    (
        true,
        r#"{"type":"label","at":1732206400000,"id":"m1","factor":"hate","category":null,"source":"rev","negate":true}"#,
    ),
    (
        true,
        r#"{"type":"label","at":1732206400000,"id":"m1","category":"communications_offence","factor":null,"confidence":1,"target":"u2"}"#,
    ),
    (
        true,
        r#"{"type":"report","at":1732206400000,"id":"m1","reporter":"u2","by_target":true}"#,
    ),
    (true, r#"{"type":"impressions","at":1732206400000,"id":"m1","count":0}"#),
    (true, r#"{"type":"account","at":1732206400000,"user":"u1"}"#),
    (
        true,
        r#"{"type":"account","at":1732206400000,"user":"u1","status":"takendown","minor":true,"followers":7}"#,
    ),
    (false, r"not json"),
    (false, r"[]"),
    (false, r#""post""#),
    (false, r#"{"type":"post","at":1732206400000}"#),
    (false, r#"{"type":"post","id":"m","author":{"id":"u"}}"#),
    (false, r#"{"type":"post","at":null,"id":"m","author":{"id":"u"}}"#),
    (false, r#"{"at":1732206400000,"id":"m"}"#),
    (false, r#"{"type":"teleport","at":1732206400000,"id":"m"}"#),
    (false, r#"{"type":null,"at":1732206400000,"id":"m"}"#),
    (false, r#"{"type":"delete","at":17,"id":"m"}"#),
    (false, r#"{"type":"delete","at":7258118400001,"id":"m"}"#),
    (false, r#"{"type":"delete","at":18446744073709551615,"id":"m"}"#),
    (false, r#"{"type":"delete","at":1732206400000.5,"id":"m"}"#),
    (false, r#"{"type":"delete","at":"last tuesday","id":"m"}"#),
    (false, r#"{"type":"delete","at":"1999-12-31T00:00:00Z","id":"m"}"#),
    (false, r#"{"type":"delete","at":true,"id":"m"}"#),
    (false, r#"{"type":"delete","at":1732206400000,"id":""}"#),
    (false, r#"{"type":"delete","at":1732206400000}"#),
    (false, r#"{"type":"delete","at":1732206400000,"id":7}"#),
    (
        false,
        r#"{"type":"delete","at":1732206400000,"id":"m","by":"moderator"}"#,
    ),
    (false, r#"{"type":"delete","at":1732206400000,"id":"m","author":5}"#),
    (false, r#"{"type":"delete","at":1732206400000,"id":"m","event_id":12}"#),
    (false, r#"{"type":"post","at":1732206400000,"id":"m"}"#),
    (false, r#"{"type":"post","at":1732206400000,"id":"m","author":null}"#),
    (
        false,
        r#"{"type":"post","at":1732206400000,"id":"m","author":{"followers":3}}"#,
    ),
    (
        false,
        r#"{"type":"post","at":1732206400000,"id":"m","author":{"id":""}}"#,
    ),
    (
        false,
        r#"{"type":"post","at":1732206400000,"id":"m","author":{"id":"u","followers":-1}}"#,
    ),
    (
        false,
        r#"{"type":"post","at":1732206400000,"id":"m","author":{"id":"u","followers":4294967296}}"#,
    ),
    (
        false,
        r#"{"type":"post","at":1732206400000,"id":"m","author":{"id":"u","minor":"yes"}}"#,
    ),
    (
        false,
        r#"{"type":"post","at":1732206400000,"id":"m","author":{"id":"u"},"audience":"everyone"}"#,
    ),
    (
        false,
        r#"{"type":"post","at":1732206400000,"id":"m","author":{"id":"u"},"mentions":"u2"}"#,
    ),
    (
        false,
        r#"{"type":"post","at":1732206400000,"id":"m","author":{"id":"u"},"mentions":[2]}"#,
    ),
    (
        false,
        r#"{"type":"reshare","at":1732206400000,"id":"r","author":{"id":"u"}}"#,
    ),
    (
        false,
        r#"{"type":"reshare","at":1732206400000,"id":"r","of":"","author":{"id":"u"}}"#,
    ),
    (false, r#"{"type":"restrict","at":1732206400000,"id":"m","by":"legal"}"#),
    (false, r#"{"type":"restrict","at":1732206400000,"id":"m","scope":null}"#),
    (
        false,
        r#"{"type":"restrict","at":1732206400000,"id":"m","scope":"hidden"}"#,
    ),
    (
        false,
        r#"{"type":"label","at":1732206400000,"id":"m","category":"credible_threat","factor":"hate"}"#,
    ),
    (false, r#"{"type":"label","at":1732206400000,"id":"m"}"#),
    (
        false,
        r#"{"type":"label","at":1732206400000,"id":"m","category":null,"factor":null}"#,
    ),
    (
        false,
        r#"{"type":"label","at":1732206400000,"id":"m","category":"spam"}"#,
    ),
    (
        false,
        r#"{"type":"label","at":1732206400000,"id":"m","category":"credible_threat","confidence":1.5}"#,
    ),
    (
        false,
        r#"{"type":"label","at":1732206400000,"id":"m","factor":"hate","confidence":-0.1}"#,
    ),
    (
        false,
        r#"{"type":"label","at":1732206400000,"id":"m","factor":"hate","negate":"no"}"#,
    ),
    (false, r#"{"type":"report","at":1732206400000,"id":"m"}"#),
    (false, r#"{"type":"report","at":1732206400000,"id":"m","reporter":""}"#),
    (false, r#"{"type":"impressions","at":1732206400000,"id":"m"}"#),
    (
        false,
        r#"{"type":"impressions","at":1732206400000,"id":"m","count":null}"#,
    ),
    (
        false,
        r#"{"type":"impressions","at":1732206400000,"id":"m","count":-4}"#,
    ),
    (false, r#"{"type":"account","at":1732206400000}"#),
    (false, r#"{"type":"account","at":1732206400000,"user":""}"#),
    (
        false,
        r#"{"type":"account","at":1732206400000,"user":"u","status":"banned"}"#,
    ),
];

#[test]
fn the_event_schema_accepts_exactly_what_the_decoder_accepts() {
    let v = event_schema();
    let mut disagreements = Vec::new();
    for (valid, line) in CORPUS {
        let decoded = decode(line.as_bytes());
        let errs = errors(&v, line);
        if decoded.is_ok() != *valid || errs.is_empty() != *valid {
            disagreements.push(format!(
                "{line}\n  expected valid={valid}; decoder: {:?}; schema: {errs:?}",
                decoded.map(|_| "ok")
            ));
        }
    }
    assert!(disagreements.is_empty(), "\n{}", disagreements.join("\n"));
    assert!(CORPUS.iter().filter(|(v, _)| *v).count() >= 15);
    assert!(CORPUS.iter().filter(|(v, _)| !*v).count() >= 40);
}

#[test]
fn simulated_events_match_the_event_schema() {
    let v = event_schema();
    let path = tmp("sim.jsonl");
    run(&[
        "simulate",
        "--events",
        "20000",
        "--seed",
        "11",
        "-o",
        path.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut types = std::collections::BTreeSet::new();
    for line in text.lines() {
        assert_valid(&v, line, "simulated");
        let value: Value = serde_json::from_str(line).unwrap();
        types.insert(value["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(text.lines().count(), 20000);
    assert!(types.len() >= 6, "the simulation covers few event types: {types:?}");
    // The viral shape too.
    run(&["simulate", "--viral", "--events", "5000", "-o", path.to_str().unwrap()]);
    let text = std::fs::read_to_string(&path).unwrap();
    for line in text.lines() {
        assert_valid(&v, line, "simulated (viral)");
    }
}

/// Every platform sample that should read cleanly, with its format.
fn platform_samples() -> Vec<(Format, PathBuf)> {
    let dir = root().join("tests/samples");
    let mut out = Vec::new();
    for (format, name) in [
        (Format::Jetstream, "jetstream/stream.jsonl"),
        (Format::Mastodon, "mastodon/websocket.jsonl"),
        (Format::Mastodon, "mastodon/sse.txt"),
        (Format::Twitter, "twitter/stream.jsonl"),
        (Format::Canonical, "jetstream/side.jsonl"),
        (Format::Canonical, "mastodon/side.jsonl"),
        (Format::Canonical, "twitter/side.jsonl"),
    ] {
        out.push((format, dir.join(name)));
    }
    out
}

#[test]
fn every_event_the_adapters_produce_from_the_samples_matches_the_event_schema() {
    let v = event_schema();
    let mut kinds = std::collections::BTreeSet::new();
    for (format, path) in platform_samples() {
        let mut reader = Reader::new(format);
        let mut events = Vec::new();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let got = reader.read(line.as_bytes(), &mut events);
            assert!(
                matches!(got, Ok(Read::Events(_) | Read::Skipped(_))),
                "{}:{}: {got:?}",
                path.display(),
                i + 1
            );
        }
        assert!(!events.is_empty(), "{}", path.display());
        for ev in &events {
            kinds.insert(ev.kind.type_name());
            assert_valid(&v, &ev.to_json(), &path.display().to_string());
        }
    }
    for kind in ["post", "reshare", "delete", "restrict", "restore", "label", "account"] {
        assert!(kinds.contains(kind), "no sample produces a `{kind}`: {kinds:?}");
    }
}

/// Runs `modsignal run` with `args` and checks every flag it writes against the flag schema,
/// and every resharer cohort page against the cohort schema; returns how many flags there were.
fn check_flags_of_run(v: &Validator, tag: &str, args: &[&str]) -> usize {
    check_output_of_run(v, &cohort_schema(), tag, args).0
}

/// [`check_flags_of_run`], returning how many flags and how many cohort pages there were.
fn check_output_of_run(v: &Validator, cohorts: &Validator, tag: &str, args: &[&str]) -> (usize, usize) {
    let out = tmp(&format!("{tag}.flags"));
    let rejects = tmp(&format!("{tag}.rejects"));
    let mut all = vec![
        "run",
        "-o",
        out.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    run(&all);
    let text = std::fs::read_to_string(&out).unwrap();
    let (mut flags, mut pages) = (0, 0);
    for line in text.lines() {
        if line.starts_with(r#"{"schema":"modsignal.cohort/1""#) {
            assert_valid(cohorts, line, tag);
            pages += 1;
        } else {
            assert_valid(v, line, tag);
            flags += 1;
        }
    }
    (flags, pages)
}

#[test]
fn every_flag_modsignal_run_writes_matches_the_flag_schema() {
    let v = flag_schema();
    let (sim, pages) = check_output_of_run(&v, &cohort_schema(), "sim", &["--events", "30000", "--seed", "5"]);
    assert!(sim > 50, "only {sim} flags from simulated traffic");
    assert!(pages > 5, "only {pages} resharer cohort pages from simulated traffic");
    let viral_input = tmp("viral.jsonl");
    run(&[
        "simulate",
        "--viral",
        "--events",
        "20000",
        "-o",
        viral_input.to_str().unwrap(),
    ]);
    let (viral, pages) = check_output_of_run(&v, &cohort_schema(), "viral", &["-i", viral_input.to_str().unwrap()]);
    assert!(
        viral > 50 && pages > 20,
        "{viral} flags and {pages} cohort pages from viral traffic"
    );

    // Each scenario, through the command line (comments removed: they are not events).
    let mut by_file: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for (file, line) in scenario_lines() {
        by_file.entry(file).or_default().push(line);
    }
    for (file, lines) in by_file {
        let input = tmp(&file);
        std::fs::write(&input, lines.join("\n")).unwrap();
        let n = check_flags_of_run(&v, &file, &["-i", input.to_str().unwrap()]);
        assert!(n > 0, "{file} wrote no flag");
    }

    // The platform samples with their side inputs.
    let samples = root().join("tests/samples");
    for (format, stream) in [
        ("jetstream", "jetstream/stream.jsonl"),
        ("mastodon", "mastodon/sse.txt"),
        ("twitter", "twitter/stream.jsonl"),
    ] {
        let side = samples.join(format).join("side.jsonl");
        let input = samples.join(stream);
        let n = check_flags_of_run(
            &v,
            format,
            &[
                "--format",
                format,
                "-i",
                input.to_str().unwrap(),
                "--side-input",
                side.to_str().unwrap(),
            ],
        );
        assert!(n > 0, "{format} wrote no flag");
    }
}

#[test]
fn the_flag_schema_refuses_what_modsignal_never_writes() {
    let v = flag_schema();
    let out = tmp("one.flags");
    let input = root().join("tests/scenarios/threat_swift_platform_removal.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let clean = tmp("one.jsonl");
    std::fs::write(&clean, lines.join("\n")).unwrap();
    run(&["run", "-i", clean.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let text = std::fs::read_to_string(&out).unwrap();
    let flag: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(errors(&v, &flag.to_string()).is_empty());
    // What each mutation breaks, and the mutation.
    type Mutation = (&'static str, fn(&mut Value));
    let mutations: [Mutation; 8] = [
        ("a wrong schema", |f| f["schema"] = "modsignal.flag/2".into()),
        ("an unknown field", |f| f["verdict"] = "remove".into()),
        ("an unknown removal", |f| f["exposure"]["removal"] = "vanished".into()),
        ("an unknown remover", |f| {
            f["exposure"]["removed_by"] = "moderator".into();
        }),
        ("a factor effect", |f| f["factors"][0]["effect"] = "neutral".into()),
        ("a time that is not RFC 3339", |f| f["at"] = 1736071200000u64.into()),
        ("the wrong track", |f| f["track"] = "high_threshold".into()),
        ("a score above 1", |f| f["score"] = 1.5.into()),
    ];
    for (what, mutate) in mutations {
        let mut bad = flag.clone();
        mutate(&mut bad);
        assert!(!errors(&v, &bad.to_string()).is_empty(), "{what} was accepted");
    }
}

#[test]
fn the_cohort_schema_refuses_what_modsignal_never_writes() {
    let v = cohort_schema();
    let out = tmp("viral.cohorts");
    let input = tmp("viral-3000.jsonl");
    run(&["simulate", "--viral", "--events", "3000", "-o", input.to_str().unwrap()]);
    run(&["run", "-i", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let text = std::fs::read_to_string(&out).unwrap();
    let page: Value = text
        .lines()
        .filter(|l| l.starts_with(r#"{"schema":"modsignal.cohort/1""#))
        .map(|l| serde_json::from_str(l).unwrap())
        .find(|p: &Value| p["members"].as_array().is_some_and(|m| !m.is_empty()))
        .expect("a cohort page with members");
    assert!(errors(&v, &page.to_string()).is_empty());
    // What each mutation breaks, and the mutation.
    type Mutation = (&'static str, fn(&mut Value));
    let mutations: [Mutation; 7] = [
        ("a flag's schema", |p| p["schema"] = "modsignal.flag/1".into()),
        ("an unknown field", |p| p["verdict"] = "remove".into()),
        ("a member's unknown field", |p| {
            p["members"][0]["factors"] = Value::Array(vec![]);
        }),
        ("a member without exposure", |p| {
            p["members"][0].as_object_mut().unwrap().remove("exposure");
        }),
        ("no pages", |p| p["pages"] = 0.into()),
        ("a summary without its spread", |p| {
            p["summary"].as_object_mut().unwrap().remove("seconds_up");
        }),
        ("the wrong track", |p| {
            p["track"] = if p["track"] == "robust" {
                "high_threshold"
            } else {
                "robust"
            }
            .into();
        }),
    ];
    for (what, mutate) in mutations {
        let mut bad = page.clone();
        mutate(&mut bad);
        assert!(!errors(&v, &bad.to_string()).is_empty(), "{what} was accepted");
    }
}
