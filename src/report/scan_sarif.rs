//! SARIF 2.1.0 of a scan's findings, for GitHub code scanning (and Jenkins' Warnings NG).
//!
//! Owns: one run per image and platform, each under its own category
//! (`buildopt/<repository>/<platform>/`), so one image's upload never closes another's alerts;
//! one rule per issue (help text, `security-severity`); one result per finding, on the
//! Dockerfile line that brought the package (base-image findings on the `FROM` line); stable
//! `partialFingerprints`; and GitHub's limits (20 runs, 25,000 results per run, the most severe
//! kept, what was left out said in the run's properties). No tag, digest or commit goes into a
//! URI, rule id, category or fingerprint: those change on every build and would churn alerts.
//!
//! Small serde structs of just what is written, rather than the `serde-sarif` crate, whose
//! model is generated from the whole schema at build time (schemafy, syn, typed-builder); the
//! SARIF Multitool checks the output in `tests/integration/scan_reports.rs`.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::notify::sarif::{MAX_RESULTS_PER_RUN, MAX_RUNS};
use crate::report::escape::{markdown_text, shorten};
use crate::scan::model::{Finding, ImageInventory, ScanReport, Severity};
use crate::scan::package::PackageType;
use crate::scan::severity::level_of_score;
use crate::workspace::repository_of;

/// The schema every log names.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// `tool.driver.name`: GitHub's tool filter.
pub const TOOL_NAME: &str = "buildopt";

/// GitHub's limit on rules per run (results are limited by [`MAX_RESULTS_PER_RUN`]).
pub const MAX_RULES_PER_RUN: usize = 25_000;

/// GitHub's limit on a rule's short and full descriptions.
const MAX_DESCRIPTION: usize = 1_024;

/// Where a configured image's findings can point in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageAnchor {
    /// The image's Dockerfile, from the workspace root.
    pub dockerfile: String,
    /// The line of the `FROM` the built stage chain starts from (the base image's), if known.
    pub from_line: Option<u32>,
}

/// An image and platform the configuration builds: each has a run in every upload, so a pull
/// request never shows a configuration as missing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfiguredImage {
    /// A reference to the image; only its repository counts.
    pub image: String,
    pub platform: Option<String>,
}

/// What the renderer needs beside the report.
#[derive(Debug, Clone, Copy)]
pub struct SarifContext<'a> {
    /// buildopt's version, as `tool.driver.version`.
    pub tool_version: &'a str,
    /// By image repository (no tag or digest).
    pub anchors: &'a BTreeMap<String, ImageAnchor>,
    /// Every configured image and platform; those the report lacks get an empty run.
    pub configured: &'a [ConfiguredImage],
}

/// The SARIF log of `report`, as pretty JSON.
pub fn sarif(report: &ScanReport, context: &SarifContext<'_>) -> String {
    to_json(&log(report, context))
}

/// A log as pretty JSON.
pub fn to_json(log: &Log) -> String {
    serde_json::to_string_pretty(log).expect("a SARIF log always serialises")
}

/// The SARIF log of `report`: one run per category (image repository and platform) among the
/// report's images, then an empty run for each configured image the report lacks.
pub fn log(report: &ScanReport, context: &SarifContext<'_>) -> Log {
    let mut runs: Vec<Run> = by_category(&report.images)
        .into_iter()
        .map(|group| {
            let anchor = context.anchors.get(&group.repository);
            group_run(&group, context.tool_version, anchor)
        })
        .collect();
    for configured in context.configured {
        let wanted = category(&configured.image, configured.platform.as_deref());
        if !runs.iter().any(|run| run.automation_details.id == wanted) {
            runs.push(empty_run(
                configured,
                context.tool_version,
                "not scanned in this run",
            ));
        }
    }
    let runs_left_out = keep_most_severe_runs(&mut runs);
    Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs,
        properties: (!runs_left_out.is_empty()).then(|| LogProperties {
            runs_left_out,
            note: format!(
                "over GitHub's limit of {MAX_RUNS} runs: the runs with the least severe \
                 results were left out"
            ),
        }),
    }
}

/// `buildopt/<repository>/<platform>/`: the same for every build of the image, whatever its
/// tag or digest. The trailing slash makes the whole id the category.
pub fn category(image: &str, platform: Option<&str>) -> String {
    let repository = repository_of(image);
    match platform {
        Some(platform) => format!("buildopt/{repository}/{platform}/"),
        None => format!("buildopt/{repository}/"),
    }
}

