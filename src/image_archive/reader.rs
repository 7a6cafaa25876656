//! Reads a `docker save` stream in either layout and says which blobs make each image.
//!
//! - The legacy layout (Docker before 25): `<hex>.json` configs, `<id>/layer.tar` uncompressed
//!   layers (a layer shared by two images may be a symlink), and `manifest.json`.
//! - The OCI image layout (Docker 25 and later): `oci-layout`, `index.json`, every blob under
//!   `blobs/sha256/<hex>` (manifests, indexes, configs, layers: compressed on the containerd image
//!   store), and a `manifest.json` whose paths name those blobs. `index.json` may point at an
//!   image index whose manifests include attestations; everything it reaches that the stream
//!   holds belongs to the image, so that loading it back gives the same image id.
//!
//! Every blob goes to the caller's `stage` function as it streams by; the reader keeps only the
//! small JSON documents it must parse. Blobs are named by the digest of their bytes: a
//! `blobs/sha256/<hex>` entry whose bytes hash otherwise is an error, never trusted.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use super::SaveFormatError as Error;
use super::layout::{Config, Descriptor, Index, Manifest, SaveManifestEntry};
use crate::cache::digest::Digest;

/// JSON documents (`manifest.json`, `index.json`, manifests, configs) larger than this are
/// refused: real ones are a few kilobytes.
pub const MAX_JSON_BYTES: u64 = 4 << 20;

/// One image of a save stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedImage {
    /// Its references as docker prints them (`busybox:latest`); empty for an untagged image.
    pub tags: Vec<String>,
    /// The image config blob.
    pub config: Digest,
    /// The layer blobs as saved (compressed or not), base first.
    pub layers: Vec<Digest>,
    /// The layers' uncompressed digests, from the config's `rootfs.diff_ids`.
    pub diff_ids: Vec<Digest>,
    /// What `index.json` pointed at for this image (its manifest or index), in the OCI layout.
    pub target: Option<Descriptor>,
    /// The other blobs the target reaches in the stream: itself, indexes, manifests,
    /// attestations.
    pub other_blobs: Vec<Digest>,
}

impl SavedImage {
    /// Every blob of the image, each once.
    pub fn blobs(&self) -> BTreeSet<&Digest> {
        std::iter::once(&self.config)
            .chain(&self.layers)
            .chain(&self.other_blobs)
            .collect()
    }
}

/// What the stream held, by path, before the images are put together.
#[derive(Default)]
struct Contents {
    /// Blob entries' paths → their digests and sizes.
    blobs: BTreeMap<String, (Digest, u64)>,
    /// Symlinks (legacy layers shared between images) → the path they point at.
    links: BTreeMap<String, String>,
    /// The parsed JSON blobs, by digest.
    json: BTreeMap<Digest, Vec<u8>>,
    manifest: Option<Vec<SaveManifestEntry>>,
    index: Option<Index>,
}

/// Takes one blob's bytes as they stream by; returns their digest and size.
pub type Stage<'a, E> = dyn FnMut(&mut dyn Read) -> Result<(Digest, u64), E> + 'a;

/// Reads the save stream `reader`, handing every blob to `stage`, and returns the images it
/// holds.
pub fn read_save<E: From<Error>>(
    reader: &mut dyn Read,
    stage: &mut Stage<'_, E>,
) -> Result<Vec<SavedImage>, E> {
    let contents = read_entries(reader, stage)?;
    Ok(images(&contents)?)
}

fn read_entries<E: From<Error>>(
    reader: &mut dyn Read,
    stage: &mut Stage<'_, E>,
) -> Result<Contents, E> {
    let tar_error = |e: std::io::Error| Error::Tar(e.to_string());
    let mut contents = Contents::default();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(tar_error)? {
        let mut entry = entry.map_err(tar_error)?;
        let path = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_owned();
        let kind = entry.header().entry_type();
        if kind.is_symlink() {
            let target = entry.link_name_bytes().unwrap_or_default();
            let resolved = resolve_link(&path, &String::from_utf8_lossy(&target));
            contents.links.insert(path, resolved);
        } else if !kind.is_file() {
            continue;
        } else if path == "manifest.json" {
            let bytes = read_json_entry(&mut entry, &path)?;
            let parsed = serde_json::from_slice(&bytes).map_err(|e| Error::json(&path, e))?;
            contents.manifest = Some(parsed);
        } else if path == "index.json" {
            let bytes = read_json_entry(&mut entry, &path)?;
            let parsed = serde_json::from_slice(&bytes).map_err(|e| Error::json(&path, e))?;
            contents.index = Some(parsed);
        } else if is_blob_path(&path) {
            let size = entry.header().size().map_err(tar_error)?;
            let (digest, size) = if size <= MAX_JSON_BYTES {
                let mut bytes = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut bytes).map_err(tar_error)?;
                let staged = stage(&mut bytes.as_slice())?;
                if bytes.first() == Some(&b'{') {
                    contents.json.insert(staged.0.clone(), bytes);
                }
                staged
            } else {
                stage(&mut entry)?
            };
            check_blob_name(&path, &digest)?;
            contents.blobs.insert(path, (digest, size));
        }
    }
    Ok(contents)
}

