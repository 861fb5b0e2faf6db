//! The command line, as a library function so that tests can drive it in-process.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::files::{Output, Pipeline, Rejects};
use anyhow::{Context, Result, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use modsignal_core::Ts;
use modsignal_formats::{Format, LabelWriter};
use modsignal_sim::{SimConfig, Simulator};

#[derive(Parser)]
#[command(
    name = "modsignal",
    version,
    about = "Measures the reach and exposure of labelled messages and writes explained risk flags that follow the CPS guidelines on social media. It never moderates."
)]
struct Cli {
    /// Log format on stderr: `text` for people, `json` for production log pipelines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "MODSIGNAL_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Reads canonical events (or a platform's stream, see --format) and writes flags. With no
    /// --input, runs on simulated traffic. With --config or any Kafka option, runs the Kafka
    /// worker instead: events from input topics, flags to an output topic, until SIGTERM.
    Run(Box<RunArgs>),
    /// Writes a realistic synthetic stream of canonical events.
    Simulate(SimArgs),
    /// Creates every Kafka topic the configuration names that is missing (output, dead-letter
    /// and watermark topics compacted or not as each needs, the changelog with as many
    /// partitions as the partitions that write to it), and checks the settings of those that
    /// exist: each problem is printed, and one that would break a guarantee (a changelog that
    /// is not compacted, a compacted dead-letter topic, …) makes the exit status 1. Existing
    /// topics are never changed.
    Topics(Box<TopicsArgs>),
    /// Writes the AT Protocol labeler declaration (an `app.bsky.labeler.service` record) for
    /// --flag-format atproto-label: every label value modsignal writes, declared informational
    /// so that Bluesky clients neither hide nor warn on a labelled post. Publish it in the
    /// labeler's repository under the record key `self`.
    LabelerDeclaration(DeclarationArgs),
}

#[derive(Parser)]
struct TopicsArgs {
    /// Partitions of a missing input, output, dead-letter or repartition topic.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    partitions: i32,
    /// Replicas of each partition of a missing topic [default: the brokers'
    /// default.replication.factor]. With 3 or more, topics are created with
    /// min.insync.replicas = 2, which the worker's producer (acks=all) then waits for.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=100))]
    replication_factor: Option<i32>,
    /// Only check: create nothing, and exit with status 1 when a topic is missing too.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    kafka: crate::kafka::KafkaArgs,
}

#[derive(Parser)]
struct DeclarationArgs {
    /// The record's `createdAt` (RFC 3339). Defaults to now.
    #[arg(long, value_name = "TIME")]
    created_at: Option<String>,
    /// Where the record goes; `-` for standard output.
    #[arg(long, short, default_value = "-")]
    output: String,
}

#[derive(Parser)]
struct RunArgs {
    /// Events, one record per line (see --format); `-` for standard input. Without it,
    /// modsignal runs on simulated traffic (see --events and --seed).
    #[arg(long, short, env = "MODSIGNAL_INPUT")]
    input: Option<String>,
    /// How the records of --input are written: canonical events, Bluesky Jetstream JSON,
    /// Mastodon streaming (WebSocket frames or server-sent-event lines), or Twitter/X v1.1
    /// statuses, stream notices and v2 compliance events.
    #[arg(long, value_enum, default_value_t = InputFormat::Canonical, env = "MODSIGNAL_FORMAT")]
    format: InputFormat,
    /// A file of canonical events (may be repeated): follower counts that a platform's stream
    /// lacks (`account` events with `followers`), classifier and reviewer labels, account
    /// changes, applied in event time with --input. It is read as a stream in the order
    /// written, so write it in event-time order: an event out of order is applied as soon as
    /// it is read.
    #[arg(long = "side-input", value_name = "FILE", env = "MODSIGNAL_SIDE_INPUT")]
    side_input: Vec<PathBuf>,
    /// What is written: `flag` (modsignal's flag, version 1) or `atproto-label` (AT Protocol
    /// labels of the messages whose flags are raised, retracted when none is raised any more).
    #[arg(long, value_enum, default_value_t = FlagFormat::Flag, env = "MODSIGNAL_FLAG_FORMAT")]
    flag_format: FlagFormat,
    /// The labeler's DID written as `src` of every label; required with
    /// --flag-format atproto-label.
    #[arg(long, value_name = "DID", env = "MODSIGNAL_LABEL_SRC")]
    label_src: Option<String>,
    /// Where flags go, one JSON object per line; `-` for standard output.
    #[arg(long, short, default_value = "-", env = "MODSIGNAL_OUTPUT")]
    output: String,
    /// The risk policy (TOML). Defaults to the embedded config/policy.toml.
    #[arg(long, env = "MODSIGNAL_POLICY")]
    policy: Option<PathBuf>,
    /// Judge every event against this machine's clock as the time it was received: an event
    /// stamped more than the policy's `stream.max_skew_secs` (5 minutes) later is rejected as
    /// `future`. For live input; without it, an event more than `stream.max_jump_secs` (a year)
    /// after the stream's event time is.
    #[arg(long, env = "MODSIGNAL_INGEST_CLOCK")]
    ingest_clock: bool,
    /// Where bad lines go, with their line number and reason; created on the first bad line,
    /// but a path where it could not be created is refused at start.
    #[arg(long, default_value = "modsignal-rejects.jsonl", env = "MODSIGNAL_REJECTS")]
    rejects: PathBuf,
    /// Simulated events to run on when there is no --input.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Seed of the simulated traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated events per second of event time. The default spreads 200,000 events over
    /// about five and a half hours, long enough for removals, reviews and exposure stages.
    #[arg(long, default_value_t = DEFAULT_RATE)]
    rate: f64,
    #[command(flatten)]
    kafka: crate::kafka::KafkaArgs,
    #[command(flatten)]
    http: crate::http::HttpArgs,
}

