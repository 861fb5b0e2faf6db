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
//!
//! Resharer cohorts ([`modsignal_core::Cohort`], written to the same output as flags) are kept
//! page by page: for each (`cohort_id`, `page`) the highest revision seen, whole (a page is at
//! most about 512 KiB), so an older page arriving later changes nothing and the same page twice
//! is a duplicate. They are indexed by message, so that a message's view finds them. A cohort's
//! pages are written one by one, so for a while they may be of different revisions: the store
//! says whether they are all of one ([`CohortState::complete`]) and, when listing members,
//! takes each account from the newest page that lists it, so that no resharer is listed twice.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use modsignal_core::cohort::{Member, Summary};
use modsignal_core::event::{Category, Track};
use modsignal_core::{Cohort, Flag, Subject, Ts};

use crate::record::{self, FlagRecord, IngestError, Record};

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
    /// This flag and revision, or this cohort page and revision, were already stored: nothing
    /// changed.
    Duplicate,
    /// The first page seen of this number of this cohort.
    NewCohortPage,
    /// A newer revision of a cohort page kept, which replaces it.
    NewCohortRevision,
    /// An older revision of a cohort page than the one kept: nothing changed.
    StaleCohortPage,
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
    /// Records refused, flags and cohort pages alike.
    pub rejected_total: u64,
    pub thinned_total: u64,
    /// Resharer cohorts, and the pages kept of them (one revision each).
    pub cohorts: u64,
    pub cohort_pages: u64,
    /// Cohort pages stored (new, or newer than the one kept), and those that changed nothing
    /// (the same revision again, or an older one).
    pub cohort_pages_ingested_total: u64,
    pub cohort_pages_ignored_total: u64,
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

/// A resharer cohort as the store holds it: the state of its newest page, and whether every
/// page is of that state.
#[derive(Clone, Debug)]
pub struct CohortState {
    pub cohort_id: String,
    pub message_id: String,
    pub category: Category,
    pub track: Track,
    /// The highest revision among its pages, whose summary and time these are.
    pub revision: u64,
    /// How many pages the cohort has: the most any of its pages says.
    pub pages: u32,
    /// Whether every page is kept, all of one revision: until then (the pages of a new state
    /// arrive one by one) its members are a mix of two states, and some may be missing.
    pub complete: bool,
    pub summary: Summary,
    pub at: Ts,
}

/// Where a page of a message's resharers ends: the category of its last member's cohort, the
/// place that member had (a hint: pages are replaced by newer revisions) and its flag id. It
/// names the member by flag id rather than account so that a pseudonymised caller is never
/// handed an account id; clients treat its encoding as opaque.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberCursor {
    category: Category,
    page: u32,
    index: u32,
    flag_id: String,
}

impl MemberCursor {
    pub fn encode(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.category.index(),
            self.page,
            self.index,
            self.flag_id
        )
    }

    pub fn parse(text: &str) -> Option<MemberCursor> {
        let mut parts = text.splitn(4, '.');
        let category = *Category::ALL.get(parts.next()?.parse::<usize>().ok()?)?;
        let page = parts.next()?.parse().ok()?;
        let index = parts.next()?.parse().ok()?;
        let id = parts.next()?;
        let hex = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        hex.then(|| MemberCursor {
            category,
            page,
            index,
            flag_id: id.to_owned(),
        })
    }

    /// The category of the cohort the cursor is in.
    pub fn category(&self) -> Category {
        self.category
    }
}

/// Why a resharer cursor cannot be followed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemberCursorError {
    #[error("the cursor is not in a cohort of this message")]
    NoCohort,
    #[error("the resharer the cursor points after is no longer in the cohort; start again without a cursor")]
    NoMember,
}

/// One page of a message's resharers: every cohort that matched, each with the members of this
/// page (in account order; cohorts in category order).
#[derive(Clone, Debug)]
pub struct ResharerPage {
    pub cohorts: Vec<(CohortState, Vec<Member>)>,
    /// Set when more members follow this page.
    pub next: Option<MemberCursor>,
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
    /// Resharer cohorts by id, and their ids by message.
    cohorts: HashMap<String, CohortEntry>,
    cohorts_by_message: HashMap<String, Vec<String>>,
    cohort_pages: u64,
    cohort_ingested: u64,
    cohort_ignored: u64,
}

/// The pages kept of one cohort, each the highest revision seen of its number; never empty.
struct CohortEntry {
    pages: BTreeMap<u32, Arc<Cohort>>,
}

