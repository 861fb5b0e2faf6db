//! The command line, driven in-process: `run` over files with bad lines and byte-order marks,
//! with a large side input, `run` on simulated traffic, `simulate`, and policy errors; and,
//! through the real binary for its exit status and standard error, files that cannot be read
//! or written.

use std::path::{Path, PathBuf};

use modsignal::cli::main_with_args;
use modsignal_tests::parse_flag_lines;

fn tmp(name: &str) -> PathBuf {
    let dir = modsignal_tests::scratch_dir(env!("CARGO_TARGET_TMPDIR"), "cli");
    dir.join(name)
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(name)
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    main_with_args(std::iter::once("modsignal").chain(args.iter().copied()))
}

#[test]
fn bad_lines_go_to_the_reject_file_and_the_rest_is_processed() {
    let input = tmp("mixed.jsonl");
    let good = std::fs::read_to_string(scenario("threat_swift_platform_removal.jsonl")).unwrap();
    let mut lines: Vec<&str> = good.lines().filter(|l| !l.starts_with('#')).collect();
    lines.insert(1, "{not json");
    lines.insert(3, r#"{"type":"post","at":"2026-01-05T10:00:00Z","id":"x"}"#);
    lines.insert(4, "");
    lines.push(r#"{"type":"reshare","at":"2026-01-05T10:00:00Z","id":"m1","of":"m0","author":{"id":"u9"}}"#);
    std::fs::write(&input, lines.join("\n")).unwrap();
    let (out, rejects) = (tmp("mixed.flags"), tmp("mixed.rejects"));
    run(&[
        "run",
        "-i",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
    ])
    .unwrap();

    let flags = parse_flag_lines(&std::fs::read_to_string(&out).unwrap());
    let last = flags.last().expect("flags were written");
    assert_eq!(last["schema"], "modsignal.flag/1");
    assert_eq!(last["category"], "credible_threat");
    assert_eq!(last["raised"], true);
    assert_eq!(last["exposure"]["seconds_up"], 845);
    assert_eq!(last["exposure"]["removed_by"], "platform");

    let rejects: Vec<serde_json::Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(u64, &str)> = rejects
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        vec![(2, "invalid_json"), (4, "missing_field"), (8, "kind_conflict")]
    );
    assert!(
        rejects[1]["reason"].as_str().unwrap().contains("author"),
        "{}",
        rejects[1]
    );
    assert!(rejects[0]["record"].as_str().unwrap().starts_with("{not json"));
}

#[test]
fn a_clean_run_leaves_no_reject_file() {
    let (out, rejects) = (tmp("clean.flags"), tmp("clean.rejects"));
    let input = tmp("clean.jsonl");
    let text = std::fs::read_to_string(scenario("accounts.jsonl")).unwrap();
    let events: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    std::fs::write(&input, events.join("\n")).unwrap();
    run(&[
        "run",
        "-i",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
    ])
    .unwrap();
    assert!(!rejects.exists());
    assert!(!parse_flag_lines(&std::fs::read_to_string(&out).unwrap()).is_empty());
}

#[test]
fn run_without_input_runs_on_simulated_traffic_and_equals_a_run_on_the_simulated_file() {
    let (events, direct, from_file) = (tmp("sim.jsonl"), tmp("sim-direct.flags"), tmp("sim-file.flags"));
    run(&[
        "simulate",
        "--events",
        "30000",
        "--seed",
        "3",
        "-o",
        events.to_str().unwrap(),
    ])
    .unwrap();
    run(&[
        "run",
        "--events",
        "30000",
        "--seed",
        "3",
        "-o",
        direct.to_str().unwrap(),
    ])
    .unwrap();
    run(&["run", "-i", events.to_str().unwrap(), "-o", from_file.to_str().unwrap()]).unwrap();
    let a = std::fs::read_to_string(&direct).unwrap();
    let b = std::fs::read_to_string(&from_file).unwrap();
    assert!(parse_flag_lines(&a).len() > 10);
    assert_eq!(
        a, b,
        "the embedded default and the same events from a file must give the same flags"
    );
}

#[test]
fn simulate_is_deterministic_and_decodes() {
    let (a, b) = (tmp("a.jsonl"), tmp("b.jsonl"));
    run(&["simulate", "--events", "5000", "--seed", "9", "-o", a.to_str().unwrap()]).unwrap();
    run(&["simulate", "--events", "5000", "--seed", "9", "-o", b.to_str().unwrap()]).unwrap();
    let text = std::fs::read_to_string(&a).unwrap();
    assert_eq!(text, std::fs::read_to_string(&b).unwrap());
    assert_eq!(text.lines().count(), 5000);
    for line in text.lines() {
        modsignal_core::decode(line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}

#[test]
fn simulate_viral_is_deterministic_and_decodes_and_every_post_is_labelled() {
    let (a, b) = (tmp("viral-a.jsonl"), tmp("viral-b.jsonl"));
    for path in [&a, &b] {
        run(&[
            "simulate",
            "--viral",
            "--events",
            "20000",
            "--seed",
            "4",
            "-o",
            path.to_str().unwrap(),
        ])
        .unwrap();
    }
    let text = std::fs::read_to_string(&a).unwrap();
    assert_eq!(text, std::fs::read_to_string(&b).unwrap());
    assert_eq!(text.lines().count(), 20000);
    let mut posts = std::collections::BTreeSet::new();
    let mut labelled = std::collections::BTreeSet::new();
    for line in text.lines() {
        match modsignal_core::decode(line.as_bytes())
            .unwrap_or_else(|e| panic!("{e}: {line}"))
            .kind
        {
            modsignal_core::EventKind::Post { id, .. } => posts.insert(id.into_owned()),
            modsignal_core::EventKind::Label { id, .. } => labelled.insert(id.into_owned()),
            _ => false,
        };
    }
    // The last cascade may be cut before its label comes.
    assert!(
        posts.difference(&labelled).count() <= 1,
        "{} posts, {} labelled",
        posts.len(),
        labelled.len()
    );
}

#[test]
fn a_policy_that_breaks_the_promises_is_refused() {
    let policy = tmp("bad-policy.toml");
    std::fs::write(&policy, "[weights]\nswift_removal = -1.0\n").unwrap();
    let input = scenario("accounts.jsonl");
    let err = run(&[
        "run",
        "-i",
        input.to_str().unwrap(),
        "-o",
        tmp("x.flags").to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ])
    .unwrap_err();
    assert!(format!("{err:#}").contains("swift_removal"), "{err:#}");
}

#[test]
fn file_mode_options_are_refused_with_kafka_settings() {
    // Refused before anything connects: no broker is needed.
    let err = run(&[
        "run",
        "--brokers",
        "127.0.0.1:9",
        "--input-topic",
        "events",
        "-o",
        tmp("kafka.flags").to_str().unwrap(),
        "--events",
        "10",
    ])
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.starts_with("--output, --events are file-mode options, but Kafka settings were given"),
        "{text}"
    );

    // A config file's [kafka] section is a Kafka setting too.
    let config = tmp("kafka.toml");
    std::fs::write(
        &config,
        "[kafka]\nbrokers = \"127.0.0.1:9\"\ninput_topics = [\"events\"]\n",
    )
    .unwrap();
    let input = scenario("accounts.jsonl");
    let err = run(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
    ])
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.starts_with("--input is a file-mode option"), "{text}");
}

