//! The resharer cohort, version 1: every resharer of one labelled message, for one category,
//! with the numbers of each one's flag, in one record (split into pages when large).
//!
//! On a viral cascade most resharers' flags matter only as part of the crowd: not raised, not
//! near the threshold, a small audience of their own, nothing sent to their reshare. Writing a
//! full flag for each (about 2 KB with its factors, evidence and citations) was most of what
//! modsignal wrote (issue 15). A cohort lists them all instead, each with its flag's
//! `flag_id`, revision, score, whether it is raised, its reach and its exposure: the same
//! numbers its flag would carry, without the factors and their evidence.
//! A resharer whose flag matters on its own (`emission.resharer_audience`: raised, a large
//! audience of their own, labelled or reported on their reshare, a reshare after the removal) has a full
//! flag too, and is listed in the cohort like everyone else, so the cohort answers "every
//! resharer of this message and their exposure" on its own.
//!
//! A cohort is written when the input is quiet (the end of a file, a quiet Kafka partition, a
//! message about to be forgotten), and only when its revision moved. Its revision is the sum of
//! its members' flag revisions, so it only grows and the same state carries the same revision.
//! Members are listed in the order of their account ids and cut into pages of at most
//! [`PAGE_MEMBERS`] members and about [`PAGE_BYTES`] bytes, so that a page fits in one Kafka
//! record; every page of one revision carries that revision, and a cohort never has fewer pages
//! than it had before (a page left empty is still written), so a consumer keeping the highest
//! revision per (`cohort_id`, `page`) never holds a stale page.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::event::{Category, Track};
use crate::flag::{Exposure, Flag, Reach};
use crate::time::Ts;

pub const COHORT_SCHEMA: &str = "modsignal.cohort/1";

/// The most members on one page.
pub const PAGE_MEMBERS: usize = 1000;
/// About the most bytes of members on one page: well under Kafka's default record limit of
/// 1 MiB. A member longer than this on its own (an account id near the 1 MiB record limit) gets a
/// page to itself.
pub const PAGE_BYTES: usize = 512 * 1024;

/// One page of one message's resharer cohort for one category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cohort {
    pub schema: Cow<'static, str>,
    /// Stable for one message and category: 128 bits of hash in hex.
    pub cohort_id: String,
    /// The sum of the members' flag revisions (one more than it): it only grows, and every page
    /// of one state carries it.
    pub revision: u64,
    pub message_id: String,
    pub category: Category,
    pub track: Track,
    /// This page's number, from 0, and how many pages the cohort has.
    pub page: u32,
    pub pages: u32,
    /// The whole cohort, the same on every page.
    pub summary: Summary,
    pub members: Vec<Member>,
    /// The newest event time any member is measured to.
    pub at: Ts,
}

/// The whole cohort in a few numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Distinct resharers.
    pub resharers: u64,
    /// Members whose flag is raised (each also has a flag of its own).
    pub raised: u64,
    /// Members still up.
    pub still_up: u64,
    /// The resharers' own followers, summed: what they added to the author's reach.
    pub audience: u64,
    /// How long the members were up, in seconds.
    pub seconds_up: Spread,
}

/// The distribution of a number over the members: nearest-rank percentiles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spread {
    pub min: u64,
    pub median: u64,
    pub p90: u64,
    pub max: u64,
}

/// One resharer's flag, by its numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The `flag_id` of the resharer's flag for this message and category.
    pub flag_id: String,
    pub account: String,
    /// The revision the flag has in this state: equal to a written flag's revision exactly when
    /// the flag says what the member says.
    pub revision: u64,
    pub score: f64,
    pub raised: bool,
    pub reach: Reach,
    pub exposure: Exposure,
}

impl Member {
    /// Whether the member carries exactly the numbers of `flag`: the same flag, account,
    /// revision, score, raised, reach and exposure. A resharer's flag and its member say the
    /// same when this holds.
    pub fn says_what(&self, flag: &Flag) -> bool {
        (
            &self.flag_id,
            &self.account,
            self.revision,
            self.score,
            self.raised,
            &self.reach,
            &self.exposure,
        ) == (
            &flag.flag_id,
            &flag.account,
            flag.revision,
            flag.score,
            flag.raised,
            &flag.reach,
            &flag.exposure,
        )
    }
}

