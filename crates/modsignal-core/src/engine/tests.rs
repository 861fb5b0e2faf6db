//! Unit tests of the engine that need its private state.

use super::*;
use crate::decode;
use crate::flag::Subject;

fn apply(e: &mut Engine, line: &str, out: &mut Vec<Flag>) {
    e.apply(&decode(line.as_bytes()).unwrap(), out).unwrap();
}

/// An engine holding message `m` by account `a` (50 followers), posted and labelled a
/// credible threat a second later, and what that wrote.
fn threat_by_a() -> (Engine, Vec<Flag>) {
    let mut e = Engine::new(Policy::default());
    let mut out = Vec::new();
    apply(
        &mut e,
        r#"{"type":"post","at":1767607200000,"id":"m","author":{"id":"a","followers":50}}"#,
        &mut out,
    );
    apply(
        &mut e,
        r#"{"type":"label","at":1767607201000,"id":"m","category":"credible_threat","source":"c"}"#,
        &mut out,
    );
    (e, out)
}

#[test]
fn a_first_removal_is_reported_once_with_its_kind_time_and_audience() {
    let mut e = Engine::new(Policy::default());
    let mut out = Vec::new();
    let ev = |line: &str| decode(line.as_bytes()).unwrap().into_owned();
    let run = |e: &mut Engine, out: &mut Vec<Flag>, line: &str| e.apply(&ev(line), out).unwrap().removal;
    run(
        &mut e,
        &mut out,
        r#"{"type":"post","at":1767225600000,"id":"m","author":{"id":"a","followers":100}}"#,
    );
    run(
        &mut e,
        &mut out,
        r#"{"type":"reshare","at":1767225601000,"id":"r","of":"m","author":{"id":"b","followers":50}}"#,
    );
    run(
        &mut e,
        &mut out,
        r#"{"type":"label","at":1767225602000,"id":"m","category":"credible_threat","source":"c"}"#,
    );
    let seen = run(
        &mut e,
        &mut out,
        r#"{"type":"restrict","at":1767225662000,"id":"m","by":"platform","scope":"withheld"}"#,
    );
    assert_eq!(
        seen,
        Some(RemovalSeen {
            kind: RemovalKind::Blocked,
            by: RemovedBy::Platform,
            seconds_up: 62,
            audience: Some(150),
        })
    );
    // A second removal of the same message, and a repeat, are not first removals.
    assert_eq!(
        run(
            &mut e,
            &mut out,
            r#"{"type":"delete","at":1767225690000,"id":"m","by":"author"}"#
        ),
        None
    );
    assert_eq!(
        run(
            &mut e,
            &mut out,
            r#"{"type":"restrict","at":1767225662000,"id":"m","by":"platform","scope":"withheld"}"#
        ),
        None
    );
    // A reshare's own removal has no tracked audience.
    let seen = run(
        &mut e,
        &mut out,
        r#"{"type":"delete","at":1767225604000,"id":"r","by":"author"}"#,
    );
    assert_eq!(
        seen,
        Some(RemovalSeen {
            kind: RemovalKind::Deleted,
            by: RemovedBy::Author,
            seconds_up: 3,
            audience: None,
        })
    );
    // A delete of an id not seen yet comes before its post: no time up to report.
    assert_eq!(
        run(
            &mut e,
            &mut out,
            r#"{"type":"delete","at":1767225604000,"id":"x","by":"author"}"#
        ),
        None
    );
}

