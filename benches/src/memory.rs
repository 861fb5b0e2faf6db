//! Measures the heap bytes the engine holds per tracked message and per tracked reshare.
//!
//! A counting global allocator records live heap bytes. The program applies `MESSAGES` posts
//! (from a population of `USERS` accounts), reads the live bytes, then applies one reshare per
//! message, and reads them again. Nothing is estimated from struct sizes: the figure is what
//! the allocator holds, hash-table slack and the interned account ids included.
//!
//! `cargo run --release -p modsignal-benches --bin memory -- [MESSAGES]` (default 10 million).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use modsignal_core::event::{Audience, Author, Event, EventKind};
use modsignal_core::{Engine, Policy, Ts};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    let messages: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let users = (messages / 10).max(1);
    let t0 = 1_767_607_200_000i64;
    let mut engine = Engine::new(Policy::default());
    let mut out = Vec::new();
    let mut id = String::new();
    let mut user = String::new();
    let base = LIVE.load(Ordering::Relaxed);
    let started = std::time::Instant::now();
    for i in 0..messages {
        use std::fmt::Write;
        id.clear();
        user.clear();
        // Ids shaped like Bluesky's: a DID and a record key, about 60 bytes each.
        let _ = write!(id, "at://did:plc:{:024x}/app.bsky.feed.post/3l{:011x}", i % users, i);
        let _ = write!(user, "did:plc:{:024x}", i % users);
        let ev = Event {
            at: Ts(t0 + i as i64),
            event_id: None,
            kind: EventKind::public_post(
                id.as_str().into(),
                Author {
                    id: user.as_str().into(),
                    followers: Some((i % 5000) as u32),
                    minor: None,
                },
            ),
        };
        engine.apply(&ev, &mut out).expect("posts apply");
    }
    let after_posts = LIVE.load(Ordering::Relaxed);
    let posts_secs = started.elapsed().as_secs_f64();
    let mut of = String::new();
    let started = std::time::Instant::now();
    for i in 0..messages {
        use std::fmt::Write;
        id.clear();
        user.clear();
        of.clear();
        let target = (i * 7 + 3) % messages;
        let _ = write!(
            id,
            "at://did:plc:{:024x}/app.bsky.feed.repost/3m{:011x}",
            (i + 1) % users,
            i
        );
        let _ = write!(
            of,
            "at://did:plc:{:024x}/app.bsky.feed.post/3l{:011x}",
            target % users,
            target
        );
        let _ = write!(user, "did:plc:{:024x}", (i + 1) % users);
        let ev = Event {
            at: Ts(t0 + (messages + i) as i64),
            event_id: None,
            kind: EventKind::Reshare {
                id: id.as_str().into(),
                of: of.as_str().into(),
                author: Author {
                    id: user.as_str().into(),
                    followers: None,
                    minor: None,
                },
                via: None,
            },
        };
        engine.apply(&ev, &mut out).expect("reshares apply");
    }
    let after_reshares = LIVE.load(Ordering::Relaxed);
    let reshares_secs = started.elapsed().as_secs_f64();
    let stats = engine.stats();
    assert_eq!(stats.messages as u64, messages);
    assert_eq!(stats.reshares as u64, messages);
    let per_msg = (after_posts - base) as f64 / messages as f64;
    let per_rs = (after_reshares - after_posts) as f64 / messages as f64;
    println!("messages in state:   {}", stats.messages);
    println!("reshares in state:   {}", stats.reshares);
    println!("accounts in state:   {}", stats.users);
    println!("heap per message:    {per_msg:.1} bytes (accounts and their ids included)");
    println!("heap per reshare:    {per_rs:.1} bytes");
    println!(
        "heap in all:         {:.1} MiB (peak {:.1} MiB)",
        (after_reshares - base) as f64 / 1048576.0,
        PEAK.load(Ordering::Relaxed) as f64 / 1048576.0
    );
    if let Some(kib) = rss_kib() {
        println!("resident set:        {:.1} MiB", kib as f64 / 1024.0);
    }
    println!(
        "apply rate:          {:.0} posts/s, {:.0} reshares/s (pre-built events, one core)",
        messages as f64 / posts_secs,
        messages as f64 / reshares_secs
    );
    // Snapshot and restore: what a new owner of a partition pays to take its state over.
    let started = std::time::Instant::now();
    let bytes = engine.snapshot();
    let snap_secs = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let restored = Engine::restore(Policy::default(), &bytes).expect("a fresh snapshot restores");
    let restore_secs = started.elapsed().as_secs_f64();
    assert_eq!(restored.stats(), stats);
    let keys = (stats.messages + stats.reshares) as f64;
    println!(
        "snapshot:            {:.1} MiB ({:.1} bytes per message or reshare), written in {snap_secs:.2}s",
        bytes.len() as f64 / 1048576.0,
        bytes.len() as f64 / keys
    );
    println!(
        "restore:             {restore_secs:.2}s, {:.0} keys/s (messages and reshares, indexes rebuilt)",
        keys / restore_secs
    );
    drop(restored);
    drop(bytes);
    hot_resharers(engine, messages, true);
    hot_resharers(Engine::new(Policy::default()), messages, false);
    contacts(messages.min(2_000_000));
}

