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

/// `--output cyclonedx` is an SBOM first: with a database its `vulnerabilities` list the
/// findings and the gate decides the exit; without one it is the inventory alone, exit 0.
#[test]
fn cyclonedx_carries_the_vulnerabilities_when_a_database_is_there() {
    if !image_present("cyclonedx_carries_the_vulnerabilities_when_a_database_is_there") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = records();
    let matched = scan(dir.path(), &["--db", &db, "--output", "cyclonedx"]);
    assert_eq!(
        matched.status.code(),
        Some(3),
        "the high finding fails the gate"
    );
    let bom = json(&matched);
    let ids: Vec<&str> = bom["vulnerabilities"]
        .as_array()
        .expect("vulnerabilities")
        .iter()
        .filter_map(|v| v["id"].as_str())
        .collect();
    assert!(ids.contains(&"CVE-2099-1001"), "{ids:?}");

    let inventory = scan(dir.path(), &["--output", "cyclonedx"]);
    assert_eq!(inventory.status.code(), Some(0), "no database: no gate");
    let bom = json(&inventory);
    assert!(bom["components"].as_array().is_some_and(|c| !c.is_empty()));
    assert!(
        bom.get("vulnerabilities")
            .is_none_or(|v| v.as_array().is_some_and(Vec::is_empty)),
        "{}",
        bom["vulnerabilities"]
    );
}

/// The findings of one output format as (id, package, fails the gate).
type Listed = std::collections::BTreeSet<(String, String, bool)>;

fn listed_in_json(report: &Value) -> Listed {
    report["images"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (text("id"), text("package"), f["fails_gate"] == true)
        })
        .collect()
}

fn listed_in_sarif(log: &Value) -> Listed {
    log["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .flat_map(|run| run["results"].as_array().expect("results"))
        .map(|result| {
            let properties = &result["properties"];
            let fails = properties["failsGate"] == true;
            assert_eq!(
                result["level"] == "error",
                fails,
                "a result's level says whether it fails the gate: {result}"
            );
            (
                result["ruleId"].as_str().unwrap_or_default().to_owned(),
                properties["package"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                fails,
            )
        })
        .collect()
}

/// JUnit lists the failing findings in the test case's failure and the others in its output,
/// one per line starting with the id and the package.
fn listed_in_junit(xml: &str) -> Listed {
    let body_of = |open: &str, close: &str| -> String {
        match (xml.find(open), xml.find(close)) {
            (Some(start), Some(end)) => {
                let start = xml[start..].find('>').map_or(start, |at| start + at + 1);
                xml[start..end].to_owned()
            }
            _ => String::new(),
        }
    };
    let lines = |text: String, fails: bool| -> Vec<(String, String, bool)> {
        text.lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let id = words.next()?;
                let package = words.next()?;
                id.contains('-')
                    .then(|| (id.to_owned(), package.to_owned(), fails))
            })
            .collect()
    };
    let mut listed: Listed = lines(body_of("<failure", "</failure>"), true)
        .into_iter()
        .collect();
    listed.extend(lines(body_of("<system-out>", "</system-out>"), false));
    listed
}

/// Issue 17's end-to-end gate: with FAIL_ON_HIGH, an ignore entry covering the only high
/// issue of the Debian test image passes (exit 0) and the same entry past its expiry fails
/// (exit 3), with the same findings, and the same ones failing, in JSON, SARIF and JUnit.
#[test]
fn the_gate_follows_an_ignore_entry_and_its_expiry_in_every_output() {
    const DEBIAN: &str = "buildopt-scan/debian:test";
    if !image_present("the_gate_follows_an_ignore_entry_and_its_expiry_in_every_output") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = records();
    let cache = dir.path().join("cache").to_string_lossy().into_owned();
    let scan_to = |output: &str| -> (Option<i32>, String) {
        let file = dir.path().join(format!("out.{output}"));
        let file_arg = file.to_string_lossy().into_owned();
        let args = [
            "scan",
            "--image",
            DEBIAN,
            "--db",
            &db,
            "--output",
            output,
            "--output-file",
            &file_arg,
        ];
        let env = [("XDG_CACHE_HOME", cache.as_str()), ("FAIL_ON_HIGH", "true")];
        let ran = buildopt(dir.path(), &args, &env);
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{output}: {e}: {}", String::from_utf8_lossy(&ran.stderr)));
        (ran.status.code(), text)
    };
    let every_output = || -> (Vec<Option<i32>>, [Listed; 3]) {
        let (json_code, json_text) = scan_to("json");
        let (sarif_code, sarif_text) = scan_to("sarif");
        let (junit_code, junit_text) = scan_to("junit");
        let parse = |text: &str| serde_json::from_str::<Value>(text).expect("JSON");
        (
            vec![json_code, sarif_code, junit_code],
            [
                listed_in_json(&parse(&json_text)),
                listed_in_sarif(&parse(&sarif_text)),
                listed_in_junit(&junit_text),
            ],
        )
    };
    let ignore = |expires: &str| {
        std::fs::write(
            dir.path().join(".buildoptignore"),
            format!(
                "[[ignore]]\nid = \"CVE-2099-1001\"\nreason = \"util-linux's tools are not run\"\n\
                 expires = \"{expires}\"\n"
            ),
        )
        .unwrap();
    };

    ignore("2999-12-31");
    let (codes, [json, sarif, junit]) = every_output();
    assert_eq!(codes, [Some(0); 3]);
    assert!(
        !json.is_empty(),
        "the unknown-severity finding is still listed"
    );
    assert!(
        json.iter()
            .all(|(id, _, fails)| id != "CVE-2099-1001" && !fails),
        "{json:?}"
    );
    assert_eq!(sarif, json, "SARIF lists what JSON lists");
    assert_eq!(junit, json, "JUnit lists what JSON lists");

    ignore("2020-01-01");
    let (codes, [json, sarif, junit]) = every_output();
    assert_eq!(codes, [Some(3); 3]);
    let failing: Vec<_> = json.iter().filter(|(_, _, fails)| *fails).collect();
    assert!(
        failing.len() >= 2 && failing.iter().all(|(id, _, _)| id == "CVE-2099-1001"),
        "every binary of util-linux fails the gate: {json:?}"
    );
    assert_eq!(sarif, json, "SARIF lists what JSON lists");
    assert_eq!(junit, json, "JUnit lists what JSON lists");
}
