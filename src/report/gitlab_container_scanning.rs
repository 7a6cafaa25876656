//! GitLab's container-scanning report (`gl-container-scanning-report.json`, attached under
//! `artifacts:reports:container_scanning`), schema 15.x: one vulnerability per finding in each
//! image and platform.
//!
//! Owns the document and its field rules: times without a timezone, title-case severities, a
//! stable `id` per finding (a UUID from its identity, so GitLab tracks it across pipelines), at
//! least one identifier (the issue's own id first: GitLab's primary identifier), names within
//! 255 characters. GitLab ingests only reports that validate against the schema named by
//! `version`; `tests/fixtures/scan/gitlab/` keeps that schema for the tests.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::report::escape::shorten;
use crate::report::scan_sarif::osv_link;
use crate::scan::model::{Finding, ImageInventory, ScanReport, Severity};
use crate::workspace::repository_of;

/// The schema version written: the one GitLab's own analyzers and Trivy's template emit, which
/// every GitLab release since 15.x accepts.
pub const SCHEMA_VERSION: &str = "15.0.7";

/// The scanner (and analyzer) id.
pub const SCANNER_ID: &str = "buildopt";

/// The schema's limits on `name`, `solution` and `description`.
const MAX_NAME: usize = 255;
const MAX_SOLUTION: usize = 7_000;
const MAX_DESCRIPTION: usize = 1_048_576;

/// What the report needs beside the findings: buildopt's version and the scan's times (the
/// renderer reads no clock).
#[derive(Debug, Clone, Copy)]
pub struct GitlabScan<'a> {
    pub tool_version: &'a str,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
}

/// The report for `report`, as pretty JSON.
pub fn container_scanning(report: &ScanReport, scan: &GitlabScan<'_>) -> String {
    serde_json::to_string_pretty(&document(report, scan))
        .expect("a container-scanning report always serialises")
}

