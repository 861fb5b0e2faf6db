//! Twitter/X: v1.1 statuses and stream notices, and v2 compliance events, one JSON object per
//! record.
//!
//! Statuses (v1.1):
//!
//! - A status is a canonical `post` at `created_at` (`"Wed May 20 23:15:04 +0000 2015"`, or
//!   RFC 3339): author `user.id_str` with `user.followers_count`, followers-only when
//!   `user.protected`, `in_reply_to_status_id_str` → `reply_to`, `in_reply_to_user_id_str` →
//!   `reply_to_author`, `quoted_status_id_str` → `quote_of`, `quoted_status.user.id_str` (when
//!   the embedded status is complete) → `quote_of_author`, `entities.user_mentions[].id_str` (and those of `extended_tweet` for a long
//!   tweet) → `mentions`, each once, in the order first mentioned. An embedded `quoted_status` is also given as a `post` when it is
//!   complete, so that the quoted author's followers are known.
//! - A status with `retweeted_status` is a retweet: the original as a `post`, then a `reshare`
//!   of it whose id is the retweet's own.
//!
//! Stream notices (v1.1):
//!
//! - `delete` → a canonical `delete` at `timestamp_ms` (a string, or a number). It is `by:
//!   unknown`: v1.1 sends the same notice whoever removed the tweet. A delete that comes before
//!   its tweet is emitted all the same; the engine honours it when the tweet arrives.
//! - `status_withheld` → `restrict` with scope `withheld` by `legal` (a `restore` by `legal`
//!   when `withheld_in_countries` is empty: withheld nowhere), at `timestamp_ms` when the
//!   notice has one.
//! - `user_withheld` is skipped and counted: withholding an account in some countries is not
//!   the removal of all its content (which is what a canonical account status means to the
//!   engine), and the notice does not name the tweets, so no per-message restriction can be
//!   emitted either.
//! - `limit` is counted and skipped, as are `scrub_geo`, `disconnect`, `warning` and the other
//!   notices.
//!
//! Compliance events (v2, `{"data":{KIND:{…,"event_at":…}}}`), at `event_at`:
//!
//! - `delete` → `delete` by the author (v2 reports a platform's removal as `drop`);
//!   `withheld` → `restrict` withheld by legal; `drop` (removed from public view by the
//!   platform) → `restrict` with scope `withheld` by the platform, blocked for everyone;
//!   `undrop` → `restore` by the platform.
//! - `user_suspend` → account `suspended`; `user_delete` → account `deleted`;
//!   `user_unsuspend` and `user_undelete` → account `active`, which ends the removal.
//! - `user_protect` → account `protected`, and `user_unprotect` → `active`. Protecting an
//!   account makes all its tweets visible to its followers only: a partial restriction by the
//!   author, which leaves them up (`still_up` stays true, `exposure.restricted` says
//!   followers only) and earns only the followers-only share of the swift-removal credit.
//! - `user_withheld` is skipped: withholding an account in some countries is not the removal
//!   of its content, and the canonical contract has no per-country audience; `tweet_edit`,
//!   `profile_update`, `scrub_geo` and later kinds are skipped.
//!
//! Ids may be strings or numbers; the `_str` form is preferred when both are present (a number
//! above 2^53 from a JavaScript producer has lost digits) and every id is emitted as a string.
//! A notice without `timestamp_ms` takes the [`crate::Reader`]'s stream clock, never a time
//! derived from the tweet's snowflake id (whoever wrote the record chose the id); before any
//! record set the clock it is an error naming `timestamp_ms`.

use std::borrow::Cow;

use modsignal_core::event::{AccountStatus, Audience, Author, RemovedBy, Scope};
use modsignal_core::{Event, EventKind, Ts};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::common::{Id, Untimed, first_seen, followers, parse, pick_id, ts_ms, ts_rfc3339};
use crate::{Format, FormatError, Read, Skip};

