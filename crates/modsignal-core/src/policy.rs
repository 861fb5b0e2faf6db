//! The policy: every weight, threshold and time scale of the risk model.
//!
//! Defaults here equal the shipped `config/policy.toml` (a test keeps them equal); that file's
//! comments cite the anchor of each default. The core only reads a `Policy` value; parsing the
//! file is the binary's job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::Category;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub labels: Labels,
    pub base: Base,
    pub weights: Weights,
    pub exposure: Exposure,
    pub audience: AudiencePolicy,
    pub reach: Reach,
    pub reports: Reports,
    pub restriction: RestrictionPolicy,
    pub conduct: Conduct,
    pub emission: Emission,
    pub stream: Stream,
    pub limits: Limits,
    /// The citations flags write, by key: the catalogue a reviewer reads in the policy file.
    /// They are not settings: a table that differs from the one this build writes is refused,
    /// so the file never says one thing while flags cite another.
    pub provisions: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Labels {
    /// Category labels below this confidence keep their flag but never raise it.
    pub min_confidence: f64,
    /// Category 4 is raised only at or above this score.
    pub high_threshold: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Base {
    pub credible_threat: f64,
    pub targeted_harassment: f64,
    pub court_order_breach: f64,
    pub communications_offence: f64,
}

impl Base {
    pub fn of(&self, c: Category) -> f64 {
        match c {
            Category::CredibleThreat => self.credible_threat,
            Category::TargetedHarassment => self.targeted_harassment,
            Category::CourtOrderBreach => self.court_order_breach,
            Category::CommunicationsOffence => self.communications_offence,
        }
    }
}

/// Log-odds weights. Every one must be non-negative: the sign of each factor is fixed by the
/// model, so a weight only says how much it counts. This is what makes the promises hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    pub confidence: f64,
    pub exposure: f64,
    pub swift_removal: f64,
    /// The one reach term at its full (saturated) value: see [`Reach`].
    pub reach: f64,
    /// Quotes and replies together, at their full (saturated) value.
    pub engagement: f64,
    pub targeted: f64,
    pub reported_by_target: f64,
    /// Reports from distinct accounts, at their full (saturated) value: see [`Reports`].
    pub reports: f64,
    pub significant_impact: f64,
    pub hate: f64,
    pub encouragement: f64,
    pub repeat: f64,
    pub mobbing: f64,
    /// A pile-on on a message aimed at a person, at its full (saturated) value.
    pub pile_on: f64,
    /// weight * ln(messages) of a course of conduct toward one person, from two.
    pub course_of_conduct: f64,
    /// A reshare made while the message was down for everyone (resending what was taken down).
    pub reshared_after_removal: f64,
    /// weight * ln(1 + messages) of a course of conduct sent after the platform suspended the
    /// sender's account.
    pub course_after_sanction: f64,
    /// weight * ln(1 + messages) of a course of conduct sent after the person targeted
    /// reported it.
    pub course_after_report: f64,
    /// weight * ln(1 + messages) of a course of conduct sent after the platform took one of
    /// its messages down.
    pub course_after_removal: f64,
    pub minor: f64,
    pub remorse: f64,
    pub tolerable: f64,
    pub limited_audience: f64,
    pub small_audience: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Exposure {
    /// Removal within this many seconds earns full credit as swift.
    pub swift_secs: u64,
    /// Removal after this many seconds earns none.
    pub slow_secs: u64,
    /// Times after posting at which a message still up is re-evaluated and its flag re-emitted,
    /// even if no event for it arrives.
    pub stages_secs: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudiencePolicy {
    /// Share of `weights.limited_audience` applied to each non-public audience.
    pub direct: f64,
    pub followers: f64,
    pub group: f64,
    /// A public message whose whole audience stays below this many accounts counts as sent to
    /// a small audience.
    pub small_below: u64,
}

/// How reach counts: one term, saturating, so that virality alone never carries a weak
/// category-4 label over the threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reach {
    /// The reach term earns all of `weights.reach` at this many accounts reached (or
    /// impressions, where the platform reports them), and a share rising with ln(1 + n) below.
    pub full_at: u64,
    /// Quotes and replies together earn all of `weights.engagement` at this many.
    pub engagement_full_at: u64,
}

/// The share of the swift-removal credit each partial restriction earns (a `withheld`
/// restriction and a takedown are removals and earn all of it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestrictionPolicy {
    pub age_gated: f64,
    pub limited: f64,
    /// Scaled down by the followers it leaves the message to.
    pub followers_only: f64,
}

