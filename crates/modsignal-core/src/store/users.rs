//! Accounts, interned: [`Users`].

use hashbrown::{DefaultHashBuilder, HashTable};

use super::{IdRef, Record, Slab, UserIx, hash32, spread};

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
pub(super) struct Account {
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
