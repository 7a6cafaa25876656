use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use super::*;
use crate::notify::fake_forge;
use crate::notify::retry::RetryPolicy;
use crate::notify::testserver::{FakeServer, Recorded, Reply};
use crate::report::fixtures;
use crate::settings::file::FileOptions;

const TOKEN: &str = "ghp_CANARYtoken0123456789";
const HOOK_PATH: &str = "/services/T0/B0/CANARYhook";

fn context(dir: &Path, env: Vec<(String, String)>) -> Context {
    let settings = crate::settings::RunSettings::resolve(
        &crate::settings::RunFlags::default(),
        &crate::env::Env::from_pairs(env.clone()),
        &FileOptions::default(),
        dir,
        1,
    )
    .expect("valid settings");
    Context {
        settings,
        dir: dir.to_path_buf(),
        config_path: None,
        file: FileOptions::default(),
        redactor: crate::notify::secret::Redactor::of_run(&crate::env::Env::from_pairs(
            env.clone(),
        )),
        env: crate::env::Env::from_pairs(env),
        verbose: 0,
        quiet: true,
        format: crate::cli::Format::Human,
    }
}

fn fast() -> Tuning {
    Tuning {
        http: HttpConfig {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                max_attempts: 2,
                ..RetryPolicy::default()
            },
            sleep: Arc::new(|_| {}),
        },
        polling: SarifPolling {
            polls: 3,
            first_interval: Duration::from_millis(1),
        },
    }
}

fn github_report() -> RunReport {
    let mut report = fixtures::report();
    report.run.ci = Some(CiRun {
        provider: crate::ci::Provider::GitHub,
        event: Some("pull_request".into()),
        repository: Some("o/r".into()),
        pr_number: Some(7),
        sha: Some("c".repeat(40)),
        git_ref: Some("refs/pull/7/merge".into()),
        run_url: Some("https://github.com/o/r/actions/runs/1".into()),
    });
    report
}

