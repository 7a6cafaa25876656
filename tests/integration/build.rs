//! `buildopt build` against the real daemon, on copies of the example repository.
//!
//! Each test uses its own image repositories (`bo-<test>-<pid>/…`) and a unique global input, so
//! no image of another test or run can be reused by digest; its images are removed at the end.
//! Tests fail when the daemon is unreachable and `CI` is set; elsewhere they skip with a note.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::cli::buildopt;
use crate::support::TestRepo;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/monorepo");

/// True when the daemon answers; panics in CI when it does not.
pub(crate) fn daemon_available(test: &str) -> bool {
    let up = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    crate::skips::require(up, test, "Docker daemon", "tests/testbed/start-dockerd.sh")
}

/// Whether the daemon keeps images in the containerd image store, where some cache behaviour
/// differs (see `engine::capabilities`).
pub(crate) fn containerd_store() -> bool {
    docker(&["info", "--format", "{{json .DriverStatus}}"]).contains("io.containerd.snapshotter")
}

/// Removes every image of the test's repositories when dropped.
pub(crate) struct Images(pub(crate) String);

impl Drop for Images {
    fn drop(&mut self) {
        let listed = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        let mine: Vec<&str> = listed
            .lines()
            .filter(|l| l.starts_with(&self.0) || l.contains(&format!("/{}", self.0)))
            .collect();
        if !mine.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(mine);
            docker(&args);
        }
    }
}

pub(crate) fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("docker");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The example repository with its images renamed under `prefix`, committed.
pub(crate) fn example_repo(prefix: &str) -> TestRepo {
    let repo = TestRepo::new();
    copy_dir(Path::new(EXAMPLE), repo.path());
    let config = std::fs::read_to_string(repo.path().join("buildopt.toml")).expect("config");
    let mut renamed = String::new();
    for line in config.lines() {
        renamed.push_str(line);
        renamed.push('\n');
        if let Some(name) = line
            .strip_prefix("[images.")
            .and_then(|l| l.strip_suffix(']'))
        {
            renamed.push_str(&format!("image = \"{prefix}/{name}\"\n"));
        }
    }
    repo.write("buildopt.toml", &renamed);
    for service in ["api", "worker"] {
        let file = format!("services/{service}/Dockerfile");
        let text = std::fs::read_to_string(repo.path().join(&file)).expect("dockerfile");
        repo.write(
            &file,
            &text.replace("FROM base", &format!("FROM {prefix}/base")),
        );
    }
    // A global input unique to this run: no digest can match an image from elsewhere.
    repo.write("versions.env", &format!("RUN_ID={prefix}\n"));
    repo.commit("example");
    repo
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read example") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

pub(crate) fn prefix(test: &str) -> String {
    format!("bo-{test}-{}", std::process::id())
}

/// Runs `buildopt --format json build ARGS` and returns the exit code and the report.
fn build(repo: &TestRepo, args: &[&str]) -> (Option<i32>, Value, Output) {
    let mut all = vec!["--format", "json", "build"];
    all.extend(args);
    if !args.contains(&"--jobs") {
        all.extend(["--jobs", "2"]);
    }
    let output = buildopt(repo.path(), &all, &[("CI", "true")]);
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.code(), report, output)
}

pub(crate) fn result_of<'a>(report: &'a Value, image: &str) -> &'a str {
    report["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["name"] == image))
        .and_then(|i| i["result"].as_str())
        .unwrap_or("<missing>")
}

