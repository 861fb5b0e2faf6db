//! A deterministic generator of a realistic synthetic stream of canonical modsignal events.
//!
//! `modsignal run` with no input runs on this stream, and the benchmarks and tests use it. The
//! [`Simulator`] is an iterator of [`Event`]s: give it a [`SimConfig`] and it yields exactly
//! `events` events, the same bytes for the same configuration every time (no clock, no I/O,
//! no hash-map iteration order, one seeded generator).
//!
//! # What the stream looks like, and why
//!
//! - **Users.** A fixed population (`users`, default 100,000). Follower counts mix a log-normal
//!   body (median 140: most accounts have tens to hundreds) with a Pareto tail of shape 0.85 for
//!   one account in 250, so a handful of accounts have millions: the heavy tail every study of
//!   follower graphs finds. Activity is skewed too (a few accounts post hundreds of times more
//!   than the median one). A small share is flagged `minor: true` (`minor_share`), a small
//!   share are persistent offenders (`abusive_share`) whose posts are labelled far more often,
//!   and 15% sit on a platform whose stream has no follower counts (Bluesky), so their counts
//!   only arrive as `account` events carrying `followers`.
//! - **Time.** Event time starts at `start_ms` and advances at about `events_per_sec` events
//!   per second of event time (default 2,000, a busy network's firehose). Everything else
//!   happens *because of* something: a post schedules its reshares, replies, labels, reports
//!   and removals at log-normal delays into a priority queue keyed by event time, and the
//!   stream is that queue drained in order, interleaved with new "primary" actions (posts,
//!   account events, the start of a mobbing episode or a harassment campaign). The rate of
//!   primary actions is steered so that the total rate stays near `events_per_sec`. The
//!   simulator starts cold, as if the network was switched on at `start_ms`: consequences
//!   that take minutes or hours (most removals, reviewer labels, restores) appear only once
//!   that much event time has passed, so a short run at the default rate (100,000 events is
//!   under a minute) is mostly posts; lower `events_per_sec` to see hours in few events.
//! - **Cascades.** Public posts draw reshares, replies and quotes. The expected count grows
//!   with the author's followers (to the power 0.75) times a log-normal "virality" with mean
//!   one, so cascade sizes are heavy-tailed and popular authors get most reshares. Arrival
//!   delays are log-normal with a median of 20 minutes (about half of reshares come within the
//!   first hour, a few after a day, as measured on Twitter); a cascade is drawn one arrival at
//!   a time from sorted uniforms, so a post with 100,000 reshares costs one queue entry, not
//!   100,000. A share of reshares (`deep_reshare_rate`) reshare the previous reshare instead
//!   of the original, half written as `of` = that reshare (depth 2 and more) and half as `of`
//!   = the original with `via` = that reshare (Bluesky's form).
//! - **Removals.** Authors delete a share of their posts (`author_delete_rate`, four times as
//!   often when labelled) after log-normal delays with a median of 45 minutes and a tail into
//!   days, a quarter of them within seconds (typos); they also un-repost. The platform takes
//!   down (`delete` by `platform`) or restricts (`withheld`, `age_gated`, `limited`,
//!   `followers_only`) mostly labelled posts, minutes to hours after the label; a few
//!   takedowns are later restored (`restore_rate`), and half of court-order breaches get a
//!   `legal` removal or withholding hours after the label. A cascade stops when its post goes
//!   down, and the platform does not take down what its author already deleted.
//! - **Labels.** A share of posts (`label_rate`, higher for replies and offenders) get a
//!   category label; `communications_offence` is by far the most common category, replies
//!   lean to `targeted_harassment` with the replied-to user as `target`. Sources differ in
//!   speed and confidence: `classifier-v3` (seconds to minutes, confidence 0.55 to 0.99),
//!   `trusted-flagger` (tens of minutes), `trust-and-safety-review` (hours, confidence 1) and
//!   `court-order-register` (hours). Some classifier labels are later retracted by the same
//!   source (`negate: true`, `negate_rate`) and some confirmed by a reviewer. Factor labels
//!   (`hate`, `significant_impact`, `encouragement`, `tolerable`, `remorse`) accompany them.
//! - **Reports and impressions.** Labelled posts are reported (`report_rate`), the first
//!   report often by the target (`by_target: true`); a few unlabelled posts are reported too.
//!   A share of public posts (`impressions_rate`) get cumulative `impressions` updates at 10
//!   minutes, 30 minutes, 1.5 hours and 4.5 hours.
//! - **Mobbing and repeated conduct.** Some primary actions start a mobbing episode: several
//!   senders (many of them offenders) reply to one recent post within a day, mostly labelled,
//!   the first sometimes labelled `encouragement`. Others start a campaign: one offender
//!   sends three to eight posts at one target, hours apart, three in four of them labelled.
//! - **Delivery.** Real streams are not in order. Most events are emitted at their event
//!   time, but `reorder_rate` of them are held back by up to `reorder_window_secs` (default
//!   60 s, well inside modsignal's default lateness bound of 300 s), so for any two events the
//!   later-emitted one is never more than the window older. Half of the posts whose deletion
//!   or first reshare comes within the window are held back past it, so deletes arrive before
//!   the post they delete (as on Twitter) and reshares before their original.
//!   `duplicate_rate` of events are emitted twice (at-least-once delivery), and
//!   `event_id_rate` of events carry an `event_id` (a UUID; a duplicate carries its original's).
//! - **Ids.** Users are `did:plc:` DIDs and messages AT URIs
//!   (`at://did:plc:…/app.bsky.feed.post/<tid>`, `…/app.bsky.feed.repost/<tid>`), whose record
//!   keys are TIDs minted from the event time. They are unique and built from integers on
//!   demand, so the simulator stores no strings.
//!
//! # Memory and speed
//!
//! Memory is bounded whatever the run length: the population is fixed, recent posts (targets
//! for mobbing) live in a ring of 4,096, every delay is capped (a week at most, three days for
//! cascades), one queue entry stands for a whole cascade, and the queue is capped at
//! `max_pending` entries (a consequence that would exceed it is dropped and counted in
//! [`Simulator::dropped`]). Each pending consequence costs about 100 bytes (a 32-byte task,
//! wheel slack, and a 48-byte cascade slot for the larger cascades). At the default rate a
//! run holds about 1.7 million after 10 million events (about 150 MB resident) and levels off
//! near 3.5 million after a day of event time, under the default cap of 4 million.
//!
//! The queue is a timing wheel of one-second buckets in front of a small heap (see
//! `queue.rs`), because a binary heap of millions of entries was the bottleneck. Generation
//! does a handful of small string allocations per event (the ids it carries) and no
//! formatting: about 1.2 to 1.6 million events a second on one core in release builds,
//! measured with `cargo run --release -p modsignal-sim --example throughput`.

