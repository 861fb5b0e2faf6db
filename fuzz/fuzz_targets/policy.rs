//! The policy parser on arbitrary text, exactly as the binary reads a policy file
//! (`crates/modsignal/src/policy.rs::parse`: `toml::from_str::<Policy>` then `Policy::validate`):
//! it never panics, and a policy that validates runs an engine without panicking. Such an engine
//! is fed every reviewed scenario of `tests/scenarios/` (every event type, removals, repeated
//! conduct and mobbing), flushed, snapshotted and restored under the same policy, and finished;
//! every flag it writes is checked as in the engine target (finite numbers, the score equal to
//! the logistic of the printed weights, revisions never decreasing).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use modsignal_core::{Engine, Event, Policy};
use modsignal_fuzz::{all_scenario_events, check_flag, check_revisions};

fn events() -> &'static [Event<'static>] {
    static EVENTS: OnceLock<Vec<Event<'static>>> = OnceLock::new();
    EVENTS.get_or_init(all_scenario_events)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(policy) = toml::from_str::<Policy>(text) else {
        return;
    };
    if policy.validate().is_err() {
        return;
    }
    let events = events();
    let mut engine = Engine::new(policy.clone());
    let mut out = Vec::new();
    let (first, rest) = events.split_at(events.len() / 2);
    for ev in first {
        let _ = engine.apply(ev, &mut out);
    }
    engine.flush(&mut out);
    // A snapshot restores under the policy it was taken with, whatever its numbers.
    let mut engine = Engine::restore(policy, &engine.snapshot())
        .unwrap_or_else(|e| panic!("a snapshot does not restore under its own policy: {e}"));
    for ev in rest {
        let _ = engine.apply(ev, &mut out);
    }
    engine.finish(&mut out);
    out.iter().for_each(check_flag);
    check_revisions(&out);
});
