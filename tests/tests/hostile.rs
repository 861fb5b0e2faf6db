//! Hostile input (issue 9): the patterns one account can produce that broke the integrity of
//! flags or the bounds on work and memory, each generated here. Work is measured with the
//! engine's own deterministic counter (`StateStats::work`), never with a clock: a bound holds
//! when work per event stays under a constant and doubling the input at most doubles the work.

use std::collections::BTreeMap;

use modsignal_core::{ApplyError, Engine, Flag, Policy, Ts, decode};
use modsignal_tests::final_flags;

const T0: i64 = 1_767_607_200_000; // 2026-01-05T10:00:00Z

/// Runs canonical lines through an engine: every flag written, the errors by line, the engine.
fn run(policy: &Policy, lines: &[String]) -> (Vec<Flag>, Vec<(usize, ApplyError)>, Engine) {
    let mut e = Engine::new(policy.clone());
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let ev = decode(line.as_bytes()).unwrap_or_else(|err| panic!("{err}: {line}"));
        if let Err(err) = e.apply(&ev, &mut out) {
            errors.push((i, err));
        }
    }
    e.finish(&mut out);
    (out, errors, e)
}

/// The most revisions written for any one flag.
fn most_revisions(flags: &[Flag]) -> usize {
    let mut n: BTreeMap<&str, usize> = BTreeMap::new();
    for f in flags {
        *n.entry(&f.flag_id).or_default() += 1;
    }
    n.values().copied().max().unwrap_or(0)
}

