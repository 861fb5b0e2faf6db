//! The version-1 flag as the API reads it back: a mirror of [`modsignal_core::Flag`] that can
//! be deserialised from the JSON the engine writes (on the Kafka output topic, in flag files).
//!
//! `modsignal_core::Flag` only serialises (its strings are `&'static str` where the core owns
//! them), so the store keeps this owned copy. Enumerations the core deserialises already
//! (category, track, who removed) are reused; the others are mirrored here with the same
//! spelling, so a flag that does not follow the contract is refused at ingestion with the
//! field that was wrong rather than served half-understood.

use std::fmt;

use modsignal_core::Ts;
use modsignal_core::event::{Category, RemovedBy, Scope, Track};
use modsignal_core::flag::FLAG_SCHEMA;
use serde::{Deserialize, Serialize};

/// An instant written as RFC 3339 in UTC with milliseconds, as every flag writes it. Kept as
/// milliseconds so that time filters and ordering never parse strings again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub Ts);

impl Time {
    pub fn millis(self) -> i64 {
        self.0.millis()
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ts::parse_rfc3339(&s)
            .map(Time)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

/// Whose standing a flag describes: the message's author or one resharer.
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

/// How a subject came down (mirrors `modsignal_core::model::RemovalKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalKind {
    Deleted,
    Blocked,
    Account,
    WithOriginal,
}

impl RemovalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalKind::Deleted => "deleted",
            RemovalKind::Blocked => "blocked",
            RemovalKind::Account => "account",
            RemovalKind::WithOriginal => "with_original",
        }
    }
}

/// Whether a factor counts for or against, or weighs nothing (mirrors
/// `modsignal_core::model::Effect`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    For,
    Against,
    Neutral,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::For => "for",
            Effect::Against => "against",
            Effect::Neutral => "neutral",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReachRecord {
    pub audience: u64,
    pub reshares: u64,
    pub quotes: u64,
    pub replies: u64,
    pub impressions: Option<u64>,
    pub depth: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExposureRecord {
    pub posted_at: Time,
    pub removed_at: Option<Time>,
    pub removed_by: Option<RemovedBy>,
    pub removal: Option<RemovalKind>,
    pub seconds_up: u64,
    pub still_up: bool,
    /// A partial restriction in force (the subject is still up); absent in older flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted: Option<RestrictedRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestrictedRecord {
    pub at: Time,
    pub by: RemovedBy,
    pub scope: Scope,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactorRecord {
    pub code: String,
    pub effect: Effect,
    pub weight: f64,
    pub evidence: String,
    pub provision: String,
}

/// One revision of one flag, field for field as `modsignal_core::Flag` writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagRecord {
    pub schema: String,
    pub flag_id: String,
    pub revision: u64,
    pub message_id: String,
    pub subject: Subject,
    pub account: String,
    pub category: Category,
    pub track: Track,
    pub score: f64,
    pub raised: bool,
    pub reach: ReachRecord,
    pub exposure: ExposureRecord,
    pub factors: Vec<FactorRecord>,
    pub provision: String,
    pub at: Time,
}

/// Why a flag could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("not a version-1 flag: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported flag schema {0:?} (expected \"modsignal.flag/1\")")]
    Schema(String),
    #[error("flag field {field}: {reason}")]
    Invalid { field: &'static str, reason: &'static str },
}

impl IngestError {
    /// A bounded reason code, for logs and counters.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Json(_) => "invalid_json",
            IngestError::Schema(_) => "unsupported_schema",
            IngestError::Invalid { .. } => "invalid_field",
        }
    }
}

impl FlagRecord {
    /// The owned copy of a flag the engine produced in this process.
    pub fn from_flag(flag: &modsignal_core::Flag) -> FlagRecord {
        let e = &flag.exposure;
        FlagRecord {
            schema: flag.schema.to_owned(),
            flag_id: flag.flag_id.clone(),
            revision: flag.revision,
            message_id: flag.message_id.clone(),
            subject: match flag.subject {
                modsignal_core::Subject::Author => Subject::Author,
                modsignal_core::Subject::Resharer => Subject::Resharer,
            },
            account: flag.account.clone(),
            category: flag.category,
            track: flag.track,
            score: flag.score,
            raised: flag.raised,
            reach: ReachRecord {
                audience: flag.reach.audience,
                reshares: flag.reach.reshares,
                quotes: flag.reach.quotes,
                replies: flag.reach.replies,
                impressions: flag.reach.impressions,
                depth: flag.reach.depth,
            },
            exposure: ExposureRecord {
                posted_at: Time(e.posted_at),
                removed_at: e.removed_at.map(Time),
                removed_by: e.removed_by,
                removal: e.removal.map(|k| match k {
                    modsignal_core::model::RemovalKind::Deleted => RemovalKind::Deleted,
                    modsignal_core::model::RemovalKind::Blocked => RemovalKind::Blocked,
                    modsignal_core::model::RemovalKind::Account => RemovalKind::Account,
                    modsignal_core::model::RemovalKind::WithOriginal => RemovalKind::WithOriginal,
                }),
                seconds_up: e.seconds_up,
                still_up: e.still_up,
                restricted: e.restricted.as_ref().map(|r| RestrictedRecord {
                    at: Time(r.at),
                    by: r.by,
                    scope: r.scope,
                }),
            },
            factors: flag
                .factors
                .iter()
                .map(|f| FactorRecord {
                    code: f.code.to_owned(),
                    effect: match f.effect {
                        modsignal_core::model::Effect::For => Effect::For,
                        modsignal_core::model::Effect::Against => Effect::Against,
                        modsignal_core::model::Effect::Neutral => Effect::Neutral,
                    },
                    weight: f.weight,
                    evidence: f.evidence.clone(),
                    provision: f.provision.to_owned(),
                })
                .collect(),
            provision: flag.provision.to_owned(),
            at: Time(flag.at),
        }
    }

    /// Reads one flag as written on the output topic or in a flag file, and checks what the
    /// store relies on: the schema, an id, and the ids it indexes by.
    pub fn from_json(text: &str) -> Result<FlagRecord, IngestError> {
        let record: FlagRecord = serde_json::from_str(text)?;
        record.validate()?;
        Ok(record)
    }

    pub fn validate(&self) -> Result<(), IngestError> {
        if self.schema != FLAG_SCHEMA {
            return Err(IngestError::Schema(self.schema.clone()));
        }
        let invalid = |field, reason| Err(IngestError::Invalid { field, reason });
        // The id is used in URLs and cursors: the contract makes it 32 lowercase hex digits.
        if self.flag_id.len() != 32 || !self.flag_id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return invalid("flag_id", "must be 32 lowercase hexadecimal digits");
        }
        if self.message_id.is_empty() {
            return invalid("message_id", "must not be empty");
        }
        if self.account.is_empty() {
            return invalid("account", "must not be empty");
        }
        if !self.score.is_finite() {
            return invalid("score", "must be a number between 0 and 1");
        }
        Ok(())
    }
}
