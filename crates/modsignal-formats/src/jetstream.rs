//! Bluesky Jetstream: one JSON event per record, `{"did","time_us","kind"}` plus `commit`,
//! `account` or `identity`.
//!
//! - A commit to `app.bsky.feed.post` (create or update) is a canonical `post` by the repo's
//!   DID, public (Bluesky posts have no narrower audience), with `reply_to` from
//!   `record.reply.parent.uri`, `quote_of` from an embedded record (`app.bsky.embed.record`'s
//!   `embed.record.uri`, or `app.bsky.embed.recordWithMedia`'s `embed.record.record.uri`; only
//!   when it is a post, not a feed or a list), `reply_to_author` and `quote_of_author` from the
//!   DID in those URIs (a Bluesky reply mentions nobody), and `mentions` from the facets'
//!   `app.bsky.richtext.facet#mention` DIDs, each once, in the order first mentioned. An update
//!   gives the same post again, which the engine treats as a repeat.
//! - A commit to `app.bsky.feed.repost` is a `reshare` of `subject.uri`, through `via.uri`
//!   when present.
//! - Deleting a post or a repost is a `delete` by the author: only the repo's owner commits to
//!   it (a platform takedown of one post does not appear in Jetstream). The engine already
//!   remembers which original a repost id stands for, so the id is enough.
//! - An `account` event gives a canonical `account` status: `takendown` and `suspended`
//!   (removal of all the account's content by the platform), `deleted` and `deactivated`
//!   (removal by the author), `active: true` (`active`). Other statuses (`desynchronized`,
//!   `throttled`) say nothing about removal and are skipped.
//! - Commits to other collections (likes, follows, blocks, profiles, …) and `identity` events
//!   are skipped.
//!
//! A record's id is `at://{did}/{collection}/{rkey}`. The event time is `time_us` (when
//! Jetstream saw the event), never `record.createdAt`, which is whatever the client claimed.
//! Follower counts are not in the stream; a side input of canonical `account` events gives
//! them.

use std::borrow::Cow;

use modsignal_core::event::{AccountStatus, Audience, Author, RemovedBy};
use modsignal_core::{Event, EventKind, Ts};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::common::{first_seen, need_str, parse_nested, ts_ms};
use crate::{FormatError, Read, Skip};

pub const POST: &str = "app.bsky.feed.post";
pub const REPOST: &str = "app.bsky.feed.repost";
const EMBED_RECORD: &str = "app.bsky.embed.record";
const EMBED_RECORD_WITH_MEDIA: &str = "app.bsky.embed.recordWithMedia";
const MENTION: &str = "app.bsky.richtext.facet#mention";

#[derive(Deserialize)]
struct Line<'a> {
    did: Option<String>,
    time_us: Option<i64>,
    kind: Option<String>,
    #[serde(borrow)]
    commit: Option<Commit<'a>>,
    account: Option<Account>,
}

#[derive(Deserialize)]
struct Commit<'a> {
    operation: Option<String>,
    collection: Option<String>,
    rkey: Option<String>,
    /// Left unparsed until the collection is known: records of other collections have fields
    /// of the same names in other shapes (a follow's `subject` is a DID, not a reference).
    #[serde(borrow)]
    record: Option<&'a RawValue>,
}

/// The fields of a post or repost record that modsignal reads; `text` is not among them, so
/// serde passes over it without keeping it.
#[derive(Deserialize)]
struct Record {
    reply: Option<Reply>,
    embed: Option<Embed>,
    facets: Option<Vec<Facet>>,
    subject: Option<StrongRef>,
    via: Option<StrongRef>,
}

#[derive(Deserialize)]
struct Reply {
    parent: Option<StrongRef>,
}

#[derive(Deserialize)]
struct StrongRef {
    uri: Option<String>,
}

#[derive(Deserialize)]
struct Embed {
    #[serde(rename = "$type")]
    kind: Option<String>,
    record: Option<EmbedRecord>,
}

/// `embed.record`: a strong reference (`uri`) in `app.bsky.embed.record`, or an
/// `app.bsky.embed.record` holding one (`record.uri`) in `app.bsky.embed.recordWithMedia`.
#[derive(Deserialize)]
struct EmbedRecord {
    uri: Option<String>,
    record: Option<StrongRef>,
}

#[derive(Deserialize)]
struct Facet {
    features: Option<Vec<Feature>>,
}

#[derive(Deserialize)]
struct Feature {
    #[serde(rename = "$type")]
    kind: Option<String>,
    did: Option<String>,
}