/// A GitHub Actions environment pointing at `server`, with a summary file and a SARIF file.
fn github_env(server: &FakeServer, dir: &Path) -> Vec<(String, String)> {
    std::fs::write(dir.join("scan.sarif"), r#"{"version":"2.1.0","runs":[]}"#).expect("sarif");
    [
        ("GITHUB_ACTIONS", "true".to_string()),
        ("GITHUB_API_URL", server.url()),
        ("GITHUB_TOKEN", TOKEN.into()),
        (
            "BUILDOPT_SLACK_WEBHOOK",
            format!("{}{HOOK_PATH}", server.url()),
        ),
        ("BUILDOPT_SLACK_ON", "always".into()),
        ("BUILDOPT_SARIF", "scan.sarif".into()),
        (
            "GITHUB_STEP_SUMMARY",
            dir.join("summary.md").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Every form of the canaries the publishers must never show.
fn assert_no_canary(texts: &[String], server: &FakeServer) {
    let hook = format!("{}{HOOK_PATH}", server.url());
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for text in texts {
        for canary in ["CANARY", &b64(TOKEN), &b64(&hook)] {
            assert!(!text.contains(canary), "{canary} leaked in {text:?}");
        }
    }
}

#[test]
fn everything_enabled_is_published_and_a_second_run_updates_the_one_comment() {
    let (server, forge) = fake_forge::start("github-actions[bot]");
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(dir.path(), github_env(&server, dir.path()));
    let report = github_report();

    let first = publish_with(&ctx, &report, &PublishRequest::default(), &fast()).expect("ok");
    assert_eq!(first.warnings, Vec::<String>::new());
    assert_eq!(
        first.published,
        [
            format!(
                "appended the job summary to {}",
                dir.path().join("summary.md").display()
            ),
            "created comment 1 on pull request #7".to_string(),
            format!(
                "uploaded {} (sarif-1)",
                dir.path().join("scan.sarif").display()
            ),
            "posted to Slack".to_string(),
        ]
    );
    let second = publish_with(&ctx, &report, &PublishRequest::default(), &fast()).expect("ok");
    assert_eq!(
        second.published[1],
        "comment 1 already up to date on pull request #7"
    );
    assert_eq!(second.exit_code(), exit::SUCCESS);

    let comments = forge.comments();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].body, summary::pr_comment(&report, "default"));
    let summary_text = std::fs::read_to_string(dir.path().join("summary.md")).expect("summary");
    assert_eq!(summary_text, summary::job_summary(&report).repeat(2));
    let slack: Vec<Recorded> = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == HOOK_PATH)
        .collect();
    assert_eq!(slack.len(), 2);
    let expected = report::slack::slack(&report, Some("https://github.com/o/r/actions/runs/1"));
    assert_eq!(slack[0].json(), expected);
    let uploads = forge.sarif_uploads.lock().expect("uploads");
    assert_eq!(uploads[0]["ref"], "refs/pull/7/merge");
    assert_eq!(uploads[0]["commit_sha"], "c".repeat(40));
}

#[test]
fn named_channels_limit_what_is_published() {
    let (server, forge) = fake_forge::start("github-actions[bot]");
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(dir.path(), github_env(&server, dir.path()));
    let request = PublishRequest {
        slack: true,
        ..PublishRequest::default()
    };
    let outcome = publish_with(&ctx, &github_report(), &request, &fast()).expect("ok");
    assert_eq!(outcome.published, ["posted to Slack"]);
    assert!(forge.comments().is_empty());
    assert!(forge.sarif_uploads.lock().expect("uploads").is_empty());
    assert!(!dir.path().join("summary.md").exists());
}

#[test]
fn slack_hears_only_about_the_configured_event() {
    let (server, _forge) = fake_forge::start("github-actions[bot]");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = github_env(&server, dir.path());
    env.retain(|(k, _)| k != "BUILDOPT_SLACK_ON");
    let ctx = context(dir.path(), env);
    let mut report = github_report();
    report
        .images
        .retain(|i| i.result != crate::report::model::ImageResult::Failed);
    let request = PublishRequest {
        slack: true,
        ..PublishRequest::default()
    };
    let outcome = publish_with(&ctx, &report, &request, &fast()).expect("ok");
    assert!(outcome.published.is_empty() && outcome.warnings.is_empty());
    assert!(server.requests().is_empty(), "default slack_on is failure");
}

#[test]
fn failing_publishers_are_warnings_without_secrets_unless_configured_to_fail() {
    let server = FakeServer::start(|req| {
        let echo = format!("denied {}", req.header("authorization").unwrap_or_default());
        Reply::json(403, serde_json::json!({"message": echo}))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = github_env(&server, dir.path());
    let ctx = context(dir.path(), env.clone());
    let outcome = publish_with(&ctx, &github_report(), &PublishRequest::default(), &fast())
        .expect("warnings only");
    assert!(outcome.failed);
    assert_eq!(outcome.warnings.len(), 3, "{:?}", outcome.warnings);
    assert!(
        outcome.warnings[0].starts_with(
            "PR comment failed: list the comments of pull request #7: HTTP 403: denied Bearer ***"
        ),
        "{:?}",
        outcome.warnings
    );
    assert!(outcome.warnings[2].starts_with("Slack failed: post to the Slack webhook: HTTP 403"));
    assert_no_canary(&outcome.warnings, &server);
    assert_no_canary(&outcome.published, &server);
    assert_eq!(outcome.exit_code(), exit::SUCCESS);

    env.push(("BUILDOPT_FAIL_ON_NOTIFY_ERROR".into(), "true".into()));
    let ctx = context(dir.path(), env);
    let outcome =
        publish_with(&ctx, &github_report(), &PublishRequest::default(), &fast()).expect("ok");
    assert_eq!(outcome.exit_code(), exit::NOTIFY_FAILED);
}

#[test]
fn gitlab_merge_requests_get_a_sticky_note() {
    let (server, forge) = fake_forge::start("project_9_bot");
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("GITLAB_CI", "true".to_string()),
        ("CI_API_V4_URL", format!("{}/api/v4", server.url())),
        ("CI_PROJECT_ID", "9".into()),
        ("CI_MERGE_REQUEST_IID", "4".into()),
        ("BUILDOPT_GITLAB_TOKEN", "glpat-CANARY".into()),
    ];
    let env = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let ctx = context(dir.path(), env);
    let mut report = github_report();
    let ci = report.run.ci.as_mut().expect("ci");
    (ci.provider, ci.pr_number) = (crate::ci::Provider::GitLab, Some(4));
    let request = PublishRequest::default();
    for expected in ["created comment 1", "comment 1 already up to date"] {
        let outcome = publish_with(&ctx, &report, &request, &fast()).expect("ok");
        assert_eq!(
            outcome.published,
            [format!("{expected} on merge request !4")]
        );
    }
    assert_eq!(forge.comments().len(), 1);
    assert_eq!(forge.comments()[0].author, "project_9_bot");
}

#[test]
fn with_a_job_token_a_refused_note_explains_the_token() {
    let server =
        FakeServer::start(|_| Reply::json(401, serde_json::json!({"message": "401 Unauthorized"})));
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("CI_API_V4_URL", server.url()),
        ("CI_PROJECT_ID", "9".into()),
        ("CI_MERGE_REQUEST_IID", "4".into()),
        ("CI_JOB_TOKEN", "job-CANARY".into()),
    ];
    let env = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let ctx = context(dir.path(), env);
    let mut report = github_report();
    report.run.ci.as_mut().expect("ci").provider = crate::ci::Provider::GitLab;
    let outcome = publish_with(&ctx, &report, &PublishRequest::default(), &fast()).expect("ok");
    assert_eq!(outcome.warnings.len(), 1);
    assert!(
        outcome.warnings[0].contains("BUILDOPT_GITLAB_TOKEN"),
        "{:?}",
        outcome.warnings
    );
    assert_no_canary(&outcome.warnings, &server);
}

#[test]
fn a_local_run_has_nothing_to_comment_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(dir.path(), Vec::new());
    let report = fixtures::report();
    let outcome = publish_with(&ctx, &report, &PublishRequest::default(), &fast()).expect("ok");
    assert_eq!(outcome, PublishOutcome::default());
    let request = PublishRequest {
        comment: true,
        summary: true,
        ..PublishRequest::default()
    };
    let outcome = publish_with(&ctx, &report, &request, &fast()).expect("ok");
    assert_eq!(outcome.warnings.len(), 2, "{:?}", outcome.warnings);
    assert!(!outcome.failed);
}

