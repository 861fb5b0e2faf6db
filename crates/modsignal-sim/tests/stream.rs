//! Properties of the generated stream: determinism, exact length, the contract, and the
//! realism the crate documentation promises.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use modsignal_core::event::{AccountStatus, Category, FactorLabel, LabelCode, RemovedBy};
use modsignal_core::{Event, EventKind, decode};
use modsignal_sim::{SimConfig, Simulator};

/// Sizes are smaller in debug builds, where generation and JSON are ten times slower.
const SLOW_EVENTS: u64 = if cfg!(debug_assertions) { 150_000 } else { 400_000 };

/// A stream that covers hours of event time in few events (ten events a second), so that
/// slow consequences (reviewer labels, restores, legal removals) appear in it.
fn slow_config() -> SimConfig {
    SimConfig {
        events: SLOW_EVENTS,
        events_per_sec: 10.0,
        users: 20_000,
        seed: 7,
        ..SimConfig::default()
    }
}

/// The slow stream, generated once and shared by the tests that read it.
fn slow() -> &'static [Event<'static>] {
    static STREAM: OnceLock<Vec<Event<'static>>> = OnceLock::new();
    STREAM.get_or_init(|| Simulator::new(slow_config()).collect())
}

fn jsons(cfg: SimConfig) -> Vec<String> {
    Simulator::new(cfg).map(|e| e.to_json()).collect()
}