/// A record: a status, a v1.1 notice or a v2 compliance event. One shape for all, read in one
/// pass; the fields present say which it is. `text` and `full_text` are not among them, so
/// serde passes over them without keeping them.
#[derive(Deserialize)]
struct Record {
    id: Option<Id>,
    id_str: Option<Id>,
    created_at: Option<String>,
    user: Option<User>,
    retweeted_status: Option<Box<Record>>,
    quoted_status: Option<Box<Record>>,
    quoted_status_id: Option<Id>,
    quoted_status_id_str: Option<Id>,
    in_reply_to_status_id: Option<Id>,
    in_reply_to_status_id_str: Option<Id>,
    in_reply_to_user_id: Option<Id>,
    in_reply_to_user_id_str: Option<Id>,
    entities: Option<Entities>,
    extended_tweet: Option<Extended>,

    delete: Option<DeleteNotice>,
    status_withheld: Option<StatusWithheld>,
    user_withheld: Option<IgnoredAny>,
    limit: Option<IgnoredAny>,
    scrub_geo: Option<IgnoredAny>,
    disconnect: Option<IgnoredAny>,
    warning: Option<IgnoredAny>,
    friends: Option<IgnoredAny>,
    friends_str: Option<IgnoredAny>,
    event: Option<IgnoredAny>,
    control: Option<IgnoredAny>,
    direct_message: Option<IgnoredAny>,

    data: Option<Compliance>,
}

#[derive(Deserialize)]
struct User {
    id: Option<Id>,
    id_str: Option<Id>,
    followers_count: Option<i64>,
    protected: Option<bool>,
}

#[derive(Deserialize)]
struct Entities {
    user_mentions: Option<Vec<UserMention>>,
}

#[derive(Deserialize)]
struct Extended {
    entities: Option<Entities>,
}

#[derive(Deserialize)]
struct UserMention {
    id: Option<Id>,
    id_str: Option<Id>,
}

