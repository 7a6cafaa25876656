//! `buildopt ci` against the real daemon, with the environment and event payload a GitHub runner
//! sets: the report files, the step outputs, the annotations, secret masking, and that the
//! report files never become build inputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use crate::build::{Images, daemon_available, example_repo, prefix, result_of};
use crate::cli::buildopt;
use crate::fake_api;
use crate::support::TestRepo;

/// A canary secret: it must show up only in the `::add-mask::` line.
const CANARY: &str = "canary-Zq8Yt3-registry-password";

/// A GitHub runner's files and variables for one run of `buildopt ci`.
pub(crate) struct Runner {
    pub(crate) dir: tempfile::TempDir,
    store: PathBuf,
}

impl Runner {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        Self { dir, store }
    }

    pub(crate) fn output_file(&self) -> PathBuf {
        self.dir.path().join("github_output")
    }

    /// Runs `buildopt ci ARGS` for a push of HEAD whose previous tip was `before`.
    pub(crate) fn push(&self, repo: &TestRepo, before: Option<&str>, args: &[&str]) -> Output {
        let sha = repo.sha("HEAD");
        let payload = json!({
            "ref": "refs/heads/main",
            "before": before.unwrap_or("0000000000000000000000000000000000000000"),
            "after": sha,
            "created": before.is_none(),
            "forced": false,
            "repository": {"full_name": "acme/app", "default_branch": "main"},
        });
        self.github(repo, "push", "refs/heads/main", &payload, &[], args)
    }

    /// Runs `buildopt ci ARGS` as a GitHub runner would for `event` at HEAD, with `extra`
    /// variables on top of the runner's.
    pub(crate) fn github(
        &self,
        repo: &TestRepo,
        event: &str,
        git_ref: &str,
        payload: &Value,
        extra: &[(String, String)],
        args: &[&str],
    ) -> Output {
        let path = self.dir.path().join("event.json");
        std::fs::write(&path, payload.to_string()).expect("event");
        // The runner gives every step fresh files.
        std::fs::write(self.output_file(), "").expect("outputs");
        std::fs::write(self.summary_file(), "").expect("summary");
        let mut env: Vec<(String, String)> = [
            ("CI", "true"),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", event),
            ("GITHUB_REF", git_ref),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_RUN_ID", "4242"),
            ("INPUT_TAGS", "ci-{short_sha}"),
            ("INPUT_REGISTRY_USERNAME", "robot"),
            ("INPUT_REGISTRY_PASSWORD", CANARY),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend([
            ("GITHUB_SHA".to_string(), repo.sha("HEAD")),
            ("GITHUB_EVENT_PATH".into(), path.display().to_string()),
            (
                "GITHUB_OUTPUT".into(),
                self.output_file().display().to_string(),
            ),
            (
                "GITHUB_STEP_SUMMARY".into(),
                self.summary_file().display().to_string(),
            ),
        ]);
        env.extend(self.store_env());
        env.extend(extra.iter().cloned());
        self.ci(repo, &env, args)
    }

    /// Runs `buildopt ci --jobs 2 ARGS` with `env` and the test's cache store.
    fn ci(&self, repo: &TestRepo, env: &[(String, String)], args: &[&str]) -> Output {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut all = vec!["ci", "--jobs", "2"];
        all.extend(args);
        buildopt(repo.path(), &all, &env)
    }

    fn store_env(&self) -> [(String, String); 1] {
        [(
            "BUILDOPT_CACHE_DIR".into(),
            self.store.display().to_string(),
        )]
    }

    pub(crate) fn summary_file(&self) -> PathBuf {
        self.dir.path().join("step_summary")
    }

    /// The step outputs, parsed from the `name<<DELIMITER` blocks.
    pub(crate) fn outputs(&self) -> BTreeMap<String, String> {
        parse_outputs(&std::fs::read_to_string(self.output_file()).expect("outputs"))
    }
}

fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut outputs = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delimiter) = line.split_once("<<").expect("a name<<DELIMITER line");
        let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
        outputs.insert(name.to_string(), value.join("\n"));
    }
    outputs
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub(crate) fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report file")).expect("json")
}

fn names(value: &str) -> Vec<String> {
    let mut names: Vec<String> = serde_json::from_str(value).expect("a JSON array");
    names.sort();
    names
}

