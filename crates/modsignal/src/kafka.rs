//! `modsignal run` on Kafka: the options and the config file that make a [`WorkerConfig`], the
//! tokio runtime the worker runs on, and the signals that stop it.
//!
//! Settings come from the `[kafka]` section of `--config` (see `config/modsignal.toml`), with
//! each command-line option (or its `MODSIGNAL_` environment variable) laid over the file's
//! value. Other top-level sections of the file belong to other parts of the binary and are
//! left alone here.
//!
//! The first SIGTERM or SIGINT starts a graceful stop: the worker stops reading, flushes, waits
//! up to `shutdown_timeout` for the broker's acknowledgements, commits and leaves the group. A
//! second signal exits at once (status 128 + the signal's number), and so does a stop that
//! overruns `shutdown_timeout` by [`EXIT_GRACE`] (status 1): in both cases whatever was not
//! committed is processed again by the next owner of its partition, so nothing is lost.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use modsignal_core::Policy;
use modsignal_kafka::config::{Properties, PropertyValue, parse_duration};
use modsignal_kafka::{KafkaSection, WorkerConfig, WorkerStatus};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// How long past `shutdown_timeout` a stopping worker may take to commit and leave the group
/// before the process exits anyway: leaving a group whose broker does not answer can block for
/// a minute inside librdkafka, longer than an orchestrator waits.
pub const EXIT_GRACE: Duration = Duration::from_secs(5);
// The worker's own bounds on the final commit and on leaving the group fit inside the grace.
const _: () = assert!(EXIT_GRACE.as_secs() > 2 * modsignal_kafka::LEAVE_TIMEOUT.as_secs());

