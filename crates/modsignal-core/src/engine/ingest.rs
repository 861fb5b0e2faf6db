//! Applying each kind of event to state.
//!
//! Every function here is a join on the engine's lattice: applying an event twice, or two
//! events in either order, leaves the same state. Work per event is bounded: no function here
//! visits all of a message's reshares or all of a sender's messages (that is left to the
//! credit-paid rebuilds of `hot` and the deferred marking of `Engine::mark_user`).

use super::{ApplyError, Engine, RemovalSeen, Reports, Who};
use crate::event::{Audience, EventKind, LabelCode};
use crate::exposure::{Change, What, insert_change, scope_ord, status_ord};
use crate::model::RemovalKind;
use crate::store::{
    BIT_REPLY, BIT_TO_QUOTED, BIT_TO_REPLIED, Entity, HotIx, Id, IdRef, MsgIx, NONE, Reshare, ReshareIx, UserIx,
};
use crate::time::Ts;

use super::hot::LabelEntry;

impl Engine {
    /// Applies one event's kind at event time `at`; the first removal it made, if any.
    pub(super) fn ingest(&mut self, kind: &EventKind<'_>, at: i64) -> Result<Option<RemovalSeen>, ApplyError> {
        match kind {
            EventKind::Post {
                id,
                author,
                audience,
                reply_to,
                reply_to_author,
                quote_of,
                quote_of_author,
                mentions,
                recipients,
            } => {
                let user = self.user(&author.id, author.followers, author.minor, at);
                // A direct message is addressed to its recipients; where they are not given, to
                // the accounts it mentions (as a Mastodon `direct` status is delivered). The
                // first of them is whom it addresses, and their number is its audience. Other
                // posts address the first account they mention; failing that, the author of
                // what they reply to, then of what they quote (a Bluesky reply mentions nobody),
                // unless that is the sender (a thread).
                let direct = *audience == Audience::Direct;
                let addressed = if direct && !recipients.is_empty() {
                    recipients
                } else {
                    mentions
                };
                let (addressee, how) = if let Some(p) = addressed.first() {
                    (Some(p), 0)
                } else {
                    // An author is read only beside what it wrote: a post that names the
                    // author of a reply it does not make answers no one.
                    let not_self = |a: &&std::borrow::Cow<'_, str>| **a != author.id;
                    let replied = reply_to_author.as_ref().filter(|_| reply_to.is_some());
                    let quoted = quote_of_author.as_ref().filter(|_| quote_of.is_some());
                    match replied.filter(not_self) {
                        Some(p) => (Some(p), BIT_TO_REPLIED),
                        None => (quoted.filter(not_self), BIT_TO_QUOTED),
                    }
                };
                let (mention, how) = match addressee {
                    Some(p) => (self.person(p, at), how),
                    None => (UserIx::NONE, 0),
                };
                let recipients = if direct {
                    u16::try_from(addressed.len()).unwrap_or(u16::MAX)
                } else {
                    0
                };
                self.post(
                    id,
                    at,
                    user,
                    *audience,
                    reply_to.as_deref(),
                    quote_of.as_deref(),
                    mention,
                    how,
                    recipients,
                )?;
            }
            EventKind::Reshare { id, of, author, via } => {
                let user = self.user(&author.id, author.followers, author.minor, at);
                self.reshare(id, of, via.as_deref(), at, user)?;
            }
            EventKind::Delete { id, by } => {
                return self.removal(
                    id,
                    Change {
                        at,
                        what: What::Delete(*by),
                    },
                );
            }
            EventKind::Restrict { id, by, scope } => {
                return self.removal(
                    id,
                    Change {
                        at,
                        what: What::Restrict(*by, scope_ord(*scope)),
                    },
                );
            }
            EventKind::Restore { id, by } => {
                self.removal(
                    id,
                    Change {
                        at,
                        what: What::Restore(*by),
                    },
                )?;
            }
            EventKind::Label {
                id,
                code,
                confidence,
                source,
                target,
                negate,
            } => {
                let target = match target {
                    Some(t) => self.person(t, at),
                    None => UserIx::NONE,
                };
                let entry = LabelEntry {
                    source: Id::new(source),
                    code: *code,
                    at,
                    confidence: *confidence,
                    negate: *negate,
                    target,
                    // Set by `label` from the id.
                    scope: UserIx::NONE,
                };
                self.label(id, entry)?;
            }
            EventKind::Report {
                id,
                reporter,
                by_target,
            } => self.report(id, at, reporter, *by_target),
            EventKind::Impressions { id, count } => {
                let m = self.resolve_message(id);
                let msg = self.store.msgs.get_mut(m);
                let count = (*count).min(u64::from(NONE - 1)) as u32;
                if msg.impressions == NONE || msg.impressions < count {
                    msg.impressions = count;
                }
                msg.touch(at);
                self.earn(m);
                self.mark(m, Who::AUTHOR);
            }
            EventKind::Account {
                user,
                status,
                minor,
                followers,
            } => {
                let u = self.user(user, *followers, *minor, at);
                if let Some(s) = status {
                    let limit = self.policy.limits.changes_per_account;
                    let list = self.accounts.entry(u).or_default();
                    let change = Change {
                        at,
                        what: What::Account(status_ord(*s)),
                    };
                    if list.len() >= limit as usize && list.binary_search(&change).is_err() {
                        return Err(ApplyError::Limit {
                            id: user.to_string(),
                            what: "account status changes",
                            setting: "changes_per_account",
                            limit,
                        });
                    }
                    if insert_change(list, change) {
                        self.mark_user(u, MsgIx::NONE);
                    }
                }
            }
        }
        Ok(None)
    }