#[test]
fn a_push_builds_writes_reports_and_outputs_then_builds_only_what_changed() {
    if !daemon_available("ci push") {
        return;
    }
    let prefix = prefix("ci-push");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);
    let runner = Runner::new();

    let first = runner.push(&repo, None, &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let all = text(&first);
    assert!(
        all.contains(&format!("::add-mask::{CANARY}")),
        "the password is masked first: {all}"
    );
    assert_eq!(all.matches(CANARY).count(), 1, "{all}");

    let report = read_json(&repo.path().join("buildopt-report.json"));
    assert_eq!(report["run"]["level"], "ci");
    assert_eq!(report["run"]["ci"]["provider"], "github");
    assert_eq!(report["run"]["ci"]["repository"], "acme/app");
    assert_eq!(
        report["run"]["ci"]["run_url"],
        "https://github.com/acme/app/actions/runs/4242"
    );
    for image in ["base", "api", "worker", "linter"] {
        assert_eq!(result_of(&report, image), "built", "{image}");
    }
    let junit = std::fs::read_to_string(repo.path().join("buildopt-junit.xml")).expect("junit");
    assert_eq!(junit.matches("<testcase ").count(), 4, "{junit}");
    let dotenv = std::fs::read_to_string(repo.path().join("buildopt.env")).expect("dotenv");
    assert!(dotenv.contains("BUILDOPT_RESULT=success"), "{dotenv}");
    let html = std::fs::read_to_string(repo.path().join("buildopt-report.html")).expect("html");
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg"),
        "{html}"
    );
    assert!(
        html.contains(&format!("{prefix}/api")) || html.contains(">api<"),
        "{html}"
    );

    let outputs = runner.outputs();
    assert_eq!(
        names(&outputs["built"]),
        ["api", "base", "linter", "worker"]
    );
    assert_eq!(outputs["failed"], "[]");
    assert_eq!(
        outputs["report"],
        repo.path()
            .join("buildopt-report.json")
            .display()
            .to_string()
    );
    let tags: BTreeMap<String, Vec<String>> = serde_json::from_str(&outputs["tags"]).expect("tags");
    let short = &repo.sha("HEAD")[..7];
    assert!(
        tags["base"].contains(&format!("{prefix}/base:ci-{short}")),
        "{tags:?}"
    );
    let digests: BTreeMap<String, String> =
        serde_json::from_str(&outputs["digests"]).expect("digests");
    assert!(digests["api"].starts_with("sha256:"), "{digests:?}");
    let plan: Value = serde_json::from_str(&outputs["plan"]).expect("plan");
    assert!(plan["images"].is_array(), "{plan}");

    let previous = repo.sha("HEAD");
    repo.write(
        "services/api/app.sh",
        "#!/bin/sh\necho changed by ci test\n",
    );
    repo.commit("change the api");
    let second = runner.push(&repo, Some(&previous), &[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let report = read_json(&repo.path().join("buildopt-report.json"));
    assert_eq!(result_of(&report, "api"), "built");
    assert_ne!(result_of(&report, "worker"), "built");
    assert_eq!(names(&runner.outputs()["built"]), ["api"]);
}

/// A repository with one image `name` (repository `<prefix>/<name>`) built from `context`,
/// whose Dockerfile is `dockerfile`, plus a data file; committed.
fn one_image(prefix: &str, name: &str, context: &str, dockerfile: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "buildopt.toml",
        &format!("[images.{name}]\nimage = \"{prefix}/{name}\"\ncontext = \"{context}\"\n"),
    );
    let path = if context == "." {
        "Dockerfile".to_string()
    } else {
        format!("{context}/Dockerfile")
    };
    repo.write(&path, dockerfile);
    repo.write("data.txt", "one\n");
    repo.commit(name);
    repo
}

