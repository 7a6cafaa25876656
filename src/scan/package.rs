//! The facts catalogers find in one file, and the package types they report.
//!
//! A cataloger sees one file at a time and knows nothing of layers, the OS or the Dockerfile:
//! it returns [`FileFacts`]. The image's inventory puts these together (which files survive in
//! the final image, which layer brought each package, its purl with the distribution).

use serde::{Deserialize, Serialize};

/// A package's type: its purl type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageType {
    Deb,
    Apk,
    Rpm,
    Pypi,
    Npm,
    Golang,
    Cargo,
    Maven,
    Gem,
}

impl PackageType {
    /// The purl type, as in `pkg:<type>/...`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deb => "deb",
            Self::Apk => "apk",
            Self::Rpm => "rpm",
            Self::Pypi => "pypi",
            Self::Npm => "npm",
            Self::Golang => "golang",
            Self::Cargo => "cargo",
            Self::Maven => "maven",
            Self::Gem => "gem",
        }
    }
}

/// One package as a cataloger found it in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    #[serde(rename = "type")]
    pub kind: PackageType,
    /// The purl namespace where the type has one: a Maven group id, an npm scope with its `@`
    /// (`@babel`); `None` otherwise (a Go module's whole path is its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The name as the ecosystem writes it (dpkg `Package:`, a dist-info's `Name:` unnormalised,
    /// an npm package's name without its scope, a Go module path).
    pub name: String,
    /// The version as the package database records it (dpkg's with its epoch, rpm's
    /// `[epoch:]version-release`, a Go module's `v1.2.3`).
    pub version: String,
    /// The architecture, for distribution packages (`amd64`, `x86_64`, `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The source package, for distribution packages whose advisories are keyed by it (dpkg
    /// `Source:`, apk `o:`, rpm's source rpm name); `None` when it is the binary's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// The source package's version when the database gives one that differs from `version`
    /// (dpkg `Source: name (version)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// SPDX ids or licence names as declared, in the order found, each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
}

impl Found {
    /// A package of `kind` with only a name and version.
    pub fn new(kind: PackageType, name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: None,
            name: name.into(),
            version: version.into(),
            arch: None,
            source_name: None,
            source_version: None,
            licenses: Vec::new(),
        }
    }
}

/// `etc/os-release` (or `usr/lib/os-release`): the distribution release that vulnerability data
/// is scoped to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`, e.g. `debian`, `alpine`, `ubuntu`.
    pub id: Option<String>,
    /// `VERSION_ID`, e.g. `12`, `3.19.1`.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`, e.g. `bookworm`.
    pub codename: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

/// What one file says, as the inventory keeps it per layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileFacts {
    /// Packages declared by the file. `database` is true for a file that lists many packages
    /// and is rewritten whole by each install (dpkg `status`, apk `installed`, an rpmdb): the
    /// inventory then credits each package to the layer where it first appeared at its version,
    /// not to the last layer that rewrote the file.
    Packages {
        database: bool,
        packages: Vec<Found>,
    },
    /// The application's own manifest (a `package.json` outside `node_modules`): a component
    /// that is not a dependency.
    Application { package: Found },
    /// The OS release.
    OsRelease(OsRelease),
    /// Licences that a distribution package's copyright file declares
    /// (`usr/share/doc/<package>/copyright`).
    Licenses {
        package: String,
        licenses: Vec<String>,
    },
    /// A package database this version cannot read (Berkeley DB and NDB rpm databases): never
    /// an empty inventory without a word.
    NotRead { reason: String },
}
