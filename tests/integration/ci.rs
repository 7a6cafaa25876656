//! `buildopt ci` against the real daemon, with the environment and event payload a GitHub runner
//! sets: the report files, the step outputs, the annotations, secret masking, and that the
//! report files never become build inputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use crate::build::{Images, daemon_available, example_repo, prefix, result_of};
use crate::cli::buildopt;
use crate::support::TestRepo;

/// A canary secret: it must show up only in the `::add-mask::` line.
const CANARY: &str = "canary-Zq8Yt3-registry-password";

/// A GitHub runner's files and variables for one run of `buildopt ci`.
struct Runner {
    dir: tempfile::TempDir,
    store: PathBuf,
}

impl Runner {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        Self { dir, store }
    }

    fn output_file(&self) -> PathBuf {
        self.dir.path().join("github_output")
    }

    /// Runs `buildopt ci ARGS` for a push of `sha` whose previous tip was `before`.
    fn push(&self, repo: &TestRepo, before: Option<&str>, args: &[&str]) -> Output {
        let sha = repo.sha("HEAD");
        let payload = json!({
            "ref": "refs/heads/main",
            "before": before.unwrap_or("0000000000000000000000000000000000000000"),
            "after": sha,
            "created": before.is_none(),
            "forced": false,
            "repository": {"full_name": "acme/app", "default_branch": "main"},
        });
        let event = self.dir.path().join("event.json");
        std::fs::write(&event, payload.to_string()).expect("event");
        // Each run appends, as the runner's file per step would be fresh: start empty.
        std::fs::write(self.output_file(), "").expect("outputs");
        let (event, output, store) = (
            event.display().to_string(),
            self.output_file().display().to_string(),
            self.store.display().to_string(),
        );
        let env = [
            ("CI", "true"),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_EVENT_PATH", event.as_str()),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_SHA", sha.as_str()),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_RUN_ID", "4242"),
            ("GITHUB_OUTPUT", output.as_str()),
            ("BUILDOPT_CACHE_DIR", store.as_str()),
            ("INPUT_TAGS", "ci-{short_sha}"),
            ("INPUT_REGISTRY_USERNAME", "robot"),
            ("INPUT_REGISTRY_PASSWORD", CANARY),
        ];
        let mut all = vec!["ci", "--jobs", "2"];
        all.extend(args);
        buildopt(repo.path(), &all, &env)
    }

    /// The step outputs, parsed from the `name<<DELIMITER` blocks.
    fn outputs(&self) -> BTreeMap<String, String> {
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

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn read_json(path: &Path) -> Value {
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

#[test]
fn report_files_never_enter_a_build_context() {
    if !daemon_available("ci report files") {
        return;
    }
    let prefix = prefix("ci-files");
    let _images = Images(prefix.clone());
    let repo = TestRepo::new();
    repo.write(
        "buildopt.toml",
        &format!("[images.app]\nimage = \"{prefix}/app\"\ncontext = \".\"\n"),
    );
    repo.write(
        "Dockerfile",
        "FROM buildopt-test/busybox:latest\nCOPY . /src\n",
    );
    repo.write("data.txt", "one\n");
    repo.commit("app");
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
}

#[test]
fn a_failing_step_is_annotated_on_its_dockerfile_line_and_exits_1() {
    if !daemon_available("ci failure") {
        return;
    }
    let prefix = prefix("ci-fail");
    let _images = Images(prefix.clone());
    let repo = TestRepo::new();
    repo.write(
        "buildopt.toml",
        &format!("[images.broken]\nimage = \"{prefix}/broken\"\ncontext = \"broken\"\n"),
    );
    repo.write(
        "broken/Dockerfile",
        "FROM buildopt-test/busybox:latest\nRUN true\nRUN echo ci-broken-step && exit 3\n",
    );
    repo.commit("broken");
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