fn post(at: i64, id: &str, author: &str) -> String {
    format!(r#"{{"type":"post","at":{at},"id":"{id}","author":{{"id":"{author}","followers":10}}}}"#)
}

fn label(at: i64, id: &str, category: &str) -> String {
    format!(r#"{{"type":"label","at":{at},"id":"{id}","category":"{category}","source":"clf"}}"#)
}

fn reshare(at: i64, id: &str, of: &str, author: &str) -> String {
    format!(r#"{{"type":"reshare","at":{at},"id":"{id}","of":"{of}","author":{{"id":"{author}","followers":3}}}}"#)
}

/// Case 2: two post ids under one Jetstream account share an unseeded xxh3-64 hash. Deleting the
/// decoy must not take down the labelled post.
#[test]
fn message_ids_whose_hashes_collide_keep_their_own_state() {
    let labelled = "at://did:plc:attacker0000000000000000/app.bsky.feed.post/glqat3y3mtepl";
    let decoy = "at://did:plc:attacker0000000000000000/app.bsky.feed.post/c7b2ajjvotfd3";
    let lines = vec![
        post(T0, labelled, "did:plc:attacker0000000000000000"),
        post(T0 + 1000, decoy, "did:plc:attacker0000000000000000"),
        label(T0 + 2000, labelled, "targeted_harassment"),
        format!(r#"{{"type":"delete","at":{},"id":"{decoy}","by":"author"}}"#, T0 + 3000),
        post(T0 + 86_400_000, "later", "someone"),
        post(T0 + 86_400_000, "later2", "someone-else"),
    ];
    let (flags, errors, _) = run(&Policy::default(), &lines);
    assert!(errors.is_empty(), "{errors:?}");
    let finals = final_flags(&flags);
    let f = finals.values().find(|f| f.message_id == labelled).expect("a flag");
    assert!(f.exposure.still_up, "{}", f.to_json());
    assert_eq!(f.exposure.removed_by, None);
    assert_eq!(f.exposure.seconds_up, 86_400);
}

/// Case 1: account ids are kept whole: long ones, multi-byte ones, and accounts forgotten after
/// the retention horizon whose handles are reused; every flag names its own account.
#[test]
fn every_flag_names_its_own_account() {
    let mut policy = Policy::default();
    policy.stream.retention_secs = 3600;
    let long = format!("victim-{}", "ü".repeat(400));
    let mut lines = Vec::new();
    let hour = 3_600_000;
    // Thousands of passing accounts, hour after hour: the horizon forgets them, and their
    // handles are used again by the next ones.
    for h in 0..12i64 {
        for i in 0..500 {
            let at = T0 + h * hour + i;
            lines.push(post(
                at,
                &format!("p{h}-{i}"),
                &format!("passer-{h}-{i}-{}", "x".repeat(40)),
            ));
        }
        // A labelled message by an account whose id is long and multi-byte, every hour.
        let at = T0 + h * hour + 600;
        let id = format!("m{h}");
        lines.push(post(at, &id, &format!("{long}-{h}")));
        lines.push(label(at + 1, &id, "credible_threat"));
        lines.push(reshare(at + 2, &format!("r{h}"), &id, &format!("resharer-{h}")));
    }
    let (flags, errors, engine) = run(&policy, &lines);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        engine.stats().users < 2000,
        "accounts are forgotten: {:?}",
        engine.stats()
    );
    let mut seen = 0;
    for f in &flags {
        let h: usize = f.message_id[1..].parse().expect("m{h}");
        let want = match f.subject {
            modsignal_core::Subject::Author => format!("{long}-{h}"),
            modsignal_core::Subject::Resharer => format!("resharer-{h}"),
        };
        assert_eq!(f.account, want, "{}", f.flag_id);
        seen += 1;
    }
    assert!(seen >= 24, "{seen} flags");
}

/// Case 3: one canonical record dated 2199 is rejected as `future`, never moves event time, and
/// every other flag is what it would be without it. A record that comes first, before there is
/// any event time to judge it by, is applied but cannot move event time alone either.
#[test]
fn an_event_from_the_future_moves_nothing() {
    use modsignal_sim::{SimConfig, Simulator};
    let lines: Vec<String> = Simulator::new(SimConfig {
        events: 10_000,
        seed: 3,
        ..SimConfig::default()
    })
    .map(|e| e.to_json())
    .collect();
    let policy = Policy::default();
    let (clean, errors, _) = run(&policy, &lines);
    assert!(errors.is_empty());
    let expected = final_flags(&clean);
    assert!(expected.len() > 10, "{} flags", expected.len());
    let future = r#"{"type":"post","at":7226582400000,"id":"from-2199","author":{"id":"attacker"}}"#;

    let mut hostile = lines.clone();
    hostile.insert(2000, future.to_owned());
    let (flags, errors, _) = run(&policy, &hostile);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].0, errors[0].1.code().as_str()),
        (2000, "future"),
        "{}",
        errors[0].1
    );
    assert_eq!(final_flags(&flags), expected);

    // First, before event time exists: applied, but event time stays with the stream.
    let mut first = lines.clone();
    first.insert(0, future.to_owned());
    let (flags, errors, engine) = run(&policy, &first);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(final_flags(&flags), expected);
    assert!(engine.watermark() < Some(Ts(T0 + 366 * 86_400_000)));

    // With an ingest time (a Kafka record's timestamp, the reader's clock), the bound is the
    // policy's skew: ten minutes ahead of it is rejected.
    let mut e = Engine::new(policy);
    let mut out = Vec::new();
    let ahead = decode(post(T0 + 600_000, "x", "a").as_bytes()).unwrap().into_owned();
    let err = e.apply_at(&ahead, Some(Ts(T0)), &mut out).unwrap_err();
    assert_eq!(err.code(), "future");
    assert!(err.to_string().contains("max_skew_secs"), "{err}");
    let near = decode(post(T0 + 60_000, "y", "a").as_bytes()).unwrap().into_owned();
    e.apply_at(&near, Some(Ts(T0)), &mut out)
        .expect("a minute of skew is fine");
}

/// A chain of reshares, each of the one before, in order, in reverse, or through `via`.
fn chain(n: usize, shape: &str) -> Vec<String> {
    let mut v = vec![post(T0, "m", "a"), label(T0 + 1, "m", "communications_offence")];
    let mut links = Vec::new();
    for i in 0..n {
        let at = T0 + 10 + i as i64;
        let (id, author) = (format!("r{i}"), format!("u{i}"));
        links.push(match shape {
            "via" if i > 0 => format!(
                r#"{{"type":"reshare","at":{at},"id":"{id}","of":"m","via":"r{}","author":{{"id":"{author}","followers":3}}}}"#,
                i - 1
            ),
            "of" | "reversed" if i > 0 => reshare(at, &id, &format!("r{}", i - 1), &author),
            _ => reshare(at, &id, "m", &author),
        });
    }
    if shape == "reversed" {
        links.reverse();
    }
    v.extend(links);
    v
}

/// Work and revisions of a run, per event.
fn cost(lines: &[String]) -> (u64, usize, Vec<Flag>) {
    cost_with(&Policy::default(), lines)
}

fn cost_with(policy: &Policy, lines: &[String]) -> (u64, usize, Vec<Flag>) {
    let (flags, errors, engine) = run(policy, lines);
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    (engine.stats().work, most_revisions(&flags), flags)
}

