//! Feeds arbitrary bytes to the coalescing planner (`wire::offload::plan_runs`), through the check
//! `checks::plan_runs` that `tests/fuzz_corpus.rs` also replays on stable.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::plan_runs(data));
