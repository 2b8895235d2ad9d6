//! Feeds arbitrary bytes to the config (`config::Config::parse` on arbitrary text), through the check
//! `checks::config_parse` that `tests/fuzz_corpus.rs` also replays on stable.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::config_parse(data));
