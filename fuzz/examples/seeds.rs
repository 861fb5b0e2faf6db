//! Writes the generated seed corpora under `fuzz/seeds/`: engine snapshots for the `frame`
//! target and starting inputs for the `engine` target. Run it from `fuzz/` when the engine's
//! snapshot format changes (`cargo run --example seeds`, without `--release`); the other seeds
//! are copies of test data and are kept by hand.

use std::fs;
use std::path::Path;

use modsignal_core::{Engine, Policy};
use modsignal_fuzz::{SCENARIOS, scenario_events};

fn main() -> std::io::Result<()> {
    // A release build writes 0 where a debug build writes the hash of each flag's JSON in the
    // snapshot's revision slots (the engine's check that a flag written again under the same
    // revision is unchanged). The fuzz targets are built with debug assertions, and a seed
    // from a release build would trip that check on the first rewrite.
    const {
        assert!(
            cfg!(debug_assertions),
            "build the seeds with debug assertions (no --release)"
        )
    };
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");

    // Real snapshots, halfway through each scenario and at its end, for the frame target: its
    // mutations of these reach the snapshot decoder because the target reseals what it is given.
    let frame = seeds.join("frame");
    fs::create_dir_all(&frame)?;
    for (name, text) in SCENARIOS {
        let events = scenario_events(text);
        let mut engine = Engine::new(Policy::default());
        let mut out = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            if i == events.len() / 2 {
                fs::write(frame.join(format!("{name}-half.snap")), engine.snapshot())?;
            }
            let _ = engine.apply(ev, &mut out);
        }
        engine.finish(&mut out);
        fs::write(frame.join(format!("{name}-end.snap")), engine.snapshot())?;
    }
    fs::write(frame.join("empty.snap"), Engine::new(Policy::default()).snapshot())?;

    // The engine target reads structured input from bytes, and any bytes make a valid input:
    // a few fixed pseudo-random ones give it varied sequences to start from.
    let engine = seeds.join("engine");
    fs::create_dir_all(&engine)?;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for (i, len) in [64usize, 128, 256, 256, 512, 512, 1024, 1024, 2048, 2048]
        .into_iter()
        .enumerate()
    {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                // xorshift64: deterministic, so the seeds do not change from one run to the next.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 56) as u8
            })
            .collect();
        fs::write(engine.join(format!("random-{i:02}")), bytes)?;
    }
    Ok(())
}