/// Checks a family of inputs costs linear work: at most `per_event` units per event, and twice
/// the input at most 2.3 times the work; and that no flag is written more than `revisions`
/// times.
fn assert_linear(name: &str, make: impl Fn(usize) -> Vec<String>, n: usize, per_event: u64, revisions: usize) {
    assert_linear_with(&Policy::default(), name, make, n, per_event, revisions);
}

fn assert_linear_with(
    policy: &Policy,
    name: &str,
    make: impl Fn(usize) -> Vec<String>,
    n: usize,
    per_event: u64,
    revisions: usize,
) {
    let (small, small_rev, _) = cost_with(policy, &make(n));
    let big_lines = make(2 * n);
    let (big, big_rev, _) = cost_with(policy, &big_lines);
    let events = big_lines.len() as u64;
    assert!(
        big <= per_event * events,
        "{name}: {big} units of work for {events} events"
    );
    assert!(
        big as f64 <= 2.3 * small as f64,
        "{name}: work {small} for n={n}, {big} for 2n: not linear"
    );
    assert!(
        small_rev.max(big_rev) <= revisions,
        "{name}: a flag written {} times",
        small_rev.max(big_rev)
    );
}

/// Case 4: a chain of reshares 20,000 deep, in order, in reverse and through `via`, writes each
/// flag a bounded number of times and costs linear work (depth 4,000 wrote 13.6 GB before).
#[test]
fn deep_chains_cost_linear_work_and_few_revisions() {
    for shape in ["of", "reversed", "via"] {
        assert_linear(shape, |n| chain(n, shape), 2_000, 300, 4);
    }
    // 20,000 deep: still a few revisions per flag, and work per event well under the bound.
    let lines = chain(20_000, "of");
    let (work, revisions, _) = cost(&lines);
    assert!(revisions <= 4, "a flag written {revisions} times");
    assert!(work <= 300 * lines.len() as u64, "{work} units of work");
    // The flags stay right where they are exact: the top of the chain has its reach counted
    // through `limits.chain_levels` levels, the cascade depth is counted to one more. Every
    // resharer's flag is written here (no cohorts), to read each one's reach.
    let mut every_flag = Policy::default();
    every_flag.emission.resharer_cohort = false;
    let (_, _, flags) = cost_with(&every_flag, &chain(2000, "of"));
    let finals = final_flags(&flags);
    let author = finals
        .values()
        .find(|f| f.subject == modsignal_core::Subject::Author)
        .unwrap();
    assert_eq!(author.reach.reshares, 2000);
    assert_eq!(author.reach.depth, Policy::default().limits.chain_levels + 1);
    let first = finals.values().find(|f| f.account == "u0").unwrap();
    assert_eq!(first.reach.reshares, u64::from(Policy::default().limits.chain_levels));
    let last = finals.values().find(|f| f.account == "u1999").unwrap();
    assert_eq!(last.reach.reshares, 0);
}

/// Case 4: one account resharing one labelled message 40,000 times (151 s before).
#[test]
fn one_account_resharing_one_message_many_times() {
    let make = |n: usize| {
        let mut v = vec![post(T0, "m", "a"), label(T0 + 1, "m", "credible_threat")];
        v.extend((0..n).map(|i| reshare(T0 + 10 + i as i64, &format!("r{i}"), "m", "flooder")));
        v
    };
    assert_linear("one resharer", make, 5_000, 1_100, 4);
}