#[test]
fn report_files_never_enter_a_build_context() {
    if !daemon_available("ci report files") {
        return;
    }
    let prefix = prefix("ci-files");
    let _images = Images(prefix.clone());
    let repo = one_image(
        &prefix,
        "app",
        ".",
        "FROM buildopt-test/busybox:latest\nCOPY . /src\n",
    );
    let runner = Runner::new();
    let files_sent = |output: &Output| {
        assert_eq!(output.status.code(), Some(0), "{}", text(output));
        let report = read_json(&repo.path().join("buildopt-report.json"));
        report["images"][0]["context"]["files"]
            .as_u64()
            .expect("context files")
    };
    let first = files_sent(&runner.push(&repo, None, &[]));
    assert!(repo.path().join("buildopt-junit.xml").is_file());
    let forced = files_sent(&runner.push(&repo, None, &["--force"]));
    assert_eq!(first, forced, "the report files were sent the second time");

    // Nor the vulnerability database, the scan cache and the cache archive the GitLab template
    // keeps in the project folder.
    std::fs::create_dir_all(repo.path().join(".buildopt-vulndb/index")).expect("vulndb");
    std::fs::write(repo.path().join(".buildopt-vulndb/index/x.sqlite"), "db").expect("db");
    std::fs::write(repo.path().join(".buildopt-cache.tar.zst"), "archive").expect("archive");
    std::fs::create_dir_all(repo.path().join(".buildopt-scan/commits")).expect("scan cache");
    std::fs::write(repo.path().join(".buildopt-scan/commits/abcd.json"), "{}").expect("record");
    let extra: Vec<(String, String)> = [
        ("BUILDOPT_VULNDB_DIR", ".buildopt-vulndb"),
        ("BUILDOPT_SCAN_CACHE_DIR", ".buildopt-scan"),
        ("BUILDOPT_CACHE_ARCHIVE", ".buildopt-cache.tar.zst"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let payload = json!({"ref": "refs/heads/main", "before": "0".repeat(40),
        "after": repo.sha("HEAD"), "created": true, "forced": false,
        "repository": {"full_name": "acme/app", "default_branch": "main"}});
    let gitlab_like = runner.github(
        &repo,
        "push",
        "refs/heads/main",
        &payload,
        &extra,
        &["--force"],
    );
    assert_eq!(
        first,
        files_sent(&gitlab_like),
        "the database or the archive was sent"
    );
}

#[test]
fn a_failing_step_is_annotated_on_its_dockerfile_line_and_exits_1() {
    if !daemon_available("ci failure") {
        return;
    }
    let prefix = prefix("ci-fail");
    let _images = Images(prefix.clone());
    let repo = one_image(
        &prefix,
        "broken",
        "broken",
        "FROM buildopt-test/busybox:latest\nRUN true\nRUN echo ci-broken-step && exit 3\n",
    );
    let runner = Runner::new();
    let output = runner.push(&repo, None, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let annotation = stdout
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("no error annotation: {stdout}"));
    assert!(
        annotation.contains("file=broken/Dockerfile,line=3"),
        "{annotation}"
    );
    let junit = std::fs::read_to_string(repo.path().join("buildopt-junit.xml")).expect("junit");
    assert!(junit.contains("<failure"), "{junit}");
    assert!(junit.contains("ci-broken-step"), "{junit}");
    assert_eq!(runner.outputs()["failed"], r#"["broken"]"#);
    let report = read_json(&repo.path().join("buildopt-report.json"));
    assert_eq!(result_of(&report, "broken"), "failed");
}

/// The workflow commands a GitHub runner would run from `stdout`: it reads lines ended by `\n`
/// or `\r`, trims leading blanks, and runs none between `::stop-commands::TOKEN` and `::TOKEN::`.
fn live_commands(stdout: &str) -> Vec<String> {
    let mut stopped: Option<String> = None;
    let mut live = Vec::new();
    for line in stdout.split(['\n', '\r']).map(str::trim_start) {
        match &stopped {
            Some(token) if line == format!("::{token}::") => stopped = None,
            Some(_) => {}
            None => match line.strip_prefix("::stop-commands::") {
                Some(token) => stopped = Some(token.to_string()),
                None if line.starts_with("::") => live.push(line.to_string()),
                None => {}
            },
        }
    }
    live
}

#[test]
fn build_output_on_stdout_cannot_fire_workflow_commands_and_secrets_are_masked_per_line() {
    if !daemon_available("ci hostile output") {
        return;
    }
    let prefix = prefix("ci-hostile");
    let _images = Images(prefix.clone());
    let repo = TestRepo::new();
    repo.write(
        "buildopt.toml",
        &format!("[images.hostile]\nimage = \"{prefix}/hostile\"\ncontext = \"hostile\"\n"),
    );
    // A progress line that returns the carriage, then a command; the runner splits on `\r`.
    repo.write(
        "hostile/Dockerfile",
        "FROM buildopt-test/busybox:latest\n\
         RUN printf 'step 1/2\\r::error title=forged::forged\\n::warning::forged2\\n'; exit 3\n",
    );
    repo.commit("hostile");
    let runner = Runner::new();
    let payload = json!({
        "ref": "refs/heads/main", "before": "0".repeat(40), "after": repo.sha("HEAD"),
        "created": true, "forced": false,
        "repository": {"full_name": "acme/app", "default_branch": "main"},
    });
    // A multi-line registry password: `::add-mask::` masks one line, so each needs its own.
    let password = [(
        "INPUT_REGISTRY_PASSWORD".to_string(),
        "pw-line-one-Zq8\npw-line-two-Zq8".to_string(),
    )];
    let output = runner.github(&repo, "push", "refs/heads/main", &payload, &password, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in ["pw-line-one-Zq8", "pw-line-two-Zq8"] {
        assert!(
            stdout.contains(&format!("::add-mask::{line}\n")),
            "{stdout}"
        );
        assert!(
            !stdout.lines().any(|l| l == line),
            "{line} printed: {stdout}"
        );
    }
    assert!(stdout.contains("forged"), "the log tail is shown: {stdout}");
    let forged: Vec<String> = live_commands(&stdout)
        .into_iter()
        .filter(|line| !line.starts_with("::error file=hostile/Dockerfile,"))
        .filter(|line| line.contains("forged"))
        .collect();
    assert!(forged.is_empty(), "{forged:?} in {stdout:?}");
}

/// A canary GitHub/GitLab token and Slack webhook path: only `::add-mask::` may print them.
pub(crate) const TOKEN: &str = "ghs_CANARYtoken0123456789abcdefABCDEF";
const HOOK_PATH: &str = "/services/T000/B000/CANARYwebhook";

/// The example repository on `main` with a feature branch that changes the api; returns the
/// repository and the commit the branch forked from.
fn feature_branch(prefix: &str) -> (TestRepo, String) {
    let repo = example_repo(prefix);
    let base = repo.sha("HEAD");
    repo.checkout_new("feature");
    repo.write("services/api/app.sh", "#!/bin/sh\necho feature\n");
    repo.commit("feature: change the api");
    (repo, base)
}

/// Asserts that no byte of the canaries reached stdout (but the mask lines), stderr or a file.
fn assert_no_canary(output: &Output, files: &[PathBuf]) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in stdout.lines().filter(|l| !l.starts_with("::add-mask::")) {
        assert!(!line.contains("CANARY") && !line.contains(CANARY), "{line}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("CANARY"), "{stderr}");
    for file in files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        assert!(!text.contains("CANARY"), "{}: {text}", file.display());
    }
}

#[test]
fn a_pull_request_keeps_one_sticky_comment_uploads_sarif_and_posts_to_slack() {
    if !daemon_available("ci pull request") {
        return;
    }
    let prefix = prefix("ci-pr");
    let _images = Images(prefix.clone());
    let (repo, base) = feature_branch(&prefix);
    let (server, forge) = fake_api::fake_forge::start("github-actions[bot]");
    for n in 0..120 {
        let author = if n % 2 == 0 {
            "octocat"
        } else {
            "github-actions[bot]"
        };
        forge.seed(author, &format!("review comment {n}"));
    }
    // Someone quoting our marker must not capture the sticky comment.
    forge.seed("mallory", "<!-- buildopt:default --> fake");
    let runner = Runner::new();
    let sarif = runner.dir.path().join("scan.sarif");
    let sarif_text = json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}},
        "results": []}]})
    .to_string();
    std::fs::write(&sarif, &sarif_text).expect("sarif");
    let payload = json!({"number": 7, "pull_request": {"number": 7,
        "head": {"sha": repo.sha("HEAD"), "ref": "feature"},
        "base": {"sha": base, "ref": "main"}},
        "repository": {"full_name": "acme/app", "default_branch": "main"}});
    let extra: Vec<(String, String)> = [
        ("GITHUB_API_URL", server.url()),
        ("GITHUB_TOKEN", TOKEN.to_string()),
        (
            "BUILDOPT_SLACK_WEBHOOK",
            format!("{}{HOOK_PATH}", server.url()),
        ),
        ("BUILDOPT_SLACK_ON", "always".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let sarif_arg = sarif.display().to_string();
    let args = ["--sarif", sarif_arg.as_str()];

    // The first run meets a 502 on the comment listing and a rate limit on the SARIF upload.
    forge.fail_once("GET", "/issues/7/comments", fake_api::Reply::status(502));
    forge.fail_once(
        "POST",
        "/code-scanning/sarifs",
        fake_api::Reply::json(429, json!({"message": "rate limited"})).header("retry-after", "1"),
    );
    let first = runner.github(
        &repo,
        "pull_request",
        "refs/pull/7/merge",
        &payload,
        &extra,
        &args,
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let report = read_json(&repo.path().join("buildopt-report.json"));
    assert_eq!(result_of(&report, "api"), "built");
    assert_eq!(report["run"]["ci"]["pr_number"], 7);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains(&format!("::add-mask::{TOKEN}")), "{stdout}");
    let summary = std::fs::read_to_string(runner.summary_file()).expect("summary");
    assert!(summary.contains("api"), "{summary}");

    let second = runner.github(
        &repo,
        "pull_request",
        "refs/pull/7/merge",
        &payload,
        &extra,
        &args,
    );
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));

    let ours: Vec<_> = forge
        .comments()
        .into_iter()
        .filter(|c| {
            c.author == "github-actions[bot]" && c.body.contains("<!-- buildopt:default -->")
        })
        .collect();
    assert_eq!(ours.len(), 1, "one sticky comment after two runs");
    assert!(ours[0].body.contains("api"), "{}", ours[0].body);
    assert_eq!(forge.comments().len(), 122, "121 seeded plus ours");
    assert_eq!(
        forge.comments()[120].body,
        "<!-- buildopt:default --> fake",
        "another author's comment with the marker is untouched"
    );

    let uploads = forge.sarif_uploads.lock().expect("uploads").clone();
    assert_eq!(
        uploads.len(),
        2,
        "one upload per run, the rate-limited one retried"
    );
    for upload in &uploads {
        assert_eq!(upload["commit_sha"], repo.sha("HEAD"));
        assert_eq!(upload["ref"], "refs/pull/7/merge");
        assert_eq!(uploaded_sarif(upload), sarif_text);
    }
    let requests = server.requests();
    let slack = requests.iter().filter(|r| r.path() == HOOK_PATH).count();
    assert_eq!(slack, 2, "always: one message per run");
    let lists = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path().ends_with("/issues/7/comments"))
        .count();
    assert!(
        lists >= 5,
        "the 502 was retried and both pages listed: {lists}"
    );
    let files = [
        repo.path().join("buildopt-report.json"),
        repo.path().join("buildopt-junit.xml"),
        runner.summary_file(),
        runner.output_file(),
    ];
    assert_no_canary(&first, &files);
    assert_no_canary(&second, &files);
    for request in &requests {
        let body = String::from_utf8_lossy(&request.body);
        assert!(
            !body.contains("CANARY"),
            "a secret was sent in a body: {body}"
        );
    }
}

