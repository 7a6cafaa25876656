//! Where images are read from: a save stream (the daemon's `docker save`, or a `docker save`
//! tarball), an OCI image layout folder, or the layer store. Each gives, per platform, the
//! image's config and the layer blob of each diff ID; a layer is read only when the scan cache
//! does not already know its inventory.
//!
//! A save stream cannot be read out of order, so every layer in it is inventoried as it
//! streams by; folders and the store are read layer by layer, cached layers skipped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::ScanError;
use super::cache::ScanCache;
use super::image::{ImageConfig, ScanTarget};
use super::layer::{LayerInventory, inventory_layer, inventory_streamed_layer};
use super::model::ScanWarning;
use crate::cache::digest::Digest;
use crate::cache::store::{ImageEntry, Store};
use crate::image_archive::layout::{Descriptor, Index, Manifest, familiar, normalized};
use crate::image_archive::{SaveFormatError, SavedImage, read_save};

/// JSON documents (indexes, manifests, configs) above this size are not read.
const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

/// One platform's image in a source, with the blob of each of its layers.
#[derive(Debug, Clone)]
pub struct SourceImage {
    pub target: ScanTarget,
    /// The layer blobs, one per diff ID, base first.
    pub layer_blobs: Vec<Digest>,
}

/// Counts of what a scan read, for the report and for tests: a second scan reads no layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub layers_read: usize,
    pub layers_cached: usize,
}

/// An image's platforms, their layers' inventories (`None`: not readable) and warnings.
#[derive(Debug)]
pub struct ReadImage {
    pub target: ScanTarget,
    pub layers: Vec<Option<LayerInventory>>,
    pub warnings: Vec<ScanWarning>,
}

/// The JSON documents a walk from `index.json` reads, by digest.
trait Documents {
    fn document(&self, digest: &Digest) -> Option<Vec<u8>>;
}

/// Every platform image `root` reaches (an index's manifests, attestations left out, or the
/// manifest itself), named `reference`. Platforms whose documents the source lacks are
/// skipped: a save holds only the platforms the engine has.
fn platform_images(reference: &str, root: &Descriptor, docs: &dyn Documents) -> Vec<SourceImage> {
    let mut images = Vec::new();
    let mut pending = vec![(root.clone(), 0)];
    while let Some((descriptor, depth)) = pending.pop() {
        if descriptor.is_index() && depth < 4 {
            let Some(index) = parse::<Index>(docs, &descriptor.digest) else {
                continue;
            };
            let nested = index
                .manifests
                .into_iter()
                .filter(|d| !d.is_attestation())
                .rev()
                .map(|d| (d, depth + 1));
            pending.extend(nested);
        } else if descriptor.is_manifest() || descriptor.media_type.is_empty() {
            let Some(manifest) = parse::<Manifest>(docs, &descriptor.digest) else {
                continue;
            };
            let Some(config) = read_config(docs, &manifest.config.digest) else {
                continue;
            };
            let other_ids = (descriptor.digest != root.digest)
                .then(|| root.digest.clone())
                .into_iter()
                .collect();
            images.push(SourceImage {
                target: ScanTarget {
                    reference: reference.to_owned(),
                    config_digest: manifest.config.digest.clone(),
                    manifest: Some(descriptor.digest.clone()),
                    other_ids,
                    config,
                },
                layer_blobs: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
            });
        }
    }
    images
}

fn parse<T: serde::de::DeserializeOwned>(docs: &dyn Documents, digest: &Digest) -> Option<T> {
    serde_json::from_slice(&docs.document(digest)?).ok()
}

fn read_config(docs: &dyn Documents, digest: &Digest) -> Option<ImageConfig> {
    ImageConfig::parse(&docs.document(digest)?).ok()
}

/// A legacy-layout image (no manifest): its config and layers as `manifest.json` lists them.
fn legacy_image(
    reference: &str,
    config: &Digest,
    layers: &[Digest],
    docs: &dyn Documents,
) -> Result<SourceImage, String> {
    let bytes = docs
        .document(config)
        .ok_or_else(|| format!("its config {config} is missing"))?;
    Ok(SourceImage {
        target: ScanTarget {
            reference: reference.to_owned(),
            config_digest: config.clone(),
            manifest: None,
            other_ids: Vec::new(),
            config: ImageConfig::parse(&bytes)?,
        },
        layer_blobs: layers.to_vec(),
    })
}

