//! Flags as AT Protocol labels (`com.atproto.label.defs#label`).
//!
//! A label asserts one value about one subject: here, that a message (`uri`, the flag's
//! `message_id`) is in one guideline category (`val`, such as `modsignal-credible-threat`),
//! from modsignal's labeler (`src`, a DID), at the event time of the change (`cts`). It is only
//! an assertion: what a client does with a label is the client's decision, as modsignal never
//! moderates.
//!
//! Flags are per subject (the author, and each resharer) while a label is per message, so a
//! message carries a category's label while its **author's** flag in that category is raised:
//! a label is written when it is raised, and a retraction (`neg: true`) when it stops being
//! raised. A resharer's raised flag never labels the message: it weighs that resharer's own
//! reach and exposure, and a label on the post would speak about its author. The flags remain
//! the place to read who is concerned and why. Flags that are never raised give no label.
//!
//! Bluesky clients hide or warn on a labeler's labels by default unless the labeler declares
//! them informational. [`labeler_declaration`] is that declaration (an
//! `app.bsky.labeler.service` record): every value `severity: "inform"`, `blurs: "none"`,
//! `defaultSetting: "ignore"`, so a label informs whoever chooses to see it and acts on nobody.
//!
//! A label's `uri` is the message id as the input named it: an `at://` URI for Bluesky
//! (Jetstream), which is what AT Protocol consumers expect; other platforms' ids are written
//! as they are.

use std::collections::{HashMap, HashSet};

use modsignal_core::event::Category;
use modsignal_core::flag::Subject;
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

