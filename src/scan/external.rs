//! Trivy or Grype run on the same image as buildopt's own matching, their JSON reports read
//! into [`Finding`]s that the caller merges with buildopt's (one finding per issue and
//! package; `found_by` names every scanner that found it).
//!
//! - Trivy: `trivy image --format json --quiet REF` (`--input PATH` for a `docker save`
//!   tarball or an OCI layout); its report's `Results[].Vulnerabilities[]`.
//! - Grype: `grype REF -o json` (`docker-archive:PATH`, `oci-dir:PATH`); its `matches[]`.
//!
//! A tool that is missing, exits with an error or prints something that is not its report is
//! an error, never an empty (passing) result. Each finding is placed on the image's package
//! when the inventory has it (its file, layer and Dockerfile line), else on the layer the tool
//! names, else on the image's top layer.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::PackageType;
use super::model::{Finding, ImageInventory, Layer, Package, Severity};
use super::version::{self, VersionOrder};
use crate::cache::digest::Digest;

/// A scanner buildopt can run besides its own matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Trivy,
    Grype,
}

impl Tool {
    /// The executable's name, also the name in `found_by`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Trivy => "trivy",
            Self::Grype => "grype",
        }
    }
}

/// What the tool is pointed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageInput<'a> {
    /// An image the daemon (or a registry) has, by reference or ID.
    Reference(&'a str),
    /// A `docker save` tarball.
    Archive(&'a Path),
    /// An OCI image layout folder.
    OciLayout(&'a Path),
}

/// Why a tool's findings could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("{tool} is not on PATH: install it, or scan with buildopt alone (--scanner buildopt)")]
    Missing { tool: &'static str },
    #[error("could not run {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{tool} failed ({status}){}", stderr_tail(.stderr))]
    Failed {
        tool: &'static str,
        status: String,
        stderr: String,
    },
    #[error("{tool}'s JSON report could not be read: {message}")]
    Unreadable { tool: &'static str, message: String },
}

fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(5)..];
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {}", tail.join(" / "))
    }
}

/// The tool's findings for one image, and what could not be placed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExternalFindings {
    pub findings: Vec<Finding>,
    /// Findings in packages of a type buildopt does not report (`binary`, `nuget`, ...), one
    /// line each, for the report's warnings.
    pub skipped: Vec<String>,
}

/// Runs `tool` on `input` (found on `path`, the `PATH` to search; the process's when `None`)
/// and reads its findings for `image`, the inventory of the same image.
pub fn scan(
    tool: Tool,
    input: ImageInput<'_>,
    image: &ImageInventory,
    path: Option<&OsStr>,
) -> Result<ExternalFindings, ExternalError> {
    let report = run(tool, input, path)?;
    let reported = match tool {
        Tool::Trivy => parse_trivy(&report)?,
        Tool::Grype => parse_grype(&report)?,
    };
    Ok(place(tool, reported, image))
}

/// The arguments that make `tool` print its JSON report of `input`.
pub fn arguments(tool: Tool, input: ImageInput<'_>) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    match (tool, input) {
        (Tool::Trivy, input) => {
            let mut args: Vec<String> = ["image", "--format", "json", "--quiet"]
                .map(String::from)
                .into();
            match input {
                ImageInput::Reference(reference) => args.push(reference.to_string()),
                ImageInput::Archive(p) | ImageInput::OciLayout(p) => {
                    args.extend(["--input".to_string(), path(p)]);
                }
            }
            args
        }
        (Tool::Grype, input) => {
            let source = match input {
                ImageInput::Reference(reference) => reference.to_string(),
                ImageInput::Archive(p) => format!("docker-archive:{}", path(p)),
                ImageInput::OciLayout(p) => format!("oci-dir:{}", path(p)),
            };
            vec![source, "-o".into(), "json".into()]
        }
    }
}