    /// The handle of an account that sends or reshares, interned if new, with what the event
    /// says of its followers and age. When its follower count grows, the reach of every
    /// labelled message it reshared grows with it.
    fn user(&mut self, id: &str, followers: Option<u32>, minor: Option<bool>, at: i64) -> UserIx {
        let (u, before) = self.users.intern(id, followers, at);
        let mut changed = before.is_some();
        if let Some(m) = minor {
            let (minor, minor_at) = self.users.minor_mut(u);
            if (at, m) > (*minor_at, *minor) {
                // Even a statement that repeats the current value moves the revision (see
                // `User::minor_term`), so the subject's flags are evaluated again.
                changed = true;
                *minor = m;
                *minor_at = at;
            }
        }
        if let Some(old) = before {
            let delta = u64::from(self.users.get(u).followers - old);
            self.followers_grew(u, delta);
        }
        if changed {
            self.mark_user(u, MsgIx::NONE);
        }
        u
    }

    /// The handle of a person an event names without them acting (a mention, a label's
    /// target, a reporter): kept in state, compared whole, never written.
    fn person(&mut self, id: &str, at: i64) -> UserIx {
        self.users.intern(id, None, at).0
    }

    /// The message an id refers to: a reshare's id refers to its original. Creates a
    /// placeholder for an id not seen yet.
    pub(super) fn resolve_message(&mut self, id: &str) -> MsgIx {
        match self.store.message_or_placeholder(id) {
            Entity::Message(m) => m,
            Entity::Reshare(r) => self.original_of(r),
        }
    }

    /// The message an id refers to, and whom an event sent to it is about: the message itself
    /// (`NONE`), or for a reshare's id, the resharer. Creates a placeholder for an id not seen
    /// yet; if it turns out to be a reshare, what was sent to it moves to the resharer then.
    fn resolve_scoped(&mut self, id: &str) -> (MsgIx, UserIx) {
        match self.store.message_or_placeholder(id) {
            Entity::Message(m) => (m, UserIx::NONE),
            Entity::Reshare(r) => (self.original_of(r), self.store.rss.get(r).author),
        }
    }

