//! Compact storage for millions of messages, reshares and accounts.
//!
//! Every record keeps its id whole, and every lookup compares the id it is asked for with the
//! id it finds: a hash only chooses where to look, it never stands for an id. So two distinct
//! ids never share a record, however they were chosen (an attacker can search for two post ids
//! with the same 64-bit hash; an unkeyed hash made that a way to take down someone else's post).
//! The hash is seeded at random per table, so that ids chosen to collide in one process do not
//! collide in another, and a crafted set of ids cannot turn a lookup into a scan.
//!
//! Records live in chunked slabs, so growing never copies the whole store and never leaves half
//! of a doubled vector unused. Each chunk keeps the ids of its records in one string of its own
//! (an [`IdRef`] is an offset and a length in it): no allocation per id, and a chunk's string
//! is compacted when half of it belongs to freed records. Offsets are 32 bits within one chunk
//! of 65,536 records, which ids of at most [`crate::event::MAX_ID_BYTES`] can never overflow.
//! The index is a `hashbrown::HashTable` of 8-byte entries (a 32-bit hash and the slot), so
//! growing it never reads a record.
//!
//! A message's reshares form a circular list threaded through [`Reshare::next`], with the
//! message holding its tail: two lists join in constant time. That is what lets a placeholder
//! that turns out to be a reshare hand its reshares to the original without visiting them, so
//! a chain of reshares that arrives in reverse costs linear work, not quadratic. Such a
//! placeholder stays behind as a *forwarding* record ([`BIT_FORWARD`]) until the reshares that
//! still name it as their original have been pointed at the real one (see
//! [`crate::engine`]'s `original_of`).

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::event::MAX_ID_BYTES;

/// An id kept outside the record store (removal lists, event ids, label sources).
pub(crate) type Id = compact_str::CompactString;

/// The value no slot reaches: "no message", "no account", "never given" in a record's field.
pub(crate) const NONE: u32 = u32::MAX;

/// A slot of a [`Slab`], as the records it holds name it: a handle of its own type per slab,
/// so that the compiler tells a message's slot from a reshare's or an account's.
pub(crate) trait Handle: Copy {
    fn from_raw(slot: u32) -> Self;
    fn raw(self) -> u32;
}

/// Declares a handle: four bytes, as the `u32` it wraps, and written in snapshots as that
/// `u32`, so that records keep their size and snapshots their bytes.
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[repr(transparent)]
        #[serde(transparent)]
        pub(crate) struct $name(pub(crate) u32);

        impl $name {
            /// None of them, as a field holds it ([`NONE`]).
            pub(crate) const NONE: $name = $name(NONE);
            /// The least and the greatest value, the bounds of a range over keys that hold one.
            #[allow(dead_code, reason = "not every handle bounds a range")]
            pub(crate) const MIN: $name = $name(0);
            #[allow(dead_code, reason = "not every handle bounds a range")]
            pub(crate) const MAX: $name = $name(u32::MAX);

            /// Its place in a vector with one element per slot.
            #[inline]
            pub(crate) fn usize(self) -> usize {
                self.0 as usize
            }
        }

        impl Handle for $name {
            #[inline]
            fn from_raw(slot: u32) -> Self {
                $name(slot)
            }
            #[inline]
            fn raw(self) -> u32 {
                self.0
            }
        }
    };
}

handle!(
    /// A message's slot in [`Store::msgs`].
    MsgIx
);
handle!(
    /// A reshare's slot in [`Store::rss`].
    ReshareIx
);
handle!(
    /// An account's handle in [`Users`].
    UserIx
);
handle!(
    /// A labelled message's entry in the engine's table of hot messages.
    HotIx
);

const RESHARE_TAG: u32 = 1 << 31;
const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;
/// A chunk's id string is compacted once this many bytes, and half of it, belong to freed
/// records.
const COMPACT_AFTER: usize = 1 << 16;

/// Where a record's id lies in its chunk's id string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct IdRef {
    off: u32,
    len: u32,
}

