//! Feeds arbitrary bytes to the inner IP view (`wire::ip::IpView::parse`), through the check
//! `checks::ip_view` that `tests/fuzz_corpus.rs` also replays on stable.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::ip_view(data));
