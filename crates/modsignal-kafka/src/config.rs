//! The worker's settings: what the command line and the `[kafka]` section of a config file fill
//! in, their validation, and the librdkafka settings derived from them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use modsignal_core::Policy;
use modsignal_formats::Format;
use rdkafka::ClientConfig;
use serde::Deserialize;

/// Everything the worker needs to run. Build it with [`WorkerConfig::new`] and set fields, or
/// from a config file's deserialised `[kafka]` section with [`KafkaSection::into_config`]. Its `Debug`
/// output hides secrets (see [`Properties`]).
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerConfig {
    /// The bootstrap servers, `host:port` separated by commas.
    pub brokers: String,
    /// The consumer group. Instances with the same group share the input partitions.
    pub group_id: String,
    /// Topics of canonical events (version 1), one JSON object per record.
    pub input_topics: Vec<String>,
    /// Where flags go, keyed by `flag_id`, the value being the flag's JSON.
    pub output_topic: String,
    /// Where records that cannot be decoded or applied go, with their reason in headers.
    pub dead_letter_topic: String,
    /// librdkafka settings passed through to every client the worker makes: `security.protocol`,
    /// `sasl.*`, `ssl.*`, `client.id`, timeouts. Settings the worker's guarantees depend on are
    /// refused (see [`RESERVED_PROPERTIES`]); `enable.idempotence` may be turned off for brokers
    /// that lack idempotent producers.
    pub properties: Properties,
    /// The risk policy each partition's engine runs with.
    pub policy: Policy,
    /// How often every partition's engine is flushed (the work a busy message held back is
    /// done, and the flags it writes sent) and offsets are committed. A change that is not
    /// news waits for the partition to go quiet (`idle_after`), not for a flush.
    pub flush_interval: Duration,
    /// After this long without a record, a partition's engine is finished: its watermark moves
    /// to the newest event time and every flag is brought up to date. With routing or a
    /// watermark topic, only once every input partition it follows is also read to its end.
    pub idle_after: Duration,
    /// How far (in event time) an input partition may be read ahead of the slowest input
    /// partition still being read before it is paused, so that a backlog is read roughly in
    /// event-time order (see the crate documentation).
    pub max_event_time_lead: Duration,
    /// On shutdown, how long to wait for the broker to acknowledge the flags and dead letters
    /// already produced before committing what was acknowledged and leaving the group.
    pub shutdown_timeout: Duration,
    /// Records longer than this go to the dead-letter topic with code `too_large`. At most
    /// [`modsignal_core::event::MAX_RECORD_BYTES`].
    pub max_record_bytes: usize,
    /// A dead letter's value is the original record cut to this many bytes (the header
    /// `modsignal.truncated` then gives the original length), so that an oversized record can
    /// never be refused by the dead-letter topic and stall the worker.
    pub dead_letter_max_bytes: usize,
    /// A directory for local snapshots of each held partition's state (see [`crate::state`]):
    /// a restarted instance restores from them instead of replaying its partitions from the
    /// beginning. `None`: no local snapshots.
    pub state_dir: Option<PathBuf>,
    /// A compacted topic for snapshots of each partition's state, from which any instance
    /// restores a partition it is assigned. `None`: no changelog.
    pub changelog_topic: Option<String>,
    /// How often a held partition that moved is snapshotted (with a state directory or a
    /// changelog topic): the longest stretch of input a restore replays, give or take one
    /// commit.
    pub snapshot_interval: Duration,
    /// Routing (see [`crate::router`]): when set, a router stage (consumer group
    /// `{group}.router`) reads the input topics and sends each event to the partition of this
    /// topic that owns its message, and the engine stage reads this topic. Needed whenever the
    /// input is not keyed by message, as platform streams are not (they are keyed by account).
    pub repartition_topic: Option<String>,
    /// A compacted topic where every engine partition publishes the newest event time it has
    /// applied, and from which every instance learns the newest event time of the whole input:
    /// a quiet partition's watermark follows it, so its messages that stay up cross their
    /// exposure stages as the rest of the input moves on. Without it (and without routing,
    /// whose router tells every partition the input's event time), a partition's watermark
    /// follows its own events only.
    pub watermark_topic: Option<String>,
    /// The format of each input topic; topics not named are canonical. Formats other than
    /// canonical need routing.
    pub input_formats: BTreeMap<String, Format>,
    /// What a consumer of the output topic may rely on (see [`Guarantee`]).
    pub processing_guarantee: Guarantee,
}

