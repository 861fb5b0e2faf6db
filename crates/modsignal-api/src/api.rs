//! The routes: health, readiness and metrics for the platform, the read-only flag API for
//! people, and the dashboard's static files.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};
use modsignal_core::Ts;
use modsignal_core::event::{Category, Track};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::Deserialize;

use crate::auth::{Authenticator, PSEUDONYM_PREFIX, Pseudonymiser, split_at_uri};
use crate::body;
use crate::config::{ApiConfig, ConfigError, Role};
use crate::export::to_csv;
use modsignal_core::Subject;

use crate::record::FlagRecord;
use crate::store::{CohortState, Cursor, FlagStore, History, ListFilter, MemberCursor, Shown, Visibility};
use modsignal_metrics::http::{HttpMetrics, StoreStats};

const OPENAPI: &str = include_str!("openapi.json");
const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");

/// What the router needs: the store, who may ask, and the metrics registry. Cheap to clone.
#[derive(Clone)]
pub struct ApiState(Arc<Shared>);

struct Shared {
    store: Arc<FlagStore>,
    auth: Authenticator,
    pseudonymiser: Option<Pseudonymiser>,
    pseudonymise: Vec<Role>,
    default_page: usize,
    max_page: usize,
    registry: Registry,
    http: HttpMetrics,
    /// Pseudonyms back to account ids, for filters and message ids given as pseudonyms.
    reverse: Mutex<Reverse>,
}

#[derive(Default)]
struct Reverse {
    /// How many of the store's accounts (in the order first seen) are hashed below.
    seen: usize,
    accounts: HashMap<String, String>,
}

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the HTTP server's metrics could not be registered: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl ApiState {
    /// Validates `config` and registers the server's metrics (see [`modsignal_metrics::http`]) in
    /// `registry`, which `/metrics` renders with everything else registered there. The store's
    /// cap on revisions is the store's own: create it with `FlagStore::new(config.max_revisions)`.
    pub fn new(config: &ApiConfig, store: Arc<FlagStore>, registry: Registry) -> Result<ApiState, StateError> {
        config.validate()?;
        let reader = store.clone();
        let http = HttpMetrics::register(&registry, move || {
            let s = reader.stats();
            StoreStats {
                ready: reader.is_ready(),
                flags: s.flags,
                raised_flags: s.raised_flags,
                revisions: s.revisions,
                ingested_total: s.ingested_total,
                duplicates_total: s.duplicates_total,
                rejected_total: s.rejected_total,
                thinned_total: s.thinned_total,
            }
        })?;
        Ok(ApiState(Arc::new(Shared {
            store,
            auth: Authenticator::new(&config.tokens),
            pseudonymiser: config
                .pseudonym_key
                .as_ref()
                .map(|k| Pseudonymiser::new(k.expose().as_bytes())),
            pseudonymise: config.pseudonymise.clone(),
            default_page: config.default_page,
            max_page: config.max_page,
            registry,
            http,
            reverse: Mutex::new(Reverse::default()),
        })))
    }

    pub fn store(&self) -> &Arc<FlagStore> {
        &self.0.store
    }

    /// The account id behind a pseudonym, among the accounts the store has seen. Only accounts
    /// added since the last look are hashed, so an unknown pseudonym costs little.
    fn account_of(&self, pseudonym: &str, p: &Pseudonymiser) -> Option<String> {
        let mut rev = self.0.reverse.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(a) = rev.accounts.get(pseudonym) {
            return Some(a.clone());
        }
        let (new, total) = self.0.store.accounts_since(rev.seen);
        for a in new {
            rev.accounts.insert(p.account(&a), a);
        }
        rev.seen = total;
        rev.accounts.get(pseudonym).cloned()
    }
}