/// The report as a value.
pub fn document(report: &ScanReport, scan: &GitlabScan<'_>) -> Document {
    let messages: Vec<Message> = report
        .images
        .iter()
        .filter(|image| !is_scanned(image))
        .map(|image| Message {
            level: "warn",
            value: format!(
                "{}: not scanned: {}",
                case(image),
                not_scanned_reason(image)
            ),
        })
        .collect();
    let scanner = Scanner {
        id: SCANNER_ID,
        name: "buildopt",
        version: scan.tool_version.to_owned(),
        url: env!("CARGO_PKG_REPOSITORY"),
        vendor: Vendor { name: "buildopt" },
    };
    Document {
        version: SCHEMA_VERSION,
        scan: Scan {
            analyzer: scanner.clone(),
            scanner,
            kind: "container_scanning",
            start_time: gitlab_time(scan.start_time),
            end_time: gitlab_time(scan.end_time),
            // A report that cannot vouch for every image must not read as a clean scan.
            status: if messages.is_empty() {
                "success"
            } else {
                "failure"
            },
            messages,
        },
        vulnerabilities: report
            .images
            .iter()
            .flat_map(|image| image.findings.iter().map(move |f| vulnerability(image, f)))
            .collect(),
        remediations: Vec::new(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC: the schema's pattern has no timezone.
pub fn gitlab_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn is_scanned(image: &ImageInventory) -> bool {
    image.vulnerabilities.as_ref().is_some_and(|s| s.scanned)
}

fn not_scanned_reason(image: &ImageInventory) -> String {
    image
        .vulnerabilities
        .as_ref()
        .and_then(|s| s.reason.clone())
        .unwrap_or_else(|| "not matched against vulnerability data".into())
}

fn case(image: &ImageInventory) -> String {
    match &image.platform {
        Some(platform) => format!("{} ({platform})", image.image),
        None => image.image.clone(),
    }
}

fn vulnerability(image: &ImageInventory, finding: &Finding) -> Vulnerability {
    let name = finding
        .summary
        .clone()
        .unwrap_or_else(|| format!("{} in {}", finding.id, finding.package));
    Vulnerability {
        id: stable_id(image, finding),
        name: shorten(&name, MAX_NAME),
        description: shorten(&description(image, finding), MAX_DESCRIPTION),
        severity: title_case(finding.severity),
        solution: shorten(&solution(finding), MAX_SOLUTION),
        identifiers: identifiers(finding),
        links: vec![Link {
            name: Some("OSV".into()),
            url: osv_link(&finding.id),
        }],
        location: Location {
            dependency: Dependency {
                package: Package {
                    name: finding.package.clone(),
                },
                version: finding.installed_version.clone(),
            },
            operating_system: operating_system(image),
            image: non_empty(&image.image),
        },
    }
}

/// A UUID (version 8: custom) from SHA-256 of what identifies the finding: image repository
/// (no tag: the next build is the same image) and platform, package type, name, version and
/// path, and the issue id.
fn stable_id(image: &ImageInventory, finding: &Finding) -> String {
    let mut hasher = Sha256::new();
    for part in [
        repository_of(&image.image).as_str(),
        image.platform.as_deref().unwrap_or(""),
        finding.kind.as_str(),
        &finding.package,
        &finding.installed_version,
        &finding.path,
        &finding.id,
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

fn description(image: &ImageInventory, finding: &Finding) -> String {
    let mut text = String::new();
    if let Some(summary) = &finding.summary {
        text.push_str(summary);
        text.push_str("\n\n");
    }
    let fixed = finding.fixed_version.as_deref().unwrap_or("no fix yet");
    text.push_str(&format!(
        "{} {} ({}) in {} has {} ({}",
        finding.package,
        finding.installed_version,
        finding.kind.as_str(),
        case(image),
        finding.id,
        finding.severity.as_str()
    ));
    if let Some(score) = finding.score {
        text.push_str(&format!(", CVSS {score:.1}"));
    }
    text.push_str(&format!("); fixed in: {fixed}."));
    match (&finding.dockerfile, &finding.base_image) {
        (Some(line), _) => {
            text.push_str(&format!(" Installed by {} line {}.", line.path, line.line))
        }
        (None, Some(base)) => text.push_str(&format!(" From the base image {base}.")),
        (None, None) => {}
    }
    if finding.fails_gate {
        text.push_str(" This finding fails the gate.");
    }
    text
}

/// The schema wants a non-empty image name.
fn non_empty(text: &str) -> String {
    if text.trim().is_empty() {
        "unknown".into()
    } else {
        text.to_owned()
    }
}

fn solution(finding: &Finding) -> String {
    match &finding.fixed_version {
        Some(version) => format!("Upgrade {} to {version}", finding.package),
        None => "No fix yet".into(),
    }
}

fn title_case(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "Critical",
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low => "Low",
        Severity::Unknown => "Unknown",
    }
}

/// The id first (GitLab's primary identifier), then its aliases; `unknown` for a
/// finding without any, since the schema wants at least one.
fn identifiers(finding: &Finding) -> Vec<Identifier> {
    let identifiers: Vec<Identifier> = std::iter::once(&finding.id)
        .chain(&finding.aliases)
        .filter(|id| !id.trim().is_empty())
        .map(|id| identifier(id))
        .collect();
    if identifiers.is_empty() {
        return vec![identifier("unknown")];
    }
    identifiers
}

/// An identifier typed by its prefix: `cve`, `ghsa`, else `osv` (OSV knows every id buildopt
/// reports).
fn identifier(id: &str) -> Identifier {
    let (kind, url) = if id.starts_with("CVE-") {
        (
            "cve",
            format!("https://www.cve.org/CVERecord?id={}", url_component(id)),
        )
    } else if id.starts_with("GHSA-") {
        (
            "ghsa",
            format!("https://github.com/advisories/{}", url_component(id)),
        )
    } else {
        ("osv", osv_link(id))
    };
    Identifier {
        kind,
        name: id.to_owned(),
        value: id.to_owned(),
        url,
    }
}

/// Ids are `[A-Za-z0-9-:.]` in practice; anything else is percent-encoded.
fn url_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `debian 12` from the os-release, else its pretty name, else `Unknown` (the schema wants a
/// non-empty string).
fn operating_system(image: &ImageInventory) -> String {
    let Some(os) = &image.os else {
        return "Unknown".into();
    };
    let words: Vec<&str> = [os.id.as_deref(), os.version_id.as_deref()]
        .into_iter()
        .flatten()
        .filter(|w| !w.trim().is_empty())
        .collect();
    if !words.is_empty() {
        return words.join(" ");
    }
    os.pretty_name
        .clone()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "Unknown".into())
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    pub version: &'static str,
    pub scan: Scan,
    pub vulnerabilities: Vec<Vulnerability>,
    pub remediations: Vec<()>,
}

/// `scan`.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    pub analyzer: Scanner,
    pub scanner: Scanner,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub start_time: String,
    pub end_time: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
}

/// `scan.analyzer` and `scan.scanner`: both buildopt.
#[derive(Debug, Clone, Serialize)]
pub struct Scanner {
    pub id: &'static str,
    pub name: &'static str,
    pub version: String,
    pub url: &'static str,
    pub vendor: Vendor,
}

/// `vendor`.
#[derive(Debug, Clone, Serialize)]
pub struct Vendor {
    pub name: &'static str,
}

/// `scan.messages[]`: images the report cannot speak for.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub level: &'static str,
    pub value: String,
}

/// `vulnerabilities[]`.
#[derive(Debug, Clone, Serialize)]
pub struct Vulnerability {
    pub id: String,
    pub name: String,
    pub description: String,
    pub severity: &'static str,
    pub solution: String,
    pub identifiers: Vec<Identifier>,
    pub links: Vec<Link>,
    pub location: Location,
}

/// `identifiers[]`: the first is GitLab's primary identifier.
#[derive(Debug, Clone, Serialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    pub value: String,
    pub url: String,
}

/// `links[]`.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub url: String,
}

