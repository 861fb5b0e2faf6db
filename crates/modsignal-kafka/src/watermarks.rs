//! The watermark topic, as an engine stage reading the input directly hears it: every input
//! partition's mark (event times, and whether it is read to its end), read whole by a follower
//! of its own for as long as the worker runs, and kept in [`GroupMarks`] for the engines to
//! take in at each flush (see [`crate::stage::PartState::on_tick`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use modsignal_core::EventTimes;
use tokio::task::JoinHandle;

use crate::config::WorkerConfig;
use crate::follow::follow_topic;
use crate::router::decode_mark;
use crate::shutdown::lock;

/// Every input partition's mark (event times, idle) as the watermark topic tells it, with a
/// version that grows at each change, so each engine takes in only what is new.
#[derive(Default)]
pub(crate) struct GroupMarks {
    marks: Mutex<BTreeMap<String, (EventTimes, bool)>>,
    version: AtomicU64,
}

impl GroupMarks {
    fn update(&self, source: String, mark: (EventTimes, bool)) {
        let mut marks = lock(&self.marks);
        if marks.get(&source) != Some(&mark) {
            marks.insert(source, mark);
            self.version.fetch_add(1, Ordering::Release);
        }
    }

    /// The marks and their version, for one flush.
    pub(crate) fn read(&self) -> Marks {
        Marks {
            version: self.version.load(Ordering::Acquire),
            marks: lock(&self.marks).clone(),
        }
    }

    /// The version of the marks, which grows at each change.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}

/// Every input partition's mark at one version of [`GroupMarks`].
pub(crate) struct Marks {
    pub version: u64,
    /// Source (`topic/partition`) → its event times and idleness.
    pub marks: BTreeMap<String, (EventTimes, bool)>,
}

/// Starts following the watermark `topic`: its marks are kept in the returned [`GroupMarks`]
/// until the task is aborted.
pub(crate) fn follow(config: &WorkerConfig, topic: &str) -> (Arc<GroupMarks>, JoinHandle<()>) {
    let marks = Arc::new(GroupMarks::default());
    let (seen, config, topic) = (marks.clone(), config.clone(), topic.to_owned());
    let task = tokio::spawn(async move {
        let on_record = move |value: &[u8]| {
            let Some((source, mark)) = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.split_once('='))
                .and_then(|(s, t)| Some((s.to_owned(), decode_mark(t)?)))
            else {
                return;
            };
            seen.update(source, mark);
        };
        let followed = follow_topic(
            &config,
            &topic,
            "watermark follower",
            on_record,
            || {},
            std::future::pending(),
        )
        .await;
        if let Err(e) = followed {
            tracing::error!(error = %e, "cannot follow the watermark topic; engines hold event time where the other partitions last said");
        }
    });
    (marks, task)
}