/// A record of a slab: it carries the place of its id.
pub(crate) trait Record {
    /// What names a slot of this record's slab.
    type Ix: Handle;
    fn id_ref(&self) -> IdRef;
    fn set_id_ref(&mut self, r: IdRef);
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Chunk<T> {
    items: Vec<T>,
    ids: String,
    /// Bytes of `ids` that belong to freed records.
    dead: u32,
}

/// A vector in fixed-size chunks, with a free list, and the ids of its records.
pub(crate) struct Slab<T> {
    chunks: Vec<Chunk<T>>,
    len: u32,
    free: Vec<u32>,
}

impl<T: Record> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab {
            chunks: Vec::new(),
            len: 0,
            free: Vec::new(),
        }
    }
    /// Stores `value` with id `id`, in a free slot if there is one.
    pub(crate) fn push(&mut self, mut value: T, id: &str) -> T::Ix {
        debug_assert!(id.len() <= MAX_ID_BYTES);
        let ix = if let Some(ix) = self.free.pop() {
            ix
        } else {
            let ix = self.len;
            assert!(ix < RESHARE_TAG, "slab full");
            if (ix as usize).is_multiple_of(CHUNK) {
                self.chunks.push(Chunk {
                    items: Vec::with_capacity(CHUNK),
                    ids: String::new(),
                    dead: 0,
                });
            }
            self.len += 1;
            ix
        };
        let chunk = &mut self.chunks[(ix >> CHUNK_BITS) as usize];
        value.set_id_ref(IdRef {
            off: chunk.ids.len() as u32,
            len: id.len() as u32,
        });
        chunk.ids.push_str(id);
        let i = ix as usize & (CHUNK - 1);
        if i == chunk.items.len() {
            chunk.items.push(value);
        } else {
            chunk.items[i] = value;
        }
        T::Ix::from_raw(ix)
    }
    #[inline]
    pub(crate) fn get(&self, ix: T::Ix) -> &T {
        let ix = ix.raw();
        &self.chunks[(ix >> CHUNK_BITS) as usize].items[ix as usize & (CHUNK - 1)]
    }
    #[inline]
    pub(crate) fn get_mut(&mut self, ix: T::Ix) -> &mut T {
        let ix = ix.raw();
        &mut self.chunks[(ix >> CHUNK_BITS) as usize].items[ix as usize & (CHUNK - 1)]
    }
    /// The id of the record in slot `ix` (empty for a freed or forwarding record).
    #[inline]
    pub(crate) fn id(&self, ix: T::Ix) -> &str {
        self.text(ix, self.get(ix).id_ref())
    }
    /// The id at `r` in the string of slot `ix`'s chunk: what an index entry that carries the
    /// place of its id reads, without reading the record.
    #[inline]
    fn text(&self, ix: T::Ix, r: IdRef) -> &str {
        &self.chunks[(ix.raw() >> CHUNK_BITS) as usize].ids[r.off as usize..(r.off + r.len) as usize]
    }
    /// The slots of the chunk that holds slot `ix`, as numbers ([`Handle::from_raw`] names
    /// each).
    fn chunk_slots(&self, ix: T::Ix) -> std::ops::Range<u32> {
        let ix = ix.raw();
        let first = ix & !(CHUNK as u32 - 1);
        first..first + self.chunks[(ix >> CHUNK_BITS) as usize].items.len() as u32
    }
    /// The number of slots ever used, free ones included: indices below it are valid.
    pub(crate) fn slots(&self) -> u32 {
        self.len
    }
    /// Every slot ever used, free ones included.
    pub(crate) fn handles(&self) -> impl Iterator<Item = T::Ix> + use<T> {
        (0..self.len).map(T::Ix::from_raw)
    }
    /// Forgets the id of the record in slot `ix`, keeping the record. Returns whether its
    /// chunk's ids were compacted (moved), so that an index that carries their places can
    /// take the new ones.
    #[must_use]
    pub(crate) fn clear_id(&mut self, ix: T::Ix) -> bool {
        let ix = ix.raw();
        let chunk = &mut self.chunks[(ix >> CHUNK_BITS) as usize];
        let item = &mut chunk.items[ix as usize & (CHUNK - 1)];
        chunk.dead += item.id_ref().len;
        item.set_id_ref(IdRef::default());
        if chunk.dead as usize >= COMPACT_AFTER && chunk.dead as usize * 2 >= chunk.ids.len() {
            let mut ids = String::with_capacity(chunk.ids.len() - chunk.dead as usize);
            for item in &mut chunk.items {
                let r = item.id_ref();
                if r.len > 0 {
                    let off = ids.len() as u32;
                    ids.push_str(&chunk.ids[r.off as usize..(r.off + r.len) as usize]);
                    item.set_id_ref(IdRef { off, len: r.len });
                }
            }
            chunk.ids = ids;
            chunk.dead = 0;
            return true;
        }
        false
    }
    /// Marks a slot reusable and forgets its id. The caller has already unlinked it from
    /// every index.
    #[must_use]
    pub(crate) fn release(&mut self, ix: T::Ix) -> bool {
        self.free.push(ix.raw());
        self.clear_id(ix)
    }
    pub(crate) fn live(&self) -> usize {
        self.len as usize - self.free.len()
    }
    /// Which slots are free, as a bit per slot.
    pub(crate) fn free_bits(&self) -> Vec<bool> {
        let mut bits = vec![false; self.len as usize];
        for &f in &self.free {
            bits[f as usize] = true;
        }
        bits
    }
}

impl<T: Record + serde::Serialize> serde::Serialize for Slab<T> {
    /// The chunks (records and id strings) and the free list: what a snapshot keeps.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.chunks)?;
        t.serialize_element(&self.free)?;
        t.end()
    }
}

