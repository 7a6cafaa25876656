//! Save streams shaped like each engine's `docker save`, for unit tests: Docker 20.10's legacy
//! layout, Docker 25+'s OCI layout on the classic store (uncompressed layers, one manifest) and
//! on the containerd store (gzip layers, an index with a provenance attestation).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde_json::json;

use super::SaveFormatError;
use super::reader::{SavedImage, read_save};
use crate::cache::digest::Digest;

/// Every blob a read staged, by digest.
pub type Blobs = BTreeMap<Digest, Vec<u8>>;

/// Reads the save stream `tar`, keeping every staged blob in memory.
pub fn read_in_memory(tar: &[u8]) -> Result<(Vec<SavedImage>, Blobs), SaveFormatError> {
    let mut staged = Blobs::new();
    let mut stage = |blob: &mut dyn Read| -> Result<(Digest, u64), SaveFormatError> {
        let mut bytes = Vec::new();
        blob.read_to_end(&mut bytes).expect("read");
        let digest = Digest::of(&bytes);
        let size = bytes.len() as u64;
        staged.insert(digest.clone(), bytes);
        Ok((digest, size))
    };
    let images = read_save(&mut &tar[..], &mut stage)?;
    Ok((images, staged))
}

/// A tar being put together.
pub struct TarBuilder(tar::Builder<Vec<u8>>);

impl TarBuilder {
    pub fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    pub fn file(mut self, name: &str, data: &[u8]) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).expect("path");
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        self.0.append(&header, data).expect("append");
        self
    }

    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).expect("path");
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_link_name(target).expect("link");
        header.set_size(0);
        header.set_cksum();
        self.0.append(&header, &b""[..]).expect("link");
        self
    }

    /// A blob under `blobs/sha256/`; returns its digest too.
    pub fn blob(self, data: &[u8]) -> (Self, Digest) {
        let digest = Digest::of(data);
        (
            self.file(&format!("blobs/sha256/{}", digest.hex()), data),
            digest,
        )
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner().expect("tar")
    }
}

/// A layer tar holding one file.
pub fn layer(file: &str, content: &[u8]) -> Vec<u8> {
    TarBuilder::new().file(file, content).finish()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// An image config naming `layers` (uncompressed) as its diff ids.
pub fn config(label: &str, layers: &[&[u8]]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": { "test": label } },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .expect("config")
}

pub fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    json!({
        "mediaType": media_type,
        "digest": Digest::of(bytes).to_string(),
        "size": bytes.len(),
    })
}

pub fn manifest(config: &[u8], layers: &[(&str, &[u8])]) -> Vec<u8> {
    let layers: Vec<_> = layers.iter().map(|(t, l)| descriptor(t, l)).collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": layers,
    }))
    .expect("manifest")
}

pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Two images as Docker 20.10 saves them: `app:1` (base layer) and `other:latest` (the base
/// layer again, as a symlink, and a top layer).
pub fn legacy_save() -> Vec<u8> {
    let (base, top) = (layer("base", b"base"), layer("top", b"top"));
    let config_a = config("a", &[&base]);
    let config_b = config("b", &[&base, &top]);
    let (ha, hb) = (Digest::of(&config_a), Digest::of(&config_b));
    let manifest = json!([
        { "Config": format!("{}.json", ha.hex()), "RepoTags": ["reg:5000/app:1"], "Layers": ["l1/layer.tar"] },
        { "Config": format!("{}.json", hb.hex()), "RepoTags": ["other:latest"], "Layers": ["l2/layer.tar", "l3/layer.tar"] },
        { "Config": format!("{}.json", ha.hex()), "RepoTags": null, "Layers": ["l1/layer.tar"] },
    ]);
    TarBuilder::new()
        .file(&format!("{}.json", ha.hex()), &config_a)
        .file(&format!("{}.json", hb.hex()), &config_b)
        .file("l1/VERSION", b"1.0")
        .file("l1/json", b"{}")
        .file("l1/layer.tar", &base)
        .symlink("l2/layer.tar", "../l1/layer.tar")
        .file("l3/layer.tar", &top)
        .file("repositories", b"{}")
        .file("manifest.json", manifest.to_string().as_bytes())
        .finish()
}

/// One image, `app:1`, as the classic store of Docker 25+ saves it: an OCI layout whose one
/// manifest names uncompressed layers, with legacy symlinks beside the blobs.
pub fn classic_oci_save() -> Vec<u8> {
    let (base, top) = (layer("base", b"base"), layer("top", b"top"));
    let config = config("a", &[&base, &top]);
    let manifest = manifest(&config, &[(LAYER_TAR, &base), (LAYER_TAR, &top)]);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [annotated(descriptor("application/vnd.oci.image.manifest.v1+json", &manifest), "docker.io/library/app:1")],
    });
    let (tar, hc) = TarBuilder::new().blob(&config);
    let (tar, hb) = tar.blob(&base);
    let (tar, ht) = tar.blob(&top);
    let (tar, _) = tar.blob(&manifest);
    let listing = json!([{
        "Config": format!("blobs/sha256/{}", hc.hex()),
        "RepoTags": ["app:1"],
        "Layers": [format!("blobs/sha256/{}", hb.hex()), format!("blobs/sha256/{}", ht.hex())],
    }]);
    tar.symlink("legacy/layer.tar", &format!("../blobs/sha256/{}", hb.hex()))
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file("index.json", index.to_string().as_bytes())
        .file("manifest.json", listing.to_string().as_bytes())
        .finish()
}

