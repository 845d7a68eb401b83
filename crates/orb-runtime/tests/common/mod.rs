//! What the runtime's tests share.

use std::path::PathBuf;

/// A guest component built from source by `scripts/build-guests`
/// (`$ORB_GUESTS`, else `build/guests`).
pub fn guest(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("ORB_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../build/guests"));
    let p = dir.join(format!("{name}.wasm"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}; run scripts/build-guests", p.display()))
}
