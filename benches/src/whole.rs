//! The whole process, as a user runs it (issue 14): `modsignal run -i FILE -o FILE` on three
//! shapes of input, each against a parse-only floor run on the same file in the same run, both
//! as processes of their own pinned to the same core.
//!
//! `cargo run --release -p modsignal-benches --bin whole -- [EVENTS] [RUNS] [CPU]`
//!
//! The shapes, `EVENTS` each (500,000 by default), written by `modsignal simulate`:
//! - `rate 2000`: `simulate --rate 2000`, light traffic, few flags;
//! - `rate 10`: `simulate` (its default rate), the same traffic spread over hours, so that more
//!   of it is labels, removals and flags;
//! - `viral`: `simulate --viral`, every post labelled and reshared heavily, chains five deep,
//!   half of the posts taken down midway: the flag-heavy shape.
//!
//! The floor is this binary run as `whole --floor FILE`: it reads the file line by line and
//! decodes each line with `serde_json` into the canonical shape's borrowed structs
//! (`RawEvent`), nothing else. Both are timed from spawn to exit (wall time, so reading the
//! file, writing the flags and the process's start and end count), `RUNS` times each (3 by
//! default), alternating, and the best of each is kept: on a shared machine the best run is the
//! one least disturbed. `CPU` is the core both are pinned to with `taskset` (0 by default;
//! `none` leaves them unpinned). The `modsignal` binary is built first with
//! `cargo build --release -p modsignal`, which does nothing when it is up to date.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use modsignal_core::event::RawEvent;

/// The floor: decode every line of `path` into the canonical shape, and print how many.
fn floor(path: &Path) {
    let file = std::fs::File::open(path).expect("the floor's input opens");
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::with_capacity(4096);
    let mut parsed = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).expect("the floor's input reads") == 0 {
            break;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.is_empty() {
            continue;
        }
        let raw: RawEvent<'_> = serde_json::from_slice(text).expect("the simulator writes valid events");
        parsed += u64::from(raw.kind.is_some());
        std::hint::black_box(&raw);
    }
    println!("{parsed}");
}

/// `program` with `args`, pinned to `cpu` when one is given.
fn pinned(cpu: Option<&str>, program: &Path, args: &[&str]) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpu]).arg(program).args(args);
            c
        }
        None => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    }
}

/// Runs `command` to its end and returns its wall time in seconds and its standard output.
fn timed(mut command: Command) -> (f64, String) {
    let started = Instant::now();
    let out = command.output().expect("the process starts");
    let secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (secs, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Counts the lines of `path`, a block at a time: on the viral shape the output is a gigabyte
/// and more, which need not be held to be counted.
fn lines_of(path: &Path) -> u64 {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).expect("the output opens"));
    let mut lines = 0u64;
    loop {
        let block = reader.fill_buf().expect("the output reads");
        if block.is_empty() {
            return lines;
        }
        lines += memchr::memchr_iter(b'\n', block).count() as u64;
        let n = block.len();
        reader.consume(n);
    }
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--floor") {
        floor(Path::new(&args.nth(1).expect("--floor FILE")));
        return;
    }
    let events: u64 = args.next().map_or(500_000, |a| a.parse().expect("EVENTS is a number"));
    let runs: usize = args.next().map_or(3, |a| a.parse().expect("RUNS is a number"));
    let cpu = args.next().unwrap_or_else(|| "0".to_owned());
    let cpu = (cpu != "none").then_some(cpu.as_str());

    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", "modsignal", "--bin", "modsignal"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --release -p modsignal failed");
    let me = std::env::current_exe().expect("the bench knows where it is");
    let modsignal: PathBuf = me.with_file_name("modsignal");
    assert!(modsignal.exists(), "no modsignal binary beside {}", me.display());

    let dir = std::env::temp_dir().join(format!("modsignal-whole-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory can be made");
    println!(
        "whole process, {events} events per shape, best of {runs} runs, pinned to {}, on {}",
        cpu.map_or("no core".to_owned(), |c| format!("core {c}")),
        modsignal_benches::cpu_model()
    );
    println!(
        "| input | modsignal events/s | floor events/s | ratio | records per event (flag revisions and cohort pages) | output bytes per event | input bytes per event |"
    );
    println!("|---|---|---|---|---|---|---|");
    let shapes: [(&str, &[&str]); 3] = [
        ("simulate --rate 2000", &["--rate", "2000"]),
        ("simulate (rate 10)", &[]),
        ("simulate --viral", &["--viral"]),
    ];
    for (name, extra) in shapes {
        let input = dir.join("input.jsonl");
        let output = dir.join("flags.jsonl");
        let rejects = dir.join("rejects.jsonl");
        let n = events.to_string();
        let mut sim = Command::new(&modsignal);
        sim.args(["simulate", "--events", &n, "-o"]).arg(&input).args(extra);
        timed(sim);
        let input_bytes = std::fs::metadata(&input).expect("the input was written").len();
        let (mut best, mut best_floor) = (f64::MAX, f64::MAX);
        for _ in 0..runs.max(1) {
            let (secs, counted) = timed(pinned(cpu, &me, &["--floor", input.to_str().expect("a UTF-8 path")]));
            assert_eq!(counted.trim(), n, "the floor decodes every event");
            best_floor = best_floor.min(secs);
            let _ = std::fs::remove_file(&output);
            let run_args = [
                "run",
                "-i",
                input.to_str().expect("a UTF-8 path"),
                "-o",
                output.to_str().expect("a UTF-8 path"),
                "--rejects",
                rejects.to_str().expect("a UTF-8 path"),
            ];
            let (secs, _) = timed(pinned(cpu, &modsignal, &run_args));
            best = best.min(secs);
        }
        let output_bytes = std::fs::metadata(&output).expect("the flags were written").len();
        let revisions = lines_of(&output);
        let per_event = |x: u64| x as f64 / events as f64;
        println!(
            "| `{name}` | {:.0} | {:.0} | {:.3} | {:.3} | {:.0} | {:.0} |",
            events as f64 / best,
            events as f64 / best_floor,
            best_floor / best,
            per_event(revisions),
            per_event(output_bytes),
            per_event(input_bytes),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
