//! Replays the fuzz corpora (`fuzz/corpus/<target>/`, minimised by `cargo fuzz cmin`) and the
//! seeds (`fuzz/seeds/<target>/`) through the same checks as the fuzz targets, on stable Rust
//! and in every test run. Each directory must be named in `TARGETS` or in `fuzz/checks.rs`
//! (the checks the targets themselves include), so a new fuzz target's corpus cannot be
//! skipped silently.

use std::fs;
use std::path::Path;

use vxtund::openflow::Message;

/// The checks of the other targets, the very file their `fuzz_targets/<name>.rs` include.
#[path = "../fuzz/checks.rs"]
mod checks;

use checks::Check;

/// Fuzz target name and the check its `fuzz_targets/<name>.rs` makes.
const TARGETS: &[(&str, Check)] = &[("openflow_decode", openflow_decode)];

/// The check for target `name`: `openflow_decode` here, the others from `fuzz/checks.rs`.
fn check_for(name: &str) -> Option<Check> {
    TARGETS
        .iter()
        .chain(checks::CHECKS)
        .find(|(target, _)| *target == name)
        .map(|&(_, check)| check)
}

/// As `fuzz/fuzz_targets/openflow_decode.rs`: what decodes re-encodes to bytes that decode,
/// after which encoding and decoding are each other's inverse.
fn openflow_decode(data: &[u8]) {
    if let Ok((xid, message)) = Message::decode(data) {
        let again = message.encode(xid);
        let (xid2, message2) = Message::decode(&again)
            .unwrap_or_else(|e| panic!("re-encoding of {message:?} does not decode: {e}"));
        assert_eq!(xid2, xid);
        assert_eq!(Message::decode(&message2.encode(xid)), Ok((xid, message2)));
    }
}

#[test]
fn every_corpus_and_seed_file_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for kind in ["corpus", "seeds"] {
        let Ok(dirs) = fs::read_dir(root.join(kind)) else {
            continue;
        };
        for dir in dirs {
            let dir = dir.expect("corpus directory entry").path();
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let check = check_for(name)
                .unwrap_or_else(|| panic!("{}: no check for this fuzz target", dir.display()));
            for file in fs::read_dir(&dir).expect("corpus directory") {
                let path = file.expect("corpus file").path();
                let data = fs::read(&path).expect("corpus file");
                let outcome = std::panic::catch_unwind(|| check(&data));
                assert!(outcome.is_ok(), "{} fails its target", path.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed > 0, "no corpus under {}", root.display());
}

#[test]
fn every_target_has_seeds_and_a_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for file in fs::read_dir(root.join("fuzz_targets")).expect("fuzz_targets") {
        let path = file.expect("fuzz target").path();
        let name = path
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(
            check_for(name).is_some(),
            "{name}: no check in tests/fuzz_corpus.rs"
        );
        let seeds = fs::read_dir(root.join("seeds").join(name)).map_or(0, |d| d.count());
        let corpus = fs::read_dir(root.join("corpus").join(name)).map_or(0, |d| d.count());
        assert!(seeds + corpus > 0, "{name}: no seeds or corpus to replay");
    }
}