/// What a consumer of the worker's output topics may rely on, as Kafka Streams'
/// `processing.guarantee` says it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// Every flag revision is written at least once: after a crash or a rebalance, the records
    /// after the last commit are processed again and some revisions written again (the same
    /// revision, with the same content). Needs no transactions from the brokers.
    #[default]
    AtLeastOnce,
    /// Each flush writes flags, dead letters, routed events, watermark marks, changelog
    /// snapshots and the input offsets in one Kafka transaction, so a `read_committed` consumer
    /// sees every flag revision exactly once, through crashes, rebalances and broker failures.
    /// Needs brokers with transactions and a changelog topic.
    ExactlyOnce,
}

impl std::str::FromStr for Guarantee {
    type Err = String;

    fn from_str(s: &str) -> Result<Guarantee, String> {
        match s {
            "at_least_once" => Ok(Guarantee::AtLeastOnce),
            "exactly_once" => Ok(Guarantee::ExactlyOnce),
            other => Err(format!(
                "`{other}` is not a processing guarantee: write at_least_once or exactly_once"
            )),
        }
    }
}

impl std::fmt::Display for Guarantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Guarantee::AtLeastOnce => "at_least_once",
            Guarantee::ExactlyOnce => "exactly_once",
        })
    }
}

/// How long a transaction may stay open before the broker aborts it, unless the properties say
/// otherwise: Kafka Streams' default with exactly-once. An instance killed mid-transaction
/// holds back `read_committed` readers of its output (and its partitions' next owner) this
/// long at most.
pub const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The default consumer group.
pub const DEFAULT_GROUP: &str = "modsignal";
/// The default output topic.
pub const DEFAULT_OUTPUT_TOPIC: &str = "modsignal.flags";
/// The default dead-letter topic.
pub const DEFAULT_DEAD_LETTER_TOPIC: &str = "modsignal.dead-letters";
/// The default debounce and commit interval.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// The default quiet time before a partition's engine is finished.
pub const DEFAULT_IDLE_AFTER: Duration = Duration::from_secs(30);
/// [`WorkerConfig::max_event_time_lead`] unless configured: an hour of event time, so that
/// partitions of a live stream (seconds apart) are never paused, and a backlog is read within
/// an hour of event-time order.
pub const DEFAULT_MAX_EVENT_TIME_LEAD: Duration = Duration::from_secs(3600);
/// The default bound on the wait for acknowledgements at shutdown.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// The default cut of dead-letter values: half of librdkafka's and Kafka's default largest
/// message (about 1 MB), leaving room for the key and headers.
pub const DEFAULT_DEAD_LETTER_MAX_BYTES: usize = 512 * 1024;
/// The default interval between snapshots of a partition's state.
pub const DEFAULT_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(60);

/// librdkafka settings the worker sets itself, with the reason they cannot be passed through.
pub const RESERVED_PROPERTIES: &[(&str, &str)] = &[
    ("bootstrap.servers", "set `brokers` instead"),
    ("metadata.broker.list", "set `brokers` instead"),
    ("group.id", "set `group` instead"),
    (
        "enable.auto.commit",
        "offsets are committed only once the flags for them are acknowledged",
    ),
    (
        "enable.auto.offset.store",
        "offsets are committed only once the flags for them are acknowledged",
    ),
    (
        "auto.offset.reset",
        "a partition without a committed offset is read from its beginning, so its state is complete",
    ),
    ("enable.partition.eof", "the worker uses it internally to end a replay"),
    (
        "transactional.id",
        "the worker sets it, unique to each instance and stage, with processing_guarantee = \"exactly_once\"",
    ),
    (
        "isolation.level",
        "the worker reads only committed records, so that aborted transactions are never read",
    ),
];

