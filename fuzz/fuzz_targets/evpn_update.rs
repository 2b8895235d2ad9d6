//! Feeds arbitrary bytes, as an established BGP peer's stream, to the EVPN session and table
//! (`bgp::Session`, `evpn::route::read_update`, `evpn::Table`), through the check
//! `checks::evpn_update` that `tests/fuzz_corpus.rs` also replays on stable.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::evpn_update(data));
