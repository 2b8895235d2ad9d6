//! Feeds arbitrary bytes to VXLAN header decoding (`wire::vxlan::Header::decode`), through the check
//! `checks::vxlan_decode` that `tests/fuzz_corpus.rs` also replays on stable.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::vxlan_decode(data));