/// The Kafka options of `modsignal run`. Any of them (or `--config`) switches `run` from files
/// to the Kafka worker.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Kafka worker (any of these runs modsignal on Kafka instead of files)")]
pub struct KafkaArgs {
    /// A config file (TOML) whose `[kafka]` section configures the worker; see
    /// config/modsignal.toml for every setting and its default. The options below override it.
    #[arg(long, value_name = "FILE", env = "MODSIGNAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// The bootstrap servers, `host:port` separated by commas.
    #[arg(long, value_name = "HOST:PORT,...", env = "MODSIGNAL_BROKERS")]
    pub brokers: Option<String>,
    /// A topic of canonical events, keyed by the message they concern (may be repeated; the
    /// variable takes a comma-separated list).
    #[arg(
        long = "input-topic",
        value_name = "TOPIC",
        env = "MODSIGNAL_INPUT_TOPIC",
        value_delimiter = ','
    )]
    pub input_topics: Vec<String>,
    /// Where flags go, keyed by `flag_id` [default: modsignal.flags].
    #[arg(long, value_name = "TOPIC", env = "MODSIGNAL_OUTPUT_TOPIC")]
    pub output_topic: Option<String>,
    /// Where records that cannot be decoded or applied go, with their reason in headers
    /// [default: modsignal.dead-letters].
    #[arg(long, value_name = "TOPIC", env = "MODSIGNAL_DEAD_LETTER_TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// The consumer group: instances in one group share the input partitions [default: modsignal].
    #[arg(long, value_name = "GROUP", env = "MODSIGNAL_GROUP")]
    pub group: Option<String>,
    /// How often engines are flushed (held-back work done, its flags sent) and offsets
    /// committed [default: 1s].
    #[arg(long, value_name = "DURATION", env = "MODSIGNAL_FLUSH_INTERVAL", value_parser = duration_arg)]
    pub flush_interval: Option<String>,
    /// After this long without a record, a partition's engine is finished and every flag is
    /// brought up to date [default: 30s].
    #[arg(long, value_name = "DURATION", env = "MODSIGNAL_IDLE_AFTER", value_parser = duration_arg)]
    pub idle_after: Option<String>,
    /// How far in event time an input partition may be read ahead of the slowest one still
    /// being read before it is paused, so a backlog is read in event-time order [default: 1h].
    #[arg(long, value_name = "DURATION", env = "MODSIGNAL_MAX_EVENT_TIME_LEAD", value_parser = duration_arg)]
    pub max_event_time_lead: Option<String>,
    /// On SIGTERM, how long to wait for the broker to acknowledge what was produced before
    /// committing and leaving the group [default: 30s].
    #[arg(long, value_name = "DURATION", env = "MODSIGNAL_SHUTDOWN_TIMEOUT", value_parser = duration_arg)]
    pub shutdown_timeout: Option<String>,
    /// `at_least_once`, or `exactly_once`: each flush writes the flags and the input offsets in
    /// one Kafka transaction, so a `read_committed` consumer sees every flag revision once (needs
    /// a changelog topic and brokers with transactions) [default: `at_least_once`].
    #[arg(long, value_name = "GUARANTEE", env = "MODSIGNAL_PROCESSING_GUARANTEE", value_parser = ["at_least_once", "exactly_once"])]
    pub processing_guarantee: Option<String>,
    /// Records longer than this go to the dead-letter topic [default: the decoder's limit, 1 MiB].
    #[arg(long, value_name = "BYTES", env = "MODSIGNAL_MAX_RECORD_BYTES")]
    pub max_record_bytes: Option<usize>,
    /// Dead letters carry the original record cut to this many bytes [default: 524288].
    #[arg(long, value_name = "BYTES", env = "MODSIGNAL_DEAD_LETTER_MAX_BYTES")]
    pub dead_letter_max_bytes: Option<usize>,
    /// A directory for local snapshots of each held partition's state: a restarted instance
    /// restores from them instead of replaying its partitions from the beginning [default: none].
    #[arg(long, value_name = "DIR", env = "MODSIGNAL_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// A compacted topic for snapshots of each partition's state, from which an instance that
    /// takes a partition over restores it [default: none].
    #[arg(long, value_name = "TOPIC", env = "MODSIGNAL_CHANGELOG_TOPIC")]
    pub changelog_topic: Option<String>,
    /// How often a held partition that moved is snapshotted (with --state-dir or
    /// --changelog-topic) [default: 60s].
    #[arg(long, value_name = "DURATION", env = "MODSIGNAL_SNAPSHOT_INTERVAL", value_parser = duration_arg)]
    pub snapshot_interval: Option<String>,
    /// Routing: a topic through which events are re-keyed by the message they concern, needed
    /// when the input is not keyed that way (platform streams, keyed by account) [default: none].
    #[arg(long, value_name = "TOPIC", env = "MODSIGNAL_REPARTITION_TOPIC")]
    pub repartition_topic: Option<String>,
    /// A compacted topic through which the instances share how far event time has come, so
    /// that a quiet partition's messages cross their exposure stages as the rest of the input
    /// moves on (routing does this by itself) [default: none].
    #[arg(long, value_name = "TOPIC", env = "MODSIGNAL_WATERMARK_TOPIC")]
    pub watermark_topic: Option<String>,
    /// How an input topic is written: `TOPIC=canonical|jetstream|mastodon|twitter` (may be
    /// repeated; the variable takes a comma-separated list). Topics not named are canonical;
    /// other formats need --repartition-topic.
    #[arg(
        long = "input-format",
        value_name = "TOPIC=FORMAT",
        env = "MODSIGNAL_INPUT_FORMAT",
        value_delimiter = ','
    )]
    pub input_formats: Vec<String>,
    /// A librdkafka setting passed through, such as `security.protocol=SASL_SSL` (may be
    /// repeated; the variable takes one setting per line, so values may contain commas).
    #[arg(
        long = "kafka-property",
        value_name = "KEY=VALUE",
        env = "MODSIGNAL_KAFKA_PROPERTY",
        value_delimiter = '\n'
    )]
    pub properties: Vec<String>,
}

/// Durations are checked while the command line is parsed, so that a bad one is reported
/// against its option; they are kept as written for [`KafkaSection`].
fn duration_arg(text: &str) -> Result<String, String> {
    parse_duration(text).map(|_| text.trim().to_owned())
}

