//! Decoding: [`decode`] reads one record into the loose [`RawEvent`] (the fast reader, or serde)
//! and checks it into an [`Event`], or says what was wrong with a [`DecodeError`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::{
    AccountStatus, Audience, Author, Category, Event, EventKind, FactorLabel, LabelCode, RemovedBy, Scope, fast,
};
use crate::reject::RejectCode;
use crate::time::Ts;

/// Why a record could not be decoded. Every variant names what was wrong so that a reject file
/// or a dead-letter header tells an operator where to look.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    #[error("field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("record of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

impl DecodeError {
    /// The bounded reason code for reject files, metrics labels and headers.
    pub fn code(&self) -> RejectCode {
        match self {
            DecodeError::Json(_) => RejectCode::InvalidJson,
            DecodeError::Missing(_) => RejectCode::MissingField,
            DecodeError::UnknownType(_) => RejectCode::UnknownType,
            DecodeError::Invalid { .. } => RejectCode::InvalidField,
            DecodeError::TooLarge(_) => RejectCode::TooLarge,
        }
    }
}

/// The largest record accepted. Canonical events are a few hundred bytes; a megabyte is a
/// producer bug, and refusing it keeps one bad record from costing a burst of memory.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The wire shape: every field of every type, all optional, so one pass of serde reads any
/// event without buffering (serde's tagged enums buffer the whole object first).
#[derive(Default, Debug, Serialize, Deserialize)]
pub struct RawEvent<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de_at", skip_serializing_if = "Option::is_none")]
    pub at: Option<RawAt>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Author<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Audience>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub reply_to_author: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub quote_of: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub quote_of_author: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub mentions: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub of: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<RemovedBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<FactorLabel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negate: Option<bool>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_target: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AccountStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<u32>,
}

/// `at` as written: integer milliseconds, or an RFC 3339 string (kept as text until validated,
/// so that a bad string is reported with its value).
#[derive(Debug, Clone, PartialEq)]
pub enum RawAt {
    Millis(i64),
    Text(String),
    Bad(String),
}

impl Serialize for RawAt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RawAt::Millis(ms) => s.serialize_i64(*ms),
            RawAt::Text(t) | RawAt::Bad(t) => s.serialize_str(t),
        }
    }
}

fn de_at<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RawAt>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<RawAt>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("milliseconds since the epoch or an RFC 3339 string")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(RawAt::Millis(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(
                i64::try_from(v).map_or_else(|_| RawAt::Bad(v.to_string()), RawAt::Millis),
            ))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(RawAt::Bad(v.to_string())))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(match Ts::parse_rfc3339(v) {
                Some(t) => RawAt::Millis(t.0),
                None => RawAt::Bad(v.to_owned()),
            }))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

fn need<T>(v: Option<T>, field: &'static str) -> Result<T, DecodeError> {
    v.ok_or(DecodeError::Missing(field))
}

/// The longest id accepted, in bytes: ids are kept and compared whole, so their length is
/// bounded like a record's. Real ids are tens of bytes (an AT Protocol URI is about a hundred).
pub const MAX_ID_BYTES: usize = 4096;

/// An id that is present, not empty and not longer than [`MAX_ID_BYTES`].
fn nonempty<'a>(v: Option<Cow<'a, str>>, field: &'static str) -> Result<Cow<'a, str>, DecodeError> {
    let v = need(v, field)?;
    if v.is_empty() {
        return Err(DecodeError::Invalid {
            field,
            reason: "must not be empty".into(),
        });
    }
    bounded(Some(v), field).map(|v| v.expect("present"))
}

/// An optional id, if not longer than [`MAX_ID_BYTES`].
pub(super) fn bounded<'a>(v: Option<Cow<'a, str>>, field: &'static str) -> Result<Option<Cow<'a, str>>, DecodeError> {
    match v {
        Some(v) if v.len() > MAX_ID_BYTES => Err(DecodeError::Invalid {
            field,
            reason: format!("{} bytes long; ids are at most {MAX_ID_BYTES} bytes", v.len()),
        }),
        v => Ok(v),
    }
}

/// A list of ids, each checked as [`bounded`] checks one; missing is empty.
fn bounded_list<'a>(v: Option<Vec<Cow<'a, str>>>, field: &'static str) -> Result<Vec<Cow<'a, str>>, DecodeError> {
    let list = v.unwrap_or_default();
    if let Some(long) = list.iter().find(|m| m.len() > MAX_ID_BYTES) {
        bounded(Some(long.clone()), field)?;
    }
    Ok(list)
}

/// Decodes one canonical event from bytes.
pub fn decode(bytes: &[u8]) -> Result<Event<'_>, DecodeError> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    // Validating UTF-8 once for the whole record (vectorised in std) lets serde_json skip
    // validating each string on its own.
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::Json(format!("not UTF-8: {e}")))?;
    // Records in the plain shape producers write are read by a reader made for it; anything
    // else (escapes, unknown fields, unusual numbers, errors) by serde, as the contract says.
    // The wire shape is filled and read in place: it is over 400 bytes, and moving it from
    // reader to validator cost more than reading some of the fields.
    let mut raw = RawEvent::default();
    if !fast::read(text, &mut raw) {
        raw = serde_json::from_str(text).map_err(|e| DecodeError::Json(e.to_string()))?;
    }
    raw.take_event()
}

