//! What a test does when the machine lacks something it needs: the Docker daemon, the test
//! registry, a peer tool, a tmpfs, a second daemon.
//!
//! In CI (`CI` set) a missing requirement fails the test: `.ci/run` installs and starts
//! everything. Elsewhere the test returns early, and this module makes that visible, since
//! libtest has no "skipped" result (such a test counts as passed): a note written straight to
//! the terminal (libtest's capture would hide an `eprintln!`), and a line in [`RECORD`], from
//! which `tests/run.sh` prints the count and the reasons at the end of each pass.

use std::io::Write as _;

/// The skipped tests of this build of the test binary, one line each: `<test>\t<reason>`.
pub const RECORD: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/skipped-tests.log");

/// Whether `test` may go on: `available` says whether `what` (e.g. "Docker daemon") is there;
/// `hint` says how to get it. Without it: a failure in CI, else a recorded skip.
pub fn require(available: bool, test: &str, what: &str, hint: &str) -> bool {
    require_recording_in(std::path::Path::new(RECORD), available, test, what, hint)
}

fn require_recording_in(
    record: &std::path::Path,
    available: bool,
    test: &str,
    what: &str,
    hint: &str,
) -> bool {
    if available {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {what} is required in CI ({hint})"
    );
    let note = format!("note: {test} skipped: no {what} ({hint})\n");
    // Straight to the terminal: seen whether or not the test's output is captured.
    let _ = std::io::stderr().write_all(note.as_bytes());
    let line = format!("{test}\tno {what}\n");
    let record = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(record);
    // One write per line, so concurrent tests never interleave within a line.
    let _ = record.and_then(|mut file| file.write_all(line.as_bytes()));
    false
}

#[test]
fn a_missing_requirement_outside_ci_is_recorded_and_in_ci_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("skipped.log");
    let check = |available| require_recording_in(&record, available, "t", "imaginary tool", "-");
    assert!(check(true));
    assert!(!record.exists(), "nothing missing, nothing recorded");
    let outcome = std::panic::catch_unwind(|| check(false));
    if std::env::var_os("CI").is_some() {
        assert!(
            outcome.is_err(),
            "CI is set: a missing requirement must fail"
        );
    } else {
        assert_eq!(outcome.ok(), Some(false));
        let lines = std::fs::read_to_string(&record).expect("record");
        assert_eq!(lines, "t\tno imaginary tool\n");
    }
}