impl<'de, T: Record + serde::Deserialize<'de>> serde::Deserialize<'de> for Slab<T> {
    /// The inverse of serializing, refusing what a damaged snapshot could hold: a chunk of
    /// the wrong size, an id outside its chunk's string or not on character boundaries, a free
    /// list naming a slot that does not exist or naming one twice.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (chunks, free): (Vec<Chunk<T>>, Vec<u32>) = serde::Deserialize::deserialize(d)?;
        let n = chunks.len();
        let mut len = 0u64;
        for (i, c) in chunks.iter().enumerate() {
            if c.items.len() > CHUNK || (i + 1 < n && c.items.len() != CHUNK) || c.ids.len() > u32::MAX as usize {
                return Err(D::Error::custom("a slab chunk of the wrong size"));
            }
            for item in &c.items {
                let r = item.id_ref();
                let end = r.off as usize + r.len as usize;
                if c.ids.get(r.off as usize..end).is_none() {
                    return Err(D::Error::custom("an id outside its chunk"));
                }
            }
            len += c.items.len() as u64;
        }
        let len = u32::try_from(len)
            .ok()
            .filter(|&l| l < RESHARE_TAG)
            .ok_or_else(|| D::Error::custom("too many slots"))?;
        let mut seen = vec![false; len as usize];
        for &f in &free {
            if f >= len || std::mem::replace(&mut seen[f as usize], true) {
                return Err(D::Error::custom("a free list naming a slot twice or none"));
            }
        }
        let mut chunks = chunks;
        for c in &mut chunks {
            c.items.reserve_exact(CHUNK - c.items.len());
        }
        Ok(Slab { chunks, len, free })
    }
}

/// A tracked message: a post seen in the stream, or a placeholder for an id that events
/// referred to before (or without) its post.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Message {
    pub id: IdRef,
    /// Event time of the post; `i64::MIN` while the post has not been seen.
    pub posted_at: i64,
    /// The newest event time of any event that touched this message.
    pub last_at: i64,
    /// The author's handle; for a forwarding record ([`BIT_FORWARD`]), the reshare it became.
    /// Read through [`Message::author`] or [`Message::forwarded_to`], which say which it is.
    author: u32,
    pub reshares: u32,
    pub quotes: u32,
    pub replies: u32,
    /// Cumulative impressions, the largest count seen; `NONE` when never given.
    pub impressions: u32,
    /// The tail of the circular list of this message's reshares (see [`Store::link`]).
    pub tail: ReshareIx,
    /// The handle of the first account the post mentions, or `NONE`.
    pub mention: UserIx,
    /// Index into the hot table when the message carries a label.
    pub hot: HotIx,
    /// How many reshare records name this slot as their original: a forwarding record is freed
    /// when the last of them has been pointed at the real original.
    pub refs: u32,
    pub bits: u16,
    /// A direct message's recipients, counted up to `u16::MAX` (its audience); 0 when not
    /// given. It fills what was padding: a message stays 64 bytes.
    pub recipients: u16,
}

impl Record for Message {
    type Ix = MsgIx;
    fn id_ref(&self) -> IdRef {
        self.id
    }
    fn set_id_ref(&mut self, r: IdRef) {
        self.id = r;
    }
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
/// `mention` is the author of the message this post replies to (it mentions nobody).
pub(crate) const BIT_TO_REPLIED: u16 = 1 << 6;
/// `mention` is the author of the message this post quotes (it mentions nobody and its reply,
/// if any, names no author).
pub(crate) const BIT_TO_QUOTED: u16 = 1 << 7;
const AUDIENCE_SHIFT: u16 = 1;

impl Message {
    pub(crate) fn placeholder() -> Message {
        Message {
            id: IdRef::default(),
            posted_at: i64::MIN,
            last_at: i64::MIN,
            author: NONE,
            reshares: 0,
            quotes: 0,
            replies: 0,
            impressions: NONE,
            tail: ReshareIx::NONE,
            mention: UserIx::NONE,
            hot: HotIx::NONE,
            refs: 0,
            bits: 0,
            recipients: 0,
        }
    }
    pub(crate) fn known(&self) -> bool {
        self.posted_at != i64::MIN
    }
    pub(crate) fn forwards(&self) -> bool {
        self.bits & BIT_FORWARD != 0
    }
    /// The author's handle (`NONE` while the post has not been seen), for a record that is not
    /// a forwarding record: that one names a reshare instead ([`Message::forwarded_to`]).
    pub(crate) fn author(&self) -> UserIx {
        UserIx(self.author)
    }
    pub(crate) fn set_author(&mut self, u: UserIx) {
        self.author = u.0;
    }
    /// The reshare a forwarding record ([`BIT_FORWARD`]) became, which its `author` field holds
    /// in place of an account.
    pub(crate) fn forwarded_to(&self) -> ReshareIx {
        ReshareIx(self.author)
    }
    /// Makes this placeholder a forwarding record to reshare `r`, the reshare it became.
    pub(crate) fn forward_to(&mut self, r: ReshareIx) {
        self.bits |= BIT_FORWARD;
        self.author = r.0;
    }
    pub(crate) fn audience(&self) -> crate::event::Audience {
        use crate::event::Audience::{Direct, Followers, Group, Public};
        match (self.bits >> AUDIENCE_SHIFT) & 3 {
            0 => Public,
            1 => Followers,
            2 => Direct,
            _ => Group,
        }
    }
    pub(crate) fn set_audience(&mut self, a: crate::event::Audience) {
        use crate::event::Audience::{Direct, Followers, Group, Public};
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
    pub id: IdRef,
    pub at: i64,
    /// The original message, or a forwarding record that leads to it.
    pub original: MsgIx,
    /// The reshare this one was made through (`of` or `via`), or `NONE` for a direct reshare
    /// (or one whose original field names a forwarding record: see [`BIT_FORWARD`]).
    pub parent: ReshareIx,
    pub author: UserIx,
    /// The next reshare in the circular list of the original's reshares.
    pub next: ReshareIx,
}

impl Record for Reshare {
    type Ix = ReshareIx;
    fn id_ref(&self) -> IdRef {
        self.id
    }
    fn set_id_ref(&mut self, r: IdRef) {
        self.id = r;
    }
}

/// What an id in the index points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entity {
    Message(MsgIx),
    Reshare(ReshareIx),
}

impl Entity {
    fn slot(self) -> u32 {
        match self {
            Entity::Message(i) => i.0,
            Entity::Reshare(i) => i.0 | RESHARE_TAG,
        }
    }
    fn from_slot(s: u32) -> Entity {
        if s & RESHARE_TAG != 0 {
            Entity::Reshare(ReshareIx(s & !RESHARE_TAG))
        } else {
            Entity::Message(MsgIx(s))
        }
    }
}

/// An entry of an index: the slot, 32 bits of its id's hash and the place of the id in its
/// chunk's string, so that growing the table never reads a record and a lookup reads the id's
/// bytes without reading the record first.
#[derive(Clone, Copy)]
#[expect(
    clippy::struct_field_names,
    reason = "a slot of the index names the slab slot it points to"
)]
struct Slot {
    hash: u32,
    slot: u32,
    id: IdRef,
}

