//! Mastodon's streaming API, in either of its two framings:
//!
//! - WebSocket frames, one per record: `{"stream":["public"],"event":"update","payload":"…"}`,
//!   where the payload is the Status encoded a second time as a JSON string (or, for `delete`,
//!   the status id as a string);
//! - server-sent events, one line per record: `event: update`, then `data: {…}` (the Status, or
//!   the bare id for `delete`), then a blank line; `:thump` heartbeats and other comments, and
//!   `id:`/`retry:` fields, are passed over. The [`crate::Reader`] pairs each `data:` line with
//!   the `event:` line before it, and a blank line ends the pairing as the SSE specification
//!   says. Mastodon writes each event's data on one line; a `data:` line is read as soon as it
//!   comes so that a bad one is reported with its own line number.
//!
//! Events:
//!
//! - `update` is a Status: a canonical `post` (`id`; author `account.id` with
//!   `account.followers_count`; `visibility` `public`/`unlisted` → public, `private` →
//!   followers, `direct` → direct; `in_reply_to_id` → `reply_to`; `in_reply_to_account_id` →
//!   `reply_to_author`; `mentions[].id`, each once,
//!   in the order first mentioned), at `created_at`. A Status with `reblog` set is a boost: its own `id` is the boost, a canonical
//!   `reshare` of `reblog.id` by its own account at its own `created_at`, preceded by the boosted
//!   Status as a `post` so that the original's author and followers are known.
//! - `status.update` (an edit) is the Status again, which the engine treats as a repeat.
//! - `delete` carries only the status id: a canonical `delete` with `by: unknown`, because a
//!   moderator's removal looks the same as the author's. It has no time: it takes the
//!   [`crate::Reader`]'s stream clock, never a time derived from its snowflake id (whoever wrote
//!   the record chose the id); before any record set the clock it is an error naming the field.
//! - Other events (`notification`, `conversation`, `filters_changed`, `announcement`, …) are
//!   skipped.

use std::borrow::Cow;

use modsignal_core::event::{Audience, Author, RemovedBy};
use modsignal_core::{Event, EventKind};
use serde::Deserialize;

use crate::common::{Id, Untimed, first_seen, followers, parse, parse_nested, pick_id, ts_rfc3339};
use crate::{Format, FormatError, Read, Skip};

#[derive(Deserialize)]
struct Envelope {
    event: Option<String>,
    payload: Option<String>,
}

/// The fields of a Status that modsignal reads; `content` (the text), `spoiler_text` and
/// media are not among them, so serde passes over them without keeping them.
#[derive(Deserialize)]
struct Status {
    id: Option<Id>,
    created_at: Option<String>,
    visibility: Option<String>,
    in_reply_to_id: Option<Id>,
    in_reply_to_account_id: Option<Id>,
    reblog: Option<Box<Status>>,
    mentions: Option<Vec<Mention>>,
    account: Option<Account>,
}

#[derive(Deserialize)]
struct Mention {
    id: Option<Id>,
}

#[derive(Deserialize)]
struct Account {
    id: Option<Id>,
    followers_count: Option<i64>,
}

/// The field names of a Status at the top of a payload or inside `reblog`, for errors.
struct Fields {
    id: &'static str,
    created_at: &'static str,
    visibility: &'static str,
    account: &'static str,
    account_id: &'static str,
}

const TOP: Fields = Fields {
    id: "id",
    created_at: "created_at",
    visibility: "visibility",
    account: "account",
    account_id: "account.id",
};
const REBLOG: Fields = Fields {
    id: "reblog.id",
    created_at: "reblog.created_at",
    visibility: "reblog.visibility",
    account: "reblog.account",
    account_id: "reblog.account.id",
};

pub(crate) fn read(
    text: &str,
    sse_event: &mut Option<String>,
    clock: &mut Untimed,
    out: &mut Vec<Event<'static>>,
) -> Result<Read, FormatError> {
    if text.starts_with('{') {
        let env: Envelope = parse(text)?;
        let event = env.event.ok_or(FormatError::Missing("event"))?;
        return dispatch(&event, env.payload.as_deref(), "payload", clock, out);
    }
    if text.starts_with(':') {
        return Ok(Read::Skipped(Skip::Heartbeat));
    }
    let (field, value) = match text.split_once(':') {
        Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
        None => (text, ""),
    };
    match field {
        "event" => {
            *sse_event = Some(value.to_owned());
            Ok(Read::Skipped(Skip::SseEvent))
        }
        "data" => {
            let event = sse_event.take().ok_or_else(|| FormatError::Invalid {
                field: "data",
                reason: "a `data:` line must follow an `event:` line".into(),
            })?;
            dispatch(&event, Some(value), "data", clock, out)
        }
        "id" | "retry" => Ok(Read::Skipped(Skip::SseField)),
        _ => Err(FormatError::Unrecognised {
            format: Format::Mastodon,
            what: format!(
                "expected a WebSocket frame or a server-sent-events line, found `{}`",
                text.chars().take(40).collect::<String>()
            ),
        }),
    }
}

