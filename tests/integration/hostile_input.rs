//! Hostile repository content (issue 13): files built to exhaust memory must fail fast or stay
//! within a generous bound, measured as the peak RSS of the real binary.
//!
//! The peak is read with `getrusage(RUSAGE_CHILDREN)` in a fresh child of this test binary (the
//! `peak_child` test, which does nothing unless `HOSTILE_PEAK_DIR` is set), so that processes that
//! other tests ran in this binary do not count.

use std::path::Path;
use std::process::Command;

use crate::cli::buildopt;
use crate::support::TestRepo;

/// Far above what `plan` needs on these inputs (about 20-60 MB), far below what they took
/// before the limits (2 GB and 930 MB).
const PEAK_LIMIT_KIB: u64 = 200 * 1024;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hostile");

struct Peak {
    code: Option<i32>,
    stderr: String,
    kib: u64,
}

/// Runs `buildopt ARGS` in `dir` inside a fresh child of this test binary and returns its exit
/// code, stderr and peak memory.
fn peak_of(dir: &Path, args: &[&str]) -> Peak {
    let output = Command::new(std::env::current_exe().expect("current exe"))
        .args(["--exact", "hostile_input::peak_child", "--nocapture"])
        .args(["--test-threads", "1"])
        .env("HOSTILE_PEAK_DIR", dir)
        .env("HOSTILE_PEAK_ARGS", args.join("\u{1f}"))
        .output()
        .expect("spawn peak child");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    // libtest prints the test's name on the same line, before the test's own output.
    let line = text
        .split("PEAK ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no PEAK line in {text}"));
    let mut fields = line.split(' ');
    let kib = fields.next().and_then(|f| f.parse().ok()).expect("kib");
    let code = fields.next().and_then(|f| f.parse().ok());
    Peak {
        code,
        stderr: std::fs::read_to_string(dir.join(".peak-stderr")).unwrap_or_default(),
        kib,
    }
}

#[test]
fn peak_child() {
    let Some(dir) = std::env::var_os("HOSTILE_PEAK_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let args = std::env::var("HOSTILE_PEAK_ARGS").expect("args");
    let args: Vec<&str> = args.split('\u{1f}').collect();
    let output = buildopt(dir, &args, &[]);
    std::fs::write(dir.join(".peak-stderr"), &output.stderr).expect("write stderr");
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let code = output.status.code().unwrap_or(-1);
    // The parent reads this line from the output libtest lets through with `--nocapture`.
    #[expect(clippy::print_stdout)]
    {
        println!("PEAK {} {code}", usage.max_rss());
    }
}

fn repo_with(files: &[(&str, &str)]) -> TestRepo {
    let repo = TestRepo::new();
    for (path, content) in files {
        repo.write(path, content);
    }
    repo.commit("hostile");
    repo
}

#[test]
fn nested_arg_bomb_fails_fast_naming_file_and_line() {
    let bomb = std::fs::read_to_string(format!("{FIXTURES}/arg-bomb/Dockerfile")).expect("fixture");
    let repo = repo_with(&[("Dockerfile", &bomb)]);
    let peak = peak_of(repo.path(), &["plan"]);
    assert_eq!(peak.code, Some(2), "{}", peak.stderr);
    assert!(
        peak.stderr.contains("Dockerfile:6:") && peak.stderr.contains("65536 bytes"),
        "{}",
        peak.stderr
    );
    assert!(peak.kib < PEAK_LIMIT_KIB, "peak {} KiB", peak.kib);
}

#[test]
fn hundred_thousand_ignore_patterns_stay_in_bounded_memory() {
    let patterns: String = (0..100_000)
        .map(|i| format!("dir{i}/**/*.tmp{i}\n"))
        .collect();
    let mut files = vec![
        (".dockerignore".to_string(), patterns),
        (
            "Dockerfile".to_string(),
            "FROM alpine\nCOPY . /\n".to_string(),
        ),
    ];
    for dir in 0..5 {
        for file in 0..4 {
            files.push((format!("src/d{dir}/f{file}.txt"), "x".to_string()));
        }
    }
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let repo = repo_with(&borrowed);
    let peak = peak_of(repo.path(), &["plan", "--output", "json"]);
    assert_eq!(peak.code, Some(0), "{}", peak.stderr);
    assert!(peak.kib < PEAK_LIMIT_KIB / 2, "peak {} KiB", peak.kib);
}

/// A shallow clone whose own `.git/config` names commands for `git fetch` to run; each one
/// would create `marker`. Returns the origin too: the clone lives in its folder.
fn hostile_clone(marker: &Path) -> (TestRepo, TestRepo) {
    let origin = TestRepo::new();
    for n in 0..3 {
        origin.commit_file("f", &n.to_string(), "c");
    }
    origin.push_to_origin();
    let clone = origin.shallow_clone("clone", 1);
    let run = format!(
        "sh -c 'touch {}; exec git-upload-pack \"$@\"' --",
        marker.display()
    );
    clone.git(&["config", "remote.origin.uploadpack", &run]);
    clone.git(&[
        "config",
        "core.sshCommand",
        &format!("touch {}", marker.display()),
    ]);
    clone.git(&[
        "config",
        "credential.helper",
        &format!("!touch {}", marker.display()),
    ]);
    clone.git(&["config", "protocol.ext.allow", "always"]);
    (origin, clone)
}

#[test]
fn fetch_never_runs_a_command_from_the_repository_config() {
    let marker_dir = tempfile::tempdir().expect("tempdir");
    let marker = marker_dir.path().join("pwned");
    let (_origin, clone) = hostile_clone(&marker);
    let git = buildopt::git::Git::open(clone.path()).expect("open");
    git.deepen("origin", 1, &[]).expect("deepen still works");
    assert!(!marker.exists(), "remote.origin.uploadpack ran");

    let ext = format!("ext::sh -c touch% {}", marker.display());
    clone.git(&["remote", "add", "evil", &ext]);
    assert!(git.fetch("evil", &[], None).is_err());
    assert!(!marker.exists(), "an ext:: remote ran");
}

#[test]
fn a_repository_git_does_not_trust_stops_with_exit_4_and_the_command_to_trust_it() {
    let repo = repo_with(&[("Dockerfile", "FROM alpine\n")]);
    let other_owner = [("GIT_TEST_ASSUME_DIFFERENT_OWNER", "1")];
    let output = buildopt(repo.path(), &["plan"], &other_owner);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("git config --global --add safe.directory "),
        "{stderr}"
    );

    // Trusted the way actions/checkout does it (global config, here under HOME = the repo).
    let path = repo.path().to_str().expect("utf-8");
    repo.git(&[
        "config",
        "--file",
        ".gitconfig-trust",
        "safe.directory",
        path,
    ]);
    std::fs::rename(
        repo.path().join(".gitconfig-trust"),
        repo.path().join(".gitconfig"),
    )
    .expect("global config");
    let output = buildopt(repo.path(), &["plan"], &other_owner);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
