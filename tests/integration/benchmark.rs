//! `buildopt build --benchmark` on a copy of the example repository, on the real daemon: it
//! reports every level cold and warm against the baseline, and leaves the user's images, tags and
//! cache store as they were, removing everything it made.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::build::{Images, daemon_available, docker, example_repo, prefix};
use crate::cli::buildopt;

/// `repository:tag` → image id of every image whose name contains `needle`.
fn images_with(needle: &str) -> BTreeMap<String, String> {
    docker(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ])
    .lines()
    .filter(|line| line.contains(needle))
    .filter_map(|line| line.split_once(' '))
    .map(|(name, id)| (name.to_string(), id.to_string()))
    .collect()
}

/// Every file under `dir` with its size, relative.
fn listing(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let size = entry.metadata().map_or(0, |m| m.len());
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                out.insert(rel, size);
            }
        }
    }
    out
}

#[test]
fn benchmark_measures_every_level_and_leaves_the_users_images_alone() {
    if !daemon_available("benchmark") {
        return;
    }
    let prefix = prefix("bench");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);
    let first = buildopt(repo.path(), &["build", "--jobs", "2"], &[("CI", "true")]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let users_images = images_with(&format!("{prefix}/"));
    assert!(users_images.len() >= 4, "{users_images:?}");
    let store = listing(&repo.path().join(".build_cache"));
    assert!(!store.is_empty(), "the first build filled the user's store");

    let output = buildopt(
        repo.path(),
        &["--format", "json", "build", "--benchmark", "--jobs", "2"],
        &[("CI", "true")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("json report");
    let runs: Vec<(String, String)> = report["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            (
                r["level"].as_str().unwrap_or("").into(),
                r["cache"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = ["minimal", "medium", "maximum", "ci"]
        .iter()
        .flat_map(|level| [("cold"), ("warm")].map(|c| ((*level).to_string(), c.to_string())))
        .collect();
    assert_eq!(runs, expected);
    for run in report["runs"].as_array().expect("runs") {
        let (built, reused) = (&run["built"], &run["reused"]);
        if run["cache"] == "cold" {
            assert_eq!((built, reused), (&Value::from(4), &Value::from(0)), "{run}");
        } else {
            assert_eq!((built, reused), (&Value::from(0), &Value::from(4)), "{run}");
        }
        assert!(run["total_size"].as_u64().is_some_and(|s| s > 0), "{run}");
    }
    assert_eq!(report["baseline"]["images"], 4);
    assert!(report["baseline"]["duration_ms"].as_u64().is_some());
    assert_eq!(report["cleanup"]["left"], Value::Array(Vec::new()));

    let scratch = report["prefix"].as_str().expect("prefix");
    assert!(scratch.starts_with("buildopt-bench-"), "{scratch}");
    assert_eq!(
        images_with(scratch),
        BTreeMap::new(),
        "the benchmark's images are gone"
    );
    assert!(
        !std::env::temp_dir().join(scratch).exists(),
        "the scratch copy is gone"
    );
    assert_eq!(
        images_with(&format!("{prefix}/")),
        users_images,
        "the user's images are untouched"
    );
    assert_eq!(
        listing(&repo.path().join(".build_cache")),
        store,
        "the user's store is untouched"
    );
}