/// A setting that cannot be used, with what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("kafka.{0} is required")]
    Missing(&'static str),
    #[error("kafka.{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("kafka.properties.\"{key}\" cannot be set: {reason}")]
    ReservedProperty { key: String, reason: &'static str },
}

impl WorkerConfig {
    /// A configuration with the defaults for everything but the brokers and input topics.
    pub fn new(brokers: impl Into<String>, input_topics: Vec<String>, policy: Policy) -> WorkerConfig {
        WorkerConfig {
            brokers: brokers.into(),
            group_id: DEFAULT_GROUP.to_owned(),
            input_topics,
            output_topic: DEFAULT_OUTPUT_TOPIC.to_owned(),
            dead_letter_topic: DEFAULT_DEAD_LETTER_TOPIC.to_owned(),
            properties: Properties::default(),
            policy,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            idle_after: DEFAULT_IDLE_AFTER,
            max_event_time_lead: DEFAULT_MAX_EVENT_TIME_LEAD,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            max_record_bytes: modsignal_core::event::MAX_RECORD_BYTES,
            dead_letter_max_bytes: DEFAULT_DEAD_LETTER_MAX_BYTES,
            state_dir: None,
            changelog_topic: None,
            snapshot_interval: DEFAULT_SNAPSHOT_INTERVAL,
            repartition_topic: None,
            watermark_topic: None,
            input_formats: BTreeMap::new(),
            processing_guarantee: Guarantee::AtLeastOnce,
        }
    }

    /// Checks every field; [`crate::run`] calls this first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.brokers.trim().is_empty() {
            return Err(ConfigError::Missing("brokers"));
        }
        if self.group_id.trim().is_empty() {
            return invalid("group", "must not be empty");
        }
        if self.input_topics.is_empty() {
            return Err(ConfigError::Missing("input_topics"));
        }
        for t in &self.input_topics {
            if t.trim().is_empty() {
                return invalid("input_topics", "a topic name must not be empty");
            }
        }
        if self.output_topic.trim().is_empty() {
            return invalid("output_topic", "must not be empty");
        }
        if self.dead_letter_topic.trim().is_empty() {
            return invalid("dead_letter_topic", "must not be empty");
        }
        let outputs = [&self.output_topic, &self.dead_letter_topic];
        if self.input_topics.iter().any(|t| outputs.contains(&t)) {
            return invalid(
                "input_topics",
                "an input topic cannot also be the output or dead-letter topic",
            );
        }
        if self.output_topic == self.dead_letter_topic {
            return invalid("dead_letter_topic", "must differ from the output topic");
        }
        if self.flush_interval.is_zero() {
            return invalid("flush_interval", "must be longer than zero");
        }
        if self.idle_after.is_zero() {
            return invalid("idle_after", "must be longer than zero");
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > modsignal_core::event::MAX_RECORD_BYTES {
            return Err(ConfigError::Invalid {
                field: "max_record_bytes",
                reason: format!(
                    "must be between 1 and {} (the decoder's limit)",
                    modsignal_core::event::MAX_RECORD_BYTES
                ),
            });
        }
        if self.dead_letter_max_bytes == 0 {
            return invalid("dead_letter_max_bytes", "must be at least 1");
        }
        if let Some(t) = &self.changelog_topic
            && (self.input_topics.contains(t) || outputs.contains(&t))
        {
            return invalid(
                "changelog_topic",
                "must differ from the input, output and dead-letter topics",
            );
        }
        if self.snapshot_interval.is_zero() {
            return invalid("snapshot_interval", "must be longer than zero");
        }
        if let Some(t) = &self.repartition_topic
            && (self.input_topics.contains(t) || outputs.contains(&t) || self.changelog_topic.as_ref() == Some(t))
        {
            return invalid(
                "repartition_topic",
                "must differ from the input, output, dead-letter and changelog topics",
            );
        }
        if let Some(t) = &self.watermark_topic
            && (self.input_topics.contains(t)
                || outputs.contains(&t)
                || self.changelog_topic.as_ref() == Some(t)
                || self.repartition_topic.as_ref() == Some(t))
        {
            return invalid(
                "watermark_topic",
                "must differ from the input, output, dead-letter, changelog and repartition topics",
            );
        }
        for (topic, format) in &self.input_formats {
            if !self.input_topics.contains(topic) {
                return Err(ConfigError::Invalid {
                    field: "formats",
                    reason: format!("`{topic}` is not an input topic"),
                });
            }
            if *format != Format::Canonical && self.repartition_topic.is_none() {
                return Err(ConfigError::Invalid {
                    field: "formats",
                    reason: format!(
                        "`{topic}` is read as {format}, a platform stream keyed by account: set repartition_topic so that events reach the partition of their message"
                    ),
                });
            }
        }
        if self.exactly_once() {
            if self.changelog_topic.is_none() {
                return invalid(
                    "changelog_topic",
                    "processing_guarantee = \"exactly_once\" needs one: flags a quiet partition's finish writes are made exact by a snapshot in the same transaction",
                );
            }
            if self.state_dir.is_some() {
                return invalid(
                    "state_dir",
                    "cannot be used with processing_guarantee = \"exactly_once\": local snapshots are written outside the transaction, so one can run ahead of what was committed; the changelog is the state's store",
                );
            }
            if self.properties.get("enable.idempotence").map(String::as_str) == Some("false") {
                return Err(ConfigError::ReservedProperty {
                    key: "enable.idempotence".into(),
                    reason: "transactions need the idempotent producer",
                });
            }
        }
        for key in self.properties.keys() {
            if let Some((_, reason)) = RESERVED_PROPERTIES.iter().find(|(k, _)| k == key) {
                return Err(ConfigError::ReservedProperty {
                    key: key.clone(),
                    reason,
                });
            }
        }
        self.policy.validate().map_err(|e| ConfigError::Invalid {
            field: "policy",
            reason: e.to_string(),
        })
    }

    /// How long a transaction may stay open before the broker aborts it: the properties'
    /// `transaction.timeout.ms`, else [`DEFAULT_TRANSACTION_TIMEOUT`]. A commit that takes
    /// longer is given up.
    pub fn transaction_timeout(&self) -> Duration {
        self.properties
            .get("transaction.timeout.ms")
            .and_then(|v| v.parse().ok())
            .map_or(DEFAULT_TRANSACTION_TIMEOUT, Duration::from_millis)
    }

    /// Whether output is written in transactions ([`Guarantee::ExactlyOnce`]).
    pub fn exactly_once(&self) -> bool {
        self.processing_guarantee == Guarantee::ExactlyOnce
    }

    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("client.id", "modsignal");
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c.set("bootstrap.servers", &self.brokers);
        c
    }

    /// What every consumer the worker makes (the group's, the replay's, the followers') is
    /// set to: it reads only committed records. librdkafka's default, stated because
    /// exactly-once depends on it.
    fn consumer_base(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("isolation.level", "read_committed");
        c
    }

    /// The group consumer: manual commits, and a partition with no committed offset is read
    /// from its beginning. Cooperative assignment unless the properties choose another, so that
    /// a rebalance moves only the partitions that change owner (the others keep their state).
    pub fn consumer_config(&self) -> ClientConfig {
        let mut c = self.consumer_base();
        if !self.properties.contains_key("partition.assignment.strategy") {
            c.set("partition.assignment.strategy", "cooperative-sticky");
        }
        // librdkafka's statistics carry each partition's consumer lag, which the worker
        // exports as a metric, and its end, which tells the worker when an input partition is
        // read to its end (it then holds no engine's event time back). Every second, so that
        // an idle partition is known as such within about a second; a consumer's statistics
        // are a few hundred bytes of JSON per partition.
        if !self.properties.contains_key("statistics.interval.ms") {
            c.set("statistics.interval.ms", "1000");
        }
        c.set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        c
    }

    /// The consumer that rebuilds a partition's state. It assigns itself the partition and
    /// never subscribes or commits, so it never joins a group nor touches the group's offsets;
    /// librdkafka still wants a `group.id` before it lets a consumer assign partitions, so it gets
    /// one of its own. It is told when it reaches the end of the partition.
    pub fn replay_config(&self) -> ClientConfig {
        let mut c = self.consumer_base();
        c.set("group.id", format!("{}.replay", self.group_id))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "true");
        c
    }

    /// The producer of flags and dead letters: idempotent unless the properties turn it off,
    /// so that librdkafka's own retries never duplicate or reorder records.
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = self.base();
        if !self.properties.contains_key("enable.idempotence") {
            c.set("enable.idempotence", "true");
        }
        c
    }

    /// The worker's producer: with [`Guarantee::ExactlyOnce`], transactional, its
    /// `transactional.id` the group's (`{group}.router` for a router stage) and a random part,
    /// unique to each instance and stage as EOS v2 wants (KIP-447: a zombie is fenced by its
    /// group generation, not by a shared id).
    pub fn worker_producer_config(&self) -> ClientConfig {
        let mut c = self.producer_config();
        if self.exactly_once() {
            use std::hash::{BuildHasher, Hasher};
            // Randomly keyed by the standard library: unique enough to tell instances apart,
            // without a dependency for it.
            let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
            c.set("transactional.id", format!("{}.{random:016x}", self.group_id));
            if !self.properties.contains_key("transaction.timeout.ms") {
                c.set(
                    "transaction.timeout.ms",
                    DEFAULT_TRANSACTION_TIMEOUT.as_millis().to_string(),
                );
            }
        }
        c
    }
}