fn read_json_entry(entry: &mut dyn Read, path: &str) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    entry
        .take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Tar(e.to_string()))?;
    if bytes.len() as u64 > MAX_JSON_BYTES {
        return Err(Error::TooLarge(path.to_owned()));
    }
    Ok(bytes)
}

/// Blobs: `blobs/sha256/<hex>` (OCI), `<id>/layer.tar` and `<hex>.json` (legacy).
fn is_blob_path(path: &str) -> bool {
    path.starts_with("blobs/")
        || path.ends_with("/layer.tar")
        || (path.ends_with(".json") && !path.contains('/'))
}

/// An OCI blob's name must be the digest of its bytes.
fn check_blob_name(path: &str, digest: &Digest) -> Result<(), Error> {
    match path.strip_prefix("blobs/sha256/") {
        Some(hex) if hex != digest.hex() => Err(Error::DigestMismatch {
            path: path.to_owned(),
            actual: digest.clone(),
        }),
        _ => Ok(()),
    }
}

/// `a/layer.tar` linking to `../b/layer.tar` → `b/layer.tar`.
pub(crate) fn resolve_link(path: &str, target: &str) -> String {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

impl Contents {
    /// The blob at `path`, following symlinks (a few hops at most).
    fn blob_at(&self, path: &str) -> Result<&(Digest, u64), Error> {
        let mut real = path;
        for _ in 0..8 {
            match self.links.get(real) {
                Some(next) => real = next,
                None => break,
            }
        }
        self.blobs
            .get(real)
            .ok_or_else(|| Error::Missing(path.to_owned()))
    }

    fn has(&self, digest: &Digest) -> bool {
        self.blobs
            .contains_key(&format!("blobs/sha256/{}", digest.hex()))
            || self.blobs.values().any(|(d, _)| d == digest)
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, digest: &Digest) -> Result<T, Error> {
        let bytes = self
            .json
            .get(digest)
            .ok_or_else(|| Error::Missing(format!("{digest} (a JSON document)")))?;
        serde_json::from_slice(bytes).map_err(|e| Error::json(&digest.to_string(), e))
    }

    /// Every blob of the stream that `root` reaches (itself included), and its image manifest:
    /// the root if it is one, else the first present manifest of the index that is not an
    /// attestation. Manifests of other platforms that the stream lacks are skipped.
    fn walk(&self, root: &Descriptor) -> Result<(BTreeSet<Digest>, Option<Manifest>), Error> {
        let mut reached = BTreeSet::new();
        let mut image = None;
        let mut pending = vec![root.clone()];
        while let Some(descriptor) = pending.pop() {
            if !self.has(&descriptor.digest) || !reached.insert(descriptor.digest.clone()) {
                continue;
            }
            if descriptor.is_index() {
                let index: Index = self.parse(&descriptor.digest)?;
                // Reversed, so the index's first manifest is walked first.
                pending.extend(index.manifests.into_iter().rev());
            } else if descriptor.is_manifest() {
                let manifest: Manifest = self.parse(&descriptor.digest)?;
                let blobs = std::iter::once(&manifest.config).chain(&manifest.layers);
                reached.extend(blobs.map(|b| b.digest.clone()).filter(|d| self.has(d)));
                if image.is_none() && !descriptor.is_attestation() {
                    image = Some(manifest);
                }
            }
        }
        Ok((reached, image))
    }

    fn diff_ids(&self, config: &Digest, layers: usize) -> Result<Vec<Digest>, Error> {
        let parsed: Config = self.parse(config)?;
        if parsed.rootfs.diff_ids.len() != layers {
            return Err(Error::LayerCount {
                config: config.clone(),
                diff_ids: parsed.rootfs.diff_ids.len(),
                layers,
            });
        }
        Ok(parsed.rootfs.diff_ids)
    }
}

/// A target of `index.json` with every reference naming it.
struct Target {
    descriptor: Descriptor,
    references: Vec<String>,
    reached: BTreeSet<Digest>,
    image: Option<Manifest>,
}

/// The `index.json` entries, one per distinct target.
fn targets(contents: &Contents) -> Result<Vec<Target>, Error> {
    let Some(index) = &contents.index else {
        return Ok(Vec::new());
    };
    let mut targets: Vec<Target> = Vec::new();
    for descriptor in &index.manifests {
        let reference = descriptor.reference();
        if let Some(known) = targets
            .iter_mut()
            .find(|t| t.descriptor.digest == descriptor.digest)
        {
            known.references.extend(reference);
            continue;
        }
        if !contents.has(&descriptor.digest) {
            return Err(Error::Missing(descriptor.digest.to_string()));
        }
        let (reached, image) = contents.walk(descriptor)?;
        let mut plain = descriptor.clone();
        plain.annotations.clear();
        targets.push(Target {
            descriptor: plain,
            references: reference.into_iter().collect(),
            reached,
            image,
        });
    }
    Ok(targets)
}

fn images(contents: &Contents) -> Result<Vec<SavedImage>, Error> {
    if contents.manifest.is_none() && contents.index.is_none() {
        return Err(Error::NoManifest);
    }
    let targets = targets(contents)?;
    let mut images = Vec::new();
    let mut covered = BTreeSet::new();
    for entry in contents.manifest.iter().flatten() {
        let config = contents.blob_at(&entry.config)?.0.clone();
        let layers = entry
            .layers
            .iter()
            .map(|path| Ok(contents.blob_at(path)?.0.clone()))
            .collect::<Result<Vec<_>, Error>>()?;
        let tags = entry.repo_tags.clone().unwrap_or_default();
        let target = targets
            .iter()
            .filter(|t| t.reached.contains(&config))
            .max_by_key(|t| t.references.iter().any(|r| tags.contains(r)));
        covered.extend(target.map(|t| t.descriptor.digest.clone()));
        images.push(saved_image(contents, tags, config, layers, target)?);
    }
    // Images only `index.json` names (a layout written by another tool).
    for target in targets
        .iter()
        .filter(|t| !covered.contains(&t.descriptor.digest))
    {
        let Some(manifest) = &target.image else {
            continue;
        };
        let config = manifest.config.digest.clone();
        let layers = manifest.layers.iter().map(|l| l.digest.clone()).collect();
        let tags = target.references.clone();
        images.push(saved_image(contents, tags, config, layers, Some(target))?);
    }
    Ok(images)
}

fn saved_image(
    contents: &Contents,
    tags: Vec<String>,
    config: Digest,
    layers: Vec<Digest>,
    target: Option<&Target>,
) -> Result<SavedImage, Error> {
    for blob in std::iter::once(&config).chain(&layers) {
        if !contents.has(blob) {
            return Err(Error::Missing(blob.to_string()));
        }
    }
    let diff_ids = contents.diff_ids(&config, layers.len())?;
    let other_blobs = target.map_or_else(Vec::new, |t| {
        t.reached
            .iter()
            .filter(|d| **d != config && !layers.contains(d))
            .cloned()
            .collect()
    });
    Ok(SavedImage {
        tags,
        config,
        layers,
        diff_ids,
        target: target.map(|t| t.descriptor.clone()),
        other_blobs,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{self, TarBuilder};
    use super::*;

    fn read(tar: &[u8]) -> Result<(Vec<SavedImage>, fixtures::Blobs), Error> {
        fixtures::read_in_memory(tar)
    }

    #[test]
    fn the_legacy_layout_gives_tagged_and_untagged_images_with_shared_layers() {
        let (images, staged) = read(&fixtures::legacy_save()).expect("read");
        assert_eq!(images.len(), 3);
        let (app, other) = (&images[0], &images[1]);
        assert_eq!(app.tags, ["reg:5000/app:1"]);
        assert_eq!(
            other.layers[0], app.layers[0],
            "the symlinked layer is shared"
        );
        assert_eq!(
            other.layers, other.diff_ids,
            "legacy layers are uncompressed"
        );
        assert!(app.target.is_none() && app.other_blobs.is_empty());
        assert!(images[2].tags.is_empty(), "the untagged image is read too");
        // Two configs, two layers: `l1/json` and `repositories` are not blobs.
        assert_eq!(staged.len(), 4);
    }

    #[test]
    fn the_classic_oci_layout_keeps_its_manifest_as_the_target() {
        let (images, staged) = read(&fixtures::classic_oci_save()).expect("read");
        assert_eq!(images.len(), 1);
        let image = &images[0];
        assert_eq!(image.tags, ["app:1"]);
        let target = image.target.as_ref().expect("target");
        assert!(target.is_manifest());
        assert!(
            target.annotations.is_empty(),
            "names are the tags' business"
        );
        assert_eq!(image.other_blobs, std::slice::from_ref(&target.digest));
        assert_eq!(image.layers, image.diff_ids);
        assert_eq!(staged.len(), 4);
    }

    #[test]
    fn the_containerd_layout_keeps_its_index_attestations_and_compressed_layers() {
        let save = fixtures::containerd_save();
        let (images, _) = read(&save.tar).expect("read");
        assert_eq!(images.len(), 1, "two tags of one image are one image");
        let image = &images[0];
        assert_eq!(image.tags, ["app:1", "reg:5000/app:latest"]);
        assert_eq!(image.config, save.config);
        assert_eq!(image.layers, save.layers, "layers stay as saved (gzip)");
        assert_eq!(
            image.diff_ids, save.diff_ids,
            "diff ids come from the config"
        );
        assert_eq!(image.target.as_ref().map(|t| &t.digest), Some(&save.index));
        let mut expected = vec![save.index, save.manifest, save.attestation];
        expected.extend(save.attestation_blobs);
        expected.sort();
        assert_eq!(
            image.other_blobs, expected,
            "the missing arm64 manifest is skipped"
        );
    }

    #[test]
    fn an_oci_layout_without_manifest_json_is_read_from_index_json() {
        let save = fixtures::containerd_save();
        let mut tar = TarBuilder::new();
        let mut archive = tar::Archive::new(save.tar.as_slice());
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").display().to_string();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read");
            if path != "manifest.json" {
                tar = tar.file(&path, &bytes);
            }
        }
        let (images, _) = read(&tar.finish()).expect("read");
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].tags, ["app:1", "reg:5000/app:latest"]);
        assert_eq!(images[0].layers, save.layers);
        assert_eq!(images[0].config, save.config);
    }

    #[test]
    fn malformed_save_streams_are_errors_that_say_what_is_wrong() {
        let listing = |config: &str| {
            format!(r#"[{{"Config":"{config}","RepoTags":["a:1"],"Layers":[]}}]"#).into_bytes()
        };
        let cfg = fixtures::config("a", &[]);
        let cfg_name = format!("blobs/sha256/{}", Digest::of(&cfg).hex());
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "no manifest",
                TarBuilder::new().file("l1/layer.tar", b"x").finish(),
                "neither",
            ),
            (
                "bad json",
                TarBuilder::new().file("manifest.json", b"{").finish(),
                "manifest.json",
            ),
            (
                "dangling config",
                TarBuilder::new()
                    .file("manifest.json", &listing("x.json"))
                    .finish(),
                "x.json",
            ),
            ("not a tar", vec![1u8; 700], "tar"),
            (
                "a blob under another digest",
                TarBuilder::new()
                    .file(
                        &format!("blobs/sha256/{}", Digest::of(b"other").hex()),
                        &cfg,
                    )
                    .file("manifest.json", &listing(&cfg_name))
                    .finish(),
                "digest",
            ),
            (
                "diff ids that do not match the layers",
                TarBuilder::new()
                    .blob(&fixtures::config("a", &[b"one layer"]))
                    .0
                    .file(
                        "manifest.json",
                        &listing(&format!(
                            "blobs/sha256/{}",
                            Digest::of(&fixtures::config("a", &[b"one layer"])).hex()
                        )),
                    )
                    .finish(),
                "diff ids",
            ),
            (
                "a config that is not JSON",
                TarBuilder::new()
                    .file(
                        &format!("blobs/sha256/{}", Digest::of(b"{not json").hex()),
                        b"{not json",
                    )
                    .file(
                        "manifest.json",
                        &listing(&format!("blobs/sha256/{}", Digest::of(b"{not json").hex())),
                    )
                    .finish(),
                "sha256:",
            ),
            (
                "a huge manifest.json",
                TarBuilder::new()
                    .file("manifest.json", &vec![b' '; MAX_JSON_BYTES as usize + 1])
                    .finish(),
                "larger",
            ),
            (
                "index.json naming an absent index",
                TarBuilder::new()
                    .file("index.json", br#"{"schemaVersion":2,"manifests":"no"}"#)
                    .finish(),
                "index.json",
            ),
        ];
        for (case, tar, says) in cases {
            match read(&tar) {
                Err(error) => assert!(error.to_string().contains(says), "{case}: {error}"),
                Ok(images) => panic!("{case}: accepted as {images:?}"),
            }
        }
    }

    #[test]
    fn links_resolve_relative_to_their_folder() {
        assert_eq!(
            resolve_link("l2/layer.tar", "../l1/layer.tar"),
            "l1/layer.tar"
        );
        assert_eq!(
            resolve_link("abc/layer.tar", "../blobs/sha256/00"),
            "blobs/sha256/00"
        );
    }
}
