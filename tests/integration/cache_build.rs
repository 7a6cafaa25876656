//! `buildopt build` with the build cache on, against the real daemon: the first build saves its
//! images into the store, a build after the images were removed from the daemon restores and
//! reuses them, and a one-line change adds only the new layers to the store.
//!
//! Uses the example repository under unique repository names (see `build.rs`) and a store in a
//! temporary folder; only the test's own images are removed from the shared daemon.

use std::path::Path;

use serde_json::Value;

use crate::build::{
    Images, daemon_available, docker, example_repo, pairs, prefix, result_of, results,
};
use crate::cli::buildopt;
use crate::support::TestRepo;

/// Runs `buildopt --format json build --jobs 2 ARGS` with the store at `store`; returns the exit
/// code, the report and stderr.
fn build_cached(repo: &TestRepo, store: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let store = store.display().to_string();
    let mut all = vec!["--format", "json", "build", "--jobs", "2"];
    all.extend(args);
    let output = buildopt(
        repo.path(),
        &all,
        &[("CI", "true"), ("BUILDOPT_CACHE_DIR", &store)],
    );
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), report, stderr)
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn repositories(prefix: &str, images: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = images.iter().map(|i| format!("{prefix}/{i}")).collect();
    out.sort();
    out
}

fn image<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["name"] == name))
        .unwrap_or(&Value::Null)
}

/// Removes every image of the test from the daemon, including the api's tag outside `prefix`.
fn remove_from_daemon(prefix: &str, repo: &TestRepo) {
    drop(Images(prefix.to_string()));
    docker(&["rmi", &format!("example/api:{}", &repo.sha("HEAD")[..7])]);
}

#[test]
fn a_build_restores_from_the_store_and_saves_only_new_layers() {
    if !daemon_available("cache_build") {
        return;
    }
    let prefix = prefix("cache");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);
    let store = tempfile::tempdir().expect("store");
    let all = ["api", "base", "linter", "worker"];

    let (code, report, stderr) = build_cached(&repo, store.path(), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let cache = &report["cache"];
    assert_eq!(names(&cache["restore"]["loaded"]), Vec::<String>::new());
    assert_eq!(
        names(&cache["export"]["saved"]),
        repositories(&prefix, &all),
        "{cache}"
    );
    assert!(cache["export"]["new_blobs"].as_u64() > Some(0), "{cache}");
    let labels = docker(&[
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &format!("{prefix}/base:latest"),
    ]);
    assert!(labels.contains("buildopt.inputs-digest"), "{labels}");

    remove_from_daemon(&prefix, &repo);
    let (code, report, stderr) = build_cached(&repo, store.path(), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let cache = &report["cache"];
    assert_eq!(
        names(&cache["restore"]["loaded"]),
        repositories(&prefix, &all),
        "{cache}"
    );
    assert!(cache["restore"]["bytes"].as_u64() > Some(0), "{cache}");
    assert!(
        results(&report).iter().all(|(_, r)| r == "reused"),
        "{:?}",
        results(&report)
    );
    assert_eq!(cache["export"]["new_blobs"], 0, "{cache}");

    repo.commit_file("services/api/app.sh", "#!/bin/sh\necho changed\n", "api");
    let (code, report, stderr) = build_cached(&repo, store.path(), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        results(&report),
        pairs(&[
            ("api", "built"),
            ("base", "reused"),
            ("linter", "reused"),
            ("worker", "reused")
        ])
    );
    let api = image(&report, "api");
    assert!(
        api["steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["cached"] == true)),
        "{api}"
    );
    let export = &report["cache"]["export"];
    assert_eq!(names(&export["saved"]), repositories(&prefix, &["api"]));
    let (new_blobs, layers) = (export["new_blobs"].as_u64(), api["layers"].as_u64());
    // The changed COPY, the RUN after it and the config; the base's layers are stored already.
    assert!(
        new_blobs.is_some_and(|n| n >= 2) && new_blobs < layers,
        "{new_blobs:?} new blobs for {layers:?} layers: {export}"
    );
    assert!(
        export["new_bytes"].as_u64() < api["size"].as_u64(),
        "{export}"
    );
    docker(&["rmi", &format!("example/api:{}", &repo.sha("HEAD")[..7])]);
}

#[test]
fn with_the_classic_builder_a_restored_image_is_the_cache_source_of_its_rebuild() {
    if !daemon_available("cache_build classic") {
        return;
    }
    let prefix = prefix("cacheclassic");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);
    let store = tempfile::tempdir().expect("store");
    let classic = ["--builder", "classic"];
    let (code, _, stderr) = build_cached(&repo, store.path(), &classic);
    assert_eq!(code, Some(0), "{stderr}");

    // Removing the images also removes the classic builder's intermediate images: without the
    // restored image as cache source nothing of the api could come from the cache.
    remove_from_daemon(&prefix, &repo);
    repo.commit_file("services/api/app.sh", "#!/bin/sh\necho changed\n", "api");
    let (code, report, stderr) = build_cached(&repo, store.path(), &classic);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(result_of(&report, "api"), "built");
    assert_eq!(result_of(&report, "base"), "reused");
    let steps = image(&report, "api")["steps"].clone();
    let cached: Vec<&str> = steps
        .as_array()
        .map(|s| {
            s.iter()
                .filter(|s| s["cached"] == true)
                .filter_map(|s| s["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        cached.iter().any(|name| name.contains("shared/config.env")),
        "{steps}"
    );
    assert!(
        !cached.iter().any(|name| name.contains("app.sh")),
        "the changed file's step must run: {steps}"
    );
    docker(&["rmi", &format!("example/api:{}", &repo.sha("HEAD")[..7])]);
}

#[test]
fn a_corrupt_store_is_a_warning_and_the_build_succeeds() {
    if !daemon_available("cache_build corrupt") {
        return;
    }
    let prefix = prefix("cachecorrupt");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);
    let store = tempfile::tempdir().expect("store");
    std::fs::write(store.path().join("index.json"), "{ not json").expect("index");
    let (code, report, stderr) = build_cached(&repo, store.path(), &["--only", "linter"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(result_of(&report, "linter"), "built");
    let cache = &report["cache"];
    for phase in ["restore", "export"] {
        assert!(
            cache[phase]["warning"]
                .as_str()
                .is_some_and(|w| w.contains("index.json")),
            "{cache}"
        );
    }
    assert!(stderr.contains("warning: cache restore failed"), "{stderr}");
}