#[test]
fn unreadable_reports_name_the_file_and_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.json");
    let err = read_report(&missing).expect_err("missing");
    assert!(
        err.to_string().starts_with(&missing.display().to_string()),
        "{err}"
    );
    assert_eq!(err.exit_code(), exit::USAGE);
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, r#"{"version": 1, "run": "#).expect("write");
    let err = read_report(&broken).expect_err("broken");
    assert!(
        err.to_string().starts_with(&format!(
            "{}: cannot use this run report:",
            broken.display()
        )),
        "{err}"
    );
    assert_eq!(err.exit_code(), exit::USAGE);
}

#[test]
fn a_sarif_file_over_github_s_limits_is_trimmed_with_a_note_under_the_job_summary() {
    let (server, _forge) = fake_forge::start("github-actions[bot]");
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(dir.path(), github_env(&server, dir.path()));
    // 21 runs of one result each: one run over the limit of 20.
    let run = serde_json::json!({
        "tool": {"driver": {"name": "scanner"}},
        "results": [{"ruleId": "r", "level": "note", "message": {"text": "m"}}],
    });
    let log = serde_json::json!({"version": "2.1.0", "runs": vec![run; 21]});
    std::fs::write(dir.path().join("scan.sarif"), log.to_string()).expect("sarif");
    let request = PublishRequest {
        summary: true,
        sarif: vec![dir.path().join("scan.sarif")],
        ..PublishRequest::default()
    };
    let outcome = publish_with(&ctx, &github_report(), &request, &fast()).expect("ok");
    let note = outcome
        .warnings
        .iter()
        .find(|w| w.contains("over GitHub's SARIF limits"))
        .expect("a warning says what was left out");
    assert!(note.contains("1 runs dropped"), "{note}");
    let summary_text = std::fs::read_to_string(dir.path().join("summary.md")).expect("summary");
    assert!(
        summary_text.ends_with(&format!("> **Note:** {}\n", escape::markdown_text(note))),
        "{summary_text}"
    );
}