/// A plain name and description of each label value, for people who see the label in a
/// client.
fn definition_text(category: Category) -> (&'static str, &'static str) {
    match category {
        Category::CredibleThreat => (
            "Possible credible threat (modsignal)",
            "a possible credible threat of violence or damage to property (para 12(1))",
        ),
        Category::TargetedHarassment => (
            "Possible targeted harassment (modsignal)",
            "possible harassment targeting an individual (para 12(2))",
        ),
        Category::CourtOrderBreach => (
            "Possible court-order breach (modsignal)",
            "a possible breach of a court order or statutory prohibition (para 12(3))",
        ),
        Category::CommunicationsOffence => (
            "Possible communications offence (modsignal)",
            "a possibly grossly offensive, indecent, obscene or false communication, above the guidelines' high threshold (para 12(4))",
        ),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LabelerService {
    #[serde(rename = "$type")]
    kind: &'static str,
    policies: LabelerPolicies,
    subject_types: [&'static str; 1],
    subject_collections: [&'static str; 1],
    created_at: Ts,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LabelerPolicies {
    label_values: Vec<&'static str>,
    label_value_definitions: Vec<LabelValueDefinition>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LabelValueDefinition {
    identifier: &'static str,
    severity: &'static str,
    blurs: &'static str,
    default_setting: &'static str,
    adult_only: bool,
    locales: [Locale; 1],
}

#[derive(Serialize)]
struct Locale {
    lang: &'static str,
    name: &'static str,
    description: String,
}

/// The labeler's declaration, an `app.bsky.labeler.service` record as JSON, created at
/// `created_at`: every label value modsignal writes, each declared informational (`severity`
/// `inform`, `blurs` `none`, `defaultSetting` `ignore`), so that no client hides or warns on a
/// post because modsignal labelled it. The labeler's operator publishes it in the labeler's
/// repository (record key `self`).
pub fn labeler_declaration(created_at: Ts) -> String {
    let definitions = Category::ALL
        .iter()
        .map(|&c| {
            let (name, what) = definition_text(c);
            LabelValueDefinition {
                identifier: label_value(c),
                severity: "inform",
                blurs: "none",
                default_setting: "ignore",
                adult_only: false,
                locales: [Locale {
                    lang: "en",
                    name,
                    description: format!(
                        "Informational. modsignal, a risk signal for trust-and-safety teams, found that this post was labelled as {what} under the Director of Public Prosecutions' guidelines on prosecuting cases involving communications sent via social media (2012, revised 2016), and weighed that with its reach and how long it stayed up. It is not a finding of any offence, not a moderation decision and not a recommendation to remove: it informs the people who decide."
                    ),
                }],
            }
        })
        .collect();
    let record = LabelerService {
        kind: "app.bsky.labeler.service",
        policies: LabelerPolicies {
            label_values: Category::ALL.iter().map(|&c| label_value(c)).collect(),
            label_value_definitions: definitions,
        },
        subject_types: ["record"],
        subject_collections: ["app.bsky.feed.post"],
        created_at,
    };
    serde_json::to_string_pretty(&record).expect("the declaration always serialises")
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
    /// Resharers' flags change no label (see the module's overview).
    pub fn push(&mut self, flag: &Flag, out: &mut Vec<Label>) {
        if flag.subject != Subject::Author {
            return;
        }
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
    use modsignal_core::flag::{Exposure, Reach, flag_id};

    fn flag(msg: &str, subject: Subject, account: &str, category: Category, raised: bool, at: i64) -> Flag {
        Flag {
            schema: modsignal_core::flag::FLAG_SCHEMA.into(),
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
                restricted: None,
            },
            factors: vec![],
            provision: "".into(),
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
    fn one_label_per_message_and_category_while_the_authors_flag_is_raised() {
        let mut w = LabelWriter::new(SRC).unwrap();
        let mut out = Vec::new();
        let c = Category::CommunicationsOffence;
        // Unraised flags assert nothing and retract nothing.
        w.push(&flag(URI, Subject::Author, "a", c, false, 1), &mut out);
        assert!(out.is_empty());
        // A resharer's raised flag labels nothing: the label would speak about the author.
        w.push(&flag(URI, Subject::Resharer, "r1", c, true, 2), &mut out);
        assert!(out.is_empty());
        w.push(&flag(URI, Subject::Author, "a", c, true, 3), &mut out);
        w.push(&flag(URI, Subject::Author, "a", c, true, 4), &mut out);
        w.push(
            &flag(URI, Subject::Author, "a", Category::CredibleThreat, true, 5),
            &mut out,
        );
        assert_eq!(
            out.iter().map(|l| (l.val, l.neg, l.cts.0)).collect::<Vec<_>>(),
            [
                ("modsignal-communications-offence", false, 3),
                ("modsignal-credible-threat", false, 5)
            ]
        );
        assert_eq!(w.asserted(), 2);
        out.clear();
        // The label is retracted when the author's flag is lowered, whatever the resharers'.
        w.push(&flag(URI, Subject::Resharer, "r1", c, false, 6), &mut out);
        assert!(out.is_empty());
        w.push(&flag(URI, Subject::Author, "a", c, false, 7), &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].neg && out[0].cts == Ts(7) && out[0].uri == URI);
        assert_eq!(w.asserted(), 1);
    }

    #[test]
    fn the_declaration_makes_every_value_informational() {
        let d: serde_json::Value = serde_json::from_str(&labeler_declaration(Ts(1_767_607_200_000))).unwrap();
        assert_eq!(d["$type"], "app.bsky.labeler.service");
        assert_eq!(d["createdAt"], "2026-01-05T10:00:00.000Z");
        let values: Vec<&str> = d["policies"]["labelValues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let declared: Vec<&str> = Category::ALL.iter().map(|&c| label_value(c)).collect();
        assert_eq!(values, declared);
        let defs = d["policies"]["labelValueDefinitions"].as_array().unwrap();
        assert_eq!(defs.len(), Category::ALL.len());
        for def in defs {
            assert!(values.contains(&def["identifier"].as_str().unwrap()));
            assert_eq!(def["severity"], "inform");
            assert_eq!(def["blurs"], "none");
            assert_eq!(def["defaultSetting"], "ignore");
            assert_eq!(def["adultOnly"], false);
            let locale = &def["locales"][0];
            assert_eq!(locale["lang"], "en");
            // The lexicon's bounds: a name of at most 64 graphemes, a description of 10,000.
            assert!(locale["name"].as_str().unwrap().chars().count() <= 64);
            let description = locale["description"].as_str().unwrap();
            assert!(description.contains("not a moderation decision") && description.chars().count() <= 10_000);
        }
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
