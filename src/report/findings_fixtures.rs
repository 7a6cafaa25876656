//! Test data for the findings renderers (SARIF, JUnit, GitLab): the scan report in
//! `tests/fixtures/scan/findings-report.json` (real advisories on real package versions, see the
//! README there), a hostile variant and a huge one.
//!
//! Every findings renderer snapshots the same report, so a change to the model shows in all.

use std::collections::BTreeMap;

use super::fixtures::HOSTILE;
use super::scan_sarif::{ConfiguredImage, ImageAnchor};
use crate::scan::model::{Finding, ScanReport, Severity};

/// Four images: `api` on two platforms (findings of every severity, from the base image and
/// from Dockerfile lines), `worker` (clean), `legacy` (not scanned: no database).
pub fn report() -> ScanReport {
    serde_json::from_str(include_str!(
        "../../tests/fixtures/scan/findings-report.json"
    ))
    .expect("the findings fixture is a scan report")
}

/// `api`'s Dockerfile and its `FROM` line.
pub fn anchors() -> BTreeMap<String, ImageAnchor> {
    BTreeMap::from([(
        "registry.example.com/acme/api".to_string(),
        ImageAnchor {
            dockerfile: "api/Dockerfile".into(),
            from_line: Some(2),
        },
    )])
}

/// The images the configuration builds: the report's, plus `cron`, which this run did not scan.
pub fn configured() -> Vec<ConfiguredImage> {
    let mut configured: Vec<ConfiguredImage> = report()
        .images
        .iter()
        .map(|i| ConfiguredImage {
            image: i.image.clone(),
            platform: i.platform.clone(),
        })
        .collect();
    configured.push(ConfiguredImage {
        image: "registry.example.com/acme/cron:latest".into(),
        platform: Some("linux/amd64".into()),
    });
    configured
}

/// The report with attacker-controlled text in every free-text field of the first finding and
/// in an image name.
pub fn hostile_report() -> ScanReport {
    let mut report = report();
    let image = &mut report.images[0];
    image.image = format!("registry.example.com/acme/api:{HOSTILE}");
    let finding = &mut image.findings[0];
    finding.package = format!("zlib1g{HOSTILE}");
    finding.installed_version = format!("1:1.2\u{1b}[31m{HOSTILE}");
    finding.summary = Some(format!("{HOSTILE}\u{0}\u{7}"));
    finding.aliases.push(HOSTILE.into());
    finding.path = format!("var/lib/{HOSTILE}");
    report
}

/// One image with `count` findings of every severity in turn.
pub fn many_findings(count: usize) -> ScanReport {
    let mut report = report();
    report.images.truncate(1);
    let template = report.images[0].findings[0].clone();
    let severities = [
        Severity::Unknown,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    report.images[0].findings = (0..count)
        .map(|i| Finding {
            id: format!("CVE-2026-{i:05}"),
            package: format!("pkg{}", i % 100),
            severity: severities[i % severities.len()],
            score: None,
            ..template.clone()
        })
        .collect();
    report
}
