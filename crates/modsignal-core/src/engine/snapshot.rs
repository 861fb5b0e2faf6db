//! Snapshots: an engine's whole state as bytes, and an engine back from them.
//!
//! The adapters keep a partition's state safe this way: they write a snapshot with the input
//! offset it reflects (to local disk, to a compacted changelog topic), and a new owner of the
//! partition restores it and applies only the records after that offset, instead of replaying
//! the partition from its beginning. Because every update is idempotent and commutative, an
//! engine restored from a snapshot and fed the rest of the input reaches exactly the state,
//! revisions included, of an engine that never stopped.
//!
//! The format is [postcard](https://docs.rs/postcard) of a private mirror of the engine's
//! fields in a [`crate::frame`] with a format version and, as its header, a fingerprint of the
//! policy: a snapshot
//! taken under other weights or horizons would not match what the policy in force computes, so
//! it is refused and the caller falls back to a replay. Hash indexes are not written; they are
//! rebuilt on restore. The policy itself is not written: it comes from configuration.

use std::collections::BTreeSet;

use hashbrown::{HashMap, HashSet};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use super::{Engine, Hot, Past, ReportRec};
use crate::exposure::Change;
use crate::frame::{self, FrameError};
use crate::policy::Policy;
use crate::store::{Message, Reshare, Slab, Store, User, Users};

/// Bumped whenever the engine's state changes shape; older snapshots are then refused.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// The first bytes of every snapshot. The frame's checksum covers the body, so a torn or
/// damaged snapshot is refused rather than restored wrong.
const MAGIC: &[u8; 8] = b"modsnap\0";

/// Why a snapshot could not be restored. The caller rebuilds the state another way.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a modsignal snapshot")]
    NotASnapshot,
    #[error("snapshot format {found}; this build reads format {SNAPSHOT_FORMAT}")]
    Format { found: u32 },
    #[error("the snapshot was taken under another policy")]
    Policy,
    #[error("the snapshot is damaged: {0}")]
    Damaged(String),
}

impl From<FrameError> for SnapshotError {
    fn from(e: FrameError) -> SnapshotError {
        match e {
            FrameError::NotAFrame => SnapshotError::NotASnapshot,
            FrameError::Format { found, .. } => SnapshotError::Format { found },
            FrameError::Checksum => SnapshotError::Damaged("checksum mismatch".into()),
        }
    }
}

/// A fingerprint of everything in a policy, so that a snapshot is restored only under the
/// policy it was taken with.
pub fn policy_fingerprint(policy: &Policy) -> u64 {
    let text = serde_json::to_string(policy).expect("a policy serializes");
    xxh3_64(text.as_bytes())
}

/// Slab contents in slot order, with the free list.
struct SlabRef<'a, T>(&'a Slab<T>);

impl<T: Serialize> Serialize for SlabRef<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeSeq, SerializeTuple};
        struct Items<'b, T>(&'b Slab<T>);
        impl<T: Serialize> Serialize for Items<'_, T> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let (items, _) = self.0.parts();
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
        let (_, free) = self.0.parts();
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&Items(self.0))?;
        t.serialize_element(free)?;
        t.end()
    }
}

/// The engine's fields, borrowed, in the order [`Owned`] reads them back.
#[derive(Serialize)]
struct Borrowed<'a> {
    msgs: SlabRef<'a, Message>,
    rss: SlabRef<'a, Reshare>,
    users: &'a [User],
    arena: &'a str,
    removals: &'a HashMap<u64, Vec<Change>>,
    accounts: &'a HashMap<u32, Vec<Change>>,
    reports: &'a HashMap<u32, Vec<ReportRec>>,
    hot: &'a [Hot],
    conduct: &'a HashMap<u32, Vec<u32>>,
    targets: &'a HashMap<u64, Vec<u32>>,
    waiting_via: &'a HashMap<u64, Vec<u32>>,
    pending_via: &'a HashMap<u32, u64>,
    timers: &'a BTreeSet<(i64, u32, u32)>,
    queue: &'a [u32],
    stale: &'a [u32],
    max_at: i64,
    wm_floor: i64,
    next_sweep: i64,
    hot_free: &'a [u32],
    past_conduct: &'a HashMap<u32, Past>,
    past_targets: &'a HashMap<u64, Past>,
    evicted: u64,
    seen_ids: &'a [HashSet<u64>; 2],
    seen_since: i64,
}

#[derive(Deserialize)]
struct Owned {
    msgs: (Vec<Message>, Vec<u32>),
    rss: (Vec<Reshare>, Vec<u32>),
    users: Vec<User>,
    arena: String,
    removals: HashMap<u64, Vec<Change>>,
    accounts: HashMap<u32, Vec<Change>>,
    reports: HashMap<u32, Vec<ReportRec>>,
    hot: Vec<Hot>,
    conduct: HashMap<u32, Vec<u32>>,
    targets: HashMap<u64, Vec<u32>>,
    waiting_via: HashMap<u64, Vec<u32>>,
    pending_via: HashMap<u32, u64>,
    timers: BTreeSet<(i64, u32, u32)>,
    queue: Vec<u32>,
    stale: Vec<u32>,
    max_at: i64,
    wm_floor: i64,
    next_sweep: i64,
    hot_free: Vec<u32>,
    past_conduct: HashMap<u32, Past>,
    past_targets: HashMap<u64, Past>,
    evicted: u64,
    seen_ids: [HashSet<u64>; 2],
    seen_since: i64,
}