impl CohortEntry {
    fn newest(&self) -> &Arc<Cohort> {
        self.pages
            .values()
            .max_by_key(|p| p.revision)
            .expect("a cohort entry holds at least one page")
    }

    fn state(&self) -> CohortState {
        let newest = self.newest();
        let pages = self.pages.values().map(|p| p.pages).max().unwrap_or(newest.pages);
        let complete = self.pages.len() == pages as usize
            && self.pages.keys().copied().eq(0..pages)
            && self
                .pages
                .values()
                .all(|p| p.revision == newest.revision && p.pages == pages);
        CohortState {
            cohort_id: newest.cohort_id.clone(),
            message_id: newest.message_id.clone(),
            category: newest.category,
            track: newest.track,
            revision: newest.revision,
            pages,
            complete,
            summary: newest.summary.clone(),
            at: newest.at,
        }
    }

    /// The account of the member a cursor points after: at the cursor's place if it is still
    /// there, else wherever it is now.
    fn account_of(&self, c: &MemberCursor) -> Option<&str> {
        let at_hint = self
            .pages
            .get(&c.page)
            .and_then(|p| p.members.get(c.index as usize))
            .filter(|m| m.flag_id == c.flag_id);
        at_hint
            .or_else(|| {
                self.pages
                    .values()
                    .flat_map(|p| p.members.iter())
                    .find(|m| m.flag_id == c.flag_id)
            })
            .map(|m| m.account.as_str())
    }

    /// The members after `after` (an account), in account order, each once: from the newest
    /// page that lists it.
    fn members_after<'a>(&'a self, after: Option<&str>) -> Merged<'a> {
        let mut heap = BinaryHeap::new();
        for (&number, page) in &self.pages {
            let start = after.map_or(0, |a| page.members.partition_point(|m| m.account.as_str() <= a));
            if let Some(m) = page.members.get(start) {
                heap.push(Reverse((m.account.as_str(), Reverse(page.revision), number, start)));
            }
        }
        Merged {
            entry: self,
            heap,
            last: None,
        }
    }
}

/// The next member of one page in a merge: its account, its page's revision (the newest first
/// among equal accounts), the page's number and the member's place on it.
type Head<'a> = Reverse<(&'a str, Reverse<u64>, u32, usize)>;

/// A merge of a cohort's pages by account, newest revision first for an account listed twice.
struct Merged<'a> {
    entry: &'a CohortEntry,
    heap: BinaryHeap<Head<'a>>,
    last: Option<&'a str>,
}

