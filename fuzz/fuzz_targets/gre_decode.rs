//! Feeds arbitrary bytes to GRE header decoding (`wire::gre::Header::decode`), through the check
//! `checks::gre_decode` that `tests/fuzz_corpus.rs` also replays on stable.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::gre_decode(data));