mod abuse;
mod cascade;
mod config;
mod dist;
mod ids;
mod moderation;
mod population;
mod queue;
mod viral;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use std::iter::FusedIterator;

use modsignal_core::Ts;
use modsignal_core::event::{AccountStatus, Audience, Event, EventKind, LabelCode, RemovedBy, Scope};
use rand::{RngExt, SeedableRng};
use rand_distr::{Exp1, StandardNormal};

pub use config::{ConfigError, DEFAULT_START_MS, SimConfig};
use dist::{DAY, Delay, HOUR, MINUTE};
use population::Population;
use queue::{Queue, Timed};
pub use viral::{ViralConfig, viral};

/// The generator. Xoshiro256++ rather than `StdRng`: it is several times faster, and it is a
/// fixed, documented algorithm, whereas `StdRng` may change between `rand` versions, which
/// would change the stream for the same seed.
pub(crate) type Rng = rand::rngs::Xoshiro256PlusPlus;

// Delays. Each is log-normal (median, sigma of the log, cap), chosen from what platforms and
// studies report; the comment on each says what it stands for.

/// Reshares, replies and quotes of a post: half within 20 minutes, three quarters within the
/// hour, a few after a day (as measured on Twitter). Capped at three days, when cascades have
/// died out.
const ENGAGE: Delay = Delay::new(20.0 * MINUTE, 1.6, 3.0 * DAY);
/// A quarter of author deletions are immediate second thoughts or typo fixes.
const FAST_DELETE: Delay = Delay::new(20.0, 1.0, 10.0 * MINUTE);
/// The rest come minutes to days later (after a backlash, or a clean-up).
const AUTHOR_DELETE: Delay = Delay::new(45.0 * MINUTE, 1.8, 7.0 * DAY);
/// Undoing a reshare.
const UNRESHARE: Delay = Delay::new(2.0 * HOUR, 1.5, 7.0 * DAY);
/// An automated classifier scores a message within seconds, sometimes minutes under load.
const CLASSIFIER: Delay = Delay::new(12.0, 1.2, HOUR);
/// Trusted flaggers (NGOs, hotlines) report within tens of minutes.
const TRUSTED_FLAGGER: Delay = Delay::new(25.0 * MINUTE, 1.0, DAY);
/// Human review takes hours.
const REVIEW: Delay = Delay::new(2.5 * HOUR, 0.8, 3.0 * DAY);
/// Court-order registers are matched against content within hours to a day.
const COURT_REGISTER: Delay = Delay::new(8.0 * HOUR, 1.0, 7.0 * DAY);
/// A classifier retracting a label (re-scoring after an appeal or a model update).
const RETRACT: Delay = Delay::new(45.0 * MINUTE, 1.0, 2.0 * DAY);
/// Platform action after a label: minutes to hours.
const PLATFORM_ACTION: Delay = Delay::new(18.0 * MINUTE, 1.3, 2.0 * DAY);
/// Takedowns of unlabelled posts (spam, impersonation) come later than label-driven ones.
const SPAM_ACTION: Delay = Delay::new(30.0 * MINUTE, 1.5, 2.0 * DAY);
/// A restore follows an appeal: hours to days.
const RESTORE: Delay = Delay::new(6.0 * HOUR, 1.0, 7.0 * DAY);
/// Legal removals follow a court order or a regulator's notice: hours to days.
const LEGAL: Delay = Delay::new(6.0 * HOUR, 1.0, 7.0 * DAY);
/// Users report what they see within minutes.
const REPORT: Delay = Delay::new(8.0 * MINUTE, 1.5, DAY);
/// Members of a mob pile on within the day.
const MOB: Delay = Delay::new(40.0 * MINUTE, 1.1, 23.0 * HOUR);
/// A harassment campaign's posts are hours apart.
const CAMPAIGN: Delay = Delay::new(75.0 * MINUTE, 1.0, DAY);

