//! Feeds arbitrary bytes to the control protocol (`control::Request::parse`, `Response::decode`), through the check
//! `checks::control_protocol` that `tests/fuzz_corpus.rs` also replays on stable.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::control_protocol(data));