/// How reports count: a signal that people who saw the message objected to it, never evidence
/// of impact on the victim, and bounded relative to the audience so that mass reporting cannot
/// raise a flag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reports {
    /// Distinct reporters count up to this share of the subject's reach ...
    pub share_of_reach: f64,
    /// ... but never fewer than this many, so that a small audience's reports still count.
    pub counted_min: u32,
    /// The counted reports earn all of `weights.reports` at this many.
    pub full_at: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conduct {
    /// Earlier labelled messages by the same sender within this window count as repeated conduct.
    pub repeat_window_secs: u64,
    /// At most this many earlier messages count.
    pub repeat_cap: u32,
    /// Labelled messages from distinct senders at one target within this window (either side of
    /// the message) count as virtual mobbing.
    pub mobbing_window_secs: u64,
    /// Mobbing starts at this many distinct senders, the message's own included.
    pub mobbing_min_senders: u32,
    /// A sender's messages at one person within this window (either side of the message) are
    /// one course of conduct.
    pub course_window_secs: u64,
    /// A pile-on starts at this many accounts resharing, quoting or replying to a message
    /// aimed at a person ...
    pub pile_on_min: u32,
    /// ... and earns all of `weights.pile_on` at this many.
    pub pile_on_full_at: u32,
    /// The pile-on's burst: how many of the accounts that reshared the message did so within
    /// this long of its posting, which its evidence states.
    pub pile_on_burst_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Emission {
    /// A flag is re-emitted at once when a reach figure crosses a power of this base; smaller
    /// changes wait for the input to go quiet (the end of a file, a quiet Kafka partition).
    pub reach_milestone_base: f64,
    /// Scores are compared at this resolution to decide whether a change is material.
    pub score_step: f64,
    /// A flag written less than this long ago (in event time) is not written again for a
    /// change that is not news (its score, reach or time up moving): a material change waits
    /// until the interval has passed, any other change for the input to go quiet. News (a flag
    /// raised or lowered, a subject coming down or back up) is written at once.
    pub min_interval_secs: u64,
    /// A flag that is not raised is written again for its score, its exposure stage or its
    /// factors only while it could be raised by them: a category-4 flag whose score is within
    /// this margin below `labels.high_threshold`. Otherwise only news writes it (raised or
    /// lowered, its label, its subject coming down or back up, a reach milestone), and the end
    /// of input or a quiet partition writes its exact state.
    pub score_margin: f64,
    /// A resharer's flag is first written only once it matters on its own: raised, its own
    /// audience (their followers and those of the reshares made through theirs) at least this
    /// many accounts, labelled or reported on their own reshare, or reshared after the message
    /// came down. Every other resharer is listed in the message's resharer cohort
    /// (`resharer_cohort`); without cohorts, a flag near the threshold (`score_margin`) is
    /// written at once too, and any other is first written when the input goes quiet, with
    /// its exact state. On a viral cascade, writing every resharer's flag when they reshare,
    /// and again when the message comes down, was most of what was written. 0 writes every
    /// resharer's flag at once.
    pub resharer_audience: u64,
    /// Whether a resharer's flag that never mattered on its own (as `resharer_audience` says)
    /// is listed only in the message's resharer cohort, by its numbers, instead of being
    /// written as a flag of its own (see `crate::cohort`). Every
    /// resharer's flag that did matter is written as before, and is in the cohort too. False
    /// writes no cohorts and every resharer's flag, as releases before cohorts did.
    pub resharer_cohort: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Stream {
    /// How far behind the newest event time the watermark runs. Events older than the
    /// watermark are late: still applied, and counted.
    pub lateness_secs: u64,
    /// A message with no activity for this long (in event time, behind the watermark) is
    /// written one last time and dropped from state, with its reshares, so memory stays bounded
    /// on an endless stream.
    pub retention_secs: u64,
    /// An event stamped more than this far after the time its adapter received it (a Kafka
    /// record's timestamp; the file reader's clock with `--ingest-clock`) is rejected as
    /// `future`: clocks of honest producers disagree by seconds, not by hours.
    pub max_skew_secs: u64,
    /// Without an ingest time, an event stamped more than this far after the event time of the
    /// stream so far is rejected as `future`. It never moves event time either way, and one
    /// record alone never moves it (see the engine's clock).
    pub max_jump_secs: u64,
}

/// Bounds on what one message or account may hold, so that work per event and memory per key
/// stay bounded whatever the input. Input beyond a bound is rejected with code `limit` and its
/// reason (or, for reports, counted as `at least`), never silently dropped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// A reshare counts towards the reach of at most this many reshares above it in a chain,
    /// and cascade depth is counted up to one more than this.
    pub chain_levels: u32,
    /// Distinct label events kept per message.
    pub labels_per_message: u32,
    /// Distinct reporters counted per message; beyond, a flag says "at least" this many.
    pub reporters_per_message: u32,
    /// Removal changes (deletes, restrictions, restores) kept per message or reshare id.
    pub changes_per_id: u32,
    /// Status changes kept per account while it is in state.
    pub changes_per_account: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            labels: Labels {
                min_confidence: 0.5,
                high_threshold: 0.8,
            },
            base: Base {
                credible_threat: 1.5,
                targeted_harassment: 1.0,
                court_order_breach: 1.0,
                communications_offence: -3.0,
            },
            weights: Weights {
                confidence: 1.0,
                exposure: 1.5,
                swift_removal: 1.5,
                reach: 2.5,
                engagement: 0.5,
                targeted: 0.5,
                reported_by_target: 0.75,
                reports: 0.75,
                significant_impact: 0.75,
                hate: 1.25,
                encouragement: 0.75,
                repeat: 0.5,
                mobbing: 0.6,
                pile_on: 1.0,
                reshared_after_removal: 1.0,
                course_after_sanction: 0.5,
                course_after_report: 0.5,
                course_after_removal: 0.5,
                course_of_conduct: 0.75,
                minor: 2.0,
                remorse: 1.0,
                tolerable: 1.5,
                limited_audience: 1.5,
                small_audience: 0.5,
            },
            exposure: Exposure {
                swift_secs: 3600,
                slow_secs: 604_800,
                stages_secs: vec![900, 3600, 21_600, 86_400, 172_800, 604_800],
            },
            audience: AudiencePolicy {
                direct: 1.0,
                followers: 0.5,
                group: 0.5,
                small_below: 100,
            },
            reach: Reach {
                full_at: 1_000_000,
                engagement_full_at: 1000,
            },
            restriction: RestrictionPolicy {
                age_gated: 0.5,
                limited: 0.5,
                followers_only: 1.0,
            },
            reports: Reports {
                share_of_reach: 0.05,
                counted_min: 10,
                full_at: 100,
            },
            conduct: Conduct {
                repeat_window_secs: 90 * 86_400,
                repeat_cap: 3,
                mobbing_window_secs: 86_400,
                mobbing_min_senders: 3,
                course_window_secs: 7 * 86_400,
                pile_on_min: 10,
                pile_on_full_at: 1000,
                pile_on_burst_secs: 1800,
            },
            emission: Emission {
                reach_milestone_base: 10.0,
                score_step: 0.05,
                min_interval_secs: 60,
                score_margin: 0.1,
                resharer_audience: 10_000,
                resharer_cohort: true,
            },
            stream: Stream {
                lateness_secs: 300,
                retention_secs: 7 * 86_400,
                max_skew_secs: 300,
                max_jump_secs: 365 * 86_400,
            },
            limits: Limits {
                chain_levels: 32,
                labels_per_message: 1024,
                reporters_per_message: 1000,
                changes_per_id: 64,
                changes_per_account: 256,
            },
            provisions: crate::model::provisions::ALL
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }
}