/// Case 4: labelled messages from one author, and labelled messages from many authors aimed at
/// one victim (repeated conduct and mobbing were rescanned per message: cubic).
#[test]
fn conduct_and_mobbing_cost_linear_work() {
    // A tenth of a second apart, so that both sizes fit within the first exposure stage (15
    // minutes): a longer span crosses more stages per flag, each an evaluation, and that work
    // grows with the span, not with the conduct this measures.
    let from_one = |n: usize| {
        let mut v = Vec::new();
        for i in 0..n {
            let (at, id) = (T0 + 100 * i as i64, format!("m{i}"));
            v.push(post(at, &id, "sender"));
            v.push(label(at + 1, &id, "targeted_harassment"));
        }
        v
    };
    assert_linear("one author", from_one, 1_000, 2_000, 8);
    // One message a quarter of an hour: a day's mobbing window either side holds about 200.
    let at_one = |n: usize| {
        let mut v = Vec::new();
        for i in 0..n {
            let (at, id) = (T0 + 900_000 * i as i64, format!("m{i}"));
            v.push(format!(
                r#"{{"type":"post","at":{at},"id":"{id}","author":{{"id":"s{i}"}},"mentions":["victim"]}}"#
            ));
            v.push(label(at + 1, &id, "targeted_harassment"));
        }
        v
    };
    // Retention sweeps rebuild nothing but visit what is in state; with a day's horizon the
    // state held is the same for both sizes, as on an endless stream.
    let mut policy = Policy::default();
    policy.stream.retention_secs = 86_400;
    // Each flag follows the pile-on as it grows around it (a new sender every quarter hour for
    // a day either side), at most once per emission interval of event time.
    assert_linear_with(&policy, "one victim", at_one, 1_000, 2_000, 32);
    // The counts are still there, capped where they say so.
    let (_, _, flags) = cost(&at_one(1200));
    let finals = final_flags(&flags);
    let mob = finals
        .values()
        .flat_map(|f| f.factors.iter())
        .filter(|f| f.code == "mobbing")
        .map(|f| f.evidence.clone())
        .max_by_key(std::string::String::len)
        .expect("mobbing");
    assert!(mob.contains("distinct senders"), "{mob}");
}

/// A crowd at one person stops the mobbing count short (at least so many senders), but never
/// hides one sender's own course of conduct toward them: the course walks only that sender's
/// entries, with a budget of its own.
#[test]
fn a_crowd_at_the_victim_never_hides_a_senders_course() {
    let mut lines = Vec::new();
    for i in 0..5_000i64 {
        let (at, id) = (T0 + 10 * i, format!("c{i}"));
        lines.push(format!(
            r#"{{"type":"post","at":{at},"id":"{id}","author":{{"id":"s{i}"}},"mentions":["victim"]}}"#
        ));
        lines.push(label(at + 1, &id, "targeted_harassment"));
    }
    for k in 0..3i64 {
        let (at, id) = (T0 + 60_000 + 3_600_000 * k, format!("a{k}"));
        lines.push(format!(
            r#"{{"type":"post","at":{at},"id":"{id}","author":{{"id":"author"}},"mentions":["victim"]}}"#
        ));
        lines.push(label(at + 1, &id, "targeted_harassment"));
    }
    let (flags, errors, _) = run(&Policy::default(), &lines);
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
    let finals = final_flags(&flags);
    let last = finals
        .values()
        .find(|f| f.message_id == "a2")
        .expect("the author's last flag");
    let evidence = |code: &str| {
        last.factors
            .iter()
            .find(|f| f.code == code)
            .map(|f| f.evidence.clone())
            .unwrap_or_default()
    };
    assert!(evidence("mobbing").starts_with("at least "), "{}", evidence("mobbing"));
    assert!(
        evidence("course_of_conduct").starts_with("3 messages"),
        "{:?}",
        last.factors
    );
}

/// Case 4: many labels and many restrict/restore flips on one message are capped, the rest
/// rejected with code `limit` and a reason naming the setting; work stays linear.
#[test]
fn labels_and_flips_on_one_message_are_capped() {
    let policy = Policy::default();
    let mut lines = vec![post(T0, "m", "a")];
    for i in 0..3000 {
        lines.push(format!(
            r#"{{"type":"label","at":{},"id":"m","category":"communications_offence","confidence":0.9,"source":"s{i}"}}"#,
            T0 + 1 + i
        ));
    }
    for i in 0..200 {
        let what = if i % 2 == 0 {
            r#""type":"restrict","scope":"withheld""#
        } else {
            r#""type":"restore""#
        };
        lines.push(format!(
            r#"{{{what},"at":{},"id":"m","by":"platform"}}"#,
            T0 + 10_000 + i
        ));
    }
    let (flags, errors, engine) = run(&policy, &lines);
    let labels = errors
        .iter()
        .filter(|(_, e)| e.to_string().contains("labels_per_message"))
        .count();
    let flips = errors
        .iter()
        .filter(|(_, e)| e.to_string().contains("changes_per_id"))
        .count();
    assert_eq!(labels, 3000 - policy.limits.labels_per_message as usize);
    assert_eq!(flips, 200 - policy.limits.changes_per_id as usize);
    assert!(errors.iter().all(|(_, e)| e.code() == "limit"));
    // Each flip is news (the message came down, or back up): written at once, and no more.
    let news = policy.limits.changes_per_id as usize;
    assert!(most_revisions(&flags) <= news + 4, "{}", most_revisions(&flags));
    assert!(engine.stats().work < 2_000 * lines.len() as u64, "{:?}", engine.stats());
}