/// Sentinel for "no user".
const NO_USER: u32 = u32::MAX;
/// Recent public posts remembered as targets for mobbing and campaigns.
const WINDOW: usize = 4096;
/// Deactivated or suspended users remembered for reactivation.
const DORMANT: usize = 1024;
/// The largest cascade drawn; larger ones are as rare as they are unhelpful in a test stream.
const CASCADE_CAP: f64 = 200_000.0;
/// The spread of post virality: a log-normal with mean one, so that one post in fifty draws
/// about ten times its author's usual engagement.
const VIRALITY_SIGMA: f64 = 1.2;
/// Share of posts whose first consequence lands within the reorder window that are held back
/// past it, so the consequence arrives first.
const HOLDBACK_SHARE: f64 = 0.5;
/// The follow-up share of the stream is measured over about this many events; the rate of
/// primary actions is steered by it.
const SHARE_HORIZON: f64 = 16_384.0;
/// Primary actions never drop below this share of the target rate, so the stream cannot stall.
const MIN_PRIMARY_SHARE: f64 = 0.1;
/// Multiplier of the label probability for persistent offenders.
const ABUSIVE_LABEL_FACTOR: f64 = 10.0;
/// Impressions updates at 10 minutes times powers of three, at most this many.
const IMPRESSION_STEPS: u8 = 4;

/// A message as the simulator keeps it: the author, its TID, and whether it is a reshare
/// (in the TID's top bit, which a real TID never sets). The AT URI is rebuilt from these when
/// an event names it. Twelve bytes with 4-byte alignment, so that a queued task fits in 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Msg {
    author: u32,
    tid: [u32; 2],
}

const RESHARE_BIT: u64 = 1 << 63;

