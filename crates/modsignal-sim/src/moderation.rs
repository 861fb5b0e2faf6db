//! What happens to a post after it is made: the platform's, the classifiers', reviewers' and
//! courts' actions (labels and their factors, removals, restrictions, restores), its author's
//! deletion, and the reports people send.

use modsignal_core::event::{Audience, Category, FactorLabel, LabelCode, RemovedBy, Scope};
use rand::RngExt;

use super::cascade::impression_offset;
use super::{
    ABUSIVE_LABEL_FACTOR, AUTHOR_DELETE, FAST_DELETE, HOLDBACK_SHARE, IMPRESSION_STEPS, Job, LEGAL, Msg, NO_USER,
    Origin, PLATFORM_ACTION, REPORT, RESTORE, RETRACT, REVIEW, SPAM_ACTION, Simulator, Source,
};

impl Simulator {
    /// Decides everything that will follow a new post (labels, removals, reports, its
    /// cascade, impressions) and queues it. Deciding all at once lets later actions respect
    /// earlier ones: nothing is reshared after the post is down, and the platform does not
    /// take down what its author already deleted. Returns how long to hold the post back.
    pub(super) fn plan_post(&mut self, at: i64, msg: Msg, audience: Audience, origin: Origin, target: u32) -> i64 {
        let base = match origin {
            Origin::Original | Origin::Quote => self.cfg.label_rate,
            // Replies are where most abuse happens.
            Origin::Reply => self.cfg.label_rate * 1.5,
            Origin::Mob { .. } => 0.85,
            Origin::Campaign => 0.75,
        };
        let p_label = match origin {
            Origin::Original | Origin::Reply | Origin::Quote if self.pop.is_abusive(msg.author) => {
                (base * ABUSIVE_LABEL_FACTOR).min(0.9)
            }
            _ => base,
        };
        let labelled = self.chance(p_label);
        let p_delete = if labelled {
            (self.cfg.author_delete_rate * 4.0).min(0.9)
        } else {
            self.cfg.author_delete_rate
        };
        let author_delete = if self.chance(p_delete) {
            let d = if self.chance(0.25) { FAST_DELETE } else { AUTHOR_DELETE };
            Some(at + self.delay(d))
        } else {
            None
        };
        let mut kill = author_delete.unwrap_or(i64::MAX);
        if labelled {
            self.plan_labels(at, msg, origin, target, &mut kill, author_delete);
        } else {
            if self.chance(0.0005) {
                let t = at + self.delay(SPAM_ACTION);
                if t < kill && self.schedule(t, Job::Delete(msg, RemovedBy::Platform)) {
                    kill = t;
                }
            }
            if self.chance(0.002) {
                let reporter = self.pop.pick_other(&mut self.rng, msg.author);
                let t = at + self.delay(REPORT);
                self.schedule(
                    t,
                    Job::Report {
                        msg,
                        reporter,
                        by_target: false,
                    },
                );
            }
        }
        let mut first = i64::MAX;
        if let Some(t) = author_delete {
            // A platform takedown that came first pre-empts the author's deletion.
            if t <= kill && self.schedule(t, Job::Delete(msg, RemovedBy::Author)) {
                first = t;
            }
        }
        if matches!(audience, Audience::Public | Audience::Followers)
            && let Some(t) = self.start_cascade(at, msg, audience, origin, kill)
        {
            first = first.min(t);
        }
        if audience == Audience::Public && origin == Origin::Original && self.chance(self.cfg.impressions_rate) {
            let steps = (0..IMPRESSION_STEPS)
                .take_while(|k| at + impression_offset(*k) < kill)
                .count() as u8;
            if steps > 0 {
                // A post reaches a fraction of its author's followers' timelines (5% to 65%),
                // plus a few views from search and profiles.
                let f = f64::from(self.pop.followers(msg.author));
                let scale = (f * (0.05 + 0.6 * self.unit()) + 20.0 * self.unit()).min(4e9) as u32;
                self.schedule(
                    at + impression_offset(0),
                    Job::Impressions {
                        msg,
                        scale,
                        step: 0,
                        steps,
                    },
                );
            }
        }
        let d = first.saturating_sub(at);
        if d < self.window_ms && self.chance(HOLDBACK_SHARE) {
            let slack = (self.window_ms - d - 1).min(5_000);
            d + 1 + self.rng.random_range(0..=slack)
        } else {
            0
        }
    }

