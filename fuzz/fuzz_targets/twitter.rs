//! The Twitter reader on arbitrary bytes, split into records at newlines and read in order by
//! one reader (so that its stream clock, which stamps the notices that carry no time, is
//! exercised): it never panics, a record appends exactly the events it reports, every event
//! produced is a valid canonical event that `to_json` then `decode` gives back, and a reader
//! resumed mid-stream from another's clock reads the rest alike (see
//! `modsignal_fuzz::read_records`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use modsignal_formats::Format;

fuzz_target!(|data: &[u8]| modsignal_fuzz::read_records(Format::Twitter, data));
