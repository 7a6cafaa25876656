//! Names from a repository, a config or a store on the console (issue 13, item 5, T17): whatever
//! an image name, tag, file path or store entry holds, no line buildopt prints may start a GitHub
//! workflow command (the runner trims a line before it looks for `::`) or hold the legacy form
//! `##[command]` (which the runner finds anywhere in a line), and no escape sequence reaches the
//! terminal.

use std::path::Path;
use std::process::Output;

use crate::cli::buildopt;
use crate::support::TestRepo;

/// An image name that ends its line and forges an annotation.
const FORGING_NAME: &str = "a\n::error title=x::y";

/// A file name holding an OSC sequence (sets the terminal title) and a CSI in its C1 form.
const ESCAPING_FILE: &str = "f\u{1b}]0;pwned\u{7}\u{9b}31m.txt";

/// Every line of stdout and stderr: none starts a workflow command, none holds ESC or a C1 CSI.
fn assert_inert(output: &Output) {
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!bytes.contains(&0x1b), "ESC on {stream}: {text:?}");
        assert!(!text.contains('\u{9b}'), "C1 CSI on {stream}: {text:?}");
        for line in text.split(['\n', '\r']) {
            assert!(
                !line.trim().starts_with("::") && !line.contains("##["),
                "{stream} line {line:?} is a workflow command in {text:?}"
            );
        }
    }
}

fn hostile_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "Dockerfile",
        "FROM buildopt-test/busybox:latest\nCOPY . /x\n",
    );
    repo.write(ESCAPING_FILE, "x\n");
    repo.write(
        "buildopt.toml",
        "[images.\"a\\n::error title=x::y\"]\ncontext = \".\"\n\
         tags = [\"t\\u001b]8;;http://evil\\u0007x\"]\n\
         [images.\"::warning::leading\"]\ncontext = \".\"\n\
         [images.\"x ##[add-mask]legacy\"]\ncontext = \".\"\n",
    );
    repo.commit("hostile names");
    repo
}

#[test]
fn plan_prints_hostile_names_inert() {
    let repo = hostile_repo();
    let output = buildopt(repo.path(), &["plan"], &[]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_inert(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("a\\n::error title=x::y"), "{stdout}");
}

#[test]
fn plan_json_keeps_hostile_names_in_valid_json() {
    let repo = hostile_repo();
    let output = buildopt(repo.path(), &["--format", "json", "plan"], &[]);
    assert_inert(&output);
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let names: Vec<&str> = plan["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(names.contains(&FORGING_NAME), "{names:?}");
}

#[test]
fn build_dry_run_prints_hostile_names_inert() {
    let repo = hostile_repo();
    let output = buildopt(repo.path(), &["build", "--dry-run"], &[]);
    assert_inert(&output);
    let github = buildopt(
        repo.path(),
        &["build", "--dry-run"],
        &[("GITHUB_ACTIONS", "true")],
    );
    assert_inert(&github);
}

/// A store as a restored cache folder could hold it: one expired entry with hostile name and tag.
fn write_hostile_store(dir: &Path) {
    let store = dir.join(".build_cache");
    std::fs::create_dir_all(&store).expect("store");
    let index = serde_json::json!({
        "version": 2,
        "images": [{
            "name": "evil\n::add-mask::x\u{1b}]0;t\u{7}",
            "tags": ["evil:\n::error::tag\u{9b}31m"],
            "config": format!("sha256:{}", "0".repeat(64)),
            "layers": [],
            "diff_ids": [],
            "last_used": 1,
            "size": 1
        }],
        "builds": []
    });
    std::fs::write(store.join("index.json"), index.to_string()).expect("index");
}

#[test]
fn cache_cleanup_and_stats_print_hostile_entries_and_paths_inert() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The checkout's own path is printed too (the store lives in it).
    let work = dir.path().join("ws\n::error::dir\u{1b}]0;x\u{7}");
    std::fs::create_dir(&work).expect("work dir");
    write_hostile_store(&work);
    let stats = buildopt(&work, &["cache", "stats"], &[]);
    assert_eq!(stats.status.code(), Some(0), "{stats:?}");
    assert_inert(&stats);
    let cleanup = buildopt(&work, &["cache", "cleanup"], &[]);
    assert_eq!(cleanup.status.code(), Some(0), "{cleanup:?}");
    assert_inert(&cleanup);
    let stdout = String::from_utf8_lossy(&cleanup.stdout);
    assert!(
        stdout.contains("evil\\n::add-mask::x\\x1b]0;t\\x07"),
        "{stdout}"
    );
    write_hostile_store(&work);
    let json = buildopt(&work, &["--format", "json", "cache", "cleanup"], &[]);
    assert_inert(&json);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
    assert_eq!(
        value["images_removed"][0], "evil\n::add-mask::x\u{1b}]0;t\u{7}",
        "{value}"
    );
}
