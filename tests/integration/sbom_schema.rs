//! The SBOM renderers checked against the published schemas: the fixture inventory rendered as
//! CycloneDX 1.6 goes through cyclonedx-python-lib's strict JSON validator (it bundles the
//! CycloneDX schemas), and as SPDX 2.3 through `pyspdxtools -i` (spdx-tools parses the document
//! and validates it, licence expressions and relationships included). Each also renders the
//! fixture with hostile text in it, which must stay valid. CycloneDX is also checked with
//! vulnerabilities: the inventory with findings on its packages, the findings report (findings
//! without package components), and hostile text in a finding.
//!
//! The validators come from `tests/testbed/install-peers.sh`. A missing one fails the test when
//! `CI` is set; elsewhere the test prints a note and returns.

use std::path::Path;
use std::process::{Command, Output};

use buildopt::report::sbom_cyclonedx::cyclonedx;
use buildopt::report::sbom_spdx::spdx;
use buildopt::report::scan_fixtures::{inventory, with_findings};
use buildopt::scan::model::ScanReport;
use chrono::{DateTime, Utc};

use crate::skips::require;
use crate::support::required_tool;

/// Validates the CycloneDX file named by `argv[1]`; prints the first error and exits 1 when it
/// is invalid, or exits 3 when the library is missing.
const CYCLONEDX_CHECK: &str = r#"
import sys
try:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
except ImportError as missing:
    print(missing)
    sys.exit(3)
with open(sys.argv[1], encoding="utf-8") as bom:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom.read())
if error is not None:
    detail = getattr(error, "data", None)
    print(getattr(detail, "message", None) or str(error)[:4000])
    sys.exit(1)
"#;

/// The exit code of [`CYCLONEDX_CHECK`] when cyclonedx-python-lib is not installed.
const LIBRARY_MISSING: i32 = 3;

fn created() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-06T21:00:00Z")
        .expect("timestamp")
        .with_timezone(&Utc)
}

/// The fixture with text an image controls made hostile: quotes, line breaks, markup,
/// non-ASCII, a NUL, licences that are neither ids nor expressions, empty fields.
fn hostile() -> ScanReport {
    let mut report = inventory();
    let image = &mut report.images[0];
    image.image = "acme/\"api\"\n<b>:1.2 ünï".into();
    image.warnings[0].message = "line\r\nbreak \u{0} nul".into();
    let package = &mut image.packages[1];
    package.name = "../evil \"name\"\n{}".into();
    package.version = String::new();
    package.licenses = ["(((", "MIT OR", "LicenseRef-x", "", "GPL-2+", "MIT"]
        .map(String::from)
        .to_vec();
    if let Some(line) = package.dockerfile.as_mut() {
        line.stage = Some("stage \"x\"".into());
    }
    report
}

/// The inventory with findings, one of them with hostile text in every field a record controls
/// and an empty installed version.
fn hostile_findings() -> ScanReport {
    let mut report = with_findings();
    let finding = &mut report.images[0].findings[0];
    finding.id = "GHSA-\"x\"\n<b>{}".into();
    finding.aliases = vec![String::new(), "CVE \"y\"\r\n\u{0}".into()];
    finding.summary = Some("<script>\u{0}</script> ünï".into());
    finding.installed_version = String::new();
    finding.fixed_version = Some("\"".into());
    finding.fixed_versions = vec!["\"".into(), String::new()];
    report
}

/// The findings renderers' report: findings whose packages are not listed.
fn findings_report() -> ScanReport {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan/findings-report.json");
    let text = std::fs::read_to_string(&path).expect("read the findings report");
    serde_json::from_str(&text).expect("the findings report is a scan report")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write(dir: &Path, name: &str, content: &str) -> std::path::PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, content).expect("write the SBOM");
    file
}

#[test]
fn cyclonedx_of_the_fixture_inventory_is_valid_against_the_1_6_schema() {
    let test = "cyclonedx schema";
    let Some(python) = required_tool("python3", test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut one_image = inventory();
    one_image.images.truncate(1);
    let reports = [
        ("several.cdx.json", inventory()),
        ("one.cdx.json", one_image),
        ("hostile.cdx.json", hostile()),
        ("findings.cdx.json", with_findings()),
        ("findings-report.cdx.json", findings_report()),
        ("hostile-findings.cdx.json", hostile_findings()),
    ];
    for (name, report) in reports {
        let bom = cyclonedx(&report, "acme", created(), "0.1.0");
        let file = write(dir.path(), name, &bom);
        let output = Command::new(&python)
            .args(["-c", CYCLONEDX_CHECK])
            .arg(&file)
            .output()
            .expect("run python3");
        let installed = output.status.code() != Some(LIBRARY_MISSING);
        let what = "cyclonedx-python-lib (a python3 module)";
        if !require(installed, test, what, "tests/testbed/install-peers.sh") {
            return;
        }
        let outcome = text(&output);
        assert!(
            output.status.success(),
            "{name} is not valid CycloneDX 1.6:\n{outcome}"
        );
    }
}

#[test]
fn spdx_of_the_fixture_inventory_is_valid_spdx_2_3() {
    let test = "spdx schema";
    let Some(validator) = required_tool("pyspdxtools", test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, report) in [
        ("scan.spdx.json", inventory()),
        ("hostile.spdx.json", hostile()),
    ] {
        let document = spdx(&report, "acme", created(), "0.1.0");
        let file = write(dir.path(), name, &document);
        let output = Command::new(&validator)
            .arg("-i")
            .arg(&file)
            .output()
            .expect("run pyspdxtools");
        // pyspdxtools logs the issues and exits 1 on an invalid document.
        let outcome = text(&output);
        assert!(
            output.status.success(),
            "{name} is not valid SPDX 2.3:\n{outcome}"
        );
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(!log.contains("invalid"), "{name}: {outcome}");
    }
}
