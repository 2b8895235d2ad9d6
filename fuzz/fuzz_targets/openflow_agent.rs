//! Feeds arbitrary bytes, as a stream of OpenFlow messages after HELLO, to the switch's agent
//! (decode, conversion to vxtund's flows, the edit operation, the answers), through the check
//! `checks::openflow_agent` that `tests/fuzz_corpus.rs` also replays on stable.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::openflow_agent(data));