#[derive(Deserialize)]
struct Account {
    active: Option<bool>,
    did: Option<String>,
    status: Option<String>,
}

/// The collection of an `at://` URI (`at://{did}/{collection}/{rkey}`).
/// The account that wrote the record an `at://` URI names: its authority, when that is a DID
/// (a handle can change hands, so it never stands for an account).
pub fn author_of(uri: &str) -> Option<&str> {
    let did = uri.strip_prefix("at://")?.split('/').next()?;
    (did.starts_with("did:") && did.len() > 4).then_some(did)
}

pub fn collection_of(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("at://")?;
    let mut parts = rest.split('/');
    let (_did, collection) = (parts.next()?, parts.next()?);
    Some(collection)
}

pub(crate) fn read(text: &str, out: &mut Vec<Event<'static>>) -> Result<Read, FormatError> {
    let line: Line<'_> = serde_json::from_str(text).map_err(|e| FormatError::Json(e.to_string()))?;
    let kind = line.kind.ok_or(FormatError::Missing("kind"))?;
    match kind.as_str() {
        "commit" | "account" => {}
        "identity" => return Ok(Read::Skipped(Skip::Identity)),
        _ => return Ok(Read::Skipped(Skip::OtherEvent)),
    }
    let did = need_str(line.did, "did")?;
    let at = ts_ms(
        line.time_us.ok_or(FormatError::Missing("time_us"))?.div_euclid(1000),
        "time_us",
    )?;
    if kind == "account" {
        let account = line.account.ok_or(FormatError::Missing("account"))?;
        return Ok(read_account(account, did, at, out));
    }
    let commit = line.commit.ok_or(FormatError::Missing("commit"))?;
    let collection = need_str(commit.collection, "commit.collection")?;
    if collection != POST && collection != REPOST {
        return Ok(Read::Skipped(Skip::OtherCollection));
    }
    let rkey = need_str(commit.rkey, "commit.rkey")?;
    let id: Cow<'static, str> = Cow::Owned(format!("at://{did}/{collection}/{rkey}"));
    let operation = commit.operation.ok_or(FormatError::Missing("commit.operation"))?;
    let kind = match operation.as_str() {
        "delete" => EventKind::Delete {
            id,
            by: RemovedBy::Author,
        },
        "create" | "update" => {
            let raw = commit.record.ok_or(FormatError::Missing("commit.record"))?;
            let record: Record = parse_nested(raw.get(), "commit.record")?;
            let author = Author {
                id: did,
                followers: None,
                minor: None,
            };
            if collection == POST {
                post(id, author, record)
            } else {
                let subject = record.subject.ok_or(FormatError::Missing("commit.record.subject"))?;
                EventKind::Reshare {
                    id,
                    of: need_str(subject.uri, "commit.record.subject.uri")?,
                    author,
                    via: record.via.and_then(|v| v.uri).filter(|u| !u.is_empty()).map(Cow::Owned),
                }
            }
        }
        other => {
            return Err(FormatError::Invalid {
                field: "commit.operation",
                reason: format!(
                    "`{}` is not create, update or delete",
                    other.chars().take(32).collect::<String>()
                ),
            });
        }
    };
    out.push(Event {
        at,
        event_id: None,
        kind,
    });
    Ok(Read::Events(1))
}

fn post(id: Cow<'static, str>, author: Author<'static>, record: Record) -> EventKind<'static> {
    let reply_to = record
        .reply
        .and_then(|r| r.parent)
        .and_then(|p| p.uri)
        .filter(|u| !u.is_empty());
    let quoted = record.embed.and_then(|e| match e.kind.as_deref() {
        Some(EMBED_RECORD) => e.record.and_then(|r| r.uri),
        Some(EMBED_RECORD_WITH_MEDIA) => e.record.and_then(|r| r.record).and_then(|r| r.uri),
        _ => None,
    });
    // An embedded record may be a feed, a list or a starter pack: only a post is a quote.
    let quote_of = quoted.filter(|u| collection_of(u) == Some(POST));
    let mentions = first_seen(
        record
            .facets
            .into_iter()
            .flatten()
            .flat_map(|f| f.features.into_iter().flatten())
            .filter(|feature| feature.kind.as_deref() == Some(MENTION))
            .filter_map(|feature| feature.did.filter(|d| !d.is_empty())),
    );
    let author_of = |u: &Option<String>| u.as_deref().and_then(author_of).map(|d| Cow::Owned(d.to_owned()));
    EventKind::Post {
        id,
        author,
        audience: Audience::Public,
        reply_to_author: author_of(&reply_to),
        reply_to: reply_to.map(Cow::Owned),
        quote_of_author: author_of(&quote_of),
        quote_of: quote_of.map(Cow::Owned),
        mentions,
        recipients: Vec::new(),
    }
}

