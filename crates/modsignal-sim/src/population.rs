//! The simulated users: follower counts, a few flags, and how often each one acts.

use std::borrow::Cow;

use modsignal_core::event::Author;
use rand::RngExt;
use rand_distr::{Distribution, LogNormal, Pareto};

use crate::ids;
use crate::{Rng, SimConfig};

const MINOR: u8 = 1;
const ABUSIVE: u8 = 2;
/// The account's platform does not put follower counts in its stream (Bluesky), so the count
/// only ever arrives in `account` events.
const NO_COUNTS: u8 = 4;
/// Deactivated, suspended, taken down or deleted: the account does not post.
const INACTIVE: u8 = 8;

/// The share of users who come from a platform without follower counts in the stream.
const NO_COUNTS_SHARE: f64 = 0.15;
/// The share of accounts whose follower count comes from the Pareto tail rather than the
/// log-normal body: about one in 250 accounts is "notable" (thousands and up).
const TAIL_SHARE: f64 = 0.004;
/// The largest follower count drawn, about that of the largest real accounts.
const MAX_FOLLOWERS: f64 = 150_000_000.0;
/// The exponent of follower counts in a user's reshare pull: sub-linear, because a bigger
/// audience reshares a smaller fraction of what it sees.
const REACH_EXPONENT: f64 = 0.75;
/// Replies grow more slowly with audience than reshares do: people reply to those they know.
const CHATTER_EXPONENT: f64 = 0.4;

pub(crate) struct Population {
    followers: Vec<u32>,
    flags: Vec<u8>,
    /// Each user's reach and chatter weights, kept rather than recomputed because `powf` on
    /// every post was a measurable share of generation time.
    weights: Vec<[f32; 2]>,
    abusive: Vec<u32>,
    salt: u64,
    reach_norm: f64,
    chatter_norm: f64,
}

impl Population {
    pub fn new(cfg: &SimConfig, salt: u64, rng: &mut Rng) -> Population {
        let n = cfg.users as usize;
        // The body: a log-normal around 140 followers, so most accounts have tens to hundreds.
        let body = LogNormal::new(140f64.ln(), 1.4).expect("valid log-normal");
        // The tail: a Pareto with shape below one from 10,000 up, so a few accounts out of
        // every hundred thousand have millions of followers, as on real networks.
        let tail = Pareto::new(10_000.0, 0.85).expect("valid Pareto");
        let mut followers = Vec::with_capacity(n);
        let mut flags = Vec::with_capacity(n);
        let mut abusive = Vec::new();
        for u in 0..n {
            let f: f64 = if rng.random::<f64>() < TAIL_SHARE {
                tail.sample(rng)
            } else {
                body.sample(rng)
            };
            followers.push(f.min(MAX_FOLLOWERS) as u32);
            let mut fl = 0;
            if rng.random::<f64>() < cfg.minor_share {
                fl |= MINOR;
            }
            if rng.random::<f64>() < cfg.abusive_share {
                fl |= ABUSIVE;
                abusive.push(u as u32);
            }
            if rng.random::<f64>() < NO_COUNTS_SHARE {
                fl |= NO_COUNTS;
            }
            flags.push(fl);
        }
        if abusive.is_empty() {
            // Repeated conduct and mobbing need at least one persistent offender.
            abusive.push((n / 2) as u32);
            flags[n / 2] |= ABUSIVE;
        }
        // Normalise the reach weights over who actually posts (the activity distribution of
        // `pick`), so that the configured mean reshares per post is the mean that comes out.
        let (mut reach, mut chatter) = (0.0, 0.0);
        for (i, f) in followers.iter().enumerate() {
            let p = ((i + 1) as f64 / n as f64).sqrt() - (i as f64 / n as f64).sqrt();
            reach += p * (f64::from(*f) + 10.0).powf(REACH_EXPONENT);
            chatter += p * (f64::from(*f) + 10.0).powf(CHATTER_EXPONENT);
        }
        let mut pop = Population {
            followers,
            flags,
            weights: vec![[0.0; 2]; n],
            abusive,
            salt,
            reach_norm: reach,
            chatter_norm: chatter,
        };
        for u in 0..n as u32 {
            pop.weigh(u);
        }
        pop
    }

    fn weigh(&mut self, u: u32) {
        let f = f64::from(self.followers(u)) + 10.0;
        self.weights[u as usize] = [
            (f.powf(REACH_EXPONENT) / self.reach_norm) as f32,
            (f.powf(CHATTER_EXPONENT) / self.chatter_norm) as f32,
        ];
    }

    pub fn len(&self) -> u32 {
        self.followers.len() as u32
    }

    /// A user drawn by activity. Index `i` is drawn with density proportional to 1/sqrt(i):
    /// a few accounts (bots, news feeds, the very online) post hundreds of times more than the
    /// median account, as on every real network. Inactive accounts are skipped, with a bounded
    /// number of retries so the cost stays constant.
    pub fn pick(&self, rng: &mut Rng) -> u32 {
        let n = self.len();
        let mut u = 0;
        for _ in 0..4 {
            let x: f64 = rng.random();
            u = ((x * x * f64::from(n)) as u32).min(n - 1);
            if self.flags[u as usize] & INACTIVE == 0 {
                break;
            }
        }
        u
    }

    /// A user other than `not`.
    pub fn pick_other(&self, rng: &mut Rng, not: u32) -> u32 {
        let u = self.pick(rng);
        if u == not { (u + 1) % self.len() } else { u }
    }

    /// One of the persistent offenders.
    pub fn pick_abusive(&self, rng: &mut Rng) -> u32 {
        self.abusive[rng.random_range(0..self.abusive.len())]
    }

    pub fn followers(&self, u: u32) -> u32 {
        self.followers[u as usize]
    }

    pub fn set_followers(&mut self, u: u32, f: u32) {
        self.followers[u as usize] = f;
        self.weigh(u);
    }

    pub fn is_abusive(&self, u: u32) -> bool {
        self.flags[u as usize] & ABUSIVE != 0
    }

    pub fn has_counts(&self, u: u32) -> bool {
        self.flags[u as usize] & NO_COUNTS == 0
    }

    pub fn set_minor(&mut self, u: u32) {
        self.flags[u as usize] |= MINOR;
    }

    pub fn set_active(&mut self, u: u32, active: bool) {
        if active {
            self.flags[u as usize] &= !INACTIVE;
        } else {
            self.flags[u as usize] |= INACTIVE;
        }
    }

    /// How strongly this user's posts pull reshares and quotes, with mean one over posts.
    pub fn reach_weight(&self, u: u32) -> f64 {
        f64::from(self.weights[u as usize][0])
    }

    /// How strongly this user's posts pull replies, with mean one over posts.
    pub fn chatter_weight(&self, u: u32) -> f64 {
        f64::from(self.weights[u as usize][1])
    }

    pub fn did(&self, u: u32) -> String {
        ids::did(self.salt, u)
    }

    /// The author block: followers where the platform gives them, and `minor: true` only for
    /// accounts the platform knows to be under 18 (platforms rarely assert adulthood).
    pub fn author(&self, u: u32) -> Author<'static> {
        let fl = self.flags[u as usize];
        Author {
            id: Cow::Owned(self.did(u)),
            followers: (fl & NO_COUNTS == 0).then(|| self.followers(u)),
            minor: (fl & MINOR != 0).then_some(true),
        }
    }
}
