//! Dead letters: a record that cannot be decoded or applied is produced to the dead-letter
//! topic with its original bytes and, in headers, why and where it came from.

use modsignal_core::{ApplyError, DecodeError, RejectCode};
use modsignal_formats::FormatError;
use rdkafka::message::{Header, OwnedHeaders};

/// Why a record was set aside: what every stage (the engine, the router, a replay) returns
/// for a record it cannot take, and what becomes a dead letter's reason and code.
#[derive(Debug, thiserror::Error)]
pub enum Reject {
    #[error("record of {bytes} bytes exceeds the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl Reject {
    /// The bounded code, from the one closed list metrics register up front.
    pub fn code(&self) -> RejectCode {
        match self {
            Reject::TooLarge { .. } => RejectCode::TooLarge,
            Reject::Decode(e) => e.code(),
            Reject::Apply(e) => e.code(),
            Reject::Format(e) => e.code(),
        }
    }
}

/// The error text: what was wrong with the record.
pub const HEADER_REASON: &str = "modsignal.reason";
/// The bounded reason code (`invalid_json`, `missing_field`, `too_large`, `kind_conflict`, …),
/// the same codes as the file mode's reject file.
pub const HEADER_CODE: &str = "modsignal.code";
/// The topic the record was read from.
pub const HEADER_SOURCE_TOPIC: &str = "modsignal.source.topic";
/// The partition the record was read from, in decimal.
pub const HEADER_SOURCE_PARTITION: &str = "modsignal.source.partition";
/// The record's offset in that partition, in decimal.
pub const HEADER_SOURCE_OFFSET: &str = "modsignal.source.offset";
/// Present only when the value was cut: the original record's length in bytes, in decimal.
pub const HEADER_TRUNCATED: &str = "modsignal.truncated";

/// The longest reason written: a reason quotes the offending value (a timestamp string, say),
/// and a record built to be bad must not turn into an oversized header.
pub const MAX_REASON_BYTES: usize = 1024;

/// Why one record was set aside, and where it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    pub reason: String,
    pub code: RejectCode,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

impl DeadLetter<'_> {
    /// The headers of the dead letter whose original record was `original_len` bytes long and
    /// whose value was cut to `value_len` bytes.
    pub fn headers(&self, original_len: usize, value_len: usize) -> Vec<(&'static str, String)> {
        let mut h = vec![
            (HEADER_REASON, cut_text(&self.reason, MAX_REASON_BYTES).to_owned()),
            (HEADER_CODE, self.code.as_str().to_owned()),
            (HEADER_SOURCE_TOPIC, self.topic.to_owned()),
            (HEADER_SOURCE_PARTITION, self.partition.to_string()),
            (HEADER_SOURCE_OFFSET, self.offset.to_string()),
        ];
        if value_len < original_len {
            h.push((HEADER_TRUNCATED, original_len.to_string()));
        }
        h
    }

    /// The same headers as librdkafka takes them.
    pub fn owned_headers(&self, original_len: usize, value_len: usize) -> OwnedHeaders {
        let pairs = self.headers(original_len, value_len);
        let mut headers = OwnedHeaders::new_with_capacity(pairs.len());
        for (key, value) in &pairs {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        headers
    }
}

/// The value of a dead letter: the original bytes, cut to at most `max` bytes.
pub fn cut_value(payload: &[u8], max: usize) -> &[u8] {
    &payload[..payload.len().min(max)]
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut_text(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;

    use super::*;

    fn letter(reason: &str) -> DeadLetter<'static> {
        DeadLetter {
            reason: reason.to_owned(),
            code: RejectCode::InvalidJson,
            topic: "events",
            partition: 3,
            offset: 1234,
        }
    }

    #[test]
    fn headers_carry_the_reason_and_the_source_coordinates() {
        let h = letter("invalid JSON: expected value at line 1 column 1").headers(9, 9);
        assert_eq!(
            h,
            [
                (
                    HEADER_REASON,
                    "invalid JSON: expected value at line 1 column 1".to_owned()
                ),
                (HEADER_CODE, "invalid_json".to_owned()),
                (HEADER_SOURCE_TOPIC, "events".to_owned()),
                (HEADER_SOURCE_PARTITION, "3".to_owned()),
                (HEADER_SOURCE_OFFSET, "1234".to_owned()),
            ]
        );
    }

    #[test]
    fn a_cut_value_is_marked_with_its_original_length() {
        let payload = vec![b'x'; 3000];
        let value = cut_value(&payload, 1024);
        assert_eq!(value.len(), 1024);
        let h = letter("record of 3000 bytes exceeds the limit").headers(payload.len(), value.len());
        assert_eq!(h.last(), Some(&(HEADER_TRUNCATED, "3000".to_owned())));
        assert_eq!(cut_value(b"short", 1024), b"short");
    }

    #[test]
    fn long_reasons_are_cut_at_a_character_boundary() {
        let reason = format!("field `at`: `{}` is not a time", "é".repeat(2000));
        let h = letter(&reason).headers(1, 1);
        let written = &h[0].1;
        assert!(written.len() <= MAX_REASON_BYTES && written.len() >= MAX_REASON_BYTES - 1);
        assert!(reason.starts_with(written.as_str()));
    }

    #[test]
    fn librdkafka_headers_match() {
        let owned = letter("bad").owned_headers(10, 4);
        let got: Vec<(String, String)> = owned
            .iter()
            .map(|h| (h.key.to_owned(), String::from_utf8(h.value.unwrap().to_vec()).unwrap()))
            .collect();
        let want: Vec<(String, String)> = letter("bad")
            .headers(10, 4)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(got, want);
    }
}
