//! Cascades: a post's reshares, replies, quotes and impressions arriving over time, each
//! engagement made through an earlier one where the network would show it.

use std::borrow::Cow;

use modsignal_core::event::{Audience, EventKind, RemovedBy};
use rand::RngExt;
use rand_distr::StandardNormal;

use super::dist::inv_norm_cdf;
use super::{
    Arrival, Cascade, ENGAGE, Job, Msg, NO_USER, Origin, Out, Simulator, Task, UNRESHARE, VIRALITY_SIGMA, ids,
};

impl Simulator {
    /// Draws the size of a post's cascade and queues its first arrival; returns its time.
    pub(super) fn start_cascade(
        &mut self,
        at: i64,
        msg: Msg,
        audience: Audience,
        origin: Origin,
        kill: i64,
    ) -> Option<i64> {
        let factor = match origin {
            Origin::Original => 1.0,
            Origin::Quote => 0.4,
            Origin::Reply | Origin::Campaign => 0.1,
            Origin::Mob { .. } => 0.05,
        };
        let z: f64 = self.rng.sample(StandardNormal);
        let virality = factor * (VIRALITY_SIGMA * z - VIRALITY_SIGMA * VIRALITY_SIGMA / 2.0).exp();
        let reach = self.pop.reach_weight(msg.author) * virality;
        // Followers-only posts cannot be reshared or quoted on the platforms that have them.
        let public = audience == Audience::Public;
        let reshares = if public {
            self.count(self.cfg.reshare_rate * reach)
        } else {
            0
        };
        let quotes = if public {
            self.count(self.cfg.quote_rate * reach)
        } else {
            0
        };
        let replies = self.count(self.cfg.reply_rate * self.pop.chatter_weight(msg.author) * virality);
        // Replies and quotes beyond 65,535 are not worth the memory of a wider counter.
        let (replies, quotes) = (
            replies.min(u32::from(u16::MAX)) as u16,
            quotes.min(u32::from(u16::MAX)) as u16,
        );
        let kill_after = u32::try_from(kill.saturating_sub(at)).unwrap_or(u32::MAX);
        let c = Cascade {
            post: msg,
            kill_after,
            u: 0.0,
            reshares,
            replies,
            quotes,
            last: msg,
            last_depth: 0,
        };
        match c.left() {
            0 => return None,
            1 => {
                // A cascade of one is a single delay, queued without a slot.
                let what = if reshares == 1 {
                    Arrival::Reshare
                } else if replies == 1 {
                    Arrival::Reply
                } else {
                    Arrival::Quote
                };
                let z: f64 = self.rng.sample(StandardNormal);
                let t = arrival_time(&c, z)?;
                return self.schedule(t, Job::Single(msg, what)).then_some(t);
            }
            _ => {}
        }
        let slot = if let Some(s) = self.free_cascades.pop() {
            self.cascades[s as usize] = c;
            s
        } else {
            self.cascades.push(c);
            (self.cascades.len() - 1) as u32
        };
        let t = self.next_arrival(slot);
        if t.is_none() {
            self.free_cascades.push(slot);
        }
        t
    }

    /// Draws and queues the next arrival of a cascade. The arrivals of a cascade of `m` are
    /// `m` independent log-normal delays; drawn in increasing order, the next uniform after
    /// `u` with `m` left is `1 - (1 - u) * V^(1/m)` for a uniform `V`.
    pub(super) fn next_arrival(&mut self, slot: u32) -> Option<i64> {
        let v = 1.0 - self.unit();
        let c = &mut self.cascades[slot as usize];
        let m = c.left();
        if m == 0 {
            return None;
        }
        c.u = 1.0 - (1.0 - c.u) * v.powf(1.0 / f64::from(m));
        let t = arrival_time(c, inv_norm_cdf(c.u))?;
        self.schedule(t, Job::Engage(slot)).then_some(t)
    }

    // Consequences.

    pub(super) fn run(&mut self, task: Task) -> Out {
        let at = task.at;
        match task.job {
            Job::Engage(slot) => self.arrive(at, slot),
            Job::Single(post, what) => self.engage(at, post, what, None).0,
            Job::Delete(msg, by) => Out::now(EventKind::Delete { id: self.uri(msg), by }),
            Job::Restrict(msg, by, scope) => Out::now(EventKind::Restrict {
                id: self.uri(msg),
                by,
                scope,
            }),
            Job::Restore(msg, by) => Out::now(EventKind::Restore { id: self.uri(msg), by }),
            Job::Label {
                msg,
                code,
                source,
                milli,
                target,
                negate,
            } => Out::now(EventKind::Label {
                id: self.uri(msg),
                code,
                confidence: f64::from(milli) / 1000.0,
                source: Cow::Borrowed(source.name()),
                target: (target != NO_USER).then(|| self.did(target)),
                negate,
            }),
            Job::Report {
                msg,
                reporter,
                by_target,
            } => Out::now(EventKind::Report {
                id: self.uri(msg),
                reporter: self.did(reporter),
                by_target,
            }),
            Job::Impressions {
                msg,
                scale,
                step,
                steps,
            } => {
                // Cumulative: impressions saturate over a few hours, as a post leaves feeds.
                let age_h = (at - ids::tid_ms(msg.tid())) as f64 / 3_600_000.0;
                let count = (f64::from(scale) * (1.0 - (-age_h / 2.0).exp())) as u64 + u64::from(step);
                if step + 1 < steps {
                    let t = ids::tid_ms(msg.tid()) + impression_offset(step + 1);
                    self.schedule(
                        t,
                        Job::Impressions {
                            msg,
                            scale,
                            step: step + 1,
                            steps,
                        },
                    );
                }
                Out::now(EventKind::Impressions {
                    id: self.uri(msg),
                    count,
                })
            }
            Job::MobReply { victim, sender } => {
                self.reply_post(at, victim, sender, Origin::Mob { ringleader: false }, true)
            }
            Job::Campaign {
                victim,
                sender,
                remaining,
            } => self.campaign_post(at, victim, sender, remaining),
        }
    }