impl Default for Labels {
    fn default() -> Self {
        Policy::default().labels
    }
}
impl Default for Base {
    fn default() -> Self {
        Policy::default().base
    }
}
impl Default for Weights {
    fn default() -> Self {
        Policy::default().weights
    }
}
impl Default for Exposure {
    fn default() -> Self {
        Policy::default().exposure
    }
}
impl Default for AudiencePolicy {
    fn default() -> Self {
        Policy::default().audience
    }
}
impl Default for Reach {
    fn default() -> Self {
        Policy::default().reach
    }
}
impl Default for RestrictionPolicy {
    fn default() -> Self {
        Policy::default().restriction
    }
}
impl Default for Reports {
    fn default() -> Self {
        Policy::default().reports
    }
}
impl Default for Conduct {
    fn default() -> Self {
        Policy::default().conduct
    }
}
impl Default for Emission {
    fn default() -> Self {
        Policy::default().emission
    }
}
impl Default for Stream {
    fn default() -> Self {
        Policy::default().stream
    }
}
impl Default for Limits {
    fn default() -> Self {
        Policy::default().limits
    }
}

/// A policy that would break the model's promises, or whose numbers would overflow or make a
/// flag unwritable. Every variant names the setting and what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("`{setting}` is {value}: allowed {allowed}")]
    Range {
        setting: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error("exposure.swift_secs ({0}) must be below exposure.slow_secs ({1})")]
    ExposureScale(u64, u64),
    #[error("exposure.stages_secs must be strictly increasing: {0} follows {1}")]
    Stages(u64, u64),
    #[error("stream.retention_secs ({0}) must be longer than stream.lateness_secs ({1})")]
    Retention(u64, u64),
    /// The `[provisions]` table is not the one this build cites.
    #[error(
        "provisions.{0} {1}; the table lists the citations this build writes: copy it from this \
         release's config/policy.toml, or leave it out"
    )]
    Provision(String, &'static str),
}

