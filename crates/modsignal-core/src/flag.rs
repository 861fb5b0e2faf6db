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
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("flags always serialise")
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
