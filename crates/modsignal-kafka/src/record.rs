//! What one input record is, read the same way live and in a replay: decoded and applied
//! ([`apply_record`]), its timestamp ([`record_ms`]), and the watermark mark it may carry
//! ([`watermark_of`]).

use modsignal_core::{Engine, EventTimes, Flag, Outcome, decode};
use rdkafka::message::{Headers, Message, Timestamp};

use crate::dead_letter::Reject;
use crate::router::{HEADER_WATERMARK, decode_mark};

/// Decodes and applies one record: the same steps for live records and for a replay, so that
/// a replay rebuilds exactly the state the live records built. The record's timestamp is the
/// time it was received: an event stamped further after it than `stream.max_skew_secs` is
/// rejected as `future` (and the same record is rejected again on a replay).
/// Returns the event's type name (a metrics label) with what applying it did.
pub(crate) fn apply_record(
    engine: &mut Engine,
    payload: &[u8],
    received_ms: Option<i64>,
    max_record_bytes: usize,
    out: &mut Vec<Flag>,
) -> Result<(&'static str, Outcome), Reject> {
    if payload.len() > max_record_bytes {
        return Err(Reject::TooLarge {
            bytes: payload.len(),
            limit: max_record_bytes,
        });
    }
    let ev = decode(payload)?;
    let outcome = engine.apply_at(&ev, received_ms.map(modsignal_core::Ts), out)?;
    Ok((ev.kind.type_name(), outcome))
}

/// The timestamp a record carries (ms since the epoch): when it was produced or appended.
pub(crate) fn record_ms<M: Message>(m: &M) -> Option<i64> {
    match m.timestamp() {
        Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => Some(t),
        Timestamp::NotAvailable => None,
    }
}

/// The source, event times and idleness a watermark mark carries, if the record is one. A
/// mark written before marks said whether their source is idle is keyed `watermark:SOURCE`
/// and was sent only when its source went quiet: it reads as idle.
pub(crate) fn watermark_of<M: Message>(m: &M) -> Option<(String, EventTimes, bool)> {
    let (times, idle) = m
        .headers()?
        .iter()
        .find(|h| h.key == HEADER_WATERMARK)
        .and_then(|h| decode_mark(std::str::from_utf8(h.value?).ok()?))?;
    let key = m.key().and_then(|k| std::str::from_utf8(k).ok()).unwrap_or("watermark");
    Some(match key.strip_prefix("watermark:") {
        Some(source) => (source.to_owned(), times, true),
        None => (key.to_owned(), times, idle),
    })
}
