//! Builds the fast path's BPF programs (`bpf/fastpath.c`) with clang into `$OUT_DIR`, where
//! `src/io/bpf.rs` embeds the object. Without clang the build still succeeds: the object is
//! empty, and `fast_path = "auto"` then says so and keeps the userspace path (`"on"` refuses
//! to start).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=bpf/fastpath.c");
    println!("cargo:rerun-if-env-changed=VXTUND_CLANG");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("fastpath.o");
    let clang = std::env::var("VXTUND_CLANG").unwrap_or_else(|_| "clang".into());
    // The multiarch include directory holds <asm/types.h>, which <linux/bpf.h> needs.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg(format!("-I{multiarch}"))
        .arg("-c")
        .arg("bpf/fastpath.c")
        .arg("-o")
        .arg(&object)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} failed to build bpf/fastpath.c ({s})"),
        Err(e) => {
            println!(
                "cargo:warning=no BPF fast path in this build: running {clang} failed ({e}); \
                 scripts/setup.sh installs clang"
            );
            std::fs::write(&object, b"").expect("writing an empty object to OUT_DIR");
        }
    }
}