/// The 32 bits of a seeded hash an index keeps, and the 64-bit hash `hashbrown` places by
/// (its low bits choose the bucket, its top seven the tag).
fn hash32(hasher: &DefaultHashBuilder, id: &str) -> u32 {
    let h = hasher.hash_one(id);
    (h ^ (h >> 32)) as u32
}

fn spread(h: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(h)
}

/// Messages and reshares, found by id.
pub(crate) struct Store {
    pub msgs: Slab<Message>,
    pub rss: Slab<Reshare>,
    index: HashTable<Slot>,
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
            Entity::Message(i) => msgs.id(i),
            Entity::Reshare(i) => rss.id(i),
        }
    }

    /// The id an index entry points at, read through the place it carries.
    #[inline]
    fn entry_id<'a>(msgs: &'a Slab<Message>, rss: &'a Slab<Reshare>, e: &Slot) -> &'a str {
        match Entity::from_slot(e.slot) {
            Entity::Message(i) => msgs.text(i, e.id),
            Entity::Reshare(i) => rss.text(i, e.id),
        }
    }

    fn place(&self, e: Entity) -> IdRef {
        match e {
            Entity::Message(i) => self.msgs.get(i).id,
            Entity::Reshare(i) => self.rss.get(i).id,
        }
    }

    /// After a chunk's ids moved, its index entries take their new places.
    fn replace_places(&mut self, e: Entity) {
        let slots = match e {
            Entity::Message(i) => self.msgs.chunk_slots(i),
            Entity::Reshare(i) => self.rss.chunk_slots(i),
        };
        for ix in slots {
            let e = match e {
                Entity::Message(_) => Entity::Message(Handle::from_raw(ix)),
                Entity::Reshare(_) => Entity::Reshare(Handle::from_raw(ix)),
            };
            let id = Self::slot_id(&self.msgs, &self.rss, e.slot());
            if id.is_empty() {
                continue;
            }
            let h = hash32(&self.hasher, id);
            let place = self.place(e);
            if let Some(entry) = self.index.find_mut(spread(h), |x| x.slot == e.slot()) {
                entry.id = place;
            }
        }
    }

    /// The id of message slot `m`.
    pub(crate) fn msg_id(&self, m: MsgIx) -> &str {
        self.msgs.id(m)
    }

    /// The id of reshare slot `r`.
    pub(crate) fn rs_id(&self, r: ReshareIx) -> &str {
        self.rss.id(r)
    }

    pub(crate) fn find(&self, id: &str) -> Option<Entity> {
        let (msgs, rss) = (&self.msgs, &self.rss);
        let h = hash32(&self.hasher, id);
        self.index
            .find(spread(h), |e| e.hash == h && Self::entry_id(msgs, rss, e) == id)
            .map(|e| Entity::from_slot(e.slot))
    }

    fn insert_slot(&mut self, id_hash: u32, e: Entity) {
        let entry = Slot {
            hash: id_hash,
            slot: e.slot(),
            id: self.place(e),
        };
        self.index.insert_unique(spread(id_hash), entry, |e| spread(e.hash));
    }

    /// The message for `id`, created as a placeholder if the id is new, or the reshare the id
    /// names.
    pub(crate) fn message_or_placeholder(&mut self, id: &str) -> Entity {
        // One probe of the index whether the id is new or not: most posts are new ids.
        let (msgs, rss) = (&self.msgs, &self.rss);
        let h = hash32(&self.hasher, id);
        let entry = self.index.entry(
            spread(h),
            |e| e.hash == h && Self::entry_id(msgs, rss, e) == id,
            |e| spread(e.hash),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => Entity::from_slot(e.get().slot),
            hashbrown::hash_table::Entry::Vacant(v) => {
                let ix = self.msgs.push(Message::placeholder(), id);
                v.insert(Slot {
                    hash: h,
                    slot: Entity::Message(ix).slot(),
                    id: self.msgs.get(ix).id,
                });
                Entity::Message(ix)
            }
        }
    }

    /// Adds a reshare record with id `id` to the index, unlinked: the caller links it with
    /// [`Store::link`].
    pub(crate) fn insert_reshare(&mut self, r: Reshare, id: &str) -> ReshareIx {
        let h = hash32(&self.hasher, id);
        let ix = self.rss.push(r, id);
        self.insert_slot(h, Entity::Reshare(ix));
        ix
    }

    /// Adds reshare `r` to the circular list of message `m`.
    pub(crate) fn link(&mut self, m: MsgIx, r: ReshareIx) {
        let tail = self.msgs.get(m).tail;
        if tail == ReshareIx::NONE {
            self.rss.get_mut(r).next = r;
            self.msgs.get_mut(m).tail = r;
        } else {
            let head = self.rss.get(tail).next;
            self.rss.get_mut(r).next = head;
            self.rss.get_mut(tail).next = r;
        }
    }

    /// Moves every reshare in the list of `from` to the list of `to`, in constant time.
    pub(crate) fn splice(&mut self, from: MsgIx, to: MsgIx) {
        let b = std::mem::replace(&mut self.msgs.get_mut(from).tail, ReshareIx::NONE);
        if b == ReshareIx::NONE {
            return;
        }
        let a = self.msgs.get(to).tail;
        if a != ReshareIx::NONE {
            let a_head = self.rss.get(a).next;
            let b_head = self.rss.get(b).next;
            self.rss.get_mut(a).next = b_head;
            self.rss.get_mut(b).next = a_head;
        }
        self.msgs.get_mut(to).tail = b;
    }

    /// The reshares in the list of message `m`.
    pub(crate) fn reshares_of(&self, m: MsgIx) -> Vec<ReshareIx> {
        let tail = self.msgs.get(m).tail;
        let mut list = Vec::new();
        if tail == ReshareIx::NONE {
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
        let add = |store: &mut Store, e: Entity| {
            let id = Self::slot_id(&store.msgs, &store.rss, e.slot());
            if store.find(id).is_some() {
                return false;
            }
            let h = hash32(&store.hasher, id);
            store.insert_slot(h, e);
            true
        };
        for ix in store.msgs.handles() {
            if !free_msgs[ix.usize()] && !store.msgs.get(ix).forwards() && !add(&mut store, Entity::Message(ix)) {
                return None;
            }
        }
        for ix in store.rss.handles() {
            if !free_rss[ix.usize()] && !add(&mut store, Entity::Reshare(ix)) {
                return None;
            }
        }
        Some(store)
    }

    /// Forgets `id`. The caller releases the slot afterwards.
    #[cfg(test)]
    pub(crate) fn remove_id(&mut self, id: &str) {
        let (msgs, rss) = (&self.msgs, &self.rss);
        let h = hash32(&self.hasher, id);
        if let Ok(entry) = self
            .index
            .find_entry(spread(h), |e| e.hash == h && Self::entry_id(msgs, rss, e) == id)
        {
            entry.remove();
        }
    }

    /// Forgets the index entry of a message or reshare slot, by its slot.
    fn remove_slot(&mut self, e: Entity) {
        let id = Self::slot_id(&self.msgs, &self.rss, e.slot());
        let h = hash32(&self.hasher, id);
        if let Ok(entry) = self.index.find_entry(spread(h), |x| x.slot == e.slot()) {
            entry.remove();
        }
    }

    /// Frees a message slot, dropping its id; its index entry, if it still has one, goes too.
    pub(crate) fn free_message(&mut self, m: MsgIx) {
        if !self.msgs.get(m).forwards() {
            self.remove_slot(Entity::Message(m));
        }
        let msg = self.msgs.get_mut(m);
        msg.bits = BIT_DEAD;
        msg.tail = ReshareIx::NONE;
        msg.hot = HotIx::NONE;
        if self.msgs.release(m) {
            self.replace_places(Entity::Message(m));
        }
    }

    /// Forgets a reshare and frees its slot.
    pub(crate) fn free_reshare(&mut self, r: ReshareIx) {
        self.remove_slot(Entity::Reshare(r));
        if self.rss.release(r) {
            self.replace_places(Entity::Reshare(r));
        }
    }

    /// Gives the id of placeholder `msg` to a new reshare record `r`, which takes its place
    /// in the index. The placeholder keeps no id: it is the caller's to forward or free.
    pub(crate) fn replace_placeholder(&mut self, msg: MsgIx, r: Reshare) -> ReshareIx {
        self.remove_slot(Entity::Message(msg));
        let id = self.msgs.id(msg);
        let h = hash32(&self.hasher, id);
        let ix = self.rss.push(r, id);
        self.insert_slot(h, Entity::Reshare(ix));
        if self.msgs.clear_id(msg) {
            self.replace_places(Entity::Message(msg));
        }
        ix
    }
}

