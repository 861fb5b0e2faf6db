//! Flags as AT Protocol labels (`com.atproto.label.defs#label`).
//!
//! A label asserts one value about one subject: here, that a message (`uri`, the flag's
//! `message_id`) is in one guideline category (`val`, such as `modsignal-credible-threat`),
//! from modsignal's labeler (`src`, a DID), at the event time of the change (`cts`). It is only
//! an assertion: what a client does with a label is the client's decision, as modsignal never
//! moderates.
//!
//! Flags are per subject (the author, and each resharer) while a label is per message, so a
//! message carries a category's label while **at least one** of its flags in that category is
//! raised, whoever the subject: a label is written when the first such flag is raised, and a
//! retraction (`neg: true`) when the last one stops being raised. Resharers do not each get a
//! label, and the flags remain the place to read who is concerned and why. Flags that are
//! never raised give no label.
//!
//! A label's `uri` is the message id as the input named it: an `at://` URI for Bluesky
//! (Jetstream), which is what AT Protocol consumers expect; other platforms' ids are written
//! as they are.

use std::collections::{HashMap, HashSet};

use modsignal_core::event::Category;
use modsignal_core::{Flag, Ts};
use serde::Serialize;

/// A `com.atproto.label.defs#label`, version 1, without a signature (a labeler service signs
/// what it publishes).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Label {
    pub ver: u8,
    pub src: String,
    pub uri: String,
    pub val: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub neg: bool,
    pub cts: Ts,
}

impl Label {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("labels always serialise")
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LabelError {
    #[error("label source `{0}` is not a DID (did:method:identifier), as AT Protocol requires")]
    NotADid(String),
}

/// The label value of a category: lower-case, hyphenated, well under the 128 characters
/// AT Protocol allows.
pub fn label_value(category: Category) -> &'static str {
    match category {
        Category::CredibleThreat => "modsignal-credible-threat",
        Category::TargetedHarassment => "modsignal-targeted-harassment",
        Category::CourtOrderBreach => "modsignal-court-order-breach",
        Category::CommunicationsOffence => "modsignal-communications-offence",
    }
}

