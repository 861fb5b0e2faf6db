//! The in-memory store of flags that the API answers from.
//!
//! Every instance of modsignal feeds its own store from the output topic, which carries the
//! flags of *all* partitions (the Kafka deployment consumes it with a consumer group of its
//! own per instance). So every instance can answer any query, about any message, whichever
//! instance's engine owns that message's partition: nothing is forwarded between instances,
//! and an instance that restarts rebuilds its store by reading the topic again. Feeding the
//! store the same flag twice, or revisions out of order, gives the same store.
//!
//! What is kept: every distinct revision of each flag, sorted by revision, up to
//! [`FlagStore::max_revisions`] per flag. Past that cap the store thins a flag's history: it
//! always keeps the first revision, the newest, and the *milestones* (a revision whose
//! `raised` or `exposure.removed_at` differs from the revision before it, and the last
//! revision before `raised` changes, so the last raised state before a flag was lowered
//! survives). Among the other revisions it drops the one whose neighbours are closest in
//! time, so that what remains stays spread over the flag's life and a reach chart keeps its
//! shape. Only if a flag has more milestones than the cap does the oldest milestone after the
//! first revision go. Dropped revisions are counted ([`StoreStats::thinned_total`]); one that
//! arrives again (a replay of the topic) is taken in again and the flag is thinned once more.
//!
//! The number of flags itself is not capped: they are the record the API exists to serve,
//! and they grow with labelled messages, not with traffic. Memory is about the size of the
//! flags' JSON times the revisions kept.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use modsignal_core::event::{Category, Track};
use modsignal_core::{Flag, Ts};

use modsignal_core::Subject;

use crate::record::{self, FlagRecord, IngestError};

/// The default cap on revisions kept per flag.
pub const DEFAULT_MAX_REVISIONS: usize = 32;
/// The smallest cap: the first and the newest revision and room for milestones.
pub const MIN_MAX_REVISIONS: usize = 4;

/// Which revisions a reader may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Every revision of every flag.
    All,
    /// Only revisions that are raised: a flag never raised does not exist for this reader,
    /// and a flag lowered later shows its last raised revision.
    RaisedOnly,
}

/// What one ingestion changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingested {
    /// The first revision seen of a new flag.
    NewFlag,
    /// A new revision of a known flag (newer or older than those kept).
    NewRevision,
    /// This flag and revision were already stored: nothing changed.
    Duplicate,
}

/// Sizes and counters of the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub flags: u64,
    /// Flags with at least one raised revision kept.
    pub raised_flags: u64,
    pub revisions: u64,
    pub messages: u64,
    pub accounts: u64,
    pub ingested_total: u64,
    pub duplicates_total: u64,
    pub rejected_total: u64,
    pub thinned_total: u64,
}

/// A flag as one reader sees it: the newest revision visible to them, and whether that is the
/// flag's newest revision of all (a liaison officer may be shown the last raised revision of a
/// flag that was lowered later: then `current` is false).
#[derive(Clone, Debug)]
pub struct Shown {
    pub record: Arc<FlagRecord>,
    pub current: bool,
}

/// One flag with the revisions a reader may see, oldest first.
#[derive(Clone, Debug)]
pub struct History {
    pub shown: Shown,
    pub revisions: Vec<Arc<FlagRecord>>,
    /// Revisions dropped by thinning (see the module documentation).
    pub thinned: u64,
}

/// Filters of a flag list. Each applies to the revision shown to the reader; `from` is
/// inclusive and `to` exclusive, on the revision's `at`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListFilter {
    pub category: Option<Category>,
    pub track: Option<Track>,
    pub raised: Option<bool>,
    pub account: Option<String>,
    pub from: Option<Ts>,
    pub to: Option<Ts>,
}

/// Where a page of a list ends: the position of its last flag in the list's order (newest
/// `at` first, then `flag_id`). Clients treat its encoding as opaque.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    at: i64,
    flag_id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at, self.flag_id)
    }

    pub fn parse(text: &str) -> Option<Cursor> {
        let (at, id) = text.split_once('.')?;
        let at = at.parse().ok()?;
        let hex = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        hex.then(|| Cursor {
            at,
            flag_id: id.to_owned(),
        })
    }
}

/// One page of a flag list, newest first.
#[derive(Clone, Debug)]
pub struct Page {
    pub flags: Vec<Shown>,
    /// Set when more flags match after this page.
    pub next: Option<Cursor>,
}

