//! Compact storage for millions of messages, reshares and accounts.
//!
//! Every record keeps its id whole, and every lookup compares the id it is asked for with the
//! id it finds: a hash only chooses where to look, it never stands for an id. So two distinct
//! ids never share a record, however they were chosen (an attacker can search for two post ids
//! with the same 64-bit hash; an unkeyed hash made that a way to take down someone else's post).
//! The hash is seeded at random per table, so that ids chosen to collide in one process do not
//! collide in another, and a crafted set of ids cannot turn a lookup into a scan.
//!
//! Ids are [`CompactString`]s: up to 24 bytes stay inside the record (Twitter's and Mastodon's
//! numeric ids, account DIDs' short forms), longer ones (AT Protocol URIs) go to the heap.
//!
//! Records live in chunked slabs, so growing never copies the whole store and never leaves half
//! of a doubled vector unused; the index is a `hashbrown::HashTable` of 4-byte slots.
//!
//! A message's reshares form a circular list threaded through [`Reshare::next`], with the
//! message holding its tail: two lists join in constant time. That is what lets a placeholder
//! that turns out to be a reshare hand its reshares to the original without visiting them, so
//! a chain of reshares that arrives in reverse costs linear work, not quadratic. Such a
//! placeholder stays behind as a *forwarding* record ([`BIT_FORWARD`]) until the reshares that
//! still name it as their original have been pointed at the real one (see
//! [`crate::engine`]'s `original_of`).

use std::hash::BuildHasher;

use compact_str::CompactString;
use hashbrown::{DefaultHashBuilder, HashTable};

/// An id as kept in state.
pub(crate) type Id = CompactString;

pub(crate) const NONE: u32 = u32::MAX;
const RESHARE_TAG: u32 = 1 << 31;
const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;

/// A vector in fixed-size chunks, with a free list.
pub(crate) struct Slab<T> {
    chunks: Vec<Vec<T>>,
    len: u32,
    free: Vec<u32>,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab {
            chunks: Vec::new(),
            len: 0,
            free: Vec::new(),
        }
    }
    pub(crate) fn push(&mut self, value: T) -> u32 {
        if let Some(ix) = self.free.pop() {
            *self.get_mut(ix) = value;
            return ix;
        }
        let ix = self.len;
        assert!(ix < RESHARE_TAG, "slab full");
        if (ix as usize).is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks.last_mut().expect("a chunk was just ensured").push(value);
        self.len += 1;
        ix
    }
    #[inline]
    pub(crate) fn get(&self, ix: u32) -> &T {
        &self.chunks[(ix >> CHUNK_BITS) as usize][ix as usize & (CHUNK - 1)]
    }
    #[inline]
    pub(crate) fn get_mut(&mut self, ix: u32) -> &mut T {
        &mut self.chunks[(ix >> CHUNK_BITS) as usize][ix as usize & (CHUNK - 1)]
    }
    /// The number of slots ever used, free ones included: indices below it are valid.
    pub(crate) fn slots(&self) -> u32 {
        self.len
    }
    /// Marks a slot reusable. The caller has already unlinked it from every index.
    pub(crate) fn release(&mut self, ix: u32) {
        self.free.push(ix);
    }
    pub(crate) fn live(&self) -> usize {
        self.len as usize - self.free.len()
    }
    /// Every slot in order, free ones included, and the free list: what a snapshot keeps.
    pub(crate) fn parts(&self) -> (impl ExactSizeIterator<Item = &T>, &[u32]) {
        let items = self.chunks.iter().flatten();
        (Counted(items, self.len as usize), &self.free)
    }
    /// Which slots are free, as a bit per slot.
    pub(crate) fn free_bits(&self) -> Vec<bool> {
        let mut bits = vec![false; self.len as usize];
        for &f in &self.free {
            bits[f as usize] = true;
        }
        bits
    }
    /// The inverse of [`Slab::parts`]. `None` when the free list names a slot that does not
    /// exist or names one twice (a damaged snapshot).
    pub(crate) fn from_parts(items: Vec<T>, free: Vec<u32>) -> Option<Self> {
        let len = u32::try_from(items.len()).ok().filter(|&l| l < RESHARE_TAG)?;
        let mut seen = vec![false; len as usize];
        for &f in &free {
            if f >= len || std::mem::replace(&mut seen[f as usize], true) {
                return None;
            }
        }
        let mut chunks = Vec::with_capacity(items.len().div_ceil(CHUNK));
        let mut items = items.into_iter();
        loop {
            // Full-size chunks, as `push` makes them, so that growing never reallocates one.
            let mut chunk = Vec::with_capacity(CHUNK);
            chunk.extend(items.by_ref().take(CHUNK));
            if chunk.is_empty() {
                break;
            }
            chunks.push(chunk);
        }
        Some(Slab { chunks, len, free })
    }
}

