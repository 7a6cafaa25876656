//! The inventory of images as `buildopt scan` reports it: the versioned JSON document
//! (`{"version": 1, "images": [...]}`) that every renderer (text, CycloneDX, SPDX) formats.

use serde::{Deserialize, Serialize};

use super::package::{OsRelease, PackageType};
use crate::cache::digest::Digest;

/// The version of the JSON document; raised when a field changes meaning or goes away.
pub const SCAN_FORMAT_VERSION: u32 = 1;

/// Everything one `scan` found: one entry per image and platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    pub version: u32,
    pub images: Vec<ImageInventory>,
    /// The images asked for that could not be read at all: the others are still reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<UnreadableImage>,
}

/// An image asked for that could not be read (no such image, a corrupt file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableImage {
    /// As asked for: the reference, or the input's path as given.
    pub input: String,
    /// Why it could not be read.
    pub error: String,
}

/// One image (one platform of an index) and what is inside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInventory {
    /// The reference scanned, as given (`acme/api:1.2`), or the input's name.
    pub image: String,
    /// `os/arch[/variant]` from the image config.
    pub platform: Option<String>,
    /// The config digest: the same on every image store.
    pub id: Digest,
    /// The manifest digest, when the image came with one (OCI layouts, the containerd store).
    pub manifest: Option<Digest>,
    /// The OS release, when the image has an `os-release` file.
    pub os: Option<OsRelease>,
    /// Every package, sorted by type, name, version and path.
    pub packages: Vec<Package>,
    /// Applications' own manifests (a `package.json` outside `node_modules`): components of the
    /// image that are not installed packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<Package>,
    /// The layers, base first, with what made each.
    pub layers: Vec<Layer>,
    /// Vulnerability findings, after the ignore file and the report level; empty when the
    /// image was not matched (`vulnerabilities` says why).
    pub findings: Vec<Finding>,
    /// Whether and against which database the packages were matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerabilities: Option<MatchStatus>,
    /// What could not be read, each naming the file and layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ScanWarning>,
}

/// One package in the final image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    #[serde(rename = "type")]
    pub kind: PackageType,
    pub purl: String,
    pub source_name: Option<String>,
    pub source_version: Option<String>,
    pub licenses: Vec<String>,
    /// The file that declares it, from the image root (`/var/lib/dpkg/status`).
    pub path: String,
    /// The diff ID of the layer that brought it at this version.
    pub layer: Digest,
    /// The Dockerfile line that made that layer; `None` for images buildopt did not build and
    /// for base-image layers.
    pub dockerfile: Option<DockerfileLine>,
    /// The base image whose layer brought it, when it came with the base.
    pub base_image: Option<String>,
}

/// A Dockerfile instruction, by file and line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DockerfileLine {
    /// The Dockerfile's path from the workspace root.
    pub path: String,
    /// The instruction's first line, from 1.
    pub line: u32,
    /// The stage the instruction belongs to, when it is named; for a `COPY --from=<stage>`
    /// layer, that source stage.
    pub stage: Option<String>,
}

/// One layer of an image and what made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub diff_id: Digest,
    /// The Dockerfile line that made it, when buildopt built the image.
    pub dockerfile: Option<DockerfileLine>,
    /// The base image it came with, when it is a base layer.
    pub base_image: Option<String>,
    /// The config history's `created_by`, when there is one.
    pub created_by: Option<String>,
}

/// Something the scan could not read: the image is still reported, without that file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanWarning {
    /// The file, from the image root, when the warning is about one.
    pub path: Option<String>,
    /// The layer the file is in, when known.
    pub layer: Option<Digest>,
    pub message: String,
}