    /// Queues the labels of a labelled post and the platform's and courts' response to them.
    pub(super) fn plan_labels(
        &mut self,
        at: i64,
        msg: Msg,
        origin: Origin,
        target: u32,
        kill: &mut i64,
        author_delete: Option<i64>,
    ) {
        use Category::{CommunicationsOffence, CourtOrderBreach, CredibleThreat, TargetedHarassment};
        // Category 4 dominates ordinary posts; replies, mobs and campaigns lean to harassment.
        let weights: [f64; 4] = match origin {
            Origin::Original => [0.07, 0.10, 0.05, 0.78],
            Origin::Reply | Origin::Quote => [0.08, 0.32, 0.02, 0.58],
            Origin::Mob { .. } => [0.10, 0.55, 0.0, 0.35],
            Origin::Campaign => [0.15, 0.70, 0.0, 0.15],
        };
        let mut r = self.unit();
        let mut cat = CommunicationsOffence;
        for (c, w) in Category::ALL.into_iter().zip(weights) {
            if r < w {
                cat = c;
                break;
            }
            r -= w;
        }
        let target = match cat {
            TargetedHarassment => target,
            CredibleThreat if self.chance(0.6) => target,
            CommunicationsOffence if self.chance(0.25) => target,
            _ => NO_USER,
        };
        let r = self.unit();
        let source = if cat == CourtOrderBreach {
            if r < 0.6 {
                Source::CourtRegister
            } else if r < 0.85 {
                Source::TrustedFlagger
            } else {
                Source::Reviewer
            }
        } else if r < 0.7 {
            Source::Classifier
        } else if r < 0.82 {
            Source::TrustedFlagger
        } else {
            Source::Reviewer
        };
        let milli = self.confidence(source);
        let t_label = at + self.delay(source.delay());
        let code = LabelCode::Category(cat);
        self.schedule(
            t_label,
            Job::Label {
                msg,
                code,
                source,
                milli,
                target,
                negate: false,
            },
        );
        if source == Source::Classifier {
            if self.chance(self.cfg.negate_rate) {
                let t = t_label + self.delay(RETRACT);
                self.schedule(
                    t,
                    Job::Label {
                        msg,
                        code,
                        source,
                        milli,
                        target,
                        negate: true,
                    },
                );
            } else if self.chance(0.2) {
                let t = t_label + self.delay(REVIEW);
                self.schedule(
                    t,
                    Job::Label {
                        msg,
                        code,
                        source: Source::Reviewer,
                        milli: 1000,
                        target,
                        negate: false,
                    },
                );
            }
        }
        // Factor labels, each from the source that can judge it.
        let hate = if matches!(origin, Origin::Mob { .. }) {
            0.25
        } else {
            0.15
        };
        if self.chance(hate) {
            let s = if self.chance(0.6) {
                Source::Classifier
            } else {
                Source::Reviewer
            };
            self.factor(at, msg, FactorLabel::Hate, s);
        }
        if target != NO_USER && self.chance(0.2) {
            self.factor(at, msg, FactorLabel::SignificantImpact, Source::TrustedFlagger);
        }
        let encouragement = match origin {
            Origin::Mob { ringleader: true } => 0.6,
            Origin::Mob { .. } => 0.05,
            _ => 0.02,
        };
        if self.chance(encouragement) {
            self.factor(at, msg, FactorLabel::Encouragement, Source::Reviewer);
        }
        if cat == CommunicationsOffence && self.chance(0.2) {
            self.factor(at, msg, FactorLabel::Tolerable, Source::Reviewer);
        }
        // An apology after deleting, noted by a reviewer.
        if let Some(t) = author_delete
            && self.chance(0.25)
        {
            self.factor(t, msg, FactorLabel::Remorse, Source::Reviewer);
        }
        // The platform's response: the graver the category, the likelier a takedown.
        let severity = match cat {
            CredibleThreat => 1.8,
            TargetedHarassment => 1.2,
            CourtOrderBreach => 1.0,
            CommunicationsOffence => 0.7,
        };
        let p_take = (self.cfg.takedown_rate * severity).min(0.95);
        let p_restrict = self.cfg.restrict_rate.min(1.0 - p_take);
        let r = self.unit();
        let t = t_label + self.delay(PLATFORM_ACTION);
        if r < p_take {
            if t < *kill && self.schedule(t, Job::Delete(msg, RemovedBy::Platform)) {
                *kill = t;
                if self.chance(self.cfg.restore_rate) {
                    let t2 = t + self.delay(RESTORE);
                    self.schedule(t2, Job::Restore(msg, RemovedBy::Platform));
                }
            }
        } else if r < p_take + p_restrict && t < *kill {
            let r = self.unit();
            let scope = if r < 0.3 {
                Scope::Withheld
            } else if r < 0.55 {
                Scope::AgeGated
            } else if r < 0.85 {
                Scope::Limited
            } else {
                Scope::FollowersOnly
            };
            self.schedule(t, Job::Restrict(msg, RemovedBy::Platform, scope));
        }
        if cat == CourtOrderBreach && self.chance(0.5) {
            let t = t_label + self.delay(LEGAL);
            if t < *kill {
                if self.chance(0.6) {
                    self.schedule(t, Job::Restrict(msg, RemovedBy::Legal, Scope::Withheld));
                } else if self.schedule(t, Job::Delete(msg, RemovedBy::Legal)) {
                    *kill = t;
                }
            }
        }
        if self.chance(self.cfg.report_rate) {
            let n = 1 + usize::from(self.chance(0.4)) + usize::from(self.chance(0.2));
            for i in 0..n {
                // The target reports first, when there is one, as often as not.
                let by_target = i == 0 && target != NO_USER && self.chance(0.6);
                let reporter = if by_target {
                    target
                } else {
                    self.pop.pick_other(&mut self.rng, msg.author)
                };
                let t = at + self.delay(REPORT);
                self.schedule(
                    t,
                    Job::Report {
                        msg,
                        reporter,
                        by_target,
                    },
                );
            }
        }
    }

    pub(super) fn factor(&mut self, after: i64, msg: Msg, f: FactorLabel, source: Source) {
        let milli = self.confidence(source);
        let t = after + self.delay(source.delay());
        self.schedule(
            t,
            Job::Label {
                msg,
                code: LabelCode::Factor(f),
                source,
                milli,
                target: NO_USER,
                negate: false,
            },
        );
    }

    /// A confidence in thousandths, so that it reads as `0.873` on the wire.
    pub(super) fn confidence(&mut self, source: Source) -> u16 {
        let u = self.unit();
        match source {
            // Classifiers emit above their threshold, skewed towards sure.
            Source::Classifier => 550 + (449.0 * u.powf(0.6)) as u16,
            Source::TrustedFlagger => 800 + (190.0 * u) as u16,
            Source::Reviewer if u < 0.7 => 1000,
            Source::Reviewer => 900 + (90.0 * u) as u16,
            Source::CourtRegister => 1000,
        }
    }
}