/// A run with no results for a configured image that was not scanned: GitHub keeps the
/// category and closes none of its alerts by mistake for a missing run.
pub fn empty_run(image: &ConfiguredImage, tool_version: &str, reason: &str) -> Run {
    Run {
        tool: tool(tool_version, Vec::new()),
        automation_details: AutomationDetails {
            id: category(&image.image, image.platform.as_deref()),
        },
        results: Vec::new(),
        column_kind: "utf16CodeUnits",
        properties: RunProperties {
            images: vec![image.image.clone()],
            platform: image.platform.clone(),
            scanned: false,
            not_scanned: Some(reason.to_owned()),
            database: None,
            results_left_out: 0,
            note: None,
        },
    }
}

/// The run of one image; `anchor` is where its Dockerfile and base image's `FROM` line are.
pub fn image_run(image: &ImageInventory, tool_version: &str, anchor: Option<&ImageAnchor>) -> Run {
    let group = Group {
        category: category(&image.image, image.platform.as_deref()),
        repository: repository_of(&image.image),
        platform: image.platform.clone(),
        images: vec![image],
    };
    group_run(&group, tool_version, anchor)
}

/// The images of one category: one image, or several tags of one repository and platform
/// (GitHub refuses two runs with one category in an upload, so they share a run).
struct Group<'a> {
    category: String,
    repository: String,
    platform: Option<String>,
    images: Vec<&'a ImageInventory>,
}

fn group_run(group: &Group<'_>, tool_version: &str, anchor: Option<&ImageAnchor>) -> Run {
    let images = &group.images;
    let mut findings: Vec<Located<'_>> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for image in images {
        let built_from = built_from(image);
        for finding in &image.findings {
            let place = place(finding, anchor, built_from);
            let fingerprint = fingerprint(&image.image, finding);
            if seen.insert(fingerprint.clone()) {
                findings.push(Located {
                    image,
                    finding,
                    place,
                    fingerprint,
                });
            }
        }
    }
    findings.sort_by(|a, b| most_severe_first(a.finding, b.finding));
    let results_left_out = findings.len().saturating_sub(MAX_RESULTS_PER_RUN);
    findings.truncate(MAX_RESULTS_PER_RUN);
    let rules = rules(&findings);
    let index: BTreeMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, rule)| (rule.id.as_str(), i))
        .collect();
    let results = findings
        .iter()
        .filter_map(|located| {
            let rule_index = *index.get(located.finding.id.as_str())?;
            Some(result(located, rule_index))
        })
        .collect();
    let status = images.iter().find_map(|i| i.vulnerabilities.as_ref());
    let scanned = images.iter().any(|i| is_scanned(i));
    Run {
        tool: tool(tool_version, rules),
        automation_details: AutomationDetails {
            id: group.category.clone(),
        },
        results,
        column_kind: "utf16CodeUnits",
        properties: RunProperties {
            images: images.iter().map(|i| i.image.clone()).collect(),
            platform: group.platform.clone(),
            scanned,
            not_scanned: (!scanned).then(|| {
                status
                    .and_then(|s| s.reason.clone())
                    .unwrap_or_else(|| "not matched against vulnerability data".into())
            }),
            database: status.and_then(|s| s.database.clone()),
            results_left_out,
            note: (results_left_out > 0).then(|| {
                format!(
                    "{results_left_out} results over GitHub's limit of {MAX_RESULTS_PER_RUN} \
                     per run were left out, the least severe first"
                )
            }),
        },
    }
}

/// The report's images grouped by category, in the order each category first appears.
fn by_category(images: &[ImageInventory]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for image in images {
        let id = category(&image.image, image.platform.as_deref());
        match groups.iter_mut().find(|group| group.category == id) {
            Some(group) => group.images.push(image),
            None => groups.push(Group {
                category: id,
                repository: repository_of(&image.image),
                platform: image.platform.clone(),
                images: vec![image],
            }),
        }
    }
    groups
}

fn is_scanned(image: &ImageInventory) -> bool {
    image.vulnerabilities.as_ref().is_some_and(|s| s.scanned)
}

/// Keeps the [`MAX_RUNS`] runs whose worst result is the most severe (ties: the earlier) and
/// returns the categories of those left out.
fn keep_most_severe_runs(runs: &mut Vec<Run>) -> Vec<String> {
    if runs.len() <= MAX_RUNS {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(worst_level(&runs[i])));
    let mut keep = vec![false; runs.len()];
    for &i in order.iter().take(MAX_RUNS) {
        keep[i] = true;
    }
    let mut left_out = Vec::new();
    let mut flags = keep.into_iter();
    runs.retain(|run| {
        let kept = flags.next().unwrap_or(false);
        if !kept {
            left_out.push(run.automation_details.id.clone());
        }
        kept
    });
    left_out
}

fn worst_level(run: &Run) -> u8 {
    run.results
        .iter()
        .map(|r| match r.level {
            "error" => 3,
            "warning" => 2,
            _ => 1,
        })
        .max()
        .unwrap_or(0)
}

