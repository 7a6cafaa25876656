//! `buildopt scan` matching a real image against OSV records end to end: the Debian test image
//! (tests/testbed/make-scan-images.sh) and the records of tests/fixtures/scan/osv (real ones,
//! e.g. pip 23.0.1 affected by CVE-2023-5752, fixed in 23.3; and written ones under `written/`,
//! e.g. a high CVE-2099-1001 on the util-linux source package), through the ignore file, the
//! report level and the gate.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::build::daemon_available;
use crate::cli::buildopt;

const IMAGE: &str = "buildopt-scan/debian-apps:test";

fn records() -> String {
    format!("{}/tests/fixtures/scan/osv", env!("CARGO_MANIFEST_DIR"))
}

fn image_present(test: &str) -> bool {
    if !daemon_available(test) {
        return false;
    }
    let present = std::process::Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    crate::skips::require(present, test, IMAGE, "tests/testbed/make-scan-images.sh")
}

fn scan(dir: &Path, args: &[&str]) -> Output {
    let cache = dir.join("cache").to_string_lossy().into_owned();
    let mut all = vec!["scan", "--image", IMAGE];
    all.extend(args);
    buildopt(dir, &all, &[("XDG_CACHE_HOME", cache.as_str())])
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn findings(report: &Value) -> Vec<(String, String, String)> {
    report["images"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (text("id"), text("package"), text("installed_version"))
        })
        .collect()
}

#[test]
fn a_real_image_matched_against_real_records_gives_the_one_affected_package() {
    if !image_present("a_real_image_matched_against_real_records_gives_the_one_affected_package") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = records();
    let output = scan(dir.path(), &["--db", &db, "--output", "json"]);
    // High findings fail the default gate (critical and high).
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    let found = findings(&report);
    assert!(
        found.contains(&("CVE-2023-5752".into(), "pip".into(), "23.0.1".into())),
        "{found:?}"
    );
    // The Debian record names the source package: each installed binary of it is a finding.
    for binary in ["bsdutils", "libblkid1", "libmount1", "mount", "util-linux"] {
        assert!(
            found
                .iter()
                .any(|(id, package, _)| id == "CVE-2099-1001" && package == binary),
            "{binary}: {found:?}"
        );
    }
    let pip = report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["package"] == "pip")
        .unwrap()
        .clone();
    assert_eq!(pip["type"], "pypi");
    assert_eq!(pip["fixed_version"], "23.3");
    assert_eq!(pip["severity"], "medium");
    assert_eq!(pip["fails_gate"], false);
    let aliases = pip["aliases"].as_array().unwrap();
    assert!(aliases.iter().any(|a| a == "PYSEC-2023-228"), "{aliases:?}");
    assert_eq!(report["images"][0]["vulnerabilities"]["scanned"], true);

    // Reported at level high, the medium findings are left out and counted.
    let output = scan(
        dir.path(),
        &["--db", &db, "--output", "json", "--level", "high"],
    );
    let report = json(&output);
    assert!(
        !findings(&report)
            .iter()
            .any(|(_, package, _)| package == "pip")
    );
    assert!(
        report["images"][0]["vulnerabilities"]["below_level"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[test]
fn an_ignore_entry_hides_a_finding_until_it_expires() {
    if !image_present("an_ignore_entry_hides_a_finding_until_it_expires") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = records();
    std::fs::write(
        dir.path().join(".buildoptignore"),
        "[[ignore]]\nid = \"GHSA-mq26-g339-26xf\"\nreason = \"pip is not run in the image\"\nexpires = \"2999-12-31\"\n",
    )
    .unwrap();
    let pip = |report: &Value| {
        findings(report)
            .into_iter()
            .filter(|(_, package, _)| package == "pip")
            .count()
    };
    let report = json(&scan(dir.path(), &["--db", &db, "--output", "json"]));
    assert_eq!(pip(&report), 0, "ignored by an alias");
    assert_eq!(report["images"][0]["vulnerabilities"]["ignored"], 1);

    std::fs::write(
        dir.path().join(".buildoptignore"),
        "[[ignore]]\nid = \"CVE-2023-5752\"\nreason = \"pip is not run in the image\"\nexpires = \"2020-01-01\"\n",
    )
    .unwrap();
    let output = scan(dir.path(), &["--db", &db, "--output", "json"]);
    let report = json(&output);
    assert_eq!(
        pip(&report),
        1,
        "an expired entry hides nothing: {:?}",
        findings(&report)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("expired"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn without_a_database_a_gate_exits_4_and_the_report_says_not_scanned() {
    if !image_present("without_a_database_a_gate_exits_4_and_the_report_says_not_scanned") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = scan(dir.path(), &["--output", "json"]);
    assert_eq!(output.status.code(), Some(4));
    let report = json(&output);
    assert_eq!(report["images"][0]["vulnerabilities"]["scanned"], false);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no vulnerability database"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
