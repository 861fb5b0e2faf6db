//! modsignal's Kafka worker: canonical events from input topics, flags to an output topic,
//! bad records to a dead-letter topic.
//!
//! This crate is an adapter around the pure core ([`modsignal_core`]), which knows nothing of
//! Kafka. This first part holds the worker's pure pieces:
//!
//! - [`config`]: [`WorkerConfig`], filled from command-line options or a `[kafka]` section,
//!   and the librdkafka settings derived from it.
//! - [`dead_letter`]: the headers of a record set aside, with its reason and source.
//! - [`commit`]: which input offsets may be committed, behind the broker's acknowledgements.

pub mod commit;
pub mod config;
pub mod dead_letter;

pub use config::{ConfigError, KafkaSection, WorkerConfig};
