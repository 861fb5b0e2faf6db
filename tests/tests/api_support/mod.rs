//! What the HTTP API's tests share: flags from the real engine over the scenarios, resharer
//! cohorts built as the engine builds them, and a server configuration with one token per role.

use std::path::Path;
use std::sync::Arc;

use modsignal_api::{ApiConfig, ApiState, FlagStore, Role, Secret, TokenConfig};
use modsignal_core::cohort::{Member, Roll};
use modsignal_core::event::Category;
use modsignal_core::flag::{Exposure, Reach, flag_id};
use modsignal_core::{Cohort, Flag, Policy, Subject, Ts};
use modsignal_tests::run_lines;

pub const ANALYST: &str = "analyst-token-0123456789abcdef";
pub const LIAISON: &str = "liaison-token-0123456789abcdef";
pub const KEY: &str = "pseudonym-key-for-the-tests-0123456789";

/// Every flag revision the engine writes for the scenarios that have reviewed snapshots (their
/// message ids are distinct, so their flags do not collide), in the order written.
pub fn scenario_flags() -> Vec<Flag> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/scenarios exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "flags"))
        .collect();
    names.sort();
    assert!(names.len() >= 8, "expected the scenarios in {}", dir.display());
    // As the snapshots are rendered: every resharer's flag written, none only in a cohort.
    let mut policy = Policy::default();
    policy.emission.resharer_cohort = false;
    let mut out = Vec::new();
    for flags_path in names {
        let events = std::fs::read_to_string(flags_path.with_extension("jsonl")).expect("scenario events");
        let lines: Vec<&str> = events.lines().collect();
        let (flags, errors) = run_lines(&policy, &lines);
        assert!(errors.is_empty(), "{}: {errors:?}", flags_path.display());
        out.extend(flags);
    }
    out
}

/// Analyst and liaison tokens; the liaison role sees pseudonyms when `pseudonymise_liaison`.
pub fn config(pseudonymise_liaison: bool) -> ApiConfig {
    let mut c = ApiConfig::new("127.0.0.1:0".parse().expect("an address"));
    c.tokens = vec![
        TokenConfig {
            token: Secret::new(ANALYST),
            role: Role::Analyst,
        },
        TokenConfig {
            token: Secret::new(LIAISON),
            role: Role::Liaison,
        },
    ];
    if pseudonymise_liaison {
        c.pseudonymise = vec![Role::Liaison];
        c.pseudonym_key = Some(Secret::new(KEY));
    }
    c
}

/// A store holding `flags`, marked ready.
pub fn store_with(flags: &[Flag]) -> Arc<FlagStore> {
    let store = Arc::new(FlagStore::default());
    for f in flags {
        store.ingest(f).expect("engine flags are valid");
    }
    store.set_ready(true);
    store
}

/// The server's state with a fresh metrics registry.
pub fn state(config: &ApiConfig, store: Arc<FlagStore>) -> ApiState {
    ApiState::new(config, store, prometheus::Registry::new()).expect("a valid configuration")
}

/// The pages of a resharer cohort of `message_id` for `category`, built by the core's own
/// [`Roll`]: `n` resharers `r00000`, `r00001`, … (listed in reverse, so the pages' account
/// order is the cohort's doing), every `raised_every`-th raised (none if more than `n`), each member at `revision`,
/// every third taken down by the platform. Their flag ids are the ids their flags would have.
pub fn cohort_pages(message_id: &str, category: Category, n: usize, raised_every: usize, revision: u64) -> Vec<Cohort> {
    let posted = Ts::parse_rfc3339("2026-01-05T10:00:00Z").expect("a time");
    let members = (0..n)
        .rev()
        .map(|i| {
            let account = format!("r{i:05}");
            let up = 60 * (i as u64 % 500 + 1);
            let removed = i % 3 == 0;
            let m = Member {
                flag_id: flag_id(message_id, Subject::Resharer, &account, category),
                account,
                revision,
                score: 0.1 + 0.8 * (i % 2) as f64,
                raised: (i + 1) % raised_every == 0,
                reach: Reach {
                    audience: 10 + i as u64,
                    reshares: i as u64 % 4,
                    quotes: 0,
                    replies: 0,
                    impressions: None,
                    depth: 1 + (i % 3) as u32,
                },
                exposure: Exposure {
                    posted_at: posted,
                    removed_at: removed.then(|| posted.plus_secs(up)),
                    removed_by: removed.then_some(modsignal_core::event::RemovedBy::Platform),
                    removal: removed.then_some(modsignal_core::model::RemovalKind::Deleted),
                    seconds_up: up,
                    still_up: !removed,
                    restricted: None,
                },
            };
            (m, posted.plus_secs(up))
        })
        .collect();
    Roll {
        message_id,
        category,
        audience: (0..n as u64).map(|i| 10 + i).sum(),
        members,
        min_pages: 0,
    }
    .pages()
}
