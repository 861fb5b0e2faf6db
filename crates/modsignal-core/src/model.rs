//! The guideline risk model: facts about one subject of one labelled message in, a score and
//! its explained factors out.
//!
//! The score is additive on the log-odds scale and squashed to 0..1 (the shape suggested in
//! the domain brief, section 6). Each term is one [`Factor`] with its contribution as `weight`,
//! rounded to four places *before* it is summed, so a reviewer can add up the printed weights,
//! apply the logistic function and get the printed score. Every weight in the policy is
//! non-negative and each term's sign is fixed here; with the time and reach curves
//! non-decreasing, the promises of the model hold by construction.

use std::borrow::Cow;

use crate::event::{Audience, Category, Scope, Track};
use crate::policy::Policy;
use crate::time::human_duration;

mod facts;
pub mod provisions;

pub use facts::{
    Effect, Evaluation, Factor, Facts, PileOn, Removal, RemovalKind, RepostAfterRemoval, Restriction, Targeting,
};

impl Category {
    pub fn provision(self) -> &'static str {
        match self {
            Category::CredibleThreat => provisions::CATEGORY_THREAT,
            Category::TargetedHarassment => provisions::CATEGORY_HARASSMENT,
            Category::CourtOrderBreach => provisions::CATEGORY_COURT_ORDER,
            Category::CommunicationsOffence => provisions::CATEGORY_COMMS,
        }
    }
}

/// The log-odds of a flag whose every label was retracted: low enough that its score prints
/// as 0 at four places (sigmoid(-10) is 0.0000454).
const RETRACTED_LOGIT: f64 = -10.0;

fn round4(x: f64) -> f64 {
    // Adding zero turns a negative zero into zero, so no flag prints "-0.0".
    (x * 10_000.0).round() / 10_000.0 + 0.0
}

/// `1 reshare`, `2 reshares`.
fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The share of a saturating weight earned at `n`: rising with ln(1 + n), all of it from
/// `full_at` on. Non-decreasing in `n`, so more reach never lowers a score.
pub fn saturating(n: u64, full_at: u64) -> f64 {
    ((n as f64).ln_1p() / (full_at.max(1) as f64).ln_1p()).min(1.0)
}

/// The share of the swift-removal credit a partial restriction earns: its scope's share in
/// the policy; for followers-only, scaled down by the audience it leaves (the more followers
/// still see it, the less it did), which depends on the subject's own followers only, so more
/// reach never raises the credit.
pub fn restriction_share(policy: &Policy, r: Restriction) -> f64 {
    let p = &policy.restriction;
    match r.scope {
        Scope::Withheld => 1.0,
        Scope::AgeGated => p.age_gated,
        Scope::Limited => p.limited,
        Scope::FollowersOnly => p.followers_only * (1.0 - saturating(r.followers, policy.reach.full_at)),
    }
}

/// The share of the exposure weight earned after `secs` up: 0 within the swift window, 1 from
/// the slow time scale on, and linear in log-time between, so it never falls as time passes.
pub fn exposure_curve(policy: &Policy, secs: u64) -> f64 {
    let (swift, slow) = (policy.exposure.swift_secs as f64, policy.exposure.slow_secs as f64);
    let t = secs as f64;
    if t <= swift {
        0.0
    } else if t >= slow {
        1.0
    } else {
        (t.ln() - swift.ln()) / (slow.ln() - swift.ln())
    }
}

struct Terms<'p> {
    policy: &'p Policy,
    factors: Vec<Factor>,
    /// Whether to write the evidence. The engine scores first without it, and explains only
    /// the flags it writes: formatting evidence costs more than the arithmetic.
    explain: bool,
}

