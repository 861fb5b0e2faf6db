//! Viral cascades: the traffic shape on which modsignal writes the most flag revisions per event
//! (issue 15), modelled on real retweet cascades of labelled posts.
//!
//! Every cascade is one public post that a classifier labels `communications_offence` minutes
//! after it is posted, then reshared by other accounts. Cascade sizes are heavy-tailed (a Pareto
//! law of shape 1.3, so most cascades have tens of reshares and the largest thousands, up to 5,000), reshare
//! delays are log-normal with a median of 20 minutes, and a share of reshares reshare an earlier
//! reshare rather than the post (half written `of` that reshare, half `of` the post `via` it), so
//! chains reach five deep. Half of the posts are taken down by the platform midway through their
//! cascade (at the median reshare time), and the cascade stops there, as it does on a network
//! whose takedown removes the reshares' source. Follower counts are log-normal (median about
//! 150, a long tail to hundreds of thousands). Cascades start two minutes apart.
//!
//! [`viral`] returns the events in event-time order, deterministic for a seed. Its ids are
//! Bluesky's shapes, as the main simulator's are.

use std::borrow::Cow;

use modsignal_core::Ts;
use modsignal_core::event::{Author, Category, Event, EventKind, LabelCode, RemovedBy};
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use crate::{DEFAULT_START_MS, Rng, ids};

/// The shape of a viral stream.
#[derive(Clone, Debug)]
pub struct ViralConfig {
    /// Events to generate (the last cascade is cut to fit).
    pub events: u64,
    pub seed: u64,
    pub start_ms: i64,
    /// Accounts that post and reshare.
    pub users: u32,
    /// The mean reshares per cascade (before takedowns cut some short).
    pub mean_reshares: f64,
    /// The largest cascade, in reshares.
    pub max_reshares: u32,
    /// The share of reshares that reshare an earlier reshare of the same post.
    pub deep_share: f64,
    /// The deepest chain of reshares.
    pub max_depth: u32,
    /// The share of posts the platform takes down midway through their cascade.
    pub removed_share: f64,
    /// Event time between the starts of two cascades.
    pub cascade_gap_ms: i64,
}

impl Default for ViralConfig {
    fn default() -> Self {
        ViralConfig {
            events: 640_000,
            seed: 1,
            start_ms: DEFAULT_START_MS,
            users: 200_000,
            mean_reshares: 300.0,
            max_reshares: 5_000,
            deep_share: 0.2,
            max_depth: 5,
            removed_share: 0.5,
            cascade_gap_ms: 120_000,
        }
    }
}

/// Pareto shape of cascade sizes: a mean exists, the variance does not, as measured cascades.
const PARETO_SHAPE: f64 = 1.3;