/// How bad a finding is: from CVSS scores where the records have vectors, else the record's
/// own word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// One vulnerability (one issue, under one id) in one installed package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The id by a fixed rule: the CVE-keyed distribution record, else the GHSA, else
    /// the record's own id; stable as the database grows.
    pub id: String,
    /// Every other id of the issue (the merged records' ids and aliases), sorted: ids of the
    /// same issue, which an ignore entry may name instead of `id`.
    pub aliases: Vec<String>,
    /// For a record naming several CVEs (a DSA fixing three), those CVEs, sorted: each is an
    /// issue of its own, so an ignore entry naming one does not cover this finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// The installed package (for Debian, the binary package).
    pub package: String,
    /// Its version as the package database records it.
    pub installed_version: String,
    #[serde(rename = "type")]
    pub kind: PackageType,
    pub purl: String,
    /// The source package and version the comparison used (distribution records name them).
    pub source_name: Option<String>,
    pub source_version: Option<String>,
    /// The fix that applies to the installed version, or `None` ("no fix yet").
    pub fixed_version: Option<String>,
    /// Every fixed version the records name, in the ecosystem's order.
    pub fixed_versions: Vec<String>,
    pub severity: Severity,
    /// The highest CVSS base score among the records, when any has a vector.
    pub score: Option<f64>,
    /// A one-line summary from the records, when they have one.
    pub summary: Option<String>,
    /// The declaring file, the layer that brought the package and its Dockerfile line.
    pub path: String,
    pub layer: Digest,
    pub dockerfile: Option<DockerfileLine>,
    pub base_image: Option<String>,
    /// Who found it: `buildopt`, `trivy`, `grype`.
    pub found_by: Vec<String>,
    /// Present now and absent from the base build's findings; `None` when the base build's
    /// inventory is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<bool>,
    /// Whether this finding fails the gate (`FAIL_ON_CRITICAL`, `FAIL_ON_HIGH`, less what
    /// `--ignore-unfixed` exempts).
    #[serde(default)]
    pub fails_gate: bool,
}

/// Whether an image's packages were matched against vulnerability data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchStatus {
    /// `false`: not scanned (no database); `reason` says why.
    pub scanned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The database's content version and when its data was last modified (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_modified: Option<String>,
    /// The day the database was built or last confirmed against its source (`YYYY-MM-DD`),
    /// and its age in whole days when the scan ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_built: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_age_days: Option<u64>,
    /// Findings the ignore file or the report level left out.
    #[serde(default)]
    pub ignored: usize,
    #[serde(default)]
    pub below_level: usize,
    /// Packages (or records of a package) that could not be matched, each with why: checked
    /// by nothing, so never left out silently. They do not fail the gate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_matched: Vec<NotMatched>,
}

/// A package that could not be matched, or a record that could not be evaluated for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NotMatched {
    pub package: String,
    pub version: String,
    #[serde(rename = "type")]
    pub kind: PackageType,
    /// The declaring file.
    pub path: String,
    pub reason: NotMatchedReason,
    /// The particulars: the record id and the version it cannot read, the ecosystem, ...
    pub detail: String,
}

/// Why a package could not be matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotMatchedReason {
    /// The OS release names no release to scope distribution records to (no `os-release`, no
    /// `VERSION_ID`: Debian testing or sid with an unknown codename).
    NoRelease,
    /// A distribution OSV has no data for (Fedora, Amazon Linux, SUSE).
    UnknownDistribution,
    /// The installed version is not one the ecosystem's order can read (PyPI `1.0-foo-bar`,
    /// Go `(devel)`), or the ecosystem has no order here.
    UnreadableVersion,
    /// A record's range names a version the order cannot read: that record is not evaluated.
    UnreadableRecord,
    /// The package has no OSV name (a Maven artifact without its group).
    NoOsvName,
}

impl NotMatchedReason {
    /// The words people read, in the count of each reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoRelease => "no OS release to match against",
            Self::UnknownDistribution => "distribution without OSV data",
            Self::UnreadableVersion => "version the ecosystem's order cannot read",
            Self::UnreadableRecord => "record with a version the order cannot read",
            Self::NoOsvName => "no OSV package name",
        }
    }
}

/// A package of `kind` with only a name and version, as the matcher's and the check's tests
/// make them.
#[cfg(test)]
impl Package {
    pub fn plain(kind: PackageType, name: &str, version: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            kind,
            purl: format!("pkg:{}/{name}@{version}", kind.as_str()),
            source_name: None,
            source_version: None,
            licenses: Vec::new(),
            path: format!("/{name}"),
            layer: Digest::of(b"layer"),
            dockerfile: None,
            base_image: None,
        }
    }
}
