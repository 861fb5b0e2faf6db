//! The topics a worker's configuration names: what each must be, a check of what a cluster
//! holds against that, and the creation of what is missing (`modsignal topics`).
//!
//! [`wanted`] and [`check`] are pure: the configuration and a description of the cluster in,
//! the topics to create and the problems found out. [`describe`] and [`create`] talk to the
//! brokers. The worker runs the same check at start-up ([`crate::run`]), so a topic that would
//! break a guarantee is named before any record is read.
//!
//! What each topic must be, and why:
//!
//! - **input** (canonical events or a platform's stream): every record kept (`retention.ms` and
//!   `retention.bytes` -1 when created here): a partition with no usable snapshot is rebuilt by
//!   replaying it from its beginning. A compacted input can lose events (compaction keeps one
//!   record per key), and without a changelog an input that deletes old records rebuilds state
//!   without them; the check says both.
//! - **output** (flags keyed by `flag_id`): compacted, so that a consumer that starts late still
//!   finds the newest revision of every flag, however old.
//! - **dead letters**: deleted after `retention.ms` (30 days when created here), never
//!   compacted: a dead letter keeps its source record's key, which may be none, and Kafka refuses
//!   a record without a key on a compacted topic, which would stop the worker.
//! - **changelog** (snapshots keyed by partition and part): compacted, or old snapshots are
//!   deleted and partitions are replayed from their beginning, or snapshots grow the topic for
//!   ever. As many partitions as the engines that write to it, so that a restore reads only its
//!   own.
//! - **repartition** (routed events keyed by message): every record kept, as the input, since an
//!   engine partition is rebuilt from it. Fewer partitions than the input is allowed and
//!   sometimes chosen (one partition counts a sender's conduct across every message), at the
//!   cost of parallelism, which the check says.
//! - **watermarks** (each input partition's event time, keyed by partition): compacted, since
//!   every instance reads it whole at start-up; one partition is enough.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::WorkerConfig;

/// What a topic is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Input,
    Output,
    DeadLetters,
    Changelog,
    Repartition,
    Watermarks,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Input => "input",
            Role::Output => "output",
            Role::DeadLetters => "dead-letter",
            Role::Changelog => "changelog",
            Role::Repartition => "repartition",
            Role::Watermarks => "watermark",
        })
    }
}

/// How topics are made when they are missing: the partitions of the input and of what follows
/// it, and the replication factor of every topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Partitions of a missing input, output, dead-letter or repartition topic. The changelog
    /// gets as many as the engines that write to it, the watermark topic one.
    pub partitions: i32,
    /// Replicas of each partition; `None` takes the brokers' `default.replication.factor`.
    pub replication: Option<i32>,
}

/// One topic the configuration names, and how it is made if it is missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub role: Role,
    pub partitions: i32,
    /// Topic settings it is created with.
    pub settings: Vec<(&'static str, String)>,
}

/// A topic as the cluster holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Existing {
    pub partitions: i32,
    /// Its settings, as `DescribeConfigs` gives them (defaults included).
    pub settings: BTreeMap<String, String>,
}

/// Whether a problem stops the worker, or only deserves an operator's look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// What is wrong with one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub topic: String,
    pub role: Role,
    pub severity: Severity,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {} topic `{}` {}", self.role, self.topic, self.what)
    }
}

/// Thirty days, in milliseconds: how long dead letters are kept when created here, time for
/// someone to look at them.
const DEAD_LETTER_RETENTION_MS: u64 = 30 * 24 * 3600 * 1000;

/// Every topic `config` names, in the order the worker uses them, each once. `inputs` gives the
/// partition counts of the input topics that exist, which the changelog's count follows.
pub fn wanted(config: &WorkerConfig, layout: &Layout, inputs: &BTreeMap<String, i32>) -> Vec<Wanted> {
    let compact = || vec![("cleanup.policy", "compact".to_owned())];
    let delete = |ms: u64| {
        vec![
            ("cleanup.policy", "delete".to_owned()),
            ("retention.ms", ms.to_string()),
        ]
    };
    let keep = || {
        vec![
            ("cleanup.policy", "delete".to_owned()),
            ("retention.ms", "-1".to_owned()),
            ("retention.bytes", "-1".to_owned()),
        ]
    };
    let mut out: Vec<Wanted> = Vec::new();
    let mut add = |name: &String, role: Role, partitions: i32, settings: Vec<(&'static str, String)>| {
        if !out.iter().any(|w| &w.name == name) {
            out.push(Wanted {
                name: name.clone(),
                role,
                partitions: partitions.max(1),
                settings,
            });
        }
    };
    for t in &config.input_topics {
        add(t, Role::Input, layout.partitions, keep());
    }
    add(&config.output_topic, Role::Output, layout.partitions, compact());
    add(
        &config.dead_letter_topic,
        Role::DeadLetters,
        layout.partitions,
        delete(DEAD_LETTER_RETENTION_MS),
    );
    if let Some(t) = &config.repartition_topic {
        add(t, Role::Repartition, layout.partitions, keep());
    }
    if let Some(t) = &config.changelog_topic {
        add(t, Role::Changelog, engine_partitions(config, layout, inputs), compact());
    }
    if let Some(t) = &config.watermark_topic {
        add(t, Role::Watermarks, 1, compact());
    }
    // With three replicas or more, a write acknowledged by `acks=all` (the idempotent
    // producer's) is on at least two of them.
    if layout.replication.is_some_and(|r| r >= 3) {
        for w in &mut out {
            w.settings.push(("min.insync.replicas", "2".to_owned()));
        }
    }
    out
}