/// Every route, with its handler. The `OpenAPI` document lists exactly these paths (a test
/// keeps the two equal).
fn routes() -> Vec<(&'static str, MethodRouter<ApiState>)> {
    vec![
        ("/", get(dashboard_page)),
        ("/assets/app.js", get(dashboard_script)),
        ("/assets/style.css", get(dashboard_style)),
        ("/healthz", get(healthz)),
        ("/readyz", get(readyz)),
        ("/metrics", get(metrics)),
        ("/api/v1/openapi.json", get(openapi)),
        ("/api/v1/session", get(session)),
        ("/api/v1/flags", get(list_flags)),
        ("/api/v1/flags/{flag_id}", get(get_flag)),
        ("/api/v1/flags/{flag_id}/export.json", get(export_json)),
        ("/api/v1/flags/{flag_id}/export.csv", get(export_csv)),
        ("/api/v1/messages/{message_id}", get(get_message)),
        ("/api/v1/messages/{message_id}/resharers", get(get_resharers)),
    ]
}

/// The paths the router serves, as written in the `OpenAPI` document.
pub fn route_paths() -> Vec<&'static str> {
    routes().into_iter().map(|(p, _)| p).collect()
}

/// The `OpenAPI` 3.1 document of the API, as served at `/api/v1/openapi.json`.
pub fn openapi_document() -> &'static str {
    OPENAPI
}

/// The whole server: every route answers GET (and HEAD) only; nothing changes state.
///
/// `/healthz`, `/readyz` and `/metrics` need no token (probes and scrapers call them, and they
/// tell nothing about people), nor do the dashboard's static files and the `OpenAPI` document.
/// Every `/api/v1/` route that returns flags needs a bearer token. Requests are logged with
/// their route template, status and duration only: never a header, a query string or an id.
pub fn router(state: ApiState) -> Router {
    let mut r = Router::new();
    for (path, handler) in routes() {
        r = r.route(path, handler);
    }
    r.fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn observe(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status();
    state
        .0
        .http
        .requests
        .with_label_values(&[route.as_str(), status.as_str()])
        .inc();
    state
        .0
        .http
        .duration
        .with_label_values(&[route.as_str()])
        .observe(elapsed);
    tracing::debug!(route, status = status.as_u16(), seconds = elapsed, "http request");
    response
}

/// Headers on every answer: nothing is cached (flags are evidence and change), no page may
/// frame the dashboard, and the dashboard may load nothing from anywhere but this server.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CACHE_CONTROL, "no-store");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    response
}

/// An error answer: a status and a JSON body `{"error": code, "message": text}`.
#[derive(Debug)]
pub(crate) enum ApiError {
    Unauthorized { presented: bool },
    NotFound(&'static str),
    BadRequest(String),
    Internal(&'static str),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::Unauthorized { presented } => {
                let challenge = if presented {
                    r#"Bearer realm="modsignal", error="invalid_token""#
                } else {
                    r#"Bearer realm="modsignal""#
                };
                let body = body::Error {
                    error: "unauthorized",
                    message: "a valid bearer token is required",
                };
                let mut r = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
                return r;
            }
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, "not_found", format!("no such {what}")),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", m.to_owned()),
        };
        (
            status,
            Json(body::Error {
                error: code,
                message: &message,
            }),
        )
            .into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

/// The caller of an `/api/v1/` route, known by their bearer token.
pub(crate) struct Caller {
    role: Role,
    pseudonymised: bool,
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::Unauthorized { presented: false });
        };
        // The scheme's name is case-insensitive (RFC 9110); anything else is no token.
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token.trim());
        if let Some(role) = state.0.auth.role(token) {
            Ok(Caller {
                role,
                pseudonymised: state.0.pseudonymise.contains(&role),
            })
        } else {
            tracing::debug!("request refused: the bearer token is not one of the configured tokens");
            Err(ApiError::Unauthorized { presented: true })
        }
    }
}

impl Caller {
    fn visibility(&self) -> Visibility {
        match self.role {
            Role::Liaison => Visibility::RaisedOnly,
            Role::Analyst => Visibility::All,
        }
    }

