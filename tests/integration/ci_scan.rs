//! `buildopt ci` matching what it built (issue 17, item 8) on the real daemon, as a GitHub
//! runner runs it: a push of the base commit records its build and findings; a pull request
//! that adds a vulnerable package lists that finding first in the sticky comment as new, uploads
//! the SARIF to the fake GitHub API and writes the GitLab report; run again, it reads no layer
//! and matches nothing (the stored findings of the same image id and database serve).
//!
//! The database is tests/fixtures/scan/osv installed with `scan --setup --db`; the image is
//! built from the Debian test image (tests/testbed/make-scan-images.sh), whose util-linux the
//! written record CVE-2099-1001 (high) affects; the pull request copies in a pip 23.0.1
//! `dist-info`, which CVE-2023-5752 (medium, the real record) affects.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::build::{Images, daemon_available, prefix, result_of};
use crate::ci::{Runner, TOKEN, read_json, text, uploaded_sarif};
use crate::cli::buildopt;
use crate::fake_api;
use crate::support::TestRepo;

const BASE_IMAGE: &str = "buildopt-scan/debian:test";

fn records() -> String {
    format!("{}/tests/fixtures/scan/osv", env!("CARGO_MANIFEST_DIR"))
}

fn base_image_present(test: &str) -> bool {
    if !daemon_available(test) {
        return false;
    }
    let present = std::process::Command::new("docker")
        .args(["image", "inspect", BASE_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    crate::skips::require(
        present,
        test,
        BASE_IMAGE,
        "tests/testbed/make-scan-images.sh",
    )
}

/// A GitHub runner whose vulnerability database folder holds the fixture records.
fn runner_with_database(repo: &TestRepo) -> (Runner, std::path::PathBuf) {
    let runner = Runner::new();
    let vulndb = runner.dir.path().join("vulndb");
    install_database(repo, &vulndb);
    (runner, vulndb)
}

/// The SARIF of the last upload the fake GitHub API took.
fn last_sarif_upload(forge: &fake_api::ForgeState) -> Value {
    let uploads = forge.sarif_uploads.lock().expect("uploads").clone();
    let last = uploads.last().expect("an upload to code scanning");
    serde_json::from_str(&uploaded_sarif(last)).expect("SARIF JSON")
}

/// Installs the fixture records as the database in `dir`.
fn install_database(repo: &TestRepo, dir: &Path) {
    let dir = dir.display().to_string();
    let output = buildopt(
        repo.path(),
        &["scan", "--setup", "--db", &records()],
        &[("BUILDOPT_VULNDB_DIR", dir.as_str())],
    );
    assert!(
        output.status.success(),
        "scan --setup --db: {}",
        text(&output)
    );
}

/// The fake GitHub API, and the variables of a run that publishes there and matches against
/// the database in `vulndb`. The server lives as long as the first value.
fn github_api(
    vulndb: &Path,
) -> (
    buildopt::notify::testserver::FakeServer,
    std::sync::Arc<buildopt::notify::fake_forge::ForgeState>,
    Vec<(String, String)>,
) {
    let (server, forge) = fake_api::fake_forge::start("github-actions[bot]");
    let extra = [
        ("BUILDOPT_VULNDB_DIR", vulndb.display().to_string()),
        ("GITHUB_API_URL", server.url()),
        ("GITHUB_TOKEN", TOKEN.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    (server, forge, extra)
}

/// A workspace of one image `app` (context `app/`) with `dockerfile`, committed.
fn app_repo(prefix: &str, dockerfile: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "buildopt.toml",
        &format!("[images.app]\ncontext = \"app\"\nimage = \"{prefix}/app\"\n"),
    );
    repo.write("app/Dockerfile", dockerfile);
    repo.write("app/marker", "base\n");
    repo.commit("the app");
    repo
}

/// `buildopt ci` for a push creating the branch at HEAD (no base: everything is built), with
/// `extra` variables.
fn first_push(runner: &Runner, repo: &TestRepo, extra: &[(String, String)]) -> Output {
    let payload = json!({"ref": "refs/heads/main", "before": "0".repeat(40),
        "after": repo.sha("HEAD"), "created": true, "forced": false,
        "repository": {"full_name": "acme/app", "default_branch": "main"}});
    runner.github(repo, "push", "refs/heads/main", &payload, extra, &[])
}

fn scan_of(report: &Value) -> &Value {
    let scan = &report["scan"];
    assert!(scan.is_object(), "the run scanned: {report}");
    scan
}

fn findings_of(scan: &Value) -> Vec<&Value> {
    scan["images"]
        .as_array()
        .expect("images")
        .iter()
        .flat_map(|image| image["findings"].as_array().expect("findings"))
        .collect()
}

fn finding<'a>(findings: &[&'a Value], id: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} among {findings:?}"))
}