/// Runs the real binary with `args` and returns its exit status and standard error.
fn run_binary(args: &[&str]) -> (std::process::ExitStatus, String) {
    let out = modsignal_tests::binary::modsignal_command()
        .args(args)
        .output()
        .expect("the binary runs");
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_unwritable_reject_path_fails_at_start_naming_it() {
    let dir = tmp("rejects-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let file = tmp("rejects-parent-is-a-file");
    std::fs::write(&file, "").unwrap();
    // A bad line far into the input: before the check, the run stopped there, midway
    // through its output, with an error that did not name the file.
    let input = tmp("rejects-input.jsonl");
    let good = std::fs::read_to_string(scenario("accounts.jsonl")).unwrap();
    let mut lines: Vec<&str> = good.lines().filter(|l| !l.starts_with('#')).collect();
    lines.push("{not json");
    std::fs::write(&input, lines.join("\n")).unwrap();
    for (rejects, why) in [
        (dir.clone(), "it is a directory"),
        (dir.join("missing").join("rejects.jsonl"), "No such file or directory"),
        (file.join("rejects.jsonl"), "is not a directory"),
    ] {
        let out = tmp("rejects-unwritable.flags");
        let _ = std::fs::remove_file(&out);
        let (status, stderr) = run_binary(&[
            "run",
            "-i",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ]);
        assert!(!status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("cannot write the reject file {}", rejects.display())),
            "{stderr}"
        );
        assert!(stderr.contains(why), "{stderr}");
        assert!(!out.exists(), "nothing was written: {}", rejects.display());
    }
}

#[test]
fn files_that_cannot_be_read_or_written_are_named() {
    let dir = tmp("a-directory");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let input = scenario("accounts.jsonl");
    let input = input.to_str().unwrap();
    let rejects = tmp("named.rejects");
    let rejects = rejects.to_str().unwrap();
    let out = tmp("named.flags");
    let out = out.to_str().unwrap();
    let cases: [(&str, Vec<&str>, String); 4] = [
        (
            "--input",
            vec!["-i", d, "-o", out],
            format!("cannot read {d}: it is a directory"),
        ),
        (
            "--side-input",
            vec!["-i", input, "-o", out, "--side-input", d],
            format!("cannot read side input {d}: it is a directory"),
        ),
        ("--output", vec!["-i", input, "-o", d], format!("cannot create {d}")),
        (
            "--policy",
            vec!["-i", input, "-o", out, "--policy", d],
            format!("cannot read policy file {d}"),
        ),
    ];
    for (option, args, want) in cases {
        let mut all = vec!["run", "--rejects", rejects];
        all.extend(args);
        let (status, stderr) = run_binary(&all);
        assert!(!status.success(), "{option}: {stderr}");
        assert!(stderr.contains(&want), "{option}: {stderr}");
    }
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let text = std::fs::read_to_string(scenario("threat_swift_platform_removal.jsonl")).unwrap();
    let events: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let (plain, with_bom) = (tmp("bom-plain.jsonl"), tmp("bom.jsonl"));
    std::fs::write(&plain, events.join("\n")).unwrap();
    std::fs::write(&with_bom, format!("\u{feff}{}\r\n", events.join("\r\n"))).unwrap();
    // A side input with a mark of its own, whose first line is the one that counts.
    let side = tmp("bom-side.jsonl");
    std::fs::write(
        &side,
        "\u{feff}{\"type\":\"account\",\"at\":\"2026-01-05T09:00:00Z\",\"user\":\"nobody\",\"followers\":1}\n",
    )
    .unwrap();
    let mut flags = Vec::new();
    for (tag, input) in [("plain", &plain), ("bom", &with_bom)] {
        let (out, rejects) = (tmp(&format!("bom-{tag}.flags")), tmp(&format!("bom-{tag}.rejects")));
        let _ = std::fs::remove_file(&rejects);
        run(&[
            "run",
            "-i",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
            "--side-input",
            side.to_str().unwrap(),
        ])
        .unwrap();
        assert!(
            !rejects.exists(),
            "{tag}: {}",
            std::fs::read_to_string(&rejects).unwrap()
        );
        flags.push(std::fs::read_to_string(&out).unwrap());
    }
    assert!(!parse_flag_lines(&flags[0]).is_empty());
    assert_eq!(flags[0], flags[1]);
}

/// The newest revision of each flag, as a consumer keeping the highest revision sees it.
fn final_flags(text: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut m = std::collections::BTreeMap::new();
    for f in parse_flag_lines(text) {
        let id = f["flag_id"].as_str().unwrap().to_owned();
        let rev = f["revision"].as_u64().unwrap();
        if m.get(&id)
            .is_none_or(|p: &serde_json::Value| p["revision"].as_u64().unwrap() <= rev)
        {
            m.insert(id, f);
        }
    }
    m
}

/// A side input of 200,000 lines is read as a stream with the main input, and gives the
/// flags of the same events in one time-sorted input.
#[test]
fn a_large_side_input_is_streamed_with_the_main_input() {
    let sim = modsignal_sim::Simulator::new(modsignal_sim::SimConfig {
        events: 240_000,
        seed: 11,
        events_per_sec: 200.0,
        ..modsignal_sim::SimConfig::default()
    });
    let mut events: Vec<(modsignal_core::Ts, String)> = sim.map(|ev| (ev.at, ev.to_json())).collect();
    // Side inputs are written in event-time order; the stable sort keeps the simulator's order
    // at equal times.
    events.sort_by_key(|(at, _)| *at);
    let (mut main, mut side, mut all) = (String::new(), String::new(), String::new());
    for (i, (_, line)) in events.iter().enumerate() {
        let part = if i % 6 == 0 { &mut main } else { &mut side };
        part.push_str(line);
        part.push('\n');
        all.push_str(line);
        all.push('\n');
    }
    assert_eq!(side.lines().count(), 200_000);
    let (main_path, side_path, all_path) = (
        tmp("stream-main.jsonl"),
        tmp("stream-side.jsonl"),
        tmp("stream-all.jsonl"),
    );
    std::fs::write(&main_path, main).unwrap();
    std::fs::write(&side_path, side).unwrap();
    std::fs::write(&all_path, all).unwrap();
    let (split_out, one_out, rejects) = (
        tmp("stream-split.flags"),
        tmp("stream-one.flags"),
        tmp("stream.rejects"),
    );
    let _ = std::fs::remove_file(&rejects);
    run(&[
        "run",
        "-i",
        main_path.to_str().unwrap(),
        "--side-input",
        side_path.to_str().unwrap(),
        "-o",
        split_out.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
    ])
    .unwrap();
    run(&[
        "run",
        "-i",
        all_path.to_str().unwrap(),
        "-o",
        one_out.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
    ])
    .unwrap();
    assert!(!rejects.exists());
    let split = final_flags(&std::fs::read_to_string(&split_out).unwrap());
    let one = final_flags(&std::fs::read_to_string(&one_out).unwrap());
    assert!(one.len() > 100, "{} flags", one.len());
    assert!(split == one, "{} flags against {}", split.len(), one.len());
    for p in [main_path, side_path, all_path, split_out, one_out] {
        let _ = std::fs::remove_file(p);
    }
}

/// Issue 9, case 3, as a user meets it: one record dated 2199 in the middle of a file goes to
/// the reject file as `future` with its line number, and every flag is what it is without it;
/// with `--ingest-clock`, a record stamped an hour after this machine's clock is refused too.
#[test]
fn a_record_from_the_future_is_rejected_and_changes_no_flag() {
    let clean = std::fs::read_to_string(scenario("offence_viral_hate.jsonl")).unwrap();
    let lines: Vec<&str> = clean.lines().filter(|l| !l.starts_with('#')).collect();
    let future = r#"{"type":"delete","at":"2199-01-01T00:00:00Z","id":"m3","by":"platform"}"#;
    let mut hostile = lines.clone();
    hostile.insert(lines.len() / 2, future);
    let flags_of = |name: &str, input: &[&str], extra: &[&str]| {
        let (i, o, r) = (
            tmp(&format!("{name}.jsonl")),
            tmp(&format!("{name}.flags")),
            tmp(&format!("{name}.rejects")),
        );
        std::fs::write(&i, input.join("\n")).unwrap();
        let _ = std::fs::remove_file(&r);
        let mut args = vec![
            "run",
            "-i",
            i.to_str().unwrap(),
            "-o",
            o.to_str().unwrap(),
            "--rejects",
            r.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args).unwrap();
        (
            final_flags(&std::fs::read_to_string(&o).unwrap()),
            std::fs::read_to_string(&r).unwrap_or_default(),
        )
    };
    let (expected, none) = flags_of("future-clean", &lines, &[]);
    assert!(none.is_empty() && !expected.is_empty());
    let (got, rejects) = flags_of("future-hostile", &hostile, &[]);
    assert_eq!(got, expected);
    let reject: serde_json::Value = serde_json::from_str(rejects.lines().next().expect("a reject")).unwrap();
    assert_eq!(reject["code"], "future");
    assert_eq!(reject["line"], lines.len() / 2 + 1);
    assert!(reject["reason"].as_str().unwrap().contains("max_jump_secs"), "{reject}");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let soon = format!(
        r#"{{"type":"post","at":{},"id":"fresh","author":{{"id":"a"}}}}"#,
        now + 3_600_000
    );
    let mut live = lines.clone();
    live.push(&soon);
    let (got, rejects) = flags_of("future-live", &live, &["--ingest-clock"]);
    assert_eq!(got, expected);
    assert!(rejects.contains("max_skew_secs"), "{rejects}");
}
