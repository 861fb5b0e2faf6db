//! modsignal's pure core: the canonical event contract, per-message state, the guideline risk
//! model and flags.
//!
//! Nothing in this crate performs I/O, reads a clock, spawns a task or knows about Kafka or
//! Prometheus. Time is event time, carried by the events themselves; the [`Engine`] turns a
//! stream of [`Event`]s into [`Flag`]s, and the adapters around it (files, Kafka, HTTP) decide
//! where events come from and where flags go.
//!
//! - [`event`]: the version-1 event contract and its decoder.
//! - [`policy`]: weights, thresholds and time scales, with defaults that cite their anchors.
//! - [`model`]: the risk model, facts in and an explained score out.
//! - [`engine`]: state and emission.
//! - [`flag`]: the version-1 flag.
//! - [`cohort`]: the version-1 resharer cohort: every resharer of a labelled message, by the
//!   numbers of their flags.
//! - [`frame`]: the magic, format number and checksum around saved state, shared by engine
//!   snapshots and the Kafka router's.

pub mod cohort;
pub mod engine;
pub mod event;
mod exposure;
pub mod flag;
pub mod frame;
mod json;
pub mod model;
pub mod policy;
pub mod reject;
mod store;
pub mod time;

pub use cohort::Cohort;
pub use engine::snapshot::{SNAPSHOT_FORMAT, SnapshotError, policy_fingerprint};
pub use engine::{
    ApplyError, Engine, EventClock, EventTimes, InputTime, Outcome, RemovalSeen, SourceMark, StateStats,
    combined_event_time,
};
pub use event::{DecodeError, Event, EventKind, decode};
pub use flag::{Flag, Subject};
pub use policy::Policy;
pub use reject::RejectCode;
pub use time::Ts;