/// What a cohort is built from: its message and category, and every member with the event time
/// its flag is measured to.
#[derive(Debug)]
pub struct Roll<'a> {
    pub message_id: &'a str,
    pub category: Category,
    /// The resharers' own followers, summed.
    pub audience: u64,
    pub members: Vec<(Member, Ts)>,
    /// The pages last written, if any: a cohort never shrinks in pages.
    pub min_pages: u32,
}

impl Roll<'_> {
    /// The cohort's revision: one plus the sum of its members' revisions, saturating.
    pub fn revision(&self) -> u64 {
        self.members
            .iter()
            .map(|(m, _)| m.revision)
            .fold(1u64, u64::saturating_add)
    }

    /// The cohort's pages. Members are ordered by account id, so the pages do not depend on the
    /// order in which the resharers came.
    pub fn pages(mut self) -> Vec<Cohort> {
        let revision = self.revision();
        self.members.sort_by(|a, b| a.0.account.cmp(&b.0.account));
        let at = self.members.iter().map(|(_, t)| *t).max().unwrap_or(Ts(0));
        let summary = summary(self.audience, self.members.iter().map(|(m, _)| m));
        let mut pages: Vec<Vec<Member>> = vec![Vec::new()];
        let mut bytes = 0usize;
        for (m, _) in self.members {
            let size = member_bytes(&m);
            let last = pages.last_mut().expect("one page at least");
            if !last.is_empty() && (last.len() >= PAGE_MEMBERS || bytes + size > PAGE_BYTES) {
                pages.push(Vec::new());
                bytes = 0;
            }
            bytes += size;
            pages.last_mut().expect("one page at least").push(m);
        }
        while pages.len() < self.min_pages as usize {
            pages.push(Vec::new());
        }
        let count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
        let cohort_id = cohort_id(self.message_id, self.category);
        pages
            .into_iter()
            .enumerate()
            .map(|(i, members)| Cohort {
                schema: Cow::Borrowed(COHORT_SCHEMA),
                cohort_id: cohort_id.clone(),
                revision,
                message_id: self.message_id.to_owned(),
                category: self.category,
                track: self.category.track(),
                page: u32::try_from(i).unwrap_or(u32::MAX),
                pages: count,
                summary: summary.clone(),
                members,
                at,
            })
            .collect()
    }
}

/// About how many bytes a member takes in JSON: its strings, and at most about 360 bytes of
/// numbers, times, names and punctuation.
fn member_bytes(m: &Member) -> usize {
    360 + m.flag_id.len() + m.account.len()
}

fn summary<'a>(audience: u64, members: impl Iterator<Item = &'a Member>) -> Summary {
    let mut up: Vec<u64> = Vec::new();
    let (mut raised, mut still_up) = (0u64, 0u64);
    for m in members {
        raised += u64::from(m.raised);
        still_up += u64::from(m.exposure.still_up);
        up.push(m.exposure.seconds_up);
    }
    up.sort_unstable();
    // Nearest rank: the smallest value with at least p of the members at or below it.
    let rank = |p: usize| {
        up.get((up.len() * p).div_ceil(100).saturating_sub(1))
            .copied()
            .unwrap_or(0)
    };
    Summary {
        resharers: up.len() as u64,
        raised,
        still_up,
        audience,
        seconds_up: Spread {
            min: up.first().copied().unwrap_or(0),
            median: rank(50),
            p90: rank(90),
            max: up.last().copied().unwrap_or(0),
        },
    }
}

impl Cohort {
    /// The page as one line of JSON (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a cohort serializes")
    }

    /// Appends the page's JSON to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(out, self).expect("a cohort serializes");
    }

    /// The key a compacted topic keeps one page under: the cohort's id and the page's number.
    pub fn key(&self) -> String {
        format!("{}/{}", self.cohort_id, self.page)
    }
}