/// The stream with exact duplicates removed (the second sighting of an identical line).
fn distinct<'a>(stream: &'a [Event<'static>]) -> Vec<&'a Event<'static>> {
    let mut seen = HashSet::new();
    stream.iter().filter(|e| seen.insert(e.to_json())).collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let cfg = SimConfig {
        events: 30_000,
        ..SimConfig::default()
    };
    let a = jsons(cfg.clone());
    assert_eq!(a, jsons(cfg.clone()));
    let b = jsons(SimConfig { seed: 2, ..cfg.clone() });
    assert_ne!(a, b);
    // A different seed gives a different population too, not just a different schedule.
    let first_author = |s: &[String]| s.iter().find(|l| l.contains(r#""type":"post""#)).cloned();
    assert_ne!(first_author(&a), first_author(&b));
}

#[test]
fn yields_exactly_the_configured_number_of_events() {
    for n in [0, 1, 2, 12_345] {
        let sim = Simulator::new(SimConfig {
            events: n,
            ..SimConfig::default()
        });
        assert_eq!(sim.len() as u64, n);
        assert_eq!(sim.count() as u64, n);
    }
    let mut sim = Simulator::new(SimConfig {
        events: 3,
        ..SimConfig::default()
    });
    assert!(sim.by_ref().take(3).count() == 3 && sim.next().is_none() && sim.next().is_none());
}

#[test]
fn every_event_round_trips_through_the_decoder() {
    for ev in slow() {
        let json = ev.to_json();
        let back = decode(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(&back, ev, "{json}");
        assert!(ev.at.in_range());
    }
}

#[test]
fn the_stream_contains_every_type_and_variant() {
    let mut types = HashSet::new();
    let (mut cats, mut factors, mut scopes, mut removers, mut audiences, mut statuses) = (
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
    );
    let (mut negated, mut targeted, mut by_target, mut minors, mut account_followers, mut with_id, mut via, mut quotes) =
        (0, 0, 0, 0, 0, 0, 0, 0);
    for ev in slow() {
        types.insert(ev.kind.type_name());
        with_id += usize::from(ev.event_id.is_some());
        match &ev.kind {
            EventKind::Post {
                author,
                audience,
                quote_of,
                ..
            } => {
                audiences.insert(format!("{audience:?}"));
                minors += usize::from(author.minor == Some(true));
                quotes += usize::from(quote_of.is_some());
            }
            EventKind::Reshare { via: v, .. } => via += usize::from(v.is_some()),
            EventKind::Delete { by, .. } => {
                removers.insert(*by);
            }
            EventKind::Restrict { by, scope, .. } => {
                removers.insert(*by);
                scopes.insert(format!("{scope:?}"));
            }
            EventKind::Label {
                code, negate, target, ..
            } => {
                match code {
                    LabelCode::Category(c) => cats.insert(*c),
                    LabelCode::Factor(f) => factors.insert(*f),
                };
                negated += usize::from(*negate);
                targeted += usize::from(target.is_some());
            }
            EventKind::Report { by_target: b, .. } => by_target += usize::from(*b),
            EventKind::Account { status, followers, .. } => {
                if let Some(s) = status {
                    statuses.insert(format!("{s:?}"));
                }
                account_followers += usize::from(followers.is_some());
            }
            _ => {}
        }
    }
    let all = [
        "post",
        "reshare",
        "delete",
        "restrict",
        "restore",
        "label",
        "report",
        "impressions",
        "account",
    ];
    for t in all {
        assert!(types.contains(t), "no `{t}` event in {types:?}");
    }
    assert_eq!(cats.len(), 4, "{cats:?}");
    assert_eq!(factors.len(), FactorLabel::ALL.len(), "{factors:?}");
    assert_eq!(scopes.len(), 4, "{scopes:?}");
    assert!(removers.is_superset(&HashSet::from([
        RemovedBy::Author,
        RemovedBy::Platform,
        RemovedBy::Legal
    ])));
    assert_eq!(audiences.len(), 4, "{audiences:?}");
    for s in [
        AccountStatus::Active,
        AccountStatus::Suspended,
        AccountStatus::Deactivated,
        AccountStatus::Deleted,
        AccountStatus::Takendown,
    ] {
        assert!(statuses.contains(&format!("{s:?}")), "no account status {s:?}");
    }
    for (what, n) in [
        ("negated labels", negated),
        ("targeted labels", targeted),
        ("reports by the target", by_target),
        ("minor authors", minors),
        ("account events with followers", account_followers),
        ("events with an id", with_id),
        ("reshares with via", via),
        ("quotes", quotes),
    ] {
        assert!(n > 0, "no {what}");
    }
}

#[test]
fn category_four_is_the_most_common_and_labels_follow_their_post() {
    let stream = slow();
    let posted: HashMap<&str, i64> = stream
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Post { id, .. } | EventKind::Reshare { id, .. } => Some((&**id, e.at.0)),
            _ => None,
        })
        .collect();
    let mut by_cat: HashMap<Category, usize> = HashMap::new();
    let mut asserted: HashSet<(&str, LabelCode, &str)> = HashSet::new();
    for e in stream {
        if let EventKind::Label {
            id,
            code,
            source,
            negate,
            ..
        } = &e.kind
        {
            if let Some(at) = posted.get(&**id) {
                assert!(e.at.0 > *at, "label before its post: {}", e.to_json());
            }
            if *negate {
                assert!(
                    asserted.contains(&(&**id, *code, &**source)),
                    "retraction of nothing: {}",
                    e.to_json()
                );
            } else {
                asserted.insert((id, *code, source));
                if let LabelCode::Category(c) = code {
                    *by_cat.entry(*c).or_default() += 1;
                }
            }
        }
    }
    let most = by_cat.iter().max_by_key(|(_, n)| **n).map(|(c, _)| *c);
    assert_eq!(most, Some(Category::CommunicationsOffence), "{by_cat:?}");
}

#[test]
fn delivery_has_duplicates_and_bounded_reordering() {
    let cfg = SimConfig {
        events: 100_000,
        ..SimConfig::default()
    };
    let window_ms = cfg.reorder_window_secs as i64 * 1000;
    let stream: Vec<_> = Simulator::new(cfg).collect();
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let (mut max_at, mut late, mut worst) = (i64::MIN, 0, 0);
    for ev in &stream {
        if !seen.insert(ev.to_json()) {
            duplicates += 1;
        }
        if ev.at.0 < max_at {
            late += 1;
            worst = worst.max(max_at - ev.at.0);
        }
        max_at = max_at.max(ev.at.0);
    }
    assert!((500..=2000).contains(&duplicates), "{duplicates} duplicates in 100,000");
    assert!(late > 100, "only {late} events out of order");
    assert!(
        worst <= window_ms,
        "an event {worst} ms behind the newest, beyond the {window_ms} ms window"
    );
    assert!(
        worst > window_ms / 10,
        "reordering never approaches the window: {worst} ms"
    );
}

#[test]
fn some_consequences_arrive_before_their_cause() {
    let (mut posts, mut early_deletes, mut early_reshares) = (HashSet::new(), 0, 0);
    let mut seen_ids = HashSet::new();
    for ev in slow() {
        match &ev.kind {
            EventKind::Post { id, .. } => {
                posts.insert(id.clone());
            }
            EventKind::Delete { id, .. } if id.contains("feed.post") && !posts.contains(id) => {
                early_deletes += usize::from(seen_ids.insert(id.clone()));
            }
            EventKind::Reshare { of, via: None, .. } if of.contains("feed.post") && !posts.contains(of) => {
                early_reshares += 1;
            }
            _ => {}
        }
    }
    // Those whose post never appears at all would be a bug; every early delete names a post
    // that comes later.
    assert!(early_deletes > 0, "no delete before its post");
    assert!(early_reshares > 0, "no reshare before its original");
    let late_posts: HashSet<_> = seen_ids.iter().filter(|id| posts.contains(*id)).collect();
    assert_eq!(
        late_posts.len(),
        seen_ids.len(),
        "a delete names a post that never comes"
    );
}

#[test]
fn cascades_are_deep_and_heavy_tailed() {
    let stream = slow();
    // A reshare's parent is the reshare it names in `of` or, failing that, in `via`.
    let mut parent: HashMap<&str, Option<&str>> = HashMap::new();
    let mut size: HashMap<&str, usize> = HashMap::new();
    for e in stream {
        if let EventKind::Reshare { id, of, via, .. } = &e.kind {
            let p = if of.contains("feed.repost") {
                Some(&**of)
            } else {
                via.as_deref()
            };
            parent.insert(id, p);
            if !of.contains("feed.repost") {
                *size.entry(of).or_default() += 1;
            }
        }
    }
    let depth = |mut id: &str| {
        let mut d = 1;
        while let Some(Some(p)) = parent.get(id) {
            d += 1;
            id = p;
        }
        d
    };
    let max_depth = parent.keys().map(|id| depth(id)).max().unwrap_or(0);
    assert!(max_depth >= 3, "deepest reshare chain is {max_depth}");
    let mut sizes: Vec<usize> = size.values().copied().collect();
    sizes.sort_unstable();
    let (median, max) = (sizes[sizes.len() / 2], sizes[sizes.len() - 1]);
    assert!(max >= 50 * median, "cascade sizes: median {median}, max {max}");
}

#[test]
fn follower_counts_are_heavy_tailed() {
    let mut followers: HashMap<&str, u32> = HashMap::new();
    for e in slow() {
        if let EventKind::Post { author, .. } | EventKind::Reshare { author, .. } = &e.kind
            && let Some(f) = author.followers
        {
            followers.insert(&author.id, f);
        }
    }
    let mut f: Vec<u32> = followers.into_values().collect();
    f.sort_unstable();
    let median = f[f.len() / 2];
    let max = f[f.len() - 1];
    assert!((30..=1000).contains(&median), "median followers {median}");
    // A population of 20,000 has a few accounts in the hundreds of thousands or millions.
    assert!(
        max >= 2000 * median && max >= 200_000,
        "largest account has {max} followers, median {median}"
    );
    let share_small = f.iter().filter(|x| **x < 1000).count() as f64 / f.len() as f64;
    assert!(
        share_small > 0.8,
        "only {share_small} of accounts under 1,000 followers"
    );
}

#[test]
fn ids_are_unique_and_well_formed() {
    let mut posts = HashSet::new();
    let mut reshares = HashSet::new();
    let mut event_ids = HashSet::new();
    for e in distinct(slow()) {
        if let Some(eid) = &e.event_id {
            assert!(event_ids.insert(eid.clone()), "event id {eid} reused");
        }
        match &e.kind {
            EventKind::Post { id, author, .. } => {
                assert!(
                    id.starts_with(&format!("at://{}/app.bsky.feed.post/", author.id)),
                    "{id}"
                );
                assert!(posts.insert(id.clone()), "post id {id} reused");
            }
            EventKind::Reshare { id, author, .. } => {
                assert!(
                    id.starts_with(&format!("at://{}/app.bsky.feed.repost/", author.id)),
                    "{id}"
                );
                assert!(reshares.insert(id.clone()), "reshare id {id} reused");
            }
            _ => {}
        }
    }
    assert!(posts.is_disjoint(&reshares));
}

#[test]
fn mobbing_and_repeated_conduct_occur() {
    let stream = distinct(slow());
    let labelled: HashSet<&str> = stream
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Label {
                id,
                code: LabelCode::Category(_),
                negate: false,
                ..
            } => Some(id.as_ref()),
            _ => None,
        })
        .collect();
    // Mobbing: several senders of labelled replies to one post within a day.
    let mut repliers: HashMap<&str, Vec<(i64, &str)>> = HashMap::new();
    // Repeated conduct: one sender's labelled posts naming one user.
    let mut aimed: HashMap<(&str, &str), usize> = HashMap::new();
    for e in &stream {
        if let EventKind::Post {
            id,
            author,
            reply_to,
            mentions,
            ..
        } = &e.kind
        {
            if !labelled.contains(id.as_ref()) {
                continue;
            }
            if let Some(parent) = reply_to {
                repliers
                    .entry(parent.as_ref())
                    .or_default()
                    .push((e.at.0, author.id.as_ref()));
            }
            if let Some(m) = mentions.first() {
                *aimed.entry((author.id.as_ref(), m.as_ref())).or_default() += 1;
            }
        }
    }
    let mobs = repliers
        .values()
        .filter(|r| {
            let first = r.iter().map(|x| x.0).min().unwrap_or(0);
            let senders: HashSet<_> = r.iter().filter(|x| x.0 - first <= 86_400_000).map(|x| x.1).collect();
            senders.len() >= 3
        })
        .count();
    assert!(
        mobs > 0,
        "no post drew labelled replies from three senders within a day"
    );
    let repeat = aimed.values().filter(|n| **n >= 3).count();
    assert!(repeat > 0, "no sender sent three labelled posts at one user");
}

#[test]
fn event_time_advances_at_the_configured_rate() {
    let cfg = SimConfig {
        events: 100_000,
        ..SimConfig::default()
    };
    let expected = cfg.events as f64 / cfg.events_per_sec;
    let stream: Vec<_> = Simulator::new(cfg.clone()).collect();
    assert_eq!(stream[0].at.0, cfg.start_ms);
    let span = (stream.iter().map(|e| e.at.0).max().unwrap() - cfg.start_ms) as f64 / 1000.0;
    assert!(
        (0.8 * expected..1.25 * expected).contains(&span),
        "{span} s for {expected} s expected"
    );
}

#[test]
fn memory_stays_bounded_under_a_small_cap() {
    let cfg = SimConfig {
        events: 50_000,
        events_per_sec: 20.0,
        max_pending: 2_000,
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(cfg);
    let mut n = 0;
    while sim.next().is_some() {
        n += 1;
        // Held-back events are few: a share of the events within one reorder window.
        assert!(sim.pending() <= 2_000 + 200, "{} pending", sim.pending());
    }
    assert_eq!(n, 50_000);
    assert!(
        sim.dropped() > 0,
        "the cap was never reached, so this test proves nothing"
    );
}
