//! Feeds arbitrary bytes to the flow syntax (`flow::parse_flow`, `flow::edit::parse_pattern`), through the check
//! `checks::flow_parse` that `tests/fuzz_corpus.rs` also replays on stable.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::flow_parse(data));
