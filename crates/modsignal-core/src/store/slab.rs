//! Chunked slabs: records in chunks of 65,536 with their ids whole in one string per chunk,
//! and the typed handles that name their slots.

use crate::event::MAX_ID_BYTES;

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

/// The bit of an index entry that says its slot is a reshare's: no slab grows to reach it.
pub(super) const RESHARE_TAG: u32 = 1 << 31;
const CHUNK_BITS: u32 = 16;
pub(super) const CHUNK: usize = 1 << CHUNK_BITS;
/// A chunk's id string is compacted once this many bytes, and half of it, belong to freed
/// records.
pub(super) const COMPACT_AFTER: usize = 1 << 16;

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
    pub(super) fn text(&self, ix: T::Ix, r: IdRef) -> &str {
        &self.chunks[(ix.raw() >> CHUNK_BITS) as usize].ids[r.off as usize..(r.off + r.len) as usize]
    }
    /// The slots of the chunk that holds slot `ix`, as numbers ([`Handle::from_raw`] names
    /// each).
    pub(super) fn chunk_slots(&self, ix: T::Ix) -> std::ops::Range<u32> {
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
    /// The length of chunk `c`'s string of ids, freed records' included: what compaction bounds.
    #[cfg(test)]
    pub(super) fn id_bytes(&self, c: usize) -> usize {
        self.chunks[c].ids.len()
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