impl KafkaArgs {
    /// Whether any Kafka setting was given: `run` then runs the worker.
    pub fn is_set(&self) -> bool {
        self.any_option() || has_kafka_section(self.config.as_deref())
    }

    fn any_option(&self) -> bool {
        self.brokers.is_some()
            || !self.input_topics.is_empty()
            || self.output_topic.is_some()
            || self.dead_letter_topic.is_some()
            || self.group.is_some()
            || self.flush_interval.is_some()
            || self.idle_after.is_some()
            || self.max_event_time_lead.is_some()
            || self.shutdown_timeout.is_some()
            || self.processing_guarantee.is_some()
            || self.max_record_bytes.is_some()
            || self.dead_letter_max_bytes.is_some()
            || self.state_dir.is_some()
            || self.changelog_topic.is_some()
            || self.snapshot_interval.is_some()
            || self.repartition_topic.is_some()
            || self.watermark_topic.is_some()
            || self.input_formats.iter().any(|f| !f.trim().is_empty())
            || self.properties.iter().any(|p| !p.trim().is_empty())
    }

    /// The options as a section to lay over the file's.
    #[allow(clippy::needless_update, reason = "the section grows; see the comment at its end")]
    fn section(&self) -> Result<KafkaSection> {
        let mut properties = Properties::default();
        for entry in &self.properties {
            // A variable written as a block (one setting per line) may end with an empty line.
            let entry = entry.trim_end_matches('\r');
            if entry.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = entry.split_once('=') else {
                bail!("--kafka-property `{entry}` is not KEY=VALUE");
            };
            let key = key.trim();
            if key.is_empty() {
                bail!("--kafka-property `{entry}` has no key");
            }
            properties.insert(key.to_owned(), PropertyValue::Text(value.to_owned()));
        }
        let mut formats = std::collections::BTreeMap::new();
        for entry in self.input_formats.iter().map(|f| f.trim()).filter(|f| !f.is_empty()) {
            let Some((topic, format)) = entry.split_once('=') else {
                bail!("--input-format `{entry}` is not TOPIC=FORMAT");
            };
            formats.insert(topic.trim().to_owned(), format.trim().to_owned());
        }
        let topics = self
            .input_topics
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>();
        Ok(KafkaSection {
            brokers: self.brokers.clone(),
            group: self.group.clone(),
            input_topics: (!topics.is_empty()).then_some(topics),
            output_topic: self.output_topic.clone(),
            dead_letter_topic: self.dead_letter_topic.clone(),
            flush_interval: self.flush_interval.clone(),
            idle_after: self.idle_after.clone(),
            max_event_time_lead: self.max_event_time_lead.clone(),
            shutdown_timeout: self.shutdown_timeout.clone(),
            processing_guarantee: self.processing_guarantee.clone(),
            max_record_bytes: self.max_record_bytes,
            dead_letter_max_bytes: self.dead_letter_max_bytes,
            state_dir: self.state_dir.as_ref().map(|d| d.display().to_string()),
            changelog_topic: self.changelog_topic.clone(),
            snapshot_interval: self.snapshot_interval.clone(),
            repartition_topic: self.repartition_topic.clone(),
            watermark_topic: self.watermark_topic.clone(),
            formats,
            properties,
            // A setting added to the section before it has an option here comes from the file
            // alone, rather than breaking the build of the binary.
            ..KafkaSection::default()
        })
    }

