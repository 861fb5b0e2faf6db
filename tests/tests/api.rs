//! The HTTP API (`modsignal-api`) over flags the real engine wrote for the scenarios: access
//! control by role, pseudonyms, filters, pagination, idempotent ingestion, exports, health and
//! metrics, a message's resharers from its cohorts, and the `OpenAPI` document against the
//! router. Requests go through the router itself
//! (`tower::ServiceExt::oneshot`), headers and all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use crate::api_support::{ANALYST, KEY, LIAISON, cohort_pages, config, scenario_flags, state, store_with};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use modsignal_api::{CSV_HEADER, FlagStore, Ingested, Pseudonymiser, route_paths, router};
use modsignal_core::event::Category;
use modsignal_core::{Cohort, Flag, Policy};
use modsignal_tests::run_lines;
use serde_json::Value;
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

async fn call(app: &Router, method: Method, path: &str, token: Option<&str>) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("a request"))
        .await
        .expect("the router always answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body")
        .to_vec();
    Reply { status, headers, body }
}

async fn get(app: &Router, path: &str, token: Option<&str>) -> Reply {
    call(app, Method::GET, path, token).await
}

/// The newest revision of each flag, and every revision by flag id, as the engine wrote them.
fn by_id(flags: &[Flag]) -> BTreeMap<String, Vec<&Flag>> {
    let mut m: BTreeMap<String, Vec<&Flag>> = BTreeMap::new();
    for f in flags {
        m.entry(f.flag_id.clone()).or_default().push(f);
    }
    for v in m.values_mut() {
        v.sort_by_key(|f| f.revision);
        v.dedup_by_key(|f| f.revision);
    }
    m
}

fn app(pseudonymise_liaison: bool, flags: &[Flag]) -> (Router, Arc<FlagStore>) {
    let store = store_with(flags);
    (router(state(&config(pseudonymise_liaison), store.clone())), store)
}

