//! The human output of `plan`, `build`, `cache` and `ci`, from the real binary on the example
//! repository, as insta snapshots (`tests/integration/snapshots/`). What changes from run to run
//! or engine to engine (durations, sizes, digests, ids, commit SHAs, temp paths, the engine's own
//! lines and notes, the per-run image prefix) is replaced by a placeholder first; the rest must not change
//! unnoticed. `cargo insta review` (or `INSTA_UPDATE=always`) accepts a deliberate change.

use std::path::Path;
use std::process::Output;

use crate::build::{Images, daemon_available, example_repo, prefix};
use crate::cli::buildopt;

/// Placeholders for what differs between runs, in the order applied.
fn stable(text: &str, prefix: &str, dirs: &[&Path]) -> String {
    let mut text = text.replace(prefix, "[prefix]");
    for dir in dirs {
        text = text.replace(&dir.display().to_string(), "[dir]");
    }
    let rules: [(&str, &str); 17] = [
        (r"(?m)^engine: .*$", "[engine line]"),
        // What the engine cannot do, in the table and on stderr: one line per finding, and
        // the findings differ between engines.
        (r"(?m)^(engine note|note): .*\n", ""),
        (r"> Engine: .*", "> Engine: [engine]"),
        (r"(?m)^\[\d\d:\d\d:\d\d\] ", "[clock] "),
        (r"\b\d+ bytes\b", "[n] bytes"),
        // The containerd image store keeps manifests and indexes as blobs too.
        (r"\b\d+ (new blobs|blobs|already stored)\b", "[n] $1"),
        (r"(?m)^blobs: \d+", "blobs: [n]"),
        (r"\b\d+%", "[n]%"),
        (r"\b\d+/\d+\b", "[n/m]"),
        (r"sha256:[0-9a-f]{12,64}", "[digest]"),
        (r"inputs-[0-9a-f]{8,64}", "inputs-[digest]"),
        (r"\b[0-9a-f]{40}\b", "[sha]"),
        (r"\b[0-9a-f]{7,12}\b", "[short]"),
        (r"\b\d+(\.\d+)? ?(B|kB|KB|MB|GB|KiB|MiB|GiB)\b", "[size]"),
        (r"\b\d+(\.\d+)? ?(ms|s|m)\b", "[time]"),
        (r"\b(\d+m)?\d+(\.\d+)?s\b", "[time]"),
        // Columns are as wide as their widest value, which the placeholders above hide.
        (r" {2,}", "  "),
    ];
    for (pattern, with) in rules {
        let re = regex::Regex::new(pattern).expect("pattern");
        text = re.replace_all(&text, with).into_owned();
    }
    without_build_steps(&text)
}

/// Drops the per-step progress lines of the builds (`[clock] image: step …`), which are the
/// engine's own words and differ between engines; an image's start and end lines stay.
fn without_build_steps(text: &str) -> String {
    let kept = ["started", "built in", "reused in", "failed", "skipped"];
    text.lines()
        .filter(|line| {
            let Some(rest) = line.strip_prefix("[clock] ") else {
                return true;
            };
            let message = rest.split_once(": ").map_or(rest, |(_, m)| m);
            kept.iter().any(|k| message.starts_with(k))
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

fn both(output: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn plan_of_a_change_to_one_service() {
    let prefix = prefix("snap-plan");
    let repo = example_repo(&prefix);
    repo.write("services/api/app.sh", "#!/bin/sh\necho changed\n");
    repo.commit("change api");
    let out = buildopt(repo.path(), &["plan", "--base", "HEAD~1"], &[]);
    insta::assert_snapshot!(stable(&both(&out), &prefix, &[repo.home()]));
}

#[test]
fn build_then_cache_then_ci_on_the_example() {
    let test = "snapshots of build, cache and ci";
    if !daemon_available(test) {
        return;
    }
    let prefix = prefix("snap-build");
    let _images = Images(prefix.clone());
    let repo = example_repo(&prefix);
    let dirs = [repo.home()];
    // The store outside the checkout, as the CI wrappers keep it.
    let store = repo.home().join("store");
    let env = [
        ("CI", "true"),
        ("BUILDOPT_CACHE_DIR", store.to_str().expect("utf-8")),
    ];
    let run = |args: &[&str]| {
        let out = buildopt(repo.path(), args, &env);
        stable(&both(&out), &prefix, &dirs)
    };
    insta::assert_snapshot!("build_first", run(&["build", "--jobs", "1"]));
    insta::assert_snapshot!("build_no_change", run(&["build", "--jobs", "1"]));
    insta::assert_snapshot!("cache_stats", run(&["cache", "stats"]));
    insta::assert_snapshot!("cache_export", run(&["cache", "export", "../c.tzst"]));
    insta::assert_snapshot!(
        "cache_import",
        run(&["cache", "import", "--no-load", "../c.tzst"])
    );
    insta::assert_snapshot!("cache_cleanup", run(&["cache", "cleanup"]));
    repo.write("services/worker/worker.sh", "#!/bin/sh\necho changed\n");
    repo.commit("change worker");
    insta::assert_snapshot!(
        "ci_one_change",
        run(&["ci", "--base", "HEAD~1", "--jobs", "1"])
    );
}