/// The thread-safe store of flags; share it in an `Arc` between the feeder and the server.
pub struct FlagStore {
    inner: RwLock<Inner>,
    ready: AtomicBool,
    rejected: AtomicU64,
    max_revisions: usize,
}

/// A position in a list: newest `at` first, ties by flag id.
type Key = (Reverse<i64>, String);

#[derive(Default)]
struct Inner {
    flags: HashMap<String, Entry>,
    by_message: HashMap<String, Vec<String>>,
    by_account: HashMap<String, Vec<String>>,
    /// Accounts in the order first seen: a reader that maps pseudonyms back to accounts only
    /// needs to hash the ones added since it last looked.
    accounts: Vec<String>,
    /// Every flag by its newest revision's `at`.
    order_all: BTreeSet<Key>,
    /// Flags with a raised revision, by their newest raised revision's `at`.
    order_raised: BTreeSet<Key>,
    revisions: u64,
    ingested: u64,
    duplicates: u64,
    thinned: u64,
}

struct Entry {
    /// Sorted by revision, oldest first; never empty.
    revisions: Vec<Arc<FlagRecord>>,
    thinned: u64,
}

impl Entry {
    fn newest(&self) -> &Arc<FlagRecord> {
        self.revisions.last().expect("an entry holds at least one revision")
    }

    fn shown(&self, vis: Visibility) -> Option<&Arc<FlagRecord>> {
        match vis {
            Visibility::All => Some(self.newest()),
            Visibility::RaisedOnly => self.revisions.iter().rev().find(|r| r.raised),
        }
    }

    fn key(&self, vis: Visibility) -> Option<Key> {
        self.shown(vis).map(|r| (Reverse(r.at.millis()), r.flag_id.clone()))
    }

    fn history(&self, vis: Visibility) -> Option<History> {
        let shown = self.shown(vis)?.clone();
        let current = shown.revision == self.newest().revision;
        let revisions = self
            .revisions
            .iter()
            .filter(|r| vis == Visibility::All || r.raised)
            .cloned()
            .collect();
        Some(History {
            shown: Shown { record: shown, current },
            revisions,
            thinned: self.thinned,
        })
    }
}

impl Default for FlagStore {
    fn default() -> Self {
        FlagStore::new(DEFAULT_MAX_REVISIONS)
    }
}

impl FlagStore {
    /// A store keeping at most `max_revisions` revisions per flag (at least
    /// [`MIN_MAX_REVISIONS`]). It starts not ready.
    pub fn new(max_revisions: usize) -> FlagStore {
        FlagStore {
            inner: RwLock::new(Inner::default()),
            ready: AtomicBool::new(false),
            rejected: AtomicU64::new(0),
            max_revisions: max_revisions.max(MIN_MAX_REVISIONS),
        }
    }

    pub fn max_revisions(&self) -> usize {
        self.max_revisions
    }

    /// Marks the store ready to answer (`/readyz`): the owner sets it once the store has caught
    /// up with the flags written before it started (or once its own partitions are restored).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Stores a flag this process's engine wrote.
    pub fn ingest(&self, flag: &Flag) -> Result<Ingested, IngestError> {
        self.ingest_record(flag.clone())
    }