fn annotated(mut descriptor: serde_json::Value, name: &str) -> serde_json::Value {
    let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
    descriptor["annotations"] = json!({
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": tag,
    });
    descriptor
}

/// What [`containerd_save`] is made of, for assertions.
pub struct ContainerdSave {
    pub tar: Vec<u8>,
    pub index: Digest,
    pub manifest: Digest,
    pub attestation: Digest,
    pub config: Digest,
    pub layers: Vec<Digest>,
    pub diff_ids: Vec<Digest>,
    /// The in-toto statement and its config: blobs only the attestation names.
    pub attestation_blobs: Vec<Digest>,
}

/// One image, tagged `app:1` and `reg:5000/app:latest`, as the containerd store saves a BuildKit
/// build: `index.json` names an image index (one entry per tag), which holds the image manifest
/// (gzip layers) and a provenance attestation manifest (platform `unknown/unknown`). The index
/// also names an arm64 manifest the stream does not hold.
pub fn containerd_save() -> ContainerdSave {
    let (base, top) = (layer("base", b"base"), layer("top", b"top"));
    let (base_gz, top_gz) = (gzip(&base), gzip(&top));
    let config = config("a", &[&base, &top]);
    let manifest = manifest(&config, &[(LAYER_GZIP, &base_gz), (LAYER_GZIP, &top_gz)]);
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#.to_vec();
    let attestation_config =
        br#"{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let attestation = attestation_manifest(&attestation_config, &statement);
    let missing_arm = br#"{"schemaVersion":2,"not":"in the stream"}"#;
    let mut image_manifest = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    image_manifest["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let mut arm = descriptor("application/vnd.oci.image.manifest.v1+json", missing_arm);
    arm["platform"] = json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
    let mut attestation_descriptor =
        descriptor("application/vnd.oci.image.manifest.v1+json", &attestation);
    attestation_descriptor["platform"] = json!({"architecture": "unknown", "os": "unknown"});
    attestation_descriptor["annotations"] = json!({
        "vnd.docker.reference.digest": Digest::of(&manifest).to_string(),
        "vnd.docker.reference.type": "attestation-manifest",
    });
    let image_index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [image_manifest, arm, attestation_descriptor],
    }))
    .expect("index");
    let top_index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            annotated(descriptor("application/vnd.oci.image.index.v1+json", &image_index), "docker.io/library/app:1"),
            annotated(descriptor("application/vnd.oci.image.index.v1+json", &image_index), "reg:5000/app:latest"),
        ],
    });
    let tar = TarBuilder::new();
    let (tar, index_digest) = tar.blob(&image_index);
    let (tar, manifest_digest) = tar.blob(&manifest);
    let (tar, attestation_digest) = tar.blob(&attestation);
    let (tar, statement_digest) = tar.blob(&statement);
    let (tar, attestation_config_digest) = tar.blob(&attestation_config);
    let (tar, config_digest) = tar.blob(&config);
    let (tar, base_digest) = tar.blob(&base_gz);
    let (tar, top_digest) = tar.blob(&top_gz);
    let listing = json!([{
        "Config": format!("blobs/sha256/{}", config_digest.hex()),
        "RepoTags": ["app:1", "reg:5000/app:latest"],
        "Layers": [format!("blobs/sha256/{}", base_digest.hex()), format!("blobs/sha256/{}", top_digest.hex())],
    }]);
    let tar = tar
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file("index.json", top_index.to_string().as_bytes())
        .file("manifest.json", listing.to_string().as_bytes())
        .finish();
    ContainerdSave {
        tar,
        index: index_digest,
        manifest: manifest_digest,
        attestation: attestation_digest,
        config: config_digest,
        layers: vec![base_digest, top_digest],
        diff_ids: vec![Digest::of(&base), Digest::of(&top)],
        attestation_blobs: vec![statement_digest, attestation_config_digest],
    }
}

/// A provenance attestation manifest: its config and one in-toto layer.
fn attestation_manifest(config: &[u8], statement: &[u8]) -> Vec<u8> {
    let mut layer = descriptor("application/vnd.in-toto+json", statement);
    layer["annotations"] = json!({"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"});
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [layer],
    }))
    .expect("attestation")
}