    /// One arrival of a cascade: a reshare, reply or quote, in proportion to what remains.
    pub(super) fn arrive(&mut self, at: i64, slot: u32) -> Out {
        let mut c = self.cascades[slot as usize];
        let r = self.rng.random_range(0..c.left());
        let what = if r < c.reshares {
            c.reshares -= 1;
            Arrival::Reshare
        } else if r < c.reshares + u32::from(c.replies) {
            c.replies -= 1;
            Arrival::Reply
        } else {
            c.quotes -= 1;
            Arrival::Quote
        };
        let last = (c.last_depth > 0).then_some((c.last, c.last_depth));
        let (out, reshared) = self.engage(at, c.post, what, last);
        if let Some((m, d)) = reshared {
            c.last = m;
            c.last_depth = d;
        }
        self.cascades[slot as usize] = c;
        if self.next_arrival(slot).is_none() {
            self.free_cascades.push(slot);
        }
        out
    }

    /// A reshare, reply or quote of `post`. `last` is the cascade's latest reshare and its
    /// depth, which a deep reshare reshares; returns the new reshare and its depth, if any.
    pub(super) fn engage(
        &mut self,
        at: i64,
        post: Msg,
        what: Arrival,
        last: Option<(Msg, u16)>,
    ) -> (Out, Option<(Msg, u16)>) {
        let user = self.pop.pick_other(&mut self.rng, post.author);
        if what == Arrival::Reshare {
            let rs = self.new_msg(user, true, at);
            let (of, via, depth) = match last {
                Some((l, d)) if self.chance(self.cfg.deep_reshare_rate) => {
                    if self.chance(0.5) {
                        (l, None, d.saturating_add(1))
                    } else {
                        (post, Some(l), d.saturating_add(1))
                    }
                }
                _ => (post, None, 1),
            };
            if self.chance(self.cfg.reshare_delete_rate) {
                let t = at + self.delay(UNRESHARE);
                self.schedule(t, Job::Delete(rs, RemovedBy::Author));
            }
            let kind = EventKind::Reshare {
                id: self.uri(rs),
                of: self.uri(of),
                author: self.pop.author(user),
                via: via.map(|v| self.uri(v)),
            };
            return (Out::now(kind), Some((rs, depth)));
        }
        let reply = what == Arrival::Reply;
        let msg = self.new_msg(user, false, at);
        let origin = if reply { Origin::Reply } else { Origin::Quote };
        let hold_ms = self.plan_post(at, msg, Audience::Public, origin, post.author);
        // Replies often name the author they answer; Twitter adds the mention itself.
        let mentions = if reply && self.chance(0.6) {
            vec![self.did(post.author)]
        } else {
            Vec::new()
        };
        let kind = EventKind::Post {
            id: self.uri(msg),
            author: self.pop.author(user),
            audience: Audience::Public,
            reply_to: reply.then(|| self.uri(post)),
            reply_to_author: None,
            quote_of: (!reply).then(|| self.uri(post)),
            quote_of_author: None,
            mentions,
            recipients: Vec::new(),
        };
        (Out { kind, hold_ms }, None)
    }
}

/// The time of a cascade arrival whose delay is the `z` quantile of [`ENGAGE`], unless that
/// falls beyond the cap (the cascade has died out) or after the post was removed.
pub(super) fn arrival_time(c: &Cascade, z: f64) -> Option<i64> {
    let delay = ENGAGE.median_secs * 1000.0 * (ENGAGE.sigma * z).exp();
    // Written to be false for a NaN or infinite delay too (a quantile of exactly one).
    let within_cap = delay < ENGAGE.cap_secs * 1000.0;
    if !within_cap || delay as u64 + 1 >= u64::from(c.kill_after) {
        return None;
    }
    Some(ids::tid_ms(c.post.tid()) + delay as i64 + 1)
}

/// When the `k`-th impressions update of a post comes: 10 minutes, then three times longer
/// each time.
pub(super) fn impression_offset(k: u8) -> i64 {
    600_000 * 3i64.pow(u32::from(k))
}