#[test]
fn ci_scan_lists_new_findings_first_uploads_sarif_and_reuses_stored_findings() {
    let test = "ci_scan::new_findings_first";
    if !base_image_present(test) {
        return;
    }
    let prefix = prefix("ci-scan");
    let _images = Images(prefix.clone());
    let repo = app_repo(
        &prefix,
        &format!("FROM {BASE_IMAGE}\nCOPY marker /marker\n"),
    );
    let base = repo.sha("HEAD");
    let (runner, vulndb) = runner_with_database(&repo);
    let (_server, forge, extra) = github_api(&vulndb);

    // The push of the base commit: util-linux's high finding fails the default gate.
    let pushed = first_push(&runner, &repo, &extra);
    assert_eq!(pushed.status.code(), Some(3), "{}", text(&pushed));
    let report = read_json(&repo.path().join("buildopt-report.json"));
    let high = finding(&findings_of(scan_of(&report)), "CVE-2099-1001");
    assert_eq!(high["fails_gate"], true, "{high}");
    // The scan's JUnit, which GitLab and Jenkins record: the image's case fails on it.
    let junit = std::fs::read_to_string(repo.path().join("buildopt-scan-junit.xml"))
        .expect("the scan's JUnit");
    let failure = &junit[junit.find("<failure").expect("a failing case")..];
    assert!(
        failure[..failure.find("</failure>").expect("closed")].contains("CVE-2099-1001"),
        "{junit}"
    );

    // The pull request adds pip 23.0.1.
    repo.checkout_new("feature");
    repo.write(
        "app/Dockerfile",
        &format!(
            "FROM {BASE_IMAGE}\nCOPY marker /marker\n\
             COPY pip-23.0.1.dist-info /usr/lib/python3/dist-packages/pip-23.0.1.dist-info\n"
        ),
    );
    repo.write(
        "app/pip-23.0.1.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: pip\nVersion: 23.0.1\nSummary: The PyPA recommended tool\n",
    );
    repo.commit("feature: pip");
    let payload = json!({"number": 9, "pull_request": {"number": 9,
        "head": {"sha": repo.sha("HEAD"), "ref": "feature"},
        "base": {"sha": base, "ref": "main"}},
        "repository": {"full_name": "acme/app", "default_branch": "main"}});
    let pull_request = || {
        runner.github(
            &repo,
            "pull_request",
            "refs/pull/9/merge",
            &payload,
            &extra,
            &[],
        )
    };
    let first = pull_request();
    assert_eq!(first.status.code(), Some(3), "{}", text(&first));
    let report = read_json(&repo.path().join("buildopt-report.json"));
    assert_eq!(result_of(&report, "app"), "built");
    let scan = scan_of(&report);
    assert_eq!(scan["base"], base.as_str(), "{scan}");
    assert_eq!(scan["findings_reused"], 0);
    assert!(scan["images_matched"].as_u64() >= Some(1), "{scan}");
    let findings = findings_of(scan);
    let pip = finding(&findings, "CVE-2023-5752");
    assert_eq!(pip["new"], true, "{pip}");
    assert_eq!(pip["package"], "pip");
    assert_eq!(pip["dockerfile"]["path"], "app/Dockerfile");
    assert_eq!(pip["dockerfile"]["line"], 3);
    assert_eq!(finding(&findings, "CVE-2099-1001")["new"], false);

    // The comment lists the new finding before the old one.
    let comments = forge.comments();
    let body = &comments.last().expect("the sticky comment").body;
    let new_at = body
        .find("CVE-2023-5752")
        .expect("the new finding in the comment");
    let old_at = body
        .find("CVE-2099-1001")
        .expect("the old finding in the comment");
    assert!(new_at < old_at, "new findings first:\n{body}");

    // The findings went to code scanning, placed on the Dockerfile line.
    let sarif = last_sarif_upload(&forge);
    let result = sarif["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["ruleId"] == "CVE-2023-5752")
        .unwrap_or_else(|| panic!("pip's result: {sarif}"))
        .clone();
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "app/Dockerfile");
    assert_eq!(location["region"]["startLine"], 3);
    let written: Value = read_json(&repo.path().join("buildopt-scan.sarif"));
    assert_eq!(written, sarif);
    let gitlab = read_json(&repo.path().join("gl-container-scanning-report.json"));
    assert!(
        gitlab["vulnerabilities"]
            .as_array()
            .expect("vulnerabilities")
            .iter()
            .any(|v| v["identifiers"].to_string().contains("CVE-2023-5752")),
        "{gitlab}"
    );
    let outputs = runner.outputs();
    assert_eq!(
        outputs.get("scan-sarif").map(String::as_str),
        Some(
            repo.path()
                .join("buildopt-scan.sarif")
                .to_str()
                .expect("utf-8")
        ),
        "{outputs:?}"
    );

    // Again: the image is reused, its stored findings serve: no layer read, nothing matched.
    let second = pull_request();
    assert_eq!(second.status.code(), Some(3), "{}", text(&second));
    let report = read_json(&repo.path().join("buildopt-report.json"));
    assert_eq!(result_of(&report, "app"), "reused");
    let scan = scan_of(&report);
    assert_eq!(scan["layers_read"], 0, "{scan}");
    assert_eq!(scan["images_matched"], 0, "{scan}");
    assert_eq!(scan["findings_reused"], 1, "{scan}");
    let findings = findings_of(scan);
    assert_eq!(finding(&findings, "CVE-2023-5752")["new"], true);
    assert_eq!(finding(&findings, "CVE-2099-1001")["new"], false);
}