/// One message reshared by `n` accounts seen nowhere else: the heap each resharer costs
/// (their reshare, their account and, when the message is `labelled`, their flag's state), and
/// the flags written. Run unlabelled too, the difference is what a resharer of a labelled
/// message costs beyond any reshare.
fn hot_resharers(mut engine: Engine, n: u64, labelled: bool) {
    let t0 = 1_767_607_200_000i64 + 3 * n as i64;
    let mut out = Vec::new();
    let viral = "at://did:plc:viralviralviralviralviral/app.bsky.feed.post/3lviral";
    let apply = |engine: &mut Engine, kind: EventKind<'_>, at: i64, out: &mut Vec<modsignal_core::Flag>| {
        let ev = Event {
            at: Ts(at),
            event_id: None,
            kind,
        };
        engine.apply(&ev, out).expect("applies");
    };
    let author = Author {
        id: "did:plc:viralviralviralviralviral".into(),
        followers: Some(1000),
        minor: None,
    };
    apply(&mut engine, EventKind::public_post(viral.into(), author), t0, &mut out);
    if labelled {
        apply(
            &mut engine,
            EventKind::Label {
                id: viral.into(),
                code: modsignal_core::event::LabelCode::Category(
                    modsignal_core::event::Category::CommunicationsOffence,
                ),
                confidence: 0.9,
                source: "classifier".into(),
                target: None,
                negate: false,
            },
            t0 + 1,
            &mut out,
        );
    }
    let before = LIVE.load(Ordering::Relaxed);
    let mut flags = 0u64;
    let (mut id, mut user) = (String::new(), String::new());
    for i in 0..n {
        use std::fmt::Write;
        id.clear();
        user.clear();
        let _ = write!(user, "did:plc:fan{i:021x}");
        let _ = write!(id, "at://{user}/app.bsky.feed.repost/3r{i:011x}");
        let kind = EventKind::Reshare {
            id: id.as_str().into(),
            of: viral.into(),
            author: Author {
                id: user.as_str().into(),
                followers: Some(50),
                minor: None,
            },
            via: None,
        };
        // A reshare a millisecond: all within a minute's emission interval of each other's
        // flags only for the first 60,000.
        apply(&mut engine, kind, t0 + 2 + i as i64, &mut out);
        flags += out.len() as u64;
        out.clear();
    }
    let after = LIVE.load(Ordering::Relaxed);
    engine.finish(&mut out);
    flags += out.len() as u64;
    let stats = engine.stats();
    if labelled {
        println!(
            "one labelled message, {n} resharers: heap per resharer {:.1} bytes (their reshare, account and flag state); {flags} flag revisions written, {:.2} per event",
            (after - before) as f64 / n as f64,
            flags as f64 / n as f64
        );
    } else {
        println!(
            "one unlabelled message, {n} resharers: heap per resharer {:.1} bytes (their reshare and account)",
            (after - before) as f64 / n as f64,
        );
    }
    std::hint::black_box((engine, stats));
}

/// Heap per post that mentions someone, against the same posts mentioning no one: what the
/// contact index of courses of conduct costs (one entry per post aimed at a person, labelled or
/// not, per sender and person). Both runs in fresh engines, the people mentioned interned in
/// both.
fn contacts(n: u64) {
    let t0 = 1_767_607_200_000i64;
    let people = (n / 100).max(1);
    let run = |mention: bool| {
        let mut engine = Engine::new(Policy::default());
        let mut out = Vec::new();
        // Intern the people first, so both runs hold the same accounts.
        for p in 0..people {
            let ev = Event {
                at: Ts(t0),
                event_id: None,
                kind: EventKind::Account {
                    user: format!("did:plc:{p:024x}").into(),
                    status: None,
                    minor: None,
                    followers: Some(1),
                },
            };
            engine.apply(&ev, &mut out).expect("accounts apply");
        }
        let base = LIVE.load(Ordering::Relaxed);
        for i in 0..n {
            let person = format!("did:plc:{:024x}", i % people);
            let ev = Event {
                at: Ts(t0 + i as i64),
                event_id: None,
                kind: EventKind::Post {
                    id: format!(
                        "at://did:plc:{:024x}/app.bsky.feed.post/3l{i:011x}",
                        i % (n / 10).max(1)
                    )
                    .into(),
                    author: Author {
                        id: format!("did:plc:{:024x}", i % (n / 10).max(1)).into(),
                        followers: Some(100),
                        minor: None,
                    },
                    audience: Audience::Public,
                    reply_to: None,
                    reply_to_author: None,
                    quote_of: None,
                    quote_of_author: None,
                    mentions: if mention { vec![person.into()] } else { Vec::new() },
                    recipients: Vec::new(),
                },
            };
            engine.apply(&ev, &mut out).expect("posts apply");
        }
        let per = (LIVE.load(Ordering::Relaxed) - base) as f64 / n as f64;
        drop(engine);
        per
    };
    let plain = run(false);
    let aimed = run(true);
    println!(
        "contacts:            {aimed:.1} bytes per post mentioning someone, {plain:.1} per post mentioning no one: {:.1} for the contact index ({n} posts, {people} people)",
        aimed - plain
    );
}
