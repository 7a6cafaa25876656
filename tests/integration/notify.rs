//! `buildopt notify` as a process: the report file, exit codes, masking, and what reaches the
//! fake GitHub and Slack.

use std::path::Path;
use std::process::Output;

use crate::cli::buildopt;
use crate::fake_api::{self, FakeServer, fake_forge};

const TOKEN: &str = "ghp_CANARY_integration_0123";

/// A run report of a pull request run with one built image.
fn write_report(dir: &Path) {
    let report = serde_json::json!({
        "version": 1,
        "run": {
            "base": "a".repeat(40), "head": "b".repeat(40), "range_reason": "merge base of main",
            "level": "ci", "builder": "buildkit", "jobs": 2,
            "started": "2024-01-01T00:00:00Z", "duration_ms": 1200, "interrupted": false,
            "ci": {"provider": "github", "event": "pull_request", "repository": "o/r",
                   "pr_number": 7, "sha": "c".repeat(40), "git_ref": "refs/pull/7/merge",
                   "run_url": "https://github.com/o/r/actions/runs/1"}
        },
        "images": [{
            "name": "api", "repository": "api", "result": "built", "reasons": [],
            "inputs_digest": "d".repeat(64), "duration_ms": 1000, "steps": [], "tags": ["api:1"]
        }]
    });
    std::fs::write(dir.join("buildopt-report.json"), report.to_string()).expect("report");
}

fn run(dir: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    buildopt(dir, &[&["notify"], args].concat(), &env)
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_missing_or_malformed_report_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(dir.path(), &[], &[]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("buildopt-report.json: cannot use this run report"),
        "{stderr}"
    );
    std::fs::write(dir.path().join("r.json"), "{\"version\": 1}").expect("write");
    let output = run(dir.path(), &["--report", "r.json"], &[]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("r.json: cannot use this run report: missing field"),
        "{stderr}"
    );
}

#[test]
fn publishes_to_github_and_slack_masking_the_secrets_first() {
    let (server, forge) = fake_forge::start("github-actions[bot]");
    let dir = tempfile::tempdir().expect("tempdir");
    write_report(dir.path());
    let hook = format!("{}/services/T0/B0/CANARYhook", server.url());
    let mut env = fake_api::github_env(&server, TOKEN);
    env.push(("SLACK_WEBHOOK".into(), hook.clone()));
    env.push(("BUILDOPT_SLACK_ON".into(), "change".into()));

    for _ in 0..2 {
        let output = run(dir.path(), &[], &env);
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert_eq!(stdout, format!("::add-mask::{TOKEN}\n::add-mask::{hook}\n"));
        assert!(
            stderr.contains("on pull request #7") && stderr.contains("posted to Slack"),
            "{stderr}"
        );
        assert!(!stderr.contains("CANARY"), "{stderr}");
    }
    assert_eq!(forge.comments().len(), 1);
    assert!(
        forge.comments()[0]
            .body
            .starts_with("<!-- buildopt:default -->")
    );
    let slack = server
        .requests()
        .into_iter()
        .filter(|r| r.path().starts_with("/services/"))
        .count();
    assert_eq!(slack, 2);
}

#[test]
fn a_failing_publisher_warns_and_fails_only_when_asked_to() {
    let server = FakeServer::scripted(vec![fake_api::Reply::json(
        404,
        serde_json::json!({"message": format!("boom {TOKEN}")}),
    )]);
    let dir = tempfile::tempdir().expect("tempdir");
    write_report(dir.path());
    let mut env = fake_api::github_env(&server, TOKEN);
    env.retain(|(k, _)| k != "GITHUB_ACTIONS");
    let output = run(dir.path(), &["--comment", "--quiet"], &env);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.is_empty(),
        "no masking outside GitHub Actions: {stdout}"
    );
    assert!(
        stderr.starts_with(
            "warning: PR comment failed: list the comments of pull request #7: HTTP 404: boom ***"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("CANARY"), "{stderr}");
    env.push(("BUILDOPT_FAIL_ON_NOTIFY_ERROR".into(), "true".into()));
    let output = run(dir.path(), &["--comment"], &env);
    assert_eq!(output.status.code(), Some(5), "{}", text(&output).1);
}