/// Reads every image of a save stream (`docker save` output), inventorying each layer as it
/// streams by. `name` names the images that carry no tag (the file, or the reference asked
/// for).
pub fn read_save_stream(
    reader: &mut dyn Read,
    name: &str,
    stats: &mut ReadStats,
) -> Result<Vec<ReadImage>, SaveFormatError> {
    let mut documents = StreamDocuments::default();
    let mut layers: BTreeMap<Digest, LayerInventory> = BTreeMap::new();
    let mut stage = |blob: &mut dyn Read| -> Result<(Digest, u64), SaveFormatError> {
        let tar_error = |e: io::Error| SaveFormatError::Tar(e.to_string());
        let mut hashing = BlobHasher::new(blob);
        let mut buffered = BufReader::with_capacity(1 << 16, &mut hashing);
        let is_json = buffered.fill_buf().map_err(tar_error)?.first() == Some(&b'{');
        if is_json {
            let mut bytes = Vec::new();
            (&mut buffered)
                .take(MAX_DOCUMENT_BYTES)
                .read_to_end(&mut bytes)
                .map_err(tar_error)?;
            io::copy(&mut buffered, &mut io::sink()).map_err(tar_error)?;
            drop(buffered);
            let (digest, size) = hashing.finish();
            documents.0.insert(digest.clone(), bytes);
            return Ok((digest, size));
        }
        let (mut inventory, plain) = inventory_streamed_layer(&mut buffered);
        drop(buffered);
        let (digest, size) = hashing.finish();
        if plain {
            inventory.diff_id = digest.clone();
        }
        stats.layers_read += 1;
        layers.insert(digest.clone(), inventory);
        Ok((digest, size))
    };
    let saved = read_save(reader, &mut stage)?;
    let mut read = Vec::new();
    for image in saved {
        for source in images_of_save(&image, name, &documents) {
            let layer_list = source
                .layer_blobs
                .iter()
                .map(|blob| layers.get(blob).cloned())
                .collect();
            read.push(settle(source.target, layer_list));
        }
    }
    Ok(read)
}

/// The platform images of one image of a save stream.
fn images_of_save(image: &SavedImage, name: &str, docs: &StreamDocuments) -> Vec<SourceImage> {
    let reference = image.tags.first().map_or(name, String::as_str);
    match &image.target {
        Some(root) => platform_images(reference, root, docs),
        None => legacy_image(reference, &image.config, &image.layers, docs)
            .into_iter()
            .collect(),
    }
}

/// Checks each layer inventory against its diff ID, dropping those that do not match.
fn settle(target: ScanTarget, layers: Vec<Option<LayerInventory>>) -> ReadImage {
    let mut warnings = Vec::new();
    let diff_ids = target.config.rootfs.diff_ids.clone();
    if diff_ids.len() != layers.len() {
        warnings.push(ScanWarning {
            path: None,
            layer: None,
            message: format!(
                "the config lists {} layers and the manifest {}: the layers are not read",
                diff_ids.len(),
                layers.len()
            ),
        });
        return ReadImage {
            layers: vec![None; diff_ids.len()],
            target,
            warnings,
        };
    }
    let layers = layers
        .into_iter()
        .zip(&diff_ids)
        .map(|(layer, diff_id)| match layer {
            Some(mut inventory) if &inventory.diff_id != diff_id => {
                inventory.complete = false;
                warnings.push(ScanWarning {
                    path: None,
                    layer: Some(diff_id.clone()),
                    message: format!(
                        "the layer's content hashes to {}, not to its diff ID",
                        inventory.diff_id
                    ),
                });
                None
            }
            Some(inventory) => Some(inventory),
            None => {
                warnings.push(ScanWarning {
                    path: None,
                    layer: Some(diff_id.clone()),
                    message: "the layer is not in the image's archive".into(),
                });
                None
            }
        })
        .collect();
    ReadImage {
        target,
        layers,
        warnings,
    }
}

#[derive(Default)]
struct StreamDocuments(BTreeMap<Digest, Vec<u8>>);

