//! The platform adapters end to end: each platform's sample stream, with a canonical side input
//! of follower counts and labels, through `modsignal run --format …`, giving the flags (or AT
//! Protocol labels) a reviewer expects; malformed records set aside with their reason; skipped
//! records counted by reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use expect_test::expect;
use modsignal::cli::main_with_args;
use modsignal::files::{Pipeline, Rejects};
use modsignal_core::Policy;
use modsignal_formats::Format;
use modsignal_tests::parse_flag_lines;
use serde_json::Value;

fn sample(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(path)
}

fn tmp(name: &str) -> PathBuf {
    let dir = modsignal_tests::scratch_dir(env!("CARGO_TARGET_TMPDIR"), "formats");
    dir.join(name)
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    main_with_args(std::iter::once("modsignal").chain(args.iter().copied()))
}

/// What one run wrote: its output lines, and its reject entries (none when no file was made).
struct Ran {
    out: Vec<Value>,
    text: String,
    rejects: Vec<Value>,
}

/// Runs `modsignal run --format FORMAT -i INPUT` with side inputs and extra arguments.
fn run_stream(tag: &str, format: &str, input: &Path, side: &[PathBuf], extra: &[&str]) -> Ran {
    let (out, rejects) = (tmp(&format!("{tag}.out")), tmp(&format!("{tag}.rejects")));
    let _ = std::fs::remove_file(&rejects);
    let mut args: Vec<String> = ["run", "--format", format, "-i"].map(String::from).to_vec();
    args.push(input.display().to_string());
    args.extend(["-o".to_string(), out.display().to_string()]);
    args.extend(["--rejects".to_string(), rejects.display().to_string()]);
    for s in side {
        args.extend(["--side-input".to_string(), s.display().to_string()]);
    }
    args.extend(extra.iter().map(std::string::ToString::to_string));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&refs).unwrap_or_else(|e| panic!("{tag}: {e:#}"));
    let text = std::fs::read_to_string(&out).unwrap();
    let rejects = match std::fs::read_to_string(&rejects) {
        Ok(t) => parse_flag_lines(&t),
        Err(_) => Vec::new(),
    };
    Ran {
        out: parse_flag_lines(&text),
        text,
        rejects,
    }
}

/// The newest revision of each flag, as a consumer keeping the latest per `flag_id` sees it.
fn final_flags(flags: &[Value]) -> BTreeMap<String, Value> {
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    for f in flags {
        let id = f["flag_id"].as_str().unwrap().to_owned();
        let newer = m
            .get(&id)
            .is_none_or(|prev| prev["revision"].as_u64() <= f["revision"].as_u64());
        if newer {
            m.insert(id, f.clone());
        }
    }
    m
}

/// A compact rendering of final flags, ordered by message, subject, account and category.
fn render(flags: &BTreeMap<String, Value>) -> String {
    let key = |f: &Value| {
        ["message_id", "subject", "account", "category"].map(|k| f[k].as_str().unwrap_or_default().to_owned())
    };
    let mut v: Vec<&Value> = flags.values().collect();
    v.sort_by_key(|f| key(f));
    let s = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = String::new();
    for f in v {
        let (r, e) = (&f["reach"], &f["exposure"]);
        let _ = writeln!(
            out,
            "{} {} {} {} raised={} score={:.4}\n  audience={} reshares={} quotes={} replies={} depth={}\n  posted={} removed={} by={} how={} up={}s still_up={}",
            s(&f["message_id"]),
            s(&f["subject"]),
            s(&f["account"]),
            s(&f["category"]),
            f["raised"],
            f["score"].as_f64().unwrap(),
            r["audience"],
            r["reshares"],
            r["quotes"],
            r["replies"],
            r["depth"],
            s(&e["posted_at"]),
            s(&e["removed_at"]),
            s(&e["removed_by"]),
            s(&e["removal"]),
            e["seconds_up"],
            e["still_up"],
        );
    }
    out
}

fn find<'a>(flags: &'a BTreeMap<String, Value>, message: &str, subject: &str, account: &str) -> &'a Value {
    flags
        .values()
        .find(|f| f["message_id"] == message && f["subject"] == subject && f["account"] == account)
        .unwrap_or_else(|| panic!("no flag for {message} {subject} {account}"))
}