impl Engine {
    /// The whole state as bytes, for [`Engine::restore`]. Reads the state only: taking a
    /// snapshot changes nothing, and two engines in the same state write snapshots that
    /// restore to the same state.
    pub fn snapshot(&self) -> Vec<u8> {
        let (users, arena) = self.users.parts();
        let body = Borrowed {
            msgs: SlabRef(&self.store.msgs),
            rss: SlabRef(&self.store.rss),
            users,
            arena,
            removals: &self.removals,
            accounts: &self.accounts,
            reports: &self.reports,
            hot: &self.hot,
            conduct: &self.conduct,
            targets: &self.targets,
            waiting_via: &self.waiting_via,
            pending_via: &self.pending_via,
            timers: &self.timers,
            queue: &self.queue,
            stale: &self.stale,
            max_at: self.max_at,
            wm_floor: self.wm_floor,
            next_sweep: self.next_sweep,
            hot_free: &self.hot_free,
            past_conduct: &self.past_conduct,
            past_targets: &self.past_targets,
            evicted: self.evicted,
            seen_ids: &self.seen_ids,
            seen_since: self.seen_since,
        };
        let fingerprint = policy_fingerprint(&self.policy).to_le_bytes();
        let capacity = 36 + self.store.msgs.slots() as usize * 48;
        frame::seal(MAGIC, SNAPSHOT_FORMAT, &fingerprint, capacity, |out| {
            postcard::to_extend(&body, out).expect("serializing to a Vec cannot fail")
        })
    }

    /// An engine in the state `bytes` were taken from, running `policy`, which must be the
    /// policy the snapshot was taken under. The frame is checked before the policy, so a
    /// snapshot that is both damaged and of another policy is refused as damaged.
    pub fn restore(policy: Policy, bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let (fingerprint, body) = frame::open::<8>(MAGIC, SNAPSHOT_FORMAT, bytes)?;
        if u64::from_le_bytes(*fingerprint) != policy_fingerprint(&policy) {
            return Err(SnapshotError::Policy);
        }
        let o: Owned = postcard::from_bytes(body).map_err(|e| SnapshotError::Damaged(e.to_string()))?;
        let damaged = |what: &str| SnapshotError::Damaged(what.to_owned());
        let msgs = Slab::from_parts(o.msgs.0, o.msgs.1).ok_or_else(|| damaged("message slots"))?;
        let rss = Slab::from_parts(o.rss.0, o.rss.1).ok_or_else(|| damaged("reshare slots"))?;
        let store = Store::from_slabs(msgs, rss).ok_or_else(|| damaged("two records share an id"))?;
        let users = Users::from_parts(o.users, o.arena).ok_or_else(|| damaged("account ids"))?;
        let mut engine = Engine::new(policy);
        engine.store = store;
        engine.users = users;
        engine.removals = o.removals;
        engine.accounts = o.accounts;
        engine.reports = o.reports;
        engine.hot = o.hot;
        engine.conduct = o.conduct;
        engine.targets = o.targets;
        engine.waiting_via = o.waiting_via;
        engine.pending_via = o.pending_via;
        engine.timers = o.timers;
        engine.queue = o.queue;
        engine.stale = o.stale;
        engine.max_at = o.max_at;
        engine.wm_floor = o.wm_floor;
        engine.next_sweep = o.next_sweep;
        engine.hot_free = o.hot_free;
        engine.past_conduct = o.past_conduct;
        engine.past_targets = o.past_targets;
        engine.evicted = o.evicted;
        engine.seen_ids = o.seen_ids;
        engine.seen_since = o.seen_since;
        engine.check_references().map_err(SnapshotError::Damaged)?;
        Ok(engine)
    }

    /// Checks that every handle the state holds points inside its table, so that a damaged
    /// snapshot that still parses is refused rather than panicking later.
    fn check_references(&self) -> Result<(), String> {
        let (msgs, rss, users, hot) = (
            self.store.msgs.slots(),
            self.store.rss.slots(),
            self.users.len() as u32,
            self.hot.len() as u32,
        );
        let ok = |ix: u32, n: u32| ix == crate::store::NONE || ix < n;
        let (items, _) = self.store.msgs.parts();
        for m in items {
            if !ok(m.author, users) || !ok(m.first_reshare, rss) || !ok(m.hot, hot) {
                return Err(format!("message {:x} points outside the state", m.key));
            }
        }
        let (items, _) = self.store.rss.parts();
        for r in items {
            if !ok(r.original, msgs) || !ok(r.parent, rss) || !ok(r.author, users) || !ok(r.next, rss) {
                return Err(format!("reshare {:x} points outside the state", r.key));
            }
        }
        for h in &self.hot {
            if !ok(h.msg, msgs) {
                return Err(format!("labelled message `{}` points outside the state", h.id));
            }
        }
        Ok(())
    }
}