impl Documents for StreamDocuments {
    fn document(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.0.get(digest).cloned()
    }
}

/// Hashes and counts a blob's bytes as they are read.
struct BlobHasher<'a> {
    inner: &'a mut dyn Read,
    hasher: Sha256,
    size: u64,
}

impl<'a> BlobHasher<'a> {
    fn new(inner: &'a mut dyn Read) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.size)
    }
}

impl Read for BlobHasher<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Blobs on disk, by digest: an OCI layout folder's `blobs/sha256/`, or the store's.
trait BlobFiles {
    fn blob_path(&self, digest: &Digest) -> PathBuf;
}

struct LayoutBlobs<'a>(&'a Path);

impl BlobFiles for LayoutBlobs<'_> {
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.0.join("blobs").join("sha256").join(digest.hex())
    }
}

impl BlobFiles for Store {
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        Store::blob_path(self, digest)
    }
}

struct FileDocuments<'a>(&'a dyn BlobFiles);

impl Documents for FileDocuments<'_> {
    fn document(&self, digest: &Digest) -> Option<Vec<u8>> {
        let file = File::open(self.0.blob_path(digest)).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_DOCUMENT_BYTES + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        // A document is trusted only when its bytes are what its name says.
        (bytes.len() as u64 <= MAX_DOCUMENT_BYTES && &Digest::of(&bytes) == digest).then_some(bytes)
    }
}

/// Reads the layers of `image` from files, each only when the cache lacks it.
fn read_from_files(
    image: SourceImage,
    blobs: &dyn BlobFiles,
    cache: Option<&ScanCache>,
    stats: &mut ReadStats,
) -> ReadImage {
    let diff_ids = image.target.config.rootfs.diff_ids.clone();
    if diff_ids.len() != image.layer_blobs.len() {
        return settle(image.target, vec![None; image.layer_blobs.len()]);
    }
    let mut warnings = Vec::new();
    let layers = diff_ids
        .iter()
        .zip(&image.layer_blobs)
        .map(|(diff_id, blob)| {
            if let Some(cached) = cache.and_then(|c| c.layer(diff_id)) {
                stats.layers_cached += 1;
                return Some(cached);
            }
            let path = blobs.blob_path(blob);
            match File::open(&path) {
                Ok(file) => {
                    stats.layers_read += 1;
                    let mut reader = BufReader::with_capacity(1 << 18, file);
                    Some(inventory_layer(&mut reader, Some(diff_id)))
                }
                Err(e) => {
                    warnings.push(ScanWarning {
                        path: None,
                        layer: Some(diff_id.clone()),
                        message: format!("the layer blob {} cannot be read: {e}", path.display()),
                    });
                    None
                }
            }
        })
        .collect();
    let mut read = settle(image.target, layers);
    read.warnings.splice(0..0, warnings);
    read
}

/// Every image of the OCI image layout folder `dir` (its `index.json`).
pub fn read_layout_dir(
    dir: &Path,
    cache: Option<&ScanCache>,
    stats: &mut ReadStats,
) -> Result<Vec<ReadImage>, ScanError> {
    let index_path = dir.join("index.json");
    let bytes = std::fs::read(&index_path).map_err(|source| ScanError::Io {
        path: index_path.clone(),
        source,
    })?;
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| ScanError::Input {
        path: index_path.clone(),
        message: format!("not an OCI image index: {e}"),
    })?;
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let blobs = LayoutBlobs(dir);
    let docs = FileDocuments(&blobs);
    let mut read = Vec::new();
    for root in &index.manifests {
        let reference = root.reference().unwrap_or_else(|| name.clone());
        for image in platform_images(&reference, root, &docs) {
            read.push(read_from_files(image, &blobs, cache, stats));
        }
    }
    if read.is_empty() {
        return Err(ScanError::Input {
            path: index_path,
            message: "names no image whose manifest and config are in the folder".into(),
        });
    }
    Ok(read)
}

/// The store entry `reference` names: by tag, else by repository.
pub fn store_entry<'a>(entries: &'a [ImageEntry], reference: &str) -> Option<&'a ImageEntry> {
    let wanted = familiar(reference);
    let full = normalized(reference);
    entries
        .iter()
        .find(|e| {
            e.tags
                .iter()
                .any(|t| familiar(t) == wanted || normalized(t) == full)
        })
        .or_else(|| entries.iter().find(|e| e.name == wanted))
}