    /// The original message of reshare `r`. A reshare made of a placeholder that later turned
    /// out to be a reshare itself names a forwarding record; this follows the forwarding
    /// records to the real original and points every reshare on the way straight at it (with
    /// the reshare the placeholder became as its parent), so each forwarding step is taken once.
    /// Callers that change a hot message's structure this way have it rebuilt (`rebuild` calls
    /// this on every reshare before it sums).
    pub(super) fn original_of(&mut self, r: ReshareIx) -> MsgIx {
        let o = self.store.rss.get(r).original;
        if !self.store.msgs.get(o).forwards() {
            return o;
        }
        let mut chain = vec![r];
        let mut cur = o;
        while self.store.msgs.get(cur).forwards() {
            let became = self.store.msgs.get(cur).forwarded_to();
            chain.push(became);
            cur = self.store.rss.get(became).original;
        }
        let root = cur;
        for x in chain {
            let f = self.store.rss.get(x).original;
            if f == root {
                continue;
            }
            let became = self.store.msgs.get(f).forwarded_to();
            // Its `of` named the placeholder that became a reshare: that reshare is its parent,
            // as when it was known first (a `via` refines only a reshare of the original, so a
            // `via` link made while the placeholder's kind was unknown gives way). A parent set
            // by an earlier step of this walk is kept: the original it pointed at then was a
            // placeholder further up, not its `of`.
            let via_linked = self.via.is_linked(x);
            let rs = self.store.rss.get_mut(x);
            if rs.parent == ReshareIx::NONE || via_linked {
                rs.parent = became;
                let at = rs.at;
                self.via.done(x, at, false);
            }
            let rs = self.store.rss.get_mut(x);
            rs.original = root;
            self.store.msgs.get_mut(root).refs += 1;
            let fm = self.store.msgs.get_mut(f);
            fm.refs -= 1;
            if fm.refs == 0 {
                self.store.free_message(f);
            }
            self.work = self.work.saturating_add(1);
        }
        root
    }

