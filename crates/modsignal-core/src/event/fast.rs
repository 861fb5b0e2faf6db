//! A fast reader for the plain shape of canonical events, in front of serde.
//!
//! `serde_json`'s derived reader is general (any field order, escapes, unknown fields, every
//! number form) and was most of the cost of an event from bytes to flags. Producers write the
//! contract in one plain shape: known fields once each, strings without escapes, integers
//! without fraction or exponent. [`raw`] reads exactly that shape into the same [`RawEvent`]
//! serde would build, and gives up (`None`) on anything else, so the caller falls back to serde
//! and every unusual record, and every error with its message, is handled by serde as before.
//! The rule that keeps the two readers equal: whatever this reader accepts, serde accepts with
//! the same result; when in doubt, it gives up. A test compares both on generated records.

use std::borrow::Cow;

use super::{AccountStatus, Audience, Author, Category, FactorLabel, RawAt, RawEvent, RemovedBy, Scope};
use crate::time::Ts;

/// A cursor over one record. Every method returns `None` when the input leaves the plain shape.
struct Cursor<'a> {
    text: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.i).copied()
    }

    /// Skips JSON whitespace, the four bytes `serde_json` skips.
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.i += 1)
    }

    /// A literal such as `null` or `true`, which must be followed by a delimiter (checked by
    /// the caller, which expects `,`, `}` or `]` next).
    #[inline]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes()[self.i..].starts_with(word).then(|| self.i += word.len())
    }

    /// `null`, consumed if it is next.
    #[inline]
    fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null").is_some()
    }

    /// A string without escapes or control characters, borrowed from the input. The input is
    /// valid UTF-8 and `"` is ASCII, so the slice between the quotes is valid UTF-8 too.
    #[expect(
        clippy::inline_always,
        reason = "the decoder's innermost call, inlined in every field read as the throughput figures were measured"
    )]
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = &self.bytes()[start..];
        let len = string_end(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        Some(&self.text[start..start + len])
    }

    fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(|s| Some(Cow::Borrowed(s)))
    }

    fn opt_bool(&mut self) -> Option<Option<bool>> {
        if self.null() {
            Some(None)
        } else if self.peek() == Some(b't') {
            self.literal(b"true").map(|()| Some(true))
        } else {
            self.literal(b"false").map(|()| Some(false))
        }
    }

    /// A non-negative integer of at most 18 digits (so that it cannot overflow), without a
    /// leading zero, fraction or exponent, all of which serde reads differently or refuses.
    fn digits(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            // Wrapping: a longer number is refused below, whatever it added up to.
            n = n.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
            self.i += 1;
        }
        let len = self.i - start;
        if len == 0 || len > 18 || (len > 1 && self.bytes()[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        Some(n)
    }

    fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        self.digits().map(Some)
    }

    fn opt_u32(&mut self) -> Option<Option<u32>> {
        match self.opt_u64()? {
            Some(n) => u32::try_from(n).ok().map(Some),
            None => Some(None),
        }
    }

    /// A number read by `serde_json` itself, so that a fraction rounds exactly as serde rounds it.
    fn opt_f64(&mut self) -> Option<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        let start = self.i;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
            self.i += 1;
        }
        serde_json::from_str::<f64>(&self.text[start..self.i]).ok().map(Some)
    }

    /// `at` as the serde visitor reads it: integer milliseconds, or an RFC 3339 string.
    fn at(&mut self) -> Option<Option<RawAt>> {
        match self.peek()? {
            b'n' => self.null().then_some(None),
            b'"' => {
                let s = self.string()?;
                Some(Some(match Ts::parse_rfc3339(s) {
                    Some(t) => RawAt::Millis(t.0),
                    None => RawAt::Bad(s.to_owned()),
                }))
            }
            b'-' => {
                self.i += 1;
                let n = self.digits()?;
                // serde_json reads `-0` as a float zero, which the visitor keeps as text.
                (n != 0).then(|| Some(RawAt::Millis(-(n as i64))))
            }
            _ => self.digits().map(|n| Some(RawAt::Millis(n as i64))),
        }
    }

    /// A unit variant of an enum, written as its name.
    fn opt_enum<T>(&mut self, names: &[(&str, T)]) -> Option<Option<T>>
    where
        T: Copy,
    {
        if self.null() {
            return Some(None);
        }
        let s = self.string()?;
        names.iter().find(|(n, _)| *n == s).map(|&(_, v)| Some(v))
    }

    /// After a value inside an object or array: `,` (more follows, `true`) or `close` (`false`).
    #[inline]
    fn next_or(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let b = self.peek()?;
        self.i += 1;
        if b == b',' {
            self.ws();
            Some(true)
        } else if b == close {
            Some(false)
        } else {
            None
        }
    }

    fn author(&mut self) -> Option<Option<Author<'a>>> {
        if self.null() {
            return Some(None);
        }
        self.eat(b'{')?;
        self.ws();
        let (mut id, mut followers, mut minor) = (None, None, None);
        let mut seen = 0u8;
        if self.eat(b'}').is_none() {
            loop {
                let key = self.string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                let bit = match key {
                    "id" => {
                        id = Some(Cow::Borrowed(self.string()?));
                        1
                    }
                    "followers" => {
                        followers = self.opt_u32()?;
                        2
                    }
                    "minor" => {
                        minor = self.opt_bool()?;
                        4
                    }
                    _ => return None,
                };
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
                if !self.next_or(b'}')? {
                    break;
                }
            }
        }
        Some(Some(Author {
            id: id?,
            followers,
            minor,
        }))
    }

    fn mentions(&mut self) -> Option<Option<Vec<Cow<'a, str>>>> {
        if self.null() {
            return Some(None);
        }
        self.eat(b'[')?;
        self.ws();
        let mut list = Vec::new();
        if self.eat(b']').is_none() {
            loop {
                list.push(Cow::Borrowed(self.string()?));
                if !self.next_or(b']')? {
                    break;
                }
            }
        }
        Some(Some(list))
    }
}

