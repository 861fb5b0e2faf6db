//! The policy: every weight, threshold and time scale of the risk model.
//!
//! Defaults here equal the shipped `config/policy.toml` (a test keeps them equal); that file's
//! comments cite the anchor of each default. The core only reads a `Policy` value; parsing the
//! file is the binary's job.

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
    pub conduct: Conduct,
    pub emission: Emission,
    pub stream: Stream,
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
    pub audience: f64,
    pub reshares: f64,
    pub impressions: f64,
    pub engagement: f64,
    pub targeted: f64,
    pub reported_by_target: f64,
    pub reports: f64,
    pub significant_impact: f64,
    pub hate: f64,
    pub encouragement: f64,
    pub repeat: f64,
    pub mobbing: f64,
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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Emission {
    /// A flag is re-emitted at once when a reach figure crosses a power of this base; smaller
    /// changes wait for the debounce (streaming) or the end of input (files).
    pub reach_milestone_base: f64,
    /// Scores are compared at this resolution to decide whether a change is material.
    pub score_step: f64,
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
                audience: 0.12,
                reshares: 0.25,
                impressions: 0.05,
                engagement: 0.1,
                targeted: 0.5,
                reported_by_target: 0.75,
                reports: 0.2,
                significant_impact: 0.75,
                hate: 1.25,
                encouragement: 0.75,
                repeat: 0.5,
                mobbing: 0.6,
                minor: 2.0,
                remorse: 1.0,
                tolerable: 1.5,
                limited_audience: 1.5,
                small_audience: 0.5,
            },
            exposure: Exposure {
                swift_secs: 3600,
                slow_secs: 86_400,
                stages_secs: vec![900, 3600, 21_600, 86_400, 172_800, 604_800],
            },
            audience: AudiencePolicy {
                direct: 1.0,
                followers: 0.5,
                group: 0.5,
                small_below: 100,
            },
            conduct: Conduct {
                repeat_window_secs: 90 * 86_400,
                repeat_cap: 3,
                mobbing_window_secs: 86_400,
                mobbing_min_senders: 3,
            },
            emission: Emission {
                reach_milestone_base: 10.0,
                score_step: 0.05,
            },
            stream: Stream {
                lateness_secs: 300,
                retention_secs: 7 * 86_400,
            },
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

/// A policy that would break the model's promises.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("weight `{0}` is {1}: weights must be finite and non-negative")]
    NegativeWeight(&'static str, f64),
    #[error("`{0}` must be in 0..=1, got {1}")]
    OutOfUnit(&'static str, f64),
    #[error("exposure.swift_secs ({0}) must be positive and below exposure.slow_secs ({1})")]
    ExposureScale(u64, u64),
    #[error("emission.reach_milestone_base must be above 1, got {0}")]
    MilestoneBase(f64),
    #[error("stream.retention_secs ({0}) must be longer than stream.lateness_secs ({1})")]
    Retention(u64, u64),
    #[error("base `{0}` must be finite")]
    Base(&'static str),
}

impl Policy {
    /// Checks the policy keeps the model's promises: all weights non-negative, the swift time
    /// scale shorter than the slow one, and shares in 0..1.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let w = &self.weights;
        let weights = [
            ("confidence", w.confidence),
            ("exposure", w.exposure),
            ("swift_removal", w.swift_removal),
            ("audience", w.audience),
            ("reshares", w.reshares),
            ("impressions", w.impressions),
            ("engagement", w.engagement),
            ("targeted", w.targeted),
            ("reported_by_target", w.reported_by_target),
            ("reports", w.reports),
            ("significant_impact", w.significant_impact),
            ("hate", w.hate),
            ("encouragement", w.encouragement),
            ("repeat", w.repeat),
            ("mobbing", w.mobbing),
            ("minor", w.minor),
            ("remorse", w.remorse),
            ("tolerable", w.tolerable),
            ("limited_audience", w.limited_audience),
            ("small_audience", w.small_audience),
        ];
        for (name, v) in weights {
            if !(v.is_finite() && v >= 0.0) {
                return Err(PolicyError::NegativeWeight(name, v));
            }
        }
        for (name, v) in [
            ("labels.min_confidence", self.labels.min_confidence),
            ("labels.high_threshold", self.labels.high_threshold),
            ("audience.direct", self.audience.direct),
            ("audience.followers", self.audience.followers),
            ("audience.group", self.audience.group),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(PolicyError::OutOfUnit(name, v));
            }
        }
        let e = &self.exposure;
        if e.swift_secs == 0 || e.swift_secs >= e.slow_secs {
            return Err(PolicyError::ExposureScale(e.swift_secs, e.slow_secs));
        }
        if self.stream.retention_secs <= self.stream.lateness_secs {
            return Err(PolicyError::Retention(
                self.stream.retention_secs,
                self.stream.lateness_secs,
            ));
        }
        if self.emission.reach_milestone_base.is_nan() || self.emission.reach_milestone_base <= 1.0 {
            return Err(PolicyError::MilestoneBase(self.emission.reach_milestone_base));
        }
        for c in Category::ALL {
            if !self.base.of(c).is_finite() {
                return Err(PolicyError::Base(c.as_str()));
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

    #[test]
    fn negative_weights_are_refused() {
        let mut p = Policy::default();
        p.weights.hate = -1.0;
        assert_eq!(p.validate(), Err(PolicyError::NegativeWeight("hate", -1.0)));
        let mut p = Policy::default();
        p.exposure.swift_secs = p.exposure.slow_secs;
        assert!(p.validate().is_err());
    }
}