pub(crate) fn results(report: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["images"]
        .as_array()
        .map(|images| {
            images
                .iter()
                .map(|i| {
                    (
                        i["name"].as_str().unwrap_or("").to_string(),
                        i["result"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub(crate) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
        .collect()
}

fn run_in(image: &str, command: &str) -> String {
    docker(&["run", "--rm", image, "sh", "-c", command])
}

#[test]
fn first_build_no_change_rebuild_and_a_change_in_the_parent() {
    if !daemon_available("build_first") {
        return;
    }
    let prefix = prefix("first");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);

    let (code, report, output) = build(&repo, &[]);
    assert_eq!(code, Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        results(&report),
        pairs(&[
            ("api", "built"),
            ("base", "built"),
            ("linter", "built"),
            ("worker", "built")
        ])
    );
    let head = repo.sha("HEAD");
    let labels = docker(&[
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &format!("{prefix}/api:latest"),
    ]);
    let labels: Value = serde_json::from_str(&labels).expect("labels");
    assert_eq!(labels["org.opencontainers.image.revision"], head.as_str());
    assert!(
        labels["buildopt.inputs-digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("blake3:"))
    );
    assert!(labels["org.opencontainers.image.created"].is_string());
    let api_tags = &report["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["name"] == "api")
        .expect("api")["tags"];
    assert!(
        api_tags
            .as_array()
            .expect("tags")
            .contains(&Value::from(format!("example/api:{}", &head[..7]))),
        "{api_tags}"
    );
    docker(&["rmi", &format!("example/api:{}", &head[..7])]);

    let (code, report, _) = build(&repo, &[]);
    assert_eq!(code, Some(0));
    assert!(
        results(&report).iter().all(|(_, r)| r == "reused"),
        "{:?}",
        results(&report)
    );

    repo.commit_file("base/motd", "changed motd\n", "motd");
    let (code, report, output) = build(&repo, &["--tag", "ci-1"]);
    assert_eq!(code, Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        results(&report),
        pairs(&[
            ("api", "built"),
            ("base", "built"),
            ("linter", "reused"),
            ("worker", "built")
        ])
    );
    // The child really built FROM the parent just built.
    assert_eq!(
        run_in(&format!("{prefix}/api:ci-1"), "cat /etc/motd"),
        "changed motd\n"
    );
    docker(&["rmi", &format!("example/api:{}", &repo.sha("HEAD")[..7])]);
}

#[test]
fn a_failing_image_skips_its_dependents_and_keep_going_lets_the_others_finish() {
    if !daemon_available("build_failure") {
        return;
    }
    let prefix = prefix("fail");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);
    repo.commit_file(
        "base/Dockerfile",
        "FROM buildopt-test/busybox:latest\nRUN echo broken-step && exit 3\n",
        "break base",
    );

    let (code, report, output) = build(&repo, &["--jobs", "1"]);
    assert_eq!(code, Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(result_of(&report, "base"), "failed");
    for child in ["api", "worker"] {
        let image = report["images"]
            .as_array()
            .expect("images")
            .iter()
            .find(|i| i["name"] == child)
            .expect("child");
        assert_eq!(image["skip_reason"], "parent failed", "{image}");
    }
    // base and linter are both level 0; with one job base goes first, so linter never starts.
    assert_eq!(result_of(&report, "linter"), "skipped");
    let failure = &report["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["name"] == "base")
        .expect("base")["failure"];
    assert_eq!(failure["line"], 2, "{failure}");
    assert!(
        failure["log_tail"].to_string().contains("broken-step"),
        "{failure}"
    );

    let (code, report, _) = build(&repo, &["--jobs", "1", "--keep-going"]);
    assert_eq!(code, Some(1));
    assert_eq!(result_of(&report, "linter"), "built");
    assert_eq!(result_of(&report, "api"), "skipped");
}

#[test]
fn a_multi_stage_target_with_build_args() {
    if !daemon_available("build_target") {
        return;
    }
    let prefix = prefix("target");
    let _images = Images(prefix.clone());
    let repo = TestRepo::new();
    repo.write(
        "buildopt.toml",
        &format!(
            "[images.app]\nimage = \"{prefix}/app\"\ntarget = \"runtime\"\nargs = {{ GREETING = \"hello-{prefix}\" }}\n"
        ),
    );
    repo.write(
        "Dockerfile",
        "FROM buildopt-test/busybox:latest AS builder\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\n\
         FROM buildopt-test/busybox:latest AS runtime\nCOPY --from=builder /greeting /greeting\n\
         FROM runtime AS debug\nRUN echo debug > /debug\n",
    );
    repo.commit("app");
    let (code, report, output) = build(&repo, &[]);
    assert_eq!(code, Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(result_of(&report, "app"), "built");
    let image = format!("{prefix}/app:latest");
    assert_eq!(run_in(&image, "cat /greeting"), format!("hello-{prefix}\n"));
    assert_eq!(
        run_in(&image, "test -e /debug && echo yes || echo no"),
        "no\n"
    );
}

#[test]
fn no_daemon_is_an_environment_error_within_seconds() {
    let repo = example_repo(&prefix("nodaemon"));
    let output = buildopt(
        repo.path(),
        &["build"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(output.status.code(), Some(4));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("/nonexistent/docker.sock"), "{message}");
}

#[test]
fn dry_run_prints_the_plan_without_a_daemon() {
    let repo = example_repo(&prefix("dry"));
    let output = buildopt(
        repo.path(),
        &["build", "--dry-run"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("worker") && text.contains("level"), "{text}");
}

#[test]
fn only_an_unknown_image_is_a_usage_error() {
    let repo = example_repo(&prefix("only"));
    let output = buildopt(repo.path(), &["build", "--only", "nope"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nope"));
}

#[test]
fn hooks_run_around_each_image_and_a_failing_pre_hook_fails_its_image() {
    if !daemon_available("build_hooks") {
        return;
    }
    let prefix = prefix("hooks");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);
    let log = repo.home().join("hooks.log");
    let record = |phase: &str| {
        format!(
            "#!/bin/sh\necho \"{phase} $BUILDOPT_IMAGE $BUILDOPT_TAG ${{BUILDOPT_RESULT:-none}}\" >> '{}'\n",
            log.display()
        )
    };
    repo.write("scripts/pre-build-hook.sh", &record("pre"));
    repo.write("scripts/post-build-hook.sh", &record("post"));
    repo.commit("hooks");

    let (code, report, output) = build(&repo, &["--jobs", "1"]);
    assert_eq!(code, Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .expect("the hooks wrote their log")
        .lines()
        .map(str::to_string)
        .collect();
    for (name, result) in results(&report) {
        // The first tag: the repository's `latest`, before the configured templates.
        let tag = format!("{prefix}/{name}:latest");
        let pre = lines
            .iter()
            .position(|l| *l == format!("pre {name} {tag} none"));
        let post = lines
            .iter()
            .position(|l| *l == format!("post {name} {tag} {result}"));
        assert!(
            matches!((pre, post), (Some(pre), Some(post)) if pre < post),
            "{name}: {lines:#?}"
        );
    }
    docker(&["rmi", &format!("example/api:{}", &repo.sha("HEAD")[..7])]);

    // A configured command wins over the script; its failure fails only that image.
    let config = std::fs::read_to_string(repo.path().join("buildopt.toml")).expect("config");
    repo.write(
        "buildopt.toml",
        &format!(
            "{config}\n[hooks]\npre_build = 'if [ \"$BUILDOPT_IMAGE\" = linter ]; then echo linter-blocked; exit 5; fi'\n"
        ),
    );
    repo.commit("block the linter");
    let (code, report, output) = build(&repo, &["--jobs", "1", "--keep-going"]);
    assert_eq!(code, Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(result_of(&report, "linter"), "failed");
    assert_eq!(result_of(&report, "base"), "reused");
    let linter = report["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["name"] == "linter")
        .expect("linter");
    assert_eq!(linter["failure"]["step"], "pre-build hook", "{linter}");
    assert!(
        linter["failure"]["log_tail"]
            .to_string()
            .contains("linter-blocked"),
        "{linter}"
    );
    docker(&["rmi", &format!("example/api:{}", &repo.sha("HEAD")[..7])]);
}

pub(crate) const REGISTRY: &str = "127.0.0.1:5000";
/// The user `tests/testbed/start-registry.sh` creates.
const REGISTRY_USER: &str = "buildopt";
pub(crate) const REGISTRY_PASSWORD: &str = "buildopt-test-password";

/// True when the test registry answers (401: it wants credentials); panics in CI when it does not.
pub(crate) fn registry_available(test: &str) -> bool {
    let status = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "3",
        ])
        .arg(format!("http://{REGISTRY}/v2/"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    crate::skips::require(
        status == "401",
        test,
        &format!("test registry on {REGISTRY}"),
        "tests/testbed/start-registry.sh",
    )
}

/// A Docker config folder whose config.json holds `password` for the test registry.
pub(crate) fn docker_config(password: &str) -> tempfile::TempDir {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{REGISTRY_USER}:{password}"));
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths": {{"{REGISTRY}": {{"auth": "{auth}"}}}}}}"#),
    )
    .expect("config.json");
    dir
}

fn remove_images_of(prefix: &str) {
    drop(Images(prefix.to_string()));
}

fn digests(report: &Value) -> Vec<(String, String)> {
    report["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap_or("").to_string(),
                i["digest"].as_str().unwrap_or("<none>").to_string(),
            )
        })
        .collect()
}

#[test]
fn push_pull_back_reuse_from_the_registry_and_a_wrong_password() {
    if !daemon_available("build_push") || !registry_available("build_push") {
        return;
    }
    let prefix = prefix("push");
    let _images = Images(prefix.clone());
    let repo = example_repo(&format!("{REGISTRY}/{prefix}"));
    let config = docker_config(REGISTRY_PASSWORD);
    let config_dir = config.path().display().to_string();
    let push = |env: &[(&str, &str)]| {
        let mut all = vec![("CI", "true"), ("DOCKER_CONFIG", config_dir.as_str())];
        all.extend(env);
        let output = buildopt(
            repo.path(),
            &["--format", "json", "build", "--push", "--jobs", "2"],
            &all,
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        (output, report)
    };

    let (output, report) = push(&[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        results(&report).iter().all(|(_, r)| r == "built"),
        "{report}"
    );
    let pushed = digests(&report);
    remove_images_of(&prefix);
    for (name, digest) in &pushed {
        assert!(
            digest.starts_with(&format!("{REGISTRY}/{prefix}/{name}@sha256:")),
            "{name}: {digest}"
        );
        let reference = format!("{REGISTRY}/{prefix}/{name}:latest");
        let pull = Command::new("docker")
            .args(["--config", &config_dir, "pull", "-q", &reference])
            .output()
            .expect("docker pull");
        assert!(
            pull.status.success(),
            "{}",
            String::from_utf8_lossy(&pull.stderr)
        );
        let pulled = docker(&["inspect", "--format", "{{json .RepoDigests}}", &reference]);
        assert!(
            pulled.contains(digest.as_str()),
            "{name}: {pulled} vs {digest}"
        );
    }

    // Nothing local: the registry has every image for these inputs, so nothing is rebuilt.
    remove_images_of(&prefix);
    let (output, report) = push(&[]);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        results(&report).iter().all(|(_, r)| r == "reused"),
        "{report}"
    );
    assert_eq!(digests(&report), pushed);

    let canary = format!("canary-{}", std::process::id());
    let (output, report) = push(&[
        ("BUILDOPT_REGISTRY_USER", REGISTRY_USER),
        ("BUILDOPT_REGISTRY_PASSWORD", canary.as_str()),
    ]);
    assert!(matches!(output.status.code(), Some(1 | 4)), "{output:?}");
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!everything.contains(&canary), "the password was printed");
    // Docker 20.10 says "unauthorized", the containerd store "401 Unauthorized".
    let lower = everything.to_lowercase();
    assert!(
        lower.contains("unauthorized") || lower.contains("authentication"),
        "{report}"
    );
}
