//! What to generate: [`SimConfig`], its defaults and its validation.

use std::fmt;

use modsignal_core::Ts;

/// 2026-01-05T00:00:00Z, a Monday.
pub const DEFAULT_START_MS: i64 = 1_767_571_200_000;

/// What to generate. Probabilities are per message (or per event, for delivery) and between 0
/// and 1; `*_rate` fields that are means say so.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// How many events to yield, duplicates included.
    pub events: u64,
    pub seed: u64,
    /// Event time of the first event, in milliseconds since the epoch.
    pub start_ms: i64,
    /// Events per second of event time.
    pub events_per_sec: f64,
    /// The size of the user population.
    pub users: u32,
    /// Share of users flagged `minor: true`.
    pub minor_share: f64,
    /// Share of users who are persistent offenders.
    pub abusive_share: f64,
    /// Share of primary actions that are `account` events.
    pub account_rate: f64,
    /// Share of primary actions that start a mobbing episode.
    pub mob_rate: f64,
    /// Share of primary actions that start a harassment campaign (repeated conduct).
    pub campaign_rate: f64,
    /// Mean reshares of a public post (the mean over authors; popular authors get far more).
    pub reshare_rate: f64,
    /// Mean replies to a public or followers-only post.
    pub reply_rate: f64,
    /// Mean quotes of a public post.
    pub quote_rate: f64,
    /// Share of reshares that reshare an earlier reshare rather than the original.
    pub deep_reshare_rate: f64,
    /// Share of ordinary posts that get a category label.
    pub label_rate: f64,
    /// Share of classifier labels later retracted by the classifier.
    pub negate_rate: f64,
    /// Share of posts their author deletes (four times this when labelled).
    pub author_delete_rate: f64,
    /// Share of reshares their author undoes.
    pub reshare_delete_rate: f64,
    /// Share of labelled posts the platform takes down (scaled by category severity).
    pub takedown_rate: f64,
    /// Share of labelled posts the platform restricts instead.
    pub restrict_rate: f64,
    /// Share of platform takedowns later restored.
    pub restore_rate: f64,
    /// Share of labelled posts that are reported.
    pub report_rate: f64,
    /// Share of public posts with cumulative impressions updates.
    pub impressions_rate: f64,
    /// Share of events emitted twice.
    pub duplicate_rate: f64,
    /// Share of events delivered late (displaced within the reorder window).
    pub reorder_rate: f64,
    /// The largest displacement, in seconds of event time.
    pub reorder_window_secs: u64,
    /// Share of events that carry an `event_id`.
    pub event_id_rate: f64,
    /// The most scheduled future events kept at once: the memory bound.
    pub max_pending: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            events: 100_000,
            seed: 1,
            start_ms: DEFAULT_START_MS,
            events_per_sec: 2_000.0,
            users: 100_000,
            // A few percent of accounts are known to the platform to be under 18.
            minor_share: 0.03,
            // Abuse is concentrated: a small fraction of accounts sends most of it.
            abusive_share: 0.005,
            account_rate: 0.01,
            mob_rate: 0.000_3,
            campaign_rate: 0.000_3,
            reshare_rate: 1.2,
            reply_rate: 0.5,
            quote_rate: 0.08,
            deep_reshare_rate: 0.15,
            // Classifiers flag a couple of percent of content; most of it category 4.
            label_rate: 0.02,
            negate_rate: 0.06,
            author_delete_rate: 0.03,
            reshare_delete_rate: 0.02,
            takedown_rate: 0.3,
            restrict_rate: 0.15,
            restore_rate: 0.1,
            report_rate: 0.35,
            impressions_rate: 0.05,
            duplicate_rate: 0.01,
            reorder_rate: 0.02,
            reorder_window_secs: 60,
            event_id_rate: 0.25,
            // About 4 million entries of 48 bytes: under 200 MB at worst, reached only after
            // days of event time.
            max_pending: 4_000_000,
        }
    }
}

/// A configuration that cannot be simulated, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid simulator configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl SimConfig {
    /// Checks every field; [`Simulator::new`] panics on a configuration this rejects, so a
    /// caller taking values from a user should call this first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        let shares = [
            ("minor_share", self.minor_share),
            ("abusive_share", self.abusive_share),
            ("account_rate", self.account_rate),
            ("mob_rate", self.mob_rate),
            ("campaign_rate", self.campaign_rate),
            ("deep_reshare_rate", self.deep_reshare_rate),
            ("label_rate", self.label_rate),
            ("negate_rate", self.negate_rate),
            ("author_delete_rate", self.author_delete_rate),
            ("reshare_delete_rate", self.reshare_delete_rate),
            ("takedown_rate", self.takedown_rate),
            ("restrict_rate", self.restrict_rate),
            ("restore_rate", self.restore_rate),
            ("report_rate", self.report_rate),
            ("impressions_rate", self.impressions_rate),
            ("duplicate_rate", self.duplicate_rate),
            ("reorder_rate", self.reorder_rate),
            ("event_id_rate", self.event_id_rate),
        ];
        for (name, v) in shares {
            if !(0.0..=1.0).contains(&v) {
                return err(format!("`{name}` is {v}, not a share between 0 and 1"));
            }
        }
        for (name, v) in [
            ("reshare_rate", self.reshare_rate),
            ("reply_rate", self.reply_rate),
            ("quote_rate", self.quote_rate),
        ] {
            if !(0.0..=1000.0).contains(&v) {
                return err(format!("`{name}` is {v}, not a mean between 0 and 1000"));
            }
        }
        if self.account_rate + self.mob_rate + self.campaign_rate > 1.0 {
            return err("`account_rate + mob_rate + campaign_rate` exceeds 1".into());
        }
        if self.takedown_rate + self.restrict_rate > 1.0 {
            return err("`takedown_rate + restrict_rate` exceeds 1".into());
        }
        if !(self.events_per_sec.is_finite() && self.events_per_sec > 0.0 && self.events_per_sec <= 1e7) {
            return err(format!(
                "`events_per_sec` is {}, not between 0 and 10 million",
                self.events_per_sec
            ));
        }
        if self.users < 2 {
            return err("`users` must be at least 2".into());
        }
        // Leave a year of headroom below the contract's upper bound for a long run.
        if !(Ts(self.start_ms).in_range() && Ts(self.start_ms + 365 * 86_400_000).in_range()) {
            return err(format!(
                "`start_ms` {} is outside 2000-01-01..2199-01-01",
                self.start_ms
            ));
        }
        if self.reorder_window_secs > 3600 {
            return err("`reorder_window_secs` above an hour is not a bounded reordering".into());
        }
        if self.max_pending == 0 {
            return err("`max_pending` must be positive".into());
        }
        Ok(())
    }
}