/// A finding with where it is shown and its fingerprint.
struct Located<'a> {
    image: &'a ImageInventory,
    finding: &'a Finding,
    place: Place,
    fingerprint: String,
}

/// A file and line in the repository (or, failing that, in the image).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    path: String,
    line: u32,
}

/// The Dockerfile the image was built from, when any layer records it.
fn built_from(image: &ImageInventory) -> Option<&str> {
    image
        .layers
        .iter()
        .find_map(|layer| layer.dockerfile.as_ref())
        .map(|line| line.path.as_str())
}

/// Where a finding is shown: its Dockerfile line; for a base-image package, the `FROM` line;
/// else line 1 of the image's Dockerfile; else the declaring file's path in the image (GitHub
/// then shows the alert without a file, but keeps it stable).
fn place(finding: &Finding, anchor: Option<&ImageAnchor>, built_from: Option<&str>) -> Place {
    if let Some(line) = &finding.dockerfile {
        return Place {
            path: line.path.clone(),
            line: line.line.max(1),
        };
    }
    if finding.base_image.is_some()
        && let Some(anchor) = anchor
        && let Some(from_line) = anchor.from_line
    {
        return Place {
            path: anchor.dockerfile.clone(),
            line: from_line.max(1),
        };
    }
    let dockerfile = anchor.map(|a| a.dockerfile.as_str()).or(built_from);
    Place {
        path: dockerfile.unwrap_or(&finding.path).to_owned(),
        line: 1,
    }
}

/// Most severe first: level, then score, then id, package and path (a total order, so the
/// output is the same on every run).
fn most_severe_first(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    let score = |f: &Finding| f.score.unwrap_or(-1.0);
    b.severity
        .cmp(&a.severity)
        .then_with(|| score(b).total_cmp(&score(a)))
        .then_with(|| a.id.cmp(&b.id))
        .then_with(|| a.package.cmp(&b.package))
        .then_with(|| a.installed_version.cmp(&b.installed_version))
        .then_with(|| a.path.cmp(&b.path))
}