    fn pseudonymiser<'s>(&self, state: &'s ApiState) -> Option<&'s Pseudonymiser> {
        if self.pseudonymised {
            // `ApiConfig::validate` makes a key required whenever a role is pseudonymised.
            state.0.pseudonymiser.as_ref()
        } else {
            None
        }
    }

    /// A revision as this caller may see it: account ids replaced by pseudonyms if need be.
    fn show(&self, state: &ApiState, r: &FlagRecord) -> FlagRecord {
        let mut r = r.clone();
        if let Some(p) = self.pseudonymiser(state) {
            r.account = p.account(&r.account);
            r.message_id = p.message_id(&r.message_id);
        }
        r
    }

    /// An account given in a request, as stored: a pseudonymised caller names accounts by their
    /// pseudonyms only, so that they cannot test whether an account id they know has flags.
    fn account_in(&self, state: &ApiState, given: &str) -> Result<Option<String>, ApiError> {
        match self.pseudonymiser(state) {
            None => Ok(Some(given.to_owned())),
            Some(p) if given.starts_with(PSEUDONYM_PREFIX) => Ok(state.account_of(given, p)),
            Some(_) => Err(ApiError::BadRequest(format!(
                "account must be given as a pseudonym ({PSEUDONYM_PREFIX}…) for this role"
            ))),
        }
    }

    /// A message id given in a request, as stored (see [`Pseudonymiser::message_id`]).
    fn message_in(&self, state: &ApiState, given: &str) -> Option<String> {
        let Some(p) = self.pseudonymiser(state) else {
            return Some(given.to_owned());
        };
        match split_at_uri(given) {
            Some((authority, rest)) if authority.starts_with(PSEUDONYM_PREFIX) => {
                Some(format!("at://{}{rest}", state.account_of(authority, p)?))
            }
            // An AT Protocol id with a real account in it is one this caller was never shown.
            Some(_) => None,
            None => Some(given.to_owned()),
        }
    }
}

async fn dashboard_page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML).into_response()
}

async fn dashboard_script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS).into_response()
}

async fn dashboard_style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE_CSS).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn healthz() -> Response {
    (StatusCode::OK, Json(body::Health { status: "ok" })).into_response()
}

async fn readyz(State(state): State<ApiState>) -> Response {
    if state.0.store.is_ready() {
        (StatusCode::OK, Json(body::Ready { ready: true })).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(body::Ready { ready: false })).into_response()
    }
}

async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let encoder = TextEncoder::new();
    let mut buf = Vec::new();
    encoder
        .encode(&state.0.registry.gather(), &mut buf)
        .map_err(|_| ApiError::Internal("the metrics could not be encoded"))?;
    Ok(([(header::CONTENT_TYPE, encoder.format_type().to_owned())], buf).into_response())
}

async fn session(State(state): State<ApiState>, caller: Caller) -> Json<body::Session> {
    Json(body::Session {
        role: caller.role.as_str(),
        pseudonymised: caller.pseudonymised,
        raised_only: caller.visibility() == Visibility::RaisedOnly,
        max_page: state.0.max_page,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    category: Option<String>,
    track: Option<String>,
    raised: Option<String>,
    account: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn parse_category(s: &str) -> Result<Category, ApiError> {
    Category::ALL
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| ApiError::BadRequest(format!("unknown category {s:?}")))
}

fn parse_track(s: &str) -> Result<Track, ApiError> {
    [Track::Robust, Track::HighThreshold]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| ApiError::BadRequest(format!("unknown track {s:?} (robust or high_threshold)")))
}

/// A page size: the configured default if absent, else from 1 to the configured maximum.
fn parse_limit(state: &ApiState, given: Option<&str>) -> Result<usize, ApiError> {
    match given {
        None => Ok(state.0.default_page),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=state.0.max_page).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "limit must be a whole number from 1 to {}",
                state.0.max_page
            ))),
        },
    }
}

fn parse_time(field: &str, s: &str) -> Result<Ts, ApiError> {
    Ts::parse_rfc3339(s)
        .ok_or_else(|| ApiError::BadRequest(format!("{field} must be an RFC 3339 time such as 2026-01-05T10:00:00Z")))
}