/// The SARIF text of one upload to the fake API (gzip, then base64).
pub(crate) fn uploaded_sarif(upload: &Value) -> String {
    let zipped = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        upload["sarif"].as_str().expect("sarif field"),
    )
    .expect("base64");
    let mut unzipped = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&zipped[..]),
        &mut unzipped,
    )
    .expect("gzip");
    unzipped
}

#[test]
fn a_missing_pull_request_is_a_warning_and_a_404_is_not_retried() {
    if !daemon_available("ci 404") {
        return;
    }
    let prefix = prefix("ci-404");
    let _images = Images(prefix.clone());
    let (repo, base) = feature_branch(&prefix);
    let server = fake_api::FakeServer::scripted(vec![fake_api::Reply::json(
        404,
        json!({"message": "Not Found"}),
    )]);
    let runner = Runner::new();
    let payload = json!({"number": 8, "pull_request": {"number": 8,
        "head": {"sha": repo.sha("HEAD"), "ref": "feature"},
        "base": {"sha": base, "ref": "main"}}});
    let extra = vec![
        ("GITHUB_API_URL".to_string(), server.url()),
        ("GITHUB_TOKEN".to_string(), TOKEN.to_string()),
    ];
    let output = runner.github(
        &repo,
        "pull_request",
        "refs/pull/8/merge",
        &payload,
        &extra,
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warning: PR comment failed"), "{stderr}");
    assert_eq!(server.requests().len(), 1, "a 404 is final");
    let mut failing = extra.clone();
    failing.push(("BUILDOPT_FAIL_ON_NOTIFY_ERROR".into(), "true".into()));
    let output = runner.github(
        &repo,
        "pull_request",
        "refs/pull/8/merge",
        &payload,
        &failing,
        &[],
    );
    assert_eq!(output.status.code(), Some(5), "{}", text(&output));
    assert_no_canary(&output, &[repo.path().join("buildopt-report.json")]);
}

#[test]
fn a_gitlab_merge_request_keeps_one_note_and_writes_its_reports() {
    if !daemon_available("ci gitlab") {
        return;
    }
    let prefix = prefix("ci-gl");
    let _images = Images(prefix.clone());
    let (repo, base) = feature_branch(&prefix);
    let (server, forge) = fake_api::fake_forge::start("buildopt-bot");
    for n in 0..25 {
        forge.seed("reviewer", &format!("note {n}"));
    }
    let runner = Runner::new();
    let env: Vec<(String, String)> = [
        ("CI", "true".to_string()),
        ("GITLAB_CI", "true".to_string()),
        ("CI_PIPELINE_SOURCE", "merge_request_event".to_string()),
        ("CI_COMMIT_SHA", repo.sha("HEAD")),
        ("CI_COMMIT_REF_NAME", "feature".to_string()),
        ("CI_MERGE_REQUEST_IID", "3".to_string()),
        ("CI_MERGE_REQUEST_DIFF_BASE_SHA", base),
        ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature".to_string()),
        ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main".to_string()),
        ("CI_DEFAULT_BRANCH", "main".to_string()),
        ("CI_PROJECT_ID", "42".to_string()),
        ("CI_PROJECT_PATH", "acme/app".to_string()),
        ("CI_API_V4_URL", format!("{}/api/v4", server.url())),
        ("BUILDOPT_GITLAB_TOKEN", TOKEN.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(runner.store_env())
    .collect();
    // The first run finds no build record: the diff alone leaves the linter out. The second
    // finds the first run's record, which has no build of the linter: no image of it exists.
    for (api, linter) in [("built", "skipped"), ("reused", "built")] {
        let output = runner.ci(&repo, &env, &[]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let report = read_json(&repo.path().join("buildopt-report.json"));
        assert_eq!(result_of(&report, "api"), api);
        assert_eq!(result_of(&report, "linter"), linter, "{report}");
        assert!(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .all(|l| !l.starts_with("::")),
            "no GitHub workflow commands in GitLab"
        );
        assert_no_canary(&output, &[repo.path().join("buildopt-report.json")]);
    }
    let ours: Vec<_> = forge
        .comments()
        .into_iter()
        .filter(|c| c.author == "buildopt-bot")
        .collect();
    assert_eq!(ours.len(), 1, "one note after two runs");
    assert!(ours[0].body.starts_with("<!-- buildopt:default -->"));
    let posts = server.requests();
    assert!(
        posts
            .iter()
            .filter(|r| r
                .path()
                .starts_with("/api/v4/projects/42/merge_requests/3/notes"))
            .all(|r| r.header("private-token") == Some(TOKEN)),
        "every call carries the token as PRIVATE-TOKEN"
    );
    let report = read_json(&repo.path().join("buildopt-report.json"));
    assert_eq!(report["run"]["ci"]["provider"], "gitlab");
    assert_eq!(report["run"]["ci"]["pr_number"], 3);
    let dotenv = std::fs::read_to_string(repo.path().join("buildopt.env")).expect("dotenv");
    assert!(dotenv.contains("BUILDOPT_REUSED=api"), "{dotenv}");
}