/// The `[kafka]` section of a config file, and the same settings from command-line options:
/// every field is optional so that options can be laid over the file with
/// [`KafkaSection::overlay`] before [`KafkaSection::into_config`] checks what is required.
///
/// ```toml
/// [kafka]
/// brokers = "kafka-1:9093,kafka-2:9093"
/// group = "modsignal"
/// input_topics = ["events"]
/// output_topic = "modsignal.flags"
/// dead_letter_topic = "modsignal.dead-letters"
/// flush_interval = "1s"
/// idle_after = "30s"
/// shutdown_timeout = "30s"
/// processing_guarantee = "at_least_once"
///
/// [kafka.properties]
/// "security.protocol" = "SASL_SSL"
/// "sasl.mechanism" = "SCRAM-SHA-512"
/// "sasl.username" = "modsignal"
/// "sasl.password" = "…"
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    pub brokers: Option<String>,
    pub group: Option<String>,
    pub input_topics: Option<Vec<String>>,
    pub output_topic: Option<String>,
    pub dead_letter_topic: Option<String>,
    /// A duration such as `"500ms"`, `"1s"`, `"2m"` (see [`parse_duration`]).
    pub flush_interval: Option<String>,
    pub idle_after: Option<String>,
    pub max_event_time_lead: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub max_record_bytes: Option<usize>,
    pub dead_letter_max_bytes: Option<usize>,
    pub state_dir: Option<String>,
    pub changelog_topic: Option<String>,
    pub snapshot_interval: Option<String>,
    pub repartition_topic: Option<String>,
    pub watermark_topic: Option<String>,
    /// `at_least_once` (the default) or `exactly_once` (see [`Guarantee`]).
    pub processing_guarantee: Option<String>,
    /// The format of each input topic (`canonical`, `jetstream`, `mastodon`, `twitter`).
    #[serde(default)]
    pub formats: BTreeMap<String, String>,
    /// librdkafka settings; TOML strings, integers and booleans are all accepted.
    #[serde(default)]
    pub properties: Properties<PropertyValue>,
}

