//! `buildopt scan` across its sources and runs, on the real daemon and the small
//! `buildopt-scan/distroless:test` image (tests/testbed/make-scan-images.sh):
//!
//! - an unreadable `--input` beside a good one: the good one is reported in full, the bad one
//!   named in the JSON and text outputs, and the exit code is the bad one's (2);
//! - `--from-cache REF` with no daemon gives the packages `--image REF` gives;
//! - a second `--image` scan with the same scan cache reads no layer;
//! - a broken `buildopt.toml` in the folder does not stop `--image`.
//!
//! No vulnerability database here: the gate is turned off, as in scan_images.rs (with it on, a
//! scan without a database exits 4). A missing daemon or image fails these tests in CI and
//! skips them elsewhere (tests/integration/skips.rs).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::build::daemon_available;
use crate::cli::buildopt;

const IMAGE: &str = "buildopt-scan/distroless:test";

/// Whether the daemon holds [`IMAGE`]; a failure in CI, else a recorded skip.
fn image_present(test: &str) -> bool {
    if !daemon_available(test) {
        return false;
    }
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    crate::skips::require(
        present,
        test,
        &format!("scan test image {IMAGE}"),
        "tests/testbed/make-scan-images.sh",
    )
}

/// `buildopt scan ARGS` in `dir`, its scan cache in `scan_cache`, the gate off.
fn scan(dir: &Path, scan_cache: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let scan_cache = scan_cache.to_string_lossy().into_owned();
    let mut env = vec![
        ("BUILDOPT_SCAN_CACHE_DIR", scan_cache.as_str()),
        ("BUILDOPT_FAIL_ON_CRITICAL", "false"),
        ("BUILDOPT_FAIL_ON_HIGH", "false"),
    ];
    env.extend_from_slice(extra);
    let mut all = vec!["scan"];
    all.extend(args);
    buildopt(dir, &all, &env)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(output)
        )
    })
}

/// The one image of a report, with its packages.
fn only_image(report: &Value) -> &Value {
    let images = report["images"].as_array().expect("images");
    assert_eq!(images.len(), 1, "{report}");
    &images[0]
}

