//! modsignal's integration tests, in one binary: each module is a suite (`cargo test -p
//! modsignal-tests -- kafka_failures::` runs one). The suites that start Apache Kafka or Chromium
//! run with the crate's `kafka` and `browser` features (`scripts/test` turns both on); without
//! them they are listed as ignored, with how to run them.

mod api;
mod api_support;
mod cli;
mod dashboard;
mod deploy;
mod event_time;
mod formats;
mod hostile;
mod kafka;
mod kafka_backlog;
mod kafka_failures;
mod properties;
mod retention;
mod scenarios;
mod schemas;
mod serve;
mod snapshots;