fn read_account(account: Account, did: Cow<'static, str>, at: Ts, out: &mut Vec<Event<'static>>) -> Read {
    let status = if account.active == Some(true) {
        AccountStatus::Active
    } else {
        match account.status.as_deref() {
            Some("takendown") => AccountStatus::Takendown,
            Some("suspended") => AccountStatus::Suspended,
            Some("deleted") => AccountStatus::Deleted,
            Some("deactivated") => AccountStatus::Deactivated,
            // `desynchronized`, `throttled` and statuses added later describe hosting, not
            // removal; an inactive account with no status says nothing either.
            _ => return Read::Skipped(Skip::AccountStatus),
        }
    };
    let user = match account.did {
        Some(d) if !d.is_empty() => Cow::Owned(d),
        _ => did,
    };
    out.push(Event {
        at,
        event_id: None,
        kind: EventKind::Account {
            user,
            status: Some(status),
            minor: None,
            followers: None,
        },
    });
    Read::Events(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, Reader};

    fn read_all(lines: &[&str]) -> (Vec<Event<'static>>, Vec<Result<Read, FormatError>>) {
        let mut r = Reader::new(Format::Jetstream);
        let mut out = Vec::new();
        let results = lines.iter().map(|l| r.read(l.as_bytes(), &mut out)).collect();
        (out, results)
    }

    #[test]
    fn a_reply_with_a_mention_and_a_quote_with_media() {
        let (evs, res) = read_all(&[
            r#"{"did":"did:plc:aaa","time_us":1732206349000167,"kind":"commit","commit":{"rev":"3lbh","operation":"create","collection":"app.bsky.feed.post","rkey":"3lbhp","cid":"bafy1","record":{"$type":"app.bsky.feed.post","createdAt":"1999-01-01T00:00:00Z","text":"secret words","reply":{"root":{"uri":"at://did:plc:bbb/app.bsky.feed.post/3kx","cid":"b"},"parent":{"uri":"at://did:plc:bbb/app.bsky.feed.post/3ky","cid":"b"}},"facets":[{"index":{"byteStart":0,"byteEnd":4},"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://x.invalid"},{"$type":"app.bsky.richtext.facet#mention","did":"did:plc:ccc"}]},{"features":[{"$type":"app.bsky.richtext.facet#mention","did":"did:plc:ccc"}]}]}}}"#,
            r#"{"did":"did:plc:ddd","time_us":1732206350000000,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"q1","record":{"text":"x","embed":{"$type":"app.bsky.embed.recordWithMedia","media":{"$type":"app.bsky.embed.images","images":[]},"record":{"$type":"app.bsky.embed.record","record":{"uri":"at://did:plc:aaa/app.bsky.feed.post/3lbhp","cid":"c"}}}}}}"#,
            r#"{"did":"did:plc:ddd","time_us":1732206351000000,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"q2","record":{"embed":{"$type":"app.bsky.embed.record","record":{"uri":"at://did:plc:zzz/app.bsky.graph.list/l1","cid":"c"}}}}}"#,
        ]);
        assert!(res.iter().all(|r| *r == Ok(Read::Events(1))), "{res:?}");
        let json: Vec<String> = evs.iter().map(modsignal_core::Event::to_json).collect();
        assert_eq!(
            json[0],
            r#"{"type":"post","at":1732206349000,"id":"at://did:plc:aaa/app.bsky.feed.post/3lbhp","author":{"id":"did:plc:aaa"},"reply_to":"at://did:plc:bbb/app.bsky.feed.post/3ky","reply_to_author":"did:plc:bbb","mentions":["did:plc:ccc"]}"#
        );
        assert!(!json[0].contains("secret"));
        assert!(
            json[1]
                .contains(r#""quote_of":"at://did:plc:aaa/app.bsky.feed.post/3lbhp","quote_of_author":"did:plc:aaa""#),
            "{}",
            json[1]
        );
        assert!(!json[2].contains("quote_of"), "a list is not a quote: {}", json[2]);
    }

    #[test]
    fn reposts_deletes_accounts_and_skips() {
        let (evs, res) = read_all(&[
            r#"{"did":"did:plc:ddd","time_us":1732206400000000,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.repost","rkey":"3mbir","record":{"subject":{"uri":"at://did:plc:aaa/app.bsky.feed.post/3lbhp","cid":"bafy1"},"via":{"uri":"at://did:plc:eee/app.bsky.feed.repost/3mb0","cid":"bafy4"}}}}"#,
            r#"{"did":"did:plc:ddd","time_us":1732206500000000,"kind":"commit","commit":{"operation":"delete","collection":"app.bsky.feed.repost","rkey":"3mbir"}}"#,
            r#"{"did":"did:plc:fff","time_us":1757517640675638,"kind":"account","account":{"active":false,"did":"did:plc:fff","seq":1,"status":"takendown","time":"2025-09-10T15:20:40.439Z"}}"#,
            r#"{"did":"did:plc:fff","time_us":1757517640675639,"kind":"account","account":{"active":true,"did":"did:plc:fff","seq":2}}"#,
            r#"{"did":"did:plc:fff","time_us":1757517640675640,"kind":"account","account":{"active":false,"status":"throttled"}}"#,
            r#"{"did":"did:plc:fff","time_us":1757517640675641,"kind":"identity","identity":{"did":"did:plc:fff","handle":"x.bsky.social"}}"#,
            r#"{"did":"did:plc:fff","time_us":1757517640675642,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.like","rkey":"l","record":{"subject":{"uri":"at://x"}}}}"#,
            r#"{"did":"did:plc:fff","time_us":1757517640675643,"kind":"labels"}"#,
        ]);
        use Read::*;
        assert_eq!(
            res,
            vec![
                Ok(Events(1)),
                Ok(Events(1)),
                Ok(Events(1)),
                Ok(Events(1)),
                Ok(Skipped(Skip::AccountStatus)),
                Ok(Skipped(Skip::Identity)),
                Ok(Skipped(Skip::OtherCollection)),
                Ok(Skipped(Skip::OtherEvent)),
            ]
        );
        let json: Vec<String> = evs.iter().map(modsignal_core::Event::to_json).collect();
        assert_eq!(
            json,
            [
                r#"{"type":"reshare","at":1732206400000,"id":"at://did:plc:ddd/app.bsky.feed.repost/3mbir","author":{"id":"did:plc:ddd"},"of":"at://did:plc:aaa/app.bsky.feed.post/3lbhp","via":"at://did:plc:eee/app.bsky.feed.repost/3mb0"}"#,
                r#"{"type":"delete","at":1732206500000,"id":"at://did:plc:ddd/app.bsky.feed.repost/3mbir","by":"author"}"#,
                r#"{"type":"account","at":1757517640675,"user":"did:plc:fff","status":"takendown"}"#,
                r#"{"type":"account","at":1757517640675,"user":"did:plc:fff","status":"active"}"#,
            ]
        );
    }

    #[test]
    fn malformed_records_name_the_field() {
        let cases = [
            (r#"{"did":"did:plc:a","kind":"commit"}"#, "missing field `time_us`"),
            (r#"{"did":"did:plc:a","time_us":5,"kind":"commit"}"#, "field `time_us`"),
            (
                r#"{"did":"did:plc:a","time_us":1732206400000000,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.repost","rkey":"r","record":{}}}"#,
                "missing field `commit.record.subject`",
            ),
            (
                r#"{"did":"did:plc:a","time_us":1732206400000000,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"r"}}"#,
                "missing field `commit.record`",
            ),
            (
                r#"{"did":"did:plc:a","time_us":1732206400000000,"kind":"commit","commit":{"operation":"merge","collection":"app.bsky.feed.post","rkey":"r"}}"#,
                "field `commit.operation`",
            ),
            (
                r#"{"did":"","time_us":1732206400000000,"kind":"commit","commit":{}}"#,
                "field `did`: must not be empty",
            ),
            (
                r#"{"did":"did:plc:a","time_us":"soon","kind":"commit"}"#,
                "invalid JSON",
            ),
            (r#"{"time_us":1732206400000000}"#, "missing field `kind`"),
        ];
        for (line, want) in cases {
            let (evs, res) = read_all(&[line]);
            let err = res[0].clone().unwrap_err();
            assert!(err.to_string().contains(want), "{line}: {err}");
            assert!(evs.is_empty());
        }
    }

    #[test]
    fn collections_are_read_from_uris() {
        assert_eq!(collection_of("at://did:plc:a/app.bsky.feed.post/x"), Some(POST));
        assert_eq!(collection_of("at://did:plc:a"), None);
        assert_eq!(collection_of("https://bsky.app"), None);
    }
}
