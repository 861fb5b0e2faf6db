//! The flag, version 1: what modsignal writes for each subject of a labelled message.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::event::{Category, RemovedBy, Scope, Track};
use crate::model::{Factor, RemovalKind};
use crate::time::Ts;

pub const FLAG_SCHEMA: &str = "modsignal.flag/1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Author,
    Resharer,
}

impl Subject {
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Author => "author",
            Subject::Resharer => "resharer",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reach {
    /// The subject's followers plus each distinct resharer's followers (for a resharer: those
    /// who reshared through them).
    pub audience: u64,
    pub reshares: u64,
    pub quotes: u64,
    pub replies: u64,
    pub impressions: Option<u64>,
    /// Longest reshare chain below the subject: a direct reshare is 1.
    pub depth: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    pub posted_at: Ts,
    /// The first time the subject came down, even if it was restored later.
    pub removed_at: Option<Ts>,
    pub removed_by: Option<RemovedBy>,
    pub removal: Option<RemovalKind>,
    /// Seconds up in all, up to `at` (or to the removal).
    pub seconds_up: u64,
    /// False once the subject is down for everyone; a partial restriction leaves it up.
    pub still_up: bool,
    /// A restriction in force that leaves the subject visible to some (followers only,
    /// age-gated, limited); written only when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted: Option<Restricted>,
}

/// A partial restriction of a subject that is still up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Restricted {
    pub at: Ts,
    pub by: RemovedBy,
    pub scope: Scope,
}

/// One revision of one flag. The core writes it; the API's store and the tests read it back
/// (strings the core owns are borrowed when written, owned when read).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub schema: Cow<'static, str>,
    pub flag_id: String,
    pub revision: u64,
    pub message_id: String,
    pub subject: Subject,
    pub account: String,
    pub category: Category,
    pub track: Track,
    pub score: f64,
    pub raised: bool,
    pub reach: Reach,
    pub exposure: Exposure,
    pub factors: Vec<Factor>,
    pub provision: Cow<'static, str>,
    /// Event time of the change this revision records.
    pub at: Ts,
}

impl Flag {
    /// The flag as one line of JSON (no newline): the bytes `serde_json` writes for it.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(2048);
        self.write_json(&mut out);
        String::from_utf8(out).expect("JSON written from strings is UTF-8")
    }

    /// Appends the flag's JSON to `out`: the same bytes as `serde_json::to_writer` with the
    /// derived `Serialize`, written without going through a serializer (see [`crate::json`]).
    /// The field order here is the struct's; the tests compare the two on every field.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use crate::json::{boolean, float, option, string, time, uint};
        out.extend_from_slice(b"{\"schema\":");
        string(out, &self.schema);
        out.extend_from_slice(b",\"flag_id\":");
        string(out, &self.flag_id);
        out.extend_from_slice(b",\"revision\":");
        uint(out, self.revision);
        out.extend_from_slice(b",\"message_id\":");
        string(out, &self.message_id);
        out.extend_from_slice(b",\"subject\":");
        string(out, self.subject.as_str());
        out.extend_from_slice(b",\"account\":");
        string(out, &self.account);
        out.extend_from_slice(b",\"category\":");
        string(out, self.category.as_str());
        out.extend_from_slice(b",\"track\":");
        string(out, self.track.as_str());
        out.extend_from_slice(b",\"score\":");
        float(out, self.score);
        out.extend_from_slice(b",\"raised\":");
        boolean(out, self.raised);

        let r = &self.reach;
        out.extend_from_slice(b",\"reach\":{\"audience\":");
        uint(out, r.audience);
        out.extend_from_slice(b",\"reshares\":");
        uint(out, r.reshares);
        out.extend_from_slice(b",\"quotes\":");
        uint(out, r.quotes);
        out.extend_from_slice(b",\"replies\":");
        uint(out, r.replies);
        out.extend_from_slice(b",\"impressions\":");
        option(out, r.impressions, uint);
        out.extend_from_slice(b",\"depth\":");
        uint(out, u64::from(r.depth));

        let e = &self.exposure;
        out.extend_from_slice(b"},\"exposure\":{\"posted_at\":");
        time(out, e.posted_at);
        out.extend_from_slice(b",\"removed_at\":");
        option(out, e.removed_at, time);
        out.extend_from_slice(b",\"removed_by\":");
        option(out, e.removed_by, |out, by| string(out, by.as_str()));
        out.extend_from_slice(b",\"removal\":");
        option(out, e.removal, |out, kind| string(out, kind.as_str()));
        out.extend_from_slice(b",\"seconds_up\":");
        uint(out, e.seconds_up);
        out.extend_from_slice(b",\"still_up\":");
        boolean(out, e.still_up);
        if let Some(rs) = &e.restricted {
            out.extend_from_slice(b",\"restricted\":{\"at\":");
            time(out, rs.at);
            out.extend_from_slice(b",\"by\":");
            string(out, rs.by.as_str());
            out.extend_from_slice(b",\"scope\":");
            string(out, rs.scope.as_str());
            out.push(b'}');
        }

        out.extend_from_slice(b"},\"factors\":[");
        for (i, f) in self.factors.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"code\":");
            string(out, &f.code);
            out.extend_from_slice(b",\"effect\":");
            string(out, f.effect.as_str());
            out.extend_from_slice(b",\"weight\":");
            float(out, f.weight);
            out.extend_from_slice(b",\"evidence\":");
            string(out, &f.evidence);
            out.extend_from_slice(b",\"provision\":");
            string(out, &f.provision);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"provision\":");
        string(out, &self.provision);
        out.extend_from_slice(b",\"at\":");
        time(out, self.at);
        out.push(b'}');
    }
}

