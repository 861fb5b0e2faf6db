//! The canonical decoder on arbitrary bytes: `decode` never panics, and its two readers agree.
//!
//! `decode` reads the plain shape producers write with a hand-written fast reader and leaves
//! everything else to serde (`event/fast.rs`); the fast reader promises that whatever it
//! accepts, serde accepts with the same result. The fast reader is private, so the promise is
//! checked through the public API: for every input within the size limit, `decode` gives the
//! same result as serde's wire shape (`RawEvent`) validated by `into_event`, accepted or refused
//! alike (an event equal field by field; an error with the same reason code, and the same error
//! outright when validation refused it). Every event `decode` accepts also survives its own
//! JSON: `decode(ev.to_json())` is `ev`, by either path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modsignal_core::event::{MAX_RECORD_BYTES, RawEvent};
use modsignal_core::{DecodeError, Event, decode};

/// The serde path alone: what `decode` would give were the fast reader to give up on everything.
fn by_serde(bytes: &[u8]) -> Result<Event<'_>, DecodeError> {
    serde_json::from_slice::<RawEvent>(bytes)
        .map_err(|e| DecodeError::Json(e.to_string()))
        .and_then(RawEvent::into_event)
}

fn same(fast: &Result<Event<'_>, DecodeError>, slow: &Result<Event<'_>, DecodeError>, input: &[u8]) {
    match (fast, slow) {
        (Ok(a), Ok(b)) => assert_eq!(
            a,
            b,
            "decode and serde read {:?} differently",
            String::from_utf8_lossy(input)
        ),
        // serde_json words a syntax error by where it stopped, which its string and slice
        // readers may put differently; the reason code is what reject files and metrics keep.
        (Err(DecodeError::Json(_)), Err(DecodeError::Json(_))) => {}
        (Err(a), Err(b)) => assert_eq!(
            a,
            b,
            "decode and serde refuse {:?} differently",
            String::from_utf8_lossy(input)
        ),
        (a, b) => panic!(
            "decode gives {a:?} and serde gives {b:?} for {:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let decoded = decode(data);
    // Bytes that are not UTF-8 or over the size limit are refused by `decode` before either
    // reader looks at them, with a reason of its own.
    if data.len() <= MAX_RECORD_BYTES && std::str::from_utf8(data).is_ok() {
        same(&decoded, &by_serde(data), data);
    }
    if let Ok(ev) = &decoded {
        let json = ev.to_json();
        let again = decode(json.as_bytes())
            .unwrap_or_else(|e| panic!("decode refuses the JSON of an event it accepted ({e}): {json}"));
        assert_eq!(&again, ev, "an event changed through its JSON: {json}");
        same(&Ok(again), &by_serde(json.as_bytes()), json.as_bytes());
    }
});