    /// The worker's configuration: the file's `[kafka]` section, the options laid over it,
    /// defaults filled in and everything validated.
    pub fn worker_config(&self, policy: Policy) -> Result<WorkerConfig> {
        let options = self.section()?;
        let base = match crate::settings::load_config(self.config.as_deref())? {
            None => KafkaSection::default(),
            Some(file) => match file.kafka {
                Some(section) => section,
                // The options alone may be enough; the file may hold only other sections.
                None if self.any_option() => KafkaSection::default(),
                None => bail!(
                    "the config file {} has no [kafka] section, and no Kafka option was given: \
                     `run --config` runs the Kafka worker (see config/modsignal.toml)",
                    self.config
                        .as_deref()
                        .unwrap_or(std::path::Path::new("(MODSIGNAL__ variables)"))
                        .display()
                ),
            },
        };
        base.overlay(options).into_config(policy).context(
            "Kafka settings (the [kafka] section of --config, overridden by --brokers, --input-topic, … \
             and their MODSIGNAL_ variables)",
        )
    }
}

/// Whether the config file, with the `MODSIGNAL__KAFKA__…` variables laid over it, has a
/// `[kafka]` section. A file that cannot be read, or is not TOML, counts as having one, so that
/// the Kafka path reports what is wrong with it.
fn has_kafka_section(path: Option<&std::path::Path>) -> bool {
    match crate::settings::load_config(path) {
        Ok(None) => false,
        Ok(Some(file)) => file.kafka.is_some(),
        Err(_) => true,
    }
}

/// Runs the worker until SIGTERM or SIGINT, on a runtime of its own.
///
/// The runtime is multi-threaded with two workers. The Kafka worker is a single task that
/// applies records between awaits, so more threads would not make it faster (librdkafka does
/// its network work on threads of its own), but a second thread keeps the signal handler, the
/// shutdown deadline and whatever else the binary serves next to the worker responsive while the
/// worker task is busy with a batch: a second signal must exit at once, not after the batch.
/// Two threads also match the machines this runs on; more would only contend for them.
///
/// With `http`, the same runtime serves the query API, the dashboard and `/metrics`, and the
/// API's store follows the whole output topic; the instance is ready once the store has read
/// it to its end and no partition of the worker is being restored.
pub fn run(config: WorkerConfig, http: Option<crate::http::Http>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("modsignal")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async move {
        let shutdown = shutdown_on_signals(config.shutdown_timeout)?;
        let Some(http) = http else {
            return Box::pin(modsignal_kafka::run(config, shutdown))
                .await
                .map_err(anyhow::Error::from);
        };
        // One stop signal for the worker, the follower of the output topic and the server.
        let stop = CancellationToken::new();
        let stopped = || stop.clone().cancelled_owned();
        let (status_tx, mut status_rx) = tokio::sync::watch::channel(WorkerStatus::default());
        let caught_up = Arc::new(AtomicBool::new(false));
        let follower = {
            let (config, store, caught_up, stop) = (config.clone(), http.store.clone(), caught_up.clone(), stopped());
            tokio::spawn(async move {
                let ingest = |v: &[u8]| {
                    let ingested = std::str::from_utf8(v)
                        .map_err(|e| e.to_string())
                        .and_then(|t| store.ingest_json(t).map_err(|e| e.to_string()));
                    if let Err(error) = ingested {
                        tracing::warn!(%error, "a record of the output topic is not a flag: not served");
                    }
                };
                modsignal_kafka::follow_output(&config, ingest, || caught_up.store(true, Ordering::Release), stop).await
            })
        };
        let readiness = {
            let (store, stop) = (http.store.clone(), stopped());
            tokio::spawn(async move {
                let mut stop = std::pin::pin!(stop);
                let mut published = false;
                loop {
                    tokio::select! {
                        () = &mut stop => break,
                        changed = status_rx.changed() => published |= changed.is_ok(),
                        () = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                    // Ready once a member of its groups with every partition's state rebuilt:
                    // before the first assignment there is nothing restoring yet, and nothing
                    // served yet either.
                    let (joined, restoring) = {
                        let s = status_rx.borrow();
                        (s.joined, s.restoring)
                    };
                    store.set_ready(published && joined && restoring == 0 && caught_up.load(Ordering::Acquire));
                }
                // A stopping instance takes no new queries: probes see it at once.
                store.set_ready(false);
            })
        };
        let server = {
            let (http, stop) = (http.clone(), stop.clone());
            tokio::spawn(async move {
                let served = http.serve(stop.clone().cancelled_owned()).await;
                // A server that cannot serve (its address taken) stops the instance: running
                // without its probes and metrics would look dead to the orchestrator anyway.
                stop.cancel();
                served
            })
        };
        let hooks = modsignal_kafka::Hooks {
            status: Some(status_tx),
            metrics: Some(http.metrics.clone()),
        };
        let worker_stop = {
            let stop = stop.clone();
            async move {
                tokio::select! {
                    () = shutdown => {}
                    () = stop.cancelled() => {}
                }
                stop.cancel();
            }
        };
        let worker = Box::pin(modsignal_kafka::run_with(config, worker_stop, hooks)).await;
        stop.cancel();
        let _ = readiness.await;
        match follower.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "the output follower stopped on an error"),
            Err(e) => tracing::warn!(error = %e, "the output follower failed"),
            Ok(Ok(())) => {}
        }
        let served = server
            .await
            .map_err(|e| anyhow::anyhow!("the HTTP server task failed: {e}"));
        let summary = worker.map_err(anyhow::Error::from)?;
        served??;
        Ok(summary)
    });
    // Blocking calls still running (a commit to an unresponsive broker) must not hold the exit.
    runtime.shutdown_background();
    match result {
        Ok(_summary) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, "the Kafka worker stopped on an error");
            Err(e.context("the Kafka worker stopped"))
        }
    }
}

