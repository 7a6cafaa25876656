//! The binary's contract: exit codes, error messages that name the file and line, help text.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the built binary in `dir` with a scrubbed environment (no CI variables leak in).
pub fn buildopt(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_buildopt"));
    command.current_dir(dir).args(args).env_clear();
    command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command.env("HOME", dir);
    // The engine under test (tests/run.sh runs the suite once per engine); a test's own
    // DOCKER_HOST, in `env`, wins.
    if let Some(host) = std::env::var_os("DOCKER_HOST") {
        command.env("DOCKER_HOST", host);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run buildopt")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn invalid_config_exits_2_naming_file_line_and_suggestion() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("buildopt.toml"),
        "level = \"ci\"\n[images.api]\ncontxt = \"api\"\n",
    )
    .expect("write");
    let output = buildopt(dir.path(), &["plan"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("buildopt.toml:3:"), "{message}");
    assert!(message.contains("did you mean `context`"), "{message}");
}

#[test]
fn a_config_that_is_not_utf8_exits_2_naming_the_byte_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Latin-1 `é` (0xe9) at byte 18, on line 2.
    std::fs::write(
        dir.path().join("buildopt.toml"),
        b"level = \"ci\"\n# caf\xe9\n",
    )
    .expect("write");
    let output = buildopt(dir.path(), &["plan"], &[]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("buildopt.toml:2:"), "{message}");
    assert!(message.contains("not UTF-8"), "{message}");
    assert!(message.contains("byte offset 18"), "{message}");
}

#[test]
fn a_compose_file_that_is_not_a_mapping_exits_2_naming_it() {
    for (text, kind) in [("- web\n- db\n", "a sequence"), ("just text\n", "a scalar")] {
        let repo = crate::support::TestRepo::new();
        repo.write("compose.yaml", text);
        repo.write("Dockerfile", "FROM buildopt-test/busybox:latest\n");
        repo.commit("compose");
        let output = buildopt(repo.path(), &["plan"], &[]);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{kind}: {message}");
        assert!(message.contains("compose.yaml"), "{message}");
        assert!(message.contains(kind), "{message}");
    }
}

#[test]
fn invalid_setting_in_the_environment_exits_2_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = buildopt(dir.path(), &["plan"], &[("OPTIMIZATION_LEVEL", "turbo")]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("$OPTIMIZATION_LEVEL"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn outside_a_git_repository_exits_4() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = buildopt(
        dir.path(),
        &["plan"],
        &[(
            "GIT_CEILING_DIRECTORIES",
            dir.path().to_str().expect("utf-8"),
        )],
    );
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not inside a git repository"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = buildopt(dir.path(), &["plan", "--bogus"], &[]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn help_lists_the_environment_and_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = buildopt(dir.path(), &["--help"], &[]);
    let text = String::from_utf8_lossy(&output.stdout);
    for name in [
        "BUILDOPT_LEVEL",
        "OPTIMIZATION_LEVEL",
        "FORCE_REBUILD",
        "SELECTIVE_BUILD",
        "INPUT_<NAME>",
        "Exit codes",
    ] {
        assert!(text.contains(name), "--help lacks {name}:\n{text}");
    }
}