/// The index of the first `"`, `\\` or control character in `bytes`, which ends a plain string.
/// Ids are tens of bytes long, so this looks at eight bytes at a time: in each 64-bit word, a
/// byte equal to `"` or `\\` or below 0x20 sets its high bit in `hits`. Borrows can set bits
/// above a true hit, never below it, so the lowest bit set marks the first such byte.
#[inline(always)]
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let v = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let hits = zero(v ^ (ONES * u64::from(b'"')))
            | zero(v ^ (ONES * u64::from(b'\\')))
            | (v.wrapping_sub(ONES * 0x20) & !v & HIGH);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes[i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|p| i + p)
}

const AUDIENCES: [(&str, Audience); 4] = [
    ("public", Audience::Public),
    ("followers", Audience::Followers),
    ("direct", Audience::Direct),
    ("group", Audience::Group),
];
const REMOVERS: [(&str, RemovedBy); 4] = [
    ("author", RemovedBy::Author),
    ("platform", RemovedBy::Platform),
    ("legal", RemovedBy::Legal),
    ("unknown", RemovedBy::Unknown),
];
const SCOPES: [(&str, Scope); 4] = [
    ("withheld", Scope::Withheld),
    ("followers_only", Scope::FollowersOnly),
    ("age_gated", Scope::AgeGated),
    ("limited", Scope::Limited),
];
const CATEGORIES: [(&str, Category); 4] = [
    ("credible_threat", Category::CredibleThreat),
    ("targeted_harassment", Category::TargetedHarassment),
    ("court_order_breach", Category::CourtOrderBreach),
    ("communications_offence", Category::CommunicationsOffence),
];
const FACTORS: [(&str, FactorLabel); 5] = [
    ("hate", FactorLabel::Hate),
    ("remorse", FactorLabel::Remorse),
    ("tolerable", FactorLabel::Tolerable),
    ("encouragement", FactorLabel::Encouragement),
    ("significant_impact", FactorLabel::SignificantImpact),
];
const STATUSES: [(&str, AccountStatus); 6] = [
    ("active", AccountStatus::Active),
    ("suspended", AccountStatus::Suspended),
    ("deactivated", AccountStatus::Deactivated),
    ("deleted", AccountStatus::Deleted),
    ("takendown", AccountStatus::Takendown),
    ("protected", AccountStatus::Protected),
];

/// Reads one record of the plain shape into `r` (empty), as serde would fill it, and says
/// whether it could: when it could not (the record is anything else), `r` holds part of the
/// record and the caller lets serde read it, errors included.
pub(super) fn read<'a>(text: &'a str, r: &mut RawEvent<'a>) -> bool {
    fill(text, r).is_some()
}