/// `location`: the package in the image.
#[derive(Debug, Clone, Serialize)]
pub struct Location {
    pub dependency: Dependency,
    pub operating_system: String,
    pub image: String,
}

/// `location.dependency`.
#[derive(Debug, Clone, Serialize)]
pub struct Dependency {
    pub package: Package,
    pub version: String,
}

/// `location.dependency.package`.
#[derive(Debug, Clone, Serialize)]
pub struct Package {
    pub name: String,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::Value;

    use super::*;
    use crate::report::findings_fixtures::{hostile_report, report};
    use crate::report::scan_fixtures::gitlab_scan;

    fn render(report: &ScanReport) -> Value {
        serde_json::from_str(&container_scanning(report, &gitlab_scan())).expect("JSON")
    }

    #[test]
    fn one_vulnerability_per_finding_and_image_with_the_scan_block() {
        let text = container_scanning(&report(), &gitlab_scan());
        insta::assert_snapshot!(text);
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(doc["version"], "15.0.7");
        assert_eq!(doc["scan"]["type"], "container_scanning");
        assert_eq!(doc["scan"]["scanner"]["id"], "buildopt");
        assert_eq!(doc["scan"]["start_time"], "2026-12-06T21:00:05");
        assert_eq!(doc["scan"]["end_time"], "2026-12-06T21:00:09");
        assert_eq!(doc["scan"]["status"], "failure", "legacy was not scanned");
        assert_eq!(doc["scan"]["messages"][0]["level"], "warn");
        let vulnerabilities = doc["vulnerabilities"].as_array().expect("array");
        assert_eq!(vulnerabilities.len(), 9);
        let zlib = &vulnerabilities[0];
        assert_eq!(zlib["severity"], "Critical");
        assert_eq!(zlib["solution"], "No fix yet");
        assert_eq!(zlib["location"]["operating_system"], "debian 12");
        assert_eq!(
            zlib["location"]["image"],
            "registry.example.com/acme/api:1.4.2"
        );
        assert_eq!(zlib["location"]["dependency"]["package"]["name"], "zlib1g");
        assert_eq!(zlib["identifiers"][0]["type"], "cve");
        assert_eq!(zlib["identifiers"][0]["value"], "CVE-2023-45853");
        assert_eq!(zlib["identifiers"][1]["type"], "osv");
        let requests = vulnerabilities
            .iter()
            .find(|v| v["identifiers"][0]["value"] == "GHSA-9wx4-h78v-vm56")
            .expect("requests");
        assert_eq!(requests["identifiers"][0]["type"], "ghsa");
        assert_eq!(requests["identifiers"][1]["type"], "cve");
        assert_eq!(requests["solution"], "Upgrade requests to 2.32.0");
        assert_eq!(requests["severity"], "Medium");
        let unknown = vulnerabilities
            .iter()
            .find(|v| v["identifiers"][0]["value"] == "OSV-TEST-0001")
            .expect("unknown");
        assert_eq!(unknown["severity"], "Unknown");
        assert_eq!(unknown["name"], "OSV-TEST-0001 in left-pad");
    }

