//! Feeds arbitrary bytes to the frame key flows match on (`wire::ethernet::FrameKey::parse`), through the check
//! `checks::frame_key` that `tests/fuzz_corpus.rs` also replays on stable.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::frame_key(data));