fn fill<'a>(text: &'a str, r: &mut RawEvent<'a>) -> Option<()> {
    let mut c = Cursor { text, i: 0 };
    c.ws();
    c.eat(b'{')?;
    c.ws();
    // serde refuses a field given twice; such a record goes to serde for its error.
    let mut seen = 0u32;
    if c.eat(b'}').is_none() {
        loop {
            let key = c.string()?;
            c.ws();
            c.eat(b':')?;
            c.ws();
            let bit = match key {
                "type" => {
                    r.kind = c.opt_str()?;
                    0
                }
                "at" => {
                    r.at = c.at()?;
                    1
                }
                "event_id" => {
                    r.event_id = c.opt_str()?;
                    2
                }
                "id" => {
                    r.id = c.opt_str()?;
                    3
                }
                "author" => {
                    r.author = c.author()?;
                    4
                }
                "audience" => {
                    r.audience = c.opt_enum(&AUDIENCES)?;
                    5
                }
                "reply_to" => {
                    r.reply_to = c.opt_str()?;
                    6
                }
                "quote_of" => {
                    r.quote_of = c.opt_str()?;
                    7
                }
                "mentions" => {
                    r.mentions = c.mentions()?;
                    8
                }
                "recipients" => {
                    r.recipients = c.mentions()?;
                    26
                }
                "reply_to_author" => {
                    r.reply_to_author = c.opt_str()?;
                    27
                }
                "quote_of_author" => {
                    r.quote_of_author = c.opt_str()?;
                    28
                }
                "of" => {
                    r.of = c.opt_str()?;
                    9
                }
                "via" => {
                    r.via = c.opt_str()?;
                    10
                }
                "by" => {
                    r.by = c.opt_enum(&REMOVERS)?;
                    11
                }
                "scope" => {
                    r.scope = c.opt_enum(&SCOPES)?;
                    12
                }
                "category" => {
                    r.category = c.opt_enum(&CATEGORIES)?;
                    13
                }
                "factor" => {
                    r.factor = c.opt_enum(&FACTORS)?;
                    14
                }
                "confidence" => {
                    r.confidence = c.opt_f64()?;
                    15
                }
                "source" => {
                    r.source = c.opt_str()?;
                    16
                }
                "target" => {
                    r.target = c.opt_str()?;
                    17
                }
                "negate" => {
                    r.negate = c.opt_bool()?;
                    18
                }
                "reporter" => {
                    r.reporter = c.opt_str()?;
                    19
                }
                "by_target" => {
                    r.by_target = c.opt_bool()?;
                    20
                }
                "count" => {
                    r.count = c.opt_u64()?;
                    21
                }
                "user" => {
                    r.user = c.opt_str()?;
                    22
                }
                "status" => {
                    r.status = c.opt_enum(&STATUSES)?;
                    23
                }
                "minor" => {
                    r.minor = c.opt_bool()?;
                    24
                }
                "followers" => {
                    r.followers = c.opt_u32()?;
                    25
                }
                // Unknown fields are skipped by serde, which knows every value's grammar.
                _ => return None,
            };
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            if !c.next_or(b'}')? {
                break;
            }
        }
    }
    c.ws();
    (c.i == text.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn raw(text: &str) -> Option<RawEvent<'_>> {
        let mut r = RawEvent::default();
        read(text, &mut r).then_some(r)
    }

    fn serde_raw(text: &str) -> Result<RawEvent<'_>, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// Whatever the fast reader accepts, serde accepts with the same fields (compared through
    /// `Debug`, which shows every field and does not tell a borrowed string from an owned one).
    fn agrees(text: &str) -> bool {
        match raw(text) {
            None => false,
            Some(fast) => {
                let slow =
                    serde_raw(text).unwrap_or_else(|e| panic!("serde refuses what the fast reader read: {text}: {e}"));
                assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{text}");
                true
            }
        }
    }

    #[test]
    fn a_plain_string_ends_at_the_first_quote_backslash_or_control_character() {
        let naive = |b: &[u8]| b.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        let mut cases: Vec<Vec<u8>> = vec![b"".to_vec(), b"abc".to_vec(), "caf\u{e9} \u{7f}\u{80}\u{ff}".into()];
        for len in 0..20 {
            for at in 0..=len {
                for special in [b'"', b'\\', 0x00, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0xa2, 0xdc, 0xff] {
                    let mut v = vec![b'a'; len];
                    if at < len {
                        v[at] = special;
                    }
                    // A second hit after the first must not move it.
                    v.push(b'"');
                    v.extend_from_slice(b"xx\\");
                    cases.push(v);
                }
            }
        }
        for c in cases {
            assert_eq!(string_end(&c), naive(&c), "{c:?}");
        }
    }

    #[test]
    fn reads_every_type_in_the_plain_shape() {
        let lines = [
            r#"{"type":"post","at":1767571200000,"id":"at://did:plc:x/app.bsky.feed.post/3m","author":{"id":"did:plc:x","followers":182},"mentions":["did:plc:y"]}"#,
            r#"{"type":"post","at":"2024-11-21T16:09:27.095Z","id":"m1","author":{"id":"u1","followers":120,"minor":false},"audience":"followers","reply_to":"m0","quote_of":"m9","mentions":["u2","u3"]}"#,
            r#"{"type":"reshare","at":1732206400000,"event_id":"e1","id":"r1","of":"m1","author":{"id":"u3"},"via":"r0"}"#,
            r#"{"type":"delete","at":1732206400000,"id":"m1","by":"platform"}"#,
            r#"{"type":"restrict","at":1732206400000,"id":"m1","by":"legal","scope":"withheld"}"#,
            r#"{"type":"restore","at":1732206400000,"id":"m1","by":"platform"}"#,
            r#"{"type":"label","at":1732206400000,"id":"m1","category":"credible_threat","confidence":0.9,"source":"clf","target":"u2"}"#,
            r#"{"type":"label","at":1732206400000,"id":"m1","factor":"hate","source":"rev","negate":true,"confidence":1}"#,
            r#"{"type":"report","at":1732206400000,"id":"m1","reporter":"u2","by_target":true}"#,
            r#"{"type":"impressions","at":1732206400000,"id":"m1","count":5000}"#,
            r#"{"type":"account","at":1732206400000,"user":"u1","status":"takendown","minor":true,"followers":7}"#,
            " { \"type\" : \"delete\" ,\n\t\"at\" : -5 , \"id\" : \"m\" , \"by\" : null , \"mentions\" : [ ] }\r\n",
            r"{}",
            r#"{"type":"teleport","at":17,"id":""}"#,
            r#"{"type":"post","at":"last tuesday","author":{"id":"u"}}"#,
        ];
        for line in lines {
            assert!(agrees(line), "the fast reader gave up on {line}");
        }
    }

    #[test]
    fn gives_up_on_what_serde_reads_differently_or_refuses() {
        let lines = [
            r#"{"type":"delete","at":1732206400000,"id":"m\u00e91"}"#,
            r#"{"type":"delete","at":1732206400000,"id":"m","extra":1}"#,
            r#"{"type":"delete","at":1732206400000,"id":"m","id":"n"}"#,
            r#"{"type":"delete","at":1732206400000.0,"id":"m"}"#,
            r#"{"type":"delete","at":-0,"id":"m"}"#,
            r#"{"type":"delete","at":01,"id":"m"}"#,
            r#"{"type":"delete","at":1e3,"id":"m"}"#,
            r#"{"type":"delete","at":1732206400000,"id":7}"#,
            r#"{"type":"impressions","at":1732206400000,"id":"m","count":-4}"#,
            r#"{"type":"impressions","at":1732206400000,"id":"m","count":99999999999999999999999}"#,
            r#"{"type":"post","at":1,"id":"m","author":{"id":"u","followers":4294967296}}"#,
            r#"{"type":"post","at":1,"id":"m","author":{"followers":4}}"#,
            r#"{"type":"post","at":1,"id":"m","author":["u",4,null]}"#,
            r#"{"type":"delete","at":1,"id":"m","by":"nobody"}"#,
            r#"{"type":"delete","at":1,"id":"m",}"#,
            r#"{"type":"delete","at":1,"id":"m"} x"#,
            r#"{"type":"delete","at":1,"id":"m"#,
            "not json",
            "",
        ];
        for line in lines {
            assert!(raw(line).is_none(), "the fast reader read {line}");
        }
    }

    /// Values a field takes, most of them valid for it.
    fn valid(key: &str) -> Vec<&'static str> {
        match key {
            "type" => vec![
                "\"post\"",
                "\"reshare\"",
                "\"label\"",
                "\"account\"",
                "\"delete\"",
                "null",
            ],
            "at" => vec![
                "1732206400000",
                "-1732206400000",
                "0",
                "7",
                "999999999999999999",
                "\"2024-11-21T16:09:27.095Z\"",
                "\"2024-11-21T16:09:27+01:00\"",
                "\"yesterday\"",
                "null",
            ],
            "author" => vec![
                "{\"id\":\"u1\"}",
                "{\"id\":\"u1\",\"followers\":5,\"minor\":true}",
                "{ \"minor\" : false , \"id\" : \"u1\" , \"followers\" : null }",
                "{\"id\":\"\",\"followers\":4294967295}",
                "null",
            ],
            "audience" => vec!["\"public\"", "\"followers\"", "\"direct\"", "\"group\"", "null"],
            "mentions" | "recipients" => vec!["[]", "[\"u2\"]", "[ \"u2\" , \"caf\u{e9}\" ]", "null"],
            "by" => vec!["\"author\"", "\"platform\"", "\"legal\"", "\"unknown\"", "null"],
            "scope" => vec![
                "\"withheld\"",
                "\"followers_only\"",
                "\"age_gated\"",
                "\"limited\"",
                "null",
            ],
            "category" => vec!["\"credible_threat\"", "\"communications_offence\"", "null"],
            "factor" => vec!["\"hate\"", "\"significant_impact\"", "null"],
            "confidence" => vec!["0.9", "1", "0", "0.30000000000000004", "1e-1", "1.5", "-0.5", "null"],
            "negate" | "by_target" | "minor" => vec!["true", "false", "null"],
            "count" => vec!["0", "5000", "999999999999999999", "null"],
            "followers" => vec!["0", "120", "4294967295", "null"],
            "status" => vec!["\"active\"", "\"takendown\"", "null"],
            _ => vec![
                "\"m1\"",
                "\"\"",
                "\"at://did:plc:x/app.bsky.feed.post/3m\"",
                "\"caf\u{e9}\"",
                "null",
            ],
        }
    }

    /// Pieces of records: keys serde knows (and one it does not), each mostly with a value
    /// valid for it and otherwise with a value of any kind, including the ones each field
    /// refuses.
    fn piece() -> impl Strategy<Value = String> {
        let keys = prop::sample::select(vec![
            "type",
            "at",
            "event_id",
            "id",
            "author",
            "audience",
            "reply_to",
            "quote_of",
            "mentions",
            "recipients",
            "reply_to_author",
            "quote_of_author",
            "of",
            "via",
            "by",
            "scope",
            "category",
            "factor",
            "confidence",
            "source",
            "target",
            "negate",
            "reporter",
            "by_target",
            "count",
            "user",
            "status",
            "minor",
            "followers",
            "other",
        ]);
        let any_value = prop::sample::select(vec![
            "null",
            "true",
            "false",
            "0",
            "7",
            "-0",
            "-12",
            "01",
            "1.5",
            "1e2",
            "4294967296",
            "1732206400000",
            "9999999999999999999",
            "18446744073709551616",
            "\"\"",
            "\"post\"",
            "\"m\\u00e9\"",
            "\"2024-11-21T16:09:27.095Z\"",
            "\"public\"",
            "\"withheld\"",
            "[]",
            "[\"u2\"]",
            "[null]",
            "[1]",
            "{}",
            "{\"id\":\"u1\"}",
            "{\"id\":\"u1\",\"id\":\"u2\"}",
            "{\"id\":\"u1\",\"x\":1}",
            "{\"followers\":5}",
            "{\"id\":null}",
            "[\"u1\",5,null]",
        ]);
        (
            keys,
            any::<prop::sample::Index>(),
            any_value,
            prop::bool::weighted(0.85),
            prop::sample::select(vec!["", "", " ", "\n", "\t "]),
        )
            .prop_map(|(k, i, other, use_valid, w)| {
                let v = if use_valid { *i.get(&valid(k)) } else { other };
                format!("{w}\"{k}\"{w}:{w}{v}{w}")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn whatever_the_fast_reader_reads_serde_reads_the_same(
            pieces in prop::collection::vec(piece(), 0..7),
            cut in any::<prop::sample::Index>(),
            junk in prop::sample::select(vec!["", "x", ",", "}", "\"", " ", "\\", "\u{1}", "{", "]"]),
            mutate in prop::bool::weighted(0.3),
        ) {
            let mut text = format!("{{{}}}", pieces.join(","));
            if mutate {
                // A byte inserted at a random place (on a character boundary): most such records
                // are refused by both readers, and the fast one must never read one serde refuses.
                let mut at = cut.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert_str(at, junk);
            }
            if raw(&text).is_some() {
                agrees(&text);
            }
        }
    }
}
