//! Shared by the benchmarks that run the release binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the release binary and returns its path, next to this benchmark's own profile folder
/// (`<target>/release/deps/<bench>-*` → `<target>/release/buildopt`), so `CARGO_TARGET_DIR` is
/// honoured.
pub fn buildopt_binary() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--bin", "buildopt"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build");
    assert!(status.success(), "cargo build failed");
    let me = std::env::current_exe().expect("current exe");
    let profile = me
        .parent()
        .and_then(Path::parent)
        .expect("bench binary in <target>/release/deps");
    let binary = profile.join("buildopt");
    assert!(binary.is_file(), "{} was not built", binary.display());
    binary
}