fn dispatch(
    event: &str,
    payload: Option<&str>,
    field: &'static str,
    clock: &mut Untimed,
    out: &mut Vec<Event<'static>>,
) -> Result<Read, FormatError> {
    match event {
        "update" | "status.update" => {
            let payload = payload.ok_or(FormatError::Missing(field))?;
            let status: Status = parse_nested(payload, field)?;
            status_events(status, out)
        }
        "delete" => {
            let payload = payload.ok_or(FormatError::Missing(field))?.trim();
            // Over WebSocket the id is a JSON string inside the payload string for some
            // servers and proxies; over SSE it is bare. Both are read.
            let id = if payload.starts_with('"') {
                parse_nested::<String>(payload, field)?
            } else {
                payload.to_owned()
            };
            if id.is_empty() || id.contains(|c: char| c.is_whitespace() || c == '{') {
                return Err(FormatError::Invalid {
                    field,
                    reason: "a delete carries the status id alone".into(),
                });
            }
            let at = clock.stamp(field)?;
            out.push(Event {
                at,
                event_id: None,
                kind: EventKind::Delete {
                    id: Cow::Owned(id),
                    by: RemovedBy::Unknown,
                },
            });
            Ok(Read::Events(1))
        }
        _ => Ok(Read::Skipped(Skip::OtherEvent)),
    }
}

fn status_events(mut status: Status, out: &mut Vec<Event<'static>>) -> Result<Read, FormatError> {
    let Some(original) = status.reblog.take() else {
        out.push(post(status, &TOP)?);
        return Ok(Read::Events(1));
    };
    let of = pick_id(original.id.clone(), None, REBLOG.id)?;
    let original = post(*original, &REBLOG)?;
    let at = ts_rfc3339(status.created_at.as_deref(), TOP.created_at)?;
    let reshare = Event {
        at,
        event_id: None,
        kind: EventKind::Reshare {
            id: pick_id(status.id, None, TOP.id)?,
            of,
            author: author(status.account, &TOP)?,
            via: None,
        },
    };
    out.push(original);
    out.push(reshare);
    Ok(Read::Events(2))
}

fn author(account: Option<Account>, f: &Fields) -> Result<Author<'static>, FormatError> {
    let account = account.ok_or(FormatError::Missing(f.account))?;
    Ok(Author {
        id: pick_id(account.id, None, f.account_id)?,
        followers: followers(account.followers_count),
        minor: None,
    })
}