/// A future that resolves on the first SIGTERM or SIGINT. After it, a second signal, or a stop
/// that takes longer than `shutdown_timeout` and [`EXIT_GRACE`], ends the process at once.
fn shutdown_on_signals(shutdown_timeout: Duration) -> Result<impl std::future::Future<Output = ()> + Send> {
    // Registered before the worker starts, so that a signal that comes while it connects is
    // never the default action (an immediate exit) but a graceful stop.
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = first,
            shutdown_timeout = ?shutdown_timeout,
            "stopping: draining, committing and leaving the group; a second signal exits at once"
        );
        let _ = tx.send(());
        let deadline = tokio::time::sleep(shutdown_timeout + EXIT_GRACE);
        let (name, status) = tokio::select! {
            _ = term.recv() => ("SIGTERM", 128 + libc::SIGTERM),
            _ = int.recv() => ("SIGINT", 128 + libc::SIGINT),
            () = deadline => {
                tracing::error!(
                    waited = ?(shutdown_timeout + EXIT_GRACE),
                    "the worker did not stop in time: exiting; what was not committed is processed again after a restart"
                );
                std::process::exit(1);
            }
        };
        tracing::warn!(
            signal = name,
            "second signal: exiting at once; what was not committed is processed again after a restart"
        );
        std::process::exit(status);
    });
    Ok(async move {
        // The sender lives in a task that only ends the process: it is never dropped first.
        let _ = rx.await;
    })
}