/// The events of `cfg`'s viral stream, in event-time order (ties in the order generated).
pub fn viral(cfg: &ViralConfig) -> Vec<Event<'static>> {
    let mut rng = Rng::seed_from_u64(cfg.seed);
    let salt = ids::mix64(cfg.seed ^ 0x7669_7261_6c5f_7331);
    let users = cfg.users.max(2);
    let followers = |rng: &mut Rng| -> u32 {
        let z: f64 = rng.sample(StandardNormal);
        (5.0 + 1.6 * z).exp().min(5e6) as u32
    };
    // The scale that gives the mean asked for: a Pareto law's mean is shape * scale / (shape - 1).
    let scale = cfg.mean_reshares * (PARETO_SHAPE - 1.0) / PARETO_SHAPE;
    let mut events: Vec<Event<'static>> = Vec::with_capacity(cfg.events as usize);
    let mut seq = 0u64;
    let mut uri = |author: u32, reshare: bool, at: i64| {
        let tid = ids::tid(salt, author, at, seq);
        seq += 1;
        ids::record_uri(salt, author, reshare, tid)
    };
    let mut cascade = 0i64;
    while (events.len() as u64) < cfg.events {
        let t0 = cfg.start_ms + cascade * cfg.cascade_gap_ms;
        cascade += 1;
        let author = rng.random_range(0..users);
        let post = uri(author, false, t0);
        let mut cascade_events = vec![Event {
            at: Ts(t0),
            event_id: None,
            kind: EventKind::public_post(
                Cow::Owned(post.clone()),
                Author {
                    id: Cow::Owned(ids::did(salt, author)),
                    followers: Some(followers(&mut rng)),
                    minor: None,
                },
            ),
        }];
        let label_delay = lognormal_ms(&mut rng, 5.0 * 60_000.0, 1.0);
        cascade_events.push(Event {
            at: Ts(t0 + label_delay),
            event_id: None,
            kind: EventKind::Label {
                id: Cow::Owned(post.clone()),
                code: LabelCode::Category(Category::CommunicationsOffence),
                confidence: f64::from(rng.random_range(60..96_i32)) / 100.0,
                source: Cow::Borrowed("classifier-v3"),
                target: None,
                negate: false,
            },
        });
        let u: f64 = rng.random::<f64>().max(1e-12);
        let size = (scale / u.powf(1.0 / PARETO_SHAPE)).min(f64::from(cfg.max_reshares)) as usize;
        let mut delays: Vec<i64> = (0..size)
            .map(|_| lognormal_ms(&mut rng, 20.0 * 60_000.0, 1.5))
            .collect();
        delays.sort_unstable();
        // A takedown at the median reshare time ends the cascade there.
        let removed_at = (size > 0 && rng.random::<f64>() < cfg.removed_share).then(|| t0 + delays[size / 2]);
        // Each reshare's id and depth, for later reshares of it.
        let mut made: Vec<(String, u32)> = Vec::with_capacity(size);
        for d in delays {
            let at = t0 + d;
            if removed_at.is_some_and(|r| at >= r) {
                break;
            }
            let mut resharer = rng.random_range(0..users - 1);
            if resharer >= author {
                resharer += 1;
            }
            let id = uri(resharer, true, at);
            let deep = !made.is_empty() && rng.random::<f64>() < cfg.deep_share;
            let parent = deep
                .then(|| rng.random_range(0..made.len()))
                .filter(|&j| made[j].1 < cfg.max_depth);
            let (of, via, depth) = match parent {
                None => (post.clone(), None, 1),
                Some(j) if rng.random::<bool>() => (made[j].0.clone(), None, made[j].1 + 1),
                Some(j) => (post.clone(), Some(Cow::Owned(made[j].0.clone())), made[j].1 + 1),
            };
            cascade_events.push(Event {
                at: Ts(at),
                event_id: None,
                kind: EventKind::Reshare {
                    id: Cow::Owned(id.clone()),
                    of: Cow::Owned(of),
                    author: Author {
                        id: Cow::Owned(ids::did(salt, resharer)),
                        followers: Some(followers(&mut rng)),
                        minor: None,
                    },
                    via,
                },
            });
            made.push((id, depth));
        }
        if let Some(r) = removed_at {
            cascade_events.push(Event {
                at: Ts(r),
                event_id: None,
                kind: EventKind::Delete {
                    id: Cow::Owned(post),
                    by: RemovedBy::Platform,
                },
            });
        }
        let room = (cfg.events - events.len() as u64) as usize;
        cascade_events.truncate(room);
        events.extend(cascade_events);
    }
    // A stable sort keeps a cascade's post before its label and reshares at one time.
    events.sort_by_key(|e| e.at);
    events
}

/// A log-normal delay in milliseconds with this median and spread (sigma of its log).
fn lognormal_ms(rng: &mut Rng, median_ms: f64, sigma: f64) -> i64 {
    let z: f64 = rng.sample(StandardNormal);
    (median_ms * (sigma * z).exp()).min(30.0 * 86_400_000.0) as i64
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    #[test]
    fn the_shape_is_what_it_says() {
        let cfg = ViralConfig {
            events: 200_000,
            ..ViralConfig::default()
        };
        let events = viral(&cfg);
        assert_eq!(events.len(), 200_000);
        assert!(events.windows(2).all(|w| w[0].at <= w[1].at), "in event-time order");
        assert_eq!(events, viral(&cfg), "deterministic");
        let mut posts = 0;
        let mut labels = 0;
        let mut deletes = 0;
        let mut per_post: HashMap<&str, usize> = HashMap::new();
        let mut depth: HashMap<&str, u32> = HashMap::new();
        let mut ids = HashSet::new();
        for e in &events {
            match &e.kind {
                EventKind::Post { id, .. } => {
                    posts += 1;
                    assert!(ids.insert(id.as_ref()), "ids are unique");
                }
                EventKind::Label { .. } => labels += 1,
                EventKind::Delete { .. } => deletes += 1,
                EventKind::Reshare { id, of, via, .. } => {
                    assert!(ids.insert(id.as_ref()), "ids are unique");
                    let parent = via.as_deref().unwrap_or(of);
                    let d = depth.get(parent).copied().unwrap_or(0) + 1;
                    depth.insert(id, d);
                    let root = if depth.contains_key(of.as_ref()) {
                        None
                    } else {
                        Some(of.as_ref())
                    };
                    if let Some(root) = root {
                        *per_post.entry(root).or_default() += 1;
                    }
                }
                _ => unreachable!("only posts, labels, reshares and deletes"),
            }
        }
        // Every post labelled (the last cascade may be cut before its label), about half
        // taken down.
        assert!(labels >= posts - 1, "{labels} labels for {posts} posts");
        let share = f64::from(deletes) / f64::from(posts);
        assert!((0.35..0.65).contains(&share), "{deletes} takedowns of {posts} posts");
        let largest = per_post.values().max().copied().unwrap_or(0);
        assert!(largest >= 1_000, "the largest cascade has {largest} reshares");
        assert_eq!(
            depth.values().max().copied(),
            Some(cfg.max_depth),
            "chains reach the deepest allowed"
        );
    }
}