impl<'a> RawEvent<'a> {
    /// Validates the wire shape into an [`Event`].
    pub fn into_event(mut self) -> Result<Event<'a>, DecodeError> {
        self.take_event()
    }

    /// As [`RawEvent::into_event`], taking the fields out of `self`.
    fn take_event(&mut self) -> Result<Event<'a>, DecodeError> {
        let at = match need(self.at.take(), "at")? {
            RawAt::Millis(ms) if Ts(ms).in_range() => Ts(ms),
            RawAt::Millis(ms) => {
                return Err(DecodeError::Invalid {
                    field: "at",
                    reason: format!("{ms} ms is outside 2000-01-01..2200-01-01"),
                });
            }
            RawAt::Text(t) | RawAt::Bad(t) => {
                return Err(DecodeError::Invalid {
                    field: "at",
                    reason: format!("`{t}` is not RFC 3339 or milliseconds"),
                });
            }
        };
        let kind_name = need(self.kind.take(), "type")?;
        let kind = match &*kind_name {
            "post" => EventKind::Post {
                id: nonempty(self.id.take(), "id")?,
                author: author(self.author.take())?,
                audience: self.audience.take().unwrap_or_default(),
                reply_to: bounded(self.reply_to.take(), "reply_to")?,
                reply_to_author: bounded(self.reply_to_author.take(), "reply_to_author")?,
                quote_of: bounded(self.quote_of.take(), "quote_of")?,
                quote_of_author: bounded(self.quote_of_author.take(), "quote_of_author")?,
                mentions: bounded_list(self.mentions.take(), "mentions")?,
                recipients: bounded_list(self.recipients.take(), "recipients")?,
            },
            "reshare" => EventKind::Reshare {
                id: nonempty(self.id.take(), "id")?,
                of: nonempty(self.of.take(), "of")?,
                author: author(self.author.take())?,
                via: bounded(self.via.take(), "via")?,
            },
            "delete" => EventKind::Delete {
                id: nonempty(self.id.take(), "id")?,
                by: self.by.take().unwrap_or(RemovedBy::Unknown),
            },
            "restrict" => EventKind::Restrict {
                id: nonempty(self.id.take(), "id")?,
                by: self.by.take().unwrap_or(RemovedBy::Unknown),
                scope: need(self.scope.take(), "scope")?,
            },
            "restore" => EventKind::Restore {
                id: nonempty(self.id.take(), "id")?,
                by: self.by.take().unwrap_or(RemovedBy::Unknown),
            },
            "label" => {
                let code = match (self.category.take(), self.factor.take()) {
                    (Some(c), None) => LabelCode::Category(c),
                    (None, Some(f)) => LabelCode::Factor(f),
                    (None, None) => return Err(DecodeError::Missing("category")),
                    (Some(_), Some(_)) => {
                        return Err(DecodeError::Invalid {
                            field: "factor",
                            reason: "a label carries a category or a factor, not both".into(),
                        });
                    }
                };
                let confidence = self.confidence.take().unwrap_or(1.0);
                if !(0.0..=1.0).contains(&confidence) {
                    return Err(DecodeError::Invalid {
                        field: "confidence",
                        reason: format!("{confidence} is outside 0..1"),
                    });
                }
                EventKind::Label {
                    id: nonempty(self.id.take(), "id")?,
                    code,
                    confidence,
                    source: bounded(self.source.take(), "source")?.unwrap_or(Cow::Borrowed("unknown")),
                    target: bounded(self.target.take(), "target")?,
                    negate: self.negate.take().unwrap_or(false),
                }
            }
            "report" => EventKind::Report {
                id: nonempty(self.id.take(), "id")?,
                reporter: nonempty(self.reporter.take(), "reporter")?,
                by_target: self.by_target.take().unwrap_or(false),
            },
            "impressions" => EventKind::Impressions {
                id: nonempty(self.id.take(), "id")?,
                count: need(self.count.take(), "count")?,
            },
            "account" => EventKind::Account {
                user: nonempty(self.user.take(), "user")?,
                status: self.status.take(),
                minor: self.minor.take(),
                followers: self.followers.take(),
            },
            other => return Err(DecodeError::UnknownType(other.chars().take(64).collect())),
        };
        Ok(Event {
            at,
            event_id: bounded(self.event_id.take(), "event_id")?,
            kind,
        })
    }
}

fn author(a: Option<Author<'_>>) -> Result<Author<'_>, DecodeError> {
    let mut a = need(a, "author")?;
    a.id = nonempty(Some(a.id), "author.id")?;
    Ok(a)
}
