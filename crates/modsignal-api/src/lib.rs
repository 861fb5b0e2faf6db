//! modsignal's read-only HTTP API over flags, and the dashboard for police liaison officers.
//!
//! The pieces, and how an owner (the `modsignal` binary) puts them together:
//!
//! 1. A [`FlagStore`], shared in an `Arc`, fed with every flag revision and resharer cohort
//!    page written: by the engine in this process ([`FlagStore::ingest`],
//!    [`FlagStore::ingest_cohort`]) or from the Kafka output topic ([`FlagStore::ingest_json`],
//!    which tells the two apart by their `schema`). The output topic carries the records of every partition, so
//!    when each instance feeds its store from all of it, every instance answers every query,
//!    including about messages whose partition another instance owns. Ingestion is idempotent
//!    and order-free, and memory per flag is capped (see [`store`]). The owner calls
//!    [`FlagStore::set_ready`] once the store has caught up.
//! 2. An [`ApiState`] from an [`ApiConfig`] (the `[http]` config section), the store and the
//!    Prometheus registry the rest of the process registers its metrics in.
//! 3. [`router`] to embed the routes in another server, or [`serve`] to bind and run them
//!    until a shutdown future completes.
//!
//! Routes (all GET; the API never changes state and offers no moderation action):
//!
//! | route | token | what |
//! |---|---|---|
//! | `/healthz` | no | 200 while the process serves |
//! | `/readyz` | no | 200 once the store is ready, else 503 |
//! | `/metrics` | no | the registry in the Prometheus text format |
//! | `/api/v1/openapi.json` | no | the `OpenAPI` 3.1 document of all routes |
//! | `/api/v1/session` | yes | the caller's role and whether they see pseudonyms |
//! | `/api/v1/flags` | yes | newest revision of each flag, newest first, filtered and paginated |
//! | `/api/v1/flags/{flag_id}` | yes | one flag with its revisions |
//! | `/api/v1/flags/{flag_id}/export.json`, `.csv` | yes | one flag as an evidence file |
//! | `/api/v1/messages/{message_id}` | yes | a message's reach, exposure and flags (author and resharers), and its cohorts' summaries |
//! | `/api/v1/messages/{message_id}/resharers` | yes | every resharer of the message, from its cohorts, paginated |
//! | `/`, `/assets/*` | no | the dashboard (static; it asks for a token and calls the API) |
//!
//! Access control: each configured bearer token has a [`Role`]. `analyst` sees every flag;
//! `liaison` sees only raised revisions (a flag never raised does not exist for it: 404), and
//! of a cohort only its raised members (and its summary, whose numbers name no one).
//! Roles listed in `pseudonymise` see `pseud:` pseudonyms (HMAC-SHA256 under a configured key)
//! in place of account ids, everywhere, and name accounts by pseudonym in filters. Tokens are
//! compared in constant time and never logged; the health, readiness and metrics routes carry
//! no personal data and need no token, so that probes and scrapers need no secret.
//!
//! The dashboard (`/`) is plain HTML, CSS and JavaScript embedded in the binary: no build step
//! and nothing loaded from elsewhere (its content security policy forbids it). Its charts are
//! SVG drawn by its own script.

pub mod api;
mod auth;
mod body;
pub mod config;
mod export;
pub mod record;
mod serve;
pub mod store;

pub use api::{ApiState, StateError, openapi_document, route_paths, router};
pub use auth::{PSEUDONYM_PREFIX, Pseudonymiser};
pub use config::{ApiConfig, ConfigError, HttpSection, Role, Secret, TokenConfig, TokenEntry};
pub use export::CSV_HEADER;
pub use record::{FlagRecord, IngestError};
pub use serve::{ServeError, serve, serve_listener};
pub use store::{FlagStore, Ingested, StoreStats, Visibility};