/// The id of a flag: stable for one message, subject account and category.
pub fn flag_id(message_id: &str, subject: Subject, account: &str, category: Category) -> String {
    let mut buf = Vec::with_capacity(message_id.len() + account.len() + 40);
    for part in [message_id, subject.as_str(), account, category.as_str()] {
        buf.extend_from_slice(part.as_bytes());
        buf.push(0);
    }
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Effect;
    use proptest::prelude::*;
    use proptest::sample::select;

    fn ts() -> impl Strategy<Value = Ts> {
        prop_oneof![any::<i64>().prop_map(Ts), (0i64..4_102_444_800_000).prop_map(Ts)]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "[a-z:/.0-9 ()'-]{0,80}"]
    }

    fn cow() -> impl Strategy<Value = Cow<'static, str>> {
        prop_oneof![
            text().prop_map(Cow::Owned),
            select(&Category::ALL[..]).prop_map(|c| Cow::Borrowed(c.provision())),
        ]
    }

    fn factor() -> impl Strategy<Value = Factor> {
        (
            cow(),
            select(&[Effect::For, Effect::Against, Effect::Neutral][..]),
            any::<f64>(),
            text(),
            cow(),
        )
            .prop_map(|(code, effect, weight, evidence, provision)| Factor {
                code,
                effect,
                weight,
                evidence,
                provision,
            })
    }

    fn removed_by() -> impl Strategy<Value = RemovedBy> {
        select(
            &[
                RemovedBy::Author,
                RemovedBy::Platform,
                RemovedBy::Legal,
                RemovedBy::Unknown,
            ][..],
        )
    }

    fn exposure() -> impl Strategy<Value = Exposure> {
        let removal = select(
            &[
                RemovalKind::Deleted,
                RemovalKind::Blocked,
                RemovalKind::Account,
                RemovalKind::WithOriginal,
            ][..],
        );
        let scope = select(&[Scope::Withheld, Scope::FollowersOnly, Scope::AgeGated, Scope::Limited][..]);
        (
            ts(),
            proptest::option::of(ts()),
            proptest::option::of(removed_by()),
            proptest::option::of(removal),
            any::<u64>(),
            any::<bool>(),
            proptest::option::of((ts(), removed_by(), scope)),
        )
            .prop_map(
                |(posted_at, removed_at, removed_by, removal, seconds_up, still_up, restricted)| Exposure {
                    posted_at,
                    removed_at,
                    removed_by,
                    removal,
                    seconds_up,
                    still_up,
                    restricted: restricted.map(|(at, by, scope)| Restricted { at, by, scope }),
                },
            )
    }

    fn reach() -> impl Strategy<Value = Reach> {
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            proptest::option::of(any::<u64>()),
            any::<u32>(),
        )
            .prop_map(|(audience, reshares, quotes, replies, impressions, depth)| Reach {
                audience,
                reshares,
                quotes,
                replies,
                impressions,
                depth,
            })
    }

    fn flag() -> impl Strategy<Value = Flag> {
        (
            (
                cow(),
                text(),
                any::<u64>(),
                text(),
                select(&[Subject::Author, Subject::Resharer][..]),
                text(),
            ),
            (
                select(&Category::ALL[..]),
                any::<f64>(),
                any::<bool>(),
                reach(),
                exposure(),
            ),
            (proptest::collection::vec(factor(), 0..8), cow(), ts()),
        )
            .prop_map(
                |(
                    (schema, flag_id, revision, message_id, subject, account),
                    (category, score, raised, reach, exposure),
                    (factors, provision, at),
                )| Flag {
                    schema,
                    flag_id,
                    revision,
                    message_id,
                    subject,
                    account,
                    category,
                    track: category.track(),
                    score,
                    raised,
                    reach,
                    exposure,
                    factors,
                    provision,
                    at,
                },
            )
    }

    proptest! {
        /// The hand-written JSON is `serde_json`'s, byte for byte, for any flag: readers (the
        /// API's store, the tests) read it back with the derived `Deserialize`.
        #[test]
        fn a_flag_is_written_as_serde_json_writes_it(f in flag()) {
            prop_assert_eq!(f.to_json(), serde_json::to_string(&f).unwrap());
        }
    }

    #[test]
    fn track_follows_the_serde_name_for_every_category() {
        for c in Category::ALL {
            assert_eq!(
                serde_json::to_string(&c.track()).unwrap(),
                format!("\"{}\"", c.track().as_str())
            );
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{}\"", c.as_str()));
        }
    }
}
