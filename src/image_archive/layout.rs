//! The JSON documents of an image archive: docker's `manifest.json`, and the OCI image layout's
//! `index.json`, image indexes, image manifests and the image config (only what we read of it).
//! Docker's own media types are accepted beside the OCI ones, since both occur in saves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cache::digest::Digest;

/// `oci-layout`'s only field.
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";

/// `index.json` annotations naming an image: containerd's full reference, and the OCI one
/// (docker writes the tag alone there; other tools the full reference).
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";
pub const OCI_REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// BuildKit marks attestation manifests (provenance, SBOM) in an index with this annotation.
const REFERENCE_TYPE_ANNOTATION: &str = "vnd.docker.reference.type";

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// One element of a docker-save `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SaveManifestEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn is_index(&self) -> bool {
        matches!(self.media_type.as_str(), OCI_INDEX | DOCKER_MANIFEST_LIST)
    }

    pub fn is_manifest(&self) -> bool {
        matches!(self.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST)
    }

    /// An attestation manifest in an index (BuildKit gives these the platform `unknown/unknown`
    /// and a reference-type annotation); never the image itself.
    pub fn is_attestation(&self) -> bool {
        self.annotations.contains_key(REFERENCE_TYPE_ANNOTATION)
            || self
                .platform
                .as_ref()
                .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
    }

    /// The image reference an `index.json` entry names, in docker's familiar form.
    pub fn reference(&self) -> Option<String> {
        let named = self
            .annotations
            .get(CONTAINERD_NAME_ANNOTATION)
            .or_else(|| {
                // A bare tag ("latest") names nothing by itself.
                self.annotations
                    .get(OCI_REF_NAME_ANNOTATION)
                    .filter(|r| r.contains('/') || r.contains(':'))
            })?;
        Some(familiar(named).to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// `index.json`, or an image index blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// An image manifest blob (only the parts that name other blobs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Manifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// The part of an image config that names its layers: their uncompressed digests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Config {
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// How a layer blob is compressed, from its first bytes (media types lie less often than
/// nothing, but docker's legacy layout has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

impl LayerCompression {
    pub fn sniff(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Self::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Self::Zstd,
            _ => Self::None,
        }
    }
}

/// `docker.io/library/busybox:latest` → `busybox:latest`, `docker.io/acme/x` → `acme/x`: the
/// form docker prints and `manifest.json` uses.
pub fn familiar(reference: &str) -> &str {
    reference
        .strip_prefix("docker.io/library/")
        .or_else(|| reference.strip_prefix("docker.io/"))
        .unwrap_or(reference)
}

/// The reference containerd stores for a familiar one: `busybox:latest` →
/// `docker.io/library/busybox:latest`; a reference with a registry host is kept.
pub fn normalized(reference: &str) -> String {
    let (first, rest) = match reference.split_once('/') {
        Some(split) => split,
        None => return format!("docker.io/library/{reference}"),
    };
    let is_host = first.contains('.') || first.contains(':') || first == "localhost";
    if is_host {
        reference.to_owned()
    } else {
        format!("docker.io/{first}/{rest}")
    }
}

/// `registry:5000/a/b:tag` → `registry:5000/a/b` (the colon of a port is not a tag's).
pub fn repository(reference: &str) -> &str {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => reference,
    }
}

/// `registry:5000/a/b:tag` → `tag`; `latest` when the reference has none.
pub fn tag_of(reference: &str) -> &str {
    let repo = repository(reference);
    reference
        .get(repo.len() + 1..)
        .filter(|t| !t.is_empty())
        .unwrap_or("latest")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_convert_between_familiar_and_normalized_forms() {
        for (familiar_form, full) in [
            ("busybox:latest", "docker.io/library/busybox:latest"),
            ("acme/api:1", "docker.io/acme/api:1"),
            ("127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t"),
            ("localhost/x:1", "localhost/x:1"),
            ("ghcr.io/o/r:2", "ghcr.io/o/r:2"),
        ] {
            assert_eq!(normalized(familiar_form), full);
            assert_eq!(familiar(full), familiar_form);
        }
    }

    #[test]
    fn references_split_at_the_tag_not_the_port() {
        assert_eq!(repository("reg:5000/a/b:tag"), "reg:5000/a/b");
        assert_eq!(repository("reg:5000/a/b"), "reg:5000/a/b");
        assert_eq!(repository("busybox:latest"), "busybox");
        assert_eq!(tag_of("reg:5000/a:v1"), "v1");
        assert_eq!(tag_of("reg:5000/a"), "latest");
        assert_eq!(tag_of("a:"), "latest");
    }

    #[test]
    fn compression_is_read_from_the_first_bytes() {
        assert_eq!(
            LayerCompression::sniff(&[0x1f, 0x8b, 8]),
            LayerCompression::Gzip
        );
        assert_eq!(
            LayerCompression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            LayerCompression::Zstd
        );
        assert_eq!(LayerCompression::sniff(b"bin/"), LayerCompression::None);
        assert_eq!(LayerCompression::sniff(b""), LayerCompression::None);
    }
}
