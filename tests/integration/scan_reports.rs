//! The findings renderers against their consumers' own checks: the SARIF through the SARIF
//! Multitool with GitHub's rules (`validate --rule-kind Gh`) and its default SARIF rules, the
//! GitLab container-scanning report through `check-jsonschema` against GitLab's 15.0.7 schema
//! (kept in `tests/fixtures/scan/gitlab/`), the JUnit XML through quick-xml. The input is
//! `tests/fixtures/scan/findings-report.json`, as given and with hostile package names. In CI a
//! missing validator fails the test (`tests/testbed/install-peers.sh` installs them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use buildopt::report::gitlab_container_scanning::container_scanning;
use buildopt::report::scan_fixtures::gitlab_scan;
use buildopt::report::scan_junit::junit;
use buildopt::report::scan_sarif::{ConfiguredImage, ImageAnchor, SarifContext, sarif};
use buildopt::scan::model::ScanReport;
use serde_json::Value;

use crate::support::required_tool;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scan");

fn report() -> ScanReport {
    let text = std::fs::read_to_string(format!("{FIXTURES}/findings-report.json"))
        .expect("findings fixture");
    serde_json::from_str(&text).expect("a scan report")
}

/// The fixture with names and summaries a hostile image could carry.
fn hostile_report() -> ScanReport {
    let mut report = report();
    let nasty = "a b/c:d#e?f%20<script>|`x`\r\n@channel ü";
    for finding in &mut report.images[0].findings {
        finding.package = format!("{}{nasty}", finding.package);
        finding.path = format!("{}/{nasty}", finding.path);
        finding.summary = Some(format!("{nasty} \u{1b}[31m"));
    }
    report.images[0].image = "registry.example.com:5000/acme/api:1.4.2".into();
    report
}

fn sarif_of(report: &ScanReport) -> String {
    let anchors = BTreeMap::from([(
        "registry.example.com/acme/api".to_string(),
        ImageAnchor {
            dockerfile: "api/Dockerfile".into(),
            from_line: Some(2),
        },
    )]);
    let configured = vec![ConfiguredImage {
        image: "registry.example.com/acme/cron:latest".into(),
        platform: Some("linux/amd64".into()),
    }];
    let context = SarifContext {
        tool_version: "0.1.0",
        anchors: &anchors,
        configured: &configured,
    };
    sarif(report, &context)
}

/// The SARIF Multitool's executable: next to the npm package's `bin.js` shim when it is there
/// (the shim runs it through a shell), else the shim.
fn multitool(shim: &Path) -> PathBuf {
    std::fs::canonicalize(shim)
        .ok()
        .and_then(|real| real.parent().map(|dir| dir.join("Sarif.Multitool")))
        .filter(|exe| exe.is_file())
        .unwrap_or_else(|| shim.to_path_buf())
}

/// The Multitool's findings of level error or warning (SARIF's default level) on `file`.
fn multitool_complaints(tool: &Path, file: &Path, rule_kind: Option<&str>) -> Vec<String> {
    let out = file.with_extension("validation.sarif");
    let mut command = Command::new(tool);
    command.arg("validate").arg(file).arg("-o").arg(&out);
    if let Some(kind) = rule_kind {
        command.args(["--rule-kind", kind]);
    }
    let output = command.output().expect("run the SARIF Multitool");
    assert!(
        output.status.success(),
        "Sarif.Multitool validate failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("validation log"))
        .expect("validation log is JSON");
    log["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|run| run["results"].as_array().cloned().unwrap_or_default())
        .filter(|result| {
            let level = result["level"].as_str().unwrap_or("warning");
            level == "error" || level == "warning"
        })
        .map(|result| format!("{} {}", result["ruleId"], result["message"]))
        .collect()
}

#[test]
fn scan_reports_sarif_passes_the_multitool_with_githubs_rules() {
    let test = "SARIF Multitool on the findings SARIF";
    let Some(shim) = required_tool("sarif-multitool-linux", test) else {
        return;
    };
    let tool = multitool(&shim);
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, report) in [("findings", report()), ("hostile", hostile_report())] {
        let file = dir.path().join(format!("{name}.sarif"));
        std::fs::write(&file, sarif_of(&report)).expect("write SARIF");
        let github = multitool_complaints(&tool, &file, Some("Gh"));
        assert!(github.is_empty(), "{name}: GitHub rules: {github:#?}");
        std::fs::remove_file(file.with_extension("validation.sarif")).expect("remove log");
        let sarif = multitool_complaints(&tool, &file, None);
        assert!(sarif.is_empty(), "{name}: SARIF rules: {sarif:#?}");
    }
    // The check bites: a rule without help is an error under GitHub's rules.
    let mut log: Value = serde_json::from_str(&sarif_of(&report())).expect("JSON");
    if let Some(rule) = log["runs"][0]["tool"]["driver"]["rules"][0].as_object_mut() {
        rule.remove("help");
    }
    let broken = dir.path().join("broken.sarif");
    std::fs::write(&broken, log.to_string()).expect("write");
    assert!(!multitool_complaints(&tool, &broken, Some("Gh")).is_empty());
}

fn gitlab_of(report: &ScanReport) -> String {
    container_scanning(report, &gitlab_scan())
}

fn schema_check(checker: &Path, file: &Path) -> std::process::Output {
    let schema = format!("{FIXTURES}/gitlab/container-scanning-report-format-15.0.7.json");
    Command::new(checker)
        .arg("--schemafile")
        .arg(schema)
        .arg(file)
        .output()
        .expect("run check-jsonschema")
}

#[test]
fn scan_reports_gitlab_report_validates_against_the_15_0_7_schema() {
    let test = "GitLab container-scanning report against its schema";
    let Some(checker) = required_tool("check-jsonschema", test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut scanned_only = report();
    scanned_only.images.truncate(3);
    for (name, report) in [
        ("findings", report()),
        ("hostile", hostile_report()),
        ("scanned", scanned_only),
    ] {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, gitlab_of(&report)).expect("write report");
        let out = schema_check(&checker, &file);
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The check bites: a lower-case severity and a time with a zone are refused.
    let mut doc: Value = serde_json::from_str(&gitlab_of(&report())).expect("JSON");
    doc["vulnerabilities"][0]["severity"] = "critical".into();
    doc["scan"]["end_time"] = "2026-12-06T21:00:09Z".into();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, doc.to_string()).expect("write");
    assert!(!schema_check(&checker, &broken).status.success());
}

#[test]
fn scan_reports_junit_is_well_formed_with_unique_case_names() {
    use quick_xml::Reader;
    use quick_xml::events::Event;

    for report in [report(), hostile_report()] {
        let xml = junit(&report);
        let mut reader = Reader::from_str(&xml);
        let mut cases = Vec::new();
        let mut failures = 0;
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                    "testcase" => {
                        let attribute = |key: &str| {
                            e.try_get_attribute(key)
                                .expect("attribute")
                                .map(|a| a.value.into_owned())
                                .unwrap_or_default()
                        };
                        cases.push((attribute("classname"), attribute("name")));
                    }
                    "failure" => failures += 1,
                    _ => {}
                },
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(cases.len(), report.images.len());
        assert_eq!(failures, 2, "api on both platforms fails the gate");
        let mut unique = cases.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), cases.len(), "unique (classname, name)");
        assert!(xml.len() < 30_000_000, "GitLab's limit per file");
    }
}
