//! The `modsignal` binary's library: the adapters around the pure core.
//!
//! - [`policy`] loads `config/policy.toml` (embedded as the default) and validates it.
//! - [`files`] runs the engine over a file or standard input of canonical events or a
//!   platform's stream (read by `modsignal_formats`), with side inputs of canonical events
//!   read as streams and merged in event time, writes flags or AT Protocol labels as JSON lines
//!   and sets bad lines aside in a reject file; no input, however long its lines, is held
//!   whole.
//! - [`kafka`] runs the Kafka worker (`modsignal_kafka`) for `run --config`/`--brokers`: its
//!   options and config file, its runtime, and the signals that stop it.
//!
//! - [`http`] serves the query API, the dashboard and `/metrics` (`modsignal_api`) from a
//!   store fed by the pipeline in file mode and by the output topic on Kafka.
//!
//! - [`settings`] lays `MODSIGNAL__SECTION__KEY` environment variables over the config file
//!   and the policy, so every setting can come from the environment.
//!
//! - [`cli`] is the command line; `main.rs` only calls it.

pub mod cli;
pub mod files;
pub mod http;
pub mod kafka;
pub mod policy;
pub mod settings;
