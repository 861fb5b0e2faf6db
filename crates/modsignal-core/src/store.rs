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

/// An id kept outside the record store (removal lists, event ids, label sources).
pub(crate) type Id = compact_str::CompactString;

mod idset;
mod slab;
mod users;

pub(crate) use idset::IdSet;
use slab::RESHARE_TAG;
pub(crate) use slab::{Handle, HotIx, IdRef, MsgIx, NONE, Record, ReshareIx, Slab, UserIx};
pub(crate) use users::{User, Users};

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

#[cfg(test)]
mod tests {
    use super::slab::{CHUNK, COMPACT_AFTER};
    use super::users::Account;
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
        assert!(s.id_bytes(0) < COMPACT_AFTER + 2000, "{}", s.id_bytes(0));
        assert!(s.id_bytes(0) < CHUNK * 4, "compacted at least once");
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
        assert!(st.rss.id_bytes(0) < CHUNK * 20, "compacted");
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