    /// Stores a flag read as JSON (a record of the output topic, a line of a flag file).
    pub fn ingest_json(&self, text: &str) -> Result<Ingested, IngestError> {
        match record::from_json(text) {
            Ok(record) => self.ingest_record(record),
            Err(e) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Stores one revision. Idempotent: the same flag id and revision twice changes nothing.
    pub fn ingest_record(&self, record: FlagRecord) -> Result<Ingested, IngestError> {
        if let Err(e) = record::validate(&record) {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        let mut inner = self.write();
        let inner = &mut *inner;
        let id = record.flag_id.clone();
        let Some(entry) = inner.flags.get_mut(&id) else {
            let entry = Entry {
                revisions: vec![Arc::new(record)],
                thinned: 0,
            };
            let first = entry.newest().clone();
            inner.order_all.extend(entry.key(Visibility::All));
            inner.order_raised.extend(entry.key(Visibility::RaisedOnly));
            inner
                .by_message
                .entry(first.message_id.clone())
                .or_default()
                .push(id.clone());
            let ids = inner.by_account.entry(first.account.clone()).or_insert_with(|| {
                inner.accounts.push(first.account.clone());
                Vec::new()
            });
            ids.push(id.clone());
            inner.flags.insert(id, entry);
            inner.revisions += 1;
            inner.ingested += 1;
            return Ok(Ingested::NewFlag);
        };
        // A flag id stands for one message, subject, account and category; a record that says
        // otherwise would corrupt the indexes, so it is refused.
        let first = &entry.revisions[0];
        if first.message_id != record.message_id
            || first.account != record.account
            || first.subject != record.subject
            || first.category != record.category
        {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(IngestError::Invalid {
                field: "flag_id",
                reason: "names another message, subject, account or category than its earlier revisions",
            });
        }
        let Err(pos) = entry.revisions.binary_search_by_key(&record.revision, |r| r.revision) else {
            inner.duplicates += 1;
            return Ok(Ingested::Duplicate);
        };
        let old_all = entry.key(Visibility::All);
        let old_raised = entry.key(Visibility::RaisedOnly);
        entry.revisions.insert(pos, Arc::new(record));
        let dropped = thin(&mut entry.revisions, self.max_revisions);
        entry.thinned += dropped;
        let (new_all, new_raised) = (entry.key(Visibility::All), entry.key(Visibility::RaisedOnly));
        for (old, new, set) in [
            (old_all, new_all, &mut inner.order_all),
            (old_raised, new_raised, &mut inner.order_raised),
        ] {
            if old != new {
                if let Some(old) = old {
                    set.remove(&old);
                }
                set.extend(new);
            }
        }
        inner.revisions = inner.revisions + 1 - dropped;
        inner.thinned += dropped;
        inner.ingested += 1;
        Ok(Ingested::NewRevision)
    }

    /// A page of flags, newest first, after `after` (exclusive), as `vis` sees them.
    pub fn list(&self, vis: Visibility, filter: &ListFilter, after: Option<&Cursor>, limit: usize) -> Page {
        let inner = self.read();
        let by_account: BTreeSet<Key>;
        let order = match (&filter.account, vis) {
            (Some(account), _) => {
                by_account = inner
                    .by_account
                    .get(account)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| inner.flags.get(id)?.key(vis))
                    .collect();
                &by_account
            }
            (None, Visibility::All) => &inner.order_all,
            (None, Visibility::RaisedOnly) => &inner.order_raised,
        };
        // The list starts after the cursor or at the first flag older than `to`, whichever
        // comes later in the order. A key with an empty id sorts before every flag of its time.
        let mut start = Bound::Unbounded;
        if let Some(to) = filter.to {
            start = Bound::Included((Reverse(to.millis().saturating_sub(1)), String::new()));
        }
        if let Some(c) = after {
            let key = (Reverse(c.at), c.flag_id.clone());
            let later = match &start {
                Bound::Included(k) => key >= *k,
                _ => true,
            };
            if later {
                start = Bound::Excluded(key);
            }
        }
        let mut flags = Vec::new();
        let mut next = None;
        for key in order.range((start, Bound::Unbounded)) {
            if filter.from.is_some_and(|from| key.0.0 < from.millis()) {
                break;
            }
            let Some(entry) = inner.flags.get(&key.1) else { continue };
            let Some(shown) = entry.shown(vis) else { continue };
            let matches = filter.category.is_none_or(|c| shown.category == c)
                && filter.track.is_none_or(|t| shown.track == t)
                && filter.raised.is_none_or(|r| shown.raised == r);
            if !matches {
                continue;
            }
            if flags.len() == limit {
                // One more flag matches: the page ends at the previous one.
                next = flags.last().map(|s: &Shown| Cursor {
                    at: s.record.at.millis(),
                    flag_id: s.record.flag_id.clone(),
                });
                break;
            }
            flags.push(Shown {
                record: shown.clone(),
                current: shown.revision == entry.newest().revision,
            });
        }
        Page { flags, next }
    }

    /// One flag with its revisions, or `None` if it is unknown or `vis` may not see it.
    pub fn flag(&self, vis: Visibility, flag_id: &str) -> Option<History> {
        self.read().flags.get(flag_id)?.history(vis)
    }

    /// Every flag of a message that `vis` may see: the author's first, then resharers by the
    /// audience they reached, largest first. Empty if there are none.
    pub fn message(&self, vis: Visibility, message_id: &str) -> Vec<History> {
        let inner = self.read();
        let mut out: Vec<History> = inner
            .by_message
            .get(message_id)
            .into_iter()
            .flatten()
            .filter_map(|id| inner.flags.get(id)?.history(vis))
            .collect();
        out.sort_by(|a, b| {
            let (a, b) = (&a.shown.record, &b.shown.record);
            (
                a.subject != Subject::Author,
                Reverse(a.reach.audience),
                &a.account,
                a.category,
            )
                .cmp(&(
                    b.subject != Subject::Author,
                    Reverse(b.reach.audience),
                    &b.account,
                    b.category,
                ))
        });
        out
    }

    /// The accounts first seen after the first `seen`, and how many accounts there are now.
    pub fn accounts_since(&self, seen: usize) -> (Vec<String>, usize) {
        let inner = self.read();
        (
            inner.accounts.get(seen..).unwrap_or_default().to_vec(),
            inner.accounts.len(),
        )
    }

    pub fn stats(&self) -> StoreStats {
        let inner = self.read();
        StoreStats {
            flags: inner.flags.len() as u64,
            raised_flags: inner.order_raised.len() as u64,
            revisions: inner.revisions,
            messages: inner.by_message.len() as u64,
            accounts: inner.accounts.len() as u64,
            ingested_total: inner.ingested,
            duplicates_total: inner.duplicates,
            rejected_total: self.rejected.load(Ordering::Relaxed),
            thinned_total: inner.thinned,
        }
    }

    // A panic while the lock was held cannot leave the store half-written in a way readers
    // would misread (each ingestion's changes are made after its checks), so a poisoned lock
    // is used as it is rather than taking the server down.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Drops revisions until at most `max` remain (see the module documentation) and returns how
/// many were dropped. `revisions` is sorted by revision and `max` is at least
/// [`MIN_MAX_REVISIONS`], so there is always a middle revision to drop.
fn thin(revisions: &mut Vec<Arc<FlagRecord>>, max: usize) -> u64 {
    let mut dropped = 0;
    while revisions.len() > max {
        let mut best: Option<(i64, usize)> = None;
        for i in 1..revisions.len() - 1 {
            let (prev, cur, next) = (&revisions[i - 1], &revisions[i], &revisions[i + 1]);
            let milestone = cur.raised != prev.raised
                || cur.exposure.removed_at != prev.exposure.removed_at
                || cur.raised != next.raised;
            if milestone {
                continue;
            }
            let gap = next.at.millis().saturating_sub(prev.at.millis());
            if best.is_none_or(|(g, _)| gap < g) {
                best = Some((gap, i));
            }
        }
        revisions.remove(best.map_or(1, |(_, i)| i));
        dropped += 1;
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAG: &str = r#"{"schema":"modsignal.flag/1","flag_id":"0123456789abcdef0123456789abcdef","revision":1,"message_id":"m1","subject":"author","account":"u1","category":"credible_threat","track":"robust","score":0.8,"raised":false,"reach":{"audience":200,"reshares":0,"quotes":0,"replies":0,"impressions":null,"depth":0},"exposure":{"posted_at":"2026-01-05T10:00:00.000Z","removed_at":null,"removed_by":null,"removal":null,"seconds_up":0,"still_up":true},"factors":[],"provision":"DPP guidelines para 12(1)","at":"2026-01-05T10:00:00.000Z"}"#;

    /// Revision `rev` of one flag, `rev` minutes after posting.
    fn rev(rev: u64, raised: bool, removed: bool) -> FlagRecord {
        let mut r = record::from_json(FLAG).unwrap();
        r.revision = rev;
        r.raised = raised;
        r.at = r.exposure.posted_at.plus_secs(60 * rev);
        r.reach.audience = 100 * rev;
        if removed {
            r.exposure.removed_at = Some(r.exposure.posted_at.plus_secs(60 * 8));
            r.exposure.removed_by = Some(modsignal_core::event::RemovedBy::Platform);
            r.exposure.removal = Some(modsignal_core::model::RemovalKind::Deleted);
            r.exposure.still_up = false;
        }
        r
    }

    fn kept(store: &FlagStore) -> Vec<u64> {
        let h = store.flag(Visibility::All, "0123456789abcdef0123456789abcdef").unwrap();
        h.revisions.iter().map(|r| r.revision).collect()
    }

    #[test]
    fn the_same_revision_twice_changes_nothing_and_order_does_not_matter() {
        let store = FlagStore::default();
        assert_eq!(store.ingest_record(rev(3, true, false)).unwrap(), Ingested::NewFlag);
        assert_eq!(
            store.ingest_record(rev(1, false, false)).unwrap(),
            Ingested::NewRevision
        );
        assert_eq!(store.ingest_record(rev(2, true, false)).unwrap(), Ingested::NewRevision);
        assert_eq!(store.ingest_record(rev(2, true, false)).unwrap(), Ingested::Duplicate);
        assert_eq!(kept(&store), [1, 2, 3]);
        let s = store.stats();
        assert_eq!(
            (s.flags, s.revisions, s.ingested_total, s.duplicates_total),
            (1, 3, 3, 1)
        );
        let page = store.list(Visibility::All, &ListFilter::default(), None, 10);
        assert_eq!(page.flags.len(), 1);
        assert_eq!(page.flags[0].record.revision, 3, "the newest revision is the highest");
    }

    #[test]
    fn thinning_keeps_the_first_the_newest_and_every_milestone() {
        let store = FlagStore::new(6);
        // Not raised at 1-3, raised from 4, removed from 8.
        for r in 1..=10 {
            store.ingest_record(rev(r, r >= 4, r >= 8)).unwrap();
        }
        let kept = kept(&store);
        assert_eq!(kept.len(), 6, "{kept:?}");
        for must in [1, 3, 4, 8, 10] {
            assert!(
                kept.contains(&must),
                "revision {must} is a milestone or an end: {kept:?}"
            );
        }
        let s = store.stats();
        assert_eq!((s.revisions, s.thinned_total, s.ingested_total), (6, 4, 10));
        assert_eq!(
            store
                .flag(Visibility::All, "0123456789abcdef0123456789abcdef")
                .unwrap()
                .thinned,
            4
        );
    }

    #[test]
    fn thinning_spreads_what_it_keeps_over_time() {
        let store = FlagStore::new(5);
        for r in 1..=40 {
            store.ingest_record(rev(r, true, false)).unwrap();
        }
        let kept = kept(&store);
        assert_eq!(kept.first(), Some(&1));
        assert_eq!(kept.last(), Some(&40));
        // Dropping the revision whose neighbours are closest leaves no two kept revisions
        // much closer than the others.
        let gaps: Vec<u64> = kept.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().max().unwrap() <= &(3 * gaps.iter().min().unwrap()),
            "{kept:?}"
        );
    }

    #[test]
    fn a_liaison_reader_sees_the_last_raised_revision_of_a_lowered_flag() {
        let store = FlagStore::default();
        store.ingest_record(rev(1, true, false)).unwrap();
        store.ingest_record(rev(2, false, false)).unwrap();
        let h = store
            .flag(Visibility::RaisedOnly, "0123456789abcdef0123456789abcdef")
            .unwrap();
        assert_eq!(h.shown.record.revision, 1);
        assert!(!h.shown.current);
        assert_eq!(h.revisions.len(), 1);
        let listed = store.list(Visibility::RaisedOnly, &ListFilter::default(), None, 10);
        assert_eq!(listed.flags[0].record.revision, 1);
        let all = store.flag(Visibility::All, "0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!((all.shown.record.revision, all.shown.current), (2, true));

        let never = FlagStore::default();
        never.ingest_record(rev(1, false, false)).unwrap();
        assert!(
            never
                .flag(Visibility::RaisedOnly, "0123456789abcdef0123456789abcdef")
                .is_none()
        );
        assert!(never.message(Visibility::RaisedOnly, "m1").is_empty());
        assert_eq!(never.message(Visibility::All, "m1").len(), 1);
    }

    #[test]
    fn a_revision_that_contradicts_its_flag_id_is_refused() {
        let store = FlagStore::default();
        store.ingest_record(rev(1, true, false)).unwrap();
        let mut other = rev(2, true, false);
        other.account = "u2".into();
        assert!(matches!(
            store.ingest_record(other),
            Err(IngestError::Invalid { field: "flag_id", .. })
        ));
        assert_eq!(store.stats().rejected_total, 1);
        assert_eq!(kept(&store), [1]);
    }

    #[test]
    fn cursors_round_trip_and_refuse_what_they_did_not_write() {
        let c = Cursor {
            at: 1_767_607_200_000,
            flag_id: "0123456789abcdef0123456789abcdef".into(),
        };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        for bad in [
            "",
            "abc",
            "12.xyz",
            "x.0123456789abcdef0123456789abcdef",
            "12.0123456789ABCDEF0123456789abcdef",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn readiness_is_the_owners_to_set() {
        let store = FlagStore::default();
        assert!(!store.is_ready());
        store.set_ready(true);
        assert!(store.is_ready());
    }
}
