//! One flag as a CSV file for an evidence bundle.
//!
//! One row per revision and factor: each row repeats its revision's time, score, reach and
//! exposure, then gives one factor for or against with its evidence and provision. Filtering
//! the sheet on the newest revision gives the flag as it stands with every factor; keeping one
//! row per revision gives how its reach and exposure changed. A revision without factors has
//! one row with the factor columns empty. Rows come oldest revision first, factors in the
//! order the flag gives them.
//!
//! Text that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or
//! a carriage return) is written with a leading `'`: account and message ids come from the
//! platforms and must never execute on an officer's machine. Numbers are written as numbers.

use crate::record::FlagRecord;

pub const CSV_HEADER: [&str; 28] = [
    "flag_id",
    "revision",
    "at",
    "message_id",
    "subject",
    "account",
    "category",
    "track",
    "raised",
    "score",
    "category_provision",
    "audience",
    "reshares",
    "quotes",
    "replies",
    "impressions",
    "depth",
    "posted_at",
    "removed_at",
    "removed_by",
    "removal",
    "seconds_up",
    "still_up",
    "factor_code",
    "factor_effect",
    "factor_weight",
    "factor_evidence",
    "factor_provision",
];

/// Writes `revisions` (already shown as the reader may see them: pseudonymised if need be).
pub fn to_csv(revisions: &[FlagRecord]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for r in revisions {
        let e = &r.exposure;
        let opt = |v: Option<String>| v.unwrap_or_default();
        let head = [
            text(&r.flag_id),
            r.revision.to_string(),
            r.at.to_string(),
            text(&r.message_id),
            r.subject.as_str().to_owned(),
            text(&r.account),
            r.category.as_str().to_owned(),
            r.track.as_str().to_owned(),
            r.raised.to_string(),
            r.score.to_string(),
            text(&r.provision),
            r.reach.audience.to_string(),
            r.reach.reshares.to_string(),
            r.reach.quotes.to_string(),
            r.reach.replies.to_string(),
            opt(r.reach.impressions.map(|n| n.to_string())),
            r.reach.depth.to_string(),
            e.posted_at.to_string(),
            opt(e.removed_at.map(|t| t.to_string())),
            opt(e.removed_by.map(|b| b.as_str().to_owned())),
            opt(e.removal.map(|k| k.as_str().to_owned())),
            e.seconds_up.to_string(),
            e.still_up.to_string(),
        ];
        if r.factors.is_empty() {
            w.write_record(head.iter().map(String::as_str).chain([""; 5]))?;
        }
        for f in &r.factors {
            let factor = [
                text(&f.code),
                f.effect.as_str().to_owned(),
                f.weight.to_string(),
                text(&f.evidence),
                text(&f.provision),
            ];
            w.write_record(head.iter().chain(factor.iter()))?;
        }
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// A text cell that no spreadsheet will evaluate.
fn text(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused() {
        assert_eq!(text("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(text("@cmd"), "'@cmd");
        assert_eq!(text("u1"), "u1");
    }
}