/// The longest span any time setting may have: 100 years, so that every sum of times in
/// milliseconds stays far inside `i64`.
const MAX_SPAN_SECS: u64 = 100 * 365 * 86_400;
const SPAN: &str = "0..=3153600000 (100 years)";
/// The largest magnitude of a weight or base: a factor's contribution is a weight times at
/// most ln(2^64), so every score stays finite and every weight printable.
const MAX_WEIGHT: f64 = 1000.0;

fn range(setting: &'static str, value: impl std::fmt::Display, allowed: &'static str) -> PolicyError {
    PolicyError::Range {
        setting,
        value: value.to_string(),
        allowed,
    }
}

impl Policy {
    /// Checks the policy keeps the model's promises (every weight non-negative, the swift time
    /// scale shorter than the slow one, shares in 0..1) and that every number is in a range
    /// where the engine's arithmetic cannot overflow and every flag can be written.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let cited = &crate::model::provisions::ALL;
        for (key, text) in &self.provisions {
            match cited.iter().find(|(k, _)| k == key) {
                None => {
                    return Err(PolicyError::Provision(
                        key.clone(),
                        "is not a citation this build writes",
                    ));
                }
                Some((_, t)) if t != text => {
                    return Err(PolicyError::Provision(
                        key.clone(),
                        "differs from the text this build cites",
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some((k, _)) = cited.iter().find(|(k, _)| !self.provisions.contains_key(*k)) {
            return Err(PolicyError::Provision((*k).to_owned(), "is missing"));
        }
        let w = &self.weights;
        let weights = [
            ("weights.confidence", w.confidence),
            ("weights.exposure", w.exposure),
            ("weights.swift_removal", w.swift_removal),
            ("weights.reach", w.reach),
            ("weights.engagement", w.engagement),
            ("weights.targeted", w.targeted),
            ("weights.reported_by_target", w.reported_by_target),
            ("weights.reports", w.reports),
            ("weights.significant_impact", w.significant_impact),
            ("weights.hate", w.hate),
            ("weights.encouragement", w.encouragement),
            ("weights.repeat", w.repeat),
            ("weights.mobbing", w.mobbing),
            ("weights.pile_on", w.pile_on),
            ("weights.reshared_after_removal", w.reshared_after_removal),
            ("weights.course_after_sanction", w.course_after_sanction),
            ("weights.course_after_report", w.course_after_report),
            ("weights.course_after_removal", w.course_after_removal),
            ("weights.course_of_conduct", w.course_of_conduct),
            ("weights.minor", w.minor),
            ("weights.remorse", w.remorse),
            ("weights.tolerable", w.tolerable),
            ("weights.limited_audience", w.limited_audience),
            ("weights.small_audience", w.small_audience),
        ];
        for (name, v) in weights {
            // `contains` is false for NaN, so NaN is refused too.
            if !(0.0..=MAX_WEIGHT).contains(&v) {
                return Err(range(name, v, "0..=1000, finite and non-negative"));
            }
        }
        for c in Category::ALL {
            let v = self.base.of(c);
            if !(-MAX_WEIGHT..=MAX_WEIGHT).contains(&v) {
                let name = match c {
                    Category::CredibleThreat => "base.credible_threat",
                    Category::TargetedHarassment => "base.targeted_harassment",
                    Category::CourtOrderBreach => "base.court_order_breach",
                    Category::CommunicationsOffence => "base.communications_offence",
                };
                return Err(range(name, v, "-1000..=1000, finite"));
            }
        }
        for (name, v) in [
            ("labels.min_confidence", self.labels.min_confidence),
            ("labels.high_threshold", self.labels.high_threshold),
            ("audience.direct", self.audience.direct),
            ("audience.followers", self.audience.followers),
            ("audience.group", self.audience.group),
            ("reports.share_of_reach", self.reports.share_of_reach),
            ("restriction.age_gated", self.restriction.age_gated),
            ("restriction.limited", self.restriction.limited),
            ("restriction.followers_only", self.restriction.followers_only),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(range(name, v, "0..=1"));
            }
        }
        let e = &self.exposure;
        for (name, v) in [
            ("exposure.swift_secs", e.swift_secs),
            ("exposure.slow_secs", e.slow_secs),
        ] {
            if !(1..=MAX_SPAN_SECS).contains(&v) {
                return Err(range(name, v, "1..=3153600000 (100 years)"));
            }
        }
        if e.swift_secs >= e.slow_secs {
            return Err(PolicyError::ExposureScale(e.swift_secs, e.slow_secs));
        }
        if e.stages_secs.len() > 64 {
            return Err(range(
                "exposure.stages_secs",
                format!("a list of {}", e.stages_secs.len()),
                "at most 64 stages",
            ));
        }
        for (i, &s) in e.stages_secs.iter().enumerate() {
            if !(1..=MAX_SPAN_SECS).contains(&s) {
                return Err(range("exposure.stages_secs", s, "each 1..=3153600000 (100 years)"));
            }
            if i > 0 && s <= e.stages_secs[i - 1] {
                return Err(PolicyError::Stages(s, e.stages_secs[i - 1]));
            }
        }
        if self.audience.small_below > 1_000_000_000_000 {
            return Err(range(
                "audience.small_below",
                self.audience.small_below,
                "0..=1000000000000",
            ));
        }
        // A saturation point of at least 1 keeps ln(1 + full_at) positive, so every share is
        // finite; the upper bounds keep them printable.
        for (name, v) in [
            ("reach.full_at", self.reach.full_at),
            ("reach.engagement_full_at", self.reach.engagement_full_at),
            ("reports.full_at", u64::from(self.reports.full_at)),
        ] {
            if !(1..=1_000_000_000_000).contains(&v) {
                return Err(range(name, v, "1..=1000000000000"));
            }
        }
        if self.reports.counted_min > 1_000_000 {
            return Err(range("reports.counted_min", self.reports.counted_min, "0..=1000000"));
        }
        let c = &self.conduct;
        for (name, v) in [
            ("conduct.repeat_window_secs", c.repeat_window_secs),
            ("conduct.mobbing_window_secs", c.mobbing_window_secs),
            ("conduct.course_window_secs", c.course_window_secs),
            ("conduct.pile_on_burst_secs", c.pile_on_burst_secs),
        ] {
            if v > MAX_SPAN_SECS {
                return Err(range(name, v, SPAN));
            }
        }
        if c.repeat_cap > 1000 {
            return Err(range("conduct.repeat_cap", c.repeat_cap, "0..=1000"));
        }
        if c.mobbing_min_senders > 1000 {
            return Err(range("conduct.mobbing_min_senders", c.mobbing_min_senders, "0..=1000"));
        }
        if c.pile_on_min > 1_000_000 {
            return Err(range("conduct.pile_on_min", c.pile_on_min, "0..=1000000"));
        }
        if !(1..=1_000_000_000).contains(&c.pile_on_full_at) {
            return Err(range("conduct.pile_on_full_at", c.pile_on_full_at, "1..=1000000000"));
        }
        let m = &self.emission;
        if !(1.0 < m.reach_milestone_base && m.reach_milestone_base <= 1e6) {
            return Err(range(
                "emission.reach_milestone_base",
                m.reach_milestone_base,
                "above 1, at most 1000000",
            ));
        }
        if !(0.0 < m.score_step && m.score_step <= 1.0) {
            return Err(range("emission.score_step", m.score_step, "above 0, at most 1"));
        }
        if m.min_interval_secs > MAX_SPAN_SECS {
            return Err(range("emission.min_interval_secs", m.min_interval_secs, SPAN));
        }
        if !(0.0..=1.0).contains(&m.score_margin) {
            return Err(range("emission.score_margin", m.score_margin, "from 0 to 1"));
        }
        if m.resharer_audience > 1_000_000_000_000 {
            return Err(range(
                "emission.resharer_audience",
                m.resharer_audience,
                "0..=1000000000000",
            ));
        }
        let s = &self.stream;
        for (name, v) in [
            ("stream.lateness_secs", s.lateness_secs),
            ("stream.retention_secs", s.retention_secs),
            ("stream.max_skew_secs", s.max_skew_secs),
            ("stream.max_jump_secs", s.max_jump_secs),
        ] {
            if v > MAX_SPAN_SECS {
                return Err(range(name, v, SPAN));
            }
        }
        if s.retention_secs <= s.lateness_secs {
            return Err(PolicyError::Retention(s.retention_secs, s.lateness_secs));
        }
        let l = &self.limits;
        for (name, v, allowed, ok) in [
            (
                "limits.chain_levels",
                l.chain_levels,
                "1..=1024",
                (1..=1024).contains(&l.chain_levels),
            ),
            (
                "limits.labels_per_message",
                l.labels_per_message,
                "1..=65536",
                (1..=65_536).contains(&l.labels_per_message),
            ),
            (
                "limits.reporters_per_message",
                l.reporters_per_message,
                "1..=1000000",
                (1..=1_000_000).contains(&l.reporters_per_message),
            ),
            (
                "limits.changes_per_id",
                l.changes_per_id,
                "1..=65536",
                (1..=65_536).contains(&l.changes_per_id),
            ),
            (
                "limits.changes_per_account",
                l.changes_per_account,
                "1..=65536",
                (1..=65_536).contains(&l.changes_per_account),
            ),
        ] {
            if !ok {
                return Err(range(name, v, allowed));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Policy::default().validate().unwrap();
    }

    /// The `[provisions]` table is the list of what flags cite: a reworded, unknown or missing
    /// citation is refused with its key.
    #[test]
    fn a_provisions_table_that_differs_from_the_build_is_refused() {
        type Edit = fn(&mut BTreeMap<String, String>);
        let cases: [(Edit, &str); 3] = [
            (
                |t| {
                    t.insert("remorse".into(), "para 39: remorse".into());
                },
                "provisions.remorse differs from the text this build cites",
            ),
            (
                |t| {
                    t.insert("para_40".into(), "para 40-41 (?)".into());
                },
                "provisions.para_40 is not a citation this build writes",
            ),
            (
                |t| {
                    t.remove("mobbing");
                },
                "provisions.mobbing is missing",
            ),
        ];
        for (edit, message) in cases {
            let mut p = Policy::default();
            edit(&mut p.provisions);
            let err = p.validate().unwrap_err().to_string();
            assert!(err.starts_with(message), "{err}");
        }
    }

    /// The settings issue 9 found accepted, each now refused with its name and allowed range.
    #[test]
    fn every_number_is_range_checked() {
        type Edit = fn(&mut Policy);
        let cases: &[(Edit, &str)] = &[
            (|p| p.weights.hate = -1.0, "weights.hate"),
            (|p| p.weights.reach = 1e308, "weights.reach"),
            (|p| p.weights.reach = f64::NAN, "weights.reach"),
            (|p| p.reach.full_at = 0, "reach.full_at"),
            (|p| p.reports.full_at = 0, "reports.full_at"),
            (|p| p.reports.share_of_reach = 2.0, "reports.share_of_reach"),
            (|p| p.restriction.age_gated = 1.5, "restriction.age_gated"),
            (
                |p| p.base.communications_offence = f64::INFINITY,
                "base.communications_offence",
            ),
            (
                |p| p.stream.lateness_secs = 18_446_744_073_709_551_614,
                "stream.lateness_secs",
            ),
            (|p| p.stream.retention_secs = u64::MAX, "stream.retention_secs"),
            (|p| p.emission.score_step = 0.0, "emission.score_step"),
            (|p| p.emission.score_step = -1.0, "emission.score_step"),
            (|p| p.emission.score_margin = -0.1, "emission.score_margin"),
            (|p| p.emission.score_margin = f64::NAN, "emission.score_margin"),
            (|p| p.emission.score_step = f64::NAN, "emission.score_step"),
            (|p| p.emission.score_step = f64::INFINITY, "emission.score_step"),
            (
                |p| p.emission.reach_milestone_base = f64::INFINITY,
                "emission.reach_milestone_base",
            ),
            (
                |p| p.emission.reach_milestone_base = 1.0,
                "emission.reach_milestone_base",
            ),
            (
                |p| p.exposure.stages_secs = (1..=200_000).collect(),
                "exposure.stages_secs",
            ),
            (|p| p.exposure.stages_secs = vec![60, 30], "exposure.stages_secs"),
            (|p| p.exposure.swift_secs = 0, "exposure.swift_secs"),
            (|p| p.exposure.swift_secs = p.exposure.slow_secs, "exposure.swift_secs"),
            (
                |p| p.conduct.repeat_window_secs = u64::MAX,
                "conduct.repeat_window_secs",
            ),
            (|p| p.labels.min_confidence = 1.5, "labels.min_confidence"),
            (|p| p.limits.chain_levels = 0, "limits.chain_levels"),
            (|p| p.stream.max_jump_secs = u64::MAX, "stream.max_jump_secs"),
        ];
        for (edit, setting) in cases {
            let mut p = Policy::default();
            edit(&mut p);
            let err = p.validate().expect_err(setting);
            assert!(err.to_string().contains(setting), "{setting}: {err}");
        }
    }
}