impl<'a> Iterator for Merged<'a> {
    /// A member, with its page number and its place on that page.
    type Item = (u32, usize, &'a Member);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(Reverse((account, revision, number, index))) = self.heap.pop() {
            let page = &self.entry.pages[&number];
            if let Some(next) = page.members.get(index + 1) {
                self.heap
                    .push(Reverse((next.account.as_str(), revision, number, index + 1)));
            }
            if self.last == Some(account) {
                continue;
            }
            self.last = Some(account);
            return Some((number, index, &page.members[index]));
        }
        None
    }
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

    /// Stores a record read as JSON (a record of the output topic, a line of a flag file): a
    /// flag or a cohort page, told apart by its `schema`.
    pub fn ingest_json(&self, text: &str) -> Result<Ingested, IngestError> {
        match record::record_from_json(text) {
            Ok(Record::Flag(flag)) => self.ingest_record(flag),
            Ok(Record::Cohort(page)) => self.ingest_cohort_page(Arc::new(page)),
            Err(e) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Stores a page of a resharer cohort this process's engine wrote.
    pub fn ingest_cohort(&self, page: &Cohort) -> Result<Ingested, IngestError> {
        self.ingest_cohort_page(Arc::new(page.clone()))
    }

    /// Keeps the page if it is the first or the newest revision seen of its (`cohort_id`,
    /// `page`). Idempotent and order-free: the same page twice, or an older revision after a
    /// newer one, changes nothing.
    fn ingest_cohort_page(&self, page: Arc<Cohort>) -> Result<Ingested, IngestError> {
        if let Err(e) = record::validate_cohort(&page) {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        let mut inner = self.write();
        let inner = &mut *inner;
        // `validate_cohort` checked that the id is the hash of the message and category, so
        // every page under one id belongs to the same message and category.
        let Some(entry) = inner.cohorts.get_mut(&page.cohort_id) else {
            inner
                .cohorts_by_message
                .entry(page.message_id.clone())
                .or_default()
                .push(page.cohort_id.clone());
            let id = page.cohort_id.clone();
            inner.cohorts.insert(
                id,
                CohortEntry {
                    pages: BTreeMap::from([(page.page, page)]),
                },
            );
            inner.cohort_pages += 1;
            inner.cohort_ingested += 1;
            return Ok(Ingested::NewCohortPage);
        };
        let outcome = match entry.pages.get(&page.page) {
            None => {
                inner.cohort_pages += 1;
                Ingested::NewCohortPage
            }
            Some(kept) if kept.revision < page.revision => Ingested::NewCohortRevision,
            Some(kept) if kept.revision == page.revision => Ingested::Duplicate,
            Some(_) => Ingested::StaleCohortPage,
        };
        if matches!(outcome, Ingested::NewCohortPage | Ingested::NewCohortRevision) {
            entry.pages.insert(page.page, page);
            inner.cohort_ingested += 1;
        } else {
            inner.cohort_ignored += 1;
        }
        Ok(outcome)
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

    /// The resharer cohorts of a message that `vis` may see, in category order. A reader who
    /// sees raised flags only sees the cohort of a category in which something of the message
    /// is raised (a flag, or a member): a category where nothing is raised does not exist for
    /// them, as a flag never raised does not.
    pub fn cohorts(&self, vis: Visibility, message_id: &str) -> Vec<CohortState> {
        let inner = self.read();
        inner
            .visible_cohorts(vis, message_id)
            .into_iter()
            .map(CohortEntry::state)
            .collect()
    }

    /// Whether `vis` may see anything of a message: a flag or a cohort.
    pub fn knows_message(&self, vis: Visibility, message_id: &str) -> bool {
        let inner = self.read();
        inner.message_visible(vis, message_id)
    }

    /// A page of a message's resharers, as `vis` sees them: the cohorts of `category` (or of
    /// every category), and at most `limit` members after `after`, in category then account
    /// order; a reader who sees raised flags only gets raised members only. `Ok(None)` when
    /// the reader may see nothing of the message.
    pub fn resharers(
        &self,
        vis: Visibility,
        message_id: &str,
        category: Option<Category>,
        after: Option<&MemberCursor>,
        limit: usize,
    ) -> Result<Option<ResharerPage>, MemberCursorError> {
        let inner = self.read();
        if !inner.message_visible(vis, message_id) {
            return Ok(None);
        }
        let entries: Vec<&CohortEntry> = inner
            .visible_cohorts(vis, message_id)
            .into_iter()
            .filter(|e| category.is_none_or(|c| e.newest().category == c))
            .collect();
        // Where the list starts: after the cursor's member in its cohort.
        let mut start: Option<(Category, &str)> = None;
        if let Some(c) = after {
            let entry = entries
                .iter()
                .find(|e| e.newest().category == c.category)
                .ok_or(MemberCursorError::NoCohort)?;
            start = Some((c.category, entry.account_of(c).ok_or(MemberCursorError::NoMember)?));
        }
        let mut cohorts = Vec::with_capacity(entries.len());
        let mut next = None;
        let mut taken = 0usize;
        for entry in entries {
            let state = entry.state();
            let mut members = Vec::new();
            let skip = start.is_some_and(|(c, _)| state.category < c);
            if !skip && next.is_none() {
                let after = start.filter(|(c, _)| *c == state.category).map(|(_, a)| a);
                for (page, index, m) in entry.members_after(after) {
                    if vis == Visibility::RaisedOnly && !m.raised {
                        continue;
                    }
                    if taken == limit {
                        // One more member follows: the page ends at the previous one.
                        next = Some(());
                        break;
                    }
                    members.push((page, index, m));
                    taken += 1;
                }
            }
            cohorts.push((state, members));
        }
        // The cursor names the last member given, wherever it was.
        let next = next.and_then(|()| {
            cohorts.iter().rev().find_map(|(state, members)| {
                members.last().map(|&(page, index, m)| MemberCursor {
                    category: state.category,
                    page,
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    flag_id: m.flag_id.clone(),
                })
            })
        });
        Ok(Some(ResharerPage {
            cohorts: cohorts
                .into_iter()
                .map(|(state, members)| (state, members.into_iter().map(|(_, _, m)| m.clone()).collect()))
                .collect(),
            next,
        }))
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
            cohorts: inner.cohorts.len() as u64,
            cohort_pages: inner.cohort_pages,
            cohort_pages_ingested_total: inner.cohort_ingested,
            cohort_pages_ignored_total: inner.cohort_ignored,
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

impl Inner {
    /// The cohorts of a message that `vis` may see (see [`FlagStore::cohorts`]), in category
    /// order.
    fn visible_cohorts(&self, vis: Visibility, message_id: &str) -> Vec<&CohortEntry> {
        let mut out: Vec<&CohortEntry> = self
            .cohorts_by_message
            .get(message_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.cohorts.get(id))
            .filter(|e| match vis {
                Visibility::All => true,
                Visibility::RaisedOnly => {
                    let category = e.newest().category;
                    e.pages.values().any(|p| p.members.iter().any(|m| m.raised))
                        || self
                            .flags_of(message_id)
                            .any(|f| f.revisions[0].category == category && f.shown(Visibility::RaisedOnly).is_some())
                }
            })
            .collect();
        out.sort_by_key(|e| e.newest().category);
        out
    }

    fn flags_of(&self, message_id: &str) -> impl Iterator<Item = &Entry> {
        self.by_message
            .get(message_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.flags.get(id))
    }

    fn message_visible(&self, vis: Visibility, message_id: &str) -> bool {
        self.flags_of(message_id).any(|f| f.shown(vis).is_some()) || !self.visible_cohorts(vis, message_id).is_empty()
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

    /// A cohort of `n` resharers of m1 (`u00000`…), every `raised_every`-th raised (none if
    /// more than `n`), each member at `revision`.
    fn cohort(n: usize, revision: u64, raised_every: usize, category: Category) -> Vec<Cohort> {
        cohort_of(0..n, revision, raised_every, category)
    }

    fn cohort_of(
        accounts: std::ops::Range<usize>,
        revision: u64,
        raised_every: usize,
        category: Category,
    ) -> Vec<Cohort> {
        let n = accounts.len();
        use modsignal_core::cohort::Roll;
        use modsignal_core::flag::{Exposure, Reach, flag_id};
        let members = accounts
            .map(|i| {
                let account = format!("u{i:05}");
                let m = Member {
                    flag_id: flag_id("m1", Subject::Resharer, &account, category),
                    account,
                    revision,
                    score: 0.25,
                    raised: (i + 1) % raised_every == 0,
                    reach: Reach {
                        audience: 10,
                        reshares: 0,
                        quotes: 0,
                        replies: 0,
                        impressions: None,
                        depth: 1,
                    },
                    exposure: Exposure {
                        posted_at: Ts(1_000),
                        removed_at: None,
                        removed_by: None,
                        removal: None,
                        seconds_up: i as u64,
                        still_up: true,
                        restricted: None,
                    },
                };
                (m, Ts(1_000 + i as i64 * 1000))
            })
            .collect();
        Roll {
            message_id: "m1",
            category,
            audience: 10 * n as u64,
            members,
            min_pages: 0,
        }
        .pages()
    }

    /// Every member `vis` may see of m1's cohorts, following cursors, with pages of `limit`.
    fn all_members(store: &FlagStore, vis: Visibility, category: Option<Category>, limit: usize) -> Vec<Member> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .resharers(vis, "m1", category, cursor.as_ref(), limit)
                .unwrap()
                .expect("m1 is known");
            let n: usize = page.cohorts.iter().map(|(_, m)| m.len()).sum();
            assert!(n <= limit);
            out.extend(page.cohorts.into_iter().flat_map(|(_, m)| m));
            match page.next {
                Some(c) => cursor = Some(MemberCursor::parse(&c.encode()).unwrap()),
                None => return out,
            }
        }
    }

    #[test]
    fn cohort_pages_keep_the_newest_revision_whatever_the_order() {
        let old = cohort(2500, 1, 7, Category::CredibleThreat);
        let new = cohort(2500, 2, 7, Category::CredibleThreat);
        assert_eq!(new.len(), 3);
        let forward = FlagStore::default();
        for p in old.iter().chain(&new) {
            forward.ingest_cohort(p).unwrap();
        }
        let backward = FlagStore::default();
        let mut outcomes = Vec::new();
        for p in new.iter().rev().chain(old.iter().rev()).chain(&new) {
            outcomes.push(backward.ingest_json(&p.to_json()).unwrap());
        }
        assert_eq!(outcomes[..3], [Ingested::NewCohortPage; 3]);
        assert_eq!(outcomes[3..6], [Ingested::StaleCohortPage; 3]);
        assert_eq!(outcomes[6..], [Ingested::Duplicate; 3]);
        for store in [&forward, &backward] {
            let states = store.cohorts(Visibility::All, "m1");
            assert_eq!(states.len(), 1);
            let s = &states[0];
            assert_eq!((s.revision, s.pages, s.complete), (new[0].revision, 3, true));
            assert_eq!(s.summary, new[0].summary);
            let members = all_members(store, Visibility::All, None, 1000);
            let expected: Vec<Member> = new.iter().flat_map(|p| p.members.clone()).collect();
            assert_eq!(members, expected);
            let stats = store.stats();
            assert_eq!((stats.cohorts, stats.cohort_pages, stats.flags), (1, 3, 0));
        }
        let s = backward.stats();
        assert_eq!((s.cohort_pages_ingested_total, s.cohort_pages_ignored_total), (3, 6));
    }

    #[test]
    fn members_page_across_cohort_pages_and_categories() {
        let store = FlagStore::default();
        for p in cohort(2500, 1, 7, Category::CredibleThreat).iter().chain(&cohort(
            120,
            1,
            7,
            Category::CommunicationsOffence,
        )) {
            store.ingest_cohort(p).unwrap();
        }
        let whole = all_members(&store, Visibility::All, None, 1000);
        assert_eq!(whole.len(), 2620);
        for limit in [1000, 50, 7] {
            assert_eq!(
                all_members(&store, Visibility::All, None, limit),
                whole,
                "pages of {limit}"
            );
        }
        let threats = all_members(&store, Visibility::All, Some(Category::CredibleThreat), 50);
        assert_eq!(threats[..], whole[..2500]);
        assert!(threats.windows(2).all(|w| w[0].account < w[1].account));
        // A reader of raised flags sees raised members only, in the same order.
        let raised = all_members(&store, Visibility::RaisedOnly, None, 50);
        let expected: Vec<Member> = whole.iter().filter(|m| m.raised).cloned().collect();
        assert_eq!(raised, expected);
        // A cursor of another message's cohort, or of a member no cohort has, is refused.
        let page = store.resharers(Visibility::All, "m1", None, None, 10).unwrap().unwrap();
        let c = page.next.unwrap();
        assert_eq!(
            store
                .resharers(Visibility::All, "m1", Some(Category::CourtOrderBreach), Some(&c), 10)
                .unwrap_err(),
            MemberCursorError::NoCohort
        );
        let gone = MemberCursor::parse(&format!("0.0.3.{}", "0".repeat(32))).unwrap();
        assert_eq!(
            store
                .resharers(Visibility::All, "m1", None, Some(&gone), 10)
                .unwrap_err(),
            MemberCursorError::NoMember
        );
        assert!(
            store
                .resharers(Visibility::All, "m2", None, None, 10)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn pages_of_two_revisions_list_each_resharer_once_and_say_so() {
        // The cohort grows from u00500-u01999 to u00000-u02499, so its pages' boundaries move:
        // the new page 1 (u01000-u01999) overlaps the old page 0 (u00500-u01499).
        let store = FlagStore::default();
        let old = cohort_of(500..2000, 1, 7, Category::CredibleThreat);
        let new = cohort_of(0..2500, 2, 7, Category::CredibleThreat);
        for p in &old {
            store.ingest_cohort(p).unwrap();
        }
        store.ingest_cohort(&new[1]).unwrap();
        let s = &store.cohorts(Visibility::All, "m1")[0];
        assert_eq!((s.revision, s.pages, s.complete), (new[0].revision, 3, false));
        assert_eq!(s.summary, new[0].summary, "the summary is the newest page's");
        let members = all_members(&store, Visibility::All, None, 50);
        assert!(
            members.windows(2).all(|w| w[0].account < w[1].account),
            "each account once"
        );
        assert_eq!(members.len(), 1500);
        assert_eq!(members[0].account, "u00500");
        // An account on both pages is taken from the newer one.
        assert!(
            members
                .iter()
                .all(|m| m.revision == u64::from(m.account.as_str() >= "u01000") + 1)
        );
        store.ingest_cohort(&new[0]).unwrap();
        store.ingest_cohort(&new[2]).unwrap();
        assert!(store.cohorts(Visibility::All, "m1")[0].complete);
        let members = all_members(&store, Visibility::All, None, 50);
        assert_eq!(members, new.iter().flat_map(|p| p.members.clone()).collect::<Vec<_>>());
    }

    #[test]
    fn a_category_with_nothing_raised_is_unseen_by_a_reader_of_raised_flags() {
        let store = FlagStore::default();
        // No member raised: a liaison reader sees nothing of the message.
        for p in cohort(30, 1, usize::MAX, Category::CommunicationsOffence) {
            store.ingest_cohort(&p).unwrap();
        }
        assert!(store.cohorts(Visibility::RaisedOnly, "m1").is_empty());
        assert!(!store.knows_message(Visibility::RaisedOnly, "m1"));
        assert!(
            store
                .resharers(Visibility::RaisedOnly, "m1", None, None, 10)
                .unwrap()
                .is_none()
        );
        assert_eq!(store.cohorts(Visibility::All, "m1").len(), 1);
        // A raised author flag in that category shows its cohort's summary, with no members.
        let mut author = rev(1, true, false);
        author.category = Category::CommunicationsOffence;
        author.track = Track::HighThreshold;
        store.ingest_record(author).unwrap();
        let page = store
            .resharers(Visibility::RaisedOnly, "m1", None, None, 10)
            .unwrap()
            .unwrap();
        assert_eq!(page.cohorts.len(), 1);
        assert!(page.cohorts[0].1.is_empty());
        assert_eq!(page.cohorts[0].0.summary.resharers, 30);
    }

    #[test]
    fn a_cohort_page_that_breaks_its_contract_is_refused() {
        let good = cohort(3, 1, 2, Category::CredibleThreat).remove(0);
        let mut other_message = good.clone();
        other_message.message_id = "m2".into();
        let mut unsorted = good.clone();
        unsorted.members.swap(0, 1);
        let mut past_the_end = good.clone();
        past_the_end.page = 1;
        let mut wrong_track = good.clone();
        wrong_track.track = Track::HighThreshold;
        let store = FlagStore::default();
        for (bad, field) in [
            (other_message, "cohort_id"),
            (unsorted, "members"),
            (past_the_end, "page"),
            (wrong_track, "track"),
        ] {
            match store.ingest_cohort(&bad) {
                Err(IngestError::InvalidCohort { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert_eq!(store.stats().rejected_total, 4);
        assert_eq!(store.stats().cohorts, 0);
    }

    #[test]
    fn json_records_are_told_apart_by_their_schema_wherever_it_is() {
        let store = FlagStore::default();
        let page = cohort(3, 1, 2, Category::CredibleThreat).remove(0);
        // The schema last rather than first: read through the probe, not the prefix.
        let mut value: serde_json::Value = serde_json::from_str(&page.to_json()).unwrap();
        let schema = value.as_object_mut().unwrap().remove("schema").unwrap();
        value.as_object_mut().unwrap().insert("schema".into(), schema);
        assert_eq!(store.ingest_json(&value.to_string()).unwrap(), Ingested::NewCohortPage);
        assert_eq!(store.ingest_json(FLAG).unwrap(), Ingested::NewFlag);
        assert!(matches!(
            store.ingest_json(r#"{"schema":"modsignal.cohort/2","x":1}"#),
            Err(IngestError::Schema(s)) if s == "modsignal.cohort/2"
        ));
        assert!(matches!(store.ingest_json(r#"{"x":1}"#), Err(IngestError::Schema(_))));
        assert!(matches!(store.ingest_json("[1]"), Err(IngestError::Json(_))));
        // A cohort's schema on a flag's fields is a cohort that does not parse.
        let flag_as_cohort = FLAG.replace("modsignal.flag/1", "modsignal.cohort/1");
        assert!(matches!(store.ingest_json(&flag_as_cohort), Err(IngestError::Json(_))));
        assert_eq!(store.stats().rejected_total, 4);
    }

    #[test]
    fn member_cursors_round_trip_and_refuse_what_they_did_not_write() {
        let c = MemberCursor {
            category: Category::CommunicationsOffence,
            page: 2,
            index: 999,
            flag_id: "0123456789abcdef0123456789abcdef".into(),
        };
        assert_eq!(c.encode(), "3.2.999.0123456789abcdef0123456789abcdef");
        assert_eq!(MemberCursor::parse(&c.encode()), Some(c));
        for bad in [
            "",
            "4.0.0.0123456789abcdef0123456789abcdef",
            "0.0.0123456789abcdef0123456789abcdef",
            "0.x.0.0123456789abcdef0123456789abcdef",
            "0.0.0.0123456789ABCDEF0123456789abcdef",
            "12.0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(MemberCursor::parse(bad), None, "{bad}");
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
