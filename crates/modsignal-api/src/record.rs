//! The records the API reads back: the version-1 flag ([`modsignal_core::Flag`] itself) and the
//! version-1 resharer cohort page ([`modsignal_core::Cohort`]), deserialised from the JSON the
//! engine writes (on the Kafka output topic, in flag files: both go to the same output, told
//! apart by their `schema`), and checked for what the store relies on. Their enumerations are
//! the core's, so a record that does not follow its contract is refused at ingestion with the
//! field that was wrong rather than served half-understood.

use std::borrow::Cow;

use modsignal_core::cohort::{COHORT_SCHEMA, PAGE_MEMBERS, cohort_id};
use modsignal_core::flag::FLAG_SCHEMA;
use modsignal_core::{Cohort, Flag};
use serde::Deserialize;

/// One revision of one flag, as the store keeps it.
pub type FlagRecord = Flag;

/// Why a record could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("not a version-1 flag or cohort: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported schema {0:?} (expected \"modsignal.flag/1\" or \"modsignal.cohort/1\")")]
    Schema(String),
    #[error("flag field {field}: {reason}")]
    Invalid { field: &'static str, reason: &'static str },
    #[error("cohort field {field}: {reason}")]
    InvalidCohort { field: &'static str, reason: &'static str },
}

impl IngestError {
    /// A bounded reason code, for logs and counters.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Json(_) => "invalid_json",
            IngestError::Schema(_) => "unsupported_schema",
            IngestError::Invalid { .. } | IngestError::InvalidCohort { .. } => "invalid_field",
        }
    }
}

/// A record of the output: a flag revision or a page of a resharer cohort.
#[derive(Debug)]
pub enum Record {
    Flag(FlagRecord),
    Cohort(Cohort),
}

/// Only the `schema` of a record, for one that does not start the way the engine writes them.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    schema: Option<Cow<'a, str>>,
}

/// Reads one record as written on the output topic or in a flag file, by its `schema`, and
/// checks it.
pub fn record_from_json(text: &str) -> Result<Record, IngestError> {
    // The engine writes `schema` first, so the common case is told from the first bytes and the
    // record is parsed once; anything else (another key order, whitespace) is probed first.
    let starts = |schema: &str| {
        text.strip_prefix(r#"{"schema":""#)
            .and_then(|rest| rest.strip_prefix(schema))
            .is_some_and(|rest| rest.starts_with('"'))
    };
    let cohort = if starts(FLAG_SCHEMA) {
        false
    } else if starts(COHORT_SCHEMA) {
        true
    } else {
        match serde_json::from_str::<Probe>(text)?.schema.as_deref() {
            Some(s) if s == FLAG_SCHEMA => false,
            Some(s) if s == COHORT_SCHEMA => true,
            Some(other) => return Err(IngestError::Schema(other.to_owned())),
            None => return Err(IngestError::Schema(String::new())),
        }
    };
    if cohort {
        let page: Cohort = serde_json::from_str(text)?;
        validate_cohort(&page)?;
        Ok(Record::Cohort(page))
    } else {
        Ok(Record::Flag(from_json(text)?))
    }
}

/// Reads one flag as written on the output topic or in a flag file, and checks it.
pub fn from_json(text: &str) -> Result<FlagRecord, IngestError> {
    let record: FlagRecord = serde_json::from_str(text)?;
    validate(&record)?;
    Ok(record)
}

/// Whether `id` is 32 lowercase hexadecimal digits, as flag and cohort ids are.
fn is_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks what the store relies on: the schema, an id, and the ids it indexes by.
pub fn validate(flag: &FlagRecord) -> Result<(), IngestError> {
    if flag.schema != FLAG_SCHEMA {
        return Err(IngestError::Schema(flag.schema.to_string()));
    }
    let invalid = |field, reason| Err(IngestError::Invalid { field, reason });
    // The id is used in URLs and cursors: the contract makes it 32 lowercase hex digits.
    if !is_id(&flag.flag_id) {
        return invalid("flag_id", "must be 32 lowercase hexadecimal digits");
    }
    if flag.message_id.is_empty() {
        return invalid("message_id", "must not be empty");
    }
    if flag.account.is_empty() {
        return invalid("account", "must not be empty");
    }
    if !flag.score.is_finite() {
        return invalid("score", "must be a number between 0 and 1");
    }
    Ok(())
}

/// Checks what the store relies on in a cohort page: its id is the one of its message and
/// category (so that one id never stands for two cohorts), its page number is within its
/// pages, and its members are ids the API can show, in strictly increasing account order (the
/// order the API pages them in, and what makes a member found by binary search).
pub fn validate_cohort(page: &Cohort) -> Result<(), IngestError> {
    if page.schema != COHORT_SCHEMA {
        return Err(IngestError::Schema(page.schema.to_string()));
    }
    let invalid = |field, reason| Err(IngestError::InvalidCohort { field, reason });
    if page.message_id.is_empty() {
        return invalid("message_id", "must not be empty");
    }
    if page.cohort_id != cohort_id(&page.message_id, page.category) {
        return invalid("cohort_id", "is not the id of the cohort's message and category");
    }
    if page.track != page.category.track() {
        return invalid("track", "is not the track of the cohort's category");
    }
    if page.page >= page.pages {
        return invalid("page", "must be less than pages");
    }
    if page.members.len() > PAGE_MEMBERS {
        return invalid("members", "more than 1000 on one page");
    }
    for m in &page.members {
        if !is_id(&m.flag_id) {
            return invalid("members.flag_id", "must be 32 lowercase hexadecimal digits");
        }
        if m.account.is_empty() {
            return invalid("members.account", "must not be empty");
        }
        if !m.score.is_finite() {
            return invalid("members.score", "must be a number between 0 and 1");
        }
    }
    if page.members.windows(2).any(|w| w[0].account >= w[1].account) {
        return invalid("members", "must be in strictly increasing order of account");
    }
    Ok(())
}
