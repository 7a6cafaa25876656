//! One platform's image as the scan sees it (its config, manifest and layers), and the
//! assembly of its inventory from the layers' inventories and the layers' origins.

use serde::{Deserialize, Serialize};

use super::layer::LayerInventory;
use super::model::{ImageInventory, Layer, Package, ScanWarning};
use super::origin::LayerOrigin;
use super::package::{Found, PackageType};
use super::purl::purl;
use super::squash::{Located, squash};
use crate::cache::digest::Digest;

/// The parts of an image config a scan reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// One entry of the config's history: one per instruction, `empty_layer` for those that made
/// no layer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Parses a config blob; the error says what is wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not an image config: {e}"))
    }

    /// `os/arch[/variant]`, or `None` when the config names neither.
    pub fn platform(&self) -> Option<String> {
        if self.os.is_empty() && self.architecture.is_empty() {
            return None;
        }
        let mut platform = format!("{}/{}", self.os, self.architecture);
        if let Some(variant) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            platform = format!("{platform}/{variant}");
        }
        Some(platform)
    }

    /// The history entries that made a layer, in order: one per diff ID when the history is
    /// complete (Docker writes it so; hand-made images may not).
    pub fn layer_history(&self) -> Vec<&History> {
        self.history.iter().filter(|h| !h.empty_layer).collect()
    }
}

/// One platform's image to scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanTarget {
    /// The reference as given, or the input's name.
    pub reference: String,
    /// The config blob's digest: the image id on the classic store.
    pub config_digest: Digest,
    /// The platform's manifest, when the image came with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Digest>,
    /// Ids a build may have recorded this image's origins under: the engine's image id, an
    /// index's digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_ids: Vec<Digest>,
    pub config: ImageConfig,
}

impl ScanTarget {
    /// Every id the image may be known by, the config digest first.
    pub fn ids(&self) -> Vec<&Digest> {
        std::iter::once(&self.config_digest)
            .chain(&self.manifest)
            .chain(&self.other_ids)
            .collect()
    }
}

/// The inventory of `target` from its layers' inventories (`layers[i]` for diff ID `i`;
/// `None` for a layer that could not be read) and their origins.
pub fn assemble(
    target: &ScanTarget,
    layers: &[Option<LayerInventory>],
    origins: &[LayerOrigin],
    mut warnings: Vec<ScanWarning>,
) -> ImageInventory {
    let diff_ids = &target.config.rootfs.diff_ids;
    let readable: Vec<LayerInventory> = layers.iter().flatten().cloned().collect();
    // Layer indexes of the squash count only the readable layers; map them back.
    let positions: Vec<usize> = layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_some())
        .map(|(i, _)| i)
        .collect();
    for (inventory, &position) in readable.iter().zip(&positions) {
        for warning in &inventory.warnings {
            warnings.push(ScanWarning {
                layer: Some(diff_ids[position].clone()),
                ..warning.clone()
            });
        }
    }
    let squashed = squash(&readable);
    warnings.extend(squashed.warnings);
    let os = squashed.os;
    let report = |located: Located| {
        let position = positions[located.layer];
        let origin = origins.get(position);
        Package {
            purl: purl(&located.found, os.as_ref()),
            name: reported_name(&located.found),
            version: located.found.version,
            kind: located.found.kind,
            source_name: located.found.source_name,
            source_version: located.found.source_version,
            licenses: located.found.licenses,
            path: format!("/{}", located.path),
            layer: diff_ids[position].clone(),
            dockerfile: origin.and_then(|o| o.dockerfile.clone()),
            base_image: origin.and_then(|o| o.base_image.clone()),
        }
    };
    let packages = squashed.packages.into_iter().map(report).collect();
    let applications = squashed.applications.into_iter().map(report).collect();
    let layer_list = diff_ids
        .iter()
        .enumerate()
        .map(|(i, diff_id)| {
            let origin = origins.get(i);
            Layer {
                diff_id: diff_id.clone(),
                dockerfile: origin.and_then(|o| o.dockerfile.clone()),
                base_image: origin.and_then(|o| o.base_image.clone()),
                created_by: origin.and_then(|o| o.created_by.clone()),
            }
        })
        .collect();
    ImageInventory {
        image: target.reference.clone(),
        platform: target.config.platform(),
        id: target.config_digest.clone(),
        manifest: target.manifest.clone(),
        os,
        packages,
        applications,
        layers: layer_list,
        findings: Vec::new(),
        vulnerabilities: None,
        warnings,
    }
}

/// The name a package is reported by: an npm package with its scope (`@babel/traverse`), as
/// npm, syft and the advisories write it; every other name as the cataloger read it (a Maven
/// artifact's group stays in its purl).
fn reported_name(found: &Found) -> String {
    match (&found.kind, &found.namespace) {
        (PackageType::Npm, Some(scope)) => format!("{scope}/{}", found.name),
        _ => found.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scoped_npm_package_is_reported_with_its_scope() {
        let mut scoped = Found::new(PackageType::Npm, "once", "2.0.0");
        scoped.namespace = Some("@tootallnate".into());
        assert_eq!(reported_name(&scoped), "@tootallnate/once");
        assert_eq!(
            reported_name(&Found::new(PackageType::Npm, "semver", "7.5.4")),
            "semver"
        );
        let mut jar = Found::new(PackageType::Maven, "snakeyaml", "1.33");
        jar.namespace = Some("org.yaml".into());
        assert_eq!(
            reported_name(&jar),
            "snakeyaml",
            "the group stays in the purl"
        );
    }
}
