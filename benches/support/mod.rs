//! Shared by the benchmarks: the release binary, running and timing commands, printing rows.

// Each benchmark is its own crate and uses only part of this module.
#![allow(dead_code)]

pub mod repos;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// The engine the benchmark runs on (`DOCKER_HOST` or the default socket), as one line:
/// version, API, storage driver and image store, from the docker CLI.
pub fn engine_line() -> String {
    let ask = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let version = ask(&[
        "version",
        "--format",
        "Docker {{.Server.Version}}, API {{.Server.APIVersion}}",
    ]);
    let driver = ask(&["info", "--format", "{{.Driver}} {{json .DriverStatus}}"]);
    let Some(version) = version else {
        return "engine: none answers".to_owned();
    };
    let driver = driver.unwrap_or_default();
    let store = if uses_containerd_store(&driver) {
        "containerd"
    } else {
        "classic"
    };
    let name = driver.split_whitespace().next().unwrap_or("?");
    format!("engine: {version}, storage driver {name}, {store} image store")
}

/// Whether the engine keeps its images in the containerd image store (from `docker info`).
pub fn containerd_store() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{json .DriverStatus}}"])
        .output()
        .is_ok_and(|o| {
            o.status.success() && uses_containerd_store(&String::from_utf8_lossy(&o.stdout))
        })
}

/// `DriverStatus` names the snapshotter only on the containerd image store.
fn uses_containerd_store(driver_status: &str) -> bool {
    driver_status.contains("io.containerd.snapshotter")
}

/// Prints one line of the benchmark's report.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Whether `command` runs and succeeds, its output discarded.
pub fn succeeds(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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
fn children_peak_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_or(0, |u| u.max_rss())
}

/// Child mode of a benchmark started by [`peak_of`]: when this process was called with
/// `--peak-of COMMAND...`, runs the command, prints "SECONDS PEAK_KIB" (the wall time, and the
/// peak memory of the command and its own children) and returns true.
pub fn run_as_peak_child() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let Some(at) = args.iter().position(|a| a == "--peak-of") else {
        return false;
    };
    let command = &args[at + 1..];
    let elapsed = run(Command::new(&command[0]).args(&command[1..]));
    report(&format!(
        "{} {}",
        elapsed.as_secs_f64(),
        children_peak_kib()
    ));
    true
}

/// Runs `command` in a fresh child of this benchmark (see [`run_as_peak_child`]), so that
/// processes the benchmark ran earlier do not count; returns its wall time in seconds and the
/// peak memory in KiB of it and its children.
pub fn peak_of(command: &[&str]) -> (f64, i64) {
    let me = std::env::current_exe().expect("current exe");
    let output = Command::new(me)
        .arg("--peak-of")
        .args(command)
        .output()
        .expect("spawn peak child");
    assert!(
        output.status.success(),
        "peak child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split_whitespace();
    let seconds = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let peak = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (seconds, peak)
}