/// Every page of `route` (a path with `?limit=` already in it) and `query`, following
/// `next_cursor` until the last, each checked to be 200.
async fn follow_cursors(app: &Router, route: &str, query: &str, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut path = route.to_owned();
        if !query.is_empty() {
            path.push('&');
            path.push_str(query);
        }
        if let Some(c) = &cursor {
            let _ = write!(path, "&cursor={c}");
        }
        let r = get(app, &path, Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
        let page = r.json();
        let next = page["next_cursor"].as_str().map(str::to_owned);
        out.push(page);
        match next {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
    panic!("{route} never ended");
}

/// Every flag of a list, following its cursors.
async fn list_all(app: &Router, query: &str, token: &str, limit: usize) -> Vec<Value> {
    let pages = follow_cursors(app, &format!("/api/v1/flags?limit={limit}"), query, token).await;
    let mut out = Vec::new();
    for page in pages {
        let flags = page["flags"].as_array().expect("flags");
        assert!(flags.len() <= limit);
        out.extend(flags.iter().cloned());
    }
    out
}

#[tokio::test]
async fn health_readiness_and_metrics_need_no_token_and_the_api_does() {
    let flags = scenario_flags();
    let (app, store) = app(false, &flags);
    store.set_ready(false);
    assert_eq!(get(&app, "/healthz", None).await.status, StatusCode::OK);
    assert_eq!(get(&app, "/readyz", None).await.status, StatusCode::SERVICE_UNAVAILABLE);
    store.set_ready(true);
    assert_eq!(get(&app, "/readyz", None).await.status, StatusCode::OK);

    let some_id = &flags[0].flag_id;
    let message = &flags[0].message_id;
    for path in [
        "/api/v1/session".to_owned(),
        "/api/v1/flags".to_owned(),
        format!("/api/v1/flags/{some_id}"),
        format!("/api/v1/flags/{some_id}/export.json"),
        format!("/api/v1/flags/{some_id}/export.csv"),
        format!("/api/v1/messages/{message}"),
        format!("/api/v1/messages/{message}/resharers"),
    ] {
        for (token, error) in [(None, None), (Some("not-a-token-at-all-0000"), Some("invalid_token"))] {
            let r = get(&app, &path, token).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
            let challenge = r.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
            assert!(challenge.starts_with("Bearer "), "{challenge}");
            assert_eq!(challenge.contains("invalid_token"), error.is_some(), "{challenge}");
            assert_eq!(r.json()["error"], "unauthorized");
        }
        // A token given without the Bearer scheme is no token.
        let mut req = Request::get(&path).body(Body::empty()).unwrap();
        req.headers_mut()
            .insert(header::AUTHORIZATION, ANALYST.parse().unwrap());
        assert_eq!(
            app.clone().oneshot(req).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(get(&app, &path, Some(ANALYST)).await.status, StatusCode::OK, "{path}");
        // The scheme's name is case-insensitive.
        let mut req = Request::get(&path).body(Body::empty()).unwrap();
        req.headers_mut()
            .insert(header::AUTHORIZATION, format!("bEaReR {ANALYST}").parse().unwrap());
        assert_eq!(app.clone().oneshot(req).await.unwrap().status(), StatusCode::OK);
    }

    let metrics = get(&app, "/metrics", None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text();
    let distinct = by_id(&flags).len();
    assert!(text.contains(&format!("modsignal_api_flags {distinct}\n")), "{text}");
    assert!(text.contains("modsignal_api_ready 1\n"), "{text}");
    assert!(
        text.contains(r#"modsignal_http_requests_total{code="401",route="/api/v1/flags/{flag_id}"} 3"#),
        "requests are counted by route template, never by the id asked for: {text}"
    );
    assert!(!text.contains(some_id.as_str()), "no flag id in a label");
}

#[tokio::test]
async fn the_api_is_read_only() {
    let flags = scenario_flags();
    let (app, _) = app(false, &flags);
    for path in route_paths() {
        let path = path
            .replace("{flag_id}", &flags[0].flag_id)
            .replace("{message_id}", &flags[0].message_id);
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let r = call(&app, method.clone(), &path, Some(ANALYST)).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn an_analyst_sees_every_flag_and_a_liaison_officer_only_raised_ones() {
    let flags = scenario_flags();
    let ids = by_id(&flags);
    let (app, _) = app(false, &flags);

    let analyst = list_all(&app, "", ANALYST, 500).await;
    let seen: BTreeSet<&str> = analyst.iter().map(|s| s["flag"]["flag_id"].as_str().unwrap()).collect();
    assert_eq!(seen, ids.keys().map(String::as_str).collect());
    for shown in &analyst {
        let id = shown["flag"]["flag_id"].as_str().unwrap();
        let newest = ids[id].last().unwrap();
        assert_eq!(
            shown["flag"]["revision"], newest.revision,
            "the newest revision is listed"
        );
        assert_eq!(shown["current"], true);
    }

    let ever_raised: BTreeSet<&str> = ids
        .iter()
        .filter(|(_, v)| v.iter().any(|f| f.raised))
        .map(|(k, _)| k.as_str())
        .collect();
    let never_raised: Vec<&str> = ids
        .keys()
        .map(String::as_str)
        .filter(|k| !ever_raised.contains(k))
        .collect();
    assert!(
        !ever_raised.is_empty() && !never_raised.is_empty(),
        "the scenarios have both kinds"
    );

    let liaison = list_all(&app, "", LIAISON, 500).await;
    let seen: BTreeSet<&str> = liaison.iter().map(|s| s["flag"]["flag_id"].as_str().unwrap()).collect();
    assert_eq!(seen, ever_raised);
    assert!(liaison.iter().all(|s| s["flag"]["raised"] == true));
    assert!(list_all(&app, "raised=false", LIAISON, 500).await.is_empty());

    for id in &never_raised {
        for path in [
            format!("/api/v1/flags/{id}"),
            format!("/api/v1/flags/{id}/export.json"),
            format!("/api/v1/flags/{id}/export.csv"),
        ] {
            assert_eq!(
                get(&app, &path, Some(LIAISON)).await.status,
                StatusCode::NOT_FOUND,
                "{path}"
            );
            assert_eq!(get(&app, &path, Some(ANALYST)).await.status, StatusCode::OK, "{path}");
        }
    }
    for id in &ever_raised {
        let h = get(&app, &format!("/api/v1/flags/{id}"), Some(LIAISON)).await.json();
        let revisions = h["revisions"].as_array().unwrap();
        assert!(
            !revisions.is_empty() && revisions.iter().all(|r| r["raised"] == true),
            "{id}"
        );
        let newest = ids[*id].last().unwrap();
        let newest_raised = ids[*id].iter().rev().find(|f| f.raised).unwrap();
        assert_eq!(h["flag"]["revision"], newest_raised.revision);
        assert_eq!(
            h["current"], newest.raised,
            "current says whether a newer, unraised revision exists"
        );
        let all = get(&app, &format!("/api/v1/flags/{id}"), Some(ANALYST)).await.json();
        assert_eq!(all["revisions"].as_array().unwrap().len(), ids[*id].len());
    }

    // A message whose flags were never raised does not exist for a liaison officer; one with a
    // raised author flag and unraised resharer flags shows the author's only.
    let never_message = &ids[never_raised[0]][0].message_id;
    let path = format!("/api/v1/messages/{never_message}");
    if !ever_raised.iter().any(|id| &ids[*id][0].message_id == never_message) {
        assert_eq!(get(&app, &path, Some(LIAISON)).await.status, StatusCode::NOT_FOUND);
    }
    let m3 = get(&app, "/api/v1/messages/m3", Some(LIAISON)).await.json();
    let m3_all = get(&app, "/api/v1/messages/m3", Some(ANALYST)).await.json();
    assert!(
        m3["flags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["flag"]["raised"] == true)
    );
    assert!(m3["history"].as_array().unwrap().iter().all(|h| h["raised"] == true));
    assert!(m3["flags"].as_array().unwrap().len() < m3_all["flags"].as_array().unwrap().len());
}

#[tokio::test]
async fn a_message_shows_its_reach_exposure_and_every_subjects_flags() {
    let flags = scenario_flags();
    let ids = by_id(&flags);
    let (app, _) = app(false, &flags);
    let m = get(&app, "/api/v1/messages/m3", Some(ANALYST)).await.json();
    let mine: Vec<&Vec<&Flag>> = ids.values().filter(|v| v[0].message_id == "m3").collect();
    let author = mine
        .iter()
        .find(|v| v[0].subject == modsignal_core::Subject::Author)
        .unwrap();
    let newest_author = author.last().unwrap();
    assert_eq!(m["message_id"], "m3");
    assert_eq!(m["author"], "u10");
    assert_eq!(m["reach"]["audience"], newest_author.reach.audience);
    assert_eq!(m["exposure"]["still_up"], newest_author.exposure.still_up);
    let shown = m["flags"].as_array().unwrap();
    assert_eq!(shown.len(), mine.len());
    assert_eq!(shown[0]["flag"]["subject"], "author");
    let audiences: Vec<u64> = shown[1..]
        .iter()
        .map(|s| s["flag"]["reach"]["audience"].as_u64().unwrap())
        .collect();
    assert!(
        audiences.windows(2).all(|w| w[0] >= w[1]),
        "resharers by reach: {audiences:?}"
    );
    let history = m["history"].as_array().unwrap();
    assert_eq!(history.len(), mine.iter().map(|v| v.len()).sum::<usize>());
    let times: Vec<&str> = history.iter().map(|h| h["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "history in time order");
    assert_eq!(
        get(&app, "/api/v1/messages/no-such-message", Some(ANALYST))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// Every string anywhere in a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k.clone());
            strings(x, out);
        }),
        _ => {}
    }
}

#[tokio::test]
async fn a_pseudonymised_role_never_sees_an_account_id() {
    let flags = scenario_flags();
    let accounts: BTreeSet<&str> = flags.iter().map(|f| f.account.as_str()).collect();
    let p = Pseudonymiser::new(KEY.as_bytes());
    let (app, _) = app(true, &flags);

    let session = get(&app, "/api/v1/session", Some(LIAISON)).await.json();
    assert_eq!(session["pseudonymised"], true);
    let listed = list_all(&app, "", LIAISON, 500).await;
    let mut bodies: Vec<Value> = listed.clone();
    for s in &listed {
        let id = s["flag"]["flag_id"].as_str().unwrap();
        for path in [format!("/api/v1/flags/{id}"), format!("/api/v1/flags/{id}/export.json")] {
            bodies.push(get(&app, &path, Some(LIAISON)).await.json());
        }
        let message = s["flag"]["message_id"].as_str().unwrap();
        bodies.push(
            get(&app, &format!("/api/v1/messages/{message}"), Some(LIAISON))
                .await
                .json(),
        );
        let csv = get(&app, &format!("/api/v1/flags/{id}/export.csv"), Some(LIAISON))
            .await
            .text();
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        for row in reader.records() {
            let row = row.expect("a CSV row");
            assert!(row.iter().all(|cell| !accounts.contains(cell)), "{row:?}");
            assert!(row[5].starts_with("pseud:"));
        }
    }
    for body in &bodies {
        let mut all = Vec::new();
        strings(body, &mut all);
        for s in &all {
            assert!(
                !accounts.contains(s.as_str()),
                "account id {s} shown to a pseudonymised role"
            );
        }
    }
    for s in &listed {
        let account = s["flag"]["account"].as_str().unwrap();
        let real = flags.iter().find(|f| f.flag_id == s["flag"]["flag_id"]).unwrap();
        assert_eq!(account, p.account(&real.account), "the configured key's pseudonym");
    }

    // Filters take the pseudonym, never the id.
    let first = flags.iter().find(|f| f.raised).unwrap();
    let pseudonym = p.account(&first.account);
    let by_pseudonym = list_all(&app, &format!("account={pseudonym}"), LIAISON, 500).await;
    assert!(!by_pseudonym.is_empty());
    assert!(by_pseudonym.iter().all(|s| s["flag"]["account"] == pseudonym.as_str()));
    let refused = get(&app, &format!("/api/v1/flags?account={}", first.account), Some(LIAISON)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        list_all(&app, "account=pseud:00000000000000000000000000000000", LIAISON, 500)
            .await
            .is_empty()
    );

    // The analyst is not pseudonymised: ids as written.
    let analyst = list_all(&app, &format!("account={}", first.account), ANALYST, 500).await;
    assert!(!analyst.is_empty() && analyst.iter().all(|s| s["flag"]["account"] == first.account.as_str()));
}

#[tokio::test]
async fn at_protocol_message_ids_are_pseudonymised_and_found_by_their_pseudonym() {
    // A Bluesky post's id names its author's account: a pseudonymised reader sees the pseudonym
    // in its place, and asks for the message by the id it was shown.
    let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    let id = format!("at://{did}/app.bsky.feed.post/3l3qo2vutsw2b");
    let events = [
        format!(
            r#"{{"type":"post","at":"2026-01-05T10:00:00Z","id":"{id}","author":{{"id":"{did}","followers":300}}}}"#
        ),
        format!(
            r#"{{"type":"label","at":"2026-01-05T10:01:00Z","id":"{id}","category":"credible_threat","confidence":0.9,"source":"reviewer"}}"#
        ),
        format!(r#"{{"type":"delete","at":"2026-01-05T10:30:00Z","id":"{id}","by":"platform"}}"#),
    ];
    let (flags, errors) = run_lines(&Policy::default(), &events);
    assert!(errors.is_empty(), "{errors:?}");
    let (app, _) = app(true, &flags);
    let p = Pseudonymiser::new(KEY.as_bytes());
    let shown_id = p.message_id(&id);
    assert!(!shown_id.contains(did));

    let listed = list_all(&app, "", LIAISON, 10).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["flag"]["message_id"], shown_id.as_str());
    assert_eq!(listed[0]["flag"]["account"], p.account(did).as_str());

    let encoded = |s: &str| s.replace(':', "%3A").replace('/', "%2F");
    let m = get(&app, &format!("/api/v1/messages/{}", encoded(&shown_id)), Some(LIAISON)).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text());
    assert_eq!(m.json()["message_id"], shown_id.as_str());
    assert!(!m.text().contains(did));
    let real = get(&app, &format!("/api/v1/messages/{}", encoded(&id)), Some(LIAISON)).await;
    assert_eq!(
        real.status,
        StatusCode::NOT_FOUND,
        "the real id is not one this role was shown"
    );
    let analyst = get(&app, &format!("/api/v1/messages/{}", encoded(&id)), Some(ANALYST)).await;
    assert_eq!(analyst.json()["message_id"], id.as_str());
}

#[tokio::test]
async fn filters_and_pages() {
    let flags = scenario_flags();
    let ids = by_id(&flags);
    let (app, _) = app(false, &flags);
    let newest: Vec<&Flag> = ids.values().map(|v| *v.last().unwrap()).collect();

    let all = list_all(&app, "", ANALYST, 500).await;
    // Newest first, then by flag id.
    let keys: Vec<(String, String)> = all
        .iter()
        .map(|s| {
            (
                s["flag"]["at"].as_str().unwrap().to_owned(),
                s["flag"]["flag_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        keys.windows(2)
            .all(|w| w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1)),
        "{keys:?}"
    );
    // Small pages give the same flags in the same order, none twice.
    for limit in [1, 2, 3, 7] {
        let paged = list_all(&app, "", ANALYST, limit).await;
        assert_eq!(paged, all, "pages of {limit}");
    }

    let count = |pred: &dyn Fn(&Flag) -> bool| newest.iter().filter(|f| pred(f)).count();
    for (query, expected) in [
        (
            "category=credible_threat",
            count(&|f| f.category.as_str() == "credible_threat"),
        ),
        (
            "category=communications_offence",
            count(&|f| f.category.as_str() == "communications_offence"),
        ),
        ("track=high_threshold", count(&|f| f.track.as_str() == "high_threshold")),
        ("track=robust", count(&|f| f.track.as_str() == "robust")),
        ("raised=true", count(&|f| f.raised)),
        ("raised=false", count(&|f| !f.raised)),
        ("account=u10", count(&|f| f.account == "u10")),
        (
            "raised=true&track=robust&category=targeted_harassment",
            count(&|f| f.raised && f.category.as_str() == "targeted_harassment"),
        ),
    ] {
        assert!(expected > 0, "{query} should match something in the scenarios");
        for limit in [2, 500] {
            let got = list_all(&app, query, ANALYST, limit).await;
            assert_eq!(got.len(), expected, "{query}, pages of {limit}");
        }
    }

    // Time range on the flag's `at`: `from` inclusive, `to` exclusive.
    let mut times: Vec<String> = newest.iter().map(|f| f.at.to_string()).collect();
    times.sort();
    times.dedup();
    let mid = &times[times.len() / 2];
    let before = list_all(&app, &format!("to={mid}"), ANALYST, 2).await;
    let after = list_all(&app, &format!("from={mid}"), ANALYST, 2).await;
    assert_eq!(before.len(), count(&|f| f.at.to_string() < *mid));
    assert_eq!(after.len(), count(&|f| f.at.to_string() >= *mid));
    assert_eq!(before.len() + after.len(), all.len());
    let (lo, hi) = (&times[1], &times[times.len() - 2]);
    let between = list_all(&app, &format!("from={lo}&to={hi}"), ANALYST, 3).await;
    assert_eq!(
        between.len(),
        count(&|f| f.at.to_string() >= *lo && f.at.to_string() < *hi)
    );

    for bad in [
        "limit=0",
        "limit=501",
        "limit=ten",
        "category=rudeness",
        "track=fast",
        "raised=maybe",
        "from=yesterday",
        "cursor=abc",
        "categroy=credible_threat",
    ] {
        let r = get(&app, &format!("/api/v1/flags?{bad}"), Some(ANALYST)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.json()["error"], "bad_request", "{bad}");
    }
    // Without a limit, the configured default page.
    let page = get(&app, "/api/v1/flags", Some(ANALYST)).await.json();
    assert_eq!(page["flags"].as_array().unwrap().len(), all.len().min(50));
}

#[tokio::test]
async fn ingestion_is_idempotent_and_order_free() {
    let flags = scenario_flags();
    let (forward, _) = app(false, &flags);

    // The same flags as JSON, newest first, every one twice: the store must end the same.
    let store = Arc::new(FlagStore::default());
    let mut outcomes = BTreeMap::new();
    for f in flags.iter().rev() {
        for _ in 0..2 {
            let o = store.ingest_json(&f.to_json()).expect("a valid flag");
            *outcomes.entry(format!("{o:?}")).or_insert(0) += 1;
        }
    }
    let stats = store.stats();
    assert_eq!(outcomes[&format!("{:?}", Ingested::Duplicate)], flags.len());
    assert_eq!(stats.duplicates_total, flags.len() as u64);
    assert_eq!(stats.flags, by_id(&flags).len() as u64);
    assert_eq!(stats.revisions, flags.len() as u64);
    let backward = router(state(&config(false), store.clone()));

    let a = list_all(&forward, "", ANALYST, 500).await;
    let b = list_all(&backward, "", ANALYST, 500).await;
    assert_eq!(a, b);
    for s in &a {
        let path = format!("/api/v1/flags/{}", s["flag"]["flag_id"].as_str().unwrap());
        let x = get(&forward, &path, Some(ANALYST)).await.json();
        let y = get(&backward, &path, Some(ANALYST)).await.json();
        assert_eq!(x, y, "{path}");
        // What the API serves is the flag as the engine wrote it, field for field.
        let newest = flags
            .iter()
            .filter(|f| f.flag_id == x["flag"]["flag_id"])
            .max_by_key(|f| f.revision)
            .unwrap();
        assert_eq!(x["flag"], serde_json::from_str::<Value>(&newest.to_json()).unwrap());
    }

    // Bad input is refused with a typed error and counted, never stored.
    let bad = [
        "not json".to_owned(),
        r#"{"schema":"modsignal.flag/2"}"#.to_owned(),
        flags[0].to_json().replace(&flags[0].flag_id, "NOT-HEX"),
        flags[0].to_json().replace("modsignal.flag/1", "modsignal.flag/9"),
    ];
    for text in &bad {
        assert!(store.ingest_json(text).is_err(), "{text}");
    }
    assert_eq!(store.stats().rejected_total, bad.len() as u64);
    assert_eq!(store.stats().flags, stats.flags);
}

#[tokio::test]
async fn exports_give_one_flag_as_json_and_csv_for_an_evidence_file() {
    let flags = scenario_flags();
    let ids = by_id(&flags);
    let (app, _) = app(false, &flags);
    // The flag with the most revisions, removed, so the export has a history and a removal.
    let (id, revisions) = ids
        .iter()
        .filter(|(_, v)| v.last().unwrap().exposure.removed_at.is_some())
        .max_by_key(|(_, v)| v.len())
        .unwrap();

    let json = get(&app, &format!("/api/v1/flags/{id}/export.json"), Some(ANALYST)).await;
    assert_eq!(json.status, StatusCode::OK);
    assert_eq!(
        json.headers[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"modsignal-flag-{id}.json\"").as_str()
    );
    let body = json.json();
    let detail = get(&app, &format!("/api/v1/flags/{id}"), Some(ANALYST)).await.json();
    for key in ["flag", "revisions", "current", "revisions_thinned"] {
        assert_eq!(body[key], detail[key], "{key}");
    }
    assert_eq!(body["exported_for_role"], "analyst");
    assert!(body["exported_at"].as_str().unwrap().ends_with('Z'));

    let csv = get(&app, &format!("/api/v1/flags/{id}/export.csv"), Some(ANALYST)).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(
        csv.headers[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"modsignal-flag-{id}.csv\"").as_str()
    );
    let mut reader = csv::Reader::from_reader(csv.body.as_slice());
    let header_row: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header_row, CSV_HEADER);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let expected: usize = revisions.iter().map(|f| f.factors.len().max(1)).sum();
    assert_eq!(rows.len(), expected, "one row per revision and factor");
    let col = |name: &str| CSV_HEADER.iter().position(|h| *h == name).unwrap();
    // The newest revision's rows carry its factors, evidence and all, as the flag gives them.
    let newest = revisions.last().unwrap();
    let last_rows: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|r| r[col("revision")] == newest.revision.to_string())
        .collect();
    assert_eq!(last_rows.len(), newest.factors.len());
    for (row, factor) in last_rows.iter().zip(&newest.factors) {
        assert_eq!(&row[col("factor_code")], factor.code);
        assert_eq!(
            &row[col("factor_evidence")],
            factor.evidence,
            "quoting keeps commas and quotes"
        );
        assert_eq!(row[col("factor_weight")].parse::<f64>().unwrap(), factor.weight);
        assert_eq!(&row[col("removed_at")], newest.exposure.removed_at.unwrap().to_string());
        assert_eq!(&row[col("audience")], newest.reach.audience.to_string());
        assert_eq!(&row[col("category_provision")], newest.provision);
    }
}

/// `schema` with every `$ref` into the document `doc` written out in place, and every object
/// schema closed (`unevaluatedProperties: false`), so that a body with a field the document does
/// not name fails. The members of an `allOf` stay open and the `allOf` is closed instead: there
/// the members' properties together are the object's.
fn closed(schema: &Value, doc: &Value, open: bool) -> Value {
    match schema {
        Value::Object(m) => {
            if let Some(target) = m.get("$ref").and_then(Value::as_str) {
                let node = doc
                    .pointer(target.strip_prefix('#').expect("a reference into the document"))
                    .unwrap_or_else(|| panic!("dangling $ref {target}"));
                return closed(node, doc, open);
            }
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let v = match k.as_str() {
                    "allOf" => Value::Array(v.as_array().unwrap().iter().map(|x| closed(x, doc, true)).collect()),
                    "anyOf" | "oneOf" => {
                        Value::Array(v.as_array().unwrap().iter().map(|x| closed(x, doc, open)).collect())
                    }
                    "properties" => Value::Object(
                        v.as_object()
                            .unwrap()
                            .iter()
                            .map(|(name, x)| (name.clone(), closed(x, doc, false)))
                            .collect(),
                    ),
                    "items" | "additionalProperties" => closed(v, doc, false),
                    _ => v.clone(),
                };
                out.insert(k.clone(), v);
            }
            let object = m.contains_key("properties") || m.contains_key("allOf");
            if !open && object && !m.contains_key("additionalProperties") && !m.contains_key("unevaluatedProperties") {
                out.insert("unevaluatedProperties".into(), false.into());
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Every error of `body` against `schema`, a schema of the `OpenAPI` document `doc`, closed as
/// [`closed`] says: `OpenAPI` 3.1 schemas are JSON Schema 2020-12.
fn documented_errors(doc: &Value, schema: &serde_json::Map<String, Value>, body: &Value) -> Vec<String> {
    let schema = closed(&Value::Object(schema.clone()), doc, false);
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the document's schema does not build: {e}"));
    validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes_served() {
    let flags = scenario_flags();
    let (app, store) = app(false, &flags);
    // The first flag's message gets a cohort too, so that the bodies of its message and its
    // resharers are checked with cohorts and members in them.
    for page in cohort_pages(&flags[0].message_id, flags[0].category, 3, 2, 1) {
        store.ingest_cohort(&page).unwrap();
    }
    let doc = get(&app, "/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(modsignal_api::openapi_document()).unwrap()
    );
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let documented: BTreeSet<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let served: BTreeSet<&str> = route_paths().into_iter().collect();
    assert_eq!(
        documented, served,
        "every route is documented and every documented path is served"
    );

    let flag = &flags[0];
    for (path, item) in doc["paths"].as_object().unwrap() {
        let methods: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(methods, ["get"], "{path}: GET only");
        let op = &item["get"];
        let secured = !op["security"].as_array().unwrap().is_empty();
        let concrete = path
            .replace("{flag_id}", &flag.flag_id)
            .replace("{message_id}", &flag.message_id);
        let anonymous = get(&app, &concrete, None).await;
        assert_eq!(
            anonymous.status == StatusCode::UNAUTHORIZED,
            secured,
            "{path}: security as documented"
        );
        let r = get(&app, &concrete, Some(ANALYST)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(op["responses"]["200"].is_object(), "{path}");
        // A JSON body is what the document says it is: the handlers build their bodies as they
        // like, and this is where a field added, renamed or retyped on one side only is caught.
        if let Some(schema) = op["responses"]["200"]["content"]["application/json"]["schema"].as_object() {
            assert_eq!(
                documented_errors(&doc, schema, &r.json()),
                Vec::<String>::new(),
                "{path}: the 200 body against its documented schema"
            );
        }
        if secured {
            let e = documented_errors(
                &doc,
                doc["components"]["schemas"]["Error"].as_object().unwrap(),
                &anonymous.json(),
            );
            assert_eq!(e, Vec::<String>::new(), "{path}: the 401 body against Error");
        }
        if secured {
            assert!(op["responses"]["401"].is_object(), "{path}");
        }
        if path.ends_with("/resharers") {
            let body = r.json();
            let members = body["cohorts"][0]["members"].as_array().unwrap();
            assert_eq!(members.len(), 3, "{path}: the body checked has members");
        }
        // Every `$ref` points at something the document defines.
        let text = item.to_string();
        for piece in text.split("\"$ref\":\"#/").skip(1) {
            let target = &piece[..piece.find('"').unwrap()];
            let mut node = &doc;
            for part in target.split('/') {
                node = &node[part];
            }
            assert!(!node.is_null(), "{path}: dangling $ref {target}");
        }
    }
    let unmatched = get(&app, "/api/v1/nothing-here", Some(ANALYST)).await;
    assert_eq!(unmatched.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_dashboard_is_served_with_a_policy_that_forbids_loading_from_elsewhere() {
    let (app, _) = app(false, &scenario_flags());
    let page = get(&app, "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    for asset in ["/assets/app.js", "/assets/style.css"] {
        let r = get(&app, asset, None).await;
        assert_eq!(r.status, StatusCode::OK, "{asset}");
    }
    // No resource is fetched from another server: the only absolute URL is the SVG namespace.
    for asset in ["/", "/assets/app.js", "/assets/style.css"] {
        let text = get(&app, asset, None).await.text();
        let external: Vec<&str> = text
            .match_indices("http")
            .map(|(i, _)| &text[i..(i + 40).min(text.len())])
            .filter(|s| !s.starts_with("http://www.w3.org/2000/svg"))
            .collect();
        assert!(external.is_empty(), "{asset}: {external:?}");
    }
}

#[tokio::test]
async fn serve_reports_an_address_it_cannot_bind_and_stops_when_told() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut c = config(false);
    c.address = taken.local_addr().unwrap();
    let store = store_with(&[]);
    let err = modsignal_api::serve(&c, state(&c, store.clone()), async {})
        .await
        .unwrap_err();
    assert!(matches!(err, modsignal_api::ServeError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&c.address.to_string()));

    c.address = "127.0.0.1:0".parse().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        modsignal_api::serve(&c, state(&c, store), async {
            let _ = stopped.await;
        })
        .await
    });
    stop.send(()).unwrap();
    server.await.unwrap().expect("a clean stop");
}

// --- A message's resharers, from its cohorts ----------------------------------------------

/// Message c1: a credible threat with a raised author flag, a cohort of 2,500 resharers in that
/// category over three pages (every seventh raised), and one of 40 in category 4 with none
/// raised and no flag of that category. Message c2 has a category-4 cohort alone, nothing
/// raised. Returns the flags and the pages of the three cohorts.
fn cohort_fixture() -> (Vec<Flag>, Vec<Cohort>, Vec<Cohort>, Vec<Cohort>) {
    let events = [
        r#"{"type":"post","at":"2026-01-05T10:00:00Z","id":"c1","author":{"id":"a1","followers":300}}"#,
        r#"{"type":"label","at":"2026-01-05T10:01:00Z","id":"c1","category":"credible_threat","confidence":0.9,"source":"reviewer"}"#,
    ];
    let (flags, errors) = run_lines(&Policy::default(), &events);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(flags.iter().any(|f| f.raised), "the author's flag is raised");
    let threats = cohort_pages("c1", Category::CredibleThreat, 2500, 7, 3);
    let offences = cohort_pages("c1", Category::CommunicationsOffence, 40, 1000, 3);
    let alone = cohort_pages("c2", Category::CommunicationsOffence, 5, 1000, 1);
    assert_eq!(threats.len(), 3);
    (flags, threats, offences, alone)
}

/// A server over the fixture, with pages of up to 1,000.
fn cohort_app(pseudonymise_liaison: bool) -> (Router, Arc<FlagStore>, Vec<Cohort>, Vec<Cohort>) {
    let (flags, threats, offences, alone) = cohort_fixture();
    let store = store_with(&flags);
    for page in threats.iter().chain(&offences).chain(&alone) {
        assert_eq!(store.ingest_cohort(page).unwrap(), Ingested::NewCohortPage);
    }
    let mut c = config(pseudonymise_liaison);
    c.max_page = 1000;
    (router(state(&c, store.clone())), store, threats, offences)
}

/// Every page of `/api/v1/messages/{message}/resharers?{query}` with `limit`, following cursors.
async fn resharer_pages(app: &Router, message: &str, query: &str, token: &str, limit: usize) -> Vec<Value> {
    let route = format!("/api/v1/messages/{message}/resharers?limit={limit}");
    let pages = follow_cursors(app, &route, query, token).await;
    for page in &pages {
        let n: usize = page["cohorts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["members"].as_array().unwrap().len())
            .sum();
        assert!(n <= limit, "{route} {query}: {n} members");
    }
    pages
}

/// The members of every page, by category, in the order given.
fn members_by_category(pages: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for page in pages {
        for c in page["cohorts"].as_array().unwrap() {
            let members = out.entry(c["category"].as_str().unwrap().to_owned()).or_default();
            members.extend(c["members"].as_array().unwrap().iter().cloned());
        }
    }
    out
}

fn members_json(pages: &[Cohort]) -> Vec<Value> {
    pages
        .iter()
        .flat_map(|p| p.members.iter())
        .map(|m| serde_json::to_value(m).unwrap())
        .collect()
}

#[tokio::test]
async fn resharers_page_across_a_cohorts_pages_in_account_order() {
    let (app, _, threats, offences) = cohort_app(false);
    let expected = members_json(&threats);
    assert!(
        expected
            .windows(2)
            .all(|w| w[0]["account"].as_str() < w[1]["account"].as_str()),
        "the pages are in account order"
    );
    for limit in [1000, 50] {
        let pages = resharer_pages(&app, "c1", "category=credible_threat", ANALYST, limit).await;
        assert_eq!(pages.len(), 2500usize.div_ceil(limit), "pages of {limit}");
        for page in &pages {
            assert_eq!(page["message_id"], "c1");
            let cohorts = page["cohorts"].as_array().unwrap();
            assert_eq!(cohorts.len(), 1);
            let c = &cohorts[0];
            assert_eq!(c["cohort_id"], threats[0].cohort_id.as_str());
            assert_eq!(c["revision"], threats[0].revision);
            assert_eq!((c["pages"].as_u64(), c["complete"].as_bool()), (Some(3), Some(true)));
            assert_eq!(c["summary"], serde_json::to_value(&threats[0].summary).unwrap());
            assert_eq!(c["track"], "robust");
        }
        let got = members_by_category(&pages).remove("credible_threat").unwrap();
        assert_eq!(
            got, expected,
            "pages of {limit}: every member once, as the cohort lists them"
        );
    }

    // Without a category: every cohort of the message on every page, its members in category
    // order, then account order.
    let pages = resharer_pages(&app, "c1", "", ANALYST, 1000).await;
    assert_eq!(pages.len(), 3);
    for page in &pages {
        let categories: Vec<&str> = page["cohorts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["category"].as_str().unwrap())
            .collect();
        assert_eq!(categories, ["credible_threat", "communications_offence"]);
    }
    let mut by = members_by_category(&pages);
    assert_eq!(by.remove("credible_threat").unwrap(), expected);
    assert_eq!(by.remove("communications_offence").unwrap(), members_json(&offences));
    let last = &pages[2]["cohorts"];
    assert_eq!(
        (
            last[0]["members"].as_array().unwrap().len(),
            last[1]["members"].as_array().unwrap().len()
        ),
        (500, 40),
        "a page goes on into the next category"
    );

    // Without a limit, the configured default page.
    let r = get(&app, "/api/v1/messages/c1/resharers", Some(ANALYST)).await.json();
    assert_eq!(r["cohorts"][0]["members"].as_array().unwrap().len(), 50);
    assert!(r["cohorts"][1]["members"].as_array().unwrap().is_empty());

    // The message's own body sums each cohort up, without its members.
    let m = get(&app, "/api/v1/messages/c1", Some(ANALYST)).await.json();
    let cohorts = m["cohorts"].as_array().unwrap();
    assert_eq!(cohorts.len(), 2);
    assert_eq!(cohorts[0]["summary"]["resharers"], 2500);
    assert_eq!(cohorts[1]["summary"]["resharers"], 40);
    assert!(cohorts.iter().all(|c| c.get("members").is_none()));
}

#[tokio::test]
async fn resharers_follow_each_roles_rules() {
    let (app, _, threats, offences) = cohort_app(true);
    let p = Pseudonymiser::new(KEY.as_bytes());

    // A pseudonymised liaison officer: raised members only, by pseudonym, in the same order; the
    // summary's numbers whole; the category-4 cohort, where nothing is raised, not at all.
    let pages = resharer_pages(&app, "c1", "", LIAISON, 50).await;
    let mut by = members_by_category(&pages);
    assert_eq!(by.keys().collect::<Vec<_>>(), ["credible_threat"]);
    let raised: Vec<Value> = threats
        .iter()
        .flat_map(|page| page.members.iter())
        .filter(|m| m.raised)
        .map(|m| {
            let mut m = m.clone();
            m.account = p.account(&m.account);
            serde_json::to_value(&m).unwrap()
        })
        .collect();
    assert_eq!(raised.len(), 2500 / 7);
    assert_eq!(by.remove("credible_threat").unwrap(), raised);
    assert_eq!(pages.len(), raised.len().div_ceil(50));
    assert_eq!(
        pages[0]["cohorts"][0]["summary"],
        serde_json::to_value(&threats[0].summary).unwrap()
    );
    for page in &pages {
        let text = page.to_string();
        for m in threats.iter().flat_map(|page| page.members.iter()).step_by(97) {
            assert!(!text.contains(&format!("\"{}\"", m.account)), "{} shown", m.account);
        }
    }
    // Asking for the category where nothing is raised gives no cohort.
    let none = get(
        &app,
        "/api/v1/messages/c1/resharers?category=communications_offence",
        Some(LIAISON),
    )
    .await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.json()["cohorts"], Value::Array(Vec::new()));
    let m = get(&app, "/api/v1/messages/c1", Some(LIAISON)).await.json();
    let categories: Vec<&str> = m["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["category"].as_str().unwrap())
        .collect();
    assert_eq!(categories, ["credible_threat"]);

    // A message where nothing is raised does not exist for the liaison officer; the analyst
    // sees it, and its cohort, though it has no flag yet.
    for path in ["/api/v1/messages/c2", "/api/v1/messages/c2/resharers"] {
        assert_eq!(
            get(&app, path, Some(LIAISON)).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert_eq!(get(&app, path, Some(ANALYST)).await.status, StatusCode::OK, "{path}");
    }
    let c2 = get(&app, "/api/v1/messages/c2", Some(ANALYST)).await.json();
    assert_eq!(
        (c2["author"].is_null(), c2["flags"].as_array().unwrap().len()),
        (true, 0)
    );

    // The analyst (not pseudonymised here) sees every member with the account as written.
    let mut all = members_by_category(&resharer_pages(&app, "c1", "", ANALYST, 1000).await);
    assert_eq!(all.remove("credible_threat").unwrap(), members_json(&threats));
    assert_eq!(all.remove("communications_offence").unwrap(), members_json(&offences));
}

#[tokio::test]
async fn resharers_refuse_what_they_cannot_read_and_answer_404_for_an_unknown_message() {
    let (app, _, _, _) = cohort_app(false);
    let doc: Value = serde_json::from_str(modsignal_api::openapi_document()).unwrap();
    let op = &doc["paths"]["/api/v1/messages/{message_id}/resharers"]["get"];
    let check = |r: &Reply, code: &str| {
        let schema = op["responses"][code]["content"]["application/json"]["schema"]
            .as_object()
            .unwrap_or_else(|| panic!("{code} is documented"));
        assert_eq!(
            documented_errors(&doc, schema, &r.json()),
            Vec::<String>::new(),
            "{code}"
        );
    };

    let r = get(&app, "/api/v1/messages/no-such-message/resharers", Some(ANALYST)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "not_found");
    check(&r, "404");

    let first = get(
        &app,
        "/api/v1/messages/c1/resharers?category=credible_threat&limit=10",
        Some(ANALYST),
    )
    .await
    .json();
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let follows = get(
        &app,
        &format!("/api/v1/messages/c1/resharers?category=credible_threat&limit=10&cursor={cursor}"),
        Some(ANALYST),
    )
    .await;
    assert_eq!(follows.status, StatusCode::OK);
    check(&follows, "200");
    for bad in [
        "category=rudeness".to_owned(),
        "cursor=abc".to_owned(),
        "limit=0".to_owned(),
        "limit=1001".to_owned(),
        "limit=ten".to_owned(),
        "categroy=credible_threat".to_owned(),
        // A cursor of one category given with another.
        format!("category=communications_offence&cursor={cursor}"),
        // A cursor well formed, but after a resharer the cohort does not have.
        format!("cursor=0.0.9.{}", "0".repeat(32)),
        // A cursor into a category the message has no cohort in.
        format!("cursor=1.0.9.{}", &cursor[cursor.len() - 32..]),
    ] {
        let r = get(&app, &format!("/api/v1/messages/c1/resharers?{bad}"), Some(ANALYST)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert_eq!(r.json()["error"], "bad_request", "{bad}");
        check(&r, "400");
    }
}

#[tokio::test]
async fn cohort_ingestion_is_idempotent_and_order_free() {
    let (flags, threats, offences, _) = cohort_fixture();
    let older = cohort_pages("c1", Category::CredibleThreat, 1800, 7, 1);
    assert!(older[0].revision < threats[0].revision);

    // In the order written: the older state, then the newer.
    let forward = store_with(&flags);
    for page in older.iter().chain(&threats).chain(&offences) {
        forward.ingest_cohort(page).unwrap();
    }
    // Newest first, as JSON, every page twice, the older state after it.
    let backward = store_with(&flags);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for page in threats
        .iter()
        .rev()
        .chain(&offences)
        .chain(&threats)
        .chain(&offences)
        .chain(&older)
    {
        let o = backward.ingest_json(&page.to_json()).unwrap();
        *outcomes.entry(format!("{o:?}")).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [
        (format!("{:?}", Ingested::NewCohortPage), 4),
        (format!("{:?}", Ingested::Duplicate), 4),
        (format!("{:?}", Ingested::StaleCohortPage), 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(outcomes, expected);
    let (f, b) = (forward.stats(), backward.stats());
    assert_eq!((f.cohorts, f.cohort_pages), (2, 4));
    assert_eq!((b.cohorts, b.cohort_pages), (2, 4));
    assert_eq!((b.cohort_pages_ingested_total, b.cohort_pages_ignored_total), (4, 6));
    assert_eq!(b.flags, f.flags, "cohorts are not flags");

    let (fa, ba) = (
        router(state(&config(false), forward)),
        router(state(&config(false), backward)),
    );
    for token in [ANALYST, LIAISON] {
        let a = resharer_pages(&fa, "c1", "", token, 50).await;
        let b = resharer_pages(&ba, "c1", "", token, 50).await;
        assert_eq!(a, b);
        let m = get(&fa, "/api/v1/messages/c1", Some(token)).await.json();
        assert_eq!(m, get(&ba, "/api/v1/messages/c1", Some(token)).await.json());
    }
    let all = members_by_category(&resharer_pages(&fa, "c1", "category=credible_threat", ANALYST, 500).await);
    assert_eq!(all["credible_threat"], members_json(&threats), "the newer state wins");
}
