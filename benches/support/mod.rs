//! Shared by the benchmarks: the release binary, running and timing commands, printing rows.

// Each benchmark is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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

/// Prints one line of the benchmark's report.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `command` (its output captured unless redirected) and returns how long it took; panics
/// with its stderr when it fails.
pub fn run(command: &mut Command) -> Duration {
    let started = Instant::now();
    let output = command.output().expect("spawn");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

/// The largest resident set of any waited-for child process so far, in KiB.
pub fn children_peak_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_or(0, |u| u.max_rss())
}