impl Msg {
    fn new(author: u32, tid: u64, reshare: bool) -> Msg {
        let t = tid | if reshare { RESHARE_BIT } else { 0 };
        Msg {
            author,
            tid: [(t >> 32) as u32, t as u32],
        }
    }
    fn raw(self) -> u64 {
        (u64::from(self.tid[0]) << 32) | u64::from(self.tid[1])
    }
    fn tid(self) -> u64 {
        self.raw() & !RESHARE_BIT
    }
    fn is_reshare(self) -> bool {
        self.raw() & RESHARE_BIT != 0
    }
}

/// Who asserts a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Classifier,
    TrustedFlagger,
    Reviewer,
    CourtRegister,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Classifier => "classifier-v3",
            Source::TrustedFlagger => "trusted-flagger",
            Source::Reviewer => "trust-and-safety-review",
            Source::CourtRegister => "court-order-register",
        }
    }
    fn delay(self) -> Delay {
        match self {
            Source::Classifier => CLASSIFIER,
            Source::TrustedFlagger => TRUSTED_FLAGGER,
            Source::Reviewer => REVIEW,
            Source::CourtRegister => COURT_REGISTER,
        }
    }
}

/// Why a post was written; it sets how likely and what kind of label it gets, and whom it
/// targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Original,
    Reply,
    Quote,
    Mob { ringleader: bool },
    Campaign,
}

/// What arrives in a cascade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arrival {
    Reshare,
    Reply,
    Quote,
}

/// A scheduled consequence. Small and `Copy`, because millions may be queued.
#[derive(Clone, Copy, Debug)]
enum Job {
    /// The next arrival of the cascade in slot `.0`.
    Engage(u32),
    /// The only arrival of a cascade of one, the commonest size, which needs no slot.
    Single(Msg, Arrival),
    Delete(Msg, RemovedBy),
    Restrict(Msg, RemovedBy, Scope),
    Restore(Msg, RemovedBy),
    Label {
        msg: Msg,
        code: LabelCode,
        source: Source,
        milli: u16,
        target: u32,
        negate: bool,
    },
    Report {
        msg: Msg,
        reporter: u32,
        by_target: bool,
    },
    Impressions {
        msg: Msg,
        scale: u32,
        step: u8,
        steps: u8,
    },
    MobReply {
        victim: Msg,
        sender: u32,
    },
    Campaign {
        victim: Msg,
        sender: u32,
        remaining: u8,
    },
}

#[derive(Clone, Copy, Debug)]
struct Task {
    at: i64,
    job: Job,
}

// The queue is a max-heap; tasks compare by reversed time so the earliest comes out first.
// Ties compare equal: `BinaryHeap` is deterministic for a given sequence of operations, so
// the stream stays reproducible without a tie-breaker.
impl PartialEq for Task {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at
    }
}
impl Eq for Task {}
impl PartialOrd for Task {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Task {
    fn cmp(&self, o: &Self) -> Ordering {
        o.at.cmp(&self.at)
    }
}
impl Timed for Task {
    fn at(&self) -> i64 {
        self.at
    }
}

/// An event held back for late delivery, released once generation passes `key`.
struct Held {
    key: i64,
    ev: Event<'static>,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> Ordering {
        o.key.cmp(&self.key)
    }
}

/// The state of one post's cascade: what remains to arrive and the last order statistic.
/// Packed into 48 bytes (the post's time is in its TID, the removal time is an offset),
/// because a busy stream keeps over a million cascades alive.
#[derive(Clone, Copy, Debug)]
struct Cascade {
    post: Msg,
    /// Milliseconds from the post to its removal (`u32::MAX`: never); nothing arrives after.
    kill_after: u32,
    /// The uniform of the last arrival; arrivals are the sorted uniforms mapped through the
    /// delay's quantile function.
    u: f64,
    reshares: u32,
    replies: u16,
    quotes: u16,
    /// The latest reshare and its depth (0: none yet), the parent of deeper reshares.
    last: Msg,
    last_depth: u16,
}

impl Cascade {
    fn left(&self) -> u32 {
        self.reshares + u32::from(self.replies) + u32::from(self.quotes)
    }
}

/// One generated event and how long to hold it back (0: deliver at its time unless the
/// random reordering picks it).
struct Out {
    kind: EventKind<'static>,
    hold_ms: i64,
}