/// A successful `scan --image IMAGE --output json` in `dir`.
fn scan_image(dir: &Path, scan_cache: &Path) -> (Value, String) {
    let output = scan(
        dir,
        scan_cache,
        &["--image", IMAGE, "--output", "json"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    (json(&output), stderr(&output))
}

fn docker(dir: &Path, args: &[&str]) {
    let output = Command::new("docker")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("docker");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        stderr(&output)
    );
}

#[test]
fn an_unreadable_input_is_named_and_never_stops_the_others() {
    if !image_present("scan_unreadable_input") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    docker(dir.path(), &["save", "-o", "good.tar", IMAGE]);
    let good = std::fs::read(dir.path().join("good.tar")).expect("good.tar");
    std::fs::write(dir.path().join("cut.tar"), &good[..1536]).expect("cut.tar");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(dir.path().join("garbage.tar"), garbage).expect("garbage.tar");

    let args = [
        "--input",
        "cut.tar",
        "--input",
        "good.tar",
        "--input",
        "garbage.tar",
    ];
    let output = scan(
        dir.path(),
        cache.path(),
        &[&args[..], &["--output", "json"]].concat(),
        &[],
    );
    // An input the user named that cannot be read: a usage error, as when it was alone.
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let report = json(&output);
    let image = only_image(&report);
    // A saved tar's image is named by its tag.
    assert_eq!(image["image"], IMAGE);
    let names: Vec<&str> = image["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(!names.is_empty(), "good.tar's packages: {report}");
    let unreadable = report["unreadable"].as_array().expect("unreadable");
    let inputs: Vec<&str> = unreadable
        .iter()
        .filter_map(|u| u["input"].as_str())
        .collect();
    assert_eq!(inputs.len(), 2, "{report}");
    assert!(inputs[0].ends_with("/cut.tar"), "{inputs:?}");
    assert!(inputs[1].ends_with("/garbage.tar"), "{inputs:?}");
    assert!(
        unreadable
            .iter()
            .all(|u| !u["error"].as_str().unwrap_or("").is_empty())
    );
    let err = stderr(&output);
    assert!(
        err.contains("cut.tar: not scanned") && err.contains("garbage.tar: not scanned"),
        "{err}"
    );
    assert!(
        err.contains("scanned 1 image(s)") && err.contains("2 could not be read"),
        "{err}"
    );

    let output = scan(dir.path(), cache.path(), &args, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with(&format!("{IMAGE}  (linux/")), "{text}");
    assert!(text.contains("cut.tar  (not scanned)"), "{text}");
    assert!(text.contains("garbage.tar  (not scanned)"), "{text}");
}

#[test]
fn from_cache_without_a_daemon_gives_what_the_daemon_gives() {
    if !image_present("scan_from_cache_without_daemon") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let (from_daemon, _) = scan_image(dir.path(), cache.path());

    // Fill a layer store the way a CI runner does: export here, import with no load there.
    let export = buildopt(
        dir.path(),
        &["cache", "export", "c.tzst", "--image", IMAGE],
        &[],
    );
    assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).expect("mkdir");
    std::fs::rename(dir.path().join("c.tzst"), fresh.join("c.tzst")).expect("move");
    let no_daemon = [("DOCKER_HOST", "unix:///nonexistent")];
    let import = buildopt(
        &fresh,
        &["cache", "import", "c.tzst", "--no-load"],
        &no_daemon,
    );
    assert_eq!(import.status.code(), Some(0), "{}", stderr(&import));

    let fresh_cache = tempfile::tempdir().expect("tempdir");
    let output = scan(
        &fresh,
        fresh_cache.path(),
        &["--from-cache", IMAGE, "--output", "json"],
        &no_daemon,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let from_store = json(&output);
    let (store, daemon) = (only_image(&from_store), only_image(&from_daemon));
    assert_eq!(store["id"], daemon["id"]);
    assert!(!daemon["packages"].as_array().expect("packages").is_empty());
    assert_eq!(store["packages"], daemon["packages"]);
    assert_eq!(store["os"], daemon["os"]);
}

/// The counts of the `scanned N image(s): R layer(s) read, C from the scan cache` line.
fn read_and_cached(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("scanned "))
        .unwrap_or_else(|| panic!("no scanned line: {stderr}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 3, "{line}");
    (numbers[1], numbers[2])
}

#[test]
fn a_second_image_scan_reads_no_layer() {
    if !image_present("scan_second_run_cached") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let (first, first_err) = scan_image(dir.path(), cache.path());
    let (read, _) = read_and_cached(&first_err);
    assert!(read > 0, "an empty scan cache: {first_err}");
    let (second, second_err) = scan_image(dir.path(), cache.path());
    assert_eq!(read_and_cached(&second_err), (0, read), "{second_err}");
    assert!(
        second_err.contains(&format!(
            "scanned 1 image(s): 0 layer(s) read, {read} from the scan cache"
        )),
        "{second_err}"
    );
    assert_eq!(
        only_image(&first)["packages"],
        only_image(&second)["packages"]
    );
}

#[test]
fn a_broken_buildopt_toml_does_not_stop_an_image_scan() {
    if !image_present("scan_broken_settings") {
        return;
    }
    let plain = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let (expected, _) = scan_image(plain.path(), cache.path());
    let broken = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        broken.path().join("buildopt.toml"),
        "[scan\nlevel = = \"nope\"\n\u{0}",
    )
    .expect("buildopt.toml");
    let (report, _) = scan_image(broken.path(), cache.path());
    assert_eq!(
        only_image(&report)["packages"],
        only_image(&expected)["packages"]
    );
}
