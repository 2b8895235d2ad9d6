//! Feeds arbitrary bytes to the handshake MSS table (`vxtund::segments`), through the check
//! `checks::segment_sizes` that `tests/fuzz_corpus.rs` also replays on stable.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::segment_sizes(data));