/// People, interned: a 4-byte handle per account id, with the id kept whole because flags name
/// their subject's account and lookups compare it. Subjects, people mentioned or named as a
/// label's target, and reporters are all accounts here; only subjects are ever written out.
///
/// An account is forgotten (its handle reused) once nothing in state refers to it and it has
/// been quiet for the retention horizon: see the engine's retention sweep.
pub(crate) struct Users {
    /// 32 bits of the id's hash, the handle and a copy of the follower count together:
    /// accounts are looked up on most events, and the follower count is all most of those
    /// lookups need (is the count given larger?). The id is still compared on every lookup.
    index: HashTable<Account>,
    #[expect(
        clippy::struct_field_names,
        reason = "the slab of `User` records, as `Store` has `msgs` and `rss`"
    )]
    users: Slab<User>,
    hasher: DefaultHashBuilder,
}

/// An entry of the account index: the id's hash, the handle, a copy of [`User::followers`]
/// (kept equal to it by [`Users::intern`], its only writer), and the account's last activity,
/// so that most lookups write nothing outside the index.
#[derive(Clone, Copy)]
struct Account {
    hash: u32,
    ix: UserIx,
    /// Where the id lies in its chunk's string: a lookup reads the index and the id.
    id: IdRef,
    followers: u32,
    /// Seconds since [`crate::time::MIN_TS`] of the newest event that named the account:
    /// precise enough for a horizon of days, and 32 bits cover the years events can be in.
    last: u32,
}

