//! The version-1 flag as the API reads it back: [`modsignal_core::Flag`] itself, deserialised
//! from the JSON the engine writes (on the Kafka output topic, in flag files), and checked for
//! what the store relies on. Its enumerations are the core's, so a flag that does not follow
//! the contract is refused at ingestion with the field that was wrong rather than served
//! half-understood.

use modsignal_core::Flag;
use modsignal_core::flag::FLAG_SCHEMA;

/// One revision of one flag, as the store keeps it.
pub type FlagRecord = Flag;

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

/// Reads one flag as written on the output topic or in a flag file, and checks it.
pub fn from_json(text: &str) -> Result<FlagRecord, IngestError> {
    let record: FlagRecord = serde_json::from_str(text)?;
    validate(&record)?;
    Ok(record)
}

/// Checks what the store relies on: the schema, an id, and the ids it indexes by.
pub fn validate(flag: &FlagRecord) -> Result<(), IngestError> {
    if flag.schema != FLAG_SCHEMA {
        return Err(IngestError::Schema(flag.schema.to_string()));
    }
    let invalid = |field, reason| Err(IngestError::Invalid { field, reason });
    // The id is used in URLs and cursors: the contract makes it 32 lowercase hex digits.
    if flag.flag_id.len() != 32 || !flag.flag_id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
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