/// Checks the syntax of a DID as AT Protocol does: `did:`, a lower-case method, `:`, then an
/// identifier of letters, digits and `._:%-` that does not end in `:` or `%`.
pub fn check_did(src: &str) -> Result<(), LabelError> {
    let bad = || LabelError::NotADid(src.chars().take(64).collect());
    let rest = src.strip_prefix("did:").ok_or_else(bad)?;
    let (method, id) = rest.split_once(':').ok_or_else(bad)?;
    let method_ok = !method.is_empty() && method.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let id_ok = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:%-".contains(&b))
        && !id.ends_with([':', '%']);
    if method_ok && id_ok && src.len() <= 2048 {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The label of a flag's message and category, asserted, or retracted when `neg`. The source
/// is taken as given: [`LabelWriter::new`] checks it once.
pub fn to_label(flag: &Flag, src: &str, neg: bool) -> Label {
    Label {
        ver: 1,
        src: src.to_owned(),
        uri: flag.message_id.clone(),
        val: label_value(flag.category),
        neg,
        cts: flag.at,
    }
}

/// Turns the flags written, in the order written, into the labels that follow from them. It
/// remembers, for each asserted (message, category), which flags hold it up, and forgets it
/// when the label is retracted, so its memory is that of the labels currently asserted. Each
/// flag costs constant time however many hold one label up (a message with a million raised
/// resharers).
#[derive(Debug)]
pub struct LabelWriter {
    src: String,
    raised: HashMap<(String, Category), HashSet<String>>,
}

impl LabelWriter {
    pub fn new(src: &str) -> Result<Self, LabelError> {
        check_did(src)?;
        Ok(LabelWriter {
            src: src.to_owned(),
            raised: HashMap::new(),
        })
    }

    /// Takes the next flag revision written and appends the label it changes, if any.
    pub fn push(&mut self, flag: &Flag, out: &mut Vec<Label>) {
        let key = (flag.message_id.clone(), flag.category);
        match (flag.raised, self.raised.get_mut(&key)) {
            (true, Some(holders)) => {
                if !holders.contains(&flag.flag_id) {
                    holders.insert(flag.flag_id.clone());
                }
            }
            (true, None) => {
                self.raised.insert(key, HashSet::from([flag.flag_id.clone()]));
                out.push(to_label(flag, &self.src, false));
            }
            (false, Some(holders)) => {
                holders.remove(&flag.flag_id);
                if holders.is_empty() {
                    self.raised.remove(&key);
                    out.push(to_label(flag, &self.src, true));
                }
            }
            (false, None) => {}
        }
    }

    /// How many (message, category) labels are asserted now.
    pub fn asserted(&self) -> usize {
        self.raised.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modsignal_core::event::Track;
    use modsignal_core::flag::{Exposure, Reach, Subject, flag_id};

    fn flag(msg: &str, subject: Subject, account: &str, category: Category, raised: bool, at: i64) -> Flag {
        Flag {
            schema: modsignal_core::flag::FLAG_SCHEMA,
            flag_id: flag_id(msg, subject, account, category),
            revision: at as u64,
            message_id: msg.into(),
            subject,
            account: account.into(),
            category,
            track: Track::Robust,
            score: 0.9,
            raised,
            reach: Reach {
                audience: 1,
                reshares: 0,
                quotes: 0,
                replies: 0,
                impressions: None,
                depth: 0,
            },
            exposure: Exposure {
                posted_at: Ts(at),
                removed_at: None,
                removed_by: None,
                removal: None,
                seconds_up: 0,
                still_up: true,
            },
            factors: vec![],
            provision: "",
            at: Ts(at),
        }
    }

    const SRC: &str = "did:plc:modsignal0labeler";
    const URI: &str = "at://did:plc:aaa/app.bsky.feed.post/3lbhp";

    #[test]
    fn a_label_has_the_lexicon_shape() {
        let f = flag(
            URI,
            Subject::Author,
            "did:plc:aaa",
            Category::CredibleThreat,
            true,
            1_767_607_200_000,
        );
        assert_eq!(
            to_label(&f, SRC, false).to_json(),
            r#"{"ver":1,"src":"did:plc:modsignal0labeler","uri":"at://did:plc:aaa/app.bsky.feed.post/3lbhp","val":"modsignal-credible-threat","cts":"2026-01-05T10:00:00.000Z"}"#
        );
        assert!(to_label(&f, SRC, true).to_json().contains(r#""neg":true"#));
        for c in Category::ALL {
            let v = label_value(c);
            assert!(
                v.len() <= 128 && v.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{v}"
            );
        }
    }

    #[test]
    fn one_label_per_message_and_category_held_by_any_raised_flag() {
        let mut w = LabelWriter::new(SRC).unwrap();
        let mut out = Vec::new();
        let c = Category::CommunicationsOffence;
        // Unraised flags assert nothing and retract nothing.
        w.push(&flag(URI, Subject::Author, "a", c, false, 1), &mut out);
        assert!(out.is_empty());
        // The resharer's flag is raised first: the message is labelled once.
        w.push(&flag(URI, Subject::Resharer, "r1", c, true, 2), &mut out);
        w.push(&flag(URI, Subject::Author, "a", c, true, 3), &mut out);
        w.push(&flag(URI, Subject::Author, "a", c, true, 4), &mut out);
        w.push(
            &flag(URI, Subject::Author, "a", Category::CredibleThreat, true, 5),
            &mut out,
        );
        assert_eq!(
            out.iter().map(|l| (l.val, l.neg, l.cts.0)).collect::<Vec<_>>(),
            [
                ("modsignal-communications-offence", false, 2),
                ("modsignal-credible-threat", false, 5)
            ]
        );
        assert_eq!(w.asserted(), 2);
        out.clear();
        // The label stays while one flag still holds it, and is retracted with the last.
        w.push(&flag(URI, Subject::Author, "a", c, false, 6), &mut out);
        assert!(out.is_empty());
        w.push(&flag(URI, Subject::Resharer, "r1", c, false, 7), &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].neg && out[0].cts == Ts(7) && out[0].uri == URI);
        assert_eq!(w.asserted(), 1);
    }

    #[test]
    fn the_source_must_be_a_did() {
        for ok in [SRC, "did:web:labeler.example.com", "did:plc:z72i7hdynmk6r22z27h6tvur"] {
            assert!(check_did(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "modsignal",
            "did:",
            "did:plc:",
            "did:PLC:x",
            "did:plc:a b",
            "did:plc:x:",
            "at://did:plc:x",
        ] {
            assert!(LabelWriter::new(bad).is_err(), "{bad}");
        }
    }
}
