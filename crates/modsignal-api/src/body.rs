//! The JSON bodies the API answers with, one type each, named as `openapi.json` names their
//! schemas. The document is written by hand, for the people who read it (each field says what
//! it means to an officer or an analyst); the tests check every body these types produce
//! against the schema the document gives for its route, closed, so that a field added, renamed
//! or retyped here and not there fails.

use modsignal_core::Ts;
use modsignal_core::cohort::{Member, Summary};
use modsignal_core::event::{Category, Track};
use modsignal_core::flag::{Exposure, Reach};
use serde::Serialize;

use crate::record::FlagRecord;

/// `Error`: what went wrong, as a code from a closed list and a sentence.
#[derive(Serialize)]
pub(crate) struct Error<'a> {
    pub error: &'static str,
    pub message: &'a str,
}

/// The body of `/healthz`.
#[derive(Serialize)]
pub(crate) struct Health {
    pub status: &'static str,
}

/// `Ready`: the body of `/readyz`.
#[derive(Serialize)]
pub(crate) struct Ready {
    pub ready: bool,
}

/// `Session`: what the caller's token lets them see.
#[derive(Serialize)]
pub(crate) struct Session {
    pub role: &'static str,
    pub pseudonymised: bool,
    pub raised_only: bool,
    pub max_page: usize,
}

/// `ShownFlag`: a flag's revision as the caller may see it, and whether it is the newest. In a
/// message's list it also says how many revisions the caller may see.
#[derive(Serialize)]
pub(crate) struct ShownFlag {
    pub current: bool,
    pub flag: FlagRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revisions: Option<usize>,
}

/// `FlagPage`: one page of `/api/v1/flags`.
#[derive(Serialize)]
pub(crate) struct FlagPage {
    pub flags: Vec<ShownFlag>,
    pub next_cursor: Option<String>,
}

/// `FlagHistory`: a flag with the revisions kept of it.
#[derive(Serialize)]
pub(crate) struct FlagHistory {
    pub current: bool,
    pub flag: FlagRecord,
    pub revisions: Vec<FlagRecord>,
    pub revisions_thinned: u64,
}

/// `FlagExport`: a flag's history as evidence, with when and for whom it was exported.
#[derive(Serialize)]
pub(crate) struct FlagExport {
    #[serde(flatten)]
    pub history: FlagHistory,
    pub exported_at: Ts,
    pub exported_for_role: &'static str,
    pub pseudonymised: bool,
}

/// `HistoryEntry`: one revision of one of a message's flags, in the message's timeline.
#[derive(Serialize)]
pub(crate) struct HistoryEntry {
    pub flag_id: String,
    pub revision: u64,
    pub at: Ts,
    pub subject: modsignal_core::Subject,
    pub account: String,
    pub category: modsignal_core::event::Category,
    pub raised: bool,
    pub score: f64,
    pub reach: Reach,
    pub exposure: Exposure,
}

impl From<FlagRecord> for HistoryEntry {
    fn from(r: FlagRecord) -> Self {
        HistoryEntry {
            flag_id: r.flag_id,
            revision: r.revision,
            at: r.at,
            subject: r.subject,
            account: r.account,
            category: r.category,
            raised: r.raised,
            score: r.score,
            reach: r.reach,
            exposure: r.exposure,
        }
    }
}

/// `Message`: a message's reach and exposure (its author's), its flags and their timeline.
#[derive(Serialize)]
#[expect(
    clippy::struct_field_names,
    reason = "the field is the document's `message_id`, as on every flag"
)]
pub(crate) struct Message {
    pub message_id: String,
    pub author: Option<String>,
    pub reach: Option<Reach>,
    pub exposure: Option<Exposure>,
    pub flags: Vec<ShownFlag>,
    pub history: Vec<HistoryEntry>,
    pub cohorts: Vec<MessageCohort>,
}

/// `MessageCohort`: one category's resharer cohort of a message, in a few numbers that name no
/// one (its `summary` is the core's `cohort::Summary`, the document's `CohortSummary`).
#[derive(Serialize)]
pub(crate) struct MessageCohort {
    pub category: Category,
    pub track: Track,
    pub cohort_id: String,
    pub revision: u64,
    pub pages: u32,
    pub complete: bool,
    pub at: Ts,
    pub summary: Summary,
}

/// `ResharerCohort`: a cohort with the members of one page of `/resharers` (each the core's
/// `cohort::Member`, the document's `ResharerMember`, with the account as the caller may see
/// it).
#[derive(Serialize)]
pub(crate) struct ResharerCohort {
    #[serde(flatten)]
    pub cohort: MessageCohort,
    pub members: Vec<Member>,
}

/// `Resharers`: one page of `/api/v1/messages/{message_id}/resharers`.
#[derive(Serialize)]
pub(crate) struct Resharers {
    pub message_id: String,
    pub cohorts: Vec<ResharerCohort>,
    pub next_cursor: Option<String>,
}