fn post(status: Status, f: &Fields) -> Result<Event<'static>, FormatError> {
    let at = ts_rfc3339(status.created_at.as_deref(), f.created_at)?;
    let audience = match status.visibility.as_deref() {
        // Mastodon always sends `visibility`; a Status without it is read as the default.
        None | Some("public" | "unlisted") => Audience::Public,
        Some("private") => Audience::Followers,
        Some("direct") => Audience::Direct,
        Some(other) => {
            return Err(FormatError::Invalid {
                field: f.visibility,
                reason: format!(
                    "`{}` is not public, unlisted, private or direct",
                    other.chars().take(32).collect::<String>()
                ),
            });
        }
    };
    let mentions = first_seen(
        status
            .mentions
            .into_iter()
            .flatten()
            .filter_map(|m| m.id.map(|Id(id)| id).filter(|id| !id.is_empty())),
    );
    Ok(Event {
        at,
        event_id: None,
        kind: EventKind::Post {
            id: pick_id(status.id, None, f.id)?,
            author: author(status.account, f)?,
            audience,
            reply_to: status
                .in_reply_to_id
                .map(|Id(s)| s)
                .filter(|s| !s.is_empty())
                .map(Cow::Owned),
            reply_to_author: status
                .in_reply_to_account_id
                .map(|Id(s)| s)
                .filter(|s| !s.is_empty())
                .map(Cow::Owned),
            quote_of: None,
            quote_of_author: None,
            // A `direct` status is delivered to the accounts it mentions: the engine takes
            // them as its recipients.
            mentions,
            recipients: Vec::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reader;

    const STATUS: &str = r#"{"id":"113521810937939154","created_at":"2024-11-21T16:09:27.095Z","in_reply_to_id":"113521810000000000","in_reply_to_account_id":"9","sensitive":false,"spoiler_text":"","visibility":"unlisted","language":"en","uri":"https://social.example/users/amy/statuses/113521810937939154","content":"<p>secret words</p>","reblog":null,"account":{"id":"1001","acct":"amy","followers_count":420},"mentions":[{"id":"2002","acct":"bob@other.example"},{"id":"2002","acct":"bob@other.example"}]}"#;

    fn read_all(lines: &[&str]) -> (Vec<String>, Vec<Result<Read, FormatError>>) {
        let mut r = Reader::new(Format::Mastodon);
        let mut out = Vec::new();
        let results = lines.iter().map(|l| r.read(l.as_bytes(), &mut out)).collect();
        (out.iter().map(modsignal_core::Event::to_json).collect(), results)
    }

    fn frame(event: &str, payload: &str) -> String {
        serde_json::json!({"stream": ["public"], "event": event, "payload": payload}).to_string()
    }

    #[test]
    fn a_websocket_update_with_a_double_encoded_payload() {
        let (evs, res) = read_all(&[&frame("update", STATUS)]);
        assert_eq!(res, vec![Ok(Read::Events(1))]);
        assert_eq!(
            evs[0],
            r#"{"type":"post","at":1732205367095,"id":"113521810937939154","author":{"id":"1001","followers":420},"reply_to":"113521810000000000","reply_to_author":"9","mentions":["2002"]}"#
        );
        assert!(!evs[0].contains("secret"));
    }

    #[test]
    fn server_sent_events_pair_event_and_data_lines() {
        let boost = r#"{"id":"113521872076800007","created_at":"2024-11-21T16:25:00Z","visibility":"public","account":{"id":"3003","followers_count":-1},"reblog":{"id":"113521810937939154","created_at":"2024-11-21T16:09:27.095Z","visibility":"public","account":{"id":"1001","followers_count":420},"mentions":[]}}"#;
        let (evs, res) = read_all(&[
            ":thump",
            "event: update",
            &format!("data: {boost}"),
            "",
            "event: delete",
            "data: 113521872076800007",
            "",
            "event: notification",
            r#"data: {"id":"1","type":"mention"}"#,
            "",
            "data: 1234",
            "id: 42",
        ]);
        use Read::*;
        assert_eq!(
            res[..10],
            [
                Ok(Skipped(Skip::Heartbeat)),
                Ok(Skipped(Skip::SseEvent)),
                Ok(Events(2)),
                Ok(Skipped(Skip::Blank)),
                Ok(Skipped(Skip::SseEvent)),
                Ok(Events(1)),
                Ok(Skipped(Skip::Blank)),
                Ok(Skipped(Skip::SseEvent)),
                Ok(Skipped(Skip::OtherEvent)),
                Ok(Skipped(Skip::Blank)),
            ]
        );
        assert_eq!(res[10].clone().unwrap_err().code(), "invalid_field");
        assert_eq!(res[11], Ok(Skipped(Skip::SseField)));
        assert_eq!(
            evs,
            [
                r#"{"type":"post","at":1732205367095,"id":"113521810937939154","author":{"id":"1001","followers":420}}"#,
                r#"{"type":"reshare","at":1732206300000,"id":"113521872076800007","author":{"id":"3003"},"of":"113521810937939154"}"#,
                // The delete carries no time: it takes the stream clock (the boost's time).
                r#"{"type":"delete","at":1732206300000,"id":"113521872076800007","by":"unknown"}"#,
            ]
        );
    }

    #[test]
    fn a_delete_is_never_dated_by_its_id() {
        // Ids encode a creation time that whoever wrote the record chose: 18446744073709551615
        // would be 2150 in Twitter's reading. Before any record set the stream clock, a delete
        // cannot be placed and is refused; after one, it takes the clock.
        let huge = "18446744073709551615";
        let cases: [(Vec<String>, Result<i64, &str>); 5] = [
            (vec![frame("delete", huge)], Err("payload")),
            (vec!["event: delete".into(), format!("data: {huge}")], Err("data")),
            (vec![frame("delete", "113521810937939154")], Err("payload")),
            (
                vec![frame("update", STATUS), frame("delete", huge)],
                Ok(1_732_205_367_095),
            ),
            (
                vec![
                    frame("update", STATUS),
                    "event: delete".into(),
                    format!("data: \"{huge}\""),
                ],
                Ok(1_732_205_367_095),
            ),
        ];
        for (lines, want) in cases {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let (evs, res) = read_all(&refs);
            let last = res.last().unwrap().clone();
            match want {
                Ok(at) => {
                    assert_eq!(last, Ok(Read::Events(1)), "{lines:?}");
                    let want = format!(r#"{{"type":"delete","at":{at},"id":"{huge}","by":"unknown"}}"#);
                    assert_eq!(evs.last().unwrap(), &want, "{lines:?}");
                }
                Err(field) => {
                    let err = last.unwrap_err();
                    assert_eq!(err.code(), "invalid_field", "{lines:?}");
                    assert_eq!(
                        err.to_string(),
                        format!(
                            "field `{field}`: the record carries no time and no earlier record set the stream clock"
                        ),
                        "{lines:?}"
                    );
                    assert!(evs.is_empty(), "{lines:?}");
                }
            }
        }
    }

    #[test]
    fn visibility_maps_to_audience_and_edits_repeat_the_post() {
        let mk = |v: &str| STATUS.replace(r#""visibility":"unlisted""#, &format!(r#""visibility":"{v}""#));
        let (evs, res) = read_all(&[
            &frame("status.update", &mk("private")),
            &frame("update", &mk("direct")),
            &frame("update", &mk("public")),
            &frame("update", &mk("local")),
        ]);
        assert!(evs[0].contains(r#""audience":"followers""#), "{}", evs[0]);
        assert!(evs[1].contains(r#""audience":"direct""#), "{}", evs[1]);
        assert!(!evs[2].contains("audience"), "{}", evs[2]);
        let err = res[3].clone().unwrap_err();
        assert!(err.to_string().contains("field `visibility`: `local`"), "{err}");
    }

    #[test]
    fn malformed_frames_name_what_was_wrong() {
        let cases = [
            (frame("update", "{not json"), "field `payload`: invalid JSON"),
            (
                frame("update", r#"{"id":"1","account":{"id":"2"}}"#),
                "missing field `created_at`",
            ),
            (
                frame("update", r#"{"id":"1","created_at":"2024-11-21T16:09:27Z"}"#),
                "missing field `account`",
            ),
            (
                frame(
                    "update",
                    r#"{"id":"1","created_at":"2024-11-21T16:09:27Z","account":{"id":"2"},"reblog":{"id":"3","account":{"id":"4"}}}"#,
                ),
                "missing field `reblog.created_at`",
            ),
            (
                r#"{"stream":["public"],"payload":"1"}"#.to_owned(),
                "missing field `event`",
            ),
            (r#"{"event":"update"}"#.to_owned(), "missing field `payload`"),
            ("hello there".to_owned(), "not a mastodon record"),
            // Longer ids than the engine keeps are refused as `decode` refuses them (a fuzz
            // finding: `fuzz/regressions/mastodon/long-account-id`), and a boost's original is
            // not written without its reshare.
            (
                frame(
                    "update",
                    &format!(
                        r#"{{"id":"1","created_at":"2024-11-21T16:09:27Z","account":{{"id":"{}"}}}}"#,
                        "7".repeat(5000)
                    ),
                ),
                "field `author.id`: 5000 bytes long; ids are at most 4096 bytes",
            ),
            (
                frame(
                    "update",
                    &format!(
                        r#"{{"id":"{}","created_at":"2024-11-21T16:09:27Z","account":{{"id":"2"}},"reblog":{{"id":"3","created_at":"2024-11-21T16:00:00Z","account":{{"id":"4"}}}}}}"#,
                        "8".repeat(4097)
                    ),
                ),
                "field `id`: 4097 bytes long",
            ),
        ];
        for (line, want) in cases {
            let (evs, res) = read_all(&[&line]);
            let err = res[0].clone().unwrap_err();
            assert!(err.to_string().contains(want), "{line}: {err}");
            assert!(evs.is_empty());
        }
    }
}
