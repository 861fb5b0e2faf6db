//! Event time: [`EventClock`], what one input's events say of it, and how the sources of an
//! engine's input combine ([`combined_event_time`], [`SourceMark`], [`InputTime`]).

use crate::store::Id;
use crate::time::Ts;

/// Event time as the engine knows it: the newest event time accepted, with what the event
/// was about, and the newest time a different event reached. Event time is the latter (the
/// newest time seen in at least two events), so that one record stamped far ahead, however it
/// got through and however often it is repeated, never moves the watermark, the timers or the
/// retention horizon for everyone else.
///
/// The Kafka router keeps one per input partition, and the engine partitions combine what the
/// partitions publish with [`combined_event_time`], so that the whole input reaches the event
/// time file mode reaches.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EventClock {
    pub(super) newest: i64,
    /// The type and id of the newest event: a repeat of it (or another event of the same type
    /// about the same id) does not corroborate its time.
    newest_of: (u8, Id),
    second: i64,
}

impl Default for EventClock {
    fn default() -> Self {
        EventClock {
            newest: i64::MIN,
            newest_of: (0, Id::default()),
            second: i64::MIN,
        }
    }
}

impl EventClock {
    /// Takes in an event at `at` of type `kind` about `id`; whether event time moved.
    fn observe(&mut self, at: i64, kind: u8, id: &str) -> bool {
        let same = self.newest_of.0 == kind && self.newest_of.1 == id;
        let before = self.second;
        if at > self.newest {
            if !same {
                self.second = self.newest;
                self.newest_of.0 = kind;
                // Reuses the id's buffer, so following a stream costs no allocation per event.
                self.newest_of.1.clear();
                self.newest_of.1.push_str(id);
            }
            self.newest = at;
        } else if !same && at > self.second {
            self.second = at;
        }
        self.second != before
    }

    /// Takes in an event; whether event time moved.
    pub fn observe_event(&mut self, at: Ts, kind: &crate::event::EventKind<'_>) -> bool {
        use crate::event::EventKind::{Account, Delete, Impressions, Label, Post, Report, Reshare, Restore, Restrict};
        let (type_of, id) = match kind {
            Post { id, .. } => (0, id),
            Reshare { id, .. } => (1, id),
            Delete { id, .. } => (2, id),
            Restrict { id, .. } => (3, id),
            Restore { id, .. } => (4, id),
            Label { id, .. } => (5, id),
            Report { id, .. } => (6, id),
            Impressions { id, .. } => (7, id),
            Account { user, .. } => (8, user),
        };
        self.observe(at.0, type_of, id)
    }

    /// Event time: the newest time seen in two events.
    pub(super) fn time(&self) -> Option<i64> {
        (self.second != i64::MIN).then_some(self.second)
    }

    /// The newest time seen, and the newest time a different event reached: what a partition
    /// publishes for [`combined_event_time`].
    pub fn times(&self) -> EventTimes {
        let t = |x: i64| (x != i64::MIN).then_some(Ts(x));
        (t(self.newest), t(self.second))
    }
}

/// A partition's two newest event times ([`EventClock::times`]).
pub type EventTimes = (Option<Ts>, Option<Ts>);

/// The event time of a whole input from the [`EventClock::times`] of its partitions (each an
/// event set of its own): the second newest of all their times, or the one time if there is
/// only one. Each partition's two newest events are among them, so this is the newest time
/// seen in two events of the input, as one clock over the whole input would read it.
pub fn combined_event_time(times: impl IntoIterator<Item = EventTimes>) -> Option<Ts> {
    let (mut first, mut second) = (None, None);
    for t in times.into_iter().flat_map(|(a, b)| [a, b]).flatten() {
        if Some(t) > first {
            second = first;
            first = Some(t);
        } else if Some(t) > second {
            second = Some(t);
        }
    }
    second.or(first)
}

/// What one input partition feeding an engine (a *source*: the Kafka worker names it
/// `topic/partition`) last said of its event time: its two newest event times
/// ([`EventClock::times`]), and whether it is idle, that is, has read everything its partition
/// holds. See [`Engine::expect_sources`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceMark {
    pub newest: Option<i64>,
    pub second: Option<i64>,
    pub idle: bool,
}

impl SourceMark {
    /// A mark of these times; a time outside what an event can carry (before 2000 or after
    /// 2200) is taken as unknown, so that a damaged or forged mark cannot move event time to
    /// where no arithmetic on it is safe.
    pub fn new((newest, second): EventTimes, idle: bool) -> SourceMark {
        let known = |t: Option<Ts>| t.filter(|t| t.in_range()).map(|t| t.0);
        SourceMark {
            newest: known(newest),
            second: known(second),
            idle,
        }
    }

    pub fn times(&self) -> EventTimes {
        (self.newest.map(Ts), self.second.map(Ts))
    }
}

/// How far the sources of an engine's input let event time go ([`Engine::input_time`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputTime {
    /// No sources declared: the engine follows the events it applies (file mode, one input).
    Own,
    /// A source that is not idle has said nothing yet, or has read no event: event time stays.
    Held,
    /// The event time of the slowest source that is not idle.
    Slowest(Ts),
    /// Every source is idle: the event time of the whole input ([`combined_event_time`]), to
    /// which the watermark moves as at the end of input.
    Idle(Option<Ts>),
}
