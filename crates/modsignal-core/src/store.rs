//! Compact storage for millions of messages and reshares.
//!
//! A message or reshare is found by the 64-bit xxh3 hash of its id string; the id itself is not
//! kept (only labelled messages keep theirs, in the hot table). Records live in chunked slabs so
//! that growing never copies the whole store and never leaves half of a doubled vector unused,
//! and the index is a `hashbrown::HashTable` of 4-byte slots that finds a record's key inside the
//! slab. Together this is what keeps a tracked message under 100 bytes and a reshare under 50.
//!
//! With 64-bit keys two distinct ids collide with probability about n²/2⁶⁵: about 10⁻⁵ with 20
//! million ids in state. A collision merges two records; it cannot crash the engine.

use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

pub(crate) const NONE: u32 = u32::MAX;
const RESHARE_TAG: u32 = 1 << 31;
const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;

pub(crate) fn key_of(id: &str) -> u64 {
    xxh3_64(id.as_bytes())
}

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
    /// The inverse of [`Slab::parts`].
    pub(crate) fn from_parts(items: Vec<T>, free: Vec<u32>) -> Option<Self> {
        let len = u32::try_from(items.len()).ok().filter(|&l| l < RESHARE_TAG)?;
        if free.iter().any(|&f| f >= len) {
            return None;
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
    pub key: u64,
    /// Event time of the post; `i64::MIN` while the post has not been seen.
    pub posted_at: i64,
    /// The newest event time of any event that touched this message.
    pub last_at: i64,
    pub author: u32,
    pub reshares: u32,
    pub quotes: u32,
    pub replies: u32,
    /// Cumulative impressions, the largest count seen; `NONE` when never given.
    pub impressions: u32,
    /// Head of the list of this message's reshares, threaded through `Reshare::next`.
    pub first_reshare: u32,
    /// Hash of the first account the post mentions, or 0.
    pub mention: u64,
    /// Index into the hot table when the message carries a label.
    pub hot: u32,
    pub depth: u16,
    pub bits: u16,
}

/// The slot is free (its message was converted to a reshare, or evicted).
pub(crate) const BIT_DEAD: u16 = 1;
/// The post is a reply to another message.
pub(crate) const BIT_REPLY: u16 = 1 << 3;
const AUDIENCE_SHIFT: u16 = 1;

impl Message {
    pub(crate) fn placeholder(key: u64) -> Message {
        Message {
            key,
            posted_at: i64::MIN,
            last_at: i64::MIN,
            author: NONE,
            reshares: 0,
            quotes: 0,
            replies: 0,
            impressions: NONE,
            first_reshare: NONE,
            mention: 0,
            hot: NONE,
            depth: 0,
            bits: 0,
        }
    }
    pub(crate) fn known(&self) -> bool {
        self.posted_at != i64::MIN
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
    pub key: u64,
    pub at: i64,
    /// The original message, resolved through reshares of reshares.
    pub original: u32,
    /// The reshare this one was made through (`of` or `via`), or `NONE` for a direct reshare.
    pub parent: u32,
    pub author: u32,
    /// Next reshare of the same original.
    pub next: u32,
    /// Length of the chain from the original: a direct reshare is 1.
    pub depth: u32,
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

/// Messages and reshares, found by id hash.
pub(crate) struct Store {
    pub msgs: Slab<Message>,
    pub rss: Slab<Reshare>,
    index: HashTable<u32>,
}

impl Store {
    pub(crate) fn new() -> Self {
        Store {
            msgs: Slab::new(),
            rss: Slab::new(),
            index: HashTable::new(),
        }
    }

    #[inline]
    fn slot_key(msgs: &Slab<Message>, rss: &Slab<Reshare>, slot: u32) -> u64 {
        match Entity::from_slot(slot) {
            Entity::Message(i) => msgs.get(i).key,
            Entity::Reshare(i) => rss.get(i).key,
        }
    }

    pub(crate) fn find(&self, key: u64) -> Option<Entity> {
        let (msgs, rss) = (&self.msgs, &self.rss);
        self.index
            .find(key, |&s| Self::slot_key(msgs, rss, s) == key)
            .map(|&s| Entity::from_slot(s))
    }

    fn insert_slot(&mut self, key: u64, e: Entity) {
        let (msgs, rss) = (&self.msgs, &self.rss);
        self.index
            .insert_unique(key, e.slot(), |&s| Self::slot_key(msgs, rss, s));
    }

    /// The message for `key`, created as a placeholder if the id is new. Returns `None` when the
    /// id belongs to a reshare.
    pub(crate) fn message_or_placeholder(&mut self, key: u64) -> Entity {
        // One probe of the index whether the id is new or not: most posts are new ids.
        let (msgs, rss) = (&self.msgs, &self.rss);
        let entry = self.index.entry(
            key,
            |&s| Self::slot_key(msgs, rss, s) == key,
            |&s| Self::slot_key(msgs, rss, s),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => Entity::from_slot(*e.get()),
            hashbrown::hash_table::Entry::Vacant(v) => {
                let ix = self.msgs.push(Message::placeholder(key));
                v.insert(Entity::Message(ix).slot());
                Entity::Message(ix)
            }
        }
    }

    pub(crate) fn insert_reshare(&mut self, r: Reshare) -> u32 {
        let key = r.key;
        let ix = self.rss.push(r);
        self.insert_slot(key, Entity::Reshare(ix));
        ix
    }

    /// A store of these slabs, its index rebuilt from their live slots. `None` if two live
    /// records share a key (a damaged snapshot).
    pub(crate) fn from_slabs(msgs: Slab<Message>, rss: Slab<Reshare>) -> Option<Store> {
        let mut store = Store {
            msgs,
            rss,
            index: HashTable::new(),
        };
        let free = |slab_free: &[u32], n: u32| {
            let mut bits = vec![false; n as usize];
            for &f in slab_free {
                bits[f as usize] = true;
            }
            bits
        };
        let free_msgs = free(&store.msgs.free, store.msgs.slots());
        let free_rss = free(&store.rss.free, store.rss.slots());
        for ix in 0..store.msgs.slots() {
            if !free_msgs[ix as usize] {
                let key = store.msgs.get(ix).key;
                if store.find(key).is_some() {
                    return None;
                }
                store.insert_slot(key, Entity::Message(ix));
            }
        }
        for ix in 0..store.rss.slots() {
            if !free_rss[ix as usize] {
                let key = store.rss.get(ix).key;
                if store.find(key).is_some() {
                    return None;
                }
                store.insert_slot(key, Entity::Reshare(ix));
            }
        }
        Some(store)
    }

    /// Forgets `key`. The caller releases the slot afterwards: the lookup reads the key there.
    pub(crate) fn remove_key(&mut self, key: u64) {
        let (msgs, rss) = (&self.msgs, &self.rss);
        if let Ok(entry) = self.index.find_entry(key, |&s| Self::slot_key(msgs, rss, s) == key) {
            entry.remove();
        }
    }

    /// Re-points `key` from a placeholder message to a reshare, and frees the placeholder.
    pub(crate) fn replace_placeholder(&mut self, key: u64, msg: u32, r: Reshare) -> u32 {
        self.remove_key(key);
        self.msgs.get_mut(msg).bits |= BIT_DEAD;
        self.msgs.release(msg);
        self.insert_reshare(r)
    }
}

/// People, interned: a 4-byte handle per account id, with the id text kept once in an arena
/// because flags name their subject's account.
pub(crate) struct Users {
    /// Key, handle and follower count together, so that a lookup touches only the table:
    /// accounts are looked up on most events, and the follower count is all most of those
    /// lookups need (is the count given larger?), so the account record stays out of the cache.
    /// The count fills what would be padding: an entry is 16 bytes either way.
    index: HashTable<Account>,
    pub users: Vec<User>,
    arena: String,
}

/// An entry of the account index: the id's hash, the handle and a copy of
/// [`User::followers`], kept equal to it by [`Users::intern_with_followers`], its only writer.
#[derive(Clone, Copy)]
struct Account {
    key: u64,
    ix: u32,
    followers: u32,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct User {
    name_at: u32,
    name_len: u32,
    /// The largest follower count any event gave: the peak audience, which never shrinks.
    /// Written only through [`Users::intern_with_followers`], which keeps the index's copy.
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
            users: Vec::new(),
            arena: String::new(),
        }
    }
    /// The handle of an account id, interned if new, with its follower count raised to
    /// `followers` if that is larger; also whether the count grew. The index holds the count
    /// too, so an account whose count does not grow costs one probe of the index and no read
    /// of its record.
    pub(crate) fn intern_with_followers(&mut self, id: &str, followers: Option<u32>) -> (u32, bool) {
        let key = key_of(id);
        if let Some(a) = self.index.find_mut(key, |a| a.key == key) {
            return match followers {
                Some(f) if f > a.followers => {
                    a.followers = f;
                    self.users[a.ix as usize].followers = f;
                    (a.ix, true)
                }
                _ => (a.ix, false),
            };
        }
        let ix = self.users.len() as u32;
        let followers = followers.unwrap_or(0);
        self.users.push(User {
            name_at: self.arena.len() as u32,
            name_len: id.len() as u32,
            followers,
            minor: false,
            minor_at: i64::MIN,
        });
        self.arena.push_str(id);
        self.index.insert_unique(key, Account { key, ix, followers }, |a| a.key);
        (ix, followers > 0)
    }
    pub(crate) fn name(&self, ix: u32) -> &str {
        let u = &self.users[ix as usize];
        &self.arena[u.name_at as usize..(u.name_at + u.name_len) as usize]
    }
    pub(crate) fn get(&self, ix: u32) -> &User {
        &self.users[ix as usize]
    }
    /// The account's age statement, the one part of a record written in place (the follower
    /// count goes through [`Users::intern_with_followers`]).
    pub(crate) fn minor_mut(&mut self, ix: u32) -> (&mut bool, &mut i64) {
        let u = &mut self.users[ix as usize];
        (&mut u.minor, &mut u.minor_at)
    }
    pub(crate) fn len(&self) -> usize {
        self.users.len()
    }
    /// The account records and the arena of their ids: what a snapshot keeps.
    pub(crate) fn parts(&self) -> (&[User], &str) {
        (&self.users, &self.arena)
    }
    /// The inverse of [`Users::parts`], the index rebuilt. `None` if a record points outside
    /// the arena or two records share an id (a damaged snapshot).
    pub(crate) fn from_parts(users: Vec<User>, arena: String) -> Option<Users> {
        let mut index = HashTable::with_capacity(users.len());
        for (ix, u) in users.iter().enumerate() {
            let end = u.name_at.checked_add(u.name_len)? as usize;
            let name = arena.get(u.name_at as usize..end)?;
            let key = key_of(name);
            if index.find(key, |a: &Account| a.key == key).is_some() {
                return None;
            }
            let account = Account {
                key,
                ix: ix as u32,
                followers: u.followers,
            };
            index.insert_unique(key, account, |a| a.key);
        }
        Some(Users { index, users, arena })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stay_small() {
        assert_eq!(std::mem::size_of::<Message>(), 64);
        assert_eq!(std::mem::size_of::<Reshare>(), 40);
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

    #[test]
    fn placeholders_turn_into_reshares() {
        let mut st = Store::new();
        let k = key_of("x");
        let Entity::Message(m) = st.message_or_placeholder(k) else {
            panic!()
        };
        assert_eq!(st.find(k), Some(Entity::Message(m)));
        let r = st.replace_placeholder(
            k,
            m,
            Reshare {
                key: k,
                at: 0,
                original: 0,
                parent: NONE,
                author: 0,
                next: NONE,
                depth: 1,
            },
        );
        assert_eq!(st.find(k), Some(Entity::Reshare(r)));
        assert_eq!(st.msgs.live(), 0);
    }
}