/// `primaryLocationLineHash`: from what stays the same while the finding is there (image
/// repository, package type, name, version and path, issue id), not from the line or tag.
fn fingerprint(image: &str, finding: &Finding) -> String {
    let mut hasher = Sha256::new();
    for part in [
        repository_of(image).as_str(),
        finding.kind.as_str(),
        &finding.package,
        &finding.installed_version,
        &finding.path,
        &finding.id,
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{hex}:1")
}

fn tool(version: &str, rules: Vec<Rule>) -> Tool {
    Tool {
        driver: Driver {
            name: TOOL_NAME,
            version: version.to_owned(),
            information_uri: env!("CARGO_PKG_REPOSITORY"),
            rules,
        },
    }
}

/// One rule per issue among `findings` (already most severe first), in that order.
fn rules(findings: &[Located<'_>]) -> Vec<Rule> {
    let mut by_id: Vec<(&str, Vec<&Located<'_>>)> = Vec::new();
    for located in findings {
        let id = located.finding.id.as_str();
        match by_id.iter_mut().find(|(rule, _)| *rule == id) {
            Some((_, group)) => group.push(located),
            None => by_id.push((id, vec![located])),
        }
    }
    by_id
        .into_iter()
        .take(MAX_RULES_PER_RUN)
        .filter_map(|(id, group)| Some(rule(id, group.first()?.finding, &group)))
        .collect()
}

/// The rule of issue `id`, found in `group` (most severe first, `first` the first's finding).
fn rule(id: &str, first: &Finding, group: &[&Located<'_>]) -> Rule {
    let severity = group
        .iter()
        .map(|l| l.finding.severity)
        .max()
        .unwrap_or(Severity::Unknown);
    let score = group
        .iter()
        .filter_map(|l| l.finding.score)
        .reduce(f64::max);
    let packages = package_list(group);
    let short = match &first.summary {
        Some(summary) => format!("{id}: {summary}"),
        None => format!("{id} in {packages}"),
    };
    let full = format!(
        "{} Affected here: {packages}.",
        sentence(first.summary.as_deref().unwrap_or(id))
    );
    let os = group.iter().any(|l| is_os_package(l.finding.kind));
    Rule {
        id: id.to_owned(),
        name: if os {
            "OsPackageVulnerability"
        } else {
            "LanguagePackageVulnerability"
        },
        short_description: Text {
            text: shorten(&sentence(&short), MAX_DESCRIPTION),
        },
        full_description: Text {
            text: shorten(&full, MAX_DESCRIPTION),
        },
        help: Help {
            text: help_text(id, severity, first, group),
            markdown: help_markdown(id, severity, first, group),
        },
        help_uri: osv_link(id),
        default_configuration: Configuration {
            level: level(severity),
        },
        properties: RuleProperties {
            tags: vec![
                "security".into(),
                "vulnerability".into(),
                severity.as_str().into(),
            ],
            precision: "very-high",
            security_severity: security_severity(score, severity),
            cvss_score: score,
        },
    }
}

fn is_os_package(kind: PackageType) -> bool {
    matches!(kind, PackageType::Deb | PackageType::Apk | PackageType::Rpm)
}

/// `name version` of each package the issue is found in, each once.
fn package_list(group: &[&Located<'_>]) -> String {
    let mut packages: Vec<String> = group
        .iter()
        .map(|l| format!("{} {}", l.finding.package, l.finding.installed_version))
        .collect();
    packages.dedup();
    packages.join(", ")
}

/// The score GitHub ranks by, as a string: the CVSS base score when there is one in (0, 10]
/// and its band is not below the level, else Trivy's stand-ins for the level; none for unknown
/// severity. A level above the score's band (a record's word CRITICAL merged with a 5.3
/// vector) would otherwise show as medium beside a result of level `error`; the real score
/// stays in the rule's `cvss-score`.
fn security_severity(score: Option<f64>, severity: Severity) -> Option<String> {
    if let Some(score) = score.filter(|s| *s > 0.0 && *s <= 10.0)
        && level_of_score(score) >= severity
    {
        return Some(format!("{score:.1}"));
    }
    let fallback = match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Unknown => return None,
    };
    Some(fallback.to_owned())
}

/// SARIF's level: critical and high are errors, medium a warning, the rest notes.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Unknown => "note",
    }
}

/// OSV's page of an id (every id buildopt reports is an OSV id or alias).
pub fn osv_link(id: &str) -> String {
    format!("https://osv.dev/vulnerability/{}", uri_encode(id))
}

fn help_text(id: &str, severity: Severity, first: &Finding, group: &[&Located<'_>]) -> String {
    let mut lines = vec![format!("Vulnerability {id} ({})", severity.as_str())];
    if let Some(summary) = &first.summary {
        lines.push(summary.clone());
    }
    if !first.aliases.is_empty() {
        lines.push(format!("Aliases: {}", first.aliases.join(", ")));
    }
    for located in group {
        let f = located.finding;
        lines.push(format!(
            "Package: {} {} ({}), fixed: {}, at {}",
            f.package,
            f.installed_version,
            f.kind.as_str(),
            fixed(f),
            origin(f)
        ));
    }
    lines.push(format!("Link: {}", osv_link(id)));
    lines.join("\n")
}

fn help_markdown(id: &str, severity: Severity, first: &Finding, group: &[&Located<'_>]) -> String {
    let mut out = format!(
        "**{}** ({})",
        markdown_text(id),
        markdown_text(severity.as_str())
    );
    if let Some(summary) = &first.summary {
        out.push_str(&format!(": {}", markdown_text(summary)));
    }
    out.push_str("\n\n| Package | Type | Installed | Fixed | Severity | Where |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for located in group {
        let f = located.finding;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            markdown_text(&f.package),
            f.kind.as_str(),
            markdown_text(&f.installed_version),
            markdown_text(&fixed(f)),
            f.severity.as_str(),
            markdown_text(&origin(f)),
        ));
    }
    if !first.aliases.is_empty() {
        let aliases: Vec<String> = first.aliases.iter().map(|a| markdown_text(a)).collect();
        out.push_str(&format!("\nAliases: {}\n", aliases.join(", ")));
    }
    out.push_str(&format!("\n[{}]({})\n", markdown_text(id), osv_link(id)));
    out
}

fn fixed(finding: &Finding) -> String {
    finding
        .fixed_version
        .clone()
        .unwrap_or_else(|| "no fix yet".into())
}

/// Which instruction brought the package.
fn origin(finding: &Finding) -> String {
    match (&finding.dockerfile, &finding.base_image) {
        (Some(line), _) => format!("{} line {}", line.path, line.line),
        (None, Some(base)) => format!("base image {base}"),
        (None, None) => finding.path.clone(),
    }
}

fn result(located: &Located<'_>, rule_index: usize) -> SarifResult {
    let f = located.finding;
    SarifResult {
        rule_id: f.id.clone(),
        rule_index,
        level: level(f.severity),
        message: Text {
            text: message(located),
        },
        locations: vec![Location {
            physical_location: PhysicalLocation {
                artifact_location: ArtifactLocation {
                    uri: uri_encode(located.place.path.trim_start_matches('/')),
                },
                region: Region {
                    start_line: located.place.line,
                },
            },
        }],
        partial_fingerprints: Fingerprints {
            primary_location_line_hash: located.fingerprint.clone(),
        },
        properties: ResultProperties {
            package: f.package.clone(),
            installed_version: f.installed_version.clone(),
            fixed_version: f.fixed_version.clone(),
            severity: f.severity.as_str(),
            path: f.path.clone(),
            fails_gate: f.fails_gate,
        },
    }
}

/// The first sentence says what and whether it fails the gate (GitHub may show only that).
fn message(located: &Located<'_>) -> String {
    let f = located.finding;
    let score = f.score.map(|s| format!(" {s:.1}")).unwrap_or_default();
    let gate = if f.fails_gate { "Fails the gate: " } else { "" };
    let mut text = format!(
        "{gate}{} {} has {} ({}{score}).",
        f.package,
        f.installed_version,
        f.id,
        f.severity.as_str()
    );
    match &f.fixed_version {
        Some(version) => text.push_str(&format!(" Fixed in {version}.")),
        None => text.push_str(" No fix yet."),
    }
    let platform = located
        .image
        .platform
        .as_deref()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    text.push_str(&format!(" Image {}{platform}", located.image.image));
    if let Some(base) = &f.base_image {
        text.push_str(&format!(", from the base image {base}"));
    }
    text.push('.');
    text
}

/// Ends `text` with a full stop unless it ends a sentence already.
fn sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.ends_with(['.', '!', '?']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// A relative URI reference of a path: unreserved characters and `/` kept, every other byte
/// percent-encoded (so `:` cannot pass for a scheme, nor `#` or `?` end the path).
fn uri_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    if out.is_empty() { "%2E".into() } else { out }
}

/// `sarifLog`.
#[derive(Debug, Clone, Serialize)]
pub struct Log {
    #[serde(rename = "$schema")]
    pub schema: &'static str,
    pub version: &'static str,
    pub runs: Vec<Run>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<LogProperties>,
}

/// What the log left out to stay within GitHub's limits.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogProperties {
    pub runs_left_out: Vec<String>,
    pub note: String,
}

/// `run`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub tool: Tool,
    pub automation_details: AutomationDetails,
    pub results: Vec<SarifResult>,
    pub column_kind: &'static str,
    pub properties: RunProperties,
}

