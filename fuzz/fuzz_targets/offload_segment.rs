//! Feeds arbitrary bytes to the virtio-net header and superframe split (`wire::offload`), through the check
//! `checks::offload_segment` that `tests/fuzz_corpus.rs` also replays on stable.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::offload_segment(data));
