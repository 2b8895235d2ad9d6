//! The `evpn_update` fuzz target's check on stable, fed by proptest with FRR's and GoBGP's
//! captured UPDATEs mutated (bytes changed, cut, repeated): a short fuzzing run in every test
//! run, besides the corpus replay of `tests/fuzz_corpus.rs`. Nothing may panic, and the
//! table's limits and views hold whatever the peer sends.

#[path = "../fuzz/checks.rs"]
mod checks;

use proptest::prelude::*;

const SEEDS: &[&[u8]] = &[
    include_bytes!("../fuzz/seeds/evpn_update/frr_sequence"),
    include_bytes!("../fuzz/seeds/evpn_update/gobgp_sequence"),
    include_bytes!("../fuzz/seeds/evpn_update/rr_reflected"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_updates_never_panic_and_keep_the_table_sound(
        seed in 0usize..SEEDS.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8),
        repeat in 1usize..3,
    ) {
        let mut data: Vec<u8> = SEEDS[seed].repeat(repeat);
        for (at, byte, kind) in edits {
            if data.is_empty() {
                break;
            }
            let i = at.index(data.len());
            match kind {
                0 => data[i] = byte,
                1 => data[i] ^= 1 << (byte % 8),
                2 => data.truncate(i),
                _ => data.insert(i, byte),
            }
        }
        checks::evpn_update(&data);
    }
}

#[test]
fn the_seeds_pass_unchanged() {
    for seed in SEEDS {
        checks::evpn_update(seed);
    }
}
