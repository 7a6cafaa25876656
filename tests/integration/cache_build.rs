//! `buildopt build` with the build cache on, against the real daemon: the first build saves its
//! images into the store, a build after the images were removed from the daemon restores and
//! reuses them, and a one-line change adds only the new layers to the store.
//!
//! Uses the example repository under unique repository names (see `build.rs`) and a store in a
//! temporary folder; only the test's own images are removed from the shared daemon.

use std::path::Path;

use serde_json::Value;

use crate::build::{
    Images, containerd_store, daemon_available, docker, example_repo, pairs, prefix, result_of,
    results,
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
    if containerd_store() {
        assert_engine_note(&report, "inline cache");
    }
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
fn after_a_forced_rebuild_the_next_build_keeps_the_new_images() {
    if !daemon_available("cache_build") {
        return;
    }
    let prefix = prefix("forced");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);
    let store = tempfile::tempdir().expect("store");
    let (code, _, stderr) = build_cached(&repo, store.path(), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, forced, stderr) = build_cached(&repo, store.path(), &["--force"]);
    assert_eq!(code, Some(0), "{stderr}");
    // The forced build made new images from the same inputs: the store follows them.
    assert_eq!(
        forced["cache"]["export"]["saved"].as_array().map(Vec::len),
        Some(4)
    );
    let (code, next, stderr) = build_cached(&repo, store.path(), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    for name in ["api", "base", "linter", "worker"] {
        assert_eq!(image(&next, name)["result"], "reused", "{name}: {next}");
        assert_eq!(
            image(&next, name)["image_id"],
            image(&forced, name)["image_id"],
            "{name}: the next build must not bring back the image the forced build replaced"
        );
    }
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
    if containerd_store() {
        // No cache sources there (see level_maximum_caches_the_builder_stage…): said, not faked.
        assert_engine_note(&report, "cache source");
        docker(&["rmi", &format!("example/api:{}", &repo.sha("HEAD")[..7])]);
        return;
    }
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
fn a_store_of_an_older_buildopt_starts_afresh_with_a_warning() {
    if !daemon_available("cache_build older store") {
        return;
    }
    let prefix = prefix("cacheolder");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);
    let store = tempfile::tempdir().expect("store");
    // Format 1 kept uncompressed layers and no OCI documents; its entries cannot be read now.
    let old_blob = store.path().join("blobs/sha256").join("ab".repeat(32));
    std::fs::create_dir_all(old_blob.parent().expect("folder")).expect("mkdir");
    std::fs::write(&old_blob, "an old layer").expect("blob");
    std::fs::write(
        store.path().join("index.json"),
        r#"{"version":1,"images":[{"name":"x","tags":["x:latest"],"config":"sha256:abababababababababababababababababababababababababababababababab","layers":[],"last_used":1,"size":12}]}"#,
    )
    .expect("index");
    let (code, report, stderr) = build_cached(&repo, store.path(), &["--only", "linter"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(result_of(&report, "linter"), "built");
    let warning = report["cache"]["restore"]["warning"]
        .as_str()
        .unwrap_or_default();
    assert!(
        warning.contains("format 1 of an older buildopt"),
        "{report}"
    );
    assert!(stderr.contains("starts afresh"), "{stderr}");
    assert!(!old_blob.exists(), "the old format's blobs are collected");
    let index: Value =
        serde_json::from_slice(&std::fs::read(store.path().join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["version"], 3, "{index}");
    assert!(
        names(&report["cache"]["export"]["saved"]).contains(&format!("{prefix}/linter")),
        "{report}"
    );
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

/// A repository with one two-stage image: a `builder` stage with a slow `RUN` whose result the
/// final stage copies, and a file only the final stage uses. Every image the builder stage
/// makes carries the label `bo.test=<prefix>`, so the test can wipe them from the shared daemon.
fn two_stage_repo(prefix: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "buildopt.toml",
        &format!("[images.app]\nimage = \"{prefix}/app\"\ncontext = \"app\"\n"),
    );
    repo.write(
        "app/Dockerfile",
        &format!(
            "FROM buildopt-test/busybox:latest AS builder\n\
             LABEL bo.test={prefix}\n\
             COPY build.sh /build.sh\n\
             RUN sleep 2 && sh /build.sh > /artifact\n\
             FROM buildopt-test/busybox:latest\n\
             COPY --from=builder /artifact /artifact\n\
             COPY app.txt /app.txt\n"
        ),
    );
    repo.write("app/build.sh", &format!("echo built for {prefix}\n"));
    repo.write("app/app.txt", "one\n");
    repo.commit("two-stage app");
    repo
}

/// Removes the test's tagged images and every image its builder stage left (the classic
/// builder's cache), so the next build has only what the store restores.
fn wipe_two_stage(prefix: &str) {
    drop(Images(prefix.to_string()));
    let label = format!("label=bo.test={prefix}");
    let ids = docker(&["images", "-a", "-q", "--filter", &label]);
    let ids: Vec<&str> = ids.lines().collect();
    if !ids.is_empty() {
        let mut args = vec!["rmi", "-f"];
        args.extend(ids.iter().copied());
        docker(&args);
    }
    let left = docker(&["images", "-a", "-q", "--filter", &label]);
    assert!(left.trim().is_empty(), "images left: {left}");
}

/// Panics unless the report's engine notes include one that mentions `needle`.
fn assert_engine_note(report: &Value, needle: &str) {
    let notes = &report["run"]["engine"]["notes"];
    let found = notes.as_array().is_some_and(|n| {
        n.iter()
            .any(|n| n.as_str().is_some_and(|n| n.contains(needle)))
    });
    assert!(found, "no engine note about {needle:?}: {notes}");
}

/// Whether the step of `steps` whose name contains `needle` was cached; panics when none does.
fn step_cached(steps: &Value, needle: &str) -> bool {
    steps
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|s| s["name"].as_str().is_some_and(|n| n.contains(needle)))
        })
        .map(|s| s["cached"] == true)
        .unwrap_or_else(|| panic!("no step with {needle:?} in {steps}"))
}

/// Builds the two-stage image at `level` with the classic builder, wipes the daemon, changes the
/// final stage's file and builds again; returns the second report.
fn rebuild_after_wipe(level: &str, prefix: &str) -> Value {
    let repo = two_stage_repo(prefix);
    let store = tempfile::tempdir().expect("store");
    let args = ["--builder", "classic", "--level", level];
    let (code, report, stderr) = build_cached(&repo, store.path(), &args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(result_of(&report, "app"), "built");
    wipe_two_stage(prefix);
    repo.commit_file("app/app.txt", "two\n", "change the final stage");
    let (code, report, stderr) = build_cached(&repo, store.path(), &args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(result_of(&report, "app"), "built");
    report
}

#[test]
fn level_maximum_caches_the_builder_stage_and_medium_does_not() {
    if !daemon_available("cache_build stages") {
        return;
    }
    let prefix = prefix("stagesmax");
    let _images = Images(prefix.clone());
    let stage_ref = format!("{prefix}/app:stage-builder");
    let report = rebuild_after_wipe("maximum", &prefix);
    let cache = &report["cache"];
    assert_eq!(
        names(&cache["restore"]["loaded"]),
        [format!("{prefix}/app"), stage_ref.clone()],
        "{cache}"
    );
    let app = image(&report, "app");
    let stages = app["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 1, "{app}");
    assert_eq!(stages[0]["name"], "builder");
    assert_eq!(stages[0]["reference"], stage_ref.as_str());
    // The classic builder of the containerd image store cannot take the restored stage as a
    // cache source (it fails the build): buildopt names none there, and says so.
    let restored_stage_serves = !containerd_store();
    assert_eq!(
        step_cached(&stages[0]["steps"], "sleep 2"),
        restored_stage_serves,
        "{app}"
    );
    if !restored_stage_serves {
        assert_engine_note(&report, "cache source");
    }
    assert!(step_cached(&app["steps"], "sleep 2"), "{app}");
    assert!(!step_cached(&app["steps"], "app.txt"), "{app}");
    assert!(app["previous_size"].as_u64().is_some(), "{app}");
    // The stage image is saved again under the new inputs digest, next to the image.
    assert_eq!(
        names(&cache["export"]["saved"]),
        [format!("{prefix}/app"), stage_ref],
        "{cache}"
    );
    wipe_two_stage(&prefix);

    let medium = crate::build::prefix("stagesmed");
    let _images = Images(medium.clone());
    let report = rebuild_after_wipe("medium", &medium);
    let cache = &report["cache"];
    assert_eq!(
        names(&cache["restore"]["loaded"]),
        [format!("{medium}/app")],
        "{cache}"
    );
    let app = image(&report, "app");
    assert!(app.get("stages").is_none(), "{app}");
    assert!(!step_cached(&app["steps"], "sleep 2"), "{app}");
    assert!(!step_cached(&app["steps"], "app.txt"), "{app}");
    wipe_two_stage(&medium);
}

#[test]
fn a_restore_tags_only_the_workspaces_repositories() {
    if !daemon_available("cache_build restore tags") {
        return;
    }
    let prefix = prefix("cachetags");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);
    let store = tempfile::tempdir().expect("store");
    let (code, _, stderr) = build_cached(&repo, store.path(), &["--only", "linter"]);
    assert_eq!(code, Some(0), "{stderr}");
    // A store from a CI cache names a repository this workspace does not build.
    let victim = format!("{prefix}-victim/app:latest");
    let index_path = store.path().join("index.json");
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(&index_path).expect("index")).expect("json");
    let linter = format!("{prefix}/linter");
    let entry = index["images"]
        .as_array_mut()
        .and_then(|images| images.iter_mut().find(|i| i["name"] == linter.as_str()))
        .expect("the linter's entry");
    entry["tags"]
        .as_array_mut()
        .expect("tags")
        .push(Value::from(victim.clone()));
    std::fs::write(&index_path, serde_json::to_vec(&index).expect("json")).expect("write");
    drop(Images(prefix.clone()));

    let (code, report, stderr) = build_cached(&repo, store.path(), &["--only", "linter"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        names(&report["cache"]["restore"]["loaded"]),
        [linter],
        "{report}"
    );
    assert!(stderr.contains(&format!("tags {victim}")), "{stderr}");
    let listed = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!listed.contains(&victim), "{victim} was tagged: {listed}");
}

/// `BUILDOPT_CACHE_RESTORE=all` on a fresh daemon after a one-image change: every image of the
/// workspace is loaded from the store, so the job ends with all of them tagged; the default
/// loads only what the build needs.
#[test]
fn restoring_all_ends_with_every_image_in_the_daemon() {
    if !daemon_available("cache_build restore all") {
        return;
    }
    let prefix = prefix("cacheall");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);
    let store = tempfile::tempdir().expect("store");
    let (code, _, stderr) = build_cached(&repo, store.path(), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    // The api's tag outside the prefix would keep its first image in the daemon.
    let first_api = format!("example/api:{}", &repo.sha("HEAD")[..7]);
    repo.commit_file("services/api/app.sh", "#!/bin/sh\necho all\n", "api");
    let linter = format!("{prefix}/linter:latest");
    let store_dir = store.path().display().to_string();
    let build = |restore: &str| {
        remove_from_daemon(&prefix, &repo);
        docker(&["rmi", &first_api]);
        let output = buildopt(
            repo.path(),
            &["--format", "json", "build", "--base", "HEAD~1"],
            &[
                ("CI", "true"),
                ("BUILDOPT_CACHE_DIR", &store_dir),
                ("BUILDOPT_CACHE_RESTORE", restore),
            ],
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        let report: Value = serde_json::from_slice(&output.stdout).expect("report");
        let linter_there = !docker(&["images", "-q", &linter]).trim().is_empty();
        (report, linter_there)
    };

    let (report, linter_there) = build("built");
    assert_eq!(
        names(&report["cache"]["restore"]["loaded"]),
        repositories(&prefix, &["api", "base"]),
        "{report}"
    );
    assert!(
        !linter_there,
        "the default restores only what the build needs"
    );
    assert_eq!(result_of(&report, "api"), "built");

    let (report, linter_there) = build("all");
    assert_eq!(
        names(&report["cache"]["restore"]["loaded"]),
        repositories(&prefix, &["api", "base", "linter", "worker"]),
        "{report}"
    );
    assert!(linter_there, "{linter} was not restored");
    // The run before saved the changed api into the store.
    assert_eq!(result_of(&report, "api"), "reused");
    assert_ne!(result_of(&report, "linter"), "built", "{report}");
    docker(&["rmi", &format!("example/api:{}", &repo.sha("HEAD")[..7])]);
}
