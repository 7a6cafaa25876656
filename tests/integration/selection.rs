//! Selection against the build record, through the binary, a real repository and the daemon.
//!
//! The scenario: the first build fails on `base`; the commit that fixes `base` is never
//! built (its CI run was cancelled); the next commit changes only `linter`. Planned from the
//! previous commit, the diff names only `linter`, but no image of `base`, `api` or `worker`
//! exists: the record selects them. Pruning the store's images never brings them back into a
//! plan, `--only` keeps the record from selecting anything outside it, and with `--push` an
//! image of the inputs in the registry counts as a build (only then is the registry asked).

use std::path::Path;

use serde_json::Value;

use crate::build::{
    Images, REGISTRY, REGISTRY_PASSWORD, daemon_available, docker, docker_config, example_repo,
    prefix, registry_available, result_of,
};
use crate::cli::buildopt;
use crate::support::TestRepo;

const RECORD_REASON: &str =
    "no build of these inputs exists (the last build failed or was not saved)";
const BASE_DOCKERFILE: &str = "base/Dockerfile";

/// Runs `buildopt --format json ARGS` with the store at `store`; returns the exit code, the JSON
/// on stdout and stderr.
fn run(repo: &TestRepo, store: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    run_with(repo, store, args, &[])
}

/// [`run`] with more environment variables.
fn run_with(
    repo: &TestRepo,
    store: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, Value, String) {
    let store = store.display().to_string();
    let mut all = vec!["--format", "json"];
    all.extend(args);
    let mut env = env.to_vec();
    env.extend([("CI", "true"), ("BUILDOPT_CACHE_DIR", store.as_str())]);
    let output = buildopt(repo.path(), &all, &env);
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), json, stderr)
}

fn image<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["name"] == name))
        .unwrap_or(&Value::Null)
}