/// Case 5: accounts and their status history are forgotten after the retention horizon, so a
/// stream of ever-new accounts holds a bounded number of them.
#[test]
fn accounts_and_their_history_are_forgotten() {
    let mut policy = Policy::default();
    policy.stream.retention_secs = 3600;
    let mut lines = Vec::new();
    for i in 0..40_000i64 {
        let at = T0 + i * 1000;
        lines.push(format!(
            r#"{{"type":"account","at":{at},"user":"acct-{i}","status":"deactivated","followers":5}}"#
        ));
        lines.push(format!(
            r#"{{"type":"account","at":{},"user":"acct-{i}","status":"active"}}"#,
            at + 1
        ));
    }
    let (_, errors, engine) = run(&policy, &lines);
    assert!(errors.is_empty());
    // Eleven hours of accounts, one an hour's horizon (and an eighth) kept.
    assert!(engine.stats().users < 6_000, "{:?}", engine.stats());
}

/// The most flag revisions one event can write: every restrict/restore flip of a message with
/// many resharers is news for every one of their flags, but an event pays for at most the credit
/// its message has saved (64 events' worth), and what that does not cover is written as later
/// events earn more, at the next flush, or at the end of input.
#[test]
fn one_event_writes_a_bounded_number_of_revisions() {
    let resharers = 40_000;
    let mut lines = vec![post(T0, "m", "a"), label(T0 + 1, "m", "credible_threat")];
    for i in 0..resharers {
        lines.push(reshare(T0 + 10 + i, &format!("r{i}"), "m", &format!("u{i}")));
    }
    for i in 0..6 {
        let what = if i % 2 == 0 {
            r#""type":"restrict","scope":"withheld""#
        } else {
            r#""type":"restore""#
        };
        lines.push(format!(
            r#"{{{what},"at":{},"id":"m","by":"platform"}}"#,
            T0 + 100_000 + i * 1000
        ));
    }
    let mut e = Engine::new(Policy::default());
    let (mut out, mut all, mut most) = (Vec::new(), Vec::new(), 0);
    for line in &lines {
        e.apply(&decode(line.as_bytes()).unwrap(), &mut out).unwrap();
        most = most.max(out.len());
        all.append(&mut out);
    }
    e.finish(&mut all);
    assert!(most < 20_000, "one event wrote {most} revisions");
    assert!(all.len() <= 4 * lines.len(), "{} revisions", all.len());
    let finals = final_flags(&all);
    assert_eq!(finals.len(), resharers as usize + 1);
    assert!(
        finals.values().all(|f| f.exposure.still_up),
        "exact at the end: the last flip restored it"
    );
    eprintln!("most revisions written by one event: {most}");
}

/// A crowd of accounts resharing every labelled message of a stream, as on viral cascades: a
/// reshare changes its resharer's own conduct, which only their own flags read, so it
/// re-evaluates their flags on their other messages and nobody else's (it re-evaluated every
/// flag of those messages: 795 units of work per event here with a crowd of 50, and 205 on the
/// viral shape, against 32 and 25 now).
#[test]
fn a_crowd_resharing_every_message_costs_work_per_event_independent_of_the_crowd() {
    let crowd = |people: usize| {
        move |n: usize| {
            let mut v = Vec::new();
            for i in 0..n {
                let (at, id) = (T0 + 60_000 * i as i64, format!("m{i}"));
                v.push(post(at, &id, &format!("author{i}")));
                v.push(label(at + 1, &id, "communications_offence"));
                for p in 0..people {
                    v.push(reshare(at + 2 + p as i64, &format!("{id}-r{p}"), &id, &format!("p{p}")));
                }
            }
            v
        }
    };
    let per_event = |people: usize| {
        let lines = crowd(people)(8);
        let (work, _, _) = cost(&lines);
        work as f64 / lines.len() as f64
    };
    // Eight messages: each reshare re-evaluates at most seven other flags of its resharer.
    let (small, large) = (per_event(50), per_event(400));
    assert!(
        small <= 60.0 && large <= 60.0,
        "work per event {small:.1} with a crowd of 50, {large:.1} with 400"
    );
}