/// An iterator with its exact length, for serializers that want to know it first.
struct Counted<I>(I, usize);

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let item = self.0.next()?;
        self.1 -= 1;
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}

/// A tracked message: a post seen in the stream, or a placeholder for an id that events
/// referred to before (or without) its post.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Message {
    pub id: Id,
    /// Event time of the post; `i64::MIN` while the post has not been seen.
    pub posted_at: i64,
    /// The newest event time of any event that touched this message.
    pub last_at: i64,
    /// The author's handle; for a forwarding record ([`BIT_FORWARD`]), the reshare it became.
    pub author: u32,
    pub reshares: u32,
    pub quotes: u32,
    pub replies: u32,
    /// Cumulative impressions, the largest count seen; `NONE` when never given.
    pub impressions: u32,
    /// The tail of the circular list of this message's reshares (see [`Store::link`]).
    pub tail: u32,
    /// The handle of the first account the post mentions, or `NONE`.
    pub mention: u32,
    /// Index into the hot table when the message carries a label.
    pub hot: u32,
    /// How many reshare records name this slot as their original: a forwarding record is freed
    /// when the last of them has been pointed at the real original.
    pub refs: u32,
    pub bits: u16,
}

/// The slot is free (its message was evicted, or it was a forwarding record now unused).
pub(crate) const BIT_DEAD: u16 = 1;
/// The post is a reply to another message.
pub(crate) const BIT_REPLY: u16 = 1 << 3;
/// A placeholder that turned out to be a reshare: `author` names that reshare, and the
/// reshares that still name this slot as their original belong to the reshare's original.
pub(crate) const BIT_FORWARD: u16 = 1 << 4;
/// Marks a forwarding record already counted while a message's reshares are dropped.
pub(crate) const BIT_SEEN: u16 = 1 << 5;
const AUDIENCE_SHIFT: u16 = 1;

impl Message {
    pub(crate) fn placeholder(id: &str) -> Message {
        Message {
            id: Id::new(id),
            posted_at: i64::MIN,
            last_at: i64::MIN,
            author: NONE,
            reshares: 0,
            quotes: 0,
            replies: 0,
            impressions: NONE,
            tail: NONE,
            mention: NONE,
            hot: NONE,
            refs: 0,
            bits: 0,
        }
    }
    pub(crate) fn known(&self) -> bool {
        self.posted_at != i64::MIN
    }
    pub(crate) fn forwards(&self) -> bool {
        self.bits & BIT_FORWARD != 0
    }
    pub(crate) fn audience(&self) -> crate::event::Audience {
        use crate::event::Audience::*;
        match (self.bits >> AUDIENCE_SHIFT) & 3 {
            0 => Public,
            1 => Followers,
            2 => Direct,
            _ => Group,
        }
    }
    pub(crate) fn set_audience(&mut self, a: crate::event::Audience) {
        use crate::event::Audience::*;
        let v = match a {
            Public => 0,
            Followers => 1,
            Direct => 2,
            Group => 3,
        };
        self.bits = (self.bits & !(3 << AUDIENCE_SHIFT)) | (v << AUDIENCE_SHIFT);
    }
    pub(crate) fn touch(&mut self, at: i64) {
        self.last_at = self.last_at.max(at);
    }
}

/// A reshare (retweet, repost, boost) of a message.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Reshare {
    pub id: Id,
    pub at: i64,
    /// The original message, or a forwarding record that leads to it.
    pub original: u32,
    /// The reshare this one was made through (`of` or `via`), or `NONE` for a direct reshare
    /// (or one whose original field names a forwarding record: see [`BIT_FORWARD`]).
    pub parent: u32,
    pub author: u32,
    /// The next reshare in the circular list of the original's reshares.
    pub next: u32,
}