fn last_secs(at: i64) -> u32 {
    ((at - crate::time::MIN_TS.0).max(0) / 1000).min(i64::from(u32::MAX)) as u32
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct User {
    name: IdRef,
    /// The largest follower count any event gave: the peak audience, which never shrinks.
    /// Written only through [`Users::intern`], which keeps the index's copy.
    pub followers: u32,
    /// Whether the account is a minor, as said by the newest event that said it.
    pub minor: bool,
    pub minor_at: i64,
}

impl Record for User {
    type Ix = UserIx;
    fn id_ref(&self) -> IdRef {
        self.name
    }
    fn set_id_ref(&mut self, r: IdRef) {
        self.name = r;
    }
}

impl User {
    /// A measure for the revision that grows whenever what is said of the account's age
    /// changes: `(minor_at, minor)` only grows (the newest statement wins, and on a tie `true`
    /// wins), and this maps that order onto integers. It is 0 until an event says anything.
    pub(crate) fn minor_term(&self) -> u64 {
        if self.minor_at == i64::MIN {
            0
        } else {
            1 + 2 * self.minor_at.saturating_sub(crate::time::MIN_TS.0).max(0) as u64 + u64::from(self.minor)
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
    pub(crate) fn find(&self, id: &str) -> Option<UserIx> {
        let h = hash32(&self.hasher, id);
        let users = &self.users;
        self.index
            .find(spread(h), |a| a.hash == h && users.text(a.ix, a.id) == id)
            .map(|a| a.ix)
    }

    /// The handle of an account id, interned if new, with its follower count raised to
    /// `followers` if that is larger and its last activity moved to `at`; also the count it
    /// had before when it grew (0 for a new account).
    pub(crate) fn intern(&mut self, id: &str, followers: Option<u32>, at: i64) -> (UserIx, Option<u32>) {
        let h = hash32(&self.hasher, id);
        let users = &mut self.users;
        if let Some(a) = self
            .index
            .find_mut(spread(h), |a| a.hash == h && users.text(a.ix, a.id) == id)
        {
            a.last = a.last.max(last_secs(at));
            return match followers {
                Some(f) if f > a.followers => {
                    let before = a.followers;
                    a.followers = f;
                    users.get_mut(a.ix).followers = f;
                    (a.ix, Some(before))
                }
                _ => (a.ix, None),
            };
        }
        let followers = followers.unwrap_or(0);
        let user = User {
            name: IdRef::default(),
            followers,
            minor: false,
            minor_at: i64::MIN,
        };
        let ix = self.users.push(user, id);
        let account = Account {
            hash: h,
            ix,
            id: self.users.get(ix).name,
            followers,
            last: last_secs(at),
        };
        self.index.insert_unique(spread(h), account, |a| spread(a.hash));
        (ix, (followers > 0).then_some(0))
    }

    pub(crate) fn name(&self, ix: UserIx) -> &str {
        self.users.id(ix)
    }
    pub(crate) fn get(&self, ix: UserIx) -> &User {
        self.users.get(ix)
    }
    /// The account's age statement, the one part of a record written in place (the follower
    /// count goes through [`Users::intern`]).
    pub(crate) fn minor_mut(&mut self, ix: UserIx) -> (&mut bool, &mut i64) {
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
    /// Whether account `ix` has been quiet since `horizon` (event time).
    pub(crate) fn quiet_since(&self, ix: UserIx, horizon: i64) -> bool {
        let h = hash32(&self.hasher, self.users.id(ix));
        self.index
            .find(spread(h), |a| a.ix == ix)
            .is_none_or(|a| i64::from(a.last) * 1000 + crate::time::MIN_TS.0 < horizon)
    }

    /// Every account's last activity by handle (0 for a free slot), for a snapshot: it lives
    /// in the index, which a snapshot does not keep.
    pub(crate) fn lasts(&self) -> Vec<u32> {
        let mut v = vec![0; self.users.slots() as usize];
        for a in &self.index {
            v[a.ix.usize()] = a.last;
        }
        v
    }

    /// Forgets an account: nothing in state refers to its handle any more.
    pub(crate) fn release(&mut self, ix: UserIx) {
        let h = hash32(&self.hasher, self.users.id(ix));
        if let Ok(entry) = self.index.find_entry(spread(h), |a| a.ix == ix) {
            entry.remove();
        }
        if self.users.release(ix) {
            // The chunk's ids moved: its index entries take their new places.
            for u in self.users.chunk_slots(ix).map(UserIx) {
                let name = self.users.id(u);
                if name.is_empty() {
                    continue;
                }
                let h = hash32(&self.hasher, name);
                let place = self.users.get(u).name;
                if let Some(a) = self.index.find_mut(spread(h), |a| a.ix == u) {
                    a.id = place;
                }
            }
        }
    }
    /// The accounts' slab: what a snapshot keeps.
    pub(crate) fn slab(&self) -> &Slab<User> {
        &self.users
    }
    /// Accounts from their slab and last activities ([`Users::lasts`]), the index rebuilt.
    /// `None` if two live records share an id (a damaged snapshot).
    pub(crate) fn from_slab(users: Slab<User>, lasts: &[u32]) -> Option<Users> {
        if lasts.len() != users.slots() as usize {
            return None;
        }
        let hasher = DefaultHashBuilder::default();
        let mut index = HashTable::with_capacity(users.live());
        let free = users.free_bits();
        for ix in users.handles() {
            if free[ix.usize()] {
                continue;
            }
            let (name, u) = (users.id(ix), users.get(ix));
            let h = hash32(&hasher, name);
            if index
                .find(spread(h), |a: &Account| a.hash == h && users.id(a.ix) == name)
                .is_some()
            {
                return None;
            }
            let account = Account {
                hash: h,
                ix,
                id: u.name,
                followers: u.followers,
                last: lasts[ix.usize()],
            };
            index.insert_unique(spread(h), account, |a| spread(a.hash));
        }
        Some(Users { index, users, hasher })
    }
}

/// A set of ids kept whole in one string (no allocation per id): the event ids of one
/// generation of the engine's duplicate check.
pub(crate) struct IdSet {
    ids: String,
    index: HashTable<Entry>,
    hasher: DefaultHashBuilder,
}

#[derive(Clone, Copy)]
struct Entry {
    hash: u32,
    len: u32,
    off: u64,
}

impl IdSet {
    pub(crate) fn new() -> IdSet {
        IdSet {
            ids: String::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }
    fn text(&self, e: &Entry) -> &str {
        &self.ids[e.off as usize..e.off as usize + e.len as usize]
    }
    pub(crate) fn contains(&self, id: &str) -> bool {
        let h = hash32(&self.hasher, id);
        self.index
            .find(spread(h), |e| e.hash == h && self.text(e) == id)
            .is_some()
    }
    /// Adds `id`; whether it was new.
    pub(crate) fn insert(&mut self, id: &str) -> bool {
        if self.contains(id) {
            return false;
        }
        let h = hash32(&self.hasher, id);
        let e = Entry {
            hash: h,
            len: id.len() as u32,
            off: self.ids.len() as u64,
        };
        self.ids.push_str(id);
        self.index.insert_unique(spread(h), e, |e| spread(e.hash));
        true
    }
    pub(crate) fn clear(&mut self) {
        self.ids.clear();
        self.index.clear();
    }
}

impl serde::Serialize for IdSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.index.iter().map(|e| self.text(e)))
    }
}

impl<'de> serde::Deserialize<'de> for IdSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ids: Vec<&str> = serde::Deserialize::deserialize(d)?;
        let mut set = IdSet::new();
        for id in ids {
            if id.len() > MAX_ID_BYTES {
                return Err(serde::de::Error::custom("an event id longer than ids are kept"));
            }
            set.insert(id);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stay_small() {
        assert_eq!(std::mem::size_of::<Message>(), 64);
        assert_eq!(std::mem::size_of::<Reshare>(), 32);
        assert_eq!(std::mem::size_of::<User>(), 24);
        assert_eq!(std::mem::size_of::<Account>(), 24);
        // The handles are the `u32`s they wrap: index entries keep their size too.
        assert_eq!(std::mem::size_of::<Slot>(), 16);
        assert_eq!(std::mem::size_of::<MsgIx>(), 4);
        assert_eq!(std::mem::size_of::<ReshareIx>(), 4);
        assert_eq!(std::mem::size_of::<UserIx>(), 4);
        assert_eq!(std::mem::size_of::<HotIx>(), 4);
    }

    fn reshare() -> Reshare {
        Reshare {
            id: IdRef::default(),
            at: 0,
            original: MsgIx::NONE,
            parent: ReshareIx::NONE,
            author: UserIx(0),
            next: ReshareIx::NONE,
        }
    }

    #[test]
    fn slab_chunks_reuses_and_compacts_its_ids() {
        let mut s: Slab<Reshare> = Slab::new();
        let n = CHUNK as u32 * 2 + 5;
        for i in 0..n {
            assert_eq!(s.push(reshare(), &format!("id-{i}")), ReshareIx(i));
        }
        assert_eq!(s.id(ReshareIx(CHUNK as u32 + 1)), format!("id-{}", CHUNK + 1));
        let _ = s.release(ReshareIx(7));
        assert_eq!(s.push(reshare(), "seven"), ReshareIx(7));
        assert_eq!(s.id(ReshareIx(7)), "seven");
        // Freeing most of the first chunk compacts its ids; the rest keep theirs.
        for i in 100..CHUNK as u32 {
            let _ = s.release(ReshareIx(i));
        }
        // What freed records leave behind stays under the compaction threshold.
        assert!(
            s.chunks[0].ids.len() < COMPACT_AFTER + 2000,
            "{}",
            s.chunks[0].ids.len()
        );
        assert!(s.chunks[0].ids.len() < CHUNK * 4, "compacted at least once");
        assert_eq!(s.id(ReshareIx(99)), "id-99");
        assert_eq!(s.id(ReshareIx(CHUNK as u32 + 2)), format!("id-{}", CHUNK + 2));
        // What a snapshot keeps comes back the same.
        let bytes = postcard::to_allocvec(&s).unwrap();
        let back: Slab<Reshare> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.id(ReshareIx(99)), "id-99");
        assert_eq!(back.live(), s.live());
    }

    /// The index carries the place of each id: when a chunk's ids are compacted, lookups still
    /// find every record that is left, and none of those freed.
    #[test]
    fn lookups_follow_ids_moved_by_compaction() {
        let mut st = Store::new();
        let n = CHUNK as u32 + 10;
        let ids: Vec<String> = (0..n)
            .map(|i| format!("at://did:plc:x/app.bsky.feed.repost/{i:08}"))
            .collect();
        for id in &ids {
            st.insert_reshare(reshare(), id);
        }
        for i in (0..n).filter(|i| i % 10 != 0) {
            st.free_reshare(ReshareIx(i));
        }
        assert!(st.rss.chunks[0].ids.len() < CHUNK * 20, "compacted");
        for (i, id) in ids.iter().enumerate() {
            let want = (i % 10 == 0).then_some(Entity::Reshare(ReshareIx(i as u32)));
            assert_eq!(st.find(id), want, "{id}");
        }
        let mut users = Users::new();
        for id in &ids {
            users.intern(id, None, 0);
        }
        for i in (0..n).filter(|i| i % 10 != 0) {
            users.release(UserIx(i));
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(users.find(id), (i % 10 == 0).then_some(UserIx(i as u32)), "{id}");
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
        let r = st.replace_placeholder(m, reshare());
        assert_eq!(st.find("x"), Some(Entity::Reshare(r)));
        assert_eq!(st.rs_id(r), "x");
        assert_eq!(st.msg_id(m), "");
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
            let mut v: Vec<String> = st.reshares_of(m).iter().map(|&r| st.rs_id(r).to_owned()).collect();
            v.sort();
            v
        };
        for (m, id) in [(a, "a1"), (a, "a2"), (b, "b1"), (b, "b2"), (b, "b3")] {
            let r = st.insert_reshare(reshare(), id);
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
        assert_eq!(grew, None);
        assert_eq!(u.name(x), long);
        assert_eq!(u.name(y), "victim-user");
        assert_eq!(u.find("victim-user"), Some(y));
        assert_eq!(u.intern(&long, Some(9), 3).1, Some(5));
        u.release(y);
        assert_eq!(u.find("victim-user"), None);
        let (z, _) = u.intern("another", None, 3);
        assert_eq!(z, y, "a forgotten account's handle is reused");
        assert_eq!(u.name(z), "another");
        assert_eq!(u.name(x), long);
        assert_eq!(u.len(), 2);
    }
}