#[test]
fn ci_scan_matches_an_unchanged_image_again_when_the_database_changed() {
    let test = "ci_scan::unchanged_after_a_new_database";
    if !base_image_present(test) {
        return;
    }
    let prefix = prefix("ci-scan-unchanged");
    let _images = Images(prefix.clone());
    let repo = TestRepo::new();
    let mut toml = String::new();
    for name in ["app", "other"] {
        toml.push_str(&format!(
            "[images.{name}]\ncontext = \"{name}\"\nimage = \"{prefix}/{name}\"\n"
        ));
        repo.write(
            &format!("{name}/Dockerfile"),
            &format!("FROM {BASE_IMAGE}\nCOPY marker /marker\n"),
        );
        repo.write(&format!("{name}/marker"), &format!("{name}\n"));
    }
    repo.write("buildopt.toml", &toml);
    repo.commit("two images");
    let base = repo.sha("HEAD");
    let (runner, vulndb) = runner_with_database(&repo);
    let (_server, forge, extra) = github_api(&vulndb);
    let pushed = first_push(&runner, &repo, &extra);
    assert_eq!(pushed.status.code(), Some(3), "{}", text(&pushed));

    // The database grows by a record (a new version); the pull request changes `app` only.
    let grown = runner.dir.path().join("grown");
    let copied = std::process::Command::new("cp")
        .args(["-r", &records(), grown.to_str().expect("utf-8")])
        .status()
        .expect("cp");
    assert!(copied.success());
    std::fs::write(
        grown.join("written").join("EXTRA-2099-1.json"),
        r#"{"id": "EXTRA-2099-1", "modified": "2099-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "nothing-installed"},
              "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#,
    )
    .expect("extra record");
    let installed = buildopt(
        repo.path(),
        &["scan", "--setup", "--db", grown.to_str().expect("utf-8")],
        &[("BUILDOPT_VULNDB_DIR", vulndb.to_str().expect("utf-8"))],
    );
    assert!(installed.status.success(), "{}", text(&installed));
    repo.checkout_new("feature");
    repo.write("app/marker", "changed\n");
    repo.commit("feature: app changes");
    let payload = json!({"number": 4, "pull_request": {"number": 4,
        "head": {"sha": repo.sha("HEAD"), "ref": "feature"},
        "base": {"sha": base, "ref": "main"}},
        "repository": {"full_name": "acme/app", "default_branch": "main"}});
    let output = runner.github(
        &repo,
        "pull_request",
        "refs/pull/4/merge",
        &payload,
        &extra,
        &[],
    );
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let report = read_json(&repo.path().join("buildopt-report.json"));
    assert_eq!(result_of(&report, "app"), "built");
    assert_ne!(result_of(&report, "other"), "built");

    // `other` was not built: its inventory from the scan cache was matched against the new
    // database, and its run in the upload keeps its findings (an empty run would close them).
    let scan = scan_of(&report);
    let unchanged = scan["unchanged"].as_array().expect("unchanged images");
    let other = unchanged
        .iter()
        .find(|image| {
            image["image"]
                .as_str()
                .is_some_and(|i| i.contains("/other:"))
        })
        .unwrap_or_else(|| panic!("other among the unchanged images: {scan}"));
    assert!(
        other["findings"].to_string().contains("CVE-2099-1001"),
        "{other}"
    );
    let sarif = last_sarif_upload(&forge);
    let run = sarif["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|run| {
            run["automationDetails"]["id"]
                .as_str()
                .is_some_and(|id| id.contains("/other/"))
        })
        .unwrap_or_else(|| panic!("a run for other: {sarif}"));
    assert!(
        run["results"].to_string().contains("CVE-2099-1001"),
        "{run}"
    );
}

