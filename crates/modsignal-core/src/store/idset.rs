//! [`IdSet`]: the event ids of one generation of the engine's duplicate check.

use hashbrown::{DefaultHashBuilder, HashTable};

use super::{hash32, spread};
use crate::event::MAX_ID_BYTES;

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