impl Out {
    fn now(kind: EventKind<'static>) -> Out {
        Out { kind, hold_ms: 0 }
    }
}

/// The stream. See the crate documentation for what it contains.
pub struct Simulator {
    cfg: SimConfig,
    rng: Rng,
    pop: Population,
    salt: u64,
    queue: Queue<Task>,
    cascades: Vec<Cascade>,
    free_cascades: Vec<u32>,
    held: BinaryHeap<Held>,
    window: Vec<Msg>,
    window_next: usize,
    dormant: Vec<u32>,
    dormant_next: usize,
    emitted: u64,
    /// Event time of the next primary action, kept fractional so that rounding to the
    /// millisecond does not bias the rate.
    next_primary: f64,
    /// Moving share of follow-ups among generated events.
    followup_share: f64,
    msg_seq: u64,
    event_seq: u64,
    window_ms: i64,
    dropped: u64,
}

impl Simulator {
    /// Builds the population and the initial state.
    ///
    /// # Panics
    /// On a configuration that [`SimConfig::validate`] rejects.
    pub fn new(cfg: SimConfig) -> Self {
        if let Err(e) = cfg.validate() {
            panic!("{e}");
        }
        let mut rng = Rng::seed_from_u64(cfg.seed);
        let salt = ids::mix64(cfg.seed ^ 0x5eed_0f0d_5167_a15e);
        let pop = Population::new(&cfg, salt, &mut rng);
        Simulator {
            next_primary: cfg.start_ms as f64,
            queue: Queue::new(cfg.start_ms),
            window_ms: cfg.reorder_window_secs as i64 * 1000,
            cfg,
            rng,
            pop,
            salt,
            cascades: Vec::new(),
            free_cascades: Vec::new(),
            held: BinaryHeap::new(),
            window: Vec::with_capacity(WINDOW),
            window_next: 0,
            dormant: Vec::new(),
            dormant_next: 0,
            emitted: 0,
            followup_share: 0.0,
            msg_seq: 0,
            event_seq: 0,
            dropped: 0,
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Scheduled future events currently kept (the memory the run holds beyond its fixed
    /// population).
    pub fn pending(&self) -> usize {
        self.queue.len() + self.held.len()
    }

    /// Consequences dropped because the queue was at `max_pending`.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    // Random draws.

    fn unit(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }

    fn delay(&mut self, d: Delay) -> i64 {
        let z: f64 = self.rng.sample(StandardNormal);
        d.millis(z)
    }

    /// Rounds a non-negative mean to an integer count with the same mean.
    fn count(&mut self, mean: f64) -> u32 {
        (mean.min(CASCADE_CAP) + self.unit()) as u32
    }

    // Ids.

    fn new_msg(&mut self, author: u32, reshare: bool, at: i64) -> Msg {
        let tid = ids::tid(self.salt, author, at, self.msg_seq);
        self.msg_seq += 1;
        Msg::new(author, tid, reshare)
    }

    fn uri(&self, m: Msg) -> Cow<'static, str> {
        Cow::Owned(ids::record_uri(self.salt, m.author, m.is_reshare(), m.tid()))
    }

    fn did(&self, u: u32) -> Cow<'static, str> {
        Cow::Owned(self.pop.did(u))
    }

    // Scheduling.

    /// Queues a consequence; returns false (and drops it) when the queue is full.
    fn schedule(&mut self, at: i64, job: Job) -> bool {
        if self.queue.len() >= self.cfg.max_pending || self.queue.push(Task { at, job }).is_err() {
            self.dropped += 1;
            return false;
        }
        true
    }

    /// The next event to emit: a held event that has come due, or a newly generated one
    /// unless that is held back (then `None`, and the caller asks again).
    fn step(&mut self) -> Option<Event<'static>> {
        let primary_at = self.next_primary as i64;
        let due = self.queue.next_due(primary_at);
        let from_queue = due.is_some();
        let at = due.unwrap_or(primary_at);
        // Every event generated from now on has a time of at least `at`, so a held event due
        // by then can no longer be overtaken by an earlier one: release it first.
        if self.held.peek().is_some_and(|h| h.key <= at) {
            return self.held.pop().map(|h| h.ev);
        }
        let out = if from_queue {
            let task = self.queue.pop().expect("found due");
            self.run(task)
        } else {
            self.primary(at)
        };
        let x = if from_queue { 1.0 } else { 0.0 };
        self.followup_share += (x - self.followup_share) / SHARE_HORIZON;
        self.deliver(at, out)
    }