async fn list_flags(
    State(state): State<ApiState>,
    caller: Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<body::FlagPage>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = parse_limit(&state, p.limit.as_deref())?;
    let cursor = match p.cursor.as_deref() {
        None => None,
        Some(s) => {
            Some(Cursor::parse(s).ok_or_else(|| ApiError::BadRequest("cursor is not one this API gave".into()))?)
        }
    };
    let mut filter = ListFilter {
        category: p.category.as_deref().map(parse_category).transpose()?,
        track: p.track.as_deref().map(parse_track).transpose()?,
        raised: match p.raised.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(ApiError::BadRequest("raised must be true or false".into())),
        },
        account: None,
        from: p.from.as_deref().map(|s| parse_time("from", s)).transpose()?,
        to: p.to.as_deref().map(|s| parse_time("to", s)).transpose()?,
    };
    if let Some(given) = p.account.as_deref() {
        match caller.account_in(&state, given)? {
            Some(account) => filter.account = Some(account),
            // A pseudonym of no account the store knows: no flag can match.
            None => {
                return Ok(Json(body::FlagPage {
                    flags: Vec::new(),
                    next_cursor: None,
                }));
            }
        }
    }
    let page = state.0.store.list(caller.visibility(), &filter, cursor.as_ref(), limit);
    Ok(Json(body::FlagPage {
        flags: page.flags.iter().map(|s| shown(&caller, &state, s, None)).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

fn shown(caller: &Caller, state: &ApiState, s: &Shown, revisions: Option<usize>) -> body::ShownFlag {
    body::ShownFlag {
        current: s.current,
        flag: caller.show(state, &s.record),
        revisions,
    }
}

fn history(caller: &Caller, state: &ApiState, h: &History) -> body::FlagHistory {
    body::FlagHistory {
        current: h.shown.current,
        flag: caller.show(state, &h.shown.record),
        revisions: h.revisions.iter().map(|r| caller.show(state, r)).collect(),
        revisions_thinned: h.thinned,
    }
}

fn find_flag(state: &ApiState, caller: &Caller, flag_id: &str) -> Result<History, ApiError> {
    state
        .0
        .store
        .flag(caller.visibility(), flag_id)
        .ok_or(ApiError::NotFound("flag"))
}

async fn get_flag(
    State(state): State<ApiState>,
    caller: Caller,
    Path(flag_id): Path<String>,
) -> Result<Json<body::FlagHistory>, ApiError> {
    let h = find_flag(&state, &caller, &flag_id)?;
    Ok(Json(history(&caller, &state, &h)))
}

fn attachment(flag_id: &str, ext: &str) -> HeaderValue {
    // Flag ids are 32 hex digits (checked at ingestion), so the name needs no quoting rules.
    HeaderValue::from_str(&format!("attachment; filename=\"modsignal-flag-{flag_id}.{ext}\""))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

async fn export_json(
    State(state): State<ApiState>,
    caller: Caller,
    Path(flag_id): Path<String>,
) -> Result<Response, ApiError> {
    let h = find_flag(&state, &caller, &flag_id)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let body = body::FlagExport {
        history: history(&caller, &state, &h),
        exported_at: Ts(now),
        exported_for_role: caller.role.as_str(),
        pseudonymised: caller.pseudonymised,
    };
    let text =
        serde_json::to_string_pretty(&body).map_err(|_| ApiError::Internal("the export could not be written"))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CONTENT_DISPOSITION, attachment(&h.shown.record.flag_id, "json")),
        ],
        text,
    )
        .into_response())
}

async fn export_csv(
    State(state): State<ApiState>,
    caller: Caller,
    Path(flag_id): Path<String>,
) -> Result<Response, ApiError> {
    let h = find_flag(&state, &caller, &flag_id)?;
    let shown: Vec<FlagRecord> = h.revisions.iter().map(|r| caller.show(&state, r)).collect();
    let body = to_csv(&shown).map_err(|_| ApiError::Internal("the export could not be written"))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, attachment(&h.shown.record.flag_id, "csv")),
        ],
        body,
    )
        .into_response())
}