#[test]
fn quiet_messages_are_written_once_more_then_dropped() {
    let mut e = Engine::new(Policy::default());
    let mut out = Vec::new();
    let t0 = 1_767_607_200_000i64;
    apply(
        &mut e,
        &format!(r#"{{"type":"post","at":{t0},"id":"m","author":{{"id":"a"}},"mentions":["v"]}}"#),
        &mut out,
    );
    apply(
        &mut e,
        &format!(
            r#"{{"type":"reshare","at":{},"id":"r","of":"m","author":{{"id":"b"}}}}"#,
            t0 + 1
        ),
        &mut out,
    );
    apply(
        &mut e,
        &format!(
            r#"{{"type":"label","at":{},"id":"m","category":"targeted_harassment","source":"c","target":"v"}}"#,
            t0 + 2
        ),
        &mut out,
    );
    apply(
        &mut e,
        &format!(r#"{{"type":"delete","at":{},"id":"gone","by":"author"}}"#, t0 + 3),
        &mut out,
    );
    assert_eq!((e.stats().messages, e.stats().reshares, e.stats().labelled), (1, 1, 1));
    out.clear();
    // Activity elsewhere moves the watermark past the retention horizon and a sweep.
    let day = 86_400_000i64;
    for d in 1..=9 {
        apply(
            &mut e,
            &format!(
                r#"{{"type":"post","at":{},"id":"x{d}","author":{{"id":"z"}}}}"#,
                t0 + d * day
            ),
            &mut out,
        );
    }
    let stats = e.stats();
    assert_eq!(stats.labelled, 0);
    assert!(stats.evicted >= 1 && stats.reshares == 0, "{stats:?}");
    assert!(e.removals.is_empty(), "removals of ids never seen go too");
    assert!(
        e.conduct.senders().all(|u| e.conduct.messages(u).is_empty())
            && e.targets.people().all(|t| e.targets.messages(t).is_empty()),
        "indexes hold only history"
    );
    // Its two flags (author, resharer) were written as exposure stages passed, the last time
    // with all of its exposure, and never again.
    let ids: std::collections::BTreeSet<&str> = out
        .iter()
        .filter(|f| f.message_id == "m")
        .map(|f| f.flag_id.as_str())
        .collect();
    assert_eq!(ids.len(), 2);
    let last = out.iter().rev().find(|f| f.message_id == "m").expect("written");
    assert!(last.exposure.seconds_up >= 7 * 86_400, "{}", last.exposure.seconds_up);
    out.clear();
    apply(
        &mut e,
        &format!(
            r#"{{"type":"post","at":{},"id":"y","author":{{"id":"z"}}}}"#,
            t0 + 9 * day + 1
        ),
        &mut out,
    );
    assert!(out.iter().all(|f| f.message_id != "m"));
    // A late event about it starts afresh instead of touching freed slots.
    apply(
        &mut e,
        &format!(
            r#"{{"type":"label","at":{},"id":"m","category":"credible_threat","source":"c"}}"#,
            t0 + 9 * day
        ),
        &mut out,
    );
    assert_eq!(e.stats().labelled, 1);
}

/// Event time is the newest time seen in two events: the label alone at 10:01 does not move
/// it, so the end of input measures other messages to 10:00; the labelled message itself is
/// measured to its own newest event.
#[test]
fn finish_moves_the_watermark_to_event_time_and_no_further() {
    let mut e = Engine::new(Policy::default());
    let mut out = Vec::new();
    apply(
        &mut e,
        r#"{"type":"post","at":1767607200000,"id":"m","author":{"id":"a"}}"#,
        &mut out,
    );
    apply(
        &mut e,
        r#"{"type":"label","at":1767607260000,"id":"m","category":"credible_threat","source":"c"}"#,
        &mut out,
    );
    e.finish(&mut out);
    assert_eq!(e.watermark(), Some(Ts(1767607200000)));
    let written = out.len();
    e.finish(&mut out);
    e.finish(&mut out);
    assert_eq!(e.watermark(), Some(Ts(1767607200000)));
    assert_eq!(out.len(), written, "finishing again changes nothing");
    let last = out.last().expect("a flag");
    assert_eq!(last.exposure.seconds_up, 60);
}

#[test]
fn small_changes_wait_for_the_input_to_go_quiet_and_are_not_lost() {
    let (mut e, mut out) = threat_by_a();
    assert_eq!(out.len(), 1, "the new flag is written at once");
    out.clear();
    // Reshares by accounts with no followers: below every reach milestone after the first.
    for i in 2..6 {
        let line = format!(
            r#"{{"type":"reshare","at":{},"id":"r{i}","of":"m","author":{{"id":"u{i}"}}}}"#,
            1767607201000i64 + i
        );
        apply(&mut e, &line, &mut out);
    }
    let authors: Vec<&Flag> = out.iter().filter(|f| f.subject == Subject::Author).collect();
    assert!(
        authors.iter().all(|f| f.reach.reshares < 4),
        "small changes are not written at once"
    );
    out.clear();
    // A streaming worker's flush does the work held back, but a change that is not news is
    // not written for it: on a viral cascade that rewrote every flag every 100 ms.
    e.flush(&mut out);
    assert!(
        out.iter().all(|f| f.subject != Subject::Author),
        "a flush does not write a change that is not news"
    );
    out.clear();
    e.finish(&mut out);
    let author = out
        .iter()
        .find(|f| f.subject == Subject::Author)
        .expect("once the input is quiet, the author's flag is written");
    assert_eq!(author.reach.reshares, 4);
    out.clear();
    e.flush(&mut out);
    e.finish(&mut out);
    assert!(out.is_empty(), "nothing changed since the input went quiet");
}

/// Found by `any_cut_resumes_exactly`: an `account` event saying the sender is a minor
/// changed the flag (a factor against) under the same revision, so a consumer keeping the
/// newest revision could keep the wrong one.
#[test]
fn what_an_account_event_says_of_age_moves_the_revision() {
    let (mut e, mut out) = threat_by_a();
    let revision = |out: &[Flag]| out.last().expect("a flag is written").revision;
    let mut last = revision(&out);
    let has_minor = |out: &[Flag]| out.last().unwrap().factors.iter().any(|f| f.code == "minor");
    assert!(!has_minor(&out));
    // Said to be a minor, then said not to be, then the same said again with the same time:
    // each statement is evaluated again, and each change of the flag has a higher revision.
    for (line, minor) in [
        (r#"{"type":"account","at":1767607202000,"user":"a","minor":true}"#, true),
        (
            r#"{"type":"account","at":1767607203000,"user":"a","minor":false}"#,
            false,
        ),
        (r#"{"type":"account","at":1767607203000,"user":"a","minor":true}"#, true),
    ] {
        out.clear();
        apply(&mut e, line, &mut out);
        e.finish(&mut out);
        assert_eq!(has_minor(&out), minor, "after {line}");
        assert!(revision(&out) > last, "after {line}");
        last = revision(&out);
    }
    // An older statement changes nothing.
    out.clear();
    apply(
        &mut e,
        r#"{"type":"account","at":1767607202500,"user":"a","minor":false}"#,
        &mut out,
    );
    e.flush(&mut out);
    assert!(out.is_empty());
}

/// Found by the engine fuzz target: an event stamped at the latest time accepted, first (before
/// there is an event time to judge it by), then a labelled post and its removal. The removal's
/// revision must still grow (it fell when a change weighed less than the time span accepted),
/// and the far-future event must not move the post's time.
#[test]
fn a_first_event_from_the_far_future_moves_no_time_and_revisions_grow() {
    let mut e = Engine::new(Policy::default());
    let mut out = Vec::new();
    for line in [
        r#"{"type":"impressions","at":7258118400000,"id":"m0","count":1}"#,
        r#"{"type":"post","at":1767608485000,"id":"m5","author":{"id":"u5"}}"#,
        r#"{"type":"label","at":1767608485000,"id":"m5","category":"targeted_harassment"}"#,
        r#"{"type":"delete","at":1767608485000,"id":"m5"}"#,
    ] {
        apply(&mut e, line, &mut out);
    }
    e.finish(&mut out);
    let revisions: Vec<u64> = out
        .iter()
        .filter(|f| f.message_id == "m5")
        .map(|f| f.revision)
        .collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    let last = out.iter().rev().find(|f| f.message_id == "m5").unwrap();
    assert_eq!(last.at, Ts(1767608485000));
    assert!(!last.exposure.still_up);
}

/// Split into any partitions, a stream's event time combined from the partitions' clocks is
/// the event time one clock over the whole stream reads: what lets the Kafka worker finish
/// every partition where file mode finishes.
#[test]
fn partition_clocks_combine_into_the_whole_streams_event_time() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..200 {
        let n = 1 + next() % 12;
        let parts = 1 + next() % 5;
        let mut whole = EventClock::default();
        let mut clocks = vec![EventClock::default(); parts as usize];
        for i in 0..n {
            let at = Ts(1_767_607_200_000 + (next() % 50) as i64 * 1000);
            let id = format!("m{i}");
            let ev = crate::EventKind::Delete {
                id: id.as_str().into(),
                by: crate::event::RemovedBy::Author,
            };
            whole.observe_event(at, &ev);
            clocks[(next() % parts) as usize].observe_event(at, &ev);
        }
        let (newest, second) = whole.times();
        let combined = combined_event_time(clocks.iter().map(EventClock::times));
        assert_eq!(combined, second.or(newest), "round {round}");
    }
}

/// Found by the engine fuzz target: an account's reshare that was down from the start comes
/// again earlier, before another restriction. Its up time stays 0, but which removal reached
/// the account first changes: the revision must change with it (the debug build asserts that
/// a flag written again under one revision says the same).
#[test]
fn a_born_down_reshare_moved_earlier_writes_a_new_revision() {
    let mut e = Engine::new(Policy::default());
    let mut out = Vec::new();
    for line in [
        r#"{"type":"label","at":1767920760000,"id":"m5","category":"targeted_harassment","confidence":0.5,"target":"u5"}"#,
        r#"{"type":"reshare","at":1767673740000,"id":"r4","author":{"id":"u5","followers":161},"of":"m5","via":"r5"}"#,
        r#"{"type":"restrict","at":1767632778000,"id":"m5","by":"legal","scope":"followers_only"}"#,
        r#"{"type":"reshare","at":1771840800000,"id":"r0","author":{"id":"u5","followers":53},"of":"r5","via":"r5"}"#,
        r#"{"type":"reshare","at":1768096320000,"id":"r5","author":{"id":"u5","followers":53},"of":"m5"}"#,
        r#"{"type":"restrict","at":1767920760000,"id":"m5","by":"legal","scope":"followers_only"}"#,
        r#"{"type":"restrict","at":1767722100000,"id":"r5","by":"legal","scope":"followers_only"}"#,
    ] {
        apply(&mut e, line, &mut out);
    }
    e.flush(&mut out);
    let before = out.iter().rfind(|f| f.account == "u5").expect("a flag for u5").clone();
    apply(
        &mut e,
        r#"{"type":"reshare","at":1767704460000,"id":"r5","author":{"id":"u5","followers":53},"of":"m5"}"#,
        &mut out,
    );
    e.finish(&mut out);
    let after = out.iter().rfind(|f| f.account == "u5").expect("a flag for u5");
    assert_ne!(
        after.to_json(),
        before.to_json(),
        "the repeat changes what the flag says"
    );
    assert!(
        after.revision > before.revision,
        "{} -> {}",
        before.revision,
        after.revision
    );
}

/// Found by the engine fuzz target: one person reports a reshare three times before it
/// arrives. The latest report counts in the message's last activity (and so in how long the
/// reshare is measured to have been up) whichever report came first.
#[test]
fn repeated_reports_count_in_last_activity_in_any_order() {
    let lines = [
        r#"{"type":"label","at":1767406680000,"id":"m0","category":"court_order_breach","target":"u3"}"#,
        r#"{"type":"report","at":1767569400000,"id":"r3","reporter":"u3","by_target":true}"#,
        r#"{"type":"report","at":1767607200000,"id":"r3","reporter":"u3","by_target":true}"#,
        r#"{"type":"report","at":1767654050000,"id":"r3","reporter":"u3","by_target":true}"#,
        r#"{"type":"reshare","at":1767654048000,"id":"r3","author":{"id":"u0"},"of":"m0"}"#,
    ];
    let run = |order: &[&str]| {
        let mut e = Engine::new(Policy::default());
        let mut out = Vec::new();
        for line in order {
            apply(&mut e, line, &mut out);
        }
        e.finish(&mut out);
        let last = out.iter().rfind(|f| f.account == "u0").expect("a flag for u0").clone();
        (last.exposure.seconds_up, last.revision)
    };
    let reversed: Vec<&str> = lines.iter().rev().copied().collect();
    assert_eq!(run(&lines), run(&reversed));
    assert_eq!(run(&lines).0, 2, "up from the reshare to the last report");
}

#[test]
fn a_snapshot_with_a_label_confidence_outside_0_to_1_is_refused() {
    use super::snapshot::MAGIC;
    use crate::{SNAPSHOT_FORMAT, SnapshotError, frame};
    // The frame fuzz target resealed a snapshot whose label confidence was infinity, and the
    // restored engine printed a factor of infinite weight; restore now refuses it as damaged.
    let (mut e, mut out) = threat_by_a();
    apply(
        &mut e,
        r#"{"type":"label","at":1767607202000,"id":"m","category":"credible_threat","confidence":0.8125}"#,
        &mut out,
    );
    let snapshot = e.snapshot();
    let (fingerprint, body) = frame::open::<8>(MAGIC, SNAPSHOT_FORMAT, &snapshot).unwrap();
    let at = body
        .windows(8)
        .position(|w| w == 0.8125f64.to_le_bytes())
        .expect("the confidence is in the body");
    for bad in [f64::INFINITY, f64::NAN, 1.5, -0.25] {
        let mut edited = body.to_vec();
        edited[at..at + 8].copy_from_slice(&bad.to_le_bytes());
        let resealed = frame::seal(MAGIC, SNAPSHOT_FORMAT, fingerprint, edited.len(), |mut o| {
            o.extend_from_slice(&edited);
            o
        });
        match Engine::restore(Policy::default(), &resealed) {
            Err(SnapshotError::Damaged(why)) => assert!(why.contains("confidence"), "{why}"),
            Err(other) => panic!("confidence {bad}: refused for another reason: {other}"),
            Ok(_) => panic!("a snapshot with label confidence {bad} was restored"),
        }
    }
    assert!(
        Engine::restore(Policy::default(), &snapshot).is_ok(),
        "the unedited snapshot restores"
    );
}

#[test]
fn a_quiet_message_is_measured_to_the_retention_horizon_however_late_the_sweep() {
    // Its last flag says it was up for as long as it was tracked: the retention horizon after
    // its last activity, not until whenever a sweep happened to run (which depends on how the
    // input was read: file mode, or a Kafka backlog partition by partition).
    let retention = Policy::default().stream.retention_secs;
    for gap_days in [8, 30, 300] {
        let (mut e, mut out) = threat_by_a();
        let later = 1767607201000i64 + gap_days * 86_400_000;
        apply(
            &mut e,
            &format!(r#"{{"type":"post","at":{later},"id":"x","author":{{"id":"b","followers":5}}}}"#),
            &mut out,
        );
        apply(
            &mut e,
            &format!(
                r#"{{"type":"post","at":{},"id":"y","author":{{"id":"c","followers":5}}}}"#,
                later + 1
            ),
            &mut out,
        );
        e.finish(&mut out);
        let last = out.iter().rev().find(|f| f.message_id == "m").expect("m's flag");
        assert!(last.exposure.still_up, "{gap_days} days");
        assert_eq!(last.exposure.seconds_up, 1 + retention, "{gap_days} days");
    }
}

#[test]
fn the_slowest_source_still_read_holds_event_time_and_a_forged_time_moves_nothing() {
    let (mut e, mut out) = threat_by_a();
    e.expect_sources(["in/0".to_owned(), "in/1".to_owned()], &mut out);
    assert_eq!(e.input_time(), InputTime::Held, "in/1 has said nothing yet");
    let t = |ms: i64| (Some(Ts(ms)), Some(Ts(ms - 1000)));
    e.source_mark("in/0", t(1_767_700_000_000), false, &mut out);
    e.source_mark("in/1", t(1_767_650_000_000), false, &mut out);
    assert_eq!(e.input_time(), InputTime::Slowest(Ts(1_767_649_999_000)));
    let lateness = Policy::default().stream.lateness_secs as i64 * 1000;
    assert_eq!(e.watermark(), Some(Ts(1_767_649_999_000 - lateness)));
    // A mark dated beyond what an event can carry is an unknown time: it holds, never jumps.
    e.source_mark("in/1", (Some(Ts(i64::MAX)), Some(Ts(i64::MAX - 1))), false, &mut out);
    assert_eq!(e.input_time(), InputTime::Held, "in/1's time is unknown now: it holds");
    assert_eq!(
        e.watermark(),
        Some(Ts(1_767_649_999_000 - lateness)),
        "and nothing moved back"
    );
    e.source_mark("in/1", (Some(Ts(i64::MAX)), None), true, &mut out);
    e.source_mark("in/0", t(1_767_700_000_000), true, &mut out);
    assert_eq!(e.input_time(), InputTime::Idle(Some(Ts(1_767_699_999_000))));
    assert_eq!(
        e.watermark(),
        Some(Ts(1_767_699_999_000)),
        "every source read to its end"
    );
    // An earlier mark never moves the watermark back.
    e.source_mark("in/0", t(1_767_600_000_000), false, &mut out);
    assert_eq!(e.watermark(), Some(Ts(1_767_699_999_000)));
}

/// Two reshares that each name the other in `of`: whichever comes second closes the chain on
/// itself and is refused. A refused event still moves event time, or the watermark at the end,
/// and the labelled post's last flag with it, would depend on which came second (a fuzz
/// finding, `fuzz/regressions/engine/self-reply-and-quote-before-its-post`).
#[test]
fn an_event_refused_for_what_it_says_still_moves_event_time() {
    let lines = [
        r#"{"type":"label","at":1767607200000,"id":"m5","category":"communications_offence","source":"s0"}"#,
        r#"{"type":"reshare","at":1767440940000,"id":"r5","author":{"id":"u3","followers":53},"of":"r3"}"#,
        r#"{"type":"label","at":1767704460000,"id":"m1","factor":"tolerable","source":"s2"}"#,
        r#"{"type":"post","at":1767702420000,"id":"m5","author":{"id":"u5"},"audience":"followers"}"#,
        r#"{"type":"reshare","at":1767704460000,"id":"r3","author":{"id":"u3","followers":53},"of":"r5"}"#,
    ];
    let run = |order: &[&str]| {
        let mut e = Engine::new(Policy::default());
        let mut out = Vec::new();
        let mut refused = Vec::new();
        for line in order {
            if let Err(err) = e.apply(&decode(line.as_bytes()).unwrap(), &mut out) {
                refused.push(err.code());
            }
        }
        e.finish(&mut out);
        let last = out
            .iter()
            .rev()
            .find(|f| f.message_id == "m5")
            .expect("m5 is flagged")
            .clone();
        (refused, last)
    };
    let (refused, in_order) = run(&lines);
    assert_eq!(
        refused,
        ["self_reshare"],
        "the second of the two reshares closes the loop"
    );
    let reversed: Vec<&str> = lines.iter().rev().copied().collect();
    let (refused, backwards) = run(&reversed);
    assert_eq!(refused, ["self_reshare"]);
    assert_eq!(
        in_order.at.to_string(),
        "2026-01-06T13:01:00.000Z",
        "measured to the end of input"
    );
    assert_eq!(in_order.to_json(), backwards.to_json());
}

/// A followers-only restriction's credit reads the author's followers, which a direct
/// message's audience (its recipients) does not include: when the follower count is learnt
/// later, the flag changes and its revision must move with it (engine fuzz finding
/// `dm-followers-only-credit`; the engine itself panics on a flag that changed under the same
/// revision).
#[test]
fn a_direct_messages_followers_only_credit_moves_the_revision_when_followers_are_learnt() {
    let mut e = Engine::new(Policy::default());
    let mut out = Vec::new();
    let t0 = 1_767_607_200_000i64;
    for line in [
        format!(r#"{{"type":"post","at":{t0},"id":"m","author":{{"id":"a"}},"audience":"direct","recipients":["v"]}}"#),
        format!(
            r#"{{"type":"label","at":{},"id":"m","category":"targeted_harassment","source":"c","target":"v"}}"#,
            t0 + 1000
        ),
        format!(
            r#"{{"type":"restrict","at":{},"id":"m","by":"author","scope":"followers_only"}}"#,
            t0 + 2000
        ),
    ] {
        apply(&mut e, &line, &mut out);
    }
    e.finish(&mut out);
    let before = out.last().cloned().expect("a flag");
    assert!(before.exposure.restricted.is_some() && before.exposure.still_up);
    assert_eq!(before.reach.audience, 1, "a direct message reaches its recipient");
    out.clear();
    // The author's follower count, learnt from an account event: the credit shrinks.
    apply(
        &mut e,
        &format!(
            r#"{{"type":"account","at":{},"user":"a","followers":100000}}"#,
            t0 + 3000
        ),
        &mut out,
    );
    e.finish(&mut out);
    let after = out.last().cloned().expect("the flag again");
    assert_eq!(after.flag_id, before.flag_id);
    assert!(
        after.revision > before.revision,
        "{} -> {}",
        before.revision,
        after.revision
    );
    assert_eq!(after.reach.audience, 1);
    let credit = |f: &Flag| f.factors.iter().find(|x| x.code == "restricted").map(|x| x.weight);
    assert!(
        credit(&after).unwrap() > credit(&before).unwrap(),
        "less credit (nearer zero) with more followers"
    );
}

/// An unlabelled contact counts in a course of conduct, and keeps counting once its own post
/// has been evicted (as history), so a flag does not depend on when a retention sweep ran; the
/// history goes once it is older than every window.
#[test]
fn contacts_count_in_a_course_and_outlive_their_posts_as_history() {
    let mut e = Engine::new(Policy::default());
    let mut out = Vec::new();
    let t0 = 1_767_607_200_000i64;
    let hour = 3_600_000i64;
    let day = 24 * hour;
    let course = |out: &[Flag]| {
        let last = out.iter().rev().find(|f| f.message_id == "m").expect("a flag of m");
        last.factors
            .iter()
            .find(|x| x.code == "course_of_conduct")
            .map(|x| x.evidence.clone())
    };
    apply(
        &mut e,
        &format!(r#"{{"type":"post","at":{t0},"id":"c","author":{{"id":"s"}},"mentions":["v"]}}"#),
        &mut out,
    );
    apply(
        &mut e,
        &format!(
            r#"{{"type":"post","at":{},"id":"m","author":{{"id":"s"}},"mentions":["v"]}}"#,
            t0 + 12 * hour
        ),
        &mut out,
    );
    apply(
        &mut e,
        &format!(
            r#"{{"type":"label","at":{},"id":"m","category":"targeted_harassment","source":"r","target":"v"}}"#,
            t0 + 12 * hour + 1
        ),
        &mut out,
    );
    e.flush(&mut out);
    assert!(
        course(&out).is_some_and(|c| c.starts_with("2 messages")),
        "{:?}",
        course(&out)
    );
    // Reports keep m active while c goes quiet past the retention horizon and is evicted.
    for d in 1..=8 {
        let at = t0 + d * day;
        apply(
            &mut e,
            &format!(r#"{{"type":"report","at":{at},"id":"m","reporter":"p{d}"}}"#),
            &mut out,
        );
        apply(
            &mut e,
            &format!(r#"{{"type":"post","at":{at},"id":"x{d}","author":{{"id":"z"}}}}"#),
            &mut out,
        );
    }
    assert!(e.store.find("c").is_none(), "c was evicted");
    assert!(e.store.find("m").is_some(), "m is still in state");
    e.flush(&mut out);
    assert!(
        course(&out).is_some_and(|c| c.starts_with("2 messages")),
        "{:?}",
        course(&out)
    );
    assert_eq!(e.targets.contacts_past.len(), 1, "c's contact is history");
}

/// A resharer whose flag matters only with the message (not raised, a small audience, nothing
/// sent to their reshare) is listed in the message's resharer cohort when the input goes quiet,
/// with its exact numbers (or, without cohorts, first written then as a flag);
/// one with an audience of their own, or whose reshare was reported, at once
/// (`emission.resharer_audience`; on viral cascades, writing every resharer's flag when they
/// reshared and again when the message came down was most of what was written).
#[test]
fn a_resharers_flag_is_written_at_once_only_when_it_matters_on_its_own() {
    let lines = [
        r#"{"type":"post","at":1767607200000,"id":"m","author":{"id":"a","followers":10}}"#,
        r#"{"type":"label","at":1767607201000,"id":"m","category":"communications_offence","confidence":0.6,"source":"c"}"#,
        r#"{"type":"reshare","at":1767607202000,"id":"r1","of":"m","author":{"id":"small","followers":5}}"#,
        r#"{"type":"reshare","at":1767607203000,"id":"r2","of":"m","author":{"id":"big","followers":50000}}"#,
        r#"{"type":"reshare","at":1767607204000,"id":"r3","of":"m","author":{"id":"reported","followers":5}}"#,
        r#"{"type":"report","at":1767607205000,"id":"r3","reporter":"x"}"#,
        r#"{"type":"delete","at":1767607206000,"id":"m","by":"platform"}"#,
    ];
    let resharers = |out: &[Flag]| -> Vec<String> {
        let mut v: Vec<String> = out
            .iter()
            .filter(|f| f.subject == Subject::Resharer)
            .map(|f| f.account.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    for (audience, cohort, at_once) in [
        (10_000, true, vec!["big", "reported"]),
        (10_000, false, vec!["big", "reported"]),
        (0, true, vec!["big", "reported", "small"]),
    ] {
        let mut policy = Policy::default();
        policy.emission.resharer_audience = audience;
        policy.emission.resharer_cohort = cohort;
        let mut e = Engine::new(policy);
        let mut out = Vec::new();
        for line in lines {
            apply(&mut e, line, &mut out);
        }
        e.flush(&mut out);
        let mut cohorts = Vec::new();
        e.take_cohorts(&mut cohorts);
        assert!(cohorts.is_empty(), "cohorts wait for the input to be quiet");
        assert!(out.iter().all(|f| !f.raised), "a weak category-4 label raises nothing");
        assert_eq!(resharers(&out), at_once, "resharer_audience = {audience}");
        let written = out.len();
        e.finish(&mut out);
        e.take_cohorts(&mut cohorts);
        let quiet = resharers(&out[written..]);
        // Its exact state: down with the original, up 4 s, an audience of 5.
        let exact = |audience: u64, still_up: bool, seconds_up: u64| {
            assert_eq!((audience, still_up, seconds_up), (5, false, 4), "cohort = {cohort}");
        };
        if cohort {
            // Only the resharers who mattered on their own have flags; everyone is in the
            // cohort, with the numbers their flag has.
            assert_eq!(resharers(&out), at_once);
            assert_eq!(cohorts.len(), 1);
            let page = &cohorts[0];
            assert_eq!((page.page, page.pages, page.summary.resharers), (0, 1, 3));
            let accounts: Vec<&str> = page.members.iter().map(|m| m.account.as_str()).collect();
            assert_eq!(accounts, ["big", "reported", "small"], "in account order");
            let small = &page.members[2];
            exact(small.reach.audience, small.exposure.still_up, small.exposure.seconds_up);
            for f in out.iter().filter(|f| f.subject == Subject::Resharer) {
                let newest = out.iter().rfind(|g| g.flag_id == f.flag_id).unwrap();
                let m = page.members.iter().find(|m| m.flag_id == f.flag_id).expect("listed");
                assert!(m.says_what(newest), "{m:?} {newest:?}");
            }
            // Quiet again with nothing new: nothing is written again.
            let (n, mut again) = (out.len(), Vec::new());
            e.finish(&mut out);
            e.take_cohorts(&mut again);
            assert_eq!((out.len(), again.len()), (n, 0));
        } else {
            assert!(cohorts.is_empty());
            assert!(quiet.contains(&"small".to_owned()), "written once the input is quiet");
            let small = out.iter().rev().find(|f| f.account == "small").expect("written");
            exact(small.reach.audience, small.exposure.still_up, small.exposure.seconds_up);
        }
    }
}

/// A delete of a labelled post evaluates its author, the resharers whose flags were written,
/// and the resharers with a reshare after it, whose flags it can make matter (a reshare made
/// after the removal); the others wait for the input to be quiet. A delete that arrives after
/// a later reshare writes that resharer's flag at once, as the reshare arriving after the
/// delete would.
#[test]
fn a_delete_writes_at_once_the_flags_of_resharers_who_reshared_after_it() {
    let lines = [
        r#"{"type":"post","at":1767607200000,"id":"m","author":{"id":"a","followers":10}}"#,
        r#"{"type":"label","at":1767607201000,"id":"m","category":"communications_offence","confidence":0.6,"source":"c"}"#,
        r#"{"type":"reshare","at":1767607202000,"id":"r1","of":"m","author":{"id":"early","followers":5}}"#,
        r#"{"type":"reshare","at":1767607300000,"id":"r2","of":"m","author":{"id":"late","followers":5}}"#,
    ];
    let delete = r#"{"type":"delete","at":1767607250000,"id":"m","by":"platform"}"#;
    let mut written = Vec::new();
    for delete_last in [true, false] {
        let mut e = Engine::new(Policy::default());
        let mut out = Vec::new();
        if !delete_last {
            apply(&mut e, delete, &mut out);
        }
        for line in lines {
            apply(&mut e, line, &mut out);
        }
        if delete_last {
            apply(&mut e, delete, &mut out);
        }
        let resharers: Vec<&str> = out
            .iter()
            .filter(|f| f.subject == Subject::Resharer)
            .map(|f| f.account.as_str())
            .collect();
        assert_eq!(resharers, ["late"], "delete last: {delete_last}");
        let late = out.iter().rfind(|f| f.account == "late").unwrap();
        assert!(
            late.factors.iter().any(|f| f.code == "reshared_after_removal"),
            "{late:?}"
        );
        e.finish(&mut out);
        let mut cohorts = Vec::new();
        e.take_cohorts(&mut cohorts);
        // The newest revision of each flag: revisions only grow in the order written.
        let newest: std::collections::BTreeMap<String, Flag> =
            out.iter().map(|f| (f.flag_id.clone(), f.clone())).collect();
        written.push((newest, cohorts));
    }
    assert_eq!(
        written[0], written[1],
        "the same once the input is quiet, in either order"
    );
}

/// A timer (event time, message, subject) stays 16 bytes with typed handles: the timers of a
/// viral message are many.
#[test]
fn timers_stay_small() {
    assert_eq!(std::mem::size_of::<(i64, crate::store::MsgIx, Who)>(), 16);
    assert_eq!(std::mem::size_of::<Who>(), 4);
}