    /// The reshare `r` was made through, seen through a forwarding record if need be.
    pub(super) fn parent_of(&self, r: ReshareIx) -> ReshareIx {
        let rs = self.store.rss.get(r);
        if rs.parent != ReshareIx::NONE {
            return rs.parent;
        }
        let o = self.store.msgs.get(rs.original);
        if o.forwards() {
            o.forwarded_to()
        } else {
            ReshareIx::NONE
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn post(
        &mut self,
        id: &str,
        at: i64,
        author: UserIx,
        audience: Audience,
        reply_to: Option<&str>,
        quote_of: Option<&str>,
        mention: UserIx,
        how: u16,
        recipients: u16,
    ) -> Result<(), ApplyError> {
        let m = match self.store.message_or_placeholder(id) {
            Entity::Message(m) => m,
            Entity::Reshare(_) => return Err(ApplyError::KindConflict(id.to_owned())),
        };
        // Every event about a message counts in its last activity, a repeat's too, and removals
        // that came before the post: the newest of them is the same whatever order they came in.
        let removed = self
            .removals
            .get(id)
            .and_then(|l| l.last())
            .map_or(at, |c| c.at.max(at));
        let msg = self.store.msgs.get_mut(m);
        msg.touch(removed);
        if msg.known() {
            // A repeat of the post: only the earliest posting time can change. Its time counts
            // in the last activity of what it answers, as the first sighting's did, so that the
            // newest of them does not depend on which came first.
            if at < msg.posted_at {
                let (before, mention, author) = (msg.posted_at, msg.mention, msg.author());
                msg.posted_at = at;
                // The pile-on's burst is measured from the posting: count it again.
                if msg.hot != HotIx::NONE {
                    self.hot[msg.hot.usize()].restructured = true;
                }
                self.contact(mention, author, at, Some(before));
                self.earn(m);
                self.subject_moved(m);
            }
            for parent in [reply_to, quote_of].into_iter().flatten() {
                let p = self.resolve_message(parent);
                self.store.msgs.get_mut(p).touch(at);
            }
            return Ok(());
        }
        msg.posted_at = at;
        msg.set_author(author);
        msg.mention = mention;
        msg.bits |= how;
        msg.recipients = recipients;
        msg.set_audience(audience);
        let is_hot = msg.hot != HotIx::NONE;
        self.contact(mention, author, at, None);
        self.target_reported(m);
        self.target_removed(m);
        for (parent, reply) in [(reply_to, true), (quote_of, false)] {
            let Some(parent) = parent else { continue };
            // A post that answers itself (or a reshare of itself, a loop only a canonical
            // producer can write) counts that answer like any other: whether the reshare was
            // known yet or was a placeholder that turns into it, the count is the same.
            let p = self.resolve_message(parent);
            let pm = self.store.msgs.get_mut(p);
            if reply {
                pm.replies += 1;
            } else {
                pm.quotes += 1;
            }
            pm.touch(at);
            if reply {
                self.store.msgs.get_mut(m).bits |= BIT_REPLY;
            }
            self.earn(p);
            self.mark(p, Who::AUTHOR);
        }
        if is_hot {
            // The pile-on's burst is measured from the posting, known only now: count it again.
            let h = self.store.msgs.get(m).hot;
            self.hot[h.usize()].restructured = true;
            self.author_known(m);
            self.earn(m);
            self.subject_moved(m);
        }
        Ok(())
    }

    /// A subject's start, whether the message counts as conduct or the people it targets
    /// changed: its own flags, and (through `sync_indexes`) those that count it as earlier
    /// conduct or as another sender at the same person, are evaluated again.
    pub(super) fn subject_moved(&mut self, m: MsgIx) {
        self.sync_indexes(m);
        self.mark(m, Who::ALL);
    }

    fn reshare(&mut self, id: &str, of: &str, via: Option<&str>, at: i64, user: UserIx) -> Result<(), ApplyError> {
        if id == of {
            return Err(ApplyError::SelfReshare(id.to_owned()));
        }
        let placeholder = match self.store.find(id) {
            Some(Entity::Reshare(r)) => {
                // A repeat: only the earliest time can change, and with it the resharer's start;
                // its time counts in the original's last activity whatever order it came in.
                let o = self.original_of(r);
                self.store.msgs.get_mut(o).touch(at);
                let old = self.store.rss.get(r).at;
                if at < old {
                    self.store.rss.get_mut(r).at = at;
                    self.via.moved(r, old, at);
                    let o = self.original_of(r);
                    let author = self.store.rss.get(r).author;
                    self.earn(o);
                    // Reshares made `via` this one that it did not come before may now be
                    // placed under it, as if it had come at this time first.
                    if self.link_waiting(id, r) {
                        self.restructure(o);
                    }
                    self.reshare_moved(o, author);
                }
                return Ok(());
            }
            Some(Entity::Message(m)) if self.store.msgs.get(m).known() => {
                return Err(ApplyError::KindConflict(id.to_owned()));
            }
            Some(Entity::Message(m)) => Some(m),
            None => None,
        };
        let (original, of_parent) = match self.store.message_or_placeholder(of) {
            Entity::Reshare(p) => (self.original_of(p), p),
            Entity::Message(m) => (m, ReshareIx::NONE),
        };
        if placeholder == Some(original) {
            return Err(ApplyError::SelfReshare(id.to_owned()));
        }
        // `via` names the reshare the user saw it through; it refines a direct reshare's
        // parent. If it cannot be resolved yet (not seen, or of another original so far), the
        // reshare stays direct until it can (see `Engine::resolve_via`).
        let mut parent = of_parent;
        let mut pending = None;
        if let (Some(v), ReshareIx::NONE) = (via, of_parent) {
            match self.store.find(v) {
                Some(Entity::Reshare(p)) if self.original_of(p) == original => {
                    if Self::earlier(self.store.rss.get(p).at, v, at, id) {
                        parent = p;
                    } else {
                        // Not before this one (yet): a repeat of it at an earlier time links
                        // them, as arriving in the other order would have.
                        pending = Some(Id::new(v));
                    }
                }
                // A post is not a reshare one can see a post through. A placeholder (an id
                // only referred to so far) may still turn out to be a reshare: wait for it as
                // for an id not seen, or the link would depend on whether a reply to it came
                // first.
                Some(Entity::Message(m)) if self.store.msgs.get(m).known() => {}
                _ => pending = Some(Id::new(v)),
            }
        }
        let rec = Reshare {
            id: IdRef::default(),
            at,
            original,
            parent,
            author: user,
            next: ReshareIx::NONE,
        };
        let r = match placeholder {
            Some(p) => self.convert_placeholder(p, rec),
            None => self.store.insert_reshare(rec, id),
        };
        self.store.link(original, r);
        // Removals of this reshare that came before it count in its original's last activity,
        // as they do when they come after it.
        let removed = self
            .removals
            .get(id)
            .and_then(|l| l.last())
            .map_or(at, |c| c.at.max(at));
        let o = self.store.msgs.get_mut(original);
        o.refs += 1;
        o.reshares += 1;
        o.touch(removed);
        if let Some(v) = pending {
            self.via.wait(r, at, &v);
        } else if parent != of_parent {
            // Placed under its `via` at once: marked so, as if linked later.
            self.via.done(r, at, true);
        }
        // Reshares that named this one as their `via` can now be placed under it.
        let restructured = self.link_waiting(id, r) | placeholder.is_some();
        self.earn(original);
        if restructured {
            self.restructure(original);
        } else {
            let h = self.store.msgs.get(original).hot;
            if h != HotIx::NONE {
                self.add_to_hot(h, r);
            }
        }
        Ok(())
    }

    /// The earliest reshare of a labelled message by `user` moved: their start, and what counts
    /// it as earlier conduct, change.
    fn reshare_moved(&mut self, original: MsgIx, user: UserIx) {
        let h = self.store.msgs.get(original).hot;
        if h == HotIx::NONE {
            return;
        }
        self.refresh_resharer_start(h, user);
        if let Some(moved) = self.sync_subject(original, user) {
            self.mark_conduct(user, original, moved);
        }
        self.mark(original, Who::account(user));
    }

    /// Whether a reshare at `a` with id `a_id` came before one at `b` with id `b_id`: by time,
    /// then by id, so that of two reshares one is always the earlier.
    fn earlier(a: i64, a_id: &str, b: i64, b_id: &str) -> bool {
        (a, a_id) < (b, b_id)
    }

    /// Tries to place every reshare waiting for `v` (id `id`) as its `via` under it; those it
    /// does not come before keep waiting. Returns whether one of `v`'s original's reshares was
    /// placed (the others' originals are marked for a rebuild here).
    fn link_waiting(&mut self, id: &str, v: ReshareIx) -> bool {
        let waiting = self.via.listed_from(id, self.store.rss.get(v).at);
        let original = self.original_of(v);
        let mut placed = false;
        for w in waiting {
            if let Some(o) = self.resolve_via(w, v) {
                placed |= o == original;
                if o != original {
                    self.restructure(o);
                }
            }
        }
        placed
    }

    /// Places reshare `w` under `v`, the reshare its `via` named, if they share an original,
    /// `w` has no parent yet and `v` came before `w`: one sees a post through a reshare that
    /// already exists, and with that rule two reshares `via` each other are linked the same
    /// way whatever order they arrive in, and no chain of `via`s can close a cycle. Returns
    /// `w`'s original when the link was made; until then `w` stays pending on `v`, since a
    /// repeat of `v` at an earlier time or a merge of originals can still allow the link.
    pub(super) fn resolve_via(&mut self, w: ReshareIx, v: ReshareIx) -> Option<MsgIx> {
        let ow = self.original_of(w);
        let w_at = self.store.rss.get(w).at;
        if self.parent_of(w) != ReshareIx::NONE {
            let linked = self.via.is_linked(w);
            self.via.done(w, w_at, linked);
            return None;
        }
        if self.original_of(v) != ow {
            // Only a rebuild of the original they may yet share can place it.
            self.via.unlist(self.store.rs_id(v), w, w_at);
            return None;
        }
        let v_at = self.store.rss.get(v).at;
        if !Self::earlier(v_at, self.store.rs_id(v), w_at, self.store.rs_id(w)) {
            self.via.relist(w, w_at);
            return None;
        }
        self.via.done(w, w_at, true);
        self.store.rss.get_mut(w).parent = v;
        Some(ow)
    }

    /// An id first seen as a message (something referred to it) arrives as a reshare. The
    /// placeholder becomes a forwarding record: its reshares join the original's list in
    /// constant time and keep naming it until `original_of` points them at the original; its
    /// counts move to the original, and the reports and labels sent to it become context of the
    /// resharer's flag on the original.
    fn convert_placeholder(&mut self, p: MsgIx, rec: Reshare) -> ReshareIx {
        let original = rec.original;
        let r = self.store.replace_placeholder(p, rec);
        let old = self.store.msgs.get(p).clone();
        self.store.splice(p, original);
        let o = self.store.msgs.get_mut(original);
        o.reshares += old.reshares;
        o.quotes += old.quotes;
        o.replies += old.replies;
        if old.impressions != NONE && (o.impressions == NONE || o.impressions < old.impressions) {
            o.impressions = old.impressions;
        }
        o.touch(old.last_at);
        let resharer = self.store.rss.get(r).author;
        if let Some(reports) = self.reports.remove(&p) {
            self.merge_reports(original, resharer, reports);
        }
        let moved = if old.hot == HotIx::NONE {
            None
        } else {
            Some(self.take_labels(old.hot, p))
        };
        let fm = self.store.msgs.get_mut(p);
        fm.forward_to(r);
        fm.hot = HotIx::NONE;
        if fm.refs == 0 {
            self.store.free_message(p);
        }
        if let Some((labels, events)) = moved {
            self.give_labels(original, resharer, labels, events);
        }
        r
    }

    fn removal(&mut self, id: &str, change: Change) -> Result<Option<RemovalSeen>, ApplyError> {
        let limit = self.policy.limits.changes_per_id;
        if !self.removals.contains_key(id) {
            self.removals.insert(Id::new(id), Vec::new());
        }
        let list = self.removals.get_mut(id).expect("inserted above");
        let first = list.is_empty();
        if list.len() >= limit as usize && list.binary_search(&change).is_err() {
            return Err(ApplyError::Limit {
                id: id.to_owned(),
                what: "removal changes",
                setting: "changes_per_id",
                limit,
            });
        }
        if !insert_change(list, change) {
            return Ok(None);
        }
        let (m, start, own) = match self.store.find(id) {
            Some(Entity::Message(m)) => (m, self.store.msgs.get(m).posted_at, true),
            Some(Entity::Reshare(r)) => {
                let at = self.store.rss.get(r).at;
                (self.original_of(r), at, false)
            }
            None => return Ok(None),
        };
        if own {
            self.target_removed(m);
        }
        let msg = self.store.msgs.get_mut(m);
        msg.touch(change.at);
        let (hot, author) = (msg.hot, msg.author());
        self.earn(m);
        if own && hot != HotIx::NONE && matches!(change.what, What::Delete(_)) {
            self.mark_deleted(hot, change.at);
        } else {
            self.mark(m, Who::ALL);
        }
        let (kind, by) = match change.what {
            What::Delete(by) => (RemovalKind::Deleted, by),
            What::Restrict(by, _) => (RemovalKind::Blocked, by),
            _ => return Ok(None),
        };
        if !first || start == i64::MIN {
            return Ok(None);
        }
        let audience = (own && hot != HotIx::NONE && author != UserIx::NONE)
            .then(|| u64::from(self.users.get(author).followers) + self.hot[hot.usize()].resharer_audience);
        Ok(Some(RemovalSeen {
            kind,
            by,
            seconds_up: Ts(change.at).secs_since(Ts(start)),
            audience,
        }))
    }

    /// A delete of hot message `h`'s own post at `at`: marks the subjects whose flags it can
    /// change what is written of. The author's, and every resharer's already written (the
    /// removal is news). A delete only brings subjects down, never up (it shortens the time
    /// up and adds removal credit, whatever the order changes arrive in), so it never raises
    /// a flag nor brings one near the threshold; what it can make matter is a reshare made
    /// after it, so resharers with a reshare later than `at` are marked too. Every other
    /// resharer's flag, not written, is evaluated when the input is quiet, as before; marking
    /// every subject evaluated each resharer of a viral message taken down for nothing.
    fn mark_deleted(&mut self, h: HotIx, at: i64) {
        let hot = &self.hot[h.usize()];
        let m = hot.msg;
        if hot.dirty_all || hot.restructured {
            // Every subject is evaluated already.
            self.mark(m, Who::ALL);
            return;
        }
        let mut users: Vec<UserIx> = hot
            .slots
            .keys()
            .filter(|(_, subject, _)| *subject == crate::flag::Subject::Resharer)
            .map(|(u, _, _)| *u)
            .collect();
        users.extend(
            hot.resharers
                .keys()
                .copied()
                .filter(|&u| hot.reshares_by(u).any(|r| self.store.rss.get(r).at > at)),
        );
        self.work = self.work.saturating_add(hot.resharers.len() as u64);
        users.sort_unstable();
        users.dedup();
        self.mark(m, Who::AUTHOR);
        for u in users {
            self.mark(m, Who::account(u));
        }
    }

    fn label(&mut self, id: &str, mut entry: LabelEntry) -> Result<(), ApplyError> {
        let (m, scope) = self.resolve_scoped(id);
        entry.scope = scope;
        let h = self.heat(m);
        let limit = self.policy.limits.labels_per_message;
        let hot = &mut self.hot[h.usize()];
        let Err(pos) = hot.label_events.binary_search(&entry) else {
            return Ok(());
        };
        if hot.label_events.len() >= limit as usize {
            return Err(ApplyError::Limit {
                id: id.to_owned(),
                what: "label events",
                setting: "labels_per_message",
                limit,
            });
        }
        hot.label_events.insert(pos, entry.clone());
        self.store.msgs.get_mut(m).touch(entry.at);
        let target = entry.target;
        self.merge_label(h, entry);
        if target != UserIx::NONE && scope == UserIx::NONE {
            let hot = &mut self.hot[h.usize()];
            if !hot.targets_ever.contains(&target) {
                hot.targets_ever.push(target);
            }
        }
        self.earn(m);
        self.subject_moved(m);
        Ok(())
    }

    /// A report on a message counts on every flag of it; a report on a reshare counts on that
    /// resharer's flag only.
    fn report(&mut self, id: &str, at: i64, reporter: &str, by_target: bool) {
        let (m, scope) = self.resolve_scoped(id);
        let cap = self.policy.limits.reporters_per_message;
        let full = self.reports.get(&m).is_some_and(|r| r.full(scope, cap));
        // A reporter beyond the cap is not interned: only whether they are new matters.
        let u = if full {
            self.users.find(reporter)
        } else {
            Some(self.person(reporter, at))
        };
        let changed = self
            .reports
            .entry(m)
            .or_default()
            .add(scope, u, by_target.then_some(at), cap);
        if by_target && scope == UserIx::NONE {
            self.target_reported(m);
        }
        // A report counts in the message's last activity even when it changes nothing else (the
        // same reporter again, later): otherwise the last activity would depend on which of a
        // reporter's reports came first.
        let msg = self.store.msgs.get_mut(m);
        let later = at > msg.last_at;
        msg.touch(at);
        if changed || later {
            self.earn(m);
            self.mark(
                m,
                if scope == UserIx::NONE {
                    Who::ALL
                } else {
                    Who::account(scope)
                },
            );
        }
    }

    /// Reports gathered under placeholder `p`, which turned out to be a reshare by `resharer`,
    /// join those of its original: the ones sent to its own id become that resharer's.
    fn merge_reports(&mut self, m: MsgIx, resharer: UserIx, from: Reports) {
        let cap = self.policy.limits.reporters_per_message;
        let to = self.reports.entry(m).or_default();
        to.merge(resharer, &from.message, cap);
        for (u, list) in &from.resharers {
            to.merge(*u, list, cap);
        }
    }

    /// Labels of a message that counts as conduct: a live category label at or above the floor.
    pub(super) fn compute_live(&self, h: HotIx) -> bool {
        self.hot[h.usize()].labels.iter().any(|l| {
            l.scope == UserIx::NONE
                && !l.negate
                && matches!(l.code, LabelCode::Category(_))
                && l.confidence >= self.policy.labels.min_confidence
        })
    }
}