/// The id of a cohort: stable for one message and category, and never equal to a flag's (the
/// hash covers a subject name no flag has).
pub fn cohort_id(message_id: &str, category: Category) -> String {
    let mut buf = Vec::with_capacity(message_id.len() + 40);
    for part in [message_id, "cohort", category.as_str()] {
        buf.extend_from_slice(part.as_bytes());
        buf.push(0);
    }
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(account: &str, revision: u64, seconds_up: u64, raised: bool) -> (Member, Ts) {
        let m = Member {
            flag_id: crate::flag::flag_id(
                "m1",
                crate::flag::Subject::Resharer,
                account,
                Category::CommunicationsOffence,
            ),
            account: account.to_owned(),
            revision,
            score: 0.25,
            raised,
            reach: Reach {
                audience: 10,
                reshares: 0,
                quotes: 0,
                replies: 0,
                impressions: None,
                depth: 0,
            },
            exposure: Exposure {
                posted_at: Ts(1_000),
                removed_at: None,
                removed_by: None,
                removal: None,
                seconds_up,
                still_up: true,
                restricted: None,
            },
        };
        (m, Ts(1_000 + seconds_up as i64 * 1000))
    }

    fn roll(members: Vec<(Member, Ts)>, min_pages: u32) -> Roll<'static> {
        Roll {
            message_id: "m1",
            category: Category::CommunicationsOffence,
            audience: 123,
            members,
            min_pages,
        }
    }

    #[test]
    fn pages_follow_account_order_whatever_the_arrival_order() {
        let a: Vec<_> = (0..2500)
            .map(|i| member(&format!("u{i:05}"), i + 1, i, false))
            .collect();
        let mut b = a.clone();
        b.reverse();
        let (pa, pb) = (roll(a, 0).pages(), roll(b, 0).pages());
        assert_eq!(pa, pb);
        assert_eq!(pa.len(), 3);
        assert_eq!(
            pa.iter().map(|p| p.members.len()).collect::<Vec<_>>(),
            [1000, 1000, 500]
        );
        assert!(pa.iter().all(|p| p.pages == 3 && p.revision == pa[0].revision));
        assert_eq!(pa[1].members[0].account, "u01000");
        let s = &pa[0].summary;
        assert_eq!((s.resharers, s.raised, s.still_up, s.audience), (2500, 0, 2500, 123));
        assert_eq!(
            s.seconds_up,
            Spread {
                min: 0,
                median: 1249,
                p90: 2249,
                max: 2499
            }
        );
        assert_eq!(pa[0].at, Ts(1_000 + 2499 * 1000));
    }

    #[test]
    fn revision_sums_members_and_pages_never_shrink() {
        let r = roll(vec![member("a", 5, 1, true), member("b", 7, 2, false)], 4);
        assert_eq!(r.revision(), 13);
        let pages = r.pages();
        assert_eq!(pages.len(), 4);
        assert!(pages[1..].iter().all(|p| p.members.is_empty() && p.pages == 4));
        assert_eq!(pages[0].summary.raised, 1);
        let saturated = roll(vec![member("a", u64::MAX, 1, false), member("b", 2, 1, false)], 0);
        assert_eq!(saturated.revision(), u64::MAX);
    }

    #[test]
    fn long_ids_get_pages_of_their_own() {
        let long = "x".repeat(PAGE_BYTES);
        let pages = roll(
            vec![
                member(&long, 1, 1, false),
                member("a", 1, 1, false),
                member("y", 1, 1, false),
            ],
            0,
        )
        .pages();
        assert_eq!(pages.iter().map(|p| p.members.len()).collect::<Vec<_>>(), [1, 1, 1]);
        assert_eq!(pages[0].members[0].account, "a");
    }

    #[test]
    fn json_reads_back_and_ids_differ_from_flags() {
        let page = roll(vec![member("a", 5, 1, false)], 0).pages().remove(0);
        let json = page.to_json();
        assert!(
            json.starts_with(r#"{"schema":"modsignal.cohort/1","cohort_id":""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Cohort>(&json).unwrap(), page);
        assert_eq!(page.key(), format!("{}/0", page.cohort_id));
        let id = cohort_id("m1", Category::CommunicationsOffence);
        assert_eq!(id.len(), 32);
        for s in [crate::flag::Subject::Author, crate::flag::Subject::Resharer] {
            assert_ne!(
                id,
                crate::flag::flag_id("m1", s, "cohort", Category::CommunicationsOffence)
            );
        }
    }
}
