//! What each factor cites. The public-interest factors against prosecution (para 39) belong to
//! category 4: for categories 1–3 removal speed still orders flags, cited as modsignal's own
//! ordering, and the other para 39 credits are not given (see [`super::evaluate_with`]).

pub const CATEGORY_THREAT: &str = "DPP guidelines on social media (2012, rev. 2016) para 12(1): credible threats of violence to the person or damage to property; Offences Against the Person Act 1861 s.16; Criminal Damage Act 1971 s.2; Communications Act 2003 s.127(1); OSA 2023 s.181";
pub const CATEGORY_HARASSMENT: &str =
    "DPP guidelines para 12(2): communications targeting an individual; Protection from Harassment Act 1997";
pub const CATEGORY_COURT_ORDER: &str = "DPP guidelines para 12(3): breach of a court order or statutory prohibition; Contempt of Court Act 1981 (proceedings need the Attorney General's consent); Sexual Offences (Amendment) Act 1992 s.5; Juries Act 1974 ss.20A-20D";
pub const CATEGORY_COMMS: &str = "DPP guidelines para 12(4): grossly offensive, indecent, obscene or false communications; Communications Act 2003 s.127; Malicious Communications Act 1988 s.1; OSA 2023 s.179";
pub const SWIFT_REMOVAL: &str =
    "DPP guidelines para 39, public interest factors against: swift and effective action to remove or block access";
/// The time up, a factor for prosecution: the converse of swift removal, not the factor
/// against itself.
pub const EXPOSURE: &str = "DPP guidelines, public interest: how long the communication stayed up (the converse of para 39's swift and effective removal)";
/// Removal speed for categories 1–3, which para 39's factors against do not cover.
pub const ORDERING: &str = "modsignal: orders flags of categories 1-3 by how long the message was up (the public interest credits against prosecution of para 39 belong to category 4)";
pub const LIMITED_AUDIENCE: &str =
    "DPP guidelines para 39, public interest factors against: not intended for a wide audience";
pub const WIDE_AUDIENCE: &str = "DPP guidelines, public interest: a wide audience (converse of the factor against); OSA 2023 s.179 likely audience includes those who see reshares";
pub const REMORSE: &str = "DPP guidelines para 39, public interest factors against: genuine remorse";
pub const TOLERABLE: &str = "DPP guidelines para 39, public interest factors against: not obviously beyond what is tolerable in an open and diverse society; Chambers v DPP [2012] EWHC 2157 (Admin)";
pub const MINOR: &str = "DPP guidelines, public interest: the age and maturity of the suspect, given significant weight (prosecuting under-18s is rarely in the public interest)";
pub const TARGETED: &str = "DPP guidelines, public interest factors for: a specifically targeted victim";
pub const IMPACT: &str = "DPP guidelines, public interest factors for: significant impact on the victim";
pub const HATE: &str = "DPP guidelines, public interest factors for: hostility on grounds of race, religion, disability, sexual orientation or transgender identity";
pub const REPEAT: &str = "DPP guidelines, public interest factors for: repeated conduct";
pub const MOBBING: &str = "DPP guidelines (2016): virtual mobbing; Protection from Harassment Act 1997 s.7(3A) (collective course of conduct); Serious Crime Act 2007 ss.44-46";
pub const COURSE: &str = "DPP guidelines para 12(2): communications targeting an individual; Protection from Harassment Act 1997 s.7(3): a course of conduct, on at least two occasions";
/// A course of conduct that went on after the platform took one of its messages down.
pub const COURSE_AFTER_REMOVAL: &str = "DPP guidelines para 12(2): communications targeting an individual; Protection from Harassment Act 1997 s.7(3): a course of conduct, continued after the platform took one of its messages down";
/// A course of conduct that went on after the person reported it.
pub const COURSE_AFTER_REPORT: &str = "DPP guidelines para 12(2): communications targeting an individual; Protection from Harassment Act 1997 s.7(3): a course of conduct, continued after the person targeted reported it to the platform";
/// A course of conduct that went on after the platform suspended the sender.
pub const COURSE_AFTER_SANCTION: &str = "DPP guidelines para 12(2): communications targeting an individual; Protection from Harassment Act 1997 s.7(3): a course of conduct, continued after the platform suspended the sender's account";
pub const ENCOURAGEMENT: &str = "DPP guidelines (2016): encouraging others; Serious Crime Act 2007 ss.44-46";
pub const CONFIDENCE: &str = "modsignal: strength of the category label";
/// Reports are a reason to look, not a factor the guidelines name.
pub const REPORTS: &str = "modsignal: reports from distinct accounts, a signal for review (not evidence of impact on the victim), counted up to a share of the reach";
pub const RESHARING: &str = "DPP guidelines: the guidance applies equally to resending (retweeting)";
/// A reshare made after the message was taken down: resending in that context, and no
/// removal credit for it.
pub const RESHARED_AFTER_REMOVAL: &str = "DPP guidelines para 2: the context of resending is highly material; para 39's swift and effective removal was no action on a reshare made after it";

/// Every citation the model writes, by the key under which `config/policy.toml` lists it
/// in its `[provisions]` table. The policy refuses a table that differs from this one, and
/// a test checks that every provision in every scenario's flags is one of these, so the
/// file a reviewer reads is the list of what flags cite.
pub const ALL: [(&str, &str); 26] = [
    ("category_threat", CATEGORY_THREAT),
    ("category_harassment", CATEGORY_HARASSMENT),
    ("category_court_order", CATEGORY_COURT_ORDER),
    ("category_comms", CATEGORY_COMMS),
    ("swift_removal", SWIFT_REMOVAL),
    ("exposure", EXPOSURE),
    ("ordering", ORDERING),
    ("limited_audience", LIMITED_AUDIENCE),
    ("wide_audience", WIDE_AUDIENCE),
    ("remorse", REMORSE),
    ("tolerable", TOLERABLE),
    ("minor", MINOR),
    ("targeted", TARGETED),
    ("impact", IMPACT),
    ("hate", HATE),
    ("repeat", REPEAT),
    ("mobbing", MOBBING),
    ("course", COURSE),
    ("course_after_sanction", COURSE_AFTER_SANCTION),
    ("course_after_report", COURSE_AFTER_REPORT),
    ("course_after_removal", COURSE_AFTER_REMOVAL),
    ("encouragement", ENCOURAGEMENT),
    ("confidence", CONFIDENCE),
    ("reports", REPORTS),
    ("resharing", RESHARING),
    ("reshared_after_removal", RESHARED_AFTER_REMOVAL),
];
