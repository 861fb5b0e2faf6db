//! The Mastodon reader on arbitrary bytes, split into records at newlines and read in order by
//! one reader (so that its state is exercised: the stream clock, and the pairing of a
//! server-sent `event:` line with the `data:` line after it): it never panics, a record appends
//! exactly the events it reports, every event produced is a valid canonical event that
//! `to_json` then `decode` gives back, and a reader resumed mid-stream from another's clock and
//! pending `event:` line reads the rest alike (see `modsignal_fuzz::read_records`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use modsignal_formats::Format;

fuzz_target!(|data: &[u8]| modsignal_fuzz::read_records(Format::Mastodon, data));