/// The options of `run` that say where file mode reads and writes: with Kafka settings they
/// would be silently ignored, so they are refused instead. (`--policy` applies to both modes.)
const FILE_MODE_OPTIONS: &[(&str, &str)] = &[
    ("input", "--input"),
    ("format", "--format"),
    ("side_input", "--side-input"),
    ("flag_format", "--flag-format"),
    ("label_src", "--label-src"),
    ("output", "--output"),
    ("rejects", "--rejects"),
    ("ingest_clock", "--ingest-clock"),
    ("events", "--events"),
    ("seed", "--seed"),
    ("rate", "--rate"),
];

const DEFAULT_RATE: f64 = 10.0;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InputFormat {
    Canonical,
    Jetstream,
    Mastodon,
    Twitter,
}

impl From<InputFormat> for Format {
    fn from(f: InputFormat) -> Format {
        match f {
            InputFormat::Canonical => Format::Canonical,
            InputFormat::Jetstream => Format::Jetstream,
            InputFormat::Mastodon => Format::Mastodon,
            InputFormat::Twitter => Format::Twitter,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FlagFormat {
    Flag,
    AtprotoLabel,
}

fn sim_config(events: u64, seed: u64, rate: f64) -> Result<SimConfig> {
    let cfg = SimConfig {
        events,
        seed,
        events_per_sec: rate,
        ..SimConfig::default()
    };
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("simulation settings: {}", e.0))?;
    Ok(cfg)
}

#[derive(Parser)]
struct SimArgs {
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Events per second of event time.
    #[arg(long, default_value_t = DEFAULT_RATE)]
    rate: f64,
    /// Where the events go; `-` for standard output.
    #[arg(long, short, default_value = "-")]
    output: String,
    /// Viral cascades instead of the general stream: every post labelled, heavy-tailed reshare
    /// cascades (the largest thousands of reshares, chains five deep), half of the posts taken
    /// down midway; the shape on which the most flag revisions are written per event. --rate
    /// does not apply (cascades start two minutes apart).
    #[arg(long)]
    viral: bool,
}

/// Parses `args` (the program name first) and runs the command.
pub fn main_with_args<I, T>(args: I) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    // The matches are kept to tell options given (on the command line or by variable) from
    // defaults: file-mode options given with Kafka settings are refused.
    let matches = Cli::command().try_get_matches_from(args).unwrap_or_else(|e| e.exit());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging(cli.log_format);
    match cli.command {
        Command::Run(args) if args.kafka.is_set() => {
            let run_matches = matches
                .subcommand_matches("run")
                .expect("the run subcommand was parsed");
            run_kafka(*args, run_matches)
        }
        Command::Run(args) => run(*args),
        Command::Simulate(args) => simulate(args),
        Command::Topics(args) => crate::kafka::topics(
            &args.kafka,
            modsignal_kafka::topics::Layout {
                partitions: args.partitions,
                replication: args.replication_factor,
            },
            args.check,
        ),
        Command::LabelerDeclaration(args) => labeler_declaration(args),
    }
}

fn labeler_declaration(args: DeclarationArgs) -> Result<()> {
    let created_at = match &args.created_at {
        Some(s) => Ts::parse_rfc3339(s).with_context(|| format!("--created-at {s:?} is not an RFC 3339 time"))?,
        // The binary is the edge: reading the clock here keeps the formats crate pure.
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("the clock is before 1970")?;
            Ts(i64::try_from(now.as_millis()).context("the clock is beyond the year 292 million")?)
        }
    };
    let mut out = writer(&args.output)?;
    let json = modsignal_formats::labeler_declaration(created_at);
    writeln!(out, "{json}")
        .and_then(|()| out.flush())
        .with_context(|| format!("cannot write {}", output_name(&args.output)))
}