/// How many partitions write snapshots to the changelog: every input partition (the router
/// snapshots each it reads, and without routing each is an engine's), and with routing every
/// repartition partition too. A changelog partition holds the snapshots of the partitions whose
/// number is equal to it modulo the changelog's count, so as many as the largest of those
/// counts lets each restore read only its own.
fn engine_partitions(config: &WorkerConfig, layout: &Layout, inputs: &BTreeMap<String, i32>) -> i32 {
    let input = config
        .input_topics
        .iter()
        .map(|t| inputs.get(t).copied().unwrap_or(layout.partitions))
        .max()
        .unwrap_or(layout.partitions);
    let routed = config
        .repartition_topic
        .as_ref()
        .map_or(0, |t| inputs.get(t).copied().unwrap_or(layout.partitions));
    input.max(routed)
}

/// What is wrong with the topics that exist, against what the configuration needs. A topic in
/// `wanted` that is not in `existing` is not a problem here: it is missing, and
/// [`create`] makes it (the worker says so itself when it starts).
pub fn check(config: &WorkerConfig, wanted: &[Wanted], existing: &BTreeMap<String, Existing>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let policy = |e: &Existing| {
        e.settings
            .get("cleanup.policy")
            .cloned()
            .unwrap_or_else(|| "delete".into())
    };
    let compacts = |e: &Existing| policy(e).split(',').any(|p| p.trim() == "compact");
    let deletes = |e: &Existing| policy(e).split(',').any(|p| p.trim() == "delete");
    let input_partitions = config
        .input_topics
        .iter()
        .filter_map(|t| existing.get(t).map(|e| e.partitions))
        .max();
    for w in wanted {
        let Some(e) = existing.get(&w.name) else {
            continue;
        };
        let mut say = |severity: Severity, what: String| {
            problems.push(Problem {
                topic: w.name.clone(),
                role: w.role,
                severity,
                what,
            });
        };
        match w.role {
            Role::Input if compacts(e) => say(
                Severity::Warning,
                format!(
                    "is compacted (cleanup.policy={}): compaction keeps one record per key, so events of a message can be lost before the worker reads them",
                    policy(e)
                ),
            ),
            Role::Input | Role::Repartition
                if config.changelog_topic.is_none()
                    && !compacts(e)
                    && e.settings.get("retention.ms").is_some_and(|ms| ms != "-1") =>
            {
                say(
                    Severity::Warning,
                    format!(
                        "deletes records after retention.ms ({}) and there is no changelog topic: a partition rebuilt by replaying it from its beginning (after a crash, a rebalance) misses what was deleted; keep every record (retention.ms=-1) or set a changelog topic",
                        e.settings["retention.ms"]
                    ),
                );
            }
            Role::Output if !compacts(e) => say(
                Severity::Warning,
                format!(
                    "is not compacted (cleanup.policy={}): flags are deleted after retention.ms ({}), so a consumer that starts later never sees them; set cleanup.policy=compact",
                    policy(e),
                    e.settings
                        .get("retention.ms")
                        .map_or("the broker's default", String::as_str)
                ),
            ),
            Role::DeadLetters if compacts(e) => say(
                Severity::Error,
                format!(
                    "is compacted (cleanup.policy={}): a dead letter keeps its record's key, which may be none, and Kafka refuses a record without a key on a compacted topic; set cleanup.policy=delete",
                    policy(e)
                ),
            ),
            Role::Changelog | Role::Watermarks if !compacts(e) || deletes(e) => say(
                Severity::Error,
                format!(
                    "must be compacted and only compacted (cleanup.policy={}, wanted compact): {}",
                    policy(e),
                    if w.role == Role::Changelog {
                        "deleting old records loses snapshots, and the partitions they belong to are replayed from their beginning"
                    } else {
                        "every instance reads it whole at start-up, and deleting old records loses the event time of partitions that went quiet"
                    }
                ),
            ),
            _ => {}
        }
        match w.role {
            Role::Changelog if e.partitions < w.partitions => say(
                Severity::Warning,
                format!(
                    "has {} partitions, fewer than the {} partitions that write snapshots: a restore reads the snapshots of others too",
                    e.partitions, w.partitions
                ),
            ),
            Role::Repartition if input_partitions.is_some_and(|n| e.partitions < n) => say(
                Severity::Warning,
                format!(
                    "has {} partitions, fewer than the input's {}: at most {} instances run engines (fine when chosen, as one partition counts a sender's conduct across every message)",
                    e.partitions,
                    input_partitions.unwrap_or_default(),
                    e.partitions
                ),
            ),
            _ => {}
        }
    }
    problems
}