/// `modsignal topics`: creates the topics the configuration names that are missing (unless
/// `check_only`) and checks the settings of those that exist, printing one line per topic.
/// Fails when a topic has a setting that breaks a guarantee, or with `check_only` when one is
/// missing.
pub fn topics(args: &KafkaArgs, layout: modsignal_kafka::topics::Layout, check_only: bool) -> Result<()> {
    use modsignal_kafka::topics::{self, Severity};
    if !args.is_set() {
        bail!("no Kafka settings: give --config with a [kafka] section, or --brokers and the topic options");
    }
    // The policy plays no part in which topics there are.
    let config = args.worker_config(Policy::default())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let admin = topics::admin(&config)?;
        let names: Vec<String> = topics::wanted(&config, &layout, &std::collections::BTreeMap::new())
            .into_iter()
            .map(|w| w.name)
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let existing = topics::describe(&admin, &names, topics::ADMIN_TIMEOUT).await?;
        let counts = existing.iter().map(|(t, e)| (t.clone(), e.partitions)).collect();
        let wanted = topics::wanted(&config, &layout, &counts);
        let problems = topics::check(&config, &wanted, &existing);
        let missing: Vec<&topics::Wanted> = wanted.iter().filter(|w| !existing.contains_key(&w.name)).collect();
        let mut out = std::io::stdout().lock();
        use std::fmt::Write as _;
        use std::io::Write as _;
        for w in &wanted {
            match existing.get(&w.name) {
                Some(e) => writeln!(out, "{} topic `{}`: exists, {}", w.role, w.name, partitions(e.partitions))?,
                None if check_only => writeln!(out, "{} topic `{}`: missing", w.role, w.name)?,
                // Said once it is created, below.
                None => {}
            }
        }
        if !check_only {
            topics::create(&admin, &missing, &layout).await?;
            for w in &missing {
                let settings = w.settings.iter().fold(String::new(), |mut s, (k, v)| {
                    let _ = write!(s, ", {k}={v}");
                    s
                });
                writeln!(out, "{} topic `{}`: created, {}{settings}", w.role, w.name, partitions(w.partitions))?;
            }
        }
        for p in &problems {
            writeln!(out, "{p}")?;
        }
        out.flush()?;
        let errors = problems.iter().filter(|p| p.severity == Severity::Error).count();
        if errors > 0 {
            bail!("{errors} topic setting(s) would break a guarantee (the lines that start with `error:`); modsignal never changes an existing topic: fix them with kafka-configs or your platform's tools");
        }
        if check_only && !missing.is_empty() {
            bail!(
                "{} topic(s) missing: run `modsignal topics` without --check to create them",
                missing.len()
            );
        }
        Ok(())
    })
}