async fn get_message(
    State(state): State<ApiState>,
    caller: Caller,
    Path(message_id): Path<String>,
) -> Result<Json<body::Message>, ApiError> {
    let id = caller
        .message_in(&state, &message_id)
        .ok_or(ApiError::NotFound("message"))?;
    let flags = state.0.store.message(caller.visibility(), &id);
    let cohorts = state.0.store.cohorts(caller.visibility(), &id);
    if flags.is_empty() && cohorts.is_empty() {
        return Err(ApiError::NotFound("message"));
    }
    // The message's own reach and exposure are its author's: the newest author revision shown.
    let author = flags
        .iter()
        .filter(|h| h.shown.record.subject == Subject::Author)
        .map(|h| &h.shown.record)
        .max_by_key(|r| (r.at, r.revision));
    let author = author.map(|r| caller.show(&state, r));
    let mut history: Vec<&FlagRecord> = flags.iter().flat_map(|h| h.revisions.iter().map(|r| &**r)).collect();
    history.sort_by_key(|r| (r.at, r.revision));
    let history = history
        .into_iter()
        .map(|r| body::HistoryEntry::from(caller.show(&state, r)))
        .collect();
    let flags = flags
        .iter()
        .map(|h| shown(&caller, &state, &h.shown, Some(h.revisions.len())))
        .collect();
    let message_id = match caller.pseudonymiser(&state) {
        Some(p) => p.message_id(&id),
        None => id,
    };
    let (author, reach, exposure) = match author {
        Some(r) => (Some(r.account), Some(r.reach), Some(r.exposure)),
        None => (None, None, None),
    };
    Ok(Json(body::Message {
        message_id,
        author,
        reach,
        exposure,
        flags,
        history,
        cohorts: cohorts.into_iter().map(message_cohort).collect(),
    }))
}

fn message_cohort(c: CohortState) -> body::MessageCohort {
    body::MessageCohort {
        category: c.category,
        track: c.track,
        cohort_id: c.cohort_id,
        revision: c.revision,
        pages: c.pages,
        complete: c.complete,
        at: c.at,
        summary: c.summary,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResharerParams {
    category: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Every resharer of a message and their exposure, from its cohorts: per category the cohort's
/// summary, and its members in account order, paged across the cohort's pages.
async fn get_resharers(
    State(state): State<ApiState>,
    caller: Caller,
    Path(message_id): Path<String>,
    params: Result<Query<ResharerParams>, QueryRejection>,
) -> Result<Json<body::Resharers>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = parse_limit(&state, p.limit.as_deref())?;
    let category = p.category.as_deref().map(parse_category).transpose()?;
    let cursor = match p.cursor.as_deref() {
        None => None,
        Some(s) => Some(
            MemberCursor::parse(s)
                .filter(|c| category.is_none_or(|cat| c.category() == cat))
                .ok_or_else(|| ApiError::BadRequest("cursor is not one this API gave for this query".into()))?,
        ),
    };
    let id = caller
        .message_in(&state, &message_id)
        .ok_or(ApiError::NotFound("message"))?;
    let page = state
        .0
        .store
        .resharers(caller.visibility(), &id, category, cursor.as_ref(), limit)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?
        .ok_or(ApiError::NotFound("message"))?;
    let pseudonymiser = caller.pseudonymiser(&state);
    let cohorts = page
        .cohorts
        .into_iter()
        .map(|(c, mut members)| {
            if let Some(p) = pseudonymiser {
                for m in &mut members {
                    m.account = p.account(&m.account);
                }
            }
            body::ResharerCohort {
                cohort: message_cohort(c),
                members,
            }
        })
        .collect();
    Ok(Json(body::Resharers {
        message_id: pseudonymiser.map_or_else(|| id.clone(), |p| p.message_id(&id)),
        cohorts,
        next_cursor: page.next.map(|c| c.encode()),
    }))
}