/// An error of the topic tools.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("cannot make an admin client: {0}")]
    Client(#[source] KafkaError),
    #[error("cannot read the cluster's topics: {0}")]
    Metadata(#[source] KafkaError),
    #[error("cannot read the settings of topic `{topic}`: {error}")]
    Describe { topic: String, error: String },
    #[error("cannot create topic `{topic}`: {error}")]
    Create { topic: String, error: String },
}

/// How long one admin request of `modsignal topics` may take.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// An admin client with the worker's client settings (security, SASL, TLS).
pub fn admin(config: &WorkerConfig) -> Result<AdminClient<DefaultClientContext>, TopicsError> {
    config.producer_config().create().map_err(TopicsError::Client)
}

/// The topics of `names` that exist, with their partition counts and settings, each request
/// given `timeout`.
pub async fn describe(
    admin: &AdminClient<DefaultClientContext>,
    names: &[&str],
    timeout: Duration,
) -> Result<BTreeMap<String, Existing>, TopicsError> {
    let metadata = admin
        .inner()
        .fetch_metadata(None, timeout)
        .map_err(TopicsError::Metadata)?;
    let mut out = BTreeMap::new();
    for t in metadata.topics() {
        if t.error().is_none() && names.contains(&t.name()) {
            out.insert(
                t.name().to_owned(),
                Existing {
                    partitions: t.partitions().len() as i32,
                    settings: BTreeMap::new(),
                },
            );
        }
    }
    if out.is_empty() {
        return Ok(out);
    }
    let resources: Vec<ResourceSpecifier<'_>> = out.keys().map(|t| ResourceSpecifier::Topic(t)).collect();
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let results = admin
        .describe_configs(&resources, &options)
        .await
        .map_err(|e| TopicsError::Describe {
            topic: out.keys().cloned().collect::<Vec<_>>().join(", "),
            error: e.to_string(),
        })?;
    for result in results {
        let resource = result.map_err(|code| TopicsError::Describe {
            topic: "(one of them)".into(),
            error: code.to_string(),
        })?;
        let rdkafka::admin::OwnedResourceSpecifier::Topic(name) = &resource.specifier else {
            continue;
        };
        let Some(e) = out.get_mut(name) else {
            continue;
        };
        for entry in resource.entries {
            if let Some(value) = entry.value {
                e.settings.insert(entry.name, value);
            }
        }
    }
    Ok(out)
}

/// Creates the topics of `missing`. A topic created meanwhile by someone else counts as
/// created.
pub async fn create(
    admin: &AdminClient<DefaultClientContext>,
    missing: &[&Wanted],
    layout: &Layout,
) -> Result<(), TopicsError> {
    if missing.is_empty() {
        return Ok(());
    }
    let replication = layout.replication.unwrap_or(-1);
    let topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|w| {
            w.settings.iter().fold(
                NewTopic::new(&w.name, w.partitions, TopicReplication::Fixed(replication)),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    let options = AdminOptions::new()
        .request_timeout(Some(ADMIN_TIMEOUT))
        .operation_timeout(Some(ADMIN_TIMEOUT));
    let results = admin
        .create_topics(&topics, &options)
        .await
        .map_err(|e| TopicsError::Create {
            topic: missing.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", "),
            error: e.to_string(),
        })?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(TopicsError::Create {
                    topic,
                    error: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use modsignal_core::Policy;

    use super::*;

    fn config() -> WorkerConfig {
        let mut c = WorkerConfig::new("localhost:9092", vec!["events".into()], Policy::default());
        c.output_topic = "flags".into();
        c.dead_letter_topic = "dead".into();
        c.changelog_topic = Some("changelog".into());
        c.repartition_topic = Some("routed".into());
        c.watermark_topic = Some("marks".into());
        c
    }

    const LAYOUT: Layout = Layout {
        partitions: 6,
        replication: None,
    };

    fn existing(partitions: i32, policy: &str) -> Existing {
        Existing {
            partitions,
            settings: [("cleanup.policy".to_owned(), policy.to_owned())].into(),
        }
    }

    /// The cluster `wanted` would make.
    fn as_created(wanted: &[Wanted]) -> BTreeMap<String, Existing> {
        wanted
            .iter()
            .map(|w| {
                let settings = w.settings.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
                (
                    w.name.clone(),
                    Existing {
                        partitions: w.partitions,
                        settings,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn every_topic_named_is_wanted_once_with_its_policy() {
        let mut c = config();
        // The same topic named twice is made once.
        c.input_topics.push("events".into());
        let inputs = [("events".to_owned(), 12)].into();
        let wanted = wanted(&c, &LAYOUT, &inputs);
        let setting = |w: &Wanted, key: &str| {
            w.settings
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let summary: Vec<String> = wanted
            .iter()
            .map(|w| {
                format!(
                    "{} {} {} {} {}",
                    w.name,
                    w.role,
                    w.partitions,
                    setting(w, "cleanup.policy"),
                    setting(w, "retention.ms")
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "events input 6 delete -1",
                "flags output 6 compact ",
                "dead dead-letter 6 delete 2592000000",
                "routed repartition 6 delete -1",
                // As many as the largest writer: the existing input's 12.
                "changelog changelog 12 compact ",
                "marks watermark 1 compact ",
            ]
        );
        // From three replicas, a write is on two before it is acknowledged.
        let replicated = super::wanted(
            &c,
            &Layout {
                replication: Some(3),
                ..LAYOUT
            },
            &inputs,
        );
        assert!(replicated.iter().all(|w| setting(w, "min.insync.replicas") == "2"));
        assert!(wanted.iter().all(|w| setting(w, "min.insync.replicas").is_empty()));
    }

    #[test]
    fn what_it_creates_passes_its_own_check() {
        let c = config();
        let wanted = wanted(&c, &LAYOUT, &BTreeMap::new());
        assert_eq!(check(&c, &wanted, &as_created(&wanted)), Vec::new());
    }

    #[test]
    fn each_wrong_setting_is_named_with_its_severity() {
        let c = config();
        let wanted = wanted(&c, &LAYOUT, &BTreeMap::new());
        let mut cluster = as_created(&wanted);
        cluster.insert("events".into(), existing(8, "compact"));
        cluster.insert("flags".into(), existing(6, "delete"));
        cluster.insert("dead".into(), existing(6, "compact"));
        cluster.insert("changelog".into(), existing(2, "compact,delete"));
        cluster.insert("routed".into(), existing(4, "delete"));
        cluster.insert("marks".into(), existing(1, "delete"));
        let problems: Vec<(String, Severity)> = check(&c, &wanted, &cluster)
            .into_iter()
            .map(|p| (p.topic, p.severity))
            .collect();
        assert_eq!(
            problems,
            vec![
                ("events".into(), Severity::Warning),
                ("flags".into(), Severity::Warning),
                ("dead".into(), Severity::Error),
                ("routed".into(), Severity::Warning),
                ("changelog".into(), Severity::Error),
                ("changelog".into(), Severity::Warning),
                ("marks".into(), Severity::Error),
            ]
        );
        let text = check(&c, &wanted, &cluster)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        assert_eq!(
            text[4],
            "error: changelog topic `changelog` must be compacted and only compacted (cleanup.policy=compact,delete, \
             wanted compact): deleting old records loses snapshots, and the partitions they belong to are replayed \
             from their beginning"
        );
    }

    #[test]
    fn without_a_changelog_an_input_that_deletes_is_named() {
        let mut c = config();
        c.changelog_topic = None;
        let wanted = wanted(&c, &LAYOUT, &BTreeMap::new());
        let mut cluster = as_created(&wanted);
        assert_eq!(check(&c, &wanted, &cluster), Vec::new());
        let events = cluster.get_mut("events").expect("created");
        events.settings.insert("retention.ms".into(), "604800000".into());
        let problems = check(&c, &wanted, &cluster);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            (problems[0].topic.as_str(), problems[0].severity),
            ("events", Severity::Warning)
        );
        assert!(problems[0].what.contains("retention.ms (604800000)"), "{}", problems[0]);
    }

    #[test]
    fn a_missing_topic_is_not_a_problem_of_the_check() {
        let c = config();
        let wanted = wanted(&c, &LAYOUT, &BTreeMap::new());
        assert_eq!(check(&c, &wanted, &BTreeMap::new()), Vec::new());
    }
}
