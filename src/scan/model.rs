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
    /// Vulnerability findings (none before matching).
    pub findings: Vec<serde_json::Value>,
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