/// The image `entry` of the layer store, every platform it holds.
pub fn read_store_entry(
    store: &Store,
    entry: &ImageEntry,
    reference: &str,
    cache: Option<&ScanCache>,
    stats: &mut ReadStats,
) -> Result<Vec<ReadImage>, ScanError> {
    let docs = FileDocuments(store);
    let images = match &entry.target {
        Some(root) => platform_images(reference, root, &docs),
        None => vec![
            legacy_image(reference, &entry.config, &entry.layers, &docs).map_err(|message| {
                ScanError::Input {
                    path: store.root().to_path_buf(),
                    message: format!("{reference}: {message}"),
                }
            })?,
        ],
    };
    Ok(images
        .into_iter()
        .map(|image| read_from_files(image, store, cache, stats))
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::image_archive::fixtures::{
        LAYER_GZIP, LAYER_TAR, descriptor, gzip, layer, manifest,
    };

    /// A distroless-style `status.d` entry for one package.
    fn status_d(package: &str, arch: &str) -> Vec<u8> {
        let text = format!(
            "Package: {package}\nVersion: 1.{arch}\nArchitecture: {arch}\nStatus: install ok installed\n"
        );
        layer(&format!("var/lib/dpkg/status.d/{package}"), text.as_bytes())
    }

    fn platform_config(arch: &str, variant: Option<&str>, layer: &[u8]) -> Vec<u8> {
        let mut config = json!({
            "architecture": arch,
            "os": "linux",
            "rootfs": { "type": "layers", "diff_ids": [Digest::of(layer).to_string()] },
        });
        if let Some(variant) = variant {
            config["variant"] = variant.into();
        }
        serde_json::to_vec(&config).unwrap()
    }

    fn write_blob(dir: &Path, bytes: &[u8]) {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join(Digest::of(bytes).hex()), bytes).unwrap();
    }

    #[test]
    fn an_oci_layout_index_of_two_platforms_gives_one_entry_each() {
        let dir = tempfile::tempdir().unwrap();
        let mut manifests = Vec::new();
        for (arch, variant, package, media_type) in [
            ("amd64", None, "libamd", LAYER_TAR),
            ("arm64", Some("v8"), "libarm", LAYER_GZIP),
        ] {
            let tar = status_d(package, arch);
            let blob = if media_type == LAYER_GZIP {
                gzip(&tar)
            } else {
                tar.clone()
            };
            let config = platform_config(arch, variant, &tar);
            let manifest = manifest(&config, &[(media_type, &blob)]);
            for bytes in [&blob, &config, &manifest] {
                write_blob(dir.path(), bytes);
            }
            let mut entry = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
            entry["platform"] = json!({ "os": "linux", "architecture": arch });
            manifests.push((entry, Digest::of(&manifest), package));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests.iter().map(|(entry, ..)| entry).collect::<Vec<_>>(),
        });
        let index = serde_json::to_vec(&index).unwrap();
        write_blob(dir.path(), &index);
        let top = json!({
            "schemaVersion": 2,
            "manifests": [descriptor("application/vnd.oci.image.index.v1+json", &index)],
        });
        std::fs::write(dir.path().join("index.json"), top.to_string()).unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();

        let mut stats = ReadStats::default();
        let read = read_layout_dir(dir.path(), None, &mut stats).unwrap();
        let images = crate::scan::inventories(read, None);
        assert_eq!(stats.layers_read, 2);
        let found: Vec<_> = images
            .iter()
            .map(|image| {
                let names: Vec<&str> = image.packages.iter().map(|p| p.name.as_str()).collect();
                (
                    image.platform.clone().unwrap_or_default(),
                    image.manifest.clone(),
                    names.join(","),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (
                    "linux/amd64".to_string(),
                    Some(manifests[0].1.clone()),
                    "libamd".to_string()
                ),
                (
                    "linux/arm64/v8".to_string(),
                    Some(manifests[1].1.clone()),
                    "libarm".to_string()
                ),
            ]
        );
        assert!(images.iter().all(|image| image.warnings.is_empty()));
    }
}