/// The image behind a run and whether it was matched.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunProperties {
    /// The references scanned, as given (tags are fine here: nothing keys on them).
    pub images: Vec<String>,
    pub platform: Option<String>,
    pub scanned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_scanned: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub results_left_out: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// `tool`.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub driver: Driver,
}

/// `toolComponent` (the driver).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Driver {
    pub name: &'static str,
    pub version: String,
    pub information_uri: &'static str,
    pub rules: Vec<Rule>,
}

/// `runAutomationDetails`: `id` is the category.
#[derive(Debug, Clone, Serialize)]
pub struct AutomationDetails {
    pub id: String,
}

/// `reportingDescriptor`: one issue.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub id: String,
    pub name: &'static str,
    pub short_description: Text,
    pub full_description: Text,
    pub help: Help,
    pub help_uri: String,
    pub default_configuration: Configuration,
    pub properties: RuleProperties,
}

/// `message` and `multiformatMessageString` with text only.
#[derive(Debug, Clone, Serialize)]
pub struct Text {
    pub text: String,
}

/// A rule's help, as text and as Markdown (GitHub shows the Markdown).
#[derive(Debug, Clone, Serialize)]
pub struct Help {
    pub text: String,
    pub markdown: String,
}

/// `reportingConfiguration`.
#[derive(Debug, Clone, Serialize)]
pub struct Configuration {
    pub level: &'static str,
}

/// The properties GitHub reads from a rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleProperties {
    pub tags: Vec<String>,
    pub precision: &'static str,
    #[serde(rename = "security-severity", skip_serializing_if = "Option::is_none")]
    pub security_severity: Option<String>,
    /// The highest CVSS base score, when a record has a vector: `security-severity` stands in
    /// for the level when the level is above the score's band.
    #[serde(rename = "cvss-score", skip_serializing_if = "Option::is_none")]
    pub cvss_score: Option<f64>,
}

/// `result`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SarifResult {
    pub rule_id: String,
    pub rule_index: usize,
    pub level: &'static str,
    pub message: Text,
    pub locations: Vec<Location>,
    pub partial_fingerprints: Fingerprints,
    pub properties: ResultProperties,
}

/// `partialFingerprints`: GitHub uses only this one.
#[derive(Debug, Clone, Serialize)]
pub struct Fingerprints {
    #[serde(rename = "primaryLocationLineHash")]
    pub primary_location_line_hash: String,
}

/// The finding's facts, for tools that read more than the message.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultProperties {
    pub package: String,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    pub severity: &'static str,
    /// The declaring file in the image.
    pub path: String,
    pub fails_gate: bool,
}

/// `location`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub physical_location: PhysicalLocation,
}

/// `physicalLocation`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalLocation {
    pub artifact_location: ArtifactLocation,
    pub region: Region,
}