/// `run` with Kafka settings: the worker, until SIGTERM or SIGINT.
fn run_kafka(args: RunArgs, matches: &ArgMatches) -> Result<()> {
    let given: Vec<String> = FILE_MODE_OPTIONS
        .iter()
        .filter_map(|(id, flag)| match matches.value_source(id) {
            Some(ValueSource::CommandLine) => Some((*flag).to_owned()),
            Some(ValueSource::EnvVariable) => Some(format!("{flag} (set by its MODSIGNAL_ variable)")),
            _ => None,
        })
        .collect();
    if !given.is_empty() {
        let what = if given.len() == 1 {
            "is a file-mode option"
        } else {
            "are file-mode options"
        };
        bail!(
            "{} {what}, but Kafka settings were given (--config, --brokers, --input-topic, … or their MODSIGNAL_ \
             variables): on Kafka, events come from the input topics, flags go to the output topic and bad records \
             to the dead-letter topic. Remove one or the other.",
            given.join(", ")
        );
    }
    let policy = crate::policy::load(args.policy.as_deref())?;
    let config = args.kafka.worker_config(policy)?;
    let http = crate::http::load(args.kafka.config.as_deref(), args.http.http_address)?
        .map(|c| crate::http::Http::new(c, modsignal_metrics::Metrics::new()));
    crate::kafka::run(config, http)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MODSIGNAL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a worker's logs usually go to a file or a collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr);
    // A second initialisation (tests run several commands in one process) keeps the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Opens a file to read, refusing a directory: Linux opens one and fails only at the first
/// read, with an error that does not say which file it was.
fn open_to_read(path: &Path, what: &str) -> Result<File> {
    let file = File::open(path).with_context(|| format!("cannot open {what}{}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {what}{}", path.display()))?;
    if meta.is_dir() {
        bail!("cannot read {what}{}: it is a directory", path.display());
    }
    Ok(file)
}

/// How errors name an output: its path, or standard output for `-`.
fn output_name(path: &str) -> &str {
    if path == "-" { "standard output" } else { path }
}

fn writer(path: &str) -> Result<Box<dyn Write>> {
    Ok(if path == "-" {
        Box::new(BufWriter::with_capacity(1 << 16, io::stdout().lock()))
    } else {
        Box::new(BufWriter::with_capacity(
            1 << 16,
            File::create(path).with_context(|| format!("cannot create {path}"))?,
        ))
    })
}

fn run(args: RunArgs) -> Result<()> {
    let policy = crate::policy::load(args.policy.as_deref())?;
    let format = Format::from(args.format);
    if args.input.is_none() && format != Format::Canonical {
        bail!("--format {format} describes --input, and there is none (simulated traffic is canonical)");
    }
    let output = match (args.flag_format, args.label_src.as_deref()) {
        (FlagFormat::Flag, _) => Output::Flags,
        (FlagFormat::AtprotoLabel, None) => {
            bail!("--flag-format atproto-label needs the labeler's DID: --label-src (or MODSIGNAL_LABEL_SRC)")
        }
        (FlagFormat::AtprotoLabel, Some(src)) => Output::Labels(LabelWriter::new(src).context("--label-src")?),
    };
    // Every file is opened (and the reject file's path checked) before the output is created,
    // so a run that cannot start fails without truncating it, and fails naming the file.
    let input = match args.input.as_deref() {
        Some(path) if path != "-" => Some(open_to_read(Path::new(path), "")?),
        _ => None,
    };
    let sides = args
        .side_input
        .iter()
        .map(|path| open_to_read(path, "side input ").map(|f| (path, f)))
        .collect::<Result<Vec<_>>>()?;
    let rejects = Rejects::new(args.rejects.clone())?;
    let http = crate::http::load(args.kafka.config.as_deref(), args.http.http_address)?
        .map(|c| crate::http::Http::new(c, modsignal_metrics::Metrics::new()));
    let out = writer(&args.output)?;
    let input_name = match args.input.as_deref() {
        None => "simulated traffic",
        Some("-") => "standard input",
        Some(path) => path,
    };
    let mut pipeline = Pipeline::new(policy, out, rejects)
        .with_format(format)
        .with_output(output)
        .with_names(input_name, output_name(&args.output));
    if args.ingest_clock {
        pipeline = pipeline.with_ingest_clock();
    }
    let server = match &http {
        Some(h) => {
            pipeline = pipeline
                .with_metrics(h.metrics.clone())
                .with_flag_sink(h.flag_sink())
                .with_cohort_sink(h.cohort_sink());
            Some(crate::http::spawn_server(h.clone())?)
        }
        None => None,
    };
    for (path, file) in sides {
        pipeline.add_side_input(&path.display().to_string(), BufReader::with_capacity(1 << 16, file))?;
    }
    match input {
        Some(file) => {
            let len = file.metadata().map_or(0, |m| m.len());
            let bar = progress(len, "bytes");
            pipeline.feed_reader(BufReader::with_capacity(1 << 16, file), bar.as_ref())?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
        }
        None if args.input.is_some() => pipeline.feed_reader(io::stdin().lock(), None)?,
        None => {
            tracing::info!(
                events = args.events,
                seed = args.seed,
                "no --input: running on simulated traffic"
            );
            let sim = Simulator::new(sim_config(args.events, args.seed, args.rate)?);
            let bar = progress(args.events, "events");
            for (i, ev) in sim.enumerate() {
                pipeline.feed_event(&ev)?;
                if i % 65_536 == 0
                    && let Some(b) = &bar
                {
                    b.set_position(i as u64);
                }
            }
            if let Some(b) = bar {
                b.finish_and_clear();
            }
        }
    }
    let (summary, rejects) = pipeline.finish()?;
    eprintln!("{}", summary.line());
    if let Some(p) = rejects.path() {
        eprintln!(
            "modsignal: {} rejected lines written to {}",
            summary.rejected,
            p.display()
        );
    }
    if let (Some(h), Some(server)) = (http, server) {
        h.store.set_ready(true);
        eprintln!(
            "modsignal: serving the flags on http://{} (dashboard, API, /metrics) until SIGTERM or SIGINT",
            h.config.address
        );
        server.join()?;
    }
    Ok(())
}

/// A progress bar on a terminal, for inputs long enough to wait for.
fn progress(total: u64, unit: &str) -> Option<indicatif::ProgressBar> {
    // A million events, or a megabyte of input: below that a run is over before a bar helps.
    if !io::stderr().is_terminal() || total < 1_000_000 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    let template =
        format!("{{elapsed_precise}} [{{wide_bar}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, eta {{eta}})");
    bar.set_style(indicatif::ProgressStyle::with_template(&template).expect("valid template"));
    Some(bar)
}

fn simulate(args: SimArgs) -> Result<()> {
    let events: Box<dyn Iterator<Item = modsignal_core::Event<'static>>> = if args.viral {
        Box::new(
            modsignal_sim::viral(&modsignal_sim::ViralConfig {
                events: args.events,
                seed: args.seed,
                ..modsignal_sim::ViralConfig::default()
            })
            .into_iter(),
        )
    } else {
        Box::new(Simulator::new(sim_config(args.events, args.seed, args.rate)?))
    };
    let mut out = writer(&args.output)?;
    let write = || -> io::Result<()> {
        for ev in events {
            serde_json::to_writer(&mut out, &ev.to_raw())?;
            out.write_all(b"\n")?;
        }
        out.flush()
    };
    write().with_context(|| format!("cannot write {}", output_name(&args.output)))
}
