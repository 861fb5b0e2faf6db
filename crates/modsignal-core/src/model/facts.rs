//! What the model reads ([`Facts`] and the parts it is made of) and what it gives back
//! ([`Evaluation`], [`Factor`]).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::event::{Audience, Category, RemovedBy, Scope};

/// Everything the model needs to know about one subject (an author or a resharer) of one
/// labelled message for one category. Nothing here is an identifier of a person.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    pub category: Category,
    /// The strongest live label for the category; `None` when every label was retracted.
    pub confidence: Option<f64>,
    pub resharer: bool,
    pub seconds_up: u64,
    /// Set when the subject is down at the time of evaluation.
    pub removal: Option<Removal>,
    /// Seconds from posting to the removal in force (more than `seconds_up` when the subject
    /// was down for a while and restored before).
    pub removed_after_secs: u64,
    /// A restriction that leaves the subject visible to some, in force while it is up.
    pub restriction: Option<Restriction>,
    /// For a resharer's flag: they reshared the message while it was down for everyone (the
    /// earliest such reshare, and the removal in force then). The removal was no action on
    /// their reshare, and resending what was taken down counts towards prosecution.
    pub reshared_after_removal: Option<RepostAfterRemoval>,
    pub audience_kind: Audience,
    pub audience: u64,
    pub reshares: u64,
    pub impressions: Option<u64>,
    pub quotes: u64,
    pub replies: u64,
    pub depth: u32,
    /// Whom the message addresses, if anyone: a label's target, a direct message's recipient,
    /// a mention or a reply.
    pub targeted: Option<Targeting>,
    /// Known only for a direct message to one recipient whom no label names as the target:
    /// the person targeted is not in its audience, so the limited-audience credit stands.
    pub target_outside_audience: bool,
    pub reports: u32,
    /// More distinct reporters came than `limits.reporters_per_message` counts.
    pub reports_at_least: bool,
    pub reported_by_target: bool,
    /// Confidence of each factor label, zero when absent.
    pub hate: f64,
    pub encouragement: f64,
    pub significant_impact: f64,
    /// Remorse expressed by this subject: for the author, a label on the message; for a
    /// resharer, a label on their own reshare (the author's remorse is not theirs).
    pub remorse: f64,
    pub tolerable: f64,
    pub minor: bool,
    /// Earlier labelled messages from the same sender within the repeat window.
    pub prior: u32,
    /// The count of earlier messages stopped short: there are at least `prior`.
    pub prior_at_least: bool,
    /// Distinct senders of labelled messages at the same target within the mobbing window.
    pub mob_senders: u32,
    /// The count of senders stopped short: there are at least `mob_senders`.
    pub mob_at_least: bool,
    /// For the author's flag: the messages (this one included) the author aimed at the same
    /// person within the mobbing window either side, a course of conduct from two: the larger
    /// of the labelled messages aimed at them and the posts that mention them first or are
    /// sent to them directly, labelled or not.
    pub course: u32,
    /// The count stopped short: there are at least `course`.
    pub course_at_least: bool,
    /// Of the course, the messages sent after the platform first suspended (or took down) the
    /// sender's account: conduct that went on despite the platform's action.
    pub course_after_sanction: u32,
    /// Of the course, the messages sent after the person targeted first reported one of the
    /// sender's posts aimed at them.
    pub course_after_report: u32,
    /// Of the course, the messages sent after the platform (or a legal order) first took one
    /// of the sender's posts aimed at the person down.
    pub course_after_removal: u32,
    /// For the author's flag: the distinct accounts that reshared the message, and its quotes
    /// and replies (counted as messages), the participants of a pile-on when it is aimed at a
    /// person. Zero for a resharer's flag.
    pub pile_on: PileOn,
}

/// Who joined in on a message: see [`Facts::pile_on`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PileOn {
    pub resharers: u64,
    pub quotes: u64,
    pub replies: u64,
    /// Of the resharers, those who reshared within `conduct.pile_on_burst_secs` of posting.
    pub burst: u64,
}

impl PileOn {
    pub fn total(self) -> u64 {
        self.resharers.saturating_add(self.quotes).saturating_add(self.replies)
    }
}

/// A reshare made while its message was down for everyone: see [`Facts::reshared_after_removal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepostAfterRemoval {
    /// Seconds from the removal to the reshare.
    pub after_secs: u64,
    pub removal: Removal,
}

/// A partial restriction (followers only, age-gated, limited) of a subject that is still up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restriction {
    pub by: RemovedBy,
    pub scope: Scope,
    /// Seconds from posting to the restriction.
    pub after_secs: u64,
    /// The subject's own followers: the audience a followers-only restriction leaves.
    pub followers: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targeting {
    Label,
    /// A direct message to a person.
    Direct,
    Mention,
    /// A reply: to the author of what it answers, when the platform names them.
    Reply,
    /// A quote of a person's message that mentions nobody and replies to nobody.
    Quote,
}

/// How a subject came down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Removal {
    pub by: RemovedBy,
    pub kind: RemovalKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalKind {
    /// The message (or reshare) itself was deleted.
    Deleted,
    /// Access was blocked: withheld, followers-only, age-gated or limited.
    Blocked,
    /// The sender's account was taken down, suspended, deleted or deactivated.
    Account,
    /// A reshare that went down because its original did.
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

/// Which way a factor pulls. A factor whose rounded weight is zero pulls neither way and says
/// so: listing it "for" or "against" would tell an officer it counted when it weighed nothing
/// (a removal too slow to earn credit, a message up only minutes).
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

/// One term of the score, as written into a flag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Factor {
    pub code: Cow<'static, str>,
    pub effect: Effect,
    /// The term's contribution to the log-odds, rounded to four places.
    pub weight: f64,
    pub evidence: String,
    pub provision: Cow<'static, str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub score: f64,
    pub raised: bool,
    pub factors: Vec<Factor>,
}