/// A librdkafka setting's value as written in TOML. librdkafka takes every value as a string.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PropertyValue {
    Text(String),
    Integer(i64),
    Bool(bool),
}

impl std::fmt::Display for PropertyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PropertyValue::Text(s) => f.write_str(s),
            PropertyValue::Integer(n) => write!(f, "{n}"),
            PropertyValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Whether a librdkafka setting holds a secret (`sasl.password`, `ssl.key.password`,
/// `sasl.oauthbearer.client.secret`, `ssl.key.pem`, …), whose value [`Properties`]' `Debug`
/// output hides.
pub fn is_secret(key: &str) -> bool {
    ["password", "secret", "ssl.key.pem", "ssl_key", "keystore", "token"]
        .iter()
        .any(|s| key.contains(s))
}

/// librdkafka settings by name, as a map (it dereferences to its [`BTreeMap`]) whose `Debug`
/// output shows every secret's value (see [`is_secret`]) as `***`. Keeping that rule in the
/// map's own type lets the configurations that hold one derive `Debug`, and so be logged whole,
/// without ever printing a password.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Properties<V = String>(BTreeMap<String, V>);

impl<V> Default for Properties<V> {
    fn default() -> Self {
        Properties(BTreeMap::new())
    }
}

impl<V: std::fmt::Display> std::fmt::Debug for Properties<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if is_secret(k) { "***".to_owned() } else { v.to_string() };
                (k, shown)
            }))
            .finish()
    }
}

impl<V> std::ops::Deref for Properties<V> {
    type Target = BTreeMap<String, V>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<V> std::ops::DerefMut for Properties<V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<V> From<BTreeMap<String, V>> for Properties<V> {
    fn from(map: BTreeMap<String, V>) -> Self {
        Properties(map)
    }
}

impl<V> FromIterator<(String, V)> for Properties<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        Properties(iter.into_iter().collect())
    }
}