const ALICE_POST: &str = "at://did:plc:alice4hq2vz5/app.bsky.feed.post/3lbhpa2xk2c2v";
const FRANK_POST: &str = "at://did:plc:frank5ht1jy2/app.bsky.feed.post/3lfr1q9zz2k2a";
const ERIN_QUOTE: &str = "at://did:plc:erin3vx6qa8/app.bsky.feed.post/3lbqe5cc2k2d";

#[test]
fn jetstream_end_to_end() {
    let ran = run_stream(
        "jetstream",
        "jetstream",
        &sample("jetstream/stream.jsonl"),
        &[sample("jetstream/side.jsonl")],
        &[],
    );
    assert!(ran.rejects.is_empty(), "{:?}", ran.rejects);
    let flags = final_flags(&ran.out);

    // The threat: its audience counts the author's followers from the side input and each
    // distinct resharer's, the duplicate repost once; the time is `time_us`, not the bogus
    // `createdAt`; the author deleted it after 30 minutes.
    let threat = find(&flags, ALICE_POST, "author", "did:plc:alice4hq2vz5");
    assert_eq!(threat["category"], "credible_threat");
    assert_eq!(threat["raised"], true);
    assert_eq!(threat["reach"]["audience"], 1200 + 300 + 50);
    assert_eq!(threat["reach"]["reshares"], 2);
    assert_eq!(threat["reach"]["quotes"], 1);
    assert_eq!(threat["reach"]["replies"], 1);
    assert_eq!(threat["exposure"]["posted_at"], "2026-01-05T10:00:00.000Z");
    assert_eq!(threat["exposure"]["removed_by"], "author");
    assert_eq!(threat["exposure"]["seconds_up"], 1800);
    // Dave reposted through carol's repost: one level below hers, in her audience; he deleted
    // his own after 12 minutes.
    let dave = find(&flags, ALICE_POST, "resharer", "did:plc:dave9pz4lk0");
    assert_eq!(dave["exposure"]["removed_by"], "author");
    assert_eq!(dave["exposure"]["seconds_up"], 12 * 60);
    let carol = find(&flags, ALICE_POST, "resharer", "did:plc:carol2nw8rt1");
    assert_eq!(carol["reach"]["depth"], 1);
    assert_eq!(carol["reach"]["audience"], 300 + 50);
    assert_eq!(threat["reach"]["depth"], 2);
    // The account takedown removes frank's post, by the platform, two hours in.
    let offence = find(&flags, FRANK_POST, "author", "did:plc:frank5ht1jy2");
    assert_eq!(offence["exposure"]["removal"], "account");
    assert_eq!(offence["exposure"]["removed_by"], "platform");
    assert_eq!(offence["exposure"]["seconds_up"], 119 * 60);
    // The label on the quote was retracted by its classifier.
    assert_eq!(
        find(&flags, ERIN_QUOTE, "author", "did:plc:erin3vx6qa8")["raised"],
        false
    );

    expect![[r"
        at://did:plc:alice4hq2vz5/app.bsky.feed.post/3lbhpa2xk2c2v author did:plc:alice4hq2vz5 credible_threat raised=true score=0.8586
          audience=1550 reshares=2 quotes=1 replies=1 depth=2
          posted=2026-01-05T10:00:00.000Z removed=2026-01-05T10:30:00.000Z by=author how=deleted up=1800s still_up=false
        at://did:plc:alice4hq2vz5/app.bsky.feed.post/3lbhpa2xk2c2v resharer did:plc:carol2nw8rt1 credible_threat raised=true score=0.8108
          audience=350 reshares=1 quotes=0 replies=0 depth=1
          posted=2026-01-05T10:05:00.000Z removed=2026-01-05T10:30:00.000Z by=author how=with_original up=1500s still_up=false
        at://did:plc:alice4hq2vz5/app.bsky.feed.post/3lbhpa2xk2c2v resharer did:plc:dave9pz4lk0 credible_threat raised=true score=0.7514
          audience=50 reshares=0 quotes=0 replies=0 depth=0
          posted=2026-01-05T10:08:00.000Z removed=2026-01-05T10:20:00.000Z by=author how=deleted up=720s still_up=false
        at://did:plc:erin3vx6qa8/app.bsky.feed.post/3lbqe5cc2k2d author did:plc:erin3vx6qa8 targeted_harassment raised=false score=0.0000
          audience=80 reshares=0 quotes=0 replies=0 depth=0
          posted=2026-01-05T10:09:00.000Z removed=- by=- how=- up=1860s still_up=true
        at://did:plc:frank5ht1jy2/app.bsky.feed.post/3lfr1q9zz2k2a author did:plc:frank5ht1jy2 communications_offence raised=false score=0.2078
          audience=5000 reshares=0 quotes=0 replies=0 depth=0
          posted=2026-01-05T10:01:00.000Z removed=2026-01-05T12:00:00.000Z by=platform how=account up=7140s still_up=false
    "]].assert_eq(&render(&flags));
}

#[test]
fn jetstream_as_atproto_labels() {
    let src = "did:plc:modsignal0labeler";
    let ran = run_stream(
        "jetstream-labels",
        "jetstream",
        &sample("jetstream/stream.jsonl"),
        &[sample("jetstream/side.jsonl")],
        &["--flag-format", "atproto-label", "--label-src", src],
    );
    assert!(ran.rejects.is_empty(), "{:?}", ran.rejects);
    for l in &ran.out {
        assert_eq!(l["ver"], 1);
        assert_eq!(l["src"], src);
        let val = l["val"].as_str().unwrap();
        assert!(
            val.len() <= 128 && val.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
            "{val}"
        );
        assert!(l["uri"].as_str().unwrap().starts_with("at://"), "{l}");
        let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(
            keys.iter()
                .all(|k| ["ver", "src", "uri", "val", "neg", "cts"].contains(k)),
            "{keys:?}"
        );
    }
    // One label per message and category, while its author's flag is raised (a resharer's
    // flag never labels the post); the quote's label is retracted when its classifier
    // retracts the category.
    let summary: Vec<String> = ran
        .out
        .iter()
        .map(|l| {
            format!(
                "{} {} neg={} {}",
                l["uri"].as_str().unwrap(),
                l["val"].as_str().unwrap(),
                l["neg"].as_bool().unwrap_or(false),
                l["cts"].as_str().unwrap()
            )
        })
        .collect();
    expect![[r"
        at://did:plc:alice4hq2vz5/app.bsky.feed.post/3lbhpa2xk2c2v modsignal-credible-threat neg=false 2026-01-05T10:02:00.000Z
        at://did:plc:erin3vx6qa8/app.bsky.feed.post/3lbqe5cc2k2d modsignal-targeted-harassment neg=false 2026-01-05T10:12:00.000Z
        at://did:plc:erin3vx6qa8/app.bsky.feed.post/3lbqe5cc2k2d modsignal-targeted-harassment neg=true 2026-01-05T10:40:00.000Z"]].assert_eq(&summary.join("\n"));
}

#[test]
fn mastodon_websocket_and_server_sent_events_give_the_same_flags() {
    let side = [sample("mastodon/side.jsonl")];
    let ws = run_stream(
        "mastodon-ws",
        "mastodon",
        &sample("mastodon/websocket.jsonl"),
        &side,
        &[],
    );
    let sse = run_stream("mastodon-sse", "mastodon", &sample("mastodon/sse.txt"), &side, &[]);
    assert!(ws.rejects.is_empty(), "{:?}", ws.rejects);
    assert!(sse.rejects.is_empty(), "{:?}", sse.rejects);
    assert_eq!(
        ws.text, sse.text,
        "the two framings of one stream must give the same flags"
    );
    let flags = final_flags(&ws.out);

    let threat = find(&flags, "115841905459204101", "author", "1001");
    assert_eq!(threat["raised"], true);
    // The boost's account showed 150 followers; the reply's showed none and the side input
    // gave 30 (a reply is not a reshare, so it counts as a reply only).
    assert_eq!(threat["reach"]["audience"], 420 + 150);
    assert_eq!(threat["reach"]["replies"], 1);
    // A delete carries no time: it took the stream clock, the newest time two records reached
    // (the reply's, 7 minutes in; only the last status reached 25 minutes, and one record
    // cannot move the clock), and it is `unknown` because a moderator's removal looks like the
    // author's.
    assert_eq!(threat["exposure"]["removed_by"], "unknown");
    assert_eq!(threat["exposure"]["seconds_up"], 7 * 60);
    let booster = find(&flags, "115841905459204101", "resharer", "3003");
    assert_eq!(booster["exposure"]["removal"], "deleted");
    // The private status reached only its author's followers.
    let court = find(&flags, "115841913323520077", "author", "5005");
    assert_eq!(court["category"], "court_order_breach");
    assert_eq!(court["reach"]["audience"], 90);

    expect![[r"
        115841905459204101 author 1001 credible_threat raised=true score=0.8229
          audience=570 reshares=1 quotes=0 replies=1 depth=1
          posted=2026-01-05T10:00:00.000Z removed=2026-01-05T10:07:00.000Z by=unknown how=deleted up=420s still_up=false
        115841905459204101 resharer 3003 credible_threat raised=true score=0.7765
          audience=150 reshares=0 quotes=0 replies=0 depth=0
          posted=2026-01-05T10:04:00.000Z removed=2026-01-05T10:07:00.000Z by=unknown how=deleted up=180s still_up=false
        115841913323520077 author 5005 court_order_breach raised=true score=0.8470
          audience=90 reshares=0 quotes=0 replies=0 depth=0
          posted=2026-01-05T10:02:00.000Z removed=- by=- how=- up=300s still_up=true
    "]]
    .assert_eq(&render(&flags));
}

const TWEET_A: &str = "2008116259845046273";
const TWEET_Q: &str = "2008117518136246275";
const TWEET_B: &str = "2008117769794486276";

#[test]
fn twitter_end_to_end() {
    let ran = run_stream(
        "twitter",
        "twitter",
        &sample("twitter/stream.jsonl"),
        &[sample("twitter/side.jsonl")],
        &[],
    );
    assert!(ran.rejects.is_empty(), "{:?}", ran.rejects);
    let flags = final_flags(&ran.out);

    // Withheld in Germany by a legal order, with no time of its own: the stream clock, the
    // newest time two records reached (the reply's, 6 minutes in). The delete notice that came
    // first is the only record 40 minutes in, and one record cannot move the clock.
    let threat = find(&flags, TWEET_A, "author", "12");
    assert_eq!(threat["raised"], true);
    assert_eq!(threat["exposure"]["removal"], "blocked");
    assert_eq!(threat["exposure"]["removed_by"], "legal");
    assert_eq!(threat["exposure"]["seconds_up"], 6 * 60);
    assert_eq!(threat["reach"]["reshares"], 2);
    assert_eq!(threat["reach"]["quotes"], 1);
    assert_eq!(threat["reach"]["replies"], 1);
    // The retweeter suspended two hours in: its reshare is already down with the original.
    assert_eq!(
        find(&flags, TWEET_A, "resharer", "55")["exposure"]["removal"],
        "with_original"
    );
    // The quote: dropped by the platform at 20 minutes, then restored.
    let quote = find(&flags, TWEET_Q, "author", "66");
    assert_eq!(quote["exposure"]["removed_by"], "platform");
    assert_eq!(quote["exposure"]["removal"], "blocked");
    // The protected account's reply, deleted before it arrived: the delete is honoured.
    let reply = find(&flags, TWEET_B, "author", "77");
    assert_eq!(reply["exposure"]["removal"], "deleted");
    assert_eq!(reply["exposure"]["seconds_up"], 34 * 60);

    expect![[r"
        2008116259845046273 author 12 credible_threat raised=true score=0.8828
          audience=5100 reshares=2 quotes=1 replies=1 depth=1
          posted=2026-01-05T10:00:00.000Z removed=2026-01-05T10:06:00.000Z by=legal how=blocked up=360s still_up=false
        2008116259845046273 resharer 55 credible_threat raised=true score=0.7667
          audience=80 reshares=0 quotes=0 replies=0 depth=0
          posted=2026-01-05T10:03:00.000Z removed=2026-01-05T10:06:00.000Z by=legal how=with_original up=180s still_up=false
        2008116259845046273 resharer 88 credible_threat raised=true score=0.9691
          audience=20 reshares=0 quotes=0 replies=0 depth=0
          posted=2026-01-05T10:08:00.000Z removed=2026-01-05T10:06:00.000Z by=legal how=with_original up=0s still_up=false
        2008117518136246275 author 66 targeted_harassment raised=true score=0.8590
          audience=300 reshares=0 quotes=0 replies=0 depth=0
          posted=2026-01-05T10:05:00.000Z removed=2026-01-05T10:20:00.000Z by=platform how=blocked up=8700s still_up=true
        2008117769794486276 author 77 communications_offence raised=false score=0.0343
          audience=40 reshares=0 quotes=0 replies=0 depth=0
          posted=2026-01-05T10:06:00.000Z removed=2026-01-05T10:40:00.000Z by=unknown how=deleted up=2040s still_up=false
    "]].assert_eq(&render(&flags));
}

/// (line, code) of each reject entry.
fn reject_codes(rejects: &[Value]) -> Vec<(u64, String)> {
    rejects
        .iter()
        .map(|r| {
            assert!(!r["reason"].as_str().unwrap().is_empty(), "{r}");
            assert!(!r["record"].as_str().unwrap().is_empty(), "{r}");
            (r["line"].as_u64().unwrap(), r["code"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn malformed_records_are_set_aside_with_their_line_and_reason() {
    // (format, sample, the (line, code) of each reject expected)
    type Case<'a> = (&'a str, &'a str, &'a [(u64, &'a str)]);
    let cases: [Case; 3] = [
        (
            "jetstream",
            "jetstream/malformed.jsonl",
            &[
                (1, "missing_field"),
                (2, "invalid_field"),
                (3, "missing_field"),
                (4, "invalid_field"),
                (5, "invalid_json"),
                (6, "missing_field"),
            ],
        ),
        (
            "mastodon",
            "mastodon/malformed.txt",
            &[
                (1, "invalid_field"),
                (3, "missing_field"),
                (6, "invalid_field"),
                (8, "invalid_json"),
                (9, "missing_field"),
                (10, "invalid_field"),
                (11, "unrecognised_record"),
            ],
        ),
        (
            "twitter",
            "twitter/malformed.jsonl",
            &[
                (1, "missing_field"),
                (2, "invalid_json"),
                (3, "invalid_field"),
                (4, "invalid_field"),
                (5, "missing_field"),
                (6, "missing_field"),
                (7, "unrecognised_record"),
            ],
        ),
    ];
    for (format, file, want) in cases {
        let ran = run_stream(&format!("{format}-malformed"), format, &sample(file), &[], &[]);
        let got = reject_codes(&ran.rejects);
        let want: Vec<(u64, String)> = want.iter().map(|(l, c)| (*l, c.to_string())).collect();
        assert_eq!(got, want, "{format}: {:#?}", ran.rejects);
        assert!(ran.out.is_empty(), "{format}");
    }
}

#[test]
fn rejects_from_a_side_input_name_it() {
    let side = tmp("bad-side.jsonl");
    std::fs::write(
        &side,
        "{\"type\":\"account\",\"at\":\"2026-01-04T10:00:00Z\",\"user\":\"did:plc:alice4hq2vz5\",\"followers\":1200}\n# a comment is not an event\n",
    )
    .unwrap();
    let ran = run_stream(
        "bad-side",
        "jetstream",
        &sample("jetstream/stream.jsonl"),
        &[sample("jetstream/side.jsonl"), side.clone()],
        &[],
    );
    assert_eq!(reject_codes(&ran.rejects), [(2, "invalid_json".to_owned())]);
    assert_eq!(ran.rejects[0]["input"], side.display().to_string());
    assert!(!ran.out.is_empty());
}

/// Runs a sample through the pipeline in-process and returns what it skipped, by reason.
fn skipped(format: Format, file: &str) -> BTreeMap<&'static str, u64> {
    let out: Vec<u8> = Vec::new();
    let mut p = Pipeline::new(Policy::default(), out, Rejects::new(tmp("skips.rejects")).unwrap()).with_format(format);
    let text = std::fs::read(sample(file)).unwrap();
    p.feed_reader(&text[..], None).unwrap();
    let (summary, rejects) = p.finish().unwrap();
    assert_eq!(rejects.count, 0, "{file}");
    assert!(summary.line().contains("skipped records"), "{}", summary.line());
    summary.skipped
}

#[test]
fn skipped_records_are_counted_by_reason() {
    let b = |pairs: &[(&'static str, u64)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
    assert_eq!(
        skipped(Format::Jetstream, "jetstream/stream.jsonl"),
        b(&[
            ("account_status", 1),
            ("identity", 1),
            ("other_collection", 3),
            ("other_event", 1)
        ])
    );
    assert_eq!(
        skipped(Format::Mastodon, "mastodon/websocket.jsonl"),
        b(&[("other_event", 3)])
    );
    // Heartbeats and comments are counted; blank lines and `event:` lines are framing.
    assert_eq!(
        skipped(Format::Mastodon, "mastodon/sse.txt"),
        b(&[("heartbeat", 4), ("other_event", 3)])
    );
    assert_eq!(
        skipped(Format::Twitter, "twitter/stream.jsonl"),
        b(&[
            ("limit", 1),
            ("other_compliance", 2),
            ("other_notice", 1),
            ("user_withheld", 1)
        ])
    );
}

/// The declaration a labeler publishes so that Bluesky clients treat modsignal's labels as
/// information: every value the label output can write is declared, none hides, blurs or warns.
#[test]
fn the_labeler_declaration_makes_every_label_informational() {
    let out = tmp("declaration.json");
    run(&[
        "labeler-declaration",
        "--created-at",
        "2026-01-05T10:00:00Z",
        "-o",
        out.to_str().unwrap(),
    ])
    .unwrap();
    let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(d["$type"], "app.bsky.labeler.service");
    assert_eq!(d["createdAt"], "2026-01-05T10:00:00.000Z");
    assert_eq!(d["subjectTypes"], serde_json::json!(["record"]));
    let defs = d["policies"]["labelValueDefinitions"].as_array().unwrap();
    for c in modsignal_core::event::Category::ALL {
        let value = modsignal_formats::label::label_value(c);
        let def = defs
            .iter()
            .find(|x| x["identifier"] == value)
            .unwrap_or_else(|| panic!("{value} is not declared"));
        assert_eq!(
            (&def["severity"], &def["blurs"], &def["defaultSetting"]),
            (
                &serde_json::json!("inform"),
                &serde_json::json!("none"),
                &serde_json::json!("ignore")
            ),
            "{value}"
        );
    }
    let err = run(&["labeler-declaration", "--created-at", "yesterday"]).unwrap_err();
    assert!(format!("{err:#}").contains("RFC 3339"), "{err:#}");
}

#[test]
fn labels_need_a_labeler_did() {
    let input = sample("jetstream/stream.jsonl");
    let input = input.to_str().unwrap();
    let out = tmp("nolabel.out");
    let out = out.to_str().unwrap();
    let base = [
        "run",
        "--format",
        "jetstream",
        "-i",
        input,
        "-o",
        out,
        "--flag-format",
        "atproto-label",
    ];
    let err = run(&base).unwrap_err();
    assert!(format!("{err:#}").contains("--label-src"), "{err:#}");
    let mut bad = base.to_vec();
    bad.extend(["--label-src", "modsignal-labeler"]);
    let err = run(&bad).unwrap_err();
    assert!(format!("{err:#}").contains("not a DID"), "{err:#}");
}

#[test]
fn a_platform_format_needs_an_input() {
    let err = run(&["run", "--format", "twitter", "--events", "10"]).unwrap_err();
    assert!(format!("{err:#}").contains("--format twitter"), "{err:#}");
}