    #[test]
    fn ids_are_uuids_unique_and_stable_across_tags() {
        let before = render(&report());
        let mut retagged = report();
        for image in &mut retagged.images {
            image.image = format!("{}:2.0.0", repository_of(&image.image));
        }
        let after = render(&retagged);
        let ids = |doc: &Value| -> Vec<String> {
            doc["vulnerabilities"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(ids(&before), ids(&after));
        let mut unique = ids(&before);
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ids(&before).len(),
            "the two platforms differ too"
        );
        for id in ids(&before) {
            let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 8);
        }
    }

    #[test]
    fn a_fully_scanned_report_is_a_success_without_messages() {
        let mut report = report();
        report.images.truncate(3);
        let doc = render(&report);
        assert_eq!(doc["scan"]["status"], "success");
        assert!(doc["scan"].get("messages").is_none());
    }

    #[test]
    fn names_are_cut_to_255_characters_and_hostile_text_stays_data() {
        let mut report = hostile_report();
        report.images[0].findings[1].summary = Some("x".repeat(400));
        let doc = render(&report);
        let vulnerabilities = doc["vulnerabilities"].as_array().expect("array");
        assert_eq!(
            vulnerabilities[1]["name"]
                .as_str()
                .map(|n| n.chars().count()),
            Some(255)
        );
        assert!(
            vulnerabilities[0]["location"]["dependency"]["package"]["name"]
                .as_str()
                .is_some_and(|n| n.contains("</details><script>"))
        );
    }

    #[test]
    fn operating_system_falls_back_to_the_pretty_name_then_unknown() {
        let mut image = report().images[0].clone();
        assert_eq!(operating_system(&image), "debian 12");
        if let Some(os) = image.os.as_mut() {
            os.id = None;
            os.version_id = Some(" ".into());
        }
        assert_eq!(operating_system(&image), "Debian GNU/Linux 12 (bookworm)");
        image.os = None;
        assert_eq!(operating_system(&image), "Unknown");
    }

    #[test]
    fn a_finding_without_ids_or_image_name_still_has_what_the_schema_requires() {
        let mut report = report();
        report.images[0].image = String::new();
        let finding = &mut report.images[0].findings[0];
        finding.id = " ".into();
        finding.aliases.clear();
        let doc = render(&report);
        let first = &doc["vulnerabilities"][0];
        assert_eq!(first["identifiers"][0]["value"], "unknown");
        assert_eq!(first["location"]["image"], "unknown");
    }

    #[test]
    fn times_have_no_timezone() {
        let time = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("time");
        assert_eq!(gitlab_time(time), "2026-01-02T03:04:05");
    }
}