impl<V> IntoIterator for Properties<V> {
    type Item = (String, V);
    type IntoIter = std::collections::btree_map::IntoIter<String, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, V> IntoIterator for &'a Properties<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = std::collections::btree_map::Iter<'a, String, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl KafkaSection {
    /// `over`'s settings where it has them, this section's elsewhere; properties are merged
    /// key by key, `over` winning. Used to lay command-line options over the file.
    #[must_use]
    pub fn overlay(mut self, over: KafkaSection) -> KafkaSection {
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f; } )* };
        }
        take!(
            brokers,
            group,
            input_topics,
            output_topic,
            dead_letter_topic,
            flush_interval,
            idle_after,
            max_event_time_lead,
            shutdown_timeout,
            max_record_bytes,
            dead_letter_max_bytes,
            state_dir,
            changelog_topic,
            snapshot_interval,
            repartition_topic,
            watermark_topic,
            processing_guarantee
        );
        self.formats.extend(over.formats);
        self.properties.extend(over.properties);
        self
    }

    /// The worker configuration, defaults filled in and every field validated.
    pub fn into_config(self, policy: Policy) -> Result<WorkerConfig, ConfigError> {
        let brokers = self.brokers.ok_or(ConfigError::Missing("brokers"))?;
        let input_topics = self.input_topics.ok_or(ConfigError::Missing("input_topics"))?;
        let mut c = WorkerConfig::new(brokers, input_topics, policy);
        if let Some(g) = self.group {
            c.group_id = g;
        }
        if let Some(t) = self.output_topic {
            c.output_topic = t;
        }
        if let Some(t) = self.dead_letter_topic {
            c.dead_letter_topic = t;
        }
        let duration = |field: &'static str, v: Option<String>, default: Duration| match v {
            None => Ok(default),
            Some(s) => parse_duration(&s).map_err(|reason| ConfigError::Invalid { field, reason }),
        };
        c.flush_interval = duration("flush_interval", self.flush_interval, c.flush_interval)?;
        c.idle_after = duration("idle_after", self.idle_after, c.idle_after)?;
        c.max_event_time_lead = duration("max_event_time_lead", self.max_event_time_lead, c.max_event_time_lead)?;
        c.shutdown_timeout = duration("shutdown_timeout", self.shutdown_timeout, c.shutdown_timeout)?;
        if let Some(n) = self.max_record_bytes {
            c.max_record_bytes = n;
        }
        if let Some(n) = self.dead_letter_max_bytes {
            c.dead_letter_max_bytes = n;
        }
        c.state_dir = self.state_dir.filter(|d| !d.is_empty()).map(PathBuf::from);
        c.changelog_topic = self.changelog_topic.filter(|t| !t.is_empty());
        c.snapshot_interval = duration("snapshot_interval", self.snapshot_interval, c.snapshot_interval)?;
        c.repartition_topic = self.repartition_topic.filter(|t| !t.is_empty());
        c.watermark_topic = self.watermark_topic.filter(|t| !t.is_empty());
        if let Some(g) = self.processing_guarantee {
            c.processing_guarantee = g.parse().map_err(|reason| ConfigError::Invalid {
                field: "processing_guarantee",
                reason,
            })?;
        }
        for (topic, name) in self.formats {
            let format = name.parse::<Format>().map_err(|reason| ConfigError::Invalid {
                field: "formats",
                reason,
            })?;
            c.input_formats.insert(topic, format);
        }
        c.properties = self.properties.into_iter().map(|(k, v)| (k, v.to_string())).collect();
        c.validate()?;
        Ok(c)
    }
}