    /// Wraps a generated event and decides its delivery: an id, a duplicate, a delay. Returns
    /// the event if it goes out now.
    fn deliver(&mut self, at: i64, out: Out) -> Option<Event<'static>> {
        let event_id = self
            .chance(self.cfg.event_id_rate)
            .then(|| Cow::Owned(ids::event_uuid(self.salt, self.event_seq)));
        self.event_seq += 1;
        let ev = Event {
            at: Ts(at),
            event_id,
            kind: out.kind,
        };
        let w = self.window_ms as f64;
        if self.chance(self.cfg.duplicate_rate) {
            // A redelivery comes somewhat later, within the window.
            let u = self.unit();
            self.held.push(Held {
                key: at + (w * u * u) as i64,
                ev: ev.clone(),
            });
        }
        let hold = if out.hold_ms > 0 {
            out.hold_ms
        } else if self.chance(self.cfg.reorder_rate) {
            // Cubed, so most late events are a little late and few are late by the whole
            // window, as with a lagging partition or a retry.
            let u = self.unit();
            ((w * u * u * u) as i64).max(1)
        } else {
            0
        };
        if hold == 0 {
            return Some(ev);
        }
        self.held.push(Held {
            key: at + hold.min(self.window_ms),
            ev,
        });
        None
    }

    // Primary actions.

    fn primary(&mut self, at: i64) -> Out {
        // The next primary action: a Poisson process whose rate is the target rate less what
        // follow-ups currently contribute.
        let share = (1.0 - self.followup_share).max(MIN_PRIMARY_SHARE);
        let gap: f64 = self.rng.sample(Exp1);
        self.next_primary += gap * 1000.0 / (self.cfg.events_per_sec * share);
        let r = self.unit();
        let c = &self.cfg;
        if r < c.account_rate {
            return self.account_event();
        }
        if r < c.account_rate + c.mob_rate {
            if let Some(out) = self.start_mob(at) {
                return out;
            }
        } else if r < c.account_rate + c.mob_rate + c.campaign_rate
            && let Some(out) = self.start_campaign(at)
        {
            return out;
        }
        self.original_post(at)
    }

    fn original_post(&mut self, at: i64) -> Out {
        let author = self.pop.pick(&mut self.rng);
        let r = self.unit();
        // Most posts are public; Mastodon-style followers-only and direct posts and group
        // posts make the limited-audience factor observable.
        let audience = if r < 0.85 {
            Audience::Public
        } else if r < 0.92 {
            Audience::Followers
        } else if r < 0.97 {
            Audience::Direct
        } else {
            Audience::Group
        };
        let n_mentions = match audience {
            // A direct message names its recipient.
            Audience::Direct => 1,
            _ if self.chance(0.12) => 1 + usize::from(self.chance(0.3)) + usize::from(self.chance(0.2)),
            _ => 0,
        };
        let mut named = [NO_USER; 3];
        let mut mentions = Vec::new();
        for i in 0..n_mentions {
            // Half the mentions are of people in the conversation of the moment.
            let mut u = match self.window.len() {
                n if n > 0 && self.chance(0.5) => self.window[self.rng.random_range(0..n)].author,
                _ => self.pop.pick(&mut self.rng),
            };
            if u == author {
                u = self.pop.pick_other(&mut self.rng, author);
            }
            if !named.contains(&u) {
                named[i] = u;
                mentions.push(self.did(u));
            }
        }
        let first = named[0];
        let msg = self.new_msg(author, false, at);
        let hold_ms = self.plan_post(at, msg, audience, Origin::Original, first);
        if audience == Audience::Public {
            self.remember(msg);
        }
        let kind = EventKind::Post {
            id: self.uri(msg),
            author: self.pop.author(author),
            audience,
            reply_to: None,
            reply_to_author: None,
            quote_of: None,
            quote_of_author: None,
            mentions,
            recipients: Vec::new(),
        };
        Out { kind, hold_ms }
    }

    fn remember(&mut self, m: Msg) {
        if self.window.len() < WINDOW {
            self.window.push(m);
        } else {
            self.window[self.window_next] = m;
            self.window_next = (self.window_next + 1) % WINDOW;
        }
    }

    /// A recent public post to pile onto: the best-followed of three, because mobs and
    /// campaigns pick visible targets.
    fn pick_victim(&mut self) -> Option<Msg> {
        let n = self.window.len();
        if n == 0 {
            return None;
        }
        let mut best = self.window[self.rng.random_range(0..n)];
        for _ in 0..2 {
            let m = self.window[self.rng.random_range(0..n)];
            if self.pop.followers(m.author) > self.pop.followers(best.author) {
                best = m;
            }
        }
        Some(best)
    }

    fn account_event(&mut self) -> Out {
        let r = self.unit();
        let mut user = self.pop.pick(&mut self.rng);
        let (mut status, mut minor, mut followers) = (None, None, None);
        if r < 0.35 {
            // The follower-count side input, mostly for accounts whose stream lacks counts.
            for _ in 0..8 {
                if !self.pop.has_counts(user) {
                    break;
                }
                user = self.pop.pick(&mut self.rng);
            }
            let f = self.pop.followers(user);
            let grown = f.saturating_add((f64::from(f) * 0.02 * self.unit()) as u32 + self.rng.random_range(0..3));
            self.pop.set_followers(user, grown);
            followers = Some(grown);
        } else if r < 0.55 {
            status = Some(AccountStatus::Deactivated);
        } else if r < 0.65 {
            // Reactivation of an account that was deactivated or suspended earlier.
            if !self.dormant.is_empty() {
                user = self.dormant[self.rng.random_range(0..self.dormant.len())];
            }
            status = Some(AccountStatus::Active);
        } else if r < 0.95 {
            // Platform sanctions fall mostly on persistent offenders.
            let s = if r < 0.77 {
                AccountStatus::Suspended
            } else if r < 0.87 {
                AccountStatus::Takendown
            } else {
                AccountStatus::Deleted
            };
            if s != AccountStatus::Deleted && self.chance(0.7) {
                user = self.pop.pick_abusive(&mut self.rng);
            }
            status = Some(s);
        } else {
            // Age assurance reveals a minor.
            self.pop.set_minor(user);
            minor = Some(true);
        }
        match status {
            Some(AccountStatus::Active) => self.pop.set_active(user, true),
            Some(s) => {
                self.pop.set_active(user, false);
                if matches!(s, AccountStatus::Deactivated | AccountStatus::Suspended) {
                    if self.dormant.len() < DORMANT {
                        self.dormant.push(user);
                    } else {
                        self.dormant[self.dormant_next] = user;
                        self.dormant_next = (self.dormant_next + 1) % DORMANT;
                    }
                }
            }
            None => {}
        }
        Out::now(EventKind::Account {
            user: self.did(user),
            status,
            minor,
            followers,
        })
    }
}

impl Iterator for Simulator {
    type Item = Event<'static>;

    fn next(&mut self) -> Option<Event<'static>> {
        if self.emitted >= self.cfg.events {
            return None;
        }
        loop {
            if let Some(ev) = self.step() {
                self.emitted += 1;
                return Some(ev);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.cfg.events - self.emitted).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Simulator {}
impl FusedIterator for Simulator {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_start_is_the_documented_instant() {
        assert_eq!(Ts(DEFAULT_START_MS).to_string(), "2026-01-05T00:00:00.000Z");
    }

    #[test]
    fn bad_configurations_are_rejected_with_a_reason() {
        assert!(SimConfig::default().validate().is_ok());
        let bad = SimConfig {
            label_rate: 1.5,
            ..SimConfig::default()
        };
        assert!(bad.validate().unwrap_err().0.contains("label_rate"));
        let bad = SimConfig {
            events_per_sec: 0.0,
            ..SimConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = SimConfig {
            users: 1,
            ..SimConfig::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn queue_entries_stay_small() {
        // Millions may be queued in a long run.
        assert_eq!(std::mem::size_of::<Task>(), 32);
        assert_eq!(std::mem::size_of::<Cascade>(), 48);
    }
}