fn partitions(n: i32) -> String {
    if n == 1 {
        "1 partition".into()
    } else {
        format!("{n} partitions")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The shipped, documented config file.
    const SHIPPED: &str = include_str!("../../../config/modsignal.toml");

    #[derive(Parser)]
    struct Options {
        #[command(flatten)]
        kafka: KafkaArgs,
    }

    fn options(args: &[&str]) -> KafkaArgs {
        Options::try_parse_from(std::iter::once("modsignal").chain(args.iter().copied()))
            .unwrap()
            .kafka
    }

    #[test]
    fn the_shipped_config_documents_the_defaults_the_worker_uses() {
        let c = crate::settings::parse_config(SHIPPED, "config/modsignal.toml")
            .unwrap()
            .kafka
            .expect("a [kafka] section")
            .into_config(Policy::default())
            .unwrap();
        // Only the two required settings, which have no default, differ from `new`: every other
        // value written in the file is the one the worker would take without it.
        assert_eq!(
            c,
            WorkerConfig::new("localhost:9092", vec!["modsignal.events".into()], Policy::default())
        );
    }

    #[test]
    fn a_top_level_section_the_binary_does_not_know_is_refused_by_name() {
        // The shipped file has [kafka] and [http]; a misspelt section must not pass unnoticed.
        let text = format!("{SHIPPED}\n[kafak]\nbrokers = \"k:9092\"\n");
        let e = crate::settings::parse_config(&text, "the test's file")
            .err()
            .expect("refused");
        assert!(e.to_string().contains("kafak"), "{e}");
    }

    #[test]
    fn a_config_error_does_not_quote_the_line_that_holds_a_token() {
        let text = "[http]\ntokens = [{ token = \"analyst-token-0123456789\", role = \"chief\" }]\n";
        let e = crate::settings::parse_config(text, "the test's file")
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("unknown variant") && e.contains("line 2"), "{e}");
        assert!(!e.contains("0123456789"), "a parse error must not quote the token: {e}");
    }

    #[test]
    fn options_override_the_file_setting_by_setting() {
        let path = std::env::temp_dir().join(format!("modsignal-kafka-args-{}.toml", std::process::id()));
        std::fs::write(&path, SHIPPED).unwrap();
        let args = options(&[
            "--config",
            path.to_str().unwrap(),
            "--brokers",
            "k1:9093,k2:9093",
            "--input-topic",
            "a,b",
            "--input-topic",
            "c",
            "--group",
            "g2",
            "--idle-after",
            "2s",
            "--state-dir",
            "/var/lib/modsignal",
            "--changelog-topic",
            "modsignal.changelog",
            "--snapshot-interval",
            "10s",
            "--repartition-topic",
            "modsignal.repartition",
            "--input-format",
            "b=jetstream",
            "--kafka-property",
            "sasl.password=p,with=commas",
            "--kafka-property",
            "security.protocol=SASL_SSL\nsession.timeout.ms=6000\n",
        ]);
        assert!(args.is_set());
        let c = args.worker_config(Policy::default()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(c.brokers, "k1:9093,k2:9093");
        assert_eq!(c.input_topics, ["a", "b", "c"]);
        assert_eq!(c.group_id, "g2");
        assert_eq!(c.idle_after, Duration::from_secs(2));
        assert_eq!(c.flush_interval, Duration::from_secs(1), "kept from the file");
        assert_eq!(c.output_topic, "modsignal.flags", "kept from the file");
        assert_eq!(c.state_dir.as_deref(), Some(std::path::Path::new("/var/lib/modsignal")));
        assert_eq!(c.changelog_topic.as_deref(), Some("modsignal.changelog"));
        assert_eq!(c.snapshot_interval, Duration::from_secs(10));
        assert_eq!(c.repartition_topic.as_deref(), Some("modsignal.repartition"));
        assert_eq!(
            c.input_formats
                .iter()
                .map(|(t, f)| (t.as_str(), f.to_string()))
                .collect::<Vec<_>>(),
            [("b", "jetstream".to_owned())]
        );
        assert_eq!(c.properties["sasl.password"], "p,with=commas");
        assert_eq!(c.properties["security.protocol"], "SASL_SSL");
        assert_eq!(c.properties["session.timeout.ms"], "6000");
        assert_eq!(c.properties.len(), 3);
    }

    #[test]
    fn options_alone_are_enough_and_their_errors_name_the_setting() {
        let c = options(&["--brokers", "b:1", "--input-topic", "e"])
            .worker_config(Policy::default())
            .unwrap();
        assert_eq!(c, WorkerConfig::new("b:1", vec!["e".into()], Policy::default()));
        assert!(!options(&[]).is_set());

        let e = options(&["--brokers", "b:1"])
            .worker_config(Policy::default())
            .unwrap_err();
        assert!(format!("{e:#}").contains("kafka.input_topics is required"), "{e:#}");
        let e = options(&["--brokers", "b:1", "--input-topic", "e", "--kafka-property", "nonsense"])
            .worker_config(Policy::default())
            .unwrap_err();
        assert!(format!("{e:#}").contains("not KEY=VALUE"), "{e:#}");
        let e = options(&[
            "--brokers",
            "b:1",
            "--input-topic",
            "e",
            "--kafka-property",
            "group.id=x",
        ])
        .worker_config(Policy::default())
        .unwrap_err();
        assert!(format!("{e:#}").contains("set `group` instead"), "{e:#}");
        let e = Options::try_parse_from(["modsignal", "--flush-interval", "5"])
            .err()
            .unwrap();
        assert!(e.to_string().contains("no unit"), "{e}");
    }

    #[test]
    fn a_config_file_without_a_kafka_section_needs_options() {
        let path = std::env::temp_dir().join(format!("modsignal-kafka-nosection-{}.toml", std::process::id()));
        std::fs::write(&path, "[http]\naddress = \"0.0.0.0:8080\"\n").unwrap();
        let file = path.to_str().unwrap();
        let e = options(&["--config", file])
            .worker_config(Policy::default())
            .unwrap_err();
        assert!(e.to_string().contains("has no [kafka] section"), "{e:#}");
        let c = options(&["--config", file, "--brokers", "b:1", "--input-topic", "e"])
            .worker_config(Policy::default())
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(c.brokers, "b:1");
    }
}