#[derive(Deserialize)]
struct DeleteNotice {
    status: Option<TweetRef>,
    timestamp_ms: Option<Id>,
    direct_message: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct TweetRef {
    id: Option<Id>,
    id_str: Option<Id>,
}

#[derive(Deserialize)]
struct StatusWithheld {
    id: Option<Id>,
    id_str: Option<Id>,
    withheld_in_countries: Option<Vec<String>>,
    timestamp_ms: Option<Id>,
}

#[derive(Deserialize)]
struct Compliance {
    delete: Option<TweetEvent>,
    withheld: Option<TweetEvent>,
    drop: Option<TweetEvent>,
    undrop: Option<TweetEvent>,
    user_suspend: Option<UserEvent>,
    user_unsuspend: Option<UserEvent>,
    user_delete: Option<UserEvent>,
    user_undelete: Option<UserEvent>,
    user_protect: Option<UserEvent>,
    user_unprotect: Option<UserEvent>,
    user_withheld: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct TweetEvent {
    tweet: Option<TweetRef>,
    event_at: Option<String>,
    withheld_in_countries: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct UserEvent {
    user: Option<TweetRef>,
    event_at: Option<String>,
}

/// The field names of a status at the top of a record or nested in it, for errors.
struct Fields {
    id: &'static str,
    created_at: &'static str,
    user: &'static str,
    user_id: &'static str,
}

const TOP: Fields = Fields {
    id: "id_str",
    created_at: "created_at",
    user: "user",
    user_id: "user.id_str",
};
const RETWEETED: Fields = Fields {
    id: "retweeted_status.id_str",
    created_at: "retweeted_status.created_at",
    user: "retweeted_status.user",
    user_id: "retweeted_status.user.id_str",
};
const QUOTED: Fields = Fields {
    id: "quoted_status.id_str",
    created_at: "quoted_status.created_at",
    user: "quoted_status.user",
    user_id: "quoted_status.user.id_str",
};

pub(crate) fn read(text: &str, clock: &mut Untimed, out: &mut Vec<Event<'static>>) -> Result<Read, FormatError> {
    let r: Record = parse(text)?;
    if let Some(data) = r.data {
        return compliance(data, out);
    }
    if let Some(d) = r.delete {
        let Some(status) = d.status else {
            return match d.direct_message {
                Some(_) => Ok(Read::Skipped(Skip::OtherNotice)),
                None => Err(FormatError::Missing("delete.status")),
            };
        };
        let id = pick_id(status.id_str, status.id, "delete.status.id_str")?;
        let at = notice_time(d.timestamp_ms, clock, "delete.timestamp_ms")?;
        out.push(ev(
            at,
            EventKind::Delete {
                id,
                by: RemovedBy::Unknown,
            },
        ));
        return Ok(Read::Events(1));
    }
    if let Some(w) = r.status_withheld {
        let id = pick_id(w.id_str, w.id, "status_withheld.id")?;
        let at = notice_time(w.timestamp_ms, clock, "status_withheld.timestamp_ms")?;
        out.push(ev(at, withheld(id, w.withheld_in_countries.as_deref())));
        return Ok(Read::Events(1));
    }
    if r.user_withheld.is_some() {
        return Ok(Read::Skipped(Skip::UserWithheld));
    }
    if r.limit.is_some() {
        return Ok(Read::Skipped(Skip::Limit));
    }
    let other_notice = [
        &r.scrub_geo,
        &r.disconnect,
        &r.warning,
        &r.friends,
        &r.friends_str,
        &r.event,
        &r.control,
        &r.direct_message,
    ];
    if other_notice.iter().any(|n| n.is_some()) {
        return Ok(Read::Skipped(Skip::OtherNotice));
    }
    // A status has an author or a creation time; a record with neither (an id alone, say) is
    // not one, and is most likely another format's.
    if r.user.is_none() && r.created_at.is_none() {
        return Err(FormatError::Unrecognised {
            format: Format::Twitter,
            what: "neither a status (`id_str`, `user`, `created_at`), a stream notice nor a compliance event (`data`)"
                .into(),
        });
    }
    status_events(r, out)
}

fn ev(at: Ts, kind: EventKind<'static>) -> Event<'static> {
    Event {
        at,
        event_id: None,
        kind,
    }
}

/// `timestamp_ms` as written (a string, or a number), or the stream clock when it is missing:
/// never the time the tweet's snowflake id encodes, which whoever wrote the record chose.
fn notice_time(stamp: Option<Id>, clock: &mut Untimed, field: &'static str) -> Result<Ts, FormatError> {
    match stamp {
        Some(Id(s)) => {
            let ms: i64 = s.parse().map_err(|_| FormatError::Invalid {
                field,
                reason: format!("`{}` is not milliseconds", s.chars().take(32).collect::<String>()),
            })?;
            ts_ms(ms, field)
        }
        None => clock.stamp(field),
    }
}

fn withheld(id: Cow<'static, str>, countries: Option<&[String]>) -> EventKind<'static> {
    match countries {
        Some([]) => EventKind::Restore {
            id,
            by: RemovedBy::Legal,
        },
        _ => EventKind::Restrict {
            id,
            by: RemovedBy::Legal,
            scope: Scope::Withheld,
        },
    }
}

fn compliance(data: Compliance, out: &mut Vec<Event<'static>>) -> Result<Read, FormatError> {
    let start = out.len();
    // Each compliance kind about a tweet, with the canonical change it stands for.
    type Change = fn(Cow<'static, str>, Option<&[String]>) -> EventKind<'static>;
    let tweet_events: [(Option<TweetEvent>, Change); 4] = [
        (data.delete, |id, _| EventKind::Delete {
            id,
            by: RemovedBy::Author,
        }),
        (data.withheld, withheld),
        (data.drop, |id, _| EventKind::Restrict {
            id,
            by: RemovedBy::Platform,
            scope: Scope::Withheld,
        }),
        (data.undrop, |id, _| EventKind::Restore {
            id,
            by: RemovedBy::Platform,
        }),
    ];
    for (e, change) in tweet_events {
        let Some(e) = e else { continue };
        let at = ts_rfc3339(e.event_at.as_deref(), "event_at")?;
        let tweet = e.tweet.ok_or(FormatError::Missing("tweet"))?;
        let id = pick_id(tweet.id_str, tweet.id, "tweet.id")?;
        let kind = change(id, e.withheld_in_countries.as_deref());
        out.push(ev(at, kind));
    }
    let user_events = [
        (AccountStatus::Suspended, data.user_suspend),
        (AccountStatus::Active, data.user_unsuspend),
        (AccountStatus::Deleted, data.user_delete),
        (AccountStatus::Active, data.user_undelete),
        (AccountStatus::Protected, data.user_protect),
        (AccountStatus::Active, data.user_unprotect),
    ];
    for (status, e) in user_events {
        let Some(e) = e else { continue };
        let at = ts_rfc3339(e.event_at.as_deref(), "event_at")?;
        let user = e.user.ok_or(FormatError::Missing("user"))?;
        out.push(ev(
            at,
            EventKind::Account {
                user: pick_id(user.id_str, user.id, "user.id")?,
                status: Some(status),
                minor: None,
                followers: None,
            },
        ));
    }
    match out.len() - start {
        0 if data.user_withheld.is_some() => Ok(Read::Skipped(Skip::UserWithheld)),
        0 => Ok(Read::Skipped(Skip::OtherCompliance)),
        n => Ok(Read::Events(n)),
    }
}

fn status_events(mut r: Record, out: &mut Vec<Event<'static>>) -> Result<Read, FormatError> {
    let start = out.len();
    match r.retweeted_status.take() {
        Some(original) => {
            let of = pick_id(original.id_str.clone(), original.id.clone(), RETWEETED.id)?;
            post_events(*original, &RETWEETED, out)?;
            let at = created_at(r.created_at.as_deref(), TOP.created_at)?;
            let reshare = EventKind::Reshare {
                id: pick_id(r.id_str, r.id, TOP.id)?,
                of,
                author: author(r.user, &TOP)?,
                via: None,
            };
            out.push(ev(at, reshare));
        }
        None => post_events(r, &TOP, out)?,
    }
    Ok(Read::Events(out.len() - start))
}

/// The quoted status (when complete), then the status itself as a post.
fn post_events(mut r: Record, f: &Fields, out: &mut Vec<Event<'static>>) -> Result<(), FormatError> {
    let mut quoted_author = None;
    if let Some(quoted) = r.quoted_status.take()
        && let Ok(q) = post(*quoted, &QUOTED, None)
    {
        // An incomplete embedded quote (a withheld or deleted one comes without its user) is
        // left out: the quote itself still links to it through `quoted_status_id_str`.
        if let EventKind::Post { author, .. } = &q.kind {
            quoted_author = Some(author.id.clone());
        }
        out.push(q);
    }
    out.push(post(r, f, quoted_author)?);
    Ok(())
}

/// A status as a canonical post; `quoted_author` wrote the status it quotes, when known.
fn post(r: Record, f: &Fields, quoted_author: Option<Cow<'static, str>>) -> Result<Event<'static>, FormatError> {
    let at = created_at(r.created_at.as_deref(), f.created_at)?;
    let protected = r.user.as_ref().and_then(|u| u.protected) == Some(true);
    let lists = [
        r.entities.and_then(|e| e.user_mentions),
        r.extended_tweet.and_then(|x| x.entities).and_then(|e| e.user_mentions),
    ];
    let mentions = first_seen(
        lists
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|m| pick_id(m.id_str, m.id, "user_mentions.id_str").ok())
            .map(Cow::into_owned),
    );
    let opt = |s: Option<Id>, n: Option<Id>| pick_id(s, n, "").ok();
    Ok(ev(
        at,
        EventKind::Post {
            id: pick_id(r.id_str, r.id, f.id)?,
            author: author(r.user, f)?,
            audience: if protected {
                Audience::Followers
            } else {
                Audience::Public
            },
            reply_to: opt(r.in_reply_to_status_id_str, r.in_reply_to_status_id),
            reply_to_author: opt(r.in_reply_to_user_id_str, r.in_reply_to_user_id),
            quote_of: opt(r.quoted_status_id_str, r.quoted_status_id),
            quote_of_author: quoted_author,
            mentions,
            recipients: Vec::new(),
        },
    ))
}

fn author(user: Option<User>, f: &Fields) -> Result<Author<'static>, FormatError> {
    let user = user.ok_or(FormatError::Missing(f.user))?;
    Ok(Author {
        id: pick_id(user.id_str, user.id, f.user_id)?,
        followers: followers(user.followers_count),
        minor: None,
    })
}

/// `created_at` in v1.1's form (`Wed May 20 23:15:04 +0000 2015`) or in RFC 3339 (v2's).
fn created_at(s: Option<&str>, field: &'static str) -> Result<Ts, FormatError> {
    let text = s.ok_or(FormatError::Missing(field))?;
    match chrono::DateTime::parse_from_str(text, "%a %b %d %H:%M:%S %z %Y") {
        Ok(d) => ts_ms(d.timestamp_millis(), field),
        Err(_) => ts_rfc3339(Some(text), field).map_err(|_| FormatError::Invalid {
            field,
            reason: format!(
                "`{}` is neither `Wed May 20 23:15:04 +0000 2015` nor RFC 3339",
                text.chars().take(64).collect::<String>()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reader;

    fn read_all(lines: &[&str]) -> (Vec<String>, Vec<Result<Read, FormatError>>) {
        let mut r = Reader::new(Format::Twitter);
        let mut out = Vec::new();
        let results = lines.iter().map(|l| r.read(l.as_bytes(), &mut out)).collect();
        (out.iter().map(modsignal_core::Event::to_json).collect(), results)
    }

    #[test]
    fn a_reply_that_quotes_and_mentions() {
        let (evs, res) = read_all(&[
            r#"{"created_at":"Wed May 20 23:15:04 +0000 2015","id":601139823917547520,"id_str":"601139823917547520","text":"secret words","truncated":true,"in_reply_to_status_id":601139000000000000,"in_reply_to_status_id_str":"601139000000000001","in_reply_to_user_id_str":"7","user":{"id":12,"id_str":"12","followers_count":5000,"protected":false},"quoted_status_id_str":"600000000000000000","quoted_status":{"created_at":"Tue May 19 10:00:00 +0000 2015","id_str":"600000000000000000","text":"q","user":{"id_str":"99","followers_count":10}},"entities":{"user_mentions":[{"id":7,"id_str":"7"}]},"extended_tweet":{"full_text":"secret words in full","entities":{"user_mentions":[{"id_str":"7"},{"id":8}]}}}"#,
        ]);
        assert_eq!(res, vec![Ok(Read::Events(2))]);
        assert_eq!(
            evs,
            [
                r#"{"type":"post","at":1432029600000,"id":"600000000000000000","author":{"id":"99","followers":10}}"#,
                // The `_str` reply id is preferred over the number, which a JavaScript producer
                // may have rounded.
                r#"{"type":"post","at":1432163704000,"id":"601139823917547520","author":{"id":"12","followers":5000},"reply_to":"601139000000000001","reply_to_author":"7","quote_of":"600000000000000000","quote_of_author":"99","mentions":["7","8"]}"#,
            ]
        );
        assert!(evs.iter().all(|e| !e.contains("secret")));
    }

    #[test]
    fn a_retweet_gives_the_original_then_the_reshare() {
        let (evs, res) = read_all(&[
            r#"{"created_at":"Thu May 21 08:00:00 +0000 2015","id":601273000000000000,"user":{"id":55,"followers_count":80},"retweeted_status":{"created_at":"Wed May 20 23:15:04 +0000 2015","id":601139823917547520,"user":{"id":12,"followers_count":5000,"protected":true}}}"#,
        ]);
        assert_eq!(res, vec![Ok(Read::Events(2))]);
        assert_eq!(
            evs,
            [
                r#"{"type":"post","at":1432163704000,"id":"601139823917547520","author":{"id":"12","followers":5000},"audience":"followers"}"#,
                r#"{"type":"reshare","at":1432195200000,"id":"601273000000000000","author":{"id":"55","followers":80},"of":"601139823917547520"}"#,
            ]
        );
    }

    #[test]
    fn notices() {
        let (evs, res) = read_all(&[
            r#"{"delete":{"status":{"id":229197184271278081,"id_str":"229197184271278081","user_id":84824529,"user_id_str":"84824529"},"timestamp_ms":"1482242573699"}}"#,
            r#"{"delete":{"status":{"id":229197184271278082},"timestamp_ms":1482242573700}}"#,
            r#"{"status_withheld":{"id":1234567890,"user_id":123456,"withheld_in_countries":["DE","AR"]}}"#,
            r#"{"status_withheld":{"id_str":"1234567890","user_id":123456,"withheld_in_countries":[],"timestamp_ms":"1482242580000"}}"#,
            r#"{"user_withheld":{"id":123456,"withheld_in_countries":["DE"]}}"#,
            r#"{"limit":{"track":1234}}"#,
            r#"{"scrub_geo":{"user_id":14090452,"up_to_status_id":23260136625}}"#,
            r#"{"delete":{"direct_message":{"id":1}}}"#,
        ]);
        use Read::*;
        assert_eq!(
            res,
            vec![
                Ok(Events(1)),
                Ok(Events(1)),
                Ok(Events(1)),
                Ok(Events(1)),
                Ok(Skipped(Skip::UserWithheld)),
                Ok(Skipped(Skip::Limit)),
                Ok(Skipped(Skip::OtherNotice)),
                Ok(Skipped(Skip::OtherNotice)),
            ]
        );
        assert_eq!(
            evs,
            [
                r#"{"type":"delete","at":1482242573699,"id":"229197184271278081","by":"unknown"}"#,
                r#"{"type":"delete","at":1482242573700,"id":"229197184271278082","by":"unknown"}"#,
                // No time of its own: the stream clock, the newest time two records reached
                // (the first delete's; only one record reached the second delete's).
                r#"{"type":"restrict","at":1482242573699,"id":"1234567890","by":"legal","scope":"withheld"}"#,
                r#"{"type":"restore","at":1482242580000,"id":"1234567890","by":"legal"}"#,
            ]
        );
    }

    #[test]
    fn notices_without_a_time_are_never_dated_by_their_id() {
        // 18446744073709551615 would be 2150 as a snowflake; whoever wrote the record chose it.
        const HUGE: &str = "18446744073709551615";
        let tweet =
            r#"{"created_at":"Wed May 20 23:15:04 +0000 2015","id_str":"601139823917547520","user":{"id_str":"12"}}"#;
        let untimed = [
            (
                format!(r#"{{"delete":{{"status":{{"id":{HUGE},"user_id":1}}}}}}"#),
                "delete.timestamp_ms",
                format!(r#"{{"type":"delete","at":1432163704000,"id":"{HUGE}","by":"unknown"}}"#),
            ),
            (
                format!(r#"{{"delete":{{"status":{{"id_str":"{HUGE}","user_id_str":"1"}}}}}}"#),
                "delete.timestamp_ms",
                format!(r#"{{"type":"delete","at":1432163704000,"id":"{HUGE}","by":"unknown"}}"#),
            ),
            (
                format!(r#"{{"status_withheld":{{"id":{HUGE},"user_id":1,"withheld_in_countries":["DE"]}}}}"#),
                "status_withheld.timestamp_ms",
                format!(r#"{{"type":"restrict","at":1432163704000,"id":"{HUGE}","by":"legal","scope":"withheld"}}"#),
            ),
            (
                format!(r#"{{"status_withheld":{{"id_str":"{HUGE}","withheld_in_countries":[]}}}}"#),
                "status_withheld.timestamp_ms",
                format!(r#"{{"type":"restore","at":1432163704000,"id":"{HUGE}","by":"legal"}}"#),
            ),
        ];
        for (notice, field, want) in untimed {
            // First in the stream: no clock, so the notice is refused with the field named.
            let (evs, res) = read_all(&[&notice]);
            let err = res[0].clone().unwrap_err();
            assert_eq!(err.code(), "invalid_field", "{notice}");
            assert_eq!(
                err.to_string(),
                format!("field `{field}`: the record carries no time and no earlier record set the stream clock")
            );
            assert!(evs.is_empty(), "{notice}");
            // After a timed record: the stream clock, the tweet's `created_at`.
            let (evs, res) = read_all(&[tweet, &notice]);
            assert_eq!(res[1], Ok(Read::Events(1)), "{notice}");
            assert_eq!(evs[1], want);
        }
    }

    #[test]
    fn compliance_events() {
        let c = |kind: &str, body: &str| {
            format!(r#"{{"data":{{"{kind}":{{{body},"event_at":"2022-12-23T12:34:56.789Z"}}}}}}"#)
        };
        let tweet = r#""tweet":{"id":"1606263542893858816","author_id":"44"}"#;
        let user = r#""user":{"id":"44"}"#;
        let lines = [
            c("delete", tweet),
            c("withheld", &format!(r#"{tweet},"withheld_in_countries":["IN"]"#)),
            c("drop", tweet),
            c("undrop", tweet),
            c("user_suspend", user),
            c("user_unsuspend", user),
            c("user_delete", user),
            c("user_protect", user),
            c("user_unprotect", user),
            c("user_withheld", &format!(r#"{user},"withheld_in_countries":["IN"]"#)),
            c(
                "tweet_edit",
                &format!(r#"{tweet},"initial_tweet_id":"1","edit_tweet_ids":["1","2"]"#),
            ),
            c("user_profile_modification", user),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (evs, res) = read_all(&refs);
        let skips: Vec<&Result<Read, FormatError>> = res[9..].iter().collect();
        assert_eq!(
            skips,
            [
                &Ok(Read::Skipped(Skip::UserWithheld)),
                &Ok(Read::Skipped(Skip::OtherCompliance)),
                &Ok(Read::Skipped(Skip::OtherCompliance)),
            ]
        );
        let at = r#""at":1671798896789"#;
        let t = r#""id":"1606263542893858816""#;
        let want = [
            format!(r#"{{"type":"delete",{at},{t},"by":"author"}}"#),
            format!(r#"{{"type":"restrict",{at},{t},"by":"legal","scope":"withheld"}}"#),
            format!(r#"{{"type":"restrict",{at},{t},"by":"platform","scope":"withheld"}}"#),
            format!(r#"{{"type":"restore",{at},{t},"by":"platform"}}"#),
            format!(r#"{{"type":"account",{at},"user":"44","status":"suspended"}}"#),
            format!(r#"{{"type":"account",{at},"user":"44","status":"active"}}"#),
            format!(r#"{{"type":"account",{at},"user":"44","status":"deleted"}}"#),
            format!(r#"{{"type":"account",{at},"user":"44","status":"protected"}}"#),
            format!(r#"{{"type":"account",{at},"user":"44","status":"active"}}"#),
        ];
        assert_eq!(evs, want);
    }

    #[test]
    fn malformed_records_name_what_was_wrong() {
        let cases = [
            (r#"{"id_str":"1","user":{"id_str":"2"}}"#, "missing field `created_at`"),
            (
                r#"{"id_str":"1","created_at":"yesterday","user":{"id_str":"2"}}"#,
                "field `created_at`: `yesterday` is neither",
            ),
            (
                r#"{"id_str":"1","created_at":"Wed May 20 23:15:04 +0000 2015"}"#,
                "missing field `user`",
            ),
            (
                r#"{"id_str":"1","created_at":"Wed May 20 23:15:04 +0000 2015","user":{"id":2.5}}"#,
                "float",
            ),
            (
                r#"{"id_str":"3","created_at":"Wed May 20 23:15:04 +0000 2015","user":{"id":2},"retweeted_status":{"id_str":"1","user":{"id":2}}}"#,
                "missing field `retweeted_status.created_at`",
            ),
            (r#"{"delete":{"timestamp_ms":"1"}}"#, "missing field `delete.status`"),
            (
                r#"{"delete":{"status":{"id_str":"5"},"timestamp_ms":"soon"}}"#,
                "field `delete.timestamp_ms`",
            ),
            (
                r#"{"data":{"delete":{"tweet":{"id":"5"}}}}"#,
                "missing field `event_at`",
            ),
            (r#"{"hello":"world"}"#, "not a twitter record"),
            (r#"{"type":"post","at":1}"#, "not a twitter record"),
        ];
        for (line, want) in cases {
            let (evs, res) = read_all(&[line]);
            let err = res[0].clone().unwrap_err();
            assert!(err.to_string().contains(want), "{line}: {err}");
            assert!(evs.is_empty(), "{line}");
        }
    }
}