/// `artifactLocation`: a path relative to the repository root.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactLocation {
    pub uri: String,
}

/// `region`: the instruction's first line.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    pub start_line: u32,
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::report::findings_fixtures::{
        anchors, configured, hostile_report, many_findings, report,
    };
    use crate::report::fixtures::HOSTILE;

    fn render(report: &ScanReport) -> Value {
        let anchors = anchors();
        let configured = configured();
        let context = SarifContext {
            tool_version: "0.1.0",
            anchors: &anchors,
            configured: &configured,
        };
        serde_json::from_str(&sarif(report, &context)).expect("SARIF is JSON")
    }

    fn runs(log: &Value) -> &Vec<Value> {
        log["runs"].as_array().expect("runs")
    }

    fn strings<'a>(values: impl Iterator<Item = &'a Value>) -> Vec<&'a str> {
        values.filter_map(Value::as_str).collect()
    }

    /// (ruleId, package, uri, line) of each result of `run`.
    fn places(run: &Value) -> Vec<(String, String, String, u64)> {
        run["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| {
                let location = &r["locations"][0]["physicalLocation"];
                (
                    r["ruleId"].as_str().unwrap_or_default().to_owned(),
                    r["properties"]["package"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    location["artifactLocation"]["uri"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    location["region"]["startLine"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    #[test]
    fn one_run_per_image_and_platform_and_an_empty_run_per_unscanned_configuration() {
        let anchors = anchors();
        let configured = configured();
        let context = SarifContext {
            tool_version: "0.1.0",
            anchors: &anchors,
            configured: &configured,
        };
        let text = sarif(&report(), &context);
        insta::assert_snapshot!(text);
        let log: Value = serde_json::from_str(&text).expect("json");
        let categories = strings(runs(&log).iter().map(|r| &r["automationDetails"]["id"]));
        assert_eq!(
            categories,
            [
                "buildopt/registry.example.com/acme/api/linux/amd64/",
                "buildopt/registry.example.com/acme/api/linux/arm64/",
                "buildopt/registry.example.com/acme/worker/linux/amd64/",
                "buildopt/registry.example.com/acme/legacy/linux/amd64/",
                "buildopt/registry.example.com/acme/cron/linux/amd64/",
            ]
        );
        for run in &runs(&log)[2..] {
            assert_eq!(run["results"].as_array().map(Vec::len), Some(0), "{run}");
        }
        assert_eq!(runs(&log)[3]["properties"]["scanned"], false);
        assert!(
            runs(&log)[3]["properties"]["notScanned"]
                .as_str()
                .is_some_and(|r| r.starts_with("no vulnerability database"))
        );
        assert_eq!(
            runs(&log)[4]["properties"]["notScanned"],
            "not scanned in this run"
        );
    }

    #[test]
    fn findings_sit_on_their_dockerfile_line_and_base_image_findings_on_the_from_line() {
        let log = render(&report());
        let amd64 = places(&runs(&log)[0]);
        let on = |id: &str, package: &str| {
            amd64
                .iter()
                .find(|p| p.0 == id && p.1 == package)
                .map(|p| (p.2.as_str(), p.3))
        };
        assert_eq!(on("CVE-2023-45853", "zlib1g"), Some(("api/Dockerfile", 2)));
        assert_eq!(on("CVE-2024-0727", "libssl3"), Some(("api/Dockerfile", 2)));
        assert_eq!(on("CVE-2024-0727", "openssl"), Some(("api/Dockerfile", 4)));
        assert_eq!(
            on("CVE-2023-52425", "libexpat1"),
            Some(("api/Dockerfile", 4))
        );
        assert_eq!(
            on("GHSA-9wx4-h78v-vm56", "requests"),
            Some(("api/Dockerfile", 7))
        );
        assert_eq!(places(&runs(&log)[1])[0].2, "api/Dockerfile");
        for run in runs(&log) {
            for result in run["results"].as_array().into_iter().flatten() {
                assert_eq!(result["locations"].as_array().map(Vec::len), Some(1));
            }
        }
    }

    #[test]
    fn without_a_from_line_base_findings_take_line_one_of_the_dockerfile_or_the_package_path() {
        let report = report();
        let built_from = Some("api/Dockerfile");
        let base = &report.images[0].findings[0];
        assert_eq!(
            place(base, None, built_from),
            Place {
                path: "api/Dockerfile".into(),
                line: 1
            }
        );
        assert_eq!(
            place(base, None, None),
            Place {
                path: "var/lib/dpkg/status".into(),
                line: 1
            }
        );
        let anchor = ImageAnchor {
            dockerfile: "api/Dockerfile".into(),
            from_line: None,
        };
        assert_eq!(place(base, Some(&anchor), None).line, 1);
    }

    #[test]
    fn a_new_tag_or_digest_changes_no_category_uri_rule_or_fingerprint() {
        let before = render(&report());
        let mut retagged = report();
        for image in &mut retagged.images {
            let repository = repository_of(&image.image);
            image.image = format!("{repository}:9.9.9@sha256:{}", "0".repeat(64));
        }
        let after = render(&retagged);
        let keys = |log: &Value| -> Vec<String> {
            runs(log)
                .iter()
                .flat_map(|run| {
                    let category = run["automationDetails"]["id"].to_string();
                    run["results"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(move |r| {
                            format!(
                                "{category} {} {} {}",
                                r["ruleId"],
                                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                                r["partialFingerprints"]["primaryLocationLineHash"]
                            )
                        })
                })
                .collect()
        };
        assert_eq!(keys(&before), keys(&after));
        assert!(!keys(&before).join(" ").contains("1.4.2"));
        // Fingerprints are scoped by category: the same package on two platforms may share one.
        let fingerprints: std::collections::BTreeSet<String> = keys(&before)
            .iter()
            .map(|k| {
                let category = k.split(' ').next().unwrap_or_default();
                let fingerprint = k.rsplit(' ').next().unwrap_or_default();
                format!("{category} {fingerprint}")
            })
            .collect();
        assert_eq!(fingerprints.len(), keys(&before).len(), "unique per run");
    }

    #[test]
    fn rules_carry_help_tags_and_a_security_severity_string() {
        let log = render(&report());
        let rules = runs(&log)[0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        let rule = |id: &str| {
            rules
                .iter()
                .find(|r| r["id"] == id)
                .unwrap_or_else(|| panic!("rule {id}"))
        };
        assert_eq!(
            rule("CVE-2023-45853")["properties"]["security-severity"],
            "9.8"
        );
        assert_eq!(
            rule("CVE-2023-45853")["defaultConfiguration"]["level"],
            "error"
        );
        assert_eq!(
            rule("CVE-2024-0727")["defaultConfiguration"]["level"],
            "warning"
        );
        assert_eq!(
            rule("CVE-2011-3374")["defaultConfiguration"]["level"],
            "note"
        );
        assert!(
            rule("OSV-TEST-0001")["properties"]
                .get("security-severity")
                .is_none()
        );
        assert_eq!(
            rule("CVE-2024-0727")["helpUri"],
            "https://osv.dev/vulnerability/CVE-2024-0727"
        );
        for rule in rules {
            let tags = strings(rule["properties"]["tags"].as_array().expect("tags").iter());
            assert!(tags.contains(&"security"));
            assert!(rule["help"]["text"].as_str().is_some_and(|t| !t.is_empty()));
            assert!(
                rule["help"]["markdown"]
                    .as_str()
                    .is_some_and(|t| t.contains("| Package |"))
            );
            assert!(
                rule["fullDescription"]["text"]
                    .as_str()
                    .is_some_and(|t| t.len() <= 1024)
            );
        }
        let ids: Vec<&str> = strings(rules.iter().map(|r| &r["id"]));
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(ids.len(), unique.len(), "one rule per issue");
        assert_eq!(ids[0], "CVE-2023-45853", "most severe first");
    }

    /// A record's word CRITICAL merged with a 5.3 vector: GitHub must not rank as medium a
    /// result whose level is `error`.
    #[test]
    fn security_severity_is_never_below_the_levels_band() {
        assert_eq!(
            security_severity(Some(5.3), Severity::Critical).as_deref(),
            Some("9.5")
        );
        assert_eq!(
            security_severity(Some(7.5), Severity::Critical).as_deref(),
            Some("9.5")
        );
        assert_eq!(
            security_severity(Some(9.1), Severity::Critical).as_deref(),
            Some("9.1")
        );
        assert_eq!(
            security_severity(Some(3.1), Severity::Medium).as_deref(),
            Some("5.5")
        );
    }

    #[test]
    fn scores_fall_back_to_the_level_and_unknown_has_none() {
        assert_eq!(
            security_severity(Some(7.45), Severity::High).as_deref(),
            Some("7.5")
        );
        assert_eq!(
            security_severity(None, Severity::Critical).as_deref(),
            Some("9.5")
        );
        assert_eq!(
            security_severity(None, Severity::High).as_deref(),
            Some("8.0")
        );
        assert_eq!(
            security_severity(None, Severity::Medium).as_deref(),
            Some("5.5")
        );
        assert_eq!(
            security_severity(None, Severity::Low).as_deref(),
            Some("2.0")
        );
        assert_eq!(
            security_severity(Some(0.0), Severity::Low).as_deref(),
            Some("2.0")
        );
        assert_eq!(security_severity(Some(f64::NAN), Severity::Unknown), None);
        assert_eq!(security_severity(Some(11.0), Severity::Unknown), None);
    }

    #[test]
    fn results_that_fail_the_gate_say_so_first() {
        let log = render(&report());
        let results = runs(&log)[0]["results"].as_array().expect("results");
        for result in results {
            let fails = result["properties"]["failsGate"] == true;
            let text = result["message"]["text"].as_str().unwrap_or_default();
            assert_eq!(text.starts_with("Fails the gate: "), fails, "{text}");
        }
        assert!(results.iter().any(|r| r["properties"]["failsGate"] == true));
    }

    #[test]
    fn tags_of_one_repository_and_platform_share_one_run() {
        let mut report = report();
        let mut second = report.images[0].clone();
        second.image = "registry.example.com/acme/api:1.4.3".into();
        second.findings.truncate(2);
        second.findings[0].installed_version = "1:1.3-1".into();
        report.images.push(second);
        let log = render(&report);
        let categories = strings(runs(&log).iter().map(|r| &r["automationDetails"]["id"]));
        let mut unique = categories.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(categories.len(), unique.len());
        let run = &runs(&log)[0];
        assert_eq!(
            run["properties"]["images"].as_array().map(Vec::len),
            Some(2)
        );
        // The second tag's libssl3 finding is the first's (same fingerprint); its zlib1g
        // version is new.
        assert_eq!(run["results"].as_array().map(Vec::len), Some(9));
    }

    #[test]
    fn over_25000_findings_the_least_severe_are_left_out_and_counted() {
        let report = many_findings(MAX_RESULTS_PER_RUN + 10);
        let anchors = BTreeMap::new();
        let context = SarifContext {
            tool_version: "0.1.0",
            anchors: &anchors,
            configured: &[],
        };
        let log = log(&report, &context);
        let run = &log.runs[0];
        assert_eq!(run.results.len(), MAX_RESULTS_PER_RUN);
        assert!(run.tool.driver.rules.len() <= MAX_RULES_PER_RUN);
        assert_eq!(run.properties.results_left_out, 10);
        assert!(run.properties.note.is_some());
        // 25,010 findings in five severities: the ten left out are unknown ones.
        let unknown = run
            .results
            .iter()
            .filter(|r| r.properties.severity == "unknown");
        assert_eq!(unknown.count(), (MAX_RESULTS_PER_RUN + 10) / 5 - 10);
    }

    #[test]
    fn over_20_runs_the_runs_without_findings_are_left_out_and_named() {
        let report = report();
        let mut configured = Vec::new();
        for i in 0..30 {
            configured.push(ConfiguredImage {
                image: format!("registry.example.com/acme/svc{i:02}:1"),
                platform: None,
            });
        }
        let anchors = BTreeMap::new();
        let context = SarifContext {
            tool_version: "0.1.0",
            anchors: &anchors,
            configured: &configured,
        };
        let log = log(&report, &context);
        assert_eq!(log.runs.len(), MAX_RUNS);
        assert_eq!(
            log.runs[0].automation_details.id,
            category(&report.images[0].image, Some("linux/amd64"))
        );
        assert_eq!(log.runs[1].results.len(), 1, "arm64 kept");
        let left_out = log.properties.as_ref().map(|p| p.runs_left_out.len());
        assert_eq!(left_out, Some(report.images.len() + 30 - MAX_RUNS));
    }

    #[test]
    fn hostile_text_stays_inside_json_strings_and_uris() {
        let text = {
            let anchors = BTreeMap::new();
            let context = SarifContext {
                tool_version: "0.1.0",
                anchors: &anchors,
                configured: &[],
            };
            sarif(&hostile_report(), &context)
        };
        let log: Value = serde_json::from_str(&text).expect("JSON");
        let rules = runs(&log)[0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        let markdown = rules[0]["help"]["markdown"].as_str().unwrap_or_default();
        assert!(!markdown.contains("<script>"), "{markdown}");
        assert!(!markdown.contains("</details>"), "{markdown}");
        for result in runs(&log)[0]["results"].as_array().into_iter().flatten() {
            let uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap_or_default();
            assert!(
                uri.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)),
                "{uri}"
            );
        }
        let first = &runs(&log)[0]["results"][0];
        assert!(
            first["message"]["text"]
                .as_str()
                .is_some_and(|t| t.contains(HOSTILE)),
            "the text survives as data"
        );
    }

    #[test]
    fn uris_are_percent_encoded_relative_paths() {
        assert_eq!(uri_encode("api/Dockerfile"), "api/Dockerfile");
        assert_eq!(uri_encode("a b/c:d#e?f"), "a%20b/c%3Ad%23e%3Ff");
        assert_eq!(uri_encode("ü"), "%C3%BC");
        assert_eq!(uri_encode(""), "%2E");
    }
}