/// Runs the tool and returns its standard output, the JSON report.
pub fn run(
    tool: Tool,
    input: ImageInput<'_>,
    path: Option<&OsStr>,
) -> Result<Vec<u8>, ExternalError> {
    let program =
        find_on_path(tool.name(), path).ok_or(ExternalError::Missing { tool: tool.name() })?;
    let output = Command::new(&program)
        .args(arguments(tool, input))
        .output()
        .map_err(|source| ExternalError::Spawn {
            path: program.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(ExternalError::Failed {
            tool: tool.name(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(output.stdout)
}

fn find_on_path(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    let search = path
        .map(OsStr::to_os_string)
        .or_else(|| std::env::var_os("PATH"))?;
    std::env::split_paths(&search)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// One finding as a tool reports it, before it is placed in the image.
#[derive(Debug, Clone, PartialEq)]
pub struct Reported {
    pub id: String,
    pub aliases: Vec<String>,
    /// The several CVEs an umbrella id (a DSA naming three) stands for: not its aliases.
    pub related: Vec<String>,
    pub package: String,
    pub version: String,
    /// The purl type, from the purl or the tool's package type; `None` for types buildopt
    /// does not report.
    pub kind: Option<PackageType>,
    /// The tool's own name for the package type, for messages.
    pub tool_type: String,
    pub purl: Option<String>,
    pub source_name: Option<String>,
    pub source_version: Option<String>,
    pub fixed_versions: Vec<String>,
    /// The tool's own suggestion of the fix for the installed version, when it gives one.
    pub suggested_fix: Option<String>,
    pub severity: Severity,
    pub score: Option<f64>,
    pub summary: Option<String>,
    /// The layer the tool says the package is in (a diff ID).
    pub layer: Option<Digest>,
    /// The file the tool says declares the package.
    pub path: Option<String>,
}

// Trivy's JSON report (`--format json`, schema version 2): only the fields read here.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyReport {
    schema_version: u32,
    #[serde(default)]
    results: Option<Vec<TrivyResult>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyResult {
    #[serde(default)]
    target: String,
    /// `os-pkgs` (the target names the image) or `lang-pkgs` (it names a file).
    #[serde(default)]
    class: String,
    #[serde(default, rename = "Type")]
    kind: String,
    #[serde(default)]
    vulnerabilities: Option<Vec<TrivyVulnerability>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TrivyVulnerability {
    #[serde(rename = "VulnerabilityID")]
    vulnerability_id: String,
    #[serde(default, rename = "VendorIDs")]
    vendor_ids: Option<Vec<String>>,
    pkg_name: String,
    #[serde(default)]
    pkg_path: Option<String>,
    #[serde(default)]
    pkg_identifier: Option<TrivyPkgIdentifier>,
    installed_version: String,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    src_name: Option<String>,
    #[serde(default)]
    src_version: Option<String>,
    #[serde(default)]
    layer: Option<TrivyLayer>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default, rename = "CVSS")]
    cvss: Option<std::collections::BTreeMap<String, TrivyCvss>>,
}

#[derive(Deserialize)]
struct TrivyPkgIdentifier {
    #[serde(default, rename = "PURL")]
    purl: Option<String>,
}

#[derive(Deserialize)]
struct TrivyLayer {
    #[serde(default, rename = "DiffID")]
    diff_id: Option<String>,
}

#[derive(Deserialize)]
struct TrivyCvss {
    #[serde(default, rename = "V3Score")]
    v3: Option<f64>,
    #[serde(default, rename = "V40Score")]
    v40: Option<f64>,
}

/// Reads Trivy's JSON report.
pub fn parse_trivy(json: &[u8]) -> Result<Vec<Reported>, ExternalError> {
    let unreadable = |message: String| ExternalError::Unreadable {
        tool: "trivy",
        message,
    };
    let report: TrivyReport =
        serde_json::from_slice(json).map_err(|err| unreadable(err.to_string()))?;
    if report.schema_version != 2 {
        return Err(unreadable(format!(
            "schema version {} (buildopt reads version 2)",
            report.schema_version
        )));
    }
    let mut reported = Vec::new();
    for result in report.results.unwrap_or_default() {
        for vuln in result.vulnerabilities.unwrap_or_default() {
            let file = (result.class == "lang-pkgs" && !result.target.is_empty())
                .then_some(result.target.as_str());
            reported.push(trivy_finding(file, &result.kind, vuln));
        }
    }
    Ok(reported)
}

fn trivy_finding(file: Option<&str>, result_type: &str, vuln: TrivyVulnerability) -> Reported {
    let purl = vuln.pkg_identifier.and_then(|id| id.purl);
    let kind = purl
        .as_deref()
        .and_then(purl_type)
        .or_else(|| trivy_type(result_type));
    let fixed_versions: Vec<String> = vuln
        .fixed_version
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    let score = vuln
        .cvss
        .iter()
        .flatten()
        .flat_map(|(_, cvss)| [cvss.v3, cvss.v40])
        .flatten()
        .filter(|score| score.is_finite() && (0.0..=10.0).contains(score))
        .reduce(f64::max);
    let (id, aliases, related) =
        issue_id(vuln.vulnerability_id, vuln.vendor_ids.unwrap_or_default());
    Reported {
        id,
        aliases,
        related,
        package: vuln.pkg_name,
        version: vuln.installed_version,
        kind,
        tool_type: result_type.to_string(),
        purl,
        source_name: vuln.src_name.filter(|s| !s.is_empty()),
        source_version: vuln.src_version.filter(|s| !s.is_empty()),
        fixed_versions,
        suggested_fix: None,
        severity: severity_word(vuln.severity.as_deref()),
        score,
        summary: vuln.title.filter(|t| !t.is_empty()),
        layer: vuln
            .layer
            .and_then(|layer| layer.diff_id)
            .and_then(|diff_id| diff_id.parse().ok()),
        path: vuln
            .pkg_path
            .filter(|p| !p.is_empty())
            .or_else(|| file.map(str::to_string)),
    }
}

/// Trivy's result types (`debian`, `alpine`, `python-pkg`, `gobinary`, ...) as purl types.
fn trivy_type(kind: &str) -> Option<PackageType> {
    Some(match kind {
        "debian" | "ubuntu" => PackageType::Deb,
        "alpine" | "wolfi" | "chainguard" => PackageType::Apk,
        "redhat"
        | "centos"
        | "rocky"
        | "alma"
        | "amazon"
        | "oracle"
        | "fedora"
        | "photon"
        | "suse"
        | "opensuse"
        | "opensuse.leap"
        | "opensuse.tumbleweed"
        | "sles"
        | "cbl-mariner"
        | "azurelinux" => PackageType::Rpm,
        "python-pkg" | "pip" | "pipenv" | "poetry" | "uv" => PackageType::Pypi,
        "node-pkg" | "npm" | "yarn" | "pnpm" | "bun" => PackageType::Npm,
        "gobinary" | "gomod" => PackageType::Golang,
        "cargo" | "rustbinary" => PackageType::Cargo,
        "jar" | "pom" | "gradle" | "sbt" => PackageType::Maven,
        "gemspec" | "bundler" => PackageType::Gem,
        _ => return None,
    })
}

// Grype's JSON report (`-o json`): only the fields read here.
#[derive(Deserialize)]
struct GrypeReport {
    matches: Vec<GrypeMatch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GrypeMatch {
    vulnerability: GrypeVulnerability,
    #[serde(default)]
    related_vulnerabilities: Option<Vec<GrypeVulnerability>>,
    #[serde(default)]
    match_details: Option<Vec<GrypeMatchDetail>>,
    artifact: GrypeArtifact,
}

#[derive(Deserialize)]
struct GrypeVulnerability {
    id: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    cvss: Option<Vec<GrypeCvss>>,
    #[serde(default)]
    fix: Option<GrypeFix>,
}

#[derive(Deserialize)]
struct GrypeCvss {
    #[serde(default)]
    metrics: Option<GrypeCvssMetrics>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GrypeCvssMetrics {
    #[serde(default)]
    base_score: Option<f64>,
}

#[derive(Deserialize)]
struct GrypeFix {
    #[serde(default)]
    versions: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct GrypeMatchDetail {
    #[serde(default)]
    fix: Option<GrypeFixDetail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GrypeFixDetail {
    #[serde(default)]
    suggested_version: Option<String>,
}

#[derive(Deserialize)]
struct GrypeArtifact {
    name: String,
    version: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    purl: Option<String>,
    #[serde(default)]
    locations: Option<Vec<GrypeLocation>>,
    #[serde(default)]
    upstreams: Option<Vec<GrypeUpstream>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GrypeLocation {
    #[serde(default)]
    path: Option<String>,
    #[serde(default, rename = "layerID")]
    layer_id: Option<String>,
}

#[derive(Deserialize)]
struct GrypeUpstream {
    name: String,
    #[serde(default)]
    version: Option<String>,
}

/// Reads Grype's JSON report.
pub fn parse_grype(json: &[u8]) -> Result<Vec<Reported>, ExternalError> {
    let report: GrypeReport =
        serde_json::from_slice(json).map_err(|err| ExternalError::Unreadable {
            tool: "grype",
            message: err.to_string(),
        })?;
    Ok(report.matches.into_iter().map(grype_finding).collect())
}

fn grype_finding(found: GrypeMatch) -> Reported {
    let vuln = found.vulnerability;
    let related = found.related_vulnerabilities.unwrap_or_default();
    let artifact = found.artifact;
    let score = std::iter::once(&vuln)
        .chain(&related)
        .flat_map(|v| v.cvss.iter().flatten())
        .filter_map(|cvss| cvss.metrics.as_ref()?.base_score)
        .filter(|score| score.is_finite() && (0.0..=10.0).contains(score))
        .reduce(f64::max);
    let kind = artifact
        .purl
        .as_deref()
        .and_then(purl_type)
        .or_else(|| grype_type(&artifact.kind));
    let suggested_fix = found
        .match_details
        .iter()
        .flatten()
        .find_map(|detail| detail.fix.as_ref()?.suggested_version.clone())
        .filter(|v| !v.is_empty());
    let location = artifact.locations.iter().flatten().next();
    let upstream = artifact.upstreams.iter().flatten().next();
    let fixed_versions = vuln
        .fix
        .and_then(|fix| fix.versions)
        .unwrap_or_default()
        .into_iter()
        .filter(|v| !v.trim().is_empty())
        .collect();
    let summary = vuln
        .description
        .clone()
        .or_else(|| related.iter().find_map(|r| r.description.clone()))
        .and_then(|d| d.lines().next().map(str::to_string))
        .filter(|d| !d.is_empty());
    let (id, aliases, related) = issue_id(vuln.id, related.into_iter().map(|r| r.id).collect());
    Reported {
        id,
        aliases,
        related,
        package: artifact.name,
        version: artifact.version,
        kind,
        tool_type: artifact.kind,
        purl: artifact.purl,
        source_name: upstream.map(|u| u.name.clone()),
        source_version: upstream.and_then(|u| u.version.clone()),
        fixed_versions,
        suggested_fix,
        severity: severity_word(vuln.severity.as_deref()),
        score,
        summary,
        layer: location
            .and_then(|l| l.layer_id.as_deref())
            .and_then(|id| id.parse().ok()),
        path: location
            .and_then(|l| l.path.as_deref())
            .map(|p| p.trim_start_matches('/').to_string()),
    }
}

/// Grype's package types (`deb`, `python`, `go-module`, `java-archive`, ...) as purl types.
fn grype_type(kind: &str) -> Option<PackageType> {
    Some(match kind {
        "deb" => PackageType::Deb,
        "apk" => PackageType::Apk,
        "rpm" => PackageType::Rpm,
        "python" => PackageType::Pypi,
        "npm" => PackageType::Npm,
        "go-module" => PackageType::Golang,
        "rust-crate" => PackageType::Cargo,
        "java-archive" | "jenkins-plugin" => PackageType::Maven,
        "gem" => PackageType::Gem,
        _ => return None,
    })
}

/// `pkg:<type>/...` → the package type, when buildopt reports that type.
fn purl_type(purl: &str) -> Option<PackageType> {
    let kind = purl.strip_prefix("pkg:")?.split('/').next()?;
    Some(match kind.to_ascii_lowercase().as_str() {
        "deb" => PackageType::Deb,
        "apk" => PackageType::Apk,
        "rpm" => PackageType::Rpm,
        "pypi" => PackageType::Pypi,
        "npm" => PackageType::Npm,
        "golang" => PackageType::Golang,
        "cargo" => PackageType::Cargo,
        "maven" => PackageType::Maven,
        "gem" => PackageType::Gem,
        _ => return None,
    })
}

/// A severity word as either tool writes it (`CRITICAL`, `High`; Grype's `Negligible` is low).
fn severity_word(word: Option<&str>) -> Severity {
    match word
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" | "moderate" => Severity::Medium,
        "low" | "negligible" => Severity::Low,
        _ => Severity::Unknown,
    }
}

/// The reported id by buildopt's rule (the one CVE among the ids, else a GHSA, else the
/// tool's id), the other ids of that issue and, when the ids name several CVEs, those CVEs
/// (issues of their own, never aliases); each list sorted and each id once.
fn issue_id(own: String, others: Vec<String>) -> (String, Vec<String>, Vec<String>) {
    let mut ids: Vec<String> = std::iter::once(own.clone())
        .chain(others)
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    let cves: Vec<&String> = ids.iter().filter(|id| id.starts_with("CVE-")).collect();
    let chosen = match cves.as_slice() {
        [one] => (*one).clone(),
        _ => ids
            .iter()
            .find(|id| id.starts_with("GHSA-") && cves.is_empty())
            .cloned()
            .unwrap_or(own),
    };
    let several = cves.len() > 1;
    ids.retain(|id| *id != chosen);
    let (related, aliases) = ids
        .into_iter()
        .partition(|id| several && id.starts_with("CVE-"));
    (chosen, aliases, related)
}

/// Turns a tool's findings into the image's findings.
pub fn place(tool: Tool, reported: Vec<Reported>, image: &ImageInventory) -> ExternalFindings {
    let mut placed = ExternalFindings::default();
    for finding in reported {
        let Some(kind) = finding.kind else {
            placed.skipped.push(format!(
                "{} found {} in {} {} (type {:?}), a package type buildopt does not report",
                tool.name(),
                finding.id,
                finding.package,
                finding.version,
                finding.tool_type
            ));
            continue;
        };
        match locate(&finding, kind, image) {
            Some(location) => placed
                .findings
                .push(finding_at(tool, finding, kind, location)),
            None => placed.skipped.push(format!(
                "{} found {} in {} {}, but the image has no layers to place it on",
                tool.name(),
                finding.id,
                finding.package,
                finding.version
            )),
        }
    }
    placed
}

/// Where a finding goes: the inventory's package, else the tool's layer, else the top layer.
struct Location<'a> {
    package: Option<&'a Package>,
    layer: &'a Layer,
}

fn locate<'a>(
    finding: &Reported,
    kind: PackageType,
    image: &'a ImageInventory,
) -> Option<Location<'a>> {
    let package = image
        .packages
        .iter()
        .chain(&image.applications)
        .find(|p| p.kind == kind && p.name == finding.package && p.version == finding.version);
    let layer_of = |digest: &Digest| image.layers.iter().find(|layer| &layer.diff_id == digest);
    let layer = package
        .and_then(|p| layer_of(&p.layer))
        .or_else(|| finding.layer.as_ref().and_then(layer_of))
        .or_else(|| image.layers.last())?;
    Some(Location { package, layer })
}

fn finding_at(tool: Tool, reported: Reported, kind: PackageType, at: Location<'_>) -> Finding {
    let fixed_version = reported
        .suggested_fix
        .clone()
        .or_else(|| applicable_fix(kind, &reported.version, &reported.fixed_versions));
    let package = at.package;
    let fixed_versions = in_order(kind, reported.fixed_versions);
    Finding {
        id: reported.id,
        aliases: reported.aliases,
        related: reported.related,
        purl: package
            .map(|p| p.purl.clone())
            .or(reported.purl)
            .unwrap_or_else(|| {
                format!(
                    "pkg:{}/{}@{}",
                    kind.as_str(),
                    reported.package,
                    reported.version
                )
            }),
        package: reported.package,
        installed_version: reported.version,
        kind,
        source_name: package
            .and_then(|p| p.source_name.clone())
            .or(reported.source_name),
        source_version: package
            .and_then(|p| p.source_version.clone())
            .or(reported.source_version),
        fixed_version,
        fixed_versions,
        severity: reported.severity,
        score: reported.score,
        summary: reported.summary,
        path: package
            .map(|p| p.path.trim_start_matches('/').to_string())
            .or(reported.path)
            .unwrap_or_else(|| database_path(kind).to_string()),
        layer: at.layer.diff_id.clone(),
        dockerfile: package
            .and_then(|p| p.dockerfile.clone())
            .or_else(|| at.layer.dockerfile.clone()),
        base_image: package
            .and_then(|p| p.base_image.clone())
            .or_else(|| at.layer.base_image.clone()),
        found_by: vec![tool.name().to_string()],
        new: None,
        fails_gate: false,
    }
}

/// Where a distribution's package database is, for a package the tool names without a file
/// (rpm's has several forms: none is guessed).
fn database_path(kind: PackageType) -> &'static str {
    match kind {
        PackageType::Deb => "var/lib/dpkg/status",
        PackageType::Apk => "lib/apk/db/installed",
        _ => "",
    }
}

/// `versions` in the ecosystem's order, then those it cannot read in text order (kept apart
/// so that the sort always sees a total order).
fn in_order(kind: PackageType, versions: Vec<String>) -> Vec<String> {
    let order = VersionOrder::of_package_type(kind);
    let (mut readable, mut unreadable): (Vec<String>, Vec<String>) = versions
        .into_iter()
        .partition(|v| version::is_valid(order, v));
    readable.sort_by(|a, b| version::compare(order, a, b).unwrap_or(std::cmp::Ordering::Equal));
    unreadable.sort();
    readable.append(&mut unreadable);
    readable.dedup();
    readable
}

/// The lowest fixed version above the installed one in the ecosystem's order; with versions
/// the order cannot read, the only fixed version if there is one.
fn applicable_fix(kind: PackageType, installed: &str, fixed: &[String]) -> Option<String> {
    let order = VersionOrder::of_package_type(kind);
    let above = |candidate: &&String| {
        version::compare(order, candidate, installed).is_ok_and(|o| o.is_gt())
    };
    let lowest = fixed
        .iter()
        .filter(above)
        .min_by(|a, b| version::compare(order, a, b).unwrap_or(std::cmp::Ordering::Equal));
    lowest.cloned().or_else(|| match fixed {
        [only] if !version::is_valid(order, only) || !version::is_valid(order, installed) => {
            Some(only.clone())
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scan/external");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
    }

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn image() -> ImageInventory {
        let layer = |n: u8, line: Option<u32>| Layer {
            diff_id: digest(n),
            dockerfile: line.map(|line| super::super::model::DockerfileLine {
                path: "api/Dockerfile".into(),
                line,
                stage: None,
            }),
            base_image: line.is_none().then(|| "debian:12".into()),
            created_by: None,
        };
        ImageInventory {
            image: "acme/api:1".into(),
            platform: Some("linux/amd64".into()),
            id: digest(0),
            manifest: None,
            os: None,
            packages: vec![Package {
                name: "libssl3".into(),
                version: "3.0.11-1~deb12u2".into(),
                kind: PackageType::Deb,
                purl: "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64".into(),
                source_name: Some("openssl".into()),
                source_version: None,
                licenses: Vec::new(),
                path: "/var/lib/dpkg/status".into(),
                layer: digest(1),
                dockerfile: None,
                base_image: Some("debian:12".into()),
            }],
            applications: Vec::new(),
            layers: vec![layer(1, None), layer(2, Some(4)), layer(3, Some(7))],
            findings: Vec::new(),
            vulnerabilities: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn trivy_s_report_reads_ids_versions_severities_and_scores() {
        let reported = parse_trivy(&fixture("trivy.json")).unwrap();
        assert_eq!(reported.len(), 4, "{reported:#?}");
        let ssl = &reported[0];
        assert_eq!(ssl.id, "CVE-2023-5678");
        assert_eq!(ssl.package, "libssl3");
        assert_eq!(ssl.kind, Some(PackageType::Deb));
        assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
        assert_eq!(ssl.fixed_versions, ["3.0.13-1~deb12u1"]);
        assert_eq!(ssl.severity, Severity::Medium);
        assert_eq!(ssl.score, Some(5.3));
        assert_eq!(ssl.aliases, ["DSA-5532-1"]);
        let unfixed = &reported[1];
        assert!(unfixed.fixed_versions.is_empty());
        assert_eq!(unfixed.severity, Severity::Low);
        let python = &reported[2];
        assert_eq!(python.kind, Some(PackageType::Pypi));
        assert_eq!(
            python.fixed_versions,
            ["2.32.0", "2.31.0"],
            "as the tool lists them"
        );
        assert_eq!(python.severity, Severity::Medium);
        assert_eq!(reported[3].kind, None, "a .NET package");
    }

    #[test]
    fn grype_s_report_reads_matches_related_ids_and_fixes() {
        let reported = parse_grype(&fixture("grype.json")).unwrap();
        assert_eq!(reported.len(), 3, "{reported:#?}");
        let ssl = &reported[0];
        assert_eq!(ssl.id, "CVE-2023-5678");
        assert_eq!(ssl.kind, Some(PackageType::Deb));
        assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
        assert_eq!(ssl.severity, Severity::Medium);
        assert_eq!(ssl.score, Some(5.3));
        assert_eq!(ssl.fixed_versions, ["3.0.13-1~deb12u1"]);
        assert_eq!(ssl.layer, None);
        let requests = &reported[1];
        // GHSA reported with its CVE as related: the CVE is the id.
        assert_eq!(requests.id, "CVE-2023-32681");
        assert_eq!(requests.aliases, ["GHSA-j8r2-6x86-q33q"]);
        assert_eq!(requests.kind, Some(PackageType::Pypi));
        assert_eq!(requests.suggested_fix.as_deref(), Some("2.31.0"));
        assert_eq!(requests.severity, Severity::Medium);
        assert_eq!(reported[2].severity, Severity::Low, "negligible is low");
    }

    #[test]
    fn findings_are_placed_on_the_inventory_s_package_or_the_tool_s_layer() {
        let reported = parse_trivy(&fixture("trivy.json")).unwrap();
        let mut image = image();
        // The stand-in report names layers by these diff IDs.
        image.layers[1].diff_id =
            "sha256:2222222222222222222222222222222222222222222222222222222222222222"
                .parse()
                .unwrap();
        let placed = place(Tool::Trivy, reported, &image);
        assert_eq!(placed.findings.len(), 3);
        assert_eq!(placed.skipped.len(), 1);
        assert!(placed.skipped[0].contains("nuget"), "{:?}", placed.skipped);
        let ssl = &placed.findings[0];
        assert_eq!(ssl.layer, digest(1));
        assert_eq!(ssl.path, "var/lib/dpkg/status");
        assert_eq!(ssl.base_image.as_deref(), Some("debian:12"));
        assert_eq!(
            ssl.purl,
            "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64"
        );
        assert_eq!(ssl.fixed_version.as_deref(), Some("3.0.13-1~deb12u1"));
        assert_eq!(ssl.found_by, ["trivy"]);
        assert!(!ssl.fails_gate);
        let unfixed = &placed.findings[1];
        assert_eq!(unfixed.fixed_version, None);
        // Not in the inventory, and Trivy names no file for an OS package: dpkg's database.
        assert_eq!(unfixed.path, "var/lib/dpkg/status");
        assert_eq!(unfixed.layer, digest(3), "no layer named: the top layer");
        let python = &placed.findings[2];
        // Not in the inventory: on the layer Trivy names, with that layer's Dockerfile line.
        assert_eq!(python.layer, image.layers[1].diff_id);
        assert_eq!(python.dockerfile.as_ref().map(|d| d.line), Some(4));
        assert_eq!(
            python.path,
            "usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA"
        );
        // 2.28.1: the lowest fix above it; every fix in PEP 440 order.
        assert_eq!(python.fixed_version.as_deref(), Some("2.31.0"));
        assert_eq!(python.fixed_versions, ["2.31.0", "2.32.0"]);
    }

    #[test]
    fn a_finding_with_no_known_layer_goes_on_the_top_layer() {
        let reported = parse_grype(&fixture("grype.json")).unwrap();
        let placed = place(Tool::Grype, reported, &image());
        let requests = placed
            .findings
            .iter()
            .find(|f| f.package == "requests")
            .unwrap();
        assert_eq!(requests.layer, digest(3));
        assert_eq!(requests.dockerfile.as_ref().map(|d| d.line), Some(7));
        let mut bare = image();
        bare.layers.clear();
        bare.packages.clear();
        let nowhere = place(
            Tool::Grype,
            parse_grype(&fixture("grype.json")).unwrap(),
            &bare,
        );
        assert!(nowhere.findings.is_empty());
        assert_eq!(nowhere.skipped.len(), 3);
    }

    #[test]
    fn the_reported_id_is_the_single_cve_else_a_ghsa_else_the_tool_s() {
        let ids = |own: &str, others: &[&str]| {
            let (id, aliases, related) =
                issue_id(own.into(), others.iter().map(|s| s.to_string()).collect());
            assert!(related.is_empty(), "{related:?}");
            (id, aliases)
        };
        assert_eq!(
            ids("GHSA-a", &["CVE-1"]),
            ("CVE-1".into(), vec!["GHSA-a".into()])
        );
        assert_eq!(
            ids("PYSEC-1", &["GHSA-a"]),
            ("GHSA-a".into(), vec!["PYSEC-1".into()])
        );
        assert_eq!(ids("CVE-9", &[]), ("CVE-9".into(), Vec::<String>::new()));
    }

    /// Several CVEs (a DSA naming three) are never joined into one of them, nor are they the
    /// DSA's aliases: they are `related`, so ignoring one does not hide the DSA.
    #[test]
    fn an_umbrella_s_several_cves_are_related_not_aliases() {
        let others = ["CVE-2", "CVE-1", "CVE-1", " ", "DLA-1"].map(String::from);
        let (id, aliases, related) = issue_id("DSA-1".into(), others.to_vec());
        assert_eq!(id, "DSA-1");
        assert_eq!(aliases, ["DLA-1"]);
        assert_eq!(related, ["CVE-1", "CVE-2"]);
    }

    #[test]
    fn the_applicable_fix_is_the_lowest_above_the_installed_version() {
        let fixes = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            applicable_fix(
                PackageType::Pypi,
                "2.28.1",
                &fixes(&["2.32.0", "2.31.0", "2.0"])
            ),
            Some("2.31.0".into())
        );
        assert_eq!(
            applicable_fix(PackageType::Pypi, "3.0", &fixes(&["2.31.0"])),
            None
        );
        assert_eq!(applicable_fix(PackageType::Deb, "1.0-1", &fixes(&[])), None);
        assert_eq!(
            applicable_fix(PackageType::Npm, "1.0.0", &fixes(&[">=4.17.11"])),
            Some(">=4.17.11".into()),
            "a fix the order cannot read is kept when it is the only one"
        );
    }

    #[test]
    fn arguments_follow_each_tool_s_documented_inputs() {
        let archive = Path::new("/tmp/img.tar");
        assert_eq!(
            arguments(Tool::Trivy, ImageInput::Reference("acme/api:1")),
            ["image", "--format", "json", "--quiet", "acme/api:1"]
        );
        assert_eq!(
            arguments(Tool::Trivy, ImageInput::Archive(archive)),
            [
                "image",
                "--format",
                "json",
                "--quiet",
                "--input",
                "/tmp/img.tar"
            ]
        );
        assert_eq!(
            arguments(Tool::Grype, ImageInput::Reference("acme/api:1")),
            ["acme/api:1", "-o", "json"]
        );
        assert_eq!(
            arguments(Tool::Grype, ImageInput::Archive(archive)),
            ["docker-archive:/tmp/img.tar", "-o", "json"]
        );
        assert_eq!(
            arguments(Tool::Grype, ImageInput::OciLayout(Path::new("/l")))[0],
            "oci-dir:/l"
        );
    }

    #[test]
    fn unreadable_reports_are_errors_never_empty_results() {
        let trivy_bad: [&[u8]; 8] = [
            b"",
            b"null",
            b"[]",
            b"{}",
            b"{\"SchemaVersion\": 1, \"Results\": []}",
            b"{\"SchemaVersion\": \"2\"}",
            b"{\"SchemaVersion\": 2, \"Results\": [{\"Vulnerabilities\": [{\"VulnerabilityID\": 7}]}]}",
            b"\xff\xfe garbage",
        ];
        for bad in trivy_bad {
            let err = parse_trivy(bad).expect_err(&String::from_utf8_lossy(bad));
            assert!(err.to_string().contains("trivy's JSON report"), "{err}");
        }
        let grype_bad: [&[u8]; 5] = [
            b"",
            b"{}",
            b"{\"matches\": null}",
            b"{\"matches\": [{\"vulnerability\": {}}]}",
            b"{\"matches\": [{\"vulnerability\": {\"id\": \"CVE-1\"}, \"artifact\": {\"name\": 1}}]}",
        ];
        for bad in grype_bad {
            let err = parse_grype(bad).expect_err(&String::from_utf8_lossy(bad));
            assert!(err.to_string().contains("grype's JSON report"), "{err}");
        }
        // A clean image: Trivy leaves Results out, Grype lists no matches.
        assert!(parse_trivy(b"{\"SchemaVersion\": 2}").unwrap().is_empty());
        assert!(parse_grype(b"{\"matches\": []}").unwrap().is_empty());
    }

    #[test]
    fn truncated_and_hostile_reports_never_panic() {
        for name in ["trivy.json", "grype.json"] {
            let full = fixture(name);
            for cut in (0..full.len()).step_by(7) {
                let _ = parse_trivy(&full[..cut]);
                let _ = parse_grype(&full[..cut]);
            }
        }
        let huge_score = b"{\"SchemaVersion\": 2, \"Results\": [{\"Type\": \"debian\", \"Vulnerabilities\": [{\"VulnerabilityID\": \"CVE-1\", \"PkgName\": \"a\", \"InstalledVersion\": \"1\", \"Severity\": \"SEVERE\", \"CVSS\": {\"nvd\": {\"V3Score\": 1e308}}, \"Layer\": {\"DiffID\": \"sha256:zz\"}}]}]}";
        let reported = parse_trivy(huge_score).unwrap();
        assert_eq!(reported[0].score, None);
        assert_eq!(reported[0].severity, Severity::Unknown);
        assert_eq!(reported[0].layer, None);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_trivy(deep.as_bytes()).is_err());
        assert!(parse_grype(deep.as_bytes()).is_err());
    }

    #[test]
    fn a_missing_tool_is_a_clear_error() {
        let empty = std::env::temp_dir();
        let err = run(
            Tool::Trivy,
            ImageInput::Reference("x"),
            Some(OsStr::new(empty.join("no-such-dir").as_os_str())),
        )
        .unwrap_err();
        assert!(
            matches!(err, ExternalError::Missing { tool: "trivy" }),
            "{err}"
        );
        assert!(err.to_string().contains("not on PATH"), "{err}");
    }
}
