//! Abuse aimed at people: offenders picked by their propensity, mobs piling onto one victim's
//! post, campaigns of posts aimed at one person over days, and the replies they are made of.

use modsignal_core::event::{Audience, EventKind};
use rand::RngExt;
use rand_distr::Exp1;

use super::{CAMPAIGN, Job, MOB, Msg, Origin, Out, Simulator};

impl Simulator {
    pub(super) fn pick_offender(&mut self, not: u32) -> u32 {
        let u = if self.chance(0.4) {
            self.pop.pick_abusive(&mut self.rng)
        } else {
            self.pop.pick(&mut self.rng)
        };
        if u == not {
            self.pop.pick_other(&mut self.rng, not)
        } else {
            u
        }
    }

    /// A mobbing episode: the ringleader replies now, the others within the day.
    pub(super) fn start_mob(&mut self, at: i64) -> Option<Out> {
        let victim = self.pick_victim()?;
        let extra: f64 = self.rng.sample(Exp1);
        let senders = 3 + ((extra * 3.0) as u32).min(22);
        for _ in 1..senders {
            let sender = self.pick_offender(victim.author);
            let t = at + self.delay(MOB);
            self.schedule(t, Job::MobReply { victim, sender });
        }
        let sender = self.pick_offender(victim.author);
        Some(self.reply_post(at, victim, sender, Origin::Mob { ringleader: true }, true))
    }

    /// A harassment campaign: one offender, one target, several posts hours apart.
    pub(super) fn start_campaign(&mut self, at: i64) -> Option<Out> {
        let victim = self.pick_victim()?;
        let mut sender = self.pop.pick_abusive(&mut self.rng);
        if sender == victim.author {
            sender = self.pop.pick_other(&mut self.rng, victim.author);
        }
        let remaining = 3 + self.rng.random_range(0..6u8);
        Some(self.campaign_post(at, victim, sender, remaining))
    }

    pub(super) fn campaign_post(&mut self, at: i64, victim: Msg, sender: u32, remaining: u8) -> Out {
        if remaining > 1 {
            let t = at + self.delay(CAMPAIGN);
            self.schedule(
                t,
                Job::Campaign {
                    victim,
                    sender,
                    remaining: remaining - 1,
                },
            );
        }
        // Half the campaign's posts reply to the target's post, half are new posts naming them.
        let as_reply = self.chance(0.5);
        self.reply_post(at, victim, sender, Origin::Campaign, as_reply)
    }

    /// A post aimed at `parent`'s author: a reply (if `as_reply`) or a post mentioning them.
    pub(super) fn reply_post(&mut self, at: i64, parent: Msg, sender: u32, origin: Origin, as_reply: bool) -> Out {
        let msg = self.new_msg(sender, false, at);
        let hold_ms = self.plan_post(at, msg, Audience::Public, origin, parent.author);
        let kind = EventKind::Post {
            id: self.uri(msg),
            author: self.pop.author(sender),
            audience: Audience::Public,
            reply_to: as_reply.then(|| self.uri(parent)),
            reply_to_author: None,
            quote_of: None,
            quote_of_author: None,
            mentions: vec![self.did(parent.author)],
            recipients: Vec::new(),
        };
        Out { kind, hold_ms }
    }

    // What a post brings about.
}