/// A built image, and a reused one that the scan cache does not know (a new scan cache here; on
/// a runner, one the CI cache lost), are read from the layer store's blobs, not saved from the
/// daemon.
#[test]
fn ci_scan_reads_a_reused_image_from_the_layer_store() {
    let test = "ci_scan::from_the_layer_store";
    if !base_image_present(test) {
        return;
    }
    let prefix = prefix("ci-scan-store");
    let _images = Images(prefix.clone());
    let repo = app_repo(
        &prefix,
        &format!("FROM {BASE_IMAGE}\nCOPY marker /marker\n"),
    );
    let (runner, vulndb) = runner_with_database(&repo);
    let with_scan_cache = |name: &str| -> Vec<(String, String)> {
        vec![
            ("BUILDOPT_VULNDB_DIR".into(), vulndb.display().to_string()),
            (
                "BUILDOPT_SCAN_CACHE_DIR".into(),
                runner.dir.path().join(name).display().to_string(),
            ),
        ]
    };
    let built = first_push(&runner, &repo, &with_scan_cache("scan-a"));
    assert_eq!(built.status.code(), Some(3), "{}", text(&built));
    let report = read_json(&repo.path().join("buildopt-report.json"));
    // The run saved what it built in the store before scanning: no `docker save` at all.
    assert_eq!(scan_of(&report)["images_from_store"], 1, "{report}");

    let again = first_push(&runner, &repo, &with_scan_cache("scan-b"));
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    let report = read_json(&repo.path().join("buildopt-report.json"));
    assert_eq!(result_of(&report, "app"), "reused");
    let scan = scan_of(&report);
    assert_eq!(scan["images_from_store"], 1, "{scan}");
    assert!(scan["layers_read"].as_u64() > Some(0), "{scan}");
    let findings = findings_of(scan);
    assert_eq!(finding(&findings, "CVE-2099-1001")["fails_gate"], true);
}

#[test]
fn ci_scan_without_a_database_and_with_a_gate_exits_4_and_says_not_scanned() {
    let test = "ci_scan::no_database";
    if !base_image_present(test) {
        return;
    }
    let prefix = prefix("ci-scan-nodb");
    let _images = Images(prefix.clone());
    let repo = app_repo(&prefix, &format!("FROM {BASE_IMAGE}\n"));
    let runner = Runner::new();
    let empty = runner.dir.path().join("no-database");
    let extra = [(
        "BUILDOPT_VULNDB_DIR".to_string(),
        empty.display().to_string(),
    )];
    let output = first_push(&runner, &repo, &extra);
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    let report = read_json(&repo.path().join("buildopt-report.json"));
    let image = &scan_of(&report)["images"][0];
    assert_eq!(image["vulnerabilities"]["scanned"], false, "{image}");
    assert!(
        !repo.path().join("buildopt-scan.sarif").exists(),
        "no SARIF without a database: an empty one would close the alerts"
    );
    let summary = std::fs::read_to_string(runner.summary_file()).expect("summary");
    assert!(summary.contains("not scanned"), "{summary}");
    let junit = std::fs::read_to_string(repo.path().join("buildopt-scan-junit.xml"))
        .expect("the scan's JUnit");
    assert!(
        junit.contains("<skipped") && junit.contains("not scanned"),
        "{junit}"
    );

    // The gates off, the run passes; the report still says it was not scanned.
    let mut off = extra.to_vec();
    off.push(("BUILDOPT_FAIL_ON_CRITICAL".into(), "false".into()));
    off.push(("BUILDOPT_FAIL_ON_HIGH".into(), "false".into()));
    let output = first_push(&runner, &repo, &off);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}
