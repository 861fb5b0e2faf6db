//! What the worker checks before it reads: that the brokers answer, that every topic it
//! writes exists, and that the topics' settings keep its guarantees (see [`crate::topics`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};

use crate::config::WorkerConfig;
use crate::error::{Halt, WorkerError};
use crate::group::WorkerContext;
use crate::retry;
use crate::shutdown::Stop;
use crate::topics;

/// The partition counts the worker needs to know.
pub(crate) struct Counts {
    /// The changelog topic's, when there is one.
    pub changelog: Option<i32>,
    /// The repartition topic's, when this stage writes one.
    pub repartition: Option<i32>,
    /// Every topic's there is.
    pub topics: Vec<(String, i32)>,
}

/// Waits until the brokers answer, then checks that the output and dead-letter topics exist:
/// producing to a missing topic would stall the worker later with a less clear error.
/// Returns the partition counts of the changelog topic and of `repartition`, where they are
/// given, and of every topic there is.
pub(crate) async fn check_topics<F: Future<Output = ()>>(
    consumer: &Arc<StreamConsumer<WorkerContext>>,
    config: &WorkerConfig,
    repartition: Option<&str>,
    stop: &mut Stop<'_, F>,
) -> Result<Counts, Halt> {
    let c = consumer.clone();
    let topics = retry::until_ok(
        "cannot reach the brokers yet",
        move || {
            c.fetch_metadata(None, Duration::from_secs(10)).map(|m| {
                m.topics()
                    .iter()
                    .filter(|t| t.error().is_none())
                    .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
                    .collect::<Vec<(String, i32)>>()
            })
        },
        stop.wait(),
    )
    .await?
    .ok_or(Halt::Stop)?;
    let partitions = |name: &str| topics.iter().find(|(t, _)| t == name).map(|(_, n)| *n);
    for t in [config.output_topic.as_str(), &config.dead_letter_topic]
        .into_iter()
        .chain(config.changelog_topic.as_deref())
        .chain(config.watermark_topic.as_deref())
        .chain(repartition)
    {
        if partitions(t).is_none() {
            return Err(WorkerError::MissingTopic(t.to_owned()).into());
        }
    }
    for t in &config.input_topics {
        if partitions(t).is_none() {
            tracing::warn!(topic = %t, "input topic does not exist yet; it is consumed once created");
        }
    }
    check_topic_settings(config, &topics).await?;
    let count = |t: Option<&str>| t.and_then(partitions).filter(|&n| n > 0);
    Ok(Counts {
        changelog: count(config.changelog_topic.as_deref()),
        repartition: count(repartition),
        topics,
    })
}

/// Checks the settings of the topics the configuration names (`topics::check`): a setting that
/// breaks a guarantee stops the worker before it reads anything, and one that deserves a look is
/// logged. Settings that cannot be read (an ACL without `DescribeConfigs`) are logged and the
/// worker goes on, as it did before it checked them.
async fn check_topic_settings(config: &WorkerConfig, topics: &[(String, i32)]) -> Result<(), Halt> {
    let counts: BTreeMap<String, i32> = topics.iter().cloned().collect();
    let layout = topics::Layout {
        partitions: 1,
        replication: None,
    };
    let wanted = topics::wanted(config, &layout, &counts);
    let names: Vec<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
    let existing = match topics::admin(config) {
        // Short: a broker answers at once, and one that cannot (librdkafka's mock cluster, a
        // proxy without the API) should not hold the start for long.
        Ok(admin) => topics::describe(&admin, &names, Duration::from_secs(3)).await,
        Err(e) => Err(e),
    };
    let existing = match existing {
        Ok(existing) => existing,
        Err(error) => {
            tracing::warn!(%error, "cannot read the topics' settings to check them; going on");
            return Ok(());
        }
    };
    let (errors, warnings): (Vec<_>, Vec<_>) = topics::check(config, &wanted, &existing)
        .into_iter()
        .partition(|p| p.severity == topics::Severity::Error);
    for w in &warnings {
        tracing::warn!(topic = %w.topic, "{w}");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(WorkerError::Topics(errors).into())
    }
}