/// Parses a duration written as an integer and a unit: `ms`, `s`, `m` or `h` (`250ms`, `1s`,
/// `5m`). A unit is required so that a bare number is never misread.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "`{text}` is not a duration: write a number and a unit, such as 500ms, 2s or 5m"
        ));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is too large a duration"))?;
    let millis = match unit.trim() {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "" => return Err(format!("`{text}` has no unit: write ms, s, m or h after the number")),
        other => return Err(format!("`{text}` has an unknown unit `{other}`: use ms, s, m or h")),
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too large a duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config file's `[kafka]` section, deserialised as the binary hands it over.
    fn section(text: &str) -> Result<KafkaSection, String> {
        #[derive(Deserialize)]
        struct File {
            kafka: Option<KafkaSection>,
        }
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        file.kafka.ok_or_else(|| "no [kafka] section".to_owned())
    }

    fn config(text: &str) -> Result<WorkerConfig, String> {
        section(text)?.into_config(Policy::default()).map_err(|e| e.to_string())
    }

    const FULL: &str = r#"
        [policy]
        ignored = "by this section's reader"

        [kafka]
        brokers = "k1:9093,k2:9093"
        group = "g"
        input_topics = ["events", "labels"]
        output_topic = "flags"
        dead_letter_topic = "dlq"
        flush_interval = "250ms"
        idle_after = "10s"
        shutdown_timeout = "1m"
        max_record_bytes = 65536
        dead_letter_max_bytes = 4096
        watermark_topic = "watermarks"

        [kafka.properties]
        "security.protocol" = "SASL_SSL"
        "session.timeout.ms" = 45000
        "enable.idempotence" = false
    "#;

    #[test]
    fn a_full_section_fills_every_field() {
        let c = config(FULL).unwrap();
        assert_eq!(c.brokers, "k1:9093,k2:9093");
        assert_eq!(c.group_id, "g");
        assert_eq!(c.input_topics, ["events", "labels"]);
        assert_eq!(
            (c.output_topic.as_str(), c.dead_letter_topic.as_str()),
            ("flags", "dlq")
        );
        assert_eq!(c.flush_interval, Duration::from_millis(250));
        assert_eq!(c.idle_after, Duration::from_secs(10));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(60));
        assert_eq!((c.max_record_bytes, c.dead_letter_max_bytes), (65536, 4096));
        assert_eq!(c.watermark_topic.as_deref(), Some("watermarks"));
        let props: Vec<(&str, &str)> = c.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            props,
            [
                ("enable.idempotence", "false"),
                ("security.protocol", "SASL_SSL"),
                ("session.timeout.ms", "45000")
            ]
        );
    }

    #[test]
    fn a_minimal_section_takes_the_defaults() {
        let c = config("[kafka]\nbrokers = \"localhost:9092\"\ninput_topics = [\"events\"]\n").unwrap();
        assert_eq!(
            c,
            WorkerConfig::new("localhost:9092", vec!["events".into()], Policy::default())
        );
        assert_eq!(c.output_topic, DEFAULT_OUTPUT_TOPIC);
        assert_eq!(c.idle_after, DEFAULT_IDLE_AFTER);
    }

    #[test]
    fn missing_and_unknown_settings_are_refused_by_name() {
        let e = config("[kafka]\ninput_topics = [\"e\"]\n").unwrap_err();
        assert_eq!(e, "kafka.brokers is required");
        let e = config("[kafka]\nbrokers = \"b:1\"\n").unwrap_err();
        assert_eq!(e, "kafka.input_topics is required");
        let e = config("[other]\nx = 1\n").unwrap_err();
        assert_eq!(e, "no [kafka] section");
        let e = config("[kafka]\nbrokers = \"b:1\"\ninput_topics = [\"e\"]\nflush_intervall = \"1s\"\n").unwrap_err();
        assert!(e.contains("flush_intervall"), "{e}");
    }

    #[test]
    fn reserved_properties_are_refused_with_their_reason() {
        let text =
            "[kafka]\nbrokers = \"b:1\"\ninput_topics = [\"e\"]\n[kafka.properties]\n\"enable.auto.commit\" = true\n";
        let e = config(text).unwrap_err();
        assert_eq!(
            e,
            "kafka.properties.\"enable.auto.commit\" cannot be set: offsets are committed only once the flags for them are acknowledged"
        );
    }

    #[test]
    fn topics_must_be_distinct_and_durations_positive() {
        let mut c = WorkerConfig::new("b:1", vec!["flags".into()], Policy::default());
        c.output_topic = "flags".into();
        assert!(c.validate().unwrap_err().to_string().contains("input topic"));
        let mut c = WorkerConfig::new("b:1", vec!["e".into()], Policy::default());
        c.dead_letter_topic = c.output_topic.clone();
        assert!(c.validate().is_err());
        let mut c = WorkerConfig::new("b:1", vec!["e".into()], Policy::default());
        c.flush_interval = Duration::ZERO;
        assert!(c.validate().unwrap_err().to_string().contains("flush_interval"));
        let mut c = WorkerConfig::new("b:1", vec!["e".into()], Policy::default());
        c.max_record_bytes = modsignal_core::event::MAX_RECORD_BYTES + 1;
        assert!(c.validate().unwrap_err().to_string().contains("max_record_bytes"));
        for taken in [
            "e",
            "modsignal.flags",
            "modsignal.dead-letters",
            "changelog",
            "repartition",
        ] {
            let mut c = WorkerConfig::new("b:1", vec!["e".into()], Policy::default());
            c.changelog_topic = Some("changelog".into());
            c.repartition_topic = Some("repartition".into());
            c.watermark_topic = Some(taken.into());
            assert!(
                c.validate().unwrap_err().to_string().contains("watermark_topic"),
                "{taken}"
            );
        }
    }

    #[test]
    fn command_line_options_override_the_file() {
        let file = section(FULL).unwrap();
        let mut props = Properties::default();
        props.insert("security.protocol".to_owned(), PropertyValue::Text("SSL".into()));
        let cli = KafkaSection {
            brokers: Some("local:9092".into()),
            idle_after: Some("2s".into()),
            properties: props,
            ..KafkaSection::default()
        };
        let c = file.overlay(cli).into_config(Policy::default()).unwrap();
        assert_eq!(c.brokers, "local:9092");
        assert_eq!(c.group_id, "g", "kept from the file");
        assert_eq!(c.idle_after, Duration::from_secs(2));
        assert_eq!(c.properties["security.protocol"], "SSL");
        assert_eq!(c.properties["session.timeout.ms"], "45000", "kept from the file");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut c = WorkerConfig::new("b:1", vec!["e".into()], Policy::default());
        c.properties.insert("sasl.username".into(), "modsignal".into());
        c.properties.insert("sasl.password".into(), "hunter2".into());
        c.properties.insert("ssl.key.password".into(), "swordfish".into());
        for shown in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(shown.contains("modsignal") && shown.contains("***"), "{shown}");
            assert!(!shown.contains("hunter2") && !shown.contains("swordfish"), "{shown}");
        }
        // The map shows as a map, every key with its value or `***`, as before it had a type.
        assert_eq!(
            format!("{:?}", c.properties),
            r#"{"sasl.password": "***", "sasl.username": "modsignal", "ssl.key.password": "***"}"#
        );
        let section = section(
            "[kafka]\n[kafka.properties]\n\"sasl.oauthbearer.client.secret\" = \"s3cret\"\n\"ssl.key.pem\" = \"-----BEGIN\"\n\"socket.timeout.ms\" = 5000\n",
        )
        .unwrap();
        for shown in [format!("{section:?}"), format!("{section:#?}")] {
            assert!(!shown.contains("s3cret") && !shown.contains("BEGIN"), "{shown}");
            assert!(shown.contains(r#""socket.timeout.ms": "5000""#), "{shown}");
        }
        // Properties built on the command line are hidden the same way once laid over a file.
        let cli = KafkaSection {
            properties: [("sasl.password".to_owned(), PropertyValue::Text("hunter2".into()))]
                .into_iter()
                .collect(),
            ..KafkaSection::default()
        };
        let merged = section.overlay(cli);
        assert_eq!(merged.properties.len(), 4);
        assert!(!format!("{merged:?}").contains("hunter2"));
    }

    #[test]
    fn durations_need_a_number_and_a_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 3s "), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s").unwrap_err().contains("not a duration"));
        assert!(parse_duration("-1s").unwrap_err().contains("not a duration"));
        assert!(
            parse_duration("99999999999999999999h")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse_duration("9999999999999999h").unwrap_err().contains("too large"));
    }

    #[test]
    fn client_settings_keep_the_guarantees_and_pass_the_rest_through() {
        let mut c = WorkerConfig::new("b:1", vec!["e".into()], Policy::default());
        c.properties.insert("security.protocol".into(), "SSL".into());
        let consumer = c.consumer_config();
        assert_eq!(consumer.get("bootstrap.servers"), Some("b:1"));
        assert_eq!(consumer.get("group.id"), Some(DEFAULT_GROUP));
        assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
        assert_eq!(consumer.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(
            consumer.get("partition.assignment.strategy"),
            Some("cooperative-sticky")
        );
        assert_eq!(consumer.get("security.protocol"), Some("SSL"));
        let replay = c.replay_config();
        assert_eq!(replay.get("group.id"), Some("modsignal.replay"));
        assert_eq!(replay.get("enable.auto.commit"), Some("false"));
        assert_eq!(replay.get("enable.partition.eof"), Some("true"));
        assert_eq!(replay.get("security.protocol"), Some("SSL"));
        let producer = c.producer_config();
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(producer.get("security.protocol"), Some("SSL"));

        c.properties.insert("enable.idempotence".into(), "false".into());
        c.properties
            .insert("partition.assignment.strategy".into(), "range".into());
        assert_eq!(c.producer_config().get("enable.idempotence"), Some("false"));
        assert_eq!(c.consumer_config().get("partition.assignment.strategy"), Some("range"));
    }

    #[test]
    fn exactly_once_is_transactional_and_needs_a_changelog_and_no_local_snapshots() {
        let text = "[kafka]\nbrokers = \"b:1\"\ninput_topics = [\"e\"]\nprocessing_guarantee = \"exactly_once\"\n";
        let e = config(text).unwrap_err();
        assert!(e.contains("changelog_topic"), "{e}");
        let with_changelog = format!("{text}changelog_topic = \"c\"\n");
        let c = config(&with_changelog).unwrap();
        assert_eq!(c.processing_guarantee, Guarantee::ExactlyOnce);
        let e = config(&format!("{with_changelog}state_dir = \"/tmp/s\"\n")).unwrap_err();
        assert!(e.contains("state_dir"), "{e}");
        let mut no_idempotence = c.clone();
        no_idempotence
            .properties
            .insert("enable.idempotence".into(), "false".into());
        assert!(no_idempotence.validate().is_err());
        let bad = text.replace("exactly_once", "exactly-once");
        let e = config(&bad).unwrap_err();
        assert!(e.contains("at_least_once or exactly_once"), "{e}");

        // Each instance (each producer made) has an id of its own, under its group's.
        let (a, b) = (c.worker_producer_config(), c.worker_producer_config());
        let id = a.get("transactional.id").expect("transactional");
        assert!(id.starts_with("modsignal."), "{id}");
        assert_ne!(Some(id), b.get("transactional.id"));
        assert_eq!(a.get("transaction.timeout.ms"), Some("10000"));
        assert_eq!(c.consumer_config().get("isolation.level"), Some("read_committed"));
        assert_eq!(c.replay_config().get("isolation.level"), Some("read_committed"));

        let at_least_once = WorkerConfig::new("b:1", vec!["e".into()], Policy::default());
        assert_eq!(at_least_once.worker_producer_config().get("transactional.id"), None);
        let mut reserved = at_least_once.clone();
        reserved.properties.insert("transactional.id".into(), "x".into());
        assert!(reserved.validate().is_err());
    }
}