/// What an id in the index points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entity {
    Message(u32),
    Reshare(u32),
}

impl Entity {
    fn slot(self) -> u32 {
        match self {
            Entity::Message(i) => i,
            Entity::Reshare(i) => i | RESHARE_TAG,
        }
    }
    fn from_slot(s: u32) -> Entity {
        if s & RESHARE_TAG != 0 {
            Entity::Reshare(s & !RESHARE_TAG)
        } else {
            Entity::Message(s)
        }
    }
}

/// Messages and reshares, found by id.
pub(crate) struct Store {
    pub msgs: Slab<Message>,
    pub rss: Slab<Reshare>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Store {
    pub(crate) fn new() -> Self {
        Store {
            msgs: Slab::new(),
            rss: Slab::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    #[inline]
    fn slot_id<'a>(msgs: &'a Slab<Message>, rss: &'a Slab<Reshare>, slot: u32) -> &'a str {
        match Entity::from_slot(slot) {
            Entity::Message(i) => &msgs.get(i).id,
            Entity::Reshare(i) => &rss.get(i).id,
        }
    }

    pub(crate) fn find(&self, id: &str) -> Option<Entity> {
        let (msgs, rss) = (&self.msgs, &self.rss);
        self.index
            .find(self.hasher.hash_one(id), |&s| Self::slot_id(msgs, rss, s) == id)
            .map(|&s| Entity::from_slot(s))
    }

    fn insert_slot(&mut self, e: Entity) {
        let (msgs, rss, hasher) = (&self.msgs, &self.rss, &self.hasher);
        let hash = hasher.hash_one(Self::slot_id(msgs, rss, e.slot()));
        self.index
            .insert_unique(hash, e.slot(), |&s| hasher.hash_one(Self::slot_id(msgs, rss, s)));
    }

    /// The message for `id`, created as a placeholder if the id is new, or the reshare the id
    /// names.
    pub(crate) fn message_or_placeholder(&mut self, id: &str) -> Entity {
        // One probe of the index whether the id is new or not: most posts are new ids.
        let (msgs, rss, hasher) = (&self.msgs, &self.rss, &self.hasher);
        let entry = self.index.entry(
            hasher.hash_one(id),
            |&s| Self::slot_id(msgs, rss, s) == id,
            |&s| hasher.hash_one(Self::slot_id(msgs, rss, s)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => Entity::from_slot(*e.get()),
            hashbrown::hash_table::Entry::Vacant(v) => {
                let ix = self.msgs.push(Message::placeholder(id));
                v.insert(Entity::Message(ix).slot());
                Entity::Message(ix)
            }
        }
    }

    /// Adds a reshare record to the index, unlinked: the caller links it with [`Store::link`].
    pub(crate) fn insert_reshare(&mut self, r: Reshare) -> u32 {
        let ix = self.rss.push(r);
        self.insert_slot(Entity::Reshare(ix));
        ix
    }

    /// Adds reshare `r` to the circular list of message `m`.
    pub(crate) fn link(&mut self, m: u32, r: u32) {
        let tail = self.msgs.get(m).tail;
        if tail == NONE {
            self.rss.get_mut(r).next = r;
            self.msgs.get_mut(m).tail = r;
        } else {
            let head = self.rss.get(tail).next;
            self.rss.get_mut(r).next = head;
            self.rss.get_mut(tail).next = r;
        }
    }

    /// Moves every reshare in the list of `from` to the list of `to`, in constant time.
    pub(crate) fn splice(&mut self, from: u32, to: u32) {
        let b = std::mem::replace(&mut self.msgs.get_mut(from).tail, NONE);
        if b == NONE {
            return;
        }
        let a = self.msgs.get(to).tail;
        if a != NONE {
            let a_head = self.rss.get(a).next;
            let b_head = self.rss.get(b).next;
            self.rss.get_mut(a).next = b_head;
            self.rss.get_mut(b).next = a_head;
        }
        self.msgs.get_mut(to).tail = b;
    }

    /// The reshares in the list of message `m`.
    pub(crate) fn reshares_of(&self, m: u32) -> Vec<u32> {
        let tail = self.msgs.get(m).tail;
        let mut list = Vec::new();
        if tail == NONE {
            return list;
        }
        let mut cur = self.rss.get(tail).next;
        loop {
            list.push(cur);
            if cur == tail {
                break;
            }
            cur = self.rss.get(cur).next;
        }
        list
    }

    /// A store of these slabs, its index rebuilt from their live slots (forwarding records are
    /// not indexed: their id now names a reshare). `None` if two live records share an id (a
    /// damaged snapshot).
    pub(crate) fn from_slabs(msgs: Slab<Message>, rss: Slab<Reshare>) -> Option<Store> {
        let mut store = Store {
            msgs,
            rss,
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        };
        let free_msgs = store.msgs.free_bits();
        let free_rss = store.rss.free_bits();
        for ix in 0..store.msgs.slots() {
            let m = store.msgs.get(ix);
            if !free_msgs[ix as usize] && !m.forwards() {
                if store.find(&m.id.clone()).is_some() {
                    return None;
                }
                store.insert_slot(Entity::Message(ix));
            }
        }
        for ix in 0..store.rss.slots() {
            if !free_rss[ix as usize] {
                if store.find(&store.rss.get(ix).id.clone()).is_some() {
                    return None;
                }
                store.insert_slot(Entity::Reshare(ix));
            }
        }
        Some(store)
    }

    /// Forgets `id`. The caller releases the slot afterwards: the lookup reads the id there.
    pub(crate) fn remove_id(&mut self, id: &str) {
        let (msgs, rss) = (&self.msgs, &self.rss);
        if let Ok(entry) = self
            .index
            .find_entry(self.hasher.hash_one(id), |&s| Self::slot_id(msgs, rss, s) == id)
        {
            entry.remove();
        }
    }

    /// Frees a message slot that is no longer indexed, dropping its id.
    pub(crate) fn free_message(&mut self, m: u32) {
        let msg = self.msgs.get_mut(m);
        msg.bits = BIT_DEAD;
        msg.id = Id::default();
        msg.tail = NONE;
        msg.hot = NONE;
        self.msgs.release(m);
    }

    /// Forgets a reshare and frees its slot.
    pub(crate) fn free_reshare(&mut self, r: u32) {
        let id = std::mem::take(&mut self.rss.get_mut(r).id);
        self.remove_id(&id);
        self.rss.release(r);
    }

    /// Re-points the id of placeholder `msg` to reshare `r`, which takes its place in the
    /// index. The placeholder's slot is the caller's to forward or free.
    pub(crate) fn replace_placeholder(&mut self, msg: u32, r: Reshare) -> u32 {
        let id = self.msgs.get(msg).id.clone();
        self.remove_id(&id);
        self.insert_reshare(r)
    }
}

/// People, interned: a 4-byte handle per account id, with the id kept whole because flags name
/// their subject's account and lookups compare it. Subjects, people mentioned or named as a
/// label's target, and reporters are all accounts here; only subjects are ever written out.
///
/// An account is forgotten (its handle reused) once nothing in state refers to it and it has
/// been quiet for the retention horizon: see the engine's retention sweep.
pub(crate) struct Users {
    /// The id's hash, the handle and a copy of the follower count together: accounts are
    /// looked up on most events, and the follower count is all most of those lookups need (is
    /// the count given larger?). The id is still compared on every lookup.
    index: HashTable<Account>,
    users: Slab<User>,
    hasher: DefaultHashBuilder,
}

/// An entry of the account index: the id's hash, the handle and a copy of
/// [`User::followers`], kept equal to it by [`Users::intern`], its only writer.
#[derive(Clone, Copy)]
struct Account {
    hash: u64,
    ix: u32,
    followers: u32,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct User {
    pub name: Id,
    /// The newest event time of an event that named the account.
    pub last_at: i64,
    /// The largest follower count any event gave: the peak audience, which never shrinks.
    /// Written only through [`Users::intern`], which keeps the index's copy.
    pub followers: u32,
    /// Whether the account is a minor, as said by the newest event that said it.
    pub minor: bool,
    pub minor_at: i64,
}

impl User {
    /// A measure for the revision that grows whenever what is said of the account's age
    /// changes: `(minor_at, minor)` only grows (the newest statement wins, and on a tie `true`
    /// wins), and this maps that order onto integers. It is 0 until an event says anything.
    pub(crate) fn minor_term(&self) -> u64 {
        if self.minor_at == i64::MIN {
            0
        } else {
            1 + 2 * (self.minor_at - crate::time::MIN_TS.0).max(0) as u64 + u64::from(self.minor)
        }
    }
}

impl Users {
    pub(crate) fn new() -> Self {
        Users {
            index: HashTable::new(),
            users: Slab::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// The handle of an account id, if it is known.
    pub(crate) fn find(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        let users = &self.users;
        self.index
            .find(hash, |a| a.hash == hash && users.get(a.ix).name == id)
            .map(|a| a.ix)
    }

    /// The handle of an account id, interned if new, with its follower count raised to
    /// `followers` if that is larger and its last activity moved to `at`; also whether the
    /// count grew.
    pub(crate) fn intern(&mut self, id: &str, followers: Option<u32>, at: i64) -> (u32, bool) {
        let hash = self.hasher.hash_one(id);
        let users = &mut self.users;
        if let Some(a) = self
            .index
            .find_mut(hash, |a| a.hash == hash && users.get(a.ix).name == id)
        {
            let u = users.get_mut(a.ix);
            u.last_at = u.last_at.max(at);
            return match followers {
                Some(f) if f > a.followers => {
                    a.followers = f;
                    u.followers = f;
                    (a.ix, true)
                }
                _ => (a.ix, false),
            };
        }
        let followers = followers.unwrap_or(0);
        let ix = self.users.push(User {
            name: Id::new(id),
            last_at: at,
            followers,
            minor: false,
            minor_at: i64::MIN,
        });
        self.index
            .insert_unique(hash, Account { hash, ix, followers }, |a| a.hash);
        (ix, followers > 0)
    }

    pub(crate) fn name(&self, ix: u32) -> &str {
        &self.users.get(ix).name
    }
    pub(crate) fn get(&self, ix: u32) -> &User {
        self.users.get(ix)
    }
    /// The account's age statement, the one part of a record written in place (the follower
    /// count goes through [`Users::intern`]).
    pub(crate) fn minor_mut(&mut self, ix: u32) -> (&mut bool, &mut i64) {
        let u = self.users.get_mut(ix);
        (&mut u.minor, &mut u.minor_at)
    }
    /// Accounts in state.
    pub(crate) fn len(&self) -> usize {
        self.users.live()
    }
    /// Handles below this are valid or free.
    pub(crate) fn slots(&self) -> u32 {
        self.users.slots()
    }
    pub(crate) fn free_bits(&self) -> Vec<bool> {
        self.users.free_bits()
    }
    /// Forgets an account: nothing in state refers to its handle any more.
    pub(crate) fn release(&mut self, ix: u32) {
        let name = std::mem::take(&mut self.users.get_mut(ix).name);
        let hash = self.hasher.hash_one(name.as_str());
        if let Ok(entry) = self.index.find_entry(hash, |a| a.ix == ix) {
            entry.remove();
        }
        self.users.release(ix);
    }
    /// The account records, free slots included, and the free list: what a snapshot keeps.
    pub(crate) fn parts(&self) -> (impl ExactSizeIterator<Item = &User>, &[u32]) {
        self.users.parts()
    }
    /// The inverse of [`Users::parts`], the index rebuilt. `None` if two live records share an
    /// id (a damaged snapshot).
    pub(crate) fn from_parts(users: Vec<User>, free: Vec<u32>) -> Option<Users> {
        let users = Slab::from_parts(users, free)?;
        let hasher = DefaultHashBuilder::default();
        let mut index = HashTable::with_capacity(users.live());
        let free = users.free_bits();
        for ix in 0..users.slots() {
            if free[ix as usize] {
                continue;
            }
            let u = users.get(ix);
            let hash = hasher.hash_one(u.name.as_str());
            if index
                .find(hash, |a: &Account| a.hash == hash && users.get(a.ix).name == u.name)
                .is_some()
            {
                return None;
            }
            let account = Account {
                hash,
                ix,
                followers: u.followers,
            };
            index.insert_unique(hash, account, |a| a.hash);
        }
        Some(Users { index, users, hasher })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stay_small() {
        assert_eq!(std::mem::size_of::<Message>(), 80);
        assert_eq!(std::mem::size_of::<Reshare>(), 48);
    }

    #[test]
    fn slab_chunks_and_reuses() {
        let mut s = Slab::new();
        for i in 0..(CHUNK as u32 * 2 + 5) {
            assert_eq!(s.push(i), i);
        }
        assert_eq!(*s.get(CHUNK as u32 + 1), CHUNK as u32 + 1);
        s.release(7);
        assert_eq!(s.push(99), 7);
        assert_eq!(*s.get(7), 99);
    }

    fn reshare(id: &str) -> Reshare {
        Reshare {
            id: Id::new(id),
            at: 0,
            original: NONE,
            parent: NONE,
            author: 0,
            next: NONE,
        }
    }

    #[test]
    fn ids_whose_hashes_collide_keep_their_own_records() {
        // The two ids issue 9 found to share one unseeded xxh3-64 hash: each is its own message.
        let a = "at://did:plc:attacker0000000000000000/app.bsky.feed.post/glqat3y3mtepl";
        let b = "at://did:plc:attacker0000000000000000/app.bsky.feed.post/c7b2ajjvotfd3";
        assert_eq!(
            xxhash_rust::xxh3::xxh3_64(a.as_bytes()),
            xxhash_rust::xxh3::xxh3_64(b.as_bytes())
        );
        let mut st = Store::new();
        let ma = st.message_or_placeholder(a);
        let mb = st.message_or_placeholder(b);
        assert_ne!(ma, mb);
        assert_eq!(st.find(a), Some(ma));
        assert_eq!(st.find(b), Some(mb));
        st.remove_id(b);
        assert_eq!(st.find(a), Some(ma));
        assert_eq!(st.find(b), None);
    }

    #[test]
    fn placeholders_turn_into_reshares() {
        let mut st = Store::new();
        let Entity::Message(m) = st.message_or_placeholder("x") else {
            panic!()
        };
        assert_eq!(st.find("x"), Some(Entity::Message(m)));
        let r = st.replace_placeholder(m, reshare("x"));
        assert_eq!(st.find("x"), Some(Entity::Reshare(r)));
    }

    #[test]
    fn circular_lists_link_and_splice() {
        let mut st = Store::new();
        let Entity::Message(a) = st.message_or_placeholder("a") else {
            panic!()
        };
        let Entity::Message(b) = st.message_or_placeholder("b") else {
            panic!()
        };
        let names = |st: &Store, m| {
            let mut v: Vec<String> = st
                .reshares_of(m)
                .iter()
                .map(|&r| st.rss.get(r).id.to_string())
                .collect();
            v.sort();
            v
        };
        for (m, id) in [(a, "a1"), (a, "a2"), (b, "b1"), (b, "b2"), (b, "b3")] {
            let r = st.insert_reshare(reshare(id));
            st.link(m, r);
        }
        assert_eq!(names(&st, a), ["a1", "a2"]);
        st.splice(b, a);
        assert_eq!(names(&st, a), ["a1", "a2", "b1", "b2", "b3"]);
        assert!(names(&st, b).is_empty());
        st.splice(a, b);
        assert_eq!(names(&st, b).len(), 5);
    }

    #[test]
    fn accounts_are_found_by_their_whole_id_and_forgotten() {
        let mut u = Users::new();
        // Ids longer than a record holds inline, and several bytes per character.
        let long = "ü".repeat(300);
        let (x, _) = u.intern(&long, Some(5), 1);
        let (y, grew) = u.intern("victim-user", None, 2);
        assert!(!grew);
        assert_eq!(u.name(x), long);
        assert_eq!(u.name(y), "victim-user");
        assert_eq!(u.find("victim-user"), Some(y));
        u.release(y);
        assert_eq!(u.find("victim-user"), None);
        let (z, _) = u.intern("another", None, 3);
        assert_eq!(z, y, "a forgotten account's handle is reused");
        assert_eq!(u.name(z), "another");
        assert_eq!(u.name(x), long);
        assert_eq!(u.len(), 2);
    }
}