fn reason_details(json: &Value, name: &str) -> Vec<String> {
    image(json, name)["reasons"]
        .as_array()
        .map(|reasons| {
            reasons
                .iter()
                .filter_map(|r| r["detail"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The history: a first build whose `base` fails, then a commit that fixes `base` and
/// is never built, then a commit that changes only `linter`. Returns the repository, the store
/// and the commit that fixed `base` (the push event's `before` of the last commit).
fn failed_then_fixed(prefix: &str) -> (TestRepo, tempfile::TempDir, String) {
    let repo = example_repo(prefix);
    let fixed = std::fs::read_to_string(repo.path().join(BASE_DOCKERFILE)).expect("dockerfile");
    repo.commit_file(
        BASE_DOCKERFILE,
        &format!("{fixed}RUN echo broken && exit 3\n"),
        "break base",
    );
    let store = tempfile::tempdir().expect("store");
    let (code, first, stderr) = run(&repo, store.path(), &["build", "--keep-going"]);
    assert_ne!(code, Some(0), "the first build fails on base: {stderr}");
    assert_eq!(result_of(&first, "base"), "failed", "{first}");
    assert_eq!(result_of(&first, "linter"), "built", "{first}");
    let fixing = repo.commit_file(BASE_DOCKERFILE, &fixed, "fix base");
    repo.commit_file(
        "tools/linter/lint.sh",
        "#!/bin/sh\necho lint v2\n",
        "linter",
    );
    (repo, store, fixing)
}

#[test]
fn images_whose_build_failed_or_was_never_saved_are_built_after_an_unrelated_change() {
    if !daemon_available("selection") {
        return;
    }
    let prefix = prefix("record");
    let _images = Images(prefix.clone());
    let (repo, store, before) = failed_then_fixed(&prefix);

    let (code, plan, stderr) = run(&repo, store.path(), &["plan", "--base", &before]);
    assert_eq!(code, Some(0), "{stderr}");
    for (name, source) in [
        ("base", "record"),
        ("api", "record"),
        ("worker", "record"),
        ("linter", "diff"),
    ] {
        assert_eq!(image(&plan, name)["affected"], true, "{name}: {plan}");
        assert_eq!(image(&plan, name)["selected_by"], source, "{name}: {plan}");
    }
    assert_eq!(reason_details(&plan, "base"), [RECORD_REASON]);
    assert!(
        reason_details(&plan, "api")
            .iter()
            .any(|d| d.contains("'base'") && d.contains("rebuilt")),
        "api builds FROM base: {plan}"
    );
    assert!(
        plan["notes"].as_array().is_some_and(Vec::is_empty),
        "the daemon answered: {plan}"
    );

    // Without a daemon the plan still succeeds: the record alone selects, and a note says so.
    let no_daemon = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    let (code, offline, stderr) = run_with(
        &repo,
        store.path(),
        &["plan", "--base", &before],
        &no_daemon,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        image(&offline, "base")["selected_by"],
        "record",
        "{offline}"
    );
    let notes = offline["notes"].to_string();
    assert!(
        notes.contains("the daemon was not asked") && notes.contains("base"),
        "{offline}"
    );

    // Diff-only selection, for those who want it: the behaviour.
    let diff_only = [("BUILDOPT_SELECTION", "diff")];
    let (code, diff, stderr) = run_with(
        &repo,
        store.path(),
        &["plan", "--base", &before],
        &diff_only,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(diff["levels"], serde_json::json!([["linter"]]), "{diff}");

    let (code, report, stderr) = run(&repo, store.path(), &["build", "--base", &before]);
    assert_eq!(code, Some(0), "{stderr}");
    for name in ["base", "api", "worker", "linter"] {
        assert_eq!(result_of(&report, name), "built", "{name}: {report}");
    }
    assert_eq!(reason_details(&report, "base"), [RECORD_REASON]);
    assert!(
        reason_details(&report, "worker").contains(&RECORD_REASON.to_string()),
        "{report}"
    );

    // Planned again from the same commit, the record knows these inputs built: the diff alone.
    let (code, again, stderr) = run(&repo, store.path(), &["plan", "--base", &before]);
    assert_eq!(code, Some(0), "{stderr}");
    let selected: Vec<&str> = ["base", "api", "worker", "linter"]
        .into_iter()
        .filter(|name| image(&again, name)["affected"] == true)
        .collect();
    assert_eq!(selected, ["linter"], "{again}");
    remove_api_tag(&repo);
}

/// Removes the tag the example's api gets outside the test's repositories.
fn remove_api_tag(repo: &TestRepo) {
    docker(&["rmi", &format!("example/api:{}", &repo.sha("HEAD")[..7])]);
}

#[test]
fn pruning_the_store_and_the_daemon_does_not_rebuild_what_built() {
    if !daemon_available("selection prune") {
        return;
    }
    let prefix = prefix("recordprune");
    let images = Images(prefix.clone());
    let (repo, store, before) = failed_then_fixed(&prefix);
    let (code, _, stderr) = run(&repo, store.path(), &["build", "--base", &before]);
    assert_eq!(code, Some(0), "{stderr}");

    // Every image leaves the store (a size limit of 0 GB) and the daemon.
    let store_dir = store.path().display().to_string();
    let optimize = buildopt(
        repo.path(),
        &["cache", "optimize"],
        &[
            ("BUILDOPT_CACHE_DIR", &store_dir),
            ("BUILDOPT_CACHE_SIZE_LIMIT_GB", "0"),
        ],
    );
    assert!(
        optimize.status.success(),
        "{}",
        String::from_utf8_lossy(&optimize.stderr)
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(store.path().join("index.json")).expect("index"))
            .expect("index json");
    assert_eq!(index["images"], serde_json::json!([]), "{index}");
    drop(images);
    let _images = Images(prefix.clone());

    remove_api_tag(&repo);
    let linter_change = repo.sha("HEAD");
    repo.commit_file(
        "tools/linter/lint.sh",
        "#!/bin/sh\necho lint v3\n",
        "linter",
    );
    let (code, report, stderr) = run(&repo, store.path(), &["build", "--base", &linter_change]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(result_of(&report, "linter"), "built", "{report}");
    for name in ["base", "api", "worker"] {
        assert_eq!(result_of(&report, name), "skipped", "{name}: {report}");
    }
}

#[test]
fn the_record_selects_nothing_outside_only() {
    if !daemon_available("selection only") {
        return;
    }
    let prefix = prefix("recordonly");
    let _images = Images(prefix.clone());
    let (repo, store, before) = failed_then_fixed(&prefix);
    let (code, report, stderr) = run(
        &repo,
        store.path(),
        &["build", "--base", &before, "--only", "linter"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(result_of(&report, "linter"), "built", "{report}");
    for name in ["base", "api", "worker"] {
        assert_eq!(result_of(&report, name), "skipped", "{name}: {report}");
        assert_eq!(
            image(&report, name)["skip_reason"],
            "not selected by --only",
            "{name}: {report}"
        );
    }
}

#[test]
fn with_push_an_image_of_the_inputs_in_the_registry_counts_as_a_build() {
    if !daemon_available("selection push") || !registry_available("selection push") {
        return;
    }
    let prefix = prefix("recordpush");
    let images = Images(prefix.clone());
    let repo = example_repo(&format!("{REGISTRY}/{prefix}"));
    let config = docker_config(REGISTRY_PASSWORD);
    let docker_config = [("DOCKER_CONFIG", config.path().to_str().expect("utf-8"))];

    // Another runner, with a store of its own, built and pushed every image.
    let elsewhere = tempfile::tempdir().expect("store");
    let (code, report, stderr) = run_with(
        &repo,
        elsewhere.path(),
        &["build", "--push"],
        &docker_config,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(result_of(&report, "base"), "built", "{report}");
    remove_api_tag(&repo);

    // This runner's store records a linter build only.
    let store = tempfile::tempdir().expect("store");
    repo.commit_file(
        "tools/linter/lint.sh",
        "#!/bin/sh\necho lint v2\n",
        "linter",
    );
    let (code, report, stderr) = run_with(
        &repo,
        store.path(),
        &["build", "--push", "--base", "HEAD~1", "--only", "linter"],
        &docker_config,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(result_of(&report, "linter"), "built", "{report}");
    drop(images);
    let _images = Images(prefix.clone());

    repo.commit_file(
        "tools/linter/lint.sh",
        "#!/bin/sh\necho lint v3\n",
        "linter",
    );
    let plan = |args: &[&str]| {
        let mut all = vec!["plan", "--base", "HEAD~1"];
        all.extend(args);
        let (code, plan, stderr) = run_with(&repo, store.path(), &all, &docker_config);
        assert_eq!(code, Some(0), "{stderr}");
        let mut selected: Vec<(String, String)> = plan["images"]
            .as_array()
            .expect("images")
            .iter()
            .filter(|i| i["affected"] == true)
            .map(|i| {
                let name = i["name"].as_str().unwrap_or_default().to_owned();
                (
                    name,
                    i["selected_by"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        selected.sort();
        selected
    };
    let pair = |name: &str, source: &str| (name.to_owned(), source.to_owned());
    // Without --push no registry is asked: nothing of base, api or worker is in the daemon.
    assert_eq!(
        plan(&[]),
        [
            pair("api", "record"),
            pair("base", "record"),
            pair("linter", "diff"),
            pair("worker", "record"),
        ]
    );
    // With --push the registry has an image of each of their inputs.
    assert_eq!(plan(&["--push"]), [pair("linter", "diff")]);
}