impl Terms<'_> {
    fn push(
        &mut self,
        code: &'static str,
        effect: Effect,
        magnitude: f64,
        evidence: impl FnOnce() -> String,
        provision: &'static str,
    ) {
        let evidence = if self.explain { evidence() } else { String::new() };
        let signed = match effect {
            Effect::For => magnitude,
            Effect::Against => -magnitude,
            Effect::Neutral => 0.0,
        };
        let weight = round4(signed);
        let effect = if weight == 0.0 { Effect::Neutral } else { effect };
        self.factors.push(Factor {
            code: Cow::Borrowed(code),
            effect,
            weight,
            evidence,
            provision: Cow::Borrowed(provision),
        });
    }
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Scores one subject. Categories 1–3 are raised on the label alone (confidence at or above
/// the floor); the score orders them. Category 4 is raised only when the score reaches the
/// high threshold after the factors against have been weighed.
pub fn evaluate(policy: &Policy, f: &Facts) -> Evaluation {
    evaluate_with(policy, f, true)
}

/// As [`evaluate`]; with `explain` false every factor's evidence is left empty, which is much
/// cheaper and gives the same score, raise and factor weights.
pub fn evaluate_with(policy: &Policy, f: &Facts, explain: bool) -> Evaluation {
    let w = &policy.weights;
    let mut t = Terms {
        policy,
        factors: Vec::with_capacity(12),
        explain,
    };
    let base = policy.base.of(f.category);
    t.push(
        "category",
        if base >= 0.0 { Effect::For } else { Effect::Against },
        base.abs(),
        || {
            format!(
                "labelled {} ({} track)",
                f.category.as_str().replace('_', " "),
                f.category.track().as_str().replace('_', " ")
            )
        },
        f.category.provision(),
    );
    let Some(confidence) = f.confidence else {
        // No label left: no evidence for the category at all. The retraction carries what
        // brings the log-odds to RETRACTED_LOGIT, so the printed weights still add up to the
        // printed score (0 at four places) like every other flag's.
        t.push(
            "label_retracted",
            Effect::Against,
            (base - RETRACTED_LOGIT).max(0.0),
            || "every label for this category was retracted: no evidence for it remains, and the score is 0".into(),
            provisions::CONFIDENCE,
        );
        let logit: f64 = t.factors.iter().map(|f| f.weight).sum();
        return Evaluation {
            score: round4(sigmoid(logit)),
            raised: false,
            factors: t.factors,
        };
    };
    t.push(
        "label_confidence",
        Effect::Against,
        -w.confidence * confidence.max(1e-6).ln(),
        || format!("strongest label confidence {confidence:.2}"),
        provisions::CONFIDENCE,
    );

    // The public-interest factors against prosecution of para 39 (swift removal, a limited
    // audience, remorse, tolerable in a free society) belong to category 4. Categories 1–3 do
    // not get them as credits: "tolerable" (Chambers) never lowers a threat or a court-order
    // breach. Removal speed still orders their flags, cited as modsignal's ordering.
    let category_4 = f.category == Category::CommunicationsOffence;
    let (exposure_cited, removal_cited) = if category_4 {
        (provisions::EXPOSURE, provisions::SWIFT_REMOVAL)
    } else {
        (provisions::ORDERING, provisions::ORDERING)
    };

    // Exposure: how long the subject was up, and credit for swift removal when it is down.
    let g = exposure_curve(t.policy, f.seconds_up);
    // Evidence is formatted only when the flag is explained (see `Terms::explain`).
    let up = || human_duration(f.seconds_up);
    let window = || {
        let swift = human_duration(policy.exposure.swift_secs);
        let slow = human_duration(policy.exposure.slow_secs);
        if g == 0.0 {
            format!("within the {swift} swift window")
        } else if g >= 1.0 {
            format!("beyond the {slow} slow time scale")
        } else {
            format!("between the {swift} swift window and the {slow} slow time scale")
        }
    };
    // A message of a course of conduct toward one person (two or more messages from the
    // author at the same person, see `Facts::course`) earns only its share of the removal
    // credit: taking one
    // message of n down was no effective action against the conduct (para 39(b): "swift and
    // effective action"), so removal is judged over the course, not message by message.
    let course = if !f.resharer && f.course >= 2 { f.course } else { 1 };
    let course_share = 1.0 / f64::from(course);
    let of_course = move || {
        if course > 1 {
            format!("; one of {course} messages at the same person: 1/{course} of the credit")
        } else {
            String::new()
        }
    };
    match f.removal {
        None => {
            t.push(
                "exposure",
                Effect::For,
                w.exposure * g,
                || format!("still up after {}: {}", up(), window()),
                exposure_cited,
            );
            // A restriction that leaves the message visible to some is action, but not fully
            // effective (para 39: "swift and effective action"): it earns the share of the
            // swift-removal credit its scope is given, at the speed it came, while the
            // exposure goes on counting. The share never exceeds a full removal's.
            if let Some(r) = f.restriction {
                let share = restriction_share(policy, r);
                let gr = exposure_curve(t.policy, r.after_secs);
                t.push(
                    "restricted",
                    Effect::Against,
                    w.swift_removal * (1.0 - gr) * share * course_share,
                    || {
                        let scope = match r.scope {
                            Scope::Withheld => "withheld",
                            Scope::FollowersOnly => "followers only",
                            Scope::AgeGated => "age-gated",
                            Scope::Limited => "limited",
                        };
                        let left = match r.scope {
                            Scope::FollowersOnly => format!(", leaving it to {} followers", r.followers),
                            _ => String::new(),
                        };
                        format!(
                            "access restricted ({scope}) by {} {} after posting, still visible to some{left}: {:.0}% of the swift-removal credit{}",
                            r.by.as_str(),
                            human_duration(r.after_secs),
                            share * 100.0,
                            of_course()
                        )
                    },
                    removal_cited,
                );
            }
        }
        Some(r) => {
            t.push(
                "exposure",
                Effect::For,
                w.exposure * g,
                || format!("up {} in all before it came down", up()),
                exposure_cited,
            );
            let evidence = || {
                let by = r.by.as_str();
                let how = match r.kind {
                    RemovalKind::Deleted => format!("removed by {by}"),
                    RemovalKind::Blocked => format!("access blocked by {by}"),
                    RemovalKind::Account => format!("account closed by {by}"),
                    RemovalKind::WithOriginal => format!("came down with the original, removed by {by}"),
                };
                let when = if f.removed_after_secs > f.seconds_up {
                    format!(
                        "{} after posting, {} up in all",
                        human_duration(f.removed_after_secs),
                        up()
                    )
                } else {
                    format!("{} after posting", up())
                };
                format!("{how} {when}: {}", window())
            };
            // A reshare made while the message was already down earns nothing for that
            // removal: it was no action on this reshare.
            let credit = if f.reshared_after_removal.is_some() {
                0.0
            } else {
                w.swift_removal * (1.0 - g) * course_share
            };
            t.push(
                "swift_removal",
                Effect::Against,
                credit,
                || {
                    if f.reshared_after_removal.is_some() {
                        format!("{}; no credit: reshared after the message was taken down", evidence())
                    } else {
                        format!("{}{}", evidence(), of_course())
                    }
                },
                removal_cited,
            );
        }
    }
    if let Some(a) = f.reshared_after_removal {
        t.push(
            "reshared_after_removal",
            Effect::For,
            w.reshared_after_removal,
            || {
                let how = match a.removal.kind {
                    RemovalKind::Deleted => "removed",
                    RemovalKind::Blocked => "blocked",
                    RemovalKind::Account => "taken down with its author's account",
                    RemovalKind::WithOriginal => "taken down",
                };
                format!(
                    "reshared {} after the message was {how} by {}",
                    human_duration(a.after_secs),
                    a.removal.by.as_str()
                )
            },
            provisions::RESHARED_AFTER_REMOVAL,
        );
    }

    // Reach: one term, saturating. Audience, reshares and impressions measure one thing (how
    // many people the message reached), so they count once: impressions where the platform
    // reports them (who saw it), else the audience (who could have: the sender's followers and
    // every resharer's). The term is capped at `weights.reach` so that virality alone never
    // carries a weak category-4 label over the threshold. It never lowers a score.
    let who = if f.resharer { "this reshare" } else { "the message" };
    let reached = f.impressions.unwrap_or(f.audience);
    t.push(
        "reach",
        Effect::For,
        w.reach * saturating(reached, policy.reach.full_at),
        || {
            let how = match f.impressions {
                Some(n) => format!(
                    "{who} was seen {} (impressions reported by the platform; audience {} accounts)",
                    count(n, "time", "times"),
                    f.audience
                ),
                None => format!(
                    "{who} reached an audience of {}",
                    count(f.audience, "account", "accounts")
                ),
            };
            let cascade = if f.reshares > 0 || f.depth > 0 {
                format!(
                    ", {} through it, cascade depth {}",
                    count(f.reshares, "reshare", "reshares"),
                    f.depth
                )
            } else {
                String::new()
            };
            format!("{how}{cascade} (full weight from {})", policy.reach.full_at)
        },
        if f.resharer {
            provisions::RESHARING
        } else {
            provisions::WIDE_AUDIENCE
        },
    );
    if f.quotes + f.replies > 0 {
        t.push(
            "engagement",
            Effect::For,
            w.engagement * saturating(f.quotes + f.replies, policy.reach.engagement_full_at),
            || {
                format!(
                    "{} and {} (full weight from {})",
                    count(f.quotes, "quote", "quotes"),
                    count(f.replies, "reply", "replies"),
                    policy.reach.engagement_full_at
                )
            },
            provisions::WIDE_AUDIENCE,
        );
    }
    // "Particularly where the intended audience did not include the victim or target" (para
    // 39): a message addressed to the person it targets (a label naming them, a direct message
    // to them, a mention, a reply) has them in its audience, however small or private that
    // audience is, and earns no limited-audience credit. The one exception the engine can
    // know: a direct message to one recipient whom no label names as the target.
    let victim_in_audience = f.targeted.is_some() && !f.target_outside_audience;
    // The credit exists only for category 4 and only where the victim is not in the audience;
    // then a restricted audience earns its kind's share, and a public one below
    // `audience.small_below` the small-audience weight.
    let limited = if !category_4 || victim_in_audience {
        None
    } else {
        match f.audience_kind {
            Audience::Direct => Some((w.limited_audience * policy.audience.direct, "as a direct message")),
            Audience::Followers => Some((w.limited_audience * policy.audience.followers, "to followers only")),
            Audience::Group => Some((w.limited_audience * policy.audience.group, "to a closed group")),
            Audience::Public if f.audience < policy.audience.small_below => Some((w.small_audience, "")),
            Audience::Public => None,
        }
    };
    if let Some((weight, what)) = limited {
        t.push(
            "limited_audience",
            Effect::Against,
            weight,
            || {
                if what.is_empty() {
                    format!(
                        "public, but its audience of {} is below {}",
                        f.audience, policy.audience.small_below
                    )
                } else {
                    format!("sent {what}")
                }
            },
            provisions::LIMITED_AUDIENCE,
        );
    }

    // Factors for prosecution.
    if let Some(how) = f.targeted {
        let how = match how {
            Targeting::Label => "a label names the person targeted",
            Targeting::Direct => "it was sent directly to a person",
            Targeting::Mention => "it mentions a person",
            Targeting::Reply => "it replies to a person",
            Targeting::Quote => "it quotes a person's message",
        };
        t.push(
            "targeted",
            Effect::For,
            w.targeted,
            || format!("addressed to an individual: {how}"),
            provisions::TARGETED,
        );
    }
    if f.reported_by_target {
        t.push(
            "reported_by_target",
            Effect::For,
            w.reported_by_target,
            || "reported by the person targeted".into(),
            provisions::TARGETED,
        );
    }
    if f.reports > 0 {
        // Reports say that people who saw the message objected to it; they are not evidence of
        // impact on the victim. They count up to a share of the subject's reach (at least
        // `reports.counted_min`), so that 2,000 reports on a message seen by 800 accounts
        // count no more than 40: mass reporting is itself an abuse. Both the count and the cap
        // rise with reach, so the term never falls as reach grows.
        let cap = ((reached as f64 * policy.reports.share_of_reach) as u64).max(u64::from(policy.reports.counted_min));
        let counted = u64::from(f.reports).min(cap);
        t.push(
            "reports",
            Effect::For,
            w.reports * saturating(counted, u64::from(policy.reports.full_at)),
            || {
                let n = count(u64::from(f.reports), "distinct reporter", "distinct reporters");
                let n = if f.reports_at_least { format!("at least {n}") } else { n };
                if counted < u64::from(f.reports) || f.reports_at_least {
                    format!(
                        "{n}, counted up to {counted} ({}% of its reach, at least {}; full weight from {})",
                        policy.reports.share_of_reach * 100.0,
                        policy.reports.counted_min,
                        policy.reports.full_at
                    )
                } else {
                    format!("{n} (full weight from {})", policy.reports.full_at)
                }
            },
            provisions::REPORTS,
        );
    }
    for (code, conf, weight, effect, provision, evidence) in [
        (
            "significant_impact",
            f.significant_impact,
            w.significant_impact,
            Effect::For,
            provisions::IMPACT,
            "labelled as having a significant impact on the victim",
        ),
        (
            "hate",
            f.hate,
            w.hate,
            Effect::For,
            provisions::HATE,
            "labelled with a hate-crime element",
        ),
        (
            "encouragement",
            f.encouragement,
            w.encouragement,
            Effect::For,
            provisions::ENCOURAGEMENT,
            "labelled as encouraging others to send or resend",
        ),
        (
            "remorse",
            if category_4 { f.remorse } else { 0.0 },
            w.remorse,
            Effect::Against,
            provisions::REMORSE,
            "labelled: the sender expressed genuine remorse",
        ),
        (
            "tolerable",
            if category_4 { f.tolerable } else { 0.0 },
            w.tolerable,
            Effect::Against,
            provisions::TOLERABLE,
            "labelled as not obviously beyond what a free, diverse society tolerates",
        ),
    ] {
        if conf > 0.0 {
            t.push(
                code,
                effect,
                weight * conf,
                || format!("{evidence} (confidence {conf:.2})"),
                provision,
            );
        }
    }
    if f.prior > 0 {
        let n = f.prior.min(policy.conduct.repeat_cap);
        t.push(
            "repeat",
            Effect::For,
            w.repeat * f64::from(n),
            || {
                format!(
                    "{}{} from the same sender within {} (counted up to {})",
                    if f.prior_at_least { "at least " } else { "" },
                    count(
                        u64::from(f.prior),
                        "earlier labelled message",
                        "earlier labelled messages"
                    ),
                    human_duration(policy.conduct.repeat_window_secs),
                    policy.conduct.repeat_cap
                )
            },
            provisions::REPEAT,
        );
    }
    if f.mob_senders >= policy.conduct.mobbing_min_senders.max(2) {
        t.push(
            "mobbing",
            Effect::For,
            w.mobbing * f64::from(f.mob_senders).ln(),
            || {
                format!(
                    "{}{} distinct senders of labelled messages at the same person within {}",
                    if f.mob_at_least { "at least " } else { "" },
                    f.mob_senders,
                    human_duration(policy.conduct.mobbing_window_secs)
                )
            },
            provisions::MOBBING,
        );
    }
    // A course of conduct toward one person (para 12(2); PHA 1997 s.7(3): "on at least two
    // occasions"): six messages at one person weigh more than six at six people, whom the
    // repeat factor alone cannot tell apart.
    if !f.resharer && f.course >= 2 {
        t.push(
            "course_of_conduct",
            Effect::For,
            w.course_of_conduct * f64::from(f.course).ln(),
            || {
                format!(
                    "{}{} messages from this sender at the same person (labelled, mentioning them, sent to them directly, or replying to or quoting their messages) within {} either side",
                    if f.course_at_least { "at least " } else { "" },
                    f.course,
                    human_duration(policy.conduct.course_window_secs)
                )
            },
            provisions::COURSE,
        );
        // The messages of the course sent after someone acted on it: the platform, the
        // person targeted. Each is its own factor, weighted the same way.
        let after: [(&'static str, u32, f64, &str, &'static str); 3] = [
            (
                "course_after_sanction",
                f.course_after_sanction,
                w.course_after_sanction,
                "the platform suspended or took down the sender's account",
                provisions::COURSE_AFTER_SANCTION,
            ),
            (
                "course_after_report",
                f.course_after_report,
                w.course_after_report,
                "the person targeted reported one to the platform",
                provisions::COURSE_AFTER_REPORT,
            ),
            (
                "course_after_removal",
                f.course_after_removal,
                w.course_after_removal,
                "the platform took one of the sender's messages at this person down",
                provisions::COURSE_AFTER_REMOVAL,
            ),
        ];
        for (code, n, weight, what, provision) in after {
            if n > 0 {
                t.push(
                    code,
                    Effect::For,
                    weight * f64::from(n).ln_1p(),
                    || format!("{n} of them sent after {what}"),
                    provision,
                );
            }
        }
    }
    // Virtual mobbing as one picture (2016 revision; PHA 1997 s.7(3A), a course of conduct by
    // several people): the accounts that joined in on a message aimed at a person, on the
    // originator's flag. Each participant's own flag says what they did; this one counts them.
    let joined = f.pile_on.total();
    if f.targeted.is_some() && !f.resharer && joined >= u64::from(policy.conduct.pile_on_min.max(1)) {
        let p = f.pile_on;
        t.push(
            "pile_on",
            Effect::For,
            w.pile_on * saturating(joined, u64::from(policy.conduct.pile_on_full_at)),
            || {
                format!(
                    "{joined} joined in on a message aimed at a person: {} resharing it ({} within {} of posting), {} and {} (full weight from {})",
                    count(p.resharers, "account", "accounts"),
                    p.burst,
                    human_duration(policy.conduct.pile_on_burst_secs),
                    count(p.quotes, "quote", "quotes"),
                    count(p.replies, "reply", "replies"),
                    policy.conduct.pile_on_full_at
                )
            },
            provisions::MOBBING,
        );
    }
    if f.minor {
        t.push(
            "minor",
            Effect::Against,
            w.minor,
            || "the sender is under 18".into(),
            provisions::MINOR,
        );
    }

    let logit: f64 = t.factors.iter().map(|f| f.weight).sum();
    let score = round4(sigmoid(logit));
    let raised = match f.category.track() {
        Track::Robust => confidence >= policy.labels.min_confidence,
        Track::HighThreshold => confidence >= policy.labels.min_confidence && score >= policy.labels.high_threshold,
    };
    Evaluation {
        score,
        raised,
        factors: t.factors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RemovedBy;

    pub(crate) fn facts(category: Category) -> Facts {
        Facts {
            category,
            confidence: Some(0.9),
            resharer: false,
            seconds_up: 600,
            removal: None,
            removed_after_secs: 0,
            restriction: None,
            reshared_after_removal: None,
            audience_kind: Audience::Public,
            audience: 1000,
            reshares: 3,
            impressions: None,
            quotes: 0,
            replies: 1,
            depth: 1,
            targeted: None,
            target_outside_audience: false,
            reports: 0,
            reports_at_least: false,
            reported_by_target: false,
            hate: 0.0,
            encouragement: 0.0,
            significant_impact: 0.0,
            remorse: 0.0,
            tolerable: 0.0,
            minor: false,
            prior: 0,
            prior_at_least: false,
            mob_senders: 1,
            mob_at_least: false,
            course: 0,
            course_at_least: false,
            course_after_sanction: 0,
            course_after_report: 0,
            course_after_removal: 0,
            pile_on: PileOn::default(),
        }
    }

    #[test]
    fn the_score_is_the_sum_of_the_printed_weights() {
        let p = Policy::default();
        let mut f = facts(Category::CommunicationsOffence);
        f.hate = 1.0;
        f.removal = Some(Removal {
            by: RemovedBy::Platform,
            kind: RemovalKind::Deleted,
        });
        let e = evaluate(&p, &f);
        let logit: f64 = e.factors.iter().map(|f| f.weight).sum();
        assert_eq!(e.score, round4(sigmoid(logit)));
        let swift = e.factors.iter().find(|f| f.code == "swift_removal").unwrap();
        assert_eq!(
            swift.evidence,
            "removed by platform 10m 00s after posting: within the 1h 00m swift window"
        );
        assert_eq!(swift.effect, Effect::Against);
    }

    #[test]
    fn the_exposure_curve_is_monotone_and_saturates() {
        let p = Policy::default();
        let mut last = 0.0;
        for s in (0..200_000).step_by(97) {
            let g = exposure_curve(&p, s);
            assert!(g >= last && (0.0..=1.0).contains(&g));
            last = g;
        }
        assert_eq!(exposure_curve(&p, 3600), 0.0);
        assert_eq!(exposure_curve(&p, 604_800), 1.0);
    }

    /// The guidelines' only example of swift removal, posts that "go up on a Friday and
    /// Saturday night and come down the next morning", reads on balance as swift: the credit
    /// against outweighs the exposure for. Up a whole day does not.
    #[test]
    fn the_dpps_own_example_reads_as_swift() {
        let p = Policy::default();
        let net = |hours: u64| {
            let mut f = facts(Category::CommunicationsOffence);
            f.seconds_up = hours * 3600;
            f.removed_after_secs = hours * 3600;
            f.removal = Some(Removal {
                by: RemovedBy::Author,
                kind: RemovalKind::Deleted,
            });
            let e = evaluate(&p, &f);
            let w = |code: &str| e.factors.iter().find(|x| x.code == code).unwrap().weight;
            w("exposure") + w("swift_removal")
        };
        // Friday 22:00 to Saturday 09:00.
        assert!(net(11) < 0.0, "{}", net(11));
        assert!(net(3) < net(11));
        assert!(net(24) > 0.0, "{}", net(24));
    }

    #[test]
    fn robust_categories_are_raised_on_the_label_alone() {
        let p = Policy::default();
        let mut f = facts(Category::CredibleThreat);
        f.minor = true;
        f.tolerable = 1.0;
        f.audience_kind = Audience::Direct;
        f.removal = Some(Removal {
            by: RemovedBy::Author,
            kind: RemovalKind::Deleted,
        });
        assert!(evaluate(&p, &f).raised);
        f.confidence = Some(0.3);
        assert!(!evaluate(&p, &f).raised);
    }
}
